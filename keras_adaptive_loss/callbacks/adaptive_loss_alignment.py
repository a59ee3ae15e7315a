"""`AdaptiveLossAlignment`: the ALA reinforcement-learning controller as a Keras callback."""

from __future__ import annotations

import contextlib
import math
import warnings
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from keras_adaptive_loss.callbacks.alignment_state import AlignmentState
from keras_adaptive_loss.callbacks.loss_lookup import find_compiled_loss
from keras_adaptive_loss.controllers import generator_state
from keras_adaptive_loss.controllers import metrics as alignment_metrics
from keras_adaptive_loss.controllers.adapters import DistanceAdapter, adapter_for
from keras_adaptive_loss.controllers.controller import AlignmentController
from keras_adaptive_loss.controllers.policy import Policy
from keras_adaptive_loss.controllers.reward import discounted_metric, sign_reward
from keras_adaptive_loss.controllers.state import StateFeatures
from keras_adaptive_loss.distribute import broadcast_from_chief
from keras_adaptive_loss.losses.alignment import (
    ClassCorrelationLoss,
    DistanceMixtureLoss,
    FocalWeightingLoss,
)

__all__ = ["AdaptiveLossAlignment"]

_ALA_LOSSES = (ClassCorrelationLoss, DistanceMixtureLoss, FocalWeightingLoss)


class AdaptiveLossAlignment(keras.callbacks.Callback):
    """Adapts the parameters of an ALA loss during `fit` with a REINFORCE policy (Huang et al.).

    Implements Sec. 3 and Algorithm 1 of "Addressing the Loss-Metric Mismatch with Adaptive
    Loss Alignment" (ICML 2019). Every ``period`` training steps (K), for each loss parameter:
    its state (validation statistics over the last ``history`` decisions, their relative change
    from a moving average, its value, the training progress) goes through a policy MLP shared by
    all parameters, whose three outputs choose ``-step_size``, 0 or ``+step_size``. The reward of
    a decision is the sign of the change of the discounted validation metric (Eqs. 4-5) over the
    following period; the policy learns online with REINFORCE, an exponential-moving-average
    baseline and a replay memory (Eq. 3).

    The compiled loss must be a `kal.losses.ClassCorrelationLoss` (one parameter per class pair,
    statistics ``[C_ij, C_ji]`` of Eq. 7, symmetric updates, Φ in [-1, 1]),
    `kal.losses.DistanceMixtureLoss` or `kal.losses.FocalWeightingLoss`.

    Validation predictions come from the callback's own compiled pass over ``validation_data``
    (``model(x, training=False)`` in a ``tf.function``), never `model.evaluate`, which would reset
    the training metrics. Eq. 4 discounts the metric over the period's iterations; measuring it
    at every iteration would cost a validation pass per step, so it is measured
    ``evaluations_per_period`` times per period, evenly spaced, and discounted over those.

    Several models can share one controller (the paper's default trains 10 child models): give
    their callbacks the same ``controller=kal.controllers.AlignmentController(...)``. A trained
    policy is saved with ``callback.controller.policy.save(directory)`` (JSON + weights) and
    reused, e.g. on a task with another number of classes, with
    ``policy=kal.controllers.Policy.load(directory), learn=False``.

    Args:
        validation_data: ``(x_val, y_val)`` arrays.
        period: K, training steps between decisions.
        step_size: beta, the size of a parameter move.
        discount: gamma of Eq. 4.
        metric: ``"error"`` (classification error, or nearest-neighbour error for embedding
            losses), ``"auc_pr"``, a `keras.metrics.Metric` or a callable ``(y_true, y_pred)``.
        history: decisions of statistics kept in the state.
        policy: a `kal.controllers.Policy` to start from.
        learn: update the policy (``False``: apply it only).
        seed: seed of the policy and of the sampling.
        controller: a shared `kal.controllers.AlignmentController` (overrides policy/learn/seed).
        evaluations_per_period: validation measurements per period for Eq. 4.
        higher_is_better: direction of a custom metric (required for Keras metrics/callables).
        validation_batch_size: batch size of the validation pass.
        loss_name: which compiled loss, when several are ALA losses.
        verbose: 1 prints each decision's reward.

    Example:

    ```python
    model.compile(optimizer="adam", loss=kal.losses.ClassCorrelationLoss(num_classes=10))
    model.fit(x, y, epochs=20,
              callbacks=[kal.callbacks.AdaptiveLossAlignment(validation_data=(xv, yv), period=200)])
    ```
    """

    def __init__(
        self,
        validation_data: tuple[Any, Any] | None = None,
        period: int = 200,
        step_size: float = 0.1,
        discount: float = 0.9,
        metric: Any = "error",
        history: int = 10,
        policy: Policy | None = None,
        learn: bool = True,
        seed: int | None = None,
        controller: AlignmentController | None = None,
        evaluations_per_period: int = 4,
        higher_is_better: bool | None = None,
        validation_batch_size: int = 1024,
        loss_name: str | None = None,
        verbose: int = 0,
    ) -> None:
        super().__init__()
        if (
            not isinstance(validation_data, (tuple, list))
            or len(validation_data) != 2
            or len(validation_data[0]) == 0
        ):
            raise ValueError(
                "AdaptiveLossAlignment needs validation_data=(x_val, y_val) with at least one "
                "sample: the controller is rewarded by the validation metric."
            )
        if not isinstance(period, (int, np.integer)) or period < 1:
            raise ValueError(f"period must be an integer >= 1 (training steps); got {period!r}.")
        if not math.isfinite(step_size) or step_size <= 0:
            raise ValueError(f"step_size must be > 0; got {step_size!r}.")
        if not 0.0 < discount <= 1.0:
            raise ValueError(f"discount must lie in (0, 1]; got {discount!r}.")
        if not 1 <= evaluations_per_period <= period:
            raise ValueError(
                f"evaluations_per_period must lie in [1, period]; got {evaluations_per_period!r}."
            )
        self.x_val = np.asarray(validation_data[0])
        self.y_val = np.asarray(validation_data[1])
        self.period = int(period)
        self.step_size = float(step_size)
        self.discount = float(discount)
        self.metric = metric
        self.history = int(history)
        self.policy = policy
        self.learn = bool(learn)
        self.seed = seed
        self.controller = controller
        self.evaluations_per_period = int(evaluations_per_period)
        self.higher_is_better = higher_is_better
        self.validation_batch_size = int(validation_batch_size)
        self.loss_name = loss_name
        self.verbose = verbose
        if not isinstance(metric, str) or metric not in ("error", "auc_pr"):
            alignment_metrics.resolve(metric, higher_is_better, embeddings=False)  # early check

    # Set-up -------------------------------------------------------------------------------

    def set_model(self, model: keras.Model) -> None:
        super().set_model(model)
        # Set up as early as possible: the checkpointable state layer must exist before
        # BackupAndRestore loads weights in its on_train_begin.
        if getattr(model, "loss", None) is not None:
            with contextlib.suppress(ValueError):  # on_train_begin reports it, inside fit
                self._setup()

    def on_train_begin(self, logs: dict | None = None) -> None:
        self._setup()
        steps = self.params.get("steps")
        epochs = self.params.get("epochs")
        self._total_steps = steps * epochs if steps and epochs else None
        self._restore_pending = True

    def _setup(self) -> None:
        if getattr(self, "_set_up_for", None) is self.model:
            return
        loss = find_compiled_loss(
            self.model,
            lambda candidate: isinstance(candidate, _ALA_LOSSES),
            caller="AdaptiveLossAlignment",
            wanted="kal.losses.ClassCorrelationLoss, DistanceMixtureLoss or FocalWeightingLoss",
            loss_name=self.loss_name,
        )
        self.adapter = adapter_for(loss)
        self.features = StateFeatures(self.adapter.num_statistics, self.history)
        if self.controller is None:
            self.controller = AlignmentController(
                self.features.feature_size, policy=self.policy, learn=self.learn, seed=self.seed
            )
        elif self.controller.feature_size != self.features.feature_size:
            raise ValueError(
                f"The shared controller expects states of size {self.controller.feature_size}; "
                f"this loss gives {self.features.feature_size}."
            )
        self._metric, self._higher_is_better = alignment_metrics.resolve(
            self.metric,
            self.higher_is_better,
            embeddings=isinstance(self.adapter, DistanceAdapter),
        )
        self._predict = tf.function(lambda x: self.model(x, training=False), reduce_retracing=True)
        self._period_metrics: list[float] = []
        self._previous: float | None = None
        self._pending: tuple[np.ndarray, np.ndarray] | None = None
        self._epoch_rewards: list[float] = []
        self._total_steps: int | None = None
        self._restore_pending = False
        self.rewards: list[float] = []
        self.decisions = 0
        policy = self.controller.policy
        loss.alignment_state = AlignmentState(
            policy.network, policy.optimizer, self._state_shapes(), name="alignment_state"
        )
        self._state = loss.alignment_state
        self._set_up_for = self.model

    def _state_shapes(self) -> dict[str, tuple[tuple[int, ...], str]]:
        parameters = len(self.adapter.values())
        statistics = self.adapter.num_statistics
        size = self.features.feature_size
        capacity = self.controller.memory.capacity
        return {
            "decisions": ((), "int64"),
            "memory_states": ((capacity, size), "float32"),
            "memory_actions": ((capacity,), "int64"),
            "memory_advantages": ((capacity,), "float32"),
            "memory_counters": ((2,), "int64"),
            "baseline": ((), "float64"),
            "past": ((self.history, parameters, statistics), "float64"),
            "past_count": ((), "int64"),
            "average": ((parameters, statistics), "float64"),
            "relative": ((parameters, statistics), "float64"),
            "has_average": ((), "int64"),
            "pending_states": ((parameters, size), "float32"),
            "pending_actions": ((parameters,), "int64"),
            "has_pending": ((), "int64"),
            "previous": ((), "float64"),
            "has_previous": ((), "int64"),
            "period_metrics": ((self.evaluations_per_period + 1,), "float64"),
            "period_count": ((), "int64"),
            "policy_rng": ((generator_state.SIZE,), "int64"),
            "memory_rng": ((generator_state.SIZE,), "int64"),
        }

    def _write_state(self) -> None:
        memory = self.controller.memory
        features = self.features.get_state()
        past = np.zeros(self._state.arrays["past"].shape)
        for i, step in enumerate(features["past"]):
            past[i] = step
        pending_states, pending_actions = self._pending or (
            np.zeros(self._state.arrays["pending_states"].shape),
            np.zeros(self._state.arrays["pending_actions"].shape),
        )
        period = np.zeros(self._state.arrays["period_metrics"].shape)
        period[: len(self._period_metrics)] = self._period_metrics
        self._state.write(
            {
                "decisions": self.decisions,
                "memory_states": memory.states,
                "memory_actions": memory.actions,
                "memory_advantages": memory.advantages,
                "memory_counters": [memory.size, memory.position],
                "baseline": self.controller.baseline.value,
                "past": past,
                "past_count": len(features["past"]),
                "average": features["average"] or np.zeros(past.shape[1:]),
                "relative": features["relative"] or np.zeros(past.shape[1:]),
                "has_average": features["average"] is not None,
                "pending_states": pending_states,
                "pending_actions": pending_actions,
                "has_pending": self._pending is not None,
                "previous": self._previous or 0.0,
                "has_previous": self._previous is not None,
                "period_metrics": period,
                "period_count": len(self._period_metrics),
                "policy_rng": generator_state.encode(self.controller.policy.rng),
                "memory_rng": generator_state.encode(memory.rng),
            }
        )

    def _restore_state(self) -> None:
        """Continues a run restored from a checkpoint (e.g. by BackupAndRestore)."""
        state = self._state.read()
        if int(state["decisions"]) <= self.decisions:
            return  # nothing newer than what this callback holds
        memory = self.controller.memory
        size, position = (int(v) for v in state["memory_counters"])
        memory.set_state(
            {
                "states": state["memory_states"][:size],
                "actions": state["memory_actions"][:size],
                "advantages": state["memory_advantages"][:size],
                "position": position,
                "rng": memory.get_state()["rng"],
            }
        )
        self.controller.baseline.value = float(state["baseline"])
        self.features.set_state(
            {
                "past": [step for step in state["past"][: int(state["past_count"])]],
                "average": state["average"] if state["has_average"] else None,
                "relative": state["relative"],
            }
        )
        self._pending = (
            (state["pending_states"], state["pending_actions"]) if state["has_pending"] else None
        )
        self._previous = float(state["previous"]) if state["has_previous"] else None
        self._period_metrics = list(state["period_metrics"][: int(state["period_count"])])
        self.decisions = int(state["decisions"])
        generator_state.decode(state["policy_rng"], self.controller.policy.rng)
        generator_state.decode(state["memory_rng"], memory.rng)

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        if self._restore_pending:  # after every callback's on_train_begin (BackupAndRestore's)
            self._restore_state()
            self._restore_pending = False
        self._epoch_start = int(self.model.optimizer.iterations.numpy())
        self._epoch_rewards = []

    # The control loop ---------------------------------------------------------------------

    def on_train_batch_begin(self, batch: int, logs: dict | None = None) -> None:
        step = self._epoch_start + batch
        interval = max(self.period // self.evaluations_per_period, 1)
        if step % interval and step % self.period:
            return
        predictions = self._validation_predictions()
        value = self._metric(self.y_val, predictions)
        if not math.isfinite(value):
            warnings.warn(
                f"AdaptiveLossAlignment: the validation metric is {value} at step {step}; the "
                "measurement is skipped.",
                stacklevel=2,
            )
        else:
            self._period_metrics.append(value)
        if step % self.period == 0 and self._period_metrics:
            self._decide(step, predictions)
        # Every measurement goes into the checkpointed state, so a backup taken at any point
        # (e.g. BackupAndRestore at the end of an epoch) resumes the period exactly.
        self._write_state()

    def _validation_predictions(self) -> np.ndarray:
        size = self.validation_batch_size
        parts = [
            keras.ops.convert_to_numpy(self._predict(self.x_val[i : i + size]))
            for i in range(0, len(self.x_val), size)
        ]
        return np.concatenate(parts, axis=0)

    def _decide(self, step: int, predictions: np.ndarray) -> None:
        current = discounted_metric(self._period_metrics, self.discount)
        self._period_metrics = []
        if self._pending is not None and self._previous is not None:
            reward = sign_reward(self._previous, current, self._higher_is_better)
            self.controller.record(*self._pending, reward)
            self.rewards.append(reward)
            self._epoch_rewards.append(reward)
            if self.verbose:
                print(f"Step {step}: AdaptiveLossAlignment reward {reward:+.0f}")
        self._previous = current
        statistics = self.adapter.statistics(self.y_val, predictions)
        if not np.isfinite(statistics).all():
            warnings.warn(
                f"AdaptiveLossAlignment: non-finite validation statistics at step {step}; no "
                "decision this period.",
                stacklevel=2,
            )
            self._pending = None
            return
        self.features.observe(statistics)
        progress = step / self._total_steps if self._total_steps else 0.0
        states = self.features.features(self.adapter.values(), progress)
        # Under MultiWorkerMirroredStrategy every worker runs this controller; the chief's
        # actions are applied everywhere, so the workers' parameters can never diverge.
        actions = broadcast_from_chief(self.controller.act(states), self.model.distribute_strategy)
        self.adapter.apply(self.controller.moves(actions, self.step_size))
        self._pending = (states, actions)
        self.decisions += 1

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        if logs is None:
            return
        logs["ala_decisions"] = float(self.decisions)
        logs["ala_reward"] = float(np.mean(self._epoch_rewards)) if self._epoch_rewards else 0.0
        logs["ala_parameter_mean"] = float(np.mean(self.adapter.values()))
