"""`AlignmentState`: the ALA controller's state as weights of a layer held by the loss."""

from __future__ import annotations

from typing import Any

import keras
import numpy as np

__all__ = ["AlignmentState"]


class AlignmentState(keras.layers.Layer):
    """Checkpointable state of an `AdaptiveLossAlignment` run.

    Keras writes the weights of layers held by a compiled loss with ``model.save_weights``, so
    `keras.callbacks.BackupAndRestore` saves and restores this layer with the model: the policy
    network and its optimizer (held as attributes) and named arrays (replay memory, reward
    baseline, statistics history, the pending decision, ...), copied in with `write` after every
    decision and out with `read` when a run resumes.

    Args:
        policy_network: the policy's Keras model.
        policy_optimizer: its optimizer.
        arrays: ``{name: (shape, dtype)}`` of the named arrays.
    """

    def __init__(
        self,
        policy_network: keras.Model,
        policy_optimizer: keras.optimizers.Optimizer,
        arrays: dict[str, tuple[tuple[int, ...], str]],
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.policy_network = policy_network
        self.policy_optimizer = policy_optimizer
        self.arrays = {
            name: self.add_weight(
                shape=shape, initializer="zeros", dtype=dtype, trainable=False, name=name
            )
            for name, (shape, dtype) in arrays.items()
        }
        self.built = True

    def write(self, values: dict[str, np.ndarray]) -> None:
        for name, value in values.items():
            variable = self.arrays[name]
            variable.assign(np.asarray(value, dtype=variable.dtype).reshape(variable.shape))

    def read(self) -> dict[str, np.ndarray]:
        return {name: np.asarray(variable.numpy()) for name, variable in self.arrays.items()}
