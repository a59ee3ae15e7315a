"""Where the label-noise losses lose to cross-entropy, where they win, and why.

A paired study (through `kal.compare`, MNIST-1D, `cnn1d`, Adam 1e-3, 20 % symmetric noise on
the training and validation labels, 5 seeds) of the active-passive losses of Ma et al. (2020)
against cross-entropy, as ablations:

- the paper's CIFAR-10 weights (NCE+RCE, alpha = beta = 1) and CIFAR-100 weights
  (alpha = 10, beta = 0.1), to see whether the passive term's weight causes the underfit;
- CE+RCE (the symmetric cross-entropy of Wang et al. 2019), to see whether the normalisation
  of the active term causes it;
- each at 20 epochs (where cross-entropy has not begun to memorise the flipped labels), at
  60 epochs, and in a regime built for memorisation: 500 training samples (425 after the
  validation hold-out) for 150 epochs, where cross-entropy can fit every flipped label.

And one regime where cross-entropy does memorise (``digits-memorise``): scikit-learn's digits
(1,145 training samples after the hold-out), the `mlp` model, 150 epochs — its training
accuracy on the noisy labels climbs past the clean fraction while the validation accuracy
falls. Run it at 20 % and 40 % noise:

    python benchmarks/noise_losses_study.py --output runs/noise-study
    python benchmarks/noise_losses_study.py --epochs 2 --seeds 2 --lengths short
    python benchmarks/noise_losses_study.py --lengths digits-memorise --noise 0.4 \\
        --losses "crossentropy;ce+rce a1 b0.1;nce+rce a1 b1;nce+mae a1 b1;gce"
"""

from __future__ import annotations

import os

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from paired_tasks import argument_parser, kept_arms, run_tasks

import keras_adaptive_loss as kal


def _active_passive(active: str, passive: str, alpha: float, beta: float):
    def factory(context):
        return kal.losses.ActivePassiveLoss(active, passive, alpha=alpha, beta=beta)

    return factory


#: label -> compare loss spec
LOSSES = {
    "crossentropy": "crossentropy",
    "nce+rce a1 b1": _active_passive("nce", "rce", 1.0, 1.0),
    "nce+rce a10 b0.1": _active_passive("nce", "rce", 10.0, 0.1),
    "ce+rce a1 b1": _active_passive("crossentropy", "rce", 1.0, 1.0),
    "ce+rce a1 b0.1": _active_passive("crossentropy", "rce", 1.0, 0.1),
    "ce+rce a1 b0.05": _active_passive("crossentropy", "rce", 1.0, 0.05),
    "ce+rce a1 b0.02": _active_passive("crossentropy", "rce", 1.0, 0.02),
    "nce+mae a1 b1": _active_passive("nce", "mae", 1.0, 1.0),
    "gce": "gce",
}
_MNIST1D = {"dataset": "mnist1d", "model": "cnn1d"}
#: name -> compare keyword arguments
LENGTHS = {
    "short": {**_MNIST1D, "epochs": 20},
    "long": {**_MNIST1D, "epochs": 60},
    "memorise": {**_MNIST1D, "epochs": 150, "train_size": 500},
    "digits-memorise": {"dataset": "digits", "model": "mlp", "epochs": 150},
}


def main(
    lengths=tuple(LENGTHS),
    seeds: int = 5,
    epochs: int | None = None,
    noise: float = 0.2,
    output: str | None = None,
    verbose: int = 1,
    keep: tuple[str, ...] | None = None,
) -> dict:
    """Returns ``{length: ComparisonResult}``; each comparison prints its paired table.

    ``keep`` names the arms to run (cross-entropy, the reference, always runs).
    """
    tasks = {length: (options, LOSSES) for length, options in LENGTHS.items()}
    return run_tasks(tasks, lengths, seeds, epochs, output, verbose, keep, label_noise=noise)


if __name__ == "__main__":
    parser = argument_parser(__doc__.splitlines()[0], LENGTHS, flag="--lengths")
    parser.add_argument("--noise", type=float, default=0.2)
    args = parser.parse_args()
    main(
        tuple(args.lengths.split(",")),
        args.seeds,
        args.epochs,
        args.noise,
        args.output,
        keep=kept_arms(args.losses),
    )
