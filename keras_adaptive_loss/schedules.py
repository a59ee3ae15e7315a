"""Serializable schedules that Keras lacks, and the F-phase protocols of the mixing paper.

A schedule maps a position (an epoch index or an optimizer step) to a value. Schedules follow
the `keras.optimizers.schedules.LearningRateSchedule` protocol (``__call__(step)`` and
``get_config``), so Keras's own schedules (``CosineDecay``, ``ExponentialDecay``, ...) can drive
a loss parameter too, and ours can drive a learning rate.
"""

from __future__ import annotations

import bisect
import itertools
import math
from collections.abc import Sequence
from typing import Any

import keras
import numpy as np
from keras import ops

__all__ = ["FOCUS_PROTOCOLS", "PiecewiseConstant", "focus_phases", "phase_starts"]

# The three protocols of the mixing paper (Sec. "Scheduling"), and "0-0.4", the gradual
# protocol stopped before the pure expectation loss (`FocusSchedule`'s default), as
# (F, fraction of training).
FOCUS_PROTOCOLS: dict[str, tuple[tuple[float, float], ...]] = {
    "0": ((0.0, 1.0),),
    "0,0.5": ((0.0, 0.95), (0.5, 0.05)),
    "0-0.5": tuple((focus, 1.0 / 6.0) for focus in (0.0, 0.1, 0.2, 0.3, 0.4, 0.5)),
    "0-0.4": tuple((focus, 1.0 / 6.0) for focus in (0.0, 0.08, 0.16, 0.24, 0.32, 0.4)),
}

_FRACTION_TOLERANCE = 1e-6


@keras.saving.register_keras_serializable(package="keras_adaptive_loss")
class PiecewiseConstant(keras.optimizers.schedules.LearningRateSchedule):
    """A value that is constant between boundaries: ``values[i]`` from ``boundaries[i-1]`` on.

    Position ``x`` gets ``values[i]`` where ``i`` is the number of boundaries ``<= x``, so each
    boundary is the first position of the next phase (Keras's ``PiecewiseConstantDecay`` starts
    the next phase one step later). Equal boundaries give empty phases: the later value wins.

    Args:
        boundaries: non-decreasing positions at which a new phase starts.
        values: one more value than boundaries.
        name: optional name.

    >>> schedule = PiecewiseConstant(boundaries=[2, 4], values=[0.0, 0.1, 0.2])
    >>> [float(schedule(step)) for step in range(6)]
    [0.0, 0.0, 0.1, 0.1, 0.2, 0.2]
    """

    def __init__(
        self, boundaries: Sequence[float], values: Sequence[float], name: str | None = None
    ) -> None:
        super().__init__()
        self.boundaries = [float(b) for b in boundaries]
        self.values = [float(v) for v in values]
        self.name = name
        if len(self.values) != len(self.boundaries) + 1:
            raise ValueError(
                "PiecewiseConstant needs exactly one more value than boundaries; got "
                f"{len(self.boundaries)} boundaries and {len(self.values)} values."
            )
        if any(b > c for b, c in itertools.pairwise(self.boundaries)):
            raise ValueError(
                f"PiecewiseConstant boundaries must not decrease; got {self.boundaries}."
            )

    def __call__(self, step: Any) -> Any:
        if isinstance(step, (int, float)):  # a callback's position: no tensor ops needed
            return self.values[bisect.bisect_right(self.boundaries, step)]
        if not self.boundaries:
            return ops.convert_to_tensor(self.values[0], dtype="float32")
        step = ops.cast(step, "float32")
        boundaries = ops.convert_to_tensor(self.boundaries, dtype="float32")
        index = ops.sum(ops.cast(ops.greater_equal(step, boundaries), "int32"))
        return ops.take(ops.convert_to_tensor(self.values, dtype="float32"), index)

    def get_config(self) -> dict[str, Any]:
        return {"boundaries": self.boundaries, "values": self.values, "name": self.name}


def focus_phases(spec: str | Sequence[Any]) -> tuple[tuple[float, float], ...]:
    """Parses an F-phase protocol into ``((F, fraction), ...)``.

    Args:
        spec: one of the paper's protocol names, ``"0"`` (F = 0 throughout), ``"0,0.5"``
            (F = 0 for the first 95 % of training, F = 0.5 for the last 5 %) or ``"0-0.5"``
            (six equal phases F = 0, 0.1, ..., 0.5); ``"0-0.4"`` (six equal phases F = 0,
            0.08, ..., 0.4: the cross-entropy term keeps weight 1 to the end, beside an
            expectation loss weighted up to 5); or a list of F values (equal phases — note
            that the list ``[0, 0.5]`` means two halves, unlike the protocol ``"0,0.5"``); or a
            list of ``(F, fraction)`` pairs whose fractions sum to 1.

    Returns:
        The phases in order, each ``(F, fraction of training)``.

    Raises:
        ValueError: for an unknown name, F outside [0, 0.5], F values that do not increase from
            phase to phase, or fractions that are not positive or do not sum to 1.

    >>> focus_phases("0,0.5")
    ((0.0, 0.95), (0.5, 0.05))
    >>> focus_phases([0.0, 0.25, 0.5])[1]
    (0.25, 0.3333333333333333)
    """
    if isinstance(spec, str):
        key = spec.replace(" ", "")
        if key not in FOCUS_PROTOCOLS:
            raise ValueError(
                f"Unknown focus protocol {spec!r}. Use one of {sorted(FOCUS_PROTOCOLS)}, a list "
                "of F values (equal phases) such as [0, 0.25, 0.5], or (F, fraction) pairs such "
                "as [(0, 0.8), (0.5, 0.2)]."
            )
        return FOCUS_PROTOCOLS[key]
    try:
        array = np.asarray(spec, dtype="float64")
    except (TypeError, ValueError) as error:
        raise ValueError(
            f"focus phases must be all F values or all (F, fraction) pairs; got {spec!r}."
        ) from error
    if array.size == 0:
        raise ValueError("focus phases must not be empty; pass e.g. '0-0.5' or [0, 0.25, 0.5].")
    if array.ndim == 1:
        phases = tuple((float(focus), 1.0 / len(array)) for focus in array)
    elif array.ndim == 2 and array.shape[1] == 2:
        phases = tuple((float(focus), float(fraction)) for focus, fraction in array)
    else:
        raise ValueError(
            f"focus phases must be all F values or all (F, fraction) pairs; got {spec!r}."
        )
    _validate_phases(phases)
    return phases


def _validate_phases(phases: tuple[tuple[float, float], ...]) -> None:
    focuses = [focus for focus, _ in phases]
    fractions = [fraction for _, fraction in phases]
    if not all(math.isfinite(f) and 0.0 <= f <= 0.5 for f in focuses):
        raise ValueError(f"Every focus F must lie in [0, 0.5]; got {focuses}.")
    if any(b <= a for a, b in itertools.pairwise(focuses)):
        raise ValueError(
            f"Focus values must increase from phase to phase; got {focuses}. To move F freely, "
            "drive 'alpha' and 'beta' with kal.callbacks.ParameterSchedule."
        )
    if not all(math.isfinite(f) and f > 0.0 for f in fractions):
        raise ValueError(f"Every phase fraction must be positive; got {fractions}.")
    if abs(sum(fractions) - 1.0) > _FRACTION_TOLERANCE:
        raise ValueError(f"Phase fractions must sum to 1; got {fractions} (sum {sum(fractions)}).")


def phase_starts(fractions: Sequence[float], total: int) -> list[int]:
    """First position of each phase when ``total`` positions are split by ``fractions``.

    Phase ``i`` starts at ``floor(total * sum(fractions[:i]))``, so the last phase always gets
    at least one position; with fewer positions than phases, later phases win ties.

    >>> phase_starts([0.95, 0.05], 20)
    [0, 19]
    >>> phase_starts([0.95, 0.05], 5)
    [0, 4]
    """
    starts, cumulative = [], 0.0
    for fraction in fractions:
        starts.append(math.floor(total * cumulative + 1e-9))
        cumulative += fraction
    return starts
