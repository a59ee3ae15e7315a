"""The main job (examples/quickstart.py) and the benchmarks run end to end with tiny settings."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _load(relative_path: str):
    path = ROOT / relative_path
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_quickstart_prints_a_table_for_every_protocol(capsys):
    quickstart = _load("examples/quickstart.py")
    results = quickstart.main(epochs=2, seeds=[0])
    assert list(results) == ["crossentropy", "CE+EL F=0", "CE+EL F=0,0.5", "CE+EL F=0-0.5"]
    for accuracies in results.values():
        assert len(accuracies) == 1 and 0.5 < accuracies[0] <= 1.0  # 2 epochs already learn
    table = capsys.readouterr().out
    for name in results:
        assert f"{name} " in table
    assert "test accuracy % (mean ± std)" in table


def test_format_table_uses_sample_std():
    quickstart = _load("examples/quickstart.py")
    table = quickstart.format_table({"ce": [0.90, 0.92, 0.94]})
    assert "92.00 ± 2.00  (n=3)" in table


def test_overhead_benchmark_runs(capsys):
    overhead = _load("benchmarks/overhead.py")
    ratios = overhead.main(rounds=1, steps=6, jit_modes=(False,))
    assert ratios[False][overhead.BASELINE] == pytest.approx(1.0)
    assert set(ratios[False]) == set(overhead.LOSSES)
    assert "CrossentropyExpectationMix" in capsys.readouterr().out


def test_uniloss_scaling_benchmark_runs(capsys):
    scaling = _load("benchmarks/uniloss_scaling.py")
    rows = scaling.main(sizes=[(20, 3)])
    assert rows[0]["binaries"] == 40 and rows[0]["ms_per_step"] > 0
    assert "binaries" in capsys.readouterr().out


def test_ala_effectiveness_benchmark_runs(capsys):
    benchmark = _load("benchmarks/ala_effectiveness.py")
    results = benchmark.main(seeds=1, epochs=1, period=20)
    assert set(results) == set(benchmark.VARIANTS)
    assert results["ALA, Eq. 6"][0]["decisions"] == 3  # 3500 / 64 -> 55 steps: 0, 20, 40
    assert "per decision" in capsys.readouterr().out
