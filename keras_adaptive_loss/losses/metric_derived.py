"""Losses derived from classification metrics: AnyLoss and EnsLoss.

- **AnyLoss** (Han, Moniz & Chawla 2024, "AnyLoss: Transforming Classification Metrics into
  Loss Functions"): every prediction ``p`` is pushed towards 0 or 1 by the *approximation
  function* ``A(p) = 1 / (1 + exp(-L (p - 1/2)))`` (Eq. 1, amplifying scale ``L``), the
  confusion matrix of the batch is built from the near-binary ``A(p)`` (Eq. 2:
  ``TN = sum (1 - y)(1 - A)``, ``FN = sum y (1 - A)``, ``FP = sum (1 - y) A``,
  ``TP = sum y A``), and the loss is ``1 - metric(TN, FN, FP, TP)`` (Eq. 3) for any
  confusion-matrix metric: accuracy, F1, F-beta, balanced accuracy, G-mean.
- **EnsLoss** (Dai 2024, "EnsLoss: Stochastic Calibrated Loss Ensembles for Preventing
  Overfitting in Classification"): a binary classifier is trained with a *random* convex,
  classification-calibrated loss per batch. A loss ``phi`` of the margin ``z = y f(x)``
  (``y`` in {-1, +1}) is convex and calibrated when its derivative is non-decreasing and
  negative at 0; EnsLoss never writes ``phi`` down: it draws the derivatives themselves
  (negative, sorted so that they do not decrease with the margin) and back-propagates
  ``sum_i g_i z_i`` with the ``g_i`` held constant (doubly stochastic gradient descent).

Both are *batch* losses (AnyLoss's metric and EnsLoss's ranking are functions of the whole
batch), so they are Keras losses and `compare` presets (``"anyloss_f1"``, ...,
``"ensloss"``) but not per-sample `StochasticLoss` candidates.
"""

from __future__ import annotations

import math
from typing import Any

import keras
import numpy as np
from keras import ops

from keras_adaptive_loss._tensorflow import (
    gather_global_batch,
    in_replica_context,
    replica_seed,
    stateless_normal,
)
from keras_adaptive_loss.losses.base import AdaptiveLoss
from keras_adaptive_loss.losses.candidates import as_float, labels_as_distribution
from keras_adaptive_loss.losses.prediction_checks import check_predictions
from keras_adaptive_loss.losses.set_metric import SetMetricLoss
from keras_adaptive_loss.uniloss.refactorings import binary_scores, check_binary_labels

__all__ = [
    "ANYLOSS_METRICS",
    "ENSLOSS_TAILS",
    "AnyLoss",
    "EnsLoss",
    "confusion_metric",
    "ensloss_derivatives",
    "multiclass_confusion_metric",
]

#: The confusion-matrix metrics `AnyLoss` turns into losses.
ANYLOSS_METRICS = ("accuracy", "f1", "fbeta", "balanced_accuracy", "gmean")
#: EnsLoss's derivative tail beyond margin 1: the logistic loss's (default) or the paper's 1/z.
ENSLOSS_TAILS = ("logistic", "inverse")
_SIGMOID_OF_MINUS_ONE = 1.0 / (1.0 + math.e)


def confusion_metric(metric: str, tn: Any, fn: Any, fp: Any, tp: Any, beta: float = 1.0) -> Any:
    """``metric`` of a binary (soft) confusion matrix.

    ``keras.config.epsilon()`` keeps each denominator positive (a batch without positives has
    recall 0).

    >>> round(float(confusion_metric("f1", tn=6.0, fn=1.0, fp=1.0, tp=2.0)), 4)
    0.6667
    """
    epsilon = keras.config.epsilon()
    if metric == "accuracy":
        return (tp + tn) / (tp + tn + fp + fn + epsilon)
    if metric in ("f1", "fbeta"):
        return _f_score(metric, fn, fp, tp, beta)
    recall = tp / (tp + fn + epsilon)
    specificity = tn / (tn + fp + epsilon)
    if metric == "balanced_accuracy":
        return 0.5 * (recall + specificity)
    if metric == "gmean":
        return ops.sqrt(recall * specificity + epsilon) - np.sqrt(epsilon)
    raise ValueError(f"metric must be one of {ANYLOSS_METRICS}; got {metric!r}.")


def multiclass_confusion_metric(metric: str, fn: Any, fp: Any, tp: Any, beta: float = 1.0) -> Any:
    """``metric`` of a multi-class (soft) confusion matrix given per class (vectors ``[C]``),
    as scikit-learn defines the multi-class metric: accuracy ``sum TP / N``; F1 and F-beta
    macro-averaged; balanced accuracy the mean recall; G-mean the geometric mean of the
    recalls. (Averaging one-vs-rest *accuracies* instead would reward predicting no class at
    all: each column is 1/C positives. Measured on digits, that trained to 10 % accuracy.)

    >>> tp, fn, fp = np.array([3.0, 1.0]), np.array([1.0, 1.0]), np.array([1.0, 1.0])
    >>> [round(float(multiclass_confusion_metric(m, fn, fp, tp)), 4)
    ...  for m in ("accuracy", "f1", "balanced_accuracy", "gmean")]
    [0.6667, 0.625, 0.625, 0.6124]
    """
    epsilon = keras.config.epsilon()
    if metric == "accuracy":
        return ops.sum(tp) / (ops.sum(tp + fn) + epsilon)
    if metric in ("f1", "fbeta"):
        return ops.mean(_f_score(metric, fn, fp, tp, beta))
    recall = tp / (tp + fn + epsilon)
    if metric == "balanced_accuracy":
        return ops.mean(recall)
    if metric == "gmean":
        return ops.exp(ops.mean(ops.log(recall + epsilon)))
    raise ValueError(f"metric must be one of {ANYLOSS_METRICS}; got {metric!r}.")


def _crossentropy(labels: Any, p: Any) -> Any:
    """Per-sample cross-entropy of ``[batch, K]`` labels and probabilities (K = 1: binary)."""
    p = ops.clip(p, keras.config.epsilon(), 1.0 - keras.config.epsilon())
    if p.shape[-1] == 1:
        return -(labels * ops.log(p) + (1.0 - labels) * ops.log(1.0 - p))[:, 0]
    return -ops.sum(labels * ops.log(p), axis=-1)


def _f_score(metric: str, fn: Any, fp: Any, tp: Any, beta: float) -> Any:
    b2 = 1.0 if metric == "f1" else beta**2
    return (1.0 + b2) * tp / ((1.0 + b2) * tp + b2 * fn + fp + keras.config.epsilon())


@keras.saving.register_keras_serializable(package="keras_adaptive_loss")
class AnyLoss(SetMetricLoss):
    """``1 - metric`` of a differentiable confusion matrix (AnyLoss; Han et al. 2024, Eqs. 1-3).

    Each predicted probability ``p`` becomes the near-binary ``A(p) = sigmoid(L (p - 1/2))``
    (Eq. 1; ``L = amplifier``), the batch's confusion matrix is summed from ``A(p)`` and the
    labels (Eq. 2), and the loss is one minus the chosen metric of that matrix (Eq. 3).

    - **Binary**: predictions ``[batch]``, ``[batch, 1]`` (the positive class's probability or
      logit) or a two-class output ``[batch, 2]`` (positive = class 1); 0/1 labels.
    - **Multi-class** (``C >= 3`` outputs, the softmax probabilities or logits; sparse or
      one-hot labels): the paper is binary; here each class gets one-vs-rest counts and the
      metric is the multi-class one (`multiclass_confusion_metric`: accuracy ``sum TP / N``,
      macro F1/F-beta, mean recall, geometric mean of recalls). Class ``c`` counts as
      predicted to the degree
      ``A_c = sigmoid(L/2 (p_c - max_{k != c} p_k))``: its hard limit is the confusion matrix
      of the argmax prediction (what a macro metric scores), and with two classes it is
      exactly Eq. 1 (``p - (1 - p) = 2 (p - 1/2)``). Thresholding each column at 1/2 instead
      saturates from the start — every ``p_c`` begins near ``1/C``, where
      ``A = sigmoid(-L (1/2 - 1/C))`` is about 1e-8 for ``C = 4``. Measured on digits (an
      MLP, Adam 1e-3, 4 epochs, 3 seeds), macro-F1 training accuracy was 0.07-0.17 with
      per-column thresholds against 0.76-0.92 with this form.

    The default differs from the paper in two measured ways (`AnyLoss.paper` is the paper's
    loss): a cross-entropy anchor (``crossentropy_weight=3.0``) and a gentler amplifier,
    ``L = 10`` instead of the paper's 73 (see the two arguments for the figures). Details the
    paper leaves open, as chosen here: each denominator gets ``keras.config.epsilon()``, so a
    class absent from a batch has recall 0 (balanced accuracy, G-mean) and an F-score moved
    only by its false positives. The loss is
    one value for the whole batch, returned once per sample so that Keras's reduction gives it
    back. ``sample_weight``, ``class_weight`` and a Keras mask weight the confusion matrix's
    counts and the cross-entropy anchor's mean (a `keras_adaptive_loss.losses.set_metric.
    SetMetricLoss`): a sample of weight 0 is absent. Under a
    `tf.distribute` strategy the predictions and labels are gathered from all replicas, so
    every replica computes the metric of the global batch and the training matches one device.

    Args:
        metric: ``"f1"`` (default), ``"fbeta"``, ``"accuracy"``, ``"balanced_accuracy"`` or
            ``"gmean"``.
        beta: ``beta`` of ``"fbeta"`` (> 0; recall is ``beta`` times as important).
        amplifier: ``L`` > 0 of the approximation function. The default 10 (the paper: 73)
            was chosen by paired studies (documentation, "Measured results",
            metric-derived losses): with L = 73 the steep sigmoid turns the few samples near
            1/2 into rare, large gradients that dominate Adam's second-moment estimate, and
            the anchored loss trained slower than cross-entropy.
        from_logits: whether ``y_pred`` holds logits (sigmoid for one output, softmax for
            several) rather than probabilities.
        crossentropy_weight: adds this multiple of each sample's cross-entropy, an anchor
            that keeps a gradient where the amplified sigmoid saturates. 0 is the paper's
            loss (`AnyLoss.paper`); the default 3.0, chosen by paired studies, is the only
            weight measured without a collapse on any task. A metric trained on noisy labels
            can collapse whatever the weight: with 10 % positives and symmetric noise the F1
            *on the noisy labels* of the clean classifier is barely above that of predicting
            "positive" everywhere. Do not train a metric on noisy labels; cross-entropy's
            calibrated posteriors keep the right ranking there.
        name: as for any Keras loss.
        reduction: as for any Keras loss.
        dtype: as for any Keras loss.

    >>> import numpy as np
    >>> y = np.array([1.0, 0.0, 1.0, 0.0])
    >>> p = np.array([0.9, 0.1, 0.8, 0.3])   # A(p) ~ (1, 0, 1, 0): F1 ~ 1
    >>> round(float(AnyLoss.paper("f1")(y, p)), 4)
    0.0
    >>> round(float(AnyLoss.paper("accuracy")(y, np.array([0.1, 0.9, 0.2, 0.7]))), 4)
    1.0
    >>> a = 1 / (1 + np.exp(-10 * (p - 0.5)))   # the default: L = 10 ...
    >>> tp, fp, fn = (y * a).sum(), ((1 - y) * a).sum(), (y * (1 - a)).sum()
    >>> ce = -np.mean(np.log([0.9, 0.9, 0.8, 0.7]))   # ... plus 3 x the cross-entropy
    >>> expected = 1 - 2 * tp / (2 * tp + fp + fn) + 3 * ce
    >>> bool(np.isclose(float(AnyLoss("f1")(y, p)), expected, atol=1e-4))
    True

    References:
        Han, Moniz & Chawla, "AnyLoss: Transforming Classification Metrics into Loss
        Functions", KDD 2024 (arXiv:2405.14745).
    """

    def __init__(
        self,
        metric: str = "f1",
        beta: float = 1.0,
        amplifier: float = 10.0,
        from_logits: bool = False,
        crossentropy_weight: float = 3.0,
        name: str | None = None,
        reduction: str | None = "sum_over_batch_size",
        dtype: Any = None,
    ) -> None:
        if not np.isfinite(crossentropy_weight) or crossentropy_weight < 0:
            raise ValueError(f"crossentropy_weight must be >= 0; got {crossentropy_weight!r}.")
        if metric not in ANYLOSS_METRICS:
            raise ValueError(f"metric must be one of {ANYLOSS_METRICS}; got {metric!r}.")
        if not np.isfinite(beta) or beta <= 0:
            raise ValueError(f"beta must be > 0; got {beta!r}.")
        if not np.isfinite(amplifier) or amplifier <= 0:
            raise ValueError(f"amplifier must be > 0; got {amplifier!r}.")
        super().__init__(name=name or f"anyloss_{metric}", reduction=reduction, dtype=dtype)
        self.metric = metric
        self.beta = float(beta)
        self.amplifier = float(amplifier)
        self.from_logits = bool(from_logits)
        self.crossentropy_weight = float(crossentropy_weight)

    @classmethod
    def paper(cls, metric: str = "f1", **kwargs: Any) -> AnyLoss:
        """The paper's loss, ``1 - metric`` alone (``crossentropy_weight=0``, ``L = 73``; Eqs. 1-3).

        It collapses where the amplified sigmoid saturates (see ``crossentropy_weight``).
        Other arguments as for the class.
        """
        return cls(metric, **{"crossentropy_weight": 0.0, "amplifier": 73.0, **kwargs})

    def _labels_and_probabilities(self, y_true: Any, y_pred: Any) -> tuple[Any, Any]:
        """``(labels, p)``, both ``[batch, K]``: K = 1 (binary) or C (one column per class)."""
        y_pred = as_float(y_pred)
        width = y_pred.shape[-1] if len(y_pred.shape) == 2 else 1
        if len(y_pred.shape) == 2 and width is not None and width >= 3:
            labels = labels_as_distribution(y_true, y_pred)
            if self.from_logits:
                return labels, ops.softmax(y_pred, axis=-1)
            return labels, y_pred / ops.sum(y_pred, axis=-1, keepdims=True)
        check_binary_labels(y_true, y_pred, self.from_logits, type(self).__name__)
        scores, labels = binary_scores(y_true, y_pred, self.from_logits)
        return labels[:, None], ops.sigmoid(scores)[:, None]

    def call(self, y_true: Any, y_pred: Any, sample_weight: Any = None) -> Any:
        check_predictions(y_pred, self.from_logits, type(self).__name__)
        y_pred = ops.convert_to_tensor(y_pred)
        y_true = ops.convert_to_tensor(y_true)
        per_sample = ops.ones_like(ops.reshape(as_float(y_pred), (ops.shape(y_pred)[0], -1))[:, 0])
        anchor = 0.0
        if self.crossentropy_weight > 0:
            labels, p = self._labels_and_probabilities(y_true, y_pred)  # this replica's batch
            anchor = self.crossentropy_weight * _crossentropy(labels, p)
        weights = None if sample_weight is None else ops.reshape(sample_weight, (-1,))
        all_weights = weights  # the global batch's, under a strategy
        if in_replica_context():
            y_true, y_pred, all_weights = gather_global_batch(y_true, y_pred, weights)
        if weights is not None and self.crossentropy_weight > 0:
            # Keras averages the per-sample values (and the replicas' means): scaled so that
            # the anchor's part of that mean is the weighted mean over the global batch.
            size = ops.cast(ops.shape(all_weights)[0], "float32")
            anchor = anchor * weights * size / ops.maximum(ops.sum(all_weights), 1e-12)
        labels, p = self._labels_and_probabilities(y_true, y_pred)
        if weights is not None:
            labels = labels * all_weights[:, None]  # weighted counts; a weight of 0: absent
        if p.shape[-1] == 1:
            approx = ops.sigmoid(self.amplifier * (p - 0.5))  # Eq. 1
        else:  # class c is predicted iff p_c beats every other class
            top = ops.top_k(p, 2)[0]
            best_other = ops.where(p >= top[:, :1], top[:, 1:], top[:, :1])
            approx = ops.sigmoid(0.5 * self.amplifier * (p - best_other))
        present = 1.0 if weights is None else all_weights[:, None]
        tp = ops.sum(labels * approx, axis=0)  # Eq. 2, one entry per column
        fn = ops.sum(labels * (1.0 - approx), axis=0)
        fp = ops.sum((present - labels) * approx, axis=0)
        if p.shape[-1] == 1:
            tn = ops.sum((present - labels) * (1.0 - approx), axis=0)
            metric = confusion_metric(self.metric, tn[0], fn[0], fp[0], tp[0], self.beta)
        else:
            metric = multiclass_confusion_metric(self.metric, fn, fp, tp, self.beta)
        value = 1.0 - metric
        return per_sample * ops.cast(value, per_sample.dtype) + anchor

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(
            metric=self.metric,
            beta=self.beta,
            amplifier=self.amplifier,
            crossentropy_weight=self.crossentropy_weight,
            from_logits=self.from_logits,
        )
        return config


def ensloss_derivatives(
    margins: Any, normal: Any, clip: float = 1.0, tail: str = "logistic"
) -> Any:
    """EnsLoss's random calibrated loss-derivatives for a batch of ``margins`` (Dai 2024).

    ``tail="inverse"`` (the paper's construction): ``g = -exp(normal)`` (the inverse Box-Cox
    transform with lambda = 0 of standard normal draws: log-normal magnitudes), clipped to
    ``[-clip, 0)`` (``clip`` 1.0 here, as in the authors' code; `EnsLoss` passes its own,
    3.0 by default), sorted and handed out by the margins' rank — the smallest margin gets the
    most negative derivative, so the derivative does not decrease with the margin
    (convexity) and is negative everywhere (calibration: ``phi'(0) < 0``). Where ``z > 1``
    the derivative is divided by ``z``, a tail that vanishes as the margin grows, and
    ``1e-6`` is subtracted so that it is strictly negative.

    ``tail="logistic"``: the same draws where ``z <= 1``, and beyond it the tail of the
    logistic loss instead of ``1/z``: the derivative is multiplied by
    ``sigmoid(-z) / sigmoid(-1)`` (1 at ``z = 1``, then decaying like ``exp(-z)``). The factor
    shrinks as the margin grows, so the derivative stays non-decreasing and negative: still a
    random convex calibrated loss. What changes is how hard samples that are already right
    keep pushing: with ``1/z`` a well-classified majority class keeps a large share of the
    gradient (on an imbalanced task, at the minority class's expense); with the logistic
    tail, as little as under cross-entropy.

    >>> margins, normal = np.array([-1.0, 0.5, 2.0]), np.array([0.0, 1.0, -1.0])
    >>> g = ensloss_derivatives(margins, normal, tail="inverse")
    >>> ops.convert_to_numpy(g).round(4).tolist()
    [-1.0, -1.0, -0.1839]
    >>> g = ensloss_derivatives(margins, normal, tail="logistic")
    >>> ops.convert_to_numpy(g).round(4).tolist()
    [-1.0, -1.0, -0.1631]
    """
    if tail not in ENSLOSS_TAILS:
        raise ValueError(f"tail must be one of {ENSLOSS_TAILS}; got {tail!r}.")
    rank = ops.argsort(ops.argsort(margins))
    draws = ops.maximum(-ops.exp(normal), -clip)
    ordered = ops.sort(draws)  # most negative first
    derivatives = ops.take(ordered, rank)
    if tail == "logistic":
        decay = ops.sigmoid(-margins) / _SIGMOID_OF_MINUS_ONE
    else:
        decay = 1.0 / ops.maximum(margins, 1.0)
    derivatives = ops.where(margins > 1.0, derivatives * decay, derivatives)
    return derivatives - 1e-6


@keras.saving.register_keras_serializable(package="keras_adaptive_loss")
class EnsLoss(AdaptiveLoss):
    """A random convex calibrated loss per batch, given by its derivatives (EnsLoss; Dai 2024).

    For a binary classifier with score ``f`` (the logit) and labels ``y`` in {-1, +1}, the
    margin is ``z = y f``. Each step draws one derivative ``g_i`` per sample with
    `ensloss_derivatives` — negative, non-decreasing in ``z`` (so some convex, calibrated loss
    ``phi`` has ``phi'(z_i) = g_i``) — and the gradient of the batch is that of
    ``mean_i g_i z_i`` with the ``g_i`` held constant: a new random legitimate loss per batch,
    an ensemble over losses in one training run, in the way dropout ensembles networks.

    Details the paper's method leaves to the implementation: derivatives drawn from a
    stateless generator seeded by ``(seed, step)`` (and the replica under a `tf.distribute`
    strategy, where each replica ranks its own batch), the clip of the log-normal magnitudes,
    and a tail above ``z = 1``. `EnsLoss.paper` follows the authors' code: magnitudes clipped
    to 1 and a ``1/z`` tail (``tail="inverse"``). **The default differs in both**, chosen by
    paired studies against cross-entropy (documentation, "Measured results", metric-derived
    losses):

    - **Tail**: the logistic loss's, ``sigmoid(-z) / sigmoid(-1)`` (``tail="logistic"``).
      With ``1/z`` every well-classified sample keeps pushing its margin up, so on an
      imbalanced task the majority class holds the gradient.
    - **Clip** ``3.0``: a draw's magnitude exceeds ``c`` with probability
      ``1 - Phi(ln c)``, and every clipped sample gets the same derivative; with ``c = 1``
      that is half the batch, its hardest half. A nearly unclipped ``c = 10`` hands the
      largest derivatives to the smallest margins, the mislabelled samples, and collapsed
      under label noise. ``c = 3`` (14 % clipped) stayed within noise of cross-entropy.

    ``g z`` itself is not a loss value anyone can read, so the value reported (the loss in
    `History`, ``val_loss``) is the **logistic loss** ``log(1 + exp(-z))`` of the same margins,
    a fixed calibrated loss; only its gradient is replaced by EnsLoss's.

    Inputs: one probability or logit per sample (``[batch]``, ``[batch, 1]``) or a two-class
    output ``[batch, 2]``; 0/1 labels.

    Args:
        clip: largest derivative magnitude (> 0; the authors' 1.0 in `EnsLoss.paper`).
        from_logits: whether ``y_pred`` holds logits.
        seed: base seed of the derivative draws; ``None`` draws one (recorded in the config).
        draws: batches drawn so far (restored from a saved config).
        tail: the derivative beyond margin 1, ``"logistic"`` or the paper's ``"inverse"``
            (see above and `ensloss_derivatives`).
        name: as for any Keras loss.
        reduction: as for any Keras loss.
        dtype: as for any Keras loss.

    >>> import numpy as np
    >>> y, logits = np.array([1.0, 0.0, 1.0]), np.array([2.0, -1.0, -0.5])
    >>> loss = EnsLoss(from_logits=True, seed=0)
    >>> round(float(loss(y, logits)), 4)  # the logistic loss of the margins (2, 1, -0.5)
    0.4714

    References:
        Dai, "EnsLoss: Stochastic Calibrated Loss Ensembles for Preventing Overfitting in
        Classification" (arXiv:2409.00908, 2024).
    """

    def __init__(
        self,
        clip: float = 3.0,
        from_logits: bool = False,
        seed: int | None = None,
        draws: int = 0,
        tail: str = "logistic",
        name: str = "ensloss",
        reduction: str | None = "sum_over_batch_size",
        dtype: Any = None,
    ) -> None:
        if not np.isfinite(clip) or clip <= 0:
            raise ValueError(f"clip must be > 0; got {clip!r}.")
        if tail not in ENSLOSS_TAILS:
            raise ValueError(f"tail must be one of {ENSLOSS_TAILS}; got {tail!r}.")
        super().__init__(name=name, reduction=reduction, dtype=dtype)
        self.clip = float(clip)
        self.tail = tail
        self.from_logits = bool(from_logits)
        self.seed = int(np.random.randint(0, 2**31 - 1) if seed is None else seed)
        if not isinstance(draws, (int, np.integer)) or draws < 0:
            raise ValueError(
                f"draws (samplings done so far) must be an integer >= 0; got {draws!r}."
            )
        self._draws = self.parameter_store.add("draws", int(draws), dtype="int64")

    @classmethod
    def paper(cls, **kwargs: Any) -> EnsLoss:
        """The authors' construction: the ``1/z`` tail (``tail="inverse"``) and ``clip=1.0``.

        It lost F1 on an imbalanced clean task on every seed (see the class docstring). Other
        arguments, ``clip`` included, as for the class.
        """
        kwargs.setdefault("clip", 1.0)
        return cls(tail="inverse", **kwargs)

    @property
    def draws(self) -> int:
        """Batches drawn so far (the position of the random stream)."""
        return int(self._draws.numpy())

    def call(self, y_true: Any, y_pred: Any) -> Any:
        check_predictions(y_pred, self.from_logits, type(self).__name__)
        y_pred = ops.convert_to_tensor(y_pred)
        check_binary_labels(y_true, y_pred, self.from_logits, type(self).__name__)
        scores, labels = binary_scores(y_true, y_pred, self.from_logits)
        margins = (2.0 * labels - 1.0) * scores
        seed = replica_seed(self.seed, self._draws.value)
        self._draws.assign_add(ops.cast(1, "int64"))
        normal = stateless_normal(ops.shape(margins), seed)
        derivatives = ops.stop_gradient(
            ensloss_derivatives(margins, normal, self.clip, tail=self.tail)
        )
        surrogate = derivatives * margins
        logistic = ops.softplus(-margins)
        return ops.stop_gradient(logistic - surrogate) + surrogate

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(clip=self.clip, from_logits=self.from_logits, seed=self.seed, tail=self.tail)
        config["draws"] = self.draws
        return config
