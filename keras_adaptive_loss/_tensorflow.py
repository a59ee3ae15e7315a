"""Everything the package needs from TensorFlow that Keras's own API does not provide.

The losses compute their values with `keras.ops`; this internal module holds what has no Keras
equivalent, so that it is the one place that imports TensorFlow:

- state updates that run exactly when a training step back-propagates through a loss
  (`update_on_backward`, a custom gradient with a side effect), and the `tf.distribute`
  plumbing they need (`all_replicas_mean`, `apply_in_replicas`, `gather_global_batch`, ...);
- replica-aware stateless random numbers (`replica_seed`, `stateless_uniform`,
  `stateless_normal`, `fold_in`): the Philox stream of a seed and a counter, folded with the
  replica id under a strategy;
- tracing helpers: whether a value is eager (`is_eager`), the XLA query
  (`in_xla_compilation`), compiled functions (`compiled`), gradient tapes (`GradientTape`),
  creating variables outside a traced function (`outside_traced_functions`), and a checked
  identity that fails a traced step (`checked`);
- strategies: `mirrored_strategy`, `is_strategy`.

It prepares the package for the other Keras backends; it does not add them (see
`keras_adaptive_loss._lazy.check_backend`).
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import tensorflow as tf

__all__ = [
    "TESTED_TENSORFLOW",
    "GradientTape",
    "all_replicas_mean",
    "apply_in_replicas",
    "checked",
    "compiled",
    "fold_in",
    "gather_global_batch",
    "in_cross_replica_build",
    "in_replica_context",
    "in_xla_compilation",
    "is_eager",
    "is_strategy",
    "masked",
    "mirrored_strategy",
    "outside_traced_functions",
    "producing_op",
    "replica_seed",
    "split_over_replicas",
    "stateless_normal",
    "stateless_uniform",
    "tensorflow_version",
    "update_on_backward",
]

#: TensorFlow versions (major, minor) whose private XLA-context query is tested.
TESTED_TENSORFLOW = ((2, 21), (2, 21))

#: TensorFlow's gradient tape (Keras has no backend-neutral one).
GradientTape = tf.GradientTape

_warned: set[str] = set()


# State updates on the backward pass ----------------------------------------------------------


def update_on_backward(value: Any, update: Callable[[], Any]) -> Any:
    """Returns ``value`` unchanged; calls ``update()`` when gradients flow back through it.

    Keras 3 does not train variables owned by a loss, so a loss that learns (the decision
    network of `StochasticLoss`) or keeps training statistics updates its own state. Doing
    that in the forward pass would also update during `evaluate`, the validation pass of
    `fit` and Keras's symbolic build; attached to the gradient of the loss value, the update
    runs when, and only when, `fit` computes the model's gradients through the loss.

    The gradient passes through unchanged. In graph and XLA mode ``update`` is traced once,
    into the gradient computation of the training step; TensorFlow runs every stateful op of
    a traced function (automatic control dependencies), so the update runs in every step that
    back-propagates through ``value``, before the step returns, ordered after the forward
    pass's reads of the same variables. The gradient does *not* wait for it: the model's own
    backward pass runs alongside the update instead of after it. In eager mode the update runs
    when the gradient is computed.
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


def in_cross_replica_build() -> bool:
    """Whether a loss is called in cross-replica context of a real strategy: Keras's symbolic
    build under a strategy, where there is no training step and nothing to learn."""
    return tf.distribute.has_strategy() and tf.distribute.in_cross_replica_context()


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


def apply_in_replicas(optimizer: Any, gradients: Sequence[Any], variables: Sequence[Any]) -> None:
    """Applies a Keras ``optimizer`` to ``gradients`` that are already the replicas' mean.

    Without a strategy this is ``optimizer.apply(gradients, variables)``. Under a strategy, in
    cross-replica context (inside `all_replicas_mean`'s update), Keras's optimizers must be
    applied in replica context, where they sum the gradients over the replicas; each replica
    therefore applies ``gradient / replicas``, as Keras's own ``LossScaleOptimizer`` applies
    its inner optimizer from cross-replica context.
    """
    if not in_cross_replica_build():
        optimizer.apply(list(gradients), list(variables))
        return
    strategy = tf.distribute.get_strategy()
    replicas = strategy.num_replicas_in_sync

    def apply(*means: Any) -> None:
        optimizer.apply([g / replicas for g in means], list(variables))

    strategy.extended.call_for_each_replica(apply, args=tuple(gradients))


@contextlib.contextmanager
def outside_traced_functions() -> Iterator[None]:
    """Creates variables eagerly, in the current strategy, even while a step is traced."""
    with tf.init_scope(), tf.distribute.get_strategy().scope():
        yield


# Random numbers -----------------------------------------------------------------------------


def replica_seed(base_seed: Any, counter: Any) -> Any:
    """A stateless-random seed from a base seed and a draw counter, distinct per replica.

    A seeded generator gives the same noise on every replica of a `tf.distribute` strategy;
    the replica id is folded in so that replicas draw independently (with one device, or in
    cross-replica context, the seed is ``(base_seed, counter)``).
    """
    seed = tf.stack([tf.cast(base_seed, tf.int64), tf.cast(counter, tf.int64)])
    context = tf.distribute.get_replica_context()
    if context is not None and tf.distribute.has_strategy():
        replica = tf.cast(context.replica_id_in_sync_group, tf.int32)
        seed = fold_in(seed, replica)
    return seed


def fold_in(seed: Any, data: Any) -> Any:
    """A new seed from ``seed`` and an integer ``data`` (Philox)."""
    return tf.random.experimental.stateless_fold_in(seed, data, alg="philox")


def stateless_uniform(
    shape: Any, seed: Any, minval: float = 0.0, maxval: float = 1.0, dtype: str = "float32"
) -> Any:
    """Uniform numbers in ``[minval, maxval)``, a pure function of ``seed`` (Philox)."""
    return tf.random.stateless_uniform(
        shape, tf.cast(seed, tf.int64), minval=minval, maxval=maxval, dtype=dtype, alg="philox"
    )


def stateless_normal(shape: Any, seed: Any) -> Any:
    """Standard normal float32 numbers, a pure function of ``seed`` (Philox)."""
    return tf.random.stateless_normal(shape, seed=seed, alg="philox")


# Tracing ------------------------------------------------------------------------------------


def is_eager(tensor: Any = None) -> bool:
    """Whether code runs eagerly (and ``tensor``, if given, holds a concrete value)."""
    return tf.executing_eagerly() and (tensor is None or not tf.is_symbolic_tensor(tensor))


def producing_op(tensor: Any, pass_through: Sequence[str] = ()) -> str | None:
    """Type of the op that computed ``tensor`` in a traced graph, looking through up to four
    ``pass_through`` ops (e.g. the cast mixed precision adds after a softmax); ``None`` when
    eager."""
    if not tf.is_symbolic_tensor(tensor):
        return None
    op = getattr(tensor, "op", None)
    for _ in range(4):
        if op is None or not hasattr(op, "type"):
            return None
        if op.type not in pass_through or not op.inputs:
            return op.type
        op = op.inputs[0].op
    return None


def compiled(function: Callable[..., Any], input_signature: Any = None) -> Callable[..., Any]:
    """``function`` as a TensorFlow graph function, traced once per input signature.

    ``input_signature``: a list of ``(shape, dtype)`` pairs, one per argument, or ``None``
    (retracing is then reduced to generalised shapes).
    """
    if input_signature is None:
        return tf.function(function, reduce_retracing=True)
    specs = [tf.TensorSpec(shape, dtype) for shape, dtype in input_signature]
    return tf.function(function, input_signature=specs)


def checked(tensor: Any, condition: Any, message: Callable[[], Sequence[Any]]) -> Any:
    """``tensor``, after checking ``condition`` in the traced step: a false condition fails
    the step with ``message()`` (strings and tensors, the first ten values of each shown),
    built only in the failing branch."""

    def fail():
        assertion = tf.debugging.Assert(False, list(message()), summarize=10)
        with tf.control_dependencies([assertion]):
            return tf.constant(False)

    check = tf.cond(condition, lambda: tf.constant(True), fail)
    with tf.control_dependencies([check]):
        return tf.identity(tensor)


def masked(values: Any, mask: Any) -> Any:
    """The elements of ``values`` where ``mask`` is true (a data-dependent shape)."""
    return tf.boolean_mask(values, mask)


def in_xla_compilation() -> bool:
    """Whether the calling code is being traced for XLA (``jit_compile=True``).

    Reads ``tf.__internal__.get_enclosing_xla_context`` (TensorFlow has no public query). If a
    TensorFlow version lacks it, answers ``True`` (the choice that is correct under XLA and
    merely slower without it) and warns once.

    Example:

    >>> import tensorflow as tf
    >>> from keras_adaptive_loss.private_api import in_xla_compilation
    >>> in_xla_compilation()
    False
    >>> compiled = tf.function(lambda: tf.constant(in_xla_compilation()), jit_compile=True)
    >>> bool(compiled())
    True
    """
    enclosing = getattr(tf.__internal__, "get_enclosing_xla_context", None)
    if enclosing is None:
        if "xla" not in _warned:
            _warned.add("xla")
            low, high = TESTED_TENSORFLOW
            warnings.warn(
                f"TensorFlow {tf.__version__} has no tf.__internal__.get_enclosing_xla_context "
                f"(tested with {low[0]}.{low[1]}-{high[0]}.{high[1]}); keras-adaptive-loss "
                "assumes XLA, so UniLoss average precision uses its bucketed layout (correct, "
                "slower without XLA). Pass layout='compact' to UniLossAveragePrecision to "
                "choose it yourself.",
                RuntimeWarning,
                stacklevel=3,
            )
        return True
    return enclosing() is not None


def tensorflow_version() -> tuple[int, int]:
    """The installed TensorFlow's (major, minor) version."""
    major, minor = tf.__version__.split(".")[:2]
    return int(major), int(minor)


# Strategies ---------------------------------------------------------------------------------


def mirrored_strategy() -> Any:
    """A `tf.distribute.MirroredStrategy` over the visible devices."""
    return tf.distribute.MirroredStrategy()


def is_strategy(value: Any) -> bool:
    """Whether ``value`` is a `tf.distribute.Strategy`."""
    return isinstance(value, tf.distribute.Strategy)


def split_over_replicas(strategy: Any, *batches: Any) -> tuple[Any, ...] | None:
    """Each (nested) array of one global batch split into ``strategy``'s replicas as ``fit``
    splits a batch: equal consecutive slices, replica ``r`` taking the ``r``-th (distributed
    values, for ``strategy.run``); ``None`` when the batch does not split evenly."""
    replicas = int(strategy.num_replicas_in_sync)
    size = len(tf.nest.flatten(batches)[0])
    if size % replicas:
        return None
    share = size // replicas

    def split(array: Any) -> Any:
        def local(context: Any) -> Any:
            start = context.replica_id_in_sync_group * share
            return tf.convert_to_tensor(array[start : start + share])

        return strategy.experimental_distribute_values_from_function(local)

    return tuple(tf.nest.map_structure(split, batch) for batch in batches)


# Input pipelines ----------------------------------------------------------------------------


def is_dataset(value: Any) -> bool:
    """Whether ``value`` is a `tf.data.Dataset`."""
    return isinstance(value, tf.data.Dataset)


def dataset_size(dataset: Any) -> int | None:
    """The number of elements of ``dataset``, or ``None`` when TensorFlow cannot tell."""
    size = int(dataset.cardinality())
    return size if size >= 0 else None
