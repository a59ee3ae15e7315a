"""Multi-Similarity loss against the ALA metric-learning losses, paired, on digits.

For each seed, the same embedding network (same initial weights, same data order) is trained
with the Multi-Similarity loss (with its pair mining, and without it: the mining ablation) and
with the two ALA metric-learning losses at fixed Φ (focal weighting, Eq. 10; distance mixture,
Eq. 9). Reported: test nearest-neighbour error (1 - recall@1, lower is better) and the paired
difference to focal weighting with a 95 % t interval, via `kal.comparison.paired`.

    python benchmarks/multi_similarity_digits.py            # 5 seeds, 20 epochs
"""

from __future__ import annotations

import argparse
import os

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras
import numpy as np
from ala_metric_learning import _embedding

import keras_adaptive_loss as kal
from keras_adaptive_loss.ala.controllers.metrics import nearest_neighbour_error
from keras_adaptive_loss.comparison.paired import paired_difference

LOSSES = {
    "focal weighting (ALA Eq. 10)": kal.losses.FocalWeightingLoss,
    "distance mixture (ALA Eq. 9)": kal.losses.DistanceMixtureLoss,
    "multi-similarity": kal.losses.MultiSimilarityLoss,
    "multi-similarity, no mining": lambda: kal.losses.MultiSimilarityLoss(mining=False),
}
REFERENCE = "focal weighting (ALA Eq. 10)"


def run(data, make_loss, seed: int, epochs: int) -> float:
    keras.utils.set_random_seed(seed)
    model = _embedding(data.num_features)
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss=make_loss())
    keras.utils.set_random_seed(seed)
    model.fit(data.x_train, data.y_train, epochs=epochs, batch_size=64, verbose=0)
    return nearest_neighbour_error(data.y_test, model.predict(data.x_test, verbose=0))


def main(seeds: int = 5, epochs: int = 20) -> dict[str, list[float]]:
    data = kal.datasets.load("digits")
    errors = {
        name: [run(data, make, s, epochs) for s in range(seeds)] for name, make in LOSSES.items()
    }
    print(f"Test nearest-neighbour error % on digits, {seeds} seeds, {epochs} epochs")
    counts = "seeds lower/equal/higher"
    print(f"| loss | error % | Δ vs {REFERENCE} (points) | 95 % interval | {counts} |")
    print("|---|---|---|---|---|")
    reference = 100 * np.array(errors[REFERENCE])
    for name, values in errors.items():
        values = 100 * np.array(values)
        spread = values.std(ddof=1) if len(values) > 1 else 0.0
        d = paired_difference(values, reference)
        mark = " *" if d.excludes_zero else ""
        print(
            f"| {name} | {values.mean():.2f} ± {spread:.2f} | {d.mean:+.2f}{mark} | "
            f"[{d.low:+.2f}, {d.high:+.2f}] | {d.losses}/{d.ties}/{d.wins} |"
        )
    return errors


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--epochs", type=int, default=20)
    args = parser.parse_args()
    main(args.seeds, args.epochs)
