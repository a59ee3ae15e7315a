"""How the ALA controller reads and moves the parameters of each parametric loss (NumPy only).

An adapter flattens a loss's Φ into the list of parameters the controller decides on, computes
each parameter's validation statistics from validation labels and predictions, and applies the
controller's ``-beta / 0 / +beta`` moves within the loss's bounds.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from keras_adaptive_loss.ala.losses import (
    NEGATIVE_DISTANCE_FUNCTIONS,
    POSITIVE_DISTANCE_FUNCTIONS,
    ClassCorrelationLoss,
    DistanceMixtureLoss,
    FocalWeightingLoss,
)

__all__ = ["ClassPairAdapter", "DistanceAdapter", "adapter_for", "check_pairwise_budget"]

#: Largest host memory, in bytes, for the [N, N] validation distance matrices of the
#: metric-learning statistics (a few float64 copies are alive at once).
PAIRWISE_BUDGET = 2**31


def check_pairwise_budget(samples: int, budget: int = PAIRWISE_BUDGET) -> None:
    """Refuses a validation set whose ``[N, N]`` distance matrices would exceed ``budget``.

    The metric-learning statistics and the nearest-neighbour error use the Gram-matrix form
    (memory O(N^2), never O(N^2 D)), with about four float64 ``[N, N]`` arrays alive at once.

    >>> check_pairwise_budget(30_000)
    Traceback (most recent call last):
    ...
    ValueError: validation_data has 30000 samples: the metric-learning statistics need ...
    """
    needed = 4 * 8 * samples * samples
    if needed > budget:
        raise ValueError(
            f"validation_data has {samples} samples: the metric-learning statistics need "
            f"[{samples}, {samples}] distance matrices (about {needed / 2**30:.1f} GiB), over "
            f"the {budget / 2**30:.0f} GiB budget. Pass a subset of the validation set (e.g. "
            f"{int((budget / 32) ** 0.5)} samples)."
        )


_EPSILON = 1e-7


class ClassPairAdapter:
    """`ClassCorrelationLoss`: one parameter per class pair ``i < j`` (ALA paper, Sec. 4).

    Statistics of a pair: ``[C_ij, C_ji]`` from the validation confusion of Eq. 7,
    ``C_ij = mean over samples of class i of -log p_j``. A move sets ``Φ[i, j]`` and ``Φ[j, i]``
    to the same value; the diagonal keeps its value.

    Safe steps (defaults, chosen from measurements on MNIST-1D, 10 classes): the paper's
    ``beta = 0.1`` with ``Φ`` in ``[-1, 1]`` destroyed training whatever the policy did (a
    random walk of that size did the same damage as the controller, 20-24 % test accuracy
    against 70 % for CE), while ``beta = 0.01`` was harmless and a fixed ``Φ`` with
    off-diagonal entries of +0.03 gained 8 points. So by default ``beta = 0.1 / C``, each
    entry stays within ``±1 / C`` and each row's off-diagonal magnitudes sum to at most
    ``row_bound = 0.5`` (at most a third of the soft target's mass off the true class). A move
    that would break a row's bound is not made.

    ``softening=False``: moves may add confusion penalties (``Φ[i, j] < 0``) but never
    soft-target mass (an entry is never raised above 0); it is the single-model default of
    `kal.callbacks.AdaptiveLossAlignment`.

    Args:
        loss: the loss whose Φ is moved.
        parameter_bound: largest ``|Φ[i, j]|``; ``None`` for ``1 / C``.
        row_bound: largest off-diagonal row sum of ``|Φ|``; ``None`` for no bound.
        softening: allow positive off-diagonal entries (soft targets on related classes).
    """

    num_statistics = 2

    def __init__(
        self,
        loss: ClassCorrelationLoss,
        parameter_bound: float | None = None,
        row_bound: float | None = 0.5,
        softening: bool = True,
    ) -> None:
        self.loss = loss
        self.softening = bool(softening)
        classes = loss.num_classes
        self.pairs = np.array(np.triu_indices(classes, k=1)).T  # [P, 2]
        self.parameter_bound = 1.0 / classes if parameter_bound is None else parameter_bound
        self.row_bound = row_bound
        self.default_step = 0.1 / classes

    def values(self) -> np.ndarray:
        phi = self.loss.get_parameter("phi")
        return phi[self.pairs[:, 0], self.pairs[:, 1]]

    def statistics(self, y_true: np.ndarray, y_pred: np.ndarray) -> np.ndarray:
        confusion = class_confusion(y_true, y_pred, self.loss.num_classes, self.loss.from_logits)
        i, j = self.pairs[:, 0], self.pairs[:, 1]
        return np.stack([confusion[i, j], confusion[j, i]], axis=1)

    def apply(self, deltas: np.ndarray) -> None:
        phi = self.loss.get_parameter("phi")
        i, j = self.pairs[:, 0], self.pairs[:, 1]
        old = phi[i, j]
        bound = self.parameter_bound
        # Without softening a move never raises an entry above 0 (nor above its own value,
        # when Φ was set with positive entries before training).
        upper = bound if self.softening else np.maximum(np.minimum(old, bound), 0.0)
        new = np.clip(old + deltas, -bound, upper)
        if self.row_bound is not None:
            new = self._within_rows(phi, old, new)
        phi[i, j] = new
        phi[j, i] = new
        self.loss.set_parameter("phi", phi)

    def _within_rows(self, phi: np.ndarray, old: np.ndarray, new: np.ndarray) -> np.ndarray:
        """Undoes the magnitude-increasing moves of pairs that touch a row over its bound."""
        i, j = self.pairs[:, 0], self.pairs[:, 1]
        off = np.abs(phi) * (1.0 - np.eye(len(phi)))
        off[i, j] = off[j, i] = np.abs(new)
        over = off.sum(1) > self.row_bound + 1e-9
        growing = np.abs(new) > np.abs(old)
        return np.where(growing & (over[i] | over[j]), old, new)


class DistanceAdapter:
    """`DistanceMixtureLoss` (10 parameters) and `FocalWeightingLoss` (2 parameters).

    Statistics of a parameter: for the distance mixture, the validation mean of its distance
    function over positive (``F_i+(d+)``) or negative (``F_i-(d-)``) pairs; for focal weighting,
    the mean offset distance ``d+ - alpha`` (for Φ1) and ``d- - alpha`` (for Φ2).

    Safe steps: the mixture moves by 0.02 (a fifth of the paper's 0.1) and keeps at least 0.5
    of total weight on each side (``d+`` and ``d-``): with the paper's bounds alone every
    weight of one side can reach 0 and that side of the loss vanishes. Focal weighting moves
    by 0.1 and keeps each Φ in ``[0.25, 8]``: as Φ approaches 0, ``(1/Φ) log(1 + sum exp(Φ x))``
    grows like ``log(n) / Φ`` without bound.
    """

    num_statistics = 1

    def __init__(self, loss: DistanceMixtureLoss | FocalWeightingLoss) -> None:
        self.loss = loss
        self.mixture = isinstance(loss, DistanceMixtureLoss)
        self.default_step = 0.02 if self.mixture else 0.1

    def values(self) -> np.ndarray:
        return self.loss.get_parameter("phi")

    def statistics(self, y_true: np.ndarray, y_pred: np.ndarray) -> np.ndarray:
        distances, positive, negative = pair_distances(y_true, y_pred)
        if self.mixture:
            pos = [np.asarray(f(distances))[positive] for _, f in POSITIVE_DISTANCE_FUNCTIONS]
            neg = [np.asarray(f(distances))[negative] for _, f in NEGATIVE_DISTANCE_FUNCTIONS]
            return np.array([[_mean(v)] for v in pos + neg])
        alpha = self.loss.alpha
        return np.array(
            [[_mean(distances[positive] - alpha)], [_mean(distances[negative] - alpha)]]
        )

    def apply(self, deltas: np.ndarray) -> None:
        old = self.values()
        if not self.mixture:
            self.loss.set_parameter("phi", np.clip(old + deltas, 0.25, 8.0))
            return
        new = np.clip(old + deltas, 0.0, 1.0)
        for side in (slice(0, 5), slice(5, 10)):
            if new[side].sum() < 0.5 - 1e-9 and new[side].sum() < old[side].sum():
                new[side] = old[side]
        self.loss.set_parameter("phi", new)


def adapter_for(
    loss: Any,
    parameter_bound: float | None = None,
    row_bound: float | None = 0.5,
    softening: bool = True,
) -> ClassPairAdapter | DistanceAdapter:
    """The adapter of an ALA loss; `ValueError` for any other loss.

    ``parameter_bound``, ``row_bound`` and ``softening`` apply to `ClassCorrelationLoss` (see
    `ClassPairAdapter`).
    """
    if isinstance(loss, ClassCorrelationLoss):
        return ClassPairAdapter(loss, parameter_bound, row_bound, softening)
    if isinstance(loss, (DistanceMixtureLoss, FocalWeightingLoss)):
        return DistanceAdapter(loss)
    raise ValueError(
        f"AdaptiveLossAlignment adapts kal.losses.ClassCorrelationLoss, DistanceMixtureLoss "
        f"or FocalWeightingLoss; got {loss!r}, which has no parameters it knows how to move."
    )


def class_confusion(
    y_true: np.ndarray, y_pred: np.ndarray, num_classes: int, from_logits: bool
) -> np.ndarray:
    """Eq. 7: ``C_ij`` = mean over validation samples of class ``i`` of ``-log p_j``."""
    y_pred = np.asarray(y_pred, "float64")
    if from_logits:
        shifted = y_pred - y_pred.max(-1, keepdims=True)
        log_p = shifted - np.log(np.exp(shifted).sum(-1, keepdims=True))
    else:
        log_p = np.log(np.clip(y_pred, _EPSILON, 1.0))
    labels = _sparse(y_true)
    one_hot = np.eye(num_classes)[labels]  # [N, C]
    counts = np.maximum(one_hot.sum(0), 1.0)[:, None]
    return (one_hot.T @ -log_p) / counts


def pair_distances(y_true: np.ndarray, y_pred: np.ndarray) -> tuple[np.ndarray, ...]:
    """Euclidean distances between embeddings and the positive / negative pair masks."""
    embeddings = np.asarray(y_pred, "float64")
    labels = _sparse(y_true)
    # The Gram-matrix form: [N, N] memory, never [N, N, D].
    squared = (embeddings**2).sum(-1)
    d2 = np.maximum(squared[:, None] + squared[None] - 2.0 * embeddings @ embeddings.T, 0.0)
    distances = np.sqrt(d2 + 1e-6)
    same = labels[:, None] == labels[None]
    return distances, same & ~np.eye(len(labels), dtype=bool), ~same


def _sparse(y_true: np.ndarray) -> np.ndarray:
    y_true = np.asarray(y_true)
    if y_true.ndim == 2 and y_true.shape[1] > 1:
        return y_true.argmax(-1)
    return y_true.reshape(-1).astype("int64")


def _mean(values: np.ndarray) -> float:
    return float(values.mean()) if values.size else 0.0
