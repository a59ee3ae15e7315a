"""Losses: the candidate-loss registry and the adaptive losses built on it.

>>> import keras_adaptive_loss as kal
>>> len(kal.losses.available()), "poly1" in kal.losses.available()
(10, True)
"""

from keras_adaptive_loss.losses import candidates, refactorings
from keras_adaptive_loss.losses.alignment import (
    ClassCorrelationLoss,
    DistanceMixtureLoss,
    FocalWeightingLoss,
)
from keras_adaptive_loss.losses.base import AdaptiveLoss
from keras_adaptive_loss.losses.candidate_loss import CandidateLoss
from keras_adaptive_loss.losses.decision import DecisionNetwork
from keras_adaptive_loss.losses.mixing import (
    CrossentropyExpectationMix,
    focus_to_weights,
    weights_to_focus,
)
from keras_adaptive_loss.losses.registry import Candidate, available, deserialize, get, serialize
from keras_adaptive_loss.losses.stochastic import StochasticLoss
from keras_adaptive_loss.losses.uniloss import (
    UniLoss,
    UniLossAccuracy,
    UniLossAveragePrecision,
    UniLossFBeta,
    UniLossPCKh,
)

__all__ = [
    "AdaptiveLoss",
    "Candidate",
    "CandidateLoss",
    "ClassCorrelationLoss",
    "CrossentropyExpectationMix",
    "DecisionNetwork",
    "DistanceMixtureLoss",
    "FocalWeightingLoss",
    "StochasticLoss",
    "UniLoss",
    "UniLossAccuracy",
    "UniLossAveragePrecision",
    "UniLossFBeta",
    "UniLossPCKh",
    "available",
    "candidates",
    "deserialize",
    "focus_to_weights",
    "get",
    "refactorings",
    "serialize",
    "weights_to_focus",
]
