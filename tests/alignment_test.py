"""ALA parametric losses (Eqs. 6, 9, 10): values, gradients, Φ inside compiled fit, saving."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf
from hypothesis import given, settings
from hypothesis import strategies as st
from keras import ops

import keras_adaptive_loss as kal
from keras_adaptive_loss.ala import losses as alignment
from tests import helpers, reference

NUM_CLASSES = 4


def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def _numpy_class_correlation(labels, probs, phi, form="soft_target"):
    """The three forms, written from their equations for one-hot labels, sample by sample."""
    out = []
    for label, p in zip(labels, probs, strict=True):
        row = phi[label]
        if form == "sigmoid":  # Eq. 6: -sigmoid(y^T Φ log p)
            out.append(-_sigmoid(row @ np.log(p)))
            continue
        if form == "linear":
            out.append(-(row @ np.log(p)))
            continue
        target = np.array([max(v, 0.0) for v in row])  # off-diagonal positives: target mass
        target[label] = max(row[label], 0.0)
        target /= max(target.sum(), 1e-12)
        penalty = sum(
            -row[j] * -np.log(1.0 - p[j]) for j in range(len(p)) if j != label and row[j] < 0
        )
        out.append(-(target * np.log(p)).sum() + penalty)
    return np.array(out)


def _batch(seed=0, batch=8):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, NUM_CLASSES, size=batch)
    probs = reference.softmax(rng.normal(size=(batch, NUM_CLASSES)))
    return labels, probs


def _symmetric_phi(seed=0):
    rng = np.random.default_rng(seed)
    phi = rng.uniform(-0.5, 0.5, size=(NUM_CLASSES, NUM_CLASSES))
    phi = (phi + phi.T) / 2
    np.fill_diagonal(phi, 1.0)
    return phi


# Class correlation (Eq. 6 and the well-posed default) -------------------------------------------


@pytest.mark.parametrize("form", ["soft_target", "linear", "sigmoid"])
@pytest.mark.parametrize("identity", [True, False])
def test_class_correlation_matches_numpy(form, identity):
    labels, probs = _batch()
    phi = np.eye(NUM_CLASSES) if identity else _symmetric_phi()
    loss = kal.losses.ClassCorrelationLoss(NUM_CLASSES, phi=phi, form=form)
    got = ops.convert_to_numpy(loss.call(labels, probs.astype("float32")))
    np.testing.assert_allclose(got, _numpy_class_correlation(labels, probs, phi, form), rtol=1e-5)


@pytest.mark.parametrize("from_logits", [False, True])
def test_default_at_identity_is_keras_crossentropy_value_and_gradient(from_logits):
    labels, probs = _batch(seed=1)
    y_pred = np.log(probs) + 0.3 if from_logits else probs
    one_hot = reference.one_hot(labels, NUM_CLASSES)
    ours = kal.losses.ClassCorrelationLoss(NUM_CLASSES, from_logits=from_logits)
    for keras_loss, y_true in (
        (keras.losses.SparseCategoricalCrossentropy(from_logits=from_logits), labels),
        (keras.losses.CategoricalCrossentropy(from_logits=from_logits), one_hot),
    ):
        z = tf.Variable(y_pred.astype("float32"))
        with tf.GradientTape(persistent=True) as tape:
            mine, theirs = ours(y_true, z), keras_loss(y_true, z)
        assert float(mine) == pytest.approx(float(theirs), rel=1e-6)
        np.testing.assert_allclose(
            tape.gradient(mine, z).numpy(), tape.gradient(theirs, z).numpy(), rtol=1e-5, atol=1e-7
        )


def test_sigmoid_form_is_eq_6_and_not_crossentropy():
    labels, probs = _batch(seed=1)
    p_y = probs[np.arange(len(labels)), labels]
    sigmoid = kal.losses.ClassCorrelationLoss(NUM_CLASSES, form="sigmoid")
    got = ops.convert_to_numpy(sigmoid.call(labels, probs.astype("float32")))
    np.testing.assert_allclose(got, -p_y / (1 + p_y), rtol=1e-5)  # -sigmoid(log p_y)
    assert not np.allclose(got, -np.log(p_y))


@settings(max_examples=40, deadline=None)
@given(
    entries=st.lists(st.floats(-1.0, 1.0), min_size=16, max_size=16),
    logits=st.lists(st.floats(-30.0, 30.0), min_size=4, max_size=4),
    label=st.integers(0, NUM_CLASSES - 1),
)
def test_default_is_bounded_below_for_every_admissible_phi(entries, logits, label):
    phi = np.array(entries).reshape(NUM_CLASSES, NUM_CLASSES)
    loss = kal.losses.ClassCorrelationLoss(NUM_CLASSES, phi=phi, from_logits=True)
    value = float(loss.call(np.array([label]), np.array([logits], "float32"))[0])
    assert np.isfinite(value) and value >= -1e-6
    linear = kal.losses.ClassCorrelationLoss(NUM_CLASSES, phi=phi, from_logits=True, form="linear")
    del linear  # the linear form has no such bound: see the next test


def test_linear_form_is_unbounded_below_where_the_default_is_not():
    phi = np.eye(2)
    phi[0, 1] = phi[1, 0] = -0.5
    saturated = np.array([[30.0, -30.0]], "float32")  # p_1 -> 0 for a class-0 sample
    confident = np.array([[0.0, 0.0]], "float32")
    linear = kal.losses.ClassCorrelationLoss(2, phi=phi, from_logits=True, form="linear")
    default = kal.losses.ClassCorrelationLoss(2, phi=phi, from_logits=True)
    label = np.array([0])
    assert float(linear(label, saturated)) < float(linear(label, confident)) - 10  # -> -inf
    assert float(default(label, saturated)) >= 0.0


def test_use_sigmoid_is_a_deprecated_spelling_of_form():
    with pytest.warns(DeprecationWarning, match="use form='sigmoid'"):
        loss = kal.losses.ClassCorrelationLoss(3, use_sigmoid=True)
    assert loss.form == "sigmoid" and loss.get_config()["form"] == "sigmoid"
    with pytest.raises(ValueError, match="form must be one of"):
        kal.losses.ClassCorrelationLoss(3, form="tanh")


@pytest.mark.parametrize("form", ["soft_target", "sigmoid"])
def test_class_correlation_gradient_matches_finite_differences(form):
    labels, _ = _batch(seed=2, batch=3)
    logits = np.random.default_rng(2).normal(size=(3, NUM_CLASSES))
    loss = kal.losses.ClassCorrelationLoss(
        NUM_CLASSES, phi=_symmetric_phi(), from_logits=True, form=form
    )
    grad, numeric = helpers.gradients(lambda z: ops.sum(loss.call(labels, z)), logits)
    np.testing.assert_allclose(grad, numeric, rtol=1e-5, atol=1e-8)


class _SetPhiAtEpoch(keras.callbacks.Callback):
    """Sets Φ of the compiled loss at the start of each epoch (as the ALA controller would)."""

    def __init__(self, matrices):
        super().__init__()
        self.matrices = matrices

    def on_epoch_begin(self, epoch, logs=None):
        self.model.loss.set_parameter("phi", self.matrices[epoch])


def _frozen_classifier(loss, **compile_kwargs):
    model = keras.Sequential(
        [keras.Input((8,)), keras.layers.Dense(NUM_CLASSES, activation="softmax")]
    )
    model.compile(optimizer=keras.optimizers.SGD(0.0), loss=loss, **compile_kwargs)
    return model


@pytest.mark.slow
@pytest.mark.parametrize(
    "mode", [{"jit_compile": False}, {"jit_compile": True}], ids=["graph", "jit"]
)
def test_phi_changes_take_effect_inside_compiled_fit(mode, toy_classification):
    x, y = toy_classification
    matrices = [np.eye(NUM_CLASSES), _symmetric_phi(1), _symmetric_phi(2)]
    model = _frozen_classifier(kal.losses.ClassCorrelationLoss(NUM_CLASSES), **mode)
    history = model.fit(
        x, y, epochs=3, batch_size=16, verbose=0, callbacks=[_SetPhiAtEpoch(matrices)]
    )
    probs = model.predict(x, verbose=0).astype("float64")
    for epoch, phi in enumerate(matrices):
        want = _numpy_class_correlation(y, probs, phi).mean()
        assert history.history["loss"][epoch] == pytest.approx(want, rel=1e-5)


@pytest.mark.slow
def test_every_replica_uses_the_same_phi(mirrored_strategy, toy_classification):
    x, y = toy_classification
    matrices = [np.eye(NUM_CLASSES), _symmetric_phi(3)]
    with mirrored_strategy.scope():
        loss = kal.losses.ClassCorrelationLoss(NUM_CLASSES)
        model = _frozen_classifier(loss)
    history = model.fit(
        x, y, epochs=2, batch_size=16, verbose=0, callbacks=[_SetPhiAtEpoch(matrices)]
    )
    probs = model.predict(x, verbose=0).astype("float64")
    assert history.history["loss"][1] == pytest.approx(
        _numpy_class_correlation(y, probs, matrices[1]).mean(), rel=1e-5
    )
    copies = [v.numpy() for v in loss.variable("phi").value.values]
    np.testing.assert_array_equal(copies[0], copies[1])
    np.testing.assert_allclose(copies[0], matrices[1], rtol=1e-6)


def test_adapted_phi_survives_save_and_load(tmp_path, toy_classification):
    x, y = toy_classification
    loss = kal.losses.ClassCorrelationLoss(NUM_CLASSES)
    model = _frozen_classifier(loss)
    model.fit(x, y, epochs=1, verbose=0)
    loss.set_parameter("phi", _symmetric_phi(4))
    model.save(tmp_path / "ala.keras")
    loaded = keras.models.load_model(tmp_path / "ala.keras")
    np.testing.assert_allclose(loaded.loss.get_parameter("phi"), _symmetric_phi(4), rtol=1e-6)
    assert loaded.evaluate(x, y, verbose=0) == pytest.approx(model.evaluate(x, y, verbose=0))


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: kal.losses.ClassCorrelationLoss(1), "num_classes must be an integer >= 2"),
        (
            lambda: kal.losses.ClassCorrelationLoss(3, phi=np.eye(4)),
            r"phi must be a \[3, 3\] matrix",
        ),
        (lambda: kal.losses.ClassCorrelationLoss(2, phi=[[1, 2], [2, 1]]), r"in \[-1, 1\]"),
        (lambda: kal.losses.DistanceMixtureLoss(phi=[1.0] * 9), "phi must have 10 entries"),
        (lambda: kal.losses.DistanceMixtureLoss(phi=[2.0] + [0.0] * 9), r"in \[0, 1\]"),
        (lambda: kal.losses.FocalWeightingLoss(phi=(0.0, 1.0)), "must be a finite number"),
    ],
)
def test_bad_parameters_raise(make, message):
    with pytest.raises(ValueError, match=message):
        make()


def test_set_parameter_checks_the_shape():
    loss = kal.losses.ClassCorrelationLoss(3)
    with pytest.raises(ValueError, match=r"has shape \(3, 3\); got a value of shape \(2, 2\)"):
        loss.set_parameter("phi", np.eye(2))


# Metric learning (Eqs. 9, 10) -------------------------------------------------------------------


def _embeddings(seed=0, batch=10, dims=3):
    rng = np.random.default_rng(seed)
    return rng.integers(0, 3, size=batch), rng.normal(size=(batch, dims))


def _numpy_pairs(labels, embeddings):
    d = np.sqrt(
        ((embeddings[:, None] - embeddings[None]) ** 2).sum(-1) + alignment._DISTANCE_EPSILON
    )
    same = labels[:, None] == labels[None]
    positive = same & ~np.eye(len(labels), dtype=bool)
    return d, positive, ~same


def test_distance_mixture_default_selects_d2_and_half_inverse_d():
    labels, embeddings = _embeddings()
    d, positive, negative = _numpy_pairs(labels, embeddings)
    want = (d**2 * positive).sum(-1) / np.maximum(positive.sum(-1), 1)
    want += (0.5 / d * negative).sum(-1) / np.maximum(negative.sum(-1), 1)
    got = ops.convert_to_numpy(kal.losses.DistanceMixtureLoss().call(labels, embeddings))
    np.testing.assert_allclose(got, want, rtol=1e-5)


def test_distance_mixture_mixes_every_shape():
    labels, embeddings = _embeddings(seed=1)
    phi = np.linspace(0.1, 1.0, 10)
    d, positive, negative = _numpy_pairs(labels, embeddings)
    pull = [d, d**2, np.sqrt(d), np.log1p(d), d**3]
    push = [np.exp(-d), 0.5 / d, 1 / (1 + d), np.maximum(1 - d, 0), np.exp(-(d**2))]
    pull = sum(w * f for w, f in zip(phi[:5], pull, strict=True))
    push = sum(w * f for w, f in zip(phi[5:], push, strict=True))
    want = (pull * positive).sum(-1) / np.maximum(positive.sum(-1), 1)
    want += (push * negative).sum(-1) / np.maximum(negative.sum(-1), 1)
    got = ops.convert_to_numpy(kal.losses.DistanceMixtureLoss(phi=phi).call(labels, embeddings))
    np.testing.assert_allclose(got, want, rtol=1e-5)


def test_focal_weighting_matches_numpy():
    labels, embeddings = _embeddings(seed=2)
    phi, alpha = np.array([2.0, 3.0]), 1.0
    d, positive, negative = _numpy_pairs(labels, embeddings)
    pull = np.log1p((np.exp(phi[0] * (d - alpha)) * positive).sum(-1)) / phi[0]
    push = np.log1p((np.exp(-phi[1] * (d - alpha)) * negative).sum(-1)) / phi[1]
    loss = kal.losses.FocalWeightingLoss(phi=phi, alpha=alpha)
    np.testing.assert_allclose(
        ops.convert_to_numpy(loss.call(labels, embeddings)), pull + push, rtol=1e-5
    )


def test_large_focal_weight_focuses_on_the_hardest_pair():
    labels, embeddings = _embeddings(seed=3)
    d, positive, _ = _numpy_pairs(labels, embeddings)
    hardest = np.where(positive, d - 1.0, -np.inf).max(-1)
    focused = ops.convert_to_numpy(alignment.soft_plus_sum(200.0 * (d - 1.0), positive)) / 200.0
    clear = positive.any(-1) & (hardest > 0.05)  # (1/Φ) log(1 + e^{Φ x}) -> max(x, 0)
    assert clear.any()
    np.testing.assert_allclose(focused[clear], hardest[clear], atol=0.02)


@pytest.mark.parametrize("make", [kal.losses.DistanceMixtureLoss, kal.losses.FocalWeightingLoss])
def test_metric_learning_gradients_match_finite_differences(make):
    labels, embeddings = _embeddings(seed=4, batch=6, dims=2)
    loss = make()
    grad, numeric = helpers.gradients(lambda e: ops.sum(loss.call(labels, e)), embeddings)
    np.testing.assert_allclose(grad, numeric, rtol=1e-5, atol=1e-7)


@pytest.mark.slow
@pytest.mark.parametrize("make", [kal.losses.DistanceMixtureLoss, kal.losses.FocalWeightingLoss])
def test_metric_learning_trains_and_serializes(make, tmp_path):
    rng = np.random.default_rng(5)
    labels = rng.integers(0, 3, size=96)
    x = (rng.normal(size=(96, 6)) + 2.0 * np.eye(3)[labels] @ rng.normal(size=(3, 6))).astype(
        "float32"
    )
    model = keras.Sequential([keras.Input((6,)), keras.layers.Dense(4)])
    model.compile(optimizer=keras.optimizers.Adam(0.01), loss=make(), jit_compile=True)
    history = model.fit(x, labels, epochs=5, batch_size=32, verbose=0)
    assert history.history["loss"][-1] < history.history["loss"][0]
    model.save(tmp_path / "metric.keras")
    restored = keras.models.load_model(tmp_path / "metric.keras")
    assert restored.loss.get_config() == model.loss.get_config()


@pytest.mark.parametrize(
    ("y_true", "y_pred", "message"),
    [(np.zeros((4, 2)), np.zeros((4, 3)), "integer class labels"),
     (np.zeros(4), np.zeros((4, 3, 2)), "embeddings of shape")],
)  # fmt: skip
def test_metric_learning_bad_shapes_raise(y_true, y_pred, message):
    with pytest.raises(ValueError, match=message):
        kal.losses.FocalWeightingLoss()(y_true, y_pred.astype("float32"))
