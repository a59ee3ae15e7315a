"""What `kal.compare` writes: a text table, CSV and JSON files, and PNG plots."""

from __future__ import annotations

import csv
import json
import math
import os
from typing import TYPE_CHECKING, Any

import numpy as np

from keras_adaptive_loss.comparison.output_dir import atomic_write
from keras_adaptive_loss.comparison.paired import MIN_SEEDS

if TYPE_CHECKING:
    from keras_adaptive_loss.comparison.result import ComparisonResult

__all__ = [
    "format_table",
    "plot_learning_curves",
    "plot_paired_differences",
    "plot_parameters",
    "save",
    "settings_line",
]

_METRIC_TITLES = {
    "accuracy": "test accuracy %",
    "average_precision": "test AP %",
    "f1": "test F1 %",
}


_OPTIMIZER_TITLES = {"adam": "Adam", "sgd": "SGD(momentum 0.9)"}
_METRIC_SHORT = {"accuracy": "accuracy", "average_precision": "AP", "f1": "F1"}


def _paired_cell(row: dict[str, Any], metric: str) -> str:
    """``+0.67 [+0.20, +1.14] * 4/1/0``: points, 95 % interval, marker, wins/ties/losses."""
    if f"{metric}_mean" not in row:
        return "-"
    mean, low, high = (100 * row[f"{metric}_{key}"] for key in ("mean", "low", "high"))
    if math.isnan(mean):
        return "diverged"
    if math.isnan(low):
        interval = "[n/a]"
    elif row.get(f"{metric}_exact"):
        interval = "[same each seed]"
    else:
        interval = f"[{low:+.2f}, {high:+.2f}]"
    marker = "*" if row[f"{metric}_excludes_zero"] else " "
    record = f"{row[f'{metric}_wins']}/{row[f'{metric}_ties']}/{row[f'{metric}_losses']}"
    return f"{mean:+6.2f} {interval:>16} {marker} {record:>5}"


def settings_line(config: dict[str, Any]) -> str:
    """The comparison's settings in one line: data, model, training and the regime."""
    optimizer = config.get("optimizer", "adam")
    parts = [
        f"{config['dataset']}",
        f"model {config['model']}",
        f"{config['epochs']} epochs",
        f"batch {config['batch_size']}",
        f"{_OPTIMIZER_TITLES.get(optimizer, optimizer)} {config['learning_rate']:g}",
        f"train {config['train_size']}",
    ]
    if config.get("label_noise"):
        parts.append(f"{config['noise_type']} label noise {config['label_noise']:g}")
    if config.get("imbalance"):
        parts.append(f"imbalance {config['imbalance']:g}:1")
    evaluation = config.get("evaluation", "last")
    if evaluation != "last":
        parts.append(f"evaluated at the {evaluation} validation epoch")
    parts.append(f"seeds {config['seeds']}")
    return ", ".join(parts)


def format_table(result: ComparisonResult) -> str:
    """One row per loss: each test metric as mean ± sample std in percent, its mean paired
    difference to the reference loss in points with a 95 % Student-t interval (``*`` when the
    interval excludes 0) and wins/ties/losses over seeds, and s/epoch."""
    rows = result.summary()
    reference = result.reference
    paired = {}
    if reference in result.losses and len(result.losses) > 1:
        paired = {row["loss"]: row for row in result.paired(reference)}
    width = max([len("loss"), *(len(row["loss"]) for row in rows)])
    metrics = result.metric_names
    header = f"{'loss':<{width}}"
    for metric in metrics:
        header += f"  {_METRIC_TITLES.get(metric, metric):>16}"
        header += f"  {'Δ ' + _METRIC_SHORT.get(metric, metric) + ' pts [95% CI]   W/T/L':>32}"
    header += "  s/epoch  seeds"
    lines = [header]
    for row in rows:
        line = f"{row['loss']:<{width}}"
        for metric in metrics:
            cell = f"{100 * row[f'{metric}_mean']:6.2f} ± {100 * row[f'{metric}_std']:5.2f}"
            if math.isnan(row[f"{metric}_mean"]):
                cell = "diverged"
            line += f"  {cell:>16}"
            compared = "(reference)" if row["loss"] == reference else "-"
            if row["loss"] in paired:
                compared = _paired_cell(paired[row["loss"]], metric)
            line += f"  {compared:>32}"
        line += f"  {row['seconds_per_epoch']:7.3f}  {row['seeds']:5d}"
        lines.append(line)
    footer = [
        f"Δ: mean paired difference to {reference} over seeds (same initial weights and data "
        "per seed), 95 % Student-t interval; * = interval excludes 0; W/T/L = seeds better/"
        "equal/worse."
    ]
    fewest = min((row["seeds"] for row in paired.values()), default=MIN_SEEDS)
    if fewest < MIN_SEEDS:
        footer.append(
            f"No interval ([n/a]) and no * with fewer than {MIN_SEEDS} paired seeds (here "
            f"{fewest}): too few to tell a difference from seed-to-seed noise. Use 5 or more."
        )
    for row in rows:
        if row.get("diverged"):
            footer.append(
                f"{row['loss']}: {row['diverged']} of {row['seeds']} runs diverged (test "
                "predictions not finite): left out of its means and paired differences."
            )
    return "\n".join([settings_line(result.config), *lines, *footer])


def _write_csv(path: str, rows: list[dict[str, Any]]) -> None:
    def write(temporary: str) -> None:
        with open(temporary, "w", newline="") as file:
            fields = list(dict.fromkeys(key for row in rows for key in row))
            writer = csv.DictWriter(file, fieldnames=fields, restval="")
            writer.writeheader()
            writer.writerows(rows)

    atomic_write(path, write)


def _json_safe(value: Any) -> Any:
    """NaN/inf become None: JSON has no such numbers."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {key: _json_safe(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(item) for item in value]
    return value


def save(
    result: ComparisonResult, directory: str, plots: bool = True, complete: bool = True
) -> dict[str, str]:
    """Writes the result files into ``directory``, each atomically; returns ``{kind: path}``.

    ``complete=False`` marks ``results.json`` as a comparison still running (or interrupted).
    """
    os.makedirs(directory, exist_ok=True)
    paths = {
        "runs_csv": os.path.join(directory, "runs.csv"),
        "summary_csv": os.path.join(directory, "summary.csv"),
        "json": os.path.join(directory, "results.json"),
    }
    run_rows = []
    for run in result.runs:
        row: dict[str, Any] = {"loss": run.loss, "seed": run.seed, "diverged": run.diverged}
        row.update({f"test_{name}": value for name, value in run.test_metrics.items()})
        row["seconds_per_epoch"] = run.seconds_per_epoch
        row["epochs"] = len(run.epoch_seconds)
        run_rows.append(row)
    _write_csv(paths["runs_csv"], run_rows)
    _write_csv(paths["summary_csv"], result.summary())
    comparable = len(result.losses) > 1 and result.reference in result.losses
    paired = result.paired() if comparable else []
    if paired:
        paths["paired_csv"] = os.path.join(directory, "paired.csv")
        _write_csv(paths["paired_csv"], paired)
    document = {
        "complete": bool(complete),
        "config": result.config,
        "summary": result.summary(),
        "reference": result.reference,
        "paired": paired,
        "runs": [vars(run) for run in result.runs],
    }

    def write_json(temporary: str) -> None:
        with open(temporary, "w") as file:
            json.dump(_json_safe(document), file, indent=1)

    atomic_write(paths["json"], write_json)
    if plots:
        paths["learning_curves_png"] = plot_learning_curves(
            result, os.path.join(directory, "learning_curves.png")
        )
        if paired:
            paths["paired_png"] = plot_paired_differences(
                result, os.path.join(directory, "paired_differences.png")
            )
        parameters_path = plot_parameters(result, os.path.join(directory, "parameters.png"))
        if parameters_path is not None:
            paths["parameters_png"] = parameters_path
    return paths


def _pyplot():
    """pyplot with the non-interactive Agg backend, and integer tick locators."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt
    from matplotlib.ticker import MaxNLocator

    return plt, lambda: MaxNLocator(integer=True)


def _curves(result: ComparisonResult, loss: str, key: str) -> np.ndarray | None:
    """``[seeds, epochs]`` of history ``key`` for ``loss``, or None when no run has it."""
    curves = [run.history[key] for run in result.runs if run.loss == loss and key in run.history]
    if not curves or len({len(curve) for curve in curves}) != 1:
        return None
    return np.asarray(curves, "float64")


def _robust_floor(values: list[np.ndarray], margin: float = 5.0) -> float | None:
    """A y-axis floor that the bulk of the curves sets: the 5th percentile of their values
    after the first epoch, minus ``margin``, so that one collapsed run or the first epoch does
    not squash the others (a curve below it is clipped at the axis, not hidden). Runs of up to
    3 epochs keep their first epoch above the floor: it is a third of what they show."""
    values = [v[np.isfinite(v)] for v in values]
    later = [v[1:] if len(v) > 3 else v for v in values if len(v)]
    if not later:
        return None
    return max(0.0, float(np.percentile(np.concatenate(later), 5)) - margin)


def _ceiling(values: list[np.ndarray], floor: float | None, margin: float = 5.0) -> float:
    """The y-axis top: the highest value plus ``margin`` (at most 100.5), so that a task whose
    curves stay low uses the plot's height."""
    finite = [v[np.isfinite(v)] for v in values]
    highest = max((float(v.max()) for v in finite if len(v)), default=100.0)
    return min(100.5, max(highest + margin, (floor or 0.0) + 2 * margin))


#: Learning-curve rows: history key, the metric's name on the axes. PR-AUC is recorded on
#: binary tasks (`kal.comparison.epoch_metrics.PositiveClassPRAUC`), the per-epoch estimate
#: of the test table's average precision.
CURVE_METRICS = (("accuracy", "accuracy"), ("pr_auc", "PR-AUC of class 1 (AP estimate)"))


def plot_learning_curves(result: ComparisonResult, path: str) -> str:
    """Training and validation metrics per epoch — accuracy, and on binary tasks the PR-AUC of
    class 1 — per loss: the mean over seeds as a line, mean ± one standard deviation as a band.
    """
    plt, integer_ticks = _pyplot()
    rows = [
        (key, label)
        for key, label in CURVE_METRICS
        if any(key in run.history for run in result.runs)
    ]
    figure, axes = plt.subplots(
        len(rows), 2, figsize=(11, 4.2 * len(rows)), sharey="row", squeeze=False
    )
    seeds = len(result.config.get("seeds", [])) or len({run.seed for run in result.runs})
    for row, (key, label) in zip(axes, rows, strict=True):
        plotted: list[np.ndarray] = []
        for index, loss in enumerate(result.losses):
            colour = f"C{index % 10}"
            for axis, name in zip(row, (key, f"val_{key}"), strict=True):
                curves = _curves(result, loss, name)
                if curves is None:
                    continue
                mean, spread = 100 * curves.mean(0), 100 * curves.std(0)
                epochs = np.arange(1, len(mean) + 1)
                axis.plot(epochs, mean, label=loss, color=colour)
                if len(curves) > 1:
                    axis.fill_between(
                        epochs, mean - spread, mean + spread, color=colour, alpha=0.15
                    )
                plotted.append(mean)
        floor = _robust_floor(plotted)
        for axis, split in zip(row, ("training", "validation"), strict=True):
            axis.set_title(f"{split} {label}")
            axis.set_xlabel("epoch")
            axis.set_ylabel(f"{key.replace('pr_auc', 'PR-AUC')} % (mean ± std, {seeds} seeds)")
            axis.xaxis.set_major_locator(integer_ticks())
            axis.grid(alpha=0.3)
            if floor is not None:
                axis.set_ylim(bottom=floor, top=_ceiling(plotted, floor))
        row[1].legend(fontsize="small", title="loss")
    figure.suptitle(f"{result.config['dataset']}, model {result.config['model']}")
    figure.tight_layout()
    atomic_write(path, lambda temporary: figure.savefig(temporary, dpi=100, format="png"))
    plt.close(figure)
    return path


def plot_paired_differences(result: ComparisonResult, path: str) -> str:
    """Per loss and test metric: the mean paired difference to the reference loss in points,
    with its 95 % interval as an error bar and each seed's difference as a dot."""
    plt, _ = _pyplot()
    reference = result.reference
    rows = result.paired(reference)
    metrics = result.metric_names
    width = 6.5 if len(metrics) == 1 else 4.5  # 3 metrics on a binary task: 13.5 in, not 19.5
    figure, axes = plt.subplots(
        1,
        len(metrics),
        figsize=(width * len(metrics), max(3.2, 1.6 + 0.45 * len(rows))),
        squeeze=False,
    )
    for axis, metric in zip(axes[0], metrics, strict=True):
        for position, row in enumerate(rows):
            if f"{metric}_mean" not in row:
                continue
            mean = 100 * row[f"{metric}_mean"]
            low, high = 100 * row[f"{metric}_low"], 100 * row[f"{metric}_high"]
            colour = (
                "tab:blue"
                if not row[f"{metric}_excludes_zero"]
                else ("tab:green" if mean > 0 else "tab:red")
            )
            if not math.isnan(low):
                axis.errorbar(
                    mean, position, xerr=[[mean - low], [high - mean]], fmt="o", color=colour,
                    capsize=4,
                )  # fmt: skip
            else:
                axis.plot(mean, position, "o", color=colour)
            dots = [
                100 * (values[metric] - reference_values[metric])
                for values, reference_values in result.paired_values(row["loss"], reference)
            ]
            axis.plot(dots, [position + 0.18] * len(dots), ".", color="grey", alpha=0.6)
        axis.axvline(0.0, color="black", linewidth=0.8)
        axis.set_ylim(len(rows) - 0.5, -0.7)  # a row per loss, first at the top
        axis.set_yticks(range(len(rows)), [row["loss"] for row in rows])
        short = _METRIC_SHORT.get(metric, metric)
        axis.set_xlabel(
            f"Δ test {short} vs {reference}, points\n(bar: 95 % interval; grey dots: single seeds)"
        )
        axis.grid(alpha=0.3, axis="x")
    from matplotlib.lines import Line2D

    legend = [
        Line2D([], [], marker="o", color=colour, linestyle="", label=label)
        for colour, label in (
            ("tab:green", "above the reference (interval > 0)"),
            ("tab:red", "below the reference (interval < 0)"),
            ("tab:blue", "not resolved (interval holds 0, or < 3 seeds)"),
            ("grey", "one seed's difference"),
        )
    ]
    figure.legend(handles=legend, loc="lower center", ncol=4, fontsize="small", frameon=False)
    figure.suptitle(f"{result.config['dataset']}: paired differences to {reference}")
    figure.tight_layout(rect=(0, 0.08, 1, 1))
    atomic_write(path, lambda temporary: figure.savefig(temporary, dpi=100, format="png"))
    plt.close(figure)
    return path


def _parameter_panels(result: ComparisonResult) -> list[tuple[str, str, Any]]:
    """(loss, title, data) for each loss with something adapted, over every seed: series are
    ``{name: [seeds, epochs]}``, a final Φ is the mean over seeds."""
    panels = []
    for loss in result.losses:
        runs = [run for run in result.runs if run.loss == loss]
        seeds = f"{len(runs)} seed{'s' if len(runs) != 1 else ''}"
        prefix = "slf_weight_"
        names = [k[len(prefix) :] for k in runs[0].history if k.startswith(prefix)]
        if names:
            weights = {n: np.asarray([r.history[prefix + n] for r in runs]) for n in names}
            panels.append((loss, f"SLF selection weight ({seeds})", weights))
        if "alpha" in runs[0].parameters and "beta" in runs[0].parameters:  # the CE+EL mix
            # Parameter lists start with the value before training; logs start after epoch 1.
            series = {
                "alpha": np.asarray([r.parameters["alpha"][1:] for r in runs]),
                "beta": np.asarray([r.parameters["beta"][1:] for r in runs]),
            }
            if "focus" in runs[0].history:
                series["F"] = np.asarray([r.history["focus"] for r in runs])
            panels.append((loss, f"F, alpha, beta ({seeds})", series))
        finals = [r.parameters["phi"][-1] for r in runs if "phi" in r.parameters]
        if finals and np.ndim(finals[0]) == 2:
            panels.append((loss, f"final Φ, mean of {seeds}", np.mean(finals, axis=0)))
    return panels


_STYLES = ("-", "--", ":", "-.")
_MARKERS = ("o", "s", "^", "D", "v", "x")


def plot_parameters(result: ComparisonResult, path: str) -> str | None:
    """Adapted parameters over training: F/alpha/beta, SLF weights, a heat-map of ALA's Φ.

    Returns ``None`` (and writes nothing) when no loss of the comparison adapts anything.
    """
    panels = _parameter_panels(result)
    if not panels:
        return None
    plt, integer_ticks = _pyplot()
    columns = min(3, len(panels))
    rows = -(-len(panels) // columns)
    figure, axes = plt.subplots(rows, columns, figsize=(4.8 * columns, 3.8 * rows), squeeze=False)
    for axis in axes.flat[len(panels) :]:
        axis.set_visible(False)
    for axis, (loss, kind, data) in zip(axes.flat, panels, strict=False):
        axis.set_title(f"{loss}: {kind}", fontsize="medium")
        if isinstance(data, np.ndarray):
            limit = max(float(np.abs(data).max()), 1e-6)
            image = axis.imshow(data, cmap="coolwarm", vmin=-limit, vmax=limit)
            axis.xaxis.set_major_locator(integer_ticks())
            axis.yaxis.set_major_locator(integer_ticks())
            axis.set_xlabel("predicted class j")
            axis.set_ylabel("true class i")
            figure.colorbar(image, ax=axis, fraction=0.046)
            continue
        for index, (name, values) in enumerate(data.items()):
            # Distinct line styles and markers: alpha and beta can coincide (both 1 at F = 0).
            epochs = np.arange(1, values.shape[-1] + 1)
            style = dict(
                linestyle=_STYLES[index % len(_STYLES)],
                marker=_MARKERS[index % len(_MARKERS)],
                markersize=4,
                color=f"C{index % 10}",
            )
            axis.plot(epochs, values.mean(0), label=name, **style)
            if len(values) > 1 and np.ptp(values, axis=0).max() > 0:
                axis.fill_between(
                    epochs, values.min(0), values.max(0), color=style["color"], alpha=0.15
                )
        axis.set_xlabel("epoch")
        axis.set_ylabel("weight" if "SLF" in kind else "value (line: mean; band: seed range)")
        axis.xaxis.set_major_locator(integer_ticks())
        axis.grid(alpha=0.3)
        axis.legend(fontsize="small")
    figure.tight_layout()
    atomic_write(path, lambda temporary: figure.savefig(temporary, dpi=100, format="png"))
    plt.close(figure)
    return path
