"""keras-adaptive-loss: adaptive, stochastic and metric-aligned losses for Keras 3.

>>> import keras_adaptive_loss as kal
>>> loss = kal.CrossentropyExpectationMix()
>>> schedule = kal.callbacks.FocusSchedule("0-0.5")
"""

__version__ = "0.1.0"

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
from keras_adaptive_loss.comparison import compare
from keras_adaptive_loss.losses import AdaptiveLoss, CrossentropyExpectationMix, StochasticLoss

__all__ = [
    "AdaptiveLoss",
    "CrossentropyExpectationMix",
    "StochasticLoss",
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
