"""Keras callbacks that drive adaptive losses during `fit`.

>>> import keras_adaptive_loss as kal
>>> sorted(kal.callbacks.__all__)[:3]
['AdaptiveLossAlignment', 'DeferredReweighting', 'FocusSchedule']
"""

from keras_adaptive_loss.callbacks.adaptive_loss_alignment import AdaptiveLossAlignment
from keras_adaptive_loss.callbacks.deferred_reweighting import DeferredReweighting
from keras_adaptive_loss.callbacks.focus_schedule import FocusSchedule
from keras_adaptive_loss.callbacks.loss_diagnostics import LossDiagnostics
from keras_adaptive_loss.callbacks.loss_parameter_logger import LossParameterLogger
from keras_adaptive_loss.callbacks.parameter_schedule import ParameterSchedule
from keras_adaptive_loss.callbacks.temperature_schedule import TemperatureSchedule
from keras_adaptive_loss.callbacks.validation_selection import ValidationSelection

__all__ = [
    "AdaptiveLossAlignment",
    "DeferredReweighting",
    "FocusSchedule",
    "LossDiagnostics",
    "LossParameterLogger",
    "ParameterSchedule",
    "TemperatureSchedule",
    "ValidationSelection",
]
