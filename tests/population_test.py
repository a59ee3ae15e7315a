"""`kal.ala.fit_children`: N children, one controller, a CE control child, exploit, resume."""

from __future__ import annotations

import keras
import numpy as np
import pytest

import keras_adaptive_loss as kal
from keras_adaptive_loss.ala import population

NUM_CLASSES = 4


def _data(seed=0, samples=160):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, NUM_CLASSES, samples)
    x = (rng.normal(size=(samples, 8)) + 1.5 * np.eye(NUM_CLASSES, 8)[y]).astype("float32")
    return x[:128], y[:128], (x[128:], y[128:])


def _build(index):
    model = keras.Sequential(
        [keras.Input((8,)), keras.layers.Dense(NUM_CLASSES, activation="softmax")]
    )
    model.compile(
        optimizer=keras.optimizers.Adam(0.01), loss=kal.losses.ClassCorrelationLoss(NUM_CLASSES)
    )
    return model


def _fit(**kwargs):
    x, y, validation = _data()
    arguments = dict(
        num_children=3, epochs=3, batch_size=16, period=4, step_size=0.05,
        parameter_bound=0.25, seed=0,
        policy=kal.ala.controllers.Policy(44, seed=0, keep_prior=1 / 3),
    )  # fmt: skip
    return kal.ala.fit_children(_build, x, y, validation, **{**arguments, **kwargs})


@pytest.mark.slow
def test_children_share_one_controller_and_the_control_child_stays_at_identity():
    result = _fit()
    assert len(result.children) == 3 and result.control_index == 0
    phis = [child.loss.get_parameter("phi") for child in result.children]
    np.testing.assert_array_equal(phis[0], np.eye(NUM_CLASSES))  # the CE control child
    assert not np.allclose(phis[1], np.eye(NUM_CLASSES))  # adapted
    weights = [child.get_weights()[0] for child in result.children]
    assert not np.allclose(weights[1], weights[2])  # children differ
    # 24 steps, period 4: 6 decisions; 6 pairs x 2 members rewarded at decisions 1..5.
    assert result.controller.memory.size <= 5 * 2 * 6
    assert len(result.metrics) == 7 and len(result.metrics[-1]) == 3
    final = np.array(result.metrics[-1])
    assert final[result.best_index] == final.min()  # the best child by validation error


@pytest.mark.slow
def test_exploit_copies_weights_optimizer_state_and_phi():
    x, y, _ = _data()
    children, adapters = [], []
    controller = kal.ala.controllers.AlignmentController(44, seed=0)
    members = {}
    for index in range(3):
        keras.utils.set_random_seed(index)
        model = _build(index)
        model.fit(x, y, epochs=1, batch_size=32, verbose=0)
        loss = model.loss
        loss.set_parameter("phi", np.eye(NUM_CLASSES) + 0.01 * index * (1 - np.eye(NUM_CLASSES)))
        children.append(model)
        adapters.append(kal.ala.controllers.adapters.adapter_for(loss))
        if index:
            members[index] = controller.add_member(6, 2, 10, 4)
    copies = population._exploit(
        children, adapters, members, current=[0.3, 0.1, 0.5], sign=-1.0, control=0,
        fraction=0.5, decision=2,
    )  # fmt: skip
    assert copies == [(2, 1, 2)]  # the worst adapted child (2) copies the best (1)
    for a, b in zip(children[2].get_weights(), children[1].get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)
    for a, b in zip(children[2].optimizer.variables, children[1].optimizer.variables, strict=True):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    np.testing.assert_array_equal(
        children[2].loss.get_parameter("phi"), children[1].loss.get_parameter("phi")
    )
    assert members[2].pending is None
    assert not np.allclose(children[0].get_weights()[0], children[1].get_weights()[0])


@pytest.mark.slow
def test_the_best_child_saves_and_loads_with_its_phi(tmp_path):
    result = _fit()
    model = result.children[1]
    model.save(tmp_path / "child.keras")
    loaded = keras.models.load_model(tmp_path / "child.keras")
    np.testing.assert_allclose(loaded.loss.get_parameter("phi"), model.loss.get_parameter("phi"))


@pytest.mark.slow
def test_an_interrupted_population_resumes_exactly(tmp_path, monkeypatch):
    reference = _fit()
    calls = {"count": 0}
    original = population._save_backup

    def interrupting_save(*args):
        original(*args)
        calls["count"] += 1
        if calls["count"] == 3:  # after the third decision's backup
            raise KeyboardInterrupt

    monkeypatch.setattr(population, "_save_backup", interrupting_save)
    with pytest.raises(KeyboardInterrupt):
        _fit(backup_dir=tmp_path)
    monkeypatch.setattr(population, "_save_backup", original)
    resumed = _fit(backup_dir=tmp_path)
    for a, b in zip(resumed.children, reference.children, strict=True):
        np.testing.assert_allclose(a.loss.get_parameter("phi"), b.loss.get_parameter("phi"))
        for wa, wb in zip(a.get_weights(), b.get_weights(), strict=True):
            np.testing.assert_allclose(wa, wb, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(resumed.metrics, reference.metrics, rtol=1e-6)


@pytest.mark.slow
def test_a_trained_policy_transfers_to_another_class_count():
    result = _fit()
    rng = np.random.default_rng(1)
    x, y = rng.normal(size=(40, 8)).astype("float32"), rng.integers(0, 3, 40)
    model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(3, activation="softmax")])
    model.compile(optimizer="adam", loss=kal.losses.ClassCorrelationLoss(3))
    ala = kal.callbacks.AdaptiveLossAlignment((x, y), period=2, policy=result.policy, learn=False)
    model.fit(x, y, epochs=2, batch_size=8, verbose=0, callbacks=[ala])
    assert ala.decisions == 5


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"num_children": 2}, "num_children must be at least 3"),
        ({"period": 0}, "period must be an integer >= 1"),
        ({"exploit_fraction": 1.0}, r"exploit_fraction must lie in \[0, 1\)"),
        ({"batch_size": 1000}, "larger than the 128 training samples"),
    ],
)
def test_bad_arguments_raise(kwargs, message):
    with pytest.raises(ValueError, match=message):
        _fit(**kwargs)


def test_a_model_without_an_ala_loss_is_refused():
    x, y, validation = _data()

    def build(index):
        model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(NUM_CLASSES)])
        model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
        return model

    with pytest.raises(ValueError, match="compiled with one ALA loss"):
        kal.ala.fit_children(build, x, y, validation, num_children=3)


@pytest.mark.slow
def test_a_child_and_the_controller_state_survive_backup_and_restore(tmp_path):
    from tests import helpers

    result = _fit()
    child = result.children[1]
    phi = child.loss.get_parameter("phi")
    memory = result.controller.memory.size
    x, y, _ = _data()
    backup = keras.callbacks.BackupAndRestore(str(tmp_path / "backup"))
    with pytest.raises(helpers.InterruptError):
        child.fit(x, y, epochs=3, verbose=0, callbacks=[backup, helpers.InterruptAtEpoch(1)])

    # A fresh process: the same builder and a new controller, nothing but the checkpoint.
    fresh = _build(1)
    controller = kal.ala.controllers.AlignmentController(44, seed=5)
    fresh.loss.alignment_state = controller.add_member(6, 2, 10, 4)
    assert controller.memory.size == 0
    restored = keras.callbacks.BackupAndRestore(str(tmp_path / "backup"))
    snapshot = {}

    class Peek(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            snapshot.setdefault("phi", fresh.loss.get_parameter("phi"))
            snapshot.setdefault("memory", controller.memory.size)

    fresh.fit(x, y, epochs=3, verbose=0, callbacks=[restored, Peek()])
    np.testing.assert_allclose(snapshot["phi"], phi)
    assert snapshot["memory"] == memory > 0


def test_adapted_children_start_at_evenly_spread_phi():
    adapters, members = [], {}
    controller = kal.ala.controllers.AlignmentController(44, seed=0)
    for index in range(4):
        loss = kal.losses.ClassCorrelationLoss(NUM_CLASSES)
        adapters.append(kal.ala.controllers.adapters.adapter_for(loss))  # bound 1/4, rows 0.5
        if index:
            members[index] = controller.add_member(6, 2, 10, 4)
    population._spread_initial_phi(adapters, members, "auto")  # half the bound: 0.125
    off = [a.loss.get_parameter("phi")[0, 1:] for a in adapters]
    np.testing.assert_allclose(off[0], 0.0)  # the control child stays at Φ = I
    np.testing.assert_allclose(off[1], 0.125 / 3, rtol=1e-6)
    np.testing.assert_allclose(off[2], 0.25 / 3, rtol=1e-6)
    np.testing.assert_allclose(off[3], 0.125, rtol=1e-6)  # within the row bound 0.5 / 3
    np.testing.assert_array_equal(np.diag(adapters[3].loss.get_parameter("phi")), 1.0)
    with pytest.raises(ValueError, match=r"initial_spread must lie in \[0, parameter_bound"):
        population._spread_initial_phi(adapters, members, 0.5)


@pytest.mark.slow
def test_the_period_metric_is_discounted_with_the_given_discount():
    # Four measurements per period: gamma = 1 averages them, a tiny gamma keeps the last one.
    mean = _fit(epochs=1, evaluations_per_period=4, discount=1.0, learn=False)
    last = _fit(epochs=1, evaluations_per_period=4, discount=1e-6, learn=False)
    assert mean.metrics[0] == last.metrics[0]  # the first decision has one measurement
    assert not np.allclose(mean.metrics[1], last.metrics[1])


@pytest.mark.slow
def test_children_are_measured_with_the_compiled_validation_pass(monkeypatch):
    calls = []
    original = kal.ala.measure.ValidationPass.__call__

    def counted(self):
        calls.append(self)
        return original(self)

    monkeypatch.setattr(kal.ala.measure.ValidationPass, "__call__", counted)
    monkeypatch.setattr(
        keras.Model, "predict", lambda *a, **k: pytest.fail("model.predict is not used")
    )
    result = _fit(epochs=1, period=8)
    # 8 steps, period 8, 4 measurements: at steps 0, 2, 4, 6, then the final measurement.
    assert len(calls) == 3 * 5 and len(result.metrics) == 2
