"""StochasticLoss modes: the paper's recipe, the entropy bonus, and collapse diagnostics."""

from __future__ import annotations

import warnings

import keras
import numpy as np
import pytest
import tensorflow as tf
from keras import ops

import keras_adaptive_loss as kal
from keras_adaptive_loss.slf.gumbel import (
    entropy_bonus_logit_gradient,
    gumbel_noise,
    mixture_objective_logit_gradient,
)
from tests import reference
from tests.helpers import numeric_gradient

NUM_CLASSES = 3
# A fixed linear decision network h(p) = p W + b, so that Eq. 4 can be computed by hand.
KERNEL = np.array([[1.0, -1.0], [0.5, 2.0], [-2.0, 0.0]], dtype="float32")
BIAS = np.array([0.1, -0.3], dtype="float32")


def _linear_decision():
    return keras.layers.Dense(
        2,
        kernel_initializer=keras.initializers.Constant(KERNEL),
        bias_initializer=keras.initializers.Constant(BIAS),
    )


def _paper(**kwargs):
    settings = dict(
        candidates=["mse", "mae"], num_samples=2, temperature=0.5, seed=0,
        decision_network=_linear_decision(), num_classes=NUM_CLASSES,
    )  # fmt: skip
    settings.update(kwargs)
    return kal.StochasticLoss.paper(**settings)


LABELS = np.array([0, 2])
PROBS = np.array([[0.7, 0.2, 0.1], [0.3, 0.5, 0.2]], dtype="float32")
# Two samples (K = 2) of Gumbel noise for each of the two rows and two candidates.
NOISE = np.array(
    [[[0.3, -0.2], [0.0, 0.5]], [[-0.4, 1.2], [-0.2, 0.3]]], dtype="float32"
)  # fmt: skip


def test_paper_mode_is_the_papers_recipe():
    loss = kal.StochasticLoss.paper(seed=0)
    assert loss.candidate_names == ["mse", "mae", "hinge", "cosine", "bce"]
    assert (loss.hard, loss.normalize, loss.entropy, loss.decision_gradient) == (
        True, "none", 0.0, True,
    )  # fmt: skip
    restored = kal.StochasticLoss.from_config(loss.get_config())
    assert restored.decision_gradient and restored.hard and restored.normalize == "none"


def test_paper_mode_equals_eqs_4_to_11_on_a_hand_computed_case():
    parts = _paper().selection(LABELS, PROBS, NOISE)
    logits = PROBS.astype("float64") @ KERNEL + BIAS  # Eq. 4: h(f(x); v)
    log_p = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    # Eqs. 5-9: hard samples are the one-hot argmax of log p + G (tau does not move an argmax).
    samples = np.eye(2)[(log_p[None] + NOISE).argmax(-1)]
    p_hat = samples.mean(0)  # Eq. 10
    onehot = reference.one_hot(LABELS, NUM_CLASSES)
    values = np.stack([((onehot - PROBS) ** 2).mean(-1), np.abs(onehot - PROBS).mean(-1)], -1)
    np.testing.assert_allclose(ops.convert_to_numpy(parts["log_p"]), log_p, rtol=1e-5)
    np.testing.assert_allclose(ops.convert_to_numpy(parts["p_hat"]), p_hat)
    # By hand: logits (0.7, -0.6) and (0.25, 0.4); with this noise row 0 picks mse in the
    # first sample and mae in the second, row 1 mae in both.
    np.testing.assert_allclose(p_hat, [[0.5, 0.5], [0.0, 1.0]])
    want = (p_hat * values).sum(-1)
    np.testing.assert_allclose(ops.convert_to_numpy(parts["loss"]), want, rtol=1e-6)


def _mean_loss(loss, probs):
    return float(ops.mean(loss.selection(LABELS, probs, NOISE)["loss"]))


def _autodiff(loss, probs):
    variable = tf.Variable(probs)
    with tf.GradientTape() as tape:
        value = ops.mean(loss.selection(LABELS, variable, NOISE)["loss"])
    return tape.gradient(value, variable).numpy()


def test_paper_mode_gradient_reaches_the_model_through_the_decision_network():
    # Soft samples, so that the value itself is differentiable in h and finite differences
    # see the path through the decision network (hard samples pass the same gradient,
    # straight-through).
    paper = _paper(hard=False)
    numeric = numeric_gradient(lambda p: _mean_loss(paper, p.astype("float32")), PROBS, 1e-3)
    analytic = _autodiff(paper, PROBS)
    np.testing.assert_allclose(analytic, numeric, rtol=2e-2, atol=2e-4)
    # Without the path through h (the default) the gradient is only the candidates' part,
    # which misses a visible share of the total.
    candidates_only = _autodiff(_paper(hard=False, decision_gradient=False), PROBS)
    assert np.abs(candidates_only - numeric).max() > 20 * 2e-4


def test_paper_mode_hard_samples_pass_gradient_through_the_decision_network():
    hard = _autodiff(_paper(), PROBS)
    stopped = _autodiff(_paper(decision_gradient=False), PROBS)
    assert np.abs(hard - stopped).max() > 1e-3


def test_entropy_bonus_gradient_equals_autodiff():
    logits = tf.Variable(np.random.default_rng(0).normal(size=(5, 4)).astype("float32"))
    with tf.GradientTape() as tape:
        p = ops.softmax(logits, axis=-1)
        bonus = -0.3 * ops.mean(-ops.sum(p * ops.log(p), axis=-1))
    want = tape.gradient(bonus, logits).numpy()
    got = ops.convert_to_numpy(entropy_bonus_logit_gradient(ops.log_softmax(logits), 0.3))
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-7)


def test_decision_objective_with_entropy_matches_autodiff():
    loss = kal.StochasticLoss(["crossentropy", "mse", "hinge"], entropy=0.5, temperature=0.7)
    rng = np.random.default_rng(2)
    labels = rng.integers(0, 4, size=6)
    probs = reference.softmax(rng.normal(size=(6, 4))).astype("float32")
    noise = gumbel_noise((3, 6, 3), tf.constant([4, 4], tf.int64))
    with tf.GradientTape(persistent=True) as tape:
        parts = loss.selection(labels, probs, noise)
        p = ops.softmax(parts["logits"], axis=-1)
        entropy = ops.mean(-ops.sum(p * ops.log(p), axis=-1))
        objective = parts["objective"] - 0.5 * entropy
    variables = loss.decision_network.network.trainable_variables
    want = tape.gradient(objective, variables)
    got = tape.gradient(parts["logits"], variables, loss._logit_gradient(parts))
    for a, b in zip(want, got, strict=True):
        np.testing.assert_allclose(b.numpy(), a.numpy(), rtol=1e-4, atol=1e-7)
    expected = mixture_objective_logit_gradient(
        parts["logits"], parts["soft_samples"], parts["values"], 0.7
    ) + entropy_bonus_logit_gradient(parts["log_p"], 0.5)
    np.testing.assert_allclose(
        ops.convert_to_numpy(loss._logit_gradient(parts)), ops.convert_to_numpy(expected)
    )


def test_default_selection_starts_uniform():
    loss = kal.StochasticLoss(["crossentropy", "mse", "mae", "hinge"], num_classes=4)
    logits = loss.decision_logits(np.full((3, 4), 0.25, "float32"))
    np.testing.assert_array_equal(ops.convert_to_numpy(logits), np.zeros((3, 4)))


@pytest.mark.parametrize("entropy", [-0.1, float("nan")])
def test_bad_entropy_raises(entropy):
    with pytest.raises(ValueError, match="entropy"):
        kal.StochasticLoss(["crossentropy", "mse"], entropy=entropy)


# Collapse diagnostics -----------------------------------------------------------------------


def _tiny(y_true, y_pred):
    """Label-independent and numerically tiny: the raw mixture's favourite."""
    return 1e-3 * (1.0 - ops.max(y_pred, axis=-1))


def _fit(loss, toy, epochs=3):
    x, y = toy
    model = keras.Sequential(
        [keras.Input((8,)), keras.layers.Dense(16, "relu"), keras.layers.Dense(4, "softmax")]
    )
    model.compile(optimizer="adam", loss=loss)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        history = model.fit(
            x, y, epochs=epochs, batch_size=16, verbose=0,
            callbacks=[kal.callbacks.LossDiagnostics()],
        )  # fmt: skip
    return history, [str(w.message) for w in caught if "collapsed" in str(w.message)]


@pytest.mark.slow
def test_collapse_is_named_and_warned_once(toy_classification):
    loss = kal.StochasticLoss(
        ["crossentropy", _tiny], normalize="none", entropy=0.0, seed=0,
        decision_learning_rate=0.5,
    )  # fmt: skip
    history, messages = _fit(loss, toy_classification, epochs=4)
    assert history.history["slf_weight__tiny"][-1] >= 0.95
    assert loss.collapsed_onto() == "_tiny"
    assert len(messages) == 1 and "'_tiny'" in messages[0]


@pytest.mark.slow
def test_spread_selection_is_not_reported_as_collapsed(toy_classification):
    loss = kal.StochasticLoss(["crossentropy", "mse"], seed=0, decision_learning_rate=0.0)
    history, messages = _fit(loss, toy_classification)
    assert max(history.history["slf_weight_crossentropy"]) < 0.95
    assert loss.collapsed_onto() is None and messages == []
    assert kal.StochasticLoss(["crossentropy"], num_classes=4).collapsed_onto() is None
