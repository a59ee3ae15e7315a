"""Independent NumPy references for the losses under test (float64)."""

from __future__ import annotations

import numpy as np

EPSILON = 1e-7


def softmax(logits):
    z = logits - logits.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


def one_hot(labels, num_classes):
    return np.eye(num_classes)[np.asarray(labels).reshape(-1)]


def probabilities(y_pred, from_logits):
    y_pred = np.asarray(y_pred, dtype="float64")
    if from_logits:
        return softmax(y_pred)
    return np.clip(y_pred / y_pred.sum(-1, keepdims=True), EPSILON, 1 - EPSILON)


def candidate(name, onehot, p, logits=None):
    """Per-sample value of candidate ``name`` for one-hot labels and probabilities (and the
    logits, for the candidates that read them: squentropy, sparsemax)."""
    if name == "sparsemax":  # Martins & Astudillo 2016, Eq. 16, on the logits
        tau = sparsemax_threshold(logits)
        support = logits > tau[..., None]
        quadratic = 0.5 * np.where(support, logits**2 - tau[..., None] ** 2, 0.0).sum(-1)
        return -(onehot * logits).sum(-1) + quadratic + 0.5 * (onehot**2).sum(-1)
    p_y = (onehot * p).sum(-1)
    ce = -(onehot * np.log(p)).sum(-1)
    log_p = np.log(p)
    if name == "nce":  # Ma et al. 2020, Eq. 4
        return ce / -log_p.sum(-1)
    if name == "normalized_focal":  # Ma et al. Eq. 5, gamma 0.5
        focal = -((1 - p) ** 0.5) * log_p
        return (onehot * focal).sum(-1) / focal.sum(-1)
    if name == "rce":  # -sum_k p_k log q_k, log 0 = -4; one-hot: 4 (1 - p_y)
        return 4.0 * (1 - p_y)
    if name == "nce_rce":
        return candidate("nce", onehot, p) + candidate("rce", onehot, p)
    if name == "nce_mae":  # the paper's MAE: sum_k |p_k - q_k|
        return candidate("nce", onehot, p) + np.abs(p - onehot).sum(-1)
    if name == "poly":  # PolyLoss's default, epsilon = (-1,)
        return ce - (1 - p_y)
    if name == "gce":  # Zhang & Sabuncu, q = 0.7
        return (1 - p_y**0.7) / 0.7
    if name == "squentropy":  # Hui et al. 2023, Eq. 2, on the logits
        return ce + ((1 - onehot) * logits**2).sum(-1) / (onehot.shape[-1] - 1)
    if name == "crossentropy":
        return ce
    if name == "expectation":
        return 1 - p_y
    if name == "mse":
        return ((onehot - p) ** 2).mean(-1)
    if name == "mae":
        return np.abs(onehot - p).mean(-1)
    if name in ("hinge", "squared_hinge"):
        wrong = np.where(onehot > 0, -np.inf, p).max(-1)
        h = np.maximum(0.0, 1 + wrong - p_y)
        return h if name == "hinge" else h**2
    if name == "cosine":
        return 1 - p_y / (np.linalg.norm(onehot, axis=-1) * np.linalg.norm(p, axis=-1))
    if name == "bce":
        q = np.clip(1 - p, EPSILON, 1)
        return -(onehot * np.log(p) + (1 - onehot) * np.log(q)).mean(-1)
    if name == "focal":
        return (1 - p_y) ** 2 * ce
    if name == "poly1":
        return ce + (1 - p_y)
    raise KeyError(name)


def mix(onehot, p, alpha, beta):
    """alpha * CE + beta * (1 - p_y), mixing paper Eq. 12."""
    return alpha * candidate("crossentropy", onehot, p) + beta * candidate("expectation", onehot, p)


def mix_logit_gradient(labels, logits, alpha, beta):
    """d(alpha CE + beta EL)/d logits, mixing paper Eq. 13 (per sample)."""
    p = softmax(np.asarray(logits, dtype="float64"))
    rows = np.arange(len(p))
    p_y = p[rows, labels]
    grad = p * (beta * p_y + alpha)[:, None]  # j != y
    grad[rows, labels] = beta * p_y**2 + p_y * (alpha - beta) - alpha  # j == y
    return grad


def sparsemax_threshold(logits, iterations=200):
    """tau with sum_j max(z_j - tau, 0) = 1, found by bisection (not by the sorting formula)."""
    z = np.asarray(logits, "float64")
    low, high = z.max(-1) - 1.0, z.max(-1)  # the sum is >= 1 at low and 0 at high
    for _ in range(iterations):
        middle = (low + high) / 2
        above = np.maximum(z - middle[..., None], 0.0).sum(-1) > 1.0
        low, high = np.where(above, middle, low), np.where(above, high, middle)
    return (low + high) / 2


def sparsemax(logits):
    return np.maximum(np.asarray(logits, "float64") - sparsemax_threshold(logits)[..., None], 0.0)
