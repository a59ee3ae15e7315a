"""Cross-entropy plus polynomial and squared-logit terms: PolyLoss and Squentropy.

- PolyLoss (Leng et al., "PolyLoss: A Polynomial Expansion Perspective of Classification Loss
  Functions", ICLR 2022): cross-entropy is ``sum_j (1/j) (1 - p_t)^j``; PolyLoss perturbs the
  leading coefficients, ``L = CE + sum_{j=1..N} epsilon_j (1 - p_t)^j`` (Eq. 3 with the
  "drop-and-add" view of Sec. 3). Poly-1 (``epsilon = (epsilon_1,)``) is the paper's
  recommendation and the registry's ``"poly1"``. ``p_t = sum_k q_k p_k`` for a label
  distribution ``q``, so soft labels work as in the paper's code.
- Squentropy (Hui, Belkin & Wright, "Cut your Losses with Squentropy", ICML 2023): cross-entropy
  plus the average square loss over the incorrect classes, computed on the *logits* ``z``:
  ``L = CE + (1 / (C - 1)) sum_{k != y} z_k^2`` (Eq. 2).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import keras
import numpy as np
from keras import ops

from keras_adaptive_loss.losses import candidates
from keras_adaptive_loss.losses.candidates import ClassificationTerms, candidate_from_terms
from keras_adaptive_loss.losses.function_loss import FunctionLoss

__all__ = ["PolyLoss", "Squentropy", "poly", "squentropy"]


def _epsilons(epsilon: float | Sequence[float]) -> tuple[float, ...]:
    values = (epsilon,) if np.ndim(epsilon) == 0 else tuple(epsilon)
    values = tuple(float(value) for value in values)
    if not values or not all(np.isfinite(values)):
        raise ValueError(
            "epsilon must be a finite number or a non-empty list of finite numbers "
            f"(epsilon_1, epsilon_2, ...); got {epsilon!r}."
        )
    return values


@candidate_from_terms
def poly(terms: ClassificationTerms, epsilon: float | Sequence[float] = -1.0) -> Any:
    """``CE + sum_j epsilon_j (1 - p_t)^j`` (PolyLoss, Leng et al. 2022, Eq. 3).

    ``epsilon`` defaults to `PolyLoss`'s -1 (chosen by measurement; see there), so that the
    registry's ``"poly"`` is ``PolyLoss()``; ``"poly1"`` is the paper's epsilon = 1.

    >>> y, p = np.array([0, 1]), np.array([[0.8, 0.2], [0.4, 0.6]])  # p_y = 0.8, 0.6
    >>> ops.convert_to_numpy(poly(y, p, epsilon=(1.0, 0.5))).round(4).tolist()
    [0.4431, 0.9908]
    """
    remainder = 1.0 - terms.p_y
    value = terms.crossentropy
    for power, coefficient in enumerate(_epsilons(epsilon), start=1):
        value = value + coefficient * ops.power(remainder, float(power))
    return value


def squentropy(y_true: Any, y_pred: Any, *, from_logits: bool = False) -> Any:
    """``CE + mean over the incorrect classes of z_k^2`` on logits ``z`` (Hui et al. 2023).

    Needs logits (``from_logits=True``): probabilities fix the logits only up to a constant.
    With soft labels, "incorrect" classes are weighted by ``1 - q_k``.

    >>> logits = np.array([[2.0, 1.0], [1.0, 0.0]])
    >>> value = squentropy(np.array([0, 1]), logits, from_logits=True)
    >>> ops.convert_to_numpy(value).round(4).tolist()  # CE + the wrong class's logit squared
    [1.3133, 2.3133]
    """
    if not from_logits:
        raise ValueError(
            "Squentropy squares the logits of the incorrect classes, so it needs logits: use a "
            "linear output layer and from_logits=True (probabilities fix the logits only up "
            "to a constant)."
        )
    logits = candidates.as_float(y_pred)
    terms = candidates.classification_terms(y_true, logits, from_logits=True)
    classes = logits.shape[-1]
    wrong = 1.0 - terms.labels
    square = ops.sum(wrong * ops.square(logits), axis=-1) / float(classes - 1)
    return terms.crossentropy + square


@keras.saving.register_keras_serializable(package="keras_adaptive_loss")
class PolyLoss(FunctionLoss):
    """PolyLoss: ``CE + sum_j epsilon_j (1 - p_t)^j`` (Leng et al. 2022, Eq. 3).

    ``epsilon = 0`` is cross-entropy; one coefficient is Poly-1, the paper's recommended form
    (epsilon_1 = 1 or 2 on ImageNet, -1 for detection). Soft labels are allowed:
    ``p_t = sum_k q_k p_k``.

    **Default, and how it differs from the paper.** On the logits, Poly-1's gradient is
    cross-entropy's scaled by ``1 + epsilon * p_t`` per sample: a positive epsilon weights the
    samples already fitted up, a negative one weights them down, as focal loss does. Under
    Adam, the paper's classification setting (epsilon = 1) lost to cross-entropy in paired
    studies and the sign the paper uses for detection won (documentation, "Measured
    results", drop-in replacements), so the default is **epsilon = -1**; the paper's Poly-1
    with epsilon = 1 is `PolyLoss.paper` (and the registry's ``"poly1"``). The default's value
    ``CE - (1 - p_t)`` is never negative, since ``log p <= p - 1``.

    Args:
        epsilon: ``epsilon_1`` or the list ``(epsilon_1, ..., epsilon_N)`` (default -1; the
            paper's classification setting is 1, `PolyLoss.paper`).
        from_logits: whether ``y_pred`` holds logits.
        name: as for any Keras loss.
        reduction: as for any Keras loss.
        dtype: as for any Keras loss.

    >>> import numpy as np
    >>> logits = np.array([[0.14, 1.456, 2.356, -0.124, -2.47]])
    >>> soft = np.array([[0.1, 0.15, 0.2, 0.25, 0.3]])
    >>> float(PolyLoss(epsilon=2.0, from_logits=True)(soft, logits))
    4.531657...

    References:
        Leng et al., "PolyLoss: A Polynomial Expansion Perspective of Classification Loss
        Functions", ICLR 2022.
    """

    function = poly

    def __init__(
        self,
        epsilon: float | Sequence[float] = -1.0,
        from_logits: bool = False,
        name: str = "poly_loss",
        reduction: str | None = "sum_over_batch_size",
        dtype: Any = None,
    ) -> None:
        self.epsilon = _epsilons(epsilon)
        super().__init__(from_logits, {"epsilon": list(self.epsilon)}, name, reduction, dtype)

    @classmethod
    def paper(cls, **kwargs: Any) -> PolyLoss:
        """The paper's Poly-1 for classification, ``epsilon = 1`` (it found 2 best on
        ImageNet). It lost 2-4 points on MNIST-1D here (see the class docstring); other
        arguments, ``epsilon`` included, as for the class."""
        return cls(**{"epsilon": 1.0, **kwargs})


@keras.saving.register_keras_serializable(package="keras_adaptive_loss")
class Squentropy(FunctionLoss):
    """Squentropy: cross-entropy plus the mean squared logit of the incorrect classes
    (Hui, Belkin & Wright 2023, Eq. 2). A drop-in replacement for cross-entropy with the same
    optimiser settings; the paper reports better accuracy and calibration. Needs logits.

    Args:
        from_logits: must be ``True`` (the default here): the model's output layer is linear.
        name: as for any Keras loss.
        reduction: as for any Keras loss.
        dtype: as for any Keras loss.

    >>> import numpy as np
    >>> logits = np.array([[2.0, 1.0, -1.0]])
    >>> ce = -np.log(np.exp(2.0) / np.exp(logits).sum())
    >>> bool(np.isclose(float(Squentropy()(np.array([0]), logits)), ce + (1 + 1) / 2))
    True

    References:
        Hui, Belkin & Wright, "Cut your Losses with Squentropy", ICML 2023.
    """

    function = squentropy

    def __init__(
        self,
        from_logits: bool = True,
        name: str = "squentropy",
        reduction: str | None = "sum_over_batch_size",
        dtype: Any = None,
    ) -> None:
        if not from_logits:
            squentropy(None, None, from_logits=False)  # raises the explanation
        super().__init__(from_logits, {}, name, reduction, dtype)
