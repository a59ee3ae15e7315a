"""Paired differences to a reference loss: the statistic `compare` reports for each loss.

Every seed of a comparison starts all losses from the same initial weights and feeds them the
same data, so the per-seed difference ``metric(loss) - metric(reference)`` removes the seed's
own luck (initialisation, data order, label noise) and resolves far smaller effects than
"mean ± std" per loss. `paired_difference` summarises those differences: their mean, a 95 %
Student-t interval over seeds (``mean ± t_(0.975, n-1) * sd / sqrt(n)``), and the wins, ties
and losses against the reference.

>>> stats = paired_difference([0.91, 0.93, 0.92, 0.95, 0.94], [0.90, 0.92, 0.92, 0.93, 0.91])
>>> round(stats.mean, 4), round(stats.low, 4), round(stats.high, 4), stats.excludes_zero
(0.014, -0.0002, 0.0282, False)
>>> stats.wins, stats.ties, stats.losses
(4, 1, 0)
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np

__all__ = ["MIN_SEEDS", "PairedDifference", "paired_difference", "t_quantile"]

#: Differences smaller than this count as ties (metrics are fractions such as accuracy).
TIE_TOLERANCE = 1e-9
#: The fewest seeds for which an interval is given. Two seeds leave one degree of freedom: two
#: equal differences give a zero-width interval (t times a zero spread) that looks certain
#: while one more seed could land anywhere, so with fewer seeds the interval is NaN and no
#: difference counts as resolved. Five or more are recommended.
MIN_SEEDS = 3


def t_quantile(probability: float, degrees_of_freedom: int) -> float:
    """The ``probability`` quantile of Student's t distribution with ``degrees_of_freedom``.

    SciPy's ``scipy.stats.t.ppf`` (imported on first use: ``compare`` calls it once per table).

    >>> round(t_quantile(0.975, 4), 6)
    2.776445
    """
    if degrees_of_freedom < 1:
        raise ValueError(f"degrees_of_freedom must be >= 1; got {degrees_of_freedom!r}.")
    if not 0.0 < probability < 1.0:
        raise ValueError(f"probability must be in (0, 1); got {probability!r}.")
    from scipy import stats

    return float(stats.t.ppf(probability, degrees_of_freedom))


@dataclass(frozen=True)
class PairedDifference:
    """Summary of the per-seed differences ``loss - reference`` of one metric.

    Attributes:
        n: number of seeds both runs have.
        mean: mean difference.
        low: the lower end of the 95 % Student-t interval of the mean (NaN with fewer than
            2 seeds).
        high: its upper end.
        wins: seeds where the loss is above the reference.
        ties: seeds where it equals the reference.
        losses: seeds where it is below the reference.
        excludes_zero: the interval lies entirely above or below 0.
        exact: every seed has the same difference (the interval has zero width: it says the
            difference is the same on every seed, not that it is known to infinite precision).

    >>> PairedDifference(n=5, mean=0.4, low=0.1, high=0.7, wins=4, ties=1, losses=0).excludes_zero
    True
    """

    n: int
    mean: float
    low: float
    high: float
    wins: int
    ties: int
    losses: int
    exact: bool = False

    @property
    def excludes_zero(self) -> bool:
        return bool(self.low > 0 or self.high < 0)

    def as_dict(self) -> dict[str, float | int | bool]:
        return {**asdict(self), "excludes_zero": self.excludes_zero}


def paired_difference(
    values: Sequence[float],
    reference: Sequence[float],
    confidence: float = 0.95,
    min_seeds: int = MIN_SEEDS,
) -> PairedDifference:
    """Mean of ``values - reference`` (paired by position) with a Student-t interval.

    With fewer than ``min_seeds`` seeds the interval is NaN (not given) and the difference is
    never counted as resolved, whatever the values.

    Args:
        values: the loss's metric, one number per seed.
        reference: the reference's metric, one number per seed, in the same seed order.
        confidence: coverage of the two-sided interval.
        min_seeds: the fewest seeds for which an interval is given (>= 2).

    >>> d = paired_difference([0.90, 0.80, 0.85], [0.80, 0.80, 0.80])  # differences 0.1, 0, 0.05
    >>> round(d.mean, 4), round(d.low, 4), round(d.high, 4)  # 0.05 -/+ t(0.975, 2) 0.05 / sqrt 3
    (0.05, -0.0742, 0.1742)
    >>> d.wins, d.ties, d.losses, d.excludes_zero
    (2, 1, 0, False)
    >>> two = paired_difference([0.9, 0.8], [0.8, 0.7])  # the same +0.1 on both seeds
    >>> round(two.mean, 4), two.low, two.excludes_zero, two.exact
    (0.1, nan, False, True)
    """
    values, reference = np.asarray(values, "float64"), np.asarray(reference, "float64")
    if values.shape != reference.shape or values.ndim != 1 or len(values) == 0:
        raise ValueError(
            "paired_difference needs two equally long, non-empty lists of per-seed values; got "
            f"shapes {values.shape} and {reference.shape}."
        )
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must lie in (0, 1); got {confidence!r}.")
    if not isinstance(min_seeds, (int, np.integer)) or min_seeds < 2:
        raise ValueError(f"min_seeds must be an integer >= 2; got {min_seeds!r}.")
    differences = values - reference
    n, mean = len(differences), float(differences.mean())
    exact = bool(n > 1 and np.ptp(differences) <= TIE_TOLERANCE)
    if n >= min_seeds:
        half = t_quantile(0.5 + confidence / 2, n - 1) * differences.std(ddof=1) / math.sqrt(n)
        low, high = mean - half, mean + half
    else:
        low = high = math.nan
    return PairedDifference(
        n=n,
        mean=mean,
        low=float(low),
        high=float(high),
        wins=int(np.sum(differences > TIE_TOLERANCE)),
        ties=int(np.sum(np.abs(differences) <= TIE_TOLERANCE)),
        losses=int(np.sum(differences < -TIE_TOLERANCE)),
        exact=exact,
    )
