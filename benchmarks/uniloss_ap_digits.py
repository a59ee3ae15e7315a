"""UniLoss average precision vs cross-entropy on digits "0 vs rest" (test AP over seeds).

The UniLoss paper's average-precision claim at small scale: the same MLP trained with
`kal.losses.UniLossAveragePrecision` and with cross-entropy on scikit-learn's digits, class 0
against the other nine (1:9 imbalance), scored by test average precision. Runs through
`kal.compare`; equivalent to

    keras-adaptive-loss compare --dataset digits --positive-class 0 \\
        --losses crossentropy,uniloss-ap --seeds 5 --epochs 20

    python benchmarks/uniloss_ap_digits.py
"""

from __future__ import annotations

import argparse
import os

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras_adaptive_loss as kal


def main(seeds: int = 5, epochs: int = 20, positive_class: int = 0, verbose: int = 1):
    """Returns the `kal.comparison.ComparisonResult` (test accuracy and AP per run)."""
    return kal.compare(
        "digits",
        ["crossentropy", "uniloss-ap"],
        positive_class=positive_class,
        seeds=seeds,
        epochs=epochs,
        verbose=verbose,
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--epochs", type=int, default=20)
    args = parser.parse_args()
    main(args.seeds, args.epochs)
