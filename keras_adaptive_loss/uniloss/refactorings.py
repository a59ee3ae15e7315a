"""Metric refactorings for UniLoss: scores -> comparisons -> binaries -> metric (Eq. 4).

A `Refactoring` tells `keras_adaptive_loss.losses.UniLoss` three things about a metric:

- ``comparisons(y_true, y_pred) -> (c, valid)``: the differences of score pairs whose signs
  decide the metric, on a fixed grid of any shape ``S`` (e.g. ``[batch, classes]``), and a
  boolean mask of the grid cells that are real comparisons. Fixed grids keep shapes static
  (XLA-friendly); the mask says which cells count.
- ``metric(configurations, y_true, valid) -> [A]``: the metric ``g`` of ``A`` binary
  configurations at once (``configurations`` has shape ``[A, *S]``, values 0/1; invalid cells
  hold arbitrary values and must be ignored).
- ``best_configuration(y_true, valid)``: the configuration of a perfect prediction (default:
  every comparison positive).

``comparisons`` may return a third item, a *context*: a value computed while building the grid
that ``metric`` needs too (PCKh's heatmap height and width). It is then passed on as
``metric(configurations, y_true, valid, context)``, so nothing is kept on the refactoring
between the two calls of one trace.

Optional: ``degenerate(y_true)`` (a batch on which the metric is undefined: the loss is then 0),
``check(y_true, y_pred)`` (validation at trace time), ``set_metric = True`` for metrics that do
not decompose over samples (gathered across replicas), and ``get_config``.

Sample weights: a refactoring that takes a ``weights=None`` argument in ``comparisons``,
``metric`` and ``degenerate`` gets one weight per sample when the loss is given
``sample_weight``, ``class_weight`` or a Keras mask. It weights the metric's counts with them,
and marks the comparisons of samples of weight 0 not valid, so that such a sample is absent.
The built-in refactorings all do; a loss given weights with a refactoring that does not take
them raises `ValueError`.

Example, a new metric in a few lines — top-1 accuracy restricted to one class of interest:

```python
@keras.saving.register_keras_serializable(package="my_project")
class RecallOfClass(kal.uniloss.refactorings.AccuracyRefactoring):
    def __init__(self, target=0, **kwargs):
        super().__init__(**kwargs)
        self.target = target

    def metric(self, configurations, y_true, valid):
        correct = ops.min(ops.where(valid, configurations, 1.0), axis=-1, initial=1.0)  # [A, batch]
        is_target = ops.cast(ops.reshape(y_true, (-1,)) == self.target, correct.dtype)
        return ops.sum(correct * is_target, axis=-1) / ops.maximum(ops.sum(is_target), 1.0)

loss = kal.losses.UniLoss(RecallOfClass(target=3))
```
"""

from __future__ import annotations

from typing import Any

import keras
import numpy as np
from keras import ops

from keras_adaptive_loss._tensorflow import masked
from keras_adaptive_loss.losses import candidates
from keras_adaptive_loss.losses.prediction_checks import check_batch_sizes
from keras_adaptive_loss.private_api import in_xla_compilation

__all__ = [
    "SCORE_SPACES",
    "AccuracyRefactoring",
    "AveragePrecisionRefactoring",
    "FBetaRefactoring",
    "PCKhRefactoring",
    "Refactoring",
    "binary_labels",
    "binary_scores",
    "pckh_targets",
]


class Refactoring:
    """Base class of metric refactorings (see the module docstring for the interface).

    A minimal refactoring: the fraction of scores above 0, one comparison per score.

    >>> class Positive(Refactoring):
    ...     def comparisons(self, y_true, y_pred):
    ...         scores = ops.convert_to_tensor(y_pred)
    ...         return scores, ops.ones_like(scores) > 0
    ...     def metric(self, configurations, y_true, valid):
    ...         return ops.mean(configurations, axis=-1)
    >>> c, valid = Positive().comparisons(None, np.array([0.3, -0.2]))
    >>> configurations = np.array([[1.0, 0.0], [1.0, 1.0]])  # A = 2 binary configurations
    >>> ops.convert_to_numpy(Positive().metric(configurations, None, valid)).tolist()
    [0.5, 1.0]
    """

    set_metric: bool = False

    def comparisons(self, y_true: Any, y_pred: Any) -> tuple[Any, Any]:
        raise NotImplementedError

    def metric(self, configurations: Any, y_true: Any, valid: Any) -> Any:
        raise NotImplementedError

    def best_configuration(self, y_true: Any, valid: Any) -> Any:
        return ops.ones(valid.shape if None not in valid.shape else ops.shape(valid))

    def degenerate(self, y_true: Any, weights: Any = None) -> Any:
        if weights is None:
            return ops.convert_to_tensor(False)
        return ops.sum(ops.cast(weights > 0, "float32")) == 0

    def check(self, y_true: Any, y_pred: Any) -> None:
        """Raises `ValueError` for inputs that cannot be refactored (checked at trace time)."""

    def get_config(self) -> dict[str, Any]:
        return {}

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Refactoring:
        return cls(**config)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.get_config()})"


def _broadcast_weights(weights: Any, shape: Any) -> Any:
    """``weights`` (``[batch]`` or ``[batch, time]``) broadcast to ``shape`` (its leading axes
    are the weights' own)."""
    weights = ops.cast(weights, "float32")
    while len(weights.shape) < len(shape):
        weights = weights[..., None]
    return ops.broadcast_to(weights, shape)


def _average_precision(above: Any, counted: Any, row_weights: Any = None) -> Any:
    """AP of ``A`` configurations from each grid row's count of negatives ranked above it
    (``above``, ``[A, rows]``; weighted by the negatives' weights when there are weights) and
    which rows are counted positives (``counted``, ``[rows]``).

    Without weights: rows ranked by ``above``, ``AP = (1 / P) sum_r r / (r + n_(r))``. With
    ``row_weights`` (``[rows]``, the positives' weights): each counted positive's precision is
    the weight of the positives ranked at or above it over that plus its ``above``, and AP is
    the weighted mean of those precisions (unit weights give the same value; the unweighted
    form is kept because its sort costs less than the argsort and gathers of the weighted one,
    more than 5 % of a training step on the overhead benchmark). A configuration does not order
    positives that no negative separates (they have the same ``above``); without weights
    their order does not change AP, with weights it does, and they are ranked in batch order.
    So the weighted AP of the configuration of some scores equals scikit-learn's
    ``average_precision_score(..., sample_weight=...)`` when positives that no negative
    separates are listed in the order of their scores.
    """
    ranked = ops.where(counted[None], above, 1e9)  # rows that do not count sort last
    if row_weights is None:
        ranked = ops.sort(ranked, axis=-1)
        count = ops.sum(ops.cast(counted, "float32"))
        rank = ops.cast(ops.arange(1, ops.shape(ranked)[-1] + 1), "float32")
        precision = ops.where(rank <= count, rank / (rank + ranked), 0.0)
        return ops.sum(precision, axis=-1) / ops.maximum(count, 1.0)
    row_weights = ops.where(counted, row_weights, 0.0)
    order = ops.argsort(ranked, axis=-1)
    ranked = ops.take_along_axis(ranked, order, axis=-1)
    weights = ops.take(row_weights, order)  # [A, rows], in rank order
    cumulative = ops.cumsum(weights, axis=-1)
    precision = ops.where(weights > 0, cumulative / ops.maximum(cumulative + ranked, 1e-12), 0.0)
    return ops.sum(weights * precision, axis=-1) / ops.maximum(ops.sum(row_weights), 1e-12)


@keras.saving.register_keras_serializable(package="keras_adaptive_loss")
class AccuracyRefactoring(Refactoring):
    """Multi-class accuracy (UniLoss Sec. 3.2, Eqs. 6-8).

    Comparisons ``s_{i,y_i} - s_{i,k}`` for every class ``k != y_i`` on a ``[batch, C]`` grid;
    a sample is correct when all of its comparisons are positive, and accuracy is the mean.
    Scores are log-probabilities (from logits: log-softmax), whose differences are the logit
    differences; ``scores="probability"`` compares probabilities instead (the official code's
    choice: differences in [-1, 1], so ``sigmoid(c)`` stays in [0.27, 0.73] at scale 1).

    >>> refactoring = AccuracyRefactoring()
    >>> c, valid = refactoring.comparisons(np.array([0]), np.array([[0.7, 0.2, 0.1]]))
    >>> ops.convert_to_numpy(c).round(4).tolist(), ops.convert_to_numpy(valid).tolist()
    ([[0.0, 1.2528, 1.9459]], [[False, True, True]])
    >>> configurations = np.array([[[1.0, 1.0, 1.0]], [[1.0, 0.0, 1.0]]])
    >>> ops.convert_to_numpy(refactoring.metric(configurations, None, valid)).tolist()
    [1.0, 0.0]
    """

    def __init__(self, from_logits: bool = False, scores: str = "log_odds") -> None:
        self.from_logits = bool(from_logits)
        self.scores = _check_scores(scores)

    def comparisons(self, y_true: Any, y_pred: Any, weights: Any = None) -> tuple[Any, Any]:
        labels, scores = candidates.labels_and_log_probs(
            y_true, y_pred, from_logits=self.from_logits
        )
        if self.scores == "probability":
            scores = ops.exp(scores)
        true_score = ops.sum(labels * scores, axis=-1, keepdims=True)
        valid = labels < 0.5
        if weights is not None:
            present = _broadcast_weights(weights, ops.shape(labels)[:-1]) > 0
            valid = ops.logical_and(valid, present[..., None])
        return true_score - scores, valid

    def metric(self, configurations: Any, y_true: Any, valid: Any, weights: Any = None) -> Any:
        correct = ops.min(ops.where(valid, configurations, 1.0), axis=-1, initial=1.0)
        flat = ops.reshape(correct, (correct.shape[0], -1))
        if weights is None:
            return ops.mean(flat, axis=-1)
        weights = ops.reshape(_broadcast_weights(weights, ops.shape(correct)[1:]), (-1,))
        return ops.sum(flat * weights, axis=-1) / ops.maximum(ops.sum(weights), 1e-12)

    def degenerate(self, y_true: Any, weights: Any = None) -> Any:
        return super().degenerate(y_true, weights)

    def check(self, y_true: Any, y_pred: Any) -> None:
        # Shapes only: comparisons() checks the ids on the way into the loss.
        candidates.sparse_labels(y_true, y_pred, check_ids=False)

    def get_config(self) -> dict[str, Any]:
        return {"from_logits": self.from_logits, "scores": self.scores}


#: What the comparisons of `AccuracyRefactoring` and `AveragePrecisionRefactoring` compare:
#: ``"log_odds"`` (log-probability differences, i.e. logit differences; the default) or
#: ``"probability"`` (probability differences in [-1, 1], as the official UniLoss code does).
SCORE_SPACES = ("log_odds", "probability")


def _check_scores(scores: str) -> str:
    if scores not in SCORE_SPACES:
        raise ValueError(f"scores must be one of {SCORE_SPACES}; got {scores!r}.")
    return scores


def binary_labels(y_true: Any) -> Any:
    """0/1 float labels ``[batch]`` from ``[batch]``, ``[batch, 1]`` or one-hot ``[batch, 2]``.

    >>> ops.convert_to_numpy(binary_labels(np.array([[1, 0], [0, 1]]))).tolist()
    [0.0, 1.0]
    """
    y_true = ops.cast(y_true, "float32")
    if len(y_true.shape) == 2 and y_true.shape[-1] == 2:
        return y_true[:, 1]
    if len(y_true.shape) == 1 or (len(y_true.shape) == 2 and y_true.shape[-1] == 1):
        return ops.reshape(y_true, (-1,))
    raise ValueError(
        "A binary-classification UniLoss expects 0/1 labels of shape [batch] or [batch, 1], "
        f"or one-hot labels [batch, 2]; got {y_true.shape}."
    )


def binary_scores(y_true: Any, y_pred: Any, from_logits: bool) -> tuple[Any, Any]:
    """Scores (log-odds of the positive class) and 0/1 labels of a binary classifier.

    ``y_pred`` is one probability/logit per sample (shape ``[batch]`` or ``[batch, 1]``) or a
    two-class output ``[batch, 2]``; ``y_true`` holds 0/1 labels (``[batch]``, ``[batch, 1]``)
    or one-hot pairs ``[batch, 2]``.

    >>> scores, labels = binary_scores(np.array([0, 1]), np.array([0.5, 0.8]), from_logits=False)
    >>> ops.convert_to_numpy(scores).round(4).tolist()  # log-odds: 0 and log 4
    [0.0, 1.3863]
    """
    y_pred = ops.cast(y_pred, "float32")
    check_batch_sizes(y_true, y_pred)
    width = y_pred.shape[-1] if len(y_pred.shape) == 2 else 1
    if len(y_pred.shape) not in (1, 2) or width not in (1, 2):
        raise ValueError(
            "A binary-classification UniLoss expects predictions of shape [batch], [batch, 1] "
            f"or [batch, 2]; got {y_pred.shape}."
        )
    epsilon = keras.config.epsilon()
    if width == 2:
        if from_logits:
            scores = y_pred[:, 1] - y_pred[:, 0]
        else:
            p = ops.clip(y_pred, epsilon, 1.0)
            scores = ops.log(p[:, 1]) - ops.log(p[:, 0])
    else:
        y_pred = ops.reshape(y_pred, (-1,))
        if from_logits:
            scores = y_pred
        else:
            p = ops.clip(y_pred, epsilon, 1.0 - epsilon)
            scores = ops.log(p) - ops.log(1.0 - p)
    return scores, binary_labels(y_true)


def check_binary_labels(y_true: Any, y_pred: Any, from_logits: bool, metric: str) -> None:
    binary_scores(y_true, y_pred, from_logits)  # shape checks
    known = keras.ops.convert_to_numpy(y_true) if _is_concrete(y_true) else None
    if known is not None and not np.isin(known, (0, 1)).all():
        raise ValueError(
            f"{metric} needs binary labels (0 = negative, 1 = positive); got values "
            f"{np.unique(known)[:10].tolist()}. For multi-class data pick one class, e.g. "
            "y == 0, as the positive class."
        )


def _is_concrete(x: Any) -> bool:
    try:
        keras.ops.convert_to_numpy(x)
    except Exception:  # a symbolic tensor while tracing: values are unknown
        return False
    return True


def _positives_and_negatives(labels: Any) -> tuple[Any, Any]:
    return labels > 0.5, labels <= 0.5


def _degenerate_binary(y_true: Any, weights: Any = None) -> Any:
    positive, negative = _positives_and_negatives(binary_labels(y_true))
    if weights is not None:
        present = ops.reshape(weights, (-1,)) > 0
        positive, negative = positive & present, negative & present
    return ops.logical_or(~ops.any(positive), ~ops.any(negative))


_LAYOUTS = ("auto", "compact", "bucketed", "masked")
#: Smallest row count of the bucketed average-precision grid; the others double it.
_FIRST_BUCKET = 8
#: Largest bucket when the batch size is not known while tracing; beyond it, the masked grid.
_LAST_BUCKET_UNKNOWN_BATCH = 256


@keras.saving.register_keras_serializable(package="keras_adaptive_loss")
class AveragePrecisionRefactoring(Refactoring):
    """Average precision of a binary classifier (UniLoss Sec. 4.2).

    Comparisons ``s_i - s_j`` for every positive ``i`` and negative ``j``. For a configuration,
    positive ``i`` has ``n_i`` negatives ranked above it (its comparisons that are 0); ordering
    positives by ``n_i`` gives the ranking, and ``AP = (1 / P) sum_r r / (r + n_(r))`` over the
    positives in that order. On a configuration that some score ordering produces, this equals
    the AP of those scores exactly (scikit-learn's ``average_precision_score``, without
    interpolation); on other configurations it extends AP through the same formula. A set
    metric: gathered across replicas. A batch without positives or negatives is degenerate.

    Args:
        from_logits: whether ``y_pred`` holds logits.
        layout: where the comparisons are laid out.

            - ``"compact"``: a ``[positives, negatives]`` grid, whose size depends on the
              batch's labels;
            - ``"masked"``: a ``[batch, batch]`` grid with a mask;
            - ``"bucketed"``: a ``[rows, batch]`` grid whose rows are the batch's positives,
              padded to the next of ``8, 16, 32, ...`` (one static-shape branch per size,
              chosen at run time; the masked grid when the positives outnumber the largest
              bucket below the batch size);
            - ``"auto"`` (default): compact, except under XLA, where it is bucketed.

            Under XLA the compact layout pads its data-dependent shapes and is several
            times slower than the bucketed one; without XLA it is the fastest (step times
            on the results page). The bucketed layout's first step compiles every branch. All
            layouts give the same
            metric; the anchors differ only in which random numbers land on which comparison.
        scores: ``"log_odds"`` (default) or ``"probability"``: compare the positive class's
            log-odds or its probability (the official code's choice; see `SCORE_SPACES`).

    >>> refactoring = AveragePrecisionRefactoring(layout="masked")
    >>> y, p = np.array([1.0, 0.0, 1.0]), np.array([0.9, 0.5, 0.3])
    >>> c, valid = refactoring.comparisons(y, p)
    >>> configuration = ops.cast(c > 0, "float32")[None]  # the binaries of these scores
    >>> round(float(refactoring.metric(configuration, y, valid)[0]), 4)  # (1 + 2/3) / 2
    0.8333
    """

    set_metric = True

    def __init__(
        self, from_logits: bool = False, layout: str = "auto", scores: str = "log_odds"
    ) -> None:
        if layout not in _LAYOUTS:
            raise ValueError(f"layout must be one of {_LAYOUTS}; got {layout!r}.")
        self.from_logits = bool(from_logits)
        self.layout = layout
        self.scores = _check_scores(scores)

    def compact(self) -> bool:
        """Whether this trace uses the compact layout: a pure function of ``layout`` and of
        whether the caller is being compiled by XLA, so `comparisons` and `metric` of one
        trace agree without passing state."""
        return self.layout == "compact" or (self.layout == "auto" and not in_xla_compilation())

    def static_variants(self, y_true: Any) -> tuple[Any, list[Refactoring]] | None:
        """For the bucketed layout: ``(index, variants)``, refactorings with static grids of
        which the one at ``index`` (a scalar tensor) fits this batch; else ``None``.

        `keras_adaptive_loss.losses.UniLoss` computes the loss with the chosen variant inside
        nested `tf.cond`s, so every branch has static shapes and only one runs.

        >>> variants = AveragePrecisionRefactoring(layout="bucketed").static_variants(
        ...     np.array([1.0] * 9 + [0.0] * 23))
        >>> int(variants[0]), [v.rows for v in variants[1]]  # 9 positives: the 16-row grid
        (1, [8, 16, None])
        """
        if self.layout != "bucketed" and (self.layout != "auto" or self.compact()):
            return None
        labels = binary_labels(y_true)
        sizes = _bucket_sizes(labels.shape[0])
        positives = ops.sum(ops.cast(labels > 0.5, "int32"))
        index = ops.sum(ops.cast(positives > ops.convert_to_tensor(sizes[:-1], "int32"), "int32"))
        options = self.get_config()
        return index, [_PositiveRows(rows, **options) for rows in sizes]

    def comparisons(self, y_true: Any, y_pred: Any, weights: Any = None) -> tuple[Any, Any]:
        scores, labels = binary_scores(y_true, y_pred, self.from_logits)
        if self.scores == "probability":
            scores = ops.sigmoid(scores)  # the positive class's probability
        positive, negative = _positives_and_negatives(labels)
        if self.compact():
            positive_scores = masked(scores, positive)
            negative_scores = masked(scores, negative)
            comparisons = positive_scores[:, None] - negative_scores[None, :]
            if weights is None:
                return comparisons, ops.ones_like(comparisons) > 0
            positive_weights, negative_weights = self._compact_weights(labels, weights)
            return comparisons, (positive_weights > 0)[:, None] & (negative_weights > 0)[None]
        rows, real = self._rows(positive)
        row_scores = scores if rows is None else ops.take(scores, rows)
        valid = ops.logical_and(real[:, None], negative[None, :])
        if weights is not None:
            weights = ops.reshape(weights, (-1,))
            row_weights = weights if rows is None else ops.take(weights, rows)
            valid = valid & (row_weights > 0)[:, None] & (weights > 0)[None]
        return row_scores[:, None] - scores[None, :], valid

    @staticmethod
    def _compact_weights(labels: Any, weights: Any) -> tuple[Any, Any]:
        """The weights of the compact grid's rows (positives) and columns (negatives)."""
        positive, negative = _positives_and_negatives(labels)
        weights = ops.reshape(ops.cast(weights, "float32"), (-1,))
        return (
            masked(weights, positive),
            masked(weights, negative),
        )

    def _rows(self, positive: Any) -> tuple[Any, Any]:
        """The grid's rows (``None``: every sample, in order) and which rows are positives."""
        return None, self._real_rows(positive)

    def _real_rows(self, positive: Any) -> Any:
        """Which rows of the grid are positives."""
        return positive

    def binary_count(self, y_true: Any, y_pred: Any) -> Any:
        """``positives * negatives``: the binaries of this batch, before they are built."""
        _, labels = binary_scores(y_true, y_pred, self.from_logits)
        positive, negative = _positives_and_negatives(labels)
        positives = ops.sum(ops.cast(positive, "int64"))
        return positives * ops.sum(ops.cast(negative, "int64"))

    def metric(self, configurations: Any, y_true: Any, valid: Any, weights: Any = None) -> Any:
        labels = binary_labels(y_true)
        if self.compact():
            if weights is None:
                above = ops.sum(1.0 - configurations, axis=-1)  # [A, positives]
                return _average_precision(above, ops.ones_like(above[0]) > 0)
            positive_weights, negative_weights = self._compact_weights(labels, weights)
            above = ops.sum((1.0 - configurations) * negative_weights, axis=-1)
            return _average_precision(above, positive_weights > 0, positive_weights)
        positive, _ = _positives_and_negatives(labels)
        rows, real = self._rows(positive)
        missing = ops.where(valid, 1.0 - configurations, 0.0)  # [A, rows, batch]
        if weights is None:
            return _average_precision(ops.sum(missing, axis=-1), real)
        weights = ops.reshape(ops.cast(weights, "float32"), (-1,))
        row_weights = weights if rows is None else ops.take(weights, rows)
        return _average_precision(ops.sum(missing * weights, axis=-1), real, row_weights)

    def degenerate(self, y_true: Any, weights: Any = None) -> Any:
        return _degenerate_binary(y_true, weights)

    def check(self, y_true: Any, y_pred: Any) -> None:
        check_binary_labels(y_true, y_pred, self.from_logits, "UniLossAveragePrecision")

    def get_config(self) -> dict[str, Any]:
        return {"from_logits": self.from_logits, "layout": self.layout, "scores": self.scores}


def _bucket_sizes(batch: int | None) -> list[int | None]:
    """Row counts of the bucketed grids: 8, 16, 32, ... up to half the batch (a positive count
    above that leaves less than half the grid unused in the masked one), or up to 256 when the
    batch size is unknown while tracing; last ``None``, the masked ``[batch, batch]`` grid.

    >>> _bucket_sizes(128)
    [8, 16, 32, 64, None]
    """
    last = _LAST_BUCKET_UNKNOWN_BATCH if batch is None else batch // 2
    sizes: list[int | None] = []
    while (size := _FIRST_BUCKET * 2 ** len(sizes)) <= last:
        sizes.append(size)
    return [*sizes, None]


class _PositiveRows(AveragePrecisionRefactoring):
    """A static grid of ``rows`` rows holding the batch's positives first (``None``: the
    masked ``[batch, batch]`` grid): one branch of the bucketed layout. Internal: it exists
    only inside a trace and is never serialized."""

    def __init__(self, rows: int | None, **options: Any) -> None:
        super().__init__(**{**options, "layout": "masked"})
        self.rows = rows

    def _rows(self, positive: Any) -> tuple[Any, Any]:
        if self.rows is None:
            return None, positive
        # Positives first (top_k keeps index order among ties); padding keeps k <= length.
        padded = ops.concatenate([ops.cast(positive, "int32"), ops.zeros((self.rows,), "int32")])
        _, rows = ops.top_k(padded, k=self.rows)
        real = self._real_rows(positive)
        # Padding rows (index past the batch) point at sample 0; `real` masks them out.
        return ops.where(real, rows, 0), real

    def _real_rows(self, positive: Any) -> Any:
        if self.rows is None:
            return positive
        return ops.arange(self.rows) < ops.sum(ops.cast(positive, "int32"))


@keras.saving.register_keras_serializable(package="keras_adaptive_loss")
class FBetaRefactoring(Refactoring):
    """F-beta of a binary classifier at threshold 0.5 (beyond the paper).

    One comparison per sample, its log-odds against 0 (``p > 0.5``); with ``TP, FP, FN`` counted
    from a configuration, ``F = (1 + beta^2) TP / ((1 + beta^2) TP + beta^2 FN + FP)``. The best
    configuration predicts every label. A set metric: gathered across replicas. A batch without
    positives or negatives is degenerate.

    >>> refactoring = FBetaRefactoring(beta=1.0)
    >>> y, p = np.array([1.0, 0.0, 1.0]), np.array([0.9, 0.6, 0.3])
    >>> c, valid = refactoring.comparisons(y, p)
    >>> configuration = ops.cast(c > 0, "float32")[None]  # predicted 1, 1, 0: TP = FP = FN = 1
    >>> float(refactoring.metric(configuration, y, valid)[0])
    0.5
    """

    set_metric = True

    def __init__(self, beta: float = 1.0, from_logits: bool = False) -> None:
        if not np.isfinite(beta) or beta <= 0:
            raise ValueError(f"beta must be > 0; got {beta!r}.")
        self.beta = float(beta)
        self.from_logits = bool(from_logits)

    def comparisons(self, y_true: Any, y_pred: Any, weights: Any = None) -> tuple[Any, Any]:
        scores, _ = binary_scores(y_true, y_pred, self.from_logits)
        if weights is None:
            return scores, ops.ones_like(scores) > 0
        return scores, ops.reshape(weights, (-1,)) > 0

    def best_configuration(self, y_true: Any, valid: Any) -> Any:
        labels = binary_labels(y_true)
        return labels

    def metric(self, configurations: Any, y_true: Any, valid: Any, weights: Any = None) -> Any:
        labels = binary_labels(y_true)
        if weights is not None:
            labels_weight = ops.reshape(ops.cast(weights, "float32"), (-1,))
        else:
            labels_weight = ops.ones_like(labels)
        tp = ops.sum(configurations * labels * labels_weight, axis=-1)
        fp = ops.sum(configurations * (1.0 - labels) * labels_weight, axis=-1)
        fn = ops.sum((1.0 - configurations) * labels * labels_weight, axis=-1)
        b2 = self.beta**2
        return (1.0 + b2) * tp / ops.maximum((1.0 + b2) * tp + b2 * fn + fp, 1e-12)

    def degenerate(self, y_true: Any, weights: Any = None) -> Any:
        return _degenerate_binary(y_true, weights)

    def check(self, y_true: Any, y_pred: Any) -> None:
        check_binary_labels(y_true, y_pred, self.from_logits, "UniLossFBeta")

    def get_config(self) -> dict[str, Any]:
        return {"beta": self.beta, "from_logits": self.from_logits}


def pckh_targets(keypoints: Any, visible: Any, head_sizes: Any) -> np.ndarray:
    """Packs PCKh labels into the ``[batch, joints, 4]`` array `PCKhRefactoring` reads.

    Args:
        keypoints: ``[batch, joints, 2]`` (row, column) in heatmap pixels.
        visible: ``[batch, joints]``, 1 for annotated joints.
        head_sizes: ``[batch]`` head segment length in heatmap pixels.

    >>> pckh_targets([[[1, 2]]], [[1]], [4.0]).tolist()
    [[[1.0, 2.0, 1.0, 4.0]]]
    """
    keypoints = np.asarray(keypoints, dtype="float32")
    batch, joints = keypoints.shape[:2]
    visible = np.asarray(visible, dtype="float32").reshape(batch, joints, 1)
    heads = np.broadcast_to(np.asarray(head_sizes, "float32").reshape(batch, 1, 1), visible.shape)
    return np.concatenate([keypoints, visible, heads], axis=-1)


@keras.saving.register_keras_serializable(package="keras_adaptive_loss")
class PCKhRefactoring(Refactoring):
    """PCKh of heatmap keypoint predictions (UniLoss Sec. 4.3), per joint.

    ``y_pred``: heatmaps ``[batch, height, width, joints]`` (the predicted keypoint is the
    highest pixel). ``y_true``: ``[batch, joints, 4]`` = (row, column, visible, head size) — see
    `pckh_targets`. Pixels whose centre lies within ``threshold * head size`` of the keypoint
    are positive. A visible joint is correct when the highest pixel is positive, i.e. when the
    best positive pixel outscores every negative pixel: the comparisons are
    ``max(positive scores) - s_pixel`` for each negative pixel (Eq. 8's argmax refactoring). This
    gives exactly PCKh with ``height * width`` binaries per joint, where the paper's
    positive-by-negative pairs need ``m_k (height * width - m_k)``. A joint whose disk contains
    no pixel centre is left out; a batch without a counted joint is degenerate.

    >>> refactoring = PCKhRefactoring()
    >>> y = pckh_targets([[[1, 1]], [[1, 1]]], [[1], [1]], [2.0, 2.0])  # within 1 pixel of (1, 1)
    >>> heatmaps = np.zeros((2, 3, 3, 1), "float32")
    >>> heatmaps[0, 0, 1, 0], heatmaps[1, 0, 0, 0] = 1.0, 1.0  # peaks at (0, 1): hit; (0, 0): miss
    >>> c, valid, grid = refactoring.comparisons(y, heatmaps)
    >>> configuration = ops.cast(c > 0, "float32")[None]
    >>> ops.convert_to_numpy(refactoring.metric(configuration, y, valid, grid)).tolist()
    [0.5]
    """

    def __init__(self, threshold: float = 0.5) -> None:
        if not np.isfinite(threshold) or threshold <= 0:
            raise ValueError(f"threshold must be > 0; got {threshold!r}.")
        self.threshold = float(threshold)

    def _positives(
        self, y_true: Any, height: int, width: int, weights: Any = None
    ) -> tuple[Any, Any]:
        rows = ops.cast(ops.arange(height * width) // width, "float32")
        cols = ops.cast(ops.arange(height * width) % width, "float32")
        y_true = ops.cast(y_true, "float32")
        d2 = ops.square(rows - y_true[..., 0:1]) + ops.square(cols - y_true[..., 1:2])
        radius = self.threshold * y_true[..., 3:4]
        positive = d2 <= ops.square(radius)
        counted = ops.logical_and(y_true[..., 2] > 0.5, ops.any(positive, axis=-1))
        if weights is not None:
            present = ops.reshape(weights, (-1, 1)) > 0
            counted = ops.logical_and(counted, present)
        return positive, counted

    def comparisons(
        self, y_true: Any, y_pred: Any, weights: Any = None
    ) -> tuple[Any, Any, tuple[int, int]]:
        """``(comparisons, valid, (height, width))``: the static heatmap size is the context
        `metric` needs to find the locations within the threshold."""
        _, height, width, joints = y_pred.shape
        scores = ops.transpose(ops.reshape(y_pred, (-1, height * width, joints)), (0, 2, 1))
        scores = ops.cast(scores, "float32")
        positive, counted = self._positives(y_true, height, width, weights)
        best_positive = ops.max(
            ops.where(positive, scores, -1e9), axis=-1, keepdims=True, initial=-1e9
        )
        best_positive = ops.where(counted[..., None], best_positive, 0.0)
        valid = ops.logical_and(ops.logical_not(positive), counted[..., None])
        comparisons = ops.where(valid, best_positive - scores, 0.0)
        return comparisons, valid, (height, width)

    def metric(
        self,
        configurations: Any,
        y_true: Any,
        valid: Any,
        grid: tuple[int, int],
        weights: Any = None,
    ) -> Any:
        _, counted = self._positives(y_true, *grid)
        # [A, batch, joints]
        correct = ops.min(ops.where(valid, configurations, 1.0), axis=-1, initial=1.0)
        counted = ops.cast(counted, "float32")
        if weights is not None:
            counted = counted * ops.reshape(ops.cast(weights, "float32"), (-1, 1))
        hits = ops.sum(ops.reshape(correct * counted, (correct.shape[0], -1)), axis=-1)
        total = ops.sum(counted)
        return hits / (ops.maximum(total, 1.0) if weights is None else ops.maximum(total, 1e-12))

    def degenerate(self, y_true: Any, weights: Any = None) -> Any:
        y_true = ops.cast(y_true, "float32")
        visible = ops.cast(y_true[..., 2] > 0.5, "float32")
        if weights is not None:
            visible = visible * ops.cast(ops.reshape(weights, (-1, 1)) > 0, "float32")
        return ops.sum(visible) == 0

    def check(self, y_true: Any, y_pred: Any) -> None:
        if len(y_pred.shape) != 4 or None in y_pred.shape[1:]:
            raise ValueError(
                "UniLossPCKh expects heatmaps of shape [batch, height, width, joints] with known "
                f"height, width and joints; got {y_pred.shape}."
            )
        joints = y_pred.shape[-1]
        if len(y_true.shape) != 3 or y_true.shape[1:] != (joints, 4):
            raise ValueError(
                f"UniLossPCKh expects labels of shape [batch, {joints}, 4] = (row, column, "
                f"visible, head size) per joint (see pckh_targets); got {y_true.shape}."
            )

    def get_config(self) -> dict[str, Any]:
        return {"threshold": self.threshold}
