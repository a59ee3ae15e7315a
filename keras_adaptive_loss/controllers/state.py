"""Per-parameter state vectors of the ALA controller (Huang et al., ICML 2019, Sec. 3.2)."""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["StateFeatures"]

_EPSILON = 1e-8


class StateFeatures:
    """Builds the state ``s_t`` of each loss parameter from validation statistics.

    For every parameter the state holds (Sec. 3.2): its validation statistics over the last
    ``history`` time steps, their relative change from an exponential moving average, the
    parameter's current value, and the training progress (iteration / total iterations). The
    statistics are normalised by their mean magnitude over all parameters at that step, so the
    policy does not depend on the scale of a task's predictions; the feature size depends only
    on ``num_statistics`` and ``history`` — not on the number of parameters — which is what
    lets a policy move to a task with another number of classes (Sec. 6.3).

    Args:
        num_statistics: statistics per parameter (2 for a class pair: ``[C_ij, C_ji]``).
        history: time steps of statistics kept (10 in the paper).
        momentum: momentum of the moving average behind the relative change.
    """

    def __init__(self, num_statistics: int, history: int = 10, momentum: float = 0.9) -> None:
        if num_statistics < 1 or history < 1:
            raise ValueError(
                f"num_statistics and history must be >= 1; got {num_statistics}, {history}."
            )
        self.num_statistics = int(num_statistics)
        self.history = int(history)
        self.momentum = float(momentum)
        self._past: list[np.ndarray] = []
        self._average: np.ndarray | None = None

    @property
    def feature_size(self) -> int:
        return self.history * self.num_statistics + self.num_statistics + 2

    def observe(self, statistics: np.ndarray) -> None:
        """Adds one time step of statistics, shape ``[parameters, num_statistics]``."""
        statistics = np.asarray(statistics, "float64")
        if statistics.ndim != 2 or statistics.shape[1] != self.num_statistics:
            raise ValueError(
                f"statistics must have shape [parameters, {self.num_statistics}]; got "
                f"{statistics.shape}."
            )
        if not np.isfinite(statistics).all():
            raise ValueError("StateFeatures.observe: statistics must be finite.")
        scale = np.abs(statistics).mean() + _EPSILON
        self._past = [*self._past[-(self.history - 1) :], statistics / scale]
        if self._average is None or self._average.shape != statistics.shape:
            self._average = statistics.copy()
        self._relative = (statistics - self._average) / (np.abs(self._average) + _EPSILON)
        self._average = self.momentum * self._average + (1 - self.momentum) * statistics

    def features(self, parameters: np.ndarray, progress: float) -> np.ndarray:
        """``[parameters, feature_size]`` states for the current parameter values."""
        if not self._past:
            raise ValueError("StateFeatures.features: observe() statistics first.")
        parameters = np.asarray(parameters, "float64").reshape(-1, 1)
        past = [self._past[0]] * (self.history - len(self._past)) + self._past  # pad the start
        count = parameters.shape[0]
        progress_column = np.full((count, 1), float(np.clip(progress, 0.0, 1.0)))
        columns = [*past, np.clip(self._relative, -10.0, 10.0), parameters, progress_column]
        return np.concatenate(columns, axis=1).astype("float32")

    def get_state(self) -> dict[str, Any]:
        return {
            "past": [p.tolist() for p in self._past],
            "average": None if self._average is None else self._average.tolist(),
            "relative": getattr(self, "_relative", np.zeros(0)).tolist(),
        }

    def set_state(self, state: dict[str, Any]) -> None:
        self._past = [np.asarray(p, "float64") for p in state["past"]]
        self._average = None if state["average"] is None else np.asarray(state["average"])
        self._relative = np.asarray(state["relative"], "float64")
