"""Test helpers shared by several test modules."""

from __future__ import annotations

from collections.abc import Callable

import keras
import numpy as np
import tensorflow as tf


def gradients(total: Callable[[tf.Tensor], tf.Tensor], x: np.ndarray, step: float = 1e-6):
    """``(autodiff gradient, central finite differences)`` of a scalar ``total(x)`` (float64)."""
    variable = tf.Variable(np.asarray(x, "float64"))
    with tf.GradientTape() as tape:
        value = total(variable)
    analytic = tape.gradient(value, variable).numpy()
    numeric = np.zeros_like(analytic)
    for index in np.ndindex(analytic.shape):
        plus, minus = np.array(x, "float64"), np.array(x, "float64")
        plus[index] += step
        minus[index] -= step
        numeric[index] = (float(total(tf.constant(plus))) - float(total(tf.constant(minus)))) / (
            2 * step
        )
    return analytic, numeric


def value_and_gradient(loss: Callable, y_true, y_pred) -> tuple[float, np.ndarray]:
    """``(float(loss(y_true, y_pred)), d loss / d y_pred)`` by autodiff."""
    variable = tf.Variable(y_pred)
    with tf.GradientTape() as tape:
        value = loss(y_true, variable)
    return float(value), tape.gradient(value, variable).numpy()


def numeric_gradient(function: Callable, x: np.ndarray, step: float = 1e-6) -> np.ndarray:
    """Central finite differences of a NumPy scalar ``function`` at ``x``."""
    gradient = np.zeros_like(x)
    for index in np.ndindex(x.shape):
        up, down = x.copy(), x.copy()
        up[index] += step
        down[index] -= step
        gradient[index] = (function(up) - function(down)) / (2 * step)
    return gradient


class InterruptError(Exception):
    """Raised by `InterruptAtEpoch` to stop fit as a preemption would."""


class InterruptAtEpoch(keras.callbacks.Callback):
    """Stops training when ``epoch`` begins, by raising `InterruptError`."""

    def __init__(self, epoch: int) -> None:
        super().__init__()
        self.epoch = epoch

    def on_epoch_begin(self, epoch, logs=None):
        if epoch == self.epoch:
            raise InterruptError


def assert_trains_in_float16(model, loss, x, y, batch_size: int = 32) -> None:
    """``model`` (built under the ``mixed_float16`` policy) trains two epochs with ``loss`` to
    finite values, computes in float16, and ``loss`` still returns float32."""
    model.compile(optimizer=keras.optimizers.Adam(1e-2), loss=loss)
    history = model.fit(x, y, epochs=2, batch_size=batch_size, verbose=0)
    assert np.all(np.isfinite(history.history["loss"]))
    assert model.layers[-1].compute_dtype == "float16"
    assert loss(y[:8], model(x[:8])).dtype == "float32"


def assert_same_stochastic_state(loss, restored) -> None:
    """A reloaded `StochasticLoss` has the config, decision network (weights and Adam moments)
    and selection statistics (running means, draw counter) of the saved one."""
    assert restored.get_config() == loss.get_config()
    for a, b in zip(loss.decision_network.weights, restored.decision_network.weights, strict=True):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    for a, b in zip(loss.state.weights, restored.state.weights, strict=True):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
