"""`compare`'s output folder: checked first, saved run by run, resumable, never stale."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

import keras_adaptive_loss as kal
from keras_adaptive_loss import cli
from keras_adaptive_loss.comparison.output_dir import OutputDirectory, atomic_write

ARGS = ["compare", "--dataset", "iris", "--seeds", "2", "--epochs", "2", "--quiet"]


def test_an_existing_file_as_output_exits_2_before_training(tmp_path, capsys):
    target = tmp_path / "results.txt"
    target.write_text("keep me")
    started = time.perf_counter()
    status = cli.main([*ARGS, "--losses", "crossentropy", "--output", str(target)])
    captured = capsys.readouterr()
    assert status == 2 and time.perf_counter() - started < 20
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and "is a file, not a directory" in lines[0]
    assert captured.out == "" and target.read_text() == "keep me"


@pytest.mark.slow
def test_rerunning_into_a_used_folder_leaves_no_file_of_the_earlier_run(tmp_path):
    output = tmp_path / "runs"
    assert (
        cli.main([*ARGS, "--seeds", "1", "--losses", "ce_el_0-0.5", "--output", str(output)]) == 0
    )
    assert (output / "parameters.png").exists()  # the mix has adapted parameters to plot
    first = (output / "results.json").read_text()
    assert cli.main(
        [*ARGS, "--seeds", "1", "--losses", "crossentropy", "--no-plots", "--output", str(output)]
    ) == 0  # fmt: skip
    assert sorted(os.listdir(output)) == ["results.json", "runs.csv", "summary.csv"]
    document = json.loads((output / "results.json").read_text())
    assert document["complete"] and (output / "results.json").read_text() != first
    assert [run["loss"] for run in document["runs"]] == ["crossentropy"]


def test_a_live_comparison_locks_its_folder(tmp_path):
    folder = OutputDirectory(str(tmp_path / "runs"))
    with folder.locked():
        lock = tmp_path / "runs" / ".compare.lock"
        lock.write_text("1")  # pid 1 is alive: another comparison holds the folder
        other = OutputDirectory(str(tmp_path / "runs")).locked()
        with pytest.raises(ValueError, match=r"another comparison \(process 1\)"), other:
            pass
        lock.write_text(str(os.getpid()))
    assert not (tmp_path / "runs" / ".compare.lock").exists()


def test_atomic_write_leaves_the_old_file_when_writing_fails(tmp_path):
    path = tmp_path / "results.json"
    path.write_text("old")

    def broken(temporary):
        with open(temporary, "w") as file:
            file.write("half")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        atomic_write(str(path), broken)
    assert path.read_text() == "old" and os.listdir(tmp_path) == ["results.json"]


def test_resume_refuses_other_settings(tmp_path):
    output = tmp_path / "runs"
    kal.compare("iris", ["crossentropy"], seeds=1, epochs=1, output=str(output), plots=False,
                verbose=0)  # fmt: skip
    with pytest.raises(ValueError, match="settings differ in epochs"):
        kal.compare("iris", ["crossentropy"], seeds=1, epochs=2, output=str(output),
                    plots=False, resume=True, verbose=0)  # fmt: skip


@pytest.mark.slow
def test_sigint_keeps_finished_runs_and_resume_completes_them(tmp_path):
    losses = ["--losses", "crossentropy,focal", "--no-plots"]
    reference = tmp_path / "reference"
    assert cli.main([*ARGS, *losses, "--output", str(reference)]) == 0
    expected = json.loads((reference / "results.json").read_text())

    output = tmp_path / "interrupted"
    command = [sys.executable, "-m", "keras_adaptive_loss", *ARGS, *losses, "--output", str(output)]
    process = subprocess.Popen(command, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 240
    path = output / "unfinished" / "results.json"
    while time.monotonic() < deadline:  # wait until at least one run is on disk
        if path.exists() and json.loads(path.read_text())["runs"]:
            break
        time.sleep(0.2)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=120)
    if (output / "results.json").exists():
        pytest.skip("the comparison finished before the interrupt arrived")
    saved = json.loads(path.read_text())
    assert process.returncode == 130 and "Traceback" not in stderr
    assert "unfinished; add --resume" in stderr.strip().splitlines()[-1]
    assert not saved["complete"] and 1 <= len(saved["runs"]) < 4
    assert not (output / ".compare.lock").exists()
    # a new comparison without --resume would overwrite those runs: refused, nothing lost
    assert cli.main([*ARGS, *losses, "--output", str(output)]) == 2
    assert json.loads(path.read_text()) == saved

    assert cli.main([*ARGS, *losses, "--output", str(output), "--resume"]) == 0
    resumed = json.loads((output / "results.json").read_text())
    assert resumed["complete"] and not (output / "unfinished").exists()
    key = [(run["loss"], run["seed"]) for run in resumed["runs"]]
    assert key == [(run["loss"], run["seed"]) for run in expected["runs"]]
    for got, want in zip(resumed["runs"], expected["runs"], strict=True):
        assert got["test_metrics"] == pytest.approx(want["test_metrics"])
        assert got["history"]["loss"] == pytest.approx(want["history"]["loss"], rel=1e-5)
