"""Losses for long-tailed data: class-balanced weighting and LDAM (with deferred re-weighting).

- Class-balanced loss (Cui, Jia, Lin, Song & Belongie, "Class-Balanced Loss Based on Effective
  Number of Samples", CVPR 2019): a class with ``n`` samples has an effective number
  ``(1 - beta^n) / (1 - beta)`` (Eq. 3), and its samples are weighted by the inverse,
  ``w_c = (1 - beta) / (1 - beta^{n_c})``, normalised so that ``sum_c w_c = C`` (Eq. 4).
  ``beta = 0`` is unweighted; ``beta -> 1`` approaches inverse class frequency.
- LDAM (Cao, Wei, Gaidon, Arechiga & Ma, "Learning Imbalanced Datasets with Label-Distribution-
  Aware Margin Loss", NeurIPS 2019): cross-entropy on scaled logits with the true class's logit
  lowered by a class margin ``Delta_j ∝ n_j^{-1/4}`` (Eq. 13), the largest margin being
  ``max_margin``: rare classes must win by more. Deferred re-weighting (DRW, Sec. 3.3) trains
  unweighted first and switches class-balanced weights on later:
  `keras_adaptive_loss.callbacks.DeferredReweighting`.

Class counts are passed in or counted from the training labels with `class_counts`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import keras
import numpy as np
from keras import ops

from keras_adaptive_loss.losses import candidates
from keras_adaptive_loss.losses.base import AdaptiveLoss
from keras_adaptive_loss.losses.prediction_checks import check_predictions

__all__ = [
    "BASE_LOSSES",
    "ClassBalancedLoss",
    "LDAMLoss",
    "class_balanced_weights",
    "class_counts",
    "ldam_margins",
]

#: Losses `ClassBalancedLoss` can weight.
BASE_LOSSES = ("crossentropy", "focal")


def class_counts(labels: Any, num_classes: int | None = None) -> np.ndarray:
    """Samples per class in ``labels`` (class ids, or one-hot rows).

    >>> class_counts([0, 2, 2, 1, 2]).tolist()
    [1, 1, 3]
    """
    labels = np.asarray(labels)
    if labels.ndim == 2 and labels.shape[1] > 1:
        labels = labels.argmax(-1)
    labels = labels.reshape(-1)
    if labels.size == 0 or labels.min() < 0 or np.any(labels != np.round(labels)):
        raise ValueError("class_counts needs non-empty labels of class ids >= 0.")
    labels = labels.astype("int64")
    return np.bincount(labels, minlength=num_classes or 0)


def _checked_counts(counts: Sequence[float]) -> np.ndarray:
    counts = np.asarray(counts, "float64")
    if counts.ndim != 1 or len(counts) < 2 or np.any(counts < 1) or not np.all(np.isfinite(counts)):
        raise ValueError(
            "class_counts must list at least 2 classes, each with at least 1 sample (count them "
            f"with kal.losses.imbalance.class_counts(y_train)); got {np.asarray(counts).tolist()}."
        )
    return counts


def class_balanced_weights(counts: Sequence[float], beta: float) -> np.ndarray:
    """``w_c = (1 - beta) / (1 - beta^{n_c})``, normalised to sum to C (Cui et al. Eq. 4).

    >>> class_balanced_weights([100, 10], 0.0).tolist()
    [1.0, 1.0]
    >>> np.round(class_balanced_weights([100, 10], 0.999), 3).tolist()
    [0.189, 1.811]
    """
    counts = _checked_counts(counts)
    if not 0.0 <= beta < 1.0:
        raise ValueError(f"beta must lie in [0, 1); got {beta!r}.")
    weights = (1.0 - beta) / (1.0 - np.power(beta, counts))
    return weights * len(counts) / weights.sum()


def ldam_margins(counts: Sequence[float], max_margin: float) -> np.ndarray:
    """``Delta_j ∝ n_j^{-1/4}`` with the largest equal to ``max_margin`` (Cao et al. Eq. 13).

    >>> np.round(ldam_margins([10000, 1], 0.5), 3).tolist()
    [0.05, 0.5]
    """
    counts = _checked_counts(counts)
    if not max_margin >= 0:
        raise ValueError(f"max_margin must be >= 0; got {max_margin!r}.")
    margins = counts**-0.25
    return margins * (max_margin / margins.max())


def _initial_weights(class_weights: Sequence[float] | None, default: np.ndarray) -> np.ndarray:
    """``class_weights`` (one per class, as float32) if given, else ``default``."""
    if class_weights is None:
        return default.astype("float32")
    weights = np.asarray(class_weights, "float32")
    if weights.shape != default.shape:
        raise ValueError(
            f"class_weights needs one weight per class ({len(default)}); got shape {weights.shape}."
        )
    return weights


def _check_classes(loss: Any, classes: Any) -> None:
    if classes != len(loss.class_counts):
        raise ValueError(
            f"{type(loss).__name__} was built for {len(loss.class_counts)} classes but the "
            f"predictions have {classes}."
        )


def _weighted(labels: Any, values: Any, weights: Any) -> Any:
    """Per-sample ``values`` times the weight of the sample's class (``sum_k q_k w_k``)."""
    return values * ops.sum(labels * ops.cast(weights, labels.dtype), axis=-1)


@keras.saving.register_keras_serializable(package="keras_adaptive_loss")
class ClassBalancedLoss(AdaptiveLoss):
    """Cross-entropy or focal loss weighted per class by the inverse effective number of
    samples (Cui et al. 2019, Eqs. 3-4): ``w_y * L(p, y)``.

    The weights are an adaptive parameter (``class_weights``), so they can be changed during
    `fit` (e.g. switched on late, as `keras_adaptive_loss.callbacks.DeferredReweighting` does).

    Args:
        class_counts: training samples per class (`class_counts` counts them).
        beta: in [0, 1): 0 is unweighted, values near 1 (the paper's 0.999, 0.9999) approach
            inverse class frequency.
        base: ``"crossentropy"`` or ``"focal"`` (the paper's best on CIFAR-LT: focal, gamma
            0.5-2).
        gamma: focusing parameter of the focal base.
        class_weights: explicit weights instead of ``beta``'s (restored from a saved config).
        from_logits: whether ``y_pred`` holds logits.
        name: as for any Keras loss.
        reduction: as for any Keras loss.
        dtype: as for any Keras loss.

    >>> import numpy as np
    >>> loss = ClassBalancedLoss([100, 10], beta=0.999)
    >>> p = np.array([[0.5, 0.5], [0.5, 0.5]])
    >>> round(float(loss(np.array([0, 1]), p)), 4)  # mean of 0.189 and 1.811 times log 2
    0.6931

    References:
        Cui, Jia, Lin, Song & Belongie, "Class-Balanced Loss Based on Effective Number of
        Samples", CVPR 2019.
    """

    def __init__(
        self,
        class_counts: Sequence[float],
        beta: float = 0.9999,
        base: str = "crossentropy",
        gamma: float = 2.0,
        class_weights: Sequence[float] | None = None,
        from_logits: bool = False,
        name: str = "class_balanced_loss",
        reduction: str | None = "sum_over_batch_size",
        dtype: Any = None,
    ) -> None:
        super().__init__(name=name, reduction=reduction, dtype=dtype)
        if base not in BASE_LOSSES:
            raise ValueError(f"base must be one of {BASE_LOSSES}; got {base!r}.")
        if not gamma >= 0:
            raise ValueError(f"gamma must be >= 0; got {gamma!r}.")
        self.class_counts = _checked_counts(class_counts).tolist()
        self.beta = float(beta)
        default = class_balanced_weights(self.class_counts, self.beta)
        weights = _initial_weights(class_weights, default)
        self.base = base
        self.gamma = float(gamma)
        self.from_logits = bool(from_logits)
        self.add_parameter("class_weights", weights, minimum=0.0)

    def call(self, y_true: Any, y_pred: Any) -> Any:
        check_predictions(y_pred, self.from_logits, type(self).__name__)
        terms = candidates.classification_terms(y_true, y_pred, from_logits=self.from_logits)
        _check_classes(self, terms.labels.shape[-1])
        if self.base == "crossentropy":
            values = terms.crossentropy
        else:
            values = candidates.focal.from_terms(terms, gamma=self.gamma)
        return _weighted(terms.labels, values, self.variable("class_weights"))

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(
            class_counts=self.class_counts,
            beta=self.beta,
            base=self.base,
            gamma=self.gamma,
            from_logits=self.from_logits,
        )
        return config


@keras.saving.register_keras_serializable(package="keras_adaptive_loss")
class LDAMLoss(AdaptiveLoss):
    """Label-distribution-aware margin loss (Cao et al. 2019, Eq. 13).

    ``L = CE(scale * (z - Delta_y e_y), y)``: the true class's logit ``z_y`` is lowered by its
    class margin ``Delta_y ∝ n_y^{-1/4}`` (largest ``max_margin``) and the logits are scaled by
    ``scale`` (the authors' code normalises features and weights and uses 30; on an unnormalised
    output layer a scale near 1 is the usual choice). With probabilities, ``z = log p`` (softmax
    is shift-invariant, so this is exact). ``max_margin = 0`` and ``scale = 1`` is
    cross-entropy. Per-class weights (``class_weights``, ones by default) multiply the loss;
    `keras_adaptive_loss.callbacks.DeferredReweighting` switches class-balanced weights on at
    a later epoch (DRW, the paper's Sec. 3.3; weights multiply each sample's loss and Keras
    averages over the batch, where PyTorch's weighted mean divides by the sum of weights).

    Args:
        class_counts: training samples per class (`class_counts` counts them).
        max_margin: the largest margin (0.5 in the paper).
        scale: the logit scale s > 0.
        class_weights: initial per-class weights (default ones).
        from_logits: whether ``y_pred`` holds logits.
        name: as for any Keras loss.
        reduction: as for any Keras loss.
        dtype: as for any Keras loss.

    >>> import numpy as np
    >>> ce = -np.log(0.5)
    >>> plain = LDAMLoss([100, 1], max_margin=0.0, scale=1.0)
    >>> bool(np.isclose(float(plain(np.array([1]), np.array([[0.5, 0.5]]))), ce))
    True

    References:
        Cao, Wei, Gaidon, Arechiga & Ma, "Learning Imbalanced Datasets with
        Label-Distribution-Aware Margin Loss", NeurIPS 2019.
    """

    def __init__(
        self,
        class_counts: Sequence[float],
        max_margin: float = 0.5,
        scale: float = 1.0,
        class_weights: Sequence[float] | None = None,
        from_logits: bool = False,
        name: str = "ldam_loss",
        reduction: str | None = "sum_over_batch_size",
        dtype: Any = None,
    ) -> None:
        super().__init__(name=name, reduction=reduction, dtype=dtype)
        if not scale > 0:
            raise ValueError(f"scale must be > 0; got {scale!r}.")
        self.class_counts = _checked_counts(class_counts).tolist()
        self.max_margin = float(max_margin)
        self.scale = float(scale)
        self.margins = ldam_margins(self.class_counts, self.max_margin).astype("float32")
        weights = _initial_weights(class_weights, np.ones(len(self.class_counts)))
        self.from_logits = bool(from_logits)
        self.add_parameter("class_weights", weights, minimum=0.0)

    def call(self, y_true: Any, y_pred: Any) -> Any:
        check_predictions(y_pred, self.from_logits, type(self).__name__)
        y_pred = candidates.as_float(y_pred)
        _check_classes(self, y_pred.shape[-1])
        labels, log_p = candidates.labels_and_log_probs(
            y_true, y_pred, from_logits=self.from_logits
        )
        logits = y_pred if self.from_logits else log_p
        shifted = logits - labels * ops.cast(self.margins, logits.dtype)
        log_q = ops.log_softmax(self.scale * shifted, axis=-1)
        values = -ops.sum(labels * log_q, axis=-1)
        return _weighted(labels, values, self.variable("class_weights"))

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(
            class_counts=self.class_counts,
            max_margin=self.max_margin,
            scale=self.scale,
            from_logits=self.from_logits,
        )
        return config
