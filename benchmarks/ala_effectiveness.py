"""Adaptive Loss Alignment against cross-entropy: a paired study with the ablations that say why.

For each task and seed, every arm starts from the same initial weights (``set_random_seed``)
and sees the same data order as the cross-entropy arm; the validation split (held out from
training) drives ALA's rewards, label smoothing's choice and the population's final choice.
Reported: test accuracy per arm (mean ± std over seeds) and the paired difference to
cross-entropy with a 95 % t interval (``*`` when it excludes 0).

Arms:
- ``crossentropy``: Keras sparse categorical cross-entropy.
- ``label smoothing``: CE with smoothing in {0.05, 0.1, 0.2}, the best on validation.
- ``fixed Φ = I``: `ClassCorrelationLoss` (soft-target form) never moved; equals CE.
- ``random walk``: Φ moved by a state-blind policy (P(keep) = 0.8) with ALA's steps/bounds.
- ``ALA, 1 child``: `AdaptiveLossAlignment` with its defaults.
- ``ALA, paper steps``: the paper's β = 0.1, Φ in [-1, 1], no row bound (soft-target loss).
- ``ALA, population``: `kal.ala.fit_children` (N children incl. a CE control child,
  exploit step), the best child by validation.
- ``ALA, transferred``: the population's policy applied (``learn=False``) to a new run from
  the CE arm's initial weights.

Tasks: MNIST-1D (1-D CNN), digits (MLP) and a synthetic task with designed sibling-class
confusion (10 classes in 5 sibling pairs; 20 % of training labels flipped to the sibling).

    python benchmarks/ala_effectiveness.py                       # 5 seeds, all tasks
    python benchmarks/ala_effectiveness.py --tasks digits --seeds 2 --children 3
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras
import numpy as np
from scipy import stats

import keras_adaptive_loss as kal

ARMS = (
    "crossentropy",
    "label smoothing",
    "fixed Φ = I",
    "random walk",
    "ALA, 1 child",
    "ALA, paper steps",
    "ALA, population",
    "ALA, transferred",
)


def sibling_task(seed: int = 0) -> tuple:
    """10 classes in 5 well-separated pairs of close siblings; 20 % sibling label noise."""
    rng = np.random.default_rng(seed)
    dims, per_class = 20, 400
    pair_centres = rng.normal(scale=4.0, size=(5, dims))
    offsets = rng.normal(scale=1.0, size=(5, dims))
    centres = np.concatenate([pair_centres + offsets, pair_centres - offsets])  # c, c + 5
    y = np.repeat(np.arange(10), per_class)
    x = centres[y] + rng.normal(scale=1.6, size=(len(y), dims))
    order = rng.permutation(len(y))
    x, y = x[order].astype("float32"), y[order]
    test = 1000
    x_train, y_train, x_test, y_test = x[test:], y[test:].copy(), x[:test], y[:test]
    flip = rng.random(len(y_train)) < 0.2
    y_train[flip] = (y_train[flip] + 5) % 10
    return x_train, y_train, x_test, y_test


def load_task(name: str, epochs: int | None = None) -> dict:
    if name == "sibling":
        x, y, x_test, y_test = sibling_task()
        build = _mlp
        default_epochs = 20
    else:
        data = kal.datasets.load(name)
        x, y, x_test, y_test = data.x_train, data.y_train, data.x_test, data.y_test
        build = _cnn if name == "mnist1d" else _mlp
        default_epochs = 20 if name == "mnist1d" else 40
        if name == "mnist1d":
            x, x_test = x[..., None], x_test[..., None]
    epochs = epochs or default_epochs
    held_out = max(len(x) // 8, 200)
    return {
        "x": x[:-held_out],
        "y": y[:-held_out],
        "validation": (x[-held_out:], y[-held_out:]),
        "test": (x_test, y_test),
        "classes": int(y.max()) + 1,
        "build": build,
        "epochs": epochs,
    }


def _cnn(shape, classes):
    return keras.Sequential(
        [
            keras.Input(shape),
            keras.layers.Conv1D(16, 5, padding="same", activation="relu"),
            keras.layers.MaxPooling1D(2),
            keras.layers.Conv1D(32, 5, padding="same", activation="relu"),
            keras.layers.GlobalAveragePooling1D(),
            keras.layers.Dense(classes, activation="softmax"),
        ]
    )


def _mlp(shape, classes):
    return keras.Sequential(
        [
            keras.Input(shape),
            keras.layers.Dense(128, activation="relu"),
            keras.layers.Dense(classes, activation="softmax"),
        ]
    )


BATCH = 64


def _period(task) -> int:
    steps = (len(task["x"]) // BATCH) * task["epochs"]
    return max(4, steps // 20)  # about 20 decisions per run


def _model(task, seed, loss):
    keras.utils.set_random_seed(seed)
    model = task["build"](task["x"].shape[1:], task["classes"])
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss=loss, metrics=["accuracy"])
    return model


def _train(task, seed, loss, callbacks=()):
    model = _model(task, seed, loss)
    keras.utils.set_random_seed(seed)  # the same shuffling for every arm
    model.fit(
        task["x"], task["y"], epochs=task["epochs"], batch_size=BATCH, verbose=0,
        callbacks=list(callbacks),
    )  # fmt: skip
    return model


def _accuracy(model, data) -> float:
    predictions = model.predict(data[0], batch_size=1024, verbose=0)
    return float(np.mean(predictions.argmax(-1) == data[1]))


def run_seed(task, seed: int, children: int) -> dict[str, float]:
    classes, validation = task["classes"], task["validation"]
    period = _period(task)
    results = {}
    ce = keras.losses.SparseCategoricalCrossentropy()
    results["crossentropy"] = _accuracy(_train(task, seed, ce), task["test"])

    best = None
    for smoothing in (0.05, 0.1, 0.2):
        loss = keras.losses.CategoricalCrossentropy(label_smoothing=smoothing)
        one_hot = dict(task, y=np.eye(classes)[task["y"]])
        model = _train(one_hot, seed, loss)
        score = _accuracy(model, validation)
        if best is None or score > best[0]:
            best = (score, _accuracy(model, task["test"]))
    results["label smoothing"] = best[1]

    identity = kal.losses.ClassCorrelationLoss(classes)
    results["fixed Φ = I"] = _accuracy(_train(task, seed, identity), task["test"])

    size = kal.ala.controllers.feature_size(2, 10)
    walk = kal.ala.controllers.AlignmentController(
        size, policy=kal.ala.controllers.Policy.random_walk(size), learn=False, greedy=False,
        seed=seed,
    )  # fmt: skip
    callback = kal.callbacks.AdaptiveLossAlignment(validation, period=period, controller=walk)
    model = _train(task, seed, kal.losses.ClassCorrelationLoss(classes), [callback])
    results["random walk"] = _accuracy(model, task["test"])

    callback = kal.callbacks.AdaptiveLossAlignment(validation, period=period, seed=seed)
    model = _train(task, seed, kal.losses.ClassCorrelationLoss(classes), [callback])
    results["ALA, 1 child"] = _accuracy(model, task["test"])

    callback = kal.callbacks.AdaptiveLossAlignment.paper(validation, period=period, seed=seed)
    model = _train(task, seed, kal.losses.ClassCorrelationLoss(classes), [callback])
    results["ALA, paper steps"] = _accuracy(model, task["test"])

    def build(index):
        model = task["build"](task["x"].shape[1:], classes)
        model.compile(
            optimizer=keras.optimizers.Adam(1e-3),
            loss=kal.losses.ClassCorrelationLoss(classes),
        )
        return model

    population = kal.ala.fit_children(
        build, task["x"], task["y"], validation, num_children=children,
        epochs=task["epochs"], batch_size=BATCH, period=period, seed=seed,
    )  # fmt: skip
    results["ALA, population"] = _accuracy(population.best_model, task["test"])
    results["population best child"] = float(population.best_index)

    transferred = kal.callbacks.AdaptiveLossAlignment(
        validation, period=period, policy=population.policy, learn=False
    )
    model = _train(task, seed, kal.losses.ClassCorrelationLoss(classes), [transferred])
    results["ALA, transferred"] = _accuracy(model, task["test"])
    return results


def paired(differences: np.ndarray) -> tuple[float, float, float]:
    """Mean and 95 % t interval of paired differences."""
    mean = float(differences.mean())
    if len(differences) < 2:
        return mean, float("nan"), float("nan")
    half = stats.t.ppf(0.975, len(differences) - 1) * differences.std(ddof=1)
    half /= np.sqrt(len(differences))
    return mean, mean - half, mean + half


def report(name: str, rows: list[dict[str, float]]) -> str:
    lines = [
        f"{name}: test accuracy % over {len(rows)} seeds; Δ = paired difference to CE "
        "(95 % t interval; * excludes 0)",
        "| arm | accuracy % | Δ vs CE (points) | 95 % interval |",
        "|---|---|---|---|",
    ]
    ce = 100 * np.array([r["crossentropy"] for r in rows])
    for arm in ARMS:
        values = 100 * np.array([r[arm] for r in rows])
        spread = values.std(ddof=1) if len(values) > 1 else 0.0
        mean, low, high = paired(values - ce)
        mark = " *" if low > 0 or high < 0 else ""
        lines.append(
            f"| {arm} | {values.mean():.2f} ± {spread:.2f} | {mean:+.2f}{mark} | "
            f"[{low:+.2f}, {high:+.2f}] |"
        )
    chosen = [int(r["population best child"]) for r in rows]
    lines.append(f"(population: best child per seed {chosen}; child 0 is the CE control)")
    return "\n".join(lines)


def main(
    tasks=("mnist1d", "digits", "sibling"),
    seeds: int = 5,
    children: int = 4,
    epochs: int | None = None,
) -> dict:
    """Runs every arm on every task; ``epochs`` overrides each task's default."""
    results = {}
    for name in tasks:
        task = load_task(name, epochs)
        begin = time.perf_counter()
        rows = [run_seed(task, seed, children) for seed in range(seeds)]
        results[name] = rows
        print(report(name, rows))
        print(f"({name}: {time.perf_counter() - begin:.0f} s, period {_period(task)} steps)\n")
    return results


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", default="mnist1d,digits,sibling")
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--children", type=int, default=4)
    parser.add_argument("--epochs", type=int, default=None)
    args = parser.parse_args()
    main(tuple(args.tasks.split(",")), args.seeds, args.children, args.epochs)
