"""AdaptiveLossAlignment in fit: Φ moves and takes effect, replicas, transfer, sharing, errors."""

from __future__ import annotations

import keras
import numpy as np
import pytest

import keras_adaptive_loss as kal
from keras_adaptive_loss.ala.controllers.adapters import adapter_for
from tests import helpers

NUM_CLASSES = 4


class _RecordPhi(keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.history = []

    def on_epoch_end(self, epoch, logs=None):
        self.history.append(self.model.loss.get_parameter("phi"))


def _classifier(num_classes=NUM_CLASSES, learning_rate=0.0, **compile_kwargs):
    model = keras.Sequential(
        [keras.Input((8,)), keras.layers.Dense(num_classes, activation="softmax")]
    )
    model.compile(
        optimizer=keras.optimizers.SGD(learning_rate),
        loss=kal.losses.ClassCorrelationLoss(num_classes),
        **compile_kwargs,
    )
    return model


def _numpy_loss(labels, probs, phi):
    from tests.alignment_test import _numpy_class_correlation

    return _numpy_class_correlation(labels, probs, phi).mean()


@pytest.mark.slow
@pytest.mark.parametrize("jit", [False, True], ids=["graph", "jit"])
def test_phi_moves_inside_fit_and_takes_effect(jit, toy_classification):
    x, y = toy_classification  # 64 samples, batch 16: 4 steps per epoch
    model = _classifier(jit_compile=jit)
    ala = kal.callbacks.AdaptiveLossAlignment(
        validation_data=(x, y), period=4, evaluations_per_period=1, step_size=0.2, seed=0,
        parameter_bound=1.0, row_bound=None,
        policy=kal.ala.controllers.Policy(44, keep_prior=1 / 3),
    )  # fmt: skip
    recorder = _RecordPhi()
    history = model.fit(x, y, epochs=4, batch_size=16, verbose=0, callbacks=[ala, recorder])
    assert ala.decisions == 4 and len(ala.rewards) == 3
    probs = model.predict(x, verbose=0).astype("float64")
    for epoch, phi in enumerate(recorder.history):  # decided at each epoch's first step
        assert np.allclose(phi, phi.T) and np.abs(phi).max() <= 1.0
        np.testing.assert_array_equal(np.diag(phi), 1.0)
        assert history.history["loss"][epoch] == pytest.approx(_numpy_loss(y, probs, phi), rel=1e-5)
    assert not np.allclose(recorder.history[-1], np.eye(NUM_CLASSES))
    assert history.history["ala_decisions"] == [1.0, 2.0, 3.0, 4.0]


@pytest.mark.slow
def test_every_replica_uses_the_same_phi(mirrored_strategy, toy_classification):
    x, y = toy_classification
    with mirrored_strategy.scope():
        model = _classifier()
    ala = kal.callbacks.AdaptiveLossAlignment(
        (x, y), period=4, evaluations_per_period=1, step_size=0.2, seed=1, parameter_bound=1.0
    )
    model.fit(x, y, epochs=2, batch_size=16, verbose=0, callbacks=[ala])
    copies = [v.numpy() for v in model.loss.variable("phi").value.values]
    np.testing.assert_array_equal(copies[0], copies[1])
    assert not np.allclose(copies[0], np.eye(NUM_CLASSES))


@pytest.mark.slow
def test_policy_transfers_from_ten_to_five_classes(tmp_path):
    rng = np.random.default_rng(0)
    x10, y10 = rng.normal(size=(80, 8)).astype("float32"), rng.integers(0, 10, 80)
    model = _classifier(10, learning_rate=0.05)
    ala = kal.callbacks.AdaptiveLossAlignment(
        (x10, y10), period=2, evaluations_per_period=1, seed=0
    )
    model.fit(x10, y10, epochs=3, batch_size=16, verbose=0, callbacks=[ala])
    assert ala.controller.memory.size == 45 * len(ala.rewards) > 0  # one transition per pair
    ala.controller.policy.save(tmp_path / "policy")

    policy = kal.ala.controllers.Policy.load(tmp_path / "policy")
    weights = [w.copy() for w in policy.network.get_weights()]
    x5, y5 = rng.normal(size=(40, 8)).astype("float32"), rng.integers(0, 5, 40)
    five = _classifier(5, learning_rate=0.05)
    transfer = kal.callbacks.AdaptiveLossAlignment(
        (x5, y5), period=1, evaluations_per_period=1, policy=policy, learn=False, step_size=0.3
    )
    five.fit(x5, y5, epochs=2, batch_size=8, verbose=0, callbacks=[transfer])
    assert transfer.decisions == 10
    for before, after in zip(weights, policy.network.get_weights(), strict=True):
        np.testing.assert_array_equal(before, after)  # learn=False: applied, not trained


@pytest.mark.slow
def test_models_share_one_controller(toy_classification):
    x, y = toy_classification
    shared = kal.ala.controllers.AlignmentController(
        kal.ala.controllers.feature_size(2, 10), seed=0
    )
    for seed in (0, 1):
        keras.utils.set_random_seed(seed)
        model = _classifier(learning_rate=0.05)
        ala = kal.callbacks.AdaptiveLossAlignment(
            (x, y), period=4, evaluations_per_period=1, controller=shared
        )
        model.fit(x, y, epochs=3, batch_size=16, verbose=0, callbacks=[ala])
    assert shared.memory.size == 2 * 2 * 6  # two models x two rewarded decisions x six pairs


@pytest.mark.slow
def test_auc_pr_and_custom_metrics(toy_classification):
    x, y = toy_classification
    for metric, higher in (
        (keras.metrics.SparseCategoricalAccuracy(), True),
        (lambda y_true, y_pred: float(np.mean(y_pred.argmax(-1) != y_true)), False),
    ):
        ala = kal.callbacks.AdaptiveLossAlignment(
            (x, y), period=4, evaluations_per_period=2, metric=metric, higher_is_better=higher
        )
        _classifier(learning_rate=0.05).fit(
            x, y, epochs=2, batch_size=16, verbose=0, callbacks=[ala]
        )
        assert ala.decisions == 2
    scores = np.array([0.9, 0.8, 0.3, 0.1])
    assert kal.ala.controllers.metrics.average_precision(
        np.array([1, 0, 1, 0]), scores
    ) == pytest.approx((1 + 2 / 3) / 2)


@pytest.mark.slow
def test_metric_learning_losses_are_adapted():
    rng = np.random.default_rng(2)
    labels = rng.integers(0, 3, size=48)
    x = (rng.normal(size=(48, 6)) + np.eye(3)[labels] @ rng.normal(size=(3, 6))).astype("float32")
    for loss in (kal.losses.DistanceMixtureLoss(), kal.losses.FocalWeightingLoss()):
        model = keras.Sequential([keras.Input((6,)), keras.layers.Dense(4)])
        model.compile(optimizer="adam", loss=loss)
        before = loss.get_parameter("phi")
        ala = kal.callbacks.AdaptiveLossAlignment(
            (x, labels), period=3, evaluations_per_period=1, seed=0, step_size=0.2,
            policy=kal.ala.controllers.Policy(23, seed=0, keep_prior=1 / 3),
        )  # fmt: skip
        model.fit(x, labels, epochs=3, batch_size=16, verbose=0, callbacks=[ala])
        assert ala.decisions == 3 and not np.allclose(loss.get_parameter("phi"), before)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"validation_data": None}, r"needs validation_data=\(x_val, y_val\)"),
        ({"period": 0}, "period must be an integer >= 1"),
        ({"step_size": 0.0}, "step_size must be > 0"),
        ({"metric": "f1"}, "Unknown metric 'f1'"),
        ({"metric": keras.metrics.Accuracy()}, "pass higher_is_better"),
    ],
)
def test_bad_arguments_raise(kwargs, message, toy_classification):
    arguments = {"validation_data": toy_classification, **kwargs}
    with pytest.raises(ValueError, match=message):
        kal.callbacks.AdaptiveLossAlignment(**arguments)


def test_a_loss_without_ala_parameters_is_refused(toy_classification):
    x, y = toy_classification
    model = keras.Sequential(
        [keras.Input((8,)), keras.layers.Dense(NUM_CLASSES, activation="softmax")]
    )
    model.compile(optimizer="sgd", loss=kal.losses.CrossentropyExpectationMix())
    with pytest.raises(
        ValueError, match=r"AdaptiveLossAlignment found no compiled loss.*ClassCorrelationLoss"
    ):
        model.fit(
            x, y, epochs=1, verbose=0, callbacks=[kal.callbacks.AdaptiveLossAlignment((x, y))]
        )


class _Snapshot(keras.callbacks.Callback):
    """Records the controller of `ala` at the start of the first epoch this run trains."""

    def __init__(self, ala):
        super().__init__()
        self.ala = ala
        self.taken = None

    def on_epoch_begin(self, epoch, logs=None):
        if self.taken is None:
            memory = self.ala.controller.memory
            self.taken = {
                "epoch": epoch,
                "decisions": self.ala.decisions,
                "weights": [w.copy() for w in self.ala.controller.policy.network.get_weights()],
                "memory": memory.rewards.numpy()[: memory.size].copy(),
                "baseline": float(self.ala.controller.baseline.numpy()),
            }


@pytest.mark.slow
def test_interrupted_run_resumes_with_the_same_controller(tmp_path, toy_classification):
    x, y = toy_classification
    backup = str(tmp_path / "backup")

    def make():  # a uniform-start policy, so that Φ surely moves in four decisions
        policy = kal.ala.controllers.Policy(44, seed=3, keep_prior=1 / 3)
        return kal.callbacks.AdaptiveLossAlignment(
            (x, y), period=4, evaluations_per_period=1, step_size=0.2, policy=policy, seed=3,
            parameter_bound=1.0,
        )  # fmt: skip

    def fit(ala, callbacks):
        keras.utils.set_random_seed(0)
        model = _classifier(learning_rate=0.05)
        model.fit(
            x, y, epochs=4, batch_size=16, verbose=0,
            callbacks=[ala, keras.callbacks.BackupAndRestore(backup), *callbacks],
        )  # fmt: skip
        return model

    first = make()
    with pytest.raises(helpers.InterruptError):
        fit(first, [helpers.InterruptAtEpoch(2)])  # the checkpoint of epoch 1 is on disk
    memory = first.controller.memory
    saved = {
        "weights": first.controller.policy.network.get_weights(),
        "memory": memory.rewards.numpy()[: memory.size].copy(),
        "baseline": float(first.controller.baseline.numpy()),
    }

    second = make()  # a new process would start from nothing but the checkpoint
    snapshot = _Snapshot(second)
    model = fit(second, [snapshot])
    taken = snapshot.taken
    assert taken["epoch"] == 2 and taken["decisions"] == 2  # finished epochs skipped
    for a, b in zip(taken["weights"], saved["weights"], strict=True):
        np.testing.assert_array_equal(a, b)  # policy restored
    np.testing.assert_array_equal(taken["memory"], saved["memory"])  # replay memory restored
    assert taken["baseline"] == saved["baseline"]
    assert second.decisions == 4 and second.controller.memory.size == 18
    assert not np.allclose(model.loss.get_parameter("phi"), np.eye(NUM_CLASSES))


def test_model_trained_with_ala_saves_and_loads(tmp_path, toy_classification):
    x, y = toy_classification
    model = _classifier(learning_rate=0.05)
    policy = kal.ala.controllers.Policy(44, seed=0, keep_prior=1 / 3)
    ala = kal.callbacks.AdaptiveLossAlignment(
        (x, y), period=4, evaluations_per_period=1, step_size=0.2, policy=policy,
        parameter_bound=1.0, seed=0,
    )  # fmt: skip
    model.fit(x, y, epochs=3, batch_size=16, verbose=0, callbacks=[ala])
    phi = model.loss.get_parameter("phi")
    assert not np.allclose(phi, np.eye(NUM_CLASSES))
    model.save(tmp_path / "ala.keras")  # the loss also holds the controller's state layer
    np.testing.assert_allclose(
        keras.models.load_model(tmp_path / "ala.keras").loss.get_parameter("phi"), phi
    )
    model.save_weights(tmp_path / "ala.weights.h5")
    fresh = _classifier()  # no controller attached: its state in the file is simply not read
    fresh.load_weights(tmp_path / "ala.weights.h5")
    np.testing.assert_allclose(fresh.loss.get_parameter("phi"), phi)


@pytest.mark.slow
@pytest.mark.parametrize("steps_per_execution", [1, 3, 7])
def test_decisions_do_not_depend_on_steps_per_execution(steps_per_execution, toy_classification):
    x, y = toy_classification  # 64 samples, batch 4: 16 steps per epoch, 48 in all
    model = _classifier(learning_rate=0.05, steps_per_execution=steps_per_execution)
    ala = kal.callbacks.AdaptiveLossAlignment((x, y), period=8, seed=0)
    model.fit(x, y, epochs=3, batch_size=4, verbose=0, callbacks=[ala])
    assert ala.decisions == 6  # steps 0, 8, ..., 40 (or the first chunk start after each)


def test_chunks_longer_than_the_period_warn(toy_classification):
    x, y = toy_classification
    model = _classifier(steps_per_execution=8)
    ala = kal.callbacks.AdaptiveLossAlignment((x, y), period=4)
    with pytest.warns(UserWarning, match="steps_per_execution=8 is larger than period=4"):
        model.fit(x, y, epochs=2, batch_size=4, verbose=0, callbacks=[ala])


def test_default_evaluations_fit_a_short_period(toy_classification):
    x, y = toy_classification
    ala = kal.callbacks.AdaptiveLossAlignment((x, y), period=2)
    assert ala.evaluations_per_period == 2
    _classifier().fit(x, y, epochs=1, batch_size=16, verbose=0, callbacks=[ala])
    assert ala.decisions == 2


def test_a_run_too_short_for_the_period_warns(toy_classification):
    x, y = toy_classification
    ala = kal.callbacks.AdaptiveLossAlignment((x, y), period=200)
    with pytest.warns(UserWarning, match=r"makes 1 decision\(s\).*Lower period"):
        _classifier().fit(x, y, epochs=1, batch_size=16, verbose=0, callbacks=[ala])


@pytest.mark.slow
def test_default_steps_stay_within_the_safe_bounds(toy_classification):
    x, y = toy_classification
    model = _classifier(learning_rate=0.05)
    policy = kal.ala.controllers.Policy(44, seed=0, keep_prior=1 / 3)  # moves often
    ala = kal.callbacks.AdaptiveLossAlignment((x, y), period=1, policy=policy, seed=0)
    model.fit(x, y, epochs=6, batch_size=4, verbose=0, callbacks=[ala])
    phi = model.loss.get_parameter("phi")
    off = phi - np.diag(np.diag(phi))
    assert ala.decisions == 96 and np.abs(off).max() > 0
    assert np.abs(off).max() <= 1 / NUM_CLASSES + 1e-6  # parameter_bound "auto": 1 / C
    assert np.abs(off).sum(1).max() <= 0.5 + 1e-6  # row_bound
    moves = np.abs(np.diff(np.unique(np.round(off, 6))))
    assert moves.min() >= 0.1 / NUM_CLASSES - 1e-6  # step "auto": 0.1 / C


def test_paper_recipe_uses_the_papers_steps_and_bounds(toy_classification):
    ala = kal.callbacks.AdaptiveLossAlignment.paper(toy_classification, period=4)
    assert (ala.step_size, ala.parameter_bound, ala.row_bound) == (0.1, 1.0, None)
    assert ala.softening


def _moving_often(softening):
    policy = kal.ala.controllers.Policy(44, seed=0, keep_prior=1 / 3)
    return dict(period=1, evaluations_per_period=1, policy=policy, seed=0, softening=softening)


@pytest.mark.parametrize("softening", [False, True], ids=["default", "softening"])
def test_the_default_adds_confusion_penalties_but_never_soft_targets(softening, toy_classification):
    x, y = toy_classification  # 64 samples, batch 16: 8 decisions in 2 epochs
    model = _classifier(learning_rate=0.05)
    ala = kal.callbacks.AdaptiveLossAlignment((x, y), **_moving_often(softening))
    model.fit(x, y, epochs=2, batch_size=16, verbose=0, callbacks=[ala])
    off = model.loss.get_parameter("phi")[~np.eye(NUM_CLASSES, dtype=bool)]
    assert ala.decisions == 8 and off.min() < 0
    assert (off.max() > 0) == softening


def test_without_softening_a_positive_entry_set_by_hand_only_comes_down():
    loss = kal.losses.ClassCorrelationLoss(3)
    phi = np.eye(3, dtype="float32")
    phi[0, 1] = phi[1, 0] = 0.2  # within the bound 1/3
    loss.set_parameter("phi", phi)
    adapter = adapter_for(loss, softening=False)  # pairs 01 02 12
    adapter.apply(np.array([0.1, 0.1, -0.1]))
    np.testing.assert_allclose(adapter.values(), [0.2, 0.0, -0.1], atol=1e-7)
    adapter.apply(np.array([-0.05, 0.0, 0.0]))
    np.testing.assert_allclose(adapter.values(), [0.15, 0.0, -0.1], atol=1e-7)
    both = adapter_for(loss, softening=True)
    both.apply(np.array([0.05, 0.1, 0.0]))
    np.testing.assert_allclose(both.values(), [0.2, 0.1, -0.1], atol=1e-7)


def test_the_paper_recipe_runs_on_metric_learning_losses():
    # softening (on in the paper's recipe) restricts Φ of ClassCorrelationLoss only
    rng = np.random.default_rng(2)
    labels = np.arange(24) % 3
    x = (rng.normal(size=(24, 6)) + 3 * np.eye(3)[labels] @ rng.normal(size=(3, 6))).astype(
        "float32"
    )
    model = keras.Sequential([keras.Input((6,)), keras.layers.Dense(4)])
    model.compile(optimizer="adam", loss=kal.losses.DistanceMixtureLoss())
    ala = kal.callbacks.AdaptiveLossAlignment.paper((x, labels), period=2, seed=0)
    model.fit(x, labels, epochs=1, batch_size=8, verbose=0, callbacks=[ala])
    assert ala.softening and ala.decisions == 2
