"""Sample weights, class weights and Keras masks reach the set-metric losses (UniLoss, AnyLoss):
a sample of weight 0 is absent, other weights weight the metric's counts."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf
from keras import ops
from sklearn.metrics import average_precision_score, fbeta_score

import keras_adaptive_loss as kal
from keras_adaptive_loss.losses.set_metric import SetMetricLoss, per_sample_weights
from keras_adaptive_loss.uniloss.refactorings import (
    AccuracyRefactoring,
    AveragePrecisionRefactoring,
    FBetaRefactoring,
)

RNG = np.random.default_rng(11)
X_BINARY = RNG.normal(size=24).astype("float32")
Y_BINARY = (RNG.random(24) < 0.4).astype("float32")
X_MULTI = RNG.normal(size=(24, 4)).astype("float32")
Y_MULTI = RNG.integers(0, 4, size=24)
KEEP = np.ones(24, bool)
KEEP[[1, 4, 5, 9, 14, 20, 23]] = False

LOSSES = {
    "uniloss_accuracy": (lambda: kal.losses.UniLossAccuracy(from_logits=True, seed=3), "multi"),
    "uniloss_ap_compact": (
        lambda: kal.losses.UniLossAveragePrecision(from_logits=True, layout="compact", seed=3),
        "binary",
    ),
    "uniloss_ap_masked": (
        lambda: kal.losses.UniLossAveragePrecision(from_logits=True, layout="masked", seed=3),
        "binary",
    ),
    "uniloss_fbeta": (
        lambda: kal.losses.UniLossFBeta(beta=2.0, from_logits=True, seed=3),
        "binary",
    ),
    "anyloss_f1": (lambda: kal.losses.AnyLoss("f1", from_logits=True), "binary"),
    "anyloss_multiclass": (lambda: kal.losses.AnyLoss("gmean", from_logits=True), "multi"),
}


def _data(kind):
    return (Y_BINARY, X_BINARY) if kind == "binary" else (Y_MULTI, X_MULTI)


def _value_and_gradient(loss, y, logits, **kwargs):
    logits = tf.convert_to_tensor(logits)
    with tf.GradientTape() as tape:
        tape.watch(logits)
        value = loss(y, logits, **kwargs)
    return float(value), tape.gradient(value, logits).numpy()


@pytest.mark.parametrize("name", sorted(LOSSES))
def test_zero_weights_give_the_value_and_gradient_of_the_weighted_subset(name):
    make, kind = LOSSES[name]
    y, logits = _data(kind)
    value, gradient = _value_and_gradient(make(), y, logits, sample_weight=KEEP.astype("float32"))
    subset_value, subset_gradient = _value_and_gradient(make(), y[KEEP], logits[KEEP])
    assert value == pytest.approx(subset_value, rel=1e-5, abs=1e-6)
    np.testing.assert_allclose(gradient[KEEP], subset_gradient, rtol=1e-4, atol=1e-7)
    assert np.all(gradient[~KEEP] == 0.0)
    unweighted = float(make()(y, logits))
    assert unweighted != pytest.approx(value, rel=1e-4)  # the weights really changed the value


@pytest.mark.parametrize("name", sorted(LOSSES))
def test_a_keras_mask_acts_as_zero_weights(name):
    make, kind = LOSSES[name]
    y, logits = _data(kind)
    masked = tf.convert_to_tensor(logits)
    masked._keras_mask = tf.constant(KEEP)
    assert float(make()(y, masked)) == pytest.approx(
        float(make()(y, logits, sample_weight=KEEP.astype("float32"))), rel=1e-6
    )


def _metric(refactoring, y, scores, weights=None):
    """``g`` of the configuration the scores produce, from the refactoring itself."""
    kwargs = {} if weights is None else {"weights": tf.constant(weights, "float32")}
    comparisons, valid = refactoring.comparisons(y, scores, **kwargs)
    configuration = ops.cast(comparisons > 0, "float32")[None]
    return float(refactoring.metric(configuration, y, valid, **kwargs)[0])


@pytest.mark.parametrize("layout", ["compact", "masked", "bucketed"])
def test_weighted_average_precision_equals_scikit_learn(layout):
    # Listed by decreasing score: positives that no negative separates keep their score order
    # (a configuration cannot tell it; the refactoring ranks them in batch order).
    order = np.argsort(-X_BINARY)
    y, x = Y_BINARY[order], X_BINARY[order]
    weights = RNG.uniform(0.2, 3.0, size=24)
    refactoring = AveragePrecisionRefactoring(from_logits=True, layout=layout)
    if layout == "bucketed":  # the bucketed layout is one of its static-shape variants
        index, variants = refactoring.static_variants(y)
        refactoring = variants[int(index)]
    expected = average_precision_score(y, x, sample_weight=weights)
    assert _metric(refactoring, y, x, weights) == pytest.approx(expected, 1e-5)
    assert _metric(refactoring, y, x) == pytest.approx(average_precision_score(y, x), 1e-5)
    shuffled = RNG.permutation(24)  # unweighted, the order within a batch does not matter
    unweighted = _metric(refactoring, Y_BINARY[shuffled], X_BINARY[shuffled])
    assert unweighted == pytest.approx(average_precision_score(y, x), 1e-5)


def test_weighted_accuracy_and_fbeta_equal_scikit_learn():
    weights = RNG.uniform(0.2, 3.0, size=24)
    predicted = X_MULTI.argmax(-1)
    expected = np.sum(weights * (predicted == Y_MULTI)) / weights.sum()
    accuracy = AccuracyRefactoring(from_logits=True)
    assert _metric(accuracy, Y_MULTI, X_MULTI, weights) == pytest.approx(expected, 1e-5)
    fbeta = FBetaRefactoring(beta=2.0, from_logits=True)
    expected = fbeta_score(Y_BINARY, X_BINARY > 0, beta=2.0, sample_weight=weights)
    assert _metric(fbeta, Y_BINARY, X_BINARY, weights) == pytest.approx(expected, 1e-5)


def test_anyloss_weighted_counts_equal_a_numpy_reference():
    weights = RNG.uniform(0.2, 3.0, size=24)
    loss = kal.losses.AnyLoss("f1", from_logits=True)  # with its cross-entropy anchor
    p = 1.0 / (1.0 + np.exp(-X_BINARY.astype("float64")))
    a = 1.0 / (1.0 + np.exp(-loss.amplifier * (p - 0.5)))
    tp = np.sum(weights * Y_BINARY * a)
    fp = np.sum(weights * (1 - Y_BINARY) * a)
    fn = np.sum(weights * Y_BINARY * (1 - a))
    clipped = np.clip(p, 1e-7, 1 - 1e-7)
    ce = -(Y_BINARY * np.log(clipped) + (1 - Y_BINARY) * np.log(1 - clipped))
    expected = 1 - 2 * tp / (2 * tp + fp + fn + 1e-7) + 3.0 * np.sum(weights * ce) / weights.sum()
    assert float(loss(Y_BINARY, X_BINARY, sample_weight=weights)) == pytest.approx(expected, 1e-5)


@pytest.mark.parametrize("reduction", ["sum_over_batch_size", "sum", "mean", "none"])
def test_the_value_is_reduced_as_keras_reduces(reduction):
    loss = kal.losses.AnyLoss("f1", from_logits=True, reduction=reduction)
    ones = np.ones(24, "float32")
    weighted = ops.convert_to_numpy(loss(Y_BINARY, X_BINARY, sample_weight=ones))
    plain = ops.convert_to_numpy(keras.losses.Loss.__call__(loss, Y_BINARY, X_BINARY))
    np.testing.assert_allclose(weighted, plain, rtol=1e-6)


def _trained_weights(loss, **fit_kwargs):
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(4)])
    model.compile(optimizer=keras.optimizers.SGD(0.5), loss=loss)
    model.fit(X_MULTI, Y_MULTI, epochs=2, batch_size=12, shuffle=False, verbose=0, **fit_kwargs)
    return model.get_weights()


@pytest.mark.parametrize(
    "make",
    [
        lambda: kal.losses.UniLossAccuracy(from_logits=True, seed=1),
        lambda: kal.losses.AnyLoss("balanced_accuracy", from_logits=True),
    ],
)
def test_class_weight_trains_as_the_equivalent_sample_weights(make):
    class_weight = {0: 1.0, 1: 3.0, 2: 0.5, 3: 0.0}
    sample_weight = np.array([class_weight[int(c)] for c in Y_MULTI], "float32")
    by_class = _trained_weights(make(), class_weight=class_weight)
    by_sample = _trained_weights(make(), sample_weight=sample_weight)
    plain = _trained_weights(make())
    for a, b in zip(by_class, by_sample, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    assert not all(np.allclose(a, b) for a, b in zip(by_class, plain, strict=True))


@pytest.mark.parametrize(
    "make",
    [
        lambda: kal.losses.UniLossAveragePrecision(from_logits=True, seed=5),
        lambda: kal.losses.UniLossFBeta(from_logits=True, seed=5),
        lambda: kal.losses.AnyLoss("f1", from_logits=True),
    ],
)
def test_mirrored_weighted_value_equals_one_device(make, mirrored_strategy):
    x = RNG.normal(size=(64, 8)).astype("float32")
    y = (RNG.random(64) < 0.3).astype("float32")
    weights = RNG.uniform(0.0, 2.0, size=64).astype("float32")
    weights[::7] = 0.0

    def train(strategy):
        with strategy.scope():
            keras.utils.set_random_seed(0)
            model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(1)])
            model.compile(optimizer=keras.optimizers.SGD(0.5), loss=make())
        history = model.fit(
            x, y, sample_weight=weights, epochs=2, batch_size=32, shuffle=False, verbose=0
        )
        return history.history["loss"], model.get_weights()

    single_loss, single_weights = train(tf.distribute.get_strategy())
    mirrored_loss, mirrored_weights = train(mirrored_strategy)
    np.testing.assert_allclose(mirrored_loss, single_loss, rtol=1e-5)
    for a, b in zip(mirrored_weights, single_weights, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)


def test_a_refactoring_without_weights_refuses_them_by_name():
    class Positive(kal.uniloss.refactorings.Refactoring):
        def comparisons(self, y_true, y_pred):
            scores = ops.convert_to_tensor(y_pred)
            return scores, ops.ones_like(scores) > 0

        def metric(self, configurations, y_true, valid):
            return ops.mean(configurations, axis=-1)

    loss = kal.losses.UniLoss(Positive(), seed=0)
    assert np.isfinite(float(loss(np.zeros(4), np.array([0.3, -0.2, 0.1, 0.5]))))
    with pytest.raises(ValueError, match=r"Positive takes no sample weights.*comparisons, metric"):
        loss(np.zeros(4), np.array([0.3, -0.2, 0.1, 0.5]), sample_weight=np.ones(4))


def test_weights_of_another_batch_size_are_a_value_error():
    with pytest.raises(
        ValueError, match=r"sample_weight has shape \(3,\) but the predictions hold 24"
    ):
        kal.losses.AnyLoss("f1")(Y_BINARY, np.full(24, 0.5), sample_weight=np.ones(3))
    assert per_sample_weights(None, None, 4) is None
    assert issubclass(kal.losses.UniLoss, SetMetricLoss)
    assert issubclass(kal.losses.AnyLoss, SetMetricLoss)


@pytest.mark.parametrize("make", [kal.losses.UniLossAveragePrecision, kal.losses.UniLossFBeta])
def test_a_batch_of_one_sample_warns_that_it_cannot_train(make):
    with pytest.warns(UserWarning, match="a batch of one sample holds no positive-negative pair"):
        value = make(from_logits=True, seed=0)(np.array([1.0]), np.array([0.3]))
    assert float(value) == 0.0
