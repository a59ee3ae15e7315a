"""StochasticLoss beyond class probabilities: regression, per-token sequences, multi-term losses."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf
from keras import ops

import keras_adaptive_loss as kal
from keras_adaptive_loss.slf.gumbel import gumbel_noise
from tests import reference
from tests.helpers import assert_same_stochastic_state

MODES = {
    "eager": {"run_eagerly": True},
    "graph": {"run_eagerly": False, "jit_compile": False},
    "jit": {"run_eagerly": False, "jit_compile": True},
}


def _decision_weights(loss):
    return [v.numpy().copy() for v in loss.decision_network.network.trainable_variables]


def _changed(before, after):
    return any(not np.allclose(a, b) for a, b in zip(before, after, strict=True))


def _fit_and_check_learning(model, loss, x, y, mode_settings, epochs=2, batch_size=16):
    """Compiles (in the model's strategy), fits, and checks that the decision network learned."""
    with model.distribute_strategy.scope():
        model.compile(optimizer="adam", loss=loss, **mode_settings)
    model.fit(x, y, epochs=1, batch_size=batch_size, verbose=0)
    before = _decision_weights(loss)
    history = model.fit(x, y, epochs=epochs, batch_size=batch_size, verbose=0)
    assert _changed(before, _decision_weights(loss))
    assert np.all(np.isfinite(history.history["loss"]))
    return history


def _roundtrip(tmp_path, model, loss, x, y):
    path = tmp_path / "model.keras"
    model.save(path)
    loaded = keras.models.load_model(path)
    restored = loaded.loss
    assert isinstance(restored, kal.StochasticLoss)
    assert_same_stochastic_state(loss, restored)
    before = _decision_weights(restored)
    loaded.fit(x, y, epochs=1, batch_size=16, verbose=0)
    assert _changed(before, _decision_weights(restored))


# Regression ---------------------------------------------------------------------------------

REGRESSION = ["mse", "mae", "huber", "log_cosh"]


@pytest.fixture
def regression_data():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 5)).astype("float32")
    y = (x @ rng.normal(size=(5, 2)) + 0.1 * rng.standard_t(2, size=(64, 2))).astype("float32")
    return x, y


def _regressor():
    return keras.Sequential(
        [keras.Input((5,)), keras.layers.Dense(16, activation="relu"), keras.layers.Dense(2)]
    )


def test_regression_values_match_numpy():
    loss = kal.StochasticLoss(REGRESSION, task="regression", normalize="none", num_classes=2)
    rng = np.random.default_rng(1)
    y_true = rng.normal(size=(6, 2)).astype("float32")
    y_pred = rng.normal(size=(6, 2)).astype("float32") * 2
    noise = ops.convert_to_numpy(gumbel_noise((3, 6, 4), tf.constant([1, 2], tf.int64)))
    parts = loss.selection(y_true, y_pred, noise)
    error = y_pred.astype("float64") - y_true
    absolute = np.abs(error)
    huber = np.where(absolute <= 1.0, 0.5 * error**2, absolute - 0.5)
    log_cosh = np.log(np.cosh(error))
    values = np.stack(
        [(error**2).mean(-1), absolute.mean(-1), huber.mean(-1), log_cosh.mean(-1)], -1
    )
    np.testing.assert_allclose(ops.convert_to_numpy(parts["values"]), values, rtol=1e-5)
    p_hat = ops.convert_to_numpy(parts["p_hat"])
    np.testing.assert_allclose(
        ops.convert_to_numpy(parts["loss"]), (p_hat * values).sum(-1), rtol=1e-5
    )


@pytest.mark.slow
@pytest.mark.parametrize("mode", list(MODES))
def test_regression_trains_in_fit(mode, regression_data):
    x, y = regression_data
    loss = kal.StochasticLoss(REGRESSION, task="regression", seed=0, decision_learning_rate=0.01)
    _fit_and_check_learning(_regressor(), loss, x, y, MODES[mode])
    assert loss.candidate_names == REGRESSION


@pytest.mark.slow
def test_regression_trains_mirrored(mirrored_strategy, regression_data):
    x, y = regression_data
    with mirrored_strategy.scope():
        loss = kal.StochasticLoss(REGRESSION, task="regression", seed=0)
        model = _regressor()
    _fit_and_check_learning(model, loss, x, y, {})
    assert float(loss.state.updates.numpy()) == 12


@pytest.mark.slow
def test_regression_round_trips_through_save(tmp_path, regression_data):
    x, y = regression_data
    loss = kal.StochasticLoss(REGRESSION, task="regression", seed=0)
    model = _regressor()
    model.compile(optimizer="adam", loss=loss)
    model.fit(x, y, epochs=1, batch_size=16, verbose=0)
    _roundtrip(tmp_path, model, loss, x, y)


def test_regression_names_are_checked():
    with pytest.raises(ValueError, match="Unknown regression candidate 'hinge'"):
        kal.StochasticLoss(["mse", "hinge"], task="regression")
    with pytest.raises(ValueError, match="task must be one of"):
        kal.StochasticLoss(["mse"], task="ranking")
    with pytest.raises(ValueError, match="from_logits=True only applies"):
        kal.StochasticLoss(["mse"], task="regression", from_logits=True)
    with pytest.raises(ValueError, match="shape \\[batch, 1\\]"):
        kal.StochasticLoss(["mse"], task="regression")(np.zeros(4), np.zeros(4))


# Per-token sequence outputs ------------------------------------------------------------------

VOCAB, CLASSES, LENGTH = 12, 4, 7


@pytest.fixture
def sequences():
    """Token ids with trailing padding (id 0) and per-token labels (-1 at the padding)."""
    rng = np.random.default_rng(0)
    tokens = rng.integers(1, VOCAB, size=(48, LENGTH))
    lengths = rng.integers(2, LENGTH + 1, size=48)
    padding = np.arange(LENGTH)[None] >= lengths[:, None]
    tokens[padding] = 0
    labels = (tokens % CLASSES).astype("int64")
    labels[padding] = -1
    return tokens, labels, padding


def _tagger(mask_zero):
    return keras.Sequential(
        [
            keras.Input((LENGTH,), dtype="int32"),
            keras.layers.Embedding(VOCAB, 8, mask_zero=mask_zero),
            keras.layers.Dense(CLASSES, activation="softmax"),
        ]
    )


def test_sequence_selection_ignores_padding_in_values_and_statistics(sequences):
    _, labels, padding = sequences
    rng = np.random.default_rng(3)
    probs = reference.softmax(rng.normal(size=(48, LENGTH, CLASSES))).astype("float32")
    loss = kal.StochasticLoss(["crossentropy", "mse"], ignore_class=-1, num_classes=CLASSES)
    noise = gumbel_noise((3, 48, LENGTH, 2), tf.constant([0, 1], tf.int64))
    parts = loss.selection(labels, probs, noise)
    valid = ~padding
    onehot = np.eye(CLASSES)[np.where(valid, labels, 0)]
    ce = -np.log((onehot * probs).sum(-1))
    mse = ((onehot - probs) ** 2).mean(-1)
    np.testing.assert_allclose(ops.convert_to_numpy(parts["valid"]), valid.astype("float32"))
    want_means = [ce[valid].mean(), mse[valid].mean()]
    np.testing.assert_allclose(ops.convert_to_numpy(parts["batch_means"]), want_means, rtol=1e-5)
    got = ops.convert_to_numpy(parts["loss"])
    assert got.shape == (48, LENGTH)
    np.testing.assert_array_equal(got[padding], 0.0)
    p_hat = ops.convert_to_numpy(parts["p_hat"])
    values = np.stack([ce / want_means[0], mse / want_means[1]], -1)
    want = (p_hat * values).sum(-1)[valid] * want_means[0]  # at the first's level, real tokens
    np.testing.assert_allclose(got[valid], want, rtol=1e-4)


@pytest.mark.slow
@pytest.mark.parametrize("mode", list(MODES))
def test_sequence_trains_in_fit_with_a_keras_mask(mode, sequences):
    tokens, labels, padding = sequences
    labels = np.where(padding, 0, labels)  # the mask, not the label, marks padding here
    loss = kal.StochasticLoss(["crossentropy", "mse", "hinge"], seed=0, decision_learning_rate=0.01)
    model = _tagger(mask_zero=True)
    _fit_and_check_learning(model, loss, tokens, labels, MODES[mode])
    # The loss reads the mask Keras attaches to the output (Embedding(mask_zero=True)).
    valid = loss.valid_positions(labels, model(tokens))
    np.testing.assert_array_equal(ops.convert_to_numpy(valid), (~padding).astype("float32"))
    # One decision step per training step; the statistics saw only real tokens.
    assert float(loss.state.updates.numpy()) == 9
    assert np.all(np.isfinite(loss.state.running_means.numpy()))


@pytest.mark.slow
def test_sequence_with_ignore_class_trains_mirrored_and_round_trips(
    tmp_path, mirrored_strategy, sequences
):
    tokens, labels, _ = sequences
    with mirrored_strategy.scope():
        loss = kal.StochasticLoss(["crossentropy", "mse"], seed=0, ignore_class=-1)
        model = _tagger(mask_zero=False)
    _fit_and_check_learning(model, loss, tokens, labels, {})
    unmirrored = kal.StochasticLoss(["crossentropy", "mse"], seed=0, ignore_class=-1)
    model = _tagger(mask_zero=False)
    model.compile(optimizer="adam", loss=unmirrored)
    model.fit(tokens, labels, epochs=1, batch_size=16, verbose=0)
    _roundtrip(tmp_path, model, unmirrored, tokens, labels)


# Weighting the terms of a multi-term loss (the detection use) -------------------------------


@keras.saving.register_keras_serializable(package="kal_tests")
def box_term(y_true, y_pred):
    """L1 error of the 2 box coordinates: y_true[:, 1:3] against y_pred[:, :2]."""
    return ops.mean(ops.abs(y_true[:, 1:3] - y_pred[:, :2]), axis=-1)


@keras.saving.register_keras_serializable(package="kal_tests")
def class_term(y_true, y_pred):
    """Cross-entropy of the class id y_true[:, 0] under the softmax of y_pred[:, 2:]."""
    labels = ops.cast(y_true[:, 0], "int32")
    return keras.losses.sparse_categorical_crossentropy(labels, y_pred[:, 2:], from_logits=True)


@pytest.fixture
def detections():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 6)).astype("float32")
    classes = rng.integers(0, 3, size=(64, 1))
    boxes = x[:, :2] * 0.5
    return x, np.concatenate([classes, boxes], axis=1).astype("float32")


def _detector():
    return keras.Sequential(
        [keras.Input((6,)), keras.layers.Dense(16, activation="relu"), keras.layers.Dense(5)]
    )


def test_terms_are_weighted_per_sample():
    loss = kal.StochasticLoss([box_term, class_term], task="terms", normalize="none")
    rng = np.random.default_rng(2)
    y_true = np.concatenate([rng.integers(0, 3, (4, 1)), rng.normal(size=(4, 2))], 1)
    y_pred = rng.normal(size=(4, 5)).astype("float32")
    noise = gumbel_noise((3, 4, 2), tf.constant([3, 3], tf.int64))
    parts = loss.selection(y_true.astype("float32"), y_pred, noise)
    box = np.abs(y_true[:, 1:3] - y_pred[:, :2]).mean(-1)
    logits = y_pred[:, 2:].astype("float64")
    log_p = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    ce = -log_p[np.arange(4), y_true[:, 0].astype(int)]
    p_hat = ops.convert_to_numpy(parts["p_hat"])
    want = p_hat[:, 0] * box + p_hat[:, 1] * ce
    np.testing.assert_allclose(ops.convert_to_numpy(parts["loss"]), want, rtol=1e-5)
    with pytest.raises(ValueError, match="must be a Keras loss or a callable"):
        kal.StochasticLoss(["mse"], task="terms")


@pytest.mark.slow
@pytest.mark.parametrize("mode", list(MODES))
def test_terms_train_in_fit(mode, detections):
    x, y = detections
    loss = kal.StochasticLoss([box_term, class_term], task="terms", seed=0)
    history = _fit_and_check_learning(_detector(), loss, x, y, MODES[mode])
    assert loss.candidate_names == ["box_term", "class_term"]
    assert history.history["loss"][-1] < history.history["loss"][0] * 1.5


@pytest.mark.slow
def test_terms_round_trip_through_save(tmp_path, detections):
    x, y = detections
    loss = kal.StochasticLoss([box_term, class_term], task="terms", seed=0)
    model = _detector()
    model.compile(optimizer="adam", loss=loss)
    model.fit(x, y, epochs=1, batch_size=16, verbose=0)
    _roundtrip(tmp_path, model, loss, x, y)
