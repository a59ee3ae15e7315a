"""Sparsemax and its loss (Martins & Astudillo, "From Softmax to Sparsemax", ICML 2016).

``sparsemax(z) = argmin_{p in simplex} ||p - z||^2`` (Eq. 2) is the Euclidean projection of the
logits onto the probability simplex: ``p_j = max(z_j - tau(z), 0)`` with the threshold
``tau(z) = (sum_{j <= k(z)} z_(j) - 1) / k(z)``, where ``z_(1) >= z_(2) >= ...`` are the sorted
logits and ``k(z) = max {k : 1 + k z_(k) > sum_{j <= k} z_(j)}`` (Eq. 4). Unlike softmax it
gives exact zeros. Its loss, the sparsemax analogue of the logistic loss (Eq. 16), is
``L(z; q) = -q.z + 1/2 sum_{j in S(z)} (z_j^2 - tau(z)^2) + 1/2 ||q||^2`` with
``S(z) = {j : sparsemax_j(z) > 0}``; it is convex, non-negative, zero exactly when
``sparsemax(z) = q`` for a one-hot ``q``, and its gradient is ``sparsemax(z) - q`` (Eq. 18).
"""

from __future__ import annotations

from typing import Any

import keras
from keras import ops

from keras_adaptive_loss.losses import candidates
from keras_adaptive_loss.losses.function_loss import FunctionLoss

__all__ = ["Sparsemax", "SparsemaxLoss", "sparsemax", "sparsemax_loss", "sparsemax_threshold"]


def sparsemax_threshold(logits: Any) -> Any:
    """``tau(z)`` of Eq. 4 along the last axis, shape ``[..., 1]``."""
    z = candidates.as_float(logits)
    ordered = ops.flip(ops.sort(z, axis=-1), axis=-1)  # descending
    cumulative = ops.cumsum(ordered, axis=-1)
    k = ops.cast(ops.arange(1, z.shape[-1] + 1), z.dtype)
    support = ops.cast(1.0 + k * ordered > cumulative, z.dtype)
    size = ops.sum(support, axis=-1, keepdims=True)  # k(z) >= 1 always
    total = ops.sum(support * ordered, axis=-1, keepdims=True)
    return (total - 1.0) / size


def sparsemax(logits: Any) -> Any:
    """Sparse probabilities ``max(z - tau(z), 0)`` (Eq. 2); rows sum to 1.

    >>> import numpy as np
    >>> np.round(np.asarray(sparsemax(np.array([[2.0, 1.0, -1.0]]))), 3).tolist()
    [[1.0, 0.0, 0.0]]
    >>> np.round(np.asarray(sparsemax(np.array([[0.5, 0.3, -1.0]]))), 3).tolist()
    [[0.6, 0.4, 0.0]]
    """
    z = candidates.as_float(logits)
    return ops.maximum(z - sparsemax_threshold(z), 0.0)


def sparsemax_loss(y_true: Any, y_pred: Any, *, from_logits: bool = True) -> Any:
    """Per-sample sparsemax loss (Eq. 16) of logits ``y_pred``; needs logits."""
    if not from_logits:
        raise ValueError(
            "The sparsemax loss is defined on logits: use a linear output layer and "
            "from_logits=True (a Sparsemax layer belongs after the loss, at inference)."
        )
    z = candidates.as_float(y_pred)
    labels = candidates.labels_as_distribution(y_true, z)
    tau = sparsemax_threshold(z)  # through tau, the gradient becomes sparsemax(z) - q (Eq. 18)
    in_support = ops.cast(z > tau, z.dtype)
    quadratic = 0.5 * ops.sum(in_support * (ops.square(z) - ops.square(tau)), axis=-1)
    return -ops.sum(labels * z, axis=-1) + quadratic + 0.5 * ops.sum(ops.square(labels), axis=-1)


@keras.saving.register_keras_serializable(package="keras_adaptive_loss")
class Sparsemax(keras.layers.Layer):
    """Sparsemax activation over the last axis (Martins & Astudillo 2016, Eq. 2): softmax's
    sparse counterpart, with exact zeros.

    >>> import numpy as np
    >>> np.asarray(Sparsemax()(np.array([[3.0, 1.0, 0.0]]))).tolist()
    [[1.0, 0.0, 0.0]]
    """

    def call(self, inputs: Any) -> Any:
        return sparsemax(inputs)

    def compute_output_shape(self, input_shape: Any) -> Any:
        return input_shape


@keras.saving.register_keras_serializable(package="keras_adaptive_loss")
class SparsemaxLoss(FunctionLoss):
    """The sparsemax loss (Martins & Astudillo 2016, Eq. 16), on logits.

    Train a linear output with it and read sparse probabilities with a `Sparsemax` layer
    (or `sparsemax`). Sparse or one-hot (or soft) labels.

    Args:
        from_logits: must be ``True`` (the default): the loss is defined on logits.
        name: as for any Keras loss.
        reduction: as for any Keras loss.
        dtype: as for any Keras loss.

    >>> import numpy as np
    >>> float(SparsemaxLoss()(np.array([0]), np.array([[3.0, 1.0, 0.0]])))  # sparsemax = q
    0.0

    References:
        Martins & Astudillo, "From Softmax to Sparsemax: A Sparse Model of Attention and
        Multi-Label Classification", ICML 2016.
    """

    function = sparsemax_loss

    def __init__(
        self,
        from_logits: bool = True,
        name: str = "sparsemax_loss",
        reduction: str | None = "sum_over_batch_size",
        dtype: Any = None,
    ) -> None:
        if not from_logits:
            sparsemax_loss(None, None, from_logits=False)  # raises the explanation
        super().__init__(True, {}, name, reduction, dtype)
