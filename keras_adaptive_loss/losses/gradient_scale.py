"""`scale_gradient`: a loss value whose gradient, not its value, is multiplied.

A loss whose gradient is several times smaller than cross-entropy's trains at a fraction of
cross-entropy's speed under SGD at the same learning rate (Adam and RMSProp divide a constant
factor out, up to their epsilon). `UniLoss` takes a ``gradient_scale`` that restores the step
size while the logged value keeps its meaning.
"""

from __future__ import annotations

import math
import numbers
from typing import Any

from keras import ops

__all__ = ["check_gradient_scale", "scale_gradient"]


def check_gradient_scale(factor: float) -> float:
    """``factor`` as a float, or a `ValueError` when it is not a finite number > 0."""
    real = isinstance(factor, numbers.Real) and not isinstance(factor, bool)
    if not real or not math.isfinite(factor) or factor <= 0:
        raise ValueError(f"gradient_scale must be a finite number > 0; got {factor!r}.")
    return float(factor)


def scale_gradient(value: Any, factor: float) -> Any:
    """``value`` unchanged, with its gradient multiplied by ``factor``.

    ``factor * value - (factor - 1) * stop_gradient(value)``: equal to ``value`` (exactly when
    ``factor`` is 1), and ``factor`` times its gradient.

    >>> import tensorflow as tf
    >>> x = tf.Variable(3.0)
    >>> with tf.GradientTape() as tape:
    ...     y = scale_gradient(x * x, 4.0)
    >>> float(y), float(tape.gradient(y, x))
    (9.0, 24.0)
    """
    return factor * value - (factor - 1.0) * ops.stop_gradient(value)
