"""Models saved by the package before its layout by method still load, unchanged.

``tests/data/saved/models.zip`` holds one small trained model per public loss, each saved with
``model.save`` after training with the callbacks that adapt it (FocusSchedule,
DeferredReweighting, ValidationSelection with TemperatureSchedule, AdaptiveLossAlignment);
``expected.npz`` holds what they predicted and evaluated to, and their adapted values, when
they were saved (``tests/data/saved/make_saved_models.py`` wrote both).
"""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import keras
import numpy as np
import pytest

import keras_adaptive_loss as kal

SAVED = Path(__file__).parent / "data" / "saved"
sys.path.insert(0, str(SAVED))
from make_saved_models import adapted_values  # noqa: E402

sys.path.remove(str(SAVED))

EXPECTED = np.load(SAVED / "expected.npz")
with zipfile.ZipFile(SAVED / "models.zip") as _archive:
    NAMES = sorted(Path(name).stem for name in _archive.namelist())


def test_every_public_loss_has_a_saved_model():
    concrete = set(kal.losses.__all__) & set(kal.__all__)
    abstract = {"AdaptiveLoss", "UniLoss"}  # a base class; UniLoss with a custom refactoring
    assert concrete - abstract - set(NAMES) == set()


@pytest.fixture(scope="module")
def unpacked(tmp_path_factory):
    folder = tmp_path_factory.mktemp("saved")
    with zipfile.ZipFile(SAVED / "models.zip") as archive:
        archive.extractall(folder)
    return folder


@pytest.mark.parametrize("name", NAMES)
def test_a_saved_model_loads_with_its_adapted_values_and_evaluates_the_same(unpacked, name):
    model = keras.models.load_model(unpacked / f"{name}.keras")
    assert type(model.loss).__name__ == name
    x = EXPECTED["x"]
    y = EXPECTED[f"{name}/y"]
    np.testing.assert_allclose(
        model.predict(x, verbose=0), EXPECTED[f"{name}/predictions"], rtol=1e-6, atol=1e-7
    )
    for key, value in adapted_values(model.loss).items():
        np.testing.assert_allclose(value, EXPECTED[f"{name}/{key}"], rtol=1e-6, err_msg=key)
    first, again = EXPECTED[f"{name}/evaluate"]
    assert model.evaluate(x, y, batch_size=len(x), verbose=0) == pytest.approx(first, rel=1e-5)
    assert model.evaluate(x, y, batch_size=len(x), verbose=0) == pytest.approx(again, rel=1e-5)


@pytest.mark.parametrize(
    "imports",
    ["import keras_adaptive_loss\nimport keras\n", "import keras\nimport keras_adaptive_loss\n"],
    ids=["package-first", "keras-first"],
)
def test_importing_the_package_is_enough_to_load_its_models(unpacked, imports):
    # The package resolves its names lazily, yet registers its classes with Keras as soon as
    # Keras is imported, in either order: load_model finds them without any name being used.
    code = (
        imports + f"model = keras.models.load_model({str(unpacked / 'StochasticLoss.keras')!r})\n"
        "print(type(model.loss).__name__)\n"
    )
    process = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=300
    )  # fmt: skip
    assert process.returncode == 0, process.stderr[-2000:]
    assert process.stdout.split() == ["StochasticLoss"]


def test_the_stochastic_loss_optimizer_state_is_unpacked_from_the_saved_layout(unpacked):
    """The saved decision network holds both Adam moments in one ``[2, weights]`` array; they
    load into Keras's Adam, whose step count is the saved number of updates."""
    import h5py

    path = unpacked / "StochasticLoss.keras"
    with zipfile.ZipFile(path) as archive, archive.open("model.weights.h5") as file:
        packed = h5py.File(file, "r")["loss/decision_network/vars/0"][()]
    loss = keras.models.load_model(path).loss
    network = loss.decision_network
    store = {}
    network.save_own_variables(store)
    count = len(network.network.trainable_variables)
    for row, kind in enumerate(("momentum", "velocity")):
        moments = np.concatenate([np.ravel(store[f"{kind}_{i}"]) for i in range(count)])
        np.testing.assert_array_equal(moments, packed[row])
    assert np.any(packed != 0.0)
    assert store["iterations"] == loss.state.updates.numpy() > 0
