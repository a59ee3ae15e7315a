"""The main job (examples/quickstart.py) and the benchmarks run end to end with tiny settings."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pytest

import keras_adaptive_loss as kal

ROOT = Path(__file__).resolve().parents[1]


def _load(relative_path: str):
    """Imports a script as ``python <script>`` would run it: its folder first on the path, so
    that it finds its sibling modules (the benchmarks share ``benchmarks/paired_tasks.py``)."""
    path = ROOT / relative_path
    if str(path.parent) not in sys.path:
        sys.path.insert(0, str(path.parent))
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while it executes
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
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


def test_overhead_paired_ratio_against_hand_computed_rounds():
    overhead = _load("benchmarks/overhead.py")
    reference = [[1.0, 1.0, 9.0], [2.0, 2.0, 2.0], [4.0, 4.0, 1.0]]  # drifts between rounds
    own = [[2.0, 2.0, 2.0], [2.0, 8.0, 8.0], [4.0, 4.0, 4.0]]  # per-round ratios 2, 4, 1
    ratio, low, high = overhead.paired_ratio(own, reference)
    logs = np.log([2.0, 4.0, 1.0])
    half = 4.302652729911275 * logs.std(ddof=1) / np.sqrt(3)  # t(0.975, 2 degrees of freedom)
    assert ratio == pytest.approx(2.0)  # geometric mean of the per-round median ratios
    assert (low, high) == pytest.approx((2.0 * np.exp(-half), 2.0 * np.exp(half)))
    single = overhead.paired_ratio([[3.0]], [[2.0]])
    assert single[0] == pytest.approx(1.5) and np.isnan(single[1]) and np.isnan(single[2])


@pytest.mark.slow
def test_overhead_benchmark_runs(capsys):
    overhead = _load("benchmarks/overhead.py")
    with pytest.warns(UserWarning, match="AdaptiveLossAlignment: this run has 6 training steps"):
        ratios = overhead.main(rounds=1, steps=6, jit_modes=(False,))  # too short for ALA
    for reference in (overhead.POOLED, overhead.BINARY_BASELINE):
        row = ratios[False][reference]
        assert {key: row[key] for key in ("p10", "median", "mean", "paired")} == pytest.approx(
            {"p10": 1.0, "median": 1.0, "mean": 1.0, "paired": 1.0}
        )
    # every loss's untimed warm-up epoch (tracing included) is reported; the pooled row has none
    assert all(
        row["warmup_s"] > 0 for name, row in ratios[False].items() if name != overhead.POOLED
    )
    assert set(ratios[False]) == {*overhead.LOSSES, overhead.POOLED}
    assert "CrossentropyExpectationMix" in capsys.readouterr().out


def test_overhead_pools_whole_runs_against_hand_computed_figures():
    overhead = _load("benchmarks/overhead.py")
    runs = [{"jit off": {"loss": {"p10": 9.0, "paired": ratio}}} for ratio in (1.05, 1.10, 1.20)]
    mean, low, high, per_run = overhead.across_runs(runs)["jit off"]["loss"]
    logs = np.log([1.05, 1.10, 1.20])
    half = 4.302652729911275 * logs.std(ddof=1) / np.sqrt(3)  # t(0.975, 2 degrees of freedom)
    assert mean == pytest.approx(np.exp(logs.mean()))  # the paired ratios', not the p10s'
    assert (low, high) == pytest.approx((mean * np.exp(-half), mean * np.exp(half)))
    assert per_run == [1.05, 1.10, 1.20]


@pytest.mark.slow
def test_overhead_benchmark_repeats_runs_in_fresh_processes(tmp_path):
    output = tmp_path / "pooled.json"
    command = [sys.executable, str(ROOT / "benchmarks" / "overhead.py"), "--runs", "2"]
    options = ["--rounds", "2", "--steps", "6", "--jit", "off", "--only", "focal"]
    printed = subprocess.run(
        [*command, *options, "--json", str(output)], capture_output=True, text=True, check=True
    ).stdout
    assert printed.count("jit_compile=False") == 2  # each run's own table
    assert "paired ratio over 2 runs" in printed
    pooled = json.loads(output.read_text())["jit off"]
    assert set(pooled) == {
        "keras SparseCategoricalCrossentropy",
        "A/A control: keras SparseCategoricalCrossentropy",
        "CandidateLoss('focal')",
        "keras BinaryCrossentropy (binary task)",
        "both cross-entropy rows, pooled",
    }
    mean, low, high = pooled["CandidateLoss('focal')"]
    assert low <= mean <= high and 0.5 < mean < 2.0  # two runs: t(0.975, 1) = 12.7, wide
    assert pooled["both cross-entropy rows, pooled"] == pytest.approx([1.0, 1.0, 1.0])


@pytest.mark.slow
def test_uniloss_scaling_benchmark_runs(capsys):
    scaling = _load("benchmarks/uniloss_scaling.py")
    rows = scaling.main(sizes=[(20, 3)])
    assert rows[0]["binaries"] == 40 and rows[0]["ms_per_step"] > 0
    assert "binaries" in capsys.readouterr().out


@pytest.mark.slow
def test_ala_effectiveness_benchmark_runs(capsys):
    benchmark = _load("benchmarks/ala_effectiveness.py")
    results = benchmark.main(tasks=("sibling",), seeds=2, children=3, epochs=1)
    assert len(results["sibling"]) == 2 and set(benchmark.ARMS) <= set(results["sibling"][0])
    # The identity arm is cross-entropy: same weights, data order and loss, so the same model.
    assert [r["fixed Φ = I"] for r in results["sibling"]] == pytest.approx(
        [r["crossentropy"] for r in results["sibling"]], abs=2e-3
    )
    assert "| ALA, population |" in capsys.readouterr().out


@pytest.mark.slow
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


@pytest.mark.slow
@pytest.mark.slow
def test_mirrored_strategy_example_splits_the_cpu_in_a_fresh_process():
    process = subprocess.run(
        [sys.executable, "examples/mirrored_strategy.py", "--epochs", "1"],
        capture_output=True, text=True, timeout=300, cwd=ROOT,
    )  # fmt: skip
    assert process.returncode == 0, process.stderr[-2000:]
    assert "replicas in sync: 2" in process.stdout


def test_mirrored_strategy_example(mirrored_strategy, capsys):
    example = _load("examples/mirrored_strategy.py")
    result = example.main(epochs=2, strategy=mirrored_strategy)
    assert result["test_accuracy"] > 0.5
    assert sum(result["selection_weights"].values()) == pytest.approx(1.0, abs=1e-5)
    assert "replicas in sync: 2" in capsys.readouterr().out


@pytest.mark.slow
def test_metric_learning_example_adapts_phi():
    example = _load("examples/metric_learning_ala.py")
    results = example.main(epochs=2, period=5)
    assert results["fixed"]["phi"][0] == results["fixed"]["phi"][-1] == [1.0, 1.0]
    assert results["ala"]["phi"][-1] != [1.0, 1.0]  # the controller moved Φ
    for variant in ("fixed", "ala"):
        assert 0.0 <= results[variant]["test_nn_error"] < 0.5  # far better than chance (0.9)


@pytest.mark.slow
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


@pytest.mark.slow
def test_ce_el_uci_benchmark_runs(capsys):
    benchmark = _load("benchmarks/ce_el_uci.py")
    results = benchmark.main(
        tasks=["iris", benchmark.SYNTHETIC[2][0]], models=["linear"], seeds=2, epochs=2,
        learning_rates=[0.01, 0.001],
    )  # fmt: skip
    assert set(results[("linear", "iris")]) == set(benchmark.METHODS)
    assert all(len(values) == 2 for values in results[("linear", "iris")].values())
    printed = capsys.readouterr().out
    assert "mean rank" in printed and "CE+EL F=0-0.5" in printed and "95% CI" in printed
    assert len(benchmark.SYNTHETIC) >= 15 and sum(noise > 0 for _, noise in benchmark.SYNTHETIC)


@pytest.mark.slow
def test_ce_el_batched_trainer_equals_keras_fit_with_the_library_loss():
    """One batched configuration ends where model.fit with CrossentropyExpectationMix,
    FocusSchedule and Keras's SGD(momentum 0.9) ends (same weights, same batch order)."""
    benchmark = _load("benchmarks/ce_el_uci.py")
    data = kal.datasets.load("iris")
    x, y = data.x_train[:60], data.y_train[:60]
    epochs, rate = 3, 0.01
    initial = benchmark.initial_weights("hidden", 4, 3, seed=0)
    order = [np.arange(len(x))] * epochs  # fit(shuffle=False)
    methods = ["CE+EL F=0-0.5", "Focal", "CE"]
    trained = benchmark.train_batched(
        [initial],
        np.stack([benchmark.loss_weights(m, epochs) for m in methods]),
        np.full(len(methods), rate),
        [order],
        np.zeros(len(methods), int),
        x,
        y,
        [(x, y)],
    )
    for index, (loss, callbacks) in enumerate(
        [
            (kal.losses.CrossentropyExpectationMix(), [kal.callbacks.FocusSchedule("0-0.5")]),
            (kal.losses.CandidateLoss("focal"), []),
            (keras.losses.SparseCategoricalCrossentropy(), []),
        ]
    ):
        keras.utils.set_random_seed(0)
        model = keras.Sequential(
            [keras.Input((4,)), keras.layers.Dense(4, activation="relu"),
             keras.layers.Dense(3, activation="softmax")]
        )  # fmt: skip
        model.set_weights(initial)
        model.compile(optimizer=keras.optimizers.SGD(rate, momentum=0.9), loss=loss)
        model.fit(x, y, epochs=epochs, batch_size=8, shuffle=False, callbacks=callbacks, verbose=0)
        for expected, got in zip(model.get_weights(), trained.weights, strict=True):
            np.testing.assert_allclose(got[index], expected, rtol=2e-4, atol=2e-6)
    # CE+EL F=0-0.5 over 3 epochs: F = 0.1, 0.3, 0.5 (later phases win, as FocusSchedule)
    np.testing.assert_allclose(
        benchmark.loss_weights("CE+EL F=0-0.5", 3)[:, :2], [[1, 1.25], [1, 2.5], [0, 1]]
    )


@pytest.mark.slow
def test_uniloss_ap_benchmark_runs():
    benchmark = _load("benchmarks/uniloss_ap_mnist1d.py")
    result = benchmark.main(seeds=1, epochs=1, variants=("crossentropy", "paper"), verbose=0)
    assert result.config["dataset"] == "mnist1d-0-vs-rest"
    assert result.config["optimizer"] == "sgd_momentum_half" and result.config["batch_size"] == 16
    assert {row["loss"] for row in result.summary()} == {"crossentropy", "paper"}
    assert all("average_precision" in run.test_metrics for run in result.runs)
    assert result.paired()[0]["loss"] == "paper"


@pytest.mark.slow
def test_related_losses_regimes_benchmark_runs():
    benchmark = _load("benchmarks/related_losses_regimes.py")
    results = benchmark.main(regimes=("imbalance-10",), seeds=1, epochs=1, verbose=0)
    result = results["imbalance-10"]
    assert result.config["imbalance"] == 10.0 and result.config["model"] == "cnn1d"
    assert {row["loss"] for row in result.paired()} == set(benchmark.IMBALANCE_LOSSES) - {
        "crossentropy"
    }


@pytest.mark.slow
def test_drop_in_losses_benchmark_runs():
    benchmark = _load("benchmarks/drop_in_losses.py")
    keep = ("poly eps=-1 (default)", "squentropy")
    results = benchmark.main(tasks=("digits",), seeds=1, epochs=1, verbose=0, keep=keep)
    result = results["digits"]
    assert result.config["dataset"] == "digits" and result.config["epochs"] == 1
    assert {row["loss"] for row in result.paired()} == set(keep)
    with pytest.raises(ValueError, match=r"Unknown arms \['poly eps=3'\]"):
        benchmark.main(tasks=("digits",), keep=("poly eps=3",))


@pytest.mark.slow
def test_metric_and_noise_loss_studies_run_the_kept_arms():
    metric = _load("benchmarks/metric_losses.py")
    keep = ("ensloss clip=1",)
    result = metric.main(("breast-cancer",), seeds=1, epochs=1, verbose=0, keep=keep)
    assert [row["loss"] for row in result["breast-cancer"].paired()] == list(keep)
    noise = _load("benchmarks/noise_losses_study.py")
    keep = ("ce+rce a1 b0.02",)
    result = noise.main(("digits-memorise",), seeds=1, epochs=1, noise=0.4, verbose=0, keep=keep)
    assert result["digits-memorise"].config["label_noise"] == 0.4
    assert [row["loss"] for row in result["digits-memorise"].paired()] == list(keep)


def _run_python(code: str, cwd) -> subprocess.CompletedProcess:
    """``code`` in a fresh interpreter (no state shared with the test process), in ``cwd``."""
    return subprocess.run(
        [sys.executable, "-c", code],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=900,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
    )


#: The Markdown files whose ```python blocks must run as written: the README and the docs.
DOCUMENTS = ["README.md", *sorted(str(p.relative_to(ROOT)) for p in (ROOT / "docs").rglob("*.md"))]


def _snippets(document: str) -> list[tuple[int, str]]:
    """(line, code) of every ```python block of ``document``."""
    lines = (ROOT / document).read_text().splitlines()
    snippets, start = [], None
    for number, line in enumerate(lines, start=1):
        if line.strip() == "```python":
            start = number
        elif line.strip() == "```" and start is not None:
            snippets.append((start, "\n".join(lines[start : number - 1])))
            start = None
    return snippets


def _quickstart() -> str:
    return next(c for _, c in _snippets("README.md") if "def build_model():" in c)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("document", "line"),
    [(document, line) for document in DOCUMENTS for line, _ in _snippets(document)],
)
def test_documented_snippet_runs_as_written(document, line, tmp_path):
    code = dict(_snippets(document))[line]
    if code.startswith("# continues the Quickstart"):
        code = _quickstart() + "\n" + code
    process = _run_python(code, tmp_path)
    assert process.returncode == 0, f"{document} line {line}:\n{process.stderr[-3000:]}"


@pytest.mark.slow
def test_tutorial_notebook_runs_cell_by_cell(tmp_path):
    """The tutorial's code cells, in order, in a fresh interpreter (what a kernel would run)."""
    notebook = json.loads((ROOT / "examples" / "tutorial.ipynb").read_text())
    assert notebook["nbformat"] == 4
    cells = [cell for cell in notebook["cells"] if cell["cell_type"] == "code"]
    assert len(cells) >= 6  # data, the four methods and the family, compare
    code = "\n\n".join("".join(cell["source"]) for cell in cells)
    process = _run_python(code, tmp_path)
    assert process.returncode == 0, process.stderr[-3000:]
    assert "paired difference to crossentropy" in process.stdout  # the compare table's footer
    assert "focus per epoch: [0.0, 0.1, 0.2, 0.3, 0.4, 0.5]" in process.stdout


@pytest.mark.slow
def test_stochastic_loss_outputs_example_trains_each_use():
    example = _load("examples/stochastic_loss_outputs.py")
    results = example.main(epochs=2)
    assert set(results) == {"regression", "tagging", "detection"}
    assert np.isfinite(results["regression"]["mae"])
    weights = [v for k, v in results["regression"].items() if k.startswith("slf_weight_")]
    assert len(weights) == 4 and sum(weights) == pytest.approx(1.0, abs=1e-4)
    assert 0.0 <= results["tagging"]["accuracy"] <= 1.0
    assert np.isfinite(results["detection"]["box_l1"])


_EXAMPLE_COMMAND_LINE = """
import contextlib, io, runpy, sys
sys.argv = [sys.argv[1], *sys.argv[2:]]
if sys.argv[-1] == "--no-tuner":
    sys.argv.pop()
    sys.modules["keras_tuner"] = None  # as if KerasTuner were not installed
out, err = io.StringIO(), io.StringIO()
with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
    try:
        runpy.run_path(sys.argv[0], run_name="__main__")
        code = 0
    except SystemExit as exit_:
        code = exit_.code
print(repr((code, "tensorflow" in sys.modules, out.getvalue(), err.getvalue())))
"""


def _example_command_line(name: str, *arguments: str) -> tuple:
    process = subprocess.run(
        [sys.executable, "-c", _EXAMPLE_COMMAND_LINE, str(ROOT / "examples" / name), *arguments],
        capture_output=True, text=True, timeout=120, cwd=ROOT,
    )  # fmt: skip
    assert process.returncode == 0, process.stderr[-2000:]
    return eval(process.stdout.strip().splitlines()[-1])


EXAMPLES = sorted(path.name for path in (ROOT / "examples").glob("*.py"))


@pytest.mark.parametrize("name", EXAMPLES)
def test_every_example_answers_help_and_bad_values_without_tensorflow(name):
    code, imported, out, _ = _example_command_line(name, "--help")
    assert (code, imported) == (0, False)
    options = [line for line in out.splitlines() if line.startswith("  --")]
    assert options and out.count("(default:") == len(options)  # every option: help + default
    code, imported, _, err = _example_command_line(name, "--epochs", "0")
    assert (code, imported) == (2, False) and "--epochs must be >= 1; got 0" in err


@pytest.mark.slow
@pytest.mark.parametrize("name", ["tune_focus_schedule.py", "tune_stochastic_loss.py"])
def test_tuning_examples_without_keras_tuner_name_the_extra(name):
    code, _, _, _ = _example_command_line(name, "--trials", "1", "--no-tuner")
    assert code == (
        f'{name} needs KerasTuner: pip install "keras-adaptive-loss[tuner]"'
    )  # SystemExit with a message: printed as one line, exit status 1
