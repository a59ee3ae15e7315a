"""Offline datasets: shapes, classes, deterministic splits, scaling from the training split."""

from __future__ import annotations

import numpy as np
import pytest

import keras_adaptive_loss as kal


@pytest.mark.slow
@pytest.mark.parametrize(
    ("name", "features", "classes", "samples"),
    [("digits", 64, 10, 1797), ("iris", 4, 3, 150), ("wine", 13, 3, 178),
     ("breast_cancer", 30, 2, 569), ("mnist1d", 40, 10, 5000)],
)  # fmt: skip
def test_load(name, features, classes, samples):
    data = kal.datasets.load(name)
    assert data.num_features == features and data.num_classes == classes
    assert len(data.x_train) + len(data.x_test) == samples
    assert data.x_train.dtype == np.float32 and data.y_train.dtype == np.int64
    assert set(np.unique(data.y_test)) == set(range(classes))


def test_split_is_deterministic_and_scaled_on_the_training_split():
    a, b = kal.datasets.load("wine"), kal.datasets.load("wine")
    np.testing.assert_array_equal(a.x_test, b.x_test)
    np.testing.assert_allclose(a.x_train.mean(0), 0.0, atol=1e-5)
    np.testing.assert_allclose(a.x_train.std(0), 1.0, atol=1e-4)
    other = kal.datasets.load("wine", split_seed=1)
    assert not np.array_equal(a.y_test, other.y_test)
    digits = kal.datasets.load("digits")
    assert digits.x_train.min() == 0.0 and digits.x_train.max() == 1.0


def test_unknown_dataset_lists_the_names():
    with pytest.raises(ValueError, match=r"Unknown dataset 'cifar10'.*digits.*mnist1d"):
        kal.datasets.load("cifar10")
