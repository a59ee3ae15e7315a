"""UniLoss (Liu, Wang & Deng, ECCV 2020): a performance metric refactored into a loss.

A refactoring (`keras_adaptive_loss.uniloss.refactorings`) writes a metric as
scores -> comparisons ``c = f(s, y)`` -> binaries ``b = [c > 0]`` -> metric ``e = g(b)`` (Eq. 4).
`UniLoss` relaxes the binaries with a sigmoid (Eq. 9) and the metric by inverse distance
weighting over anchor configurations (Eq. 10), and returns ``1 - g~``. Gradients come from
autodiff through `keras.ops`; nothing is written by hand (the official code's hand-written IDW
gradient has the quotient rule's sign wrong).
"""

from __future__ import annotations

import functools
import inspect
import warnings
from typing import Any

import keras
import numpy as np
from keras import ops

from keras_adaptive_loss._tensorflow import (
    GradientTape,
    checked,
    fold_in,
    gather_global_batch,
    in_replica_context,
    is_eager,
    replica_seed,
    stateless_uniform,
)
from keras_adaptive_loss.losses.base import AdaptiveLoss, deserialize_nested
from keras_adaptive_loss.losses.gradient_scale import check_gradient_scale, scale_gradient
from keras_adaptive_loss.losses.prediction_checks import check_predictions
from keras_adaptive_loss.losses.set_metric import SetMetricLoss
from keras_adaptive_loss.uniloss.refactorings import (
    AccuracyRefactoring,
    AveragePrecisionRefactoring,
    FBetaRefactoring,
    PCKhRefactoring,
    Refactoring,
)

__all__ = [
    "UniLoss",
    "UniLossAccuracy",
    "UniLossAveragePrecision",
    "UniLossFBeta",
    "UniLossPCKh",
    "idw_interpolate",
    "sample_anchors",
]

IDW_EPSILON = 1e-12
#: How `UniLoss` makes its nearby anchors: flip random bits, or bits that are currently wrong.
NEARBY_MODES = ("random", "wrong")
#: Which binaries `UniLoss` trains when ``binary_fraction < 1``: random ones, or the hardest.
BINARY_SELECTIONS = ("random", "hardest")


def _hardest(comparisons: Any, valid: Any, fraction: float) -> Any:
    """The valid cells with the smallest comparisons along the last axis: in each row,
    ``ceil(fraction * valid cells of the row)`` of them (at least one when the row has any)."""
    masked = ops.where(valid, ops.stop_gradient(comparisons), np.inf)
    rank = ops.argsort(ops.argsort(masked, axis=-1), axis=-1)  # 0 = smallest
    count = ops.sum(ops.cast(valid, "float32"), axis=-1, keepdims=True)
    keep = ops.cast(rank, "float32") < ops.ceil(fraction * count)
    return ops.logical_and(valid, keep)


def idw_interpolate(u: Any, anchors: Any, anchor_values: Any, power: float = 1.0) -> Any:
    """Inverse-distance-weighted value at ``u`` of a function known at ``anchors`` (Eq. 10).

    ``g~(u) = sum_a w_a g(a) / sum_a w_a`` with ``w_a = 1 / d(u, a)^power`` and ``d`` the
    Euclidean distance over all binaries. The squared distance gets ``IDW_EPSILON`` added, so
    that when ``u`` coincides with an anchor its weight (1e6 for power 1) takes over smoothly
    and the value tends to ``g(a)``, Eq. 10's second case, with a finite gradient.

    Args:
        u: relaxed configuration, shape ``S`` (any shape).
        anchors: anchor configurations, shape ``[A, *S]``.
        anchor_values: ``g`` at the anchors, shape ``[A]``.
        power: IDW power (1 in the paper and the official code).
    """
    axes = tuple(range(1, len(anchors.shape)))
    squared = ops.sum(ops.square(u[None] - anchors), axis=axes)
    weights = ops.power(squared + IDW_EPSILON, -0.5 * power)
    return ops.sum(weights * anchor_values) / ops.sum(weights)


def _flip_random_bits(
    base: Any, selectable: Any, uniform: Any, num_anchors: int, count: int
) -> Any:
    """Copies of ``base``, one per row of ``uniform`` ``[A, count]``, with bits flipped.

    Each number picks one selectable bit (the r-th, found with a cumulative count and a binary
    search), so flipping ``count`` bits in ``A`` anchors needs ``A * count`` random numbers
    rather than one per binary; two numbers may pick the same bit.
    """
    uniform = ops.reshape(uniform, (num_anchors, count))
    flat_selectable = ops.cast(ops.reshape(selectable, (-1,)), "int32")
    cumulative = ops.cumsum(flat_selectable)
    size = ops.shape(cumulative)[0]
    total = ops.cast(ops.sum(flat_selectable), "float32")
    rank = ops.reshape(ops.cast(ops.floor(uniform * total), "int32"), (-1,))
    # The r-th selectable bit; `size` (a padding cell, cut off below) when none is selectable.
    index = ops.minimum(ops.searchsorted(cumulative, rank, side="right"), size)
    padded = ops.concatenate([ops.reshape(base, (-1,)), ops.zeros((1,), base.dtype)], axis=0)
    rows = ops.repeat(ops.arange(num_anchors), count)
    anchors = ops.scatter_update(
        ops.tile(padded[None], (num_anchors, 1)),
        ops.stack([rows, ops.cast(index, rows.dtype)], axis=-1),
        1.0 - ops.take(padded, index),
    )
    return ops.reshape(anchors[:, :size], (num_anchors, *ops.shape(base)))


def sample_anchors(
    best: Any,
    current: Any,
    selectable: Any,
    num_anchors: int,
    num_flips: int,
    seed: Any,
    nearby_flips: Any = None,
) -> Any:
    """The anchors of one step: best, good, nearby and bad configurations (Sec. 3.4).

    Returns ``[1 + 3 * num_anchors, *S]``: the best configuration; ``num_anchors`` good ones
    (the best with up to ``num_flips`` random bits flipped); ``num_anchors`` nearby ones (the
    current hard configuration with up to ``num_flips`` bits flipped, chosen among
    ``nearby_flips`` when given, e.g. the currently wrong bits); ``num_anchors`` bad ones
    (uniformly random bits). Only ``selectable`` bits differ between anchors; the others keep
    the current configuration's value.

    The random numbers are tied to the *rank* of a selectable bit (the k-th selectable bit in
    row-major order), never to its position: the flips pick the r-th selectable bit, and the
    k-th selectable bit of every bad anchor reads row k of a ``[bits, num_anchors]`` Philox draw
    (whose first rows do not depend on how many rows are drawn). So bits that are not
    selectable — those of a sample of weight 0 — change none of the anchors of the others,
    and a batch with such samples gives the value of the batch without them.
    """
    size = ops.size(best)
    uniform = stateless_uniform((num_anchors, 2 * num_flips), seed)
    keep = ops.where(selectable, best, current)
    flips = (num_anchors, num_flips)
    good = _flip_random_bits(keep, selectable, uniform[:, :num_flips], *flips)
    nearby_bits = selectable if nearby_flips is None else ops.logical_and(selectable, nearby_flips)
    nearby = _flip_random_bits(current, nearby_bits, uniform[:, num_flips:], *flips)
    noise = stateless_uniform(ops.stack([size, num_anchors]), fold_in(seed, 11))
    rank = ops.maximum(ops.cumsum(ops.cast(ops.reshape(selectable, (-1,)), "int32")) - 1, 0)
    random_bits = ops.transpose(ops.take(noise, rank, axis=0) < 0.5)  # [A, bits]
    random_bits = ops.reshape(random_bits, (num_anchors, *ops.shape(best)))
    bad = ops.where(selectable[None], ops.cast(random_bits, best.dtype), current[None])
    return ops.concatenate([keep[None], good, nearby, bad], axis=0)


def _check_weighted(refactoring: Refactoring) -> None:
    """Raises unless ``refactoring`` takes sample weights (a ``weights`` argument to
    ``comparisons``, ``metric`` and ``degenerate``)."""
    missing = [
        name
        for name in ("comparisons", "metric", "degenerate")
        if "weights" not in inspect.signature(getattr(refactoring, name)).parameters
    ]
    if missing:
        raise ValueError(
            f"{type(refactoring).__name__} takes no sample weights, but this loss was given "
            "sample_weight, class_weight or a Keras mask. Add a `weights=None` argument (one "
            f"weight per sample; 0 = absent) to its {', '.join(missing)}, or train without "
            "weights."
        )


def _run_branch(index: Any, branches: list) -> Any:
    """``branches[index]()``, as nested conds: only the chosen branch runs.

    Not `keras.ops.switch`: under XLA (TensorFlow 2.21) the gradient of its ``Case`` op over
    these branches never finished compiling, while the same branches under ``cond`` compile
    in seconds.
    """
    if len(branches) == 1:
        return branches[0]()
    return ops.cond(index <= 0, branches[0], lambda: _run_branch(index - 1, branches[1:]))


@keras.saving.register_keras_serializable(package="keras_adaptive_loss")
class UniLoss(AdaptiveLoss, SetMetricLoss):
    """A metric-refactored surrogate loss: ``1 - g~(sigmoid(scale * c))`` (UniLoss, Eqs. 4-10).

    Each step, the refactoring gives the comparisons ``c`` of the batch (and which of them are
    valid), the best (ground-truth) configuration, and the metric ``g`` of any batch of binary
    configurations. The loss samples anchors (Sec. 3.4) — the best configuration,
    ``num_anchors`` good (best with ``num_flips`` bits flipped), ``num_anchors`` nearby (current
    hard configuration with ``num_flips`` flipped) and ``num_anchors`` bad (random) — evaluates
    ``g`` on them exactly, relaxes the binaries with ``sigmoid(scale * c)`` (Eq. 9), and
    interpolates ``g`` at the relaxed configuration by inverse distance weighting (Eq. 10).
    The loss is ``1 - g~`` so that it lies in ``[0, 1]`` for metrics in ``[0, 1]``; it is one
    value for the whole batch, returned once per sample so that Keras's reduction gives it back.
    ``sample_weight``, ``class_weight`` and a Keras mask weight the metric's counts (a
    `keras_adaptive_loss.losses.set_metric.SetMetricLoss`): a sample of weight 0 is absent, and
    the value equals that of the batch without it.

    Details the paper leaves open, as chosen here: anchors are resampled every step with a
    stateless generator seeded by ``(seed, step)``; 16 anchors of each type, 1 flipped bit and
    IDW power 1 follow the paper and its official code. With ``binary_fraction < 1`` a fraction
    of the valid binaries is trained each step (the paper uses 20 % on CIFAR-100): by default
    the *hardest* ones (``binary_selection="hardest"``: the smallest comparisons along the last
    axis, i.e. each sample's highest-scoring wrong classes, as the official code's top-k
    classes), or a random subset (``"random"``). The other binaries are frozen at their *best*
    value in ``u`` and in every anchor, so they do not enter the distances and ``g`` measures
    what the trained binaries change. Freezing them at their current value instead (measured on
    digits, UniLossAccuracy, 20 %, 4 epochs) left training at 19.5 % accuracy: with metrics
    that AND many binaries (a sample is correct only if all its comparisons are), fixing 20 %
    of a sample's bits rarely changes ``g``, so the anchors carried no signal.

    The hardest selection is the default because it beat the random one in paired studies
    (documentation, "Measured results", UniLoss). Paper mode keeps the official code's other
    two choices available, though they lose on the same benchmark:
    ``scores="probability"`` on the refactoring (compare probabilities rather than log-odds;
    -25 AP points) and ``nearby="wrong"`` (nearby anchors flip currently wrong bits, so they lie
    between the current and the best configuration; when none is wrong they equal the current
    one; -0.6 AP points). `UniLossAccuracy.paper` and `UniLossAveragePrecision.paper` turn all
    three on.

    Set metrics (``refactoring.set_metric``: average precision, F-beta) are not decomposable
    over replicas: under a `tf.distribute` strategy the predictions and labels are gathered
    across replicas and every replica computes the loss of the global batch, with the same
    anchors, so the value and the gradients equal the single-device ones on the same global
    batch. Degenerate batches (``refactoring.degenerate``) give zero loss and zero gradient.

    Args:
        refactoring: a `keras_adaptive_loss.uniloss.refactorings.Refactoring`.
        num_anchors: anchors of each type (good, nearby, bad), >= 1.
        num_flips: bits flipped to make a good or nearby anchor, >= 1.
        power: IDW power > 0.
        scale: sigmoid slope > 0 (an adaptive parameter).
        binary_fraction: fraction of the binaries trained per step, in (0, 1].
        nearby: ``"random"`` (nearby anchors flip random bits) or ``"wrong"`` (currently wrong
            bits; paper mode).
        binary_selection: ``"hardest"`` (default) or ``"random"``: which binaries
            ``binary_fraction`` keeps.
        gradient_scale: factor > 0 on the gradient; the value stays ``1 - g~``. The
            interpolated metric's gradient is several times smaller than cross-entropy's
            (see `UniLossAccuracy`), which an optimiser whose step follows the gradient's size
            (SGD) turns into a several times smaller learning rate; Adam and RMSProp divide the
            scale out. 1 (the paper) here; `UniLossAccuracy` defaults to its measured value.
        seed: base seed of the anchor sampling; ``None`` draws one (recorded in the config).
        draws: anchor samplings done so far (restored from a saved config).
        memory_budget: largest anchor grid, in bytes (default 1 GiB). The grid holds
            ``3 * num_anchors + 1`` configurations of every binary: for accuracy that is
            linear in the batch, but average precision has ``positives * negatives``
            binaries, so its memory is O(P * N * anchors) (batch 3,000 at 1:1 needs about
            2 GB). A batch over the budget raises `ValueError` before anything is allocated
            (at trace time when the batch size is static, else by a runtime check, which XLA
            drops).
        name: as for any Keras loss.
        reduction: as for any Keras loss.
        dtype: as for any Keras loss.

    Example:

    ```python
    model.compile(optimizer="adam", loss=kal.losses.UniLossAveragePrecision(from_logits=True))
    ```

    References:
        Liu, Wang & Deng, "UniLoss: Unified Surrogate Loss by Adaptive Interpolation",
        ECCV 2020.
    """

    def __init__(
        self,
        refactoring: Refactoring,
        num_anchors: int = 16,
        num_flips: int = 1,
        power: float = 1.0,
        scale: float = 1.0,
        binary_fraction: float = 1.0,
        nearby: str = "random",
        binary_selection: str = "hardest",
        gradient_scale: float = 1.0,
        seed: int | None = None,
        draws: int = 0,
        memory_budget: int = 2**30,
        name: str = "uniloss",
        reduction: str | None = "sum_over_batch_size",
        dtype: Any = None,
    ) -> None:
        super().__init__(name=name, reduction=reduction, dtype=dtype)
        if not isinstance(refactoring, Refactoring):
            raise ValueError(
                "UniLoss needs a keras_adaptive_loss.uniloss.refactorings.Refactoring (e.g. "
                f"AccuracyRefactoring()); got {refactoring!r}."
            )
        for arg, value in (("num_anchors", num_anchors), ("num_flips", num_flips)):
            if not isinstance(value, (int, np.integer)) or value < 1:
                raise ValueError(f"{arg} must be an integer >= 1; got {value!r}.")
        if not np.isfinite(power) or power <= 0:
            raise ValueError(f"power must be > 0; got {power!r}.")
        if not 0.0 < binary_fraction <= 1.0:
            raise ValueError(f"binary_fraction must lie in (0, 1]; got {binary_fraction!r}.")
        if not np.isfinite(scale) or scale <= 0:
            raise ValueError(f"scale must be > 0; got {scale!r}.")
        if nearby not in NEARBY_MODES:
            raise ValueError(f"nearby must be one of {NEARBY_MODES}; got {nearby!r}.")
        if binary_selection not in BINARY_SELECTIONS:
            raise ValueError(
                f"binary_selection must be one of {BINARY_SELECTIONS}; got {binary_selection!r}."
            )
        self.nearby = nearby
        self.binary_selection = binary_selection
        self.refactoring = refactoring
        self.num_anchors = int(num_anchors)
        self.num_flips = int(num_flips)
        self.power = float(power)
        self.binary_fraction = float(binary_fraction)
        self.gradient_scale = check_gradient_scale(gradient_scale)
        if not isinstance(memory_budget, (int, np.integer)) or memory_budget < 1:
            raise ValueError(
                f"memory_budget must be a number of bytes >= 1; got {memory_budget!r}."
            )
        self.memory_budget = int(memory_budget)
        self.seed = int(np.random.randint(0, 2**31 - 1) if seed is None else seed)
        self.add_parameter("scale", scale, minimum=1e-6)
        if not isinstance(draws, (int, np.integer)) or draws < 0:
            raise ValueError(
                f"draws (samplings done so far) must be an integer >= 0; got {draws!r}."
            )
        self._draws = self.parameter_store.add("draws", int(draws), dtype="int64")

    @property
    def draws(self) -> int:
        """Anchor samplings done so far (the position of the random stream)."""
        return int(self._draws.numpy())

    def interpolated_metric(
        self, y_true: Any, y_pred: Any, seed: Any, sample_weight: Any = None
    ) -> Any:
        """``g~`` for one batch with anchors drawn from ``seed`` (a stateless-RNG seed), the
        metric's counts weighted by ``sample_weight`` when given.

        A refactoring with ``static_variants`` (average precision's bucketed layout) offers
        static-shape grids of several sizes: the one that fits the batch is computed, in
        nested `tf.cond`s whose other branches do not run.
        """
        variants = getattr(self.refactoring, "static_variants", None)
        chosen = variants(y_true) if variants is not None else None
        if chosen is None:
            return self._interpolate(self.refactoring, y_true, y_pred, seed, sample_weight)
        index, refactorings = chosen

        def value_and_gradient(refactoring: Refactoring, y_pred: Any) -> tuple[Any, Any]:
            with GradientTape() as tape:
                tape.watch(y_pred)
                value = self._interpolate(refactoring, y_true, y_pred, seed, sample_weight)
            return value, tape.gradient(value, y_pred)

        @ops.custom_gradient
        def interpolated(y_pred: Any) -> tuple[Any, Any]:
            # Each branch returns its value and its gradient, both of fixed shapes, so the
            # conds need no gradient of their own: differentiating through a cond makes every
            # branch output its intermediates (zeros when not taken), which cost as much as
            # the masked grid they were meant to avoid.
            branches = [functools.partial(value_and_gradient, r, y_pred) for r in refactorings]
            value, gradient = _run_branch(index, branches)
            return value, lambda upstream: ops.cast(upstream, gradient.dtype) * gradient

        return interpolated(ops.convert_to_tensor(y_pred))

    def _interpolate(
        self,
        refactoring: Refactoring,
        y_true: Any,
        y_pred: Any,
        seed: Any,
        sample_weight: Any = None,
    ) -> Any:
        count = getattr(refactoring, "binary_count", None)
        if count is not None:  # check before the comparisons themselves are allocated
            y_pred = self._within_budget(y_pred, count(y_true, y_pred))
        weighted = {} if sample_weight is None else {"weights": sample_weight}
        comparisons, valid, *context = refactoring.comparisons(y_true, y_pred, **weighted)
        comparisons = self._within_budget(ops.cast(comparisons, "float32"))
        current = ops.cast(ops.stop_gradient(comparisons) > 0, "float32")
        selectable = valid
        if self.binary_fraction < 1.0 and self.binary_selection == "hardest":
            selectable = _hardest(comparisons, valid, self.binary_fraction)
        elif self.binary_fraction < 1.0:
            keep = stateless_uniform(
                valid.shape if None not in valid.shape else ops.shape(valid), fold_in(seed, 7)
            )
            selectable = ops.logical_and(valid, keep < self.binary_fraction)
        relaxed = ops.sigmoid(ops.cast(self.variable("scale"), "float32") * comparisons)
        best = ops.cast(refactoring.best_configuration(y_true, valid), "float32")
        # Bits not trained this step are frozen at their best value in u and in every anchor.
        frozen = ops.where(valid, best, current) if self.binary_fraction < 1.0 else current
        current = ops.where(selectable, current, frozen)
        u = ops.where(selectable, relaxed, current)
        wrong = ops.not_equal(current, best) if self.nearby == "wrong" else None
        anchors = sample_anchors(
            best, current, selectable, self.num_anchors, self.num_flips, seed, wrong
        )
        anchor_values = ops.stop_gradient(
            ops.cast(refactoring.metric(anchors, y_true, valid, *context, **weighted), "float32")
        )
        return idw_interpolate(u, ops.stop_gradient(anchors), anchor_values, self.power)

    def _within_budget(self, tensor: Any, count: Any = None) -> Any:
        """``tensor``, after checking that an anchor grid of ``count`` binaries (default: the
        size of ``tensor``, the comparisons) fits `memory_budget`."""
        anchors = 3 * self.num_anchors + 1
        budget = self.memory_budget // (4 * anchors)  # float32 binaries per configuration
        shape = tensor.shape if count is None else ("positives", "negatives")
        message = (
            f"{type(self).__name__}: the anchor grid would hold {anchors} configurations of "
            "{binaries} binaries (shape {shape}), more than memory_budget="
            f"{self.memory_budget} bytes allows. Lower the batch size (average precision has "
            "positives x negatives binaries), lower num_anchors, or raise memory_budget."
        )
        static = count is None and None not in shape
        if count is not None and is_eager(count):
            static, count = True, int(count)
        if static:
            binaries = int(np.prod(shape)) if count is None else count
            if binaries > budget:
                raise ValueError(message.format(binaries=binaries, shape=tuple(shape)))
            return tensor
        binaries = ops.cast(ops.size(tensor) if count is None else count, "int64")
        within = binaries <= ops.convert_to_tensor(budget, "int64")
        return checked(
            tensor, within, lambda: [message.format(binaries="that many", shape="dynamic")]
        )

    def call(self, y_true: Any, y_pred: Any, sample_weight: Any = None) -> Any:
        y_pred = ops.convert_to_tensor(y_pred)
        y_true = ops.convert_to_tensor(y_true)
        if hasattr(self.refactoring, "from_logits"):
            check_predictions(y_pred, self.refactoring.from_logits, type(self).__name__)
        self.refactoring.check(y_true, y_pred)
        if sample_weight is not None:
            _check_weighted(self.refactoring)
        if self.refactoring.set_metric and y_pred.shape[0] == 1:
            warnings.warn(
                f"{type(self).__name__}: a batch of one sample holds no positive-negative pair, "
                "so the metric is undefined and the loss is 0 with no gradient. Use batches of "
                "2 or more samples that hold both classes.",
                UserWarning,
                stacklevel=2,
            )
        per_sample = ops.ones_like(ops.reshape(y_pred, (ops.shape(y_pred)[0], -1))[:, 0])
        gather = self.refactoring.set_metric and in_replica_context()
        if gather:
            y_true, y_pred, sample_weight = gather_global_batch(y_true, y_pred, sample_weight)
        seed = ops.stack([ops.convert_to_tensor(self.seed, "int64"), self._draws.value])
        if not gather:
            seed = replica_seed(self.seed, self._draws.value)
        self._draws.assign_add(ops.cast(1, "int64"))
        value = 1.0 - self.interpolated_metric(y_true, y_pred, seed, sample_weight)
        value = scale_gradient(value, self.gradient_scale)
        weighted = {} if sample_weight is None else {"weights": sample_weight}
        value = ops.where(self.refactoring.degenerate(y_true, **weighted), 0.0, value)
        return per_sample * ops.cast(value, per_sample.dtype)

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(
            refactoring=keras.saving.serialize_keras_object(self.refactoring),
            num_anchors=self.num_anchors,
            num_flips=self.num_flips,
            power=self.power,
            binary_fraction=self.binary_fraction,
            nearby=self.nearby,
            binary_selection=self.binary_selection,
            gradient_scale=self.gradient_scale,
            seed=self.seed,
            draws=self.draws,
            memory_budget=self.memory_budget,
        )
        return config

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> UniLoss:
        return cls(**deserialize_nested(config, "refactoring"))


_PAPER_MODE = {
    "scores": "probability",
    "nearby": "wrong",
    "binary_selection": "hardest",
    "gradient_scale": 1.0,
}


class _UniLossWithRefactoring(UniLoss):
    """A `UniLoss` whose refactoring is built from its own arguments (``_options``)."""

    _refactoring_class: type[Refactoring]

    def __init__(self, name: str, options: dict[str, Any], **kwargs: Any) -> None:
        kwargs.pop("refactoring", None)
        super().__init__(self._refactoring_class(**options), name=name, **kwargs)

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        del config["refactoring"]
        config.update(self.refactoring.get_config())
        return config

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> UniLoss:
        return cls(**config)


@keras.saving.register_keras_serializable(package="keras_adaptive_loss")
class UniLossAccuracy(_UniLossWithRefactoring):
    """UniLoss for multi-class accuracy: ``1 - accuracy~`` (paper Secs. 3.2, 4.4).

    The gradient of the interpolated accuracy is 5 to 11 times smaller (in global norm over
    an MLP's weights, at initialisation) than cross-entropy's on the same batch, the more so
    the more classes. The paper trains with SGD at the learning rate of its cross-entropy
    baseline and leaves the scale open. Under SGD that scale is the learning rate: with
    momentum 0.9 and learning rate 0.01 on the generalization suite's four SGD tasks (5 paired
    seeds), a gradient scale of 1 lost 5.5 to 30.0 points to cross-entropy on every seed, 4
    lost 1.3 to 9.5, 8 was level or above on two tasks and lost 3.7 and 4.0 on the other two,
    and 16 was within noise of cross-entropy or above on all four (documentation, "Measured
    results"). So the gradient is multiplied by ``gradient_scale=16`` by default; the value
    stays ``1 - accuracy~``. Adam and RMSProp divide the factor out up to their epsilon: on
    the suite's 25 Adam tasks the figures moved by at most 2.4 points, within noise. `paper`
    keeps 1.

    Args:
        from_logits: whether ``y_pred`` holds logits.
        scores: ``"log_odds"`` (default) or ``"probability"`` comparisons (see
            `keras_adaptive_loss.uniloss.refactorings.AccuracyRefactoring`).
        gradient_scale: factor > 0 on the gradient (16, measured as above); the value is
            unchanged.
        **kwargs: `UniLoss` arguments (``num_anchors``, ``scale``, ``binary_fraction``, ...).

    >>> import numpy as np
    >>> import keras_adaptive_loss as kal
    >>> loss = kal.losses.UniLossAccuracy(seed=0)
    >>> 0.0 <= float(loss(np.array([0, 1]), np.array([[0.9, 0.1], [0.2, 0.8]]))) <= 1.0
    True

    References:
        Liu, Wang & Deng, "UniLoss: Unified Surrogate Loss by Adaptive Interpolation",
        ECCV 2020, Sec. 3.2.
    """

    _refactoring_class = AccuracyRefactoring

    def __init__(
        self,
        from_logits: bool = False,
        scores: str = "log_odds",
        gradient_scale: float = 16.0,
        name: str = "uniloss_accuracy",
        **kwargs: Any,
    ):
        options = {"from_logits": from_logits, "scores": scores}
        super().__init__(name, options, gradient_scale=gradient_scale, **kwargs)

    @classmethod
    def paper(cls, **kwargs: Any) -> UniLossAccuracy:
        """The official code's choices: probability comparisons, nearby anchors that flip
        wrong bits, the hardest binaries when ``binary_fraction < 1`` (the paper trains 20 %
        on CIFAR-100: the top-scoring wrong classes), and the unscaled gradient. Other
        arguments as for the class."""
        return cls(**{**_PAPER_MODE, **kwargs})


@keras.saving.register_keras_serializable(package="keras_adaptive_loss")
class UniLossAveragePrecision(_UniLossWithRefactoring):
    """UniLoss for the average precision of a binary classifier (paper Sec. 4.2).

    Predictions: one probability/logit per sample or a two-class output; labels 0/1.

    Args:
        from_logits: whether ``y_pred`` holds logits.
        layout: grid of the comparisons, see
            `keras_adaptive_loss.uniloss.refactorings.AveragePrecisionRefactoring`.
        scores: ``"log_odds"`` (default) or ``"probability"`` comparisons.
        **kwargs: `UniLoss` arguments.

    Example:

    >>> import numpy as np
    >>> y = np.array([1.0, 0.0, 1.0, 0.0])
    >>> ranked, reversed_ = np.array([4.0, -4.0, 3.0, -3.0]), np.array([-4.0, 4.0, -3.0, 3.0])
    >>> loss = UniLossAveragePrecision(from_logits=True, seed=0)
    >>> float(loss(y, ranked)) < float(loss(y, reversed_))  # 1 - interpolated AP
    True

    References:
        Liu, Wang & Deng, "UniLoss: Unified Surrogate Loss by Adaptive Interpolation",
        ECCV 2020, Sec. 4.2.
    """

    _refactoring_class = AveragePrecisionRefactoring

    def __init__(
        self,
        from_logits: bool = False,
        layout: str = "auto",
        scores: str = "log_odds",
        name: str = "uniloss_average_precision",
        **kwargs: Any,
    ):
        options = {"from_logits": from_logits, "layout": layout, "scores": scores}
        super().__init__(name, options, **kwargs)

    @classmethod
    def paper(cls, **kwargs: Any) -> UniLossAveragePrecision:
        """The official code's choices: probability comparisons and nearby anchors that flip
        wrong bits (and the hardest binaries when ``binary_fraction < 1``)."""
        return cls(**{**_PAPER_MODE, **kwargs})


@keras.saving.register_keras_serializable(package="keras_adaptive_loss")
class UniLossFBeta(_UniLossWithRefactoring):
    """UniLoss for the F-beta score of a binary classifier at threshold 0.5.

    Args:
        beta: weight of recall relative to precision, > 0.
        from_logits: whether ``y_pred`` holds logits.
        **kwargs: `UniLoss` arguments.

    Example:

    >>> import numpy as np
    >>> y = np.array([1.0, 0.0, 1.0, 0.0])
    >>> ranked, reversed_ = np.array([4.0, -4.0, 3.0, -3.0]), np.array([-4.0, 4.0, -3.0, 3.0])
    >>> loss = UniLossFBeta(from_logits=True, seed=0)
    >>> float(loss(y, ranked)) < float(loss(y, reversed_))
    True

    References:
        Liu, Wang & Deng, "UniLoss: Unified Surrogate Loss by Adaptive Interpolation",
        ECCV 2020 (F-beta refactored as AP is, Sec. 4.2).
    """

    _refactoring_class = FBetaRefactoring

    def __init__(
        self,
        beta: float = 1.0,
        from_logits: bool = False,
        name: str = "uniloss_fbeta",
        **kwargs: Any,
    ):
        super().__init__(name, {"beta": beta, "from_logits": from_logits}, **kwargs)


@keras.saving.register_keras_serializable(package="keras_adaptive_loss")
class UniLossPCKh(_UniLossWithRefactoring):
    """UniLoss for PCKh of heatmap keypoint predictions (paper Sec. 4.3).

    ``y_pred``: heatmaps ``[batch, height, width, joints]``; ``y_true``: ``[batch, joints, 4]``
    (row, column, visible, head size), see
    `keras_adaptive_loss.uniloss.refactorings.pckh_targets`.

    Args:
        threshold: a prediction is correct within ``threshold * head size`` (PCKh@0.5).
        **kwargs: `UniLoss` arguments.

    Example:

    >>> import numpy as np
    >>> from keras_adaptive_loss.uniloss.refactorings import pckh_targets
    >>> y = pckh_targets([[[1, 1]]], [[1]], [2.0])  # one joint at (1, 1), 1-pixel radius
    >>> hit, miss = np.zeros((1, 3, 3, 1), "float32"), np.zeros((1, 3, 3, 1), "float32")
    >>> hit[0, 1, 1, 0], miss[0, 2, 2, 0] = 5.0, 5.0
    >>> loss = UniLossPCKh(seed=0)
    >>> float(loss(y, hit)) < float(loss(y, miss))
    True

    References:
        Liu, Wang & Deng, "UniLoss: Unified Surrogate Loss by Adaptive Interpolation",
        ECCV 2020, Sec. 4.3.
    """

    _refactoring_class = PCKhRefactoring

    def __init__(self, threshold: float = 0.5, name: str = "uniloss_pckh", **kwargs: Any) -> None:
        super().__init__(name, {"threshold": threshold}, **kwargs)
