"""Multi-Similarity loss with its pair mining (Wang et al., CVPR 2019).

On the in-batch pairs of L2-normalised embeddings — the same pairs as the ALA metric-learning
losses (`keras_adaptive_loss.ala.losses`) — with cosine similarities ``S_ij``:

1. **mining** (Eqs. 12-13): for anchor ``i``, a negative pair ``{i, j}`` is kept when
   ``S_ij > min_{y_k = y_i} S_ik - epsilon`` (it is more similar than the hardest positive,
   up to a margin), a positive pair when ``S_ij < max_{y_k != y_i} S_ik + epsilon``;
2. **weighting** (Eq. 15), over the kept pairs ``P_i`` and ``N_i``::

       L = 1/m sum_i [ 1/alpha log(1 + sum_{k in P_i} exp(-alpha (S_ik - lambda)))
                     + 1/beta  log(1 + sum_{k in N_i} exp( beta (S_ik - lambda))) ]
"""

from __future__ import annotations

from typing import Any

import keras
import numpy as np
from keras import ops

from keras_adaptive_loss.ala.losses import (
    check_metric_learning_inputs,
    pair_masks,
    soft_plus_sum,
)
from keras_adaptive_loss.losses import candidates

__all__ = ["MultiSimilarityLoss", "cosine_similarities", "mine_pairs"]


def cosine_similarities(embeddings: Any) -> Any:
    """``S = Z Z^T`` of the L2-normalised rows ``Z``: ``[batch, batch]``, entries in [-1, 1].

    >>> s = cosine_similarities(np.array([[3.0, 4.0], [-4.0, 3.0]]))
    >>> ops.convert_to_numpy(s).round(4).tolist()
    [[1.0, 0.0], [0.0, 1.0]]
    """
    embeddings = candidates.as_float(embeddings)
    unit = embeddings / ops.sqrt(ops.sum(ops.square(embeddings), axis=-1, keepdims=True) + 1e-12)
    return ops.matmul(unit, ops.transpose(unit))


def mine_pairs(similarities: Any, positive: Any, negative: Any, epsilon: float) -> tuple:
    """The informative pairs of Eqs. 12-13: ``(positive, negative)`` masks after mining.

    A negative pair is kept when it is more similar than the anchor's least similar positive
    minus ``epsilon``; a positive pair when it is less similar than the anchor's most similar
    negative plus ``epsilon``. An anchor without positives keeps none of its negatives (and
    vice versa), so it adds nothing to the loss, as the authors' code skips it.

    >>> s = cosine_similarities(np.array([[1.0, 0.0], [1.0, 1.0], [0.0, 2.0]]))
    >>> ops.convert_to_numpy(s).round(4).tolist()
    [[1.0, 0.7071, 0.0], [0.7071, 1.0, 0.7071], [0.0, 0.7071, 1.0]]
    >>> labels = np.array([0, 0, 1])
    >>> same, other = labels[:, None] == labels, labels[:, None] != labels
    >>> keep_positive, keep_negative = mine_pairs(s, same & ~np.eye(3, dtype=bool), other, 0.1)
    >>> ops.convert_to_numpy(keep_positive).astype(int).tolist()  # only 1 -> 0 is hard
    [[0, 0, 0], [1, 0, 0], [0, 0, 0]]
    >>> ops.convert_to_numpy(keep_negative).astype(int).tolist()  # anchor 2 has no positive
    [[0, 0, 0], [0, 0, 1], [0, 0, 0]]
    """
    big = ops.cast(2.0, similarities.dtype)  # beyond any cosine similarity
    hardest_positive = ops.min(ops.where(positive, similarities, big), axis=-1, keepdims=True)
    hardest_negative = ops.max(ops.where(negative, similarities, -big), axis=-1, keepdims=True)
    keep_negative = ops.logical_and(negative, similarities > hardest_positive - epsilon)
    keep_positive = ops.logical_and(positive, similarities < hardest_negative + epsilon)
    return keep_positive, keep_negative


@keras.saving.register_keras_serializable(package="keras_adaptive_loss")
class MultiSimilarityLoss(keras.losses.Loss):
    """Multi-Similarity loss with pair mining (Wang et al. 2019, Eqs. 12-13 and 15).

    ``y_pred`` holds embeddings ``[batch, dimensions]`` (normalised here to unit length),
    ``y_true`` one integer label per sample; pairs with the same label are positives. Each
    sample's value is its anchor term of Eq. 15 over the pairs that survive mining (0 when
    none does), so Keras's mean gives ``L``.

    Defaults: ``alpha = 2``, ``beta = 50`` and ``epsilon = 0.1`` as in the paper's
    experiments; ``lambda = 0.5``, the authors' released configuration (their code's
    ``THRESH``; with ``lambda = 1`` a negative pair contributes only once its cosine
    similarity is close to 1).

    Args:
        alpha: scale of the positive term (> 0).
        beta: scale of the negative term (> 0).
        threshold: ``lambda``, the similarity margin of Eq. 15.
        epsilon: mining margin of Eqs. 12-13 (>= 0).
        mining: ``False`` weights every pair (Eq. 15 without Eqs. 12-13).
        name: as for any Keras loss.
        reduction: as for any Keras loss.
        dtype: as for any Keras loss.

    >>> import numpy as np
    >>> embeddings = np.array([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0], [0.1, 0.9]])
    >>> labels = np.array([0, 0, 1, 1])  # two tight, well separated classes
    >>> round(float(MultiSimilarityLoss()(labels, embeddings)), 4)
    0.0
    >>> round(float(MultiSimilarityLoss(mining=False)(labels, embeddings)), 4)
    0.1583

    References:
        Wang, Han, Huang, Dong & Scott, "Multi-Similarity Loss with General Pair Weighting
        for Deep Metric Learning", CVPR 2019.
    """

    def __init__(
        self,
        alpha: float = 2.0,
        beta: float = 50.0,
        threshold: float = 0.5,
        epsilon: float = 0.1,
        mining: bool = True,
        name: str = "multi_similarity_loss",
        reduction: str | None = "sum_over_batch_size",
        dtype: Any = None,
    ) -> None:
        for label, value in (("alpha", alpha), ("beta", beta)):
            if not np.isfinite(value) or value <= 0:
                raise ValueError(f"{label} must be > 0; got {value!r}.")
        if not np.isfinite(threshold):
            raise ValueError(f"threshold must be a finite number; got {threshold!r}.")
        if not np.isfinite(epsilon) or epsilon < 0:
            raise ValueError(f"epsilon must be >= 0; got {epsilon!r}.")
        super().__init__(name=name, reduction=reduction, dtype=dtype)
        self.alpha = float(alpha)
        self.beta = float(beta)
        self.threshold = float(threshold)
        self.epsilon = float(epsilon)
        self.mining = bool(mining)

    def call(self, y_true: Any, y_pred: Any) -> Any:
        y_pred = ops.convert_to_tensor(y_pred)
        check_metric_learning_inputs(y_true, y_pred, type(self).__name__)
        similarities = cosine_similarities(y_pred)
        positive, negative = pair_masks(y_true, ops.shape(similarities)[0])
        if self.mining:
            positive, negative = mine_pairs(
                ops.stop_gradient(similarities), positive, negative, self.epsilon
            )
        shifted = similarities - self.threshold
        pull = soft_plus_sum(-self.alpha * shifted, positive) / self.alpha
        push = soft_plus_sum(self.beta * shifted, negative) / self.beta
        return pull + push

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(
            alpha=self.alpha,
            beta=self.beta,
            threshold=self.threshold,
            epsilon=self.epsilon,
            mining=self.mining,
        )
        return config
