"""`ParameterSchedule`: drive a parameter of an adaptive loss from a schedule."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import keras
import numpy as np

from keras_adaptive_loss.callbacks.loss_lookup import find_compiled_loss
from keras_adaptive_loss.callbacks.reported_values import ReportingCallback, Source
from keras_adaptive_loss.losses.base import AdaptiveLoss

__all__ = ["ParameterSchedule"]

_UNITS = ("epoch", "step")


class ParameterSchedule(ReportingCallback):
    """Sets a parameter of the compiled `AdaptiveLoss` from a schedule, every epoch or step.

    The schedule is called with the position, the epoch index (``unit="epoch"``, set at the
    start of each epoch) or the number of optimizer steps taken so far (``unit="step"``, set
    before each batch; with ``steps_per_execution > 1`` once per chunk). The step count is read
    from ``model.optimizer.iterations`` once per epoch and advanced in Python, so the callback
    adds no device synchronisation per step, and it defines no ``on_train_batch_end`` (which
    would switch off Keras's asynchronous batch dispatch). It can be any
    `keras.optimizers.schedules.LearningRateSchedule` (``CosineDecay``, ...), a schedule from
    `keras_adaptive_loss.schedules`, or a plain function. The value reaches every replica under
    a `tf.distribute` strategy and takes effect in eager, graph and ``jit_compile=True`` mode,
    because the loss holds it in a variable.

    The callback finds its loss through ``self.model.loss`` at ``on_train_begin`` (so a
    deep-copied callback, as KerasTuner makes, still drives the compiled loss), and reports the
    value in effect at the end of each epoch under the parameter's name as a metric of the train
    step, so History, CSVLogger, TensorBoard and the progress bar record it whatever the order of
    ``callbacks=[...]`` (the value is the float32 the loss used).

    Args:
        parameter: name of the adaptive parameter, e.g. ``"beta"``.
        schedule: callable ``position -> value``.
        unit: ``"epoch"`` or ``"step"``.
        loss_name: name of the loss to drive when several compiled losses have ``parameter``.
        verbose: 1 prints each change of value.

    Example:

    ```python
    loss = kal.losses.CrossentropyExpectationMix(alpha=1.0, beta=0.0)
    model.compile(optimizer="adam", loss=loss)
    ramp = keras.optimizers.schedules.PolynomialDecay(0.0, 20, end_learning_rate=4.0)
    model.fit(x, y, epochs=20, callbacks=[kal.callbacks.ParameterSchedule("beta", ramp)])
    ```
    """

    def __init__(
        self,
        parameter: str,
        schedule: Callable[[int], Any],
        unit: str = "epoch",
        loss_name: str | None = None,
        verbose: int = 0,
    ) -> None:
        super().__init__()
        if not isinstance(parameter, str) or not parameter:
            raise ValueError(f"parameter must be a name such as 'beta'; got {parameter!r}.")
        if not callable(schedule):
            raise ValueError(
                f"schedule must be callable (position -> value), e.g. a "
                f"keras.optimizers.schedules.LearningRateSchedule; got {schedule!r}."
            )
        _check_unit(unit)
        self.parameter = parameter
        self.schedule = schedule
        self.unit = unit
        self.loss_name = loss_name
        self.verbose = verbose
        self._loss: Any = None
        self._current: float | None = None
        self._epoch_start_step = 0

    # Hooks that subclasses override --------------------------------------------------------

    def _matches(self, loss: Any) -> bool:
        return isinstance(loss, AdaptiveLoss) and self.parameter in loss.parameter_names

    def _wanted(self) -> str:
        return f"an AdaptiveLoss with a parameter named {self.parameter!r}"

    def _example(self) -> str | None:
        """A loss this callback drives, for the error message's fix (None: no example)."""
        return None

    def _value_at(self, position: int) -> float:
        return float(np.asarray(keras.ops.convert_to_numpy(self.schedule(position))))

    def _apply(self, value: float) -> None:
        self._loss.set_parameter(self.parameter, value)

    def _logged_values(self) -> dict[str, float]:
        return {self.parameter: self._current}

    def _reported(self) -> dict[str, Source]:
        """The log keys and the variables they read (see `ReportingCallback`)."""
        variable = self._loss.variable(self.parameter)
        return {self.parameter: lambda: variable}

    # Keras callback interface --------------------------------------------------------------

    def on_train_begin(self, logs: dict | None = None) -> None:
        self._loss = find_compiled_loss(
            self.model,
            self._matches,
            caller=type(self).__name__,
            wanted=self._wanted(),
            loss_name=self.loss_name,
            example=self._example(),
        )
        self._current = None
        self._start_reporting(self._reported())

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        if self.unit == "epoch":
            self._update(epoch, f"Epoch {epoch + 1}")
        else:
            self._epoch_start_step = int(self.model.optimizer.iterations.numpy())

    def on_train_batch_begin(self, batch: int, logs: dict | None = None) -> None:
        if self.unit == "step":
            step = self._epoch_start_step + batch
            self._update(step, f"Step {step}")

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        self._fill_missing(logs)

    def _update(self, position: int, where: str) -> None:
        value = self._value_at(position)
        if value == self._current:
            return
        self._apply(value)
        self._current = value
        if self.verbose:
            changes = ", ".join(f"{k}={v:.4g}" for k, v in self._logged_values().items())
            print(f"{where}: {type(self).__name__} sets {changes}.")


def _check_unit(unit: str) -> None:
    if unit not in _UNITS:
        raise ValueError(f"unit must be one of {_UNITS}; got {unit!r}.")
