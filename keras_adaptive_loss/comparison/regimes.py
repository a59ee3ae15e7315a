"""Training regimes `compare` can impose on a dataset: label noise, a long tail, fewer samples.

Each function takes class-id labels and a NumPy ``Generator`` and returns new labels or the
indices to keep, so the caller decides which split a regime touches. `compare` applies them to
the training split only (label noise also to its validation hold-out, which is carved from the
training split); the test split is never changed.

>>> rng = np.random.default_rng(0)
>>> labels = np.repeat(np.arange(4), 50)
>>> noisy = add_label_noise(labels, 0.2, 4, "symmetric", rng)
>>> float(np.mean(noisy != labels))
0.2
>>> np.bincount(labels[long_tail_indices(labels, 10.0, rng)]).tolist()
[50, 23, 11, 5]
"""

from __future__ import annotations

import numpy as np

__all__ = ["NOISE_TYPES", "add_label_noise", "long_tail_counts", "long_tail_indices", "subsample"]

#: ``symmetric``: a flipped label becomes one of the *other* classes uniformly at random.
#: ``pair``: a flipped label of class ``c`` becomes ``(c + 1) mod C`` (pair-flip noise).
NOISE_TYPES = ("symmetric", "pair")


def add_label_noise(
    labels: np.ndarray, rate: float, num_classes: int, kind: str, rng: np.random.Generator
) -> np.ndarray:
    """A copy of ``labels`` with exactly ``round(rate * len(labels))`` labels flipped.

    The flipped samples are drawn without replacement, so the realised flip rate equals
    ``rate`` up to rounding; every flipped label differs from the original.

    Args:
        labels: class ids in ``[0, num_classes)``.
        rate: fraction of labels to flip, in ``[0, 1)``.
        num_classes: number of classes (>= 2).
        kind: one of `NOISE_TYPES`.
        rng: the generator that decides which labels flip and to what.

    >>> labels = np.zeros(10, "int64")
    >>> noisy = add_label_noise(labels, 0.3, 3, "symmetric", np.random.default_rng(0))
    >>> int((noisy != labels).sum())
    3
    >>> pair = add_label_noise(labels, 0.3, 3, "pair", np.random.default_rng(0))
    >>> sorted(set(pair[pair != labels].tolist()))  # class 0 flips to class 1
    [1]
    """
    if not 0.0 <= rate < 1.0:
        raise ValueError(f"label noise rate must lie in [0, 1); got {rate!r}.")
    if kind not in NOISE_TYPES:
        raise ValueError(f"noise type must be one of {', '.join(NOISE_TYPES)}; got {kind!r}.")
    if num_classes < 2:
        raise ValueError(f"label noise needs at least 2 classes; got {num_classes}.")
    labels = np.asarray(labels, "int64")
    noisy = labels.copy()
    flipped = rng.choice(len(labels), size=round(rate * len(labels)), replace=False)
    if kind == "symmetric":
        shift = rng.integers(1, num_classes, size=len(flipped))  # never 0: always another class
    else:
        shift = np.ones(len(flipped), "int64")
    noisy[flipped] = (labels[flipped] + shift) % num_classes
    return noisy


def long_tail_counts(class_counts: np.ndarray, ratio: float) -> np.ndarray:
    """Samples kept per class for an exponential long tail (Cao et al., LDAM, Sec. 4).

    Class ``c`` of ``C`` keeps ``n_max * ratio ** (-c / (C - 1))`` samples (at least 1, at most
    what it has), where ``n_max`` is the smallest class's count, so class 0 keeps ``n_max`` and
    the last class ``n_max / ratio``: the head-to-tail ratio is ``ratio``.

    >>> long_tail_counts(np.array([100, 100, 100]), 10.0).tolist()  # 100 * 10^(-c/2)
    [100, 32, 10]
    """
    if not ratio >= 1.0:
        raise ValueError(f"imbalance ratio must be >= 1 (head : tail); got {ratio!r}.")
    counts = np.asarray(class_counts, "int64")
    classes = len(counts)
    head = int(counts.min())
    exponents = np.arange(classes) / max(classes - 1, 1)
    wanted = np.maximum(1, np.floor(head * ratio ** (-exponents) + 0.5)).astype("int64")
    return np.minimum(wanted, counts)


def long_tail_indices(labels: np.ndarray, ratio: float, rng: np.random.Generator) -> np.ndarray:
    """Indices (sorted) of a random subset of ``labels`` with the `long_tail_counts` profile.

    >>> labels = np.repeat([0, 1, 2], 100)
    >>> kept = long_tail_indices(labels, 10.0, np.random.default_rng(0))
    >>> np.bincount(labels[kept]).tolist()
    [100, 32, 10]
    """
    labels = np.asarray(labels, "int64")
    classes = int(labels.max()) + 1
    counts = long_tail_counts(np.bincount(labels, minlength=classes), ratio)
    kept = [rng.permutation(np.flatnonzero(labels == c))[: counts[c]] for c in range(classes)]
    return np.sort(np.concatenate(kept))


def subsample(labels: np.ndarray, size: int, rng: np.random.Generator) -> np.ndarray:
    """Indices (sorted) of a stratified random subset of ``size`` samples (each class keeps
    its share, and at least one sample).

    >>> labels = np.repeat([0, 1], [80, 20])
    >>> np.bincount(labels[subsample(labels, 10, np.random.default_rng(0))]).tolist()
    [8, 2]
    """
    labels = np.asarray(labels, "int64")
    if not isinstance(size, (int, np.integer)) or not 0 < size <= len(labels):
        raise ValueError(
            f"train size must be an integer in [1, {len(labels)}] (the training split's size); "
            f"got {size!r}."
        )
    classes = np.unique(labels)
    if size < len(classes):
        raise ValueError(
            f"train size {size} is smaller than the number of classes ({len(classes)}): every "
            "class needs at least one training sample."
        )
    shares = np.array([np.sum(labels == c) for c in classes]) * size / len(labels)
    counts = np.maximum(1, np.floor(shares)).astype("int64")
    # hand the samples lost to rounding to the classes with the largest remainders
    for index in np.argsort(-(shares - np.floor(shares)))[: max(0, size - counts.sum())]:
        counts[index] += 1
    while counts.sum() > size:  # the minimum of one per class overshot: trim the largest
        counts[np.argmax(counts)] -= 1
    kept = [
        rng.permutation(np.flatnonzero(labels == c))[:n]
        for c, n in zip(classes, counts, strict=True)
    ]
    return np.sort(np.concatenate(kept))
