"""The drop-in replacements for cross-entropy, paired against it on every task we can run.

PolyLoss (Leng et al. 2022), Squentropy (Hui, Belkin & Wright 2023) and the sparsemax loss
(Martins & Astudillo 2016) are offered as "use it instead of cross-entropy, same optimiser"
losses, so each must at least not lose to it. Through `kal.compare` (5 seeds, paired against
cross-entropy, Adam 1e-3, batch 32):

- **digits** — scikit-learn's digits, the `mlp` model, 20 epochs (the `compare` default);
- **mnist1d** — MNIST-1D, the `cnn1d` model, 20 epochs (CE underfits: ~65 %);
- **mnist1d-noise-20** — the same with 20 % symmetric noise on the training and validation
  labels;
- **mnist1d-tail-10** — the same with a 10:1 exponential long tail on the training split.

Arms: PolyLoss with the paper's epsilon = 1 (Poly-1, `PolyLoss.paper`, the `poly1` preset),
epsilon = 2 (the paper's best on ImageNet) and epsilon = -1 (its detection setting, which
lowers the weight of confident samples as focal loss does; the default, the
`poly` preset), Squentropy, the sparsemax loss and focal loss for reference, and
cross-entropy on the same linear output layer that Squentropy and the sparsemax loss train
(``crossentropy from logits``), to tell the loss from the output layer. ``--losses`` keeps
a subset (labels separated by ";").

    python benchmarks/drop_in_losses.py --output runs/drop-in
    python benchmarks/drop_in_losses.py --tasks digits --seeds 2 --epochs 2
"""

from __future__ import annotations

import os

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras
from paired_tasks import run_from_command_line, script_main

import keras_adaptive_loss as kal


def _poly(epsilon: float):
    return lambda context: kal.losses.PolyLoss(epsilon=epsilon)


def _crossentropy_from_logits(context):
    # The ablation for the losses that read logits (Squentropy, sparsemax): the same linear
    # output layer, trained with plain cross-entropy.
    loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    return kal.comparison.LossSetup(loss, logits=True)


#: label -> compare loss spec
LOSSES = {
    "crossentropy": "crossentropy",
    "poly eps=1 (paper)": "poly1",
    "poly eps=2": _poly(2.0),
    "poly eps=-1 (default)": "poly",
    "squentropy": "squentropy",
    "sparsemax": "sparsemax",
    "crossentropy from logits": _crossentropy_from_logits,
    "focal": "focal",
}
_MNIST1D = {"dataset": "mnist1d", "model": "cnn1d", "epochs": 20}
#: task -> (compare keyword arguments, losses)
TASKS = {
    "digits": ({"dataset": "digits", "model": "mlp", "epochs": 20}, LOSSES),
    "mnist1d": (_MNIST1D, LOSSES),
    "mnist1d-noise-20": ({**_MNIST1D, "label_noise": 0.2}, LOSSES),
    "mnist1d-tail-10": ({**_MNIST1D, "imbalance": 10.0}, LOSSES),
}


#: ``main(tasks, seeds, epochs, output, verbose, keep)`` -> ``{task: ComparisonResult}``; each
#: comparison prints its paired table, and ``keep`` names the arms to run (cross-entropy, the
#: reference, always runs).
main = script_main(TASKS)


if __name__ == "__main__":
    run_from_command_line(__doc__.splitlines()[0], TASKS)
