"""Rewards of the ALA controller (Huang et al., ICML 2019, Eqs. 3-5)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

__all__ = ["MovingAverageBaseline", "discounted_metric", "sign_reward"]


def discounted_metric(values: Sequence[float], discount: float = 0.9) -> float:
    """``M = sum_j discount^(K - j) * values[j]`` over the K values of a period (Eq. 4).

    The last value weighs most: with ``discount = 0.9`` and three values ``[a, b, c]`` the
    result is ``0.81 a + 0.9 b + c``.

    >>> round(discounted_metric([1.0, 2.0, 3.0], 0.5), 6)
    4.25
    """
    if not values:
        raise ValueError("discounted_metric needs at least one metric value.")
    if not 0.0 < discount <= 1.0:
        raise ValueError(f"discount must lie in (0, 1]; got {discount!r}.")
    k = len(values)
    return float(sum(discount ** (k - 1 - j) * float(v) for j, v in enumerate(values)))


def sign_reward(previous: float, current: float, higher_is_better: bool = False) -> float:
    """``sign(M_t - M_{t+1})`` (Eq. 5): +1 if the metric improved, -1 if it got worse, else 0.

    The paper's metrics are errors (lower is better); pass ``higher_is_better=True`` for
    metrics such as AUC-PR. Non-finite values raise `ValueError` (never a NaN reward).
    """
    if not (math.isfinite(previous) and math.isfinite(current)):
        raise ValueError(f"sign_reward needs finite metrics; got {previous!r} and {current!r}.")
    change = float(previous) - float(current)
    if higher_is_better:
        change = -change
    return float(change > 0) - float(change < 0)


class MovingAverageBaseline:
    """Exponential moving average of the rewards, the variance-reducing baseline of Eq. 3.

    Args:
        momentum: weight of the previous average.
    """

    def __init__(self, momentum: float = 0.9, value: float = 0.0) -> None:
        if not 0.0 <= momentum < 1.0:
            raise ValueError(f"momentum must lie in [0, 1); got {momentum!r}.")
        self.momentum = float(momentum)
        self.value = float(value)

    def advantage(self, reward: float) -> float:
        """``reward - baseline``, then folds the reward into the baseline."""
        advantage = float(reward) - self.value
        self.value = self.momentum * self.value + (1.0 - self.momentum) * float(reward)
        return advantage

    def get_state(self) -> dict[str, Any]:
        return {"momentum": self.momentum, "value": self.value}

    def set_state(self, state: dict[str, Any]) -> None:
        self.momentum = float(state["momentum"])
        self.value = float(state["value"])
