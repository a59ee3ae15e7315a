"""Learned loss weighting by homoscedastic uncertainty (Kendall, Gal & Cipolla, CVPR 2018).

"Multi-Task Learning Using Uncertainty to Weigh Losses for Scene Geometry and Semantics":
with ``s_i = log sigma_i^2`` the log-variance of task ``i``, the multi-task loss is
``sum_i exp(-s_i) L_i + s_i`` (Eq. 10 in the ``s = log sigma^2`` form the authors train with,
dropping the constant factors 1/2 of the regression case). A task whose loss stays high
(noisy labels) gets a large ``s_i`` and so a small weight ``exp(-s_i)``; the ``+ s_i`` term
keeps every weight from collapsing to 0. The objective is a sum of one term per task, so one
`UncertaintyWeightedLoss` per output, in ``compile(loss=[...])``, is exactly this objective.

``s_i`` is learned in the same backward pass as the model, as `StochasticLoss`'s decision
network is (`keras_adaptive_loss._tensorflow`): Keras does not train variables a
loss owns, so the loss takes an Adam step on ``s_i`` when `fit` back-propagates through it
(never in `evaluate` or validation), averaged over replicas under a `tf.distribute` strategy.
"""

from __future__ import annotations

from typing import Any

import keras
from keras import ops

from keras_adaptive_loss._tensorflow import (
    all_replicas_mean,
    in_cross_replica_build,
    update_on_backward,
)
from keras_adaptive_loss.losses import registry
from keras_adaptive_loss.losses.base import AdaptiveLoss

__all__ = ["UncertaintyWeightedLoss"]

_BETA_1, _BETA_2, _EPSILON = 0.9, 0.999, 1e-7


@keras.saving.register_keras_serializable(package="keras_adaptive_loss")
class UncertaintyWeightedLoss(AdaptiveLoss):
    """``exp(-s) * L + s`` with the log-variance ``s`` learned during `fit` (Kendall et al.).

    Use one per output of a multi-output model; together they minimise
    ``sum_i exp(-s_i) L_i + s_i``, so the outputs' weights ``exp(-s_i)`` are learned instead of
    hand-tuned ``loss_weights``. ``s`` is the adaptive parameter ``log_variance``; it is saved
    with the model and written into the logs by
    `keras_adaptive_loss.callbacks.LossParameterLogger` (``<name>_log_variance``).

    Args:
        loss: the output's loss: a registry name (``"crossentropy"``, ``"mse"``, ...) or a Keras
            loss object (its unreduced values are used).
        log_variance: the initial ``s`` (0: weight 1).
        learning_rate: Adam's learning rate for ``s``.
        from_logits: for registry names: whether ``y_pred`` holds logits.
        name: as for any Keras loss.
        reduction: as for any Keras loss.
        dtype: as for any Keras loss.

    >>> import numpy as np
    >>> loss = UncertaintyWeightedLoss("crossentropy", log_variance=np.log(2.0))
    >>> ce = -np.log(0.5)
    >>> bool(np.isclose(float(loss(np.array([0]), np.array([[0.5, 0.5]]))), ce / 2 + np.log(2)))
    True

    ```python
    model.compile(
        optimizer="adam",
        loss=[kal.losses.UncertaintyWeightedLoss("crossentropy", name="digit"),
              kal.losses.UncertaintyWeightedLoss(keras.losses.MeanSquaredError(), name="angle")],
    )
    model.fit(x, [y_digit, y_angle], callbacks=[kal.callbacks.LossParameterLogger()])
    ```

    References:
        Kendall, Gal & Cipolla, "Multi-Task Learning Using Uncertainty to Weigh Losses for
        Scene Geometry and Semantics", CVPR 2018.
    """

    def __init__(
        self,
        loss: Any = "crossentropy",
        log_variance: float = 0.0,
        learning_rate: float = 0.01,
        from_logits: bool = False,
        name: str = "uncertainty_weighted_loss",
        reduction: str | None = "sum_over_batch_size",
        dtype: Any = None,
    ) -> None:
        super().__init__(name=name, reduction=reduction, dtype=dtype)
        if not learning_rate > 0:
            raise ValueError(f"learning_rate must be > 0; got {learning_rate!r}.")
        if isinstance(loss, dict):
            loss = keras.saving.deserialize_keras_object(loss)
        self.base = registry.get_candidate(loss, from_logits=from_logits)
        self.from_logits = bool(from_logits)
        self.learning_rate = float(learning_rate)
        self.add_parameter("log_variance", float(log_variance), minimum=-20.0, maximum=20.0)
        store = self.parameter_store
        self._moments = (store.add("adam_m", 0.0), store.add("adam_v", 0.0))
        self._steps = store.add("adam_steps", 0.0)

    def call(self, y_true: Any, y_pred: Any) -> Any:
        values = ops.cast(self.base(y_true, y_pred), "float32")
        s = self.variable("log_variance")
        weighted = ops.exp(-s) * values + s
        if in_cross_replica_build():
            return weighted  # Keras's symbolic build under a strategy: no training step
        # d/ds of the batch mean of exp(-s) L + s; an empty or non-finite batch gives NaN and
        # is left out (a replica's share of a short last batch can be empty).
        gradient = 1.0 - ops.exp(-s) * ops.mean(ops.stop_gradient(values))
        finite = ops.cast(ops.isfinite(gradient), "float32")
        gradient = ops.where(finite > 0, gradient, 0.0)

        def learn():
            return all_replicas_mean(self._adam_step, [finite, gradient])

        return update_on_backward(weighted, learn)

    def _adam_step(self, share: Any, gradient: Any) -> Any:
        def step():
            g = gradient / share
            m, v = self._moments
            t = self._steps.value + 1.0
            new_m = _BETA_1 * m.value + (1.0 - _BETA_1) * g
            new_v = _BETA_2 * v.value + (1.0 - _BETA_2) * g * g
            m_hat = new_m / (1.0 - ops.power(_BETA_1, t))
            v_hat = new_v / (1.0 - ops.power(_BETA_2, t))
            s = self.variable("log_variance")
            new_s = ops.clip(s.value - self.learning_rate * m_hat / (ops.sqrt(v_hat) + _EPSILON),
                             -20.0, 20.0)  # fmt: skip
            m.assign(new_m)
            v.assign(new_v)
            self._steps.assign(t)
            s.assign(new_s)
            return ops.convert_to_tensor(True)

        return ops.cond(share > 0.0, step, lambda: ops.convert_to_tensor(False))

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(
            loss=registry.serialize_candidate(self.base),
            learning_rate=self.learning_rate,
            from_logits=self.from_logits,
        )
        return config
