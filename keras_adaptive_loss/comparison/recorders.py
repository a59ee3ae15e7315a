"""Callbacks that record what `kal.compare` reports: epoch times and adapted parameters."""

from __future__ import annotations

import time

import keras
import numpy as np

from keras_adaptive_loss.losses import AdaptiveLoss

__all__ = ["EpochTimer", "ParameterRecorder"]


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
