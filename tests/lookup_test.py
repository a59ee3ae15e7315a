"""`kal.losses.get / serialize / deserialize` behave as `keras.losses.get / serialize /
deserialize` do for Keras's losses: class names, snake-case names, configs, classes."""

from __future__ import annotations

import keras
import numpy as np
import pytest

import keras_adaptive_loss as kal
from keras_adaptive_loss.losses import lookup

#: Constructor arguments of the losses that cannot be built from their name alone.
REQUIRED = {
    "ClassBalancedLoss": {"class_counts": (30, 10, 5)},
    "ClassCorrelationLoss": {"num_classes": 3},
    "LDAMLoss": {"class_counts": (30, 10, 5)},
    "StochasticLoss": {"candidates": ["crossentropy", "mse"]},
    "UniLoss": {"refactoring": kal.uniloss.refactorings.AccuracyRefactoring()},
}
CLASS_NAMES = sorted(name for name in lookup.loss_classes() if name[0].isupper())


def test_every_public_loss_class_is_known_by_both_names():
    assert len(CLASS_NAMES) == 25  # every exported Loss subclass but the AdaptiveLoss base
    for name in CLASS_NAMES:
        cls = getattr(kal.losses, name)
        assert lookup.loss_classes()[lookup.snake_case(name)] is cls


@pytest.mark.parametrize("name", CLASS_NAMES)
def test_get_by_class_name_and_snake_name(name):
    cls = getattr(kal.losses, name)
    if name in REQUIRED:
        for identifier in (name, lookup.snake_case(name), cls):
            with pytest.raises(ValueError, match=f"{name} cannot be built from its name alone"):
                kal.losses.get(identifier)
        return
    assert type(kal.losses.get(name)) is cls
    assert type(kal.losses.get(lookup.snake_case(name))) is cls
    assert type(kal.losses.get(cls)) is cls  # a class is instantiated, as Keras does


@pytest.mark.parametrize("name", CLASS_NAMES)
def test_config_round_trip_through_get_and_deserialize(name):
    loss = getattr(kal.losses, name)(**REQUIRED.get(name, {}))
    config = kal.losses.serialize(loss)
    assert config == keras.losses.serialize(loss)  # the same config Keras writes
    for restored in (kal.losses.get(config), kal.losses.deserialize(config)):
        assert type(restored) is type(loss)
        assert restored.get_config() == loss.get_config()


def test_adapted_values_survive_the_round_trip():
    loss = kal.losses.CrossentropyExpectationMix()
    loss.set_focus(0.25)
    restored = kal.losses.get(kal.losses.serialize(loss))
    assert float(restored.focus) == pytest.approx(0.25)


def test_behaves_as_keras_losses_get_for_everything_else():
    assert kal.losses.get(None) is None
    assert kal.losses.get("categorical_crossentropy") is keras.losses.get(
        "categorical_crossentropy"
    )
    assert type(kal.losses.get("CategoricalCrossentropy")) is keras.losses.CategoricalCrossentropy
    keras_config = {"class_name": "CategoricalCrossentropy", "config": {"from_logits": True}}
    assert kal.losses.get(keras_config).from_logits
    instance = kal.losses.PolyLoss()
    assert kal.losses.get(instance) is instance
    assert kal.losses.get(keras.losses.mean_squared_error) is keras.losses.mean_squared_error
    # a name given to deserialize builds the class with its defaults, as Keras's does
    assert type(keras.losses.deserialize("CategoricalCrossentropy")).__name__ == (
        "CategoricalCrossentropy"
    )
    assert type(kal.losses.deserialize("PolyLoss")) is kal.losses.PolyLoss


def test_unknown_names_say_what_is_known_and_point_candidates_elsewhere():
    with pytest.raises(ValueError, match=r"Unknown loss 'Stochastic'.*StochasticLoss"):
        kal.losses.get("Stochastic")
    with pytest.raises(ValueError, match=r"kal.losses.get_candidate\('poly1'\)"):
        kal.losses.get("poly1")
    with pytest.raises(ValueError, match="Could not interpret loss identifier 3"):
        kal.losses.get(3)


def test_a_got_loss_compiles_and_trains():
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, activation="softmax")])
    model.compile(optimizer="sgd", loss=kal.losses.get("crossentropy_expectation_mix"))
    x = np.random.default_rng(0).normal(size=(16, 4)).astype("float32")
    history = model.fit(x, np.arange(16) % 3, epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0])


@pytest.mark.parametrize(
    ("name", "expected"),
    [("UniLossAveragePrecision", "uni_loss_average_precision"), ("LDAMLoss", "ldam_loss"),
     ("CrossentropyExpectationMix", "crossentropy_expectation_mix"), ("EnsLoss", "ens_loss")],
)  # fmt: skip
def test_snake_case(name, expected):
    assert lookup.snake_case(name) == expected


@pytest.mark.parametrize("name", CLASS_NAMES)
def test_registered_names_as_saved_configs_write_them_resolve(name):
    cls = lookup.loss_classes()[name]
    registered = keras.saving.get_registered_name(cls)
    assert registered == f"keras_adaptive_loss>{name}"
    try:
        got = kal.losses.get(registered)
    except ValueError as error:  # a class that needs arguments says which, as by its own name
        assert "cannot be built from its name alone" in str(error)
        return
    assert type(got) is cls
