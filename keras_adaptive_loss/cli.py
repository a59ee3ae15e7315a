"""The ``keras-adaptive-loss`` console script.

    keras-adaptive-loss compare --dataset digits --losses crossentropy,focal,ala \\
        --seeds 5 --epochs 20 --output runs/
    keras-adaptive-loss list
    keras-adaptive-loss --version

Importing this module imports neither Keras nor TensorFlow (the package's names resolve
lazily, `keras_adaptive_loss.names`), so ``--help``, ``--version``, ``list`` and every argument
error answer at once. TensorFlow is imported only to run a comparison, with its start-up log
lines silenced. A bad argument prints one line (``keras-adaptive-loss: error: ...``) and exits
with status 2: the arguments become a `ComparisonSettings`, which checks everything that can be
checked without the data (counts, rates, names of losses and models) before TensorFlow is
imported.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import sys
from collections.abc import Iterator, Sequence
from importlib import metadata

from keras_adaptive_loss import names
from keras_adaptive_loss.comparison.settings import ComparisonSettings, SettingError

PROGRAM = "keras-adaptive-loss"

EXAMPLES = """examples:
  # does anything beat cross-entropy on digits? (the default losses, 5 seeds)
  keras-adaptive-loss compare --dataset digits --output runs/digits

  # the label-noise regime on MNIST-1D: 20 % of training labels flipped
  keras-adaptive-loss compare --dataset mnist1d --model cnn1d --label-noise 0.2 \\
      --losses crossentropy,focal,nce_rce,gce --output runs/noise

  # your own data (a CSV with a "label" column), a binary task scored by AP and F1
  keras-adaptive-loss compare --dataset my.csv --positive-class 1 \\
      --losses crossentropy,uniloss_ap,anyloss_f1 --tensorboard runs/tb
"""


def version() -> str:
    """The installed package's version, read without importing the package."""
    try:
        return metadata.version(PROGRAM)
    except metadata.PackageNotFoundError:  # a source checkout that was never installed
        init = os.path.join(os.path.dirname(__file__), "keras_adaptive_loss", "__init__.py")
        with open(init) as file:
            return re.search(r'__version__ = "([^"]+)"', file.read()).group(1)


class _Parser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line, without the usage block."""

    def error(self, message: str):  # type: ignore[override]
        self.exit(2, f"{PROGRAM}: error: {message}\n")


class _HelpFormatter(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
    """Shows every option's default and keeps the examples' line breaks."""


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog=PROGRAM, description="Compare adaptive losses with cross-entropy.")
    parser.add_argument("--version", action="version", version=f"{PROGRAM} {version()}")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    run = commands.add_parser(
        "compare",
        help="train one model with several losses over seeds",
        description=(
            "Train the same model with each loss over several seeds (same initial weights and "
            "data per seed) and report each loss's paired difference to the reference loss "
            "with a 95 % interval."
        ),
        epilog=EXAMPLES,
        formatter_class=_HelpFormatter,
    )
    run.add_argument(
        "--dataset",
        default="digits",
        help="offline name (" + ", ".join(names.DATASETS) + "), a .csv or .npz file, "
        "synthetic:key=value,..., or a TFDS name",
    )
    run.add_argument(
        "--losses",
        default=",".join(names.DEFAULT_PRESETS),
        help="comma-separated presets, from: " + ", ".join(names.PRESETS),
    )
    run.add_argument("--model", default="mlp", help=", ".join(names.MODELS))
    run.add_argument("--seeds", type=int, default=5, help="number of seeds (0, 1, ...)")
    run.add_argument("--epochs", type=int, default=20, help="training epochs per run")
    run.add_argument("--batch-size", type=int, default=32, help="training batch size")
    run.add_argument("--learning-rate", type=float, default=1e-3, help="optimizer step size")
    run.add_argument(
        "--strategy", choices=("none", "mirrored"), default="none", help="tf.distribute strategy"
    )
    run.add_argument("--jit", action="store_true", help="compile training steps with XLA")
    run.add_argument(
        "--positive-class",
        default=None,
        metavar="CLASS",
        help="train CLASS vs rest: a class id, or a name of a CSV file's named labels",
    )
    run.add_argument(
        "--reference",
        default=None,
        help="loss the others are paired against (default: crossentropy, else the first loss)",
    )
    run.add_argument(
        "--optimizer", choices=("adam", "sgd"), default="adam", help="adam, or sgd (momentum 0.9)"
    )
    run.add_argument(
        "--label-noise",
        type=float,
        default=0.0,
        metavar="RATE",
        help="flip this fraction of training and validation labels",
    )
    run.add_argument(
        "--noise-type",
        choices=("symmetric", "pair"),
        default="symmetric",
        help="flip to any other class, or class c to c+1",
    )
    run.add_argument(
        "--imbalance",
        type=float,
        default=None,
        metavar="RATIO",
        help="exponential long tail on the training split, head:tail RATIO",
    )
    run.add_argument(
        "--train-size",
        type=int,
        default=None,
        metavar="N",
        help="keep N samples of the training split (stratified)",
    )
    run.add_argument(
        "--evaluation",
        choices=("last", "best", "best-latest"),
        default="last",
        help="score the last epoch, or the best validation epoch (ties: earliest, or latest)",
    )
    run.add_argument("--label-column", default="label", help="label column of a .csv dataset")
    run.add_argument("--data-dir", default=None, help="TFDS data_dir")
    run.add_argument(
        "--download",
        action="store_true",
        help="let TFDS download a dataset not prepared under --data-dir (needs internet)",
    )
    run.add_argument("--output", default=None, help="directory for CSV, JSON and PNG files")
    run.add_argument("--no-plots", action="store_true", help="write no PNG plots")
    run.add_argument(
        "--tensorboard", default=None, metavar="DIR", help="TensorBoard logs, one per run"
    )
    run.add_argument(
        "--resume",
        action="store_true",
        help="continue the interrupted comparison saved in --output (same arguments)",
    )
    run.add_argument("--quiet", action="store_true", help="no progress lines or table")
    commands.add_parser("list", help="list the loss, model and offline dataset names")
    return parser


@contextlib.contextmanager
def _quiet_native_stderr() -> Iterator[None]:
    """Sends file descriptor 2 to /dev/null while TensorFlow loads: its C++ start-up lines
    ("cuInit", "Could not find cuda drivers", absl's preamble) are written there before any
    log-level setting applies. Python's own errors are raised after it is restored."""
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


#: The command-line option of each `ComparisonSettings` field whose option is not its name.
_OPTIONS = {"jit_compile": "--jit", "plots": "--no-plots", "verbose": "--quiet"}


def option(field: str) -> str:
    """The command-line option that sets ``field`` of `ComparisonSettings`.

    >>> option("batch_size"), option("jit_compile")
    ('--batch-size', '--jit')
    """
    return _OPTIONS.get(field, "--" + field.replace("_", "-"))


def settings(args: argparse.Namespace) -> ComparisonSettings:
    """``compare``'s arguments as `ComparisonSettings`, checked without importing TensorFlow
    (so a typo is answered at once, not after TensorFlow's start-up); raises `SettingError`."""
    return ComparisonSettings(
        dataset=args.dataset,
        losses=args.losses,
        model=args.model,
        seeds=args.seeds,
        epochs=args.epochs,
        batch_size=args.batch_size,
        learning_rate=args.learning_rate,
        strategy=args.strategy,
        jit_compile=args.jit,
        positive_class=args.positive_class,
        reference=args.reference,
        optimizer=args.optimizer,
        label_noise=args.label_noise,
        noise_type=args.noise_type,
        imbalance=args.imbalance,
        train_size=args.train_size,
        evaluation=args.evaluation,
        label_column=args.label_column,
        data_dir=args.data_dir,
        download=args.download,
        output=args.output,
        plots=not args.no_plots,
        resume=args.resume,
        tensorboard=args.tensorboard,
        verbose=0 if args.quiet else 1,
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the exit status (0 success, 2 bad arguments, 130 interrupted)."""
    args = _parser().parse_args(argv)
    if args.command == "list":
        print("losses:   " + ", ".join(names.PRESETS))
        print("models:   " + ", ".join(names.MODELS))
        print("datasets: " + ", ".join(names.DATASETS) + ", or any TFDS name")
        return 0
    try:
        checked = settings(args)
    except SettingError as error:
        hint = f" See {PROGRAM} list." if error.field == "losses" else ""
        print(f"{PROGRAM}: error: {error.message(option)}{hint}", file=sys.stderr)
        return 2
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    with _quiet_native_stderr():
        import tensorflow  # loaded here, quietly; the package needs it
    tensorflow.get_logger().setLevel("ERROR")  # e.g. retracing notices: not the user's concern
    from keras_adaptive_loss.comparison.runner import compare

    try:
        compare(checked)
    except (ValueError, RuntimeError) as error:
        print(f"{PROGRAM}: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        unfinished = os.path.join(args.output or "", "unfinished")
        if not args.output:
            where = "nothing was saved (no --output)"
        elif os.path.exists(os.path.join(unfinished, "results.json")):
            where = f"the finished runs are saved in {unfinished}; add --resume to finish them"
        else:
            where = f"no run had finished; {args.output} is as it was"
        print(f"\n{PROGRAM}: interrupted; {where}.", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
