"""Every registry candidate against an independent NumPy reference, and its gradient."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf
from keras import ops

import keras_adaptive_loss as kal
from keras_adaptive_loss.losses import candidates, registry
from tests import helpers, reference

NAMES = kal.losses.available()
NUM_CLASSES = 5
#: Candidates defined on logits only: with probabilities they raise.
LOGITS_ONLY = {"squentropy", "sparsemax"}


def _batch(from_logits, seed=0, batch=6):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, NUM_CLASSES, size=batch)
    logits = rng.normal(scale=2.0, size=(batch, NUM_CLASSES))
    y_pred = logits if from_logits else reference.softmax(logits)
    return labels, y_pred


@pytest.mark.slow
@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("from_logits", [False, True])
@pytest.mark.parametrize("label_format", ["sparse", "sparse_column", "one_hot"])
def test_candidate_matches_numpy(name, from_logits, label_format):
    labels, y_pred = _batch(from_logits)
    y_true = {
        "sparse": labels,
        "sparse_column": labels[:, None],
        "one_hot": reference.one_hot(labels, NUM_CLASSES),
    }[label_format]
    fn = kal.losses.get_candidate(name, from_logits=from_logits)
    if name in LOGITS_ONLY and not from_logits:
        with pytest.raises(ValueError, match="logits"):
            fn(y_true, y_pred.astype("float32"))
        return
    got = ops.convert_to_numpy(fn(y_true, y_pred.astype("float32")))
    want = reference.candidate(
        name,
        reference.one_hot(labels, NUM_CLASSES),
        reference.probabilities(y_pred, from_logits),
        logits=y_pred,
    )
    assert got.shape == (len(labels),)
    np.testing.assert_allclose(got, want, rtol=2e-5, atol=2e-6)


@pytest.mark.parametrize(
    ("name", "keras_fn", "shift"),
    [
        ("crossentropy", keras.losses.categorical_crossentropy, 0.0),
        ("mse", keras.losses.mean_squared_error, 0.0),
        ("mae", keras.losses.mean_absolute_error, 0.0),
        ("hinge", keras.losses.categorical_hinge, 0.0),
        ("cosine", keras.losses.cosine_similarity, 1.0),
        ("bce", keras.losses.binary_crossentropy, 0.0),
    ],
)
def test_candidate_agrees_with_keras_counterpart(name, keras_fn, shift):
    labels, probs = _batch(from_logits=False, seed=3)
    onehot = reference.one_hot(labels, NUM_CLASSES).astype("float32")
    got = ops.convert_to_numpy(kal.losses.get_candidate(name)(labels, probs.astype("float32")))
    want = shift + ops.convert_to_numpy(keras_fn(onehot, probs.astype("float32")))
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("name", NAMES)
def test_candidate_with_sample_weight(name):
    labels, logits = _batch(from_logits=True, seed=1)
    weights = np.linspace(0.0, 2.0, len(labels))
    loss = kal.losses.CandidateLoss(name, from_logits=True)
    got = float(loss(labels, logits.astype("float32"), sample_weight=weights))
    per_sample = reference.candidate(
        name, reference.one_hot(labels, NUM_CLASSES), reference.softmax(logits), logits=logits
    )
    np.testing.assert_allclose(got, (weights * per_sample).sum() / len(labels), rtol=2e-5)


@pytest.mark.slow
@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("from_logits", [False, True])
def test_candidate_gradient_matches_finite_differences(name, from_logits):
    labels, y_pred = _batch(from_logits, seed=2, batch=3)
    if not from_logits:  # keep probabilities away from the clip and kinks
        y_pred = 0.05 + 0.9 * y_pred
    if name in LOGITS_ONLY and not from_logits:
        pytest.skip(f"{name} is defined on logits only (checked to raise above)")
    fn = kal.losses.get_candidate(name, from_logits=from_logits)
    analytic, numeric = helpers.gradients(lambda v: ops.sum(fn(labels, v)), y_pred)
    np.testing.assert_allclose(analytic, numeric, rtol=1e-5, atol=1e-7)


def test_low_precision_predictions_are_computed_in_float32():
    labels, logits = _batch(from_logits=True)
    value = kal.losses.get_candidate("crossentropy", from_logits=True)(
        labels, logits.astype("float16")
    )
    assert keras.backend.standardize_dtype(value.dtype) == "float32"


def test_soft_labels_use_the_label_distribution():
    soft = np.array([[0.5, 0.5, 0.0]])
    probs = np.array([[0.2, 0.6, 0.2]], dtype="float32")
    got = float(kal.losses.get_candidate("expectation")(soft, probs)[0])
    assert got == pytest.approx(1 - (0.5 * 0.2 + 0.5 * 0.6))


@pytest.mark.parametrize(
    ("y_true", "y_pred", "message"),
    [
        (np.zeros((4, 3)), np.full((4, 5), 0.2), "Cannot match labels"),
        (np.zeros((4,)), np.full((4, 1), 1.0), "num_classes >= 2"),
        (np.zeros((4, 2, 3)), np.full((4, 5), 0.2), "Cannot match labels"),
    ],
)
def test_mismatched_shapes_raise_value_error(y_true, y_pred, message):
    with pytest.raises(ValueError, match=message):
        kal.losses.get_candidate("crossentropy")(y_true, y_pred.astype("float32"))


def test_sequence_outputs_give_one_value_per_position():
    rng = np.random.default_rng(4)
    labels = rng.integers(0, 3, size=(2, 7))
    probs = reference.softmax(rng.normal(size=(2, 7, 3))).astype("float32")
    got = ops.convert_to_numpy(kal.losses.get_candidate("crossentropy")(labels, probs))
    want = -np.log(np.take_along_axis(probs, labels[..., None], -1)[..., 0])
    np.testing.assert_allclose(got, want, rtol=1e-5)


def test_shared_terms_clip_a_saturated_true_class_where_keras_reads_the_logits():
    """The behaviour the module docstring states: in a traced step Keras's cross-entropy (and
    `crossentropy` with sparse labels) reads the logits behind a softmax, while the shared
    terms clip the probability at epsilon, which leaves that sample no gradient."""
    logits = tf.constant([[20.0, 0.0, 0.0], [2.0, 1.0, 0.0]])
    labels = tf.constant([1, 0])  # sample 0: p_y = 1 / (e^20 + 2) ~ 2e-9 < epsilon
    crossentropy = kal.losses.get_candidate("crossentropy")

    @tf.function
    def values_and_gradients(z):
        with tf.GradientTape(persistent=True) as tape:
            tape.watch(z)
            probs = tf.nn.softmax(z)
            shared = registry.per_sample_values([crossentropy], labels, probs)[0]
            alone = candidates.crossentropy(labels, probs)
            keras_ce = keras.losses.sparse_categorical_crossentropy(labels, probs)
            values = [shared, alone, keras_ce]
            totals = [ops.sum(v) for v in values]
        return values, [tape.gradient(total, z) for total in totals]

    (shared, alone, keras_ce), (g_shared, g_alone, g_keras) = values_and_gradients(logits)
    z = logits.numpy()
    log_p = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
    exact = -log_p[[0, 1], [1, 0]]  # ~20.0 and ~0.41
    np.testing.assert_allclose(keras_ce.numpy(), exact, rtol=1e-5)
    np.testing.assert_allclose(alone.numpy(), exact, rtol=1e-5)
    epsilon = keras.config.epsilon()
    np.testing.assert_allclose(shared.numpy(), [-np.log(epsilon), exact[1]], rtol=1e-5)
    softmax_minus_onehot = np.exp(log_p) - np.eye(3)[[1, 0]]
    np.testing.assert_allclose(g_keras.numpy(), softmax_minus_onehot, atol=1e-6)
    np.testing.assert_allclose(g_alone.numpy(), softmax_minus_onehot, atol=1e-6)
    np.testing.assert_allclose(g_shared.numpy()[0], 0.0)  # the clipped sample: no gradient
    np.testing.assert_allclose(g_shared.numpy()[1], softmax_minus_onehot[1], atol=1e-6)
