"""The data of a comparison: loaded, cut to its regime, split into training and validation,
and a seed's noisy labels."""

from __future__ import annotations

import dataclasses
import hashlib
import os
from typing import Any

import numpy as np

from keras_adaptive_loss import datasets
from keras_adaptive_loss.comparison import regimes
from keras_adaptive_loss.comparison.settings import ComparisonSettings

__all__ = ["PreparedData", "load_data", "noisy_labels", "prepare"]

Splits = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]


def load_data(
    dataset: str | datasets.Dataset,
    *,
    positive_class: int | str | None = None,
    data_dir: str | None = None,
    try_gcs: bool = True,
    label_column: str = "label",
    download: bool = False,
) -> datasets.Dataset:
    """An offline dataset by name, a ``.csv`` / ``.npz`` file (`kal.datasets.load_csv`,
    `load_npz`), a ``synthetic:...`` spec (`kal.datasets.synthetic`), else a TFDS dataset;
    optionally as "class k vs rest".

    >>> data = load_data("iris", positive_class=2)
    >>> data.name, data.num_classes
    ('iris-2-vs-rest', 2)
    """
    if isinstance(dataset, datasets.Dataset):
        data = dataset
    elif isinstance(dataset, str) and dataset in datasets.NAMES:
        data = datasets.load(dataset)
    elif isinstance(dataset, str) and dataset.lower().endswith(".csv"):
        data = datasets.load_csv(dataset, label_column)
    elif isinstance(dataset, str) and dataset.lower().endswith(".npz"):
        data = datasets.load_npz(dataset)
    elif isinstance(dataset, str) and dataset.split(":")[0] == "synthetic":
        data = datasets.synthetic(dataset)
    elif isinstance(dataset, str):
        try:
            import tensorflow_datasets  # noqa: F401
        except ImportError as error:
            raise ValueError(
                f"Unknown dataset {dataset!r}; offline datasets: {', '.join(datasets.NAMES)}. "
                "TFDS names need tensorflow-datasets (pip install keras-adaptive-loss[datasets])."
            ) from error
        data = datasets.load_tfds(dataset, data_dir=data_dir, try_gcs=try_gcs, download=download)
    else:
        raise ValueError(f"dataset must be a name or a kal.datasets.Dataset; got {dataset!r}.")
    return data if positive_class is None else datasets.one_vs_rest(data, positive_class)


@dataclasses.dataclass(frozen=True)
class PreparedData:
    """A comparison's dataset after its regime, and the fixed training/validation split.

    ``splits`` is ``(x_train, y_train, x_val, y_val)``: the same for every loss and seed
    (a seed's label noise is applied per run, `noisy_labels`). ``source`` identifies the data
    beyond its name, for resume's check.
    """

    data: datasets.Dataset
    splits: Splits
    source: dict[str, Any]

    @property
    def num_classes(self) -> int:
        return self.data.num_classes

    def steps_per_epoch(self, batch_size: int) -> int:
        return -(-len(self.splits[0]) // batch_size)

    def class_counts(self, labels: np.ndarray | None = None) -> tuple[int, ...]:
        """Training samples per class (of ``labels``, default the training labels)."""
        labels = self.splits[1] if labels is None else labels
        return tuple(np.bincount(labels, minlength=self.num_classes).tolist())

    def record(self) -> dict[str, Any]:
        """What results.json records about the data."""
        data = self.data
        return {
            "dataset": data.name,
            "train_size": len(self.splits[0]),
            "test_size": len(data.x_test),
            "num_classes": data.num_classes,
            "class_names": None if data.class_names is None else list(data.class_names),
            **self.source,
        }


def prepare(settings: ComparisonSettings) -> PreparedData:
    """Loads ``settings.dataset``, applies its regime and holds out the validation split."""
    data = load_data(
        settings.dataset,
        positive_class=settings.positive_class,
        data_dir=settings.data_dir,
        try_gcs=settings.try_gcs,
        label_column=settings.label_column,
        download=settings.download,
    )
    data = _training_regime(data, settings.train_size, settings.imbalance)
    splits = _split_validation(data, settings.validation_fraction)
    source = _data_source(settings.dataset, settings.label_column, settings.data_dir)
    return PreparedData(data, splits, source)


def noisy_labels(splits: Splits, seed: int, num_classes: int, rate: float, kind: str) -> Splits:
    """``splits`` with ``rate`` of the training and validation labels flipped (``kind`` as in
    `kal.comparison.regimes.add_label_noise`): one draw per seed, the same for every loss of
    the seed.

    >>> y = np.arange(100) % 4
    >>> _, noisy, _, _ = noisy_labels((None, y, None, y), seed=0, num_classes=4, rate=0.2,
    ...                               kind="symmetric")
    >>> int((noisy != y).sum())
    20
    """
    if not rate:
        return splits
    x_train, y_train, x_val, y_val = splits
    rng = np.random.default_rng([seed, 7919])
    return (
        x_train,
        regimes.add_label_noise(y_train, rate, num_classes, kind, rng),
        x_val,
        regimes.add_label_noise(y_val, rate, num_classes, kind, rng),
    )


def _training_regime(
    data: datasets.Dataset, train_size: int | None, imbalance: float | None
) -> datasets.Dataset:
    """The training split cut to ``train_size`` samples and/or a long tail of ratio
    ``imbalance``; the same subset for every seed and loss (a fixed generator)."""
    keep = np.arange(len(data.y_train))
    rng = np.random.default_rng(20261129)
    if train_size is not None:
        keep = keep[regimes.subsample(data.y_train, train_size, rng)]
    if imbalance is not None:
        keep = keep[regimes.long_tail_indices(data.y_train[keep], imbalance, rng)]
    if len(keep) == len(data.y_train):
        return data
    return dataclasses.replace(data, x_train=data.x_train[keep], y_train=data.y_train[keep])


def _split_validation(data: datasets.Dataset, fraction: float) -> Splits:
    """A fixed random hold-out of the training split (the same for every loss and seed)."""
    order = np.random.default_rng(0).permutation(len(data.x_train))
    held = max(1, round(fraction * len(order)))
    if held >= len(order):
        raise ValueError(f"The training split of {data.name!r} is too small to hold out data.")
    val, train = order[:held], order[held:]
    return data.x_train[train], data.y_train[train], data.x_train[val], data.y_train[val]


def _data_source(dataset: Any, label_column: str, data_dir: str | None) -> dict[str, Any]:
    """What identifies the data beyond its name, for resume's check: a data file's SHA-256
    and the label column of a CSV file, a TFDS name's ``data_dir``."""
    source: dict[str, Any] = {"data_sha256": None, "label_column": None, "data_dir": None}
    if isinstance(dataset, str) and dataset.lower().endswith((".csv", ".npz")):
        digest = hashlib.sha256()
        with open(dataset, "rb") as file:
            for block in iter(lambda: file.read(1 << 20), b""):
                digest.update(block)
        source["data_sha256"] = digest.hexdigest()
        if dataset.lower().endswith(".csv"):
            source["label_column"] = label_column
    elif isinstance(dataset, str) and dataset not in datasets.NAMES:
        source["data_dir"] = None if data_dir is None else os.path.abspath(data_dir)
    return source
