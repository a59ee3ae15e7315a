"""`kal.compare` and the ``keras-adaptive-loss`` CLI: files, table, presets, bad arguments."""

from __future__ import annotations

import csv
import json
import os
import re
import subprocess
import sys
import time
import warnings
from importlib import metadata

import keras
import numpy as np
import pytest

import keras_adaptive_loss as kal
from keras_adaptive_loss import cli
from tests import tiny_tfds

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _assert_png(path) -> None:
    from matplotlib import image

    with open(path, "rb") as file:
        assert file.read(8) == PNG_SIGNATURE
    pixels = image.imread(path)
    assert pixels.ndim == 3 and pixels.shape[0] > 100 and pixels.shape[1] > 100
    assert pixels.std() > 0.01  # not a blank canvas


@pytest.mark.slow
def test_cli_end_to_end_writes_table_csv_json_and_png(tmp_path, capsys):
    output = tmp_path / "runs"
    status = cli.main(
        ["compare", "--dataset", "iris", "--losses", "crossentropy,ce_el_0-0.5",
         "--seeds", "1", "--epochs", "1", "--output", str(output)]
    )  # fmt: skip
    assert status == 0
    printed = capsys.readouterr().out
    assert "test accuracy %" in printed and "s/epoch" in printed
    assert "\ncrossentropy " in printed and "\nce_el_0-0.5 " in printed

    with open(output / "runs.csv") as file:
        rows = list(csv.DictReader(file))
    assert [row["loss"] for row in rows] == ["crossentropy", "ce_el_0-0.5"]
    assert all(0.0 <= float(row["test_accuracy"]) <= 1.0 for row in rows)
    with open(output / "summary.csv") as file:
        summary = list(csv.DictReader(file))
    assert [row["loss"] for row in summary] == ["crossentropy", "ce_el_0-0.5"]

    document = json.loads((output / "results.json").read_text())
    assert document["config"]["dataset"] == "iris" and document["config"]["epochs"] == 1
    mix = next(run for run in document["runs"] if run["loss"] == "ce_el_0-0.5")
    assert len(mix["parameters"]["alpha"]) == 2  # before training and after the epoch
    assert "focus" in mix["history"]
    assert float(rows[1]["test_accuracy"]) == pytest.approx(mix["test_metrics"]["accuracy"])
    _assert_png(output / "learning_curves.png")
    _assert_png(output / "parameters.png")


@pytest.mark.slow
@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--losses", "crossentropy,nope"], "Unknown loss 'nope'"),
        (["--dataset", "no_such_dataset"], "Unknown dataset 'no_such_dataset'"),
        (["--model", "vgg"], "Unknown model 'vgg'"),
        (["--seeds", "0"], "--seeds must be an integer >= 1"),
        (["--seeds", "two"], "invalid int value: 'two'"),
        (["--epochs", "0"], "epochs must be an integer >= 1"),
        (["--model", "resnet", "--dataset", "iris"], "needs image data"),
        (["--losses", "uniloss_ap"], "--positive-class"),
        (["--strategy", "mirrored", "--jit"], "cannot be combined with a strategy"),
    ],
)
def test_cli_bad_arguments_exit_2_with_one_line(arguments, message, capsys):
    try:
        status = cli.main(["compare", "--epochs", "1", "--seeds", "1", *arguments])
    except SystemExit as exit_:  # argparse's own errors (types, choices) exit
        status = exit_.code
    captured = capsys.readouterr()
    assert status == 2
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1, captured.err
    assert lines[0].startswith("keras-adaptive-loss: error:") and message in lines[0]
    assert captured.out == ""  # nothing trained


@pytest.mark.slow
def test_console_script_is_installed_and_errors_without_traceback():
    scripts = [e for e in metadata.entry_points(group="console_scripts") if e.name == cli.PROGRAM]
    assert scripts and scripts[0].value == "keras_adaptive_loss.cli:main"
    process = subprocess.run(
        [sys.executable, "-m", "keras_adaptive_loss", "compare", "--losses", "nope"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert process.returncode == 2
    assert "Traceback" not in process.stderr
    assert process.stderr.strip().splitlines()[-1].startswith("keras-adaptive-loss: error:")


def test_cli_list(capsys):
    assert cli.main(["list"]) == 0
    printed = capsys.readouterr().out
    assert "uniloss_ap" in printed and "resnet" in printed and "mnist1d" in printed


@pytest.mark.slow
def test_same_seed_gives_same_initial_weights_and_result():
    result = kal.compare(
        "iris", {"a": "crossentropy", "b": "crossentropy"}, seeds=[3], epochs=2, verbose=0
    )
    a, b = result.runs
    assert a.history["loss"] == b.history["loss"]
    assert a.test_metrics == b.test_metrics
    other = kal.compare("iris", ["crossentropy"], seeds=[4], epochs=2, verbose=0).runs[0]
    assert other.history["loss"] != a.history["loss"]


@pytest.mark.slow
def test_summary_is_mean_and_sample_std_over_seeds():
    result = kal.compare("wine", ["focal"], seeds=2, epochs=1, verbose=0)
    accuracies = [run.test_metrics["accuracy"] for run in result.runs]
    row = result.summary()[0]
    assert row["seeds"] == 2
    assert row["accuracy_mean"] == pytest.approx(np.mean(accuracies))
    assert row["accuracy_std"] == pytest.approx(np.std(accuracies, ddof=1))
    assert row["seconds_per_epoch"] > 0
    assert "focal" in result.table()


@pytest.mark.slow
def test_adaptive_presets_record_their_trajectories():
    result = kal.compare("iris", ["stochastic", "ala"], seeds=1, epochs=2, verbose=0)
    slf, ala = result.runs
    assert {f"slf_weight_{c}" for c in kal.comparison.SLF_CANDIDATES} <= set(slf.history)
    assert len(slf.parameters["temperature"]) == 3
    phi = np.asarray(ala.parameters["phi"])
    assert phi.shape == (3, 3, 3)  # epochs + 1 snapshots of the 3x3 Φ
    assert ala.history["ala_decisions"][-1] >= 1
    assert not np.array_equal(phi[0], phi[-1])  # the controller moved Φ


@pytest.mark.slow
def test_binary_task_reports_average_precision_and_trains_uniloss_ap():
    result = kal.compare(
        "digits",
        ["crossentropy", "uniloss_ap", "squentropy"],  # squentropy: a logits output
        positive_class=0,
        seeds=1,
        epochs=2,
        verbose=0,
    )
    assert result.config["dataset"] == "digits-0-vs-rest"
    for run in result.runs:
        assert 0.5 < run.test_metrics["average_precision"] <= 1.0
        assert 0.0 <= run.test_metrics["f1"] <= 1.0
        # the per-epoch learning curve of the task's metric
        assert len(run.history["val_pr_auc"]) == 2 and len(run.history["pr_auc"]) == 2
        assert 0.5 < run.history["val_pr_auc"][-1] <= 1.0
    assert "test AP %" in result.table() and "test F1 %" in result.table()


@pytest.mark.slow
def test_model_presets_and_user_builder():
    resnet = kal.compare("digits", ["crossentropy"], model="resnet", seeds=1, epochs=2, verbose=0)
    assert resnet.runs[0].test_metrics["accuracy"] > 0.6  # BatchNorm statistics settle fast
    kal.compare("iris", ["poly1"], model="cnn1d", seeds=1, epochs=1, verbose=0)

    def linear(input_shape, num_classes):
        return keras.Sequential(
            [keras.Input(input_shape), keras.layers.Dense(num_classes, activation="softmax")]
        )

    result = kal.compare("iris", ["crossentropy"], model=linear, seeds=1, epochs=1, verbose=0)
    assert result.config["model"] == "linear"

    def wrong_width(input_shape, num_classes):
        return keras.Sequential([keras.Input(input_shape), keras.layers.Dense(7)])

    with pytest.raises(ValueError, match=r"output \[batch, num_classes\]"):
        kal.compare("iris", ["crossentropy"], model=wrong_width, seeds=1, epochs=1, verbose=0)


def test_custom_loss_factory():
    def squared_error(context):
        return kal.losses.CandidateLoss("mse")

    result = kal.compare("iris", {"mse": squared_error}, seeds=1, epochs=1, verbose=0)
    assert result.config["loss_setups"]["mse"]["loss"]["class_name"] == "CandidateLoss"
    with pytest.raises(ValueError, match="must return a keras Loss or a LossSetup"):
        kal.compare("iris", {"bad": lambda context: 3}, seeds=1, epochs=1, verbose=0)


@pytest.mark.slow
def test_mirrored_strategy(mirrored_strategy):
    result = kal.compare(
        "iris", ["crossentropy", "stochastic"], strategy=mirrored_strategy, seeds=1, epochs=1,
        verbose=0,
    )  # fmt: skip
    assert result.config["strategy"] == "MirroredStrategy"
    assert all(np.isfinite(run.history["loss"][0]) for run in result.runs)


@pytest.mark.slow
def test_tfds_dataset_built_locally(tmp_path):
    name = tiny_tfds.prepare(str(tmp_path))
    data = kal.datasets.load_tfds(name, data_dir=str(tmp_path), download=False)
    assert data.x_train.shape == (90, 64) and data.image_shape == (8, 8, 1)
    assert data.x_train.dtype == np.float32 and 0.0 <= data.x_train.min() <= data.x_train.max() <= 1
    assert np.bincount(data.y_test).tolist() == [15, 15, 15]
    result = kal.compare(
        name, ["crossentropy"], model="resnet", data_dir=str(tmp_path), try_gcs=False, seeds=1,
        epochs=1, verbose=0,
    )  # fmt: skip
    assert result.config["test_size"] == 45
    with pytest.raises(ValueError, match="has no split 'validation'"):
        kal.datasets.load_tfds(name, data_dir=str(tmp_path), test_split="validation")


@pytest.mark.parametrize(
    ("old", "new"),
    [("nce-rce", "nce_rce"), ("ce-el-0-0.5", "ce_el_0-0.5"), ("ce-el-0+0.5", "ce_el_0+0.5"),
     ("anyloss-balanced-accuracy", "anyloss_balanced_accuracy"), ("uniloss-ap", "uniloss_ap")],
)  # fmt: skip
def test_old_preset_spellings_warn_once_and_resolve(old, new, monkeypatch):
    presets = kal.comparison.loss_presets
    monkeypatch.setattr(kal.comparison.settings, "_WARNED_SPELLINGS", set())
    with pytest.warns(FutureWarning, match=f"'{re.escape(old)}' is deprecated.*'{re.escape(new)}'"):
        assert presets.canonical_name(old) == new
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert presets.canonical_name(old) == new  # said once
        assert presets.canonical_name(new) == new


def test_compare_takes_old_spellings_under_the_new_names(monkeypatch):
    from keras_adaptive_loss.comparison.settings import ComparisonSettings

    monkeypatch.setattr(kal.comparison.settings, "_WARNED_SPELLINGS", set())
    with pytest.warns(FutureWarning) as warned:
        settings = ComparisonSettings(losses="crossentropy,ce-el-0,stochastic-paper")
    assert list(settings.losses) == ["crossentropy", "ce_el_0", "stochastic_paper"]
    assert warned[0].filename == __file__  # the warning points at the caller's line
    with pytest.raises(ValueError, match="Unknown loss 'stochastic-papr'"):
        ComparisonSettings(losses=["stochastic-papr"])


def test_every_preset_name_is_one_snake_case_spelling():
    for name in kal.comparison.LOSSES:
        stem = name.split("+")[0] if name.startswith("ce_el_") else name
        stem = stem[: len("ce_el_")] if name.startswith("ce_el_") else stem
        assert "-" not in stem and stem == stem.lower(), name


def test_a_tfds_dataset_that_is_not_prepared_fails_at_once_with_the_ways_out(tmp_path, capsys):
    started = time.perf_counter()
    status = cli.main(["compare", "--dataset", "fashion_mnist", "--data-dir", str(tmp_path),
                       "--losses", "crossentropy", "--seeds", "1", "--quiet"])  # fmt: skip
    lines = capsys.readouterr().err.strip().splitlines()
    assert status == 2 and time.perf_counter() - started < 30 and len(lines) == 1
    assert "'fashion_mnist' is not prepared under" in lines[0]
    assert "--data-dir" in lines[0] and "--download" in lines[0] and "digits" in lines[0]
    assert os.listdir(tmp_path) == []  # nothing downloaded or prepared
