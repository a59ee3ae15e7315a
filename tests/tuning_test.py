"""KerasTuner: a 2-trial search over K and tau trains every trial; helper validation."""

from __future__ import annotations

import keras_tuner
import pytest

import keras_adaptive_loss as kal
from tests.examples_test import _load


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
    assert best.loss.num_samples == best_hp["num_samples"]
    assert best.loss.get_parameter("temperature") == pytest.approx(best_hp["temperature"])
    assert "trial 0: COMPLETED" in capsys.readouterr().out


def test_search_space_helper_registers_k_and_log_tau():
    hp = keras_tuner.HyperParameters()
    loss = kal.tuning.stochastic_loss(hp, ["crossentropy", "mse"], num_samples=(2, 6))
    space = {p.name: p for p in hp.space}
    assert space["num_samples"].min_value == 2 and space["num_samples"].max_value == 6
    assert space["temperature"].sampling == "log"
    assert loss.num_samples == hp["num_samples"]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [({"num_samples": (0, 3)}, "num_samples must be a range"),
     ({"temperature": (1.0, 0.5)}, "temperature must be a range")],
)  # fmt: skip
def test_search_space_helper_rejects_bad_ranges(kwargs, message):
    with pytest.raises(ValueError, match=message):
        kal.tuning.stochastic_loss(keras_tuner.HyperParameters(), ["mse"], **kwargs)
