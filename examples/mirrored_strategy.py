"""Train with a StochasticLoss inside a MirroredStrategy (all GPUs, or two CPU devices).

With two or more GPUs the strategy mirrors over them. Without, the physical CPU is split into
two logical devices, so the same multi-replica code path runs on a laptop: each replica draws
its own Gumbel noise, and the decision network gets one update per step from the
replica-averaged gradients.

    python examples/mirrored_strategy.py --epochs 10
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
    parser.add_argument("--epochs", type=int, default=10, help="training epochs")
    args = parser.parse_args(argv)
    if args.epochs < 1:
        parser.error(f"--epochs must be >= 1; got {args.epochs}")
    return args


ARGS = parse_args() if __name__ == "__main__" else None

import keras
import tensorflow as tf

import keras_adaptive_loss as kal


def default_strategy() -> tf.distribute.MirroredStrategy:
    """Mirrors over the GPUs when there are two or more, else over two logical CPUs.

    Splitting the CPU is only possible before TensorFlow initialises its devices, so this
    asks for *physical* devices (which does not initialise them) and splits first. If the
    devices were initialised earlier in the process (anything that listed logical devices or
    ran an op), a process with fewer than two CPU devices raises instead of mirroring over one.
    """
    if len(tf.config.list_physical_devices("GPU")) >= 2:
        return tf.distribute.MirroredStrategy()
    cpus = tf.config.list_physical_devices("CPU")
    try:
        tf.config.set_logical_device_configuration(
            cpus[0], [tf.config.LogicalDeviceConfiguration()] * 2
        )
    except RuntimeError as error:  # already initialised: use the devices that exist
        if len(tf.config.list_logical_devices("CPU")) < 2:
            raise RuntimeError(
                "TensorFlow's devices were initialised before the CPU could be split in two; "
                "call default_strategy() before running any TensorFlow op."
            ) from error
    devices = [device.name for device in tf.config.list_logical_devices("CPU")]
    return tf.distribute.MirroredStrategy(devices[:2])


def main(epochs: int = 10, strategy: tf.distribute.Strategy | None = None) -> dict:
    """Trains an MLP on digits with SLF across the replicas; returns accuracy and weights."""
    strategy = strategy or default_strategy()
    data = kal.datasets.load("digits")
    print(f"replicas in sync: {strategy.num_replicas_in_sync}")
    keras.utils.set_random_seed(0)
    with strategy.scope():  # build the model *and* the loss in the scope
        model = keras.Sequential(
            [
                keras.Input((data.num_features,)),
                keras.layers.Dense(64, activation="relu"),
                keras.layers.Dense(data.num_classes, activation="softmax"),
            ]
        )
        loss = kal.StochasticLoss(["crossentropy", "mse", "hinge"], seed=0)
        model.compile(optimizer="adam", loss=loss, metrics=["accuracy"])
    history = model.fit(
        data.x_train,
        data.y_train,
        epochs=epochs,
        batch_size=64,  # the global batch: 32 per replica on two replicas
        callbacks=[kal.callbacks.LossDiagnostics()],
        verbose=0,
    )
    _, accuracy = model.evaluate(data.x_test, data.y_test, batch_size=64, verbose=0)
    weights = {
        key[len("slf_weight_") :]: values[-1]
        for key, values in history.history.items()
        if key.startswith("slf_weight_")
    }
    print(f"test accuracy {100 * accuracy:.2f} %; last epoch's selection weights: {weights}")
    return {"test_accuracy": float(accuracy), "selection_weights": weights}


if __name__ == "__main__":
    main(epochs=ARGS.epochs)
