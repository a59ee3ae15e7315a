"""Tune the CE + expectation-loss F protocol with KerasTuner on digits (3 trials by default).

Needs the tuner extra: ``pip install -e ".[tuner,datasets]"``. Each trial trains a small MLP
with `CrossentropyExpectationMix` driven by one of the paper's protocols ("0", "0,0.5",
"0-0.5"), chosen by `kal.tuning.focus_schedule`, and is scored by validation accuracy. The
schedule is a callback, so the hyper-model adds it in ``fit``.

    python examples/tune_focus_schedule.py --trials 3 --epochs 10
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
    parser.add_argument("--trials", type=int, default=3, help="KerasTuner trials")
    parser.add_argument("--epochs", type=int, default=10, help="training epochs per trial")
    args = parser.parse_args(argv)
    if args.trials < 1:
        parser.error(f"--trials must be >= 1; got {args.trials}")
    if args.epochs < 1:
        parser.error(f"--epochs must be >= 1; got {args.epochs}")
    return args


ARGS = parse_args() if __name__ == "__main__" else None

import keras

import keras_adaptive_loss as kal

try:
    import keras_tuner
except ModuleNotFoundError:  # an optional dependency: say which extra brings it
    raise SystemExit(
        f'{os.path.basename(__file__)} needs KerasTuner: pip install "keras-adaptive-loss[tuner]"'
    ) from None


class FocusHyperModel(keras_tuner.HyperModel):
    """An MLP on digits trained with CE+EL under a tuned F protocol."""

    def build(self, hp: keras_tuner.HyperParameters) -> keras.Model:
        model = keras.Sequential(
            [
                keras.Input((64,)),
                keras.layers.Dense(64, activation="relu"),
                keras.layers.Dense(10, activation="softmax"),
            ]
        )
        loss, self.schedule = kal.tuning.focus_schedule(hp)
        model.compile(optimizer="adam", loss=loss, metrics=["accuracy"])
        return model

    def fit(self, hp, model, *args, callbacks=(), **kwargs):
        return model.fit(*args, callbacks=[self.schedule, *callbacks], **kwargs)


def main(trials: int = 3, epochs: int = 10, directory: str | None = None, verbose: int = 0):
    """Runs the search; returns the tuner (its oracle holds every trial)."""
    data = kal.datasets.load("digits")
    tuner = keras_tuner.GridSearch(
        FocusHyperModel(),
        objective="val_accuracy",
        max_trials=trials,
        directory=directory or tempfile.mkdtemp(prefix="kal-tuning-"),
        project_name="focus_schedule",
        seed=0,
        overwrite=True,
    )
    tuner.search(
        data.x_train, data.y_train, validation_split=0.25, epochs=epochs, batch_size=32,
        verbose=verbose,
    )  # fmt: skip
    for trial in tuner.oracle.trials.values():
        print(
            f"trial {trial.trial_id}: {trial.status}  "
            f"protocol={trial.hyperparameters.values['ce_el_protocol']}  "
            f"val_accuracy={trial.score}"
        )
    return tuner


if __name__ == "__main__":
    main(ARGS.trials, ARGS.epochs)
