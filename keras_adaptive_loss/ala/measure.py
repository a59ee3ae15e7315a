"""ALA's measure-and-decide path, shared by `AdaptiveLossAlignment` and `fit_children`.

Each model adapted by ALA is measured on held-out data a few times per period
(`ValidationPass`); at the end of a period its measurements are discounted into the period's
metric (Eq. 4 of "Adaptive Loss Alignment", arXiv 1905.05895) and handed to the controller,
with the validation statistics of the last measurement, as an `Observation` (`observe`).
"""

from __future__ import annotations

import math
from typing import Any

import keras
import numpy as np

from keras_adaptive_loss._tensorflow import compiled
from keras_adaptive_loss.ala.controllers.controller import Observation
from keras_adaptive_loss.ala.controllers.reward import discounted_metric
from keras_adaptive_loss.ala.controllers.state import MemberState
from keras_adaptive_loss.ala.losses import (
    ClassCorrelationLoss,
    DistanceMixtureLoss,
    FocalWeightingLoss,
)

__all__ = ["ALA_LOSSES", "DEFAULT_DISCOUNT", "ValidationPass", "observe"]

#: The losses whose parameters ALA adapts.
ALA_LOSSES = (ClassCorrelationLoss, DistanceMixtureLoss, FocalWeightingLoss)
#: gamma of Eq. 4, the discount of a period's measurements.
DEFAULT_DISCOUNT = 0.9


class ValidationPass:
    """A model's predictions on held-out inputs, ``model(x, training=False)`` in batches.

    The forward pass is one compiled function, traced once: `keras.Model.predict` would trace
    a new function per call site and reset the model's metrics, and `evaluate` would too.

    Args:
        model: the model to measure.
        x_val: the held-out inputs.
        batch_size: inputs per forward pass.

    Example:

    >>> import keras, numpy as np
    >>> model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(3)])
    >>> ValidationPass(model, np.zeros((5, 2), "float32"), batch_size=2)().shape
    (5, 3)
    """

    def __init__(self, model: keras.Model, x_val: Any, batch_size: int = 1024) -> None:
        self.x_val, self.batch_size = x_val, int(batch_size)
        self._predict = compiled(lambda x: model(x, training=False))

    def __call__(self) -> np.ndarray:
        size = self.batch_size
        parts = [
            keras.ops.convert_to_numpy(self._predict(self.x_val[i : i + size]))
            for i in range(0, len(self.x_val), size)
        ]
        return np.concatenate(parts, axis=0)


def observe(
    member: MemberState,
    adapter: Any,
    measurements: list[float],
    y_val: Any,
    predictions: np.ndarray,
    discount: float,
    progress: float,
) -> tuple[float, Observation | None]:
    """The period's metric (Eq. 4) and what the controller observes of one model.

    Args:
        member: the model's `MemberState`.
        adapter: the model's loss adapter (`keras_adaptive_loss.ala.controllers.adapters`).
        measurements: the period's finite validation metrics, oldest first.
        y_val: the held-out targets.
        predictions: the model's predictions on the held-out inputs (the last measurement).
        discount: gamma of Eq. 4.
        progress: training progress in [0, 1].

    Returns:
        ``(metric, observation)``: the discounted metric (NaN without measurements) and the
        `Observation`, ``None`` when there is no metric; its ``statistics`` are ``None`` when
        they are not finite (the controller then takes no decision for this model).

    Example:

    >>> import numpy as np
    >>> from keras_adaptive_loss.ala.controllers import AlignmentController, feature_size
    >>> from keras_adaptive_loss.ala.controllers.adapters import adapter_for
    >>> from keras_adaptive_loss.losses import ClassCorrelationLoss
    >>> adapter = adapter_for(ClassCorrelationLoss(2))
    >>> size = feature_size(adapter.num_statistics, 1)
    >>> member = AlignmentController(size, seed=0).add_member(
    ...     len(adapter.values()), adapter.num_statistics, 1, 2)
    >>> metric, seen = observe(member, adapter, [0.5, 0.7], np.array([0, 1]),
    ...     np.array([[0.8, 0.2], [0.3, 0.7]]), discount=0.9, progress=0.5)
    >>> round(metric, 4), seen.statistics is not None
    (0.6053, True)
    """
    if not measurements:
        return math.nan, None
    metric = discounted_metric(measurements, discount, normalize=True)
    statistics = adapter.statistics(y_val, predictions)
    finite = bool(np.isfinite(statistics).all())
    observation = Observation(
        member, metric, statistics if finite else None, adapter.values(), progress
    )
    return metric, observation
