"""KerasTuner: a 2-trial search over K and tau trains every trial; helper validation."""

from __future__ import annotations

import keras_tuner
import numpy as np
import pytest

import keras_adaptive_loss as kal
from tests.examples_test import _load

# KerasTuner reloads a trial's best weights into a model whose optimizer is not built yet;
# Keras then warns that it skips the optimizer's variables (the weights themselves load).
pytestmark = pytest.mark.filterwarnings("ignore:Skipping variable loading for optimizer")


@pytest.mark.slow
def test_two_trial_search_trains_every_trial(tmp_path, capsys):
    example = _load("examples/tune_stochastic_loss.py")
    tuner = example.main(trials=2, epochs=2, directory=str(tmp_path))
    trials = list(tuner.oracle.trials.values())
    assert len(trials) == 2
    # KerasTuner records a failing trial and carries on: every trial must have completed.
    assert [t.status for t in trials] == ["COMPLETED", "COMPLETED"]
    assert all(t.score is not None and t.score > 0.3 for t in trials)
    assert len({tuple(sorted(t.hyperparameters.values.items())) for t in trials}) == 2
    best_hp = tuner.get_best_hyperparameters(1)[0]
    best = tuner.get_best_models(1)[0]
    assert isinstance(best.loss, kal.StochasticLoss)
    assert best.loss.num_samples == best_hp["slf_num_samples"]
    assert best.loss.get_parameter("temperature") == pytest.approx(best_hp["slf_temperature"])
    assert "trial 0: COMPLETED" in capsys.readouterr().out


def test_stochastic_loss_space_registers_prefixed_k_and_log_tau():
    hp = keras_tuner.HyperParameters()
    loss = kal.tuning.stochastic_loss(hp, ["crossentropy", "mse"], num_samples=(2, 6))
    space = {p.name: p for p in hp.space}
    assert space["slf_num_samples"].min_value == 2 and space["slf_num_samples"].max_value == 6
    assert space["slf_temperature"].sampling == "log"
    assert loss.num_samples == hp["slf_num_samples"]


def test_stochastic_loss_space_searches_the_entropy_bonus():
    hp = keras_tuner.HyperParameters()
    loss = kal.tuning.stochastic_loss(hp, ["crossentropy", "mse"], entropy=(0.5, 1.5))
    space = {p.name: p for p in hp.space}
    assert (space["slf_entropy"].min_value, space["slf_entropy"].max_value) == (0.5, 1.5)
    assert loss.entropy == hp["slf_entropy"]


@pytest.mark.parametrize(
    ("entropy", "expected"),
    [(None, kal.slf.stochastic.DEFAULT_ENTROPY), (0.0, 0.0), (0.25, 0.25)],
)
def test_stochastic_loss_space_can_fix_the_entropy_bonus(entropy, expected):
    hp = keras_tuner.HyperParameters()
    loss = kal.tuning.stochastic_loss(hp, ["crossentropy", "mse"], entropy=entropy)
    assert "slf_entropy" not in hp.values
    assert loss.entropy == expected


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [({"num_samples": (0, 3)}, "num_samples must be a range"),
     ({"temperature": (1.0, 0.5)}, "temperature must be a range"),
     ({"entropy": (-1.0, 1.0)}, "entropy must be a range")],
)  # fmt: skip
def test_search_space_helper_rejects_bad_ranges(kwargs, message):
    with pytest.raises(ValueError, match=message):
        kal.tuning.stochastic_loss(keras_tuner.HyperParameters(), ["mse"], **kwargs)


@pytest.mark.slow
def test_grid_search_over_the_three_f_protocols_drives_each_trial(tmp_path, capsys):
    example = _load("examples/tune_focus_schedule.py")
    tuner = example.main(trials=3, epochs=2, directory=str(tmp_path))
    trials = list(tuner.oracle.trials.values())
    assert [t.status for t in trials] == ["COMPLETED"] * 3
    protocols = [t.hyperparameters.values["ce_el_protocol"] for t in trials]
    assert sorted(protocols) == ["0", "0,0.5", "0-0.5"]
    printed = capsys.readouterr().out
    assert "protocol=0-0.5" in printed


def _space(hp):
    return {p.name: p for p in hp.space}


def test_every_method_has_a_prefixed_space_that_builds_its_loss():
    hp = keras_tuner.HyperParameters()
    loss, schedule = kal.tuning.focus_schedule(hp, prefix="mine_")
    assert isinstance(loss, kal.losses.CrossentropyExpectationMix)
    assert schedule.phases == kal.callbacks.FocusSchedule(hp["mine_protocol"]).phases
    uniloss = kal.tuning.uniloss(hp, "average_precision", seed=0)
    assert isinstance(uniloss, kal.losses.UniLossAveragePrecision)
    assert uniloss.num_anchors == hp["uniloss_num_anchors"]
    assert uniloss.get_parameter("scale") == pytest.approx(hp["uniloss_scale"])
    ala = kal.tuning.adaptive_loss_alignment(hp, (np.zeros((4, 2)), np.zeros(4)), seed=0)
    assert ala.period == hp["ala_period"] and _space(hp)["ala_step_size"].sampling == "log"
    counts = [50, 20, 5]
    built = {
        "poly": kal.tuning.related_loss(hp, "poly"),
        "active_passive": kal.tuning.related_loss(hp, "active_passive"),
        "ldam": kal.tuning.related_loss(hp, "ldam", class_counts=counts),
        "class_balanced": kal.tuning.related_loss(hp, "class_balanced", class_counts=counts),
        "anyloss": kal.tuning.related_loss(hp, "anyloss", metric="gmean"),
    }
    assert built["poly"].get_config()["epsilon"] == [hp["poly_epsilon"]]
    assert built["active_passive"].get_config()["alpha"] == pytest.approx(
        hp["active_passive_alpha"]
    )
    assert built["ldam"].get_config()["scale"] == pytest.approx(hp["ldam_scale"])
    assert built["class_balanced"].get_config()["base"] == hp["class_balanced_base"]
    assert built["anyloss"].amplifier == pytest.approx(hp["anyloss_amplifier"])
    assert built["anyloss"].metric == "gmean"
    names = [p.name for p in hp.space]
    assert len(names) == len(set(names))  # no two helpers share a name
    assert all(n.startswith(("mine_", "uniloss_", "ala_", "poly_", "active_passive_", "ldam_",
                             "class_balanced_", "anyloss_")) for n in names)  # fmt: skip


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda hp: kal.tuning.related_loss(hp, "ldam"), "needs class_counts"),
        (lambda hp: kal.tuning.related_loss(hp, "nope"), "name must be one of"),
        (lambda hp: kal.tuning.uniloss(hp, "f1"), "metric must be one of"),
        (lambda hp: kal.tuning.uniloss(hp, scale=(0, 1)), "scale must be a range"),
        (lambda hp: kal.tuning.focus_schedule(hp, protocols=()), "at least one F protocol"),
        (lambda hp: kal.tuning.adaptive_loss_alignment(hp, None, period=(0, 5)), "period"),
    ],
)
def test_bad_spaces_raise(call, message):
    with pytest.raises(ValueError, match=message):
        call(keras_tuner.HyperParameters())


def test_untuned_hyper_parameters_default_to_each_methods_own_default():
    # KerasTuner uses a hyper-parameter's default when it does not search it; before, every
    # default was the range's lower end (a StochasticLoss with K = 1, tau = 0.1 and no
    # entropy bonus; an ActivePassiveLoss with beta = 0.1, outside its measured default).
    hp = keras_tuner.HyperParameters()
    slf = kal.tuning.stochastic_loss(hp, ["crossentropy", "mse"], seed=0)
    reference = kal.StochasticLoss(["crossentropy", "mse"], seed=0)
    assert (slf.num_samples, slf.entropy) == (reference.num_samples, reference.entropy) == (3, 1.0)
    assert slf.get_parameter("temperature") == reference.get_parameter("temperature") == 1.0
    uniloss = kal.tuning.uniloss(hp, seed=0)
    assert (uniloss.num_anchors, uniloss.get_parameter("scale")) == (16, 1.0)
    assert kal.tuning.adaptive_loss_alignment(hp, (np.zeros((4, 2)), np.zeros(4))).period == 200
    counts = [50, 20, 5]
    configs = {
        name: kal.tuning.related_loss(hp, name, class_counts=counts).get_config()
        for name in kal.tuning.RELATED_LOSSES
    }
    assert configs["poly"]["epsilon"] == [-1.0]
    assert (configs["active_passive"]["alpha"], configs["active_passive"]["beta"]) == (1.0, 0.05)
    assert (configs["ldam"]["max_margin"], configs["ldam"]["scale"]) == (0.5, 1.0)
    assert (configs["class_balanced"]["beta"], configs["class_balanced"]["base"]) == (
        0.9999,
        "crossentropy",
    )
    assert configs["anyloss"]["amplifier"] == 10.0
    # The beta range holds the default; the searched values still span the paper's 1.
    beta = _space(hp)["active_passive_beta"]
    assert beta.min_value <= 0.05 and beta.max_value >= 1.0 and beta.sampling == "log"


@pytest.mark.parametrize(
    ("call", "name", "expected"),
    [
        (lambda hp: kal.tuning.stochastic_loss(hp, ["mse"], num_samples=(4, 6)),
         "slf_num_samples", 4),
        (lambda hp: kal.tuning.stochastic_loss(hp, ["mse"], entropy=(0.0, 0.5)),
         "slf_entropy", 0.0),
        # 200 is off the grid 60, 108, ..., 396 (step 48): the default is the grid's start.
        (lambda hp: kal.tuning.adaptive_loss_alignment(
            hp, (np.zeros((4, 2)), np.zeros(4)), period=(60, 400)), "ala_period", 60),
    ],
)  # fmt: skip
def test_a_default_outside_the_searched_values_falls_back_to_the_lower_end(call, name, expected):
    hp = keras_tuner.HyperParameters()
    call(hp)
    assert hp[name] == expected == _space(hp)[name].min_value


@pytest.mark.parametrize(
    ("helper", "arguments"),
    [
        ("stochastic_loss", (["crossentropy", "mse"],)),
        ("focus_schedule", ()),
        ("uniloss", ()),
        ("adaptive_loss_alignment", ((np.zeros((4, 2)), np.zeros(4)),)),
        ("related_loss", ("poly",)),
    ],
)
def test_a_missing_hyper_parameters_object_is_a_value_error(helper, arguments):
    with pytest.raises(ValueError, match=rf"kal\.tuning\.{helper} needs the trial's keras_tuner"):
        getattr(kal.tuning, helper)(None, *arguments)
