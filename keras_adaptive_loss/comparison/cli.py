"""The ``keras-adaptive-loss`` console script.

    keras-adaptive-loss compare --dataset digits --losses crossentropy,focal,ala \\
        --seeds 5 --epochs 20 --output runs/
    keras-adaptive-loss list

A bad argument prints one line (``keras-adaptive-loss: error: ...``) and exits with status 2.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

PROGRAM = "keras-adaptive-loss"


class _Parser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line, without the usage block."""

    def error(self, message: str):  # type: ignore[override]
        self.exit(2, f"{PROGRAM}: error: {message}\n")


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog=PROGRAM, description="Compare adaptive losses with cross-entropy.")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    run = commands.add_parser("compare", help="train one model with several losses over seeds")
    run.add_argument(
        "--dataset",
        default="digits",
        help="offline name, a .csv or .npz file, synthetic:key=value,..., or a TFDS name",
    )
    run.add_argument("--losses", default=None, help="comma-separated loss names")
    run.add_argument("--model", default="mlp", help="mlp, cnn1d or resnet")
    run.add_argument("--seeds", type=int, default=5, help="number of seeds (0, 1, ...)")
    run.add_argument("--epochs", type=int, default=20)
    run.add_argument("--batch-size", type=int, default=32)
    run.add_argument("--learning-rate", type=float, default=1e-3)
    run.add_argument("--strategy", choices=("none", "mirrored"), default="none")
    run.add_argument("--jit", action="store_true", help="compile training steps with XLA")
    run.add_argument("--positive-class", type=int, default=None, help="train class k vs rest")
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
    run.add_argument("--noise-type", choices=("symmetric", "pair"), default="symmetric")
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
    run.add_argument("--output", default=None, help="directory for CSV, JSON and PNG files")
    run.add_argument("--no-plots", action="store_true", help="write no PNG plots")
    run.add_argument(
        "--resume",
        action="store_true",
        help="continue the interrupted comparison saved in --output (same arguments)",
    )
    run.add_argument("--quiet", action="store_true", help="no progress bar or table")
    commands.add_parser("list", help="list the loss, model and offline dataset names")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the exit status (0 success, 2 bad arguments)."""
    args = _parser().parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from keras_adaptive_loss import datasets
    from keras_adaptive_loss.comparison import DEFAULT_LOSSES, LOSSES, MODELS, compare

    if args.command == "list":
        print("losses:   " + ", ".join(LOSSES))
        print("models:   " + ", ".join(MODELS))
        print("datasets: " + ", ".join(datasets.NAMES) + ", or any TFDS name")
        return 0
    losses = DEFAULT_LOSSES if args.losses is None else args.losses.split(",")
    try:
        compare(
            args.dataset,
            [name.strip() for name in losses],
            model=args.model,
            seeds=args.seeds,
            epochs=args.epochs,
            batch_size=args.batch_size,
            learning_rate=args.learning_rate,
            strategy=None if args.strategy == "none" else args.strategy,
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
            output=args.output,
            plots=not args.no_plots,
            resume=args.resume,
            verbose=0 if args.quiet else 1,
        )
    except (ValueError, RuntimeError) as error:
        print(f"{PROGRAM}: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        where = (
            f"the finished runs are saved in {args.output}; add --resume to finish them"
            if args.output
            else "nothing was saved (no --output)"
        )
        print(f"\n{PROGRAM}: interrupted; {where}.", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
