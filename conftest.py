"""Test-session setup that must run before TensorFlow initialises its devices.

Splits the CPU into two logical devices so that `tf.distribute.MirroredStrategy` tests run on
a machine without GPUs. It lives at the repository root so that it also precedes the doctests
collected from the package.
"""

import os

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import tensorflow as tf

NUM_LOGICAL_CPUS = 2

_cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(
    _cpu, [tf.config.LogicalDeviceConfiguration() for _ in range(NUM_LOGICAL_CPUS)]
)
