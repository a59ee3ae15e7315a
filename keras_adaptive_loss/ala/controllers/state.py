"""Per-model state of the ALA controller, in variables (Huang et al., ICML 2019, Sec. 3.2)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import keras
import numpy as np

__all__ = ["MAX_STATE_BYTES", "MemberState", "feature_size", "state_features"]

_EPSILON = 1e-8

#: The most memory, in bytes, that one model's controller state may take. ALA's class
#: correlation loss has a parameter per pair of classes, C (C - 1) / 2 of them, each with its
#: statistics history and pending state (about 0.4 kB with the defaults), so 3,000 classes
#: would need about 2 GB before the per-decision arrays; raise this to allow more.
MAX_STATE_BYTES = 2**30


def feature_size(num_statistics: int, history: int) -> int:
    """Length of one parameter's state vector (see `state_features`).

    >>> feature_size(num_statistics=2, history=3)  # 3 * 2 * 2 + 2 + 2
    16
    """
    return history * 2 * num_statistics + num_statistics + 2


def _normalised(statistics: np.ndarray) -> np.ndarray:
    """``[P, S]`` -> ``[P, 2S]``: each column standardised across the parameters, and divided
    by its mean magnitude."""
    mean = statistics.mean(0, keepdims=True)
    spread = statistics.std(0, keepdims=True)
    standardised = (statistics - mean) / (spread + _EPSILON)
    scaled = statistics / (np.abs(statistics).mean(0, keepdims=True) + _EPSILON)
    return np.concatenate([standardised, scaled], axis=1)


def state_features(
    past: list[np.ndarray], relative: np.ndarray, parameters: np.ndarray, progress: float,
    history: int,
) -> np.ndarray:  # fmt: skip
    """``[parameters, feature_size]`` states from the statistics of the last decisions.

    For every parameter, as in Sec. 3.2: its validation statistics at the last ``history``
    decisions (oldest first, padded with the oldest), their relative change from a moving
    average, the parameter's current value, and the training progress. The paper normalises
    the statistics "for generic policy learning" without saying how. Dividing every statistic
    by one global mean (this package's first version) made all class pairs look alike, and
    the policy then gave nearly the same probabilities to every pair; so each statistic is
    given twice: standardised across the parameters at that step (what tells one pair from
    another) and divided by its mean magnitude (what tells early from late training).

    >>> statistics = np.array([[1.0, 2.0], [3.0, 4.0]])  # 2 parameters, 2 statistics
    >>> states = state_features([statistics], np.zeros((2, 2)), [0.1, 0.2], 0.5, history=1)
    >>> states.shape == (2, feature_size(2, 1))
    True
    >>> states[:, 0].tolist(), states[:, -2:].round(4).tolist()  # standardised; value, progress
    ([-1.0, 1.0], [[0.1, 0.5], [0.2, 0.5]])
    """
    if not past:
        raise ValueError("state_features: no statistics observed yet.")
    padded = [past[0]] * (history - len(past)) + list(past[-history:])
    parameters = np.asarray(parameters, "float64").reshape(-1, 1)
    progress_column = np.full((len(parameters), 1), float(np.clip(progress, 0.0, 1.0)))
    columns = [_normalised(step) for step in padded]
    columns += [np.clip(relative, -10.0, 10.0), parameters, progress_column]
    return np.concatenate(columns, axis=1).astype("float32")


class _Transaction:
    """The arrays read and changed inside one `MemberState.transaction`."""

    def __init__(self) -> None:
        self.values: dict[str, np.ndarray] = {}
        self.changed: set[str] = set()


class MemberState(keras.layers.Layer):
    """Everything the controller keeps about one model it steers, as non-trainable variables.

    The statistics of the last ``history`` decisions and their moving average, the decision
    awaiting its reward (states and actions), the metric of the last period, the measurements
    of the current period and the step schedule. The model's loss holds this layer (and, through
    it, the shared `AlignmentController`), so ``model.save_weights``,
    `keras.callbacks.BackupAndRestore` and ``.keras`` files carry the whole controller.

    Args:
        controller: the `AlignmentController` this model reports to.
        num_parameters: how many loss parameters the controller decides on.
        num_statistics: validation statistics per parameter.
        history: decisions of statistics kept (10 in the paper).
        max_measurements: validation measurements per period.
        momentum: momentum of the moving average behind the relative change.

    >>> from keras_adaptive_loss.ala.controllers import AlignmentController, Observation
    >>> controller = AlignmentController(feature_size(2, 1), seed=0)
    >>> member = controller.add_member(3, num_statistics=2, history=1, max_measurements=1)
    >>> _ = controller.step([Observation(member, 0.3, np.ones((3, 2)), np.zeros(3), 0.1)])
    >>> member.counter("decisions"), member.previous
    (1, 0.3)
    """

    def __init__(
        self,
        controller: Any,
        num_parameters: int,
        num_statistics: int,
        history: int = 10,
        max_measurements: int = 4,
        momentum: float = 0.9,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if num_statistics < 1 or history < 1 or num_parameters < 1:
            raise ValueError(
                "num_parameters, num_statistics and history must be >= 1; got "
                f"{num_parameters}, {num_statistics}, {history}."
            )
        self.controller = controller
        self.num_parameters = int(num_parameters)
        self.num_statistics = int(num_statistics)
        self.history = int(history)
        self.momentum = float(momentum)
        size = feature_size(self.num_statistics, self.history)
        parameters, statistics = self.num_parameters, self.num_statistics
        shapes = {
            "past": ((self.history, parameters, statistics), "float64"),
            "average": ((parameters, statistics), "float64"),
            "relative": ((parameters, statistics), "float64"),
            "pending_states": ((parameters, size), "float32"),
            "pending_actions": ((parameters,), "int64"),
            "period_metrics": ((max_measurements + 1,), "float64"),
            "previous": ((), "float64"),
            # past_count, has_average, has_pending, has_previous, period_count, decisions,
            # next_measurement, next_decision
            "counters": ((8,), "int64"),
        }
        needed = sum(
            int(np.prod(shape)) * np.dtype(dtype).itemsize for shape, dtype in shapes.values()
        )
        if needed > MAX_STATE_BYTES:
            raise ValueError(
                f"The controller state of {parameters} parameters (e.g. a class-pair "
                f"correlation over {int(np.ceil(np.sqrt(2 * parameters)))} classes) would take "
                f"{needed / 2**30:.1f} GiB, over MAX_STATE_BYTES={MAX_STATE_BYTES}. Adapt fewer "
                "parameters (fewer classes, or a shorter history), or raise "
                "keras_adaptive_loss.ala.controllers.state.MAX_STATE_BYTES."
            )
        self.arrays = {
            name: self.add_weight(
                shape=shape, initializer="zeros", dtype=dtype, trainable=False, name=name
            )
            for name, (shape, dtype) in shapes.items()
        }
        self._transaction: _Transaction | None = None
        self.built = True

    _COUNTERS = (
        "past_count",
        "has_average",
        "has_pending",
        "has_previous",
        "period_count",
        "decisions",
        "next_measurement",
        "next_decision",
    )

    @contextlib.contextmanager
    def transaction(self) -> Iterator[None]:
        """Within it, each array is read from its variable once and each changed array is
        written back once, on leaving (nothing is written if the block raises).

        One decision reads and writes the counters some 50 times, and each variable read or
        assignment is a separate TensorFlow call. Outside a transaction every read and write
        goes to the variables, so a restored checkpoint is always seen. Nested transactions
        join the outer one.

        >>> from keras_adaptive_loss.ala.controllers import AlignmentController
        >>> member = AlignmentController(feature_size(2, 1), seed=0).add_member(3, 2, 1, 1)
        >>> with member.transaction():
        ...     member.set_counter("decisions", 7)
        ...     int(member.arrays["counters"].numpy()[5])  # not written yet
        0
        >>> member.counter("decisions")
        7
        """
        if self._transaction is not None:
            yield
            return
        self._transaction = _Transaction()
        try:
            yield
            for name in self._transaction.changed:
                self.arrays[name].assign(self._transaction.values[name])
        finally:
            self._transaction = None

    def counter(self, name: str) -> int:
        return int(self.read("counters")[self._COUNTERS.index(name)])

    def set_counter(self, name: str, value: int) -> None:
        counters = self.read("counters")
        counters[self._COUNTERS.index(name)] = int(value)
        self.write("counters", counters)

    def read(self, name: str) -> np.ndarray:
        transaction = self._transaction
        if transaction is None:
            return np.asarray(self.arrays[name].numpy())
        if name not in transaction.values:
            transaction.values[name] = np.asarray(self.arrays[name].numpy())
        return transaction.values[name].copy()

    def write(self, name: str, value: Any) -> None:
        variable = self.arrays[name]
        value = np.asarray(value, dtype=variable.dtype).reshape(variable.shape)
        if self._transaction is None:
            variable.assign(value)
        else:
            self._transaction.values[name] = value.copy()
            self._transaction.changed.add(name)

    # Measurements of the current period ---------------------------------------------------

    def add_measurement(self, value: float) -> None:
        count = self.counter("period_count")
        metrics = self.read("period_metrics")
        if count == len(metrics):  # more measurements than planned: keep the latest ones
            metrics, count = np.roll(metrics, -1), count - 1
        metrics[count] = value
        self.write("period_metrics", metrics)
        self.set_counter("period_count", count + 1)

    def take_measurements(self) -> list[float]:
        count = self.counter("period_count")
        self.set_counter("period_count", 0)
        return [float(v) for v in self.read("period_metrics")[:count]]

    # Statistics and states -----------------------------------------------------------------

    def observe(self, statistics: np.ndarray) -> None:
        """Adds one decision's statistics, shape ``[parameters, num_statistics]``."""
        statistics = np.asarray(statistics, "float64")
        if statistics.shape != (self.num_parameters, self.num_statistics):
            raise ValueError(
                f"statistics must have shape [{self.num_parameters}, {self.num_statistics}]; "
                f"got {statistics.shape}."
            )
        if not np.isfinite(statistics).all():
            raise ValueError("MemberState.observe: statistics must be finite.")
        count = self.counter("past_count")
        past = self.read("past")
        if count == self.history:
            past = np.roll(past, -1, axis=0)
            count -= 1
        past[count] = statistics
        self.write("past", past)
        self.set_counter("past_count", count + 1)
        average = self.read("average") if self.counter("has_average") else statistics
        self.write("relative", (statistics - average) / (np.abs(average) + _EPSILON))
        self.write("average", self.momentum * average + (1 - self.momentum) * statistics)
        self.set_counter("has_average", 1)

    def features(self, parameters: np.ndarray, progress: float) -> np.ndarray:
        """``[parameters, feature_size]`` states (see `state_features`)."""
        past = list(self.read("past")[: self.counter("past_count")])
        return state_features(past, self.read("relative"), parameters, progress, self.history)

    @property
    def pending(self) -> tuple[np.ndarray, np.ndarray] | None:
        if not self.counter("has_pending"):
            return None
        return self.read("pending_states"), self.read("pending_actions")

    def set_pending(self, states: np.ndarray | None, actions: np.ndarray | None) -> None:
        if states is None:
            self.set_counter("has_pending", 0)
            return
        self.write("pending_states", states)
        self.write("pending_actions", actions)
        self.set_counter("has_pending", 1)

    @property
    def previous(self) -> float | None:
        return float(self.read("previous")) if self.counter("has_previous") else None

    def set_previous(self, value: float) -> None:
        self.write("previous", value)
        self.set_counter("has_previous", 1)
