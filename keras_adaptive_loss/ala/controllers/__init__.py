"""The ALA controller's logic, kept free of Keras callback code so that it can be tested alone.

`AlignmentController` (policy, replay memory, baseline; one `step` per decision), `Policy`
(shared per-parameter MLP, REINFORCE), `MemberState` (one model's history, in variables),
`ReplayMemory`, and the reward helpers `discounted_metric` and `sign_reward` (Huang et al.,
ICML 2019, Eqs. 3-5).
"""

from keras_adaptive_loss.ala.controllers.controller import AlignmentController, Observation
from keras_adaptive_loss.ala.controllers.policy import ACTIONS, Policy
from keras_adaptive_loss.ala.controllers.replay import ReplayMemory
from keras_adaptive_loss.ala.controllers.reward import discounted_metric, sign_reward
from keras_adaptive_loss.ala.controllers.state import MemberState, feature_size, state_features

__all__ = [
    "ACTIONS",
    "AlignmentController",
    "MemberState",
    "Observation",
    "Policy",
    "ReplayMemory",
    "discounted_metric",
    "feature_size",
    "sign_reward",
    "state_features",
]
