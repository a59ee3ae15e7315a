"""UniLoss: a metric refactored as scores -> comparisons -> binaries -> metric, interpolated
over anchors (`UniLoss` and its accuracy, AP, F-beta and PCKh forms; `refactorings`).

Reference: Liu, Wang & Deng, "A Unified Framework of Surrogate Loss by Refactoring and
Interpolation" (UniLoss), ECCV 2020, arXiv:2007.13870.
"""

from keras_adaptive_loss.uniloss import refactorings
from keras_adaptive_loss.uniloss.loss import (
    UniLoss,
    UniLossAccuracy,
    UniLossAveragePrecision,
    UniLossFBeta,
    UniLossPCKh,
)

__all__ = [
    "UniLoss",
    "UniLossAccuracy",
    "UniLossAveragePrecision",
    "UniLossFBeta",
    "UniLossPCKh",
    "refactorings",
]
