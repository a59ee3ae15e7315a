"""Losses for noisy labels: normalized losses, reverse cross-entropy and active-passive pairs.

Ma, Huang, Wang, Romano, Erfani & Bailey, "Normalized Loss Functions for Deep Learning with
Noisy Labels" (ICML 2020). With ``q`` the label distribution (one-hot for hard labels) and
``p`` the predicted distribution:

- a loss ``L`` is *normalized* by dividing it by its sum over all labels (Eq. 3):
  ``L_norm(p, y) = L(p, y) / sum_j L(p, j)``, which makes it robust to symmetric and
  asymmetric noise (Theorems 1, 2). Normalized cross-entropy (NCE, Eq. 4) is
  ``log p_y / sum_k log p_k``; normalized focal loss (NFL, Eq. 5) divides the focal loss
  ``-(1 - p_y)^gamma log p_y`` by ``sum_k -(1 - p_k)^gamma log p_k``.
- *reverse* cross-entropy (RCE; Wang et al. 2019, "Symmetric Cross Entropy") swaps the two
  distributions, ``-sum_k p_k log q_k``, with ``log 0`` clamped to ``A = -4``: for a hard label
  it is ``-A (1 - p_y)``.
- the paper's mean absolute error is ``sum_k |p_k - q_k|`` (``2 (1 - p_y)`` for a hard label).
- *active-passive* losses (APL, Eq. 6) ``alpha * active + beta * passive`` pair an active
  loss (it raises ``p_y``: CE, focal, NCE, NFL) with a passive one (it lowers the other
  ``p_k``: MAE, RCE) to fix the underfitting of normalized losses; the paper recommends
  NCE+RCE and NCE+MAE.

Each loss is a per-sample registry candidate (``"nce"``, ``"normalized_focal"``, ``"rce"``,
``"nce_rce"``, ``"nce_mae"``; `keras_adaptive_loss.losses.available`) and a Keras loss
class. Generalized cross-entropy (Zhang & Sabuncu) is the registry's ``"gce"`` (q = 0.7) and
`GeneralizedCrossentropy` (any q): Keras's formula, with a finite gradient where a
probability underflows to 0 (`gce`).
"""

from __future__ import annotations

from typing import Any

import keras
from keras import ops

from keras_adaptive_loss.losses.candidates import ClassificationTerms, candidate_from_terms
from keras_adaptive_loss.losses.function_loss import FunctionLoss

__all__ = [
    "ACTIVE_LOSSES",
    "PASSIVE_LOSSES",
    "REVERSE_LOG_ZERO",
    "ActivePassiveLoss",
    "GeneralizedCrossentropy",
    "NormalizedCrossentropy",
    "NormalizedFocalLoss",
    "ReverseCrossentropy",
    "active_passive",
    "gce",
    "l1_distance",
    "nce",
    "nce_mae",
    "nce_rce",
    "normalized_focal",
    "rce",
]

#: ``A``: the value ``log 0`` is clamped to in reverse cross-entropy (Wang et al. 2019).
REVERSE_LOG_ZERO = -4.0


def _focal_terms(terms: ClassificationTerms, gamma: float) -> Any:
    """``-(1 - p_k)^gamma log p_k`` for every class ``k``: ``[..., C]``."""
    return -ops.power(1.0 - terms.p, gamma) * terms.log_p


@candidate_from_terms
def nce(terms: ClassificationTerms) -> Any:
    """Normalized cross-entropy ``(-sum_k q_k log p_k) / (-sum_k log p_k)`` (Ma et al. Eq. 4).

    >>> import numpy as np
    >>> y, p = np.array([0, 1]), np.array([[0.8, 0.2], [0.4, 0.6]])  # p_y = 0.8, 0.6
    >>> ops.convert_to_numpy(nce(y, p)).round(4).tolist()
    [0.1218, 0.3579]
    """
    return terms.crossentropy / ops.sum(-terms.log_p, axis=-1)


@candidate_from_terms
def normalized_focal(terms: ClassificationTerms, gamma: float = 0.5) -> Any:
    """Normalized focal loss (Ma et al. Eq. 5): focal loss over its sum over all labels.

    ``gamma`` 0.5 as in the paper's experiments; ``gamma = 0`` is `nce`.

    >>> import numpy as np
    >>> y, p = np.array([0, 1]), np.array([[0.8, 0.2], [0.4, 0.6]])  # p_y = 0.8, 0.6
    >>> ops.convert_to_numpy(normalized_focal(y, p)).round(4).tolist()
    [0.0648, 0.3128]
    """
    per_class = _focal_terms(terms, gamma)
    return ops.sum(terms.labels * per_class, axis=-1) / ops.sum(per_class, axis=-1)


@candidate_from_terms
def rce(terms: ClassificationTerms, log_zero: float = REVERSE_LOG_ZERO) -> Any:
    """Reverse cross-entropy ``-sum_k p_k log q_k`` with ``log 0 = log_zero`` (A = -4).

    >>> import numpy as np
    >>> y, p = np.array([0, 1]), np.array([[0.8, 0.2], [0.4, 0.6]])  # p_y = 0.8, 0.6
    >>> ops.convert_to_numpy(rce(y, p)).round(4).tolist()  # -A (1 - p_y) for a hard label
    [0.8, 1.6]
    """
    safe = ops.where(terms.labels > 0, terms.labels, 1.0)
    log_q = ops.where(terms.labels > 0, ops.log(safe), log_zero)
    return -ops.sum(terms.p * log_q, axis=-1)


@candidate_from_terms
def l1_distance(terms: ClassificationTerms) -> Any:
    """The noisy-label papers' MAE, ``sum_k |p_k - q_k|`` (``2 (1 - p_y)`` for a hard label).

    The registry's ``"mae"`` is the *mean* over classes, this sum divided by C.

    >>> import numpy as np
    >>> y, p = np.array([0, 1]), np.array([[0.8, 0.2], [0.4, 0.6]])  # p_y = 0.8, 0.6
    >>> ops.convert_to_numpy(l1_distance(y, p)).round(4).tolist()
    [0.4, 0.8]
    """
    return ops.sum(ops.abs(terms.p - terms.labels), axis=-1)


#: Active losses of `ActivePassiveLoss`: name -> per-class-term function.
ACTIVE_LOSSES = ("crossentropy", "focal", "nce", "normalized_focal")
#: Passive losses of `ActivePassiveLoss`.
PASSIVE_LOSSES = ("rce", "mae")


def _active(terms: ClassificationTerms, name: str, gamma: float) -> Any:
    if name == "crossentropy":
        return terms.crossentropy
    if name == "focal":
        return ops.sum(terms.labels * _focal_terms(terms, gamma), axis=-1)
    if name == "nce":
        return nce.from_terms(terms)
    return normalized_focal.from_terms(terms, gamma=gamma)


@candidate_from_terms
def active_passive(
    terms: ClassificationTerms,
    active: str = "nce",
    passive: str = "rce",
    alpha: float = 1.0,
    beta: float = 1.0,
    gamma: float = 0.5,
) -> Any:
    """``alpha * active + beta * passive`` (Ma et al. Eq. 6); see `ActivePassiveLoss`.

    >>> import numpy as np
    >>> y, p = np.array([0, 1]), np.array([[0.8, 0.2], [0.4, 0.6]])  # beta 0 below: NCE
    >>> ops.convert_to_numpy(active_passive(y, p, alpha=1.0, beta=0.0)).round(4).tolist()
    [0.1218, 0.3579]
    """
    passive_value = rce.from_terms(terms) if passive == "rce" else l1_distance.from_terms(terms)
    return alpha * _active(terms, active, gamma) + beta * passive_value


def nce_rce(y_true: Any, y_pred: Any, *, from_logits: bool = False) -> Any:
    """NCE + RCE with ``alpha = beta = 1`` (Ma et al., APL).

    >>> import numpy as np
    >>> y, p = np.array([0, 1]), np.array([[0.8, 0.2], [0.4, 0.6]])  # p_y = 0.8, 0.6
    >>> ops.convert_to_numpy(nce_rce(y, p)).round(4).tolist()
    [0.9218, 1.9579]
    """
    return active_passive(y_true, y_pred, from_logits=from_logits)


def nce_mae(y_true: Any, y_pred: Any, *, from_logits: bool = False) -> Any:
    """NCE + MAE with ``alpha = beta = 1`` (Ma et al., APL).

    >>> import numpy as np
    >>> y, p = np.array([0, 1]), np.array([[0.8, 0.2], [0.4, 0.6]])  # p_y = 0.8, 0.6
    >>> ops.convert_to_numpy(nce_mae(y, p)).round(4).tolist()
    [0.5218, 1.1579]
    """
    return active_passive(y_true, y_pred, from_logits=from_logits, passive="mae")


nce_rce.from_terms = lambda terms: active_passive.from_terms(terms)
nce_mae.from_terms = lambda terms: active_passive.from_terms(terms, passive="mae")


@candidate_from_terms
def gce(terms: ClassificationTerms, q: float = 0.7) -> Any:
    """Generalized cross-entropy ``(1 - p_y^q) / q`` (Zhang & Sabuncu, "Generalized Cross
    Entropy Loss for Training Deep Neural Networks with Noisy Labels", arXiv:1805.07836),
    ``q = 0.7`` as in the paper's experiments (Keras's default is 0.5); soft labels take
    ``(1 - sum_k y_k p_k^q) / q``.

    ``p^q`` is ``exp(q log p)`` on the candidates' log-probabilities: from logits,
    ``log_softmax``; from probabilities, clipped to ``[epsilon, 1 - epsilon]`` as Keras's
    cross-entropy clips them (as the reference code of Ma et al.'s normalized losses clamps
    GCE's input). Keras's own `keras.losses.categorical_generalized_cross_entropy` takes
    ``power(p_y, q)`` of the raw probability, whose gradient ``q p_y^(q-1)`` is infinite where a
    softmax underflows to ``p_y = 0``: under label noise the model grows confident against a
    flipped label, and training turned NaN (seen on the generalization suite's Gaussian
    quantiles with 20 % noise, 2026-12-07).

    >>> import numpy as np
    >>> y, p = np.array([0, 1]), np.array([[0.8, 0.2], [0.4, 0.6]])  # p_y = 0.8, 0.6
    >>> ops.convert_to_numpy(gce(y, p)).round(4).tolist()  # (1 - p_y^0.7) / 0.7
    [0.2066, 0.4295]
    """
    return (1.0 - ops.sum(terms.labels * ops.exp(q * terms.log_p), axis=-1)) / q


@keras.saving.register_keras_serializable(package="keras_adaptive_loss")
class GeneralizedCrossentropy(FunctionLoss):
    """Generalized cross-entropy ``(1 - p_y^q) / q`` (Zhang & Sabuncu 2018), robust to
    label noise.

    ``q -> 0`` is cross-entropy, ``q = 1`` the mean absolute error ``1 - p_y`` (the expectation
    loss); in between, the gradient of cross-entropy weighted per sample by ``p_y^q``, so
    samples the model contradicts (often the mislabelled ones) weigh less. The paper uses
    ``q = 0.7``; the registry's ``"gce"`` is this loss at 0.7. Computed as `gce`: finite where
    ``p_y`` underflows to 0.

    Args:
        q: in ``(0, 1]``.
        from_logits: whether ``y_pred`` holds logits.
        name: as for any Keras loss.
        reduction: as for any Keras loss.
        dtype: as for any Keras loss.

    >>> import numpy as np
    >>> p = np.array([[0.8, 0.2], [0.4, 0.6]])  # p_y = 0.8, 0.6
    >>> round(float(GeneralizedCrossentropy(q=0.5)(np.array([0, 1]), p)), 4)
    0.331

    References:
        Zhang & Sabuncu, "Generalized Cross Entropy Loss for Training Deep Neural Networks
        with Noisy Labels", NeurIPS 2018 (arXiv:1805.07836).
    """

    function = gce

    def __init__(
        self,
        q: float = 0.7,
        from_logits: bool = False,
        name: str = "generalized_crossentropy",
        reduction: str | None = "sum_over_batch_size",
        dtype: Any = None,
    ) -> None:
        if not 0.0 < q <= 1.0:
            raise ValueError(
                f"q must lie in (0, 1] (q -> 0 is cross-entropy, q = 1 the mean absolute "
                f"error); got {q!r}."
            )
        super().__init__(from_logits, {"q": float(q)}, name, reduction, dtype)


@keras.saving.register_keras_serializable(package="keras_adaptive_loss")
class NormalizedCrossentropy(FunctionLoss):
    """Normalized cross-entropy, robust to label noise (Ma et al. 2020, Eq. 4).

    ``NCE = (-sum_k q_k log p_k) / (-sum_k log p_k)``, in ``[0, 1]``. Alone it underfits (the
    paper's Sec. 4.2); pair it with a passive loss in `ActivePassiveLoss`.

    Args:
        from_logits: whether ``y_pred`` holds logits.
        name: as for any Keras loss.
        reduction: as for any Keras loss.
        dtype: as for any Keras loss.

    >>> import numpy as np
    >>> p = np.array([[0.5, 0.25, 0.25]])
    >>> loss = NormalizedCrossentropy()
    >>> round(float(loss(np.array([0]), p)), 4)  # log 0.5 / (log 0.5 + 2 log 0.25)
    0.2

    References:
        Ma, Huang, Wang, Romano, Erfani & Bailey, "Normalized Loss Functions for Deep
        Learning with Noisy Labels", ICML 2020, Eq. 4.
    """

    function = nce

    def __init__(
        self,
        from_logits: bool = False,
        name: str = "normalized_crossentropy",
        reduction: str | None = "sum_over_batch_size",
        dtype: Any = None,
    ) -> None:
        super().__init__(from_logits, {}, name, reduction, dtype)


@keras.saving.register_keras_serializable(package="keras_adaptive_loss")
class NormalizedFocalLoss(FunctionLoss):
    """Normalized focal loss (Ma et al. 2020, Eq. 5): the focal loss of the label divided by
    the sum of the focal losses of all labels; ``gamma = 0`` is `NormalizedCrossentropy`.

    Args:
        gamma: focusing parameter >= 0 (0.5 in the paper's experiments).
        from_logits: whether ``y_pred`` holds logits.
        name: as for any Keras loss.
        reduction: as for any Keras loss.
        dtype: as for any Keras loss.

    >>> import numpy as np
    >>> p = np.array([[0.5, 0.25, 0.25]])
    >>> float(NormalizedFocalLoss(gamma=0.0)(np.array([0]), p)) == float(
    ...     NormalizedCrossentropy()(np.array([0]), p))
    True

    References:
        Ma et al., "Normalized Loss Functions for Deep Learning with Noisy Labels",
        ICML 2020, Eq. 5.
    """

    function = normalized_focal

    def __init__(
        self,
        gamma: float = 0.5,
        from_logits: bool = False,
        name: str = "normalized_focal_loss",
        reduction: str | None = "sum_over_batch_size",
        dtype: Any = None,
    ) -> None:
        if not gamma >= 0:
            raise ValueError(f"gamma must be >= 0; got {gamma!r}.")
        super().__init__(from_logits, {"gamma": float(gamma)}, name, reduction, dtype)


@keras.saving.register_keras_serializable(package="keras_adaptive_loss")
class ReverseCrossentropy(FunctionLoss):
    """Reverse cross-entropy ``-sum_k p_k log q_k`` with ``log 0`` clamped to ``log_zero``
    (A = -4; Wang et al. 2019, used as the passive loss of Ma et al. 2020). For a hard label
    it is ``-A (1 - p_y)``: a bounded, noise-tolerant loss.

    Args:
        log_zero: the value of ``log 0`` (< 0).
        from_logits: whether ``y_pred`` holds logits.
        name: as for any Keras loss.
        reduction: as for any Keras loss.
        dtype: as for any Keras loss.

    >>> import numpy as np
    >>> float(ReverseCrossentropy()(np.array([0]), np.array([[0.75, 0.25]])))
    1.0

    References:
        Wang, Ma, Chen, Luo, Yi & Bailey, "Symmetric Cross Entropy for Robust Learning
        with Noisy Labels", ICCV 2019.
    """

    function = rce

    def __init__(
        self,
        log_zero: float = REVERSE_LOG_ZERO,
        from_logits: bool = False,
        name: str = "reverse_crossentropy",
        reduction: str | None = "sum_over_batch_size",
        dtype: Any = None,
    ) -> None:
        if not log_zero < 0:
            raise ValueError(f"log_zero must be < 0 (it stands for log 0); got {log_zero!r}.")
        super().__init__(from_logits, {"log_zero": float(log_zero)}, name, reduction, dtype)


@keras.saving.register_keras_serializable(package="keras_adaptive_loss")
class ActivePassiveLoss(FunctionLoss):
    """``alpha * active + beta * passive``: an active-passive loss (APL; Ma et al. 2020, Eq. 6).

    The active loss raises the probability of the labelled class, the passive one lowers the
    others; normalized active losses alone underfit, and the passive term restores fitting
    while keeping robustness to label noise. With ``beta = 0`` it is ``alpha`` times the
    active loss.

    **Default, and how it differs from the paper.** The paper recommends NCE+RCE (or NCE+MAE)
    with alpha = beta = 1 on CIFAR-10; that recipe is `ActivePassiveLoss.paper`. Whether it
    helps depends on whether cross-entropy memorises the flipped labels: where it does (its
    training accuracy on the noisy labels climbs past the clean fraction while validation
    accuracy falls) the paper's recipe gained 6-15 points in paired studies, and where it does
    not it underfits and lost 15-19 (documentation, "Measured results", the related-loss
    family). The default is the largest passive weight that stayed within noise of
    cross-entropy in both regimes: **CE + 0.05 RCE** (the symmetric cross-entropy of Wang et
    al. 2019 with a light passive term). The passive
    term's gradient is weighted by ``p_y``, towards samples already fitted, which under Adam
    slows the fit of the rest where cross-entropy still underfits; a weight small enough to
    cost nothing there gains nothing measurable where it memorises. So it is a safe default,
    not a robust one: **when cross-entropy is seen to memorise noise** (training accuracy on
    noisy labels climbing past the clean fraction while validation accuracy falls), **use
    the paper's recipe**, and check it with ``compare``.

    Args:
        active: ``"crossentropy"`` (default), ``"nce"`` (the paper's), ``"normalized_focal"``
            or ``"focal"``.
        passive: ``"rce"`` (reverse cross-entropy, A = -4; default) or ``"mae"`` (the paper's
            ``sum_k |p_k - q_k|``).
        alpha: weight >= 0 of the active term (default 1).
        beta: weight >= 0 of the passive term (default 0.05; the paper tunes both
            per dataset, e.g. alpha = beta = 1 on CIFAR-10, alpha = 10, beta = 0.1 on
            CIFAR-100).
        gamma: focusing parameter of focal active losses.
        from_logits: whether ``y_pred`` holds logits.
        name: as for any Keras loss.
        reduction: as for any Keras loss.
        dtype: as for any Keras loss.

    >>> import numpy as np
    >>> p = np.array([[0.5, 0.25, 0.25]])
    >>> round(float(ActivePassiveLoss()(np.array([0]), p)), 4)  # CE ln 2 + 0.05 * RCE 4 * 0.5
    0.7931
    >>> round(float(ActivePassiveLoss.paper()(np.array([0]), p)), 4)  # NCE 0.2 + RCE 2
    2.2

    References:
        Ma et al., "Normalized Loss Functions for Deep Learning with Noisy Labels",
        ICML 2020, Eq. 6; Wang et al., "Symmetric Cross Entropy for Robust Learning with
        Noisy Labels", ICCV 2019 (the CE + RCE default).
    """

    function = active_passive

    def __init__(
        self,
        active: str = "crossentropy",
        passive: str = "rce",
        alpha: float = 1.0,
        beta: float = 0.05,
        gamma: float = 0.5,
        from_logits: bool = False,
        name: str | None = None,
        reduction: str | None = "sum_over_batch_size",
        dtype: Any = None,
    ) -> None:
        if active not in ACTIVE_LOSSES:
            raise ValueError(f"active must be one of {ACTIVE_LOSSES}; got {active!r}.")
        if passive not in PASSIVE_LOSSES:
            raise ValueError(f"passive must be one of {PASSIVE_LOSSES}; got {passive!r}.")
        for label, value in (("alpha", alpha), ("beta", beta), ("gamma", gamma)):
            if not value >= 0:
                raise ValueError(f"{label} must be >= 0; got {value!r}.")
        options = {
            "active": active,
            "passive": passive,
            "alpha": float(alpha),
            "beta": float(beta),
            "gamma": float(gamma),
        }
        super().__init__(from_logits, options, name or f"{active}_{passive}", reduction, dtype)

    @classmethod
    def paper(cls, passive: str = "rce", **kwargs: Any) -> ActivePassiveLoss:
        """The paper's recommended NCE+RCE (or NCE+MAE with ``passive="mae"``), alpha = beta = 1
        (its CIFAR-10 setting); see the class docstring for what it measured here."""
        return cls("nce", passive, **{"alpha": 1.0, "beta": 1.0, **kwargs})
