"""What the paired-study scripts share: `kal.compare` over named tasks, with a subset of arms.

A script defines its tasks as ``{task: (compare keyword arguments, {arm label: loss spec})}``
and calls `run_tasks`; ``keep`` (the scripts' ``--losses "a;b"``) runs only some arms, and
cross-entropy, the reference of every paired difference, always runs.
"""

from __future__ import annotations

import argparse
import functools
import os
from collections.abc import Iterable, Mapping
from typing import Any

import keras_adaptive_loss as kal

REFERENCE = "crossentropy"

Tasks = Mapping[str, tuple[Mapping[str, Any], Mapping[str, Any]]]


def select_arms(
    losses: Mapping[str, Any], keep: Iterable[str] | None, known: Iterable[str] = ()
) -> dict[str, Any]:
    """The arms of ``losses`` named in ``keep`` (all with ``None``), cross-entropy always.

    Raises a ValueError for a name in ``keep`` that is neither in ``losses`` nor ``known``
    (the arms of the script's other tasks).
    """
    arms = set(losses) | set(known)
    unknown = sorted(set(keep or ()) - arms)
    if unknown:
        raise ValueError(f"Unknown arms {unknown}; arms: {sorted(arms)}.")
    return {k: v for k, v in losses.items() if keep is None or k == REFERENCE or k in keep}


def run_tasks(
    definitions: Tasks,
    tasks: Iterable[str] | None = None,
    seeds: int = 5,
    epochs: int | None = None,
    output: str | None = None,
    verbose: int = 1,
    keep: Iterable[str] | None = None,
    **common: Any,
) -> dict[str, kal.comparison.ComparisonResult]:
    """Runs `kal.compare` on each named task (all of ``definitions`` by default); returns
    ``{task: ComparisonResult}``.

    ``epochs`` overrides every task's; ``common`` keyword arguments go to every comparison;
    each comparison prints its paired table and, with ``output``, writes it under
    ``output/<task>``.
    """
    keep = None if keep is None else tuple(keep)
    every_arm = {arm for _, losses in definitions.values() for arm in losses}
    results = {}
    for name in definitions if tasks is None else tasks:
        options, losses = definitions[name]
        options = {**options, **common}
        if epochs is not None:
            options["epochs"] = epochs
        results[name] = kal.compare(
            losses=select_arms(losses, keep, known=every_arm),
            seeds=seeds,
            output=None if output is None else os.path.join(output, name),
            plots=False,
            verbose=verbose,
            **options,
        )
    return results


def script_main(definitions: Tasks):
    """The ``main`` of a script over ``definitions``: `run_tasks` with them bound, called as
    ``main(tasks, seeds, epochs, output, verbose, keep)``."""
    return functools.partial(run_tasks, definitions)


def run_from_command_line(description: str, definitions: Tasks) -> None:
    """Parses `argument_parser`'s options and runs `run_tasks` over ``definitions`` with them."""
    args = argument_parser(description, definitions).parse_args()
    tasks = tuple(args.tasks.split(","))
    run_tasks(definitions, tasks, args.seeds, args.epochs, args.output, keep=kept_arms(args.losses))


def argument_parser(description: str, tasks: Iterable[str], flag: str = "--tasks"):
    """The scripts' common options: ``flag`` (comma-separated task names), ``--seeds``,
    ``--epochs``, ``--output`` and ``--losses`` (arm labels separated by ";")."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument(flag, default=",".join(tasks))
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--epochs", type=int, default=None, help="override every task")
    parser.add_argument("--output", default=None)
    parser.add_argument("--losses", default=None, help='arms to keep, separated by ";"')
    return parser


def kept_arms(losses: str | None) -> tuple[str, ...] | None:
    """``--losses "a; b"`` as ``("a", "b")``; ``None`` (every arm) when not given."""
    return None if losses is None else tuple(arm.strip() for arm in losses.split(";"))
