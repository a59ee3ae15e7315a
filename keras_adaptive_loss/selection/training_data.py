"""The batches a selection population trains on, the same for every child: arrays permuted
per epoch, or a `tf.data.Dataset` read once per epoch."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np

from keras_adaptive_loss import _tensorflow

__all__ = ["TrainingData", "one_hot_targets"]


def one_hot_targets(y: Any, num_classes: int, name: str) -> tuple[np.ndarray, np.ndarray]:
    """One-hot targets (float32) and integer labels from integer ids or one-hot rows.

    >>> targets, labels = one_hot_targets([2, 0], 3, "y")
    >>> targets.tolist(), labels.tolist()
    ([[0.0, 0.0, 1.0], [1.0, 0.0, 0.0]], [2, 0])
    """
    y = np.asarray(y)
    if y.ndim == 2 and y.shape[1] == num_classes:
        return y.astype("float32"), y.argmax(-1)
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    whole = y.ndim == 1 and y.size > 0 and bool(np.all(np.equal(np.mod(y, 1), 0)))
    if not whole or y.min() < 0 or y.max() >= num_classes:
        raise ValueError(
            f"{name} must hold integer class ids in [0, {num_classes}) or one-hot rows of "
            f"{num_classes} columns (the model's output size); got shape {y.shape}."
        )
    labels = y.astype("int64")
    return np.eye(num_classes, dtype="float32")[labels], labels


class TrainingData:
    """Every epoch's batches, ``(inputs, one-hot targets)``.

    Arrays: each epoch a permutation seeded by ``(seed, epoch)``, cut into batches as ``fit``
    cuts them (the last, partial batch trimmed to a multiple of ``replicas``). A
    `tf.data.Dataset` of ``(inputs, targets)`` batches: read once per epoch, in its own order.

    >>> data = TrainingData(np.arange(10.0)[:, None], np.arange(10) % 2, 2, batch_size=4)
    >>> [len(x) for x, _ in data.epoch(0)], data.steps_per_epoch
    ([4, 4, 2], 3)
    """

    def __init__(
        self, x: Any, y: Any, num_classes: int, batch_size: int, replicas: int = 1, seed: int = 0
    ) -> None:
        self.num_classes, self.seed = num_classes, seed
        if _tensorflow.is_dataset(x):
            if y is not None:
                raise ValueError(
                    "x is a tf.data.Dataset, so y must be None: the dataset yields "
                    "(inputs, targets) batches."
                )
            self.dataset, self.labels = x, None
            self.steps_per_epoch = _tensorflow.dataset_size(x)
            self.samples = None
            return
        self.dataset = None
        self.x = np.asarray(x)
        self.targets, self.labels = one_hot_targets(y, num_classes, "y")
        if len(self.targets) != len(self.x):
            raise ValueError(f"x has {len(self.x)} samples but y has {len(self.targets)}.")
        if len(self.x) < batch_size:
            raise ValueError(
                f"The training data has {len(self.x)} samples, fewer than one batch "
                f"({batch_size}): lower batch_size."
            )
        self.samples = len(self.x)
        self.bounds = _batch_bounds(self.samples, batch_size, replicas)
        self.steps_per_epoch = len(self.bounds)

    def epoch(self, epoch: int) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """The batches of epoch ``epoch`` (0-based)."""
        if self.dataset is not None:
            for batch in self.dataset.as_numpy_iterator():
                if not isinstance(batch, tuple) or len(batch) != 2:
                    raise ValueError(
                        "The tf.data.Dataset must yield (inputs, targets) pairs; got an "
                        f"element of {type(batch).__name__}."
                    )
                inputs, targets = batch
                yield inputs, one_hot_targets(targets, self.num_classes, "the dataset's targets")[0]
            return
        order = np.random.default_rng([self.seed, epoch]).permutation(self.samples)
        for begin, end in self.bounds:
            rows = order[begin:end]
            yield self.x[rows], self.targets[rows]


def _batch_bounds(samples: int, batch_size: int, replicas: int) -> list[tuple[int, int]]:
    """``(begin, end)`` of every batch of an epoch: full batches, then the rest, trimmed to a
    multiple of the replica count (an uneven split fails under MirroredStrategy).

    >>> _batch_bounds(10, 4, 1), _batch_bounds(11, 4, 2)
    ([(0, 4), (4, 8), (8, 10)], [(0, 4), (4, 8), (8, 10)])
    """
    full = samples - samples % batch_size
    bounds = [(begin, begin + batch_size) for begin in range(0, full, batch_size)]
    rest = samples % batch_size
    rest -= rest % replicas
    if rest:
        bounds.append((full, full + rest))
    return bounds
