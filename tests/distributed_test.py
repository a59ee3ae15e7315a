"""MirroredStrategy on two logical CPU devices: same loss as one device, assignments everywhere.

``jit_compile=True`` is not tested under the strategy: Keras turns XLA off under tf.distribute
(``jit_compile="auto"``), and forcing it fails even for a plain model on logical CPU devices.
"""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_adaptive_loss as kal
from tests import reference

NUM_CLASSES = 4
GLOBAL_BATCH = 16


def _frozen_model():
    model = keras.Sequential(
        [keras.Input((8,)), keras.layers.Dense(NUM_CLASSES, activation="softmax")]
    )
    return model


def _train(strategy, x, y, weights=None, epochs=6, phases="0-0.5"):
    with strategy.scope():
        model = _frozen_model()
        if weights is not None:
            model.set_weights(weights)
        loss = kal.losses.CrossentropyExpectationMix()
        model.compile(optimizer=keras.optimizers.SGD(learning_rate=0.0), loss=loss)
    history = model.fit(
        x, y, epochs=epochs, batch_size=GLOBAL_BATCH, verbose=0,
        callbacks=[kal.callbacks.FocusSchedule(phases)],
    )  # fmt: skip
    return model, loss, history


@pytest.mark.slow
def test_mirrored_loss_equals_single_device_and_numpy(mirrored_strategy, toy_classification):
    x, y = toy_classification
    assert mirrored_strategy.num_replicas_in_sync == 2
    single_model, _, single = _train(tf.distribute.get_strategy(), x, y)
    _, _, mirrored = _train(mirrored_strategy, x, y, weights=single_model.get_weights())
    np.testing.assert_allclose(mirrored.history["loss"], single.history["loss"], rtol=1e-5)
    probs = single_model.predict(x, verbose=0).astype("float64")
    for epoch, focus in enumerate([0.0, 0.1, 0.2, 0.3, 0.4, 0.5]):
        alpha, beta = kal.losses.focus_to_weights(focus)
        want = reference.mix(reference.one_hot(y, NUM_CLASSES), probs, alpha, beta).mean()
        assert mirrored.history["loss"][epoch] == pytest.approx(want, rel=1e-5)


def test_assignments_reach_every_replica(mirrored_strategy, toy_classification):
    x, y = toy_classification
    _, loss, _ = _train(mirrored_strategy, x, y, epochs=2, phases=[0.0, 0.25])
    for name, want in (("alpha", 1.0), ("beta", 2.0)):
        variable = loss.variable(name)

        def read(variable=variable):
            return tf.identity(variable.value)

        per_replica = mirrored_strategy.experimental_local_results(mirrored_strategy.run(read))
        assert len(per_replica) == 2
        assert [float(v) for v in per_replica] == [want, want]
        devices = {v.device for v in variable.value.values}
        assert len(devices) == 2  # one mirrored copy per logical device


@pytest.mark.slow
def test_loss_built_outside_the_scope_still_trains_correctly(mirrored_strategy, toy_classification):
    x, y = toy_classification
    loss = kal.losses.CrossentropyExpectationMix()  # not mirrored: one copy, read by both replicas
    with mirrored_strategy.scope():
        model = _frozen_model()
        model.compile(optimizer=keras.optimizers.SGD(learning_rate=0.0), loss=loss)
    history = model.fit(
        x, y, epochs=2, batch_size=GLOBAL_BATCH, verbose=0,
        callbacks=[kal.callbacks.FocusSchedule([0.0, 0.5])],
    )  # fmt: skip
    probs = model.predict(x, verbose=0).astype("float64")
    onehot = reference.one_hot(y, NUM_CLASSES)
    assert history.history["loss"][1] == pytest.approx(
        reference.mix(onehot, probs, 0, 1).mean(), rel=1e-5
    )
