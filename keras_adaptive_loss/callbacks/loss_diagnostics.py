"""`LossDiagnostics`: write what an adaptive loss measured during the epoch into the logs."""

from __future__ import annotations

import warnings
from typing import Any

from keras_adaptive_loss.callbacks.loss_lookup import find_compiled_loss
from keras_adaptive_loss.callbacks.reported_values import ReportingCallback

__all__ = ["LossDiagnostics"]


def _has_diagnostics(loss: Any) -> bool:
    return all(
        callable(getattr(loss, method, None))
        for method in ("diagnostics", "diagnostic_sources", "reset_diagnostics")
    )


class LossDiagnostics(ReportingCallback):
    """Adds a compiled loss's per-epoch diagnostics to the epoch logs.

    For a `StochasticLoss`: the mean selection weight of each candidate over the epoch's
    training steps (``slf_weight_<name>``) and the temperature (``slf_temperature``), so
    History, CSVLogger and TensorBoard show how the selection evolves. The statistics are
    gathered inside the training step (on every replica, averaged) and never by `evaluate` or
    validation; this callback only resets them at the start of each epoch and reports them as a
    metric of the train step, so History, CSVLogger, TensorBoard and the progress bar show them
    whatever the order of ``callbacks=[...]``.

    It warns (once per `fit`) when a `StochasticLoss`'s selection has collapsed onto one
    candidate for an epoch (mean weight >= 0.95, `StochasticLoss.collapsed_onto`): training is
    then single-loss training with that candidate, which you could name directly.

    Args:
        loss_name: name of the loss when several compiled losses have diagnostics.

    >>> import keras
    >>> import numpy as np
    >>> import keras_adaptive_loss as kal
    >>> model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, activation="softmax")])
    >>> model.compile(optimizer="adam", loss=kal.StochasticLoss(["crossentropy", "mse"], seed=0))
    >>> x, y = np.random.default_rng(0).normal(size=(32, 4)), np.arange(32) % 3
    >>> diagnostics = kal.callbacks.LossDiagnostics()
    >>> history = model.fit(x, y, epochs=2, verbose=0, callbacks=[diagnostics])
    >>> weights = [history.history[f"slf_weight_{n}"] for n in ("crossentropy", "mse")]
    >>> np.round(np.sum(weights, axis=0), 5).tolist()  # the mean selection weights sum to one
    [1.0, 1.0]
    """

    def __init__(self, loss_name: str | None = None) -> None:
        super().__init__()
        self.loss_name = loss_name
        self._loss: Any = None
        self._warned_collapse = False

    def on_train_begin(self, logs: dict | None = None) -> None:
        self._loss = find_compiled_loss(
            self.model,
            _has_diagnostics,
            caller="LossDiagnostics",
            wanted="a loss with diagnostics, such as kal.StochasticLoss",
            loss_name=self.loss_name,
            example="kal.StochasticLoss(['crossentropy', 'mse'])",
        )
        self._warned_collapse = False
        self._start_reporting(self._loss.diagnostic_sources())

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self._loss.reset_diagnostics()
        self._skipped = self._loss.diagnostics().get("slf_skipped_steps", 0.0)

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        diagnostics = self._loss.diagnostics()
        skipped = diagnostics.get("slf_skipped_steps", 0.0) - self._skipped
        if skipped > 0:
            warnings.warn(
                f"LossDiagnostics: {skipped:.0f} training step(s) of epoch {epoch} had an empty "
                f"or non-finite batch; {getattr(self._loss, 'name', 'the loss')} skipped its own "
                "update for them (the model's step still ran: check the data for NaN/inf).",
                stacklevel=2,
            )
        collapsed = getattr(self._loss, "collapsed_onto", lambda: None)()
        if collapsed is not None and not self._warned_collapse:
            self._warned_collapse = True
            warnings.warn(
                f"LossDiagnostics: the selection of {getattr(self._loss, 'name', 'the loss')} "
                f"collapsed onto {collapsed!r} in epoch {epoch} (mean weight >= 0.95): it now "
                f"trains with {collapsed!r} alone. If that persists, compare that loss alone "
                "with cross-entropy, or spread the selection (entropy=, a higher temperature).",
                stacklevel=2,
            )
        self._fill_missing(logs)
