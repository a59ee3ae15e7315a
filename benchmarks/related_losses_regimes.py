"""The related-loss family in the regimes it was made for, paired against cross-entropy.

Through `kal.compare` on MNIST-1D (the `cnn1d` model, 20 epochs, Adam 1e-3, 5 seeds): the
label-noise family (NCE+RCE, NCE+MAE, normalized focal, RCE, GCE, with focal and poly1 for
reference) at 20 % and 40 % symmetric noise on the training and validation labels, and the
imbalance family (LDAM + DRW, class-balanced focal, with focal for reference) at 10:1 and
100:1 exponential long tails. The test split is never changed.

    python benchmarks/related_losses_regimes.py --output runs/related
    python benchmarks/related_losses_regimes.py --regimes noise-20 --seeds 2 --epochs 2
"""

from __future__ import annotations

import argparse
import os

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras_adaptive_loss as kal

NOISE_LOSSES = (
    "crossentropy", "nce_rce", "nce_mae", "normalized_focal", "rce", "gce", "focal", "poly1",
)  # fmt: skip
IMBALANCE_LOSSES = ("crossentropy", "ldam_drw", "class_balanced", "focal")
#: regime name -> (compare keyword arguments, losses)
REGIMES = {
    "noise-20": ({"label_noise": 0.2}, NOISE_LOSSES),
    "noise-40": ({"label_noise": 0.4}, NOISE_LOSSES),
    "imbalance-10": ({"imbalance": 10.0}, IMBALANCE_LOSSES),
    "imbalance-100": ({"imbalance": 100.0}, IMBALANCE_LOSSES),
}


def main(
    regimes=tuple(REGIMES),
    seeds: int = 5,
    epochs: int = 20,
    output: str | None = None,
    verbose: int = 1,
) -> dict:
    """Returns ``{regime: ComparisonResult}``; each comparison prints its paired table."""
    results = {}
    for regime in regimes:
        options, losses = REGIMES[regime]
        results[regime] = kal.compare(
            "mnist1d",
            list(losses),
            model="cnn1d",
            seeds=seeds,
            epochs=epochs,
            output=None if output is None else os.path.join(output, regime),
            plots=False,
            verbose=verbose,
            **options,
        )
    return results


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--regimes", default=",".join(REGIMES))
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--output", default=None)
    args = parser.parse_args()
    main(tuple(args.regimes.split(",")), args.seeds, args.epochs, args.output)
