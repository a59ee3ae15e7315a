"""`StochasticLoss`: the Stochastic Loss Function (SLF) of Liu & Lai (AAAI 2020)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import keras
import numpy as np
import tensorflow as tf
from keras import ops

from keras_adaptive_loss.losses import registry
from keras_adaptive_loss.losses.backward_updates import all_replicas_mean, update_on_backward
from keras_adaptive_loss.losses.base import AdaptiveLoss, deserialize_nested
from keras_adaptive_loss.losses.prediction_checks import check_predictions
from keras_adaptive_loss.private_api import keras_mask
from keras_adaptive_loss.slf.decision import DecisionNetwork
from keras_adaptive_loss.slf.gumbel import (
    entropy_bonus_logit_gradient,
    gumbel_noise,
    gumbel_softmax_samples,
    mixture_objective_logit_gradient,
    replica_seed,
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

NORMALIZATIONS = ("running_mean", "none")
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
#: The statistics of a `SelectionState`, in the order they are packed into its ``statistics``
#: weight, each with whether it holds one value per candidate (else one number).
STATISTICS = (
    ("running_means", True),
    ("weight_sums", True),
    ("prior", True),
    ("alignments", True),
    ("updates", False),
    ("weight_steps", False),
    ("skipped", False),
    ("alignment_updates", False),
)
#: The weights of a `SelectionState` saved before the statistics were packed into one weight,
#: in their order in the file; files saved before the validation-driven prior hold the first six.
_SEPARATE_LAYOUT = (
    "running_means", "updates", "weight_sums", "weight_steps", "draws", "skipped",
    "prior", "alignments", "alignment_updates",
)  # fmt: skip
_SEPARATE_BEFORE_PRIOR = 6


@keras.saving.register_keras_serializable(package="keras_adaptive_loss")
class SelectionState(keras.layers.Layer):
    """Training statistics of a `StochasticLoss`, kept as (saved) non-trainable weights.

    ``running_means``: exponential moving average of each candidate's batch-mean value, with
    ``updates`` counting the averaged batches (for bias correction; it is also the decision
    network's Adam step count); ``weight_sums`` and ``weight_steps``: running sums of the
    batch-mean selection weights since the last `reset_diagnostics`; ``skipped``: steps
    skipped for an empty or non-finite batch. Set by
    `keras_adaptive_loss.callbacks.ValidationSelection` (zero without it): ``prior``, a
    per-candidate bias added to the decision network's logits, and ``alignments`` /
    ``alignment_updates``, the moving average it is computed from. ``draws`` (its own int64
    weight) counts the Gumbel noise draws.

    The eight statistics are packed into one float32 weight, ``statistics`` (layout:
    `STATISTICS`): a training step reads it once and writes it once. Each variable a step
    touches cost ~11 us with XLA and ~4 us without on the overhead benchmark's 2-core machine,
    and the statistics were 7 of the 21 that `StochasticLoss` touched. Read them by name (the
    properties, e.g. ``state.prior``, or `parts` inside a traced step) and write them with
    `assign`. Files saved with one weight per statistic load too.

    >>> state = SelectionState(2)
    >>> state.build()
    >>> _ = state.assign(prior=[1.0, -1.0], updates=3.0)
    >>> state.prior.numpy().tolist(), float(state.updates)
    ([1.0, -1.0], 3.0)
    """

    def __init__(self, num_candidates: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.num_candidates = int(num_candidates)
        self._sizes = [
            self.num_candidates if per_candidate else 1 for _, per_candidate in STATISTICS
        ]

    def build(self, input_shape: Any = None) -> None:
        def weight(name, shape, dtype):
            return self.add_weight(
                shape=shape, initializer="zeros", dtype=dtype, trainable=False,
                aggregation="only_first_replica", name=name,
            )  # fmt: skip

        self.statistics = weight("statistics", (sum(self._sizes),), "float32")
        self.draws = weight("draws", (), "int64")
        super().build(input_shape)

    def parts(self, value: Any = None) -> dict[str, Any]:
        """Each statistic as a tensor, from one read of ``statistics`` (or from ``value``).

        The counts keep shape ``[1]`` here (one split, no reshapes, in the training step);
        the properties return them as scalars.
        """
        value = self.statistics.value if value is None else value
        pieces = tf.split(value, self._sizes)
        return {name: piece for (name, _), piece in zip(STATISTICS, pieces, strict=True)}

    def offset(self, name: str) -> int:
        """Where statistic ``name`` starts in ``statistics``."""
        names = [n for n, _ in STATISTICS]
        return sum(self._sizes[: names.index(name)])

    def constant(self, default: float = 0.0, **values: Any) -> np.ndarray:
        """A float32 vector in the ``statistics`` layout: ``default`` except the given fields."""
        pieces = [
            np.broadcast_to(np.asarray(values.get(name, default), "float32"), (size,))
            for (name, _), size in zip(STATISTICS, self._sizes, strict=True)
        ]
        return np.concatenate(pieces).astype("float32")

    def assign(self, **values: Any) -> Any:
        """Writes the given statistics (by name) in one assignment; returns the assign op."""
        unknown = set(values) - {name for name, _ in STATISTICS}
        if unknown:
            raise ValueError(
                f"Unknown statistics {sorted(unknown)}; known: {[n for n, _ in STATISTICS]}."
            )
        current = self.parts()
        pieces = [
            ops.reshape(ops.cast(values[name], "float32"), (size,))
            if name in values
            else current[name]
            for (name, _), size in zip(STATISTICS, self._sizes, strict=True)
        ]
        return self.statistics.assign(ops.concatenate(pieces))

    def _read(self, name: str) -> Any:
        piece = self.parts()[name]
        return piece if dict(STATISTICS)[name] else ops.reshape(piece, ())

    running_means = property(lambda self: self._read("running_means"))
    weight_sums = property(lambda self: self._read("weight_sums"))
    prior = property(lambda self: self._read("prior"))
    alignments = property(lambda self: self._read("alignments"))
    updates = property(lambda self: self._read("updates"))
    weight_steps = property(lambda self: self._read("weight_steps"))
    skipped = property(lambda self: self._read("skipped"))
    alignment_updates = property(lambda self: self._read("alignment_updates"))

    def load_own_variables(self, store: Any) -> None:
        """Builds first when the weights are loaded before the first batch (see DecisionNetwork).

        Files saved with one weight per statistic (nine, or six before the validation-driven
        prior existed, when the prior and its statistics stay zero) are packed on loading.
        """
        if not self.built and store is not None and len(store.keys()) > 0:
            self.build()
        if store is not None and len(store.keys()) in (
            len(_SEPARATE_LAYOUT),
            _SEPARATE_BEFORE_PRIOR,
        ):
            keys = set(store.keys())
            saved = {n: store[f"{i}"] for i, n in enumerate(_SEPARATE_LAYOUT) if f"{i}" in keys}
            self.draws.assign(np.asarray(saved.pop("draws"), "int64"))
            self.statistics.assign(self.constant(**saved))
            return
        super().load_own_variables(store)

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
    the validation pass of `fit` (see `keras_adaptive_loss.losses.backward_updates`).

    Three ways to run it:

    - **The default** differs from the paper in four ways, each chosen by a paired study
      against cross-entropy (documentation, "Measured results", StochasticLoss): (1) each
      candidate is divided by an exponential moving average of its own batch mean
      (``normalize="running_mean"``), so that no candidate wins by its scale; (2) the decision
      network sees the prediction with its gradient stopped, so the model is trained by the
      selected losses, not by steering the selector; (3) it starts uniform (its output layer
      is zero-initialised); (4) an entropy bonus, ``entropy=1.0``, keeps the selection spread.
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
        normalize: ``"running_mean"`` or ``"none"`` (the paper's raw mixture), see above.
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
        normalize: str = "running_mean",
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
        with tf.init_scope(), tf.distribute.get_strategy().scope():
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
        ``log_p`` (Eq. 4), ``soft_samples`` (Eq. 6), ``values`` (the candidates, normalised if
        ``normalize="running_mean"``), ``objective`` (the decision network's objective,
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
            scaled = raw / ops.stop_gradient(self._scales(batch_means, statistics))
        values = ops.stop_gradient(scaled)
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
            # through the Gumbel-softmax chain put ~25 small ops on the model's backward path
            # (paper mode measured 1.118x cross-entropy per step without XLA).
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
        """The running-mean scale of each candidate (``normalize="running_mean"``)."""
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
        if tf.distribute.has_strategy() and tf.distribute.in_cross_replica_context():
            # Keras's symbolic build under a strategy: no training step, nothing to learn.
            return self.selection(y_true, y_pred, noise)["loss"]
        statistics = self.state.parts()  # one read of the packed statistics per step
        with tf.GradientTape() as tape:
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
            batch_statistics, gradient = tf.split(learned / share, [2 * n, -1])
            statistics = state.statistics.value
            step = statistics[state.offset("updates")] + 1.0  # `updates` counts the Adam steps
            updates = self.decision_network.adam_step(gradient, step)
            updates.append(
                state.statistics.assign(self._updated_statistics(statistics, batch_statistics))
            )
            with tf.control_dependencies(updates):
                return tf.constant(True)

        def skip():
            with tf.control_dependencies(
                [state.statistics.assign_add(state.constant(skipped=1.0))]
            ):
                return tf.constant(False)

        return tf.cond(share > 0.0, learn, skip)

    def _updated_statistics(self, statistics: Any, batch_statistics: Any) -> Any:
        """The statistics after one step: the running means move towards the batch means,
        the selection weights are summed, and ``updates`` / ``weight_steps`` count the step.

        One multiply-add over the packed vector: ``statistics * decay + step``. The batch
        statistics fill its first ``2n`` entries: `STATISTICS` starts with ``running_means``
        and ``weight_sums`` (a test checks the values after two steps).
        """
        state, n = self.state, len(self.candidates)
        decay = state.constant(1.0, running_means=self.momentum)
        scale = np.concatenate([np.full(n, 1.0 - self.momentum), np.ones(n)]).astype("float32")
        rest = state.constant(updates=1.0, weight_steps=1.0)[2 * n :]
        return statistics * decay + ops.concatenate([batch_statistics * scale, rest])

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
