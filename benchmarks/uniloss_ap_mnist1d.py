"""UniLoss average precision on MNIST-1D "class k vs rest" (1:9), the official setting.

The UniLoss paper's average-precision claim on a binary task that leaves room to improve
(cross-entropy does not reach AP 1 on MNIST-1D), trained as the official code does: an MLP
input-500-300 with a sigmoid output (here a 2-unit softmax, the same function), SGD with
learning rate 0.01 and momentum 0.5, batch 16. Compares binary cross-entropy, the default
`UniLossAveragePrecision`, each of the official code's choices alone (probability-space
comparisons, nearby anchors that flip currently wrong bits, the hardest 20 % of the binaries)
and all of them together (`UniLossAveragePrecision.paper`). Paired against cross-entropy
(same initial weights and data order per seed) through `kal.compare`:

    python benchmarks/uniloss_ap_mnist1d.py --seeds 5 --epochs 20 --output runs/uniloss_ap
"""

from __future__ import annotations

import argparse
import os

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras

import keras_adaptive_loss as kal
from keras_adaptive_loss.losses import UniLossAveragePrecision

#: label -> keyword arguments of `UniLossAveragePrecision` (``None``: cross-entropy).
VARIANTS: dict[str, dict | None] = {
    "crossentropy": None,
    "uniloss_ap": {},
    "probability": {"scores": "probability"},
    "wrong-nearby": {"nearby": "wrong"},
    "hardest-20%": {"binary_fraction": 0.2, "binary_selection": "hardest"},
    "random-20%": {"binary_fraction": 0.2, "binary_selection": "random"},
    "paper": {"scores": "probability", "nearby": "wrong"},
    "paper+hardest-20%": {
        "scores": "probability",
        "nearby": "wrong",
        "binary_fraction": 0.2,
        "binary_selection": "hardest",
    },
}


def official_mlp(input_shape: tuple[int, ...], num_classes: int) -> keras.Model:
    """input-500-300-output, ReLU (the official code's 784-500-300-1 MLP on MNIST)."""
    return keras.Sequential(
        [
            keras.Input(input_shape),
            keras.layers.Dense(500, activation="relu"),
            keras.layers.Dense(300, activation="relu"),
            keras.layers.Dense(num_classes, activation="softmax"),
        ]
    )


def sgd_momentum_half(learning_rate: float) -> keras.optimizers.Optimizer:
    return keras.optimizers.SGD(learning_rate, momentum=0.5)


def _factory(options: dict | None):
    def build(context):
        if options is None:
            return keras.losses.SparseCategoricalCrossentropy()
        return UniLossAveragePrecision(seed=context.seed, **options)

    return build


def main(
    seeds: int = 5,
    epochs: int = 20,
    positive_class: int = 0,
    variants: tuple[str, ...] = tuple(VARIANTS),
    output: str | None = None,
    verbose: int = 1,
):
    """Returns the `kal.comparison.ComparisonResult` (test AP and accuracy, paired to CE)."""
    return kal.compare(
        "mnist1d",
        {name: _factory(VARIANTS[name]) for name in variants},
        model=official_mlp,
        optimizer=sgd_momentum_half,
        learning_rate=0.01,
        batch_size=16,
        positive_class=positive_class,
        seeds=seeds,
        epochs=epochs,
        reference="crossentropy",
        output=output,
        verbose=verbose,
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--positive-class", type=int, default=0)
    parser.add_argument("--variants", default=",".join(VARIANTS))
    parser.add_argument("--output", default=None)
    args = parser.parse_args()
    main(
        args.seeds,
        args.epochs,
        args.positive_class,
        tuple(args.variants.split(",")),
        args.output,
    )
