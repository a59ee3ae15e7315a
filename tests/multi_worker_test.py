"""Multi-worker training: two worker processes on 127.0.0.1 end identical, for every loss."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import keras_adaptive_loss as kal

ROOT = Path(__file__).resolve().parents[1]
TIMEOUT = 300  # seconds for both workers together


def _free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))  # loopback only
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


@pytest.mark.slow
def test_two_workers_end_with_identical_weights_and_parameters(tmp_path):
    ports = ",".join(str(port) for port in _free_ports(2))
    workers = [
        subprocess.Popen(
            [sys.executable, "-m", "tests.multi_worker_worker", str(i), ports, str(tmp_path)],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for i in range(2)
    ]
    try:
        outputs = [worker.communicate(timeout=TIMEOUT)[0] for worker in workers]
    finally:
        for worker in workers:
            worker.kill()
    for worker, output in zip(workers, outputs, strict=True):
        assert worker.returncode == 0, output[-3000:]
    first = np.load(tmp_path / "worker0.npz")
    second = np.load(tmp_path / "worker1.npz")
    assert sorted(first.files) == sorted(second.files)
    for key in first.files:
        np.testing.assert_array_equal(first[key], second[key], err_msg=key)
    for name in ("mix", "stochastic", "uniloss_accuracy", "uniloss_ap", "ala"):
        assert np.isfinite(first[f"{name}/loss"]).all()
    assert first["mix/alpha"] == 0.0  # the last focus phase, F = 0.5
    assert not np.allclose(first["ala/phi"], np.eye(4))  # decisions were made (and broadcast)


def test_broadcast_without_workers_returns_the_value():
    value = np.array([1, 2, 0])
    np.testing.assert_array_equal(kal.distribute.broadcast_from_chief(value), value)
    assert not kal.distribute.is_multi_worker()


def test_multi_worker_strategy_reduce_maps_nested_values_and_scalar_axes():
    # One local worker: the subclass's reduce must still accept what Keras passes.
    strategy = kal.distribute.multi_worker_strategy()
    result = strategy.reduce("MEAN", (np.float32(2.0), {"a": np.ones(3, "float32")}), axis=None)
    assert float(result[0]) == 2.0 and result[1]["a"].shape == (3,)
    assert float(strategy.reduce("SUM", np.float32(3.0), axis=0)) == 3.0
