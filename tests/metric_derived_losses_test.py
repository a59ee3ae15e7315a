"""AnyLoss and EnsLoss against NumPy references written from their papers' equations, their
gradients, the properties that make EnsLoss's random losses legitimate, and training in
compiled `fit` (graph, XLA, MirroredStrategy on the global batch, mixed precision, save/load)."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf
from hypothesis import given, settings
from hypothesis import strategies as st

import keras_adaptive_loss as kal
from keras_adaptive_loss.losses import metric_derived
from tests import reference
from tests.helpers import assert_trains_in_float16, numeric_gradient, value_and_gradient

L = kal.losses
RNG = np.random.default_rng(3)


# NumPy references ------------------------------------------------------------------------------


def np_confusion_metric(metric, tn, fn, fp, tp, beta=1.0, eps=1e-7):  # Han et al. Eq. 3
    if metric == "accuracy":
        return (tp + tn) / (tp + tn + fp + fn + eps)
    if metric in ("f1", "fbeta"):
        b2 = 1.0 if metric == "f1" else beta**2
        return (1 + b2) * tp / ((1 + b2) * tp + b2 * fn + fp + eps)
    tpr, tnr = tp / (tp + fn + eps), tn / (tn + fp + eps)
    if metric == "balanced_accuracy":
        return (tpr + tnr) / 2
    return np.sqrt(tpr * tnr + eps) - np.sqrt(eps)


def np_multiclass_metric(metric, fn, fp, tp, beta=1.0, eps=1e-7):  # scikit-learn's definitions
    if metric == "accuracy":
        return tp.sum() / ((tp + fn).sum() + eps)
    if metric in ("f1", "fbeta"):
        b2 = 1.0 if metric == "f1" else beta**2
        return ((1 + b2) * tp / ((1 + b2) * tp + b2 * fn + fp + eps)).mean()
    recall = tp / (tp + fn + eps)
    if metric == "balanced_accuracy":
        return recall.mean()
    return np.prod(recall + eps) ** (1 / len(recall))


def np_anyloss(y, p, metric, amplifier=73.0, beta=1.0):
    """``y``, ``p``: ``[batch, K]`` (K = 1 binary, K = C one-vs-rest columns)."""
    if p.shape[-1] == 1:
        a = _sigmoid(amplifier * (p - 0.5))  # Eq. 1
    else:  # one-vs-rest: how far p_c is above the best other class
        others = np.array([[np.delete(row, c).max() for c in range(len(row))] for row in p])
        a = _sigmoid(amplifier / 2 * (p - others))
    tp, fn = (y * a).sum(0), (y * (1 - a)).sum(0)  # Eq. 2
    fp, tn = ((1 - y) * a).sum(0), ((1 - y) * (1 - a)).sum(0)
    if p.shape[-1] == 1:
        return 1.0 - np_confusion_metric(metric, tn[0], fn[0], fp[0], tp[0], beta)
    return 1.0 - np_multiclass_metric(metric, fn, fp, tp, beta)


def np_ensloss_derivatives(margins, normal, clip=1.0):  # Dai 2024, with the authors' tail
    draws = np.maximum(-np.exp(normal), -clip)
    g = np.empty_like(margins)
    g[np.argsort(margins, kind="stable")] = np.sort(draws)
    g = np.where(margins > 1.0, g / np.maximum(margins, 1.0), g)
    return g - 1e-6


def _sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


def np_ensloss_logistic_derivatives(margins, normal, clip=1.0):  # the logistic tail beyond 1
    draws = np.maximum(-np.exp(normal), -clip)
    g = np.empty_like(margins)
    g[np.argsort(margins, kind="stable")] = np.sort(draws)
    g = np.where(margins > 1.0, g * _sigmoid(-margins) / _sigmoid(-1.0), g)
    return g - 1e-6


# AnyLoss ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("metric", metric_derived.ANYLOSS_METRICS)
def test_anyloss_binary_matches_the_equationsvalue_and_gradient(metric):
    y = np.array([1, 0, 1, 1, 0, 0, 1, 0], "float64")
    logits = RNG.normal(size=8)
    amplifier = 4.0  # a gentle slope, so that finite differences resolve the gradient
    loss = L.AnyLoss.paper(metric, beta=2.0, amplifier=amplifier, from_logits=True)
    value, gradient = value_and_gradient(loss, y, logits)

    def expected(z):
        return np_anyloss(y[:, None], _sigmoid(z)[:, None], metric, amplifier, beta=2.0)

    assert value == pytest.approx(expected(logits), rel=1e-6)
    np.testing.assert_allclose(gradient, numeric_gradient(expected, logits), atol=1e-6)


@pytest.mark.parametrize("metric", metric_derived.ANYLOSS_METRICS)
@pytest.mark.parametrize("labels", ["sparse", "one_hot"])
def test_anyloss_multiclass_matches_the_multiclass_metric_of_one_vs_rest_counts(metric, labels):
    ids = np.array([0, 1, 2, 3, 1, 2, 0, 0])
    logits = RNG.normal(size=(8, 4)) * 2
    y = np.eye(4)[ids] if labels == "one_hot" else ids
    loss = L.AnyLoss.paper(metric, amplifier=6.0, from_logits=True)
    value, gradient = value_and_gradient(loss, y, logits)

    def expected(z):
        return np_anyloss(np.eye(4)[ids], reference.softmax(z), metric, 6.0)

    assert value == pytest.approx(expected(logits), rel=1e-6)
    np.testing.assert_allclose(gradient, numeric_gradient(expected, logits), atol=1e-6)


@pytest.mark.parametrize("classes", [1, 4])
def test_anyloss_crossentropy_anchor_adds_the_weighted_crossentropy(classes):
    ids = np.array([0, 1, 2, 3, 1, 2, 0, 0]) % max(classes, 2)
    logits = RNG.normal(size=(8, classes)) * (2 if classes > 1 else 1)
    loss = L.AnyLoss("f1", amplifier=6.0, from_logits=True, crossentropy_weight=0.3)
    y = ids.astype("float64")
    value, gradient = value_and_gradient(loss, y, logits)

    def expected(z):
        if classes == 1:
            p = _sigmoid(z)
            onehot = y[:, None]
            ce = -(y * np.log(p[:, 0]) + (1 - y) * np.log(1 - p[:, 0]))
        else:
            p = reference.softmax(z)
            onehot = np.eye(classes)[ids]
            ce = -np.log(p[np.arange(8), ids])
        return np_anyloss(onehot, p, "f1", 6.0) + 0.3 * ce.mean()

    assert value == pytest.approx(expected(logits), rel=1e-6)
    np.testing.assert_allclose(gradient, numeric_gradient(expected, logits), atol=1e-6)
    assert L.AnyLoss.from_config(loss.get_config()).crossentropy_weight == 0.3
    assert L.AnyLoss().crossentropy_weight == 3.0 and L.AnyLoss.paper().crossentropy_weight == 0
    assert L.AnyLoss().amplifier == 10.0 and L.AnyLoss.paper().amplifier == 73.0
    assert L.AnyLoss.paper(amplifier=4.0).amplifier == 4.0
    with pytest.raises(ValueError, match="crossentropy_weight must be >= 0"):
        L.AnyLoss("f1", crossentropy_weight=-1.0)


def test_anyloss_at_the_papers_amplifier_approaches_one_minus_the_hard_metric():
    y = np.array([1, 1, 1, 0, 0, 0, 0, 0, 0, 0])
    p = np.array([0.9, 0.8, 0.2, 0.7, 0.1, 0.1, 0.2, 0.3, 0.05, 0.1])  # TP 2, FN 1, FP 1, TN 6
    from sklearn.metrics import balanced_accuracy_score, f1_score

    hard = (p > 0.5).astype(int)
    assert float(L.AnyLoss.paper("f1")(y, p)) == pytest.approx(1 - f1_score(y, hard), abs=0.01)
    assert float(L.AnyLoss.paper("accuracy")(y, p)) == pytest.approx(0.2, abs=0.01)
    balanced = balanced_accuracy_score(y, hard)
    assert float(L.AnyLoss.paper("balanced_accuracy")(y, p)) == pytest.approx(
        1 - balanced, abs=0.01
    )
    # A two-class softmax output is the binary case with class 1 positive.
    two = np.stack([1 - p, p], axis=-1)
    assert float(L.AnyLoss("f1")(y, two)) == pytest.approx(float(L.AnyLoss("f1")(y, p)))


def test_anyloss_bad_arguments_and_labels_raise():
    with pytest.raises(ValueError, match="metric must be one of"):
        L.AnyLoss("auc")
    with pytest.raises(ValueError, match="beta must be > 0"):
        L.AnyLoss("fbeta", beta=0)
    with pytest.raises(ValueError, match="amplifier must be > 0"):
        L.AnyLoss(amplifier=-1)
    with pytest.raises(ValueError, match=r"needs binary labels.*\[0.0, 1.0, 2.0\]"):
        L.AnyLoss()(np.array([0, 1, 2]), np.array([0.2, 0.7, 0.9]))


# EnsLoss ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("clip", [1.0, 3.0])
@pytest.mark.parametrize(
    ("tail", "derivatives"),
    [("inverse", np_ensloss_derivatives), ("logistic", np_ensloss_logistic_derivatives)],
)
def test_ensloss_gradient_is_the_drawn_derivatives_and_its_value_the_logistic_loss(
    tail, derivatives, clip
):
    y = np.array([1, 0, 1, 1, 0, 1, 0, 0, 1, 1], "float64")
    logits = RNG.normal(size=10) * 2
    loss = L.EnsLoss(clip=clip, from_logits=True, seed=11, tail=tail)
    value, gradient = value_and_gradient(loss, y, logits)
    signs = 2 * y - 1
    margins = signs * logits
    normal = tf.random.stateless_normal([10], seed=[11, 0], alg="philox").numpy()
    g = derivatives(margins, normal.astype("float64"), clip=clip)
    assert (normal > np.log(clip)).any()  # some draw is clipped, so the clip is tested
    np.testing.assert_allclose(gradient, g * signs / len(y), rtol=1e-5, atol=1e-9)
    assert value == pytest.approx(np.log1p(np.exp(-margins)).mean(), rel=1e-6)
    assert loss.draws == 1
    _, second = value_and_gradient(loss, y, logits)
    assert not np.allclose(second, gradient)  # a new random loss for the next batch


@settings(max_examples=30, deadline=None)
@given(
    margins=st.lists(
        st.floats(-8, 8, width=32, allow_subnormal=False), min_size=1, max_size=40
    ),  # TensorFlow flushes subnormals to zero, which would tie them with 0
    seed=st.integers(0, 2**16),
)
def test_ensloss_derivatives_are_those_of_a_convex_calibrated_loss(margins, seed):
    z = np.asarray(margins, "float32")
    normal = np.random.default_rng(seed).normal(size=z.shape).astype("float32")
    g = metric_derived.ensloss_derivatives(z, normal, tail="inverse").numpy()
    assert (g < 0).all()  # calibrated: phi'(0) < 0, and phi decreasing everywhere
    order = np.argsort(z, kind="stable")
    steps = np.diff(g[order])
    distinct = np.diff(z[order]) > 0
    assert (steps[distinct] >= -1e-6).all()  # phi' non-decreasing in the margin: convex
    assert (g >= -1.0 - 1e-6).all()  # clipped magnitudes


@settings(max_examples=30, deadline=None)
@given(
    margins=st.lists(st.floats(-8, 8, width=32, allow_subnormal=False), min_size=1, max_size=40),
    seed=st.integers(0, 2**16),
)
def test_ensloss_logistic_derivatives_are_those_of_a_convex_calibrated_loss(margins, seed):
    z = np.asarray(margins, "float32")
    normal = np.random.default_rng(seed).normal(size=z.shape).astype("float32")
    g = metric_derived.ensloss_derivatives(z, normal, tail="logistic").numpy()
    assert (g >= -1.0 - 1e-6).all()  # clipped magnitudes
    assert (g < 0).all()  # calibrated
    order = np.argsort(z, kind="stable")
    steps = np.diff(g[order])
    distinct = np.diff(z[order]) > 0
    assert (steps[distinct] >= -1e-6).all()  # non-decreasing in the margin: convex
    np.testing.assert_allclose(
        g, np_ensloss_logistic_derivatives(z.astype("float64"), normal.astype("float64")),
        rtol=1e-4, atol=1e-7,
    )  # fmt: skip


def test_ensloss_defaults_and_paper_mode():
    default, paper = L.EnsLoss(), L.EnsLoss.paper()
    assert (default.clip, default.tail) == (3.0, "logistic")
    assert (paper.clip, paper.tail) == (1.0, "inverse")
    assert L.EnsLoss.paper(clip=2.0).clip == 2.0
    restored = L.EnsLoss.from_config(L.EnsLoss(clip=5.0, seed=1).get_config())
    assert restored.clip == 5.0


def test_ensloss_bad_arguments_and_labels_raise():
    with pytest.raises(ValueError, match="clip must be > 0"):
        L.EnsLoss(clip=0)
    with pytest.raises(ValueError, match="tail must be one of"):
        L.EnsLoss(tail="hinge")
    with pytest.raises(ValueError, match="needs binary labels"):
        L.EnsLoss()(np.array([0, 3]), np.array([0.2, 0.7]))
    with pytest.raises(ValueError, match=r"\[batch\], \[batch, 1\] or \[batch, 2\]"):
        L.EnsLoss()(np.array([0, 1]), np.full((2, 3), 1 / 3))


# Training in fit ---------------------------------------------------------------------------------


def _binary_data(n=256, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 8)).astype("float32")
    y = (x[:, 0] + 0.5 * x[:, 1] > 0.6).astype("float32")  # about 30 % positives
    return x, y


def _multiclass_data(n=256, seed=0):
    rng = np.random.default_rng(seed)
    centers = rng.normal(size=(4, 8)) * 2.5
    y = rng.integers(0, 4, size=n)
    return (centers[y] + rng.normal(size=(n, 8))).astype("float32"), y


def _model(outputs, activation):
    return keras.Sequential(
        [
            keras.Input((8,)),
            keras.layers.Dense(16, activation="relu"),
            keras.layers.Dense(outputs, activation=activation),
        ]
    )


BINARY = {
    "anyloss_f1": lambda: L.AnyLoss("f1"),
    "anyloss_gmean": lambda: L.AnyLoss("gmean"),
    "ensloss": lambda: L.EnsLoss(seed=0),
}


@pytest.mark.slow
@pytest.mark.parametrize("name", list(BINARY))
@pytest.mark.parametrize("jit", [False, True], ids=["graph", "xla"])
def test_binary_losses_train_in_compiled_fit(name, jit):
    x, y = _binary_data()
    keras.utils.set_random_seed(0)
    model = _model(1, "sigmoid")
    model.compile(
        optimizer=keras.optimizers.Adam(1e-2),
        loss=BINARY[name](),
        metrics=[keras.metrics.F1Score(average="micro", threshold=0.5)],
        jit_compile=jit,
    )
    history = model.fit(x, y[:, None], epochs=8, batch_size=32, verbose=0)
    assert history.history["f1_score"][-1] > 0.8, history.history["f1_score"]
    if name == "ensloss":
        assert model.loss.draws == 8 * 8  # one random loss per step


@pytest.mark.slow
@pytest.mark.parametrize("jit", [False, True], ids=["graph", "xla"])
def test_anyloss_macro_f1_trains_a_multiclass_model(jit):
    from sklearn.datasets import load_digits

    x, y = load_digits(return_X_y=True)
    x = (x / 16.0).astype("float32")
    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [keras.Input((64,)), keras.layers.Dense(32, "relu"), keras.layers.Dense(10, "softmax")]
    )
    model.compile(
        keras.optimizers.Adam(1e-3), L.AnyLoss("f1"), metrics=["accuracy"], jit_compile=jit
    )
    history = model.fit(x, y, epochs=4, batch_size=32, verbose=0)
    assert history.history["accuracy"][-1] > 0.85, history.history["accuracy"]


@pytest.mark.slow
@pytest.mark.parametrize("name", ["anyloss_f1", "ensloss"])
def test_keras_round_trip_in_safe_mode(name, tmp_path):
    x, y = _binary_data(64)
    model = _model(1, "sigmoid")
    loss = BINARY[name]()
    model.compile("adam", loss)
    model.fit(x, y, epochs=1, verbose=0)
    path = tmp_path / f"{name}.keras"
    model.save(path)
    restored = keras.models.load_model(path, safe_mode=True)
    assert type(restored.loss) is type(loss) and restored.loss.get_config() == loss.get_config()
    if name == "ensloss":
        assert restored.loss.draws == loss.draws == 2  # the random stream continues
    assert float(restored.loss(y, model(x))) == pytest.approx(float(loss(y, model(x))), rel=1e-6)


@pytest.mark.slow
def test_anyloss_under_mirrored_strategy_uses_the_global_batch(mirrored_strategy):
    x, y = _binary_data(128)

    def train(strategy):
        with strategy.scope():
            keras.utils.set_random_seed(0)
            model = _model(1, "sigmoid")
            model.compile(keras.optimizers.SGD(0.5), L.AnyLoss("f1", amplifier=10.0))
        model.fit(x, y, epochs=2, batch_size=32, shuffle=False, verbose=0)
        return model.get_weights()

    for a, b in zip(train(mirrored_strategy), train(tf.distribute.get_strategy()), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)


@pytest.mark.slow
def test_ensloss_under_mirrored_strategy_trains(mirrored_strategy):
    x, y = _binary_data()
    with mirrored_strategy.scope():
        keras.utils.set_random_seed(0)
        model = _model(1, "sigmoid")
        model.compile(keras.optimizers.Adam(1e-2), L.EnsLoss(seed=0), metrics=["accuracy"])
    history = model.fit(x, y, epochs=6, batch_size=32, verbose=0)
    assert history.history["accuracy"][-1] > 0.85
    assert model.loss.draws == 6 * 8  # one draw per step, not per replica


@pytest.mark.slow
@pytest.mark.parametrize("name", ["anyloss_f1", "ensloss"])
def test_mixed_precision_gives_float32_values(name, mixed_precision):
    x, y = _binary_data()
    assert_trains_in_float16(_model(1, "sigmoid"), BINARY[name](), x, y)


@pytest.mark.slow
def test_compare_presets():
    result = kal.compare(
        "breast_cancer",
        ["crossentropy", "anyloss_f1", "anyloss_gmean", "ensloss"],
        seeds=1,
        epochs=3,
        verbose=0,
    )
    setups = result.config["loss_setups"]
    assert setups["anyloss_f1"]["loss"]["config"]["metric"] == "f1"
    assert setups["ensloss"]["loss"]["class_name"] == "EnsLoss"
    assert all(run.test_metrics["accuracy"] > 0.6 for run in result.runs)
    with pytest.raises(ValueError, match=r"'ensloss' is for binary tasks.*positive_class"):
        kal.compare("iris", ["ensloss"], seeds=1, epochs=1, verbose=0)
