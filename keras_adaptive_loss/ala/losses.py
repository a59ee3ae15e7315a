"""Parametric losses of Adaptive Loss Alignment (Huang et al., ICML 2019), Eqs. 6, 9 and 10.

Their parameters Φ are adaptive parameters (non-trainable variables) that the ALA controller
moves by -β, 0 or +β every K steps; here they can also be set directly or by a schedule.
"""

from __future__ import annotations

import warnings
from typing import Any

import keras
import numpy as np
from keras import ops

from keras_adaptive_loss.losses import candidates
from keras_adaptive_loss.losses.base import AdaptiveLoss
from keras_adaptive_loss.losses.prediction_checks import check_batch_sizes, check_predictions

__all__ = [
    "FORMS",
    "NEGATIVE_DISTANCE_FUNCTIONS",
    "POSITIVE_DISTANCE_FUNCTIONS",
    "ClassCorrelationLoss",
    "DistanceMixtureLoss",
    "FocalWeightingLoss",
    "check_metric_learning_inputs",
    "pair_masks",
    "pairwise_distances",
    "soft_plus_sum",
]

_DISTANCE_EPSILON = 1e-6


FORMS = ("soft_target", "linear", "sigmoid")


@keras.saving.register_keras_serializable(package="keras_adaptive_loss")
class ClassCorrelationLoss(AdaptiveLoss):
    """Class-correlation loss of ALA (Huang et al., ICML 2019, Eq. 6), in a well-posed form.

    ``Φ`` (``phi``, ``[C, C]``, entries in ``[-1, 1]``) encodes class correlations. The paper
    says that a positive ``Φ[i, j]`` "encourages the model to increase the prediction
    probability of class j given ground-truth class i" and a negative one "penalizes the
    confusion between class i and j", and that ``Φ = I`` is cross-entropy. Its Eq. 6,
    ``-sigmoid(y^T Φ log p)``, does neither well, so three forms are offered (``form``):

    - ``"soft_target"`` (default) implements the stated meaning directly. With ``O`` the
      off-diagonal part of ``Φ``, ``m = y^T max(O, 0)`` (soft-target mass on related classes),
      ``n = y^T max(-O, 0)`` (confusion penalties) and the target
      ``q = (y * max(diag(Φ), 0) + m) / sum(y * max(diag(Φ), 0) + m)``::

          loss = -sum_j q_j log p_j + sum_j n_j * (-log(1 - p_j))

      At ``Φ = I`` this *is* cross-entropy, value and gradient. For every ``Φ`` in
      ``[-1, 1]`` both terms are cross-entropies of valid distributions, so the loss is
      bounded below (by 0) and its gradient stays that of a softmax cross-entropy: positive
      entries act like label smoothing restricted to related classes, negative ones like a
      complement cross-entropy that pushes ``p_j`` down, never towards ``-inf``. (The
      controller never moves the diagonal; a negative diagonal entry counts as 0.)
    - ``"linear"``: ``-y^T Φ log p``. Cross-entropy at ``Φ = I``, but unbounded below as
      soon as an off-diagonal entry is negative (it drives ``p_j`` to the clip).
    - ``"sigmoid"``: Eq. 6 literally, ``-sigmoid(y^T Φ log p)``. It is *not* cross-entropy at
      ``Φ = I`` (its gradient is CE's times ``p_y / (1 + p_y)^2``), and it saturates when the
      argument moves by a few units. Kept as the paper's mode.

    Why the default differs (MNIST-1D, 1-D CNN, 2 seeds): at
    ``Φ = I`` the sigmoid form reached 62.6 % test accuracy where cross-entropy reached 70.3 %,
    and after 22 ALA decisions of ±0.1 both paper forms collapsed (20-50 %); a fixed ``Φ``
    with every off-diagonal entry +0.03 in a CE-at-identity form gave 78.9 / 79.3 %.

    Args:
        num_classes: C.
        phi: initial ``[C, C]`` matrix; default the identity.
        from_logits: whether ``y_pred`` holds logits.
        form: ``"soft_target"`` (default), ``"linear"`` or ``"sigmoid"`` (see above).
        use_sigmoid: deprecated spelling of ``form="sigmoid"`` (``True``) or
            ``form="linear"`` (``False``), kept so older saved models load.
        name: as for any Keras loss.
        reduction: as for any Keras loss.
        dtype: as for any Keras loss.

    >>> import numpy as np
    >>> loss = ClassCorrelationLoss(num_classes=3)
    >>> round(float(loss(np.array([0]), np.array([[0.5, 0.25, 0.25]]))), 4)  # -log 0.5
    0.6931
    >>> phi = np.eye(3); phi[0, 1] = phi[1, 0] = 0.5  # half a unit of target mass on class 1
    >>> loss.set_parameter("phi", phi)
    >>> round(float(loss(np.array([0]), np.array([[0.5, 0.25, 0.25]]))), 4)  # q = (2/3, 1/3, 0)
    0.9242
    >>> round(float(ClassCorrelationLoss(3, form="sigmoid")(
    ...     np.array([0]), np.array([[0.5, 0.25, 0.25]]))), 4)  # -0.5 / 1.5
    -0.3333

    References:
        Huang et al., "Addressing the Loss-Metric Mismatch with Adaptive Loss Alignment",
        ICML 2019, Eq. 6.
    """

    def __init__(
        self,
        num_classes: int,
        phi: Any = None,
        from_logits: bool = False,
        form: str = "soft_target",
        use_sigmoid: bool | None = None,
        name: str = "class_correlation_loss",
        reduction: str | None = "sum_over_batch_size",
        dtype: Any = None,
    ) -> None:
        super().__init__(name=name, reduction=reduction, dtype=dtype)
        if not isinstance(num_classes, (int, np.integer)) or num_classes < 2:
            raise ValueError(f"num_classes must be an integer >= 2; got {num_classes!r}.")
        if use_sigmoid is not None:
            warnings.warn(
                "ClassCorrelationLoss(use_sigmoid=...) is deprecated: use form='sigmoid' "
                "(Eq. 6 as printed) or form='linear'.",
                DeprecationWarning,
                stacklevel=2,
            )
            form = "sigmoid" if use_sigmoid else "linear"
        if form not in FORMS:
            raise ValueError(f"form must be one of {FORMS}; got {form!r}.")
        self.num_classes = int(num_classes)
        self.from_logits = bool(from_logits)
        self.form = form
        phi = np.eye(self.num_classes) if phi is None else np.asarray(phi, dtype="float64")
        if phi.shape != (self.num_classes, self.num_classes):
            raise ValueError(
                f"phi must be a [{self.num_classes}, {self.num_classes}] matrix; got shape "
                f"{phi.shape}."
            )
        self.add_parameter("phi", phi, minimum=-1.0, maximum=1.0)

    def call(self, y_true: Any, y_pred: Any) -> Any:
        check_predictions(y_pred, self.from_logits, type(self).__name__)
        labels, log_p = candidates.labels_and_log_probs(
            y_true, y_pred, from_logits=self.from_logits
        )
        if labels.shape[-1] != self.num_classes:
            raise ValueError(
                f"ClassCorrelationLoss was built for {self.num_classes} classes; got predictions "
                f"with {labels.shape[-1]}."
            )
        phi = ops.cast(self.variable("phi"), log_p.dtype)
        if self.form != "soft_target":
            correlation = ops.sum(ops.matmul(labels, phi) * log_p, axis=-1)  # y^T Φ log p
            return -ops.sigmoid(correlation) if self.form == "sigmoid" else -correlation
        diagonal = ops.diagonal(phi)
        off_diagonal = phi - ops.diag(diagonal)
        target = labels * ops.relu(diagonal) + ops.matmul(labels, ops.relu(off_diagonal))
        target = target / ops.maximum(ops.sum(target, axis=-1, keepdims=True), 1e-12)
        penalty = ops.matmul(labels, ops.relu(-off_diagonal))
        # -log(1 - p_j), with 1 - p_j kept >= epsilon where a saturated softmax gives p_j = 1.
        complement = -ops.log(ops.maximum(1.0 - ops.exp(log_p), keras.config.epsilon()))
        return -ops.sum(target * log_p, axis=-1) + ops.sum(penalty * complement, axis=-1)

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(num_classes=self.num_classes, from_logits=self.from_logits, form=self.form)
        return config


def pairwise_distances(embeddings: Any) -> Any:
    """Euclidean distances between all pairs of rows, ``[batch, batch]`` (smooth at 0).

    Computed in float32, or float64 for float64 inputs.
    """
    embeddings = candidates.as_float(embeddings)
    squared = ops.sum(ops.square(embeddings), axis=-1)
    gram = ops.matmul(embeddings, ops.transpose(embeddings))
    d2 = ops.maximum(squared[:, None] + squared[None, :] - 2.0 * gram, 0.0)
    return ops.sqrt(d2 + _DISTANCE_EPSILON)


def pair_masks(y_true: Any, batch: Any) -> tuple[Any, Any]:
    """``(positive, negative)`` boolean ``[batch, batch]`` masks: same label (not the sample
    itself) and different label."""
    labels = ops.reshape(ops.cast(y_true, "int32"), (-1,))
    same = ops.equal(labels[:, None], labels[None, :])
    not_self = ops.logical_not(ops.eye(batch, dtype="bool"))
    return ops.logical_and(same, not_self), ops.logical_not(same)


def check_metric_learning_inputs(y_true: Any, y_pred: Any, loss: str) -> None:
    """Raises a `ValueError` naming ``loss`` unless ``y_pred`` is ``[batch, dimensions]`` and
    ``y_true`` holds one integer label per sample."""
    if len(y_pred.shape) != 2:
        raise ValueError(
            f"{loss} expects embeddings of shape [batch, dimensions]; got {y_pred.shape}."
        )
    if len(y_true.shape) not in (1, 2) or (len(y_true.shape) == 2 and y_true.shape[-1] != 1):
        raise ValueError(
            f"{loss} expects integer class labels of shape [batch] or [batch, 1] (pairs with "
            f"the same label are positives); got {y_true.shape}."
        )
    check_batch_sizes(y_true, y_pred)


# Eq. 9 leaves the five shapes to the supplementary material, which is not available; these
# are increasing (d+) and decreasing (d-) functions of the distance d >= 0 with different
# curvature. Index 1 of each list (d^2 and 0.5/d) is the paper's default selection.
POSITIVE_DISTANCE_FUNCTIONS = (
    ("d", lambda d: d),
    ("d^2", lambda d: ops.square(d)),
    ("sqrt(d)", lambda d: ops.sqrt(d)),
    ("log(1+d)", lambda d: ops.log1p(d)),
    ("d^3", lambda d: d * d * d),
)
NEGATIVE_DISTANCE_FUNCTIONS = (
    ("exp(-d)", lambda d: ops.exp(-d)),
    ("0.5/d", lambda d: 0.5 / d),
    ("1/(1+d)", lambda d: 1.0 / (1.0 + d)),
    ("max(0,1-d)", lambda d: ops.maximum(1.0 - d, 0.0)),
    ("exp(-d^2)", lambda d: ops.exp(-ops.square(d))),
)
DEFAULT_DISTANCE_MIXTURE = (0.0, 1.0, 0.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0)


@keras.saving.register_keras_serializable(package="keras_adaptive_loss")
class DistanceMixtureLoss(AdaptiveLoss):
    """Distance-mixture metric-learning loss (ALA paper, Eq. 9), on in-batch pairs.

    ``l = sum_i Φ(i) F_i+(d+) + sum_i Φ(i+5) F_i-(d-)``: for each anchor, the mean over its
    positives (same label) of the weighted increasing functions of the distance, plus the mean
    over its negatives of the weighted decreasing ones. ``Φ`` (``phi``, ten entries in
    ``[0, 1]``) starts by selecting ``d^2`` for ``d+`` and ``0.5 / d`` for ``d-``, as in the
    paper. The five shapes of each kind (not given in the paper's main text) are listed in
    `POSITIVE_DISTANCE_FUNCTIONS` and `NEGATIVE_DISTANCE_FUNCTIONS`. ``y_pred`` holds
    embeddings ``[batch, dimensions]``, ``y_true`` integer labels; an anchor without a
    positive (or negative) in the batch gets no term of that kind.

    Args:
        phi: initial ten weights; default `DEFAULT_DISTANCE_MIXTURE`.
        name: as for any Keras loss.
        reduction: as for any Keras loss.
        dtype: as for any Keras loss.

    Example:

    >>> embeddings = np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 2.0]])  # d = 1, 2, sqrt(5)
    >>> labels = np.array([0, 0, 1])
    >>> # anchors: 1 + 0.5/2, 1 + 0.5/sqrt(5), mean(0.5/2, 0.5/sqrt(5)); then their mean
    >>> round(float(DistanceMixtureLoss()(labels, embeddings)), 4)
    0.9035

    References:
        Huang et al., "Addressing the Loss-Metric Mismatch with Adaptive Loss Alignment",
        ICML 2019, Eq. 9.
    """

    def __init__(
        self,
        phi: Any = DEFAULT_DISTANCE_MIXTURE,
        name: str = "distance_mixture_loss",
        reduction: str | None = "sum_over_batch_size",
        dtype: Any = None,
    ) -> None:
        super().__init__(name=name, reduction=reduction, dtype=dtype)
        phi = np.asarray(phi, dtype="float64")
        if phi.shape != (10,):
            raise ValueError(f"phi must have 10 entries (5 for d+, 5 for d-); got {phi.shape}.")
        self.add_parameter("phi", phi, minimum=0.0, maximum=1.0)

    def call(self, y_true: Any, y_pred: Any) -> Any:
        check_metric_learning_inputs(y_true, y_pred, "DistanceMixtureLoss")
        distances = pairwise_distances(y_pred)
        positive, negative = pair_masks(y_true, ops.shape(distances)[0])
        phi = ops.cast(self.variable("phi"), distances.dtype)
        pull = sum(phi[i] * f(distances) for i, (_, f) in enumerate(POSITIVE_DISTANCE_FUNCTIONS))
        push = sum(
            phi[5 + i] * f(distances) for i, (_, f) in enumerate(NEGATIVE_DISTANCE_FUNCTIONS)
        )
        return _masked_mean(pull, positive) + _masked_mean(push, negative)


def _masked_mean(values: Any, mask: Any) -> Any:
    mask = ops.cast(mask, values.dtype)
    return ops.sum(values * mask, axis=-1) / ops.maximum(ops.sum(mask, axis=-1), 1.0)


@keras.saving.register_keras_serializable(package="keras_adaptive_loss")
class FocalWeightingLoss(AdaptiveLoss):
    """Focal-weighting metric-learning loss (ALA paper, Eq. 10), on in-batch pairs.

    Per anchor: ``(1/Φ1) log[1 + sum_{i+} exp(Φ1 (d+ - alpha))]
    + (1/Φ2) log[1 + sum_{i-} exp(-Φ2 (d- - alpha))]``, computed with a stable log-sum-exp.
    Large ``Φ`` focus the loss on the hardest pairs (a soft maximum); small ones average over
    all pairs. ``Φ`` (``phi``, two entries > 0) starts at ``(1, 1)`` — the paper does not give
    its initial value — and the distance offset ``alpha`` is 1, as in the paper. ``y_pred`` holds
    embeddings, ``y_true`` integer labels.

    Args:
        phi: initial ``(Φ1, Φ2)``.
        alpha: the distance offset alpha.
        name: as for any Keras loss.
        reduction: as for any Keras loss.
        dtype: as for any Keras loss.

    Example:

    >>> embeddings = np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 2.0]])  # d = 1, 2, sqrt(5)
    >>> labels = np.array([0, 0, 1])
    >>> # anchor 0: log 2 + log(1 + e^-1); 1: log 2 + log(1 + e^(1 - sqrt 5)); 2: negatives only
    >>> round(float(FocalWeightingLoss()(labels, embeddings)), 4)
    0.8201

    References:
        Huang et al., "Addressing the Loss-Metric Mismatch with Adaptive Loss Alignment",
        ICML 2019, Eq. 10.
    """

    def __init__(
        self,
        phi: Any = (1.0, 1.0),
        alpha: float = 1.0,
        name: str = "focal_weighting_loss",
        reduction: str | None = "sum_over_batch_size",
        dtype: Any = None,
    ) -> None:
        super().__init__(name=name, reduction=reduction, dtype=dtype)
        phi = np.asarray(phi, dtype="float64")
        if phi.shape != (2,):
            raise ValueError(f"phi must have 2 entries (Φ1, Φ2); got {phi.shape}.")
        if not np.isfinite(alpha):
            raise ValueError(f"alpha must be a finite number; got {alpha!r}.")
        self.alpha = float(alpha)
        self.add_parameter("phi", phi, minimum=1e-3)

    def call(self, y_true: Any, y_pred: Any) -> Any:
        check_metric_learning_inputs(y_true, y_pred, "FocalWeightingLoss")
        distances = pairwise_distances(y_pred)
        positive, negative = pair_masks(y_true, ops.shape(distances)[0])
        phi = ops.cast(self.variable("phi"), distances.dtype)
        pull = soft_plus_sum(phi[0] * (distances - self.alpha), positive) / phi[0]
        push = soft_plus_sum(-phi[1] * (distances - self.alpha), negative) / phi[1]
        return pull + push

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config["alpha"] = self.alpha
        return config


def soft_plus_sum(z: Any, mask: Any) -> Any:
    """``log(1 + sum_j mask_ij exp(z_ij))`` per row, stably (0 for an empty row)."""
    z = ops.where(mask, z, -1e9)
    with_zero = ops.concatenate([ops.zeros_like(z[:, :1]), z], axis=-1)
    return ops.logsumexp(with_zero, axis=-1)
