"""StochasticLoss beyond class probabilities: regression, per-token tagging, a multi-term loss.

Three small offline demos of `kal.StochasticLoss` with ``task=`` and sequence outputs, each
printing the test error of the model and the decision network's mean selection weights per
epoch (`kal.callbacks.LossDiagnostics`):

1. Regression on scikit-learn's bundled diabetes data (``task="regression"``, candidates
   mse, mae, huber, log_cosh) — the decision network sees the model's output.
2. Per-token tagging of synthetic token sequences with padding (``Embedding(mask_zero=True)``;
   the loss selects per token and leaves the padded positions out).
3. A two-term "detection" loss (``task="terms"``): a box-regression term and a classification
   term of one output vector, weighted per sample — the paper's use of SLF on a detector's
   multi-term loss.

    python examples/stochastic_loss_outputs.py
    python examples/stochastic_loss_outputs.py --epochs 2
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
        "--epochs",
        type=int,
        default=None,
        help="training epochs of every demo; None: each demo's own",
    )
    args = parser.parse_args(argv)
    if args.epochs is not None and args.epochs < 1:
        parser.error(f"--epochs must be >= 1; got {args.epochs}")
    return args


ARGS = parse_args() if __name__ == "__main__" else None

import keras
import numpy as np
from keras import ops
from sklearn.datasets import load_diabetes

import keras_adaptive_loss as kal


def _weights(history) -> str:
    keys = [k for k in history.history if k.startswith("slf_weight_")]
    return ", ".join(f"{k[len('slf_weight_') :]} {history.history[k][-1]:.2f}" for k in keys)


def regression(epochs: int = 30) -> dict[str, float]:
    """Diabetes progression from 10 features; returns the test MAE and the final weights."""
    data = load_diabetes()
    x = ((data.data - data.data.mean(0)) / data.data.std(0)).astype("float32")
    y = ((data.target - data.target.mean()) / data.target.std())[:, None].astype("float32")
    split = int(0.8 * len(x))
    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [keras.Input((10,)), keras.layers.Dense(32, activation="relu"), keras.layers.Dense(1)]
    )
    loss = kal.StochasticLoss(["mse", "mae", "huber", "log_cosh"], task="regression", seed=0)
    model.compile(optimizer="adam", loss=loss, metrics=["mae"])
    history = model.fit(
        x[:split], y[:split], epochs=epochs, batch_size=32, verbose=0,
        callbacks=[kal.callbacks.LossDiagnostics()],
    )  # fmt: skip
    mae = model.evaluate(x[split:], y[split:], verbose=0)[1]
    print(f"regression: test MAE {mae:.3f} (standardised target); weights: {_weights(history)}")
    return {"mae": float(mae), **{k: v[-1] for k, v in history.history.items() if "slf_" in k}}


def tagging(epochs: int = 10) -> dict[str, float]:
    """Tag each token of padded sequences; returns the token accuracy and the final weights."""
    rng = np.random.default_rng(0)
    vocab, classes, length = 50, 5, 12
    tokens = rng.integers(1, vocab, size=(1200, length))
    lengths = rng.integers(3, length + 1, size=len(tokens))
    tokens[np.arange(length)[None] >= lengths[:, None]] = 0  # padding, masked by Embedding
    labels = (tokens + (np.roll(tokens, 1, axis=1) > vocab // 2)) % classes  # and the previous
    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [
            keras.Input((length,), dtype="int32"),
            keras.layers.Embedding(vocab, 16, mask_zero=True),
            keras.layers.Bidirectional(keras.layers.GRU(16, return_sequences=True)),
            keras.layers.Dense(classes, activation="softmax"),
        ]
    )
    loss = kal.StochasticLoss(["crossentropy", "mse", "hinge"], seed=0)
    model.compile(optimizer="adam", loss=loss, metrics=["accuracy"])
    history = model.fit(
        tokens[:1000], labels[:1000], epochs=epochs, batch_size=32, verbose=0,
        callbacks=[kal.callbacks.LossDiagnostics()],
    )  # fmt: skip
    accuracy = model.evaluate(tokens[1000:], labels[1000:], verbose=0)[1]
    print(f"tagging: test token accuracy {accuracy:.3f}; weights: {_weights(history)}")
    return {
        "accuracy": float(accuracy),
        **{k: v[-1] for k, v in history.history.items() if "slf_" in k},
    }


@keras.saving.register_keras_serializable(package="kal_examples")
def box_term(y_true, y_pred):
    """L1 error of the 4 box coordinates: ``y_true[:, 1:]`` against ``y_pred[:, :4]``."""
    return ops.mean(ops.abs(y_true[:, 1:] - y_pred[:, :4]), axis=-1)


@keras.saving.register_keras_serializable(package="kal_examples")
def class_term(y_true, y_pred):
    """Cross-entropy of the class id ``y_true[:, 0]`` under the logits ``y_pred[:, 4:]``."""
    labels = ops.cast(y_true[:, 0], "int32")
    return keras.losses.sparse_categorical_crossentropy(labels, y_pred[:, 4:], from_logits=True)


def detection(epochs: int = 20) -> dict[str, float]:
    """Box + class of one object per synthetic feature vector; returns both test errors."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(1500, 16)).astype("float32")
    classes = (x[:, :3].sum(1) > 0).astype("int64") + (x[:, 3] > 1).astype("int64")
    boxes = np.tanh(x[:, 4:8] @ rng.normal(size=(4, 4)))
    y = np.concatenate([classes[:, None], boxes], axis=1).astype("float32")
    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [keras.Input((16,)), keras.layers.Dense(64, activation="relu"), keras.layers.Dense(4 + 3)]
    )
    loss = kal.StochasticLoss([box_term, class_term], task="terms", seed=0)
    model.compile(optimizer="adam", loss=loss)
    history = model.fit(
        x[:1200], y[:1200], epochs=epochs, batch_size=32, verbose=0,
        callbacks=[kal.callbacks.LossDiagnostics()],
    )  # fmt: skip
    out = model.predict(x[1200:], verbose=0)
    box_error = float(np.abs(out[:, :4] - boxes[1200:]).mean())
    class_accuracy = float((out[:, 4:].argmax(1) == classes[1200:]).mean())
    print(
        f"detection: test box L1 {box_error:.3f}, class accuracy {class_accuracy:.3f}; "
        f"weights: {_weights(history)}"
    )
    return {"box_l1": box_error, "class_accuracy": class_accuracy}


def main(epochs: int | None = None) -> dict[str, dict[str, float]]:
    """Runs the three demos (``epochs`` overrides each one's default)."""
    options = {} if epochs is None else {"epochs": epochs}
    return {
        "regression": regression(**options),
        "tagging": tagging(**options),
        "detection": detection(**options),
    }


if __name__ == "__main__":
    main(ARGS.epochs)
