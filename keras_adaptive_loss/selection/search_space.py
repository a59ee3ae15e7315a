"""The losses a selection population draws its children from: families with bounded
hyper-parameters, each building a loss and the callbacks that drive it."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import keras
import numpy as np

from keras_adaptive_loss import callbacks as kal_callbacks
from keras_adaptive_loss.losses import (
    ClassBalancedLoss,
    ClassCorrelationLoss,
    CrossentropyExpectationMix,
    GeneralizedCrossentropy,
    LDAMLoss,
    PolyLoss,
)

__all__ = [
    "CONTROL",
    "ChildLoss",
    "LossFamily",
    "class_correlation_family",
    "default_search_space",
    "initial_children",
]

#: The name of the control family: plain cross-entropy, never replaced.
CONTROL = "crossentropy"


@dataclass(frozen=True)
class LossFamily:
    """A kind of loss with bounded hyper-parameters, as a population searches it.

    Args:
        name: the family's name in reports.
        build: ``build(params, epochs) -> (loss, callbacks)``: a fresh loss for one child
            (one-hot targets, probabilities in) and the callbacks that drive it over a run of
            ``epochs`` epochs.
        starts: the hyper-parameters of the children that start in this family, one dict per
            child (``({},)`` for a family without hyper-parameters).
        bounds: ``name -> (low, high)`` for every hyper-parameter; exploration keeps values
            inside.

    Example:

    >>> family = LossFamily(
    ...     "label_smoothing",
    ...     lambda params, epochs: (
    ...         keras.losses.CategoricalCrossentropy(label_smoothing=params["smoothing"]), []),
    ...     starts=({"smoothing": 0.1},),
    ...     bounds={"smoothing": (0.01, 0.3)},
    ... )
    >>> loss, callbacks = family.build({"smoothing": 0.1}, 10)
    >>> round(float(loss(np.eye(2), np.array([[0.9, 0.1], [0.2, 0.8]]))), 4)
    0.2538
    """

    name: str
    build: Callable[[Mapping[str, float], int], tuple[Any, list[keras.callbacks.Callback]]]
    starts: tuple[dict[str, float], ...] = ({},)
    bounds: dict[str, tuple[float, float]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.starts:
            raise ValueError(f"Family {self.name!r} has no starts; give at least one dict.")
        for params in self.starts:
            self.check(params)

    def check(self, params: Mapping[str, float]) -> None:
        """Raises `ValueError` unless ``params`` names exactly the bounded hyper-parameters,
        each inside its bounds."""
        if set(params) != set(self.bounds):
            raise ValueError(
                f"Family {self.name!r} takes the hyper-parameters {sorted(self.bounds)}; got "
                f"{sorted(params)}."
            )
        for name, value in params.items():
            low, high = self.bounds[name]
            if not low <= value <= high:
                raise ValueError(
                    f"Family {self.name!r}: {name}={value} is outside its bounds [{low}, {high}]."
                )

    def perturb(
        self, params: Mapping[str, float], rng: np.random.Generator, factors: Sequence[float]
    ) -> dict[str, float]:
        """Explore (population-based training): each hyper-parameter is multiplied by one of
        ``factors``, drawn uniformly, and clipped into its bounds. A hyper-parameter at 0 is
        moved by the factor's distance from 1 times the bounds' width instead.

        >>> family = default_search_space(3)[1]
        >>> family.perturb({"smoothing": 0.1}, np.random.default_rng(0), factors=(1.25,))
        {'smoothing': 0.125}
        """
        moved = {}
        for name, value in params.items():
            low, high = self.bounds[name]
            factor = float(factors[int(rng.integers(len(factors)))])
            new = value * factor if value != 0 else (factor - 1.0) * (high - low)
            moved[name] = float(min(max(new, low), high))
        return moved


@dataclass(frozen=True)
class ChildLoss:
    """What one child trains with: a family and its hyper-parameters.

    >>> ChildLoss("focal", {"gamma": 2.0}).label
    'focal(gamma=2)'
    """

    family: str
    params: dict[str, float] = field(default_factory=dict)

    @property
    def label(self) -> str:
        inner = ", ".join(f"{name}={value:.3g}" for name, value in sorted(self.params.items()))
        return f"{self.family}({inner})" if inner else self.family


def _crossentropy(params: Mapping[str, float], epochs: int) -> tuple[Any, list]:
    return keras.losses.CategoricalCrossentropy(), []


def _label_smoothing(params: Mapping[str, float], epochs: int) -> tuple[Any, list]:
    return keras.losses.CategoricalCrossentropy(label_smoothing=params["smoothing"]), []


def _focal(params: Mapping[str, float], epochs: int) -> tuple[Any, list]:
    # alpha = 1: Keras's default 0.25 only rescales the categorical loss.
    return keras.losses.CategoricalFocalCrossentropy(alpha=1.0, gamma=params["gamma"]), []


def _poly(params: Mapping[str, float], epochs: int) -> tuple[Any, list]:
    return PolyLoss(epsilon=params["epsilon"]), []


def _gce(params: Mapping[str, float], epochs: int) -> tuple[Any, list]:
    return GeneralizedCrossentropy(q=params["q"]), []


def _ce_el(params: Mapping[str, float], epochs: int) -> tuple[Any, list]:
    # The paper's gradual protocol "0-0.5" (six equal phases) with its last F as the
    # hyper-parameter.
    phases = [float(f) for f in np.linspace(0.0, params["final_focus"], 6)]
    return CrossentropyExpectationMix(), [kal_callbacks.FocusSchedule(phases)]


def _imbalance(counts: tuple[int, ...]) -> tuple[LossFamily, LossFamily]:
    def ldam_drw(params: Mapping[str, float], epochs: int) -> tuple[Any, list]:
        start = int(0.8 * epochs)  # the paper's schedule (epoch 160 of 200)
        return LDAMLoss(counts), [kal_callbacks.DeferredReweighting(start_epoch=start)]

    def class_balanced(params: Mapping[str, float], epochs: int) -> tuple[Any, list]:
        return ClassBalancedLoss(counts, base="focal"), []

    return LossFamily("ldam_drw", ldam_drw), LossFamily("class_balanced", class_balanced)


def default_search_space(
    num_classes: int, class_counts: Sequence[int] | None = None, *, skew: float = 3.0
) -> list[LossFamily]:
    """The families a population searches by default, the cross-entropy control first.

    Cross-entropy (the control); label smoothing 0.05, 0.1, 0.2; focal loss gamma 1, 2; Poly-1
    epsilon -1, 1; generalized cross-entropy q = 0.7 (the paper's; exploration moves q in
    [0.1, 1]); cross-entropy + expectation loss on the gradual F protocol ending at F = 0.5;
    and, when the largest class has at least ``skew`` times the samples of the smallest,
    LDAM-DRW and the class-balanced focal loss. Every child reads probabilities and one-hot
    targets (`select_loss` converts integer labels), so losses that read logits (squentropy,
    sparsemax) are not among them.

    Args:
        num_classes: the number of classes.
        class_counts: training samples per class, for the imbalance families.
        skew: the largest-to-smallest class ratio from which the imbalance families join.

    Example:

    >>> [family.name for family in default_search_space(3)]
    ['crossentropy', 'label_smoothing', 'focal', 'poly', 'gce', 'ce_el']
    >>> [family.name for family in default_search_space(2, class_counts=(90, 10))][-2:]
    ['ldam_drw', 'class_balanced']
    """
    if num_classes < 2:
        raise ValueError(f"num_classes must be at least 2; got {num_classes}.")
    families = [
        LossFamily(CONTROL, _crossentropy),
        LossFamily(
            "label_smoothing",
            _label_smoothing,
            starts=({"smoothing": 0.05}, {"smoothing": 0.1}, {"smoothing": 0.2}),
            bounds={"smoothing": (0.01, 0.4)},
        ),
        LossFamily(
            "focal",
            _focal,
            starts=({"gamma": 1.0}, {"gamma": 2.0}),
            bounds={"gamma": (0.0, 5.0)},
        ),
        LossFamily(
            "poly",
            _poly,
            starts=({"epsilon": -1.0}, {"epsilon": 1.0}),
            bounds={"epsilon": (-1.0, 4.0)},
        ),
        LossFamily("gce", _gce, starts=({"q": 0.7},), bounds={"q": (0.1, 1.0)}),
        LossFamily(
            "ce_el",
            _ce_el,
            starts=({"final_focus": 0.5},),
            bounds={"final_focus": (0.05, 0.5)},
        ),
    ]
    if class_counts is not None:
        counts = tuple(int(count) for count in class_counts)
        if len(counts) != num_classes or min(counts) < 0:
            raise ValueError(
                f"class_counts must hold {num_classes} non-negative counts; got {class_counts!r}."
            )
        if max(counts) >= skew * max(1, min(counts)):
            families.extend(_imbalance(tuple(max(1, count) for count in counts)))
    return families


def class_correlation_family(
    num_classes: int, starts: Sequence[float] = (-0.03, 0.03), bound: float = 0.1
) -> LossFamily:
    """ALA's class-correlation loss at fixed Φ spreads, as children of a population.

    Each child trains `ClassCorrelationLoss` with ``Φ = I + s (1 - I)``: every off-diagonal
    entry ``s`` (``off_diagonal``); ``s > 0`` puts soft-target mass on the other classes, ``s <
    0`` penalises confusing them (the direction a single run's `AdaptiveLossAlignment` takes by
    default). Population-based training explores ``s`` by its multiplicative perturbation, so
    a child keeps the sign it started with. Not in `default_search_space`: added to it on six
    suite tasks (5 paired seeds), it moved the population's gain over cross-entropy by -0.10
    to +0.70 points (mean +0.11) for 10 to 30 % more time. Add it where soft targets may
    help (a CNN on MNIST-1D: +7.72 against +7.02):
    ``select_loss(..., search_space=default_search_space(C) + [class_correlation_family(C)])``.

    Args:
        num_classes: C.
        starts: the off-diagonal value of each child that starts in this family.
        bound: ``s`` stays within ``[-bound, bound]``.

    Example:

    >>> family = class_correlation_family(3)
    >>> [child.label for child in initial_children([default_search_space(3)[0], family])][1:]
    ['class_correlation(off_diagonal=-0.03)', 'class_correlation(off_diagonal=0.03)']
    >>> loss, _ = family.build({"off_diagonal": 0.03}, 10)
    >>> loss.get_parameter("phi").round(2).tolist()[0]
    [1.0, 0.03, 0.03]
    """
    if not 0 < bound <= 1:
        raise ValueError(f"bound must lie in (0, 1] (Φ's entries are in [-1, 1]); got {bound!r}.")

    def build(params: Mapping[str, float], epochs: int) -> tuple[Any, list]:
        spread = params["off_diagonal"]
        phi = np.eye(num_classes) + spread * (1.0 - np.eye(num_classes))
        return ClassCorrelationLoss(num_classes, phi=phi), []

    return LossFamily(
        "class_correlation",
        build,
        starts=tuple({"off_diagonal": float(s)} for s in starts),
        bounds={"off_diagonal": (-bound, bound)},
    )


def initial_children(families: Sequence[LossFamily]) -> list[ChildLoss]:
    """One child per start of every family, in order; the first family is the control.

    >>> [child.label for child in initial_children(default_search_space(3))][:3]
    ['crossentropy', 'label_smoothing(smoothing=0.05)', 'label_smoothing(smoothing=0.1)']
    """
    if not families or families[0].name != CONTROL:
        raise ValueError(
            f"The first family must be the {CONTROL!r} control (default_search_space's first); "
            f"got {[family.name for family in families][:1]}."
        )
    names = [family.name for family in families]
    if len(set(names)) != len(names):
        raise ValueError(f"Family names must be unique; got {names}.")
    return [ChildLoss(family.name, dict(params)) for family in families for params in family.starts]
