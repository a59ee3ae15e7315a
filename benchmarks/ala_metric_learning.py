"""Metric-learning ALA (Eqs. 9 and 10): Φ fixed vs adapted, as a paired study on digits.

For each seed and loss (focal weighting, Eq. 10; distance mixture, Eq. 9), the same embedding
network (same initial weights, same data order) is trained with Φ fixed at its start, with
`AdaptiveLossAlignment` at its defaults (safe steps), and with the paper's step β = 0.1. The
reward is the nearest-neighbour error on a validation hold-out; reported is the test
nearest-neighbour error (1 - recall@1, lower is better) and the paired difference to the
fixed-Φ arm with a 95 % t interval.

    python benchmarks/ala_metric_learning.py            # 5 seeds, 20 epochs
"""

from __future__ import annotations

import argparse
import os

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras
import numpy as np
from ala_effectiveness import paired

import keras_adaptive_loss as kal
from keras_adaptive_loss.ala.controllers.metrics import nearest_neighbour_error

LOSSES = {
    "focal weighting (Eq. 10)": kal.losses.FocalWeightingLoss,
    "distance mixture (Eq. 9)": kal.losses.DistanceMixtureLoss,
}
ARMS = ("fixed Φ", "ALA, defaults", "ALA, paper step 0.1")


def _embedding(features: int) -> keras.Model:
    return keras.Sequential(
        [
            keras.Input((features,)),
            keras.layers.Dense(64, activation="relu"),
            keras.layers.Dense(16),
            keras.layers.UnitNormalization(),
        ]
    )


def run(data, make_loss, arm: str, seed: int, epochs: int) -> float:
    x, y = data.x_train[:-300], data.y_train[:-300]
    validation = (data.x_train[-300:], data.y_train[-300:])
    keras.utils.set_random_seed(seed)
    model = _embedding(data.num_features)
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss=make_loss())
    steps = (len(x) // 64 + 1) * epochs
    callbacks = []
    if arm != "fixed Φ":
        step = 0.1 if arm == "ALA, paper step 0.1" else "auto"
        callbacks.append(
            kal.callbacks.AdaptiveLossAlignment(
                validation, period=max(4, steps // 20), step_size=step, seed=seed
            )
        )
    keras.utils.set_random_seed(seed)
    model.fit(x, y, epochs=epochs, batch_size=64, verbose=0, callbacks=callbacks)
    return nearest_neighbour_error(data.y_test, model.predict(data.x_test, verbose=0))


def main(seeds: int = 5, epochs: int = 20) -> dict:
    data = kal.datasets.load("digits")
    results = {}
    for name, make_loss in LOSSES.items():
        rows = {arm: [run(data, make_loss, arm, s, epochs) for s in range(seeds)] for arm in ARMS}
        results[name] = rows
        print(f"{name}: test nearest-neighbour error % on digits, {seeds} seeds, {epochs} epochs")
        print("| arm | error % | Δ vs fixed Φ (points) | 95 % interval |")
        print("|---|---|---|---|")
        fixed = 100 * np.array(rows["fixed Φ"])
        for arm in ARMS:
            values = 100 * np.array(rows[arm])
            mean, low, high = paired(values - fixed)
            mark = " *" if low > 0 or high < 0 else ""
            print(
                f"| {arm} | {values.mean():.2f} ± {values.std(ddof=1):.2f} | {mean:+.2f}{mark} "
                f"| [{low:+.2f}, {high:+.2f}] |"
            )
        print()
    return results


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--epochs", type=int, default=20)
    args = parser.parse_args()
    main(args.seeds, args.epochs)
