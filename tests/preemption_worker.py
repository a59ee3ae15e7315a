"""Training worker for the preemption test: run, get SIGKILLed, run again, compare.

    python -m tests.preemption_worker OUTPUT_DIR [--slow]

Trains one small model per adaptive loss (with its callbacks) in a fixed order, each with
`keras.callbacks.BackupAndRestore` under ``OUTPUT_DIR/backup_<name>``. A finished loss writes
``OUTPUT_DIR/<name>.weights.h5`` (everything Keras checkpoints: model, optimizer and the
loss-held layers) and ``OUTPUT_DIR/<name>.json`` (adapted parameters and controller counters);
a restarted worker skips finished losses and resumes the interrupted one from its backup.
``OUTPUT_DIR/current`` names the loss in training. ``--slow`` sleeps 15 ms per batch so that a
kill lands mid-training (it changes no number).
"""

from __future__ import annotations

import argparse
import json
import os
import time

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras
import numpy as np

import keras_adaptive_loss as kal

EPOCHS = 8


def _data():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(256, 8)).astype("float32")
    y = (x[:, 0] > 0).astype("int64") + 2 * (x[:, 1] > 0).astype("int64")
    return x, y


def _setups(x, y):
    validation = (x[:48], y[:48])
    return {
        "mix": lambda: (
            kal.losses.CrossentropyExpectationMix(),
            [kal.callbacks.FocusSchedule("0-0.5")],
        ),
        "stochastic": lambda: (
            kal.StochasticLoss(["crossentropy", "mse", "hinge"], seed=0),
            [kal.callbacks.TemperatureSchedule(lambda epoch: 2.0 / (1 + epoch))],
        ),
        "uniloss": lambda: (kal.losses.UniLossAccuracy(seed=0), []),
        "ala": lambda: (
            kal.losses.ClassCorrelationLoss(4),
            # both signs, so that Φ surely moves within this short run
            [kal.callbacks.AdaptiveLossAlignment(validation, period=6, seed=0, softening=True)],
        ),
    }


NAMES = ("mix", "stochastic", "uniloss", "ala")


class _Slow(keras.callbacks.Callback):
    def on_train_batch_begin(self, batch, logs=None):
        time.sleep(0.015)


def _state(loss, callbacks) -> dict:
    state = {name: np.asarray(value).tolist() for name, value in loss.parameters.items()}
    for callback in callbacks:
        if isinstance(callback, kal.callbacks.AdaptiveLossAlignment):
            state["ala_decisions"] = callback.decisions
            state["ala_baseline"] = float(callback.controller.baseline.numpy())
            state["ala_memory_size"] = callback.controller.memory.size
            state["ala_action_draws"] = int(callback.controller.actions_stream.counter.numpy())
            state["ala_replay_draws"] = int(callback.controller.memory.stream.counter.numpy())
    if isinstance(loss, kal.StochasticLoss):
        state["draws"] = int(keras.ops.convert_to_numpy(loss.state.draws))
    if isinstance(loss, kal.losses.UniLoss):
        state["draws"] = int(loss.draws)
    return {key: (str(value) if isinstance(value, dict) else value) for key, value in state.items()}


def train(name: str, output: str, slow: bool) -> None:
    x, y = _data()
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(4, activation="softmax")])
    loss, callbacks = _setups(x, y)[name]()
    model.compile(optimizer=keras.optimizers.Adam(0.01), loss=loss)
    backup = keras.callbacks.BackupAndRestore(
        os.path.join(output, f"backup_{name}"), double_checkpoint=True
    )
    extra = [_Slow()] if slow else []
    model.fit(
        x, y, epochs=EPOCHS, batch_size=16, shuffle=False, verbose=0,
        callbacks=[*callbacks, backup, *extra],
    )  # fmt: skip
    model.save_weights(os.path.join(output, f"{name}.weights.h5"))
    with open(os.path.join(output, f"{name}.json.tmp"), "w") as file:
        json.dump(_state(loss, callbacks), file)
    os.replace(os.path.join(output, f"{name}.json.tmp"), os.path.join(output, f"{name}.json"))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("output")
    parser.add_argument("--slow", action="store_true")
    args = parser.parse_args()
    os.makedirs(args.output, exist_ok=True)
    for name in NAMES:
        if os.path.exists(os.path.join(args.output, f"{name}.json")):
            continue
        with open(os.path.join(args.output, "current"), "w") as file:
            file.write(name)
        train(name, args.output, args.slow)


if __name__ == "__main__":
    main()
