"""Adaptive Loss Alignment vs cross-entropy on MNIST-1D, and what the controller costs.

For each seed, the same small 1-D CNN (same initial weights) is trained with Keras
cross-entropy and with `ClassCorrelationLoss` + `AdaptiveLossAlignment` (validation: the last
500 training samples, held out from training for both). Prints test accuracy mean ± std, the
amortised step-time ratio (mean step time over the whole run, decisions included), and the
controller's own time per decision (validation pass, statistics, policy and its update).

    python benchmarks/ala_effectiveness.py                 # 5 seeds, 40 epochs, period 100
    python benchmarks/ala_effectiveness.py --seeds 2 --epochs 10
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras
import numpy as np

import keras_adaptive_loss as kal


def build_cnn(length: int, classes: int) -> keras.Model:
    return keras.Sequential(
        [
            keras.Input((length, 1)),
            keras.layers.Conv1D(16, 5, padding="same", activation="relu"),
            keras.layers.MaxPooling1D(2),
            keras.layers.Conv1D(32, 5, padding="same", activation="relu"),
            keras.layers.GlobalAveragePooling1D(),
            keras.layers.Dense(classes, activation="softmax"),
        ]
    )


class DecisionTimer(keras.callbacks.Callback):
    """Wall time of the whole run and the number of training steps."""

    def on_train_begin(self, logs=None):
        self.start, self.steps = time.perf_counter(), 0

    def on_train_batch_begin(self, batch, logs=None):
        self.steps += 1

    def on_train_end(self, logs=None):
        self.seconds = time.perf_counter() - self.start


# name -> None (plain Keras cross-entropy) or ClassCorrelationLoss(use_sigmoid=...)
VARIANTS = {"crossentropy": None, "ALA, Eq. 6": True, "ALA, linear": False}


def run(data, seed: int, variant: str, epochs: int, period: int) -> dict:
    x, y = data.x_train[..., None], data.y_train
    x_train, y_train, x_val, y_val = x[:-500], y[:-500], x[-500:], y[-500:]
    keras.utils.set_random_seed(seed)
    model = build_cnn(x.shape[1], data.num_classes)
    timer = DecisionTimer()
    callbacks = [timer]
    use_ala = VARIANTS[variant] is not None
    if use_ala:
        loss = kal.losses.ClassCorrelationLoss(data.num_classes, use_sigmoid=VARIANTS[variant])
        ala = kal.callbacks.AdaptiveLossAlignment((x_val, y_val), period=period, seed=seed)
        decide = ala._decide
        spent = []

        def timed_decide(*args):
            begin = time.perf_counter()
            decide(*args)
            spent.append(time.perf_counter() - begin)

        ala._decide = timed_decide
        callbacks.insert(0, ala)
    else:
        loss = keras.losses.SparseCategoricalCrossentropy()
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss=loss, metrics=["accuracy"])
    model.fit(x_train, y_train, epochs=epochs, batch_size=64, verbose=0, callbacks=callbacks)
    accuracy = model.evaluate(data.x_test[..., None], data.y_test, verbose=0)[1]
    result = {"accuracy": accuracy, "step_seconds": timer.seconds / timer.steps}
    if use_ala:
        result["decision_seconds"] = float(np.median(spent))
        result["decisions"] = len(spent)
    return result


def main(seeds: int = 5, epochs: int = 40, period: int = 100) -> dict:
    data = kal.datasets.load("mnist1d")
    results = {
        name: [run(data, s, name, epochs, period) for s in range(seeds)] for name in VARIANTS
    }
    base = np.mean([r["step_seconds"] for r in results["crossentropy"]])
    print(
        f"MNIST-1D, 1-D CNN, {epochs} epochs, batch 64, Adam 1e-3, {seeds} seeds, period {period}"
    )
    for name, rows in results.items():
        accuracy = 100 * np.array([r["accuracy"] for r in rows])
        spread = accuracy.std(ddof=1) if seeds > 1 else 0.0
        ratio = np.mean([r["step_seconds"] for r in rows]) / base
        line = f"{name:<13} test accuracy {accuracy.mean():6.2f} ± {spread:4.2f}"
        line += f"  step ratio {ratio:.3f}"
        if VARIANTS[name] is not None:
            decision = 1000 * np.median([r["decision_seconds"] for r in rows])
            line += f"  {rows[0]['decisions']} decisions/run, {decision:.1f} ms per decision"
        print(line)
    return results


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--epochs", type=int, default=40)
    parser.add_argument("--period", type=int, default=100)
    args = parser.parse_args()
    main(args.seeds, args.epochs, args.period)
