"""Cross-entropy + expectation-loss mixing: `CrossentropyExpectationMix` and the
`FocusSchedule` callback that moves it through the F phases.

Reference: Battash, Wolf & Hazan, "Mixing between the Cross Entropy and the Expectation Loss
Terms", arXiv:2109.05635.
"""

from keras_adaptive_loss.mixing.focus_schedule import FocusSchedule
from keras_adaptive_loss.mixing.loss import (
    CrossentropyExpectationMix,
    focus_to_weights,
    weights_to_focus,
)

__all__ = ["CrossentropyExpectationMix", "FocusSchedule", "focus_to_weights", "weights_to_focus"]
