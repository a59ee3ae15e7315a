"""Writes ``tests/data/saved/``: one small trained model per public loss, saved with ``.keras``.

Run from the repository root (``python tests/data/saved/make_saved_models.py``). The files in
the repository were written by the package as of 2026-12-07 (version 0.1.0 before its first
release); `tests/saved_models_test.py` checks that they still load, hold the adapted
parameters and evaluate to the values recorded next to them in ``expected.npz``.
Only public names are used here, so the script runs against any later layout.
``--only NAME`` adds one loss's model to the archive and its values to ``expected.npz``,
leaving the other files as they are (``GeneralizedCrossentropy``'s, 2026-12-08).
"""

from __future__ import annotations

import os
import sys
import tempfile
import zipfile
from pathlib import Path

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
import keras
import numpy as np

import keras_adaptive_loss as kal

HERE = Path(__file__).parent
rng = np.random.default_rng(0)
X = rng.normal(size=(48, 4)).astype("float32")
Y = ((X[:, 0] > 0).astype("int64") + (X[:, 1] > 0)).astype("int64")  # 3 classes
Y_BINARY = (X[:, 0] + 0.5 * X[:, 2] > 0).astype("float32")
COUNTS = np.bincount(Y, minlength=3).tolist()


def classifier(outputs=3, activation="softmax"):
    keras.utils.set_random_seed(0)
    return keras.Sequential([keras.Input((4,)), keras.layers.Dense(outputs, activation=activation)])


def cases():
    """name -> (model, loss, y, callbacks)."""
    val = (X[32:], Y[32:])
    simple = {
        "ActivePassiveLoss": kal.ActivePassiveLoss(),
        "AnyLoss": kal.AnyLoss(),
        "CandidateLoss": kal.CandidateLoss("poly1"),
        "ClassBalancedLoss": kal.ClassBalancedLoss(COUNTS),
        "GeneralizedCrossentropy": kal.GeneralizedCrossentropy(q=0.5),
        "NormalizedCrossentropy": kal.NormalizedCrossentropy(),
        "NormalizedFocalLoss": kal.NormalizedFocalLoss(),
        "PolyLoss": kal.PolyLoss(epsilon=-1.0),
        "ReverseCrossentropy": kal.ReverseCrossentropy(),
        "UncertaintyWeightedLoss": kal.UncertaintyWeightedLoss("crossentropy"),
        "UniLossAccuracy": kal.UniLossAccuracy(seed=0),
    }
    for name, loss in simple.items():
        yield name, classifier(), loss, Y, []
    yield "Squentropy", classifier(activation=None), kal.Squentropy(), Y, []
    yield "SparsemaxLoss", classifier(activation=None), kal.SparsemaxLoss(), Y, []
    yield "MultiSimilarityLoss", classifier(activation=None), kal.MultiSimilarityLoss(), Y, []
    for name, loss in (
        ("EnsLoss", kal.EnsLoss(seed=0)),
        ("UniLossAveragePrecision", kal.UniLossAveragePrecision(seed=0)),
        ("UniLossFBeta", kal.UniLossFBeta(seed=0)),
    ):
        yield name, classifier(1, "sigmoid"), loss, Y_BINARY, []
    keras.utils.set_random_seed(0)
    heatmaps = keras.Sequential(
        [keras.Input((4,)), keras.layers.Dense(3 * 3 * 2), keras.layers.Reshape((3, 3, 2))]
    )
    joints = np.stack([(X[:, :2] > 0) * 2, (X[:, 2:] > 0) * 2], axis=1)  # [48, 2 joints, 2]
    y_pckh = kal.uniloss.refactorings.pckh_targets(joints, np.ones((48, 2)), np.full(48, 2.0))
    yield "UniLossPCKh", heatmaps, kal.UniLossPCKh(seed=0), y_pckh, []
    yield (
        "CrossentropyExpectationMix", classifier(), kal.CrossentropyExpectationMix(), Y,
        [kal.callbacks.FocusSchedule([0.0, 0.4])],
    )  # fmt: skip
    yield (
        "LDAMLoss", classifier(), kal.LDAMLoss(COUNTS), Y,
        [kal.callbacks.DeferredReweighting(start_epoch=1)],
    )  # fmt: skip
    yield (
        "StochasticLoss", classifier(),
        kal.StochasticLoss(["crossentropy", "mse", "hinge"], seed=0), Y,
        [kal.callbacks.ValidationSelection(val, period=2, batch_size=8),
         kal.callbacks.TemperatureSchedule(lambda epoch: 1.0 / (1 + epoch))],
    )  # fmt: skip
    for name, loss in (
        ("ClassCorrelationLoss", kal.ClassCorrelationLoss(num_classes=3)),
        ("DistanceMixtureLoss", kal.DistanceMixtureLoss()),
        ("FocalWeightingLoss", kal.FocalWeightingLoss()),
    ):
        ala = kal.callbacks.AdaptiveLossAlignment(validation_data=val, period=2, seed=0)
        yield name, classifier(), loss, Y, [ala]


def main() -> None:
    if len(sys.argv) == 3 and sys.argv[1] == "--only":
        add_one(sys.argv[2])
        return
    expected = {}
    with tempfile.TemporaryDirectory() as folder:
        save_all(folder, expected)
        # One deflated archive: the files are stored uncompressed, and ALA's replay memory
        # (zeros mostly) would make them megabytes.
        with zipfile.ZipFile(HERE / "models.zip", "w", zipfile.ZIP_DEFLATED, compresslevel=9) as z:
            for path in sorted(Path(folder).glob("*.keras")):
                z.write(path, path.name)
    np.savez_compressed(HERE / "expected.npz", x=X, **expected)


def add_one(wanted):
    """Adds the model of the loss named ``wanted`` to the existing files."""
    expected = dict(np.load(HERE / "expected.npz"))
    with tempfile.TemporaryDirectory() as folder:
        save_all(folder, expected, only=wanted)
        with zipfile.ZipFile(HERE / "models.zip", "a", zipfile.ZIP_DEFLATED, compresslevel=9) as z:
            if f"{wanted}.keras" in z.namelist():
                raise SystemExit(f"{wanted}.keras is already in models.zip.")
            z.write(Path(folder) / f"{wanted}.keras", f"{wanted}.keras")
    np.savez_compressed(HERE / "expected.npz", **expected)


def save_all(folder, expected, only=None):
    for name, model, loss, y, callbacks in cases():
        if only is not None and name != only:
            continue
        model.compile(optimizer="adam", loss=loss)
        model.fit(X[:32], y[:32], batch_size=8, epochs=3, verbose=0, callbacks=callbacks)
        path = Path(folder) / f"{name}.keras"
        model.save(path)
        expected[f"{name}/y"] = y
        expected[f"{name}/predictions"] = model.predict(X, verbose=0)
        for key, value in adapted_values(model.loss).items():
            expected[f"{name}/{key}"] = value
        first = model.evaluate(X, y, batch_size=48, verbose=0)
        again = model.evaluate(X, y, batch_size=48, verbose=0)
        expected[f"{name}/evaluate"] = np.array([first, again])
        print(f"{name}: {path.stat().st_size} bytes, evaluate {first:.6f} / {again:.6f}")


def adapted_values(loss):
    """What a loss adapts, by its public accessors: ``parameters`` (every `AdaptiveLoss`) and,
    for the stochastic loss, the decision logits of a uniform prediction."""
    values = {}
    for key, value in (getattr(loss, "parameters", None) or {}).items():
        values[f"parameter_{key}"] = np.asarray(value, "float64")
    if hasattr(loss, "decision_logits"):
        uniform = np.full((2, 3), 1.0 / 3.0, "float32")
        logits = loss.decision_logits(uniform)
        values["decision_logits"] = np.asarray(keras.ops.convert_to_numpy(logits))
    return values


if __name__ == "__main__":
    sys.exit(main())
