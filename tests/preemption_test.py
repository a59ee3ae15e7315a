"""Preemption: a training process SIGKILLed at a random point and restarted with
`keras.callbacks.BackupAndRestore` ends exactly where an uninterrupted run ends, for every
adaptive loss (schedule position and alpha/beta, SLF decision network + its Adam state + running
means + noise counter, UniLoss random stream, ALA policy + optimizer + baseline + replay memory
+ statistics history + random generators + Φ).

Tolerance: weights and parameters agree to 1e-6 (relative and absolute); in practice the runs
are bit-identical on CPU, since the data order is fixed (``shuffle=False``) and every random
stream is seeded and checkpointed.
"""

from __future__ import annotations

import json
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import h5py
import numpy as np
import pytest

from tests import preemption_worker

ROOT = Path(__file__).resolve().parents[1]
TIMEOUT = 420  # seconds for the whole test; every wait below is bounded by it


def _start(output: Path, slow: bool) -> subprocess.Popen:
    arguments = [sys.executable, "-m", "tests.preemption_worker", str(output)]
    return subprocess.Popen(
        [*arguments, *(["--slow"] if slow else [])],
        cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip


def _backup_epoch(output: Path, name: str) -> int:
    metadata = output / f"backup_{name}" / "training_metadata.json"
    try:
        return int(json.loads(metadata.read_text())["epoch"])
    except (OSError, ValueError, KeyError):
        return 0


def _h5_arrays(path: Path) -> dict[str, np.ndarray]:
    arrays = {}
    with h5py.File(path, "r") as file:
        file.visititems(
            lambda key, item: (
                arrays.__setitem__(key, item[()]) if isinstance(item, h5py.Dataset) else None
            )
        )
    return arrays


@pytest.mark.slow
def test_sigkill_and_restart_ends_like_an_uninterrupted_run(tmp_path):
    deadline = time.monotonic() + TIMEOUT
    reference, resumed = tmp_path / "reference", tmp_path / "resumed"
    process = _start(reference, slow=False)
    _, errors = process.communicate(timeout=TIMEOUT / 3)
    assert process.returncode == 0, errors

    rng = random.Random()  # a different kill point every run; printed on failure
    killed: dict[str, int] = {}
    while not all((resumed / f"{name}.json").exists() for name in preemption_worker.NAMES):
        assert time.monotonic() < deadline, f"timed out; killed so far: {killed}"
        process = _start(resumed, slow=True)
        while process.poll() is None and time.monotonic() < deadline:
            current = (resumed / "current").read_text() if (resumed / "current").exists() else ""
            if current and current not in killed and _backup_epoch(resumed, current) >= 1:
                time.sleep(rng.uniform(0.0, 0.5))  # somewhere inside a later epoch
                epoch = _backup_epoch(resumed, current)
                process.send_signal(signal.SIGKILL)
                process.wait(timeout=30)
                process.stderr.close()
                killed[current] = epoch
                break
            time.sleep(0.02)
        else:
            _, errors = process.communicate(timeout=30)
            assert process.returncode == 0, errors

    assert set(killed) == set(preemption_worker.NAMES), killed
    assert all(epoch < preemption_worker.EPOCHS for epoch in killed.values()), killed
    for name in preemption_worker.NAMES:
        expected = _h5_arrays(reference / f"{name}.weights.h5")
        actual = _h5_arrays(resumed / f"{name}.weights.h5")
        assert expected.keys() == actual.keys()
        for key in expected:
            np.testing.assert_allclose(
                actual[key], expected[key], rtol=1e-6, atol=1e-6, err_msg=f"{name}: {key} {killed}"
            )
        expected_state = json.loads((reference / f"{name}.json").read_text())
        actual_state = json.loads((resumed / f"{name}.json").read_text())
        assert actual_state.keys() == expected_state.keys()
        for key, value in expected_state.items():
            if isinstance(value, str):
                assert actual_state[key] == value, (name, key, killed)
            else:
                np.testing.assert_allclose(actual_state[key], value, rtol=1e-6, atol=1e-6)
    # The adaptive state really moved during training (a test that cannot pass trivially).
    mix = json.loads((reference / "mix.json").read_text())
    assert mix["alpha"] == 0.0 and mix["beta"] == 1.0  # F = 0.5 in the last phase
    ala = json.loads((reference / "ala.json").read_text())
    assert ala["ala_decisions"] > 10 and not np.allclose(ala["phi"], np.eye(4))
    assert json.loads((reference / "uniloss.json").read_text())["draws"] == 8 * 16
