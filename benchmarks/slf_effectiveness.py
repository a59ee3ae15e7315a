"""Does StochasticLoss beat cross-entropy? Test accuracy over seeds on offline datasets.

For each dataset (scikit-learn's digits, MNIST-1D from ``mnist1d.data.make_dataset``) and
seed, the same MLP (same initial weights for every loss) is trained with Keras cross-entropy,
with `StochasticLoss` over the candidates ["crossentropy", "mse", "mae", "hinge", "cosine"]
(K=3, tau=1) in its default ``normalize="running_mean"`` mode, and with ``normalize="none"``
(the paper's literal objective). Prints test accuracy mean ± std and the final mean selection
weight of each candidate.

    python benchmarks/slf_effectiveness.py                 # 5 seeds, both datasets
    python benchmarks/slf_effectiveness.py --seeds 2 --datasets digits
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

CANDIDATES = ["crossentropy", "mse", "mae", "hinge", "cosine"]
# dataset -> (hidden layer widths, epochs, batch size)
SETTINGS = {"digits": ((64,), 30, 32), "mnist1d": ((256, 256), 40, 64)}
LOSSES = {
    "crossentropy": lambda seed: keras.losses.SparseCategoricalCrossentropy(),
    "SLF running_mean": lambda seed: kal.StochasticLoss(CANDIDATES, seed=seed),
    "SLF none": lambda seed: kal.StochasticLoss(CANDIDATES, normalize="none", seed=seed),
}


def build_mlp(num_features: int, num_classes: int, hidden: tuple[int, ...]) -> keras.Model:
    layers = [keras.Input((num_features,))]
    layers += [keras.layers.Dense(units, activation="relu") for units in hidden]
    layers.append(keras.layers.Dense(num_classes, activation="softmax"))
    return keras.Sequential(layers)


def run(data, loss_name: str, seed: int) -> tuple[float, dict[str, float]]:
    hidden, epochs, batch_size = SETTINGS[data.name]
    keras.utils.set_random_seed(seed)
    model = build_mlp(data.num_features, data.num_classes, hidden)
    loss = LOSSES[loss_name](seed)
    callbacks = [kal.callbacks.LossDiagnostics()] if isinstance(loss, kal.StochasticLoss) else []
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss=loss, metrics=["accuracy"])
    history = model.fit(
        data.x_train, data.y_train, epochs=epochs, batch_size=batch_size, verbose=0,
        callbacks=callbacks,
    )  # fmt: skip
    weights = {k[len("slf_weight_") :]: v[-1] for k, v in history.history.items() if "weight" in k}
    return float(model.evaluate(data.x_test, data.y_test, verbose=0)[1]), weights


def main(seeds: int = 5, datasets: tuple[str, ...] = ("digits", "mnist1d")) -> dict:
    results = {}
    for name in datasets:
        data = kal.datasets.load(name)
        start = time.perf_counter()
        for loss_name in LOSSES:
            accuracies, weights = [], []
            for seed in range(seeds):
                accuracy, selection = run(data, loss_name, seed)
                accuracies.append(accuracy)
                weights.append(selection)
            results[(name, loss_name)] = (np.array(accuracies), weights)
        hidden, epochs, batch_size = SETTINGS[name]
        print(
            f"\n{name}: MLP {hidden}, {epochs} epochs, batch {batch_size}, Adam 1e-3, "
            f"{seeds} seeds ({time.perf_counter() - start:.0f} s)"
        )
        print(f"{'loss':<18} {'test accuracy %':>18}   final selection weights (mean over seeds)")
        for loss_name in LOSSES:
            accuracies, weights = results[(name, loss_name)]
            spread = 100 * accuracies.std(ddof=1) if seeds > 1 else 0.0
            mean_weights = ", ".join(
                f"{c} {np.mean([w[c] for w in weights]):.2f}" for c in (weights[0] or {})
            )
            print(
                f"{loss_name:<18} {100 * accuracies.mean():9.2f} ± {spread:5.2f}   {mean_weights}"
            )
    return results


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--datasets", default="digits,mnist1d")
    args = parser.parse_args()
    main(args.seeds, tuple(args.datasets.split(",")))
