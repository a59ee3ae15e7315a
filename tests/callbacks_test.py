"""FocusSchedule and ParameterSchedule inside compiled fit (eager, graph, XLA)."""

from __future__ import annotations

import copy
import csv

import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_adaptive_loss as kal
from tests import reference

MODES = {
    "eager": {"run_eagerly": True},
    "graph": {"run_eagerly": False, "jit_compile": False},
    "jit": {"run_eagerly": False, "jit_compile": True},
}
NUM_CLASSES = 4
BATCH = 16


def frozen_model(loss, **compile_kwargs):
    """A softmax classifier whose weights never change (learning rate 0)."""
    model = keras.Sequential(
        [keras.Input((8,)), keras.layers.Dense(NUM_CLASSES, activation="softmax")]
    )
    model.compile(optimizer=keras.optimizers.SGD(learning_rate=0.0), loss=loss, **compile_kwargs)
    return model


def expected_loss(model, x, y, alpha, beta):
    probs = model.predict(x, verbose=0).astype("float64")
    return reference.mix(reference.one_hot(y, NUM_CLASSES), probs, alpha, beta).mean()


@pytest.mark.slow
@pytest.mark.parametrize("mode", list(MODES))
def test_focus_schedule_takes_effect_inside_fit(mode, toy_classification):
    x, y = toy_classification
    model = frozen_model(kal.losses.CrossentropyExpectationMix(), **MODES[mode])
    history = model.fit(
        x,
        y,
        epochs=6,
        batch_size=BATCH,
        verbose=0,
        callbacks=[kal.callbacks.FocusSchedule("0-0.5")],
    )
    focuses = [0.0, 0.1, 0.2, 0.3, 0.4, 0.5]
    np.testing.assert_allclose(history.history["focus"], focuses)
    for epoch, focus in enumerate(focuses):
        alpha, beta = kal.losses.focus_to_weights(focus)
        assert history.history["alpha"][epoch] == pytest.approx(alpha)
        assert history.history["beta"][epoch] == pytest.approx(beta, rel=1e-6)
        want = expected_loss(model, x, y, alpha, beta)
        assert history.history["loss"][epoch] == pytest.approx(want, rel=1e-5), f"epoch {epoch}"


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["graph", "jit"])
def test_step_unit_switches_phase_mid_epoch(mode, toy_classification):
    x, y = toy_classification  # 64 samples: 4 steps per epoch, 8 in all
    model = frozen_model(kal.losses.CrossentropyExpectationMix(), **MODES[mode])
    callback = kal.callbacks.FocusSchedule("0,0.5", unit="step")
    history = model.fit(
        x, y, epochs=2, batch_size=BATCH, shuffle=False, verbose=0, callbacks=[callback]
    )
    # 95 % of 8 steps: the last phase starts at step floor(7.6) = 7, the last batch.
    batches = [slice(i * BATCH, (i + 1) * BATCH) for i in range(4)]
    mixed = [expected_loss(model, x[b], y[b], 1.0, 1.0) for b in batches]
    expectation_only = expected_loss(model, x[batches[3]], y[batches[3]], 0.0, 1.0)
    assert history.history["loss"][0] == pytest.approx(np.mean(mixed), rel=1e-5)
    want_last = np.mean([*mixed[:3], expectation_only])
    assert history.history["loss"][1] == pytest.approx(want_last, rel=1e-5)
    assert history.history["focus"] == [0.0, 0.5]


@pytest.mark.slow
@pytest.mark.parametrize("mode", list(MODES))
def test_parameter_schedule_with_a_keras_schedule(mode, toy_classification):
    x, y = toy_classification
    loss = kal.losses.CrossentropyExpectationMix(alpha=1.0, beta=0.0)
    model = frozen_model(loss, **MODES[mode])
    ramp = keras.optimizers.schedules.PolynomialDecay(0.0, 3, end_learning_rate=3.0)
    callback = kal.callbacks.ParameterSchedule("beta", ramp)
    history = model.fit(x, y, epochs=4, batch_size=BATCH, verbose=0, callbacks=[callback])
    np.testing.assert_allclose(history.history["beta"], [0.0, 1.0, 2.0, 3.0], atol=1e-6)
    for epoch, beta in enumerate([0.0, 1.0, 2.0, 3.0]):
        want = expected_loss(model, x, y, 1.0, beta)
        assert history.history["loss"][epoch] == pytest.approx(want, rel=1e-5)
    assert loss.beta == pytest.approx(3.0)


def test_parameter_schedule_with_a_function_and_step_unit(toy_classification):
    x, y = toy_classification
    loss = kal.losses.CrossentropyExpectationMix()
    model = frozen_model(loss)
    seen = []

    def alpha_at(step):
        seen.append(step)
        return 1.0 / (1 + step)

    callback = kal.callbacks.ParameterSchedule("alpha", alpha_at, unit="step")
    history = model.fit(
        x, y, epochs=1, batch_size=BATCH, shuffle=False, verbose=0, callbacks=[callback]
    )
    assert seen == [0, 1, 2, 3]
    assert loss.alpha == pytest.approx(0.25)
    per_batch = [
        expected_loss(model, x[i * BATCH : (i + 1) * BATCH], y[i * BATCH : (i + 1) * BATCH], a, 1.0)
        for i, a in enumerate([1.0, 0.5, 1 / 3, 0.25])
    ]
    assert history.history["loss"][0] == pytest.approx(np.mean(per_batch), rel=1e-5)


def test_values_reach_csv_logger_listed_after(tmp_path, toy_classification):
    x, y = toy_classification
    model = frozen_model(kal.losses.CrossentropyExpectationMix())
    path = tmp_path / "log.csv"
    callbacks = [kal.callbacks.FocusSchedule([0.0, 0.25]), keras.callbacks.CSVLogger(str(path))]
    model.fit(x, y, epochs=2, batch_size=BATCH, verbose=0, callbacks=callbacks)
    with path.open() as handle:
        rows = list(csv.DictReader(handle))
    assert [float(r["focus"]) for r in rows] == [0.0, 0.25]
    assert [float(r["beta"]) for r in rows] == [1.0, 2.0]


def test_deep_copied_callback_drives_the_compiled_loss(toy_classification):
    x, y = toy_classification
    loss = kal.losses.CrossentropyExpectationMix()
    model = frozen_model(loss)
    original = kal.callbacks.FocusSchedule("0-0.5")
    clone = copy.deepcopy(original)  # what KerasTuner does to callbacks for each trial
    model.fit(x, y, epochs=6, batch_size=BATCH, verbose=0, callbacks=[clone])
    assert loss.parameters == {"alpha": 0.0, "beta": 1.0}


def test_resumed_run_continues_in_the_right_phase(toy_classification):
    x, y = toy_classification
    loss = kal.losses.CrossentropyExpectationMix()
    model = frozen_model(loss)
    history = model.fit(
        x, y, epochs=6, initial_epoch=4, batch_size=BATCH, verbose=0,
        callbacks=[kal.callbacks.FocusSchedule("0-0.5")],
    )  # fmt: skip
    assert history.history["focus"] == pytest.approx([0.4, 0.5])  # the float32 the loss used


def test_documented_monitor_stays_comparable_when_the_loss_changes_scale(toy_classification):
    # Frozen weights: the predictions never change, so a comparable monitor must not move,
    # while val_loss jumps when the schedule switches to the expectation loss (F = 0.5).
    x, y = toy_classification
    crossentropy = keras.metrics.SparseCategoricalCrossentropy(name="crossentropy")
    model = frozen_model(kal.losses.CrossentropyExpectationMix(), metrics=[crossentropy])
    history = model.fit(
        x, y, epochs=2, batch_size=BATCH, validation_data=(x, y), verbose=0,
        callbacks=[kal.callbacks.FocusSchedule("0,0.5")],
    ).history  # fmt: skip
    assert history["val_loss"][1] < 0.5 * history["val_loss"][0]  # the switch, not progress
    assert history["val_crossentropy"][1] == pytest.approx(history["val_crossentropy"][0])


@pytest.mark.slow
def test_verbose_prints_each_change(toy_classification, capsys):
    x, y = toy_classification
    model = frozen_model(kal.losses.CrossentropyExpectationMix())
    callback = kal.callbacks.FocusSchedule("0,0.5", verbose=1)
    model.fit(x, y, epochs=20, batch_size=64, verbose=0, callbacks=[callback])
    lines = [line for line in capsys.readouterr().out.splitlines() if "FocusSchedule" in line]
    assert lines == [
        "Epoch 1: FocusSchedule sets focus=0, alpha=1, beta=1.",
        "Epoch 20: FocusSchedule sets focus=0.5, alpha=0, beta=1.",
    ]


def test_no_matching_loss_raises_with_advice(toy_classification):
    x, y = toy_classification
    model = frozen_model("sparse_categorical_crossentropy")
    with pytest.raises(
        ValueError, match=r"FocusSchedule found no compiled loss.*CrossentropyExpectationMix"
    ):
        model.fit(x, y, epochs=1, verbose=0, callbacks=[kal.callbacks.FocusSchedule()])
    model = frozen_model(kal.losses.CrossentropyExpectationMix())
    with pytest.raises(ValueError, match="parameter named 'gamma'"):
        model.fit(
            x, y, epochs=1, verbose=0,
            callbacks=[kal.callbacks.ParameterSchedule("gamma", lambda step: 1.0)],
        )  # fmt: skip


def test_uncompiled_model_raises():
    callback = kal.callbacks.FocusSchedule()
    callback.set_model(keras.Sequential([keras.Input((2,)), keras.layers.Dense(2)]))
    with pytest.raises(ValueError, match="needs a compiled model"):
        callback.on_train_begin()


def test_several_matching_losses_need_a_loss_name(toy_classification):
    x, y = toy_classification
    inputs = keras.Input((8,))
    outputs = [
        keras.layers.Dense(NUM_CLASSES, activation="softmax", name=f"head_{i}")(inputs)
        for i in range(2)
    ]
    model = keras.Model(inputs, outputs)
    first = kal.losses.CrossentropyExpectationMix(name="first")
    second = kal.losses.CrossentropyExpectationMix(name="second")
    model.compile(optimizer=keras.optimizers.SGD(0.0), loss=[first, second])
    with pytest.raises(ValueError, match=r"several compiled losses.*loss_name"):
        model.fit(x, [y, y], epochs=1, verbose=0, callbacks=[kal.callbacks.FocusSchedule()])
    callback = kal.callbacks.FocusSchedule([0.0, 0.25], loss_name="second")
    model.fit(x, [y, y], epochs=2, verbose=0, callbacks=[callback])
    assert first.parameters == {"alpha": 1.0, "beta": 1.0}
    assert second.parameters == {"alpha": 1.0, "beta": 2.0}


def test_step_unit_needs_known_steps(toy_classification):
    x, y = toy_classification
    dataset = tf.data.Dataset.from_generator(
        lambda: iter([(x[:16], y[:16])]),
        output_signature=(
            tf.TensorSpec((None, 8), tf.float32),
            tf.TensorSpec((None,), tf.int64),
        ),
    )
    model = frozen_model(kal.losses.CrossentropyExpectationMix())
    with pytest.raises(ValueError, match="steps_per_epoch"):
        model.fit(
            dataset,
            epochs=2,
            shuffle=False,
            verbose=0,
            callbacks=[kal.callbacks.FocusSchedule(unit="step")],
        )


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: kal.callbacks.FocusSchedule(unit="batch"), "unit must be one of"),
        (lambda: kal.callbacks.FocusSchedule([0.4, 0.2]), "must increase"),
        (lambda: kal.callbacks.FocusSchedule([0.0, 0.7]), "must lie in \\[0, 0.5\\]"),
        (lambda: kal.callbacks.ParameterSchedule("beta", 3.0), "schedule must be callable"),
        (lambda: kal.callbacks.ParameterSchedule("", lambda s: 1.0), "parameter must be a name"),
    ],
)
def test_bad_arguments_raise(make, message):
    with pytest.raises(ValueError, match=message):
        make()


def test_out_of_bounds_schedule_value_raises(toy_classification):
    x, y = toy_classification
    model = frozen_model(kal.losses.CrossentropyExpectationMix())
    callback = kal.callbacks.ParameterSchedule("beta", lambda epoch: -1.0)
    with pytest.raises(ValueError, match=r"'beta'.*\[0, inf\]; got -1.0"):
        model.fit(x, y, epochs=1, verbose=0, callbacks=[callback])


@pytest.mark.slow
@pytest.mark.parametrize(
    ("make_callback", "fix"),
    [
        (lambda: kal.callbacks.FocusSchedule("0-0.5"), "kal.losses.CrossentropyExpectationMix()"),
        (
            lambda: kal.callbacks.TemperatureSchedule(lambda epoch: 1.0),
            "kal.StochasticLoss(['crossentropy', 'mse'])",
        ),
        (lambda: kal.callbacks.LossDiagnostics(), "kal.StochasticLoss(['crossentropy', 'mse'])"),
        (
            lambda: kal.callbacks.DeferredReweighting(1),
            "kal.losses.LDAMLoss(kal.losses.imbalance.class_counts(y_train))",
        ),
    ],
)
def test_missing_loss_error_names_the_class_and_a_fix_that_works(make_callback, fix):
    rng = np.random.default_rng(0)
    x, y_train = rng.normal(size=(32, 4)).astype("float32"), rng.integers(0, 3, size=32)
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, activation="softmax")])
    model.compile(optimizer="adam", loss=kal.losses.CandidateLoss("mse"))
    with pytest.raises(ValueError) as error:
        model.fit(x, y_train, epochs=1, callbacks=[make_callback()], verbose=0)
    message = str(error.value)
    assert "CandidateLoss(name='mse')" in message and " object at 0x" not in message
    assert f"model.compile(loss={fix})" in message
    # follow the advice: the suggested loss is one the callback drives
    suggested = eval(fix, {"kal": kal, "y_train": y_train})
    model.compile(optimizer="adam", loss=suggested)
    model.fit(x, y_train, epochs=2, callbacks=[make_callback()], verbose=0)
