"""CrossentropyExpectationMix: value (Eq. 12), gradient (Eq. 13), focus (Eq. 14), config."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf
from keras import ops

import keras_adaptive_loss as kal
from tests import reference

NUM_CLASSES = 4


def _batch(seed=0, batch=8):
    rng = np.random.default_rng(seed)
    return rng.integers(0, NUM_CLASSES, size=batch), rng.normal(
        scale=2.0, size=(batch, NUM_CLASSES)
    )


@pytest.mark.parametrize(("alpha", "beta"), [(1.0, 1.0), (1.0, 0.0), (0.0, 1.0), (0.3, 2.5)])
@pytest.mark.parametrize("from_logits", [False, True])
@pytest.mark.parametrize("one_hot", [False, True])
def test_value_matches_numpy(alpha, beta, from_logits, one_hot):
    labels, logits = _batch()
    y_pred = logits if from_logits else reference.softmax(logits)
    y_true = reference.one_hot(labels, NUM_CLASSES) if one_hot else labels
    loss = kal.losses.CrossentropyExpectationMix(alpha=alpha, beta=beta, from_logits=from_logits)
    want = reference.mix(
        reference.one_hot(labels, NUM_CLASSES), reference.softmax(logits), alpha, beta
    ).mean()
    assert float(loss(y_true, y_pred.astype("float32"))) == pytest.approx(want, rel=1e-5)


def test_sample_weight():
    labels, logits = _batch(seed=1)
    weights = np.arange(len(labels), dtype="float64")
    loss = kal.losses.CrossentropyExpectationMix(alpha=0.5, beta=2.0, from_logits=True)
    per_sample = reference.mix(
        reference.one_hot(labels, NUM_CLASSES), reference.softmax(logits), 0.5, 2.0
    )
    got = float(loss(labels, logits.astype("float32"), sample_weight=weights))
    assert got == pytest.approx((weights * per_sample).sum() / len(labels), rel=1e-5)


@pytest.mark.parametrize(("alpha", "beta"), [(1.0, 1.0), (1.0, 5.0), (0.0, 1.0), (2.0, 0.5)])
def test_logit_gradient_matches_paper_eq13(alpha, beta):
    labels, logits = _batch(seed=2)
    loss = kal.losses.CrossentropyExpectationMix(alpha, beta, from_logits=True, reduction="sum")
    variable = tf.Variable(logits, dtype="float64")
    with tf.GradientTape() as tape:
        value = loss.call(labels, variable)
        total = ops.sum(value)
    got = tape.gradient(total, variable).numpy()
    want = reference.mix_logit_gradient(labels, logits, alpha, beta)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(
    ("focus", "alpha", "beta"),
    [(0.0, 1.0, 1.0), (0.1, 1.0, 1.25), (0.25, 1.0, 2.0), (0.4, 1.0, 5.0), (0.5, 0.0, 1.0)],
)
def test_set_focus_follows_paper_eq14(focus, alpha, beta):
    loss = kal.losses.CrossentropyExpectationMix()
    loss.set_focus(focus)
    assert loss.alpha == pytest.approx(alpha)
    assert loss.beta == pytest.approx(beta, rel=1e-6)
    assert loss.focus == pytest.approx(focus, abs=1e-6)


def test_focus_is_where_the_true_class_gradient_peaks():
    # Eq. 13 at j == y as a function of p_y: its magnitude peaks at p_y = F.
    for focus in (0.1, 0.3, 0.45):
        alpha, beta = kal.losses.focus_to_weights(focus)
        p = np.linspace(0, 1, 100001)
        grad = beta * p**2 + p * (alpha - beta) - alpha
        assert p[np.argmax(np.abs(grad))] == pytest.approx(focus, abs=1e-4)


def test_focus_of_pure_crossentropy_and_small_beta_is_zero():
    assert kal.losses.weights_to_focus(1.0, 0.0) == 0.0
    assert kal.losses.weights_to_focus(2.0, 1.0) == 0.0


def test_equals_poly1_with_epsilon_beta():
    labels, logits = _batch(seed=3)
    mix = kal.losses.CrossentropyExpectationMix(alpha=1.0, beta=1.0, from_logits=True)
    poly1 = kal.losses.CandidateLoss("poly1", from_logits=True)
    x = logits.astype("float32")
    assert float(mix(labels, x)) == pytest.approx(float(poly1(labels, x)), rel=1e-6)


@pytest.mark.parametrize(("alpha", "beta"), [(-1.0, 1.0), (1.0, -0.1), (np.nan, 1.0)])
def test_negative_or_nan_weights_raise(alpha, beta):
    with pytest.raises(ValueError, match=r"must be a finite number in \[0, inf\]"):
        kal.losses.CrossentropyExpectationMix(alpha=alpha, beta=beta)


@pytest.mark.parametrize("focus", [-0.1, 0.51, 1.0])
def test_focus_out_of_range_raises(focus):
    loss = kal.losses.CrossentropyExpectationMix()
    with pytest.raises(ValueError, match=r"focus F must lie in \[0, 0.5\]"):
        loss.set_focus(focus)
    assert loss.parameters == {"alpha": 1.0, "beta": 1.0}


def test_unknown_parameter_raises():
    loss = kal.losses.CrossentropyExpectationMix()
    with pytest.raises(ValueError, match=r"no adaptive parameter 'gamma'.*'alpha', 'beta'"):
        loss.set_parameter("gamma", 1.0)


def test_parameters_are_non_trainable_float32_variables():
    loss = kal.losses.CrossentropyExpectationMix()
    for name in ("alpha", "beta"):
        variable = loss.variable(name)
        assert isinstance(variable, keras.Variable)
        assert not variable.trainable
        assert variable.dtype == "float32"


def test_config_records_current_values_and_round_trips():
    loss = kal.losses.CrossentropyExpectationMix(from_logits=True, name="mix")
    loss.set_focus(0.4)
    config = loss.get_config()
    assert config["alpha"] == 1.0 and config["beta"] == pytest.approx(5.0)
    restored = keras.losses.deserialize(keras.losses.serialize(loss))
    assert isinstance(restored, kal.losses.CrossentropyExpectationMix)
    assert restored.get_config() == config
    labels, logits = _batch(seed=4)
    x = logits.astype("float32")
    assert float(restored(labels, x)) == pytest.approx(float(loss(labels, x)))
