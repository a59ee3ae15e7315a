"""`SetMetricLoss`: the base of losses whose value is a metric of the whole batch.

A set metric (accuracy counted over the batch, average precision, F-beta, a confusion-matrix
metric) is one number for a set of samples. Keras's `Loss.__call__` applies ``sample_weight``
after `call()`, as a weighted mean of per-sample values; for a set metric that only rescales
the batch's value and never removes a sample. So this base overrides ``__call__`` thinly: it
turns ``sample_weight`` (and so ``class_weight``, which `fit` turns into sample weights) and
the mask Keras attaches to the predictions into one weight per sample, passes them to
``call(y_true, y_pred, sample_weight=weights)`` where they weight the metric's counts (a
sample of weight 0 is absent), and reduces what `call` returns exactly as Keras reduces any
loss's per-sample values, with Keras's own reduction. It is the only loss class of the package
that overrides ``__call__``.
"""

from __future__ import annotations

from typing import Any

import keras
from keras import ops

from keras_adaptive_loss.private_api import keras_mask

__all__ = ["SetMetricLoss", "per_sample_weights"]


class _KerasReduction(keras.losses.Loss):
    """Hands its ``y_pred`` (per-sample values) to Keras's reduction unchanged."""

    def call(self, y_true: Any, y_pred: Any) -> Any:
        return y_pred


def per_sample_weights(sample_weight: Any, mask: Any, batch_size: int | None) -> Any:
    """One float32 weight per sample (``[batch]``, or ``[batch, time]`` for masked sequences)
    from a ``sample_weight`` (scalar, ``[batch]`` or ``[batch, 1]``) and a Keras mask; ``None``
    when both are ``None``.

    >>> import numpy as np
    >>> w = per_sample_weights(np.array([[1.0], [0.5], [0.0]]), np.array([True, True, True]), 3)
    >>> keras.ops.convert_to_numpy(w).tolist()
    [1.0, 0.5, 0.0]

    Raises:
        ValueError: the weights' batch size differs from the predictions'.
    """
    if sample_weight is None and mask is None:
        return None
    weights = None
    if sample_weight is not None:
        weights = ops.convert_to_tensor(sample_weight, "float32")
        while len(weights.shape) >= 2 and weights.shape[-1] == 1:
            weights = ops.squeeze(weights, axis=-1)
        if len(weights.shape) == 0 and batch_size is not None:
            weights = ops.full((batch_size,), weights)
        elif len(weights.shape) == 0:
            raise ValueError(
                "A scalar sample_weight needs a known batch size; pass one weight per sample."
            )
        if batch_size is not None and weights.shape[0] not in (None, batch_size):
            raise ValueError(
                f"sample_weight has shape {tuple(weights.shape)} but the predictions hold "
                f"{batch_size} samples: pass one weight per sample."
            )
    if mask is not None:
        mask = ops.cast(mask, "float32")
        if weights is None:
            return mask
        while len(weights.shape) < len(mask.shape):
            weights = weights[..., None]
        while len(mask.shape) < len(weights.shape):
            mask = mask[..., None]
        weights = weights * mask
    return weights


class SetMetricLoss(keras.losses.Loss):
    """Base class of losses whose value is a metric of the whole batch.

    A subclass implements ``call(y_true, y_pred, sample_weight=None)`` and returns one value
    per sample whose plain mean is the loss (e.g. the set metric repeated once per sample).
    ``sample_weight`` is ``None`` when neither weights nor a mask were given; otherwise a
    float32 tensor with one weight per sample (``[batch]``, or ``[batch, time]`` for masked
    sequences), with which the subclass weights the metric's counts: a sample of weight 0 must
    leave the value exactly as if it were not in the batch. What `call` returns is reduced as
    Keras reduces any loss (``reduction``), without applying the weights a second time.

    Example:

    ```python
    class WeightedErrorRate(SetMetricLoss):
        def call(self, y_true, y_pred, sample_weight=None):
            wrong = ops.cast(ops.argmax(y_pred, -1) != ops.cast(y_true, "int64"), "float32")
            w = ops.ones_like(wrong) if sample_weight is None else sample_weight
            return ops.ones_like(wrong) * ops.sum(w * wrong) / ops.maximum(ops.sum(w), 1e-12)
    ```
    """

    def __call__(self, y_true: Any, y_pred: Any, sample_weight: Any = None) -> Any:
        mask = keras_mask(y_pred)
        if sample_weight is None and mask is None:
            return super().__call__(y_true, y_pred)
        batch = ops.shape(y_pred)[0] if hasattr(y_pred, "shape") else len(y_pred)
        batch = batch if isinstance(batch, int) else None
        weights = per_sample_weights(sample_weight, mask, batch)
        with keras.name_scope(self.name):
            y_pred = keras.tree.map_structure(
                lambda x: ops.convert_to_tensor(x, dtype=self.dtype), y_pred
            )
            y_true = keras.tree.map_structure(
                lambda x: ops.convert_to_tensor(x, dtype=self.dtype), y_true
            )
            values = self.call(y_true, y_pred, sample_weight=weights)
            reduce = _KerasReduction(reduction=self.reduction, dtype=self.dtype)
            return reduce(ops.zeros_like(values), values)
