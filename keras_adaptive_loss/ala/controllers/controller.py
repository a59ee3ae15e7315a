"""`AlignmentController`: the learning part of ALA, one state object shared by its models."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import keras
import numpy as np

from keras_adaptive_loss.ala.controllers.policy import ACTIONS, Policy
from keras_adaptive_loss.ala.controllers.random_stream import RandomStream
from keras_adaptive_loss.ala.controllers.replay import ReplayMemory
from keras_adaptive_loss.ala.controllers.reward import sign_reward
from keras_adaptive_loss.ala.controllers.state import MemberState, feature_size

__all__ = ["AlignmentController", "Observation"]


@dataclass
class Observation:
    """What one model reports to the controller at a decision.

    Attributes:
        member: the model's `MemberState` (from `AlignmentController.add_member`).
        metric: the validation metric of the period that just ended (Eq. 4).
        statistics: ``[parameters, statistics]`` validation statistics, or ``None`` when they
            were not finite (no decision is taken for this model then).
        parameters: the current values of the loss parameters.
        progress: training progress in [0, 1].

    >>> member = AlignmentController(8, seed=0).add_member(2, 2, history=1, max_measurements=1)
    >>> observation = Observation(member, 0.3, np.ones((2, 2)), np.zeros(2), progress=0.5)
    >>> observation.statistics.shape
    (2, 2)
    """

    member: MemberState
    metric: float
    statistics: np.ndarray | None
    parameters: np.ndarray
    progress: float


class AlignmentController(keras.layers.Layer):
    """Policy, replay memory and reward baseline of the ALA controller (Algorithm 1).

    One controller serves one model or several (the paper trains 10 child models sharing one
    controller, see `keras_adaptive_loss.ala.fit_children`). Each model registers with
    `add_member`; at every decision the models' observations go to `step`, which, as in
    Algorithm 1: rewards each model's previous decision with the sign of its metric change
    (Eq. 5), stores the transitions in the replay memory, makes one REINFORCE update (Eq. 3)
    on a replayed batch, and samples the next actions. Everything it keeps (policy weights and
    optimizer, replay memory, baseline, random streams, each model's history) lives in Keras
    variables, so checkpoints of the models carry it.

    Beyond the paper, chosen so that the policy can learn from few, noisy ±1 rewards:
    rewards are stored, and an advantage is recomputed each time a transition is replayed, as
    ``reward - reference``: the mean reward of all models that decided at the same time when
    there are several (this removes the common training trend: early on every child improves,
    whatever it did), else the current exponential moving average of the rewards. The policy
    loss has an entropy bonus (see `Policy`).

    Args:
        feature_size: length of a parameter's state (`kal.ala.controllers.feature_size`).
        policy: a trained `Policy` to start from (e.g. loaded with `Policy.load`); default new.
        learn: update the policy from the rewards; ``False`` only applies it (transfer, §6.3).
        greedy: take the most probable action instead of sampling; default ``not learn``.
        replay_capacity: transitions kept in the replay memory.
        batch_size: transitions replayed per policy update.
        baseline_momentum: momentum of the reward baseline.
        updates_per_step: REINFORCE updates (each on a freshly replayed batch) per decision.
        seed: seed of the policy's initial weights and of all sampling.

    >>> controller = AlignmentController(feature_size(num_statistics=2, history=1), seed=0)
    >>> member = controller.add_member(3, num_statistics=2, history=1, max_measurements=1)
    >>> statistics, values = np.ones((3, 2)), np.zeros(3)  # 3 loss parameters
    >>> [(actions, reward)] = controller.step([Observation(member, 0.30, statistics, values, 0.1)])
    >>> actions.shape, reward  # a first decision: nothing to reward yet
    ((3,), None)
    >>> [(actions, reward)] = controller.step([Observation(member, 0.25, statistics, values, 0.2)])
    >>> reward  # the error fell from 0.30 to 0.25 (Eq. 5)
    1.0
    """

    def __init__(
        self,
        feature_size: int,
        policy: Policy | None = None,
        learn: bool = True,
        greedy: bool | None = None,
        replay_capacity: int = 5000,
        batch_size: int = 64,
        baseline_momentum: float = 0.9,
        updates_per_step: int = 1,
        seed: int | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if policy is not None and policy.feature_size != feature_size:
            raise ValueError(
                f"The policy expects states of size {policy.feature_size}, but this controller "
                f"builds states of size {feature_size} (history and statistics must match)."
            )
        if not 0.0 <= baseline_momentum < 1.0:
            raise ValueError(f"baseline_momentum must lie in [0, 1); got {baseline_momentum!r}.")
        self.policy = policy or Policy(feature_size, seed=seed)
        # Tracked as attributes, so that the weights of whatever holds the controller include them.
        self.policy_network = self.policy.network
        self.policy_optimizer = self.policy.optimizer
        self.learn_policy = bool(learn)
        self.greedy = (not self.learn_policy) if greedy is None else bool(greedy)
        if not isinstance(updates_per_step, (int, np.integer)) or updates_per_step < 1:
            raise ValueError(f"updates_per_step must be an integer >= 1; got {updates_per_step!r}.")
        self.updates_per_step = int(updates_per_step)
        self.batch_size = int(batch_size)
        self.baseline_momentum = float(baseline_momentum)
        self.memory = ReplayMemory(replay_capacity, feature_size, seed=seed, name="memory")
        self.baseline = self.add_weight(
            shape=(), initializer="zeros", dtype="float64", trainable=False, name="baseline"
        )
        self.has_baseline = self.add_weight(
            shape=(), initializer="zeros", dtype="int64", trainable=False, name="has_baseline"
        )
        self.actions_stream = RandomStream(self, seed, name="actions")
        self.member_count = 0  # members are not tracked here: they hold the controller
        self.built = True

    @property
    def feature_size(self) -> int:
        return self.policy.feature_size

    def add_member(
        self, num_parameters: int, num_statistics: int, history: int, max_measurements: int
    ) -> MemberState:
        """Registers a model; returns the `MemberState` its loss should hold."""
        size = feature_size(num_statistics, history)
        if size != self.feature_size:
            raise ValueError(
                f"This controller expects states of size {self.feature_size}; a loss with "
                f"{num_statistics} statistics per parameter and history {history} gives {size}."
            )
        member = MemberState(
            self, num_parameters, num_statistics, history, max_measurements,
            name=f"alignment_member_{self.member_count}",
        )  # fmt: skip
        self.member_count += 1
        return member

    def step(
        self,
        observations: Sequence[Observation],
        higher_is_better: bool = False,
        broadcast: Callable[[np.ndarray], np.ndarray] | None = None,
    ) -> list[tuple[np.ndarray | None, float | None]]:
        """One decision for every observed model: ``[(actions or None, reward or None)]``.

        ``broadcast`` (e.g. `kal.distribute.broadcast_from_chief`) makes the sampled actions
        identical on every worker before they are stored and applied.
        """
        rewards: list[float | None] = []
        for observation in observations:
            member = observation.member
            if member.pending is None or member.previous is None:
                rewards.append(None)
            else:
                rewards.append(sign_reward(member.previous, observation.metric, higher_is_better))
        given = [r for r in rewards if r is not None]
        reference = float(np.mean(given)) if len(given) > 1 else math.nan
        for observation, reward in zip(observations, rewards, strict=True):
            if reward is not None:
                states, actions = observation.member.pending
                self.memory.add(states, actions, reward, reference)
        if given:
            self._update_baseline(float(np.mean(given)))
            if self.learn_policy:
                for _ in range(self.updates_per_step):
                    self._learn()
        results = []
        for observation, reward in zip(observations, rewards, strict=True):
            member = observation.member
            member.set_previous(observation.metric)
            actions = None
            if observation.statistics is not None:
                member.observe(observation.statistics)
                states = member.features(observation.parameters, observation.progress)
                actions = self.policy.act(
                    states, self.actions_stream.generator(), greedy=self.greedy
                )
                if broadcast is not None:
                    actions = broadcast(actions)
                member.set_pending(states, actions)
                member.set_counter("decisions", member.counter("decisions") + 1)
            else:
                member.set_pending(None, None)
            results.append((actions, reward))
        return results

    def _update_baseline(self, reward: float) -> None:
        if not int(self.has_baseline.numpy()):
            self.baseline.assign(reward)  # the first rewards carry no advantage
            self.has_baseline.assign(1)
            return
        m = self.baseline_momentum
        self.baseline.assign(m * float(self.baseline.numpy()) + (1.0 - m) * reward)

    def advantages(self, rewards: np.ndarray, references: np.ndarray) -> np.ndarray:
        """``reward - reference`` where a reference was stored, else ``reward - baseline``."""
        baseline = float(self.baseline.numpy())
        return rewards - np.where(np.isfinite(references), references, baseline)

    def _learn(self) -> float:
        states, actions, rewards, references = self.memory.sample(self.batch_size)
        return self.policy.learn(states, actions, self.advantages(rewards, references))

    @staticmethod
    def moves(actions: np.ndarray, step_size: float) -> np.ndarray:
        """Parameter changes ``-beta / 0 / +beta`` of action indices."""
        return np.take(ACTIONS, actions) * step_size
