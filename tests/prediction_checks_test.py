"""Probabilities-vs-logits mismatches warn (traced) or raise (eager) for every loss, instead of
training to garbage in silence; matching inputs stay silent, mixed precision included."""

from __future__ import annotations

import re
import warnings

import keras
import numpy as np
import pytest

import keras_adaptive_loss as kal

L = kal.losses
# name -> factory(from_logits); all take [batch, 3] predictions and sparse labels.
LOSSES = {
    "candidate": lambda logits: L.CandidateLoss("focal", from_logits=logits),
    "mix": lambda logits: L.CrossentropyExpectationMix(from_logits=logits),
    "stochastic": lambda logits: kal.StochasticLoss(["crossentropy", "mse"], from_logits=logits),
    "uniloss": lambda logits: L.UniLossAccuracy(from_logits=logits, seed=0),
    "class-correlation": lambda logits: L.ClassCorrelationLoss(3, from_logits=logits),
    "nce_rce": lambda logits: L.ActivePassiveLoss(from_logits=logits),
    "ldam": lambda logits: L.LDAMLoss([30, 20, 10], from_logits=logits),
    "class_balanced": lambda logits: L.ClassBalancedLoss([30, 20, 10], from_logits=logits),
    "anyloss": lambda logits: L.AnyLoss("f1", from_logits=logits),
}


def _data():
    rng = np.random.default_rng(0)
    return rng.normal(size=(64, 4)).astype("float32"), rng.integers(0, 3, 64)


def _fit(loss, activation):
    x, y = _data()
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, activation=activation)])
    model.compile("sgd", loss)
    model.fit(x, y, epochs=1, batch_size=32, verbose=0)


@pytest.mark.slow
@pytest.mark.parametrize("name", list(LOSSES))
def test_logits_given_to_a_probability_loss_warn_while_tracing(name):
    with pytest.warns(UserWarning, match=r"expects probabilities.*linear layer.*from_logits=True"):
        _fit(LOSSES[name](False), None)


@pytest.mark.slow
@pytest.mark.parametrize("name", list(LOSSES))
def test_softmax_output_given_to_a_logits_loss_warns_while_tracing(name):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        _fit(LOSSES[name](True), "softmax")
    # ours names the loss; the CE+EL mix also passes Keras's own CE warning through
    ours = [
        w
        for w in caught
        if re.search(r"from_logits=True, but .* Softmax activation", str(w.message))
    ]
    assert ours and all(issubclass(w.category, UserWarning) for w in ours), caught


@pytest.mark.slow
@pytest.mark.parametrize("name", list(LOSSES))
@pytest.mark.parametrize("policy", ["float32", "mixed_float16"])
def test_matching_inputs_are_silent(name, policy):
    keras.mixed_precision.set_global_policy(policy)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", UserWarning)
            _fit(LOSSES[name](False), "softmax")
            _fit(LOSSES[name](True), None)
    finally:
        keras.mixed_precision.set_global_policy("float32")


@pytest.mark.parametrize("name", list(LOSSES))
def test_eager_logits_with_from_logits_false_raise(name):
    logits = np.array([[2.0, -1.0, 0.5], [0.1, 0.2, 3.0]], "float32")
    with pytest.raises(ValueError, match=r"expects probabilities.*from -1 to 3.*from_logits=True"):
        LOSSES[name](False)(np.array([0, 2]), logits)


def test_binary_losses_check_too():
    with pytest.raises(ValueError, match="EnsLoss expects probabilities"):
        L.EnsLoss()(np.array([0.0, 1.0]), np.array([-2.0, 3.0]))
    with pytest.raises(ValueError, match="UniLossAveragePrecision expects probabilities"):
        L.UniLossAveragePrecision()(np.array([0.0, 1.0]), np.array([-2.0, 3.0]))
    x, y = _data()
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1, activation="sigmoid")])
    model.compile("sgd", L.EnsLoss(from_logits=True))
    with pytest.warns(UserWarning, match="EnsLoss received from_logits=True.*Sigmoid"):
        model.fit(x, (y > 0).astype("float32"), epochs=1, verbose=0)
