"""`StochasticLoss`: the Stochastic Loss Function (SLF) of Liu & Lai (AAAI 2020)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import keras
import numpy as np
import tensorflow as tf
from keras import ops

from keras_adaptive_loss.losses import registry
from keras_adaptive_loss.losses.backward_updates import all_replicas_mean, update_on_backward
from keras_adaptive_loss.losses.base import AdaptiveLoss, deserialize_nested
from keras_adaptive_loss.losses.decision import DecisionNetwork
from keras_adaptive_loss.losses.gumbel import (
    gumbel_noise,
    gumbel_softmax_samples,
    mixture_objective_logit_gradient,
    replica_seed,
    straight_through,
)
from keras_adaptive_loss.losses.prediction_checks import check_predictions

__all__ = ["NORMALIZATIONS", "SelectionState", "StochasticLoss"]

NORMALIZATIONS = ("running_mean", "none")
_MIN_TEMPERATURE = 1e-6


@keras.saving.register_keras_serializable(package="keras_adaptive_loss")
class SelectionState(keras.layers.Layer):
    """Training statistics of a `StochasticLoss`, kept as (saved) non-trainable weights.

    ``running_means``: exponential moving average of each candidate's batch-mean value, with
    ``updates`` counting the averaged batches (for bias correction); ``weight_sums`` and
    ``weight_steps``: running sums of the batch-mean selection weights since the last
    `reset_diagnostics`; ``draws``: how many times Gumbel noise has been drawn.
    """

    def __init__(self, num_candidates: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.num_candidates = int(num_candidates)

    def build(self, input_shape: Any = None) -> None:
        def weight(name, shape=(), dtype="float32", aggregation="only_first_replica"):
            return self.add_weight(
                shape=shape, initializer="zeros", dtype=dtype, trainable=False,
                aggregation=aggregation, name=name,
            )  # fmt: skip

        n = (self.num_candidates,)
        self.running_means = weight("running_means", n)
        self.updates = weight("updates")
        self.weight_sums = weight("weight_sums", n)
        self.weight_steps = weight("weight_steps")
        self.draws = weight("draws", dtype="int64")
        self.skipped = weight("skipped")
        super().build(input_shape)

    def load_own_variables(self, store: Any) -> None:
        """Builds first when the weights are loaded before the first batch (see DecisionNetwork)."""
        if not self.built and store is not None and len(store.keys()) > 0:
            self.build()
        super().load_own_variables(store)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "num_candidates": self.num_candidates}


@keras.saving.register_keras_serializable(package="keras_adaptive_loss")
class StochasticLoss(AdaptiveLoss):
    """Selects and weights candidate losses per sample with a decision network (SLF).

    Implements "Stochastic Loss Function" (Liu & Lai, AAAI 2020). For each sample, a decision
    network ``h`` looks at the model's prediction and gives probabilities over the candidate
    losses, ``p = softmax(h(f(x); v))`` (Eq. 4); K Gumbel-softmax samples of ``log p`` at
    temperature tau (Eqs. 6, 9) are averaged into ``p_hat`` (Eq. 10), and the loss is
    ``sum_i p_hat_i * l_i`` (Eq. 11). The decision network is trained in the same backward pass
    as the model (Algorithm 1) — inside an ordinary ``model.compile(loss=...)`` / `fit`, with
    or without a `tf.distribute` strategy — and it is *not* updated by `evaluate`, `predict` or
    the validation pass of `fit` (see `keras_adaptive_loss.losses.backward_updates`).

    Choices where the paper is silent (measured on scikit-learn's digits and MNIST-1D; see
    ``benchmarks/slf_effectiveness.py`` and ``docs/results.md``):

    - The decision network sees the prediction with its gradient stopped: the model is trained
      by the selected losses, not by steering the selector.
    - ``normalize="running_mean"`` (default) divides each candidate by an exponential moving
      average of its own batch-mean value before mixing, for both the model and the decision
      network. With ``normalize="none"`` (the paper's literal objective) the decision network
      minimises the raw mixture and collapses onto whichever candidate is numerically smallest
      (on digits, nearly all weight went to it within a few epochs), which is not the most
      useful one.
    - The decision network's default is an MLP ``C -> 32 (ReLU) -> n`` trained by Adam at
      learning rate 1e-3.

    tau is an adaptive parameter (``"temperature"``): anneal it with
    `keras_adaptive_loss.callbacks.TemperatureSchedule`. Add
    `keras_adaptive_loss.callbacks.LossDiagnostics` to log each candidate's mean selection
    weight per epoch (``slf_weight_<name>``).

    Args:
        candidates: registry names (see `keras_adaptive_loss.losses.available`), Keras losses
            or per-sample callables; at least one.
        num_samples: K, the number of Gumbel-softmax samples per step (paper: 3 on MNIST).
        temperature: tau > 0.
        decision_network: a Keras layer mapping ``[batch, num_classes]`` probabilities to
            ``[batch, len(candidates)]`` logits; default: a small MLP.
        hard: straight-through one-hot samples instead of soft ones.
        from_logits: whether ``y_pred`` holds logits.
        seed: base seed of the Gumbel noise; the same seed draws the same noise again. ``None``
            draws a seed (recorded in the config).
        normalize: ``"running_mean"`` or ``"none"``, see above.
        momentum: momentum of the running means.
        decision_learning_rate: Adam learning rate of the decision network.
        hidden_units: width of the default decision MLP.
        num_classes: number of classes; known, it lets the decision network be built at once
            (it is otherwise built at the first call).
        name, reduction, dtype: as for any Keras loss.

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
        if not isinstance(num_samples, (int, np.integer)) or num_samples < 1:
            raise ValueError(f"num_samples (K) must be an integer >= 1; got {num_samples!r}.")
        if not np.isfinite(temperature) or temperature <= 0:
            raise ValueError(f"temperature (tau) must be > 0; got {temperature!r}.")
        if normalize not in NORMALIZATIONS:
            raise ValueError(f"normalize must be one of {NORMALIZATIONS}; got {normalize!r}.")
        if not 0.0 <= momentum < 1.0:
            raise ValueError(f"momentum must lie in [0, 1); got {momentum!r}.")
        self.candidates = [registry.get(c, from_logits=from_logits) for c in candidates]
        self.candidate_names = _unique_names([c.name for c in self.candidates])
        self.num_samples = int(num_samples)
        self.hard = bool(hard)
        self.from_logits = bool(from_logits)
        self.seed = int(np.random.randint(0, 2**31 - 1) if seed is None else seed)
        self.normalize = normalize
        self.momentum = float(momentum)
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

    # Building ---------------------------------------------------------------------------------

    def _build(self, num_classes: int) -> None:
        """Creates the decision network and statistics eagerly, in the current strategy."""
        with tf.init_scope(), tf.distribute.get_strategy().scope():
            self.decision_network.build((None, num_classes))
            self.state.build()
        self.num_classes = num_classes

    def _ensure_built(self, y_pred: Any) -> None:
        num_classes = y_pred.shape[-1]
        if num_classes is None:
            raise ValueError(
                f"StochasticLoss needs predictions with a known number of classes; got shape "
                f"{y_pred.shape}."
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

    def decision_logits(self, y_pred: Any) -> Any:
        """The decision network's logits over candidates, ``h(f(x); v)`` (Eq. 4)."""
        probabilities = ops.softmax(y_pred, axis=-1) if self.from_logits else y_pred
        return ops.cast(self.decision_network(ops.stop_gradient(probabilities)), "float32")

    def selection(
        self, y_true: Any, y_pred: Any, noise: Any, logits: Any | None = None
    ) -> dict[str, Any]:
        """The loss for given Gumbel ``noise`` (shape ``[K, ..., n]``), with its parts.

        Returns a dict with ``loss`` (per sample, Eq. 11), ``p_hat`` (Eq. 10), ``logits`` and
        ``log_p`` (Eq. 4), ``soft_samples`` (Eq. 6), ``values`` (the candidates, normalised if
        ``normalize="running_mean"``), ``objective`` (the decision network's objective,
        ``mean_b sum_i p_hat_bi v_bi``) and ``batch_means``. Used by ``call`` and, with fixed
        noise, by tests and analyses. ``logits`` may be passed in when already computed.
        """
        y_pred = ops.convert_to_tensor(y_pred)
        self._ensure_built(y_pred)
        raw = self.candidate_values(y_true, y_pred)
        batch_means = ops.stop_gradient(ops.mean(ops.reshape(raw, (-1, raw.shape[-1])), axis=0))
        scales = self._scales(batch_means)
        values = ops.stop_gradient(raw / scales)
        if logits is None:
            logits = self.decision_logits(y_pred)
        log_p = ops.log_softmax(logits, axis=-1)
        temperature = self.variable("temperature")
        soft_samples = gumbel_softmax_samples(log_p, noise, temperature)
        p_hat = ops.mean(straight_through(soft_samples) if self.hard else soft_samples, axis=0)
        # d loss / d y_pred only flows through the candidates; weights and scales are constants.
        loss = ops.sum(ops.stop_gradient(p_hat / scales) * raw, axis=-1)
        return {
            "loss": loss,
            "p_hat": p_hat,
            "logits": logits,
            "log_p": log_p,
            "soft_samples": soft_samples,
            "values": values,
            "objective": ops.mean(ops.sum(p_hat * values, axis=-1)),
            "batch_means": batch_means,
        }

    def _scales(self, batch_means: Any) -> Any:
        if self.normalize == "none":
            return ops.ones_like(batch_means)
        updates = self.state.updates.value
        corrected = self.state.running_means.value / ops.maximum(
            1.0 - ops.power(self.momentum, updates), 1e-12
        )
        running = ops.where(updates > 0, corrected, ops.stop_gradient(batch_means))
        return ops.maximum(running, keras.config.epsilon())

    def call(self, y_true: Any, y_pred: Any) -> Any:
        check_predictions(y_pred, self.from_logits, type(self).__name__)
        y_pred = ops.convert_to_tensor(y_pred)
        self._ensure_built(y_pred)
        noise = self._draw_noise((self.num_samples, *_batch_shape(y_pred), len(self.candidates)))
        if tf.distribute.has_strategy() and tf.distribute.in_cross_replica_context():
            # Keras's symbolic build under a strategy: no training step, nothing to learn.
            return self.selection(y_true, y_pred, noise)["loss"]
        with tf.GradientTape() as tape:
            logits = self.decision_logits(y_pred)
        parts = self.selection(y_true, y_pred, noise, logits=logits)
        logit_gradient = mixture_objective_logit_gradient(
            logits, parts["soft_samples"], parts["values"], self.variable("temperature")
        )
        gradients = tape.gradient(
            logits, self.decision_network.network.trainable_variables, logit_gradient
        )
        batch_weights = ops.mean(
            ops.reshape(ops.stop_gradient(parts["p_hat"]), (-1, len(self.candidates))), axis=0
        )
        # An empty batch (a replica's share of a short last batch) or non-finite predictions
        # make the batch means or gradients NaN: such a replica contributes nothing, and a step
        # where no replica has a finite batch is skipped (counted in `state.skipped`).
        learned = [parts["batch_means"], batch_weights, *gradients]
        finite = ops.all(ops.stack([ops.all(ops.isfinite(v)) for v in learned]))
        masked = [ops.where(finite, v, ops.zeros_like(v)) for v in learned]

        def train_step():
            return all_replicas_mean(self._learn_if_finite, [ops.cast(finite, "float32"), *masked])

        return update_on_backward(parts["loss"], train_step)

    def _draw_noise(self, shape: Sequence[Any]) -> Any:
        draws = self.state.draws
        seed = replica_seed(self.seed, draws.value)
        draws.assign_add(ops.cast(1, "int64"))
        return gumbel_noise(shape, seed)

    def _learn_if_finite(self, share: Any, batch_means: Any, batch_weights: Any, *gradients):
        """One decision-network step and statistics update from the finite replicas' means.

        ``share`` is the fraction of replicas whose batch was finite; the other arguments are
        replica means with the non-finite replicas' values zeroed, so dividing by ``share``
        gives the mean over the finite replicas. Runs once, in cross-replica context.
        """

        def learn():
            scale = 1.0 / share
            updates = self.decision_network.adam_step(*[g * scale for g in gradients])
            updates += self._update_statistics(batch_means * scale, batch_weights * scale)
            with tf.control_dependencies(updates):
                return tf.constant(True)

        def skip():
            with tf.control_dependencies([self.state.skipped.assign_add(1.0)]):
                return tf.constant(False)

        return tf.cond(share > 0.0, learn, skip)

    def _update_statistics(self, batch_means: Any, batch_weights: Any) -> list:
        state = self.state
        new_means = self.momentum * state.running_means.value + (1.0 - self.momentum) * batch_means
        return [
            state.running_means.assign(new_means),
            state.updates.assign_add(1.0),
            state.weight_sums.assign_add(ops.stop_gradient(batch_weights)),
            state.weight_steps.assign_add(1.0),
        ]

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

    def reset_diagnostics(self) -> None:
        """Restarts the selection-weight averages (called at the start of each epoch)."""
        if self.decision_network.built:
            self.state.weight_sums.assign(np.zeros(len(self.candidates), "float32"))
            self.state.weight_steps.assign(0.0)

    # Serialization ----------------------------------------------------------------------------

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(
            candidates=[registry.serialize(c) for c in self.candidates],
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
