"""Safe loading: every loss round-trips through load_model(safe_mode=True); tampered files fail
with a clear error and run no code."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import keras
import numpy as np
import pytest

import keras_adaptive_loss as kal
from keras_adaptive_loss.uniloss.refactorings import pckh_targets


def _classifier(classes=4, inputs=8):
    return keras.Sequential(
        [keras.Input((inputs,)), keras.layers.Dense(classes, activation="softmax")]
    )


def _embedding():
    return keras.Sequential([keras.Input((8,)), keras.layers.Dense(3)])


def _heatmaps():
    return keras.Sequential([keras.Input((8, 8, 1)), keras.layers.Conv2D(2, 3, padding="same")])


def _data(kind):
    rng = np.random.default_rng(0)
    if kind == "heatmaps":
        x = rng.normal(size=(16, 8, 8, 1)).astype("float32")
        return x, pckh_targets(rng.uniform(1, 6, (16, 2, 2)), np.ones((16, 2)), np.full(16, 4.0))
    x = rng.normal(size=(64, 8)).astype("float32")
    y = (x[:, 0] > 0).astype("int64") + 2 * (x[:, 1] > 0).astype("int64")
    return x, (y % 2 if kind == "binary" else y)


# name -> (loss factory, model factory, data kind)
LOSSES = {
    "CandidateLoss": (lambda: kal.losses.CandidateLoss("poly1"), _classifier, "multiclass"),
    "CrossentropyExpectationMix": (
        lambda: kal.losses.CrossentropyExpectationMix(alpha=0.5, beta=2.0), _classifier,
        "multiclass",
    ),
    "StochasticLoss": (
        lambda: kal.StochasticLoss(["crossentropy", "mse"], seed=0), _classifier, "multiclass",
    ),
    "UniLossAccuracy": (lambda: kal.losses.UniLossAccuracy(seed=0), _classifier, "multiclass"),
    "UniLossAveragePrecision": (
        lambda: kal.losses.UniLossAveragePrecision(seed=0), lambda: _classifier(2), "binary",
    ),
    "UniLossFBeta": (lambda: kal.losses.UniLossFBeta(seed=0), lambda: _classifier(2), "binary"),
    "UniLossPCKh": (lambda: kal.losses.UniLossPCKh(seed=0), _heatmaps, "heatmaps"),
    "ClassCorrelationLoss": (lambda: kal.losses.ClassCorrelationLoss(4), _classifier, "multiclass"),
    "DistanceMixtureLoss": (lambda: kal.losses.DistanceMixtureLoss(), _embedding, "multiclass"),
    "FocalWeightingLoss": (lambda: kal.losses.FocalWeightingLoss(), _embedding, "multiclass"),
}  # fmt: skip


def _saved(tmp_path, name) -> tuple[Path, keras.Model]:
    make_loss, make_model, kind = LOSSES[name]
    x, y = _data(kind)
    keras.utils.set_random_seed(0)
    model = make_model()
    model.compile(optimizer="adam", loss=make_loss())
    model.fit(x, y, epochs=1, batch_size=16, verbose=0)
    path = tmp_path / f"{name}.keras"
    model.save(path)
    return path, model


@pytest.mark.slow
@pytest.mark.parametrize("name", list(LOSSES))
def test_round_trip_with_safe_mode(tmp_path, name):
    path, model = _saved(tmp_path, name)
    with zipfile.ZipFile(path) as archive:
        config_text = archive.read("config.json").decode()
    for marker in ("__lambda__", "lambda", "function_type", "__pickle__", "bytecode"):
        assert marker not in config_text, marker
    loaded = keras.models.load_model(path, safe_mode=True)
    assert type(loaded.loss) is type(model.loss)
    assert loaded.loss.get_config() == model.loss.get_config()
    x, _ = _data(LOSSES[name][2])
    np.testing.assert_allclose(loaded.predict(x, verbose=0), model.predict(x, verbose=0))


def _tamper(path: Path, edit) -> Path:
    """Rewrites config.json inside a .keras archive with ``edit(config)``."""
    with zipfile.ZipFile(path) as archive:
        members = {name: archive.read(name) for name in archive.namelist()}
    config = json.loads(members["config.json"])
    edit(config["compile_config"]["loss"])
    members["config.json"] = json.dumps(config).encode()
    tampered = path.with_name("tampered.keras")
    with zipfile.ZipFile(tampered, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return tampered


def test_unknown_loss_class_is_a_clear_error(tmp_path):
    path, _ = _saved(tmp_path, "CrossentropyExpectationMix")

    def rename(loss):
        loss["class_name"] = "NoSuchLoss"
        loss["registered_name"] = "keras_adaptive_loss>NoSuchLoss"

    with pytest.raises((TypeError, ValueError), match="NoSuchLoss"):
        keras.models.load_model(_tamper(path, rename), safe_mode=True)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("name", "key", "value", "message"),
    [
        ("CrossentropyExpectationMix", "alpha", "abc", "alpha"),
        ("CrossentropyExpectationMix", "beta", -1.0, "beta"),
        ("StochasticLoss", "num_samples", "three", "num_samples"),
        ("StochasticLoss", "candidates", ["crossentropy", "no_such_loss"], "no_such_loss"),
        ("ClassCorrelationLoss", "phi", [[1.0, 0.0]], "phi"),
        ("UniLossAccuracy", "num_anchors", -4, "num_anchors"),
    ],
)
def test_wrong_types_and_values_are_clear_errors(tmp_path, name, key, value, message):
    path, _ = _saved(tmp_path, name)

    def edit(loss):
        loss["config"][key] = value

    with pytest.raises((TypeError, ValueError), match=message):
        keras.models.load_model(_tamper(path, edit), safe_mode=True)


def test_a_lambda_smuggled_into_a_config_is_refused_without_running(tmp_path):
    path, _ = _saved(tmp_path, "StochasticLoss")
    witness = tmp_path / "code-ran"
    code = f"lambda *a: open({str(witness)!r}, 'w')"

    def smuggle(loss):
        loss["config"]["decision_network"] = {
            "module": "keras.layers", "class_name": "Lambda", "registered_name": None,
            "config": {
                "name": "evil", "function": {"class_name": "__lambda__", "config": {
                    "code": code, "defaults": None, "closure": None}},
                "function_type": "lambda", "output_shape": None, "arguments": {},
            },
        }  # fmt: skip

    with pytest.raises(ValueError, match=r"(?i)unsafe|lambda|safe_mode"):
        keras.models.load_model(_tamper(path, smuggle), safe_mode=True)
    assert not witness.exists()


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"feature_size": "7"}, "feature_size"),
        ({"feature_size": 7, "hidden_units": "abc"}, "hidden_units"),
        ({"feature_size": 7, "exec": "print(1)"}, "exec"),
        (["not", "a", "dict"], "not a saved ALA policy"),
    ],
)
def test_tampered_policy_files_are_clear_errors(tmp_path, config, message):
    kal.ala.controllers.Policy(feature_size=7, seed=0).save(tmp_path)
    (tmp_path / "policy.json").write_text(json.dumps(config))
    with pytest.raises(ValueError, match=message):
        kal.ala.controllers.Policy.load(tmp_path)
