"""`TemperatureSchedule`: anneal the Gumbel-softmax temperature of a `StochasticLoss`."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from keras_adaptive_loss.callbacks.parameter_schedule import ParameterSchedule

__all__ = ["TemperatureSchedule"]


class TemperatureSchedule(ParameterSchedule):
    """Sets the temperature tau of the compiled `StochasticLoss` from a schedule.

    A `ParameterSchedule` for the ``"temperature"`` parameter: low tau makes the Gumbel-softmax
    samples nearly one-hot (hard selection), high tau spreads the weight over the candidates.
    tau appears in the logs as ``temperature``.

    Args:
        schedule: callable ``position -> tau``, e.g.
            ``keras.optimizers.schedules.ExponentialDecay(1.0, decay_steps=1, decay_rate=0.9)``.
        unit: ``"epoch"`` or ``"step"``.
        loss_name: name of the loss when several compiled losses have a temperature.
        verbose: 1 prints each change.

    Example:

    ```python
    model.compile(optimizer="adam", loss=kal.StochasticLoss(["crossentropy", "mse", "mae"]))
    anneal = keras.optimizers.schedules.ExponentialDecay(2.0, decay_steps=1, decay_rate=0.8)
    model.fit(x, y, epochs=10, callbacks=[kal.callbacks.TemperatureSchedule(anneal)])
    ```

    References:
        Liu & Lai, "Stochastic Loss Function", AAAI 2020; Jang, Gu & Poole,
        "Categorical Reparameterization with Gumbel-Softmax", ICLR 2017 (annealing tau).
    """

    def _example(self) -> str:
        return "kal.StochasticLoss(['crossentropy', 'mse'])"

    def __init__(
        self,
        schedule: Callable[[int], Any],
        unit: str = "epoch",
        loss_name: str | None = None,
        verbose: int = 0,
    ) -> None:
        super().__init__("temperature", schedule, unit=unit, loss_name=loss_name, verbose=verbose)
