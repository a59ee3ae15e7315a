"""The console script's first-use behaviour: fast help without TensorFlow, --version, help
with defaults and examples, names that match the registries, progress that names the run in
plain text, and TensorBoard logs from `compare`."""

from __future__ import annotations

import contextlib
import glob
import io
import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

import keras_adaptive_loss as kal
import keras_adaptive_loss.cli as cli
from keras_adaptive_loss.comparison.progress import RunProgress


def _fresh_python(code: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120
    )  # fmt: skip


def test_help_version_and_list_do_not_import_tensorflow():
    code = (
        "import sys, contextlib, io\n"
        "import keras_adaptive_loss.cli as cli\n"
        "for argv in (['--help'], ['compare', '--help'], ['--version'], ['list']):\n"
        "    with contextlib.redirect_stdout(io.StringIO()):\n"
        "        try:\n"
        "            cli.main(argv)\n"
        "        except SystemExit:\n"
        "            pass\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('tensorflow', 'keras')))\n"
    )
    process = _fresh_python(code)
    assert process.returncode == 0, process.stderr
    assert process.stdout.strip() == "[]"


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--seeds", "0"], "--seeds must be an integer >= 1; got 0"),
        (["--epochs", "-1"], "--epochs must be an integer >= 1"),
        (["--batch-size", "0"], "--batch-size must be an integer >= 1"),
        (["--train-size", "0"], "--train-size must be an integer >= 1"),
        (["--learning-rate", "0"], "--learning-rate must be > 0"),
        (["--label-noise", "1.5"], "--label-noise must lie in [0, 1); got 1.5"),
        (["--evaluation", "best", "--resume"], "--resume needs the --output folder"),
        (["--imbalance", "0.5"], "--imbalance must be a head:tail ratio >= 1"),
        (["--model", "vgg"], "Unknown model 'vgg'"),
        (["--losses", "crossentropy,focall"], "Unknown loss 'focall' in --losses"),
        (["--losses", " , "], "--losses is empty"),
        (["--losses", "focal", "--reference", "crossentropy"], "add it to the --losses"),
        (["--strategy", "mirrored", "--jit"], "cannot be combined with a strategy"),
    ],
)
def test_argument_errors_answer_without_importing_tensorflow(arguments, message):
    code = (
        "import contextlib, io, sys, time\n"
        "import keras_adaptive_loss.cli as cli\n"
        "err = io.StringIO()\n"
        "with contextlib.redirect_stderr(err):\n"
        f"    status = cli.main(['compare', *{arguments!r}])\n"
        "print(status, 'tensorflow' in sys.modules, err.getvalue().strip())\n"
    )
    process = _fresh_python(code)
    assert process.returncode == 0, process.stderr
    status, imported, error = process.stdout.strip().split(" ", 2)
    assert (status, imported) == ("2", "False")
    assert error.startswith("keras-adaptive-loss: error: ") and message in error
    assert "\n" not in error


def test_version_prints_the_package_version(capsys):
    try:
        cli.main(["--version"])
    except SystemExit as exit_:
        assert exit_.code == 0
    assert capsys.readouterr().out.strip() == f"keras-adaptive-loss {kal.__version__}"


def test_compare_help_shows_defaults_names_and_three_examples(capsys):
    with contextlib.suppress(SystemExit):
        cli.main(["compare", "--help"])
    text = capsys.readouterr().out
    words = " ".join(text.split())  # argparse wraps lines at the terminal width
    assert "(default: 20)" in words and "(default: digits)" in words
    assert "anyloss_f1" in words and "cnn1d" in words and "breast_cancer" in words
    assert text.count("\n  keras-adaptive-loss compare --") == 3  # the examples


def test_the_registries_are_keyed_by_the_one_names_table(capsys):
    assert tuple(kal.comparison.LOSSES) == kal.names.PRESETS
    assert tuple(kal.comparison.DEFAULT_LOSSES) == kal.names.DEFAULT_PRESETS
    assert set(kal.names.DEFAULT_PRESETS) <= set(kal.names.PRESETS)
    assert tuple(kal.comparison.MODELS) == kal.names.MODELS
    assert tuple(kal.datasets.NAMES) == kal.names.DATASETS
    assert cli.main(["list"]) == 0
    printed = capsys.readouterr().out.splitlines()
    assert printed[0] == "losses:   " + ", ".join(kal.comparison.LOSSES)


@pytest.mark.parametrize(
    "command",
    [
        ["-m", "keras_adaptive_loss", "--help"],
        ["-m", "keras_adaptive_loss", "compare", "--help"],
        ["-m", "keras_adaptive_loss", "compare", "--seeds", "0"],
        ["-m", "keras_adaptive_loss", "compare", "--losses", "focall"],
        ["-c", "import keras_adaptive_loss as kal; kal.__all__, dir(kal), kal.names.PRESETS"],
    ],
)
def test_the_module_and_the_package_answer_without_importing_tensorflow(command):
    # -X importtime lists every module the interpreter imports, on stderr.
    process = subprocess.run(
        [sys.executable, "-X", "importtime", *command], capture_output=True, text=True, timeout=120
    )
    imported = {line.split("|")[-1].strip() for line in process.stderr.splitlines() if "|" in line}
    assert "keras_adaptive_loss" in imported or "keras_adaptive_loss.cli" in imported
    assert not {name for name in imported if name.split(".")[0] in ("tensorflow", "keras")}
    assert process.returncode == (2 if "0" in command or "focall" in command else 0)


@pytest.mark.slow
def test_the_console_script_silences_tensorflow_start_up_lines(tmp_path):
    process = subprocess.run(
        [sys.executable, "-c", "import keras_adaptive_loss.cli as c, sys; "
         "sys.exit(c.main(['compare', '--losses', 'nope']))"],
        capture_output=True, text=True, timeout=120, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": ""},
    )  # fmt: skip
    assert process.returncode == 2
    assert process.stderr.strip().splitlines() == [process.stderr.strip().splitlines()[-1]], (
        process.stderr
    )  # one line: the error, no cuInit / cudart / absl lines
    assert "Unknown loss 'nope'" in process.stderr


def test_progress_names_each_run_in_plain_text_when_not_a_terminal():
    stream = io.StringIO()
    progress = RunProgress(2, stream=stream)  # a StringIO is not a TTY
    progress.start("nce_rce", 3)
    progress.finish("nce_rce", 3, {"accuracy": 0.5, "f1": 0.25}, seconds=1.25)
    progress.finish("focal", 3, {"accuracy": 0.75}, resumed=True)
    assert stream.getvalue().splitlines() == [
        "[1/2] nce_rce, seed 3: test accuracy 50.00 %, test F1 25.00 % (1.2 s)",
        "[2/2] focal, seed 3: test accuracy 75.00 % (resumed)",
    ]
    assert "\x1b" not in stream.getvalue() and "\r" not in stream.getvalue()


def test_progress_on_a_terminal_rewrites_one_status_line():
    stream = io.StringIO()
    progress = RunProgress(1, stream=stream, interactive=True)
    progress.start("focal", 0)
    assert stream.getvalue() == "\r[1/1] focal, seed 0: training ..."
    progress.finish("focal", 0, {"accuracy": 1.0}, seconds=2.0)
    assert stream.getvalue().endswith("\r[1/1] focal, seed 0: test accuracy 100.00 % (2.0 s)\n")


@pytest.mark.slow
def test_compare_progress_lines_name_losses_and_seeds(capsys):
    kal.compare("iris", ["crossentropy", "focal"], seeds=2, epochs=1, plots=False)
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("[")]
    assert [line.split(":")[0] for line in lines] == [
        "[1/4] crossentropy, seed 0", "[2/4] focal, seed 0",
        "[3/4] crossentropy, seed 1", "[4/4] focal, seed 1",
    ]  # fmt: skip


def _scalars(directory: str) -> dict[str, list[float]]:
    values: dict[str, list[float]] = {}
    for path in sorted(glob.glob(os.path.join(directory, "train", "events.out.tfevents.*"))):
        for event in tf.compat.v1.train.summary_iterator(path):
            for value in event.summary.value:
                if value.tag.startswith("epoch_"):
                    values.setdefault(value.tag, []).append(float(tf.make_ndarray(value.tensor)))
    return values


@pytest.mark.slow
def test_compare_writes_tensorboard_logs_per_run_with_the_adapted_parameters(tmp_path):
    status = cli.main(
        ["compare", "--dataset", "iris", "--losses", "crossentropy,ce_el_0-0.5", "--seeds", "1",
         "--epochs", "3", "--quiet", "--tensorboard", str(tmp_path)]
    )  # fmt: skip
    assert status == 0
    assert sorted(os.listdir(tmp_path)) == ["ce_el_0-0.5", "crossentropy"]
    mix = _scalars(str(tmp_path / "ce_el_0-0.5" / "seed-0"))
    focus = mix["epoch_focus"]  # the 0 -> 0.5 protocol, logged by FocusSchedule
    assert len(focus) == 3 and np.all(np.diff(focus) > 0) and focus[-1] == 0.5
    assert len(_scalars(str(tmp_path / "crossentropy" / "seed-0"))["epoch_loss"]) == 3


@pytest.mark.slow
def test_another_keras_backend_gets_a_clear_import_error():
    # Only TensorFlow is installed here, so the other backend is simulated where Keras reports it.
    code = (
        "import keras\nkeras.backend.backend = lambda: 'jax'\n"
        "import keras_adaptive_loss as kal\nkal.StochasticLoss\n"
    )
    process = _fresh_python(code)
    assert process.returncode == 1
    last = process.stderr.strip().splitlines()[-1]
    assert last.startswith("ImportError: keras-adaptive-loss runs on Keras's TensorFlow backend")
    assert "running on 'jax'" in last and "KERAS_BACKEND=tensorflow" in last
