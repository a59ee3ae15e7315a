"""The stochastic loss function (SLF): `StochasticLoss`, its `DecisionNetwork`, the Gumbel
sampling, and the callbacks that steer it (`ValidationSelection`, `TemperatureSchedule`).

Reference: Liu & Lai, "Stochastic Loss Function", AAAI 2020.
"""

from keras_adaptive_loss.slf.decision import DecisionNetwork
from keras_adaptive_loss.slf.stochastic import StochasticLoss
from keras_adaptive_loss.slf.temperature_schedule import TemperatureSchedule
from keras_adaptive_loss.slf.validation_selection import ValidationSelection

__all__ = ["DecisionNetwork", "StochasticLoss", "TemperatureSchedule", "ValidationSelection"]
