"""Keras callbacks that drive adaptive losses during `fit`. Names resolve on first use.

>>> import keras_adaptive_loss as kal
>>> sorted(kal.callbacks.__all__)[:3]
['AdaptiveLossAlignment', 'DeferredReweighting', 'FocusSchedule']
"""

from keras_adaptive_loss import _lazy, names

__getattr__, __dir__ = _lazy.lazy_names(__name__, names.CALLBACKS)

__all__ = sorted(names.CALLBACKS)
