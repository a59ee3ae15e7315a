"""Rewards of the ALA controller (Huang et al., ICML 2019, Eqs. 3-5)."""

from __future__ import annotations

import math
from collections.abc import Sequence

__all__ = ["discounted_metric", "sign_reward"]


def discounted_metric(
    values: Sequence[float], discount: float = 0.9, normalize: bool = False
) -> float:
    """``M = sum_j discount^(K - j) * values[j]`` over the K values of a period (Eq. 4).

    The last value weighs most: with ``discount = 0.9`` and three values ``[a, b, c]`` the
    result is ``0.81 a + 0.9 b + c``. ``normalize=True`` divides by the sum of the weights,
    giving a weighted mean: then periods with different numbers of measurements compare
    fairly. Without it, the first reward of a run compared a one-measurement sum with later
    four-term sums and was always -1 for an error metric; the callback normalises.

    >>> round(discounted_metric([1.0, 2.0, 3.0], 0.5), 6)
    4.25
    >>> round(discounted_metric([1.0, 2.0, 3.0], 0.5, normalize=True), 6)  # 4.25 / 1.75
    2.428571
    """
    if not values:
        raise ValueError("discounted_metric needs at least one metric value.")
    if not 0.0 < discount <= 1.0:
        raise ValueError(f"discount must lie in (0, 1]; got {discount!r}.")
    k = len(values)
    weights = [discount ** (k - 1 - j) for j in range(k)]
    total = float(sum(w * float(v) for w, v in zip(weights, values, strict=True)))
    return total / sum(weights) if normalize else total


def sign_reward(previous: float, current: float, higher_is_better: bool = False) -> float:
    """``sign(M_t - M_{t+1})`` (Eq. 5): +1 if the metric improved, -1 if it got worse, else 0.

    The paper's metrics are errors (lower is better); pass ``higher_is_better=True`` for
    metrics such as AUC-PR. Non-finite values raise `ValueError` (never a NaN reward).

    >>> sign_reward(0.30, 0.25), sign_reward(0.30, 0.25, higher_is_better=True), sign_reward(1, 1)
    (1.0, -1.0, 0.0)
    """
    if not (math.isfinite(previous) and math.isfinite(current)):
        raise ValueError(f"sign_reward needs finite metrics; got {previous!r} and {current!r}.")
    change = float(previous) - float(current)
    if higher_is_better:
        change = -change
    return float(change > 0) - float(change < 0)
