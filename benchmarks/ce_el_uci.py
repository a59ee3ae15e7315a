"""CE vs the CE+EL mixing protocols on UCI data sets, with the paper's UCI protocol.

Battash, Hazan & Wolf, "Mixing between the Cross Entropy and the Expectation Loss Terms",
Sec. "UCI Datasets" / Table 4: a linear classifier (I x C) and a classifier with one hidden
layer (I x I, ReLU, then I x C); 50 epochs, batch 8, a learning-rate sweep over
{0.01, 0.005, 0.001} with the best rate per method chosen on validation, and the test accuracy
read at the best validation epoch. Methods: CE, CE+EL with F = 0, F = 0,0.5 and F = 0-0.5, EL
alone and focal loss. Two seeds, fixed between methods (the paper's setting).

The paper used the 121 UCI data sets of Klambauer et al.; here the UCI data sets that ship
with scikit-learn (no download): iris, wine, breast cancer (Wisconsin diagnostic) and optical
digits. Choices the paper leaves open: Adam (the paper names no optimizer), validation = a
fixed 15 % of the training split, and ties in validation accuracy go to the earlier epoch.

    python benchmarks/ce_el_uci.py                     # all four data sets, about 20 min
    python benchmarks/ce_el_uci.py --datasets iris wine --epochs 10 --seeds 1
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Sequence

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras
import numpy as np

import keras_adaptive_loss as kal

DATASETS = ("iris", "wine", "breast_cancer", "digits")
LEARNING_RATES = (0.01, 0.005, 0.001)
# name -> (loss factory, F protocol or None)
METHODS = {
    "CE": (keras.losses.SparseCategoricalCrossentropy, None),
    "CE+EL F=0": (kal.losses.CrossentropyExpectationMix, "0"),
    "CE+EL F=0,0.5": (kal.losses.CrossentropyExpectationMix, "0,0.5"),
    "CE+EL F=0-0.5": (kal.losses.CrossentropyExpectationMix, "0-0.5"),
    "EL": (lambda: kal.losses.CandidateLoss("expectation"), None),
    "Focal": (lambda: kal.losses.CandidateLoss("focal"), None),
}


def build(model: str, features: int, classes: int) -> keras.Model:
    layers = [keras.Input((features,))]
    if model == "hidden":
        layers.append(keras.layers.Dense(features, activation="relu"))
    layers.append(keras.layers.Dense(classes, activation="softmax"))
    return keras.Sequential(layers)


class EpochAccuracies(keras.callbacks.Callback):
    """Validation and test accuracy after every epoch (eager calls: no evaluate() retracing)."""

    def __init__(self, validation, test):
        super().__init__()
        self.sets = {"validation": validation, "test": test}
        self.accuracy = {"validation": [], "test": []}

    def on_epoch_end(self, epoch, logs=None):
        for name, (x, y) in self.sets.items():
            predicted = keras.ops.convert_to_numpy(self.model(x, training=False)).argmax(-1)
            self.accuracy[name].append(float(np.mean(predicted == y)))


def run(data, splits, model, method, learning_rate, seed, epochs) -> tuple[float, float]:
    """(best validation accuracy, test accuracy at that epoch) of one configuration."""
    x_train, y_train, x_val, y_val = splits
    keras.utils.set_random_seed(seed)
    network = build(model, data.num_features, data.num_classes)
    make_loss, protocol = METHODS[method]
    recorder = EpochAccuracies((x_val, y_val), (data.x_test, data.y_test))
    callbacks = (
        [recorder] if protocol is None else [kal.callbacks.FocusSchedule(protocol), recorder]
    )
    network.compile(optimizer=keras.optimizers.Adam(learning_rate), loss=make_loss())
    network.fit(x_train, y_train, epochs=epochs, batch_size=8, verbose=0, callbacks=callbacks)
    best = int(np.argmax(recorder.accuracy["validation"]))  # first maximum: earliest epoch
    return recorder.accuracy["validation"][best], recorder.accuracy["test"][best]


def split(data, seed: int = 0):
    order = np.random.default_rng(seed).permutation(len(data.x_train))
    held = max(1, round(0.15 * len(order)))
    val, train = order[:held], order[held:]
    return data.x_train[train], data.y_train[train], data.x_train[val], data.y_train[val]


def main(
    datasets: Sequence[str] = DATASETS,
    models: Sequence[str] = ("linear", "hidden"),
    seeds: int = 2,
    epochs: int = 50,
    learning_rates: Sequence[float] = LEARNING_RATES,
) -> dict:
    """Returns ``{(model, dataset): {method: mean test accuracy over seeds}}`` and prints tables."""
    start = time.perf_counter()
    results: dict = {}
    for name in datasets:
        data = kal.datasets.load(name)
        splits = split(data)
        for model in models:
            table = {}
            for method in METHODS:
                per_seed = []
                for seed in range(seeds):
                    # The learning rate is chosen on validation, per method and seed.
                    runs = [
                        run(data, splits, model, method, lr, seed, epochs) for lr in learning_rates
                    ]
                    per_seed.append(max(runs, key=lambda r: r[0])[1])
                table[method] = float(np.mean(per_seed))
            results[(model, name)] = table
            print(
                f"{name:<14} {model:<7} "
                + "  ".join(f"{m} {100 * a:6.2f}" for m, a in table.items()),
                flush=True,
            )
    print()
    print(summary(results))
    print(f"total {time.perf_counter() - start:.0f} s")
    return results


def summary(results: dict) -> str:
    """Table 4's columns per model: wins, mean accuracy gain over CE, mean rank."""
    lines = [f"{'model':<7} {'method':<14} {'#wins':>5} {'Δ acc (points)':>15} {'mean rank':>9}"]
    for model in dict.fromkeys(model for model, _ in results):
        tables = [table for (m, _), table in results.items() if m == model]
        for method in METHODS:
            wins = sum(table[method] == max(table.values()) for table in tables)
            gain = np.mean([100 * (table[method] - table["CE"]) for table in tables])
            ranks = []
            for table in tables:
                values = np.array(list(table.values()))
                # average rank among ties, 1 = best
                better = (values > table[method]).sum()
                equal = (values == table[method]).sum()
                ranks.append(better + (equal + 1) / 2)
            lines.append(f"{model:<7} {method:<14} {wins:>5} {gain:>15.2f} {np.mean(ranks):>9.2f}")
    return "\n".join(lines)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", nargs="+", default=list(DATASETS))
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument("--epochs", type=int, default=50)
    args = parser.parse_args()
    main(args.datasets, seeds=args.seeds, epochs=args.epochs)
