"""Multiple Gumbel-softmax sampling (stochastic-loss-function paper, Eqs. 5-10)."""

from __future__ import annotations

from typing import Any

import tensorflow as tf
from keras import ops

__all__ = ["gumbel_noise", "multiple_gumbel_softmax", "replica_seed"]

_TINY = 1e-20


def replica_seed(base_seed: Any, counter: Any) -> Any:
    """A stateless-RNG seed from ``(base_seed, counter)``, distinct on every replica.

    A seeded generator gives the same noise on every replica of a `tf.distribute` strategy; the
    replica id is folded into the seed so that each replica draws its own noise (and a run with
    the same ``base_seed`` draws the same noise again).
    """
    seed = tf.stack([tf.cast(base_seed, tf.int64), tf.cast(counter, tf.int64)])
    context = tf.distribute.get_replica_context()
    if context is not None and tf.distribute.has_strategy():
        replica = tf.cast(context.replica_id_in_sync_group, tf.int32)
        seed = tf.random.experimental.stateless_fold_in(seed, replica)
    return seed


def gumbel_noise(shape: Any, seed: Any, dtype: str = "float32") -> Any:
    """Standard Gumbel noise ``G = -log(-log(U))``, ``U ~ U(0, 1)`` (paper Eq. 5)."""
    uniform = tf.random.stateless_uniform(shape, seed=seed, minval=_TINY, maxval=1.0, dtype=dtype)
    return -ops.log(-ops.log(uniform))


def multiple_gumbel_softmax(
    log_p: Any, noise: Any, temperature: Any, hard: bool = False
) -> tuple[Any, Any]:
    """K Gumbel-softmax samples of ``log_p`` and their mean (paper Eqs. 6, 9, 10).

    Args:
        log_p: log-probabilities over the candidates, shape ``[..., n]``.
        noise: Gumbel noise of shape ``[K, ..., n]``; one slice per sample.
        temperature: the Gumbel-softmax temperature tau > 0 (Eq. 6).
        hard: straight-through samples: each sample is the one-hot vector of its argmax in the
            forward pass, with the gradient of the soft sample.

    Returns:
        ``(p_hat, samples)``: the mean of the K samples, shape ``[..., n]`` (Eq. 10), and the
        samples, shape ``[K, ..., n]`` (Eq. 9).
    """
    samples = ops.softmax((log_p[None] + noise) / temperature, axis=-1)
    if hard:
        one_hot = ops.one_hot(ops.argmax(samples, axis=-1), samples.shape[-1], dtype=samples.dtype)
        samples = one_hot + samples - ops.stop_gradient(samples)
    return ops.mean(samples, axis=0), samples
