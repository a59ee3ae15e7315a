"""The adapted parameters the callbacks log reach TensorBoard through the stock callback."""

from __future__ import annotations

import glob
import os

import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_adaptive_loss as kal


def _scalars(log_dir: str) -> dict[str, list[float]]:
    """Tag -> values, read back from every event file under ``log_dir``/train."""
    values: dict[str, list[float]] = {}
    for path in sorted(glob.glob(os.path.join(log_dir, "train", "events.out.tfevents.*"))):
        for event in tf.compat.v1.train.summary_iterator(path):
            for value in event.summary.value:
                if value.tag.startswith("epoch_"):  # Keras's per-epoch scalars
                    values.setdefault(value.tag, []).append(float(tf.make_ndarray(value.tensor)))
    return values


def _fit(loss, callbacks, log_dir, toy, epochs=3):
    x, y = toy
    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [keras.Input((x.shape[1],)), keras.layers.Dense(int(y.max()) + 1, activation="softmax")]
    )
    model.compile(optimizer="adam", loss=loss)
    board = keras.callbacks.TensorBoard(log_dir=str(log_dir))
    model.fit(x, y, epochs=epochs, batch_size=16, verbose=0, callbacks=[*callbacks, board])


@pytest.fixture
def toy():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 5)).astype("float32")
    return x, (x[:, 0] > 0).astype("int64") + (x[:, 1] > 0).astype("int64")


def test_focus_schedule_scalars(tmp_path, toy):
    schedule = kal.callbacks.FocusSchedule([0.0, 0.25, 0.5])
    _fit(kal.losses.CrossentropyExpectationMix(), [schedule], tmp_path, toy)
    scalars = _scalars(str(tmp_path))
    np.testing.assert_allclose(scalars["epoch_focus"], [0.0, 0.25, 0.5], atol=1e-6)
    np.testing.assert_allclose(scalars["epoch_alpha"], [1.0, 1.0, 0.0], atol=1e-6)
    np.testing.assert_allclose(scalars["epoch_beta"], [1.0, 2.0, 1.0], atol=1e-6)


def test_stochastic_loss_selection_weights_and_temperature(tmp_path, toy):
    loss = kal.StochasticLoss(["crossentropy", "mse"], seed=0)
    schedule = kal.callbacks.TemperatureSchedule(lambda epoch: 2.0 / (epoch + 1))
    _fit(loss, [schedule, kal.callbacks.LossDiagnostics()], tmp_path, toy)
    scalars = _scalars(str(tmp_path))
    weights = np.array([scalars["epoch_slf_weight_crossentropy"], scalars["epoch_slf_weight_mse"]])
    assert weights.shape == (2, 3)
    np.testing.assert_allclose(weights.sum(0), 1.0, atol=1e-5)  # selection weights sum to one
    np.testing.assert_allclose(scalars["epoch_slf_temperature"], [2.0, 1.0, 2.0 / 3], rtol=1e-5)


@pytest.mark.slow
def test_alignment_controller_scalars(tmp_path, toy):
    x, y = toy
    ala = kal.callbacks.AdaptiveLossAlignment(
        (x[:16], y[:16]), period=2, evaluations_per_period=2, seed=0
    )
    _fit(kal.losses.ClassCorrelationLoss(3), [ala], tmp_path, toy)
    scalars = _scalars(str(tmp_path))
    assert scalars["epoch_ala_decisions"] == [2.0, 4.0, 6.0]  # 4 steps per epoch, period 2
    assert len(scalars["epoch_ala_parameter_mean"]) == 3
    assert np.isfinite(scalars["epoch_ala_reward"]).all()
