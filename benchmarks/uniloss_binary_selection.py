"""UniLossAccuracy with 20 % of the binaries trained per step: random vs hardest selection.

The accuracy counterpart of `uniloss_ap_mnist1d.py`'s subsampling rows. With
``binary_fraction=0.2`` a sample's comparisons ``s_y - s_k`` are subsampled either at random or
by keeping each sample's smallest (hardest) ones, i.e. its highest-scoring wrong classes, as
the official code does with its top-20 classes on CIFAR-100. Paired against cross-entropy and
against full UniLossAccuracy through `kal.compare`:

    python benchmarks/uniloss_binary_selection.py --dataset digits --seeds 5 --epochs 20
"""

from __future__ import annotations

import argparse
import os

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras

import keras_adaptive_loss as kal
from keras_adaptive_loss.losses import UniLossAccuracy

VARIANTS = {
    "crossentropy": None,
    "uniloss_accuracy": {},
    "random-20%": {"binary_fraction": 0.2, "binary_selection": "random"},
    "hardest-20%": {"binary_fraction": 0.2, "binary_selection": "hardest"},
}


def _factory(options):
    def build(context):
        if options is None:
            return keras.losses.SparseCategoricalCrossentropy()
        return UniLossAccuracy(seed=context.seed, **options)

    return build


def main(dataset: str = "digits", seeds: int = 5, epochs: int = 20, verbose: int = 1):
    """Returns the `kal.comparison.ComparisonResult`."""
    return kal.compare(
        dataset,
        {name: _factory(options) for name, options in VARIANTS.items()},
        seeds=seeds,
        epochs=epochs,
        reference="crossentropy",
        verbose=verbose,
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="digits")
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--epochs", type=int, default=20)
    args = parser.parse_args()
    main(args.dataset, args.seeds, args.epochs)
