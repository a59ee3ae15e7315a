"""The losses `kal.compare` trains with, by name: each gives a loss and the callbacks it needs."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import keras
import numpy as np

from keras_adaptive_loss import callbacks as kal_callbacks
from keras_adaptive_loss import names
from keras_adaptive_loss.comparison.settings import canonical_name
from keras_adaptive_loss.losses import (
    ActivePassiveLoss,
    AnyLoss,
    CandidateLoss,
    ClassBalancedLoss,
    ClassCorrelationLoss,
    CrossentropyExpectationMix,
    EnsLoss,
    LDAMLoss,
    NormalizedFocalLoss,
    PolyLoss,
    ReverseCrossentropy,
    SparsemaxLoss,
    Squentropy,
    StochasticLoss,
    UniLossAccuracy,
    UniLossAveragePrecision,
)

__all__ = [
    "LOSSES",
    "SLF_CANDIDATES",
    "LossContext",
    "LossSetup",
    "build_loss",
    "canonical_name",
]

#: The candidates of the ``stochastic`` preset (the set of the SLF benchmark).
SLF_CANDIDATES = ("crossentropy", "mse", "mae", "hinge", "cosine")


@dataclass(frozen=True)
class LossContext:
    """What a loss preset may need to know about the run.

    >>> import numpy as np
    >>> context = LossContext(
    ...     num_classes=3, seed=0, steps_per_epoch=10, epochs=5,
    ...     validation_data=(np.zeros((4, 2), "float32"), np.zeros(4, "int64")),
    ... )
    >>> context.num_classes, context.class_counts
    (3, None)
    """

    num_classes: int
    seed: int
    steps_per_epoch: int
    epochs: int
    validation_data: tuple[np.ndarray, np.ndarray]
    #: training samples per class (the labels the model trains on), for imbalance losses.
    class_counts: tuple[int, ...] | None = None


@dataclass
class LossSetup:
    """A loss for ``model.compile`` and the callbacks that drive it.

    ``logits=True``: the loss reads logits, so `compare` removes the softmax of the model's
    output layer for this run (and applies it when scoring).

    ``population``: the arguments of `keras_adaptive_loss.selection.select_loss`; `compare`
    then trains a population of children (``loss``, cross-entropy, is the control child's)
    and scores the one it chooses.

    >>> import numpy as np
    >>> context = LossContext(
    ...     num_classes=3, seed=0, steps_per_epoch=10, epochs=5,
    ...     validation_data=(np.zeros((4, 2), "float32"), np.zeros(4, "int64")),
    ... )
    >>> setup = LOSSES["stochastic"](context)
    >>> type(setup.loss).__name__, [type(c).__name__ for c in setup.callbacks], setup.logits
    ('StochasticLoss', ['LossDiagnostics', 'ValidationSelection'], False)
    """

    loss: keras.losses.Loss
    callbacks: list[keras.callbacks.Callback] = field(default_factory=list)
    logits: bool = False
    population: dict[str, Any] | None = None


def _crossentropy(context: LossContext) -> LossSetup:
    return LossSetup(keras.losses.SparseCategoricalCrossentropy())


def _candidate(name: str) -> Callable[[LossContext], LossSetup]:
    return lambda context: LossSetup(CandidateLoss(name))


def _focus_protocol(protocol: str) -> Callable[[LossContext], LossSetup]:
    return lambda context: LossSetup(
        CrossentropyExpectationMix(), [kal_callbacks.FocusSchedule(protocol)]
    )


def _stochastic(context: LossContext) -> LossSetup:
    # The recommended setup: the selection steered by held-out data (see ValidationSelection;
    # chosen by the paired study in StochasticLoss's docstring).
    loss = StochasticLoss(list(SLF_CANDIDATES), seed=context.seed)
    steer = kal_callbacks.ValidationSelection(context.validation_data, seed=context.seed)
    return LossSetup(loss, [kal_callbacks.LossDiagnostics(), steer])


def _stochastic_no_validation(context: LossContext) -> LossSetup:
    loss = StochasticLoss(list(SLF_CANDIDATES), seed=context.seed)
    return LossSetup(loss, [kal_callbacks.LossDiagnostics()])


def _stochastic_paper(context: LossContext) -> LossSetup:
    loss = StochasticLoss.paper(seed=context.seed)
    return LossSetup(loss, [kal_callbacks.LossDiagnostics()])


def _uniloss_accuracy(context: LossContext) -> LossSetup:
    return LossSetup(UniLossAccuracy(seed=context.seed))


def _uniloss_ap(context: LossContext) -> LossSetup:
    if context.num_classes != 2:
        raise ValueError(
            "Loss 'uniloss_ap' trains the average precision of a binary task, but the dataset "
            f"has {context.num_classes} classes: pick a class to rank against the rest with "
            "positive_class=k (CLI: --positive-class k)."
        )
    return LossSetup(UniLossAveragePrecision(seed=context.seed))


def _counts(context: LossContext, preset: str) -> tuple[int, ...]:
    if context.class_counts is None:
        raise ValueError(f"Loss {preset!r} needs the training class counts (LossContext).")
    return tuple(max(1, int(count)) for count in context.class_counts)


def _ldam_drw(context: LossContext) -> LossSetup:
    # The paper's schedule: re-weighting switched on at 80 % of training (epoch 160 of 200).
    loss = LDAMLoss(_counts(context, "ldam_drw"))
    start = int(0.8 * context.epochs)
    return LossSetup(loss, [kal_callbacks.DeferredReweighting(start_epoch=start)])


def _class_balanced(context: LossContext) -> LossSetup:
    return LossSetup(ClassBalancedLoss(_counts(context, "class_balanced"), base="focal"))


def _anyloss(metric: str) -> Callable[[LossContext], LossSetup]:
    return lambda context: LossSetup(AnyLoss(metric))


def _binary_only(context: LossContext, preset: str) -> None:
    if context.num_classes != 2:
        raise ValueError(
            f"Loss {preset!r} is for binary tasks; this one has {context.num_classes} classes. "
            "Make it binary with positive_class=k (CLI: --positive-class k), or use "
            "'anyloss_f1' (macro-averaged over classes)."
        )


def _ensloss(context: LossContext) -> LossSetup:
    _binary_only(context, "ensloss")
    return LossSetup(EnsLoss(seed=context.seed))


def _ensloss_paper(context: LossContext) -> LossSetup:
    _binary_only(context, "ensloss_paper")
    return LossSetup(EnsLoss.paper(seed=context.seed))


def _ala(context: LossContext) -> LossSetup:
    # The callback's default K = 200 steps, shortened so that a run makes at least 10
    # decisions (and at least 4 steps, for the 4 measurements per period). The loss and the
    # callback use their defaults: CE at Φ = I, safe steps (see AdaptiveLossAlignment).
    period = min(200, max(4, context.steps_per_epoch * context.epochs // 10))
    controller = kal_callbacks.AdaptiveLossAlignment(
        context.validation_data, period=period, seed=context.seed
    )
    return LossSetup(ClassCorrelationLoss(context.num_classes), [controller])


def _population(method: str) -> Callable[[LossContext], LossSetup]:
    # The search's defaults (`select_loss`): the default search space, decisions every 2
    # epochs from half of the run, half the validation data held out for the final choice.
    def build(context: LossContext) -> LossSetup:
        return LossSetup(keras.losses.CategoricalCrossentropy(), population={"method": method})

    return build


_BUILDERS: dict[str, Callable[[LossContext], LossSetup]] = {
    "crossentropy": _crossentropy,
    "focal": _candidate("focal"),
    "poly1": _candidate("poly1"),
    "poly": lambda context: LossSetup(PolyLoss()),
    "ce_el_0": _focus_protocol("0"),
    "ce_el_0+0.5": _focus_protocol("0,0.5"),
    "ce_el_0-0.5": _focus_protocol("0-0.5"),
    "ce_el_0-0.4": _focus_protocol("0-0.4"),
    "stochastic": _stochastic,
    "stochastic_no_validation": _stochastic_no_validation,
    "stochastic_paper": _stochastic_paper,
    "uniloss_accuracy": _uniloss_accuracy,
    "uniloss_ap": _uniloss_ap,
    "ala": _ala,
    "nce_rce": lambda context: LossSetup(ActivePassiveLoss.paper("rce")),
    "nce_mae": lambda context: LossSetup(ActivePassiveLoss.paper("mae")),
    "ce_rce": lambda context: LossSetup(ActivePassiveLoss()),
    "normalized_focal": lambda context: LossSetup(NormalizedFocalLoss()),
    "rce": lambda context: LossSetup(ReverseCrossentropy()),
    "gce": _candidate("gce"),
    "squentropy": lambda context: LossSetup(Squentropy(), logits=True),
    "sparsemax": lambda context: LossSetup(SparsemaxLoss(), logits=True),
    "ldam_drw": _ldam_drw,
    "class_balanced": _class_balanced,
    "anyloss_f1": _anyloss("f1"),
    "anyloss_accuracy": _anyloss("accuracy"),
    "anyloss_balanced_accuracy": _anyloss("balanced_accuracy"),
    "anyloss_gmean": _anyloss("gmean"),
    "ensloss": _ensloss,
    "ensloss_paper": _ensloss_paper,
    "population": _population("pbt"),
    "population_halving": _population("halving"),
}


#: Loss preset name -> what it builds, in the order of `keras_adaptive_loss.names.PRESETS`
#: (older hyphenated spellings are accepted with a warning, see `canonical_name`).
LOSSES: dict[str, Callable[[LossContext], LossSetup]] = {
    name: _BUILDERS[name] for name in names.PRESETS
}
if set(_BUILDERS) != set(names.PRESETS):
    raise ImportError(f"Presets without a name or a builder: {set(_BUILDERS) ^ set(names.PRESETS)}")


def build_loss(name: str, context: LossContext) -> LossSetup:
    """The loss and callbacks of preset ``name`` (one of `LOSSES`; see `canonical_name`).

    >>> import numpy as np
    >>> context = LossContext(
    ...     num_classes=3, seed=0, steps_per_epoch=10, epochs=5,
    ...     validation_data=(np.zeros((4, 2), "float32"), np.zeros(4, "int64")),
    ... )
    >>> setup = build_loss("ce_el_0-0.5", context)
    >>> type(setup.loss).__name__, [type(c).__name__ for c in setup.callbacks]
    ('CrossentropyExpectationMix', ['FocusSchedule'])
    """
    return LOSSES[canonical_name(name)](context)


def describe(setup: LossSetup) -> dict[str, Any]:
    """A JSON-able description of a setup: the loss config, the callbacks' names and the
    population's arguments (a loss family by its name, starts and bounds; a factory or other
    object by its name).

    >>> import json
    >>> from keras_adaptive_loss.selection import default_search_space
    >>> space = default_search_space(3)[:2]
    >>> setup = LossSetup(keras.losses.CategoricalCrossentropy(),
    ...                   population={"search_space": space, "optimizer": keras.optimizers.SGD})
    >>> population = json.loads(json.dumps(describe(setup)))["population"]
    >>> population["search_space"][1]["family"], population["optimizer"]
    ('label_smoothing', 'SGD')
    """
    described = {
        "loss": keras.saving.serialize_keras_object(setup.loss),
        "callbacks": [type(callback).__name__ for callback in setup.callbacks],
    }
    if setup.population is not None:
        described["population"] = _jsonable(dict(setup.population))
    return described


def _jsonable(value: Any) -> Any:
    """``value`` with every part JSON can hold kept and every other part named."""
    from keras_adaptive_loss.selection.search_space import LossFamily

    if isinstance(value, LossFamily):
        bounds = {name: list(bound) for name, bound in value.bounds.items()}
        return {"family": value.name, "starts": [dict(s) for s in value.starts], "bounds": bounds}
    if isinstance(value, dict):
        return {str(key): _jsonable(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(item) for item in value]
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, np.generic):
        return value.item()
    return getattr(value, "__qualname__", type(value).__name__)
