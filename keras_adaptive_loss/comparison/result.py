"""What a comparison found: one `RunRecord` per (loss, seed) and the `ComparisonResult` that
pairs them."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from keras_adaptive_loss.comparison import report
from keras_adaptive_loss.comparison.paired import paired_difference

__all__ = ["ComparisonResult", "RunRecord"]


@dataclass
class RunRecord:
    """One training run: a loss and a seed.

    >>> run = RunRecord("focal", 0, {"accuracy": 0.9}, [0.2, 0.4], {"loss": [1.0, 0.5]})
    >>> round(run.seconds_per_epoch, 4)
    0.3
    """

    loss: str
    seed: int
    test_metrics: dict[str, float]
    epoch_seconds: list[float]
    history: dict[str, list[float]]
    parameters: dict[str, list] = field(default_factory=dict)
    #: 1-based epoch whose weights were scored (the last one unless ``evaluation`` says best).
    selected_epoch: int | None = None
    #: The model's test predictions were not finite (NaN or inf): the run diverged, and its
    #: test metrics are NaN, not scores.
    diverged: bool = False
    #: What a population preset (``population``, ``population_halving``) chose for this seed,
    #: e.g. ``"label_smoothing(smoothing=0.1)"``; ``None`` for a single-loss run.
    chosen_loss: str | None = None

    @property
    def seconds_per_epoch(self) -> float:
        return float(np.mean(self.epoch_seconds)) if self.epoch_seconds else float("nan")


@dataclass
class ComparisonResult:
    """The runs of a comparison and its settings; `summary` aggregates them per loss.

    >>> runs = [
    ...     RunRecord(loss, seed, {"accuracy": accuracy}, [0.1], {})
    ...     for loss, seed, accuracy in [
    ...         ("crossentropy", 0, 0.90), ("crossentropy", 1, 0.92),
    ...         ("focal", 0, 0.93), ("focal", 1, 0.94),
    ...     ]
    ... ]
    >>> result = ComparisonResult({}, runs)
    >>> result.reference, result.losses
    ('crossentropy', ['crossentropy', 'focal'])
    >>> row = result.paired()[0]  # focal - crossentropy: +0.03 and +0.02
    >>> row["loss"], round(row["accuracy_mean"], 4), row["accuracy_wins"]
    ('focal', 0.025, 2)
    """

    config: dict[str, Any]
    runs: list[RunRecord]

    @property
    def losses(self) -> list[str]:
        return list(dict.fromkeys(run.loss for run in self.runs))

    @property
    def metric_names(self) -> list[str]:
        return list(self.runs[0].test_metrics) if self.runs else []

    @property
    def diverged(self) -> list[RunRecord]:
        """The runs whose test predictions were not finite."""
        return [run for run in self.runs if run.diverged]

    def summary(self) -> list[dict[str, Any]]:
        """Per loss: mean and sample std of each test metric over the seeds whose run did not
        diverge (NaN when all did), the number of diverged runs, and time per epoch."""
        rows = []
        for loss in self.losses:
            runs = [run for run in self.runs if run.loss == loss]
            scored = [run for run in runs if not run.diverged]
            row: dict[str, Any] = {"loss": loss, "seeds": len(runs)}
            for metric in self.metric_names:
                values = np.array([run.test_metrics[metric] for run in scored], "float64")
                row[f"{metric}_mean"] = float(values.mean()) if len(values) else math.nan
                row[f"{metric}_std"] = float(values.std(ddof=1)) if len(values) > 1 else 0.0
            row["diverged"] = len(runs) - len(scored)
            row["seconds_per_epoch"] = float(np.mean([run.seconds_per_epoch for run in runs]))
            rows.append(row)
        return rows

    @property
    def reference(self) -> str | None:
        """The loss the others are paired against: ``config["reference"]`` if set, else
        ``crossentropy`` when compared, else the first loss."""
        named = self.config.get("reference")
        if named is not None:
            return named
        losses = self.losses
        return "crossentropy" if "crossentropy" in losses else (losses[0] if losses else None)

    def paired_values(
        self, loss: str, reference: str
    ) -> list[tuple[dict[str, float], dict[str, float]]]:
        """``(test metrics of loss, test metrics of reference)`` for each seed both ran
        without diverging."""
        by_seed = {(run.loss, run.seed): run.test_metrics for run in self.runs if not run.diverged}
        return [
            (metrics, by_seed[(reference, seed)])
            for (name, seed), metrics in by_seed.items()
            if name == loss and (reference, seed) in by_seed
        ]

    def paired(self, reference: str | None = None) -> list[dict[str, Any]]:
        """Per loss and test metric: the mean paired difference to ``reference`` over the
        seeds both have, with a 95 % Student-t interval and wins/ties/losses (see
        `kal.comparison.paired_difference`). Metrics are fractions (0.01 = 1 point)."""
        reference = reference or self.reference
        if reference not in self.losses:
            raise ValueError(
                f"Reference loss {reference!r} is not in this comparison; its losses are "
                f"{self.losses}."
            )
        rows = []
        for loss in self.losses:
            if loss == reference:
                continue
            pairs = self.paired_values(loss, reference)
            row: dict[str, Any] = {"loss": loss, "reference": reference, "seeds": len(pairs)}
            row["diverged"] = sum(
                run.diverged for run in self.runs if run.loss in (loss, reference)
            )
            for metric in self.metric_names if pairs else ():
                stats = paired_difference(
                    [values[metric] for values, _ in pairs],
                    [reference_values[metric] for _, reference_values in pairs],
                )
                for key, value in stats.as_dict().items():
                    if key != "n":
                        row[f"{metric}_{key}"] = value
            rows.append(row)
        return rows

    def table(self) -> str:
        """The summary as a plain-text table (metrics in percent)."""
        return report.format_table(self)

    def save(self, directory: str, plots: bool = True, complete: bool = True) -> dict[str, str]:
        """Writes runs.csv, summary.csv, results.json and (``plots``) PNG figures, atomically;
        ``complete=False`` marks the comparison as unfinished in results.json."""
        return report.save(self, directory, plots=plots, complete=complete)
