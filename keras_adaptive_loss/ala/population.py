"""`fit_children`: the ALA paper's child models sharing one controller, with an exploit step."""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import keras
import numpy as np

from keras_adaptive_loss.ala.controllers import metrics as alignment_metrics
from keras_adaptive_loss.ala.controllers.adapters import (
    ClassPairAdapter,
    DistanceAdapter,
    adapter_for,
)
from keras_adaptive_loss.ala.controllers.controller import AlignmentController
from keras_adaptive_loss.ala.controllers.policy import Policy
from keras_adaptive_loss.ala.controllers.state import feature_size
from keras_adaptive_loss.ala.measure import ALA_LOSSES, DEFAULT_DISCOUNT, ValidationPass, observe
from keras_adaptive_loss.selection.child_state import copy_state

__all__ = ["PopulationResult", "fit_children"]

_PROGRESS_FILE = "population.json"


@dataclass
class PopulationResult:
    """What `fit_children` returns.

    Attributes:
        best_model: the child with the best final validation metric.
        best_index: its index in ``children``.
        children: every child model.
        controller: the shared `AlignmentController` (its ``policy`` transfers to new runs).
        control_index: the index of the cross-entropy control child (Φ fixed at its start),
            or ``None``.
        metrics: validation metric of every child at every decision and at the end,
            ``[decisions + 1][children]``.
        exploits: ``(decision, source, target)`` of every copy made by the exploit step.

    >>> from keras_adaptive_loss.ala.controllers import AlignmentController
    >>> controller = AlignmentController(8, seed=0)
    >>> model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(2)])
    >>> result = PopulationResult(model, 0, [model], controller, control_index=None)
    >>> result.policy is controller.policy  # what transfers to a new run (fit_children's docs)
    True
    """

    best_model: keras.Model
    best_index: int
    children: list[keras.Model]
    controller: AlignmentController
    control_index: int | None
    metrics: list[list[float]] = field(default_factory=list)
    exploits: list[tuple[int, int, int]] = field(default_factory=list)

    @property
    def policy(self) -> Policy:
        return self.controller.policy


def _batches(num_samples: int, batch_size: int, seed: int, start: int, count: int) -> np.ndarray:
    """Sample indices of training steps ``[start, start + count)``: each epoch a fresh
    permutation seeded by ``(seed, epoch)``, cut into full batches."""
    per_epoch = num_samples // batch_size
    rows = []
    for step in range(start, start + count):
        epoch, position = divmod(step, per_epoch)
        order = np.random.default_rng([seed, epoch]).permutation(num_samples)
        rows.append(order[position * batch_size : (position + 1) * batch_size])
    return np.concatenate(rows)


def fit_children(
    build_model: Callable[[int], keras.Model],
    x: Any,
    y: Any,
    validation_data: tuple[Any, Any],
    *,
    num_children: int = 8,
    epochs: int = 10,
    batch_size: int = 32,
    period: int = 200,
    evaluations_per_period: int | None = None,
    discount: float = DEFAULT_DISCOUNT,
    step_size: float | str = "auto",
    parameter_bound: float | str = "auto",
    row_bound: float | None = 0.5,
    control_child: bool = True,
    initial_spread: float | str | None = "auto",
    exploit_every: int = 2,
    exploit_fraction: float = 0.25,
    metric: Any = "error",
    higher_is_better: bool | None = None,
    history: int = 10,
    policy: Policy | None = None,
    learn: bool = True,
    controller: AlignmentController | None = None,
    seed: int = 0,
    backup_dir: str | Path | None = None,
    verbose: int = 0,
) -> PopulationResult:
    """Trains ``num_children`` models in lockstep, their losses steered by one ALA controller.

    The paper's default setting (Huang et al., ICML 2019, Sec. 3.2 and 5: "10 child models
    were trained sharing the same ALA controller"): every ``period`` steps each child reports
    its validation metric and statistics, the shared controller is rewarded by all of them at
    once (one update per decision, the rewards' mean removing the common training trend) and
    moves each child's loss parameters. Two additions keep the population safe, after
    population-based loss search (AM-LFS, Li et al. 2019):

    - a **control child** (index 0 with ``control_child=True``) keeps its loss parameters at
      their start (Φ = I: cross-entropy for the default `ClassCorrelationLoss`);
    - an **exploit step**: every ``exploit_every`` decisions, the worst ``exploit_fraction``
      of the adapted children copy the best child's weights, optimizer state and loss
      parameters (the control child is never overwritten).

    - **diverse starts** (``initial_spread``): the adapted children of a `ClassCorrelationLoss`
      start at evenly spread off-diagonal Φ (soft-target mass on every other class), as a
      population-based search starts its members at different hyper-parameters; from identical
      starts at Φ = I the controller has about 20 decisions to move a child anywhere.

    The best child by final validation metric is returned, so the result is never worse than
    the cross-entropy control beyond validation noise.

    Children are built by ``build_model(index)`` after ``keras.utils.set_random_seed(seed +
    index)`` (so they start from different weights) and must be compiled with an ALA loss
    (`ClassCorrelationLoss`, `DistanceMixtureLoss` or `FocalWeightingLoss`). All see the same
    data order (full batches of a fresh permutation per epoch, seeded by ``seed``).

    With ``backup_dir``, every child's weights (with the controller's state, which its loss
    holds) and the loop's progress are saved after each decision; calling again with the same
    arguments resumes from there.

    Args:
        build_model: ``index -> compiled keras.Model``.
        x: training inputs (an array).
        y: training labels (an array).
        validation_data: ``(x_val, y_val)``: rewards, statistics and the final choice.
        num_children: N, at least 2 (3 with a control child).
        epochs: as for `fit`.
        batch_size: as for `fit`.
        period: K, training steps between decisions.
        evaluations_per_period: measurements per period for Eq. 4; default ``min(4, period)``.
        discount: gamma of Eq. 4 (as for the callback).
        step_size: as for `kal.callbacks.AdaptiveLossAlignment`.
        parameter_bound: as for `kal.callbacks.AdaptiveLossAlignment`.
        row_bound: as for `kal.callbacks.AdaptiveLossAlignment`.
        control_child: keep child 0 at its initial loss parameters.
        initial_spread: for `ClassCorrelationLoss` children, start the adapted children at
            different off-diagonal values, evenly from ``spread / (N - 1)`` up to ``spread``
            (child 0 keeps Φ = I); ``"auto"`` is half the parameter bound (0.05 at 10
            classes), ``None`` starts every child at its loss's Φ.
        exploit_every: decisions between exploit steps (0: never).
        exploit_fraction: share of adapted children replaced at an exploit step.
        metric: the validation metric (as for the callback).
        higher_is_better: whether a larger ``metric`` is better (as for the callback).
        history: decisions of statistics in a state.
        policy: a policy to start from.
        learn: ``False`` applies ``policy`` without training it.
        controller: a controller to share (overrides policy and learn).
        seed: seed of the children's weights, the data order and the controller.
        backup_dir: folder for resumable backups.
        verbose: 1 prints one line per decision.

    Returns:
        A `PopulationResult`.

    Example:

    >>> import keras, numpy as np
    >>> import keras_adaptive_loss as kal
    >>> rng = np.random.default_rng(0)
    >>> x = rng.normal(size=(96, 4)).astype("float32")
    >>> y = (x[:, 0] > 0).astype("int64") + (x[:, 1] > 0)
    >>> def build(index):
    ...     model = keras.Sequential(
    ...         [keras.Input((4,)), keras.layers.Dense(3, activation="softmax")])
    ...     model.compile(optimizer="adam", loss=kal.losses.ClassCorrelationLoss(3))
    ...     return model
    >>> result = kal.ala.fit_children(
    ...     build, x[:64], y[:64], (x[64:], y[64:]), num_children=3, epochs=1,
    ...     batch_size=16, period=2)
    >>> len(result.children), result.control_index
    (3, 0)
    """
    if num_children < (3 if control_child else 2):
        raise ValueError(
            f"num_children must be at least {3 if control_child else 2} (a control child and "
            f"two adapted ones); got {num_children!r}."
        )
    if not isinstance(period, (int, np.integer)) or period < 1:
        raise ValueError(f"period must be an integer >= 1; got {period!r}.")
    if not 0.0 <= exploit_fraction < 1.0 or exploit_every < 0:
        raise ValueError(
            "exploit_fraction must lie in [0, 1) and exploit_every be >= 0; got "
            f"{exploit_fraction!r}, {exploit_every!r}."
        )
    x, y = np.asarray(x), np.asarray(y)
    x_val, y_val = (np.asarray(v) for v in validation_data)
    steps_per_epoch = len(x) // batch_size
    if steps_per_epoch < 1:
        raise ValueError(f"batch_size={batch_size} is larger than the {len(x)} training samples.")
    total_steps = steps_per_epoch * epochs
    evaluations = min(4, period) if evaluations_per_period is None else evaluations_per_period
    interval = max(period // evaluations, 1)

    children, adapters = [], []
    for index in range(num_children):
        keras.utils.set_random_seed(seed + index)
        model = build_model(index)
        losses = [loss for loss in keras.tree.flatten(getattr(model, "loss", None))]
        ala = [loss for loss in losses if isinstance(loss, ALA_LOSSES)]
        if len(ala) != 1:
            raise ValueError(
                "fit_children: build_model must return a model compiled with one ALA loss "
                "(kal.losses.ClassCorrelationLoss, DistanceMixtureLoss or FocalWeightingLoss); "
                f"child {index} has {[type(loss).__name__ for loss in losses]}."
            )
        bound = None if parameter_bound == "auto" else float(parameter_bound)
        children.append(model)
        adapters.append(adapter_for(ala[0], parameter_bound=bound, row_bound=row_bound))
    statistics_count = adapters[0].num_statistics
    size = feature_size(statistics_count, history)
    if controller is None:
        controller = AlignmentController(size, policy=policy, learn=learn, seed=seed)
    control = 0 if control_child else None
    members = {}
    for index, adapter in enumerate(adapters):
        if index == control:
            continue
        members[index] = controller.add_member(
            len(adapter.values()), statistics_count, history, evaluations
        )
        adapter.loss.alignment_state = members[index]
    step_size_value = adapters[0].default_step if step_size == "auto" else float(step_size)
    _spread_initial_phi(adapters, members, initial_spread)
    metric_fn, higher = alignment_metrics.resolve(
        metric, higher_is_better, embeddings=isinstance(adapters[0], DistanceAdapter)
    )
    sign = 1.0 if higher else -1.0

    passes = [ValidationPass(model, x_val) for model in children]

    def measure(index):
        predictions = passes[index]()
        return metric_fn(y_val, predictions), predictions

    period_values: list[list[float]] = [[] for _ in children]
    result_metrics: list[list[float]] = []
    exploits: list[tuple[int, int, int]] = []
    step = 0
    backup = Path(backup_dir) if backup_dir is not None else None
    if backup is not None and (backup / _PROGRESS_FILE).exists():
        saved = json.loads((backup / _PROGRESS_FILE).read_text())
        for index, model in enumerate(children):
            model.optimizer.build(model.trainable_variables)
            model.load_weights(backup / f"child_{index}.weights.h5")
        step = int(saved["step"])
        period_values = saved["period_values"]
        result_metrics = saved["metrics"]
        exploits = [tuple(e) for e in saved["exploits"]]
        resumed = True  # the backup was taken right after the decision at `step`
    else:
        resumed = False

    while step < total_steps:
        if resumed:
            resumed = False
        elif step % interval == 0 or step % period == 0:
            measured = [measure(index) for index in range(len(children))]
            for index, (value, _) in enumerate(measured):
                if math.isfinite(value):
                    period_values[index].append(value)
            if step % period == 0:
                decision = step // period
                seen = [
                    observe(
                        members.get(index),
                        adapters[index],
                        values,
                        y_val,
                        measured[index][1],
                        discount,
                        step / total_steps,
                    )
                    for index, values in enumerate(period_values)
                ]
                current = [metric for metric, _ in seen]
                period_values = [[] for _ in children]
                result_metrics.append(current)
                order = [i for i in members if seen[i][1] is not None]
                observations = [seen[i][1] for i in order]
                for index, (actions, _) in zip(
                    order, controller.step(observations, higher), strict=True
                ):
                    if actions is not None:
                        adapters[index].apply(controller.moves(actions, step_size_value))
                if exploit_every and decision > 0 and decision % exploit_every == 0:
                    exploits += _exploit(
                        children, adapters, members, current, sign, control, exploit_fraction,
                        decision,
                    )  # fmt: skip
                if verbose:
                    print(f"fit_children: decision {decision}, step {step}, metrics {current}")
                if backup is not None:
                    _save_backup(backup, children, step, period_values, result_metrics, exploits)
        chunk = min(interval - step % interval, total_steps - step)
        index = _batches(len(x), batch_size, seed, step, chunk)
        for begin in range(0, len(index), batch_size):  # lockstep, compiled steps
            rows = index[begin : begin + batch_size]
            for model in children:
                model.train_on_batch(x[rows], y[rows])
        step += chunk

    final = [measure(index)[0] for index in range(len(children))]
    result_metrics.append(final)
    scores = [sign * v if math.isfinite(v) else -math.inf for v in final]
    best = int(np.argmax(scores))
    return PopulationResult(
        best_model=children[best],
        best_index=best,
        children=children,
        controller=controller,
        control_index=control,
        metrics=result_metrics,
        exploits=exploits,
    )


def _spread_initial_phi(adapters, members, spread) -> None:
    """Starts the adapted class-correlation children at evenly spread off-diagonal values."""
    if spread is None or not isinstance(adapters[0], ClassPairAdapter):
        return
    if spread == "auto":
        spread = adapters[0].parameter_bound / 2
    if not 0.0 <= float(spread) <= adapters[0].parameter_bound:
        raise ValueError(
            f"initial_spread must lie in [0, parameter_bound={adapters[0].parameter_bound:g}] "
            f"or be 'auto' or None; got {spread!r}."
        )
    adapted = sorted(members)
    for rank, index in enumerate(adapted, start=1):
        adapter = adapters[index]
        value = float(spread) * rank / len(adapted)
        if adapter.row_bound is not None:
            value = min(value, adapter.row_bound / (adapter.loss.num_classes - 1))
        adapter.apply(np.full(len(adapter.values()), value) - adapter.values())


def _exploit(children, adapters, members, current, sign, control, fraction, decision):
    """The worst adapted children copy the best child's weights, optimizer state and Φ."""
    scores = [sign * v if math.isfinite(v) else -math.inf for v in current]
    best = int(np.argmax(scores))
    adapted = sorted((i for i in members if i != best), key=lambda i: scores[i])
    count = int(fraction * len(members))
    copies = []
    for target in adapted[:count]:
        if scores[target] >= scores[best]:
            continue
        copy_state(children[best], children[target])  # weights, optimizer state and Φ
        # The copied child's last actions were not what produced its new state.
        members[target].set_pending(None, None)
        copies.append((decision, best, target))
    return copies


def _save_backup(backup, children, step, period_values, metrics, exploits):
    backup.mkdir(parents=True, exist_ok=True)
    for index, model in enumerate(children):
        model.save_weights(backup / f"child_{index}.weights.h5")
    progress = {
        "step": step,
        "period_values": period_values,
        "metrics": metrics,
        "exploits": [list(e) for e in exploits],
    }
    temporary = backup / f"{_PROGRESS_FILE}.tmp"
    temporary.write_text(json.dumps(progress))
    temporary.replace(backup / _PROGRESS_FILE)
