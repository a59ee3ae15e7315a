"""UniLoss PCKh on synthetic keypoint heatmaps, against the usual MSE-to-Gaussian baseline.

Each 16x16 grey image holds two blobs: a small one (joint 0) and a large one (joint 1) at
random places, in noise. A small fully convolutional network predicts one heatmap per joint.
It is trained once with `kal.losses.UniLossPCKh` — the PCKh metric itself, through UniLoss —
and once with mean squared error against Gaussian target heatmaps, the standard pose-estimation
loss. Reports test PCKh@0.5 (head size 4 pixels) of both.

    python examples/uniloss_pckh.py --epochs 15
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
    parser.add_argument("--epochs", type=int, default=15, help="training epochs")
    args = parser.parse_args(argv)
    if args.epochs < 1:
        parser.error(f"--epochs must be >= 1; got {args.epochs}")
    return args


ARGS = parse_args() if __name__ == "__main__" else None

import keras
import numpy as np

import keras_adaptive_loss as kal
from keras_adaptive_loss.uniloss.refactorings import pckh_targets

SIZE, JOINTS, HEAD = 16, 2, 4.0


def make_data(count: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Images [n, 16, 16, 1], PCKh labels [n, 2, 4] and Gaussian target heatmaps [n, 16, 16, 2]."""
    rng = np.random.default_rng(seed)
    keypoints = rng.uniform(2, SIZE - 3, size=(count, JOINTS, 2)).astype("float32")
    rows, cols = np.meshgrid(np.arange(SIZE), np.arange(SIZE), indexing="ij")
    images = rng.normal(scale=0.25, size=(count, SIZE, SIZE, 1)).astype("float32")
    targets = np.zeros((count, SIZE, SIZE, JOINTS), "float32")
    for joint, radius in enumerate((1.0, 2.5)):  # small blob, large blob
        d2 = (rows[None] - keypoints[:, joint, 0, None, None]) ** 2
        d2 = d2 + (cols[None] - keypoints[:, joint, 1, None, None]) ** 2
        images[..., 0] += np.exp(-d2 / (2 * radius**2))
        targets[..., joint] = np.exp(-d2 / 2.0)
    labels = pckh_targets(keypoints, np.ones((count, JOINTS)), np.full(count, HEAD))
    return images, labels, targets


def pckh(heatmaps: np.ndarray, labels: np.ndarray, threshold: float = 0.5) -> float:
    """PCKh in NumPy: the highest pixel within threshold * head size of the keypoint."""
    count, height, width, joints = heatmaps.shape
    best = heatmaps.reshape(count, height * width, joints).argmax(1)
    distance = np.hypot(best // width - labels[..., 0], best % width - labels[..., 1])
    return float((distance <= threshold * labels[..., 3])[labels[..., 2] > 0.5].mean())


def build_network() -> keras.Model:
    return keras.Sequential(
        [
            keras.Input((SIZE, SIZE, 1)),
            keras.layers.Conv2D(16, 3, padding="same", activation="relu"),
            keras.layers.Conv2D(16, 5, padding="same", activation="relu"),
            keras.layers.Conv2D(JOINTS, 3, padding="same"),
        ]
    )


def main(epochs: int = 15, train_size: int = 1024, seed: int = 0) -> dict:
    """Trains with UniLoss PCKh and with MSE; returns test PCKh of both."""
    x, labels, targets = make_data(train_size, seed)
    x_test, labels_test, _ = make_data(512, seed + 1)
    results = {}
    for name, loss, y in (
        ("uniloss-pckh", kal.losses.UniLossPCKh(seed=seed), labels),
        ("mse-heatmap", keras.losses.MeanSquaredError(), targets),
    ):
        keras.utils.set_random_seed(seed)
        model = build_network()
        model.compile(optimizer=keras.optimizers.Adam(3e-3), loss=loss)
        model.fit(x, y, epochs=epochs, batch_size=32, verbose=0)
        results[name] = pckh(model.predict(x_test, verbose=0), labels_test)
        print(f"{name:<13} test PCKh@0.5 {100 * results[name]:6.2f} %")
    return results


if __name__ == "__main__":
    main(epochs=ARGS.epochs)
