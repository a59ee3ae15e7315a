"""Shared fixtures: seeding, strategies and small data sets."""

from __future__ import annotations

import os

import keras
import numpy as np
import pytest
import tensorflow as tf
from hypothesis import settings

# CI (.ci/run sets CI=true) runs the same property-test examples every time, so a submission's
# result does not depend on which examples Hypothesis happens to draw; a local run explores.
settings.register_profile("ci", derandomize=True, database=None)
if os.environ.get("CI"):
    settings.load_profile("ci")


@pytest.fixture(autouse=True)
def seed():
    """Seeds Python, NumPy and the backend before every test; returns the seed."""
    keras.utils.set_random_seed(1234)
    return 1234


@pytest.fixture(scope="session")
def mirrored_strategy():
    """One MirroredStrategy over the two logical CPU devices of the root conftest.

    Session-scoped because of TensorFlow, not of this package: a second MirroredStrategy over
    the same devices restarts the collective instance keys, and its all-reduce then fails
    with "Shape mismatch in the collective instance 100" whenever its model's gradients have
    another size than the first strategy's (reproduced with two plain Keras models).
    """
    devices = [d.name for d in tf.config.list_logical_devices("CPU")]
    assert len(devices) >= 2, "the root conftest should have split the CPU in two"
    return tf.distribute.MirroredStrategy(devices[:2])


@pytest.fixture
def mixed_precision():
    """The ``mixed_float16`` global policy for one test; ``float32`` again afterwards."""
    keras.mixed_precision.set_global_policy("mixed_float16")
    yield
    keras.mixed_precision.set_global_policy("float32")


@pytest.fixture
def toy_classification():
    """64 samples, 8 features, 4 classes: (x, sparse labels)."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 8)).astype("float32")
    y = rng.integers(0, 4, size=64)
    return x, y
