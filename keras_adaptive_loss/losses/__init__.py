"""Losses: the candidate-loss registry and the adaptive losses built on it.

>>> import keras_adaptive_loss as kal
>>> len(kal.losses.available()), "poly1" in kal.losses.available()
(10, True)
"""

from keras_adaptive_loss.losses import candidates
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

__all__ = [
    "AdaptiveLoss",
    "Candidate",
    "CandidateLoss",
    "CrossentropyExpectationMix",
    "DecisionNetwork",
    "StochasticLoss",
    "available",
    "candidates",
    "deserialize",
    "focus_to_weights",
    "get",
    "serialize",
    "weights_to_focus",
]
