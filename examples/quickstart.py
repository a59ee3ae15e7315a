"""Quickstart: does mixing the expectation loss into cross-entropy help on digits?

Trains the same MLP on scikit-learn's bundled digits (no download) with plain cross-entropy and
with the three F-phase protocols of "Mixing between the Cross Entropy and the Expectation Loss
Terms" (F = 0; F = 0,0.5; F = 0-0.5), over several seeds, and prints test accuracy as
mean ± std. Every seed uses the same train/test split and the same initial weights for all
losses, so the rows differ only in the loss.

    python examples/quickstart.py                 # 30 epochs, 3 seeds: about a minute on 2 cores
    python examples/quickstart.py --epochs 5 --seeds 1
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Sequence

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line, read before TensorFlow is imported: ``--help`` and a bad value
    answer at once."""
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--epochs", type=int, default=30, help="training epochs per run")
    parser.add_argument("--seeds", type=int, default=3, help="number of seeds (0, 1, ...)")
    args = parser.parse_args(argv)
    if args.epochs < 1:
        parser.error(f"--epochs must be >= 1; got {args.epochs}")
    if args.seeds < 1:
        parser.error(f"--seeds must be >= 1; got {args.seeds}")
    return args


ARGS = parse_args() if __name__ == "__main__" else None

import keras
import numpy as np

import keras_adaptive_loss as kal

# Row label -> F protocol (None: plain Keras cross-entropy, the baseline).
PROTOCOLS: dict[str, str | None] = {
    "crossentropy": None,
    "CE+EL F=0": "0",
    "CE+EL F=0,0.5": "0,0.5",
    "CE+EL F=0-0.5": "0-0.5",
}


def build_mlp(num_features: int, num_classes: int, hidden: int = 64) -> keras.Model:
    """The MLP every loss trains: one hidden ReLU layer and a softmax output."""
    return keras.Sequential(
        [
            keras.Input((num_features,)),
            keras.layers.Dense(hidden, activation="relu"),
            keras.layers.Dense(num_classes, activation="softmax"),
        ]
    )


def train_once(
    protocol: str | None,
    seed: int,
    data: kal.datasets.Dataset,
    epochs: int,
    batch_size: int = 32,
    learning_rate: float = 1e-3,
) -> float:
    """Trains one model with one loss and seed; returns its test accuracy."""
    keras.utils.set_random_seed(seed)
    model = build_mlp(data.num_features, data.num_classes)
    if protocol is None:
        loss, callbacks = keras.losses.SparseCategoricalCrossentropy(), []
    else:
        loss = kal.losses.CrossentropyExpectationMix()
        callbacks = [kal.callbacks.FocusSchedule(protocol)]
    model.compile(optimizer=keras.optimizers.Adam(learning_rate), loss=loss, metrics=["accuracy"])
    model.fit(
        data.x_train,
        data.y_train,
        epochs=epochs,
        batch_size=batch_size,
        verbose=0,
        callbacks=callbacks,
    )
    return float(model.evaluate(data.x_test, data.y_test, verbose=0)[1])


def format_table(results: dict[str, list[float]]) -> str:
    """Rows of ``loss  mean ± std  (n seeds)`` of test accuracy in percent (sample std)."""
    width = max(len(name) for name in results)
    lines = [f"{'loss':<{width}}  test accuracy % (mean ± std)"]
    for name, accuracies in results.items():
        values = 100 * np.asarray(accuracies)
        spread = values.std(ddof=1) if len(values) > 1 else 0.0
        lines.append(f"{name:<{width}}  {values.mean():6.2f} ± {spread:4.2f}  (n={len(values)})")
    return "\n".join(lines)


def main(epochs: int = 30, seeds: Sequence[int] = (0, 1, 2), verbose: bool = True) -> dict:
    """Runs every protocol over every seed; prints and returns ``{loss: [accuracy per seed]}``."""
    data = kal.datasets.load("digits")
    results: dict[str, list[float]] = {name: [] for name in PROTOCOLS}
    start = time.perf_counter()
    for seed in seeds:
        for name, protocol in PROTOCOLS.items():
            accuracy = train_once(protocol, seed, data, epochs)
            results[name].append(accuracy)
            if verbose:
                print(f"seed {seed}  {name:<14} test accuracy {100 * accuracy:.2f} %", flush=True)
    if verbose:
        print()
        print(f"digits MLP, {epochs} epochs, {len(seeds)} seeds, Adam 1e-3, batch 32")
        print(format_table(results))
        print(f"total time {time.perf_counter() - start:.0f} s")
    return results


if __name__ == "__main__":
    main(epochs=ARGS.epochs, seeds=range(ARGS.seeds))
