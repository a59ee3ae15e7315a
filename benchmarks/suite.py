"""The generalization suite: loss presets against cross-entropy on tasks none of them was tuned on.

Every task is one `kal.compare` (same initial weights and data order per seed, every loss paired
with cross-entropy), so a loss's figure on a task is its mean paired difference in test accuracy
with a 95 % Student-t interval over the seeds and its wins/ties/losses. The suite spans

- data: four MNIST-1D draws (the generator's ``seed``), scikit-learn's ``make_classification``
  (2-20 classes, separations, clusters per class), ``make_gaussian_quantiles``, ``make_moons``
  and ``make_circles`` lifted into 10 rotated dimensions, and the four bundled UCI sets;
- models: linear (softmax regression), a 1x128 MLP, a 2x256 MLP and ``cnn1d``;
- optimisers and budgets: Adam (1e-3) and SGD with momentum 0.9 (1e-2); 10, 30 and 60 epochs;
- regimes: clean; 20-40 % symmetric and pair noise on the training (and validation) labels;
  noisy *test* labels too (``flip_y``'s rule on every label: these tasks say so, ``†``);
  long tails 10:1 and 100:1; small training sets.

The output folder holds one `compare` folder per task (so an interrupted suite resumes: the
finished runs of every task are kept), ``suite.md`` (per loss: W/T/L over tasks, where W and L
are tasks whose interval excludes zero, and the per-task table), ``suite.json`` and
``suite_heatmap.png`` (loss by task, coloured by Δ, ``*`` where the interval excludes zero).

    python benchmarks/suite.py --output runs/suite                       # every task, 5 seeds
    python benchmarks/suite.py --output runs/suite --losses ala,stochastic --tasks quantiles6-mlp256
    python benchmarks/suite.py --smoke --output runs/suite-smoke         # the tests' subset

No assertions: it writes tables. Targets live in the issues.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras
import numpy as np

import keras_adaptive_loss as kal
from keras_adaptive_loss.comparison.settings import ComparisonSettings

REFERENCE = "crossentropy"

#: The losses the suite compares with cross-entropy by default: the package's adaptive
#: defaults and the related presets that fit a multi-class task.
LOSSES = (
    "stochastic", "stochastic_no_validation", "uniloss_accuracy", "ala", "ce_el_0-0.4",
    "ce_el_0-0.5", "focal", "poly", "gce", "nce_rce", "squentropy", "sparsemax",
    "class_balanced", "ldam_drw",
)  # fmt: skip


# ------------------------------------------------------------------------------------ data


def _split(name: str, x: np.ndarray, y: np.ndarray, seed: int) -> kal.datasets.Dataset:
    """A stratified quarter of the samples as the test split, features standardised on the
    training split, as the package splits its own generated and NPZ data."""
    x_train, x_test, y_train, y_test = kal.datasets._split_and_scale(
        name, x, y.astype("int64"), 0.25, seed
    )
    return kal.datasets.Dataset(
        name, x_train.astype("float32"), y_train, x_test.astype("float32"), y_test
    )


def mnist1d(seed: int) -> kal.datasets.Dataset:
    """A draw of MNIST-1D: 4000 training and 1000 test sequences of length 40 from the
    generator's ``seed`` (the package's ``mnist1d`` is the draw of seed 42)."""
    from mnist1d.data import get_dataset_args, make_dataset

    args = get_dataset_args()
    args.seed = seed
    data = make_dataset(args)
    return kal.datasets.Dataset(
        f"suite:mnist1d(seed={seed})",
        data["x"].astype("float32"),
        data["y"].astype("int64"),
        data["x_test"].astype("float32"),
        data["y_test"].astype("int64"),
    )


def classification(
    classes: int,
    separation: float = 1.0,
    clusters: int = 1,
    seed: int = 0,
    samples: int = 3000,
    flip: float = 0.0,
) -> kal.datasets.Dataset:
    """``make_classification`` with 20 features (10 informative). ``flip`` gives that fraction
    of *all* labels, test labels included, a class drawn uniformly (``flip_y``'s rule), on the
    same features as ``flip=0``."""
    spec = (
        f"synthetic:classes={classes},samples={samples},features=20,informative=10,"
        f"clusters={clusters},separation={separation},seed={seed}"
    )
    data = kal.datasets.synthetic(spec)
    if not flip:
        return data
    rng = np.random.default_rng([seed, 4099])

    def flipped(labels: np.ndarray) -> np.ndarray:
        labels = labels.copy()
        chosen = rng.random(len(labels)) < flip
        labels[chosen] = rng.integers(classes, size=int(chosen.sum()))
        return labels

    return dataclasses.replace(
        data,
        name=f"{spec},flip_y={flip}",
        y_train=flipped(data.y_train),
        y_test=flipped(data.y_test),
    )


def quantiles(classes: int, features: int = 8, seed: int = 0) -> kal.datasets.Dataset:
    """``make_gaussian_quantiles``: classes are nested shells of one Gaussian."""
    from sklearn.datasets import make_gaussian_quantiles

    x, y = make_gaussian_quantiles(
        n_samples=3000, n_features=features, n_classes=classes, random_state=seed
    )
    return _split(f"suite:quantiles(classes={classes},features={features},seed={seed})", x, y, seed)


def lifted(kind: str, seed: int = 0, dimensions: int = 10) -> kal.datasets.Dataset:
    """``make_moons`` or ``make_circles`` (noise 0.2 / 0.1) in 2-D, padded with Gaussian
    dimensions and rotated at random into ``dimensions`` dimensions."""
    from sklearn.datasets import make_circles, make_moons

    if kind == "moons":
        x, y = make_moons(3000, noise=0.2, random_state=seed)
    else:
        x, y = make_circles(3000, noise=0.1, factor=0.5, random_state=seed)
    rng = np.random.default_rng(seed)
    padded = np.concatenate([x, 0.5 * rng.normal(size=(len(x), dimensions - 2))], axis=1)
    rotation, _ = np.linalg.qr(rng.normal(size=(dimensions, dimensions)))
    return _split(f"suite:{kind}(dims={dimensions},seed={seed})", padded @ rotation, y, seed)


def bundled(name: str) -> kal.datasets.Dataset:
    """One of the package's offline scikit-learn sets."""
    return kal.datasets.load(name)


# ---------------------------------------------------------------------------------- models


def linear(input_shape: tuple[int, ...], num_classes: int) -> keras.Model:
    """Softmax regression."""
    return keras.Sequential(
        [keras.Input(input_shape), keras.layers.Dense(num_classes, activation="softmax")]
    )


def mlp128(input_shape: tuple[int, ...], num_classes: int) -> keras.Model:
    """One hidden layer of 128 ReLU units."""
    return keras.Sequential(
        [
            keras.Input(input_shape),
            keras.layers.Dense(128, activation="relu"),
            keras.layers.Dense(num_classes, activation="softmax"),
        ]
    )


def mlp256x2(input_shape: tuple[int, ...], num_classes: int) -> keras.Model:
    """Two hidden layers of 256 ReLU units."""
    return keras.Sequential(
        [
            keras.Input(input_shape),
            keras.layers.Dense(256, activation="relu"),
            keras.layers.Dense(256, activation="relu"),
            keras.layers.Dense(num_classes, activation="softmax"),
        ]
    )


MODELS: dict[str, Any] = {
    "linear": linear,
    "mlp128": mlp128,
    "mlp256": mlp256x2,
    "cnn1d": "cnn1d",
}


# ----------------------------------------------------------------------------------- tasks


@dataclasses.dataclass(frozen=True)
class Task:
    """One task of the suite: data, model, optimiser, budget and regime.

    ``changes_test_labels`` marks the tasks whose generator randomises test labels as well
    (``flip_y``); every other regime changes the training split only.
    """

    name: str
    data: Callable[[], kal.datasets.Dataset]
    model: str
    epochs: int = 30
    optimizer: str = "adam"
    label_noise: float = 0.0
    noise_type: str = "symmetric"
    imbalance: float | None = None
    train_size: int | None = None
    changes_test_labels: bool = False

    @property
    def learning_rate(self) -> float:
        return 1e-3 if self.optimizer == "adam" else 1e-2

    def settings(self, losses: Sequence[str], seeds: int, **overrides: Any) -> ComparisonSettings:
        """The task's `ComparisonSettings` for ``losses`` (cross-entropy first)."""
        arms = [REFERENCE, *(loss for loss in losses if loss != REFERENCE)]
        options = {
            "model": MODELS[self.model],
            "epochs": self.epochs,
            "batch_size": 64,
            "learning_rate": self.learning_rate,
            "optimizer": self.optimizer,
            "label_noise": self.label_noise,
            "noise_type": self.noise_type,
            "imbalance": self.imbalance,
            "train_size": self.train_size,
            "validation_fraction": 0.2,
            "plots": False,
            **overrides,
        }
        return ComparisonSettings(dataset=self.data(), losses=arms, seeds=seeds, **options)


def _(function: Callable, *args: Any, **kwargs: Any) -> Callable[[], kal.datasets.Dataset]:
    """``function(*args, **kwargs)``, made when the task runs."""
    return lambda: function(*args, **kwargs)


TASKS: dict[str, Task] = {
    task.name: task
    for task in [
        Task("mnist1d.1-mlp256", _(mnist1d, 1), "mlp256"),
        Task("mnist1d.2-cnn1d", _(mnist1d, 2), "cnn1d"),
        Task("mnist1d.3-mlp128-sgd", _(mnist1d, 3), "mlp128", optimizer="sgd"),
        Task("mnist1d.4-mlp256-sym30", _(mnist1d, 4), "mlp256", label_noise=0.3),
        Task("mnist1d.1-cnn1d-pair20", _(mnist1d, 1), "cnn1d", label_noise=0.2,
              noise_type="pair"),
        Task("mnist1d.2-mlp128-small", _(mnist1d, 2), "mlp128", train_size=800, epochs=60),
        Task("cls8-mlp256", _(classification, 8, seed=1), "mlp256"),
        Task("cls8-mlp256-flip10†", _(classification, 8, seed=2, flip=0.1), "mlp256",
              changes_test_labels=True),
        Task("cls20-mlp256-flip20†", _(classification, 20, seed=3, flip=0.2), "mlp256",
              changes_test_labels=True),
        Task("cls20-mlp128-sgd-clusters2", _(classification, 20, 0.8, 2, seed=4), "mlp128",
              optimizer="sgd"),
        Task("cls2-linear-hard", _(classification, 2, 0.5, seed=5), "linear", epochs=10),
        Task("cls4-mlp256-sym40", _(classification, 4, 1.0, 3, seed=6), "mlp256",
              label_noise=0.4),
        Task("cls6-mlp128-pair30", _(classification, 6, seed=7), "mlp128", label_noise=0.3,
              noise_type="pair"),
        Task("cls10-mlp256-tail10", _(classification, 10, seed=8, samples=6000), "mlp256",
              imbalance=10.0),
        Task("cls10-mlp256-tail100", _(classification, 10, seed=9, samples=6000), "mlp256",
              imbalance=100.0),
        Task("quantiles6-mlp256", _(quantiles, 6, seed=1), "mlp256"),
        Task("quantiles3-mlp128-sgd", _(quantiles, 3, seed=2), "mlp128", optimizer="sgd"),
        Task("quantiles4-mlp256-sym20", _(quantiles, 4, seed=3), "mlp256", label_noise=0.2),
        Task("moons-mlp128", _(lifted, "moons", 1), "mlp128", epochs=10),
        Task("moons-linear", _(lifted, "moons", 2), "linear", epochs=10),
        Task("circles-mlp256-small", _(lifted, "circles", 3), "mlp256", train_size=300,
              epochs=60),
        Task("digits-mlp128", _(bundled, "digits"), "mlp128", epochs=10),
        Task("digits-linear-sgd", _(bundled, "digits"), "linear", optimizer="sgd", epochs=60),
        Task("digits-mlp256-tail10", _(bundled, "digits"), "mlp256", imbalance=10.0),
        Task("digits-mlp128-sym30", _(bundled, "digits"), "mlp128", label_noise=0.3),
        Task("iris-mlp128", _(bundled, "iris"), "mlp128", epochs=60),
        Task("wine-mlp128", _(bundled, "wine"), "mlp128", epochs=60),
        Task("breast_cancer-mlp256", _(bundled, "breast_cancer"), "mlp256"),
        Task("breast_cancer-linear-sym20", _(bundled, "breast_cancer"), "linear",
              label_noise=0.2),
    ]
}  # fmt: skip

#: A subset that runs in a few minutes (the tests' smoke run): small data, few epochs.
SMOKE_TASKS = ("iris-mlp128", "moons-linear", "breast_cancer-linear-sym20")


# ------------------------------------------------------------------------------ running


def run(
    tasks: Iterable[str] | None = None,
    losses: Sequence[str] = LOSSES,
    seeds: int = 5,
    output: str | None = None,
    epochs: int | None = None,
    verbose: int = 1,
) -> dict[str, kal.comparison.ComparisonResult]:
    """Runs `kal.compare` on every named task (all by default); returns ``{task: result}``.

    With ``output`` each task writes ``output/<task>/`` and a rerun resumes it. ``epochs``
    overrides every task's budget (the smoke run's).
    """
    names = list(TASKS if tasks is None else tasks)
    unknown = [name for name in names if name not in TASKS]
    if unknown:
        raise ValueError(f"Unknown tasks {unknown}; tasks: {', '.join(TASKS)}.")
    results = {}
    for name in names:
        task = TASKS[name]
        folder = None if output is None else os.path.join(output, _folder(name))
        resume = folder is not None and any(
            os.path.exists(os.path.join(folder, *parts))
            for parts in (("results.json",), ("unfinished", "results.json"))
        )
        overrides: dict[str, Any] = {"output": folder, "resume": resume, "verbose": verbose}
        if epochs is not None:
            overrides["epochs"] = epochs
        if verbose:
            print(f"\n== {name}", file=sys.stderr)
        results[name] = kal.compare(task.settings(losses, seeds, **overrides))
    return results


def _folder(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name)


# ------------------------------------------------------------------------------ reporting


def cells(results: dict[str, kal.comparison.ComparisonResult]) -> list[dict[str, Any]]:
    """One row per (loss, task): Δ accuracy vs cross-entropy in points, its 95 % interval,
    whether the interval excludes zero, and wins/ties/losses over seeds."""
    rows = []
    for task, result in results.items():
        for row in result.paired(REFERENCE):
            if "accuracy_mean" not in row:
                continue
            rows.append(
                {
                    "loss": row["loss"],
                    "task": task,
                    "seeds": row["seeds"],
                    "delta": 100 * row["accuracy_mean"],
                    "low": 100 * row["accuracy_low"],
                    "high": 100 * row["accuracy_high"],
                    "significant": bool(row["accuracy_excludes_zero"]),
                    "record": (
                        f"{row['accuracy_wins']}/{row['accuracy_ties']}/{row['accuracy_losses']}"
                    ),
                    "changes_test_labels": TASKS[task].changes_test_labels,
                }
            )
    return rows


def per_loss(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per loss over tasks: tasks significantly above / within noise of / below cross-entropy,
    the share below, the mean Δ and the worst Δ."""
    summary = []
    for loss in dict.fromkeys(row["loss"] for row in rows):
        mine = [row for row in rows if row["loss"] == loss and math.isfinite(row["delta"])]
        above = sum(row["significant"] and row["delta"] > 0 for row in mine)
        below = sum(row["significant"] and row["delta"] < 0 for row in mine)
        deltas = [row["delta"] for row in mine]
        summary.append(
            {
                "loss": loss,
                "tasks": len(mine),
                "above": above,
                "within": len(mine) - above - below,
                "below": below,
                "share_below": below / len(mine) if mine else math.nan,
                "mean_delta": float(np.mean(deltas)) if deltas else math.nan,
                "worst_delta": float(min(deltas)) if deltas else math.nan,
            }
        )
    return summary


def markdown(rows: list[dict[str, Any]], seconds: float | None = None) -> str:
    """The suite's tables: W/T/L per loss, then Δ per task (``*``: the interval excludes 0;
    ``†``: the task's test labels are noisy too)."""
    lines = ["# Generalization suite: Δ test accuracy vs cross-entropy (points)", ""]
    if seconds is not None:
        lines += [f"Wall time: {seconds / 60:.1f} min.", ""]
    lines += [
        "| loss | tasks | above (W) | within (T) | below (L) | share below | mean Δ | worst Δ |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for item in per_loss(rows):
        lines.append(
            f"| {item['loss']} | {item['tasks']} | {item['above']} | {item['within']} | "
            f"{item['below']} | {100 * item['share_below']:.0f} % | {item['mean_delta']:+.2f} | "
            f"{item['worst_delta']:+.2f} |"
        )
    lines += ["", "| task | loss | Δ | 95 % interval | seeds W/T/L |", "|---|---|---|---|---|"]
    for row in sorted(rows, key=lambda row: (row["task"], row["loss"])):
        marker = " *" if row["significant"] else ""
        interval = (
            f"[{row['low']:+.2f}, {row['high']:+.2f}]" if math.isfinite(row["low"]) else "n/a"
        )
        lines.append(
            f"| {row['task']} | {row['loss']} | {row['delta']:+.2f}{marker} | {interval} | "
            f"{row['record']} |"
        )
    return "\n".join(lines) + "\n"


def heatmap(rows: list[dict[str, Any]], path: str) -> str:
    """Loss by task, coloured by Δ (diverging, clipped at ±5 points), ``*`` where the interval
    excludes zero."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    losses = list(dict.fromkeys(row["loss"] for row in rows))
    tasks = list(dict.fromkeys(row["task"] for row in rows))
    grid = np.full((len(losses), len(tasks)), np.nan)
    marks = np.zeros_like(grid, dtype=bool)
    for row in rows:
        i, j = losses.index(row["loss"]), tasks.index(row["task"])
        grid[i, j], marks[i, j] = row["delta"], row["significant"]
    figure, axes = plt.subplots(figsize=(1.0 + 0.45 * len(tasks), 1.2 + 0.4 * len(losses)))
    image = axes.imshow(grid, cmap="RdBu", vmin=-5, vmax=5, aspect="auto")
    for i, j in zip(*np.nonzero(marks), strict=True):
        axes.text(j, i, "*", ha="center", va="center", fontsize=10)
    axes.set_xticks(range(len(tasks)), tasks, rotation=70, ha="right", fontsize=7)
    axes.set_yticks(range(len(losses)), losses, fontsize=8)
    figure.colorbar(image, ax=axes, label="Δ accuracy vs cross-entropy (points)")
    axes.set_title("* : 95 % interval excludes 0;  † : noisy test labels", fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path


def write_report(
    results: dict[str, kal.comparison.ComparisonResult], output: str, seconds: float | None = None
) -> dict[str, str]:
    """Writes ``suite.md``, ``suite.json`` and ``suite_heatmap.png`` into ``output``."""
    os.makedirs(output, exist_ok=True)
    rows = cells(results)
    paths = {
        "markdown": os.path.join(output, "suite.md"),
        "json": os.path.join(output, "suite.json"),
        "heatmap": os.path.join(output, "suite_heatmap.png"),
    }
    with open(paths["markdown"], "w") as file:
        file.write(markdown(rows, seconds))
    with open(paths["json"], "w") as file:
        document = {"seconds": seconds, "per_loss": per_loss(rows), "cells": rows}
        json.dump(document, file, indent=1, default=lambda value: None)
    heatmap(rows, paths["heatmap"])
    return paths


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", help="folder of the suite's results (required to run)")
    parser.add_argument("--tasks", default=None, help="comma-separated task names (all)")
    parser.add_argument("--losses", default=",".join(LOSSES), help="comma-separated presets")
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--epochs", type=int, default=None, help="override every task's budget")
    parser.add_argument("--smoke", action="store_true", help="the smoke subset, 2 seeds, 3 epochs")
    parser.add_argument("--list", action="store_true", help="list the tasks and exit")
    args = parser.parse_args(argv)
    if args.list:
        for task in TASKS.values():
            print(task.name)
        return 0
    if args.output is None:
        parser.error("--output is required: the folder the suite writes (and resumes) its runs in")
    tasks = args.tasks.split(",") if args.tasks else None
    seeds, epochs = args.seeds, args.epochs
    if args.smoke:
        tasks, seeds, epochs = list(SMOKE_TASKS), 2, 3
    start = time.perf_counter()
    results = run(tasks, args.losses.split(","), seeds, args.output, epochs)
    paths = write_report(results, args.output, time.perf_counter() - start)
    with open(paths["markdown"]) as file:
        print(file.read())
    print("wrote " + ", ".join(paths.values()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
