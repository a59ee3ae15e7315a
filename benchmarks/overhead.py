"""Training-step overhead of our losses, as a ratio to Keras sparse cross-entropy.

Every loss trains an identical MLP 784-500-300-10 (same initial weights) on the same synthetic
batches of 128, in one process. Runs are interleaved (round r trains every loss for one epoch,
in a fresh random order, before round r+1 starts), so drift of the machine and the position in
a round affect all losses alike; an A/A row (a second, identical baseline) shows the noise.
A step's time is the gap between consecutive ``on_train_batch_begin`` calls (the first steps
of each epoch are dropped). The table gives the 10th percentile of all of a loss's steps, the
headline figure (interference from a shared machine only ever adds time, so a low percentile
is the steadier estimate of a step's own cost), the median, and the mean — the amortised cost
for callbacks that do their work every K steps, such as AdaptiveLossAlignment (period 200:
its validation pass over 1000 samples and the policy update fall on one step in 200).
Every loss first trains one untimed warm-up epoch with its callbacks, so the tracing of the
train step and of the callbacks' compiled functions (a one-off cost of seconds, which a run of
a few hundred timed steps would spread into the mean) is not in the timed steps; the last
column gives that warm-up epoch's wall time.
The multiclass losses' reference is both identical cross-entropy rows' steps, pooled: the
row built first measured slower than its twin in most runs, which flattered every ratio
taken against it alone by about 0.05. The A/A row's ratio (to the first row) shows that noise.
The last column pairs by round: each loss's median step in a round over the reference's in
the same round, averaged (geometrically) over rounds, with a 95 % interval. The machine's
load drifts over minutes, which moves whole rounds; pairing cancels that drift, so this
column is the steadiest of the four and the one its interval makes readable.
Callbacks that the loss needs (e.g. a per-step FocusSchedule) run inside the timed steps.

    python benchmarks/overhead.py                # jit off and on
    python benchmarks/overhead.py --rounds 5 --steps 50 --jit off
    python benchmarks/overhead.py --runs 8 --rounds 40 --only StochasticLoss   # pooled runs

With ``--runs N`` the whole run is repeated in N fresh processes and the paired ratios are
pooled over the runs (`across_runs`): whole runs move together with the machine's state, by
as much as one run's interval is wide, so a target is judged on the runs' mean and its
interval, with every single run's figure printed beside it.

Losses of the binary task (UniLossAveragePrecision) train the same MLP with one logit output on
labels y == 0 and are compared with Keras BinaryCrossentropy on that model.

No assertions: it prints a table. Targets live in the issues (CE+EL mix: ratio <= 1.03;
StochasticLoss with K=3 and five candidates: <= 1.10; UniLoss accuracy and AP: <= 1.25;
ALA amortised with period 200: <= 1.10).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras
import numpy as np
from scipy import stats

import keras_adaptive_loss as kal

BASELINE = "keras SparseCategoricalCrossentropy"
CONTROL = "A/A control: keras SparseCategoricalCrossentropy"
POOLED = "both cross-entropy rows, pooled"  # the multiclass reference
BINARY_BASELINE = "keras BinaryCrossentropy (binary task)"

# name -> (task, () -> (loss, callbacks)). The multiclass task trains MLP 784-500-300-10
# (softmax); the binary task the same MLP with one logit output on labels y == 0 (1:9).
LOSSES: dict[str, tuple[str, Callable[[], tuple[keras.losses.Loss, list]]]] = {
    BASELINE: ("multiclass", lambda: (keras.losses.SparseCategoricalCrossentropy(), [])),
    # A second, identical baseline: its ratio shows the noise floor of the measurement.
    CONTROL: (
        "multiclass",
        lambda: (keras.losses.SparseCategoricalCrossentropy(), []),
    ),
    "CandidateLoss('focal')": ("multiclass", lambda: (kal.losses.CandidateLoss("focal"), [])),
    "CandidateLoss('poly1')": ("multiclass", lambda: (kal.losses.CandidateLoss("poly1"), [])),
    "CrossentropyExpectationMix": (
        "multiclass",
        lambda: (kal.losses.CrossentropyExpectationMix(), []),
    ),
    "CrossentropyExpectationMix + FocusSchedule(epoch)": (
        "multiclass",
        lambda: (kal.losses.CrossentropyExpectationMix(), [kal.callbacks.FocusSchedule("0-0.5")]),
    ),
    "CrossentropyExpectationMix + FocusSchedule(step)": (
        "multiclass",
        lambda: (
            kal.losses.CrossentropyExpectationMix(),
            [kal.callbacks.FocusSchedule("0-0.5", unit="step")],
        ),
    ),
    "StochasticLoss (K=3, 5 candidates)": (
        "multiclass",
        lambda: (kal.StochasticLoss(["crossentropy", "mse", "mae", "hinge", "cosine"], seed=0), []),
    ),
    "StochasticLoss + ValidationSelection(period=20)": (
        "multiclass",
        lambda: (
            kal.StochasticLoss(["crossentropy", "mse", "mae", "hinge", "cosine"], seed=0),
            [kal.callbacks.ValidationSelection(VALIDATION, period=20, seed=0)],
        ),
    ),
    "StochasticLoss + ValidationSelection(period=20, scope='model')": (
        "multiclass",
        lambda: (
            kal.StochasticLoss(["crossentropy", "mse", "mae", "hinge", "cosine"], seed=0),
            [kal.callbacks.ValidationSelection(VALIDATION, period=20, seed=0, scope="model")],
        ),
    ),
    "StochasticLoss.paper() (K=3, 5 candidates)": (
        "multiclass",
        lambda: (kal.StochasticLoss.paper(seed=0), []),
    ),
    "UniLossAccuracy": ("multiclass", lambda: (kal.losses.UniLossAccuracy(seed=0), [])),
    "ClassCorrelationLoss + AdaptiveLossAlignment(period=200)": (
        "multiclass",
        lambda: (
            kal.losses.ClassCorrelationLoss(10),
            [kal.callbacks.AdaptiveLossAlignment(VALIDATION, period=200, seed=0)],
        ),
    ),
    BINARY_BASELINE: ("binary", lambda: (keras.losses.BinaryCrossentropy(from_logits=True), [])),
    "UniLossAveragePrecision (binary task)": (
        "binary",
        lambda: (kal.losses.UniLossAveragePrecision(from_logits=True, seed=0), []),
    ),
    "UniLossFBeta (binary task)": (
        "binary",
        lambda: (kal.losses.UniLossFBeta(from_logits=True, seed=0), []),
    ),
}
BASELINES = {"multiclass": BASELINE, "binary": BINARY_BASELINE}
# Validation set of the ALA controller: 1000 synthetic samples of the multiclass task.
_validation_rng = np.random.default_rng(1)
VALIDATION = (
    _validation_rng.normal(size=(1000, 784)).astype("float32"),
    _validation_rng.integers(0, 10, size=1000),
)


class StepTimer(keras.callbacks.Callback):
    """Records the wall time between the starts of consecutive training batches.

    It uses ``on_train_batch_begin`` only: a callback with ``on_train_batch_end`` would switch
    off Keras's asynchronous batch dispatch and so change what it measures.
    """

    def __init__(self, skip: int = 3) -> None:
        super().__init__()
        self.skip = skip
        self.rounds: list[list[float]] = []  # one list of gaps per epoch (= per round)

    @property
    def gaps(self) -> list[float]:
        return [gap for round_gaps in self.rounds for gap in round_gaps]

    def on_epoch_begin(self, epoch, logs=None):
        self._last = None
        self._seen = 0
        self.rounds.append([])

    def on_train_batch_begin(self, batch, logs=None):
        now = time.perf_counter()
        if self._last is not None and self._seen >= self.skip:
            self.rounds[-1].append(now - self._last)
        self._last = now
        self._seen += 1


def paired_ratio(rounds: list[list[float]], reference: list[list[float]]) -> tuple:
    """Geometric mean over rounds of (a loss's median step / the reference's median step in
    the same round), with its 95 % Student-t interval: ``(ratio, low, high)``.

    Pairing by round cancels what drifts between rounds (the machine's load changes over
    minutes); the interval shows what is left. NaN interval with a single round.
    """
    return geometric_mean_interval(
        [np.median(own) / np.median(ref) for own, ref in zip(rounds, reference, strict=True)]
    )


def geometric_mean_interval(ratios: list[float]) -> tuple[float, float, float]:
    """Geometric mean of ``ratios`` with its 95 % Student-t interval (taken on their logs):
    ``(mean, low, high)``; NaN interval with a single ratio."""
    logs = np.log(np.asarray(ratios, dtype=float))
    centre = float(np.exp(logs.mean()))
    if len(logs) < 2:
        return centre, float("nan"), float("nan")
    half = stats.t.ppf(0.975, len(logs) - 1) * logs.std(ddof=1) / np.sqrt(len(logs))
    return centre, float(np.exp(logs.mean() - half)), float(np.exp(logs.mean() + half))


def across_runs(runs: list[dict]) -> dict:
    """Pools the paired ratios of several whole runs (each a `main` result).

    A run's paired interval covers the drift *within* a run; what the machine does between
    runs (other load, the thread pools' placement, a fresh process's allocations) moves every
    figure of a run together, by as much as the interval's width. Treating each run as one
    replicate, this returns ``{jit: {name: (mean, low, high, per_run)}}``: the geometric mean
    of the runs' paired ratios, its 95 % Student-t interval over the runs, and the list of
    the runs' own ratios (every one of them is printed: a target met on average can still be
    missed by single runs).
    """
    pooled: dict = {}
    for jit in runs[0]:
        pooled[jit] = {}
        for name in runs[0][jit]:
            per_run = [run[jit][name]["paired"] for run in runs]
            pooled[jit][name] = (*geometric_mean_interval(per_run), per_run)
    return pooled


def build_mlp(task: str = "multiclass") -> keras.Model:
    output = (
        keras.layers.Dense(10, activation="softmax")
        if task == "multiclass"
        else keras.layers.Dense(1)
    )
    return keras.Sequential(
        [
            keras.Input((784,)),
            keras.layers.Dense(500, activation="relu"),
            keras.layers.Dense(300, activation="relu"),
            output,
        ]
    )


def measure(
    jit: bool, rounds: int, steps: int, batch_size: int = 128, only: tuple[str, ...] = ()
) -> tuple[dict[str, list[np.ndarray]], dict[str, float]]:
    """Returns every timed step (seconds) of every loss in `LOSSES` (with ``only``: of the
    losses whose name contains one of those strings, and of the baselines), by round, and
    the wall time of each loss's warm-up epoch (tracing included)."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(steps * batch_size, 784)).astype("float32")
    labels = rng.integers(0, 10, size=steps * batch_size)
    targets = {"multiclass": labels, "binary": (labels == 0).astype("float32")}
    keras.utils.set_random_seed(0)
    weights = {task: build_mlp(task).get_weights() for task in BASELINES}
    runs, warmups = {}, {}
    for name, (task, make) in LOSSES.items():
        wanted = name in BASELINES.values() or name.startswith("A/A")
        if only and not wanted and not any(part in name for part in only):
            continue
        model = build_mlp(task)
        model.set_weights(weights[task])
        loss, callbacks = make()
        model.compile(optimizer=keras.optimizers.SGD(0.01), loss=loss, jit_compile=jit)
        # Warm up with the callbacks, so that neither the train step's tracing nor theirs
        # (e.g. ValidationSelection's compiled measurement) falls into the timed steps: that
        # one-off cost is the warm-up column, not a per-step cost.
        start = time.perf_counter()
        model.fit(x, targets[task], batch_size=batch_size, epochs=1, verbose=0, callbacks=callbacks)
        warmups[name] = time.perf_counter() - start
        runs[name] = (model, callbacks, StepTimer(), targets[task])
    order = list(runs)
    for _ in range(rounds):
        rng.shuffle(order)  # no loss always runs first (or right after the same neighbour)
        for model, callbacks, timer, y in (runs[name] for name in order):
            model.fit(
                x, y, batch_size=batch_size, epochs=1, verbose=0, callbacks=[*callbacks, timer]
            )
    return {name: run[2].rounds for name, run in runs.items()}, warmups


def main(
    rounds: int = 20,
    steps: int = 60,
    jit_modes: tuple[bool, ...] = (False, True),
    only: tuple[str, ...] = (),
) -> dict:
    """Prints, per jit mode, each loss's p10 and median step time and ratios to its task's CE."""
    results = {}
    for jit in jit_modes:
        per_round, warmups = measure(jit, rounds, steps, only=only)
        if BASELINE in per_round and CONTROL in per_round:
            per_round[POOLED] = [
                a + b for a, b in zip(per_round[BASELINE], per_round[CONTROL], strict=True)
            ]
        gaps = {name: np.concatenate(r) for name, r in per_round.items()}
        low = {name: np.percentile(g, 10) for name, g in gaps.items()}
        mean = {name: np.mean(g) for name, g in gaps.items()}
        base = {
            name: POOLED if task == "multiclass" and POOLED in gaps else BASELINES[task]
            for name, (task, _) in LOSSES.items()
            if name in gaps and BASELINES[task] in gaps
        }
        if POOLED in gaps:
            base[POOLED] = POOLED
        if CONTROL in base:
            base[CONTROL] = BASELINE  # the A/A ratio: the noise between identical rows
        mid = {name: np.median(g) for name, g in gaps.items()}
        setting = f"MLP 784-500-300-10, batch 128, {rounds} rounds x {steps} steps"
        print(f"\njit_compile={jit}  ({setting})")
        print(
            f"{'loss':<56} {'p10 ms':>7} {'ratio':>6} {'median ratio':>12} {'mean ratio':>10}"
            f"  {'paired by round [95 % CI]':>26} {'warm-up s':>9}"
        )
        rows = {}
        for name in (name for name in gaps if name in base):
            paired, paired_low, paired_high = paired_ratio(per_round[name], per_round[base[name]])
            rows[name] = {
                "p10": low[name] / low[base[name]],
                "median": mid[name] / mid[base[name]],
                "mean": mean[name] / mean[base[name]],
                "paired": paired,
                "warmup_s": warmups.get(name, float("nan")),
            }
            print(
                f"{name:<56} {1000 * low[name]:7.3f} {rows[name]['p10']:6.3f} "
                f"{rows[name]['median']:12.3f} {rows[name]['mean']:10.3f}"
                f"  {paired:8.3f} [{paired_low:.3f}, {paired_high:.3f}]"
                f" {rows[name]['warmup_s']:9.2f}"
            )
        results[jit] = rows
    return results


def repeated(runs: int, arguments: list[str]) -> dict:
    """Runs this script ``runs`` times, each in a fresh process with ``arguments``, prints
    each run's tables as it finishes and then the runs pooled (`across_runs`)."""
    results = []
    with tempfile.TemporaryDirectory() as folder:
        for index in range(runs):
            output = os.path.join(folder, f"run{index}.json")
            print(f"\n=== run {index + 1} of {runs} ===", flush=True)
            subprocess.run(
                [sys.executable, os.path.abspath(__file__), *arguments, "--json", output],
                check=True,
            )
            with open(output) as file:
                results.append(json.load(file))
    pooled = across_runs(results)
    for jit, rows in pooled.items():
        print(f"\n{jit}: paired ratio over {runs} runs, geometric mean [95 % CI over runs]")
        for name, (centre, low, high, per_run) in rows.items():
            each = " ".join(f"{ratio:.3f}" for ratio in per_run)
            print(f"{name:<56} {centre:6.3f} [{low:.3f}, {high:.3f}]  runs: {each}")
    return pooled


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--jit", choices=["off", "on", "both"], default="both")
    parser.add_argument("--only", default="", help="comma-separated parts of loss names")
    parser.add_argument(
        "--runs", type=int, default=1, help="repeat the whole run in fresh processes and pool"
    )
    parser.add_argument("--json", default="", help="also write the ratios to this JSON file")
    args = parser.parse_args()
    if args.runs < 1:
        parser.error(f"--runs must be at least 1; got {args.runs}")
    if args.runs > 1:
        one_run = ["--rounds", str(args.rounds), "--steps", str(args.steps), "--jit", args.jit]
        pooled = repeated(args.runs, [*one_run, "--only", args.only])
        result = {
            jit: {name: row[:3] for name, row in rows.items()} for jit, rows in pooled.items()
        }
    else:
        modes = {"off": (False,), "on": (True,), "both": (False, True)}[args.jit]
        ratios = main(args.rounds, args.steps, modes, tuple(p for p in args.only.split(",") if p))
        result = {f"jit {'on' if jit else 'off'}": rows for jit, rows in ratios.items()}
    if args.json:
        with open(args.json, "w") as file:
            json.dump(result, file, indent=1)
