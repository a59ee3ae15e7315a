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
    results = benchmark.main(tasks=("sibling",), seeds=2, children=3, epochs=1)
    assert len(results["sibling"]) == 2 and set(benchmark.ARMS) <= set(results["sibling"][0])
    # The identity arm is cross-entropy: same weights, data order and loss, so the same model.
    assert [r["fixed Φ = I"] for r in results["sibling"]] == pytest.approx(
        [r["crossentropy"] for r in results["sibling"]], abs=2e-3
    )
    assert "| ALA, population |" in capsys.readouterr().out


def test_tfds_example_on_a_locally_built_dataset(tmp_path, capsys):
    from tests import tiny_tfds

    name = tiny_tfds.prepare(str(tmp_path))
    example = _load("examples/tfds_training.py")
    result = example.main(
        epochs=2, dataset=name, data_dir=str(tmp_path), batch_size=16, try_gcs=False
    )
    assert 0.0 <= result["test_accuracy"] <= 1.0
    # "0-0.5" over 2 epochs: each epoch runs the last of the phases that start in it.
    assert result["focus"] == pytest.approx([0.2, 0.5])
    assert f"{name}: test accuracy" in capsys.readouterr().out


def test_mirrored_strategy_example(mirrored_strategy, capsys):
    example = _load("examples/mirrored_strategy.py")
    result = example.main(epochs=2, strategy=mirrored_strategy)
    assert result["test_accuracy"] > 0.5
    assert sum(result["selection_weights"].values()) == pytest.approx(1.0, abs=1e-5)
    assert "replicas in sync: 2" in capsys.readouterr().out


def test_metric_learning_example_adapts_phi():
    example = _load("examples/metric_learning_ala.py")
    results = example.main(epochs=2, period=5)
    assert results["fixed"]["phi"][0] == results["fixed"]["phi"][-1] == [1.0, 1.0]
    assert results["ala"]["phi"][-1] != [1.0, 1.0]  # the controller moved Φ
    for variant in ("fixed", "ala"):
        assert 0.0 <= results[variant]["test_nn_error"] < 0.5  # far better than chance (0.9)


def test_uniloss_pckh_example(capsys):
    example = _load("examples/uniloss_pckh.py")
    results = example.main(epochs=2, train_size=256)
    assert set(results) == {"uniloss-pckh", "mse-heatmap"}
    assert all(0.0 <= value <= 1.0 for value in results.values())
    assert "test PCKh@0.5" in capsys.readouterr().out


def test_uniloss_pckh_example_reference_pckh():
    example = _load("examples/uniloss_pckh.py")
    _, labels, targets = example.make_data(8, seed=0)
    assert example.pckh(targets, labels) == 1.0  # the Gaussian targets peak at the keypoints
    assert example.pckh(-targets, labels) == 0.0


def test_ce_el_uci_benchmark_runs(capsys):
    benchmark = _load("benchmarks/ce_el_uci.py")
    results = benchmark.main(
        datasets=["iris"], models=["linear"], seeds=1, epochs=2, learning_rates=[0.01]
    )
    assert set(results[("linear", "iris")]) == set(benchmark.METHODS)
    printed = capsys.readouterr().out
    assert "mean rank" in printed and "CE+EL F=0-0.5" in printed


def test_ce_el_uci_summary_counts_wins_gains_and_ranks():
    benchmark = _load("benchmarks/ce_el_uci.py")
    table = dict.fromkeys(benchmark.METHODS, 0.5)
    table["CE+EL F=0-0.5"] = 0.7  # best: rank 1, +20 points
    table["EL"] = 0.1  # worst: rank 6
    summary = benchmark.summary({("linear", "a"): table})
    row = next(line for line in summary.splitlines() if "CE+EL F=0-0.5" in line).split()
    assert row[-3:] == ["1", "20.00", "1.00"]
    ce = next(line for line in summary.splitlines() if line.split()[1] == "CE").split()
    assert ce[-3:] == ["0", "0.00", "3.50"]  # four-way tie for ranks 2-5


def test_uniloss_ap_benchmark_runs():
    benchmark = _load("benchmarks/uniloss_ap_mnist1d.py")
    result = benchmark.main(seeds=1, epochs=1, variants=("crossentropy", "paper"), verbose=0)
    assert result.config["dataset"] == "mnist1d-0-vs-rest"
    assert result.config["optimizer"] == "sgd_momentum_half" and result.config["batch_size"] == 16
    assert {row["loss"] for row in result.summary()} == {"crossentropy", "paper"}
    assert all("average_precision" in run.test_metrics for run in result.runs)
    assert result.paired()[0]["loss"] == "paper"
