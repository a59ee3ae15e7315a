"""How the ALA controller reads and moves the parameters of each parametric loss (NumPy only).

An adapter flattens a loss's Φ into the list of parameters the controller decides on, computes
each parameter's validation statistics from validation labels and predictions, and applies the
controller's ``-beta / 0 / +beta`` moves within the loss's bounds.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from keras_adaptive_loss.losses.alignment import (
    NEGATIVE_DISTANCE_FUNCTIONS,
    POSITIVE_DISTANCE_FUNCTIONS,
    ClassCorrelationLoss,
    DistanceMixtureLoss,
    FocalWeightingLoss,
)

__all__ = ["ClassPairAdapter", "DistanceAdapter", "adapter_for"]

_EPSILON = 1e-7


class ClassPairAdapter:
    """`ClassCorrelationLoss`: one parameter per class pair ``i < j`` (ALA paper, Sec. 4).

    Statistics of a pair: ``[C_ij, C_ji]`` from the validation confusion of Eq. 7,
    ``C_ij = mean over samples of class i of -log p_j``. A move sets ``Φ[i, j]`` and ``Φ[j, i]``
    to the same value, clipped to ``[-1, 1]``; the diagonal keeps its value.
    """

    num_statistics = 2

    def __init__(self, loss: ClassCorrelationLoss) -> None:
        self.loss = loss
        self.pairs = np.array(np.triu_indices(loss.num_classes, k=1)).T  # [P, 2]

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
        updated = np.clip(phi[i, j] + deltas, -1.0, 1.0)
        phi[i, j] = updated
        phi[j, i] = updated
        self.loss.set_parameter("phi", phi)


class DistanceAdapter:
    """`DistanceMixtureLoss` (10 parameters) and `FocalWeightingLoss` (2 parameters).

    Statistics of a parameter: for the distance mixture, the validation mean of its distance
    function over positive (``F_i+(d+)``) or negative (``F_i-(d-)``) pairs; for focal weighting,
    the mean offset distance ``d+ - alpha`` (for Φ1) and ``d- - alpha`` (for Φ2). Moves are
    clipped to the loss's bounds.
    """

    num_statistics = 1

    def __init__(self, loss: DistanceMixtureLoss | FocalWeightingLoss) -> None:
        self.loss = loss
        self.mixture = isinstance(loss, DistanceMixtureLoss)

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
        low = 0.0 if self.mixture else 1e-3
        high = 1.0 if self.mixture else np.inf
        self.loss.set_parameter("phi", np.clip(self.values() + deltas, low, high))


def adapter_for(loss: Any) -> ClassPairAdapter | DistanceAdapter:
    """The adapter of an ALA loss; `ValueError` for any other loss."""
    if isinstance(loss, ClassCorrelationLoss):
        return ClassPairAdapter(loss)
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
    d2 = ((embeddings[:, None] - embeddings[None]) ** 2).sum(-1)
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
