"""A checkpointable random stream: NumPy draws keyed by a seed and a counter variable."""

from __future__ import annotations

import keras
import numpy as np

__all__ = ["RandomStream"]


class RandomStream:
    """Draws ``np.random.Generator``\\ s from ``(seed, counter)``, the counter in a variable.

    `keras.callbacks.BackupAndRestore` and ``model.save_weights`` save variables, not Python
    objects, and Keras does not save a `keras.random.SeedGenerator`'s state with the weights.
    Each draw here uses a fresh generator seeded by ``(seed, counter)`` and then increments
    the counter, so restoring the counter variable restores the stream exactly.

    Args:
        layer: the layer that owns the counter variable.
        seed: the stream's seed; ``None`` picks one at random (recorded in ``self.seed``).
        name: the counter variable's name.

    >>> import keras
    >>> owner = keras.layers.Layer()
    >>> stream = RandomStream(owner, seed=3)
    >>> first = stream.generator().random()
    >>> _ = stream.counter.assign(0)
    >>> bool(stream.generator().random() == first)
    True
    """

    def __init__(self, layer: keras.layers.Layer, seed: int | None, name: str = "rng") -> None:
        self.seed = int(np.random.SeedSequence().entropy % 2**31) if seed is None else int(seed)
        self.counter = layer.add_weight(
            shape=(), initializer="zeros", dtype="int64", trainable=False, name=f"{name}_counter"
        )

    def generator(self) -> np.random.Generator:
        """The next generator of the stream."""
        count = int(self.counter.numpy())
        self.counter.assign(count + 1)
        return np.random.default_rng([self.seed, count])
