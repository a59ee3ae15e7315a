"""`benchmarks/device_check.sh`, the GPU check, runs end to end (its CPU smoke mode)."""

import json
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_device_check_script_runs_every_part(tmp_path):
    result = subprocess.run(
        ["bash", str(ROOT / "benchmarks" / "device_check.sh"), "--quick", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    assert "GPUs:" in (tmp_path / "devices.txt").read_text()
    assert "StochasticLoss (K=3" in (tmp_path / "overhead.txt").read_text()
    for task, count in (("mirrored_digits", 3), ("mirrored_binary", 2)):
        runs = json.loads((tmp_path / task / "results.json").read_text())["runs"]
        assert len(runs) == count
