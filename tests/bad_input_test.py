"""The bad-input matrix: property-based tests over every public loss (see docs/robustness.md).

Each case gives a correct value, or a ValueError that says what is wrong, raised while the
step is traced (shapes) or, for values only known at run time, a runtime check with the same
message. Our own code never turns finite input into NaN, and adaptive state never stores NaN.
"""

from __future__ import annotations

import time

import keras
import numpy as np
import pytest
import tensorflow as tf
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import keras_adaptive_loss as kal
from tests import reference

SETTINGS = settings(
    max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)

CANDIDATES = [
    "crossentropy", "expectation", "mse", "mae", "hinge", "cosine", "focal", "poly1", "poly",
    "nce", "normalized_focal", "rce", "nce_rce", "nce_mae", "gce",
]  # fmt: skip

# name -> (factory(from_logits, num_classes), task); task "multiclass" takes [batch, C]
# predictions and sparse or one-hot labels; "binary" two-class outputs; "embedding" any ids.
LOSSES = {
    **{
        f"candidate-{name}": (
            lambda logits, c, name=name: kal.losses.CandidateLoss(name, from_logits=logits),
            "multiclass",
        )
        for name in CANDIDATES
    },
    "mix": (
        lambda logits, c: kal.losses.CrossentropyExpectationMix(
            alpha=0.7, beta=1.5, from_logits=logits
        ),
        "multiclass",
    ),
    "stochastic": (
        lambda logits, c: kal.StochasticLoss(["crossentropy", "mse"], from_logits=logits, seed=0),
        "multiclass",
    ),
    "uniloss_accuracy": (
        lambda logits, c: kal.losses.UniLossAccuracy(from_logits=logits, seed=0),
        "multiclass",
    ),
    "uniloss_ap": (
        lambda logits, c: kal.losses.UniLossAveragePrecision(from_logits=logits, seed=0),
        "binary",
    ),
    "uniloss-fbeta": (
        lambda logits, c: kal.losses.UniLossFBeta(from_logits=logits, seed=0),
        "binary",
    ),
    "class-correlation": (
        lambda logits, c: kal.losses.ClassCorrelationLoss(c, from_logits=logits),
        "multiclass",
    ),
    "active-passive": (
        lambda logits, c: kal.losses.ActivePassiveLoss("nce", "mae", from_logits=logits),
        "multiclass",
    ),
    "normalized_focal": (
        lambda logits, c: kal.losses.NormalizedFocalLoss(from_logits=logits),
        "multiclass",
    ),
    "poly": (lambda logits, c: kal.losses.PolyLoss([1.0, 0.5], from_logits=logits), "multiclass"),
    "squentropy": (lambda logits, c: kal.losses.Squentropy(), "multiclass"),  # reads logits
    "sparsemax": (lambda logits, c: kal.losses.SparsemaxLoss(), "multiclass"),  # reads logits
    "ldam": (
        lambda logits, c: kal.losses.LDAMLoss([40, 20, 10, 5, 3, 2][:c], from_logits=logits),
        "multiclass",
    ),
    "class_balanced": (
        lambda logits, c: kal.losses.ClassBalancedLoss(
            [40, 20, 10, 5, 3, 2][:c], base="focal", from_logits=logits
        ),
        "multiclass",
    ),
    "uncertainty-weighted": (
        lambda logits, c: kal.losses.UncertaintyWeightedLoss("focal", from_logits=logits),
        "multiclass",
    ),
    "anyloss-binary": (lambda logits, c: kal.losses.AnyLoss("f1", from_logits=logits), "binary"),
    "anyloss-multiclass": (
        lambda logits, c: kal.losses.AnyLoss("gmean", from_logits=logits),
        "multiclass",
    ),
    "ensloss": (lambda logits, c: kal.losses.EnsLoss(from_logits=logits, seed=0), "binary"),
    "distance-mixture": (lambda logits, c: kal.losses.DistanceMixtureLoss(), "embedding"),
    "focal-weighting": (lambda logits, c: kal.losses.FocalWeightingLoss(), "embedding"),
    "multi-similarity": (lambda logits, c: kal.losses.MultiSimilarityLoss(), "embedding"),
}
CLASS_ID_LOSSES = [name for name, (_, task) in LOSSES.items() if task == "multiclass"]


def _case(name, batch, classes, layout, pred_dtype, label_dtype, logits, seed):
    """(loss, y_true, y_pred) for a random valid input of loss ``name``."""
    make, task = LOSSES[name]
    classes = 2 if task == "binary" else classes
    rng = np.random.default_rng(seed)
    ids = rng.integers(0, classes, size=batch)
    if task == "embedding":
        return make(logits, classes), ids.astype(label_dtype), rng.normal(size=(batch, 3))
    raw = rng.normal(size=(batch, classes)) * 3
    y_pred = raw if logits else reference.softmax(raw)
    if not logits and pred_dtype == "float16":
        # A float16 probability below 1/65504 has a cross-entropy gradient (-1/p) that float16
        # cannot hold: Keras's own SparseCategoricalCrossentropy returns -inf there too. Keep
        # the probabilities within float16's normal range (>= 2**-14).
        y_pred = np.maximum(y_pred, 2.0**-14)
        y_pred = y_pred / y_pred.sum(-1, keepdims=True)
    if layout == "one_hot":
        y_true = reference.one_hot(ids, classes)
    elif layout == "column":
        y_true = ids.reshape(-1, 1)
    else:
        y_true = ids
    return (
        make(logits, classes),
        np.asarray(y_true).astype(label_dtype),
        np.asarray(y_pred).astype(pred_dtype),
    )


def _value_and_gradient(loss, y_true, y_pred):
    predictions = tf.Variable(y_pred)
    with tf.GradientTape() as tape:
        value = loss(y_true, predictions)
    return value, tape.gradient(value, predictions)


@SETTINGS
@given(
    name=st.sampled_from(list(LOSSES)),
    batch=st.integers(2, 12),
    classes=st.integers(2, 6),
    layout=st.sampled_from(["sparse", "column", "one_hot"]),
    pred_dtype=st.sampled_from(["float16", "float32", "float64"]),
    label_dtype=st.sampled_from(["int32", "int64", "float32"]),
    logits=st.booleans(),
    seed=st.integers(0, 2**16),
)
def test_valid_inputs_of_any_shape_and_dtype_give_finite_values_and_gradients(
    name, batch, classes, layout, pred_dtype, label_dtype, logits, seed
):
    loss, y_true, y_pred = _case(
        name, batch, classes, layout, pred_dtype, label_dtype, logits, seed
    )
    value, gradient = _value_and_gradient(loss, y_true, y_pred)
    assert keras.backend.standardize_dtype(value.dtype) in ("float32", "float64")
    assert np.isfinite(value.numpy()), (name, value)
    if gradient is not None:  # UniLoss gives no gradient on a degenerate batch (no positives)
        assert np.isfinite(gradient.numpy()).all(), name
    if name.startswith("candidate-") or name == "mix":
        # Independent NumPy reference on the float32-rounded predictions.
        p = reference.probabilities(np.asarray(y_pred, "float32"), logits)
        ids = y_true.argmax(-1) if layout == "one_hot" else y_true.reshape(-1)
        onehot = reference.one_hot(ids.astype(int), p.shape[-1])
        if name == "mix":
            expected = reference.mix(onehot, p, 0.7, 1.5).mean()
        else:
            expected = reference.candidate(name[len("candidate-") :], onehot, p).mean()
        tolerance = 2e-2 if pred_dtype == "float16" else 1e-4
        np.testing.assert_allclose(value.numpy(), expected, rtol=tolerance, atol=tolerance)


@pytest.mark.slow
@pytest.mark.parametrize("name", list(LOSSES))
def test_empty_batch_in_a_traced_step_gives_zero_and_keeps_state_finite(name):
    # A replica's share of a short last batch under MirroredStrategy can be empty.
    make, task = LOSSES[name]
    classes = 2 if task == "binary" else 3
    width = 3 if task == "embedding" else classes
    loss = make(False, classes)

    @tf.function(
        input_signature=[
            tf.TensorSpec([None], tf.int64),
            tf.TensorSpec([None, width], tf.float32),
        ]
    )
    def step(y_true, y_pred):
        with tf.GradientTape() as tape:
            tape.watch(y_pred)
            value = loss(y_true, y_pred)
        gradient = tape.gradient(value, y_pred)
        return value, gradient if gradient is not None else tf.zeros_like(y_pred)

    value, gradient = step(np.zeros(0, "int64"), np.zeros((0, width), "float32"))
    assert float(value) == 0.0 and gradient.shape == (0, width)
    rng = np.random.default_rng(0)
    y = rng.integers(0, classes, 6)
    p = reference.softmax(rng.normal(size=(6, width))).astype("float32")
    value, gradient = step(y, p)
    assert np.isfinite(value.numpy()) and np.isfinite(gradient.numpy()).all()
    _assert_state_finite(loss)


def _assert_state_finite(loss):
    for variable in getattr(loss, "variables", []):
        assert np.isfinite(np.asarray(variable.numpy(), "float64")).all(), variable.path
    if isinstance(loss, kal.StochasticLoss):
        for variable in loss.decision_network.weights + loss.state.weights:
            assert np.isfinite(np.asarray(variable.numpy(), "float64")).all(), variable.path


@pytest.mark.slow
@SETTINGS
@given(
    name=st.sampled_from(
        [*CLASS_ID_LOSSES, "uniloss_ap", "uniloss-fbeta", "anyloss-binary", "ensloss"]
    ),
    mismatch=st.sampled_from(["one_hot_width", "labels_rank", "predictions_rank", "two_columns"]),
    batch=st.integers(1, 8),
)
def test_mismatched_shapes_raise_value_error_while_tracing(name, mismatch, batch):
    make, task = LOSSES[name]
    classes = 2 if task == "binary" else 3
    true_shape, pred_shape = {
        "one_hot_width": ([batch, classes + 2], [batch, classes]),
        "labels_rank": ([batch, 2, 2], [batch, classes]),
        "predictions_rank": ([batch], [batch, classes, 2, 2]),
        "two_columns": ([batch, 2], [batch, 3 if task != "binary" else 2, 1]),
    }[mismatch]
    loss = make(False, classes)
    traced = tf.function(loss.__call__)
    with pytest.raises(ValueError, match=r"(?i)shape|expects|labels|predictions"):
        traced.get_concrete_function(
            tf.TensorSpec(true_shape, tf.float32), tf.TensorSpec(pred_shape, tf.float32)
        )


@pytest.mark.slow
@pytest.mark.parametrize("name", CLASS_ID_LOSSES)
@pytest.mark.parametrize("bad_id", [-1, 3, 7])
def test_out_of_range_class_ids(name, bad_id):
    make, _ = LOSSES[name]
    loss = make(False, 3)
    y = np.array([0, 1, bad_id, 2])
    p = reference.softmax(np.random.default_rng(0).normal(size=(4, 3))).astype("float32")
    with pytest.raises(ValueError, match=r"class ids in \[0, 3\)"):
        loss(y, p)  # eager: the values are known, so the error is immediate
    traced = tf.function(loss.__call__)
    with pytest.raises(
        tf.errors.InvalidArgumentError, match=rf"class ids in \[0, 3\).*offending ids.*\[{bad_id}\]"
    ):
        traced(tf.constant(y), tf.constant(p))  # traced step: a runtime check naming the id
    assert np.isfinite(float(traced(tf.constant([0, 1, 2, 2]), tf.constant(p))))


@pytest.mark.parametrize("name", CLASS_ID_LOSSES)
@pytest.mark.parametrize("bad_label", [1.5, 0.9999])
def test_fractional_class_ids_raise_instead_of_truncating(name, bad_label):
    make, _ = LOSSES[name]
    loss = make(False, 3)
    p = reference.softmax(np.random.default_rng(0).normal(size=(4, 3))).astype("float32")
    y = np.array([0.0, 2.0, bad_label, 1.0], "float32")
    with pytest.raises(ValueError, match=rf"label 2 is {bad_label!r}.*would truncate"):
        loss(y, p)
    assert np.isfinite(float(loss(np.array([0.0, 2.0, 1.0, 1.0], "float32"), p)))


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_predictions_never_reach_the_stochastic_loss_state(bad):
    loss = kal.StochasticLoss(["crossentropy", "mse"], seed=0)
    rng = np.random.default_rng(0)
    good = reference.softmax(rng.normal(size=(8, 3))).astype("float32")
    y = rng.integers(0, 3, 8)
    _value_and_gradient(loss, y, good)  # builds it and takes one real step
    before = [v.numpy().copy() for v in loss.decision_network.weights]
    poisoned = good.copy()
    poisoned[2, 1] = bad
    value, _ = _value_and_gradient(loss, y, poisoned)
    assert not np.isfinite(float(value))  # the user's NaN/inf propagates to the loss value
    _assert_state_finite(loss)
    for old, new in zip(before, loss.decision_network.weights, strict=True):
        np.testing.assert_array_equal(old, new.numpy())  # the step was skipped
    assert loss.diagnostics()["slf_skipped_steps"] == 1.0


def test_loss_diagnostics_warns_about_skipped_steps(toy_classification):
    x, y = toy_classification
    x = x.copy()
    x[:16] = np.nan  # the whole first batch: the model's own weights become NaN from there
    model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(4, activation="softmax")])
    model.compile(optimizer="sgd", loss=kal.StochasticLoss(["crossentropy", "mse"], seed=0))
    with pytest.warns(UserWarning, match=r"4 training step\(s\) of epoch 0"):
        model.fit(
            x, y, epochs=1, batch_size=16, shuffle=False, verbose=0,
            callbacks=[kal.callbacks.LossDiagnostics()],
        )  # fmt: skip
    _assert_state_finite(model.loss)


@pytest.mark.parametrize("value", [np.nan, np.inf, -1.0])
def test_schedules_refuse_non_finite_or_out_of_bounds_values(toy_classification, value):
    x, y = toy_classification
    model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(4, activation="softmax")])
    model.compile(optimizer="sgd", loss=kal.StochasticLoss(["crossentropy", "mse"], seed=0))
    schedule = kal.callbacks.TemperatureSchedule(lambda epoch: value)
    with pytest.raises(ValueError, match="temperature"):
        model.fit(x, y, epochs=1, verbose=0, callbacks=[schedule])
    assert model.loss.get_parameter("temperature") == 1.0  # nothing stored


def test_alignment_controller_skips_non_finite_metrics_with_a_warning(toy_classification):
    x, y = toy_classification
    calls = []

    def flaky_accuracy(y_true, y_pred):  # every other measurement is NaN
        calls.append(1)
        return np.nan if len(calls) % 2 else float(np.mean(y_pred.argmax(-1) == y_true))

    model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(4, activation="softmax")])
    model.compile(optimizer="adam", loss=kal.losses.ClassCorrelationLoss(4))
    ala = kal.callbacks.AdaptiveLossAlignment(
        (x[:32], y[:32]), period=4, metric=flaky_accuracy, higher_is_better=True, seed=0
    )
    with pytest.warns(UserWarning, match="validation metric is nan"):
        model.fit(x, y, epochs=3, batch_size=16, verbose=0, callbacks=[ala])
    assert ala.decisions > 0 and np.isfinite(ala.controller.baseline.numpy())
    memory = ala.controller.memory
    assert np.isfinite(memory.states.numpy()[: memory.size]).all()
    assert np.isfinite(memory.rewards.numpy()[: memory.size]).all()
    assert np.isfinite(model.loss.get_parameter("phi")).all()


@pytest.mark.slow
def test_uniloss_ap_size_guard_fires_before_allocation():
    y = (np.arange(50_000) % 2).astype("float32")
    p = np.random.default_rng(0).random(50_000).astype("float32")
    loss = kal.losses.UniLossAveragePrecision()
    started = time.perf_counter()
    with pytest.raises(ValueError, match=r"625000000 binaries.*Lower the batch size"):
        loss(y, p)  # eager: positives x negatives counted before any comparison exists
    assert time.perf_counter() - started < 5  # nothing of 25,000 x 25,000 was built
    traced = tf.function(loss.__call__)
    with pytest.raises(tf.errors.InvalidArgumentError, match="raise memory_budget"):
        traced(tf.constant(y[:6000]), tf.constant(p[:6000]))  # 9e6 binaries > 1 GiB / 196 B
    roomy = kal.losses.UniLossAveragePrecision(memory_budget=2**34)
    assert roomy.get_config()["memory_budget"] == 2**34
    assert np.isfinite(float(roomy(y[:64], p[:64])))
    with pytest.raises(ValueError, match="memory_budget must be"):
        kal.losses.UniLossAveragePrecision(memory_budget=0)


def test_metric_learning_alignment_refuses_a_validation_set_too_large_for_memory():
    x = np.zeros((9000, 2), "float32")
    y = np.zeros(9000, "int64")
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(3)])
    model.compile(optimizer="adam", loss=kal.losses.FocalWeightingLoss())
    ala = kal.callbacks.AdaptiveLossAlignment((x, y), period=4)
    with pytest.raises(ValueError, match=r"validation_data has 9000 samples.*Pass a subset"):
        model.fit(x[:32], y[:32], epochs=1, verbose=0, callbacks=[ala])
