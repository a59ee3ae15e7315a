"""The candidate registry: names, aliases, wrapped Keras losses and callables, errors."""

from __future__ import annotations

import keras
import numpy as np
import pytest
from keras import ops

import keras_adaptive_loss as kal
from tests import reference

LABELS = np.array([0, 2, 1])
PROBS = np.array([[0.7, 0.2, 0.1], [0.1, 0.3, 0.6], [0.3, 0.4, 0.3]], dtype="float32")


def test_available_lists_the_issue_candidates():
    assert kal.losses.available() == sorted(
        ["crossentropy", "expectation", "mse", "mae", "hinge", "squared_hinge", "cosine", "bce",
         "focal", "poly1", "poly", "squentropy", "nce", "normalized_focal", "rce", "nce_rce",
         "nce_mae", "gce", "sparsemax"]
    )  # fmt: skip


def test_available_grouped_covers_every_candidate_once():
    grouped = kal.losses.available(grouped=True)
    names = [name for family in grouped.values() for name in family]
    assert sorted(names) == kal.losses.available() and len(set(names)) == len(names)
    assert "nce_rce" in grouped["robust to label noise"]


@pytest.mark.parametrize(
    ("alias", "name"),
    [("CE", "crossentropy"), ("categorical-hinge", "hinge"), ("binary_crossentropy", "bce"),
     ("  Poly1 ", "poly1"), ("el", "expectation")],
)  # fmt: skip
def test_aliases_resolve_to_canonical_names(alias, name):
    assert kal.losses.get_candidate(alias).name == name


def test_unknown_name_lists_the_valid_names():
    with pytest.raises(ValueError, match=r"Unknown candidate loss 'hinj'.*crossentropy.*poly1"):
        kal.losses.get_candidate("hinj")


def test_not_a_loss_raises():
    with pytest.raises(ValueError, match="Cannot use 3"):
        kal.losses.get_candidate(3)


def test_from_logits_is_bound():
    logits = np.log(PROBS)
    from_logits = ops.convert_to_numpy(
        kal.losses.get_candidate("focal", from_logits=True)(LABELS, logits)
    )
    from_probs = ops.convert_to_numpy(kal.losses.get_candidate("focal")(LABELS, PROBS))
    np.testing.assert_allclose(from_logits, from_probs, rtol=1e-5)


def test_candidate_function_is_accepted_and_bound():
    fn = kal.losses.get_candidate(kal.losses.candidates.expectation)
    assert fn.name == "expectation"
    np.testing.assert_allclose(ops.convert_to_numpy(fn(LABELS, PROBS)), [0.3, 0.4, 0.6], rtol=1e-6)


def test_keras_loss_object_gives_per_sample_values():
    fn = kal.losses.get_candidate(keras.losses.SparseCategoricalCrossentropy())
    got = ops.convert_to_numpy(fn(LABELS, PROBS))
    np.testing.assert_allclose(got, -np.log([0.7, 0.6, 0.4]), rtol=1e-5)
    assert fn.name == "sparse_categorical_crossentropy"


def test_keras_loss_function_is_accepted():
    onehot = reference.one_hot(LABELS, 3).astype("float32")
    fn = kal.losses.get_candidate(keras.losses.mean_squared_error)
    np.testing.assert_allclose(
        ops.convert_to_numpy(fn(onehot, PROBS)), ((onehot - PROBS) ** 2).mean(-1), rtol=1e-6
    )


def test_callable_with_extra_axes_is_averaged_per_sample():
    def squared_error(y_true, y_pred):
        return ops.square(ops.one_hot(ops.cast(y_true, "int32"), 3) - y_pred)

    got = ops.convert_to_numpy(kal.losses.get_candidate(squared_error)(LABELS, PROBS))
    want = ((reference.one_hot(LABELS, 3) - PROBS) ** 2).mean(-1)
    np.testing.assert_allclose(got, want, rtol=1e-6)


def test_callable_returning_a_scalar_names_the_candidate():
    def batch_mean(y_true, y_pred):
        return ops.mean(y_pred)

    with pytest.raises(ValueError, match=r"'batch_mean' returned shape \(\)"):
        kal.losses.get_candidate(batch_mean)(LABELS, PROBS)


def test_serialize_round_trip():
    assert kal.losses.serialize_candidate("CE") == "crossentropy"
    assert kal.losses.serialize_candidate(kal.losses.get_candidate("hinge")) == "hinge"
    assert kal.losses.serialize_candidate(kal.losses.candidates.mae) == "mae"
    config = kal.losses.serialize_candidate(keras.losses.CategoricalHinge())
    restored = kal.losses.deserialize_candidate(config)
    onehot = reference.one_hot(LABELS, 3).astype("float32")
    np.testing.assert_allclose(
        ops.convert_to_numpy(restored(onehot, PROBS)),
        ops.convert_to_numpy(keras.losses.categorical_hinge(onehot, PROBS)),
    )


def test_candidate_loss_serializes():
    loss = kal.losses.CandidateLoss("focal", from_logits=True)
    restored = keras.losses.deserialize(keras.losses.serialize(loss))
    assert isinstance(restored, kal.losses.CandidateLoss)
    assert restored.get_config() == loss.get_config()


def test_candidate_loss_rejects_non_names():
    with pytest.raises(ValueError, match="registry name"):
        kal.losses.CandidateLoss(keras.losses.Hinge())


def test_every_public_loss_and_callback_is_reachable_from_the_top_level():
    losses = [
        name
        for name in kal.losses.__all__
        if isinstance(getattr(kal.losses, name), type)
        and issubclass(getattr(kal.losses, name), keras.losses.Loss)
    ]
    callbacks = [
        name
        for name in kal.callbacks.__all__
        if issubclass(getattr(kal.callbacks, name), keras.callbacks.Callback)
    ]
    assert len(losses) > 20 and len(callbacks) == len(kal.callbacks.__all__)
    for name in losses:
        assert getattr(kal, name) is getattr(kal.losses, name) and name in kal.__all__
    for name in callbacks:
        assert getattr(kal, name) is getattr(kal.callbacks, name) and name in kal.__all__


def test_a_keras_huber_candidate_keeps_its_delta_when_saved():
    """Keras's Huber.get_config drops delta; the candidate's config must carry it."""
    loss = kal.StochasticLoss(["mse", keras.losses.Huber(delta=2.5)], task="regression")
    restored = kal.losses.deserialize(kal.losses.serialize(loss))
    huber = restored.candidates[1]
    value = float(np.asarray(huber(np.zeros((1, 1)), np.full((1, 1), 3.0)))[0])
    assert value == pytest.approx(2.5 * (3.0 - 2.5 / 2))  # delta 1 would give 2.5


def test_huber_delta_beyond_the_probe_cannot_be_saved():
    with pytest.raises(ValueError, match="its delta exceeds"):
        kal.losses.serialize_candidate(keras.losses.Huber(delta=1e5))
