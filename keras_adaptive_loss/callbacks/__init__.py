"""Keras callbacks that drive adaptive losses during `fit`.

>>> import keras_adaptive_loss as kal
>>> sorted(kal.callbacks.__all__)
['FocusSchedule', 'ParameterSchedule']
"""

from keras_adaptive_loss.callbacks.focus_schedule import FocusSchedule
from keras_adaptive_loss.callbacks.parameter_schedule import ParameterSchedule

__all__ = ["FocusSchedule", "ParameterSchedule"]
