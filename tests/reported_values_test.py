"""Adapted parameters reach History, CSVLogger and TensorBoard whatever the callback order."""

from __future__ import annotations

import csv
import glob
import os

import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_adaptive_loss as kal

NUM_CLASSES = 4
BATCH = 16
MODES = {
    "eager": {"run_eagerly": True},
    "graph": {"run_eagerly": False, "jit_compile": False},
    "jit": {"run_eagerly": False, "jit_compile": True},
}


def _model(loss, learning_rate=0.0, **compile_kwargs):
    model = keras.Sequential(
        [keras.Input((8,)), keras.layers.Dense(NUM_CLASSES, activation="softmax")]
    )
    optimizer = keras.optimizers.SGD(learning_rate=learning_rate)
    model.compile(optimizer=optimizer, loss=loss, **compile_kwargs)
    return model


def _csv(path) -> dict[str, list[float]]:
    """Column -> values; without the ``val_*`` columns CSVLogger fills with NA when there is
    no validation data."""
    with open(path, newline="") as handle:
        rows = list(csv.DictReader(handle))
    columns = [key for key in rows[0] if any(row[key] != "NA" for row in rows)]
    return {key: [float(row[key]) for row in rows] for key in columns}


def _board(log_dir) -> dict[str, list[float]]:
    values: dict[str, list[float]] = {}
    for path in sorted(glob.glob(os.path.join(str(log_dir), "train", "events.out.tfevents.*"))):
        for event in tf.compat.v1.train.summary_iterator(path):
            for value in event.summary.value:
                if value.tag.startswith("epoch_"):
                    tag = value.tag[len("epoch_") :]
                    values.setdefault(tag, []).append(float(tf.make_ndarray(value.tensor)))
    return values


def _focus(x, y):
    loss = kal.losses.CrossentropyExpectationMix()
    expected = {"focus": [0.0, 0.25], "alpha": [1.0, 1.0], "beta": [1.0, 2.0]}
    return loss, [kal.callbacks.FocusSchedule([0.0, 0.25])], expected


def _temperature(x, y):
    loss = kal.StochasticLoss(["crossentropy", "mse"], seed=0)
    callbacks = [
        kal.callbacks.TemperatureSchedule(lambda epoch: 2.0 / (epoch + 1)),
        kal.callbacks.LossDiagnostics(),
    ]
    return loss, callbacks, {"temperature": [2.0, 1.0], "slf_temperature": [2.0, 1.0]}


def _deferred_reweighting(x, y):
    loss = kal.losses.LDAMLoss(kal.losses.imbalance.class_counts(y, NUM_CLASSES))
    return loss, [kal.callbacks.DeferredReweighting(start_epoch=1)], {"drw": [0.0, 1.0]}


def _parameter_logger(x, y):
    loss = kal.losses.UncertaintyWeightedLoss("crossentropy", log_variance=0.5, name="task")
    # s is learned in the same backward pass (not by the model's optimizer): None stands for
    # "whatever History has, the same in every logger, ending at the loss's final value".
    return loss, [kal.callbacks.LossParameterLogger()], {"task_log_variance": None}


def _alignment(x, y):
    loss = kal.losses.ClassCorrelationLoss(NUM_CLASSES)
    ala = kal.callbacks.AdaptiveLossAlignment(
        (x[:16], y[:16]), period=2, evaluations_per_period=2, seed=0
    )
    return loss, [ala], {"ala_decisions": [2.0, 4.0]}  # 4 steps per epoch, period 2


CASES = {
    "focus_schedule": _focus,
    "temperature_and_diagnostics": _temperature,
    "deferred_reweighting": _deferred_reweighting,
    "parameter_logger": _parameter_logger,
    "alignment": _alignment,
}


@pytest.mark.parametrize("order", ["loggers_first", "loggers_last"])
@pytest.mark.parametrize("case", list(CASES))
def test_values_reach_every_logger_in_both_orders(case, order, tmp_path, toy_classification):
    x, y = toy_classification
    loss, callbacks, expected = CASES[case](x, y)
    model = _model(loss)
    loggers = [
        keras.callbacks.CSVLogger(str(tmp_path / "log.csv")),
        keras.callbacks.TensorBoard(log_dir=str(tmp_path / "board")),
    ]
    ordered = [*loggers, *callbacks] if order == "loggers_first" else [*callbacks, *loggers]
    history = model.fit(x, y, epochs=2, batch_size=BATCH, verbose=0, callbacks=ordered)
    csv_values, board = _csv(tmp_path / "log.csv"), _board(tmp_path / "board")
    for key, values in expected.items():
        if values is None:
            values = history.history[key]
            final = loss.get_parameter(key[len(loss.name) + 1 :])
            assert values[-1] == pytest.approx(final, rel=1e-6) and values[0] != values[1]
        np.testing.assert_allclose(history.history[key], values, rtol=1e-6, err_msg=key)
        np.testing.assert_allclose(csv_values[key], values, rtol=1e-6, err_msg=key)
        np.testing.assert_allclose(board[key], values, rtol=1e-6, err_msg=key)
    assert set(csv_values) == {"epoch", *history.history}  # the same keys everywhere
    assert set(board) - {"learning_rate"} == set(history.history)  # TensorBoard adds the rate


def test_selection_weights_reach_a_logger_listed_first(tmp_path, toy_classification):
    x, y = toy_classification
    model = _model(kal.StochasticLoss(["crossentropy", "mse", "hinge"], seed=0), 0.1)
    path = tmp_path / "log.csv"
    callbacks = [keras.callbacks.CSVLogger(str(path)), kal.callbacks.LossDiagnostics()]
    history = model.fit(x, y, epochs=3, batch_size=BATCH, verbose=0, callbacks=callbacks)
    names = [f"slf_weight_{n}" for n in ("crossentropy", "mse", "hinge")]
    logged = _csv(path)
    totals = np.sum([logged[n] for n in names], axis=0)
    np.testing.assert_allclose(totals, 1.0, rtol=1e-5)  # mean selection weights sum to one
    for name in names:
        np.testing.assert_allclose(logged[name], history.history[name], rtol=1e-6)
    assert logged["slf_skipped_steps"] == [0.0, 0.0, 0.0]


@pytest.mark.parametrize("mode", list(MODES))
def test_reported_in_every_execution_mode(mode, tmp_path, toy_classification):
    x, y = toy_classification
    model = _model(kal.losses.CrossentropyExpectationMix(), **MODES[mode])
    path = tmp_path / "log.csv"
    schedule = kal.callbacks.FocusSchedule([0.0, 0.25, 0.5])
    model.fit(
        x, y, epochs=3, batch_size=BATCH, verbose=0,
        callbacks=[keras.callbacks.CSVLogger(str(path)), schedule],
    )  # fmt: skip
    logged = _csv(path)
    np.testing.assert_allclose(logged["focus"], [0.0, 0.25, 0.5])
    np.testing.assert_allclose(logged["alpha"], [1.0, 1.0, 0.0])
    np.testing.assert_allclose(logged["beta"], [1.0, 2.0, 1.0])


def test_validation_adds_no_copies_of_the_parameters(toy_classification):
    x, y = toy_classification
    model = _model(kal.losses.CrossentropyExpectationMix())
    history = model.fit(
        x, y, epochs=2, batch_size=BATCH, verbose=0, validation_data=(x[:32], y[:32]),
        callbacks=[kal.callbacks.FocusSchedule([0.0, 0.25])],
    )  # fmt: skip
    assert sorted(history.history) == ["alpha", "beta", "focus", "loss", "val_loss"]
    assert model.evaluate(x, y, verbose=0, return_dict=True).keys() == {"loss"}


def test_a_later_fit_without_the_callback_reports_nothing_stale(toy_classification):
    x, y = toy_classification
    model = _model(kal.losses.CrossentropyExpectationMix())
    schedule = kal.callbacks.FocusSchedule([0.25])
    first = model.fit(x, y, epochs=1, batch_size=BATCH, verbose=0, callbacks=[schedule])
    assert "focus" in first.history
    second = model.fit(x, y, epochs=1, batch_size=BATCH, verbose=0)
    assert sorted(second.history) == ["loss"]
    third = model.fit(x, y, epochs=1, batch_size=BATCH, verbose=0, callbacks=[schedule])
    assert third.history["focus"] == [0.25]


def test_repeated_fits_with_the_same_callback_trace_once(toy_classification, monkeypatch):
    x, y = toy_classification
    traces = []
    result = kal.callbacks.reported_values.ReportedValues.result

    def counting_result(self):
        if not tf.executing_eagerly():
            traces.append(tuple(self.keys))
        return result(self)

    monkeypatch.setattr(kal.callbacks.reported_values.ReportedValues, "result", counting_result)
    model = _model(kal.losses.CrossentropyExpectationMix())
    schedule = kal.callbacks.ParameterSchedule("beta", lambda epoch: 0.5 * epoch)
    betas = []
    for _ in range(3):
        history = model.fit(x, y, epochs=2, batch_size=BATCH, verbose=0, callbacks=[schedule])
        betas.append(history.history["beta"])
    assert betas == [[0.0, 0.5]] * 3
    assert traces == [("beta",)]  # one trace of the train step for the three fits
    model.fit(x, y, epochs=1, batch_size=BATCH, verbose=0)
    assert traces == [("beta",), ()]  # without the callback: retraced, without its key


def test_a_new_callback_instance_reports_its_own_values(toy_classification):
    """A traced step reads the variables of the callback it was traced for: a new instance
    (with variables of its own) gets a new trace."""
    x, y = toy_classification
    model = _model(kal.losses.CrossentropyExpectationMix())
    for focus in (0.1, 0.2):
        schedule = kal.callbacks.FocusSchedule([focus])
        history = model.fit(x, y, epochs=1, batch_size=BATCH, verbose=0, callbacks=[schedule])
        assert history.history["focus"] == pytest.approx([focus])


def test_evaluate_between_fits_keeps_the_keys_right(toy_classification):
    x, y = toy_classification
    model = _model(kal.losses.CrossentropyExpectationMix())
    schedule = kal.callbacks.FocusSchedule([0.25])
    model.fit(x, y, epochs=1, batch_size=BATCH, verbose=0, callbacks=[schedule])
    assert model.evaluate(x, y, verbose=0, return_dict=True).keys() == {"loss"}
    assert sorted(model.fit(x, y, epochs=1, batch_size=BATCH, verbose=0).history) == ["loss"]
    history = model.fit(x, y, epochs=1, batch_size=BATCH, verbose=0, callbacks=[schedule])
    assert history.history["beta"] == [2.0]


def test_custom_train_step_still_gets_the_values_for_later_loggers(tmp_path, toy_classification):
    """A model whose train_step returns its own logs: the callback writes the missing keys."""

    class OwnLogs(keras.Model):
        def train_step(self, data):
            x, y = data
            with tf.GradientTape() as tape:
                loss = self.compute_loss(x=x, y=y, y_pred=self(x, training=True))
            grads = tape.gradient(loss, self.trainable_variables)
            self.optimizer.apply(grads, self.trainable_variables)
            return {"my_loss": loss}

    x, y = toy_classification
    inputs = keras.Input((8,))
    model = OwnLogs(inputs, keras.layers.Dense(NUM_CLASSES, activation="softmax")(inputs))
    model.compile(optimizer="sgd", loss=kal.losses.CrossentropyExpectationMix())
    path = tmp_path / "log.csv"
    callbacks = [kal.callbacks.FocusSchedule([0.0, 0.25]), keras.callbacks.CSVLogger(str(path))]
    history = model.fit(x, y, epochs=2, batch_size=BATCH, verbose=0, callbacks=callbacks)
    assert history.history["focus"] == [0.0, 0.25]
    assert _csv(path)["beta"] == [1.0, 2.0]


def test_models_saved_during_and_after_training_load(tmp_path, toy_classification):
    x, y = toy_classification
    loss = kal.losses.CrossentropyExpectationMix()
    model = _model(loss, 0.1)
    during = str(tmp_path / "during.keras")
    callbacks = [
        keras.callbacks.ModelCheckpoint(during),
        kal.callbacks.FocusSchedule([0.0, 0.25]),
        kal.callbacks.LossParameterLogger(),
    ]
    model.fit(x, y, epochs=2, batch_size=BATCH, verbose=0, callbacks=callbacks)
    after = str(tmp_path / "after.keras")
    model.save(after)
    for path in (during, after):
        restored = keras.models.load_model(path)
        assert restored.loss.parameters == pytest.approx({"alpha": 1.0, "beta": 2.0})
        np.testing.assert_allclose(restored.predict(x, verbose=0), model.predict(x, verbose=0))
        assert restored.evaluate(x, y, verbose=0, return_dict=True).keys() == {"loss"}


@pytest.mark.slow
def test_reported_under_a_mirrored_strategy(mirrored_strategy, tmp_path, toy_classification):
    x, y = toy_classification
    with mirrored_strategy.scope():
        model = _model(kal.StochasticLoss(["crossentropy", "mse"], seed=0), 0.1)
    path = tmp_path / "log.csv"
    callbacks = [
        keras.callbacks.CSVLogger(str(path)),
        kal.callbacks.TemperatureSchedule(lambda epoch: 2.0 / (epoch + 1)),
        kal.callbacks.LossDiagnostics(),
    ]
    model.fit(x, y, epochs=2, batch_size=BATCH, verbose=0, callbacks=callbacks)
    logged = _csv(path)
    np.testing.assert_allclose(logged["temperature"], [2.0, 1.0])
    weights = np.add(logged["slf_weight_crossentropy"], logged["slf_weight_mse"])
    np.testing.assert_allclose(weights, 1.0, rtol=1e-5)


def test_reported_values_pause_and_registration():
    reported = kal.callbacks.reported_values.ReportedValues()
    assert reported.result() == {}
    owner = object()
    reported.register(owner, {"alpha": lambda: keras.ops.convert_to_tensor(0.5)})
    assert reported.keys == ["alpha"]
    assert float(reported.result()["alpha"]) == 0.5
    reported.pause()
    assert reported.result() == {}
    reported.resume()
    reported.unregister(owner)
    assert reported.result() == {} and reported.variables == []
