"""Mistakes a first user makes get a `ValueError` that names the fix."""

from __future__ import annotations

import numpy as np
import pytest

import keras_adaptive_loss as kal
from keras_adaptive_loss.losses import lookup

BUILDS_WITHOUT_ARGUMENTS = sorted(
    name
    for name, cls in lookup.loss_classes().items()
    if name[0].isupper()
    and not lookup.required_arguments(cls)
    and name != "UniLossPCKh"  # labels [batch, joints, 4]: its own shape check names them
)


@pytest.mark.parametrize("name", BUILDS_WITHOUT_ARGUMENTS)
def test_labels_and_predictions_of_different_batch_sizes_are_a_value_error(name):
    loss = lookup.loss_classes()[name]()
    predictions = np.full((4, 3), 1 / 3, "float32")
    if name in ("UniLossAveragePrecision", "UniLossFBeta", "EnsLoss"):
        predictions = np.full((4,), 0.5, "float32")  # binary losses
    with pytest.raises(ValueError, match=r"The labels hold 3 samples .* predictions hold 4"):
        loss(np.array([0, 1, 0]), predictions)


def test_a_one_unit_output_points_stochastic_loss_to_the_regression_task():
    loss = kal.StochasticLoss(["mse", "mae"], seed=0)
    with pytest.raises(ValueError, match="For a regression model pass task='regression'"):
        loss(np.array([[0.3], [1.2]]), np.array([[0.1], [0.9]], "float32"))
    regression = kal.StochasticLoss(["mse", "mae"], task="regression", seed=0)
    assert np.isfinite(float(regression(np.array([[0.3], [1.2]]), np.array([[0.1], [0.9]]))))


@pytest.mark.parametrize("name", ["huber", "log_cosh", "Log-Cosh"])
def test_regression_only_candidates_by_name_point_to_the_regression_task(name):
    with pytest.raises(ValueError, match=r"is a regression candidate: pass task='regression'"):
        kal.StochasticLoss(["mse", name], seed=0)
    assert kal.StochasticLoss(["mse", name], task="regression", seed=0).candidate_names[1]
