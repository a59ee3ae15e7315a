"""Multi-Similarity loss (Wang et al. 2019) against a NumPy reference written from Eqs. 12-13
and 15, its gradient, the mining, and training in compiled `fit` (graph, XLA, mirrored,
mixed precision, save/load)."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_adaptive_loss as kal
from keras_adaptive_loss.ala.controllers.metrics import nearest_neighbour_error
from tests.helpers import assert_trains_in_float16

MS = kal.losses.MultiSimilarityLoss


def np_multi_similarity(labels, embeddings, alpha, beta, lam, eps, mining=True):
    z = embeddings / np.linalg.norm(embeddings, axis=-1, keepdims=True)
    s = z @ z.T
    values = []
    for i in range(len(labels)):
        others = np.arange(len(labels)) != i
        pos = s[i][others & (labels == labels[i])]
        neg = s[i][labels != labels[i]]
        if mining:  # Eq. 12 (negatives) and Eq. 13 (positives), against the unmined sets
            kept_neg = neg[neg > pos.min() - eps] if len(pos) else neg
            kept_pos = pos[pos < neg.max() + eps] if len(neg) else pos
            pos, neg = kept_pos, kept_neg
        value = np.log1p(np.exp(-alpha * (pos - lam)).sum()) / alpha  # Eq. 15
        values.append(value + np.log1p(np.exp(beta * (neg - lam)).sum()) / beta)
    return np.mean(values)


def _batch(seed=0, batch=12, dims=4):
    rng = np.random.default_rng(seed)
    return rng.integers(0, 3, size=batch), rng.normal(size=(batch, dims))


@pytest.mark.parametrize("mining", [True, False])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_value_and_gradient_match_the_equations(mining, seed):
    labels, embeddings = _batch(seed)
    loss = MS(alpha=2.0, beta=10.0, threshold=0.4, epsilon=0.1, mining=mining)
    variable = tf.Variable(embeddings)
    with tf.GradientTape() as tape:
        value = loss(labels, variable)
    gradient = tape.gradient(value, variable).numpy()

    def reference(e):
        return np_multi_similarity(labels, e, 2.0, 10.0, 0.4, 0.1, mining)

    assert float(value) == pytest.approx(reference(embeddings), rel=1e-6)
    numeric = np.zeros_like(embeddings)
    for index in np.ndindex(embeddings.shape):
        up, down = embeddings.copy(), embeddings.copy()
        up[index] += 1e-6
        down[index] -= 1e-6
        numeric[index] = (reference(up) - reference(down)) / 2e-6
    np.testing.assert_allclose(gradient, numeric, atol=1e-5)


def test_mining_keeps_only_pairs_near_the_boundary():
    # Anchor 0: positives at cos 0.99 and 0.5; negatives at cos 0.6 (harder than the weakest
    # positive, kept) and -1 (far below it, dropped). The positive at 0.99 is more similar
    # than every negative + epsilon, so it is dropped; the one at 0.5 is kept.
    s = np.array(
        [[1.0, 0.99, 0.5, 0.6, -1.0]], "float32"
    )  # similarities of anchor 0 to samples 0..4
    positive = np.array([[False, True, True, False, False]])
    negative = np.array([[False, False, False, True, True]])
    keep_pos, keep_neg = kal.losses.metric_learning.mine_pairs(s, positive, negative, 0.1)
    np.testing.assert_array_equal(keep_pos, [[False, False, True, False, False]])
    np.testing.assert_array_equal(keep_neg, [[False, False, False, True, False]])


def test_a_separated_batch_has_zero_loss_with_mining():
    embeddings = np.array([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0], [0.1, 0.9]])
    labels = np.array([0, 0, 1, 1])
    assert float(MS()(labels, embeddings)) == 0.0  # nothing survives mining
    assert float(MS(mining=False)(labels, embeddings)) > 0.0


def test_bad_arguments_and_inputs_raise():
    with pytest.raises(ValueError, match="alpha must be > 0"):
        MS(alpha=0)
    with pytest.raises(ValueError, match="epsilon must be >= 0"):
        MS(epsilon=-0.1)
    with pytest.raises(ValueError, match=r"embeddings of shape \[batch, dimensions\]"):
        MS()(np.array([0, 1]), np.zeros((2, 3, 1)))
    with pytest.raises(ValueError, match="integer class labels"):
        MS()(np.eye(3), np.zeros((3, 2)))


def _clusters(n=240, seed=0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 4, size=n)
    centers = rng.normal(size=(4, 16)) * 1.5
    return (centers[y] + rng.normal(size=(n, 16)) * 1.5).astype("float32"), y


def _embedder():
    return keras.Sequential(
        [keras.Input((16,)), keras.layers.Dense(32, activation="relu"), keras.layers.Dense(8)]
    )


@pytest.mark.slow
@pytest.mark.parametrize("jit", [False, True], ids=["graph", "xla"])
def test_trains_an_embedding_in_compiled_fit(jit):
    x, y = _clusters()
    keras.utils.set_random_seed(0)
    model = _embedder()
    before = nearest_neighbour_error(y, model.predict(x, verbose=0))
    model.compile(keras.optimizers.Adam(1e-2), MS(), jit_compile=jit)
    model.fit(x, y, epochs=10, batch_size=48, verbose=0)
    after = nearest_neighbour_error(y, model.predict(x, verbose=0))
    assert after < 0.6 * before, (before, after)


def test_round_trip_in_safe_mode(tmp_path):
    x, y = _clusters(96)
    model = _embedder()
    loss = MS(alpha=3.0, beta=40.0, threshold=0.6, epsilon=0.05, mining=False)
    model.compile("adam", loss)
    model.fit(x, y, epochs=1, verbose=0)
    model.save(tmp_path / "ms.keras")
    restored = keras.models.load_model(tmp_path / "ms.keras", safe_mode=True)
    assert type(restored.loss) is MS and restored.loss.get_config() == loss.get_config()


@pytest.mark.slow
def test_trains_under_mirrored_strategy_with_per_replica_pairs(mirrored_strategy):
    x, y = _clusters()
    with mirrored_strategy.scope():
        keras.utils.set_random_seed(0)
        model = _embedder()
        model.compile(keras.optimizers.Adam(1e-2), MS())
    history = model.fit(x, y, epochs=4, batch_size=48, verbose=0)
    assert np.all(np.isfinite(history.history["loss"]))
    assert history.history["loss"][-1] < history.history["loss"][0]


def test_mixed_precision_gives_float32_values(mixed_precision):
    x, y = _clusters()
    assert_trains_in_float16(_embedder(), MS(), x, y, batch_size=48)
