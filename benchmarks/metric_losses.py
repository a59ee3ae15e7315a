"""AnyLoss and EnsLoss against cross-entropy, paired, where their papers say they help.

Through `kal.compare` (5 seeds, paired against cross-entropy):

- **imbalanced binary** — MNIST-1D "digit 0 vs rest" (10 % positives; the `cnn1d` model,
  20 epochs): AnyLoss's claim is imbalanced learning, scored by F1 and accuracy;
- **balanced binary** — scikit-learn's breast cancer set (the `mlp` model, 30 epochs);
- **multi-class** — digits (macro-averaged AnyLoss-F1, 30 epochs);
- **overfitting** — the regime EnsLoss was made for: MNIST-1D "digit 0 vs rest" with 1,000
  training samples, 20 % of their labels flipped, trained for 60 epochs.

Ablations: AnyLoss's cross-entropy anchor and amplifier — the default (anchor weight 3.0,
L = 10) against the paper's loss (no anchor, L = 73), the anchor at 0.1 and 3.0 with L = 73
L = 10 without the anchor, and weight
1.0 with L = 10 — and EnsLoss against the logistic loss its reported value uses (plain
cross-entropy): the default (the logistic loss's tail beyond margin 1, derivatives clipped
at 3), the clip at 1 and at 10, and the paper's ``1/z`` tail
with the clip at 1 (`EnsLoss.paper`). ``--losses`` keeps a subset (labels separated by ";").

    python benchmarks/metric_losses.py --output runs/metric-losses
    python benchmarks/metric_losses.py --tasks breast-cancer --seeds 2 --epochs 2
"""

from __future__ import annotations

import os

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from paired_tasks import run_from_command_line, script_main

import keras_adaptive_loss as kal


def _ensloss(clip: float):
    return lambda context: kal.losses.EnsLoss(clip=clip, seed=context.seed)


def _anyloss(metric: str, amplifier: float = 73.0, crossentropy_weight: float = 0.0):
    return lambda context: kal.losses.AnyLoss(
        metric, amplifier=amplifier, crossentropy_weight=crossentropy_weight
    )


BINARY_LOSSES = {
    "crossentropy": "crossentropy",
    "anyloss_f1": "anyloss_f1",
    "anyloss_f1 paper": _anyloss("f1"),
    "anyloss_f1 + 0.1 CE": _anyloss("f1", crossentropy_weight=0.1),
    "anyloss_f1 L=10": _anyloss("f1", 10.0),
    "anyloss_f1 + 3 CE": _anyloss("f1", crossentropy_weight=3.0),
    "anyloss_f1 + 1 CE, L=10": _anyloss("f1", 10.0, crossentropy_weight=1.0),
    "anyloss_gmean": "anyloss_gmean",
    "ensloss": "ensloss",
    "ensloss clip=1": _ensloss(1.0),
    "ensloss clip=10": _ensloss(10.0),
    "ensloss paper": "ensloss_paper",
}
MULTICLASS_LOSSES = {
    "crossentropy": "crossentropy",
    "anyloss_f1": "anyloss_f1",
    "anyloss_f1 paper": _anyloss("f1"),
    "anyloss_f1 + 0.1 CE": _anyloss("f1", crossentropy_weight=0.1),
    "anyloss_f1 L=10": _anyloss("f1", 10.0),
    "anyloss_f1 + 3 CE": _anyloss("f1", crossentropy_weight=3.0),
    "anyloss_f1 + 1 CE, L=10": _anyloss("f1", 10.0, crossentropy_weight=1.0),
    "anyloss_accuracy": "anyloss_accuracy",
}
#: task -> (compare keyword arguments, losses)
TASKS = {
    "mnist1d-0-vs-rest": (
        {"dataset": "mnist1d", "model": "cnn1d", "epochs": 20, "positive_class": 0},
        BINARY_LOSSES,
    ),
    "breast-cancer": ({"dataset": "breast_cancer", "epochs": 30}, BINARY_LOSSES),
    "digits": ({"dataset": "digits", "epochs": 30}, MULTICLASS_LOSSES),
    "mnist1d-0-vs-rest-overfit": (
        {
            "dataset": "mnist1d",
            "model": "cnn1d",
            "epochs": 60,
            "positive_class": 0,
            "train_size": 1000,
            "label_noise": 0.2,
        },
        {
            "crossentropy": "crossentropy",
            "anyloss_f1": "anyloss_f1",
            "anyloss_f1 paper": _anyloss("f1"),
            "anyloss_f1 + 0.1 CE": _anyloss("f1", crossentropy_weight=0.1),
            "anyloss_f1 + 3 CE": _anyloss("f1", crossentropy_weight=3.0),
            "anyloss_f1 + 1 CE, L=10": _anyloss("f1", 10.0, crossentropy_weight=1.0),
            "ensloss": "ensloss",
            "ensloss clip=1": _ensloss(1.0),
            "ensloss clip=10": _ensloss(10.0),
            "ensloss paper": "ensloss_paper",
        },
    ),
}


#: ``main(tasks, seeds, epochs, output, verbose, keep)`` -> ``{task: ComparisonResult}``; each
#: comparison prints its paired table, and ``keep`` names the arms to run (cross-entropy, the
#: reference, always runs).
main = script_main(TASKS)


if __name__ == "__main__":
    run_from_command_line(__doc__.splitlines()[0], TASKS)
