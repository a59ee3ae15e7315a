"""Replay memory of the ALA controller: (state, action, reward) transitions in variables."""

from __future__ import annotations

from typing import Any

import keras
import numpy as np

from keras_adaptive_loss.ala.controllers.random_stream import RandomStream

__all__ = ["ReplayMemory"]


class ReplayMemory(keras.layers.Layer):
    """A bounded memory of transitions, sampled uniformly at random (Algorithm 1).

    Each transition is one loss parameter's decision: its state features, the action index,
    the reward it earned and a *reference* reward: the mean reward of every model that decided
    at the same time (children sharing the controller), or NaN for a lone model. Rewards, not
    advantages, are stored, so that an advantage is recomputed against the current baseline
    each time a transition is replayed. When full, the oldest transitions are overwritten.

    Everything, the sampling stream included, lives in non-trainable variables, so a
    checkpoint of the model that holds the controller resumes the memory exactly.

    Args:
        capacity: maximum number of transitions.
        feature_size: length of a state vector.
        seed: seed of the sampling stream.

    >>> memory = ReplayMemory(capacity=2, feature_size=3, seed=0)
    >>> memory.add(np.zeros((3, 3)), [0, 1, 2], rewards=1.0)  # 3 transitions, capacity 2
    >>> memory.size
    2
    >>> states, actions, rewards, references = memory.sample(5)
    >>> sorted(actions.tolist()), rewards.tolist()  # the oldest was overwritten
    ([1, 2], [1.0, 1.0])
    """

    def __init__(
        self, capacity: int, feature_size: int, seed: int | None = None, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        if capacity < 1:
            raise ValueError(f"capacity must be >= 1; got {capacity!r}.")
        self.capacity = int(capacity)
        self.feature_size = int(feature_size)

        def weight(name, shape, dtype):
            return self.add_weight(
                shape=shape, initializer="zeros", dtype=dtype, trainable=False, name=name
            )

        self.states = weight("states", (self.capacity, self.feature_size), "float32")
        self.actions = weight("actions", (self.capacity,), "int64")
        self.rewards = weight("rewards", (self.capacity,), "float32")
        self.references = weight("references", (self.capacity,), "float32")
        self.counters = weight("counters", (2,), "int64")  # size, position
        self.stream = RandomStream(self, seed, name="sampling")
        self.built = True

    @property
    def size(self) -> int:
        return int(self.counters.numpy()[0])

    def add(
        self,
        states: np.ndarray,
        actions: np.ndarray,
        rewards: np.ndarray,
        references: np.ndarray | float = np.nan,
    ) -> None:
        """Stores a batch of transitions (one per loss parameter)."""
        states = np.asarray(states, "float32").reshape(-1, self.feature_size)
        actions = np.asarray(actions, "int64").reshape(-1)
        rewards = np.broadcast_to(np.asarray(rewards, "float32"), actions.shape)
        references = np.broadcast_to(np.asarray(references, "float32"), actions.shape)
        if not (np.isfinite(states).all() and np.isfinite(rewards).all()):
            raise ValueError("ReplayMemory refuses non-finite states or rewards.")
        size, position = (int(v) for v in self.counters.numpy())
        index = (position + np.arange(len(actions))) % self.capacity
        for variable, values in (
            (self.states, states),
            (self.actions, actions),
            (self.rewards, rewards),
            (self.references, references),
        ):
            array = variable.numpy()
            array[index] = values
            variable.assign(array)
        size = min(size + len(actions), self.capacity)
        self.counters.assign([size, (position + len(actions)) % self.capacity])

    def sample(self, count: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Up to ``count`` transitions ``(states, actions, rewards, references)``, drawn
        uniformly without replacement."""
        size = self.size
        if size == 0:
            raise ValueError("ReplayMemory.sample: the memory is empty.")
        index = self.stream.generator().choice(size, size=min(count, size), replace=False)
        return tuple(  # type: ignore[return-value]
            v.numpy()[index] for v in (self.states, self.actions, self.rewards, self.references)
        )
