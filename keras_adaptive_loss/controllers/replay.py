"""Replay memory of the ALA controller: (state, action, advantage) transitions."""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["ReplayMemory"]


class ReplayMemory:
    """A bounded memory of transitions, sampled uniformly at random (Algorithm 1).

    Each transition is one loss parameter's decision: its state features, the action index and
    the advantage it earned. When full, the oldest transitions are overwritten.

    Args:
        capacity: maximum number of transitions.
        feature_size: length of a state vector.
        seed: seed of the sampling generator.
    """

    def __init__(self, capacity: int, feature_size: int, seed: int | None = None) -> None:
        if capacity < 1:
            raise ValueError(f"capacity must be >= 1; got {capacity!r}.")
        self.capacity = int(capacity)
        self.feature_size = int(feature_size)
        self.states = np.zeros((self.capacity, self.feature_size), "float32")
        self.actions = np.zeros(self.capacity, "int64")
        self.advantages = np.zeros(self.capacity, "float32")
        self.size = 0
        self.position = 0
        self._rng = np.random.default_rng(seed)

    @property
    def rng(self) -> np.random.Generator:
        """The generator that samples transitions."""
        return self._rng

    def add(self, states: np.ndarray, actions: np.ndarray, advantages: np.ndarray) -> None:
        """Stores a batch of transitions (one per loss parameter)."""
        states = np.asarray(states, "float32").reshape(-1, self.feature_size)
        actions = np.asarray(actions, "int64").reshape(-1)
        advantages = np.broadcast_to(np.asarray(advantages, "float32"), actions.shape)
        if not (np.isfinite(states).all() and np.isfinite(advantages).all()):
            raise ValueError("ReplayMemory refuses non-finite states or advantages.")
        for state, action, advantage in zip(states, actions, advantages, strict=True):
            self.states[self.position] = state
            self.actions[self.position] = action
            self.advantages[self.position] = advantage
            self.position = (self.position + 1) % self.capacity
            self.size = min(self.size + 1, self.capacity)

    def sample(self, count: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Up to ``count`` transitions drawn uniformly without replacement."""
        if self.size == 0:
            raise ValueError("ReplayMemory.sample: the memory is empty.")
        index = self._rng.choice(self.size, size=min(count, self.size), replace=False)
        return self.states[index], self.actions[index], self.advantages[index]

    def get_state(self) -> dict[str, Any]:
        """Everything needed to resume, as arrays and numbers (no pickle)."""
        return {
            "states": self.states[: self.size].copy(),
            "actions": self.actions[: self.size].copy(),
            "advantages": self.advantages[: self.size].copy(),
            "position": self.position,
            "rng": self._rng.bit_generator.state,
        }

    def set_state(self, state: dict[str, Any]) -> None:
        count = len(state["actions"])
        self.states[:count] = state["states"]
        self.actions[:count] = state["actions"]
        self.advantages[:count] = state["advantages"]
        self.size = count
        self.position = int(state["position"])
        self._rng.bit_generator.state = state["rng"]
