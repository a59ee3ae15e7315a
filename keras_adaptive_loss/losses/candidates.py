"""Per-sample candidate losses for classification, written with `keras.ops`.

Every function here has the signature
``fn(y_true, y_pred, *, from_logits=False, **hyper_parameters) -> per-sample loss``
and returns one value per sample: for ``y_pred`` of shape ``[..., C]`` the result has shape
``[...]`` (``[batch]`` for ordinary classifiers). They are the building blocks that the
registry (`keras_adaptive_loss.losses.get`), `CrossentropyExpectationMix` and later the
stochastic loss combine.

Conventions shared by all candidates:

- **Predictions.** ``y_pred`` holds class probabilities (``from_logits=False``, e.g. the output
  of a softmax layer) or unnormalised logits (``from_logits=True``, converted with a softmax).
  Every candidate is a function of the class probabilities ``p``, so the same model gives the
  same loss value whether the softmax sits in the model or in the loss, except where a
  probability is below the clip: probabilities are normalised to sum to 1 and clipped to
  ``[epsilon, 1 - epsilon]`` (``keras.config.epsilon()``) before any logarithm, as Keras's
  cross-entropy does with probabilities it cannot trace to a softmax. In a traced step
  Keras's TensorFlow backend reads the logits behind a ``Softmax`` op instead, and
  `crossentropy` with sparse labels calls Keras's op; but the terms the candidates share
  (`classification_terms`, from which `StochasticLoss` evaluates all of its candidates)
  read the probabilities, so a sample with ``p_y < epsilon`` there counts
  ``-log(epsilon)`` with no gradient, where Keras's cross-entropy counts ``-log p_y`` with
  its full gradient. No training sample came near that in the stochastic-loss study's runs
  (docs: "Measured results").
- **Labels.** Sparse integer labels (shape ``[...]`` or ``[..., 1]``) and one-hot or soft
  labels (shape ``[..., C]``) are both accepted; which one is inferred from the static shapes.
  With soft labels the ``y_y`` terms below become expectations under the label distribution,
  e.g. ``p_y = sum_k y_k p_k``.
- **Precision.** Inputs in float16/bfloat16 are computed in float32.

Example:

>>> import numpy as np
>>> from keras import ops
>>> from keras_adaptive_loss.losses import candidates
>>> y_true = np.array([0, 2])
>>> y_pred = np.array([[0.7, 0.2, 0.1], [0.2, 0.3, 0.5]])
>>> [round(float(v), 4) for v in ops.convert_to_numpy(candidates.expectation(y_true, y_pred))]
[0.3, 0.5]
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import keras
import numpy as np
from keras import ops

from keras_adaptive_loss._tensorflow import checked, is_eager, masked
from keras_adaptive_loss.losses.prediction_checks import check_batch_sizes

__all__ = [
    "ClassificationTerms",
    "as_float",
    "bce",
    "candidate_from_terms",
    "checked_class_ids",
    "classification_terms",
    "cosine",
    "crossentropy",
    "crossentropy_and_true_probability",
    "expectation",
    "focal",
    "hinge",
    "labels_and_log_probs",
    "labels_as_distribution",
    "mae",
    "mse",
    "poly1",
    "sparse_labels",
    "squared_hinge",
]

_LOW_PRECISION = ("float16", "bfloat16")


def as_float(x: Any) -> Any:
    """``x`` as a tensor in float32, or float64 if it is float64 already.

    >>> dtype = keras.backend.standardize_dtype
    >>> dtype(as_float(np.array([1, 2])).dtype), dtype(as_float(np.array([1.0], "float64")).dtype)
    ('float32', 'float64')
    """
    x = ops.convert_to_tensor(x)
    dtype = keras.backend.standardize_dtype(x.dtype)
    if dtype in _LOW_PRECISION or not dtype.startswith("float"):
        return ops.cast(x, "float32")
    return x


def _num_classes(y_pred: Any) -> int:
    num_classes = y_pred.shape[-1] if len(y_pred.shape) >= 2 else None
    if num_classes is None or num_classes < 2:
        raise ValueError(
            "Classification losses expect `y_pred` of shape [..., num_classes] with a known "
            f"num_classes >= 2 (probabilities or logits per class); got shape {y_pred.shape}. "
            "For a single sigmoid output, use a 2-unit softmax output instead."
        )
    return num_classes


def sparse_labels(y_true: Any, y_pred: Any, *, check_ids: bool = True) -> Any | None:
    """Returns sparse labels as int32 of shape ``y_pred.shape[:-1]``, or None for dense labels.

    Sparse labels have shape ``y_pred.shape[:-1]`` or ``y_pred.shape[:-1] + (1,)``; dense
    (one-hot or soft) labels have the shape of ``y_pred``. With ``check_ids`` the ids go
    through `checked_class_ids`; ``check_ids=False`` only validates the shapes (for callers
    whose labels are checked again on their way into the loss).

    Raises:
        ValueError: if the shapes fit neither layout.

    >>> p = np.full((2, 3), 1 / 3)
    >>> ops.convert_to_numpy(sparse_labels(np.array([[2], [0]]), p)).tolist()
    [2, 0]
    >>> sparse_labels(np.eye(3)[[2, 0]], p) is None  # one-hot labels
    True
    """
    num_classes = _num_classes(y_pred)
    y_true = ops.convert_to_tensor(y_true)
    check_batch_sizes(y_true, y_pred)
    true_rank, pred_rank = len(y_true.shape), len(y_pred.shape)
    ids = None
    if true_rank == pred_rank - 1 or (true_rank == pred_rank and y_true.shape[-1] == 1):
        _check_whole_numbers(y_true)
    if true_rank == pred_rank - 1:
        ids = ops.cast(y_true, "int32")
    elif true_rank == pred_rank and y_true.shape[-1] == 1:
        ids = ops.cast(ops.squeeze(y_true, axis=-1), "int32")
    if ids is not None:
        return checked_class_ids(ids, num_classes) if check_ids else ids
    if true_rank == pred_rank and y_true.shape[-1] == num_classes:
        return None
    raise ValueError(
        f"Cannot match labels of shape {y_true.shape} to predictions of shape {y_pred.shape}. "
        "Pass sparse integer labels of shape [batch] (or [batch, 1]) or one-hot labels of "
        f"shape [batch, {num_classes}]."
    )


def _check_whole_numbers(y_true: Any) -> None:
    """Float sparse labels must be whole numbers: casting 1.5 or 0.9999 to int truncates.

    Checked when the values are known (eager calls, e.g. ``loss(y_true, y_pred)``); inside a
    traced step Keras has already cast integer dataset labels, and the check is skipped.

    >>> _check_whole_numbers(ops.convert_to_tensor([0.0, 1.5]))
    Traceback (most recent call last):
    ...
    ValueError: Sparse labels must be whole-number class ids, but label 1 is 1.5 ...
    """
    if not is_eager(y_true):
        return
    if not keras.backend.standardize_dtype(y_true.dtype).startswith(("float", "bfloat")):
        return
    values = ops.convert_to_numpy(y_true).reshape(-1)
    bad = np.flatnonzero(values != np.round(values))
    if bad.size:
        raise ValueError(
            f"Sparse labels must be whole-number class ids, but label {bad[0]} is "
            f"{float(values[bad[0]]):.7g} ({bad.size} such labels); a cast to int would "
            "truncate it. Round the labels (e.g. np.rint(y).astype('int64')) or pass one-hot "
            "labels."
        )


def checked_class_ids(labels: Any, num_classes: int) -> Any:
    """``labels`` (int32 class ids), checked to lie in ``[0, num_classes)``.

    One-hot encoding an out-of-range id gives a row of zeros, i.e. a silently wrong loss. When
    the values are known (eager calls) a bad id raises `ValueError` at once; inside a traced
    training step a runtime check raises ``InvalidArgumentError`` with the same message. XLA
    (``jit_compile=True``) drops runtime checks, so there the ids are not checked.

    >>> checked_class_ids(ops.convert_to_tensor([0, 3]), 3)
    Traceback (most recent call last):
    ...
    ValueError: Labels must be class ids in [0, 3) (the predictions have 3 classes); got ids ...
    """
    message = (
        f"Labels must be class ids in [0, {num_classes}) (the predictions have {num_classes} "
        "classes)"
    )
    if is_eager(labels):
        values = ops.convert_to_numpy(labels)
        if values.size and (values.min() < 0 or values.max() >= num_classes):
            raise ValueError(f"{message}; got ids from {values.min()} to {values.max()}.")
        return labels
    # One comparison covers both ends: negative ids wrap around to huge unsigned values.
    valid = ops.cast(labels, "uint32") < ops.convert_to_tensor(num_classes, "uint32")

    def offending() -> list:
        return [f"{message}; offending ids (up to 10):", masked(labels, ~valid)[:10]]

    return checked(labels, ops.all(valid), offending)


def labels_as_distribution(y_true: Any, y_pred: Any) -> Any:
    """Returns the labels as a float class distribution shaped like ``y_pred``.

    Sparse integer labels are one-hot encoded; one-hot or soft labels are returned as floats.

    >>> ops.convert_to_numpy(labels_as_distribution(np.array([1]), np.full((1, 3), 1 / 3)))
    array([[0., 1., 0.]])
    """
    sparse = sparse_labels(y_true, y_pred)
    if sparse is not None:
        return ops.one_hot(sparse, y_pred.shape[-1], dtype=y_pred.dtype)
    return ops.cast(y_true, y_pred.dtype)


def labels_and_log_probs(y_true: Any, y_pred: Any, *, from_logits: bool = False) -> tuple:
    """Returns ``(labels, log_p)``: labels as a class distribution and log-probabilities.

    This is the shared front end of the candidates: ``p = exp(log_p)``. Probabilities are
    normalised to sum to 1 and clipped to ``[epsilon, 1 - epsilon]``, as Keras's
    cross-entropy does; logits go through ``log_softmax``.

    >>> logits = np.array([[0.0, 0.0]])
    >>> labels, log_p = labels_and_log_probs(np.array([0]), logits, from_logits=True)
    >>> ops.convert_to_numpy(ops.exp(log_p)).tolist()
    [[0.5, 0.5]]
    """
    y_pred = as_float(y_pred)
    labels = labels_as_distribution(y_true, y_pred)
    if from_logits:
        log_p = ops.log_softmax(y_pred, axis=-1)
    else:
        epsilon = keras.config.epsilon()
        y_pred = y_pred / ops.sum(y_pred, axis=-1, keepdims=True)
        log_p = ops.log(ops.clip(y_pred, epsilon, 1.0 - epsilon))
    return labels, log_p


def crossentropy_and_true_probability(
    y_true: Any, y_pred: Any, *, from_logits: bool = False
) -> tuple:
    """Returns ``(-log p_y, p_y)`` per sample, the two terms of the CE + EL mix.

    Sparse labels take Keras's fused sparse cross-entropy and ``p_y = exp(-CE)`` (a handful of
    ops instead of a one-hot product: this keeps `CrossentropyExpectationMix` within a few
    percent of plain cross-entropy per step). One-hot or soft labels use
    `labels_and_log_probs`, with ``p_y = sum_k y_k p_k``.

    >>> y, p = np.array([0, 1]), np.array([[0.8, 0.2], [0.4, 0.6]])  # p_y = 0.8, 0.6
    >>> ops.convert_to_numpy(crossentropy_and_true_probability(y, p)[1]).round(4).tolist()
    [0.8, 0.6]
    """
    y_pred = as_float(y_pred)
    sparse = sparse_labels(y_true, y_pred)
    if sparse is not None:
        ce = ops.sparse_categorical_crossentropy(sparse, y_pred, from_logits=from_logits)
        return ce, ops.exp(-ce)
    terms = classification_terms(y_true, y_pred, from_logits=from_logits)
    return terms.crossentropy, terms.p_y


class ClassificationTerms:
    """Labels and predictions in the forms the candidates share, each computed once.

    Attributes:
        labels: the labels as a class distribution, shape ``[..., C]``.
        log_p: log-probabilities, shape ``[..., C]``.
        p: probabilities ``exp(log_p)`` (computed on first use).
        p_y: ``sum_k y_k p_k``, the probability of the true class (on first use).
        crossentropy: ``-sum_k y_k log p_k`` (on first use).

    >>> terms = classification_terms(np.array([1]), np.array([[0.25, 0.75]]))
    >>> ops.convert_to_numpy(terms.p_y).tolist()
    [0.75]
    >>> ops.convert_to_numpy(terms.crossentropy).round(4).tolist()
    [0.2877]
    """

    def __init__(self, labels: Any, log_p: Any) -> None:
        self.labels = labels
        self.log_p = log_p

    @functools.cached_property
    def p(self) -> Any:
        return ops.exp(self.log_p)

    @functools.cached_property
    def p_y(self) -> Any:
        return ops.sum(self.labels * self.p, axis=-1)

    @functools.cached_property
    def crossentropy(self) -> Any:
        return -ops.sum(self.labels * self.log_p, axis=-1)


def classification_terms(
    y_true: Any, y_pred: Any, *, from_logits: bool = False
) -> ClassificationTerms:
    """The shared front end of the candidates, for one batch (see `labels_and_log_probs`).

    >>> terms = classification_terms(np.array([0]), np.array([[0.0, 0.0]]), from_logits=True)
    >>> ops.convert_to_numpy(terms.p).tolist()
    [[0.5, 0.5]]
    """
    return ClassificationTerms(*labels_and_log_probs(y_true, y_pred, from_logits=from_logits))


def _candidate(from_terms: Callable[..., Any]) -> Callable[..., Any]:
    """Turns ``from_terms(terms, **options)`` into a candidate ``fn(y_true, y_pred, ...)``.

    The candidate keeps ``from_terms`` as an attribute, so that a loss evaluating several
    candidates on one batch (`StochasticLoss`) computes `ClassificationTerms` once.

    >>> def half_mse(terms):
    ...     return 0.5 * mse.from_terms(terms)
    >>> candidate = candidate_from_terms(half_mse)
    >>> ops.convert_to_numpy(candidate(np.array([0]), np.array([[0.8, 0.2]]))).round(4).tolist()
    [0.02]
    """

    @functools.wraps(from_terms)
    def candidate(y_true: Any, y_pred: Any, *, from_logits: bool = False, **options: Any) -> Any:
        terms = classification_terms(y_true, y_pred, from_logits=from_logits)
        return from_terms(terms, **options)

    candidate.from_terms = from_terms
    return candidate


#: Public name of `_candidate`, for candidates defined in other modules.
candidate_from_terms = _candidate


def crossentropy(y_true: Any, y_pred: Any, *, from_logits: bool = False) -> Any:
    """Cross-entropy ``-log p_y`` (mixing paper Eq. 1).

    >>> y, p = np.array([0, 1]), np.array([[0.8, 0.2], [0.4, 0.6]])  # p_y = 0.8, 0.6
    >>> ops.convert_to_numpy(crossentropy(y, p)).round(4).tolist()
    [0.2231, 0.5108]
    """
    return crossentropy_and_true_probability(y_true, y_pred, from_logits=from_logits)[0]


def expectation(y_true: Any, y_pred: Any, *, from_logits: bool = False) -> Any:
    """Expectation loss ``1 - p_y``, the expected zero-one loss (mixing paper Eq. 9).

    >>> y, p = np.array([0, 1]), np.array([[0.8, 0.2], [0.4, 0.6]])  # p_y = 0.8, 0.6
    >>> ops.convert_to_numpy(expectation(y, p)).round(4).tolist()
    [0.2, 0.4]
    """
    return 1.0 - crossentropy_and_true_probability(y_true, y_pred, from_logits=from_logits)[1]


def poly1(y_true: Any, y_pred: Any, *, from_logits: bool = False, epsilon: float = 1.0) -> Any:
    """Poly-1 loss ``-log p_y + epsilon (1 - p_y)`` (PolyLoss, Leng et al. 2022).

    Equal to `CrossentropyExpectationMix` with ``alpha=1, beta=epsilon``.

    >>> y, p = np.array([0, 1]), np.array([[0.8, 0.2], [0.4, 0.6]])  # p_y = 0.8, 0.6
    >>> ops.convert_to_numpy(poly1(y, p)).round(4).tolist()
    [0.4231, 0.9108]
    """
    ce, p_y = crossentropy_and_true_probability(y_true, y_pred, from_logits=from_logits)
    return ce + epsilon * (1.0 - p_y)


crossentropy.from_terms = lambda terms: terms.crossentropy
expectation.from_terms = lambda terms: 1.0 - terms.p_y
poly1.from_terms = lambda terms, epsilon=1.0: terms.crossentropy + epsilon * (1.0 - terms.p_y)


@_candidate
def mse(terms: ClassificationTerms) -> Any:
    """Squared error between probabilities and one-hot labels, averaged over the classes.

    >>> y, p = np.array([0, 1]), np.array([[0.8, 0.2], [0.4, 0.6]])  # p_y = 0.8, 0.6
    >>> ops.convert_to_numpy(mse(y, p)).round(4).tolist()
    [0.04, 0.16]
    """
    return ops.mean(ops.square(terms.labels - terms.p), axis=-1)


@_candidate
def mae(terms: ClassificationTerms) -> Any:
    """Absolute error between probabilities and one-hot labels, averaged over the classes.

    >>> y, p = np.array([0, 1]), np.array([[0.8, 0.2], [0.4, 0.6]])  # p_y = 0.8, 0.6
    >>> ops.convert_to_numpy(mae(y, p)).round(4).tolist()
    [0.2, 0.4]
    """
    return ops.mean(ops.abs(terms.labels - terms.p), axis=-1)


@_candidate
def hinge(terms: ClassificationTerms) -> Any:
    """Categorical hinge on the probabilities: ``max(0, 1 + max_{k != y} p_k - p_y)``.

    This is Keras's ``categorical_hinge`` applied to ``p`` (the "categorical hinge" candidate of
    the stochastic-loss paper, Sec. "Stochastic Loss Function"); its value lies in ``[0, 2]``.

    >>> y, p = np.array([0, 1]), np.array([[0.8, 0.2], [0.4, 0.6]])  # p_y = 0.8, 0.6
    >>> ops.convert_to_numpy(hinge(y, p)).round(4).tolist()
    [0.4, 0.8]
    """
    # initial=0 (p >= 0 so the value is unchanged): eager calls on an empty batch work too.
    negative = ops.max((1.0 - terms.labels) * terms.p, axis=-1, initial=0.0)
    return ops.maximum(1.0 + negative - terms.p_y, 0.0)


@_candidate
def squared_hinge(terms: ClassificationTerms) -> Any:
    """Square of the categorical hinge on the probabilities (see `hinge`).

    >>> y, p = np.array([0, 1]), np.array([[0.8, 0.2], [0.4, 0.6]])  # p_y = 0.8, 0.6
    >>> ops.convert_to_numpy(squared_hinge(y, p)).round(4).tolist()
    [0.16, 0.64]
    """
    return ops.square(hinge.from_terms(terms))


@_candidate
def cosine(terms: ClassificationTerms) -> Any:
    """Cosine proximity ``1 - cos(y, p)``, in ``[0, 1]`` for probabilities.

    Keras's ``cosine_similarity`` returns ``-cos``; the constant shift keeps the value
    non-negative so that it can be mixed and normalised with the other candidates.

    >>> y, p = np.array([0, 1]), np.array([[0.8, 0.2], [0.4, 0.6]])  # p_y = 0.8, 0.6
    >>> ops.convert_to_numpy(cosine(y, p)).round(4).tolist()
    [0.0299, 0.1679]
    """
    squares = ops.sum(ops.square(terms.labels), axis=-1) * ops.sum(ops.square(terms.p), axis=-1)
    return 1.0 - terms.p_y / ops.maximum(ops.sqrt(squares), keras.config.epsilon())


@_candidate
def bce(terms: ClassificationTerms) -> Any:
    """Per-class binary cross-entropy between ``p_k`` and ``y_k``, averaged over the classes.

    >>> y, p = np.array([0, 1]), np.array([[0.8, 0.2], [0.4, 0.6]])  # p_y = 0.8, 0.6
    >>> ops.convert_to_numpy(bce(y, p)).round(4).tolist()
    [0.2231, 0.5108]
    """
    log_not_p = ops.log(ops.clip(1.0 - terms.p, keras.config.epsilon(), 1.0))
    return -ops.mean(terms.labels * terms.log_p + (1.0 - terms.labels) * log_not_p, axis=-1)


@_candidate
def focal(terms: ClassificationTerms, gamma: float = 2.0) -> Any:
    """Focal loss ``-(1 - p_y)^gamma log p_y`` (mixing paper Eq. 2, without class weight).

    >>> y, p = np.array([0, 1]), np.array([[0.8, 0.2], [0.4, 0.6]])  # p_y = 0.8, 0.6
    >>> ops.convert_to_numpy(focal(y, p)).round(4).tolist()
    [0.0089, 0.0817]
    >>> ops.convert_to_numpy(focal(y, p, gamma=0.0)).round(4).tolist()  # gamma 0: CE
    [0.2231, 0.5108]
    """
    modulation = ops.power(1.0 - terms.p, gamma)
    return -ops.sum(terms.labels * modulation * terms.log_p, axis=-1)
