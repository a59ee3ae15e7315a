"""`AdaptiveLossAlignment`: the ALA reinforcement-learning controller as a Keras callback."""

from __future__ import annotations

import contextlib
import math
import warnings
from typing import Any

import keras
import numpy as np

from keras_adaptive_loss.ala.controllers import metrics as alignment_metrics
from keras_adaptive_loss.ala.controllers.adapters import (
    DistanceAdapter,
    adapter_for,
    check_pairwise_budget,
)
from keras_adaptive_loss.ala.controllers.controller import AlignmentController
from keras_adaptive_loss.ala.controllers.policy import Policy
from keras_adaptive_loss.ala.controllers.state import MemberState, feature_size
from keras_adaptive_loss.ala.measure import ALA_LOSSES, DEFAULT_DISCOUNT, ValidationPass, observe
from keras_adaptive_loss.callbacks.loss_lookup import find_compiled_loss
from keras_adaptive_loss.callbacks.reported_values import ReportingCallback
from keras_adaptive_loss.distribute import broadcast_from_chief

__all__ = ["AdaptiveLossAlignment"]


class AdaptiveLossAlignment(ReportingCallback):
    """Adapts the parameters of an ALA loss during `fit` with a REINFORCE policy (Huang et al.).

    Implements Sec. 3 and Algorithm 1 of "Addressing the Loss-Metric Mismatch with Adaptive
    Loss Alignment" (ICML 2019). Every ``period`` training steps (K), for each loss parameter:
    its state (validation statistics over the last ``history`` decisions, their relative change
    from a moving average, its value, the training progress) goes through a policy MLP shared by
    all parameters, whose three outputs choose ``-step_size``, 0 or ``+step_size``. The reward of
    a decision is the sign of the change of the discounted validation metric (Eqs. 4-5) over the
    following period; the policy learns online with REINFORCE, a baseline and a replay memory
    (Eq. 3). The control loop itself is `kal.ala.controllers.AlignmentController.step`; this
    callback measures the validation set and applies the controller's moves.

    The compiled loss must be a `kal.losses.ClassCorrelationLoss` (one parameter per class pair,
    statistics ``[C_ij, C_ji]`` of Eq. 7, symmetric updates), `kal.losses.DistanceMixtureLoss`
    or `kal.losses.FocalWeightingLoss`.

    **Defaults differ from the paper, by measurement** (see `ClassPairAdapter`): the paper's
    step ``beta = 0.1`` with Φ in ``[-1, 1]`` made models much worse whatever the policy
    learned, so ``step_size="auto"`` moves a class pair by ``0.1 / C`` within ``±1 / C``
    (``parameter_bound="auto"``) and bounds each row (``row_bound=0.5``); with the default
    `ClassCorrelationLoss` form, which is cross-entropy at ``Φ = I``, a single run then stays
    within noise of cross-entropy. ``AdaptiveLossAlignment.paper(...)`` gives the paper's
    steps and bounds (use it with ``ClassCorrelationLoss(form="sigmoid")`` for Eq. 6 as
    printed). The paper's strong setting, many child models sharing one controller, is
    `keras_adaptive_loss.ala.fit_children`.

    **No soft targets by default** (``softening=False``): the controller may add confusion
    penalties (``Φ[i, j] < 0``) but never moves target mass onto other classes
    (``Φ[i, j] > 0``). Whether soft targets help depends on the task, and one model's ~10
    decisions cannot tell: on 6-class Gaussian quantiles (2x256 MLP, Adam, 30 epochs, 5
    paired seeds; the generalization suite's ``quantiles6-mlp256``) a fixed ``Φ`` with every
    off-diagonal entry +0.03 lost 15.8 points [-17.9, -13.8] to cross-entropy, label
    smoothing 0.1 lost 14.2, while a fixed -0.03 was level (+0.05 [-1.07, +1.18]). The
    learning controller drifted into soft targets and lost 8.1 [-16.1, -0.0] (0/5 seeds);
    undoing a move whose reward was negative (-6.6) or returning to the best period's ``Φ``
    (-6.0) did not stop it, because the harm builds up over several periods. Restricted to
    penalties it was level there (+0.29 [-0.99, +1.57]), on an MNIST-1D draw (-0.26
    [-1.01, +0.49]; both signs: -0.34 [-2.67, +1.99]) and on 4 classes with 40 % symmetric
    label noise (-0.29 [-1.59, +1.01]; both signs: -1.09 [-2.49, +0.30]). The price: where
    soft targets help, on MNIST-1D with a 1-D CNN, both signs gained +1.92 [+0.69, +3.15]
    (5/5 seeds) and penalties only +0.22 [-0.47, +0.91]. ``softening=True`` (and `paper`)
    allows both signs; so does `fit_children`, whose cross-entropy control child and exploit
    step judge soft targets.

    Validation predictions come from the callback's own compiled pass over ``validation_data``
    (``model(x, training=False)`` in a ``tf.function``), never `model.evaluate`, which would reset
    the training metrics. Eq. 4 discounts the metric over the period's iterations; measuring it
    at every iteration would cost a validation pass per step, so it is measured
    ``evaluations_per_period`` times per period, evenly spaced, and the discounted values are
    normalised by the sum of their weights (a weighted mean), so that a period with fewer
    measurements (the first) compares fairly with the others.

    Steps are read from the optimizer's iteration counter, and a measurement or decision due at
    step ``s`` happens at the first batch start at or after ``s``: with ``steps_per_execution``
    > 1 (batch hooks fire once per chunk) the number of decisions does not change.

    Several models can share one controller: give their callbacks the same
    ``controller=kal.ala.controllers.AlignmentController(...)``. A trained policy is saved with
    ``callback.controller.policy.save(directory)`` (JSON + weights) and reused, e.g. on a task
    with another number of classes, with ``policy=kal.ala.controllers.Policy.load(directory),
    learn=False``. The controller's whole state is held by the loss in Keras variables, so
    `keras.callbacks.BackupAndRestore` and ``model.save`` carry it.

    Args:
        validation_data: ``(x_val, y_val)`` arrays.
        period: K, training steps between decisions.
        step_size: beta, the size of a parameter move; ``"auto"`` for the loss's safe default.
        discount: gamma of Eq. 4.
        metric: ``"error"`` (classification error, or nearest-neighbour error for embedding
            losses), ``"auc_pr"``, a `keras.metrics.Metric` or a callable ``(y_true, y_pred)``.
        history: decisions of statistics kept in the state.
        policy: a `kal.ala.controllers.Policy` to start from.
        learn: update the policy (``False``: apply it only).
        seed: seed of the policy and of the sampling.
        controller: a shared `kal.ala.controllers.AlignmentController` (overrides policy,
            learn and seed).
        evaluations_per_period: validation measurements per period for Eq. 4; default
            ``min(4, period)``.
        higher_is_better: direction of a custom metric (required for Keras metrics/callables).
        validation_batch_size: batch size of the validation pass.
        loss_name: which compiled loss, when several are ALA losses.
        parameter_bound: largest ``|Φ[i, j]|`` of a `ClassCorrelationLoss`; ``"auto"`` for
            ``1 / C``.
        row_bound: largest off-diagonal row sum of ``|Φ|`` (``None``: no bound).
        warmup_steps: steps of plain training before the first measurement and decision.
        verbose: 1 prints each decision's reward.
        softening: let the controller raise ``Φ[i, j]`` above 0, i.e. move target mass onto
            related classes. Off by default, by measurement: see above. Like
            ``parameter_bound`` and ``row_bound`` it applies to `ClassCorrelationLoss`; the
            metric-learning losses' parameters have no soft targets to restrict.

    Example:

    >>> import keras, numpy as np
    >>> import keras_adaptive_loss as kal
    >>> x = np.random.default_rng(0).normal(size=(64, 4)).astype("float32")
    >>> y = (x[:, 0] > 0).astype("int64") + (x[:, 1] > 0)
    >>> model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, activation="softmax")])
    >>> model.compile(optimizer="adam", loss=kal.losses.ClassCorrelationLoss(num_classes=3))
    >>> ala = kal.callbacks.AdaptiveLossAlignment(validation_data=(x, y), period=2, seed=0)
    >>> _ = model.fit(x, y, batch_size=16, epochs=2, verbose=0, callbacks=[ala])
    >>> ala.decisions
    4

    References:
        Huang, Zhai, Talbott, Bautista, Sun, Guestrin & Susskind, "Addressing the
        Loss-Metric Mismatch with Adaptive Loss Alignment", ICML 2019.
    """

    def __init__(
        self,
        validation_data: tuple[Any, Any] | None = None,
        period: int = 200,
        step_size: float | str = "auto",
        discount: float = DEFAULT_DISCOUNT,
        metric: Any = "error",
        history: int = 10,
        policy: Policy | None = None,
        learn: bool = True,
        seed: int | None = None,
        controller: AlignmentController | None = None,
        evaluations_per_period: int | None = None,
        higher_is_better: bool | None = None,
        validation_batch_size: int = 1024,
        loss_name: str | None = None,
        parameter_bound: float | str = "auto",
        row_bound: float | None = 0.5,
        warmup_steps: int = 0,
        verbose: int = 0,
        softening: bool = False,
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
        if step_size != "auto" and (
            isinstance(step_size, str) or not math.isfinite(step_size) or step_size <= 0
        ):
            raise ValueError(f"step_size must be > 0 or 'auto'; got {step_size!r}.")
        if parameter_bound != "auto" and (
            isinstance(parameter_bound, str) or not 0 < parameter_bound <= 1
        ):
            raise ValueError(
                f"parameter_bound must lie in (0, 1] or be 'auto'; got {parameter_bound!r}."
            )
        if row_bound is not None and not row_bound > 0:
            raise ValueError(f"row_bound must be > 0 or None; got {row_bound!r}.")
        if not 0.0 < discount <= 1.0:
            raise ValueError(f"discount must lie in (0, 1]; got {discount!r}.")
        if evaluations_per_period is None:
            evaluations_per_period = min(4, int(period))
        if not 1 <= evaluations_per_period <= period:
            raise ValueError(
                f"evaluations_per_period must lie in [1, period={period}]; got "
                f"{evaluations_per_period!r}."
            )
        if not isinstance(warmup_steps, (int, np.integer)) or warmup_steps < 0:
            raise ValueError(f"warmup_steps must be an integer >= 0; got {warmup_steps!r}.")
        self.x_val = np.asarray(validation_data[0])
        self.y_val = np.asarray(validation_data[1])
        self.period = int(period)
        self.step_size = step_size
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
        self.parameter_bound = parameter_bound
        self.row_bound = row_bound
        self.warmup_steps = int(warmup_steps)
        self.verbose = verbose
        self.softening = bool(softening)
        if not isinstance(metric, str) or metric not in ("error", "auc_pr"):
            alignment_metrics.resolve(metric, higher_is_better, embeddings=False)  # early check

    @classmethod
    def paper(cls, validation_data: tuple[Any, Any], **kwargs: Any) -> AdaptiveLossAlignment:
        """The paper's recipe (Sec. 5): ``beta = 0.1``, Φ within ``[-1, 1]``, no row bound.

        Pair it with ``ClassCorrelationLoss(num_classes, form="sigmoid")`` for Eq. 6 as
        printed. Measured to harm single runs badly (see the class docstring); kept to
        reproduce the paper.
        """
        settings = {
            "step_size": 0.1, "parameter_bound": 1.0, "row_bound": None, "softening": True,
        }  # fmt: skip
        return cls(validation_data, **{**settings, **kwargs})

    # Set-up -------------------------------------------------------------------------------

    def set_model(self, model: keras.Model) -> None:
        super().set_model(model)
        # Set up as early as possible: the checkpointable state must exist before
        # BackupAndRestore loads weights in its on_train_begin.
        if getattr(model, "loss", None) is not None:
            with contextlib.suppress(ValueError):  # on_train_begin reports it, inside fit
                self._setup()

    def on_train_begin(self, logs: dict | None = None) -> None:
        self._setup()
        sources = {}
        for key in ("ala_decisions", "ala_reward", "ala_parameter_mean"):
            variable = self._owned_variable(key)
            sources[key] = lambda variable=variable: variable
        self._update_reported()
        self._start_reporting(sources)
        steps = self.params.get("steps")
        epochs = self.params.get("epochs")
        self._total_steps = steps * epochs if steps and epochs else None
        chunk = int(getattr(self.model, "steps_per_execution", 1) or 1)
        if chunk > self.period:
            warnings.warn(
                f"AdaptiveLossAlignment: steps_per_execution={chunk} is larger than "
                f"period={self.period}; callbacks run once per chunk, so decisions due inside "
                "one chunk are merged into one. Use steps_per_execution <= period.",
                stacklevel=2,
            )
        if self._total_steps is not None:
            planned = max(0, -(-(self._total_steps - self.warmup_steps) // self.period))
            if planned < 2:
                warnings.warn(
                    f"AdaptiveLossAlignment: this run has {self._total_steps} training steps, so "
                    f"with period={self.period} and warmup_steps={self.warmup_steps} it makes "
                    f"{planned} decision(s) and the controller never sees a reward. Lower "
                    "period (e.g. to steps // 10) or train longer.",
                    stacklevel=2,
                )

    def _setup(self) -> None:
        if getattr(self, "_set_up_for", None) is self.model:
            return
        loss = find_compiled_loss(
            self.model,
            lambda candidate: isinstance(candidate, ALA_LOSSES),
            caller="AdaptiveLossAlignment",
            wanted="kal.losses.ClassCorrelationLoss, DistanceMixtureLoss or FocalWeightingLoss",
            loss_name=self.loss_name,
            example="kal.losses.ClassCorrelationLoss(num_classes)",
        )
        bound = None if self.parameter_bound == "auto" else float(self.parameter_bound)
        self.adapter = adapter_for(
            loss, parameter_bound=bound, row_bound=self.row_bound, softening=self.softening
        )
        self._step = (
            self.adapter.default_step if self.step_size == "auto" else float(self.step_size)
        )
        size = feature_size(self.adapter.num_statistics, self.history)
        if self.controller is None:
            self.controller = AlignmentController(
                size, policy=self.policy, learn=self.learn, seed=self.seed
            )
        elif self.controller.feature_size != size:
            raise ValueError(
                f"The shared controller expects states of size {self.controller.feature_size}; "
                f"this loss gives {size}."
            )
        if isinstance(self.adapter, DistanceAdapter):
            check_pairwise_budget(len(self.x_val))
        self._metric, self._higher_is_better = alignment_metrics.resolve(
            self.metric,
            self.higher_is_better,
            embeddings=isinstance(self.adapter, DistanceAdapter),
        )
        self._validation = ValidationPass(self.model, self.x_val, self.validation_batch_size)
        self.member: MemberState = self.controller.add_member(
            len(self.adapter.values()),
            self.adapter.num_statistics,
            self.history,
            self.evaluations_per_period,
        )
        # The loss holds the member state (and through it the controller), so the model's
        # checkpoints and saved files carry the controller's variables.
        loss.alignment_state = self.member
        self._epoch_rewards: list[float] = []
        self._step_offset: int | None = None  # optimizer step - batch index, per epoch
        self._next_event = 0
        self._total_steps: int | None = None
        self.rewards: list[float] = []
        self._set_up_for = self.model

    @property
    def decisions(self) -> int:
        """Decisions taken so far (restored with the model's checkpoint)."""
        return self.member.counter("decisions")

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self._epoch_rewards = []
        self._step_offset = None
        self._update_reported()

    def _update_reported(self) -> None:
        """Copies the Python-side figures into the variables reported in the logs."""
        reward = float(np.mean(self._epoch_rewards)) if self._epoch_rewards else 0.0
        self._set_owned("ala_decisions", self.decisions)
        self._set_owned("ala_reward", reward)
        self._set_owned("ala_parameter_mean", float(np.mean(self.adapter.values())))

    # The control loop: measure, let the controller step, apply ------------------------------

    def on_train_batch_begin(self, batch: int, logs: dict | None = None) -> None:
        # The optimizer's step count and the member's schedule are read once per epoch (and
        # after each event), then followed in Python: ordinary steps cost no variable read,
        # which on an accelerator would also wait for the step in flight.
        if self._step_offset is None:
            self._step_offset = int(self.model.optimizer.iterations.numpy()) - batch
            self._next_event = self._next_event_step()
        step = self._step_offset + batch
        if step < self._next_event:
            return
        with self.member.transaction():
            self._measure_and_decide(step)

    def _measure_and_decide(self, step: int) -> None:
        warmup = self.warmup_steps
        member = self.member
        next_decision = max(member.counter("next_decision"), warmup)
        interval = max(self.period // self.evaluations_per_period, 1)
        predictions = self._validation()
        value = self._metric(self.y_val, predictions)
        if math.isfinite(value):
            member.add_measurement(value)
        else:
            warnings.warn(
                f"AdaptiveLossAlignment: the validation metric is {value} at step {step}; the "
                "measurement is skipped.",
                stacklevel=2,
            )
        member.set_counter(
            "next_measurement", warmup + ((step - warmup) // interval + 1) * interval
        )
        if step >= next_decision:
            member.set_counter(
                "next_decision", warmup + ((step - warmup) // self.period + 1) * self.period
            )
            self._decide(step, predictions)
        self._next_event = self._next_event_step()

    def _next_event_step(self) -> int:
        """The training step of the next measurement or decision."""
        warmup = self.warmup_steps
        measurement = max(self.member.counter("next_measurement"), warmup)
        return min(measurement, max(self.member.counter("next_decision"), warmup))

    def _decide(self, step: int, predictions: np.ndarray) -> None:
        progress = step / self._total_steps if self._total_steps else 0.0
        _, observation = observe(
            self.member, self.adapter, self.member.take_measurements(), self.y_val, predictions,
            self.discount, progress,
        )  # fmt: skip
        if observation is None:
            return  # every measurement of the period was non-finite (warned already)
        if observation.statistics is None:
            warnings.warn(
                f"AdaptiveLossAlignment: non-finite validation statistics at step {step}; no "
                "decision this period.",
                stacklevel=2,
            )
        # Under MultiWorkerMirroredStrategy every worker runs this controller; the chief's
        # actions are applied everywhere, so the workers' parameters can never diverge.
        strategy = self.model.distribute_strategy
        [(actions, reward)] = self.controller.step(
            [observation],
            self._higher_is_better,
            broadcast=lambda chosen: broadcast_from_chief(chosen, strategy),
        )
        if reward is not None:
            self.rewards.append(reward)
            self._epoch_rewards.append(reward)
            if self.verbose:
                print(f"Step {step}: AdaptiveLossAlignment reward {reward:+.0f}")
        if actions is not None:
            self.adapter.apply(self.controller.moves(actions, self._step))
        self._update_reported()

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        self._fill_missing(logs)
