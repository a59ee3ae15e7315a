"""Under the mixed_float16 policy every loss computes in float32 and trains."""

from __future__ import annotations

import keras
import numpy as np
import pytest

import keras_adaptive_loss as kal
from keras_adaptive_loss.uniloss.refactorings import pckh_targets


def _classification(loss, callbacks=(), classes=4):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(96, 8)).astype("float32")
    y = (x[:, 0] > 0).astype("int64") + 2 * (x[:, 1] > 0).astype("int64")
    y = y % classes
    model = keras.Sequential(
        [keras.Input((8,)), keras.layers.Dense(16, activation="relu"),
         keras.layers.Dense(classes, activation="softmax")]
    )  # fmt: skip
    return model, x, y, (x[:32], y[:32])


CASES = {
    "candidate-focal": lambda v: (kal.losses.CandidateLoss("focal"), []),
    "mix": lambda v: (
        kal.losses.CrossentropyExpectationMix(),
        [kal.callbacks.FocusSchedule("0-0.5")],
    ),
    "stochastic": lambda v: (kal.StochasticLoss(["crossentropy", "mse", "hinge"], seed=0), []),
    "uniloss_accuracy": lambda v: (kal.losses.UniLossAccuracy(seed=0), []),
    "uniloss_ap": lambda v: (kal.losses.UniLossAveragePrecision(seed=0), []),
    "uniloss-fbeta": lambda v: (kal.losses.UniLossFBeta(seed=0), []),
    "class-correlation-ala": lambda v: (
        kal.losses.ClassCorrelationLoss(4),
        [kal.callbacks.AdaptiveLossAlignment(v, period=2, evaluations_per_period=2, seed=0)],
    ),
    "distance-mixture": lambda v: (kal.losses.DistanceMixtureLoss(), []),
    "focal-weighting": lambda v: (kal.losses.FocalWeightingLoss(), []),
}
BINARY = {"uniloss_ap", "uniloss-fbeta"}


@pytest.mark.slow
@pytest.mark.parametrize("case", list(CASES))
def test_loss_trains_under_mixed_float16(case, mixed_precision):
    classes = 2 if case in BINARY else 4
    model, x, y, validation = _classification(None, classes=classes)
    assert model.layers[-1].compute_dtype == "float16"  # the model really runs in float16
    loss, callbacks = CASES[case](validation)
    value = loss(y[:8], model(x[:8]))
    assert keras.backend.standardize_dtype(value.dtype) == "float32"
    model.compile(optimizer="adam", loss=loss)
    before = [w.numpy().copy() for w in model.trainable_weights]
    history = model.fit(x, y, epochs=2, batch_size=16, verbose=0, callbacks=callbacks)
    assert np.isfinite(history.history["loss"]).all()
    after = model.trainable_weights
    assert all(np.isfinite(w.numpy()).all() for w in after)
    assert any(not np.allclose(b, a.numpy()) for b, a in zip(before, after, strict=True))


@pytest.mark.slow
def test_pckh_under_mixed_float16(mixed_precision):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(16, 8, 8, 1)).astype("float32")
    y = pckh_targets(rng.uniform(1, 6, size=(16, 2, 2)), np.ones((16, 2)), np.full(16, 4.0))
    model = keras.Sequential([keras.Input((8, 8, 1)), keras.layers.Conv2D(2, 3, padding="same")])
    loss = kal.losses.UniLossPCKh(seed=0)
    assert keras.backend.standardize_dtype(loss(y, model(x)).dtype) == "float32"
    model.compile(optimizer="adam", loss=loss)
    assert np.isfinite(model.fit(x, y, epochs=1, verbose=0).history["loss"]).all()
