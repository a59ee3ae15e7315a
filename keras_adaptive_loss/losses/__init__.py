"""Losses: the adaptive losses, the related-loss family and the candidate-loss registry.

`get`, `serialize` and `deserialize` resolve the package's loss classes as Keras's own do
(`keras_adaptive_loss.losses.lookup`); `get_candidate`, `serialize_candidate`,
`deserialize_candidate` and `available` are the per-sample candidate registry
(`keras_adaptive_loss.losses.registry`).

>>> import keras_adaptive_loss as kal
>>> len(kal.losses.available()), "poly1" in kal.losses.available()
(19, True)
"""

from keras_adaptive_loss.losses import (
    candidates,
    imbalance,
    metric_derived,
    metric_learning,
    noisy_labels,
    polynomial,
    refactorings,
)
from keras_adaptive_loss.losses.alignment import (
    ClassCorrelationLoss,
    DistanceMixtureLoss,
    FocalWeightingLoss,
)
from keras_adaptive_loss.losses.base import AdaptiveLoss
from keras_adaptive_loss.losses.candidate_loss import CandidateLoss
from keras_adaptive_loss.losses.decision import DecisionNetwork
from keras_adaptive_loss.losses.imbalance import ClassBalancedLoss, LDAMLoss
from keras_adaptive_loss.losses.lookup import deserialize, get, serialize
from keras_adaptive_loss.losses.metric_derived import AnyLoss, EnsLoss
from keras_adaptive_loss.losses.metric_learning import MultiSimilarityLoss
from keras_adaptive_loss.losses.mixing import (
    CrossentropyExpectationMix,
    focus_to_weights,
    weights_to_focus,
)
from keras_adaptive_loss.losses.noisy_labels import (
    ActivePassiveLoss,
    NormalizedCrossentropy,
    NormalizedFocalLoss,
    ReverseCrossentropy,
)
from keras_adaptive_loss.losses.polynomial import PolyLoss, Squentropy
from keras_adaptive_loss.losses.registry import (
    Candidate,
    available,
    deserialize_candidate,
    get_candidate,
    serialize_candidate,
)
from keras_adaptive_loss.losses.sparsemax import SparsemaxLoss
from keras_adaptive_loss.losses.stochastic import StochasticLoss
from keras_adaptive_loss.losses.uncertainty import UncertaintyWeightedLoss
from keras_adaptive_loss.losses.uniloss import (
    UniLoss,
    UniLossAccuracy,
    UniLossAveragePrecision,
    UniLossFBeta,
    UniLossPCKh,
)

__all__ = [
    "ActivePassiveLoss",
    "AdaptiveLoss",
    "AnyLoss",
    "Candidate",
    "CandidateLoss",
    "ClassBalancedLoss",
    "ClassCorrelationLoss",
    "CrossentropyExpectationMix",
    "DecisionNetwork",
    "DistanceMixtureLoss",
    "EnsLoss",
    "FocalWeightingLoss",
    "LDAMLoss",
    "MultiSimilarityLoss",
    "NormalizedCrossentropy",
    "NormalizedFocalLoss",
    "PolyLoss",
    "ReverseCrossentropy",
    "SparsemaxLoss",
    "Squentropy",
    "StochasticLoss",
    "UncertaintyWeightedLoss",
    "UniLoss",
    "UniLossAccuracy",
    "UniLossAveragePrecision",
    "UniLossFBeta",
    "UniLossPCKh",
    "available",
    "candidates",
    "deserialize",
    "deserialize_candidate",
    "focus_to_weights",
    "get",
    "get_candidate",
    "imbalance",
    "metric_derived",
    "metric_learning",
    "noisy_labels",
    "polynomial",
    "refactorings",
    "serialize",
    "serialize_candidate",
    "weights_to_focus",
]


def _register_names_with_keras() -> None:
    """``compile(loss="keras_adaptive_loss>PolyLoss")``: the registered names of the losses
    that build without arguments, in the table Keras resolves string losses from."""
    from keras_adaptive_loss import private_api
    from keras_adaptive_loss.losses import lookup

    classes = {
        name: cls
        for name, cls in lookup.loss_classes().items()
        if name[0].isupper() and not lookup.required_arguments(cls)
    }
    private_api.register_loss_names(classes)


_register_names_with_keras()
