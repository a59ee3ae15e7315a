"""`kal.selection`: the loss-selection population (control child, exploit, halving, resume,
MirroredStrategy) and its search space."""

from __future__ import annotations

import json

import keras
import numpy as np
import pytest

from keras_adaptive_loss.losses import CrossentropyExpectationMix
from keras_adaptive_loss.selection import (
    ChildLoss,
    LossFamily,
    default_search_space,
    select_loss,
)
from keras_adaptive_loss.selection.child_state import copy_state, load_state, save_state
from keras_adaptive_loss.selection.search_space import initial_children


def _data(samples=384, features=6, classes=3, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(samples, features)).astype("float32")
    y = (x[:, :classes].argmax(-1) + (rng.random(samples) < 0.2)) % classes
    return x, y.astype("int64")


def _builder(features=6, classes=3):
    def build():
        return keras.Sequential(
            [
                keras.Input((features,)),
                keras.layers.Dense(16, activation="relu"),
                keras.layers.Dense(classes, activation="softmax"),
            ]
        )

    return build


def _fast():
    return keras.optimizers.Adam(0.03)


def _small_space():
    """The control and two label-smoothing children: a fast population."""
    return [
        LossFamily(
            "crossentropy", lambda params, epochs: (keras.losses.CategoricalCrossentropy(), [])
        ),
        LossFamily(
            "label_smoothing",
            lambda params, epochs: (
                keras.losses.CategoricalCrossentropy(label_smoothing=params["smoothing"]),
                [],
            ),
            starts=({"smoothing": 0.05}, {"smoothing": 0.3}),
            bounds={"smoothing": (0.01, 0.4)},
        ),
    ]


@pytest.mark.slow
def test_the_control_child_ends_with_the_weights_of_plain_crossentropy_training():
    x, y = _data()
    x_train, y_train, x_val, y_val = x[:250], y[:250], x[256:], y[256:]  # a partial batch
    build = _builder()
    result = select_loss(
        build, x_train, y_train, (x_val, y_val), epochs=3, batch_size=32, decide_every=1, seed=5
    )
    assert result.losses[0] == ChildLoss("crossentropy")
    assert any(decision.exploits for decision in result.decisions)  # the others did change

    keras.utils.set_random_seed(1234)  # any seed: the initial weights are copied below
    reference = build()
    reference.set_weights(result.initial_weights)
    reference.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    for epoch in range(3):  # the population's data order: a permutation per (seed, epoch)
        order = np.random.default_rng([5, epoch]).permutation(250)
        reference.fit(
            x_train[order], y_train[order], batch_size=32, epochs=1, shuffle=False, verbose=0
        )
    for got, want in zip(result.children[0].get_weights(), reference.get_weights(), strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


def test_every_child_starts_from_the_same_weights_and_the_others_leave_them():
    x, y = _data()
    result = select_loss(
        _builder(), x[:256], y[:256], (x[256:], y[256:]), epochs=1, batch_size=32,
        search_space=_small_space(),
    )  # fmt: skip
    assert len(result.children) == 3 and not result.decisions  # no decision in one epoch
    first_kernels = [child.get_weights()[0] for child in result.children]
    assert not np.allclose(first_kernels[0], first_kernels[2])  # smoothing 0.3 moved elsewhere
    assert result.steps == 3 * (256 // 32)


def _trained(loss, seed):
    keras.utils.set_random_seed(seed)
    model = _builder()()
    model.compile(optimizer="adam", loss=loss)
    x, y = _data(seed=seed)
    model.train_on_batch(x[:32], np.eye(3)[y[:32]])
    return model


def test_an_exploit_copies_weights_optimizer_variables_and_loss_parameters_exactly():
    source = _trained(CrossentropyExpectationMix(), seed=1)
    source.loss.set_focus(0.3)
    source.train_on_batch(*_data(32)[:1], np.eye(3)[_data(32)[1]])  # a second optimizer step
    target = _trained(CrossentropyExpectationMix(), seed=2)
    assert not np.array_equal(source.get_weights()[0], target.get_weights()[0])

    copy_state(source, target)
    for got, want in zip(target.get_weights(), source.get_weights(), strict=True):
        np.testing.assert_array_equal(got, want)
    pairs = zip(target.optimizer.variables, source.optimizer.variables, strict=True)
    for got, want in pairs:
        np.testing.assert_array_equal(got.numpy(), want.numpy())
    assert int(target.optimizer.iterations) == 2
    assert target.loss.parameters == source.loss.parameters
    assert target.loss.beta == pytest.approx(1 / (1 - 0.6))  # Eq. 14 at F = 0.3


def test_a_pbt_exploit_hands_the_source_loss_to_the_target():
    x, y = _data()
    seen = []
    result = select_loss(
        _builder(), x[:256], y[:256], (x[256:], y[256:]), epochs=3, batch_size=32,
        search_space=_small_space(), decide_every=1, perturb_factors=(1.0,), optimizer=_fast,
        on_decision=lambda decision, losses: seen.append((decision, losses)),
    )  # fmt: skip
    assert len(seen) == len(result.decisions) == 2
    decision, losses = seen[0]
    assert decision.exploits
    for source, target, label in decision.exploits:
        assert target != 0  # the control is never replaced
        assert decision.scores[source] > decision.scores[target]
        expected = result.started_with[target] if source == 0 else result.started_with[source]
        assert label == expected.label == losses[target].label  # factor 1: copied exactly


def test_exploration_perturbs_within_bounds():
    family = default_search_space(3)[1]  # label smoothing, bounds [0.01, 0.4]
    rng = np.random.default_rng(0)
    assert family.perturb({"smoothing": 0.35}, rng, factors=(2.0,)) == {"smoothing": 0.4}
    assert family.perturb({"smoothing": 0.1}, rng, factors=(0.5,)) == {"smoothing": 0.05}
    focal = default_search_space(3)[2]  # gamma in [0, 5]: a zero moves by the bounds' width
    assert focal.perturb({"gamma": 0.0}, rng, factors=(1.2,)) == pytest.approx({"gamma": 1.0})


@pytest.mark.slow
def test_decisions_start_at_half_of_the_run_by_default():
    x, y = _data()
    epochs = []
    select_loss(
        _builder(), x[:256], y[:256], (x[256:], y[256:]), epochs=7, batch_size=64,
        search_space=_small_space(), decide_every=2,
        on_decision=lambda decision, losses: epochs.append(decision.epoch),
    )  # fmt: skip
    assert epochs == [3, 5]  # from epochs // 2, every 2, none at the end


@pytest.mark.slow
def test_successive_halving_stops_the_worse_half_and_never_the_control():
    x, y = _data()
    result = select_loss(
        _builder(), x[:256], y[:256], (x[256:], y[256:]), epochs=3, batch_size=32,
        method="halving", decide_every=1,
    )  # fmt: skip
    assert len(result.children) == 10  # the default space on 3 balanced classes
    first, second = result.decisions
    assert len(first.dropped) == 4 and len(second.dropped) == 2  # keeps ceil(9/2), ceil(5/2)
    assert 0 not in first.dropped + second.dropped
    assert result.alive[0] and sum(result.alive) == 4
    assert all(np.isnan(second.scores[i]) for i in first.dropped)  # not measured any more
    assert all(np.isnan(result.selection_scores[i]) for i in first.dropped + second.dropped)
    assert result.steps == (10 + 6 + 4) * (256 // 32)


@pytest.mark.slow
def test_the_control_is_chosen_unless_a_child_beats_it_by_the_margin():
    x, y = _data()
    result = select_loss(
        _builder(), x[:256], y[:256], (x[256:], y[256:]), epochs=2, batch_size=32,
        search_space=_small_space(), margin=1.0,
    )  # fmt: skip
    assert result.best_index == 0 and result.best_model is result.children[0]
    assert "<- chosen" in result.report().splitlines()[1]
    free = select_loss(
        _builder(), x[:256], y[:256], (x[256:], y[256:]), epochs=2, batch_size=32,
        search_space=_small_space(), margin=-1.0,
    )  # fmt: skip
    scores = free.selection_scores
    assert scores[free.best_index] == max(scores)


@pytest.mark.slow
def test_a_resumed_search_equals_an_uninterrupted_one(tmp_path):
    x, y = _data()
    arguments = dict(
        x=x[:256], y=y[:256], validation_data=(x[256:], y[256:]), epochs=4, batch_size=32,
        decide_every=1, seed=3, search_space=_small_space(), optimizer=_fast,
    )  # fmt: skip
    keras.utils.set_random_seed(7)
    whole = select_loss(_builder(), **arguments, backup_dir=tmp_path / "whole")

    class PreemptedError(Exception):
        pass

    def preempt(decision, losses):
        if decision.epoch == 2:
            raise PreemptedError

    keras.utils.set_random_seed(7)  # the same initial weights as the uninterrupted run
    with pytest.raises(PreemptedError):
        select_loss(_builder(), **arguments, backup_dir=tmp_path / "cut", on_decision=preempt)
    state = json.loads((tmp_path / "cut" / "selection.json").read_text())
    assert state["epoch"] == 2
    keras.utils.set_random_seed(8)  # any seed: a resumed search takes its saved weights
    resumed = select_loss(_builder(), **arguments, backup_dir=tmp_path / "cut")
    for got, want in zip(resumed.initial_weights, whole.initial_weights, strict=True):
        np.testing.assert_array_equal(got, want)

    assert resumed.losses == whole.losses
    assert any(d.exploits for d in whole.decisions)
    assert [d.exploits for d in resumed.decisions] == [d.exploits for d in whole.decisions]
    for a, b in zip(resumed.children, whole.children, strict=True):
        for got, want in zip(a.get_weights(), b.get_weights(), strict=True):
            np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-7)
    assert resumed.steps == whole.steps


@pytest.mark.slow
def test_a_backup_of_another_search_is_refused(tmp_path):
    x, y = _data()
    common = dict(x=x[:256], y=y[:256], validation_data=(x[256:], y[256:]), batch_size=32,
                  decide_every=1, backup_dir=tmp_path, search_space=_small_space())  # fmt: skip
    select_loss(_builder(), epochs=2, **common)
    with pytest.raises(ValueError, match="holds a different search"):
        select_loss(_builder(), epochs=3, **common)


def test_the_child_state_round_trips_through_a_file(tmp_path):
    source = _trained(CrossentropyExpectationMix(), seed=1)
    source.loss.set_focus(0.2)
    save_state(source, tmp_path / "child.npz")
    target = _trained(CrossentropyExpectationMix(), seed=2)
    load_state(target, tmp_path / "child.npz")
    for got, want in zip(target.get_weights(), source.get_weights(), strict=True):
        np.testing.assert_array_equal(got, want)
    assert target.loss.parameters == source.loss.parameters


class _TrainingBatchSizes(keras.layers.Layer):
    """The identity; records the static batch size of every training call it is traced in."""

    def __init__(self, seen, **kwargs):
        super().__init__(**kwargs)
        self.record = seen.append  # not the list: Keras would track a copy of it

    def call(self, inputs, training=None):
        if training:
            self.record(inputs.shape[0])
        return inputs

    def compute_output_shape(self, input_shape):
        return input_shape


@pytest.mark.slow
def test_under_mirrored_strategy_it_matches_one_device_and_splits_each_batch(mirrored_strategy):
    x, y = _data()
    arguments = dict(
        x=x[:256], y=y[:256], validation_data=(x[256:], y[256:]), epochs=2, batch_size=32,
        decide_every=1, search_space=_small_space(), seed=1,
    )  # fmt: skip
    one = select_loss(_builder(), **arguments)
    keras.utils.set_random_seed(1234)
    seen = []

    def build():
        model = _builder()()
        return keras.Sequential([keras.Input((6,)), _TrainingBatchSizes(seen), model])

    mirrored = select_loss(build, **arguments, strategy=mirrored_strategy)
    assert mirrored.losses == one.losses
    assert mirrored.decisions[0].exploits  # a recompiled child trains on in the split steps
    for a, b in zip(mirrored.children, one.children, strict=True):
        for got, want in zip(a.get_weights(), b.get_weights(), strict=True):
            np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)
    # Each replica trains on half of the batch, as under fit (train_on_batch gives each the
    # whole batch; it only takes the first step after a compile).
    assert 16 in seen and set(seen) <= {16, 32}, seen


@pytest.mark.slow
def test_the_default_space_adds_imbalance_losses_for_skewed_classes():
    assert [f.name for f in default_search_space(3, (50, 40, 30))][-1] == "ce_el"
    names = [f.name for f in default_search_space(3, (300, 40, 30))]
    assert names[-2:] == ["ldam_drw", "class_balanced"]
    x, y = _data()
    keep = (y != 2) | (np.arange(len(y)) % 8 == 0)  # class 2 becomes rare
    result = select_loss(
        _builder(), x[keep][:128], y[keep][:128], (x[256:], y[256:]), epochs=1, batch_size=32,
    )  # fmt: skip
    assert {"ldam_drw", "class_balanced"} <= {loss.family for loss in result.started_with}


def test_the_focal_family_is_the_focal_loss():
    family = default_search_space(3)[2]
    loss, callbacks = family.build({"gamma": 2.0}, 10)
    targets = np.eye(3)[[0, 2]]
    probabilities = np.array([[0.7, 0.2, 0.1], [0.3, 0.3, 0.4]])
    p_y = np.array([0.7, 0.4])
    expected = np.mean(-((1 - p_y) ** 2) * np.log(p_y))  # Lin et al., Eq. 5 with alpha = 1
    assert float(loss(targets, probabilities)) == pytest.approx(expected, rel=1e-5)
    assert callbacks == []


def test_the_gce_family_is_generalized_crossentropy_at_its_q():
    family = default_search_space(3)[4]
    assert family.name == "gce" and family.starts == ({"q": 0.7},)
    targets = np.eye(3)[[0, 2]]
    probabilities = np.array([[0.7, 0.2, 0.1], [0.3, 0.3, 0.4]])
    p_y = np.array([0.7, 0.4])
    for q in (0.7, 0.3):
        loss, callbacks = family.build({"q": q}, 10)
        expected = np.mean((1 - p_y**q) / q)  # Zhang & Sabuncu
        assert float(loss(targets, probabilities)) == pytest.approx(expected, rel=1e-5)
        assert callbacks == []
    moved = family.perturb({"q": 0.9}, np.random.default_rng(0), factors=(1.25,))
    assert moved == {"q": 1.0}  # clipped into its bounds


def test_the_ce_el_family_schedules_its_final_focus():
    family = default_search_space(3)[-1]
    loss, (schedule,) = family.build({"final_focus": 0.4}, 12)
    assert isinstance(loss, CrossentropyExpectationMix)
    assert [round(focus, 6) for focus, _ in schedule.phases] == [0.0, 0.08, 0.16, 0.24, 0.32, 0.4]


@pytest.mark.parametrize(
    "change, message",
    [
        (dict(method="random"), "method must be one of"),
        (dict(epochs=0), "epochs must be an integer"),
        (dict(exploit_fraction=0.8), "exploit_fraction"),
        (dict(selection_fraction=1.0), "selection_fraction"),
        (dict(perturb_factors=(0.0,)), "perturb_factors"),
        (dict(y=np.full(256, 7)), "integer class ids in"),
        (dict(batch_size=512), "fewer than one batch"),
        (dict(metric="f1"), "metric must be"),
        (dict(first_decision=0), "first_decision must be"),
    ],
)
def test_bad_arguments_say_what_to_change(change, message):
    x, y = _data()
    arguments = dict(x=x[:256], y=y[:256], validation_data=(x[256:], y[256:]), epochs=1,
                     batch_size=32, search_space=_small_space())  # fmt: skip
    with pytest.raises(ValueError, match=message):
        select_loss(_builder(), **{**arguments, **change})


def test_the_search_space_must_start_with_the_control():
    space = _small_space()
    with pytest.raises(ValueError, match="must be the 'crossentropy' control"):
        initial_children(space[::-1])
    with pytest.raises(ValueError, match="outside its bounds"):
        LossFamily("x", space[1].build, starts=({"smoothing": 0.9},), bounds=space[1].bounds)


@pytest.mark.slow
def test_compare_trains_a_population_preset_and_records_its_choice():
    import keras_adaptive_loss as kal

    settings = kal.comparison.ComparisonSettings(
        dataset="iris", losses=["crossentropy", "population_halving"], seeds=1, epochs=2,
        plots=False, verbose=0,
    )  # fmt: skip
    result = kal.compare(settings)
    population = [run for run in result.runs if run.loss == "population_halving"]
    assert len(population) == 1 and 0 <= population[0].test_metrics["accuracy"] <= 1
    families = {family.name for family in default_search_space(3)}
    assert population[0].chosen_loss.split("(")[0] in families
    assert [run.chosen_loss for run in result.runs if run.loss == "crossentropy"] == [None]


@pytest.mark.slow
def test_compare_saves_a_population_with_its_own_search_space(tmp_path):
    import keras_adaptive_loss as kal
    from keras_adaptive_loss.comparison.loss_presets import LossSetup

    kept = ("crossentropy", "label_smoothing")

    def smoothing_on_validation(context):
        space = [f for f in default_search_space(context.num_classes) if f.name in kept]
        population = {"search_space": space, "method": "halving", "first_decision": 1}
        return LossSetup(keras.losses.CategoricalCrossentropy(), population=population)

    settings = kal.comparison.ComparisonSettings(
        dataset="iris", seeds=1, epochs=1, plots=False, verbose=0, output=str(tmp_path),
    )  # fmt: skip
    losses = {"crossentropy": "crossentropy", "smoothing": smoothing_on_validation}
    kal.compare(settings, losses=losses)
    with open(tmp_path / "results.json") as file:
        setups = json.load(file)["config"]["loss_setups"]
    families = setups["smoothing"]["population"]["search_space"]
    assert [family["family"] for family in families] == list(kept)
    assert families[1]["starts"] == [{"smoothing": s} for s in (0.05, 0.1, 0.2)]


@pytest.mark.slow
def test_a_dataset_input_feeds_every_child_the_same_batches_as_fit_reads_them():
    import tensorflow as tf

    x, y = _data()
    dataset = tf.data.Dataset.from_tensor_slices((x[:250], y[:250])).batch(32)
    build = _builder()
    result = select_loss(
        build, dataset, None, (x[256:], y[256:]), epochs=2, decide_every=1,
        search_space=_small_space(), optimizer=_fast,
    )  # fmt: skip
    assert result.steps == 3 * 8 * 2  # 8 batches (the last one partial) per epoch
    reference = build()
    reference.set_weights(result.initial_weights)
    reference.compile(optimizer=_fast(), loss="sparse_categorical_crossentropy")
    reference.fit(dataset, epochs=2, shuffle=False, verbose=0)
    for got, want in zip(result.children[0].get_weights(), reference.get_weights(), strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="y must be None"):
        select_loss(build, dataset, y[:250], (x[256:], y[256:]), search_space=_small_space())


@pytest.mark.slow
def test_a_dataset_batch_that_does_not_split_over_the_replicas_trains_whole(mirrored_strategy):
    import tensorflow as tf

    x, y = _data()
    dataset = tf.data.Dataset.from_tensor_slices((x[:256], y[:256])).batch(25)  # 10 x 25 + 6
    arguments = dict(
        validation_data=(x[256:], y[256:]), epochs=2, decide_every=1, seed=1,
        search_space=_small_space(), optimizer=_fast,
    )  # fmt: skip
    keras.utils.set_random_seed(2)
    one = select_loss(_builder(), dataset, None, **arguments)
    keras.utils.set_random_seed(2)
    mirrored = select_loss(_builder(), dataset, None, **arguments, strategy=mirrored_strategy)
    assert mirrored.losses == one.losses
    for a, b in zip(mirrored.children, one.children, strict=True):
        for got, want in zip(a.get_weights(), b.get_weights(), strict=True):
            np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)


def test_shuffled_batches_feed_fit_the_population_order():
    from keras_adaptive_loss.selection.training_data import ShuffledBatches, TrainingData

    x, y = _data()
    x_train, y_train = x[:250], y[:250]  # a partial last batch
    build = _builder()
    keras.utils.set_random_seed(0)
    model = build()
    initial = model.get_weights()
    model.compile(optimizer=_fast(), loss="sparse_categorical_crossentropy")
    batches = ShuffledBatches(x_train, y_train, 32, epochs=3, seed=5)
    model.fit(batches, epochs=3, steps_per_epoch=8, shuffle=False, verbose=0)

    reference = build()
    reference.set_weights(initial)
    reference.compile(optimizer=_fast(), loss="categorical_crossentropy")
    data = TrainingData(x_train, y_train, 3, batch_size=32, seed=5)
    for epoch in range(3):  # a new permutation every epoch, as the population trains
        for x_batch, y_batch in data.epoch(epoch):
            reference.train_on_batch(x_batch, y_batch)
    for got, want in zip(model.get_weights(), reference.get_weights(), strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="x has 250 samples but y has 249"):
        ShuffledBatches(x_train, y_train[:-1], 32, epochs=1)


@pytest.mark.slow
def test_a_compare_crossentropy_run_equals_the_control_child_of_the_same_seed():
    import keras_adaptive_loss as kal
    from keras_adaptive_loss.comparison.loss_presets import LossSetup

    def control_alone(context):
        population = {"search_space": default_search_space(context.num_classes)[:1]}
        return LossSetup(keras.losses.CategoricalCrossentropy(), population=population)

    settings = kal.comparison.ComparisonSettings(
        dataset="digits", seeds=2, epochs=3, plots=False, verbose=0, evaluation="last",
    )  # fmt: skip
    losses = {"crossentropy": "crossentropy", "control": control_alone}
    result = kal.compare(settings, losses=losses)
    accuracy = {(r.loss, r.seed): r.test_metrics["accuracy"] for r in result.runs}
    for seed in range(2):
        assert accuracy["control", seed] == pytest.approx(accuracy["crossentropy", seed], abs=1e-9)
    assert accuracy["crossentropy", 0] != accuracy["crossentropy", 1]


class _Diverging(keras.losses.Loss):
    """Cross-entropy times NaN: the child's weights turn NaN at its first step."""

    def call(self, y_true, y_pred):
        return keras.losses.categorical_crossentropy(y_true, y_pred) * float("nan")


@pytest.mark.slow
def test_a_diverged_child_is_replaced_and_never_chosen():
    x, y = _data()
    diverging = LossFamily(
        "diverging", lambda params, epochs: (_Diverging(), []),
        starts=({"k": 1.0}, {"k": 2.0}), bounds={"k": (0.5, 4.0)},
    )  # fmt: skip
    space = [_small_space()[0], diverging, _small_space()[1]]  # children 1, 2 diverge
    # Every validation label is class 0: argmax of a NaN row (0) would score it 100 %.
    x_val, y_val = x[256:], np.zeros(128, "int64")
    result = select_loss(
        _builder(), x[:256], y[:256], (x_val, y_val), epochs=2, batch_size=32,
        search_space=space, decide_every=1, first_decision=1, exploit_fraction=0.25,
    )  # fmt: skip
    (decision,) = result.decisions
    assert np.isnan(decision.scores[1]) and np.isnan(decision.scores[2])
    assert np.all(np.isfinite(np.array(decision.scores)[[0, 3, 4]]))
    # both diverged children are replaced, though the fraction alone would replace one
    assert sorted(target for _, target, _ in decision.exploits) == [1, 2]
    assert all(source in (0, 3, 4) for source, _, _ in decision.exploits)
    assert np.isnan(result.selection_scores[1]) or result.losses[1].family != "diverging"
    assert np.isfinite(result.selection_scores[result.best_index])
    assert np.all(np.isfinite(result.best_model.get_weights()[0]))


def test_the_control_is_chosen_over_diverged_children():
    from keras_adaptive_loss.selection.population import _choose

    assert _choose([0.5, float("nan"), float("nan")], margin=0.0) == 0
    assert _choose([0.5, float("nan"), 0.6], margin=0.0) == 2


def test_the_class_correlation_family_is_soft_targets_or_confusion_penalties():
    from keras_adaptive_loss.selection import class_correlation_family

    family = class_correlation_family(3, starts=(-0.05, 0.0, 0.05))
    y = np.eye(3)[[0, 2]]
    p = np.array([[0.7, 0.2, 0.1], [0.1, 0.3, 0.6]])
    ce = -np.log((y * p).sum(-1))
    for spread in (-0.05, 0.0, 0.05):
        loss, callbacks = family.build({"off_diagonal": spread}, 10)
        got = keras.ops.convert_to_numpy(loss(y, p))
        if spread >= 0:  # cross-entropy against y + s on every other class, normalised
            target = (y + spread * (1 - y)) / (1 + 2 * spread)
            want = -(target * np.log(p)).sum(-1)
        else:  # cross-entropy plus |s| times the complement cross-entropy of the others
            want = ce - spread * (-(1 - y) * np.log(1 - p)).sum(-1)
        np.testing.assert_allclose(got, want.mean(), rtol=1e-5)
        assert callbacks == []
    rng = np.random.default_rng(0)
    moved = [family.perturb({"off_diagonal": -0.05}, rng, (0.8, 1.25))["off_diagonal"]]
    moved += [family.perturb({"off_diagonal": 0.09}, rng, (1.25,))["off_diagonal"]]
    assert moved[0] in (-0.04, -0.0625) and moved[1] == 0.1  # the sign kept, the bound held
    with pytest.raises(ValueError, match="bound must lie in"):
        class_correlation_family(3, bound=2.0)


def test_a_population_trains_class_correlation_children():
    from keras_adaptive_loss.selection import class_correlation_family

    x, y = _data()
    space = [*default_search_space(3)[:1], class_correlation_family(3)]
    result = select_loss(
        _builder(), x[:256], y[:256], (x[256:], y[256:]), epochs=1, batch_size=32,
        search_space=space, optimizer=_fast,
    )  # fmt: skip
    assert [loss.family for loss in result.losses] == ["crossentropy", *["class_correlation"] * 2]
    assert np.isfinite(result.selection_scores).all()
    penalised, softened = (child.get_weights()[-1] for child in result.children[1:])
    assert not np.allclose(penalised, softened)  # the two spreads trained differently
