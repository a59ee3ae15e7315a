"""UniLoss: refactored metrics against independent references, IDW, training, strategy, edges."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf
from keras import ops
from sklearn.metrics import average_precision_score, fbeta_score

import keras_adaptive_loss as kal
from keras_adaptive_loss.uniloss import refactorings
from keras_adaptive_loss.uniloss.loss import IDW_EPSILON, idw_interpolate, sample_anchors


def _configuration(refactoring, y_true, y_pred):
    comparisons, valid, *_ = refactoring.comparisons(y_true, y_pred)
    return ops.cast(comparisons > 0, "float32")[None], valid


# g on configurations = the metric computed independently --------------------------------------


@pytest.mark.parametrize("layout", ["compact", "masked"])
@pytest.mark.parametrize("seed", range(5))
def test_average_precision_of_a_configuration_equals_sklearn(seed, layout):
    rng = np.random.default_rng(seed)
    labels = (rng.random(40) < 0.3).astype("float32")
    labels[:2] = [1.0, 0.0]
    scores = rng.normal(size=40).astype("float32")
    refactoring = refactorings.AveragePrecisionRefactoring(from_logits=True, layout=layout)
    config, valid = _configuration(refactoring, labels, scores)
    got = float(refactoring.metric(config, labels, valid)[0])
    assert got == pytest.approx(average_precision_score(labels, scores), rel=1e-6)
    best = refactoring.best_configuration(labels, valid)[None]
    assert float(refactoring.metric(best, labels, valid)[0]) == pytest.approx(1.0)


@pytest.mark.parametrize("seed", range(3))
def test_accuracy_of_a_configuration_equals_argmax_accuracy(seed):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 5, size=30)
    logits = rng.normal(size=(30, 5)).astype("float32")
    refactoring = refactorings.AccuracyRefactoring(from_logits=True)
    config, valid = _configuration(refactoring, labels, logits)
    got = float(refactoring.metric(config, labels, valid)[0])
    assert got == pytest.approx(np.mean(logits.argmax(-1) == labels))


@pytest.mark.parametrize("beta", [0.5, 1.0, 2.0])
def test_fbeta_of_a_configuration_equals_sklearn(beta):
    rng = np.random.default_rng(int(beta * 10))
    labels = (rng.random(50) < 0.4).astype("float32")
    logits = rng.normal(size=(50, 1)).astype("float32")
    refactoring = refactorings.FBetaRefactoring(beta=beta, from_logits=True)
    config, valid = _configuration(refactoring, labels, logits)
    got = float(refactoring.metric(config, labels, valid)[0])
    assert got == pytest.approx(fbeta_score(labels, logits[:, 0] > 0, beta=beta), rel=1e-6)


def test_pckh_of_a_configuration_on_hand_made_heatmaps():
    # 2 samples x 2 joints on 8x8 maps, head size 4: correct within 2 pixels.
    heatmaps = np.zeros((2, 8, 8, 2), dtype="float32")
    keypoints = np.array([[[2, 2], [5, 5]], [[1, 6], [6, 1]]], dtype="float32")
    heatmaps[0, 3, 3, 0] = 1.0  # distance 1.41: correct
    heatmaps[0, 0, 0, 1] = 1.0  # distance 7.07: wrong
    heatmaps[1, 1, 4, 0] = 1.0  # distance 2.0: correct (on the radius)
    heatmaps[1, 0, 0, 1] = 1.0  # joint not visible: not counted
    labels = refactorings.pckh_targets(keypoints, [[1, 1], [1, 0]], [4.0, 4.0])
    refactoring = refactorings.PCKhRefactoring(threshold=0.5)
    config, valid = _configuration(refactoring, labels, heatmaps)
    assert float(refactoring.metric(config, labels, valid, (8, 8))[0]) == pytest.approx(2 / 3)
    best = refactoring.best_configuration(labels, valid)[None]
    assert float(refactoring.metric(best, labels, valid, (8, 8))[0]) == pytest.approx(1.0)
    assert refactoring.comparisons(labels, heatmaps)[2] == (8, 8)  # the context, by value
    assert vars(refactoring) == {"threshold": 0.5}  # nothing kept between calls


# IDW (Eq. 10): value and gradient ----------------------------------------------------------------


def _numpy_idw(u, anchors, values, power):
    d2 = ((u[None] - anchors) ** 2).reshape(len(anchors), -1).sum(-1) + IDW_EPSILON
    w = d2 ** (-power / 2)
    value = (w * values).sum() / w.sum()
    # d value / du = sum_a dw_a/du (g_a - value) / sum_a w_a, dw_a/du = -p d2^(-p/2-1) (u - a)
    dw = -power * (d2 ** (-power / 2 - 1))[:, None] * (u[None] - anchors).reshape(len(anchors), -1)
    grad = (dw * (values - value)[:, None]).sum(0) / w.sum()
    return value, grad.reshape(u.shape)


@pytest.mark.parametrize("power", [1.0, 2.0])
def test_idw_value_and_gradient_match_numpy_and_finite_differences(power):
    rng = np.random.default_rng(0)
    u = rng.random((3, 4))
    anchors = (rng.random((9, 3, 4)) < 0.5).astype("float64")
    values = rng.random(9)
    variable = tf.Variable(u)
    with tf.GradientTape() as tape:
        value = idw_interpolate(variable, anchors, values, power)
    grad = tape.gradient(value, variable).numpy()
    want_value, want_grad = _numpy_idw(u, anchors, values, power)
    assert float(value) == pytest.approx(want_value, rel=1e-12)
    np.testing.assert_allclose(grad, want_grad, rtol=1e-9)
    step, numeric = 1e-6, np.zeros_like(u)
    for index in np.ndindex(u.shape):
        plus, minus = u.copy(), u.copy()
        plus[index] += step
        minus[index] -= step
        numeric[index] = (
            _numpy_idw(plus, anchors, values, power)[0]
            - _numpy_idw(minus, anchors, values, power)[0]
        ) / (2 * step)
    np.testing.assert_allclose(grad, numeric, rtol=1e-5, atol=1e-9)
    # Moving towards a better anchor must increase the interpolated value.
    best = int(np.argmax(values))
    assert float(np.sum(grad * (anchors[best] - u))) > 0


def test_idw_at_an_anchor_returns_its_value():
    anchors = np.array([[0.0, 1.0], [1.0, 1.0], [0.0, 0.0]])
    values = np.array([0.2, 0.9, 0.5])
    assert float(idw_interpolate(anchors[1], anchors, values)) == pytest.approx(0.9, abs=1e-5)


def test_anchors_are_best_good_nearby_and_bad_on_selectable_bits_only():
    best = tf.ones((4, 5))
    current = tf.zeros((4, 5))
    selectable = tf.constant(np.arange(20).reshape(4, 5) % 2 == 0)
    anchors = sample_anchors(best, current, selectable, 6, 2, tf.constant([1, 2], tf.int64))
    anchors = ops.convert_to_numpy(anchors)
    assert anchors.shape == (19, 4, 5)
    frozen = ~ops.convert_to_numpy(selectable)
    assert (anchors[:, frozen] == 0).all()  # unselectable bits keep the current value
    flips_good = (anchors[1:7] != anchors[0][None]).reshape(6, -1).sum(-1)
    flips_nearby = (anchors[7:13] != 0).reshape(6, -1).sum(-1)
    # two index draws per anchor: two flips, or one when both hit the same bit
    assert set(flips_good) | set(flips_nearby) <= {1, 2} and 2 in set(flips_good)
    assert (anchors[0][~frozen] == 1).all()
    single = sample_anchors(best, current, selectable, 50, 1, tf.constant([3, 4], tf.int64))
    single = ops.convert_to_numpy(single)
    changed = single[1:51] != single[0][None]
    assert (changed.reshape(50, -1).sum(-1) == 1).all()
    flipped = np.argwhere(changed)[:, 1:]
    assert len({tuple(i) for i in flipped}) > 5  # different bits, all selectable
    assert all(not frozen[tuple(i)] for i in flipped)


# Training ---------------------------------------------------------------------------------------


def _digits():
    return kal.datasets.load("digits")


def _mlp(outputs, activation=None):
    return keras.Sequential(
        [
            keras.Input((64,)),
            keras.layers.Dense(64, activation="relu"),
            keras.layers.Dense(outputs, activation=activation),
        ]
    )


@pytest.mark.parametrize("rows", [3, 8, None])
def test_average_precision_of_a_bucketed_grid_equals_sklearn(rows):
    rng = np.random.default_rng(rows or 0)
    labels = np.zeros(24, dtype="float32")
    labels[rng.choice(24, size=3, replace=False)] = 1.0  # positives anywhere in the batch
    scores = rng.normal(size=24).astype("float32")
    refactoring = refactorings._PositiveRows(rows, from_logits=True)
    comparisons, valid = refactoring.comparisons(labels, scores)
    assert tuple(comparisons.shape) == (rows or 24, 24)
    assert int(ops.sum(ops.cast(valid, "int32"))) == 3 * 21  # every positive-negative pair
    config = ops.cast(comparisons > 0, "float32")[None]
    got = float(refactoring.metric(config, labels, valid)[0])
    assert got == pytest.approx(average_precision_score(labels, scores), rel=1e-6)


@pytest.mark.parametrize(
    ("positives", "batch", "rows"),
    [(0, 64, 8), (8, 64, 8), (9, 64, 16), (32, 64, 32), (33, 64, None), (40, None, 64)],
)
def test_bucketed_layout_picks_the_smallest_grid_that_holds_the_positives(positives, batch, rows):
    refactoring = refactorings.AveragePrecisionRefactoring(layout="bucketed")
    labels = np.zeros(batch or 100, dtype="float32")
    labels[:positives] = 1.0
    signature = [tf.TensorSpec([batch], "float32")]
    chosen = tf.function(lambda y: refactoring.static_variants(y)[0], input_signature=signature)
    sizes = refactorings._bucket_sizes(batch)  # unknown batch: buckets up to 256, then masked
    assert sizes == ([8, 16, 32, None] if batch else [8, 16, 32, 64, 128, 256, None])
    assert sizes[int(chosen(labels))] == rows
    assert [v.rows for v in refactoring.static_variants(labels)[1]] == refactorings._bucket_sizes(
        batch or 100
    )


@pytest.mark.slow  # two XLA compilations of five branches each: about 10 s
def test_bucketed_layout_matches_its_branch_in_value_and_gradient_under_xla():
    rng = np.random.default_rng(3)
    labels = (rng.random(48) < 0.25).astype("float32")  # 12 positives: the 16-row branch
    logits = tf.Variable(rng.normal(size=(48, 1)).astype("float32"))
    loss = kal.losses.UniLossAveragePrecision(from_logits=True, layout="bucketed", seed=0)
    seed = tf.constant([5, 1], "int64")
    branch = refactorings._PositiveRows(16, from_logits=True)

    @tf.function(jit_compile=True)
    def through_conds():
        with tf.GradientTape() as tape:
            value = loss.interpolated_metric(labels, logits, seed)
        return value, tape.gradient(value, logits)

    @tf.function(jit_compile=True)
    def branch_alone():
        with tf.GradientTape() as tape:
            value = loss._interpolate(branch, labels, logits, seed)
        return value, tape.gradient(value, logits)

    (value, grad), (expected, expected_grad) = through_conds(), branch_alone()
    assert float(value) == pytest.approx(float(expected), rel=1e-6)
    np.testing.assert_allclose(grad.numpy(), expected_grad.numpy(), rtol=1e-5, atol=1e-9)
    assert np.abs(grad.numpy()).sum() > 0
    # The compact layout (no XLA) samples the same good and nearby anchors; only the random bad
    # anchors land on other cells, so the two values are close but not equal.
    compact = kal.losses.UniLossAveragePrecision(from_logits=True, layout="compact", seed=0)
    assert float(compact.interpolated_metric(labels, logits, seed)) == pytest.approx(
        float(value), abs=0.05
    )


@pytest.mark.parametrize("labels", [np.zeros(12), np.ones(12)], ids=["no-positive", "no-negative"])
def test_bucketed_degenerate_batches_give_zero_loss_and_gradient_under_xla(labels):
    loss = kal.losses.UniLossAveragePrecision(from_logits=True, layout="bucketed", seed=0)
    logits = tf.Variable(np.linspace(-1, 1, 12, dtype="float32")[:, None])

    @tf.function(jit_compile=True)
    def step():
        with tf.GradientTape() as tape:
            value = loss(labels, logits)
        return value, tape.gradient(value, logits)

    value, grad = step()
    assert float(value) == 0.0
    assert np.all(grad.numpy() == 0.0)


def test_average_precision_layout_follows_xla():
    refactoring = refactorings.AveragePrecisionRefactoring(from_logits=True)
    labels, scores = np.array([1.0, 0.0, 0.0]), np.array([0.3, 0.1, 0.5], dtype="float32")
    shapes = {}
    for jit in (False, True):
        fn = tf.function(lambda: refactoring.comparisons(labels, scores)[0], jit_compile=jit)
        shapes[jit] = tuple(fn.get_concrete_function().output_shapes)
    assert shapes[False] == (None, None)  # [positives, negatives], data-dependent
    assert shapes[True] == (3, 3)  # masked [batch, batch] grid under XLA
    with pytest.raises(ValueError, match="layout must be one of"):
        refactorings.AveragePrecisionRefactoring(layout="sparse")


@pytest.mark.slow
@pytest.mark.parametrize("jit", [False, True])
def test_average_precision_training_matches_crossentropy_on_digits_zero_vs_rest(jit):
    data = _digits()
    y_train, y_test = (data.y_train == 0).astype("float32"), (data.y_test == 0).astype("float32")
    aps = {}
    for name, loss in (
        ("ce", keras.losses.BinaryCrossentropy(from_logits=True)),
        ("uniloss", kal.losses.UniLossAveragePrecision(from_logits=True, seed=0)),
    ):
        keras.utils.set_random_seed(0)
        model = _mlp(1)
        model.compile(optimizer=keras.optimizers.Adam(1e-3), loss=loss, jit_compile=jit)
        model.fit(data.x_train, y_train, epochs=10, batch_size=64, verbose=0)
        aps[name] = average_precision_score(y_test, model.predict(data.x_test, verbose=0)[:, 0])
    assert aps["uniloss"] >= aps["ce"] - 0.01, aps


@pytest.mark.slow
def test_accuracy_training_is_within_two_points_of_crossentropy():
    data = _digits()
    accuracy = {}
    for name, loss in (
        ("ce", "sparse_categorical_crossentropy"),
        ("uniloss", kal.losses.UniLossAccuracy(seed=0)),
    ):
        keras.utils.set_random_seed(0)
        model = _mlp(10, "softmax")
        model.compile(optimizer=keras.optimizers.Adam(1e-3), loss=loss, metrics=["accuracy"])
        model.fit(data.x_train, data.y_train, epochs=30, batch_size=32, verbose=0)
        accuracy[name] = model.evaluate(data.x_test, data.y_test, verbose=0)[1]
    assert accuracy["uniloss"] >= accuracy["ce"] - 0.02, accuracy


def synthetic_keypoints(n, size=16, joints=2, seed=0):
    """Noisy images with one Gaussian blob per joint channel; labels for PCKh (head size 4)."""
    rng = np.random.default_rng(seed)
    keypoints = rng.uniform(2, size - 3, size=(n, joints, 2)).astype("float32")
    rows, cols = np.meshgrid(np.arange(size), np.arange(size), indexing="ij")
    images = np.zeros((n, size, size, joints), "float32")
    for j in range(joints):
        d2 = (rows[None] - keypoints[:, j, 0, None, None]) ** 2
        d2 = d2 + (cols[None] - keypoints[:, j, 1, None, None]) ** 2
        images[..., j] = np.exp(-d2 / 4.0)
    images += rng.normal(scale=0.3, size=images.shape).astype("float32")
    return images, refactorings.pckh_targets(keypoints, np.ones((n, joints)), np.full(n, 4.0))


def numpy_pckh(heatmaps, labels, threshold=0.5):
    n, height, width, joints = heatmaps.shape
    flat = heatmaps.reshape(n, height * width, joints).argmax(1)
    distance = np.hypot(flat // width - labels[..., 0], flat % width - labels[..., 1])
    visible = labels[..., 2] > 0.5
    return float((distance <= threshold * labels[..., 3])[visible].mean())


@pytest.mark.slow
@pytest.mark.parametrize("jit", [False, True])
def test_pckh_training_improves_pckh(jit):
    x, y = synthetic_keypoints(512)
    x_test, y_test = synthetic_keypoints(256, seed=1)
    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [
            keras.Input((16, 16, 2)),
            keras.layers.Conv2D(8, 3, padding="same", activation="relu"),
            keras.layers.Conv2D(2, 3, padding="same"),
        ]
    )
    model.compile(
        optimizer=keras.optimizers.Adam(3e-3), loss=kal.losses.UniLossPCKh(seed=0), jit_compile=jit
    )
    before = numpy_pckh(model.predict(x_test, verbose=0), y_test)
    model.fit(x, y, epochs=6, batch_size=32, verbose=0)
    after = numpy_pckh(model.predict(x_test, verbose=0), y_test)
    assert before < 0.5 and after > 0.9, (before, after)


@pytest.mark.slow
@pytest.mark.parametrize(
    "loss",
    [
        kal.losses.UniLossAccuracy(seed=0, binary_fraction=0.2),
        kal.losses.UniLossAccuracy(seed=0),
    ],
    ids=["subsampled", "full"],
)
def test_accuracy_trains_with_jit_and_binary_subsampling(loss):
    data = _digits()
    keras.utils.set_random_seed(0)
    model = _mlp(10, "softmax")
    model.compile(
        optimizer=keras.optimizers.Adam(3e-3), loss=loss, metrics=["accuracy"], jit_compile=True
    )
    history = model.fit(data.x_train, data.y_train, epochs=4, batch_size=64, verbose=0)
    assert history.history["accuracy"][-1] > 0.8
    assert loss.draws == 4 * 22  # one anchor sampling per step (1347 / 64 -> 22 steps)


# Strategy, serialization, degenerate batches, bad input -----------------------------------------


@pytest.mark.slow
def test_mirrored_average_precision_equals_single_device_on_the_global_batch(mirrored_strategy):
    rng = np.random.default_rng(3)
    x = rng.normal(size=(64, 8)).astype("float32")
    y = (rng.random(64) < 0.3).astype("float32")

    def train(strategy):
        with strategy.scope():
            keras.utils.set_random_seed(0)
            model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(1)])
            loss = kal.losses.UniLossAveragePrecision(from_logits=True, seed=5)
            model.compile(optimizer=keras.optimizers.SGD(0.5), loss=loss)
        history = model.fit(x, y, epochs=2, batch_size=32, shuffle=False, verbose=0)
        return history.history["loss"], model.get_weights()

    single_loss, single_weights = train(tf.distribute.get_strategy())
    mirrored_loss, mirrored_weights = train(mirrored_strategy)
    np.testing.assert_allclose(mirrored_loss, single_loss, rtol=1e-5)
    for a, b in zip(mirrored_weights, single_weights, strict=True):  # same gradients
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)


def test_save_and_load_keep_the_configuration_and_the_random_stream(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(32, 8)).astype("float32")
    y = rng.integers(0, 3, size=32)
    model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(3, activation="softmax")])
    loss = kal.losses.UniLossAccuracy(seed=2, num_anchors=8, scale=2.0)
    model.compile(optimizer="adam", loss=loss)
    model.fit(x, y, epochs=1, batch_size=8, verbose=0)
    model.save(tmp_path / "uniloss.keras")
    restored = keras.models.load_model(tmp_path / "uniloss.keras").loss
    assert isinstance(restored, kal.losses.UniLossAccuracy)
    assert restored.get_config() == loss.get_config() and restored.draws == 4
    probs = model.predict(x, verbose=0)
    assert float(restored(y, probs)) == pytest.approx(float(loss(y, probs)))


def test_generic_uniloss_with_a_user_refactoring_serializes():
    @keras.saving.register_keras_serializable(package="kal_tests")
    class RecallOfClass(refactorings.AccuracyRefactoring):
        def __init__(self, target=0, **kwargs):
            super().__init__(**kwargs)
            self.target = target

        def metric(self, configurations, y_true, valid):
            correct = ops.min(ops.where(valid, configurations, 1.0), axis=-1)
            is_target = ops.cast(ops.reshape(y_true, (-1,)) == self.target, correct.dtype)
            return ops.sum(correct * is_target, axis=-1) / ops.maximum(ops.sum(is_target), 1.0)

        def get_config(self):
            return {**super().get_config(), "target": self.target}

    loss = kal.losses.UniLoss(RecallOfClass(target=1), seed=0)
    restored = keras.losses.deserialize(keras.losses.serialize(loss))
    assert isinstance(restored.refactoring, RecallOfClass) and restored.refactoring.target == 1
    labels = np.array([1, 1, 0])
    probs = np.array([[0.1, 0.9], [0.8, 0.2], [0.3, 0.7]], dtype="float32")
    config, valid = _configuration(restored.refactoring, labels, probs)
    assert float(restored.refactoring.metric(config, labels, valid)[0]) == pytest.approx(0.5)
    assert float(restored(labels, probs)) == pytest.approx(float(loss(labels, probs)))


@pytest.mark.parametrize(
    ("loss", "y_true", "y_pred"),
    [
        (kal.losses.UniLossAveragePrecision(from_logits=True), np.zeros(6), np.arange(6.0)),
        (kal.losses.UniLossAveragePrecision(from_logits=True), np.ones(6), np.arange(6.0)),
        (kal.losses.UniLossFBeta(from_logits=True), np.zeros(6), np.arange(6.0)),
        (kal.losses.UniLossFBeta(from_logits=True), np.ones(6), np.arange(6.0)),
        (
            kal.losses.UniLossPCKh(),
            refactorings.pckh_targets(np.full((2, 1, 2), 3.0), np.zeros((2, 1)), [4.0, 4.0]),
            np.arange(2 * 8 * 8, dtype="float32").reshape(2, 8, 8, 1),
        ),
    ],
    ids=["ap-no-positive", "ap-no-negative", "f-no-positive", "f-no-negative", "pckh-none-visible"],
)
def test_degenerate_batches_give_zero_loss_and_zero_gradient(loss, y_true, y_pred):
    variable = tf.Variable(np.asarray(y_pred, dtype="float32"))
    with tf.GradientTape() as tape:
        value = loss(y_true, variable)
    grad = tape.gradient(value, variable)
    assert float(value) == 0.0
    assert grad is None or np.all(grad.numpy() == 0.0)


BAD_INPUTS = {
    "ap-labels": (
        kal.losses.UniLossAveragePrecision, np.array([0, 1, 2]), np.full((3, 1), 0.5),
        "binary labels",
    ),
    "ap-shape": (
        kal.losses.UniLossAveragePrecision, np.array([0, 1, 1]), np.full((3, 3), 0.3),
        r"\[batch\], \[batch, 1\] or \[batch, 2\]",
    ),
    "accuracy-shape": (
        kal.losses.UniLossAccuracy, np.zeros((3, 2)), np.full((3, 4), 0.25), "Cannot match labels",
    ),
    "pckh-labels": (
        kal.losses.UniLossPCKh, np.zeros((2, 3, 3)), np.zeros((2, 8, 8, 3)), r"\[batch, 3, 4\]",
    ),
    "pckh-heatmaps": (
        kal.losses.UniLossPCKh, np.zeros((2, 3, 4)), np.zeros((2, 64, 3)), "heatmaps of shape",
    ),
}  # fmt: skip


@pytest.mark.parametrize("case", list(BAD_INPUTS))
def test_bad_input_raises(case):
    make, y_true, y_pred, message = BAD_INPUTS[case]
    with pytest.raises(ValueError, match=message):
        make()(y_true, np.asarray(y_pred, dtype="float32"))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"num_anchors": 0}, "num_anchors must be an integer >= 1"),
        ({"num_flips": 0}, "num_flips must be an integer >= 1"),
        ({"power": 0.0}, "power must be > 0"),
        ({"binary_fraction": 0.0}, r"binary_fraction must lie in \(0, 1\]"),
        ({"scale": -1.0}, "scale must be > 0"),
    ],
)
def test_bad_arguments_raise(kwargs, message):
    with pytest.raises(ValueError, match=message):
        kal.losses.UniLossAccuracy(**kwargs)


def test_uniloss_needs_a_refactoring():
    with pytest.raises(ValueError, match=r"needs a keras_adaptive_loss\.uniloss\.refactorings"):
        kal.losses.UniLoss("accuracy")


# Paper mode: probability comparisons, nearby anchors on wrong bits, the hardest binaries ------


def test_probability_comparisons_are_probability_differences():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 4, size=12)
    logits = rng.normal(size=(12, 4)).astype("float32")
    probabilities = np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)
    accuracy = refactorings.AccuracyRefactoring(from_logits=True, scores="probability")
    comparisons, valid = accuracy.comparisons(labels, logits)
    expected = probabilities[np.arange(12), labels][:, None] - probabilities
    np.testing.assert_allclose(ops.convert_to_numpy(comparisons), expected, atol=1e-6)
    # the configuration (signs) and so the metric are the same as with log-odds
    config, valid = _configuration(accuracy, labels, logits)
    assert float(accuracy.metric(config, labels, valid)[0]) == pytest.approx(
        np.mean(logits.argmax(-1) == labels)
    )
    binary = (rng.random(10) < 0.4).astype("float32")
    binary[:2] = [1.0, 0.0]
    p = rng.uniform(0.05, 0.95, size=10).astype("float32")
    ap = refactorings.AveragePrecisionRefactoring(layout="compact", scores="probability")
    comparisons, _ = ap.comparisons(binary, p)
    expected = p[binary == 1][:, None] - p[binary == 0][None]
    np.testing.assert_allclose(ops.convert_to_numpy(comparisons), expected, atol=1e-5)
    with pytest.raises(ValueError, match="scores must be one of"):
        refactorings.AccuracyRefactoring(scores="logits")


def test_nearby_anchors_flip_only_wrong_bits():
    best = tf.ones((3, 4))
    current = tf.constant(np.array([[1, 0, 1, 1], [1, 1, 1, 1], [0, 1, 1, 1]], "float32"))
    selectable = tf.ones((3, 4), bool)
    wrong = ops.not_equal(current, best)
    anchors = sample_anchors(best, current, selectable, 40, 1, tf.constant([5, 6], tf.int64), wrong)
    nearby = ops.convert_to_numpy(anchors)[41:81]
    changed = nearby != ops.convert_to_numpy(current)[None]
    assert (changed.reshape(40, -1).sum(-1) == 1).all()
    flipped = {tuple(i) for i in np.argwhere(changed)[:, 1:]}
    assert flipped == {(0, 1), (2, 0)}  # both wrong bits are used, nothing else
    none_wrong = sample_anchors(
        best, best, selectable, 5, 1, tf.constant([1, 1], tf.int64), tf.zeros((3, 4), bool)
    )
    np.testing.assert_array_equal(ops.convert_to_numpy(none_wrong)[6:11], np.ones((5, 3, 4)))


def test_hardest_selection_keeps_the_smallest_comparisons_per_row():
    from keras_adaptive_loss.uniloss.loss import _hardest

    comparisons = np.array([[0.5, -0.2, 3.0, 0.1, 9.0], [2.0, 1.0, 0.0, -1.0, 5.0]], "float32")
    valid = np.array([[True, True, True, True, False], [True, True, True, True, True]])
    kept = ops.convert_to_numpy(_hardest(comparisons, valid, 0.5))
    # row 0: 4 valid, ceil(2) smallest = -0.2, 0.1; row 1: 5 valid, ceil(2.5) = 3 smallest
    expected = np.array([[False, True, False, True, False], [False, True, True, True, False]])
    np.testing.assert_array_equal(kept, expected)


@pytest.mark.slow
@pytest.mark.parametrize("jit", [False, True], ids=["graph", "xla"])
def test_paper_mode_trains_and_round_trips(jit, tmp_path):
    data = _digits()
    keras.utils.set_random_seed(0)
    model = _mlp(10, "softmax")
    loss = kal.losses.UniLossAccuracy.paper(seed=0, binary_fraction=0.2)
    assert (loss.nearby, loss.binary_selection, loss.refactoring.scores) == (
        "wrong",
        "hardest",
        "probability",
    )
    model.compile(
        optimizer=keras.optimizers.Adam(3e-3), loss=loss, metrics=["accuracy"], jit_compile=jit
    )
    history = model.fit(data.x_train, data.y_train, epochs=3, batch_size=64, verbose=0)
    assert history.history["accuracy"][-1] > history.history["accuracy"][0]
    model.save(tmp_path / "paper.keras")
    restored = keras.models.load_model(tmp_path / "paper.keras").loss
    assert restored.get_config() == loss.get_config()
    ap = kal.losses.UniLossAveragePrecision.paper(seed=1)
    again = kal.losses.UniLossAveragePrecision.from_config(ap.get_config())
    assert again.get_config() == ap.get_config() and again.refactoring.scores == "probability"
    with pytest.raises(ValueError, match="nearby must be one of"):
        kal.losses.UniLossAccuracy(nearby="close")
    with pytest.raises(ValueError, match="binary_selection must be one of"):
        kal.losses.UniLossAccuracy(binary_selection="top")


def test_hardest_selection_is_the_measured_default():
    loss = kal.losses.UniLossAccuracy(binary_fraction=0.2)
    assert loss.binary_selection == "hardest" and loss.nearby == "random"
    assert loss.refactoring.scores == "log_odds"
    old = kal.losses.UniLossAccuracy.from_config(
        {**loss.get_config(), "binary_selection": "random"}
    )
    assert old.binary_selection == "random"  # the earlier behaviour, one argument away


# The gradient scale: the value is kept, the gradient multiplied --------------------------------


@pytest.mark.parametrize("factor", [0.5, 3.0])
def test_gradient_scale_keeps_the_value_and_multiplies_the_gradient(factor):
    rng = np.random.default_rng(0)
    y = rng.integers(0, 4, size=16)
    logits = tf.constant(rng.normal(size=(16, 4)).astype("float32"))

    def value_and_gradient(scale):
        loss = kal.losses.UniLossAccuracy(from_logits=True, seed=3, gradient_scale=scale)
        with tf.GradientTape() as tape:
            tape.watch(logits)
            value = loss(y, logits)
        return float(value), tape.gradient(value, logits).numpy()

    value, gradient = value_and_gradient(factor)
    plain_value, plain_gradient = value_and_gradient(1.0)
    assert np.abs(plain_gradient).max() > 0
    assert value == pytest.approx(plain_value, abs=1e-7)
    np.testing.assert_allclose(gradient, factor * plain_gradient, rtol=1e-5, atol=1e-9)


def test_gradient_scale_is_configured_saved_and_off_in_paper_mode(tmp_path):
    loss = kal.losses.UniLossAccuracy(gradient_scale=3.0)
    assert kal.losses.UniLossAccuracy.from_config(loss.get_config()).gradient_scale == 3.0
    assert kal.losses.UniLossAccuracy().gradient_scale == 16.0  # measured, see the docstring
    assert kal.losses.UniLossAccuracy.paper().gradient_scale == 1.0
    assert kal.losses.UniLossAveragePrecision().gradient_scale == 1.0
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, activation="softmax")])
    model.compile(optimizer="sgd", loss=loss)
    model.save(tmp_path / "scaled.keras")
    assert keras.models.load_model(tmp_path / "scaled.keras").loss.gradient_scale == 3.0
    for bad in (0.0, -1.0, float("nan"), float("inf"), "2", True):
        with pytest.raises(ValueError, match="gradient_scale must be a finite number > 0"):
            kal.losses.UniLossAccuracy(gradient_scale=bad)


@pytest.mark.slow
def test_the_default_gradient_scale_trains_under_sgd_as_crossentropy_does():
    data = _digits()
    accuracy = {}
    for name, loss in (
        ("ce", "sparse_categorical_crossentropy"),
        ("default", kal.losses.UniLossAccuracy(seed=0)),
        ("unscaled", kal.losses.UniLossAccuracy(seed=0, gradient_scale=1.0)),
    ):
        keras.utils.set_random_seed(0)
        model = _mlp(10, "softmax")
        sgd = keras.optimizers.SGD(0.01, momentum=0.9)
        model.compile(optimizer=sgd, loss=loss, metrics=["accuracy"])
        model.fit(data.x_train, data.y_train, epochs=3, batch_size=64, verbose=0)
        accuracy[name] = model.evaluate(data.x_test, data.y_test, verbose=0)[1]
    assert accuracy["default"] >= accuracy["ce"] - 0.03, accuracy
    assert accuracy["unscaled"] < accuracy["default"] - 0.05, accuracy
