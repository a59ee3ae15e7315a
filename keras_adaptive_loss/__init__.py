"""keras-adaptive-loss: adaptive, stochastic and metric-aligned losses for Keras 3.

Public names resolve on first use (`keras_adaptive_loss.names` lists them), so importing the
package does not import TensorFlow; the package's classes are registered with Keras as soon as
Keras is imported, so `keras.models.load_model` finds them.

>>> import keras_adaptive_loss as kal
>>> loss = kal.CrossentropyExpectationMix()
>>> schedule = kal.callbacks.FocusSchedule("0-0.5")
"""

from keras_adaptive_loss import _lazy, names

__version__ = "0.1.0"

__getattr__, __dir__ = _lazy.lazy_names(
    __name__,
    {**names.LOSSES, **names.CALLBACKS, "compare": "keras_adaptive_loss.comparison.runner"},
    names.SUBMODULES,
)

# Every public loss and callback is reachable as kal.<Name> as well as from kal.losses /
# kal.callbacks (tests/registry_test.py checks that the lists stay complete).
__all__ = sorted(
    [*names.LOSSES, *names.CALLBACKS, *names.SUBMODULES, "__version__", "compare"],
    key=lambda name: (name[0].islower(), name),
)

_lazy.register_when_keras_is_imported()
