"""Does StochasticLoss beat cross-entropy, and why? A paired study with its ablations.

Through `kal.compare` (same initial weights and data order per seed, 5 seeds, the MLP preset,
20 epochs, batch 32, Adam 1e-3, scored on the untouched test split), on four tasks:
scikit-learn's digits, MNIST-1D, MNIST-1D with 20 % symmetric label noise and MNIST-1D with
a 10:1 long tail. The arms:

- ``crossentropy`` (the reference) and each other candidate alone (``mse``, ``mae``,
  ``hinge``, ``cosine``);
- ``normalisation only``: `StochasticLoss(["crossentropy"])`, where the one candidate is
  divided by its running mean and nothing is selected;
- ``uniform``: the five candidates, normalised, mixed with fixed uniform selection
  probabilities (decision network frozen at its uniform start; the Gumbel samples still vary);
- ``paper``: `StochasticLoss.paper()` (Eqs. 4-11 as written);
- ``learned, entropy E``: the normalised, learned selection with entropy bonus E (0 is the
  unregularised selection, which collapses); the default is the E chosen from these;
- ``validated, O``: the default plus `kal.callbacks.ValidationSelection` (the prior from the
  candidates' gradient alignment with held-out objective O, on the run's validation split);
- ``stochastic preset``: `StochasticLoss` and `ValidationSelection` with today's defaults
  (the ``stochastic`` preset of `compare`).

Every arm but the last runs with the settings this study was first measured with
(2026-12-06): ``normalize="running_mean"`` (each candidate over its running mean, the mixture
at that level) and alignments over the whole model (``scope="model"``), so its documented
figures reproduce; the defaults since are ``normalize="to_first"`` and ``scope="output_layer"``
(see `kal.StochasticLoss` and `kal.callbacks.ValidationSelection`).

``--arms`` keeps a subset (labels separated by ";"; ``crossentropy`` is always kept).

Prints each task's paired table and the final mean selection weights of the SLF arms.

    python benchmarks/slf_effectiveness.py --output runs/slf
    python benchmarks/slf_effectiveness.py --tasks digits --seeds 2 --epochs 2
"""

from __future__ import annotations

import argparse
import os

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np

import keras_adaptive_loss as kal

CANDIDATES = ["crossentropy", "mse", "mae", "hinge", "cosine"]
ENTROPIES = (0.0, 0.1, 1.0)
OBJECTIVES = ("crossentropy", "expectation")
#: task -> compare keyword arguments
TASKS = {
    "digits": {"dataset": "digits"},
    "mnist1d": {"dataset": "mnist1d"},
    "mnist1d-noise": {"dataset": "mnist1d", "label_noise": 0.2},
    "mnist1d-imbalance": {"dataset": "mnist1d", "imbalance": 10.0},
}


#: The settings the study was first measured with (see the module docstring).
STUDY_LOSS = {"normalize": "running_mean"}
STUDY_STEER = {"scope": "model"}


def _stochastic(candidates=CANDIDATES, **kwargs):
    def factory(context):
        options = {**STUDY_LOSS, **kwargs}
        loss = kal.StochasticLoss(list(candidates), seed=context.seed, **options)
        return kal.comparison.LossSetup(loss, [kal.callbacks.LossDiagnostics()])

    return factory


def _validated(objective, loss_options=STUDY_LOSS, steer_options=STUDY_STEER):
    def factory(context):
        loss = kal.StochasticLoss(list(CANDIDATES), seed=context.seed, **loss_options)
        steer = kal.callbacks.ValidationSelection(
            context.validation_data, objective=objective, seed=context.seed, **steer_options
        )
        return kal.comparison.LossSetup(loss, [kal.callbacks.LossDiagnostics(), steer])

    return factory


def _paper(context):
    loss = kal.StochasticLoss.paper(seed=context.seed)
    return kal.comparison.LossSetup(loss, [kal.callbacks.LossDiagnostics()])


def _alone(name):
    return lambda context: kal.comparison.LossSetup(kal.losses.CandidateLoss(name))


def arms(entropies=ENTROPIES) -> dict:
    """label -> compare loss spec."""
    result = {"crossentropy": "crossentropy"}
    result.update({name: _alone(name) for name in CANDIDATES[1:]})
    result["normalisation only"] = _stochastic(["crossentropy"])
    result["uniform"] = _stochastic(decision_learning_rate=0.0)
    result["paper"] = _paper
    for entropy in entropies:
        result[f"learned, entropy {entropy:g}"] = _stochastic(entropy=entropy)
    for objective in OBJECTIVES:
        result[f"validated, {objective}"] = _validated(objective)
    result["stochastic preset"] = _validated("crossentropy", {}, {})
    return result


def selection_weights(result) -> dict[str, str]:
    """loss -> the final epoch's mean selection weights over seeds, as text."""
    text = {}
    for loss in result.losses:
        runs = [r for r in result.runs if r.loss == loss]
        keys = [k for k in runs[0].history if k.startswith("slf_weight_")]
        if not keys:
            continue
        means = {k[len("slf_weight_") :]: np.mean([r.history[k][-1] for r in runs]) for k in keys}
        text[loss] = ", ".join(f"{name} {value:.2f}" for name, value in means.items())
    return text


def main(
    tasks=tuple(TASKS),
    seeds: int = 5,
    epochs: int = 20,
    entropies=ENTROPIES,
    output: str | None = None,
    verbose: int = 1,
    keep: tuple[str, ...] | None = None,
) -> dict:
    """Returns ``{task: ComparisonResult}``; each comparison prints its paired table."""
    results = {}
    for task in tasks:
        options = dict(TASKS[task])
        chosen = arms(entropies)
        if keep is not None:
            unknown = set(keep) - set(chosen)
            if unknown:
                raise ValueError(f"Unknown arms {sorted(unknown)}; choose from {list(chosen)}.")
            chosen = {k: v for k, v in chosen.items() if k == "crossentropy" or k in keep}
        results[task] = result = kal.compare(
            options.pop("dataset"),
            chosen,
            seeds=seeds,
            epochs=epochs,
            **options,
            output=None if output is None else os.path.join(output, task),
            plots=False,
            verbose=verbose,
        )
        if verbose:
            print(f"\n{task}: final mean selection weights")
            for loss, weights in selection_weights(result).items():
                print(f"  {loss:<22} {weights}")
    return results


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", default=",".join(TASKS))
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--entropies", default=",".join(f"{e:g}" for e in ENTROPIES))
    parser.add_argument("--output", default=None)
    parser.add_argument("--arms", default=None, help='arm labels to keep, separated by ";"')
    args = parser.parse_args()
    entropies = tuple(float(e) for e in args.entropies.split(","))
    keep = None if args.arms is None else tuple(a.strip() for a in args.arms.split(";"))
    main(tuple(args.tasks.split(",")), args.seeds, args.epochs, entropies, args.output, keep=keep)
