"""Train on a TensorFlow Datasets dataset with the CE+EL mix and a focus schedule.

The real TFDS code path: ``tfds.load`` → a ``tf.data`` pipeline (scale, batch, prefetch) →
``model.fit``. Needs the datasets extra and, the first time, internet access for TFDS to
download the dataset (afterwards it is read from ``data_dir``). Offline, prepare a dataset
elsewhere and pass its ``--data-dir``; the test of this example builds a small local TFDS
dataset instead of downloading one.

    python examples/tfds_training.py --dataset mnist --epochs 3
    python examples/tfds_training.py --dataset fashion_mnist --data-dir ~/tensorflow_datasets
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
    parser.add_argument(
        "--dataset", default="mnist", help="TFDS name, prepared under --data-dir (or downloadable)"
    )
    parser.add_argument(
        "--data-dir", default=None, help="TFDS data_dir holding the prepared dataset"
    )
    parser.add_argument("--epochs", type=int, default=3, help="training epochs")
    args = parser.parse_args(argv)
    if args.epochs < 1:
        parser.error(f"--epochs must be >= 1; got {args.epochs}")
    return args


ARGS = parse_args() if __name__ == "__main__" else None

import keras
import tensorflow as tf
import tensorflow_datasets as tfds

import keras_adaptive_loss as kal


def pipeline(split: tf.data.Dataset, batch_size: int, shuffle: bool) -> tf.data.Dataset:
    """uint8 images to float32 in [0, 1], batched and prefetched."""
    split = split.map(lambda image, label: (tf.cast(image, tf.float32) / 255.0, label))
    if shuffle:
        split = split.shuffle(10_000, seed=0)
    return split.batch(batch_size).prefetch(tf.data.AUTOTUNE)


def build_cnn(image_shape: tuple[int, ...], num_classes: int) -> keras.Model:
    return keras.Sequential(
        [
            keras.Input(image_shape),
            keras.layers.Conv2D(16, 3, padding="same", activation="relu"),
            keras.layers.MaxPooling2D(2),
            keras.layers.Conv2D(32, 3, padding="same", activation="relu"),
            keras.layers.GlobalAveragePooling2D(),
            keras.layers.Dense(num_classes, activation="softmax"),
        ]
    )


def main(
    epochs: int = 3,
    dataset: str = "mnist",
    data_dir: str | None = None,
    batch_size: int = 128,
    try_gcs: bool = True,
) -> dict:
    """Trains a small CNN on ``dataset`` with CE+EL (F = 0-0.5); returns its test accuracy."""
    (train, test), info = tfds.load(
        dataset,
        split=["train", "test"],
        as_supervised=True,
        with_info=True,
        data_dir=data_dir,
        download_and_prepare_kwargs={
            "download_config": tfds.download.DownloadConfig(try_download_gcs=try_gcs)
        },
    )
    image_shape = info.features["image"].shape
    num_classes = info.features["label"].num_classes
    keras.utils.set_random_seed(0)
    model = build_cnn(image_shape, num_classes)
    model.compile(
        optimizer="adam", loss=kal.losses.CrossentropyExpectationMix(), metrics=["accuracy"]
    )
    history = model.fit(
        pipeline(train, batch_size, shuffle=True),
        epochs=epochs,
        shuffle=False,  # the pipeline shuffles; Keras cannot shuffle a tf.data.Dataset
        callbacks=[kal.callbacks.FocusSchedule("0-0.5")],
        verbose=2,
    )
    _, accuracy = model.evaluate(pipeline(test, batch_size, shuffle=False), verbose=0)
    focus = [round(f, 4) for f in history.history["focus"]]  # the float32 the loss used
    print(f"{dataset}: test accuracy {100 * accuracy:.2f} %, focus F per epoch {focus}")
    return {"test_accuracy": float(accuracy), "focus": focus}


if __name__ == "__main__":
    main(epochs=ARGS.epochs, dataset=ARGS.dataset, data_dir=ARGS.data_dir)
