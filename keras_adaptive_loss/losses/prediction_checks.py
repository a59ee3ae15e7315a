"""Catching a probabilities-vs-logits mismatch before it trains a model to garbage.

A loss told ``from_logits=False`` that receives logits (a linear output layer), or told
``from_logits=True`` that receives softmax outputs, still returns finite numbers, and the model
trains to nonsense without a word (CE+EL on a linear output: 4 % accuracy on digits). Keras's
own cross-entropy warns in the second case; `check_predictions` does the same for every loss
of this package, in both directions:

- while a step is traced, the operation that produced ``y_pred`` tells its kind: ``Softmax`` or
  ``Sigmoid`` means probabilities, a linear layer's ``BiasAdd``/``MatMul`` means logits; a
  mismatch gives a `UserWarning` naming the loss and the fix;
- when the values are known (an eager call), probabilities outside ``[0, 1]`` raise a
  `ValueError` (with ``from_logits=False`` they are meaningless).
"""

from __future__ import annotations

import warnings
from typing import Any

import keras
import numpy as np

from keras_adaptive_loss._tensorflow import is_eager, producing_op

__all__ = ["check_predictions"]

_PROBABILITY_OPS = ("Softmax", "Sigmoid")
_LOGIT_OPS = ("BiasAdd", "MatMul", "BatchMatMulV2", "Conv2D", "Conv1D")
_PASS_THROUGH_OPS = ("Identity", "Cast", "Reshape", "Squeeze", "ExpandDims")


def check_predictions(y_pred: Any, from_logits: bool, loss: str = "This loss") -> None:
    """Warns (traced) or raises (eager, values known) when ``y_pred`` is not what
    ``from_logits`` says; see the module docstring.

    >>> import numpy as np
    >>> check_predictions(np.array([[2.0, -1.0]]), from_logits=False, loss="CandidateLoss")
    Traceback (most recent call last):
    ...
    ValueError: CandidateLoss expects probabilities (from_logits=False) but got values from -1 ...
    """
    kind = producing_op(y_pred, _PASS_THROUGH_OPS)
    if from_logits and kind in _PROBABILITY_OPS:
        warnings.warn(
            f"{loss} received from_logits=True, but its predictions come from a {kind} "
            "activation and are probabilities, not logits. Pass from_logits=False, or remove "
            "the activation of the output layer.",
            UserWarning,
            stacklevel=3,
        )
    elif not from_logits and kind in _LOGIT_OPS:
        warnings.warn(
            f"{loss} expects probabilities (from_logits=False), but its predictions come from a "
            f"linear layer ({kind}) and look like logits. Pass from_logits=True, or give the "
            "output layer a softmax (sigmoid for one unit) activation.",
            UserWarning,
            stacklevel=3,
        )
    if from_logits or not is_eager(y_pred):
        return
    values = np.asarray(keras.ops.convert_to_numpy(y_pred), dtype="float64")
    finite = values[np.isfinite(values)]
    if finite.size and (finite.min() < 0.0 or finite.max() > 1.0 + 1e-3):
        raise ValueError(
            f"{loss} expects probabilities (from_logits=False) but got values from "
            f"{finite.min():.4g} to {finite.max():.4g}, outside [0, 1]: these look like "
            "logits. Pass from_logits=True, or give the output layer a softmax activation."
        )


def check_batch_sizes(y_true: Any, y_pred: Any) -> None:
    """Raises `ValueError` naming both shapes when the labels and predictions hold different
    numbers of samples (where both are known: eagerly, or with static batch sizes), rather
    than a backend error from the first op that combines them.

    >>> check_batch_sizes(np.zeros(3), np.zeros((4, 2)))
    Traceback (most recent call last):
    ...
    ValueError: The labels hold 3 samples (shape (3,)) but the predictions hold 4 (shape (4, 2))...
    """
    true_shape, pred_shape = tuple(np.shape(y_true)), tuple(np.shape(y_pred))
    if not true_shape or not pred_shape:
        return
    true_batch, pred_batch = true_shape[0], pred_shape[0]
    if true_batch is not None and pred_batch is not None and true_batch != pred_batch:
        raise ValueError(
            f"The labels hold {true_batch} samples (shape {true_shape}) but the predictions "
            f"hold {pred_batch} (shape {pred_shape}): pass one label per prediction."
        )
