"""The batches a selection population trains on, the same for every child: arrays permuted
per epoch, or a `tf.data.Dataset` read once per epoch; and `ShuffledBatches`, the same order
for `fit`."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import keras
import numpy as np

from keras_adaptive_loss import _tensorflow

__all__ = ["ShuffledBatches", "TrainingData", "epoch_rows", "one_hot_targets"]


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
        for rows in epoch_rows(self.samples, self.bounds, self.seed, epoch):
            yield self.x[rows], self.targets[rows]


class ShuffledBatches(keras.utils.PyDataset):
    """Arrays for ``model.fit``, in `TrainingData`'s batches: a new permutation every epoch,
    seeded by ``(seed, epoch)``.

    Every epoch's batches in one sequence, batch ``i`` of it being batch ``i % steps_per_epoch``
    of epoch ``i // steps_per_epoch``; pass it as ``fit(batches, epochs=epochs,
    steps_per_epoch=batches.steps_per_epoch, shuffle=False)``. Seeded by
    ``keras.utils.set_random_seed``, Keras 3.15 on TensorFlow 2.21 feeds ``fit(x_array,
    y_array, shuffle=True)`` the same permutation in every epoch; this reshuffles, and a model
    trained on it sees exactly the batches a `select_loss` child of the same ``seed`` sees.
    (The order is a function of the batch index, not of ``on_epoch_end``, which ``fit`` also
    calls before the first epoch and after it has started reading the next one.)

    Args:
        x: training inputs (an array).
        y: training targets (an array with as many rows), passed on as they are.
        batch_size: samples per batch.
        epochs: the epochs ``fit`` trains.
        seed: seeds each epoch's permutation, with the epoch.
        replicas: the last, partial batch is trimmed to a multiple of it (an uneven split
            fails under a `tf.distribute.MirroredStrategy`).

    >>> batches = ShuffledBatches(np.arange(10.0)[:, None], np.arange(10), 4, epochs=2, seed=3)
    >>> labels = [batches[i][1].tolist() for i in range(len(batches))]
    >>> batches.steps_per_epoch, [len(b) for b in labels]
    (3, [4, 4, 2, 4, 4, 2])
    >>> labels[:3] != labels[3:], sorted(sum(labels[3:], []))
    (True, [0, 1, 2, 3, 4, 5, 6, 7, 8, 9])
    """

    def __init__(
        self, x: Any, y: Any, batch_size: int, epochs: int, seed: int = 0, replicas: int = 1
    ) -> None:
        super().__init__()
        self.x, self.y = np.asarray(x), np.asarray(y)
        if len(self.x) != len(self.y):
            raise ValueError(f"x has {len(self.x)} samples but y has {len(self.y)}.")
        self.epochs, self.seed = epochs, seed
        self.bounds = _batch_bounds(len(self.x), batch_size, replicas)
        self.steps_per_epoch = len(self.bounds)
        self._epoch, self._rows = -1, []

    def __len__(self) -> int:
        return self.epochs * self.steps_per_epoch

    def __getitem__(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        epoch, step = divmod(int(index), self.steps_per_epoch)
        if epoch != self._epoch:
            self._epoch, self._rows = epoch, epoch_rows(len(self.x), self.bounds, self.seed, epoch)
        rows = self._rows[step]
        return self.x[rows], self.y[rows]


def epoch_rows(
    samples: int, bounds: list[tuple[int, int]], seed: int, epoch: int
) -> list[np.ndarray]:
    """The sample indices of every batch of epoch ``epoch``: a permutation seeded by
    ``(seed, epoch)``, cut at ``bounds``.

    >>> [rows.tolist() for rows in epoch_rows(5, [(0, 2), (2, 4), (4, 5)], seed=0, epoch=0)]
    [[2, 4], [3, 0], [1]]
    """
    order = np.random.default_rng([seed, epoch]).permutation(samples)
    return [order[begin:end] for begin, end in bounds]


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
