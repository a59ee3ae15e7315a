"""`LossParameterLogger`: every scalar adaptive parameter of the compiled losses, in the logs."""

from __future__ import annotations

from typing import Any

import keras
import numpy as np

from keras_adaptive_loss.losses.base import AdaptiveLoss

__all__ = ["LossParameterLogger"]


class LossParameterLogger(keras.callbacks.Callback):
    """Writes ``<loss name>_<parameter>`` for every scalar parameter of every compiled
    `kal.losses.AdaptiveLoss` into the epoch logs (History, CSVLogger, TensorBoard).

    Made for losses whose parameters are learned or changed during `fit` without a callback
    of their own, such as the ``log_variance`` of each `UncertaintyWeightedLoss` of a
    multi-output model. Losses are found through ``self.model.loss`` at ``on_train_begin``.
    List it before ``CSVLogger`` / ``TensorBoard``.

    Raises:
        ValueError: at ``on_train_begin``, if the model has no compiled adaptive loss.

    >>> import keras_adaptive_loss as kal
    >>> logger = kal.callbacks.LossParameterLogger()
    """

    def __init__(self) -> None:
        super().__init__()
        self._losses: list[AdaptiveLoss] = []

    def on_train_begin(self, logs: dict | None = None) -> None:
        compiled = getattr(self.model, "loss", None)
        unique = {id(loss): loss for loss in keras.tree.flatten(compiled) if loss is not None}
        self._losses = [loss for loss in unique.values() if isinstance(loss, AdaptiveLoss)]
        if not self._losses:
            raise ValueError(
                "LossParameterLogger found no adaptive loss to log: the model was compiled with "
                f"loss={compiled!r}. Compile with a kal.losses.AdaptiveLoss, e.g. "
                "kal.losses.UncertaintyWeightedLoss('crossentropy')."
            )

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        if logs is None:
            return
        for loss in self._losses:
            for name, value in loss.parameters.items():
                if np.ndim(value) == 0:
                    logs[f"{loss.name}_{name}"] = float(value)

    def values(self) -> dict[str, Any]:
        """The current values the callback would log."""
        logs: dict[str, Any] = {}
        self.on_epoch_end(0, logs)
        return logs
