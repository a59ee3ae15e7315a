""".keras save / load_model keeps the adapted alpha and beta; training continues after loading."""

from __future__ import annotations

import keras
import numpy as np
import pytest

import keras_adaptive_loss as kal
from tests import reference

NUM_CLASSES = 4


def test_save_and_load_restore_the_adapted_parameters(tmp_path, toy_classification):
    x, y = toy_classification
    model = keras.Sequential(
        [keras.Input((8,)), keras.layers.Dense(NUM_CLASSES, activation="softmax")]
    )
    model.compile(optimizer="adam", loss=kal.losses.CrossentropyExpectationMix())
    model.fit(x, y, epochs=5, verbose=0, callbacks=[kal.callbacks.FocusSchedule([0.0, 0.4])])
    assert model.loss.parameters == {"alpha": 1.0, "beta": pytest.approx(5.0)}
    before = model.evaluate(x, y, verbose=0)

    path = tmp_path / "model.keras"
    model.save(path)
    loaded = keras.models.load_model(path)  # safe_mode=True by default

    assert isinstance(loaded.loss, kal.losses.CrossentropyExpectationMix)
    assert loaded.loss.parameters == {"alpha": 1.0, "beta": pytest.approx(5.0)}
    after = loaded.evaluate(x, y, verbose=0)
    probs = loaded.predict(x, verbose=0).astype("float64")
    onehot = reference.one_hot(y, NUM_CLASSES)
    assert after == pytest.approx(before, rel=1e-6)
    assert after == pytest.approx(reference.mix(onehot, probs, 1.0, 5.0).mean(), rel=1e-5)
    assert after != pytest.approx(reference.mix(onehot, probs, 1.0, 1.0).mean(), rel=1e-3)

    history = loaded.fit(
        x, y, epochs=2, verbose=0, callbacks=[kal.callbacks.FocusSchedule([0.0, 0.5])]
    )
    assert history.history["beta"] == [1.0, 1.0] and history.history["alpha"] == [1.0, 0.0]
    assert np.isfinite(history.history["loss"]).all()
