"""Sizes that would exhaust memory are refused up front, naming the knob that allows them."""

from __future__ import annotations

import re

import pytest

import keras_adaptive_loss as kal
from keras_adaptive_loss.ala.controllers import AlignmentController
from keras_adaptive_loss.ala.controllers.state import MAX_STATE_BYTES, MemberState, feature_size


def test_stochastic_loss_refuses_huge_sizes_also_from_a_tampered_config():
    with pytest.raises(ValueError, match=r"num_samples \(K\) must be an integer in \[1, 1024\]"):
        kal.StochasticLoss(["crossentropy", "mse"], num_samples=10**9)
    with pytest.raises(ValueError, match=r"hidden_units must be an integer in \[1, 65536\]"):
        kal.StochasticLoss(["crossentropy", "mse"], hidden_units=10**9)
    config = kal.StochasticLoss(["crossentropy", "mse"], seed=0).get_config()
    with pytest.raises(ValueError, match="num_samples"):
        kal.StochasticLoss.from_config({**config, "num_samples": 10**9})


@pytest.mark.parametrize(
    "make",
    [
        lambda draws: kal.losses.UniLossAccuracy(draws=draws),
        lambda draws: kal.losses.EnsLoss(draws=draws),
    ],
)
def test_a_negative_draw_count_is_refused(make):
    with pytest.raises(
        ValueError, match=r"draws \(samplings done so far\) must be an integer >= 0"
    ):
        make(-5)
    assert make(3).draws == 3


def test_controller_state_for_thousands_of_classes_is_refused_before_allocating():
    controller = AlignmentController(feature_size(2, 10), seed=0)
    pairs = 3000 * 2999 // 2
    with pytest.raises(ValueError, match=re.escape("state.MAX_STATE_BYTES")) as error:
        MemberState(controller, pairs, num_statistics=2, history=10)
    assert "GiB" in str(error.value) and "3000 classes" in str(error.value)
    small = MemberState(controller, 45, num_statistics=2, history=10)  # 10 classes
    assert small.num_parameters == 45 and MAX_STATE_BYTES == 2**30
