"""StochasticLoss (SLF): Gumbel sampling, Eq. 11, joint training in fit, state, bad input."""

from __future__ import annotations

import copy
import csv

import keras
import numpy as np
import pytest
import tensorflow as tf
from keras import ops
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

import keras_adaptive_loss as kal
from keras_adaptive_loss.slf.gumbel import gumbel_noise, multiple_gumbel_softmax
from tests import reference
from tests.helpers import assert_same_stochastic_state

MODES = {
    "eager": {"run_eagerly": True},
    "graph": {"run_eagerly": False, "jit_compile": False},
    "jit": {"run_eagerly": False, "jit_compile": True},
}
NUM_CLASSES = 4


def _decision_weights(loss):
    return [v.numpy().copy() for v in loss.decision_network.network.trainable_variables]


def _changed(before, after):
    return any(not np.allclose(a, b) for a, b in zip(before, after, strict=True))


def _model():
    return keras.Sequential(
        [
            keras.Input((8,)),
            keras.layers.Dense(16, activation="relu"),
            keras.layers.Dense(NUM_CLASSES, activation="softmax"),
        ]
    )


# Gumbel sampling (Eqs. 5-10) -----------------------------------------------------------------


def test_one_hard_sample_is_one_hot_per_sample():
    log_p = np.log(np.array([[0.2, 0.5, 0.3], [0.6, 0.3, 0.1]], dtype="float32"))
    noise = gumbel_noise((1, 2, 3), tf.constant([3, 4], tf.int64))
    p_hat, _ = multiple_gumbel_softmax(log_p, noise, 1.0, hard=True)
    p_hat = ops.convert_to_numpy(p_hat)
    assert set(np.unique(p_hat)) == {0.0, 1.0}
    np.testing.assert_array_equal(p_hat.sum(-1), [1.0, 1.0])


@pytest.mark.parametrize("seed", [[0, 1], [5, 6], [-3, 2**40 + 7]])
def test_gumbel_noise_is_minus_log_minus_log_of_stateless_uniform(seed):
    # gumbel_noise builds Philox's key and counter with one op instead of the ~15 of
    # tf.random.stateless_uniform's wrapper: the draws must stay the same to the bit, eager
    # and traced, so that a seed keeps drawing the noise it drew before.
    seed = tf.constant(seed, tf.int64)
    uniform = tf.random.stateless_uniform((3, 5, 4), seed, minval=1e-20, maxval=1.0, alg="philox")
    expected = -np.log(-np.log(uniform.numpy().astype("float64")))
    eager = gumbel_noise((3, 5, 4), seed).numpy()
    traced = tf.function(lambda s: gumbel_noise((3, 5, 4), s))(seed).numpy()
    np.testing.assert_array_equal(traced, eager)
    np.testing.assert_allclose(eager, expected, rtol=1e-5, atol=1e-6)
    stock = -tf.math.log(tf.maximum(-tf.math.log(uniform), 1e-20))
    np.testing.assert_array_equal(eager, stock.numpy())


def test_hard_samples_average_to_p():  # the Gumbel-max trick (Eqs. 5, 8)
    p = np.array([[0.1, 0.6, 0.3]], dtype="float32")
    draws = 20000
    noise = gumbel_noise((draws, 1, 3), tf.constant([0, 1], tf.int64))
    p_hat, _ = multiple_gumbel_softmax(np.log(p), noise, 1.0, hard=True)
    # standard error of a frequency is at most 0.5 / sqrt(20000) = 0.0035: 4 of them
    np.testing.assert_allclose(ops.convert_to_numpy(p_hat), p, atol=0.015)


def test_low_temperature_samples_approach_one_hot():
    log_p = np.log(np.full((1000, 4), 0.25, dtype="float32"))
    noise = gumbel_noise((1, 1000, 4), tf.constant([7, 7], tf.int64))
    gaps = []  # mean distance of a sample from the nearest one-hot vector
    for temperature in (1.0, 0.1, 0.01, 0.001):
        _, samples = multiple_gumbel_softmax(log_p, noise, temperature)
        gaps.append(float(1.0 - ops.convert_to_numpy(samples).max(-1).mean()))
    assert gaps == sorted(gaps, reverse=True)
    assert gaps[0] > 0.2 and gaps[-1] < 0.005


def test_straight_through_gradient_is_the_soft_gradient():
    log_p = tf.Variable(np.log([[0.2, 0.5, 0.3]]), dtype="float32")
    noise = gumbel_noise((2, 1, 3), tf.constant([1, 2], tf.int64))
    weights = tf.constant([[1.0, 2.0, 3.0]])
    grads = []
    for hard in (False, True):
        with tf.GradientTape() as tape:
            p_hat, _ = multiple_gumbel_softmax(log_p, noise, 0.5, hard=hard)
            value = tf.reduce_sum(p_hat * weights)
        grads.append(tape.gradient(value, log_p).numpy())
    np.testing.assert_allclose(grads[0], grads[1], rtol=1e-6)


@pytest.mark.parametrize("hard", [False, True])
def test_closed_form_decision_gradient_equals_autodiff(hard):
    loss = kal.StochasticLoss(["crossentropy", "mse", "hinge"], hard=hard, temperature=0.6)
    labels, probs = _batch(seed=3)
    noise = gumbel_noise((4, 6, 3), tf.constant([9, 9], tf.int64))
    with tf.GradientTape(persistent=True) as tape:
        parts = loss.selection(labels, probs, noise)
    variables = loss.decision_network.network.trainable_variables
    autodiff = tape.gradient(parts["objective"], variables)
    logit_gradient = kal.slf.gumbel.mixture_objective_logit_gradient(
        parts["logits"], parts["soft_samples"], parts["values"], 0.6
    )
    closed_form = tape.gradient(parts["logits"], variables, logit_gradient)
    for a, b in zip(autodiff, closed_form, strict=True):
        np.testing.assert_allclose(b.numpy(), a.numpy(), rtol=1e-4, atol=1e-7)


# Eq. 11 against NumPy ------------------------------------------------------------------------


def _batch(seed=0, batch=6):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, NUM_CLASSES, size=batch)
    probs = reference.softmax(rng.normal(size=(batch, NUM_CLASSES))).astype("float32")
    return labels, probs


@pytest.mark.parametrize("normalize", ["none", "running_mean", "to_first"])
@pytest.mark.parametrize("hard", [False, True])
def test_loss_matches_numpy_eq11_with_fixed_noise(normalize, hard):
    names = ["crossentropy", "mse", "hinge"]
    loss = kal.StochasticLoss(names, num_samples=3, temperature=0.7, hard=hard, normalize=normalize)
    labels, probs = _batch()
    noise = ops.convert_to_numpy(gumbel_noise((3, 6, 3), tf.constant([5, 6], tf.int64)))
    parts = loss.selection(labels, probs, noise)
    log_p = ops.convert_to_numpy(parts["log_p"]).astype("float64")
    onehot = reference.one_hot(labels, NUM_CLASSES)
    values = np.stack([reference.candidate(n, onehot, probs.astype("float64")) for n in names], -1)
    level = values.mean(0)[0]  # the first candidate's (its batch mean at the first step)
    if normalize != "none":  # first step: each candidate over its batch mean
        values = values / values.mean(0)
    samples = reference.softmax((log_p[None] + noise) / 0.7)
    if hard:
        samples = np.eye(3)[samples.argmax(-1)]
    p_hat = samples.mean(0)
    np.testing.assert_allclose(ops.convert_to_numpy(parts["p_hat"]), p_hat, rtol=1e-5, atol=1e-6)
    want = (p_hat * values).sum(-1)
    # The decision network sees the equalised candidates in every normalised mode ...
    np.testing.assert_allclose(ops.convert_to_numpy(parts["values"]), values, rtol=1e-5)
    if normalize == "to_first":  # ... and the model their mixture at the first's level
        want = want * level
    np.testing.assert_allclose(ops.convert_to_numpy(parts["loss"]), want, rtol=1e-5, atol=1e-6)


def test_to_first_keeps_the_first_candidates_value_and_gradient_whatever_the_selection():
    labels, probs = _batch(seed=4)
    loss = kal.StochasticLoss(
        ["crossentropy", "crossentropy"], seed=0, num_classes=NUM_CLASSES, normalize="to_first"
    )
    loss.state.assign(running_means=[0.3, 0.3], updates=5.0)  # a level unlike this batch's
    y_pred = tf.constant(probs)
    with tf.GradientTape(persistent=True) as tape:
        tape.watch(y_pred)
        value = loss(labels, y_pred)
        plain = keras.losses.SparseCategoricalCrossentropy()(labels, y_pred)
    np.testing.assert_allclose(value.numpy(), plain.numpy(), rtol=1e-6)
    np.testing.assert_allclose(
        tape.gradient(value, y_pred).numpy(), tape.gradient(plain, y_pred).numpy(), rtol=1e-5
    )


@pytest.mark.slow
def test_temperature_is_read_from_its_variable_in_compiled_code():
    loss = kal.StochasticLoss(["crossentropy", "mse"], num_classes=NUM_CLASSES)
    labels, probs = _batch()
    noise = gumbel_noise((3, 6, 2), tf.constant([1, 1], tf.int64))
    compiled = tf.function(lambda: loss.selection(labels, probs, noise)["p_hat"], jit_compile=True)
    cold_before = ops.convert_to_numpy(compiled())
    loss.set_parameter("temperature", 0.05)
    cold = ops.convert_to_numpy(compiled())
    assert not np.allclose(cold_before, cold)
    eager = ops.convert_to_numpy(loss.selection(labels, probs, noise)["p_hat"])
    np.testing.assert_allclose(cold, eager, rtol=1e-5, atol=1e-6)


# Joint training inside fit -------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("mode", list(MODES))
def test_decision_network_learns_in_fit_but_not_in_evaluation(mode, toy_classification):
    x, y = toy_classification
    loss = kal.StochasticLoss(["crossentropy", "mse", "hinge"], seed=0, decision_learning_rate=0.01)
    model = _model()
    model.compile(optimizer="adam", loss=loss, **MODES[mode])
    model.fit(x, y, epochs=1, batch_size=16, verbose=0)  # builds the decision network
    before = _decision_weights(loss)
    model.fit(x, y, epochs=2, batch_size=16, verbose=0, validation_data=(x, y))
    after_fit = _decision_weights(loss)
    assert _changed(before, after_fit)
    # 3 epochs x 4 steps: one decision step per training step, none for validation
    assert float(loss.state.updates.numpy()) == 12
    assert float(loss.state.updates.numpy()) == 12
    model.evaluate(x, y, verbose=0)
    model.predict(x, verbose=0)
    assert not _changed(after_fit, _decision_weights(loss))
    assert float(loss.state.updates.numpy()) == 12


@pytest.mark.slow
def test_decision_network_learns_with_a_functional_model(toy_classification):
    x, y = toy_classification
    inputs = keras.Input((8,))
    hidden = keras.layers.Dense(16, activation="relu")(inputs)
    model = keras.Model(inputs, keras.layers.Dense(NUM_CLASSES, activation="softmax")(hidden))
    loss = kal.StochasticLoss(["crossentropy", "mse"], seed=0, decision_learning_rate=0.01)
    model.compile(optimizer="adam", loss=loss)
    model.fit(x, y, epochs=1, batch_size=16, verbose=0)
    before = _decision_weights(loss)
    model.fit(x, y, epochs=1, batch_size=16, verbose=0)
    assert _changed(before, _decision_weights(loss))
    assert float(loss.state.updates.numpy()) == 8


def test_gradients_reach_the_model_and_the_decision_network(toy_classification):
    x, y = toy_classification
    loss = kal.StochasticLoss(["crossentropy", "mse"], seed=0)
    model = _model()
    with tf.GradientTape() as tape:
        value = loss(y, model(x))
    model_grads = tape.gradient(value, model.trainable_variables)
    assert all(float(tf.reduce_sum(tf.abs(g))) > 0 for g in model_grads)
    before = _decision_weights(loss)
    assert float(loss.state.updates.numpy()) == 1  # applied by that backward pass
    assert _changed([np.zeros_like(w) for w in before], before)


def test_decision_network_adam_matches_numpy_adam():
    network = kal.losses.DecisionNetwork(2, hidden_units=3)
    network.build((None, 4))
    start = [v.numpy().astype("float64") for v in network.network.trainable_variables]
    sizes = [w.size for w in start]
    rng = np.random.default_rng(0)
    gradients = [rng.normal(size=sum(sizes)) for _ in range(3)]
    for gradient in gradients:
        network.apply_gradients(ops.convert_to_tensor(gradient, "float32"))
    # Kingma & Ba with the bias correction folded into the step size (epsilon "hat").
    weights, m, v = np.concatenate([w.ravel() for w in start]), 0.0, 0.0
    for t, g in enumerate(gradients, start=1):
        m, v = 0.9 * m + 0.1 * g, 0.999 * v + 0.001 * g * g
        weights = weights - 1e-3 * np.sqrt(1 - 0.999**t) / (1 - 0.9**t) * m / (np.sqrt(v) + 1e-7)
    got = np.concatenate([w.numpy().ravel() for w in network.network.trainable_variables])
    np.testing.assert_allclose(got, weights, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(_moments(network), np.stack([m, v]), rtol=1e-5, atol=1e-9)
    assert int(network.get_optimizer().iterations.numpy()) == 3


def _moments(network):
    """The decision network's Adam moments, flattened: [first, second]."""
    store = {}
    network.save_own_variables(store)
    count = len(network.network.trainable_variables)
    return np.stack(
        [
            np.concatenate([np.ravel(store[f"{kind}_{i}"]) for i in range(count)])
            for kind in ("momentum", "velocity")
        ]
    )


def test_decision_network_saves_its_optimizer_state_by_name_and_restores_it_unbuilt():
    network = kal.losses.DecisionNetwork(2, hidden_units=3)
    network.build((None, 4))
    network.apply_gradients(ops.ones((4 * 3 + 3 + 3 * 2 + 2,)))
    store = {}
    network.save_own_variables(store)
    assert sorted(store) == sorted(
        ["iterations", *(f"{k}_{i}" for k in ("momentum", "velocity") for i in range(4))]
    )
    fresh = kal.losses.DecisionNetwork(2, hidden_units=3)
    fresh.load_own_variables(store)  # builds from the first kernel's moment, [4, 3]
    assert fresh.built and fresh.input_dim == 4
    assert int(fresh.get_optimizer().iterations.numpy()) == 1
    np.testing.assert_array_equal(_moments(fresh), _moments(network))
    with pytest.raises(ValueError, match="other candidates or hidden_units"):
        kal.losses.DecisionNetwork(2, hidden_units=3).load_own_variables({"iterations": 1})


def test_each_step_updates_the_statistics_once_with_the_unnormalised_batch_means():
    labels, probs = (
        np.array([0, 2, 1]),
        np.array([[0.7, 0.2, 0.1], [0.2, 0.2, 0.6], [0.3, 0.4, 0.3]]),
    )
    probs = probs.astype("float32")
    loss = kal.StochasticLoss(["crossentropy", "mse"], seed=0, num_classes=3)
    picked = probs[np.arange(3), labels]
    one_hot = np.eye(3)[labels]
    means = np.array([np.mean(-np.log(picked)), np.mean((one_hot - probs) ** 2)])
    for _ in range(2):
        y_pred = tf.constant(probs)
        with tf.GradientTape() as tape:
            tape.watch(y_pred)
            value = loss(labels, y_pred)
        tape.gradient(value, y_pred)
    state = loss.state
    np.testing.assert_allclose(state.running_means.numpy(), (0.01 + 0.99 * 0.01) * means, rtol=1e-5)
    assert (state.updates.numpy(), state.weight_steps.numpy(), state.skipped.numpy()) == (2, 2, 0)
    assert state.weight_sums.numpy().sum() == pytest.approx(2.0, rel=1e-5)  # p_hat sums to 1
    np.testing.assert_array_equal(state.prior.numpy(), [0.0, 0.0])


@pytest.mark.slow
def test_mirrored_training_updates_once_per_step_and_keeps_replicas_equal(
    mirrored_strategy, toy_classification
):
    x, y = toy_classification
    with mirrored_strategy.scope():
        loss = kal.StochasticLoss(["crossentropy", "mse", "hinge"], seed=0)
        model = _model()
        model.compile(optimizer="adam", loss=loss)
    model.fit(x, y, epochs=1, batch_size=16, verbose=0)
    before = _decision_weights(loss)
    model.fit(x, y, epochs=1, batch_size=16, verbose=0, validation_data=(x, y))
    assert _changed(before, _decision_weights(loss))
    assert float(loss.state.updates.numpy()) == 8
    for variable in loss.decision_network.network.trainable_variables:
        copies = [v.numpy() for v in variable.value.values]
        assert len(copies) == 2
        np.testing.assert_array_equal(copies[0], copies[1])


def test_noise_differs_between_replicas_and_steps(mirrored_strategy):
    with mirrored_strategy.scope():
        loss = kal.StochasticLoss(["crossentropy", "mse"], seed=3, num_classes=NUM_CLASSES)

    @tf.function
    def draw():
        return mirrored_strategy.run(lambda: loss._draw_noise((2, 4, 2)))

    first = [v.numpy() for v in mirrored_strategy.experimental_local_results(draw())]
    second = [v.numpy() for v in mirrored_strategy.experimental_local_results(draw())]
    assert not np.allclose(first[0], first[1])  # replicas differ
    assert not np.allclose(first[0], second[0])  # fresh at every step


def test_seed_makes_noise_reproducible():
    def draws(seed):
        loss = kal.StochasticLoss(["crossentropy", "mse"], seed=seed, num_classes=NUM_CLASSES)
        return [ops.convert_to_numpy(loss._draw_noise((2, 3, 2))) for _ in range(3)]

    a, b, c = draws(11), draws(11), draws(12)
    for x, y in zip(a, b, strict=True):
        np.testing.assert_array_equal(x, y)
    assert not np.allclose(a[0], c[0])
    assert not np.allclose(a[0], a[1])


# Collapse guard: measured on digits ----------------------------------------------------------


def _useless(y_true, y_pred):
    """Label-independent and numerically tiny: 0.001 * (1 - max_k p_k)."""
    return 1e-3 * (1.0 - ops.max(y_pred, axis=-1))


def _digits_selection(normalize, epochs=20, entropy=0.0, candidates=None):
    digits = load_digits()
    x = (digits.data / 16.0).astype("float32")
    x_train, _, y_train, _ = train_test_split(x, digits.target, test_size=0.25, random_state=0)
    model = keras.Sequential(
        [
            keras.Input((64,)),
            keras.layers.Dense(64, activation="relu"),
            keras.layers.Dense(10, activation="softmax"),
        ]
    )
    if candidates is None:
        candidates = ["crossentropy", "mse", "hinge", _useless]
    loss = kal.StochasticLoss(candidates, normalize=normalize, seed=0, entropy=entropy)
    model.compile(optimizer="adam", loss=loss)
    history = model.fit(
        x_train, y_train, epochs=epochs, batch_size=32, verbose=0,
        callbacks=[kal.callbacks.LossDiagnostics()],
    )  # fmt: skip
    return history.history


@pytest.mark.slow
def test_useless_candidate_loses_its_weight_in_the_normalised_selection_without_bonus():
    with pytest.warns(UserWarning, match="collapsed onto 'mse'"):  # LossDiagnostics says so
        weights = _digits_selection("running_mean")["slf_weight__useless"]
    assert weights[0] > 0.15  # starts near 1/4
    assert weights[-1] < 0.05


@pytest.mark.slow
def test_default_bonus_keeps_a_useless_candidate_from_gaining_weight():
    weights = _digits_selection("running_mean", entropy=1.0)["slf_weight__useless"]
    assert max(weights) < 0.3  # near its uniform share, never more


@pytest.mark.slow
def test_default_selection_does_not_collapse_on_two_useful_candidates():
    history = _digits_selection("running_mean", entropy=1.0, candidates=["crossentropy", "mse"])
    for name in ("crossentropy", "mse"):
        assert min(history[f"slf_weight_{name}"]) > 0.35
        assert max(history[f"slf_weight_{name}"]) < 0.65
    without_bonus = _digits_selection("running_mean", candidates=["crossentropy", "mse"])
    spread = abs(without_bonus["slf_weight_crossentropy"][-1] - 0.5)
    assert spread > abs(history["slf_weight_crossentropy"][-1] - 0.5)


@pytest.mark.slow
def test_raw_mixture_collapses_onto_the_smallest_candidate():
    with pytest.warns(UserWarning, match="collapsed onto '_useless'"):
        weights = _digits_selection("none")["slf_weight__useless"]  # the paper's raw objective
    assert weights[-1] > 0.8


# Diagnostics, temperature schedule, serialization ---------------------------------------------


@pytest.mark.slow
def test_selection_weights_and_temperature_reach_history_and_csv(tmp_path, toy_classification):
    x, y = toy_classification
    loss = kal.StochasticLoss(["crossentropy", "mse", "crossentropy"], seed=0)
    model = _model()
    model.compile(optimizer="adam", loss=loss)
    anneal = keras.optimizers.schedules.ExponentialDecay(2.0, decay_steps=1, decay_rate=0.5)
    path = tmp_path / "log.csv"
    callbacks = [
        kal.callbacks.TemperatureSchedule(anneal),
        kal.callbacks.LossDiagnostics(),
        keras.callbacks.CSVLogger(str(path)),
    ]
    history = model.fit(x, y, epochs=3, batch_size=16, verbose=0, callbacks=callbacks)
    np.testing.assert_allclose(history.history["temperature"], [2.0, 1.0, 0.5])
    np.testing.assert_allclose(history.history["slf_temperature"], [2.0, 1.0, 0.5])
    names = ["slf_weight_crossentropy", "slf_weight_mse", "slf_weight_crossentropy_2"]
    totals = np.sum([history.history[n] for n in names], axis=0)
    np.testing.assert_allclose(totals, 1.0, rtol=1e-5)
    with path.open() as handle:
        rows = list(csv.DictReader(handle))
    assert set(names) <= set(rows[0]) and len(rows) == 3


def test_deep_copied_temperature_schedule_drives_the_compiled_loss(toy_classification):
    x, y = toy_classification
    loss = kal.StochasticLoss(["crossentropy", "mse"], seed=0)
    model = _model()
    model.compile(optimizer="adam", loss=loss)
    callback = copy.deepcopy(kal.callbacks.TemperatureSchedule(lambda epoch: 0.25 * (epoch + 1)))
    model.fit(x, y, epochs=2, verbose=0, callbacks=[callback])
    assert loss.get_parameter("temperature") == 0.5


@pytest.mark.slow
def test_save_load_restores_decision_state_and_training_continues(tmp_path, toy_classification):
    x, y = toy_classification
    loss = kal.StochasticLoss(["crossentropy", "mse", "hinge"], seed=4, temperature=0.7)
    model = _model()
    model.compile(optimizer="adam", loss=loss)
    model.fit(x, y, epochs=2, batch_size=16, verbose=0)
    loss.set_parameter("temperature", 0.3)
    path = tmp_path / "slf.keras"
    model.save(path)
    loaded = keras.models.load_model(path)
    restored = loaded.loss
    assert isinstance(restored, kal.StochasticLoss)
    assert_same_stochastic_state(loss, restored)
    labels, probs = _batch()
    noise = gumbel_noise((3, 6, 3), tf.constant([2, 2], tf.int64))
    np.testing.assert_allclose(
        ops.convert_to_numpy(restored.selection(labels, probs, noise)["loss"]),
        ops.convert_to_numpy(loss.selection(labels, probs, noise)["loss"]),
        rtol=1e-6,
    )
    before = _decision_weights(restored)
    loaded.fit(x, y, epochs=1, batch_size=16, verbose=0)
    assert _changed(before, _decision_weights(restored))
    assert float(restored.state.updates.numpy()) == 8 + 4


def test_custom_decision_network_is_used_and_serialized(tmp_path, toy_classification):
    x, y = toy_classification
    network = keras.Sequential([keras.layers.Dense(2, name="tiny")])
    loss = kal.StochasticLoss(["crossentropy", "mae"], decision_network=network, seed=0)
    model = _model()
    model.compile(optimizer="adam", loss=loss)
    model.fit(x, y, epochs=1, verbose=0)
    assert loss.decision_network.network is network and network.built
    model.save(tmp_path / "custom.keras")
    restored = keras.models.load_model(tmp_path / "custom.keras").loss
    np.testing.assert_array_equal(
        restored.decision_network.network.weights[0].numpy(), network.weights[0].numpy()
    )


# Bad input ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"candidates": []}, "non-empty list of candidate losses"),
        ({"candidates": "crossentropy"}, "non-empty list of candidate losses"),
        ({"candidates": ["crossentropy", "hinj"]}, "Unknown candidate loss 'hinj'"),
        ({"candidates": ["mse"], "num_samples": 0}, r"num_samples \(K\) must be .* \[1, 1024\]"),
        ({"candidates": ["mse"], "temperature": 0.0}, r"temperature \(tau\) must be > 0"),
        ({"candidates": ["mse"], "temperature": -1.0}, r"temperature \(tau\) must be > 0"),
        ({"candidates": ["mse"], "normalize": "batch"}, "normalize must be one of"),
    ],
)
def test_bad_arguments_raise(kwargs, message):
    with pytest.raises(ValueError, match=message):
        kal.StochasticLoss(**kwargs)


def test_candidate_without_per_sample_values_is_named():
    def batch_mean(y_true, y_pred):
        return ops.mean(y_pred)

    loss = kal.StochasticLoss(["crossentropy", batch_mean])
    labels, probs = _batch()
    with pytest.raises(ValueError, match="'batch_mean' returned shape"):
        loss(labels, probs)


def test_decision_network_with_wrong_output_size_raises():
    loss = kal.StochasticLoss(["crossentropy", "mse"], decision_network=keras.layers.Dense(5))
    labels, probs = _batch()
    with pytest.raises(ValueError, match="one logit per candidate loss \\(2\\)"):
        loss(labels, probs)


def test_changing_number_of_classes_raises():
    loss = kal.StochasticLoss(["crossentropy", "mse"], num_classes=3)
    labels, probs = _batch()
    with pytest.raises(ValueError, match="built for 3 classes"):
        loss(labels, probs)
