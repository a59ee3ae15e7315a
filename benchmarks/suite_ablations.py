"""Ablations on the generalization suite's tasks: why ALA and SLF lose where they lose.

Each arm is one loss setup run by `kal.compare` on a suite task (same seeds, initial weights and
data order as the suite; every arm paired with cross-entropy). The ALA arms isolate soft
targets (label smoothing, a fixed positive Φ), confusion penalties (a fixed negative Φ), the
controller with both signs, and two guards that judge its moves by validation. The SLF arms
named ``stochastic_running_mean*`` and the ones that leave a candidate out or run
cross-entropy alone keep the settings the first ablations used (``normalize="running_mean"``,
alignments over the whole model): they leave each candidate out, drop `ValidationSelection`,
run cross-entropy alone inside `StochasticLoss` with and without the normalisation, and
multiply the model's learning rate by 2 or 4 (under SGD the same as multiplying the loss's
gradient); ``stochastic_whole_model_alignments`` is the default normalisation with the
alignments over the whole model, ``stochastic`` the preset. The gradient-scale arms train
UniLoss accuracy with its gradient multiplied by 1, 4, 8 or 16, the slope arms with the
sigmoid slope of its binaries at 0.25, 0.5 or 2. The CE + EL arms stop the gradual F
protocol at 0.25 or 0.4, before the pure expectation loss (``ce_el_to0.4`` is the protocol
``0-0.4``). The population arms run
`select_loss` (the presets, cross-entropy alone as a population of one, label smoothing
chosen on validation, and the default space with ALA's Φ spreads); their figures are in
`docs/methods/loss-selection.md`, the others' in `docs/results.md` ("Why ALA and SLF lose on
Gaussian quantiles", "Why UniLoss accuracy loses under SGD", "Why SLF lost under SGD",
"Why CE + EL loses with the 1-D CNN").

    python benchmarks/suite_ablations.py --task quantiles6-mlp256 --output runs/ablations \\
        --arms crossentropy,label_smoothing,soft_phi,penalty_phi,ala_both_signs,ala
    python benchmarks/suite_ablations.py --task cls20-mlp128-sgd-clusters2 \\
        --arms uniloss_gain1,uniloss_gain16,stochastic_running_mean,stochastic_running_mean_lr4
    python benchmarks/suite_ablations.py --task digits-mlp128 --output runs/selection-digits \\
        --arms population,population_halving,smoothing_on_validation,ce_el_0-0.5
    python benchmarks/suite_ablations.py --list

No assertions: it prints the paired table.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence
from typing import Any

os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import keras
import numpy as np
from keras import ops

import keras_adaptive_loss as kal
from keras_adaptive_loss.comparison.loss_presets import (
    SLF_CANDIDATES,
    LossContext,
    LossSetup,
    build_loss,
)

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import suite  # the suite's tasks

Arm = Callable[[LossContext], LossSetup] | str


class SmoothedCrossentropy(keras.losses.Loss):
    """Cross-entropy against ``(1 - smoothing) * onehot + smoothing / C`` (sparse labels)."""

    def __init__(self, smoothing: float = 0.1, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.smoothing = smoothing

    def call(self, y_true: Any, y_pred: Any) -> Any:
        labels = ops.one_hot(ops.cast(ops.reshape(y_true, (-1,)), "int32"), y_pred.shape[-1])
        return keras.losses.categorical_crossentropy(labels, y_pred, label_smoothing=self.smoothing)


class UndoNegativeMoves(kal.callbacks.AdaptiveLossAlignment):
    """ALA whose previous move is undone when its reward is negative (then the next is made)."""

    def _decide(self, step: int, predictions: np.ndarray) -> None:
        rewarded = len(self.rewards)
        saved = getattr(self, "_before_last_move", None)
        apply = self.adapter.apply

        def undo_then_apply(deltas: np.ndarray) -> None:
            if saved is not None and len(self.rewards) > rewarded and self.rewards[-1] < 0:
                self.adapter.loss.set_parameter("phi", saved)
            self._before_last_move = self.adapter.loss.get_parameter("phi").copy()
            apply(deltas)

        self.adapter.apply = undo_then_apply
        try:
            super()._decide(step, predictions)
        finally:
            self.adapter.apply = apply


class BackToBest(kal.callbacks.AdaptiveLossAlignment):
    """ALA that returns to the Φ of its best validation period when the error rises above it."""

    def _decide(self, step: int, predictions: np.ndarray) -> None:
        error = self._metric(self.y_val, predictions)
        best = getattr(self, "_best", None)
        if best is None or error <= best[0]:
            self._best = (error, self.adapter.loss.get_parameter("phi").copy())
        else:
            self.adapter.loss.set_parameter("phi", best[1].copy())
        super()._decide(step, predictions)


def _ala(callback: type = kal.callbacks.AdaptiveLossAlignment, **kwargs: Any) -> Arm:
    def build(context: LossContext) -> LossSetup:
        period = build_loss("ala", context).callbacks[0].period  # the ala preset's
        controller = callback(context.validation_data, period=period, seed=context.seed, **kwargs)
        return LossSetup(kal.losses.ClassCorrelationLoss(context.num_classes), [controller])

    return build


def _fixed_phi(off_diagonal: float) -> Arm:
    def build(context: LossContext) -> LossSetup:
        loss = kal.losses.ClassCorrelationLoss(context.num_classes)
        phi = np.full((context.num_classes,) * 2, off_diagonal, "float32")
        np.fill_diagonal(phi, 1.0)
        loss.set_parameter("phi", phi)
        return LossSetup(loss)

    return build


class ScaleLearningRate(keras.callbacks.Callback):
    """Multiplies the model optimizer's learning rate by ``factor`` when training begins."""

    def __init__(self, factor: float) -> None:
        super().__init__()
        self.factor = factor

    def on_train_begin(self, logs: dict[str, Any] | None = None) -> None:
        rate = self.model.optimizer.learning_rate
        rate.assign(rate * self.factor)


def _with_learning_rate(arm: str | Arm, factor: float) -> Arm:
    def build(context: LossContext) -> LossSetup:
        setup = build_loss(arm, context) if isinstance(arm, str) else arm(context)
        return LossSetup(setup.loss, [*setup.callbacks, ScaleLearningRate(factor)], setup.logits)

    return build


def _uniloss(gradient_scale: float = 16.0, **kwargs: Any) -> Arm:
    def build(context: LossContext) -> LossSetup:
        loss = kal.losses.UniLossAccuracy(
            seed=context.seed, gradient_scale=gradient_scale, **kwargs
        )
        return LossSetup(loss)

    return build


#: The SLF settings the first ablations were measured with (results.md says which): the
#: equalised mixture at its own level, alignments over the whole model.
RUNNING_MEAN = {"normalize": "running_mean"}
WHOLE_MODEL = {"scope": "model"}


def _slf(
    candidates: Sequence[str],
    steer: bool = True,
    steer_kwargs: dict[str, Any] | None = None,
    **loss_kwargs: Any,
) -> Arm:
    """`StochasticLoss` over ``candidates``, steered by `ValidationSelection` (with
    ``steer_kwargs``) unless ``steer`` is false; every argument not given is the default."""

    def build(context: LossContext) -> LossSetup:
        loss = kal.StochasticLoss(list(candidates), seed=context.seed, **loss_kwargs)
        callbacks: list[keras.callbacks.Callback] = [kal.callbacks.LossDiagnostics()]
        if steer:
            callbacks.append(
                kal.callbacks.ValidationSelection(
                    context.validation_data, seed=context.seed, **(steer_kwargs or {})
                )
            )
        return LossSetup(loss, callbacks)

    return build


def _ce_el_to(final_focus: float) -> Arm:
    """CE + expectation loss on the gradual protocol's six equal phases from F = 0 to
    ``final_focus`` (``ce_el_0-0.5`` ends at 0.5, the pure expectation loss; below 0.5 the
    cross-entropy term keeps weight 1 to the end)."""

    def build(context: LossContext) -> LossSetup:
        phases = [float(f) for f in np.linspace(0.0, final_focus, 6)]
        schedule = kal.callbacks.FocusSchedule(phases)
        return LossSetup(kal.losses.CrossentropyExpectationMix(), [schedule])

    return build


def _population(
    families: Sequence[str] | None = None, decisions: bool = True, **population: Any
) -> Arm:
    """A `select_loss` population over the default space's ``families`` (all by default, the
    control first); without ``decisions`` every child trains to the end and the choice is the
    final one; ``population``: more of `select_loss`'s arguments."""

    def build(context: LossContext) -> LossSetup:
        arguments = dict(population)
        if families is not None:
            space = kal.selection.default_search_space(context.num_classes, context.class_counts)
            arguments["search_space"] = [f for f in space if f.name in families]
        if not decisions:
            arguments["first_decision"] = context.epochs
        return LossSetup(keras.losses.CategoricalCrossentropy(), population=arguments)

    return build


def _population_with_phi_spreads(context: LossContext) -> LossSetup:
    """The default population plus ALA's class-correlation children at fixed Φ spreads
    (`class_correlation_family`: off-diagonal -0.03 and +0.03)."""
    space = kal.selection.default_search_space(context.num_classes, context.class_counts)
    space.append(kal.selection.class_correlation_family(context.num_classes))
    return LossSetup(keras.losses.CategoricalCrossentropy(), population={"search_space": space})


#: `select_loss`'s final choice on a held-out half of the validation data with no margin
#: (the default is a one-point margin on the whole validation data).
HELD_OUT = {"selection_fraction": 0.5, "margin": 0.0}

ARMS: dict[str, Arm] = {
    "crossentropy": "crossentropy",
    "label_smoothing": lambda context: LossSetup(SmoothedCrossentropy(0.1)),
    "soft_phi": _fixed_phi(0.03),
    "penalty_phi": _fixed_phi(-0.03),
    "ala": "ala",
    "ala_both_signs": _ala(softening=True),
    "ala_undo_negative_moves": _ala(UndoNegativeMoves, softening=True),
    "ala_back_to_best": _ala(BackToBest, softening=True),
    # SLF as measured first (normalize="running_mean", whole-model alignments)
    "stochastic_running_mean": _slf(SLF_CANDIDATES, steer_kwargs=WHOLE_MODEL, **RUNNING_MEAN),
    "stochastic_running_mean_no_validation": _slf(SLF_CANDIDATES, steer=False, **RUNNING_MEAN),
    "stochastic_running_mean_sharpness30": _slf(
        SLF_CANDIDATES, steer_kwargs={**WHOLE_MODEL, "sharpness": 30.0}, **RUNNING_MEAN
    ),
    **{
        f"stochastic_without_{name}": _slf(
            [c for c in SLF_CANDIDATES if c != name], steer_kwargs=WHOLE_MODEL, **RUNNING_MEAN
        )
        for name in SLF_CANDIDATES[1:]
    },
    "stochastic_ce_expectation": _slf(
        ["crossentropy", "expectation"], steer_kwargs=WHOLE_MODEL, **RUNNING_MEAN
    ),
    "stochastic_ce_alone": _slf(["crossentropy"], steer=False, **RUNNING_MEAN),
    "stochastic_ce_alone_raw": _slf(["crossentropy"], steer=False, normalize="none"),
    "stochastic_raw": _slf(SLF_CANDIDATES, steer=False, normalize="none"),
    **{
        f"stochastic_running_mean_lr{factor:g}": _with_learning_rate(
            _slf(SLF_CANDIDATES, steer_kwargs=WHOLE_MODEL, **RUNNING_MEAN), factor
        )
        for factor in (2, 4)
    },
    # the default normalisation (the mixture at cross-entropy's level), alignments over the
    # whole model or (the preset) the output layer
    "stochastic_whole_model_alignments": _slf(SLF_CANDIDATES, steer_kwargs=WHOLE_MODEL),
    "stochastic": "stochastic",
    "stochastic_no_validation": "stochastic_no_validation",
    **{f"uniloss_gain{gain:g}": _uniloss(gain) for gain in (1.0, 4.0, 8.0, 16.0)},
    # the sigmoid slope of the binaries: how far from the decision boundary a sample still
    # has a gradient (a bounded loss ignores the samples it gets badly wrong)
    **{f"uniloss_slope{slope:g}": _uniloss(scale=slope) for slope in (0.25, 0.5, 2.0)},
    "ce_el_0-0.5": "ce_el_0-0.5",
    # where CE + EL loses (the cnn1d tasks): does ending in the pure expectation loss cost it?
    **{f"ce_el_to{final:g}": _ce_el_to(final) for final in (0.25, 0.4)},
    "uniloss_accuracy": "uniloss_accuracy",
    # the presets: the final choice by a one-point margin on the whole validation data
    "population": "population",
    "population_halving": "population_halving",
    # the final choice on a held-out half of the validation data, no margin
    "population_held_out": _population(**HELD_OUT),
    "population_halving_held_out": _population(method="halving", **HELD_OUT),
    "population_with_phi_spreads": _population_with_phi_spreads,
    # cross-entropy trained as a population of one: equals the crossentropy arm
    "population_control_alone": _population(["crossentropy"]),
    # label smoothing 0.05, 0.1 or 0.2 or none, chosen at the end on the held-out half
    "smoothing_on_validation": _population(
        ["crossentropy", "label_smoothing"], decisions=False, **HELD_OUT
    ),
    # decisions from epoch 2 instead of half of the run, the final choice on the held-out half
    "population_from_epoch2": _population(first_decision=2, **HELD_OUT),
    "population_halving_from_epoch2": _population(method="halving", first_decision=2, **HELD_OUT),
}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", default="quantiles6-mlp256", choices=list(suite.TASKS))
    parser.add_argument("--arms", default="crossentropy,ala_both_signs,ala")
    parser.add_argument("--output")
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--list", action="store_true", help="list the arms and exit")
    args = parser.parse_args(argv)
    if args.list:
        print("\n".join(ARMS))
        return 0
    names = [name for name in args.arms.split(",") if name]
    unknown = [name for name in names if name not in ARMS]
    if unknown:
        parser.error(f"unknown arms {unknown}; arms: {', '.join(ARMS)}")
    arms = {name: ARMS[name] for name in ["crossentropy", *names] if name in ARMS}
    resume = args.output is not None and any(
        os.path.exists(os.path.join(args.output, *parts))
        for parts in (("results.json",), ("unfinished", "results.json"))
    )
    settings = suite.TASKS[args.task].settings(
        [], args.seeds, output=args.output, resume=resume, verbose=1
    )
    kal.compare(settings, arms)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
