"""`benchmarks/suite.py`, the generalization suite: its tasks span what it promises, are
deterministic per seed, leave the test split alone (except the flagged ``flip_y`` tasks), and a
tiny run yields its tables and heat-map."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from keras_adaptive_loss.comparison.data import noisy_labels, prepare
from keras_adaptive_loss.comparison.result import ComparisonResult, RunRecord
from tests.examples_test import _load

suite = _load("benchmarks/suite.py")

QUICK_TASKS = [name for name in suite.TASKS if not name.startswith("mnist1d")]


def test_the_suite_spans_data_models_optimisers_budgets_and_regimes():
    tasks = list(suite.TASKS.values())
    assert len(tasks) >= 24
    assert {task.model for task in tasks} == {"linear", "mlp128", "mlp256", "cnn1d"}
    assert {task.optimizer for task in tasks} == {"adam", "sgd"}
    assert {task.epochs for task in tasks} == {10, 30, 60}
    assert {task.noise_type for task in tasks if task.label_noise} == {"symmetric", "pair"}
    assert {task.label_noise for task in tasks} >= {0.0, 0.2, 0.3, 0.4}
    assert {task.imbalance for task in tasks} >= {10.0, 100.0}
    assert any(task.train_size for task in tasks) and any(t.changes_test_labels for t in tasks)
    sources = {name.split("-")[0].split(".")[0] for name in suite.TASKS}
    assert sources >= {"mnist1d", "cls8", "quantiles6", "moons", "circles", "digits", "iris"}
    assert {"wine", "breast_cancer"} <= sources
    assert set(suite.SMOKE_TASKS) <= set(suite.TASKS)


def test_the_task_list_needs_no_output_folder_and_a_run_does(capsys):
    assert suite.main(["--list"]) == 0
    assert capsys.readouterr().out.split() == list(suite.TASKS)
    with pytest.raises(SystemExit):
        suite.main(["--losses", "focal"])
    assert "--output is required" in capsys.readouterr().err


def _read(path):
    with open(path) as file:
        return file.read()


def _arrays(data):
    return [data.x_train, data.y_train, data.x_test, data.y_test]


@pytest.mark.parametrize("name", QUICK_TASKS)
def test_a_task_is_the_same_arrays_twice_and_its_regime_spares_the_test_split(name):
    task = suite.TASKS[name]
    first, second = task.data(), task.data()
    for a, b in zip(_arrays(first), _arrays(second), strict=True):
        np.testing.assert_array_equal(a, b)
    settings = task.settings(["focal"], seeds=2, verbose=0)
    prepared, again = prepare(settings), prepare(settings)
    np.testing.assert_array_equal(prepared.data.x_test, first.x_test)
    np.testing.assert_array_equal(prepared.data.y_test, first.y_test)
    for seed in (0, 1):
        regime = (task.label_noise, task.noise_type)
        noisy = noisy_labels(prepared.splits, seed, prepared.num_classes, *regime)
        twice = noisy_labels(again.splits, seed, again.num_classes, *regime)
        for a, b in zip(noisy, twice, strict=True):
            np.testing.assert_array_equal(a, b)
    if task.label_noise:
        flipped = np.mean(noisy[1] != prepared.splits[1])
        assert abs(flipped - task.label_noise) < 0.02
    if task.imbalance:
        counts = np.bincount(prepared.splits[1])
        assert counts.max() / counts.min() > task.imbalance / 2


def test_only_the_flagged_tasks_change_test_labels():
    for name, task in suite.TASKS.items():
        assert task.changes_test_labels == name.endswith("†")
    flagged = suite.TASKS["cls8-mlp256-flip10†"].data()
    clean = suite.classification(8, seed=2, flip=0.0)
    np.testing.assert_array_equal(flagged.x_test, clean.x_test)
    changed = np.mean(flagged.y_test != clean.y_test)
    assert 0.05 < changed < 0.15  # flip_y=0.1 draws random labels, some equal to the true one


@pytest.mark.slow
def test_the_mnist1d_draws_are_deterministic_and_differ_from_each_other():
    draws = {seed: suite.mnist1d(seed) for seed in (1, 2)}
    np.testing.assert_array_equal(suite.mnist1d(1).x_train, draws[1].x_train)
    assert not np.array_equal(draws[1].x_train, draws[2].x_train)
    assert draws[1].x_train.shape == (4000, 40) and draws[1].num_classes == 10


def _result(task_deltas):
    runs = []
    for seed, (ce, other) in enumerate(task_deltas):
        runs.append(RunRecord("crossentropy", seed, {"accuracy": ce}, [0.1], {}))
        runs.append(RunRecord("focal", seed, {"accuracy": other}, [0.1], {}))
    return ComparisonResult({"reference": "crossentropy"}, runs)


def test_the_tables_count_tasks_above_within_and_below_cross_entropy(tmp_path):
    results = {
        "iris-mlp128": _result([(0.90, 0.92), (0.90, 0.93), (0.91, 0.93)]),  # +2.33, all up
        "moons-linear": _result([(0.80, 0.79), (0.80, 0.81), (0.80, 0.80)]),  # 0, mixed
        "cls8-mlp256-flip10†": _result([(0.7, 0.6), (0.7, 0.61), (0.7, 0.59)]),  # -10
    }
    rows = suite.cells(results)
    by_task = {row["task"]: row for row in rows}
    assert by_task["iris-mlp128"]["delta"] == pytest.approx(100 * np.mean([0.02, 0.03, 0.02]))
    assert by_task["iris-mlp128"]["significant"] and by_task["iris-mlp128"]["record"] == "3/0/0"
    assert not by_task["moons-linear"]["significant"]
    assert by_task["cls8-mlp256-flip10†"]["changes_test_labels"]
    (summary,) = suite.per_loss(rows)
    assert (summary["above"], summary["within"], summary["below"]) == (1, 1, 1)
    assert summary["worst_delta"] == pytest.approx(-10.0)
    assert summary["share_below"] == pytest.approx(1 / 3)
    paths = suite.write_report(results, str(tmp_path), seconds=120.0)
    text = _read(paths["markdown"])
    assert "| focal | 3 | 1 | 1 | 1 | 33 % | -2.56 | -10.00 |" in text
    assert "Wall time: 2.0 min." in text and "| cls8-mlp256-flip10† | focal | -10.00 *" in text
    document = json.loads(_read(paths["json"]))
    assert document["per_loss"][0]["below"] == 1 and len(document["cells"]) == 3
    with open(paths["heatmap"], "rb") as file:
        assert file.read(8) == b"\x89PNG\r\n\x1a\n"


@pytest.mark.slow
def test_a_tiny_suite_run_writes_its_tables_and_heatmap_and_resumes(tmp_path):
    output = str(tmp_path / "suite")
    losses = ["ce_el_0-0.5", "focal"]
    results = suite.run(suite.SMOKE_TASKS, losses, seeds=2, output=output, epochs=1, verbose=0)
    assert list(results) == list(suite.SMOKE_TASKS)
    for result in results.values():
        assert result.losses == ["crossentropy", *losses] and len(result.runs) == 6
    paths = suite.write_report(results, output)
    rows = json.loads(_read(paths["json"]))["cells"]
    assert {(row["task"], row["loss"]) for row in rows} == {
        (task, loss) for task in suite.SMOKE_TASKS for loss in losses
    }
    assert all(math.isfinite(row["delta"]) for row in rows)
    # A rerun resumes every task from its folder: the same runs, nothing retrained.
    again = suite.run(suite.SMOKE_TASKS, losses, seeds=2, output=output, epochs=1, verbose=0)
    for name in suite.SMOKE_TASKS:
        assert [r.test_metrics for r in again[name].runs] == [
            r.test_metrics for r in results[name].runs
        ]
        assert again[name].runs[0].epoch_seconds == results[name].runs[0].epoch_seconds


# ---------------------------------------------------------------------- the ablations' arms


def _context():
    """A small 3-class context, enough to build any arm's loss and callbacks."""
    from keras_adaptive_loss.comparison.loss_presets import LossContext

    rng = np.random.default_rng(0)
    return LossContext(
        num_classes=3, seed=0, steps_per_epoch=10, epochs=5,
        validation_data=(rng.normal(size=(8, 4)).astype("float32"), np.arange(8) % 3),
    )  # fmt: skip


def test_every_ablation_arm_builds_a_loss_setup():
    ablations = _load("benchmarks/suite_ablations.py")
    context = _context()
    for name, arm in ablations.ARMS.items():
        if isinstance(arm, str):
            continue  # a preset, built by compare
        setup = arm(context)
        assert setup.loss is not None, name
    soft = ablations.ARMS["soft_phi"](context).loss.get_parameter("phi")
    np.testing.assert_allclose(soft, np.where(np.eye(3, dtype=bool), 1.0, 0.03), atol=1e-7)
    both = ablations.ARMS["ala_both_signs"](context).callbacks[0]
    assert both.softening and both.period == 5  # the ala preset's period: a tenth of the run
    first = ablations.ARMS["stochastic_running_mean"](context)
    assert first.loss.normalize == "running_mean" and first.callbacks[1].scope == "model"
    whole = ablations.ARMS["stochastic_whole_model_alignments"](context)
    assert whole.loss.normalize == "to_first" and whole.callbacks[1].scope == "model"
    faster = ablations.ARMS["stochastic_running_mean_lr4"](context).callbacks[-1]
    assert faster.factor == 4


def test_label_smoothing_arm_matches_numpy():
    ablations = _load("benchmarks/suite_ablations.py")
    probs = np.array([[0.7, 0.2, 0.1], [0.1, 0.1, 0.8]], "float32")
    labels = np.array([0, 1])
    target = np.eye(3)[labels] * 0.9 + 0.1 / 3
    want = -(target * np.log(probs)).sum(-1).mean()
    got = float(ablations.SmoothedCrossentropy(0.1)(labels, probs))
    assert got == pytest.approx(want, rel=1e-5)


def test_gradient_norms_measures_how_much_smaller_the_uniloss_gradient_is(capsys):
    norms = _load("benchmarks/gradient_norms.py")
    assert norms.main(["--task", "iris-mlp128", "--epochs", "1", "--every", "1"]) == 0
    rows = [line for line in capsys.readouterr().out.splitlines() if line[:4] in ("| 0 ", "| 1 ")]
    assert len(rows) == 2
    uniloss_ratio = float(rows[0].split("|")[4])
    assert 3.0 < uniloss_ratio < 15.0  # cross-entropy's gradient is several times larger


def test_the_slf_study_arms_keep_the_settings_they_were_measured_with():
    study = _load("benchmarks/slf_effectiveness.py")
    context = _context()
    arms = study.arms()
    validated = arms["validated, crossentropy"](context)
    assert validated.loss.normalize == "running_mean" and validated.callbacks[1].scope == "model"
    assert arms["normalisation only"](context).loss.normalize == "running_mean"
    preset = arms["stochastic preset"](context)
    assert preset.loss.normalize == "to_first" and preset.callbacks[1].scope == "output_layer"
