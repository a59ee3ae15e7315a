"""`compare` never loses or misreports results: re-runs keep earlier results until they are
replaced, resume checks the data itself, the output lock excludes, files follow the umask,
diverged runs are not scored, and few seeds claim no significance."""

from __future__ import annotations

import importlib.util
import json
import math
import os
import subprocess
import sys

import numpy as np
import pytest

import keras_adaptive_loss as kal
from keras_adaptive_loss import cli, datasets
from keras_adaptive_loss.comparison import training
from keras_adaptive_loss.comparison.output_dir import OutputDirectory, atomic_write
from keras_adaptive_loss.comparison.paired import paired_difference
from keras_adaptive_loss.comparison.result import ComparisonResult, RunRecord

QUICK = {"seeds": 1, "epochs": 1, "plots": False, "verbose": 0}


def _write_csv(path, header, rows):
    path.write_text("\n".join([",".join(header), *(",".join(map(str, r)) for r in rows)]))
    return str(path)


def _toy_rows(labels, seed=0):
    rng = np.random.default_rng(seed)
    return [[*np.round(rng.normal(size=2), 3), label] for label in labels]


# ---------------------------------------------------------------- earlier results are kept


def test_a_rerun_interrupted_midway_leaves_the_earlier_results_readable(tmp_path, monkeypatch):
    output = tmp_path / "runs"
    kal.compare("iris", ["crossentropy"], output=str(output), **QUICK)
    earlier = (output / "results.json").read_text()
    trained = []
    train = training.Trainer.train

    def interrupted_after_one(self, label, seed):
        if trained:
            raise KeyboardInterrupt
        trained.append(label)
        return train(self, label, seed)

    monkeypatch.setattr(training.Trainer, "train", interrupted_after_one)
    with pytest.raises(KeyboardInterrupt):
        kal.compare("iris", ["crossentropy", "focal"], output=str(output), **QUICK)
    assert (output / "results.json").read_text() == earlier
    assert sorted(os.listdir(output)) == ["results.json", "runs.csv", "summary.csv", "unfinished"]
    unfinished = json.loads((output / "unfinished" / "results.json").read_text())
    assert not unfinished["complete"] and [r["loss"] for r in unfinished["runs"]] == trained


def test_an_interrupt_before_the_first_run_ends_leaves_the_folder_as_it_was(
    tmp_path, monkeypatch, capsys
):
    output = tmp_path / "runs"
    kal.compare("iris", ["crossentropy"], output=str(output), **QUICK)
    before = {name: (output / name).read_bytes() for name in os.listdir(output)}

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(training.Trainer, "train", interrupted)
    arguments = ["--losses", "crossentropy", "--seeds", "1", "--epochs", "1", "--no-plots"]
    status = cli.main(
        ["compare", "--dataset", "iris", *arguments, "--quiet", "--output", str(output)]
    )
    assert status == 130
    assert f"no run had finished; {output} is as it was" in capsys.readouterr().err
    assert {name: (output / name).read_bytes() for name in os.listdir(output)} == before


def test_a_rerun_that_fails_on_a_bad_tensorboard_path_changes_nothing(tmp_path, capsys):
    output = tmp_path / "runs"
    kal.compare("iris", ["crossentropy"], output=str(output), **QUICK)
    before = {name: (output / name).read_bytes() for name in os.listdir(output)}
    (tmp_path / "tb").write_text("a file")
    status = cli.main(["compare", "--dataset", "iris", "--losses", "crossentropy", "--seeds",
                       "1", "--epochs", "1", "--no-plots", "--quiet", "--output", str(output),
                       "--tensorboard", str(tmp_path / "tb")])  # fmt: skip
    lines = capsys.readouterr().err.strip().splitlines()
    assert status == 2 and len(lines) == 1 and "is a file, not a directory" in lines[0]
    assert {name: (output / name).read_bytes() for name in os.listdir(output)} == before


def test_an_output_file_that_is_a_folder_is_refused_before_training(tmp_path):
    (tmp_path / "runs" / "runs.csv").mkdir(parents=True)
    with pytest.raises(ValueError, match=r"holds a folder named 'runs\.csv'"):
        OutputDirectory(str(tmp_path / "runs"))


def test_resume_refuses_another_file_of_the_same_name_or_label_column(tmp_path, capsys):
    labels = [i % 2 for i in range(40)]
    rows = [[*row, label % 3] for row, label in zip(_toy_rows(labels), labels, strict=True)]
    first, second = tmp_path / "a", tmp_path / "b"
    first.mkdir(), second.mkdir()
    path = _write_csv(first / "data.csv", ["f1", "f2", "label", "other"], rows)
    output = str(tmp_path / "runs")
    common = ["compare", "--losses", "crossentropy", "--seeds", "1", "--epochs", "1",
              "--no-plots", "--quiet", "--output", output]  # fmt: skip
    assert cli.main([*common, "--dataset", path]) == 0
    capsys.readouterr()
    rows[0][0] += 1.0  # another file, same name
    other = _write_csv(second / "data.csv", ["f1", "f2", "label", "other"], rows)
    assert cli.main([*common, "--dataset", other, "--resume"]) == 2
    assert "differ in data_sha256" in capsys.readouterr().err
    assert cli.main([*common, "--dataset", path, "--label-column", "other", "--resume"]) == 2
    assert "label_column" in capsys.readouterr().err
    assert cli.main([*common, "--dataset", path, "--resume"]) == 0


# ---------------------------------------------------------------- files and the lock


def test_output_files_follow_the_umask(tmp_path):
    previous = os.umask(0o022)
    try:
        atomic_write(str(tmp_path / "shared.csv"), lambda temporary: open(temporary, "w").close())
        os.umask(0o077)
        atomic_write(str(tmp_path / "private.csv"), lambda temporary: open(temporary, "w").close())
    finally:
        os.umask(previous)
    assert (tmp_path / "shared.csv").stat().st_mode & 0o777 == 0o644
    assert (tmp_path / "private.csv").stat().st_mode & 0o777 == 0o600


_LOCK_RACER = """
import importlib.util, os, sys
spec = importlib.util.spec_from_file_location("output_dir", sys.argv[1])
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
folder, marker = module.OutputDirectory(sys.argv[2]), os.path.join(sys.argv[2], "holder")
held = 0
for _ in range(int(sys.argv[3])):
    try:
        with folder.locked():
            try:
                descriptor = os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
            except FileExistsError:
                print("OVERLAP")
                sys.exit(1)
            os.close(descriptor)
            held += 1
            os.remove(marker)
    except ValueError:
        pass
print(held)
"""


@pytest.mark.slow
def test_two_processes_racing_for_the_lock_never_hold_it_together(tmp_path):
    source = importlib.util.find_spec("keras_adaptive_loss.comparison.output_dir").origin
    command = [sys.executable, "-c", _LOCK_RACER, source, str(tmp_path), "3000"]
    racers = [subprocess.Popen(command, stdout=subprocess.PIPE, text=True) for _ in range(2)]
    outputs = [racer.communicate(timeout=120)[0].strip() for racer in racers]
    assert [racer.returncode for racer in racers] == [0, 0], outputs
    held = [int(output) for output in outputs]
    assert all(count > 0 for count in held), held  # both really took it, in turns
    assert not (tmp_path / ".compare.lock").exists()


# ---------------------------------------------------------------- what is reported


def _runs(differences, loss="other"):
    runs = []
    for seed, difference in enumerate(differences):
        runs.append(RunRecord("crossentropy", seed, {"accuracy": 0.5}, [0.1], {}))
        runs.append(RunRecord(loss, seed, {"accuracy": 0.5 + difference}, [0.1], {}))
    return runs


def test_two_seeds_with_equal_differences_claim_nothing():
    two = ComparisonResult({"seeds": [0, 1]}, _runs([0.02, 0.02]))
    row = two.paired()[0]
    assert math.isnan(row["accuracy_low"]) and not row["accuracy_excludes_zero"]
    line = next(line for line in _table(two) if line.startswith("other"))
    assert "[n/a]" in line and " * " not in line
    assert any("fewer than 3 paired seeds (here 2)" in line for line in _table(two))
    # three seeds with the same difference: resolved, shown as the same on every seed
    three = ComparisonResult({"seeds": [0, 1, 2]}, _runs([0.02, 0.02, 0.02]))
    line = next(line for line in _table(three) if line.startswith("other"))
    assert "[same each seed]" in line and " * " in line
    assert paired_difference([0.9, 0.8], [0.8, 0.7]).exact
    with pytest.raises(ValueError, match="min_seeds"):
        paired_difference([0.9], [0.8], min_seeds=1)


def _table(result):
    result.config.update(dataset="toy", model="mlp", epochs=1, batch_size=8,
                         learning_rate=1e-3, train_size=8)  # fmt: skip
    return result.table().splitlines()


def test_diverged_runs_are_reported_not_scored(tmp_path):
    output = tmp_path / "runs"
    result = kal.compare(
        "iris", ["crossentropy", "focal"], seeds=2, epochs=1, optimizer="sgd",
        learning_rate=1e30, output=str(output), plots=False, verbose=0,
    )  # fmt: skip
    assert all(run.diverged for run in result.runs)
    assert all(math.isnan(run.test_metrics["accuracy"]) for run in result.runs)
    table = result.table()
    assert "diverged" in next(line for line in table.splitlines() if line.startswith("focal"))
    assert "focal: 2 of 2 runs diverged" in table
    csv_rows = (output / "runs.csv").read_text().splitlines()
    assert csv_rows[0].startswith("loss,seed,diverged") and csv_rows[1].split(",")[2] == "True"
    document = json.loads((output / "results.json").read_text())
    assert all(run["diverged"] and run["test_metrics"]["accuracy"] is None
               for run in document["runs"])  # fmt: skip
    assert document["summary"][0]["diverged"] == 2 and document["paired"][0]["seeds"] == 0
    resumed = kal.compare(
        "iris", ["crossentropy", "focal"], seeds=2, epochs=1, optimizer="sgd",
        learning_rate=1e30, output=str(output), plots=False, verbose=0, resume=True,
    )  # fmt: skip
    assert all(run.diverged and math.isnan(run.test_metrics["accuracy"]) for run in resumed.runs)


def test_results_record_the_replica_count(tmp_path, mirrored_strategy):
    result = kal.compare("iris", ["crossentropy"], strategy=mirrored_strategy, batch_size=8,
                         **QUICK)  # fmt: skip
    assert result.config["replicas"] == 2 and result.config["strategy"] == "MirroredStrategy"
    assert kal.compare("iris", ["crossentropy"], **QUICK).config["replicas"] == 1


# ---------------------------------------------------------------- data files


def test_csv_label_names_are_kept_and_usable_as_the_positive_class(tmp_path):
    kinds = ["setosa", "versicolor", "virginica"] * 14
    path = _write_csv(tmp_path / "flowers.csv", ["a", "b", "label"], _toy_rows(kinds))
    data = datasets.load_csv(path)
    assert data.class_names == ("setosa", "versicolor", "virginica")
    binary = datasets.one_vs_rest(data, "versicolor")
    assert binary.name == "flowers.csv-versicolor-vs-rest"
    np.testing.assert_array_equal(binary.y_train, data.y_train == 1)
    result = kal.compare(path, ["crossentropy"], positive_class="virginica", **QUICK)
    assert result.config["dataset"] == "flowers.csv-virginica-vs-rest"
    multi = kal.compare(path, ["crossentropy"], **QUICK)
    assert multi.config["class_names"] == ["setosa", "versicolor", "virginica"]
    with pytest.raises(ValueError, match=r"class names \['setosa'"):
        datasets.one_vs_rest(data, "rose")


@pytest.mark.parametrize(
    ("labels", "message"),
    [
        (["", "0", "1", "2"], "line 2: the label is empty"),
        (["1", "10", "2", "?"], "mix numbers (line 2: '1') and names (line 5: '?')"),
        (["0", "1", "-1", "2"], "class ids >= 0; found -1"),
        (["0", "1", "1.5", "2"], "labels must be integer class ids"),
        (["0", "1", "100000000", "2"], "label 100000000 would make a task of 100000001 classes"),
    ],
)
def test_csv_labels_that_are_not_all_ids_or_all_names_are_refused(tmp_path, labels, message):
    path = _write_csv(tmp_path / "bad.csv", ["a", "b", "label"], _toy_rows(labels * 5))
    with pytest.raises(ValueError, match="MAX_CLASSES" if "1000" in message else None) as error:
        datasets.load_csv(path)
    assert message in str(error.value)


def test_npz_scalars_and_huge_label_ids_are_one_line_errors(tmp_path):
    np.savez(tmp_path / "scalar_x.npz", x=np.float64(1.0), y=np.arange(4))
    np.savez(tmp_path / "scalar_y.npz", x=np.zeros((4, 2)), y=np.int64(1))
    np.savez(tmp_path / "huge.npz", x=np.zeros((4, 2)), y=np.array([0, 1, 2, 10**8]))
    with pytest.raises(ValueError, match="features must be an array, one row per sample"):
        datasets.load_npz(str(tmp_path / "scalar_x.npz"))
    with pytest.raises(ValueError, match="labels must be an array, one per sample"):
        datasets.load_npz(str(tmp_path / "scalar_y.npz"))
    with pytest.raises(ValueError, match=r"raise keras_adaptive_loss\.datasets\.MAX_CLASSES"):
        datasets.load_npz(str(tmp_path / "huge.npz"))


def test_a_feature_constant_in_training_is_centred_not_blown_up(tmp_path):
    x = np.zeros((40, 2))
    x[:, 0] = np.arange(40)
    x_test = np.array([[3.0, 7.0]])
    np.savez(tmp_path / "rare.npz", x=x, y=np.arange(40) % 2, x_test=x_test, y_test=[1])
    data = datasets.load_npz(str(tmp_path / "rare.npz"))
    assert data.x_test[0, 1] == pytest.approx(7.0)  # centred on 0, not divided by 1e-12
    assert np.all(data.x_train[:, 1] == 0.0)
    np.testing.assert_allclose(data.x_train[:, 0].std(), 1.0, rtol=1e-5)


# ---------------------------------------------------------------- plots


def _curve_run(loss, seed, curve, **metrics):
    history = {"accuracy": curve, "val_accuracy": curve}
    return RunRecord(loss, seed, {"accuracy": curve[-1], **metrics}, [0.1] * len(curve), history)


def test_short_and_low_learning_curves_use_the_plot_and_keep_the_first_epoch():
    from keras_adaptive_loss.comparison import report

    two_epochs = [np.array([12.0, 30.0]), np.array([15.0, 28.0])]
    floor = report._robust_floor(two_epochs)
    assert floor <= 12.0  # epoch 1 of a 2-epoch run is not cut off
    assert 30.0 < report._ceiling(two_epochs, floor) <= 40.0  # a 30 % task fills the height
    long = [np.concatenate([[10.0], np.linspace(80, 95, 30)])]
    assert report._robust_floor(long) > 70.0  # a long run's first epoch may drop off
    assert report._ceiling([np.array([99.0, 99.9])], 90.0) == 100.5


def test_the_paired_plot_of_a_binary_task_is_not_a_strip_and_has_a_legend(tmp_path):
    from keras_adaptive_loss.comparison import report

    image = pytest.importorskip("matplotlib.image")
    metrics = {"average_precision": 0.5, "f1": 0.5}
    runs = [
        _curve_run(loss, seed, [0.3 + 0.01 * seed + (loss == "focal") * 0.02] * 2, **metrics)
        for seed in range(3)
        for loss in ("crossentropy", "focal")
    ]
    config = {"dataset": "toy-1-vs-rest", "model": "mlp", "seeds": [0, 1, 2]}
    result = ComparisonResult(config, runs)
    path = report.plot_paired_differences(result, str(tmp_path / "paired.png"))
    height, width = image.imread(path).shape[:2]
    assert height >= 300 and width / height < 5  # was 1950 x 175
    report.plot_learning_curves(result, str(tmp_path / "curves.png"))
