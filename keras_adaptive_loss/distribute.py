"""Multi-worker training: a `MultiWorkerMirroredStrategy` that Keras 3's ``fit`` can use.

Keras 3's TensorFlow trainer calls ``strategy.reduce`` in two ways that
`tf.distribute.MultiWorkerMirroredStrategy` rejects when there is more than one worker
(keras-team/keras issue 20585; checked with Keras 3.8-3.15 and TensorFlow 2.18-2.21):

1. before the first step, ``reduce("MEAN", batch)`` on the whole ``(x, y)`` structure (to get
   a batch for the symbolic build): the collective path reduces single tensors only
   ("Attempt to convert a value ... PerReplica ... to a Tensor");
2. after each step, ``reduce("MEAN", logs, axis=0)`` on scalar metrics: "Invalid reduction
   dimension 0 for input with 0 dimensions".

`multi_worker_strategy` returns a subclass whose ``reduce`` maps over nested structures and
treats ``axis=0`` on a scalar as ``axis=None`` — exactly what the two calls mean, through the
strategy's public ``reduce``; Keras itself is not patched. `broadcast_from_chief` makes a
host-side decision (ALA's actions) identical on every worker.

Usage, on every worker (``TF_CONFIG`` names the cluster, as for any multi-worker job)::

    strategy = kal.distribute.multi_worker_strategy()
    with strategy.scope():
        model = build_model()
        model.compile(optimizer="adam", loss=kal.StochasticLoss([...]))
    model.fit(dataset, epochs=10, callbacks=[kal.callbacks.LossDiagnostics()])
"""

from __future__ import annotations

import warnings
from typing import Any

import keras
import numpy as np
import tensorflow as tf

__all__ = [
    "TESTED_KERAS",
    "broadcast_from_chief",
    "is_multi_worker",
    "multi_worker_strategy",
    "worker_count",
]

#: Keras versions (major, minor) the workaround is tested with.
TESTED_KERAS = ((3, 8), (3, 15))


def _keras_version() -> tuple[int, int]:
    major, minor = keras.version().split(".")[:2]
    return int(major), int(minor)


class _KerasCompatibleMultiWorkerMirroredStrategy(tf.distribute.MultiWorkerMirroredStrategy):
    """`MultiWorkerMirroredStrategy` whose ``reduce`` accepts what Keras 3's ``fit`` passes."""

    def reduce(self, reduce_op: Any, value: Any, axis: int | None) -> Any:
        if tf.nest.is_nested(value):
            return tf.nest.map_structure(lambda v: self.reduce(reduce_op, v, axis), value)
        if axis is not None:
            local = (
                self.experimental_local_results(value)[0]
                if isinstance(value, tf.distribute.DistributedValues)
                else value
            )
            if hasattr(local, "shape") and tf.TensorShape(local.shape).rank == 0:
                axis = None  # a scalar per replica: the mean over replicas is the mean
        return super().reduce(reduce_op, value, axis)


def multi_worker_strategy(**kwargs: Any) -> tf.distribute.MultiWorkerMirroredStrategy:
    """A `tf.distribute.MultiWorkerMirroredStrategy` that Keras 3's ``fit`` can train with.

    Takes the arguments of `tf.distribute.MultiWorkerMirroredStrategy` (``cluster_resolver``,
    ``communication_options``). With Keras 3 the returned strategy carries the ``reduce``
    workaround described in the module docstring; Keras versions newer than the tested range
    get it too, with a warning to check whether Keras has fixed issue 20585.

    Raises:
        ValueError: with Keras 2, which needs no workaround (use the TF strategy directly).

    >>> import keras_adaptive_loss as kal
    >>> strategy = kal.distribute.multi_worker_strategy()  # without TF_CONFIG: this worker only
    >>> strategy.num_replicas_in_sync, kal.distribute.is_multi_worker(strategy)
    (1, False)
    """
    version = _keras_version()
    if version[0] != 3:
        raise ValueError(
            f"kal.distribute.multi_worker_strategy works around a Keras 3 issue; with Keras "
            f"{keras.version()} use tf.distribute.MultiWorkerMirroredStrategy directly."
        )
    if version > TESTED_KERAS[1]:
        warnings.warn(
            f"kal.distribute.multi_worker_strategy is tested with Keras "
            f"{TESTED_KERAS[0][0]}.{TESTED_KERAS[0][1]}-{TESTED_KERAS[1][0]}.{TESTED_KERAS[1][1]}"
            f"; Keras {keras.version()} may have fixed keras-team/keras#20585, in which case "
            "the plain tf.distribute.MultiWorkerMirroredStrategy works too.",
            stacklevel=2,
        )
    return _KerasCompatibleMultiWorkerMirroredStrategy(**kwargs)


def is_multi_worker(strategy: tf.distribute.Strategy | None = None) -> bool:
    """Whether ``strategy`` (default: the current one) spans more than one worker process.

    >>> import tensorflow as tf
    >>> import keras_adaptive_loss as kal
    >>> kal.distribute.is_multi_worker(tf.distribute.MirroredStrategy(["/cpu:0"]))
    False
    """
    return worker_count(strategy) > 1


def worker_count(strategy: tf.distribute.Strategy | None = None) -> int:
    """How many worker processes ``strategy`` (default: the current one) spans; 1 without any.

    Read from the strategy's public ``cluster_resolver``: the ``chief`` and ``worker`` tasks of
    its cluster spec (a `MultiWorkerMirroredStrategy` without ``TF_CONFIG`` has an empty one).
    Strategies without a cluster resolver (default, `MirroredStrategy`) run in one process.

    Example:

    >>> import tensorflow as tf
    >>> import keras_adaptive_loss as kal
    >>> kal.distribute.worker_count(tf.distribute.MirroredStrategy(["/cpu:0"]))
    1
    """
    strategy = strategy or tf.distribute.get_strategy()
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None:
        return 1
    spec = resolver.cluster_spec()
    count = sum(spec.num_tasks(job) for job in ("chief", "worker") if job in spec.jobs)
    return max(count, 1)


def broadcast_from_chief(value: Any, strategy: tf.distribute.Strategy | None = None) -> np.ndarray:
    """The chief's (worker 0's) ``value`` on every worker; ``value`` itself without workers.

    Call it at the same point on every worker, from host code (e.g. a callback), with a value
    of the same shape: it is an all-reduce of ``value`` on the chief and zeros elsewhere.

    >>> import keras_adaptive_loss as kal
    >>> kal.distribute.broadcast_from_chief([1.0, 2.0]).tolist()  # one process: the value itself
    [1.0, 2.0]
    """
    array = np.asarray(value)
    strategy = strategy or tf.distribute.get_strategy()
    if not is_multi_worker(strategy):
        return array
    is_chief = strategy.cluster_resolver.task_id == 0
    contribution = tf.constant(array.astype("float64") if is_chief else np.zeros(array.shape))
    total = strategy.reduce(tf.distribute.ReduceOp.SUM, contribution, axis=None)
    result = np.asarray(total.numpy())
    return (
        np.rint(result).astype(array.dtype)
        if array.dtype.kind in "iub"
        else result.astype(array.dtype)
    )
