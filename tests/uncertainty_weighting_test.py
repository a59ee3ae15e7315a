"""Learned multi-loss weighting (Kendall et al.): s learned inside fit, logged and saved, and
the noisy output down-weighted."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_adaptive_loss as kal

UW = kal.losses.UncertaintyWeightedLoss


def _two_task_data(seed=0, n=1200):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 10)).astype("float32")
    clean = (x[:, :4] @ rng.normal(size=(4, 4))).argmax(-1)  # learnable from x
    noise = rng.integers(0, 10, size=n)  # pure noise
    return x, clean, noise


def _two_head_model():
    inputs = keras.Input((10,))
    trunk = keras.layers.Dense(32, activation="relu")(inputs)
    clean = keras.layers.Dense(4, activation="softmax", name="clean")(trunk)
    noisy = keras.layers.Dense(10, activation="softmax", name="noisy")(trunk)
    return keras.Model(inputs, [clean, noisy])


def test_value_and_gradient_match_the_formula():
    loss = UW("crossentropy", log_variance=0.7)
    p = np.array([[0.2, 0.8], [0.6, 0.4]], "float32")
    y = np.array([1, 1])
    ce = -np.log(p[np.arange(2), y])
    assert float(loss(y, p)) == pytest.approx(np.mean(np.exp(-0.7) * ce + 0.7), rel=1e-6)
    variable = tf.Variable(p)
    with tf.GradientTape() as tape:
        value = loss(y, variable)
    gradient = tape.gradient(value, variable).numpy()
    # CE of probabilities normalises p by its sum (Keras's convention): d/dp_k of
    # -log(p_y / sum p) is 1 - [k = y] / p_y, here times exp(-s) / batch
    onehot = np.eye(2)[y]
    expected = np.exp(-0.7) / 2 * (1.0 - onehot / p[np.arange(2), y][:, None])
    np.testing.assert_allclose(gradient, expected, rtol=1e-5)


@pytest.mark.slow
@pytest.mark.parametrize("jit", [False, True], ids=["graph", "xla"])
def test_noisy_output_is_down_weighted_and_the_clean_one_keeps_its_accuracy(jit):
    x, clean, noise = _two_task_data()
    x_test, clean_test, _ = _two_task_data(seed=1, n=600)
    results = {}
    for name, losses in {
        "equal": ["sparse_categorical_crossentropy"] * 2,
        "learned": [UW("crossentropy", name="clean_uw"), UW("crossentropy", name="noisy_uw")],
    }.items():
        keras.utils.set_random_seed(0)
        model = _two_head_model()
        model.compile(optimizer=keras.optimizers.Adam(3e-3), loss=losses, jit_compile=jit)
        logger = [kal.callbacks.LossParameterLogger()] if name == "learned" else []
        history = model.fit(x, [clean, noise], epochs=8, batch_size=32, verbose=0, callbacks=logger)
        accuracy = np.mean(model.predict(x_test, verbose=0)[0].argmax(-1) == clean_test)
        results[name] = (accuracy, history.history, model)
    learned = results["learned"][1]
    s_clean, s_noisy = learned["clean_uw_log_variance"], learned["noisy_uw_log_variance"]
    assert s_noisy[-1] > s_noisy[0] > 0.0 and s_noisy[-1] > s_clean[-1] + 0.5
    assert s_clean[-1] < 0.0  # the clean task's weight exp(-s) rose above 1
    assert results["learned"][0] >= results["equal"][0] - 1e-9, results


@pytest.mark.slow
def test_log_variance_is_saved_with_the_model_and_not_changed_by_evaluate(tmp_path):
    x, clean, noise = _two_task_data(n=256)
    model = _two_head_model()
    losses = [UW("crossentropy", name="a"), UW("crossentropy", learning_rate=0.05, name="b")]
    model.compile(optimizer="adam", loss=losses)
    model.fit(x, [clean, noise], epochs=2, batch_size=32, verbose=0)
    learned = [loss.get_parameter("log_variance") for loss in losses]
    assert all(value != 0.0 for value in learned)
    model.evaluate(x, [clean, noise], verbose=0)  # no update outside training
    assert [loss.get_parameter("log_variance") for loss in losses] == learned
    model.save(tmp_path / "uw.keras")
    restored = keras.models.load_model(tmp_path / "uw.keras", safe_mode=True)
    restored_values = [
        loss.get_parameter("log_variance") for loss in keras.tree.flatten(restored.loss)
    ]
    assert restored_values == pytest.approx(learned)


@pytest.mark.slow
def test_mirrored_strategy_learns_the_same_log_variance(mirrored_strategy):
    x, clean, noise = _two_task_data(n=256)

    def train(strategy):
        with strategy.scope():
            keras.utils.set_random_seed(0)
            model = _two_head_model()
            losses = [UW("crossentropy", name="a"), UW("crossentropy", name="b")]
            model.compile(optimizer=keras.optimizers.SGD(0.1), loss=losses)
        model.fit(x, [clean, noise], epochs=2, batch_size=32, shuffle=False, verbose=0)
        return [loss.get_parameter("log_variance") for loss in losses]

    single = train(tf.distribute.get_strategy())
    assert train(mirrored_strategy) == pytest.approx(single, rel=1e-4, abs=1e-6)


def test_errors():
    with pytest.raises(ValueError, match="learning_rate must be > 0"):
        UW("crossentropy", learning_rate=0.0)
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2, activation="softmax")])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    with pytest.raises(ValueError, match="found no adaptive loss"):
        model.fit(np.zeros((4, 3)), np.zeros(4), callbacks=[kal.callbacks.LossParameterLogger()],
                  verbose=0)  # fmt: skip
