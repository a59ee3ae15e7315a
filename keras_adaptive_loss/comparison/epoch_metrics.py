"""Per-epoch metrics `compare` adds to the model, for learning curves of the task's metric."""

from __future__ import annotations

from typing import Any

import keras
from keras import ops

__all__ = ["PositiveClassPRAUC"]


@keras.saving.register_keras_serializable(package="keras_adaptive_loss")
class PositiveClassPRAUC(keras.metrics.AUC):
    """Area under the precision-recall curve of class 1 of a two-class softmax output.

    The learning-curve counterpart of the test table's average precision on binary tasks:
    Keras's ``AUC(curve="PR")`` over ``num_thresholds`` thresholds, an estimate of AP that can
    be accumulated batch by batch inside ``fit`` (the table's AP, computed once on the test
    split, is exact). ``y_pred`` is ``[batch, 2]``: probabilities, or logits with
    ``from_logits=True`` (class 1's probability is then ``softmax(y_pred)[:, 1]``).

    >>> import numpy as np
    >>> metric = PositiveClassPRAUC()
    >>> probabilities = np.array([[0.1, 0.9], [0.8, 0.2], [0.3, 0.7], [0.6, 0.4]])
    >>> metric.update_state(np.array([1, 0, 1, 0]), probabilities)
    >>> round(float(metric.result()), 2)
    1.0
    """

    def __init__(
        self, from_logits: bool = False, name: str = "pr_auc", num_thresholds: int = 200, **kwargs
    ) -> None:
        super().__init__(curve="PR", num_thresholds=num_thresholds, name=name, **kwargs)
        self.softmax_logits = bool(from_logits)

    def update_state(self, y_true: Any, y_pred: Any, sample_weight: Any = None) -> Any:
        y_pred = ops.convert_to_tensor(y_pred)
        if self.softmax_logits:
            y_pred = ops.softmax(y_pred, axis=-1)
        positive = ops.reshape(ops.cast(y_true, "float32"), (-1,))
        return super().update_state(positive, y_pred[:, 1], sample_weight)

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        for key in ("curve", "summation_method", "multi_label", "label_weights", "from_logits"):
            config.pop(key, None)
        config["from_logits"] = self.softmax_logits
        return config
