"""Callbacks that record what `kal.compare` reports: epoch times, adapted parameters, and the
model weights of the best validation epoch."""

from __future__ import annotations

import time

import keras
import numpy as np

from keras_adaptive_loss.losses import AdaptiveLoss

__all__ = ["BestEpochWeights", "EpochTimer", "ParameterRecorder"]


class EpochTimer(keras.callbacks.Callback):
    """Wall time of each epoch's training part (validation excluded, controllers included)."""

    def __init__(self) -> None:
        super().__init__()
        self.seconds: list[float] = []
        self._start: float | None = None

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self._start = time.perf_counter()

    def on_test_begin(self, logs: dict | None = None) -> None:
        self._stop()

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        self._stop()

    def _stop(self) -> None:
        if self._start is not None:  # validation inside fit: stop before it
            self.seconds.append(time.perf_counter() - self._start)
            self._start = None


class ParameterRecorder(keras.callbacks.Callback):
    """Values of every adaptive parameter of the compiled loss, at the start and each epoch end.

    ``trajectories[name]`` is a list of ``epochs + 1`` values (floats, or nested lists for
    array parameters such as ALA's Φ). Records nothing for a loss without adaptive parameters.
    """

    def __init__(self) -> None:
        super().__init__()
        self.trajectories: dict[str, list] = {}
        self._loss: AdaptiveLoss | None = None

    def on_train_begin(self, logs: dict | None = None) -> None:
        found = [x for x in keras.tree.flatten(self.model.loss) if isinstance(x, AdaptiveLoss)]
        self._loss = found[0] if found else None
        self._record()

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        self._record()

    def _record(self) -> None:
        if self._loss is None:
            return
        for name, value in self._loss.parameters.items():
            value = np.asarray(value)
            entry = float(value) if value.ndim == 0 else value.tolist()
            self.trajectories.setdefault(name, []).append(entry)


class BestEpochWeights(keras.callbacks.Callback):
    """Keeps the weights of the epoch with the best ``monitor`` (higher is better) and puts them
    back into the model when training ends.

    Args:
        monitor: the log to select by (default ``val_accuracy``).
        latest_ties: on a tie, take the later epoch (else the earlier one).

    Attributes:
        best_epoch: 1-based epoch whose weights the model holds after training.
    """

    def __init__(self, monitor: str = "val_accuracy", latest_ties: bool = False) -> None:
        super().__init__()
        self.monitor = monitor
        self.latest_ties = bool(latest_ties)
        self.best_epoch: int | None = None
        self._best: float = -np.inf
        self._weights: list | None = None

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        logs = logs or {}
        if self.monitor not in logs:
            raise ValueError(
                f"BestEpochWeights selects by {self.monitor!r}, which the logs lack (they have "
                f"{sorted(logs)}); train with validation data and an accuracy metric."
            )
        value = float(logs[self.monitor])
        if value > self._best or (self.latest_ties and value == self._best):
            self._best, self.best_epoch = value, epoch + 1
            self._weights = self.model.get_weights()

    def on_train_end(self, logs: dict | None = None) -> None:
        if self._weights is not None:
            self.model.set_weights(self._weights)
