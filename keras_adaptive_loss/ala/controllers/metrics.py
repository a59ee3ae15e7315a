"""Validation metrics the ALA controller is rewarded by (NumPy, on whole validation sets)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import keras
import numpy as np

__all__ = [
    "average_precision",
    "classification_error",
    "f1_score",
    "nearest_neighbour_error",
    "resolve",
]


def classification_error(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """``1 - accuracy`` of ``argmax(y_pred)`` (sparse or one-hot labels)."""
    y_true = np.asarray(y_true)
    labels = y_true.argmax(-1) if y_true.ndim == 2 and y_true.shape[1] > 1 else y_true.reshape(-1)
    return float(np.mean(np.asarray(y_pred).argmax(-1) != labels))


def f1_score(y_true: np.ndarray, predicted: np.ndarray) -> float:
    """F1 of the positive class (label 1) of hard 0/1 predictions, as scikit-learn's
    ``f1_score`` (0 when there are no positives and none predicted).

    >>> f1_score(np.array([1, 0, 1, 1]), np.array([1, 1, 0, 1]))  # TP 2, FP 1, FN 1
    0.6666666666666666
    """
    y_true = np.asarray(y_true).reshape(-1) == 1
    predicted = np.asarray(predicted).reshape(-1) == 1
    tp = float(np.sum(y_true & predicted))
    denominator = 2 * tp + float(np.sum(y_true != predicted))
    return 0.0 if denominator == 0 else 2 * tp / denominator


def nearest_neighbour_error(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Embeddings: fraction of samples whose nearest other sample has another label."""
    embeddings = np.asarray(y_pred, "float64")
    labels = np.asarray(y_true).reshape(-1)
    squared = (embeddings**2).sum(-1)  # Gram-matrix form: [N, N] memory, never [N, N, D]
    d2 = squared[:, None] + squared[None] - 2.0 * embeddings @ embeddings.T
    np.fill_diagonal(d2, np.inf)
    return float(np.mean(labels[d2.argmin(-1)] != labels))


def average_precision(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Average precision of binary scores, as scikit-learn's ``average_precision_score``.

    ``AP = sum_n (R_n - R_(n-1)) P_n`` over the *distinct* score thresholds, highest first:
    samples with equal scores enter the ranking together, so the result does not depend on the
    order of tied samples (saturated sigmoids tie often). Without positives it is 0.

    >>> average_precision(np.array([1, 0, 1, 0, 1, 0]), np.array([.9, .9, .5, .5, .2, .1]))
    0.5333333333333333
    """
    y_pred = np.asarray(y_pred, "float64")
    scores = y_pred[:, -1] if y_pred.ndim == 2 else y_pred
    labels = np.asarray(y_true).reshape(-1) > 0.5
    if not labels.any():
        return 0.0
    order = np.argsort(-scores, kind="stable")
    scores, hits = scores[order], labels[order]
    # the last index of every run of equal scores: one threshold per distinct score
    last = np.r_[np.flatnonzero(np.diff(scores) != 0), len(scores) - 1]
    true_positives = np.cumsum(hits)[last]
    precision = true_positives / (last + 1)
    recall_gain = np.diff(np.r_[0, true_positives]) / labels.sum()
    return float(np.sum(recall_gain * precision))


def resolve(
    metric: Any, higher_is_better: bool | None, embeddings: bool
) -> tuple[Callable[[np.ndarray, np.ndarray], float], bool]:
    """Returns ``(metric function, higher_is_better)`` for the callback's ``metric`` argument.

    ``"error"`` (classification error, or nearest-neighbour error for embeddings; lower is
    better), ``"auc_pr"`` (average precision; higher is better), a `keras.metrics.Metric`, or a
    callable ``(y_true, y_pred) -> float``. The last two need ``higher_is_better``.
    """
    if metric == "error":
        return (nearest_neighbour_error if embeddings else classification_error), False
    if metric == "auc_pr":
        return average_precision, True
    if isinstance(metric, str):
        raise ValueError(
            f"Unknown metric {metric!r}: use 'error', 'auc_pr', a keras.metrics.Metric or a "
            "callable (y_true, y_pred) -> float."
        )
    if higher_is_better is None:
        raise ValueError(
            "With a Keras metric or a callable, pass higher_is_better=True (e.g. accuracy) or "
            "False (e.g. an error rate) so the controller knows which way is better."
        )
    if isinstance(metric, keras.metrics.Metric):

        def keras_metric(y_true, y_pred):
            metric.reset_state()
            metric.update_state(y_true, y_pred)
            return float(keras.ops.convert_to_numpy(metric.result()))

        return keras_metric, bool(higher_is_better)
    if callable(metric):
        return (lambda y_true, y_pred: float(metric(y_true, y_pred))), bool(higher_is_better)
    raise ValueError(
        f"metric must be a name, a keras.metrics.Metric or a callable; got {metric!r}."
    )
