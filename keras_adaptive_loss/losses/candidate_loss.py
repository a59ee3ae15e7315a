"""`CandidateLoss`: any registry candidate as a loss to pass to `model.compile`."""

from __future__ import annotations

from typing import Any

import keras

from keras_adaptive_loss.losses import registry
from keras_adaptive_loss.losses.prediction_checks import check_predictions

__all__ = ["CandidateLoss"]


@keras.saving.register_keras_serializable(package="keras_adaptive_loss")
class CandidateLoss(keras.losses.Loss):
    """A candidate loss from the registry, usable in ``model.compile(loss=...)``.

    Gives every registry candidate (focal, poly1, the expectation loss, the probability-space
    hinge, ...) the usual Keras loss interface: reduction, ``sample_weight`` and serialization.

    Args:
        candidate: a registry name (see `keras_adaptive_loss.losses.available`).
        from_logits: whether ``y_pred`` holds logits.
        name: name of the loss instance; defaults to the candidate's name.
        reduction: Keras reduction, ``"sum_over_batch_size"`` by default.
        dtype: dtype of the loss computation.

    >>> import numpy as np
    >>> import keras_adaptive_loss as kal
    >>> loss = kal.losses.CandidateLoss("expectation")
    >>> float(loss(np.array([0, 1]), np.array([[0.75, 0.25], [0.5, 0.5]])))
    0.375
    """

    def __init__(
        self,
        candidate: str = "crossentropy",
        from_logits: bool = False,
        name: str | None = None,
        reduction: str | None = "sum_over_batch_size",
        dtype: Any = None,
    ) -> None:
        if not isinstance(candidate, str):
            raise ValueError(
                "CandidateLoss takes a registry name such as 'focal' "
                f"(one of {registry.available()}); got {candidate!r}."
            )
        self.candidate = registry.get_candidate(candidate, from_logits=from_logits)
        self.from_logits = bool(from_logits)
        super().__init__(name=name or self.candidate.name, reduction=reduction, dtype=dtype)

    def call(self, y_true: Any, y_pred: Any) -> Any:
        check_predictions(y_pred, self.from_logits, type(self).__name__)
        return self.candidate(y_true, y_pred)

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(candidate=self.candidate.name, from_logits=self.from_logits)
        return config
