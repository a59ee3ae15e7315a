"""Gradient norms of UniLoss accuracy and SLF against cross-entropy's on a suite task.

Trains the task's model with cross-entropy (its optimiser and learning rate) and, every few
epochs, averages over 10 training batches of 64 the global norm of the gradient over the
model's weights of: cross-entropy, `UniLossAccuracy` with an unscaled gradient
(``gradient_scale=1``, the paper's), and `StochasticLoss` with the ``stochastic`` preset's
candidates, with ``normalize="running_mean"`` and with its default ``"to_first"``. Prints
cross-entropy's norm divided by each. The figures are in `docs/results.md` ("Why UniLoss
accuracy loses under SGD", "Why SLF lost under SGD").

    python benchmarks/gradient_norms.py --task quantiles3-mlp128-sgd

No assertions: it prints a table.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras
import numpy as np
import tensorflow as tf

import keras_adaptive_loss as kal
from keras_adaptive_loss.comparison.loss_presets import SLF_CANDIDATES

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import suite  # the suite's tasks


def gradient_norm(
    model: keras.Model, loss: keras.losses.Loss, x: np.ndarray, y: np.ndarray
) -> float:
    """Mean global gradient norm of ``loss`` over the weights, on the first 10 batches of 64."""
    norms = []
    for start in range(0, min(640, len(x)), 64):  # at most 10 batches
        with tf.GradientTape() as tape:
            value = loss(y[start : start + 64], model(x[start : start + 64]))
        gradients = tape.gradient(value, model.trainable_variables)
        norms.append(float(tf.linalg.global_norm(gradients)))
    return float(np.mean(norms))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", default="quantiles3-mlp128-sgd", choices=list(suite.TASKS))
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--every", type=int, default=5, help="epochs between measurements")
    args = parser.parse_args(argv)
    task = suite.TASKS[args.task]
    data = task.data()
    classes = int(data.y_train.max()) + 1
    y = keras.utils.to_categorical(data.y_train, classes)
    keras.utils.set_random_seed(0)
    model = suite.MODELS[task.model](data.x_train.shape[1:], classes)
    optimizer = (
        keras.optimizers.Adam(task.learning_rate)
        if task.optimizer == "adam"
        else keras.optimizers.SGD(task.learning_rate, momentum=0.9)
    )
    crossentropy = keras.losses.CategoricalCrossentropy()
    losses = {
        "UniLoss accuracy (scale 1)": kal.losses.UniLossAccuracy(seed=0, gradient_scale=1.0),
        "StochasticLoss, running_mean": kal.StochasticLoss(
            list(SLF_CANDIDATES), seed=0, normalize="running_mean"
        ),
        "StochasticLoss (default, to_first)": kal.StochasticLoss(list(SLF_CANDIDATES), seed=0),
    }
    model.compile(optimizer=optimizer, loss=crossentropy, metrics=["accuracy"])
    print(f"{args.task}: cross-entropy's gradient norm / each loss's, along a cross-entropy run")
    print("| epoch | test accuracy | CE norm | " + " | ".join(losses) + " |")
    print("|---" * (3 + len(losses)) + "|")
    test_labels = keras.utils.to_categorical(data.y_test, classes)
    for epoch in range(0, args.epochs + 1, args.every):
        accuracy = model.evaluate(data.x_test, test_labels, verbose=0)[1]
        reference = gradient_norm(model, crossentropy, data.x_train, y)
        ratios = [
            reference / gradient_norm(model, loss, data.x_train, y) for loss in losses.values()
        ]
        cells = " | ".join(f"{ratio:.1f}" for ratio in ratios)
        print(f"| {epoch} | {accuracy:.3f} | {reference:.3f} | {cells} |", flush=True)
        if epoch < args.epochs:
            model.fit(data.x_train, y, batch_size=64, epochs=args.every, verbose=0)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
