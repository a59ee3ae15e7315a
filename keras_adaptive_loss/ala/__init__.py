"""Adaptive Loss Alignment (ALA): the losses whose parameters Φ the controller moves, the
`AdaptiveLossAlignment` callback, the controller (`controllers`) and the multi-model setting
(`fit_children`: child models in lockstep under one shared controller). The callback and
`fit_children` measure and decide through the same path (`measure`).

Reference: Huang, Zhai, Talbott et al., "Addressing the Loss-Metric Mismatch with Adaptive Loss
Alignment", ICML 2019 (arXiv:1905.05895).
"""

from keras_adaptive_loss.ala.callback import AdaptiveLossAlignment
from keras_adaptive_loss.ala.losses import (
    ClassCorrelationLoss,
    DistanceMixtureLoss,
    FocalWeightingLoss,
)
from keras_adaptive_loss.ala.population import PopulationResult, fit_children

__all__ = [
    "AdaptiveLossAlignment",
    "ClassCorrelationLoss",
    "DistanceMixtureLoss",
    "FocalWeightingLoss",
    "PopulationResult",
    "fit_children",
]
