"""`LossParameterLogger`: every scalar adaptive parameter of the compiled losses, in the logs."""

from __future__ import annotations

from typing import Any

import keras
import numpy as np

from keras_adaptive_loss.callbacks.reported_values import ReportingCallback, Source
from keras_adaptive_loss.losses.base import AdaptiveLoss

__all__ = ["LossParameterLogger"]


class LossParameterLogger(ReportingCallback):
    """Reports ``<loss name>_<parameter>`` for every scalar parameter of every compiled
    `kal.losses.AdaptiveLoss` in the epoch logs (History, CSVLogger, TensorBoard).

    Made for losses whose parameters are learned or changed during `fit` without a callback
    of their own, such as the ``log_variance`` of each `UncertaintyWeightedLoss` of a
    multi-output model. Losses are found through ``self.model.loss`` at ``on_train_begin``.
    The values are reported as a metric of the train step, so every logger records them
    whatever the order of ``callbacks=[...]``.

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
        self._start_reporting(self._sources())

    def _sources(self) -> dict[str, Source]:
        sources: dict[str, Source] = {}
        for loss in self._losses:
            for name, value in loss.parameters.items():
                if np.ndim(value) == 0:
                    variable = loss.variable(name)
                    sources[f"{loss.name}_{name}"] = lambda variable=variable: variable
        return sources

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        self._fill_missing(logs)

    def values(self) -> dict[str, Any]:
        """The current values the callback logs."""
        sources = self._sources()
        return {key: float(keras.ops.convert_to_numpy(read())) for key, read in sources.items()}
