"""The related-loss family: each loss against a NumPy reference written from its paper's
equation (values and finite-difference gradients), the limits that hold by construction, and
training in compiled `fit` (graph, XLA, MirroredStrategy, mixed precision, save/load)."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_adaptive_loss as kal
from keras_adaptive_loss.losses import imbalance
from tests import reference
from tests.helpers import assert_trains_in_float16, numeric_gradient, value_and_gradient

L = kal.losses
RNG = np.random.default_rng(0)
LOGITS = RNG.normal(size=(6, 4)) * 1.5
IDS = np.array([0, 1, 2, 3, 1, 2])
ONE_HOT = np.eye(4)[IDS]


def _p(logits):
    return reference.softmax(logits)


# NumPy references, from the papers' equations -------------------------------------------------


def np_nce(z, q):  # Ma et al. Eq. 4
    log_p = np.log(_p(z))
    return (q * log_p).sum(-1) / log_p.sum(-1)


def np_nfl(z, q, gamma):  # Ma et al. Eq. 5
    p = _p(z)
    focal = -((1 - p) ** gamma) * np.log(p)
    return (q * focal).sum(-1) / focal.sum(-1)


def np_rce(z, q, a=-4.0):  # -sum_k p_k log q_k, log 0 = A
    log_q = np.where(q > 0, np.log(np.where(q > 0, q, 1.0)), a)
    return -(_p(z) * log_q).sum(-1)


def np_mae(z, q):  # the paper's sum_k |p_k - q_k|
    return np.abs(_p(z) - q).sum(-1)


def np_poly(z, q, epsilons):  # Leng et al. Eq. 3
    p = _p(z)
    p_t = (q * p).sum(-1)
    value = -(q * np.log(p)).sum(-1)
    for j, eps in enumerate(epsilons, start=1):
        value = value + eps * (1 - p_t) ** j
    return value


def np_gce(z, q, power):  # Zhang & Sabuncu: (1 - p_y^q) / q
    return (1 - ((q * _p(z)).sum(-1)) ** power) / power


def np_squentropy(z, q):  # Hui et al. Eq. 2
    ce = -(q * np.log(_p(z))).sum(-1)
    return ce + ((1 - q) * z**2).sum(-1) / (z.shape[-1] - 1)


def np_ldam(z, q, counts, max_margin, scale):  # Cao et al. Eq. 13
    margins = np.asarray(counts, float) ** -0.25
    margins = margins * max_margin / margins.max()
    shifted = scale * (z - q * margins)
    return -(q * np.log(_p(shifted))).sum(-1)


def np_class_balanced(z, q, counts, beta):  # Cui et al. Eqs. 3-4, around CE
    weights = (1 - beta) / (1 - beta ** np.asarray(counts, float))
    weights = weights * len(counts) / weights.sum()
    return (q * weights).sum(-1) * -(q * np.log(_p(z))).sum(-1)


COUNTS = [500, 120, 30, 8]
CASES = {
    "nce": (lambda: L.NormalizedCrossentropy(from_logits=True), np_nce),
    "nfl": (lambda: L.NormalizedFocalLoss(0.5, from_logits=True), lambda z, q: np_nfl(z, q, 0.5)),
    "rce": (lambda: L.ReverseCrossentropy(from_logits=True), np_rce),
    "nce+rce": (
        lambda: L.ActivePassiveLoss("nce", "rce", 2.0, 0.5, from_logits=True),
        lambda z, q: 2.0 * np_nce(z, q) + 0.5 * np_rce(z, q),
    ),
    "nce+mae": (
        lambda: L.ActivePassiveLoss("nce", "mae", 1.0, 3.0, from_logits=True),
        lambda z, q: np_nce(z, q) + 3.0 * np_mae(z, q),
    ),
    "poly": (
        lambda: L.PolyLoss([1.5, -0.5, 0.25], from_logits=True),
        lambda z, q: np_poly(z, q, [1.5, -0.5, 0.25]),
    ),
    "squentropy": (lambda: L.Squentropy(), np_squentropy),
    "gce": (
        lambda: L.GeneralizedCrossentropy(q=0.4, from_logits=True),
        lambda z, q: np_gce(z, q, 0.4),
    ),
    "ldam": (
        lambda: L.LDAMLoss(COUNTS, max_margin=0.5, scale=2.0, from_logits=True),
        lambda z, q: np_ldam(z, q, COUNTS, 0.5, 2.0),
    ),
    "class_balanced": (
        lambda: L.ClassBalancedLoss(COUNTS, beta=0.99, from_logits=True),
        lambda z, q: np_class_balanced(z, q, COUNTS, 0.99),
    ),
}


@pytest.mark.parametrize("name", list(CASES))
@pytest.mark.parametrize("labels", ["sparse", "one_hot"])
def test_value_and_gradient_match_the_equation(name, labels):
    make, equation = CASES[name]
    y_true = IDS if labels == "sparse" else ONE_HOT
    value, gradient = value_and_gradient(make(), y_true, LOGITS.copy())
    assert value == pytest.approx(equation(LOGITS, ONE_HOT).mean(), rel=1e-6)
    expected = numeric_gradient(lambda z: equation(z, ONE_HOT).mean(), LOGITS.copy())
    np.testing.assert_allclose(gradient, expected, rtol=1e-5, atol=1e-8)


@pytest.mark.parametrize(
    "name", ["nce", "nfl", "rce", "nce+rce", "nce+mae", "poly", "ldam", "class_balanced"]
)
def test_probabilities_give_the_same_values_as_logits(name):
    make, _ = CASES[name]
    logits_loss = make()
    config = logits_loss.get_config()
    config["from_logits"] = False
    probability_loss = type(logits_loss).from_config(config)
    got = float(probability_loss(IDS, _p(LOGITS)))
    assert got == pytest.approx(float(logits_loss(IDS, LOGITS)), rel=1e-5)


def test_polyloss_external_reference_and_soft_labels():
    logits = np.array([[0.14, 1.456, 2.356, -0.124, -2.47]])
    soft = np.array([[0.1, 0.15, 0.2, 0.25, 0.3]])
    assert float(L.PolyLoss(2.0, from_logits=True)(soft, logits)) == pytest.approx(
        4.531657285679147, rel=1e-6
    )
    assert np_poly(logits, soft, [2.0])[0] == pytest.approx(4.531657285679147)
    # poly1 in the registry is PolyLoss with one coefficient, the paper's epsilon = 1
    poly1 = L.CandidateLoss("poly1", from_logits=True)(IDS, LOGITS)
    assert float(L.PolyLoss(1.0, from_logits=True)(IDS, LOGITS)) == pytest.approx(float(poly1))
    assert float(L.PolyLoss.paper(from_logits=True)(IDS, LOGITS)) == pytest.approx(float(poly1))


def test_polyloss_default_weights_fitted_samples_down_and_stays_non_negative():
    default, paper = L.PolyLoss(), L.PolyLoss.paper(epsilon=2.0)
    assert default.epsilon == (-1.0,) and paper.epsilon == (2.0,)
    assert L.PolyLoss.paper().epsilon == (1.0,)
    p = np.array([[0.999, 0.001], [0.5, 0.5], [1e-4, 1 - 1e-4]])
    values = L.PolyLoss(reduction=None)(np.array([0, 0, 0]), p).numpy()
    expected = -np.log(p[:, 0]) - (1 - p[:, 0])  # Eq. 3 with epsilon_1 = -1
    np.testing.assert_allclose(values, expected, rtol=1e-5, atol=1e-7)
    assert (values >= 0).all()  # log p <= p - 1
    # d/dz of CE + eps (1 - p_t) is CE's gradient times (1 + eps p_t): fitted samples down
    logits = tf.constant([[4.0, 0.0], [0.0, 0.0]])
    with tf.GradientTape() as tape:
        tape.watch(logits)
        per_sample = L.PolyLoss(from_logits=True, reduction=None)(np.array([0, 0]), logits)
    gradient = tape.gradient(per_sample, logits).numpy()
    p_t = tf.nn.softmax(logits).numpy()[:, 0]
    ce_gradient = tf.nn.softmax(logits).numpy() - np.array([[1.0, 0.0], [1.0, 0.0]])
    np.testing.assert_allclose(gradient, ce_gradient * (1 - p_t)[:, None], rtol=1e-5, atol=1e-7)


def test_limits_that_hold_by_construction():
    ce = float(keras.losses.SparseCategoricalCrossentropy(from_logits=True)(IDS, LOGITS))
    assert float(L.PolyLoss(0.0, from_logits=True)(IDS, LOGITS)) == pytest.approx(ce, rel=1e-6)
    assert float(L.PolyLoss([0.0, 0.0], from_logits=True)(IDS, LOGITS)) == pytest.approx(ce)
    focal_0 = L.ClassBalancedLoss(COUNTS, beta=0.0, base="focal", gamma=0.0, from_logits=True)
    assert float(focal_0(IDS, LOGITS)) == pytest.approx(ce, rel=1e-6)  # focal gamma 0, unweighted
    cb_0 = L.ClassBalancedLoss(COUNTS, beta=0.0, from_logits=True)
    assert float(cb_0(IDS, LOGITS)) == pytest.approx(ce, rel=1e-6)  # beta 0 is unweighted
    ldam_0 = L.LDAMLoss(COUNTS, max_margin=0.0, scale=1.0, from_logits=True)
    assert float(ldam_0(IDS, LOGITS)) == pytest.approx(ce, rel=1e-6)
    nce = float(L.NormalizedCrossentropy(from_logits=True)(IDS, LOGITS))
    apl = L.ActivePassiveLoss("nce", "rce", alpha=1.0, beta=0.0, from_logits=True)
    assert float(apl(IDS, LOGITS)) == pytest.approx(nce, rel=1e-6)  # NCE+RCE with beta 0
    nfl_0 = L.NormalizedFocalLoss(gamma=0.0, from_logits=True)
    assert float(nfl_0(IDS, LOGITS)) == pytest.approx(nce, rel=1e-6)
    rce = L.ReverseCrossentropy(from_logits=True)(IDS, LOGITS)
    p_y = _p(LOGITS)[np.arange(6), IDS]
    assert float(rce) == pytest.approx(np.mean(4.0 * (1 - p_y)), rel=1e-6)  # -A (1 - p_y)


def test_active_passive_default_is_ce_plus_a_twentieth_rce_and_paper_mode_is_nce_plus_rce():
    default = float(L.ActivePassiveLoss(from_logits=True)(IDS, LOGITS))
    expected = (-np.log(_p(LOGITS))[np.arange(6), IDS] + 0.05 * np_rce(LOGITS, ONE_HOT)).mean()
    assert default == pytest.approx(expected, rel=1e-6)
    paper = L.ActivePassiveLoss.paper(from_logits=True)
    assert paper.get_config()["active"] == "nce" and paper.get_config()["beta"] == 1.0
    assert float(paper(IDS, LOGITS)) == pytest.approx(
        (np_nce(LOGITS, ONE_HOT) + np_rce(LOGITS, ONE_HOT)).mean(), rel=1e-6
    )
    assert L.ActivePassiveLoss.paper("mae").get_config()["passive"] == "mae"


def test_imbalance_helpers():
    assert imbalance.class_counts([0, 2, 2, 1, 2], 4).tolist() == [1, 1, 3, 0]
    weights = imbalance.class_balanced_weights([100, 10], 0.999)
    expected = np.array([(1 - 0.999) / (1 - 0.999**100), (1 - 0.999) / (1 - 0.999**10)])
    np.testing.assert_allclose(weights, expected * 2 / expected.sum())
    np.testing.assert_allclose(imbalance.ldam_margins([16, 1], 0.5), [0.25, 0.5])
    with pytest.raises(ValueError, match="at least 1 sample"):
        L.LDAMLoss([10, 0])
    with pytest.raises(ValueError, match="beta must lie in"):
        L.ClassBalancedLoss([10, 5], beta=1.0)


def test_generalized_crossentropy_spans_crossentropy_to_the_absolute_error():
    p = _p(LOGITS)
    ce = -np.log((ONE_HOT * p).sum(-1)).mean()
    near_zero = L.GeneralizedCrossentropy(q=1e-4)(IDS, p)
    assert float(near_zero) == pytest.approx(ce, rel=1e-3)
    at_one = L.GeneralizedCrossentropy(q=1.0)(IDS, p)
    assert float(at_one) == pytest.approx((1 - (ONE_HOT * p).sum(-1)).mean(), rel=1e-6)
    registry_gce = L.CandidateLoss("gce")(IDS, p)
    assert float(L.GeneralizedCrossentropy()(IDS, p)) == pytest.approx(float(registry_gce))
    for q in (0.0, -0.5, 1.5):
        with pytest.raises(ValueError, match=r"q must lie in \(0, 1\]"):
            L.GeneralizedCrossentropy(q=q)


def test_gce_matches_keras_and_keeps_a_finite_gradient_where_p_y_underflows():
    p = _p(LOGITS)
    gce = L.get_candidate("gce")(IDS, p).numpy()
    expected = keras.losses.CategoricalGeneralizedCrossEntropy(q=0.7, reduction=None)(IDS, p)
    np.testing.assert_allclose(gce, keras.ops.convert_to_numpy(expected), rtol=1e-6)
    np.testing.assert_allclose(L.get_candidate("gce")(ONE_HOT, p).numpy(), gce, rtol=1e-6)
    np.testing.assert_allclose(
        L.get_candidate("gce", from_logits=True)(IDS, LOGITS).numpy(), gce, rtol=1e-5
    )
    # A softmax that underflowed to p_y = 0 (a confident prediction against a flipped label):
    # Keras's power(p_y, q) has an infinite gradient there, so a step turns the weights NaN.
    saturated = np.array([[1.0, 0.0], [0.3, 0.7]], "float32")
    labels = np.array([1, 1])
    for candidate, predictions in (
        (L.get_candidate("gce"), saturated),
        (L.get_candidate("gce", from_logits=True), np.array([[200.0, 0.0], [0.0, 0.85]])),
    ):
        variable = tf.Variable(predictions, dtype="float32")
        with tf.GradientTape() as tape:
            values = candidate(labels, variable)
            total = tf.reduce_sum(values)
        gradient = tape.gradient(total, variable).numpy()
        assert np.all(np.isfinite(values.numpy())) and np.all(np.isfinite(gradient))
        np.testing.assert_allclose(values.numpy()[0], 1 / 0.7, rtol=1e-3)  # p_y ~ 0: 1/q
    variable = tf.Variable(saturated)
    with tf.GradientTape() as tape:
        total = tf.reduce_sum(
            keras.losses.categorical_generalized_cross_entropy(labels, variable, 0.7)
        )
    assert not np.all(np.isfinite(tape.gradient(total, variable).numpy()))


def test_bad_arguments_raise():
    with pytest.raises(ValueError, match="needs logits"):
        L.Squentropy(from_logits=False)
    with pytest.raises(ValueError, match="active must be one of"):
        L.ActivePassiveLoss(active="mse")
    with pytest.raises(ValueError, match="passive must be one of"):
        L.ActivePassiveLoss(passive="ce")
    with pytest.raises(ValueError, match="epsilon must be"):
        L.PolyLoss([])
    with pytest.raises(ValueError, match="built for 4 classes"):
        L.LDAMLoss(COUNTS, from_logits=True)(np.array([0]), np.zeros((1, 3)))


# Training ---------------------------------------------------------------------------------------

TRAINABLE = {
    "ce+rce": lambda: L.ActivePassiveLoss(from_logits=True),
    "nce+rce": lambda: L.ActivePassiveLoss.paper(from_logits=True),
    "sparsemax": lambda: L.SparsemaxLoss(),
    "nfl": lambda: L.NormalizedFocalLoss(from_logits=True),
    "poly": lambda: L.PolyLoss([1.0, 0.5], from_logits=True),
    "squentropy": lambda: L.Squentropy(),
    "gce": lambda: L.GeneralizedCrossentropy(q=0.5, from_logits=True),
    "ldam": lambda: L.LDAMLoss([200, 100, 50, 25], from_logits=True),
    "class_balanced": lambda: L.ClassBalancedLoss(
        [200, 100, 50, 25], base="focal", from_logits=True
    ),
}


def _data():
    rng = np.random.default_rng(1)
    y = rng.integers(0, 4, size=256)
    x = (rng.normal(size=(256, 8)) + 2.0 * np.eye(4)[y] @ rng.normal(size=(4, 8))).astype("float32")
    return x, y


def _model():
    return keras.Sequential(
        [keras.Input((8,)), keras.layers.Dense(16, activation="relu"), keras.layers.Dense(4)]
    )


@pytest.mark.slow
@pytest.mark.parametrize("name", list(TRAINABLE))
@pytest.mark.parametrize("jit", [False, True], ids=["graph", "xla"])
def test_trains_in_compiled_fit(name, jit):
    x, y = _data()
    keras.utils.set_random_seed(0)
    model = _model()
    model.compile(
        optimizer=keras.optimizers.Adam(1e-2),
        loss=TRAINABLE[name](),
        metrics=["accuracy"],
        jit_compile=jit,
    )
    history = model.fit(x, y, epochs=5, batch_size=32, verbose=0)
    assert history.history["accuracy"][-1] > 0.7, history.history["accuracy"]


@pytest.mark.slow
@pytest.mark.parametrize("name", list(TRAINABLE))
def test_keras_round_trip_in_safe_mode(name, tmp_path):
    x, y = _data()
    model = _model()
    loss = TRAINABLE[name]()
    model.compile("adam", loss)
    model.fit(x[:64], y[:64], epochs=1, verbose=0)
    path = tmp_path / f"{name}.keras"
    model.save(path)
    restored = keras.models.load_model(path, safe_mode=True)
    assert type(restored.loss) is type(loss) and restored.loss.get_config() == loss.get_config()
    assert float(restored.loss(y, model(x))) == pytest.approx(float(loss(y, model(x))), rel=1e-6)


@pytest.mark.slow
@pytest.mark.parametrize("name", list(TRAINABLE))
def test_mirrored_strategy_equals_one_device(name, mirrored_strategy):
    x, y = _data()

    def train(strategy):
        with strategy.scope():
            keras.utils.set_random_seed(0)
            model = _model()
            model.compile(keras.optimizers.SGD(0.1), TRAINABLE[name]())
        model.fit(x[:128], y[:128], epochs=2, batch_size=32, shuffle=False, verbose=0)
        return model.get_weights()

    for a, b in zip(train(mirrored_strategy), train(tf.distribute.get_strategy()), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)


@pytest.mark.slow
@pytest.mark.parametrize("name", list(TRAINABLE))
def test_mixed_precision_trains_with_float32_values(name, mixed_precision):
    x, y = _data()
    assert_trains_in_float16(_model(), TRAINABLE[name](), x, y)


@pytest.mark.slow
def test_stochastic_loss_with_a_mixed_candidate_list_trains():
    x, y = _data()
    keras.utils.set_random_seed(0)
    model = _model()
    slf = kal.StochasticLoss(["crossentropy", "nce_rce", "poly", "squentropy"], from_logits=True)
    model.compile(optimizer=keras.optimizers.Adam(1e-2), loss=slf, metrics=["accuracy"])
    history = model.fit(x, y, epochs=5, batch_size=32, verbose=0)
    assert history.history["accuracy"][-1] > 0.7


@pytest.mark.parametrize("jit", [False, True], ids=["graph", "xla"])
def test_deferred_reweighting_switches_weights_inside_fit(jit):
    x, y = _data()
    counts = imbalance.class_counts(y, 4)
    loss = L.LDAMLoss(counts, from_logits=True)
    seen = []

    class Probe(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            seen.append((logs["drw"], loss.get_parameter("class_weights").copy(), logs["loss"]))

    model = _model()
    model.compile(keras.optimizers.SGD(0.0), loss, jit_compile=jit)  # weights frozen
    drw = kal.callbacks.DeferredReweighting(start_epoch=2, beta=0.999)
    model.fit(x, y, epochs=3, batch_size=256, callbacks=[drw, Probe()], verbose=0)
    assert [active for active, _, _ in seen] == [0.0, 0.0, 1.0]
    np.testing.assert_allclose(seen[0][1], np.ones(4))
    expected = imbalance.class_balanced_weights(counts, 0.999)
    np.testing.assert_allclose(seen[2][1], expected, rtol=1e-6)
    # the switch takes effect in the compiled step: same model, a different loss value
    unweighted = np.mean(np_ldam(model(x).numpy(), np.eye(4)[y], counts, 0.5, 1.0))
    weighted = np.mean(np_ldam(model(x).numpy(), np.eye(4)[y], counts, 0.5, 1.0) * expected[y])
    assert seen[0][2] == pytest.approx(unweighted, rel=1e-4)
    assert seen[2][2] == pytest.approx(weighted, rel=1e-4)


def test_deferred_reweighting_needs_a_matching_loss():
    x, y = _data()
    model = _model()
    model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    with pytest.raises(ValueError, match=r"LDAMLoss or kal\.losses\.ClassBalancedLoss"):
        model.fit(x, y, epochs=1, callbacks=[kal.callbacks.DeferredReweighting(1)], verbose=0)


@pytest.mark.slow
def test_compare_presets_of_the_family():
    result = kal.compare(
        "iris",
        [
            "crossentropy",
            "nce_rce",
            "ce_rce",
            "poly",
            "squentropy",
            "sparsemax",
            "ldam_drw",
            "class_balanced",
            "gce",
        ],
        seeds=1,
        epochs=5,
        imbalance=5,
        verbose=0,
    )
    runs = {run.loss: run for run in result.runs}
    assert runs["ldam_drw"].history["drw"] == [0, 0, 0, 0, 1]  # switched on at 80 %
    setups = result.config["loss_setups"]
    counts = setups["ldam_drw"]["loss"]["config"]["class_counts"]
    assert counts[0] / counts[-1] == pytest.approx(5, rel=0.25)  # the long tail's counts
    assert setups["squentropy"]["loss"]["class_name"] == "Squentropy"
    assert setups["sparsemax"]["loss"]["class_name"] == "SparsemaxLoss"
    assert setups["nce_rce"]["loss"]["config"]["active"] == "nce"  # the paper's recipe
    assert setups["ce_rce"]["loss"]["config"]["beta"] == 0.05  # the measured default
    assert setups["poly"]["loss"]["config"]["epsilon"] == [-1.0]  # the measured default
    assert all(0.0 <= run.test_metrics["accuracy"] <= 1.0 for run in result.runs)


def test_logits_presets_need_a_softmax_output_layer():
    def no_softmax(input_shape, num_classes):
        return keras.Sequential(
            [keras.Input(input_shape), keras.layers.Dense(num_classes), keras.layers.Softmax()]
        )

    with pytest.raises(ValueError, match="reads logits"):
        kal.compare("iris", ["squentropy"], model=no_softmax, seeds=1, epochs=1, verbose=0)


def test_sparsemax_matches_the_projection_and_its_loss_gradient_is_sparsemax_minus_q():
    z = LOGITS.copy()
    p = np.asarray(kal.layers.Sparsemax()(z))
    np.testing.assert_allclose(p, reference.sparsemax(z), atol=1e-6)
    np.testing.assert_allclose(p.sum(-1), 1.0, atol=1e-6)
    assert (p == 0).any()  # exact zeros, unlike softmax
    value, gradient = value_and_gradient(L.SparsemaxLoss(), IDS, z)
    expected = reference.candidate("sparsemax", ONE_HOT, None, logits=z)
    assert value == pytest.approx(expected.mean(), rel=1e-6)
    np.testing.assert_allclose(gradient, (reference.sparsemax(z) - ONE_HOT) / len(z), atol=1e-6)
    numeric = numeric_gradient(
        lambda v: reference.candidate("sparsemax", ONE_HOT, None, logits=v).mean(), z
    )
    np.testing.assert_allclose(gradient, numeric, rtol=1e-4, atol=1e-7)
    # zero exactly when sparsemax(z) is the one-hot label; non-negative otherwise
    assert float(L.SparsemaxLoss()(np.array([0]), np.array([[3.0, 1.0, 0.0]]))) == 0.0
    assert np.all(expected >= -1e-12)
    with pytest.raises(ValueError, match="defined on logits"):
        L.SparsemaxLoss(from_logits=False)


@pytest.mark.slow
def test_sparsemax_model_trains_and_round_trips(tmp_path):
    x, y = _data()
    keras.utils.set_random_seed(0)
    model = _model()
    model.compile(optimizer=keras.optimizers.Adam(1e-2), loss=L.SparsemaxLoss(), jit_compile=True)
    model.fit(x, y, epochs=5, batch_size=32, verbose=0)
    sparse = keras.Sequential([model, kal.layers.Sparsemax()])
    probabilities = np.asarray(sparse.predict(x, verbose=0))
    assert np.mean(probabilities.argmax(-1) == y) > 0.7 and (probabilities == 0).mean() > 0.3
    sparse.save(tmp_path / "sparse.keras")
    restored = keras.models.load_model(tmp_path / "sparse.keras", safe_mode=True)
    np.testing.assert_allclose(restored.predict(x, verbose=0), probabilities, atol=1e-6)
