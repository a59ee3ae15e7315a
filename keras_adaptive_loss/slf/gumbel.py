"""Multiple Gumbel-softmax sampling (stochastic-loss-function paper, Eqs. 5-10)."""

from __future__ import annotations

from typing import Any

from keras import ops

from keras_adaptive_loss._tensorflow import stateless_uniform

__all__ = [
    "entropy_bonus_logit_gradient",
    "gumbel_noise",
    "gumbel_softmax_samples",
    "mixture_objective_logit_gradient",
    "multiple_gumbel_softmax",
    "straight_through",
]

_TINY = 1e-20


def gumbel_noise(shape: Any, seed: Any, dtype: str = "float32") -> Any:
    """Standard Gumbel noise ``G = -log(-log(U))``, ``U ~ U(0, 1)`` (paper Eq. 5), from
    a stateless Philox stream: the same ``seed`` draws the same noise on every
    device and under XLA.
    """
    uniform = stateless_uniform(shape, seed, minval=_TINY, maxval=1.0, dtype=dtype)
    exponential = -ops.log(uniform)  # Exp(1) draws; 0 where uniform rounds to 1
    return -ops.log(ops.maximum(exponential, _TINY))


def gumbel_softmax_samples(log_p: Any, noise: Any, temperature: Any) -> Any:
    """The K soft Gumbel-softmax samples ``softmax((log p + G_k) / tau)`` (paper Eq. 6)."""
    return ops.softmax((log_p[None] + noise) / temperature, axis=-1)


def mixture_objective_logit_gradient(
    logits: Any, soft_samples: Any, values: Any, temperature: Any, probabilities: Any = None
) -> Any:
    """Gradient of ``J = mean_b sum_i p_hat_bi v_bi`` w.r.t. the decision logits ``z``.

    ``p_hat`` is the mean of the K Gumbel-softmax samples ``s_k = softmax((log_softmax(z) +
    G_k) / tau)`` (Eqs. 6, 10) and ``v`` is held constant. In closed form,
    ``dJ/dlog p = sum_k s_k * (v - <s_k, v>) / (K tau N)`` and, through the log-softmax,
    ``dJ/dz = g - softmax(z) * sum(g)``. Straight-through (hard) samples have the same
    gradient. Writing it out replaces ~60 autodiff ops per training step by ~10, which is
    most of the decision network's cost per step without XLA.

    Args:
        logits: decision logits ``z``, shape ``[..., n]``.
        soft_samples: the soft samples, shape ``[K, ..., n]``.
        values: candidate values ``v``, shape ``[..., n]``.
        temperature: tau.
        probabilities: ``softmax(logits)`` when the caller has it already (e.g. as
            ``exp(log_p)``), which saves a softmax.
    """
    num_samples = soft_samples.shape[0]
    count = ops.cast(ops.size(values) // values.shape[-1], values.dtype)
    centred = values[None] - ops.sum(soft_samples * values[None], axis=-1, keepdims=True)
    scale = 1.0 / (num_samples * temperature * count)
    g = ops.sum(soft_samples * centred, axis=0) * scale
    if probabilities is None:
        probabilities = ops.softmax(logits, axis=-1)
    return g - probabilities * ops.sum(g, axis=-1, keepdims=True)


def entropy_bonus_logit_gradient(log_p: Any, weight: Any) -> Any:
    """Gradient of ``-weight * mean_b H(softmax(z_b))`` w.r.t. the decision logits ``z``.

    The entropy bonus keeps the selection from collapsing onto one candidate unless the
    candidates' values keep pulling it there. Takes ``log_p = log_softmax(z)`` (already
    computed for the Gumbel samples). With ``p = softmax(z)`` and ``H = -sum_i p_i log p_i``,
    ``dH/dz_j = -p_j (log p_j + H)``, so the gradient of the bonus is
    ``weight * p_j (log p_j + H) / N`` (N: number of rows averaged).
    """
    count = ops.cast(ops.size(log_p) // log_p.shape[-1], log_p.dtype)
    p = ops.exp(log_p)
    entropy = -ops.sum(p * log_p, axis=-1, keepdims=True)
    return weight * p * (log_p + entropy) / count


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
    samples = gumbel_softmax_samples(log_p, noise, temperature)
    if hard:
        samples = straight_through(samples)
    return ops.mean(samples, axis=0), samples


def straight_through(samples: Any) -> Any:
    """One-hot vectors of the samples' argmax, with the gradient of the soft samples."""
    index = ops.argmax(samples, axis=-1)
    one_hot = ops.one_hot(index, samples.shape[-1], dtype=samples.dtype)
    return one_hot + samples - ops.stop_gradient(samples)
