"""The ALA controller's logic, kept free of Keras callback code so that it can be tested alone.

`Policy` (shared per-parameter MLP, REINFORCE), `StateFeatures` (per-parameter states),
`ReplayMemory`, and the reward helpers `discounted_metric`, `sign_reward` and
`MovingAverageBaseline` (Huang et al., ICML 2019, Eqs. 3-5).
"""

from keras_adaptive_loss.controllers.controller import AlignmentController
from keras_adaptive_loss.controllers.policy import ACTIONS, Policy
from keras_adaptive_loss.controllers.replay import ReplayMemory
from keras_adaptive_loss.controllers.reward import (
    MovingAverageBaseline,
    discounted_metric,
    sign_reward,
)
from keras_adaptive_loss.controllers.state import StateFeatures

__all__ = [
    "ACTIONS",
    "AlignmentController",
    "MovingAverageBaseline",
    "Policy",
    "ReplayMemory",
    "StateFeatures",
    "discounted_metric",
    "sign_reward",
]
