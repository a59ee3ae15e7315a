"""Schedules: PiecewiseConstant, the F-phase protocols and phase placement."""

from __future__ import annotations

import keras
import numpy as np
import pytest
from keras import ops

import keras_adaptive_loss as kal


def test_piecewise_constant_python_and_tensor_positions_agree():
    schedule = kal.schedules.PiecewiseConstant([3, 3, 7], [0.0, 0.1, 0.2, 0.3])
    python = [schedule(step) for step in range(10)]
    assert python == [0.0, 0.0, 0.0, 0.2, 0.2, 0.2, 0.2, 0.3, 0.3, 0.3]
    tensor = [float(ops.convert_to_numpy(schedule(ops.convert_to_tensor(s)))) for s in range(10)]
    np.testing.assert_allclose(tensor, python, rtol=1e-6)


def test_piecewise_constant_drives_an_optimizer_and_serializes():
    schedule = kal.schedules.PiecewiseConstant([2], [0.1, 0.01])
    restored = keras.optimizers.schedules.deserialize(
        keras.optimizers.schedules.serialize(schedule)
    )
    assert isinstance(restored, kal.schedules.PiecewiseConstant)
    assert restored.get_config() == schedule.get_config()
    optimizer = keras.optimizers.SGD(learning_rate=restored)
    assert float(optimizer.learning_rate) == pytest.approx(0.1)


@pytest.mark.parametrize(
    ("boundaries", "values", "message"),
    [([1], [0.0], "one more value"), ([3, 1], [0, 1, 2], "must not decrease")],
)
def test_piecewise_constant_validation(boundaries, values, message):
    with pytest.raises(ValueError, match=message):
        kal.schedules.PiecewiseConstant(boundaries, values)


def test_paper_protocols():
    assert kal.schedules.focus_phases("0") == ((0.0, 1.0),)
    assert kal.schedules.focus_phases("0, 0.5") == ((0.0, 0.95), (0.5, 0.05))
    phases = kal.schedules.focus_phases("0-0.5")
    assert [f for f, _ in phases] == [0.0, 0.1, 0.2, 0.3, 0.4, 0.5]
    assert sum(fraction for _, fraction in phases) == pytest.approx(1.0)


def test_the_default_protocol_stops_before_the_pure_expectation_loss():
    phases = kal.schedules.focus_phases("0-0.4")
    assert [f for f, _ in phases] == pytest.approx([0.0, 0.08, 0.16, 0.24, 0.32, 0.4])
    assert [fraction for _, fraction in phases] == pytest.approx([1 / 6] * 6)
    assert kal.callbacks.FocusSchedule().phases == phases
    loss = kal.losses.CrossentropyExpectationMix()
    loss.set_focus(phases[-1][0])  # Eq. 14 at F = 0.4: the cross-entropy term keeps weight 1
    assert loss.parameters == pytest.approx({"alpha": 1.0, "beta": 5.0})
    context = kal.comparison.LossContext(
        num_classes=3, seed=0, steps_per_epoch=4, epochs=6,
        validation_data=(np.zeros((2, 2), "float32"), np.zeros(2, "int64")),
    )  # fmt: skip
    (schedule,) = kal.comparison.build_loss("ce_el_0-0.4", context).callbacks
    assert schedule.phases == phases


def test_explicit_lists_and_pairs():
    assert kal.schedules.focus_phases([0, 0.5]) == ((0.0, 0.5), (0.5, 0.5))
    assert kal.schedules.focus_phases([(0, 0.8), (0.3, 0.2)]) == ((0.0, 0.8), (0.3, 0.2))


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("0-1", "Unknown focus protocol"),
        ([], "must not be empty"),
        ([0.0, 0.6], "must lie in \\[0, 0.5\\]"),
        ([-0.1, 0.2], "must lie in \\[0, 0.5\\]"),
        ([0.3, 0.1], "must increase"),
        ([0.1, 0.1], "must increase"),
        ([(0, 0.5), (0.5, 0.4)], "sum to 1"),
        ([(0, 1.2), (0.5, -0.2)], "positive"),
        ([(0, 0.5), 0.5], "all F values or all \\(F, fraction\\) pairs"),
    ],
)
def test_bad_phases_raise(spec, message):
    with pytest.raises(ValueError, match=message):
        kal.schedules.focus_phases(spec)


@pytest.mark.parametrize(
    ("fractions", "total", "starts"),
    [
        ([0.95, 0.05], 20, [0, 19]),
        ([0.95, 0.05], 100, [0, 95]),
        ([0.95, 0.05], 3, [0, 2]),
        ([1 / 6] * 6, 12, [0, 2, 4, 6, 8, 10]),
        ([1 / 6] * 6, 3, [0, 0, 1, 1, 2, 2]),
    ],
)
def test_phase_starts(fractions, total, starts):
    assert kal.schedules.phase_starts(fractions, total) == starts


def test_step_schedules_read_the_global_step_at_each_chunk_start():
    x = np.random.default_rng(0).normal(size=(40, 4)).astype("float32")
    y = np.arange(40) % 3
    seen = []

    def schedule(step):
        seen.append(int(step))
        return 0.5 + 0.01 * int(step)

    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, activation="softmax")])
    loss = kal.losses.CrossentropyExpectationMix()
    model.compile(optimizer="sgd", loss=loss, steps_per_execution=3)
    callback = kal.callbacks.ParameterSchedule("beta", schedule, unit="step")
    model.fit(x, y, batch_size=4, epochs=2, verbose=0, callbacks=[callback])
    assert seen == [0, 3, 6, 9, 10, 13, 16, 19]  # 10 steps per epoch in chunks of 3
    assert loss.get_parameter("beta") == pytest.approx(0.69)
