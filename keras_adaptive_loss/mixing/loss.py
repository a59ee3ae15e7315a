"""Cross-entropy + expectation-loss mixing (Battash, Hazan & Wolf)."""

from __future__ import annotations

from typing import Any

import keras
from keras import ops

from keras_adaptive_loss.losses import candidates
from keras_adaptive_loss.losses.base import AdaptiveLoss
from keras_adaptive_loss.losses.prediction_checks import check_predictions

__all__ = ["CrossentropyExpectationMix", "focus_to_weights", "weights_to_focus"]

MAX_FOCUS = 0.5


def focus_to_weights(focus: float) -> tuple[float, float]:
    """Returns ``(alpha, beta)`` that focus the mixed loss on ``p_y = focus`` (paper Eq. 14).

    ``alpha = 1, beta = 1 / (1 - 2F)`` for ``0 <= F < 0.5`` and ``alpha = 0, beta = 1`` for
    ``F = 0.5`` (the limit of Eq. 14 up to scale).

    >>> focus_to_weights(0.25)
    (1.0, 2.0)
    >>> focus_to_weights(0.5)
    (0.0, 1.0)
    """
    focus = float(focus)
    if not 0.0 <= focus <= MAX_FOCUS:
        raise ValueError(
            f"The focus F must lie in [0, 0.5] (the p_y at which the mixed loss's gradient is "
            f"largest, paper Eq. 14); got {focus!r}."
        )
    if focus == MAX_FOCUS:
        return 0.0, 1.0
    return 1.0, 1.0 / (1.0 - 2.0 * focus)


def weights_to_focus(alpha: float, beta: float) -> float:
    """Returns the focus F of ``alpha * CE + beta * EL``: where its gradient peaks in ``p_y``.

    The gradient w.r.t. the true-class logit (paper Eq. 13) is largest in magnitude at
    ``p_y = 0.5 (1 - alpha / beta)``, clipped to ``[0, 0.5]``: ``beta <= alpha`` (including
    pure cross-entropy, ``beta = 0``) focuses on ``p_y = 0`` and ``alpha = 0`` on ``p_y = 0.5``.

    >>> weights_to_focus(1.0, 2.0)
    0.25
    """
    alpha, beta = float(alpha), float(beta)
    if beta <= 0.0:
        return 0.0
    return min(MAX_FOCUS, max(0.0, 0.5 * (1.0 - alpha / beta)))


@keras.saving.register_keras_serializable(package="keras_adaptive_loss")
class CrossentropyExpectationMix(AdaptiveLoss):
    """``alpha * CE + beta * (1 - p_y)``: cross-entropy mixed with the expectation loss.

    Implements paper Eq. 12, ``L = alpha * (-log p_y) + beta * (1 - p_y)``, from "Mixing between
    the Cross Entropy and the Expectation Loss Terms" (Battash, Hazan & Wolf). The expectation
    loss ``1 - p_y`` is the expected zero-one loss; mixing it in moves the largest gradient from
    samples with ``p_y = 0`` (hopeless ones, for cross-entropy) towards samples near the decision
    boundary. The focus ``F`` is the ``p_y`` at which the gradient peaks; `set_focus` sets
    ``alpha, beta`` from it by Eq. 14. The paper's training protocols move F from 0 to 0.5 in
    phases: use `keras_adaptive_loss.callbacks.FocusSchedule`.

    ``alpha`` and ``beta`` are adaptive parameters (non-trainable variables), so a callback can
    change them during a compiled `fit`. With ``alpha = 1`` the loss equals Poly-1 with
    ``epsilon = beta``.

    Args:
        alpha: weight of the cross-entropy term, ``>= 0``.
        beta: weight of the expectation-loss term, ``>= 0``.
        from_logits: whether ``y_pred`` holds logits (``True``) or probabilities.
        name: name of the loss instance.
        reduction: Keras reduction, ``"sum_over_batch_size"`` by default.
        dtype: dtype of the loss computation.

    Labels may be sparse integers or one-hot (or soft) vectors; see
    `keras_adaptive_loss.losses.candidates`.

    Example:

    >>> import numpy as np
    >>> import keras_adaptive_loss as kal
    >>> loss = kal.losses.CrossentropyExpectationMix(alpha=1.0, beta=1.0)
    >>> y_true = np.array([0, 1])
    >>> y_pred = np.array([[0.9, 0.1], [0.5, 0.5]])
    >>> round(float(loss(y_true, y_pred)), 4)  # mean of (0.1054 + 0.1) and (0.6931 + 0.5)
    0.6993
    >>> loss.set_focus(0.25)
    >>> loss.parameters, loss.focus
    ({'alpha': 1.0, 'beta': 2.0}, 0.25)

    In training:

    ```python
    model.compile(optimizer="adam", loss=kal.losses.CrossentropyExpectationMix())
    model.fit(x, y, epochs=30, callbacks=[kal.callbacks.FocusSchedule("0-0.5")])
    ```

    References:
        Battash, Hazan & Wolf, "Mixing between the Cross Entropy and the Expectation Loss
        Terms", Eq. 12.
    """

    def __init__(
        self,
        alpha: float = 1.0,
        beta: float = 1.0,
        from_logits: bool = False,
        name: str = "crossentropy_expectation_mix",
        reduction: str | None = "sum_over_batch_size",
        dtype: Any = None,
    ) -> None:
        super().__init__(name=name, reduction=reduction, dtype=dtype)
        self.from_logits = bool(from_logits)
        self.add_parameter("alpha", alpha, minimum=0.0)
        self.add_parameter("beta", beta, minimum=0.0)

    @property
    def alpha(self) -> float:
        """Current weight of the cross-entropy term."""
        return self.get_parameter("alpha")

    @property
    def beta(self) -> float:
        """Current weight of the expectation-loss term."""
        return self.get_parameter("beta")

    @property
    def focus(self) -> float:
        """Current focus F in ``[0, 0.5]`` (see `weights_to_focus`)."""
        return weights_to_focus(self.alpha, self.beta)

    def set_focus(self, focus: float) -> None:
        """Sets ``alpha, beta`` so that the loss focuses on ``p_y = focus`` (paper Eq. 14)."""
        alpha, beta = focus_to_weights(focus)
        self.set_parameter("alpha", alpha)
        self.set_parameter("beta", beta)

    def call(self, y_true: Any, y_pred: Any) -> Any:
        check_predictions(y_pred, self.from_logits, type(self).__name__)
        crossentropy, p_y = candidates.crossentropy_and_true_probability(
            y_true, y_pred, from_logits=self.from_logits
        )
        alpha = ops.cast(self.variable("alpha"), crossentropy.dtype)
        beta = ops.cast(self.variable("beta"), crossentropy.dtype)
        return alpha * crossentropy + beta * (1.0 - p_y)

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config["from_logits"] = self.from_logits
        return config
