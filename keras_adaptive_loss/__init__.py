"""keras-adaptive-loss: adaptive, stochastic and metric-aligned losses for Keras 3.

>>> import keras_adaptive_loss as kal
>>> loss = kal.CrossentropyExpectationMix()
>>> schedule = kal.callbacks.FocusSchedule("0-0.5")
"""

__version__ = "0.1.0"

import keras as _keras

if _keras.backend.backend() != "tensorflow":
    raise ImportError(
        "keras-adaptive-loss runs on Keras's TensorFlow backend (it uses TensorFlow's custom "
        "gradients, tf.distribute and tf.data), but Keras is running on "
        f"{_keras.backend.backend()!r}. Set KERAS_BACKEND=tensorflow before Python imports "
        'keras (or "backend": "tensorflow" in ~/.keras/keras.json).'
    )

from keras_adaptive_loss import (
    alignment,
    callbacks,
    comparison,
    controllers,
    datasets,
    distribute,
    layers,
    losses,
    schedules,
    tuning,
)
from keras_adaptive_loss.callbacks import (
    AdaptiveLossAlignment,
    DeferredReweighting,
    FocusSchedule,
    LossDiagnostics,
    LossParameterLogger,
    ParameterSchedule,
    TemperatureSchedule,
    ValidationSelection,
)
from keras_adaptive_loss.comparison import compare
from keras_adaptive_loss.losses import (
    ActivePassiveLoss,
    AdaptiveLoss,
    AnyLoss,
    CandidateLoss,
    ClassBalancedLoss,
    ClassCorrelationLoss,
    CrossentropyExpectationMix,
    DistanceMixtureLoss,
    EnsLoss,
    FocalWeightingLoss,
    LDAMLoss,
    MultiSimilarityLoss,
    NormalizedCrossentropy,
    NormalizedFocalLoss,
    PolyLoss,
    ReverseCrossentropy,
    SparsemaxLoss,
    Squentropy,
    StochasticLoss,
    UncertaintyWeightedLoss,
    UniLoss,
    UniLossAccuracy,
    UniLossAveragePrecision,
    UniLossFBeta,
    UniLossPCKh,
)

# Every public loss and callback is reachable as kal.<Name> as well as from kal.losses /
# kal.callbacks (tests/registry_test.py checks that the lists stay complete).
__all__ = [
    "ActivePassiveLoss",
    "AdaptiveLoss",
    "AdaptiveLossAlignment",
    "AnyLoss",
    "CandidateLoss",
    "ClassBalancedLoss",
    "ClassCorrelationLoss",
    "CrossentropyExpectationMix",
    "DeferredReweighting",
    "DistanceMixtureLoss",
    "EnsLoss",
    "FocalWeightingLoss",
    "FocusSchedule",
    "LDAMLoss",
    "LossDiagnostics",
    "LossParameterLogger",
    "MultiSimilarityLoss",
    "NormalizedCrossentropy",
    "NormalizedFocalLoss",
    "ParameterSchedule",
    "PolyLoss",
    "ReverseCrossentropy",
    "SparsemaxLoss",
    "Squentropy",
    "StochasticLoss",
    "TemperatureSchedule",
    "UncertaintyWeightedLoss",
    "UniLoss",
    "UniLossAccuracy",
    "UniLossAveragePrecision",
    "UniLossFBeta",
    "UniLossPCKh",
    "ValidationSelection",
    "__version__",
    "alignment",
    "callbacks",
    "compare",
    "comparison",
    "controllers",
    "datasets",
    "distribute",
    "layers",
    "losses",
    "schedules",
    "tuning",
]
