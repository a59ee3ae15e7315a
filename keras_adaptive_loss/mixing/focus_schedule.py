"""`FocusSchedule`: the F-phase training protocols of the CE + expectation-loss paper."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from keras_adaptive_loss.callbacks.parameter_schedule import ParameterSchedule
from keras_adaptive_loss.callbacks.reported_values import Source
from keras_adaptive_loss.mixing.loss import CrossentropyExpectationMix
from keras_adaptive_loss.schedules import PiecewiseConstant, focus_phases, phase_starts

__all__ = ["FocusSchedule"]


class FocusSchedule(ParameterSchedule):
    """Moves the focus F of a `CrossentropyExpectationMix` through phases during `fit`.

    Implements the scheduling protocols of "Mixing between the Cross Entropy and the
    Expectation Loss Terms" (Sec. "Scheduling"): training is split into phases, each with a
    focus F, and at the start of each phase ``alpha, beta`` are set by Eq. 14 (``alpha = 1,
    beta = 1/(1 - 2F)``; ``alpha = 0, beta = 1`` at F = 0.5).

    Phases are placed on the whole run, whose length comes from `fit`'s parameters: ``epochs``
    (``unit="epoch"``) or ``epochs * steps_per_epoch`` optimizer steps (``unit="step"``). Phase
    ``i`` starts at ``floor(total * (fraction of training before it))``, so the last phase always
    gets at least one epoch (or step). Positions are absolute, so a run resumed with
    ``initial_epoch`` or `keras.callbacks.BackupAndRestore` continues in the right phase.

    The callback reports ``focus``, ``alpha`` and ``beta`` in the logs (History, CSVLogger,
    TensorBoard, in any callback order; see `ParameterSchedule`).

    **Monitoring.** The loss value changes scale when a phase changes (at F = 0.5 it is the
    expectation loss ``1 - p_y``, no longer a cross-entropy: a drop from about 1.0 to 0.14 is
    the switch, not progress), so ``val_loss`` is not comparable across phases. Point
    `keras.callbacks.EarlyStopping`, ``ReduceLROnPlateau`` and ``ModelCheckpoint`` at a
    quantity that keeps its meaning: ``val_accuracy``, or a fixed cross-entropy added as a
    metric, ``metrics=[keras.metrics.SparseCategoricalCrossentropy(name="crossentropy")]``,
    then ``monitor="val_crossentropy"``.

    **The default protocol, ``"0-0.4"``** (six equal phases F = 0, 0.08, ..., 0.4): the
    paper's gradual ``"0-0.5"`` without its last step to the pure expectation loss, so the
    cross-entropy term keeps weight 1 beside an expectation loss weighted up to 5. Chosen on
    the generalization suite (29 tasks, 5 paired seeds, Adam and SGD, 2026-12-07): ``"0-0.4"``
    was above cross-entropy beyond noise on 14 tasks and below on 1 (iris, -2.63: one of its
    38 test samples on average, where cross-entropy is still learning at 80 % after 120
    steps), mean +1.0 points, where ``"0-0.5"`` was above on 13 and below on 2 by about 7
    points (-6.76 and -6.92, both with a 1-D CNN still learning at the end of its run: in the
    last phase, on the pure expectation loss, training accuracy fell by 1 to 2 points while
    cross-entropy's, and ``"0-0.4"``'s, kept rising), mean +0.7. ``"0-0.5"`` gains more where
    cross-entropy memorises noisy labels (20 % noise on Gaussian quantiles: +8.5 against
    +5.3; 30 % pair noise: +6.3 against +4.7).

    Args:
        phases: ``"0"``, ``"0,0.5"`` or ``"0-0.5"`` (the paper's protocols), ``"0-0.4"``
            (the default), a list of increasing F values (equal phases), or ``(F, fraction)``
            pairs; see `keras_adaptive_loss.schedules.focus_phases`.
        unit: ``"epoch"`` or ``"step"``.
        loss_name: name of the loss to drive when several `CrossentropyExpectationMix` losses
            are compiled.
        verbose: 1 prints each phase change.

    Example:

    >>> import keras_adaptive_loss as kal
    >>> kal.callbacks.FocusSchedule("0-0.5").phases[:2]
    ((0.0, 0.16666666666666666), (0.1, 0.16666666666666666))

    ```python
    model.compile(
        optimizer="adam",
        loss=kal.losses.CrossentropyExpectationMix(),
        metrics=["accuracy", keras.metrics.SparseCategoricalCrossentropy(name="crossentropy")],
    )
    stop = keras.callbacks.EarlyStopping(monitor="val_crossentropy", patience=5)
    model.fit(x, y, epochs=30, validation_split=0.2,
              callbacks=[kal.callbacks.FocusSchedule("0-0.5"), stop])
    ```

    References:
        Battash, Hazan & Wolf, "Mixing between the Cross Entropy and the Expectation Loss
        Terms" (the F protocols of its experiments).
    """

    def __init__(
        self,
        phases: str | Sequence[Any] = "0-0.4",
        unit: str = "epoch",
        loss_name: str | None = None,
        verbose: int = 0,
    ) -> None:
        super().__init__("focus", self._focus_at, unit=unit, loss_name=loss_name, verbose=verbose)
        self.phases = focus_phases(phases)
        self._piecewise: PiecewiseConstant | None = None

    def _matches(self, loss: Any) -> bool:
        return isinstance(loss, CrossentropyExpectationMix)

    def _example(self) -> str:
        return "kal.losses.CrossentropyExpectationMix()"

    def _wanted(self) -> str:
        return "a kal.losses.CrossentropyExpectationMix"

    def _apply(self, value: float) -> None:
        self._loss.set_focus(value)
        self._set_owned("focus", value)

    def _reported(self) -> dict[str, Source]:
        focus = self._owned_variable("focus", self._loss.focus)
        alpha, beta = self._loss.variable("alpha"), self._loss.variable("beta")
        return {"focus": lambda: focus, "alpha": lambda: alpha, "beta": lambda: beta}

    def _logged_values(self) -> dict[str, float]:
        return {"focus": self._current, "alpha": self._loss.alpha, "beta": self._loss.beta}

    def _focus_at(self, position: int) -> float:
        return self._piecewise(position)

    def on_train_begin(self, logs: dict | None = None) -> None:
        super().on_train_begin(logs)
        total = self._total_positions()
        starts = phase_starts([fraction for _, fraction in self.phases], total)
        self._piecewise = PiecewiseConstant(starts[1:], [focus for focus, _ in self.phases])

    def _total_positions(self) -> int:
        epochs = self.params.get("epochs")
        if not epochs:
            raise ValueError("FocusSchedule needs fit(epochs=...) to place its phases.")
        if self.unit == "epoch":
            return int(epochs)
        steps = self.params.get("steps")
        if not steps:
            raise ValueError(
                "FocusSchedule(unit='step') needs the number of steps per epoch, which fit() "
                "does not know for this dataset. Pass steps_per_epoch=... to fit(), or use "
                "unit='epoch'."
            )
        return int(epochs) * int(steps)
