"""`ValidationSelection`: the held-out prior on a `StochasticLoss`'s selection."""

from __future__ import annotations

import copy
import csv
import warnings

import keras
import numpy as np
import pytest
import tensorflow as tf
from keras import ops

import keras_adaptive_loss as kal
from keras_adaptive_loss.slf.validation_selection import ValidationSelection

NUM_CLASSES = 4


def _blobs(n, seed=0, noise=1.0):
    """Four well separated Gaussian classes in 8 dimensions: (x, sparse labels)."""
    rng = np.random.default_rng(seed)
    centres = np.random.default_rng(99).normal(scale=2.0, size=(NUM_CLASSES, 8))
    y = rng.integers(0, NUM_CLASSES, size=n)
    x = centres[y] + rng.normal(scale=noise, size=(n, 8))
    return x.astype("float32"), y


def _wrong_label_crossentropy(y_true, y_pred):
    """Cross-entropy against the *next* class: every step on it un-learns the task."""
    labels = (ops.cast(ops.reshape(y_true, (-1,)), "int32") + 1) % NUM_CLASSES
    return keras.losses.sparse_categorical_crossentropy(labels, y_pred)


def _model(hidden=16):
    layers = [keras.Input((8,))]
    if hidden:
        layers.append(keras.layers.Dense(hidden, activation="relu"))
    layers.append(keras.layers.Dense(NUM_CLASSES, activation="softmax"))
    return keras.Sequential(layers)


def _train(candidates, steer=True, epochs=12, mode="graph", **options):
    x, y = _blobs(480)
    x_val, y_val = _blobs(160, seed=1)
    keras.utils.set_random_seed(0)  # the same initial weights whatever ran before
    model = _model()
    loss = kal.StochasticLoss(candidates, seed=0)
    model.compile(
        optimizer="adam",
        loss=loss,
        metrics=["accuracy"],
        run_eagerly=mode == "eager",
        jit_compile=mode == "jit",
    )
    callbacks = [kal.callbacks.LossDiagnostics()]
    if steer:
        options = {"period": 5, "batch_size": 64, **options}
        callbacks.append(kal.callbacks.ValidationSelection((x_val, y_val), **options))
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*collapsed onto", category=UserWarning)
        history = model.fit(x, y, epochs=epochs, batch_size=32, verbose=0, callbacks=callbacks)
    accuracy = model.evaluate(x_val, y_val, verbose=0)[1]
    return loss, history.history, accuracy


# The designed tasks -------------------------------------------------------------------------


@pytest.mark.slow
def test_collapses_onto_the_one_useful_candidate():
    """[crossentropy, CE on the wrong label]: only the first helps, and the prior finds it.

    Without the callback the learned selection (entropy bonus) keeps both near 0.5 and the
    model learns the task only partly (0.79 validation accuracy); with it the selection
    collapses onto crossentropy.
    """
    candidates = ["crossentropy", _wrong_label_crossentropy]
    _, free, free_accuracy = _train(candidates, steer=False)
    loss, steered, accuracy = _train(candidates)
    assert free["slf_weight_crossentropy"][-1] < 0.7
    assert steered["slf_weight_crossentropy"][-1] > 0.95
    assert loss.collapsed_onto() == "crossentropy"
    assert steered["slf_alignment_crossentropy"][-1] > 0.5
    assert steered["slf_alignment__wrong_label_crossentropy"][-1] < -0.4
    assert accuracy > 0.9 and accuracy > free_accuracy + 0.1


@pytest.mark.slow
def test_does_not_collapse_when_two_candidates_both_help():
    loss, history, accuracy = _train(["crossentropy", "mse"])
    weights = [history[f"slf_weight_{n}"][-1] for n in ("crossentropy", "mse")]
    assert all(0.2 < w < 0.8 for w in weights), weights
    assert loss.collapsed_onto() is None
    assert min(history["slf_alignment_crossentropy"][-1], history["slf_alignment_mse"][-1]) > 0
    assert accuracy > 0.9


# Adaptation inside compiled fit ----------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["eager", "graph", "jit"])
def test_prior_changes_inside_fit_and_takes_effect(mode):
    loss, history, _ = _train(
        ["crossentropy", _wrong_label_crossentropy], epochs=3, mode=mode, sharpness=30.0
    )
    prior = loss.state.prior.numpy()
    assert prior[0] > 1.0 > -1.0 > prior[1]  # moved towards the useful candidate
    assert loss.state.alignment_updates.numpy() == pytest.approx((3 * 15 - 1) // 5)
    # It takes effect: the last epoch's selection follows the prior.
    assert history["slf_weight_crossentropy"][-1] > 0.8
    # And it is part of the selection logits (Eq. 4 plus the prior).
    probabilities = np.full((2, NUM_CLASSES), 0.25, "float32")
    network = loss.decision_network(probabilities).numpy()
    np.testing.assert_allclose(loss.decision_logits(probabilities), network + prior, rtol=1e-6)


def test_prior_is_added_to_the_logits_and_the_entropy_bonus_ignores_it():
    loss = kal.StochasticLoss(["crossentropy", "mse"], seed=0, num_classes=3)
    y_pred = np.array([[0.7, 0.2, 0.1], [0.1, 0.1, 0.8]], "float32")
    y_true = np.array([0, 2])
    before = loss.decision_logits(y_pred).numpy()
    loss.state.assign(prior=[2.0, -1.0])
    np.testing.assert_allclose(
        loss.decision_logits(y_pred), before + np.array([2.0, -1.0]), rtol=1e-6
    )
    # The bonus acts on the network's own distribution: with a zero-initialised output layer
    # (uniform), its gradient is zero whatever the prior.
    noise = np.zeros((loss.num_samples, 2, 2), "float32")
    parts = loss.selection(y_true, y_pred, noise)
    mixture_only = kal.StochasticLoss(["crossentropy", "mse"], seed=0, num_classes=3, entropy=0)
    mixture_only.state.assign(prior=[2.0, -1.0])
    np.testing.assert_allclose(
        loss._logit_gradient(parts), mixture_only._logit_gradient(parts), atol=1e-7
    )


# The measurement against an independent NumPy reference --------------------------------------


def _softmax(z):
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def _linear_gradient(x, upstream):
    """Gradient of a loss w.r.t. [kernel, bias] of ``softmax(x W + b)`` given dL/dz."""
    return np.concatenate([(x.T @ upstream).ravel(), upstream.sum(axis=0)])


def _reference_alignments(weights, x_a, y_a, x_b, y_b):
    """Alignments over the weights ``[kernel, bias]`` of the softmax layer that reads x."""
    kernel, bias = (v.astype("float64") for v in weights)
    p_a = _softmax(x_a @ kernel + bias)
    t_a = np.eye(NUM_CLASSES)[y_a]
    n = len(x_a)
    ce = _linear_gradient(x_a, (p_a - t_a) / n)
    g = 2.0 * (p_a - t_a) / (NUM_CLASSES * n)  # d mean_b mean_k (p - t)^2 / dp
    mse = _linear_gradient(x_a, p_a * (g - (g * p_a).sum(axis=1, keepdims=True)))
    p_b = _softmax(x_b @ kernel + bias)
    target = _linear_gradient(x_b, (p_b - np.eye(NUM_CLASSES)[y_b]) / len(x_b))
    return np.array([r @ target / (np.linalg.norm(r) * np.linalg.norm(target)) for r in (ce, mse)])


def test_alignments_and_prior_match_a_numpy_reference():
    x, y = _blobs(96)
    model = _model(hidden=0)
    loss = kal.StochasticLoss(["crossentropy", "mse"], seed=0)
    model.compile(optimizer="adam", loss=loss)
    steer = ValidationSelection((x[64:], y[64:]), batch_size=12, sharpness=4.0, momentum=0.5)
    model.fit(x[:64], y[:64], epochs=1, batch_size=64, verbose=0, callbacks=[steer])
    draws = np.random.default_rng(0)  # the callback's draws, seed 0
    expected_moving = np.zeros(2)
    for count in (1, 2):
        chosen = draws.permutation(32)[:24]
        a, b = chosen[:12] + 64, chosen[12:] + 64
        want = _reference_alignments(model.get_weights(), x[a], y[a], x[b], y[b])
        got = steer.measure()
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-6)
        expected_moving = 0.5 * expected_moving + 0.5 * want
        corrected = expected_moving / (1.0 - 0.5**count)
        np.testing.assert_allclose(
            loss.state.prior.numpy(), 4.0 * (corrected - corrected.mean()), rtol=1e-4, atol=1e-6
        )
    assert loss.state.alignment_updates.numpy() == 2.0


def test_output_layer_scope_aligns_the_gradients_of_the_last_layer_with_weights():
    x, y = _blobs(96)
    model = _model(hidden=16)
    model.compile(optimizer="adam", loss=kal.StochasticLoss(["crossentropy", "mse"], seed=0))
    steer = ValidationSelection((x[64:], y[64:]), batch_size=12, scope="output_layer")
    model.fit(x[:64], y[:64], epochs=1, batch_size=64, verbose=0, callbacks=[steer])
    hidden_kernel, hidden_bias, *output_weights = model.get_weights()
    features = np.maximum(x.astype("float64") @ hidden_kernel + hidden_bias, 0.0)
    chosen = np.random.default_rng(0).permutation(32)[:24]  # the callback's first draw
    a, b = chosen[:12] + 64, chosen[12:] + 64
    want = _reference_alignments(output_weights, features[a], y[a], features[b], y[b])
    np.testing.assert_allclose(steer.measure(), want, rtol=1e-4, atol=1e-6)
    whole_model = ValidationSelection((x[64:], y[64:]), batch_size=12, scope="model")
    whole_model.set_model(model)
    whole_model.on_train_begin()
    assert not np.allclose(whole_model.measure(), want, rtol=1e-3)


# Logs, saving, distribution -------------------------------------------------------------------


def _steered_two_candidate_fit(callbacks=(), epochs=1, batch_size=16, **options):
    """A small MLP trained on blobs with [crossentropy, mse], steered; returns (model, steer)."""
    x, y = _blobs(64)
    model = _model()
    model.compile(optimizer="adam", loss=kal.StochasticLoss(["crossentropy", "mse"], seed=0))
    steer = ValidationSelection(_blobs(32, seed=1), **{"batch_size": 8, **options})
    model.fit(x, y, epochs=epochs, batch_size=batch_size, verbose=0, callbacks=[*callbacks, steer])
    return model, steer


@pytest.mark.slow
def test_alignments_reach_history_and_csvlogger_listed_first(tmp_path):
    path = tmp_path / "log.csv"
    model, _ = _steered_two_candidate_fit(
        [keras.callbacks.CSVLogger(str(path))], epochs=2, batch_size=32, period=1
    )
    history = model.history.history
    with open(path) as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 2
    for key in ("slf_alignment_crossentropy", "slf_alignment_mse"):
        assert len(history[key]) == 2
        assert float(rows[-1][key]) == pytest.approx(history[key][-1], rel=1e-5)
        assert history[key][-1] != 0.0


def test_prior_and_alignments_survive_save_and_load(tmp_path):
    model, _ = _steered_two_candidate_fit(period=1)
    state = model.loss.state
    saved = [v.numpy().copy() for v in (state.prior, state.alignments, state.alignment_updates)]
    assert np.abs(saved[0]).sum() > 0
    path = str(tmp_path / "model.keras")
    model.save(path)
    loaded = keras.models.load_model(path)
    restored = loaded.loss.state
    for want, variable in zip(
        saved, (restored.prior, restored.alignments, restored.alignment_updates), strict=True
    ):
        np.testing.assert_allclose(variable.numpy(), want)
    uniform = np.full((2, NUM_CLASSES), 0.25, "float32")
    np.testing.assert_allclose(
        loaded.loss.decision_logits(uniform), model.loss.decision_logits(uniform), rtol=1e-6
    )


def test_state_saved_with_the_statistics_packed_in_one_vector_loads_by_name():
    """Files written by 0.1.0.dev (2026-12-06): the float statistics in one vector, then draws."""
    fresh = kal.slf.stochastic.SelectionState(3)
    steps = []
    fresh.restore_step = steps.append
    packed = np.asarray([1, 2, 3, 5, 6, 7, 11, 12, 13, 14, 15, 16, 4, 8, 10, 17], "float32")
    fresh.load_own_variables({"0": packed, "1": np.asarray(9, "int64")})
    np.testing.assert_allclose(fresh.running_means.numpy(), [1.0, 2.0, 3.0])
    np.testing.assert_allclose(fresh.weight_sums.numpy(), [5.0, 6.0, 7.0])
    np.testing.assert_allclose(fresh.prior.numpy(), [11.0, 12.0, 13.0])
    np.testing.assert_allclose(fresh.alignments.numpy(), [14.0, 15.0, 16.0])
    assert (fresh.updates.numpy(), fresh.weight_steps.numpy()) == (4.0, 8.0)
    assert (fresh.skipped.numpy(), fresh.alignment_updates.numpy()) == (10.0, 17.0)
    assert fresh.draws.numpy() == 9 and fresh.draws.dtype == "int64"
    assert steps == [4.0]  # the decision network's Adam step count


def test_state_saves_one_named_weight_per_statistic():
    state = kal.slf.stochastic.SelectionState(2)
    state.build()
    state.assign(prior=[1.0, -1.0], draws=5)
    names = [w.name for w in state.weights]
    assert names == [name for name, _ in kal.slf.stochastic.STATISTICS]
    store = {}
    state.save_own_variables(store)
    fresh = kal.slf.stochastic.SelectionState(2)
    fresh.load_own_variables(store)
    np.testing.assert_array_equal(fresh.prior.numpy(), [1.0, -1.0])
    assert fresh.draws.numpy() == 5


def test_state_assign_writes_only_the_named_statistics_and_rejects_unknown_names():
    state = kal.slf.stochastic.SelectionState(2)
    state.build()
    state.assign(running_means=[1.0, 2.0], skipped=3.0)
    state.assign(prior=[4.0, 5.0])
    np.testing.assert_allclose(state.running_means.numpy(), [1.0, 2.0])
    np.testing.assert_allclose(state.prior.numpy(), [4.0, 5.0])
    assert state.skipped.numpy() == 3.0 and state.updates.numpy() == 0.0
    with pytest.raises(ValueError, match="Unknown statistics \\['priors'\\]"):
        state.assign(priors=[0.0, 0.0])


@pytest.mark.slow
def test_mirrored_strategy_updates_the_prior_on_every_replica(mirrored_strategy):
    x, y = _blobs(128)
    with mirrored_strategy.scope():
        model = _model()
        loss = kal.StochasticLoss(["crossentropy", _wrong_label_crossentropy], seed=0)
        model.compile(optimizer="adam", loss=loss)
    steer = ValidationSelection(_blobs(64, seed=1), period=2, batch_size=16, sharpness=30.0)
    model.fit(x, y, epochs=2, batch_size=32, verbose=0, callbacks=[steer])
    variable = loss.state.prior

    def read():
        return tf.identity(variable.value)

    values = mirrored_strategy.experimental_local_results(mirrored_strategy.run(read))
    assert len(values) == 2
    for value in values:
        np.testing.assert_allclose(value, values[0])
        assert value[0] > 1.0 > -1.0 > value[1]


# Errors ----------------------------------------------------------------------------------------


def test_needs_a_stochastic_loss():
    x, y = _blobs(32)
    model = _model()
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    steer = ValidationSelection(_blobs(16, seed=1))
    with pytest.raises(ValueError, match="ValidationSelection found no compiled loss"):
        model.fit(x, y, epochs=1, verbose=0, callbacks=[steer])


def test_a_class_objective_needs_a_classification_loss():
    x = np.random.default_rng(0).normal(size=(32, 3)).astype("float32")
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    model.compile(optimizer="adam", loss=kal.StochasticLoss(["mse", "mae"], task="regression"))
    steer = ValidationSelection((x[:8], x[:8, :2]))
    with pytest.raises(ValueError, match=r"objective=keras\.losses\.MeanSquaredError"):
        model.fit(x, x[:, :2], epochs=1, verbose=0, callbacks=[steer])
    ok = ValidationSelection(
        (x[:8], x[:8, :2]), objective=keras.losses.MeanSquaredError(), period=1
    )
    model.fit(x, x[:, :2], epochs=1, batch_size=8, verbose=0, callbacks=[ok])
    assert model.loss.state.alignment_updates.numpy() == 3.0  # before steps 2, 3 and 4


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"validation_data": np.zeros(3)}, "validation_data=\\(x_val, y_val\\)"),
        ({"validation_data": (np.zeros((1, 2)), np.zeros(1))}, "at least 2 validation samples"),
        ({"validation_data": (np.zeros((3, 2)), np.zeros(2))}, "one label each"),
        ({"period": 0}, "period must be an integer >= 1"),
        ({"batch_size": 0}, "batch_size must be an integer >= 1"),
        ({"sharpness": -1.0}, "sharpness must be >= 0"),
        ({"momentum": 1.0}, "momentum must lie in"),
        ({"objective": "accuracy"}, "objective must be one of"),
        ({"scope": "last"}, "scope must be one of"),
    ],
)
def test_bad_arguments_raise(kwargs, match):
    arguments = {"validation_data": (np.zeros((4, 2)), np.zeros(4)), **kwargs}
    with pytest.raises(ValueError, match=match):
        ValidationSelection(**arguments)


def test_measure_outside_fit_raises():
    with pytest.raises(ValueError, match="runs inside fit"):
        ValidationSelection((np.zeros((4, 2)), np.zeros(4))).measure()


def test_measures_under_mixed_precision(mixed_precision):
    model, _ = _steered_two_candidate_fit(period=2)
    state = model.loss.state
    assert state.alignment_updates.numpy() == 1.0  # before step 3 of 4
    assert np.isfinite(state.prior.numpy()).all() and np.abs(state.prior.numpy()).sum() > 0


@pytest.mark.slow
def test_a_deep_copy_after_fit_drives_another_model():
    """KerasTuner deep-copies callbacks; a used one copies without its traced function."""
    first, steer = _steered_two_candidate_fit(period=2, sharpness=3.0)
    twin = copy.deepcopy(steer)
    assert (twin.period, twin.batch_size, twin.sharpness) == (2, 8, 3.0)
    second = _model()
    second.compile(optimizer="adam", loss=kal.StochasticLoss(["crossentropy", "mse"], seed=0))
    x, y = _blobs(64)
    second.fit(x, y, epochs=1, batch_size=16, verbose=0, callbacks=[twin])
    assert second.loss.state.alignment_updates.numpy() == 1.0
    assert first.loss.state.alignment_updates.numpy() == 1.0  # the original's loss untouched
