"""A child's training state: model weights, optimizer variables and adaptive loss parameters;
copied between children by the exploit step and written to a backup folder."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import keras
import numpy as np

from keras_adaptive_loss.losses.base import AdaptiveLoss

__all__ = ["copy_state", "load_state", "save_state"]


def _loss_parameters(model: keras.Model) -> dict[str, Any]:
    loss = model.loss
    return dict(loss.parameters) if isinstance(loss, AdaptiveLoss) else {}


def copy_state(source: keras.Model, target: keras.Model) -> None:
    """Makes ``target`` continue where ``source`` is: its weights, its optimizer's variables
    (step count and moments) and the adaptive parameters of its loss, when both losses have
    the same ones.

    >>> import numpy as np
    >>> def build():
    ...     model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(2)])
    ...     model.compile(optimizer="adam", loss="mse")
    ...     _ = model.train_on_batch(np.ones((4, 2)), np.ones((4, 2)))
    ...     return model
    >>> a, b = build(), build()
    >>> _ = a.train_on_batch(np.ones((4, 2)), np.zeros((4, 2)))
    >>> copy_state(a, b)
    >>> int(b.optimizer.iterations), bool(np.all(a.get_weights()[0] == b.get_weights()[0]))
    (2, True)
    """
    target.set_weights(source.get_weights())
    _assign_optimizer(target, [variable.numpy() for variable in source.optimizer.variables])
    parameters = _loss_parameters(source)
    if parameters and set(parameters) == set(_loss_parameters(target)):
        for name, value in parameters.items():
            target.loss.set_parameter(name, value)


def _assign_optimizer(model: keras.Model, values: list[np.ndarray]) -> None:
    optimizer = model.optimizer
    if not optimizer.built:
        optimizer.build(model.trainable_variables)
    variables = optimizer.variables
    if len(variables) != len(values):
        raise ValueError(
            f"The optimizer holds {len(variables)} variables but the state has {len(values)}: "
            "every child must use the same optimizer and model."
        )
    for variable, value in zip(variables, values, strict=True):
        variable.assign(value)


def save_state(model: keras.Model, path: str | Path) -> None:
    """Writes ``model``'s weights, optimizer variables and loss parameters to ``path`` (an
    ``.npz``), atomically: a reader sees the old file or the new one."""
    arrays: dict[str, np.ndarray] = {}
    for i, weight in enumerate(model.get_weights()):
        arrays[f"weight_{i}"] = weight
    for i, variable in enumerate(model.optimizer.variables):
        arrays[f"optimizer_{i}"] = np.asarray(variable.numpy())
    for name, value in _loss_parameters(model).items():
        arrays[f"loss_{name}"] = np.asarray(value)
    path = Path(path)
    partial = path.with_name(path.name + ".partial.npz")
    np.savez(partial, **arrays)
    os.replace(partial, path)


def load_state(model: keras.Model, path: str | Path) -> None:
    """Restores what `save_state` wrote into ``model`` (built and compiled like the saved one)."""
    with np.load(path) as stored:

        def numbered(prefix: str) -> list[np.ndarray]:
            keys = sorted(
                (k for k in stored.files if k.startswith(prefix)),
                key=lambda k: int(k[len(prefix) :]),
            )
            return [stored[key] for key in keys]

        model.set_weights(numbered("weight_"))
        _assign_optimizer(model, numbered("optimizer_"))
        for key in stored.files:
            if key.startswith("loss_"):
                value = stored[key]
                model.loss.set_parameter(key[5:], float(value) if value.ndim == 0 else value)
