"""What an output folder already holds: the finished runs a resumed comparison keeps, and the
interrupted runs a new comparison must not overwrite."""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field
from typing import Any

from keras_adaptive_loss.comparison.output_dir import OutputDirectory
from keras_adaptive_loss.comparison.result import RunRecord

__all__ = ["PreviousRuns", "previous_runs", "refuse_to_discard_unfinished"]

#: Keys of results.json's ``config`` that may differ between a comparison and its resumption.
_NOT_COMPARED = {"loss_setups", "total_seconds"}


@dataclass(frozen=True)
class PreviousRuns:
    """The finished runs, ``{(loss, seed): RunRecord}``, and ``loss_setups``: how each
    finished loss was built, as results.json recorded it."""

    runs: dict[tuple[str, int], RunRecord] = field(default_factory=dict)
    loss_setups: dict[str, Any] = field(default_factory=dict)


def refuse_to_discard_unfinished(folder: OutputDirectory) -> None:
    """Raises when ``folder`` holds the finished runs of an interrupted comparison: a new
    comparison would overwrite them."""
    path = folder.unfinished_file("results.json")
    if not os.path.exists(path):
        return
    try:
        with open(path) as file:
            runs = len(json.load(file)["runs"])
    except (OSError, ValueError, KeyError, TypeError):
        return  # nothing readable to keep
    if runs:
        raise ValueError(
            f"{folder.unfinished!r} holds {runs} finished run(s) of an interrupted comparison. "
            "Add --resume (resume=True) to finish it, or remove that folder to start over."
        )


def previous_runs(folder: OutputDirectory, config: dict[str, Any]) -> PreviousRuns:
    """The finished runs of an interrupted comparison in ``folder`` (its `unfinished`
    subfolder), else of its finished comparison, if that had the same ``config``."""
    path = folder.unfinished_file("results.json")
    if not os.path.exists(path):
        path = folder.file("results.json")
    if not os.path.exists(path):
        return PreviousRuns()
    try:
        with open(path) as file:
            saved = json.load(file)
        saved_config, saved_runs = saved["config"], saved["runs"]
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise ValueError(
            f"Cannot resume from {path!r}: it is not a results.json written by compare "
            f"({type(error).__name__}: {error}). Drop --resume to start over."
        ) from None
    different = sorted(
        key
        for key in set(config) | set(saved_config)
        if key not in _NOT_COMPARED and config.get(key) != saved_config.get(key)
    )
    if different:
        raise ValueError(
            f"Cannot resume the comparison in {folder.path!r}: its settings differ in "
            f"{', '.join(different)}. Use the same arguments, or drop --resume to start over."
        )
    runs = {}
    for run in saved_runs:  # JSON has no NaN: a diverged run's metrics were saved as null
        metrics = {k: math.nan if v is None else v for k, v in run["test_metrics"].items()}
        runs[(run["loss"], run["seed"])] = RunRecord(**{**run, "test_metrics": metrics})
    return PreviousRuns(runs, saved_config.get("loss_setups", {}))
