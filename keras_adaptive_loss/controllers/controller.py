"""`AlignmentController`: the learning part of ALA, shareable by several models."""

from __future__ import annotations

import numpy as np

from keras_adaptive_loss.controllers.policy import ACTIONS, Policy
from keras_adaptive_loss.controllers.replay import ReplayMemory
from keras_adaptive_loss.controllers.reward import MovingAverageBaseline

__all__ = ["AlignmentController"]


class AlignmentController:
    """Policy, replay memory and reward baseline of the ALA controller (Algorithm 1).

    One controller may serve several models: give the same instance to the
    `keras_adaptive_loss.callbacks.AdaptiveLossAlignment` callback of each (the paper trains 10
    child models sharing one controller); their transitions go to one replay memory and one
    policy.

    Args:
        feature_size: length of a parameter's state (see `StateFeatures.feature_size`).
        policy: a trained `Policy` to start from (e.g. loaded with `Policy.load`); default new.
        learn: update the policy from the rewards; ``False`` only applies it (transfer, §6.3).
        replay_capacity: transitions kept in the replay memory.
        batch_size: transitions sampled per policy update.
        baseline_momentum: momentum of the reward baseline.
        seed: seed of the policy's initial weights and of all sampling.
    """

    def __init__(
        self,
        feature_size: int,
        policy: Policy | None = None,
        learn: bool = True,
        replay_capacity: int = 5000,
        batch_size: int = 64,
        baseline_momentum: float = 0.9,
        seed: int | None = None,
    ) -> None:
        if policy is not None and policy.feature_size != feature_size:
            raise ValueError(
                f"The policy expects states of size {policy.feature_size}, but this controller "
                f"builds states of size {feature_size} (history and statistics must match)."
            )
        self.policy = policy or Policy(feature_size, seed=seed)
        self.learn_policy = bool(learn)
        self.memory = ReplayMemory(replay_capacity, feature_size, seed=seed)
        self.baseline = MovingAverageBaseline(baseline_momentum)
        self.batch_size = int(batch_size)

    @property
    def feature_size(self) -> int:
        return self.policy.feature_size

    def act(self, states: np.ndarray) -> np.ndarray:
        """Action indices (into `ACTIONS`) for every parameter's state."""
        return self.policy.act(states, greedy=not self.learn_policy)

    def record(self, states: np.ndarray, actions: np.ndarray, reward: float) -> float:
        """Stores a decision's transitions with its reward; updates the policy if learning."""
        advantage = self.baseline.advantage(reward)
        self.memory.add(states, actions, np.full(len(actions), advantage))
        if self.learn_policy:
            self.policy.learn(*self.memory.sample(self.batch_size))
        return advantage

    @staticmethod
    def moves(actions: np.ndarray, step_size: float) -> np.ndarray:
        """Parameter changes ``-beta / 0 / +beta`` of action indices."""
        return np.take(ACTIONS, actions) * step_size
