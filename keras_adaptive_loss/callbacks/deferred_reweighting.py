"""`DeferredReweighting`: class-balanced weights switched on late in training (DRW)."""

from __future__ import annotations

from typing import Any

import numpy as np

from keras_adaptive_loss.callbacks.loss_lookup import find_compiled_loss
from keras_adaptive_loss.callbacks.reported_values import ReportingCallback
from keras_adaptive_loss.losses.imbalance import (
    ClassBalancedLoss,
    LDAMLoss,
    class_balanced_weights,
)

__all__ = ["DeferredReweighting"]


class DeferredReweighting(ReportingCallback):
    """Deferred re-weighting (DRW; Cao et al. 2019, Sec. 3.3) for `LDAMLoss` or
    `ClassBalancedLoss`.

    Training starts with every class weighted 1, so the model first learns a representation
    from all samples; from epoch ``start_epoch`` on (0-based; the paper trains 200 epochs and
    switches at 160) the loss's ``class_weights`` become the class-balanced weights
    ``(1 - beta) / (1 - beta^{n_c})`` normalised to sum to C (Cui et al. 2019). The position
    is the absolute epoch, so a run resumed with ``initial_epoch`` continues in the right phase.

    Reports ``drw`` (0 before the switch, 1 after) in the epoch logs, as a metric of the train
    step, so every logger records it whatever the callback order. The weights live in the
    loss's non-trainable variables, so the change takes effect in eager, graph and XLA mode.

    Args:
        start_epoch: the first epoch with class-balanced weights.
        beta: the class-balanced beta (0.9999 in the paper).
        loss_name: the loss to drive when several matching losses are compiled.

    Example:

    >>> import keras_adaptive_loss as kal
    >>> drw = kal.callbacks.DeferredReweighting(start_epoch=16)

    ```python
    counts = kal.losses.imbalance.class_counts(y)  # training samples per class
    model.compile(optimizer="sgd", loss=kal.losses.LDAMLoss(counts))
    model.fit(x, y, epochs=20, callbacks=[drw])
    ```

    References:
        Cao et al., "Learning Imbalanced Datasets with Label-Distribution-Aware Margin
        Loss", NeurIPS 2019, Sec. 3.3; Cui et al., "Class-Balanced Loss Based on Effective
        Number of Samples", CVPR 2019.
    """

    def __init__(self, start_epoch: int, beta: float = 0.9999, loss_name: str | None = None):
        super().__init__()
        if not isinstance(start_epoch, (int, np.integer)) or start_epoch < 0:
            raise ValueError(f"start_epoch must be an integer >= 0; got {start_epoch!r}.")
        if not 0.0 <= beta < 1.0:
            raise ValueError(f"beta must lie in [0, 1); got {beta!r}.")
        self.start_epoch = int(start_epoch)
        self.beta = float(beta)
        self.loss_name = loss_name
        self._loss: Any = None
        self._active = False

    def on_train_begin(self, logs: dict | None = None) -> None:
        self._loss = find_compiled_loss(
            self.model,
            lambda loss: isinstance(loss, (LDAMLoss, ClassBalancedLoss)),
            caller="DeferredReweighting",
            wanted="a kal.losses.LDAMLoss or kal.losses.ClassBalancedLoss",
            loss_name=self.loss_name,
            example="kal.losses.LDAMLoss(kal.losses.imbalance.class_counts(y_train))",
        )
        active = self._owned_variable("drw", self._active)
        self._start_reporting({"drw": lambda: active})

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self._active = epoch >= self.start_epoch
        counts = self._loss.class_counts
        weights = (
            class_balanced_weights(counts, self.beta) if self._active else np.ones(len(counts))
        )
        self._loss.set_parameter("class_weights", weights.astype("float32"))
        self._set_owned("drw", self._active)

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        self._fill_missing(logs)
