"""Running state updates exactly when a training step back-propagates through a loss.

Keras 3 does not train variables owned by a loss: ``Model.trainable_variables`` never includes
them and a `keras.losses.Loss` is not a layer. A loss that learns (the decision network of
`StochasticLoss`) or keeps training statistics therefore updates its own state. Doing that in
the forward pass would also update during `evaluate`, the validation pass of `fit` and Keras's
symbolic build. `update_on_backward` instead attaches the update to the gradient of the loss
value: it runs when, and only when, `fit` computes the model's gradients through the loss.

This module is TensorFlow-specific (``tf.custom_gradient``, ``tf.distribute``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import tensorflow as tf

__all__ = [
    "all_replicas_mean",
    "gather_global_batch",
    "in_replica_context",
    "update_on_backward",
]


def update_on_backward(value: Any, update: Callable[[], Any]) -> Any:
    """Returns ``value`` unchanged; calls ``update()`` when gradients flow back through it.

    The gradient passes through unchanged. In graph and XLA mode ``update`` is traced once,
    into the gradient computation of the training step; TensorFlow runs every stateful op of
    a traced function (automatic control dependencies), so the update runs in every step that
    back-propagates through ``value``, before the step returns, ordered after the forward
    pass's reads of the same variables. The gradient does *not* wait for it: the model's own
    backward pass runs alongside the update instead of after it (measured in
    ``benchmarks/overhead.py``: the wait cost `StochasticLoss` ~0.1-0.25 ms of a ~5 ms step on
    2 CPU cores). In eager mode the update runs when the gradient is computed.
    """

    @tf.custom_gradient
    def identity(x):
        def grad(upstream):
            update()
            return tf.identity(upstream)

        return tf.identity(x), grad

    return identity(value)


def in_replica_context() -> bool:
    """Whether code runs inside ``strategy.run`` of a real (non-default) strategy."""
    return tf.distribute.has_strategy() and tf.distribute.in_cross_replica_context() is False


def gather_global_batch(*tensors: Any) -> tuple[Any, ...]:
    """Each tensor concatenated over the replicas along axis 0 (the global batch), for losses
    whose value is a metric of the whole batch; call it in replica context.

    ``all_gather`` loses the static inner shape, which shape checks downstream need, so it is
    restored from the local tensor. A ``None`` (e.g. absent sample weights) stays ``None``.
    """
    context = tf.distribute.get_replica_context()
    return tuple(
        None
        if tensor is None
        else tf.reshape(context.all_gather(tensor, axis=0), (-1, *tensor.shape[1:]))
        for tensor in tensors
    )


def all_replicas_mean(update: Callable[..., Any], values: Sequence[Any]) -> Any:
    """Calls ``update(*means)`` once, in cross-replica context, with ``values`` averaged.

    Under a `tf.distribute` strategy each replica holds its own ``values`` (e.g. gradients of
    its part of the batch); they are averaged over the replicas and ``update`` runs once in
    cross-replica context, where assigning a mirrored variable writes every copy. Without a
    strategy (or already in cross-replica context) ``update(*values)`` is called directly.
    """
    if not in_replica_context():
        return update(*values)

    def merge_fn(strategy, *per_replica):
        means = [strategy.reduce(tf.distribute.ReduceOp.MEAN, v, axis=None) for v in per_replica]
        return update(*means)

    return tf.distribute.get_replica_context().merge_call(merge_fn, args=tuple(values))
