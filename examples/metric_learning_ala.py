"""Metric learning with Adaptive Loss Alignment: an embedding of digits, Φ adapted online.

Trains the same embedding network (same initial weights) twice with the focal-weighting loss
of Huang et al. (Eq. 10): once with Φ fixed at its initial value, once with an
`AdaptiveLossAlignment` controller that moves Φ every ``period`` steps, rewarded by the
nearest-neighbour error on a validation hold-out. Reports the test nearest-neighbour error
(1 - recall@1) of both and Φ over training.

    python examples/metric_learning_ala.py --epochs 20
"""

from __future__ import annotations

import argparse
import os

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line, read before TensorFlow is imported: ``--help`` and a bad value
    answer at once."""
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--epochs", type=int, default=20, help="training epochs")
    parser.add_argument(
        "--period", type=int, default=10, help="training steps between ALA decisions"
    )
    args = parser.parse_args(argv)
    if args.epochs < 1:
        parser.error(f"--epochs must be >= 1; got {args.epochs}")
    if args.period < 1:
        parser.error(f"--period must be >= 1; got {args.period}")
    return args


ARGS = parse_args() if __name__ == "__main__" else None

import keras
import numpy as np

import keras_adaptive_loss as kal
from keras_adaptive_loss.ala.controllers.metrics import nearest_neighbour_error


def build_embedding(num_features: int, dimensions: int = 16) -> keras.Model:
    """An MLP whose output is an L2-normalised embedding."""
    return keras.Sequential(
        [
            keras.Input((num_features,)),
            keras.layers.Dense(64, activation="relu"),
            keras.layers.Dense(dimensions),
            keras.layers.UnitNormalization(),
        ]
    )


class PhiHistory(keras.callbacks.Callback):
    """Φ of the compiled loss after every epoch."""

    def on_train_begin(self, logs=None):
        self.values = []

    def on_epoch_end(self, epoch, logs=None):
        self.values.append(np.asarray(self.model.loss.get_parameter("phi")).tolist())


def main(epochs: int = 20, period: int = 10, seed: int = 0) -> dict:
    """Fixed Φ vs ALA-adapted Φ; returns test nearest-neighbour errors and Φ trajectories."""
    data = kal.datasets.load("digits")
    x, y = data.x_train[:-300], data.y_train[:-300]
    validation = (data.x_train[-300:], data.y_train[-300:])
    results = {}
    for variant in ("fixed", "ala"):
        keras.utils.set_random_seed(seed)
        model = build_embedding(data.num_features)
        model.compile(optimizer="adam", loss=kal.losses.FocalWeightingLoss())
        phi = PhiHistory()
        callbacks = [phi]
        if variant == "ala":
            # metric="error" on an embedding loss is the nearest-neighbour error.
            callbacks.insert(
                0, kal.callbacks.AdaptiveLossAlignment(validation, period=period, seed=seed)
            )
        model.fit(x, y, epochs=epochs, batch_size=64, callbacks=callbacks, verbose=0)
        embeddings = model.predict(data.x_test, verbose=0)
        error = nearest_neighbour_error(data.y_test, embeddings)
        results[variant] = {"test_nn_error": error, "phi": phi.values}
        final = np.round(phi.values[-1], 3).tolist()
        print(f"{variant:<5} test nearest-neighbour error {100 * error:5.2f} %  final Φ {final}")
    return results


if __name__ == "__main__":
    main(epochs=ARGS.epochs, period=ARGS.period)
