"""`FunctionLoss`: the base of Keras losses that apply one per-sample function with options."""

from __future__ import annotations

from typing import Any

import keras

from keras_adaptive_loss.losses.prediction_checks import check_predictions

__all__ = ["FunctionLoss"]


class FunctionLoss(keras.losses.Loss):
    """A Keras loss computing ``function(y_true, y_pred, from_logits=..., **options)``.

    Subclasses set the class attribute ``function`` (a per-sample candidate) and pass their
    keyword options up; `get_config` records ``from_logits`` and every option, so the default
    ``from_config`` rebuilds the loss.
    """

    function: Any = None

    def __init__(
        self,
        from_logits: bool,
        options: dict[str, Any],
        name: str,
        reduction: str | None,
        dtype: Any,
    ) -> None:
        super().__init__(name=name, reduction=reduction, dtype=dtype)
        self.from_logits = bool(from_logits)
        self._options = options

    def call(self, y_true: Any, y_pred: Any) -> Any:
        check_predictions(y_pred, self.from_logits, type(self).__name__)
        return type(self).function(y_true, y_pred, from_logits=self.from_logits, **self._options)

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(from_logits=self.from_logits, **self._options)
        return config
