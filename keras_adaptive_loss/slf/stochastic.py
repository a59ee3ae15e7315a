"""`StochasticLoss`: the Stochastic Loss Function (SLF) of Liu & Lai (AAAI 2020)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import keras
import numpy as np
from keras import ops

from keras_adaptive_loss._tensorflow import (
    GradientTape,
    all_replicas_mean,
    in_cross_replica_build,
    outside_traced_functions,
    replica_seed,
    update_on_backward,
)
from keras_adaptive_loss.losses import registry
from keras_adaptive_loss.losses.base import AdaptiveLoss, deserialize_nested
from keras_adaptive_loss.losses.prediction_checks import check_predictions
from keras_adaptive_loss.private_api import keras_mask
from keras_adaptive_loss.slf.decision import DecisionNetwork
from keras_adaptive_loss.slf.gumbel import (
    entropy_bonus_logit_gradient,
    gumbel_noise,
    gumbel_softmax_samples,
    mixture_objective_logit_gradient,
    straight_through,
)

__all__ = [
    "NORMALIZATIONS",
    "PAPER_CANDIDATES",
    "REGRESSION_CANDIDATES",
    "TASKS",
    "SelectionState",
    "StochasticLoss",
]

NORMALIZATIONS = ("to_first", "running_mean", "none")
#: What the predictions are: class probabilities (or logits), regression outputs, or the
#: outputs of a model whose loss is a sum of terms (each candidate is one term).
TASKS = ("classification", "regression", "terms")
#: The paper's classification candidates (Liu & Lai 2020, "Classification"): the squared and
#: absolute errors, the hinge and cosine losses and binary cross-entropy on one-hot targets.
PAPER_CANDIDATES = ("mse", "mae", "hinge", "cosine", "bce")
#: ``task="regression"`` names -> Keras losses (per-sample values over the last axis).
REGRESSION_CANDIDATES = {
    "mse": keras.losses.MeanSquaredError,
    "mae": keras.losses.MeanAbsoluteError,
    "huber": keras.losses.Huber,
    "log_cosh": keras.losses.LogCosh,
}
_MIN_TEMPERATURE = 1e-6
#: The most Gumbel-softmax samples (K) per step; the paper uses 1-5.
MAX_SAMPLES = 1024
#: Mean selection weight of one candidate above which `StochasticLoss.collapsed_onto` names it.
COLLAPSE_THRESHOLD = 0.95
#: The default entropy-bonus weight (chosen by a paired study; see the class docstring).
DEFAULT_ENTROPY = 1.0
#: The statistics of a `SelectionState`, one weight each, in the order they are created (and
#: saved), each with whether it holds one value per candidate (else one number). ``draws``
#: counts random draws (int64); the others are float32.
STATISTICS = (
    ("running_means", True),
    ("updates", False),
    ("weight_sums", True),
    ("weight_steps", False),
    ("draws", False),
    ("skipped", False),
    ("prior", True),
    ("alignments", True),
    ("alignment_updates", False),
)
#: The order of the statistics in the one packed vector of files written by
#: keras-adaptive-loss 0.1.0.dev (2026-12-06), which `SelectionState` unpacks on loading.
_PACKED_ORDER = (
    "running_means", "weight_sums", "prior", "alignments",
    "updates", "weight_steps", "skipped", "alignment_updates",
)  # fmt: skip


@keras.saving.register_keras_serializable(package="keras_adaptive_loss")
class SelectionState(keras.layers.Layer):
    """Training statistics of a `StochasticLoss`, kept as (saved) non-trainable weights.

    ``running_means``: exponential moving average of each candidate's batch-mean value, with
    ``updates`` counting the averaged batches (for bias correction); ``weight_sums`` and
    ``weight_steps``: running sums of the batch-mean selection weights since the last
    `reset_diagnostics`; ``draws``: Gumbel noise draws; ``skipped``: steps skipped for an
    empty or non-finite batch. Set by `keras_adaptive_loss.callbacks.ValidationSelection`
    (zero without it): ``prior``, a per-candidate bias added to the decision network's
    logits, and ``alignments`` / ``alignment_updates``, the moving average it is computed from.

    Each statistic is one weight (see `STATISTICS`), read as an attribute (``state.prior``)
    and written with `assign`, several at a time.

    >>> state = SelectionState(2)
    >>> state.build()
    >>> state.assign(prior=[1.0, -1.0], updates=3.0)
    >>> state.prior.numpy().tolist(), float(state.updates)
    ([1.0, -1.0], 3.0)
    """

    def __init__(self, num_candidates: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.num_candidates = int(num_candidates)

    def build(self, input_shape: Any = None) -> None:
        for name, per_candidate in STATISTICS:
            variable = self.add_weight(
                shape=(self.num_candidates,) if per_candidate else (),
                initializer="zeros", dtype="int64" if name == "draws" else "float32",
                trainable=False, aggregation="only_first_replica", name=name,
            )  # fmt: skip
            setattr(self, name, variable)
        super().build(input_shape)

    def parts(self) -> dict[str, Any]:
        """Each statistic's current value (a tensor), by name, for use inside a traced step."""
        return {name: getattr(self, name).value for name, _ in STATISTICS}

    def assign(self, **values: Any) -> None:
        """Writes the given statistics, by name."""
        known = [name for name, _ in STATISTICS]
        unknown = set(values) - set(known)
        if unknown:
            raise ValueError(f"Unknown statistics {sorted(unknown)}; known: {known}.")
        for name, value in values.items():
            variable = getattr(self, name)
            variable.assign(ops.cast(ops.reshape(value, variable.shape), variable.dtype))

    def load_own_variables(self, store: Any) -> None:
        """Builds first when the weights are loaded before the first batch (see DecisionNetwork).

        Files written by keras-adaptive-loss 0.1.0.dev (2026-12-06) hold the float statistics
        packed into one vector (``_PACKED_ORDER``) and ``draws``; they are unpacked here, and
        the decision network's Adam step count, which ``updates`` equals in them, is restored.
        """
        if not self.built and store is not None and len(store.keys()) > 0:
            self.build()
        if store is None or len(store.keys()) != 2:
            super().load_own_variables(store)
            return
        packed, n = np.asarray(store["0"], "float32"), self.num_candidates
        values, start = {}, 0
        for name in _PACKED_ORDER:
            size = n if dict(STATISTICS)[name] else 1
            values[name] = packed[start : start + size].reshape(getattr(self, name).shape)
            start += size
        self.assign(draws=np.asarray(store["1"]), **values)
        if self.restore_step is not None:
            self.restore_step(values["updates"])

    #: Called with ``updates`` when a packed file is loaded (set by `StochasticLoss`).
    restore_step: Callable[[Any], None] | None = None

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "num_candidates": self.num_candidates}


@keras.saving.register_keras_serializable(package="keras_adaptive_loss")
class StochasticLoss(AdaptiveLoss):
    """Selects and weights candidate losses per sample with a decision network (SLF).

    Implements "Stochastic Loss Function" (Liu & Lai, AAAI 2020). For each sample, a decision
    network ``h`` looks at the model's prediction and gives probabilities over the candidate
    losses, ``p = softmax(h(f(x); v))`` (Eq. 4); K Gumbel-softmax samples of ``log p`` at
    temperature tau (Eqs. 5-9) are averaged into ``p_hat`` (Eq. 10), and the loss is
    ``sum_i p_hat_i * l_i`` (Eq. 11). The decision network is trained in the same backward pass
    as the model (Algorithm 1) — inside an ordinary ``model.compile(loss=...)`` / `fit`, with
    or without a `tf.distribute` strategy — and it is *not* updated by `evaluate`, `predict` or
    the validation pass of `fit` (see `keras_adaptive_loss._tensorflow`).

    Three ways to run it:

    - **The default** differs from the paper in four ways, each chosen by a paired study
      against cross-entropy (documentation, "Measured results", StochasticLoss): (1) each
      candidate is divided by an exponential moving average of its own batch mean, so that no
      candidate wins by its scale, and the model's loss is that mixture times the first
      candidate's moving average (``normalize="to_first"``), so that the model's step follows
      the first candidate's loss level as it would in training on that loss alone; (2) the
      decision network sees the prediction with its gradient stopped, so the model is trained
      by the selected losses, not by steering the selector; (3) it starts uniform (its output
      layer is zero-initialised); (4) an entropy bonus, ``entropy=1.0``, keeps the selection
      spread.
      The learned selection alone does not tell a useful candidate from a useless one: its
      objective rewards a candidate whose value is small relative to its own average.
    - **Steered by held-out data** (recommended with a validation split; the ``stochastic``
      preset of `kal.compare`): add `keras_adaptive_loss.callbacks.ValidationSelection`,
      which shifts the selection towards the candidates whose gradient lines up with the
      held-out cross-entropy's (the paper's "adjusted with the performance on the validation
      set", which its Algorithm 1 leaves out).
    - **Paper mode**, `StochasticLoss.paper()`: the paper's candidates (mse, mae, hinge,
      cosine, bce), hard one-hot Gumbel samples (straight-through), the raw mixture of Eq. 11
      as the objective of both networks, and the mixture's gradient flowing through ``h`` into
      the model. It collapses onto the numerically smallest candidate (``mse``) and is kept to
      reproduce the paper.

    tau is an adaptive parameter (``"temperature"``): anneal it with
    `keras_adaptive_loss.callbacks.TemperatureSchedule`. Add
    `keras_adaptive_loss.callbacks.LossDiagnostics` (in any order with ``CSVLogger`` /
    ``TensorBoard``) to log each candidate's mean selection weight per epoch
    (``slf_weight_<name>``); it warns when the selection has collapsed onto one candidate.

    Beyond class probabilities (``task``):

    - ``"regression"``: candidates are regression losses over the last axis (names ``mse``,
      ``mae``, ``huber``, ``log_cosh`` or Keras loss objects); ``h`` sees the raw outputs.
    - Sequences: a classifier's ``[batch, time, classes]`` output with ``[batch, time]``
      labels is selected per token; positions masked by Keras (``mask_zero``) or whose label
      is ``ignore_class`` are left out of the decision network's objective and statistics
      (and get loss 0).
    - ``"terms"``: each candidate is one term of a multi-term loss on the same
      ``(y_true, y_pred)`` (the paper's detection use: box regression + classification); SLF
      weights the terms per sample.

    Sample weights and replicas: ``sample_weight`` and ``class_weight`` weight the model's
    loss as for any Keras loss, but the running means and the decision network's objective
    see every sample with weight 1 (Keras applies the weights after ``call``), so a sample of
    weight 0 still moves them. Under a `tf.distribute` strategy each replica draws its own
    Gumbel noise (the seed folded with the replica id), so a run on N replicas differs from a
    one-device run by about as much as a change of seed; the decision network still gets one
    update per step, from the replica-averaged gradient.

    Args:
        candidates: registry names (see `keras_adaptive_loss.losses.available`; for
            ``task="regression"``, `REGRESSION_CANDIDATES`), Keras losses or per-sample
            callables; at least one.
        num_samples: K, the number of Gumbel-softmax samples per step (paper: 3 on MNIST).
        temperature: tau > 0.
        decision_network: a Keras layer mapping ``[batch, features]`` predictions to
            ``[batch, len(candidates)]`` logits; default: a small MLP.
        hard: straight-through one-hot samples instead of soft ones.
        from_logits: whether a classifier's ``y_pred`` holds logits.
        seed: base seed of the Gumbel noise; the same seed draws the same noise again. ``None``
            draws a seed (recorded in the config).
        normalize: ``"to_first"`` (see above; list cross-entropy first), ``"running_mean"``
            (the equalised mixture itself, whose level stays near 1 as the candidates fall,
            so the step grows relative to the first candidate's) or ``"none"`` (the paper's
            raw mixture). On the generalization suite (29 tasks, 5 paired seeds, with
            `ValidationSelection`) ``"running_mean"`` was below cross-entropy on 4 tasks, by
            up to 6.4 points under SGD, and ``"to_first"`` on 1 (documentation, "Measured
            results", StochasticLoss).
        momentum: momentum of the running means.
        decision_learning_rate: Adam learning rate of the decision network.
        hidden_units: width of the default decision MLP.
        num_classes: number of classes (or output features); known, it lets the decision
            network be built at once (it is otherwise built at the first call).
        entropy: weight of the entropy bonus on the decision network's distribution (0: none;
            the default 1.0 is chosen by measurement, see above).
        decision_gradient: let the mixture's gradient flow through ``h`` into the model, and
            not only through the candidates (paper mode).
        task: ``"classification"``, ``"regression"`` or ``"terms"``, see above.
        ignore_class: a label value that marks padding (sequence outputs), as in Keras's
            ``SparseCategoricalCrossentropy(ignore_class=...)``.
        name: as for any Keras loss.
        reduction: as for any Keras loss.
        dtype: as for any Keras loss.

    Example:

    ```python
    loss = kal.StochasticLoss(["crossentropy", "mse", "mae", "hinge", "cosine"])
    model.compile(optimizer="adam", loss=loss)
    model.fit(x, y, epochs=20, callbacks=[kal.callbacks.LossDiagnostics()])
    ```

    >>> import numpy as np
    >>> import keras_adaptive_loss as kal
    >>> loss = kal.StochasticLoss(["crossentropy", "mse"], seed=0, num_classes=3)
    >>> value = loss(np.array([0, 2]), np.array([[0.8, 0.1, 0.1], [0.2, 0.2, 0.6]]))
    >>> value.shape
    TensorShape([])
    >>> paper = kal.StochasticLoss.paper(seed=0)
    >>> paper.candidate_names, paper.hard, paper.normalize, paper.decision_gradient
    (['mse', 'mae', 'hinge', 'cosine', 'bce'], True, 'none', True)

    References:
        Liu, Q. & Lai, J. "Stochastic Loss Function." AAAI 2020.
    """

    def __init__(
        self,
        candidates: Sequence[Any],
        num_samples: int = 3,
        temperature: float = 1.0,
        decision_network: keras.layers.Layer | None = None,
        hard: bool = False,
        from_logits: bool = False,
        seed: int | None = None,
        normalize: str = "to_first",
        momentum: float = 0.99,
        decision_learning_rate: float = 1e-3,
        hidden_units: int = 32,
        num_classes: int | None = None,
        entropy: float = DEFAULT_ENTROPY,
        decision_gradient: bool = False,
        task: str = "classification",
        ignore_class: int | None = None,
        name: str = "stochastic_loss",
        reduction: str | None = "sum_over_batch_size",
        dtype: Any = None,
    ) -> None:
        super().__init__(name=name, reduction=reduction, dtype=dtype)
        if isinstance(candidates, str) or not isinstance(candidates, Sequence) or not candidates:
            raise ValueError(
                "StochasticLoss needs a non-empty list of candidate losses, e.g. "
                f"['crossentropy', 'mse', 'hinge']; got {candidates!r}. Names: "
                f"{', '.join(registry.available())}."
            )
        if not isinstance(num_samples, (int, np.integer)) or not 1 <= num_samples <= MAX_SAMPLES:
            raise ValueError(
                f"num_samples (K) must be an integer in [1, {MAX_SAMPLES}] (each sample costs a "
                f"[batch, candidates] tensor per step); got {num_samples!r}."
            )
        if not np.isfinite(temperature) or temperature <= 0:
            raise ValueError(f"temperature (tau) must be > 0; got {temperature!r}.")
        if normalize not in NORMALIZATIONS:
            raise ValueError(f"normalize must be one of {NORMALIZATIONS}; got {normalize!r}.")
        if not 0.0 <= momentum < 1.0:
            raise ValueError(f"momentum must lie in [0, 1); got {momentum!r}.")
        if not np.isfinite(entropy) or entropy < 0:
            raise ValueError(f"entropy (the bonus weight) must be >= 0; got {entropy!r}.")
        if task not in TASKS:
            raise ValueError(
                f"task must be one of {TASKS}; got {task!r}. Use 'regression' for real-valued "
                "outputs and 'terms' when each candidate is one term of a multi-term loss."
            )
        if task != "classification" and from_logits:
            raise ValueError(
                f"from_logits=True only applies to task='classification'; got task={task!r}."
            )
        self.task = task
        self.from_logits = bool(from_logits)
        self.candidates = [self._candidate(c) for c in candidates]
        self.candidate_names = _unique_names([c.name for c in self.candidates])
        self.num_samples = int(num_samples)
        self.hard = bool(hard)
        self.seed = int(np.random.randint(0, 2**31 - 1) if seed is None else seed)
        self.normalize = normalize
        self.momentum = float(momentum)
        self.entropy = float(entropy)
        self.decision_gradient = bool(decision_gradient)
        self.ignore_class = None if ignore_class is None else int(ignore_class)
        self.num_classes = None if num_classes is None else int(num_classes)
        self.add_parameter("temperature", temperature, minimum=_MIN_TEMPERATURE)
        self.decision_network = DecisionNetwork(
            len(self.candidates),
            dtype="float32",  # its own Adam and gradients stay float32 under mixed precision
            network=decision_network,
            hidden_units=hidden_units,
            learning_rate=decision_learning_rate,
            name="decision_network",
        )
        self.state = SelectionState(len(self.candidates), name="selection_state")
        self.state.restore_step = self.decision_network.restore_step
        if self.num_classes is not None:
            self._build(self.num_classes)

    @classmethod
    def paper(
        cls,
        candidates: Sequence[Any] = PAPER_CANDIDATES,
        num_samples: int = 3,
        temperature: float = 1.0,
        **kwargs: Any,
    ) -> StochasticLoss:
        """The paper's recipe, as written (Algorithm 1, Eqs. 4-11).

        The paper's classification candidates, hard one-hot Gumbel samples, the raw mixture
        (no normalisation, no entropy bonus) minimised by both networks in the same step, with
        the gradient flowing through the decision network into the model. It collapses onto
        ``mse`` and is below cross-entropy on three of the four tasks of the paired study
        in the class docstring: kept so that the
        paper can be reproduced, not as a recommendation. Other arguments as for the class.
        """
        settings = dict(hard=True, normalize="none", entropy=0.0, decision_gradient=True)
        settings.update(kwargs)
        return cls(list(candidates), num_samples=num_samples, temperature=temperature, **settings)

    def _candidate(self, identifier: Any) -> registry.Candidate:
        if isinstance(identifier, dict):  # a saved Keras loss (see get_config)
            return registry.deserialize_candidate(identifier, from_logits=self.from_logits)
        if self.task == "regression" and isinstance(identifier, str):
            key = identifier.strip().lower().replace("-", "_")
            if key not in REGRESSION_CANDIDATES:
                raise ValueError(
                    f"Unknown regression candidate {identifier!r}; names: "
                    f"{', '.join(REGRESSION_CANDIDATES)}, or pass a Keras loss object."
                )
            identifier = REGRESSION_CANDIDATES[key](name=key)
        elif isinstance(identifier, str) and self.task == "classification":
            key = identifier.strip().lower().replace("-", "_")
            if key in REGRESSION_CANDIDATES and key not in registry.available():
                raise ValueError(
                    f"{identifier!r} is a regression candidate: pass task='regression' to "
                    "StochasticLoss for real-valued outputs (its candidates: "
                    f"{', '.join(REGRESSION_CANDIDATES)})."
                )
        elif self.task != "classification" and isinstance(identifier, str):
            raise ValueError(
                f"With task={self.task!r} a candidate must be a Keras loss or a callable "
                f"(y_true, y_pred) -> per-sample values; got the name {identifier!r}."
            )
        return registry.get_candidate(identifier, from_logits=self.from_logits)

    # Building ---------------------------------------------------------------------------------

    def _build(self, num_classes: int) -> None:
        """Creates the decision network and statistics eagerly, in the current strategy."""
        with outside_traced_functions():
            self.decision_network.build((None, num_classes))
            self.state.build()
        self.num_classes = num_classes

    def _ensure_built(self, y_pred: Any) -> None:
        num_classes = y_pred.shape[-1]
        if num_classes is None or len(y_pred.shape) < 2:
            raise ValueError(
                f"StochasticLoss needs predictions of shape [batch, ..., features] with a known "
                f"last axis; got shape {y_pred.shape}. A regression model with one output "
                "should output shape [batch, 1]."
            )
        if self.task == "classification" and num_classes == 1:
            raise ValueError(
                f"StochasticLoss got predictions of shape {y_pred.shape}: one output per "
                "sample. For a regression model pass task='regression' (candidates "
                f"{', '.join(REGRESSION_CANDIDATES)}); for a binary classifier use a 2-unit "
                "softmax output."
            )
        if not self.decision_network.built:
            self._build(int(num_classes))
        elif self.num_classes is None:  # built while restoring weights, before the first batch
            self.num_classes = self.decision_network.input_dim
        if num_classes != self.num_classes:
            raise ValueError(
                f"StochasticLoss was built for {self.num_classes} classes but got predictions "
                f"of shape {y_pred.shape}."
            )

    # The loss ---------------------------------------------------------------------------------

    def candidate_values(self, y_true: Any, y_pred: Any) -> Any:
        """Per-sample value of every candidate, shape ``[..., n]``."""
        values = registry.per_sample_values(self.candidates, y_true, ops.convert_to_tensor(y_pred))
        return ops.stack([ops.cast(v, "float32") for v in values], axis=-1)

    def decision_logits(self, y_pred: Any, prior: Any | None = None) -> Any:
        """The selection logits over candidates, ``h(f(x); v)`` (Eq. 4) plus the prior.

        The prior is zero unless `keras_adaptive_loss.callbacks.ValidationSelection` sets it;
        ``prior`` may be passed in when already read (see `SelectionState.parts`).
        """
        inputs = y_pred
        if self.task == "classification" and self.from_logits:
            inputs = ops.softmax(y_pred, axis=-1)
        if not self.decision_gradient:
            inputs = ops.stop_gradient(inputs)
        inputs = ops.cast(inputs, "float32")
        if prior is None:
            prior = self.state.prior
        if len(inputs.shape) == 2:
            return ops.cast(self.decision_network(inputs), "float32") + prior
        # Per-token outputs [batch, time, ..., features]: one decision per position.
        flat = ops.reshape(inputs, (-1, inputs.shape[-1]))
        logits = ops.cast(self.decision_network(flat), "float32") + prior
        return ops.reshape(logits, (*ops.shape(inputs)[:-1], len(self.candidates)))

    def valid_positions(self, y_true: Any, y_pred: Any) -> Any | None:
        """1.0 where a position counts, 0.0 where it is padding; ``None`` when all count.

        Padding is what Keras masks (the mask its own ``Loss.__call__`` applies, e.g. from
        ``Embedding(mask_zero=True)``) and labels equal to ``ignore_class``.
        """
        valid = None
        mask = keras_mask(y_pred)  # what Keras's Loss.__call__ reads
        if mask is not None:
            valid = ops.cast(mask, "float32")
        if self.ignore_class is not None:
            labels = ops.convert_to_tensor(y_true)
            if len(labels.shape) == len(y_pred.shape):
                labels = ops.squeeze(labels, axis=-1)
            kept = ops.cast(ops.not_equal(labels, self.ignore_class), "float32")
            valid = kept if valid is None else valid * kept
        return valid

    def selection(
        self,
        y_true: Any,
        y_pred: Any,
        noise: Any,
        logits: Any | None = None,
        statistics: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """The loss for given Gumbel ``noise`` (shape ``[K, ..., n]``), with its parts.

        Returns a dict with ``loss`` (per sample, Eq. 11), ``p_hat`` (Eq. 10), ``logits`` and
        ``log_p`` (Eq. 4), ``soft_samples`` (Eq. 6), ``values`` (the candidates, each over its
        running mean unless ``normalize="none"``), ``objective`` (the decision network's objective,
        ``mean_b sum_i p_hat_bi v_bi`` over the valid positions), its gradient with respect to
        the logits (``mixture_gradient``, in closed form), ``batch_means``, ``prior`` and
        ``valid`` (see `valid_positions`). Used by ``call`` and, with fixed noise, by tests
        and analyses. ``logits`` and ``statistics`` (`SelectionState.parts`) may be passed in
        when already computed.
        """
        valid = self.valid_positions(y_true, y_pred)
        y_pred = ops.convert_to_tensor(y_pred)
        self._ensure_built(y_pred)
        if statistics is None:
            statistics = self.state.parts()
        if valid is not None and self.ignore_class is not None:
            y_true = ops.where(ops.cast(valid, "bool"), y_true, ops.zeros_like(y_true))
        raw = self.candidate_values(y_true, y_pred)
        n = len(self.candidates)
        if valid is not None:
            raw = raw * valid[..., None]
        flat = ops.reshape(raw, (-1, n))
        if valid is None:
            batch_means = ops.mean(flat, axis=0)
        else:
            batch_means = ops.sum(flat, axis=0) / ops.sum(valid)  # NaN when all are padding
        batch_means = ops.stop_gradient(batch_means)
        if self.normalize == "none":
            scaled = raw
        else:
            scales = ops.stop_gradient(self._scales(batch_means, statistics))
            scaled = raw / scales
        values = ops.stop_gradient(scaled)
        if self.normalize == "to_first":
            # The model's loss at the first candidate's level (its running mean): the
            # decision network sees the equalised candidates, the model a step that follows
            # the first candidate's loss level as it would when trained on that loss alone.
            scaled = scaled * scales[0]
        if logits is None:
            logits = self.decision_logits(y_pred, statistics["prior"])
        log_p = ops.log_softmax(logits, axis=-1)
        temperature = self.variable("temperature")
        soft_samples = gumbel_softmax_samples(log_p, noise, temperature)
        p_hat = ops.mean(straight_through(soft_samples) if self.hard else soft_samples, axis=0)
        # d objective / d logits in closed form (also the decision network's gradient).
        mixture_gradient = mixture_objective_logit_gradient(
            logits, soft_samples, values, temperature, probabilities=ops.exp(log_p)
        )
        # Without decision_gradient, d loss / d y_pred flows only through the candidates.
        loss = ops.sum(ops.stop_gradient(p_hat) * scaled, axis=-1)
        if self.decision_gradient:
            # Eq. 11's gradient through p_hat into the logits (and from there through h into
            # the model), in closed form: each position's loss has the logit gradient of the
            # objective times the number of positions it averages over. Adding ``t - t`` with
            # ``t = <that gradient, logits>`` leaves the value and adds the gradient. Autodiff
            # through the Gumbel-softmax chain would put ~25 small ops on the model's backward
            # path, more than 5 % of paper mode's step on the overhead benchmark.
            count = ops.cast(ops.size(values) // values.shape[-1], "float32")
            through_h = ops.sum(ops.stop_gradient(mixture_gradient * count) * logits, axis=-1)
            loss = loss + (through_h - ops.stop_gradient(through_h))
        per_position = ops.sum(p_hat * values, axis=-1)
        if valid is None:
            objective = ops.mean(per_position)
        else:
            objective = ops.sum(per_position * valid) / ops.maximum(ops.sum(valid), 1.0)
        return {
            "loss": loss,
            "p_hat": p_hat,
            "logits": logits,
            "log_p": log_p,
            "soft_samples": soft_samples,
            "values": values,
            "objective": objective,
            "batch_means": batch_means,
            "valid": valid,
            "prior": statistics["prior"],
            "mixture_gradient": mixture_gradient,
        }

    def _scales(self, batch_means: Any, statistics: dict[str, Any]) -> Any:
        """The running-mean scale of each candidate (bias-corrected; the batch mean at first)."""
        updates = statistics["updates"]
        corrected = statistics["running_means"] / ops.maximum(
            1.0 - ops.power(self.momentum, updates), 1e-12
        )
        running = ops.where(updates > 0, corrected, ops.stop_gradient(batch_means))
        return ops.maximum(running, keras.config.epsilon())

    def call(self, y_true: Any, y_pred: Any) -> Any:
        if self.task == "classification":
            check_predictions(y_pred, self.from_logits, type(self).__name__)
        y_pred = ops.convert_to_tensor(y_pred)
        self._ensure_built(y_pred)
        noise = self._draw_noise((self.num_samples, *_batch_shape(y_pred), len(self.candidates)))
        if in_cross_replica_build():
            # Keras's symbolic build under a strategy: no training step, nothing to learn.
            return self.selection(y_true, y_pred, noise)["loss"]
        statistics = self.state.parts()
        with GradientTape() as tape:
            logits = self.decision_logits(y_pred, statistics["prior"])
        parts = self.selection(y_true, y_pred, noise, logits=logits, statistics=statistics)
        gradients = tape.gradient(
            logits, self.decision_network.network.trainable_variables, self._logit_gradient(parts)
        )
        weights = ops.reshape(ops.stop_gradient(parts["p_hat"]), (-1, len(self.candidates)))
        valid = parts["valid"]
        if valid is None:
            batch_weights = ops.mean(weights, axis=0)
        else:
            flat_valid = ops.reshape(valid, (-1, 1))
            batch_weights = ops.sum(weights * flat_valid, axis=0) / ops.sum(flat_valid)
        # An empty batch (a replica's share of a short last batch) or non-finite predictions
        # make the batch means or gradients NaN: such a replica contributes nothing, and a step
        # where no replica has a finite batch is skipped (counted in `state.skipped`). All of
        # them in one vector: one check, one mask and one cross-replica mean.
        learned = ops.concatenate(
            [parts["batch_means"], batch_weights, self.decision_network.flat(gradients)]
        )
        finite = ops.all(ops.isfinite(learned))
        learned = ops.where(finite, learned, 0.0)

        def train_step():
            return all_replicas_mean(self._learn_if_finite, [ops.cast(finite, "float32"), learned])

        return update_on_backward(parts["loss"], train_step)

    def _logit_gradient(self, parts: dict[str, Any]) -> Any:
        """Gradient of the decision network's objective w.r.t. its logits (closed form)."""
        logits, valid = parts["logits"], parts["valid"]
        gradient = parts["mixture_gradient"]
        if self.entropy > 0.0:
            # The bonus keeps the *network's* distribution spread; with a prior it would
            # otherwise learn to cancel it.
            network_log_p = ops.log_softmax(logits - parts["prior"])
            gradient = gradient + entropy_bonus_logit_gradient(network_log_p, self.entropy)
        if valid is not None:
            # The closed forms average over every position; re-average over the valid ones.
            count = ops.cast(ops.size(valid), "float32")
            gradient = gradient * (valid[..., None] * count / ops.maximum(ops.sum(valid), 1.0))
        return gradient

    def _draw_noise(self, shape: Sequence[Any]) -> Any:
        draws = self.state.draws
        seed = replica_seed(self.seed, draws.value)
        draws.assign_add(ops.cast(1, "int64"))
        return gumbel_noise(shape, seed)

    def _learn_if_finite(self, share: Any, learned: Any) -> Any:
        """One decision-network step and statistics update from the finite replicas' means.

        ``share`` is the fraction of replicas whose batch was finite; ``learned`` is the
        replica mean of the batch means, batch selection weights and flat decision-network
        gradient (concatenated, in that order), with the non-finite replicas' values zeroed,
        so dividing by ``share`` gives the mean over the finite replicas. Runs once, in
        cross-replica context.
        """
        state, n = self.state, len(self.candidates)

        def learn():
            means = learned / share
            batch_means, batch_weights, gradient = means[:n], means[n : 2 * n], means[2 * n :]
            self.decision_network.apply_gradients(gradient)
            state.running_means.assign(
                state.running_means * self.momentum + batch_means * (1.0 - self.momentum)
            )
            state.weight_sums.assign_add(batch_weights)
            state.updates.assign_add(1.0)
            state.weight_steps.assign_add(1.0)
            return ops.convert_to_tensor(True)

        def skip():
            state.skipped.assign_add(1.0)
            return ops.convert_to_tensor(False)

        return ops.cond(share > 0.0, learn, skip)

    # Diagnostics ------------------------------------------------------------------------------

    def diagnostics(self) -> dict[str, float]:
        """Mean selection weight of each candidate since the last reset, and tau.

        Keys: ``slf_weight_<candidate name>``, ``slf_temperature`` and ``slf_skipped_steps``
        (training steps whose batch was empty or non-finite on every replica, so the decision
        network and statistics did not change; cumulative); read by
        `keras_adaptive_loss.callbacks.LossDiagnostics`.
        """
        result = {}
        if self.decision_network.built:
            steps = float(self.state.weight_steps.numpy())
            sums = np.asarray(self.state.weight_sums.numpy(), dtype="float64")
            means = sums / steps if steps else np.full(len(self.candidates), np.nan)
            result = {
                f"slf_weight_{n}": float(m)
                for n, m in zip(self.candidate_names, means, strict=True)
            }
            result["slf_skipped_steps"] = float(self.state.skipped.numpy())
        result["slf_temperature"] = self.get_parameter("temperature")
        return result

    def diagnostic_sources(self) -> dict[str, Callable[[], Any]]:
        """The `diagnostics` as callables returning tensors, for reading inside a train step.

        Same keys as `diagnostics` (mean selection weights are NaN before the first step since
        the last reset); `keras_adaptive_loss.callbacks.LossDiagnostics` reports them as a
        metric of the train step, so they reach every logger whatever the callback order.
        """
        temperature = self.variable("temperature")

        def weight_of(index: int) -> Callable[[], Any]:
            def read() -> Any:
                if not self.decision_network.built:
                    return ops.convert_to_tensor(float("nan"))
                steps = ops.convert_to_tensor(self.state.weight_steps)
                mean = ops.convert_to_tensor(self.state.weight_sums)[index] / ops.maximum(steps, 1)
                return ops.where(steps > 0, mean, float("nan"))

            return read

        sources: dict[str, Callable[[], Any]] = {
            f"slf_weight_{name}": weight_of(i) for i, name in enumerate(self.candidate_names)
        }
        sources["slf_skipped_steps"] = lambda: (
            self.state.skipped if self.decision_network.built else ops.convert_to_tensor(0.0)
        )
        sources["slf_temperature"] = lambda: temperature
        return sources

    def collapsed_onto(self, threshold: float = COLLAPSE_THRESHOLD) -> str | None:
        """The candidate holding at least ``threshold`` of the mean selection weight since the
        last reset (the selection has collapsed: SLF trains with that loss alone), or ``None``.

        Always ``None`` with a single candidate or before any training step.
        """
        if len(self.candidates) < 2:
            return None
        weights = {k: v for k, v in self.diagnostics().items() if k.startswith("slf_weight_")}
        for key, weight in weights.items():
            if np.isfinite(weight) and weight >= threshold:
                return key[len("slf_weight_") :]
        return None

    def reset_diagnostics(self) -> None:
        """Restarts the selection-weight averages (called at the start of each epoch)."""
        if self.decision_network.built:
            self.state.assign(
                weight_sums=np.zeros(len(self.candidates), "float32"), weight_steps=0.0
            )

    # Serialization ----------------------------------------------------------------------------

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(
            candidates=[registry.serialize_candidate(c) for c in self.candidates],
            num_samples=self.num_samples,
            decision_network=self.decision_network.get_config()["network"],
            hard=self.hard,
            from_logits=self.from_logits,
            seed=self.seed,
            normalize=self.normalize,
            momentum=self.momentum,
            decision_learning_rate=self.decision_network.learning_rate,
            hidden_units=self.decision_network.hidden_units,
            num_classes=self.num_classes,
            entropy=self.entropy,
            decision_gradient=self.decision_gradient,
            task=self.task,
            ignore_class=self.ignore_class,
        )
        return config

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> StochasticLoss:
        return cls(**deserialize_nested(config, "decision_network"))


def _batch_shape(y_pred: Any) -> tuple:
    shape = ops.shape(y_pred)
    return tuple(shape[:-1])


def _unique_names(names: list[str]) -> list[str]:
    seen: dict[str, int] = {}
    unique = []
    for name in names:
        seen[name] = seen.get(name, 0) + 1
        unique.append(name if seen[name] == 1 else f"{name}_{seen[name]}")
    return unique
