"""Tune K, tau and the entropy bonus of a StochasticLoss with KerasTuner (random search).

Needs the tuner extra: ``pip install -e ".[tuner,datasets]"``. Runs offline on scikit-learn's
digits; each trial trains a small MLP and is scored by validation accuracy.

    python examples/tune_stochastic_loss.py --trials 2 --epochs 10
"""

from __future__ import annotations

import argparse
import os
import tempfile

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line, read before TensorFlow is imported: ``--help`` and a bad value
    answer at once."""
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--trials", type=int, default=2, help="KerasTuner trials")
    parser.add_argument("--epochs", type=int, default=10, help="training epochs per trial")
    args = parser.parse_args(argv)
    if args.trials < 1:
        parser.error(f"--trials must be >= 1; got {args.trials}")
    if args.epochs < 1:
        parser.error(f"--epochs must be >= 1; got {args.epochs}")
    return args


ARGS = parse_args() if __name__ == "__main__" else None

import keras
from sklearn.datasets import load_digits

import keras_adaptive_loss as kal

try:
    import keras_tuner
except ModuleNotFoundError:  # an optional dependency: say which extra brings it
    raise SystemExit(
        f'{os.path.basename(__file__)} needs KerasTuner: pip install "keras-adaptive-loss[tuner]"'
    ) from None

CANDIDATES = ["crossentropy", "mse", "mae", "hinge", "cosine"]


class StochasticLossHyperModel(keras_tuner.HyperModel):
    """An MLP on digits whose StochasticLoss has tunable K, tau and entropy bonus."""

    def build(self, hp: keras_tuner.HyperParameters) -> keras.Model:
        model = keras.Sequential(
            [
                keras.Input((64,)),
                keras.layers.Dense(64, activation="relu"),
                keras.layers.Dense(10, activation="softmax"),
            ]
        )
        loss = kal.tuning.stochastic_loss(hp, CANDIDATES, seed=0)
        model.compile(optimizer="adam", loss=loss, metrics=["accuracy"])
        return model


def main(trials: int = 2, epochs: int = 10, directory: str | None = None, verbose: int = 0):
    """Runs the search; returns the tuner (its oracle holds every trial)."""
    digits = load_digits()
    x, y = (digits.data / 16.0).astype("float32"), digits.target
    tuner = keras_tuner.RandomSearch(
        StochasticLossHyperModel(),
        objective="val_accuracy",
        max_trials=trials,
        directory=directory or tempfile.mkdtemp(prefix="kal-tuning-"),
        project_name="stochastic_loss",
        seed=0,
        overwrite=True,
    )
    tuner.search(
        x, y, validation_split=0.25, epochs=epochs, batch_size=32, verbose=verbose,
        callbacks=[kal.callbacks.LossDiagnostics()],
    )  # fmt: skip
    for trial in tuner.oracle.trials.values():
        values = trial.hyperparameters.values
        print(
            f"trial {trial.trial_id}: {trial.status}  K={values['slf_num_samples']} "
            f"tau={values['slf_temperature']:.3g} entropy={values['slf_entropy']:.3g}  "
            f"val_accuracy={trial.score}"
        )
    return tuner


if __name__ == "__main__":
    main(ARGS.trials, ARGS.epochs)
