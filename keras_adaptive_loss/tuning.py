"""KerasTuner helpers: search spaces for the adaptive losses' hyper-parameters.

KerasTuner is an optional dependency (``pip install keras-adaptive-loss[tuner]``); these
helpers only call methods on the ``hp`` object they are given, so importing this module does
not import KerasTuner.

Example, a `keras_tuner.HyperModel` that tunes K and tau of a `StochasticLoss`:

```python
class SLFHyperModel(keras_tuner.HyperModel):
    def build(self, hp):
        model = build_my_model()
        loss = kal.tuning.stochastic_loss(hp, ["crossentropy", "mse", "hinge"])
        model.compile(optimizer="adam", loss=loss, metrics=["accuracy"])
        return model

tuner = keras_tuner.RandomSearch(SLFHyperModel(), objective="val_accuracy", max_trials=10)
tuner.search(x, y, validation_split=0.2, epochs=20)
```
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from keras_adaptive_loss.losses.stochastic import StochasticLoss

__all__ = ["stochastic_loss"]


def stochastic_loss(
    hp: Any,
    candidates: Sequence[Any],
    *,
    num_samples: tuple[int, int] = (1, 5),
    temperature: tuple[float, float] = (0.1, 10.0),
    **kwargs: Any,
) -> StochasticLoss:
    """A `StochasticLoss` whose K and tau are KerasTuner hyper-parameters.

    Registers ``hp.Int("num_samples", *num_samples)`` and
    ``hp.Float("temperature", *temperature, sampling="log")`` and builds the loss with the
    values of the current trial.

    Args:
        hp: the ``keras_tuner.HyperParameters`` of the trial.
        candidates: the candidate losses, as for `StochasticLoss`.
        num_samples: inclusive range of K.
        temperature: range of tau, searched on a log scale.
        **kwargs: further `StochasticLoss` arguments (fixed for every trial).
    """
    low_k, high_k = num_samples
    if not 1 <= low_k <= high_k:
        raise ValueError(
            f"num_samples must be a range (low, high) with 1 <= low <= high; got {num_samples}."
        )
    low_t, high_t = temperature
    if not 0 < low_t < high_t:
        raise ValueError(
            f"temperature must be a range (low, high) with 0 < low < high; got {temperature}."
        )
    k = hp.Int("num_samples", min_value=int(low_k), max_value=int(high_k))
    tau = hp.Float("temperature", min_value=float(low_t), max_value=float(high_t), sampling="log")
    return StochasticLoss(candidates, num_samples=k, temperature=tau, **kwargs)
