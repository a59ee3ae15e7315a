"""`select_loss`: a population of children with different losses, cross-entropy as the
control, trained in lockstep and steered by validation (population-based training or
successive halving)."""

from __future__ import annotations

import contextlib
import json
import math
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import keras
import numpy as np

from keras_adaptive_loss._tensorflow import split_over_replicas
from keras_adaptive_loss.ala.measure import ValidationPass
from keras_adaptive_loss.selection.child_state import copy_state, load_state, save_state
from keras_adaptive_loss.selection.search_space import (
    CONTROL,
    ChildLoss,
    LossFamily,
    default_search_space,
    initial_children,
)
from keras_adaptive_loss.selection.training_data import TrainingData, one_hot_targets

__all__ = ["Decision", "SelectionResult", "select_loss"]

_STATE_FILE = "selection.json"
_INITIAL_FILE = "initial-weights.npz"
METHODS = ("pbt", "halving")


@dataclass
class Decision:
    """One exploit-and-explore (or halving) step of `select_loss`.

    Attributes:
        epoch: epochs trained before it.
        scores: each child's metric on the exploit split (NaN for a child no longer trained).
        exploits: ``(source, target, new loss label)`` of every copy.
        dropped: children stopped by successive halving.

    >>> decision = Decision(epoch=2, scores=[0.81, 0.84, 0.79], exploits=[(1, 2, "focal")])
    >>> [target for _, target, _ in decision.exploits]
    [2]
    """

    epoch: int
    scores: list[float]
    exploits: list[tuple[int, int, str]] = field(default_factory=list)
    dropped: list[int] = field(default_factory=list)


@dataclass
class SelectionResult:
    """What `select_loss` returns.

    Attributes:
        best_model: the chosen child (the control unless another child beats it on the
            selection split by more than ``margin``).
        best_index: its index.
        children: every child model (index 0 is the cross-entropy control).
        losses: what each child trains with at the end.
        started_with: what each child started with.
        initial_weights: the weights every child started from.
        decisions: every exploit-and-explore or halving step, in order.
        selection_scores: each trained child's metric on the selection split at the end
            (NaN for children stopped by halving).
        alive: whether each child was trained to the end.
        seconds: wall time of the search.
        steps: optimizer steps taken by all children together.

    Example (``result`` as `select_loss` returns it):

    >>> import keras
    >>> from keras_adaptive_loss.selection import ChildLoss
    >>> model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(2)])
    >>> result = SelectionResult(
    ...     model, 0, [model], [ChildLoss("crossentropy")], [ChildLoss("crossentropy")],
    ...     model.get_weights(), [], [0.9], [True], seconds=1.0, steps=10)
    >>> print(result.report())
    child  started with                     ends with                        selection
        0  crossentropy                     crossentropy                        0.9000 <- chosen
    0 decisions, 0 exploits, 1.0 s
    """

    best_model: keras.Model
    best_index: int
    children: list[keras.Model]
    losses: list[ChildLoss]
    started_with: list[ChildLoss]
    initial_weights: list[np.ndarray]
    decisions: list[Decision]
    selection_scores: list[float]
    alive: list[bool]
    seconds: float
    steps: int

    @property
    def control_index(self) -> int:
        return 0

    def report(self) -> str:
        """A table: every child's start, end, final score and whether it was chosen."""
        lines = [f"{'child':>5}  {'started with':<32} {'ends with':<32} {'selection':>9}"]
        for i, (start, end) in enumerate(zip(self.started_with, self.losses, strict=True)):
            score = self.selection_scores[i]
            mark = " <- chosen" if i == self.best_index else ""
            shown = "stopped" if not self.alive[i] else f"{score:.4f}"
            lines.append(f"{i:>5}  {start.label:<32} {end.label:<32} {shown:>9}{mark}")
        copies = sum(len(decision.exploits) for decision in self.decisions)
        lines.append(f"{len(self.decisions)} decisions, {copies} exploits, {self.seconds:.1f} s")
        return "\n".join(lines)


def select_loss(
    build_model: Callable[[], keras.Model],
    x: Any,
    y: Any,
    validation_data: tuple[Any, Any],
    *,
    epochs: int = 20,
    batch_size: int = 64,
    optimizer: Any = "adam",
    search_space: Sequence[LossFamily] | None = None,
    method: str = "pbt",
    decide_every: int = 2,
    first_decision: int | None = None,
    exploit_fraction: float = 0.25,
    perturb_factors: Sequence[float] = (0.8, 1.25),
    selection_fraction: float = 0.0,
    margin: float = 0.01,
    metric: str | Callable[[np.ndarray, np.ndarray], float] = "accuracy",
    strategy: Any = None,
    seed: int = 0,
    backup_dir: str | Path | None = None,
    on_decision: Callable[[Decision, list[ChildLoss]], None] | None = None,
    verbose: int = 0,
) -> SelectionResult:
    """Finds the loss for this task: children with different losses, trained in lockstep.

    Every child starts from the same initial weights and sees the same batches in the same
    order; child 0 trains with plain cross-entropy and is never changed (the control). Every
    ``decide_every`` epochs from ``first_decision`` on (half of the run by default) each child
    is scored on the *exploit split* of the validation data, and then:

    - ``method="pbt"`` (population-based training, Jaderberg et al. 2017, "exploit" by
      truncation and "explore" by perturbation): the worst ``exploit_fraction`` of the
      non-control children copy a better child's weights, optimizer state and loss (the
      worst takes the best, the second worst the second best, ...), and the copied loss's
      hyper-parameters are each multiplied by one of ``perturb_factors``. A child that copies
      the control keeps its own loss family and perturbs its own hyper-parameters, so the
      population never collapses into cross-entropy copies.
    - ``method="halving"`` (successive halving, Jamieson & Talwalkar 2016): the worse half of
      the non-control children stop training; the compute they would have used is saved.

    At the end the trained children are scored on the *selection split* (by default the
    whole validation data; ``selection_fraction`` holds a part out that no decision sees),
    and the best is chosen if it beats the control by more than ``margin`` (metric units);
    otherwise the control is. So a search that found nothing returns what plain
    cross-entropy training would have returned. A child whose predictions are not finite
    (it diverged) scores NaN: every such child is replaced at the next PBT decision (beyond
    ``exploit_fraction``), stopped first by halving, and never chosen.

    The children are stepped by their compiled train functions, batch by batch, in lockstep:
    no ``fit`` call per chunk; under a strategy each replica trains on its slice of the batch,
    as under ``fit``. Each epoch the training arrays are permuted by
    ``numpy.random.default_rng([seed, epoch])`` and cut into batches as ``fit`` cuts them
    (under a strategy the last, partial batch is trimmed to a multiple of the replica count:
    an uneven split fails there; see `TrainingData`). A loss's callbacks (`FocusSchedule`,
    `DeferredReweighting`) run as under ``fit``.

    Args:
        build_model: returns a fresh, uncompiled model whose output is class probabilities
            (softmax). It is called once per child; every child gets the first one's weights.
        x: training inputs (an array), or a `tf.data.Dataset` of ``(inputs, targets)``
            batches, read once per epoch in its own order (then ``y`` is ``None``, and the
            default search space has no imbalance families: it does not count classes).
        y: training targets: integer class ids or one-hot rows.
        validation_data: ``(x_val, y_val)``, split into the exploit and the selection split.
        epochs: epochs every child trains (unless stopped by halving).
        batch_size: samples per step; under a strategy, a multiple of its replica count.
        optimizer: a Keras optimizer identifier (``"adam"``, a config dict) or a function
            returning a new optimizer; each child gets its own.
        search_space: the loss families (`LossFamily`), the cross-entropy control first;
            `default_search_space` by default.
        method: ``"pbt"`` or ``"halving"``.
        decide_every: epochs between two decisions.
        first_decision: the epoch of the first decision; no child is replaced or stopped
            before it. By default half of the run (``max(decide_every, epochs // 2)``): losses
            whose gain comes late (generalized cross-entropy, CE + expectation loss on its F
            schedule) lag behind cross-entropy early and were replaced before they paid off
            when decisions started at epoch 2. In a paired ablation on five suite tasks
            (5 seeds) starting at half of the run raised the mean gain over cross-entropy
            from +1.5 to +5.4 points for PBT (Gaussian quantiles with 20 % noise: -1.1 to
            +22.6) and from +0.2 to +5.5 for halving; under pair noise PBT from epoch 2 was
            ahead (+3.4 vs +2.9), both within noise of each other.
        exploit_fraction: the fraction of non-control children replaced per PBT decision
            (at least one).
        perturb_factors: the factors exploration multiplies hyper-parameters by.
        selection_fraction: the fraction of the validation data held out for the final
            choice; 0 (the default) scores the final choice on the exploit split, the whole
            validation data.
        margin: how much (in metric units) a child must beat the control by on the selection
            split to be chosen; 0.01 by default (one point of accuracy). Chosen by a paired
            study on nine suite tasks (5 seeds): the whole validation data with this margin
            gained +3.8 points over cross-entropy on average (above it beyond noise on 5
            tasks, below on none), half of it held out with no margin +3.3 (2 above, none
            below), with PBT; with halving the two were within noise (+3.2, +3.3). The
            decisions see twice the data, and the margin keeps the control where a child is
            ahead by a sample or two.
        metric: ``"accuracy"`` or ``metric(labels, probabilities) -> float``, higher better.
        strategy: a `tf.distribute.Strategy` to build and train the children in.
        seed: the seed of data order, the validation split and exploration.
        backup_dir: a folder to save the population to after every decision; a run given
            a folder that holds a saved population resumes it from its last decision.
        on_decision: called after each decision with it and the children's losses.
        verbose: 1 prints one line per decision.

    Returns:
        A `SelectionResult`.

    Example:

    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> x = rng.normal(size=(256, 4)).astype("float32")
    >>> y = (x[:, 0] > 0).astype("int64")
    >>> def build_model():
    ...     return keras.Sequential(
    ...         [keras.Input((4,)), keras.layers.Dense(2, activation="softmax")])
    >>> result = select_loss(
    ...     build_model, x[:192], y[:192], (x[192:], y[192:]), epochs=2, batch_size=32,
    ...     decide_every=1)
    >>> len(result.children), result.losses[0].family, len(result.decisions)
    (10, 'crossentropy', 1)

    References:
        Jaderberg et al., "Population Based Training of Neural Networks" (arXiv:1711.09846);
        Jamieson & Talwalkar, "Non-stochastic Best Arm Identification and Hyperparameter
        Optimization" (arXiv:1502.07943); Huang et al., "Addressing the Loss-Metric Mismatch
        with Adaptive Loss Alignment" (arXiv:1905.05895), its children sharing a controller.
    """
    _check_arguments(
        epochs,
        batch_size,
        method,
        decide_every,
        first_decision,
        exploit_fraction,
        perturb_factors,
        selection_fraction,
        strategy,
    )
    started = time.perf_counter()
    replicas = 1 if strategy is None else int(strategy.num_replicas_in_sync)
    start = max(decide_every, epochs // 2) if first_decision is None else int(first_decision)

    def scope() -> Any:
        return strategy.scope() if strategy is not None else contextlib.nullcontext()

    with scope():
        children = _build_children(build_model, 1)
    num_classes = int(children[0].output_shape[-1])
    data = TrainingData(x, y, num_classes, batch_size, replicas, seed)
    steps_per_epoch = data.steps_per_epoch
    x_val = np.asarray(validation_data[0])
    _, y_val = one_hot_targets(validation_data[1], num_classes, "validation_data[1]")
    exploit_split, selection_split = _split_validation(len(x_val), selection_fraction, seed)

    if search_space is not None:
        families = list(search_space)
    else:
        counts = None if data.labels is None else np.bincount(data.labels, minlength=num_classes)
        families = default_search_space(num_classes, counts)
    by_name = {family.name: family for family in families}
    losses = initial_children(families)
    started_with = list(losses)
    with scope():
        children += _build_children(build_model, len(losses) - 1)
        initial_weights = children[0].get_weights()
        for child in children[1:]:
            child.set_weights(initial_weights)
        callbacks = [
            _setup(child, by_name[loss.family], loss, optimizer, epochs, steps_per_epoch)
            for child, loss in zip(children, losses, strict=True)
        ]
    alive = [True] * len(children)
    decisions: list[Decision] = []
    first_epoch, steps = 0, 0

    backup = Path(backup_dir) if backup_dir is not None else None
    fingerprint = {
        "epochs": epochs,
        "batch_size": batch_size,
        "seed": seed,
        "method": method,
        "decisions": [start, decide_every],
        "families": [family.name for family in families],
        "samples": data.samples,
    }
    if backup is not None and (backup / _STATE_FILE).exists():
        first_epoch, steps, losses, alive, decisions, callbacks = _resume(
            backup, fingerprint, children, by_name, optimizer, epochs, steps_per_epoch, scope
        )
        with np.load(backup / _INITIAL_FILE) as stored:
            initial_weights = [stored[f"arr_{i}"] for i in range(len(stored.files))]

    measure = [ValidationPass(child, x_val) for child in children]
    score = _metric(metric)
    for callback in callbacks:
        callback.on_train_begin()
    for epoch in range(first_epoch, epochs):
        logs: list[dict] = [{} for _ in children]
        for i in _indices(alive):
            children[i].reset_metrics()  # logs: the epoch's running mean, as under fit
            callbacks[i].on_epoch_begin(epoch)
        for step, (x_batch, y_batch) in enumerate(data.epoch(epoch)):
            shards = None if replicas == 1 else split_over_replicas(strategy, x_batch, y_batch)
            for i in _indices(alive):
                callbacks[i].on_train_batch_begin(step)
                logs[i] = _train_step(children[i], x_batch, y_batch, shards)
                callbacks[i].on_train_batch_end(step, logs[i])
                steps += 1
        for i in _indices(alive):
            callbacks[i].on_epoch_end(epoch, logs[i])
        done = epoch + 1
        if done < start or (done - start) % decide_every or done == epochs:
            continue
        probabilities = [measure[i]() if alive[i] else None for i in range(len(children))]
        scores = [
            score(y_val[exploit_split], p[exploit_split]) if p is not None else math.nan
            for p in probabilities
        ]
        decision = Decision(done, scores)
        rng = np.random.default_rng([seed, 1_000_003, done])
        if method == "pbt":
            for source, target in _exploit_pairs(scores, alive, exploit_fraction):
                losses[target] = _explore(losses, source, target, by_name, rng, perturb_factors)
                with scope():
                    callbacks[target] = _setup(
                        children[target],
                        by_name[losses[target].family],
                        losses[target],
                        None,
                        epochs,
                        steps_per_epoch,
                    )
                copy_state(children[source], children[target])
                callbacks[target].on_train_begin()
                decision.exploits.append((source, target, losses[target].label))
        else:
            decision.dropped = _halve(scores, alive)
            for i in decision.dropped:
                alive[i] = False
                callbacks[i].on_train_end()
        decisions.append(decision)
        if backup is not None:
            if not (backup / _INITIAL_FILE).exists():  # before the state that points at it
                backup.mkdir(parents=True, exist_ok=True)
                np.savez(backup / _INITIAL_FILE, *initial_weights)
            _save(backup, fingerprint, done, steps, children, losses, alive, decisions)
        if verbose:
            best = int(np.nanargmax(scores))
            print(
                f"epoch {done}/{epochs}: best child {best} {losses[best].label} "
                f"{scores[best]:.4f}, control {scores[0]:.4f}; "
                f"{len(decision.exploits)} exploits, {len(decision.dropped)} stopped"
            )
        if on_decision is not None:
            on_decision(decision, list(losses))
    for i in _indices(alive):
        callbacks[i].on_train_end()

    selection = selection_split if len(selection_split) else exploit_split
    selection_scores = [
        score(y_val[selection], measure[i]()[selection]) if alive[i] else math.nan
        for i in range(len(children))
    ]
    best = _choose(selection_scores, margin)
    return SelectionResult(
        children[best],
        best,
        children,
        list(losses),
        started_with,
        initial_weights,
        decisions,
        selection_scores,
        list(alive),
        time.perf_counter() - started,
        steps,
    )


def _check_arguments(
    epochs: int,
    batch_size: int,
    method: str,
    decide_every: int,
    first_decision: int | None,
    exploit_fraction: float,
    perturb_factors: Sequence[float],
    selection_fraction: float,
    strategy: Any,
) -> None:
    for name, value in (
        ("epochs", epochs),
        ("batch_size", batch_size),
        ("decide_every", decide_every),
        *([("first_decision", first_decision)] if first_decision is not None else []),
    ):
        if not isinstance(value, (int, np.integer)) or value < 1:
            raise ValueError(f"{name} must be an integer >= 1; got {value!r}.")
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}; got {method!r}.")
    if not 0 < exploit_fraction <= 0.5:
        raise ValueError(f"exploit_fraction must be in (0, 0.5]; got {exploit_fraction!r}.")
    if not perturb_factors or any(not factor > 0 for factor in perturb_factors):
        raise ValueError(f"perturb_factors must be positive numbers; got {perturb_factors!r}.")
    if not 0 <= selection_fraction < 1:
        raise ValueError(f"selection_fraction must be in [0, 1); got {selection_fraction!r}.")
    if strategy is not None and batch_size % strategy.num_replicas_in_sync:
        raise ValueError(
            f"batch_size {batch_size} does not split evenly over the strategy's "
            f"{strategy.num_replicas_in_sync} replicas: use a multiple of it."
        )


def _build_children(build_model: Callable[[], keras.Model], count: int) -> list[keras.Model]:
    children = []
    for _ in range(count):
        model = build_model()
        if not isinstance(model, keras.Model):
            raise ValueError(f"build_model must return a keras.Model; got {type(model)!r}.")
        children.append(model)
    return children


def _split_validation(size: int, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    order = np.random.default_rng([seed, 7]).permutation(size)
    held_out = round(size * fraction)
    if size - held_out < 1:
        raise ValueError(f"The validation data ({size} samples) leaves no exploit split.")
    return np.sort(order[held_out:]), np.sort(order[:held_out])


def _make_optimizer(optimizer: Any) -> keras.optimizers.Optimizer:
    if callable(optimizer) and not isinstance(optimizer, keras.optimizers.Optimizer):
        made = optimizer()
    elif isinstance(optimizer, keras.optimizers.Optimizer):
        made = type(optimizer).from_config(optimizer.get_config())
    else:
        made = keras.optimizers.get(optimizer)
    if not isinstance(made, keras.optimizers.Optimizer):
        raise ValueError(f"optimizer must give a keras Optimizer; got {made!r}.")
    return made


def _setup(
    child: keras.Model, family: LossFamily, loss: ChildLoss, optimizer: Any, epochs: int, steps: int
) -> keras.callbacks.CallbackList:
    """Compiles ``child`` with ``loss`` and returns the callbacks that drive it;
    ``optimizer=None`` keeps the child's optimizer and its state (an exploit step changes the
    loss only)."""
    built, callbacks = family.build(loss.params, epochs)
    made = child.optimizer if optimizer is None else _make_optimizer(optimizer)
    child.compile(optimizer=made, loss=built)
    return keras.callbacks.CallbackList(
        callbacks, model=child, epochs=epochs, steps=steps, verbose=0
    )


def _train_step(
    child: keras.Model, x_batch: np.ndarray, y_batch: np.ndarray, shards: tuple | None
) -> dict[str, float]:
    """One optimizer step of ``child`` on a batch, through its compiled train function as
    ``fit`` takes it; returns its logs (the loss's running mean over the epoch so far, as
    under ``fit``).

    The first step after a compile goes through ``train_on_batch``, which builds the compiled
    loss and the train function. Later steps call the train function directly, as ``fit``
    does: ``train_on_batch`` also resets the metrics and checks the build every step, which
    cost a 10-child population of 2x256 MLPs (batch 64, 6 epochs, 2 CPU cores) 10 % more CPU
    time (three paired runs, 2026-12-07). Under a strategy with several replicas, ``shards``
    holds the batch split over them and each replica trains on its slice, as under ``fit``;
    ``train_on_batch`` gives every replica the whole batch, the same update at the replica
    count's multiple of the compute (so does a batch that does not split evenly,
    ``shards=None``).
    """
    if child.train_function is None:
        return child.train_on_batch(x_batch, y_batch, return_dict=True)
    batch = (x_batch, y_batch) if shards is None else shards
    logs = child.train_function(iter([(*batch, None)]))
    return {name: float(np.asarray(value)) for name, value in logs.items()}


def _indices(alive: list[bool]) -> Iterator[int]:
    return (i for i, live in enumerate(alive) if live)


def _choose(scores: list[float], margin: float) -> int:
    """The best child by ``scores`` if it beats the control's by more than ``margin`` (or the
    control diverged); else the control. A NaN score (diverged, or stopped) is never chosen.

    >>> _choose([0.80, 0.83, math.nan], 0.0), _choose([0.80, 0.83], 0.05)
    (1, 0)
    >>> _choose([math.nan, 0.5, 0.7], 0.0), _choose([math.nan, math.nan], 0.0)
    (2, 0)
    """
    finite = [i for i, score in enumerate(scores) if math.isfinite(score)]
    if not finite:
        return 0
    best = max(finite, key=lambda i: scores[i])
    if math.isfinite(scores[0]) and not scores[best] > scores[0] + margin:
        return 0
    return best


def _accuracy(labels: np.ndarray, probabilities: np.ndarray) -> float:
    return float(np.mean(probabilities.argmax(-1) == labels))


def _metric(metric: Any) -> Callable[[np.ndarray, np.ndarray], float]:
    """The score of a child's predictions; NaN where they are not finite (a diverged child,
    which the argmax of its NaN rows would score as predicting class 0)."""
    if metric == "accuracy":
        compute = _accuracy
    elif callable(metric):
        compute = metric
    else:
        raise ValueError(f"metric must be 'accuracy' or a function; got {metric!r}.")

    def score(labels: np.ndarray, probabilities: np.ndarray) -> float:
        if not np.all(np.isfinite(probabilities)):
            return math.nan
        return float(compute(labels, probabilities))

    return score


def _ranked(scores: list[float], candidates: list[int]) -> list[int]:
    """Best first; a NaN score (a diverged child) ranks last."""
    return sorted(candidates, key=lambda i: -scores[i] if math.isfinite(scores[i]) else math.inf)


def _exploit_pairs(
    scores: list[float], alive: list[bool], fraction: float
) -> list[tuple[int, int]]:
    """``(source, target)`` copies: the worst ``fraction`` of the non-control children, and
    every diverged one (NaN score), take the best children's places, best to worst."""
    adapted = [i for i in _indices(alive) if i != 0]
    if len(adapted) < 2:
        return []
    diverged = sum(not math.isfinite(scores[i]) for i in adapted)
    count = max(1, int(fraction * len(adapted)), diverged)
    everyone = [i for i in _ranked(scores, [0, *adapted]) if math.isfinite(scores[i])]
    worst = _ranked(scores, adapted)[::-1][:count]
    pairs = []
    for source, target in zip(everyone, worst, strict=False):
        better = not math.isfinite(scores[target]) or scores[source] > scores[target]
        if source != target and better:
            pairs.append((source, target))
    return pairs


def _explore(
    losses: list[ChildLoss],
    source: int,
    target: int,
    by_name: dict[str, LossFamily],
    rng: np.random.Generator,
    factors: Sequence[float],
) -> ChildLoss:
    base = losses[target] if losses[source].family == CONTROL else losses[source]
    family = by_name[base.family]
    return ChildLoss(base.family, family.perturb(base.params, rng, factors))


def _halve(scores: list[float], alive: list[bool]) -> list[int]:
    adapted = [i for i in _indices(alive) if i != 0]
    if len(adapted) < 2:
        return []
    keep = math.ceil(len(adapted) / 2)
    return sorted(_ranked(scores, adapted)[keep:])


def _save(
    backup: Path,
    fingerprint: dict,
    epoch: int,
    steps: int,
    children: list[keras.Model],
    losses: list[ChildLoss],
    alive: list[bool],
    decisions: list[Decision],
) -> None:
    backup.mkdir(parents=True, exist_ok=True)
    for i, child in enumerate(children):
        save_state(child, backup / f"child-{i}.npz")  # stopped ones too: the result has them
    state = {
        "fingerprint": fingerprint,
        "epoch": epoch,
        "steps": steps,
        "losses": [asdict(loss) for loss in losses],
        "alive": alive,
        "decisions": [asdict(decision) for decision in decisions],
    }
    partial = backup / (_STATE_FILE + ".partial")
    partial.write_text(json.dumps(state, indent=1, allow_nan=True))
    partial.replace(backup / _STATE_FILE)


def _resume(
    backup: Path,
    fingerprint: dict,
    children: list[keras.Model],
    by_name: dict[str, LossFamily],
    optimizer: Any,
    epochs: int,
    steps_per_epoch: int,
    scope: Any,
) -> tuple[int, int, list[ChildLoss], list[bool], list[Decision], list]:
    state = json.loads((backup / _STATE_FILE).read_text())
    if state["fingerprint"] != fingerprint:
        raise ValueError(
            f"backup_dir {str(backup)!r} holds a different search ({state['fingerprint']}; this "
            f"one is {fingerprint}). Give a new folder, or delete that one to start over."
        )
    losses = [ChildLoss(entry["family"], entry["params"]) for entry in state["losses"]]
    callbacks = []
    with scope():
        for i, (child, loss) in enumerate(zip(children, losses, strict=True)):
            family = by_name[loss.family]
            callbacks.append(_setup(child, family, loss, optimizer, epochs, steps_per_epoch))
            load_state(child, backup / f"child-{i}.npz")
    decisions = [
        Decision(
            entry["epoch"], entry["scores"], [tuple(e) for e in entry["exploits"]], entry["dropped"]
        )
        for entry in state["decisions"]
    ]
    return state["epoch"], state["steps"], losses, state["alive"], decisions, callbacks
