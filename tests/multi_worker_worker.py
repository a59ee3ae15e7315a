"""One worker of the multi-worker test: ``python -m tests.multi_worker_worker INDEX PORTS OUT``.

Joins a two-worker cluster on 127.0.0.1 (``PORTS`` = "port0,port1"; no other address), trains
a small model with each adaptive loss and its callbacks under
`kal.distribute.multi_worker_strategy`, and writes every final weight and adapted parameter to
``OUT/worker<INDEX>.npz``. The ALA controller gets a different seed on each worker: only the
chief's broadcast decisions keep the workers' Φ identical.
"""

from __future__ import annotations

import json
import os
import sys

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras
import numpy as np
import tensorflow as tf

import keras_adaptive_loss as kal


def _dataset(x, y, batch_size=32):
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return tf.data.Dataset.from_tensor_slices((x, y)).batch(batch_size).with_options(options)


def main(index: int, ports: list[str], output: str) -> None:
    # TF_CONFIG is read when the strategy is created.
    os.environ["TF_CONFIG"] = json.dumps(
        {
            "cluster": {"worker": [f"127.0.0.1:{port}" for port in ports]},
            "task": {"type": "worker", "index": index},
        }
    )
    strategy = kal.distribute.multi_worker_strategy()
    assert strategy.num_replicas_in_sync == 2
    assert kal.distribute.worker_count(strategy) == 2 and kal.distribute.is_multi_worker(strategy)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(256, 8)).astype("float32")
    y = (x[:, 0] > 0).astype("int64") + 2 * (x[:, 1] > 0).astype("int64")
    validation = (x[:64], y[:64])
    setups = {
        "mix": (lambda: kal.losses.CrossentropyExpectationMix(), lambda: [
            kal.callbacks.FocusSchedule("0-0.5")]),
        "stochastic": (lambda: kal.StochasticLoss(["crossentropy", "mse"], seed=0), lambda: [
            kal.callbacks.TemperatureSchedule(lambda epoch: 1.0 / (1 + epoch)),
            kal.callbacks.LossDiagnostics()]),
        "uniloss_accuracy": (lambda: kal.losses.UniLossAccuracy(seed=0), list),
        "uniloss_ap": (lambda: kal.losses.UniLossAveragePrecision(seed=0), list),
        "ala": (lambda: kal.losses.ClassCorrelationLoss(4), lambda: [
            # both signs, so that the few decisions of this short run surely move Φ
            kal.callbacks.AdaptiveLossAlignment(
                validation, period=4, seed=10 + index, softening=True)]),
    }  # fmt: skip
    arrays = {}
    for name, (make_loss, make_callbacks) in setups.items():
        classes = 2 if name == "uniloss_ap" else 4
        labels = (y > 1).astype("int64") if classes == 2 else y
        keras.utils.set_random_seed(0)
        with strategy.scope():
            model = keras.Sequential(
                [keras.Input((8,)), keras.layers.Dense(classes, activation="softmax")]
            )
            model.compile(optimizer=keras.optimizers.Adam(0.01), loss=make_loss())
        history = model.fit(_dataset(x, labels), epochs=3, verbose=0, callbacks=make_callbacks())
        for i, weight in enumerate(model.get_weights()):
            arrays[f"{name}/weight{i}"] = weight
        for key, value in model.loss.parameters.items():
            arrays[f"{name}/{key}"] = np.asarray(value)
        if isinstance(model.loss, kal.StochasticLoss):
            for i, weight in enumerate(model.loss.decision_network.get_weights()):
                arrays[f"{name}/decision{i}"] = weight
        arrays[f"{name}/loss"] = np.asarray(history.history["loss"])
    np.savez(os.path.join(output, f"worker{index}.npz"), **arrays)


if __name__ == "__main__":
    main(int(sys.argv[1]), sys.argv[2].split(","), sys.argv[3])
