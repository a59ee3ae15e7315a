"""Finding the compiled loss that a callback drives."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import keras

__all__ = ["find_compiled_loss"]


def find_compiled_loss(
    model: Any,
    matches: Callable[[Any], bool],
    *,
    caller: str,
    wanted: str,
    loss_name: str | None = None,
    example: str | None = None,
) -> Any:
    """Returns the one loss in ``model.loss`` for which ``matches(loss)`` holds.

    Callbacks call this in ``on_train_begin``, never earlier: KerasTuner deep-copies callbacks
    for each trial, so a loss object stored at construction would be a stale copy.
    ``model.loss`` may be a single loss or a list/dict of losses (multi-output models).

    Args:
        model: the model the callback is attached to.
        matches: predicate that selects the losses the callback can drive.
        caller: the callback's name, for error messages.
        wanted: what a matching loss looks like, for error messages.
        loss_name: select the loss by its ``name`` when several match.
        example: a loss expression the caller can drive, shown as the fix (e.g.
            ``"kal.losses.CrossentropyExpectationMix()"``).

    Raises:
        ValueError: if the model is not compiled, no loss matches, or several match and
            ``loss_name`` does not choose one.
    """
    compiled = getattr(model, "loss", None) if model is not None else None
    if compiled is None:
        raise ValueError(
            f"{caller} needs a compiled model: call model.compile(loss=...) with {wanted} "
            "before fit()."
        )
    unique = {id(loss): loss for loss in keras.tree.flatten(compiled) if loss is not None}
    found = [
        loss
        for loss in unique.values()
        if matches(loss) and (loss_name is None or getattr(loss, "name", None) == loss_name)
    ]
    if not found:
        selector = f" named {loss_name!r}" if loss_name is not None else ""
        fix = f", e.g. model.compile(loss={example})" if example else ""
        raise ValueError(
            f"{caller} found no compiled loss{selector} that it can drive: it needs {wanted}, but "
            f"the model was compiled with loss={_describe(compiled)}. Compile the model with "
            f"such a loss{fix}."
        )
    if len(found) > 1:
        names = [getattr(loss, "name", repr(loss)) for loss in found]
        raise ValueError(
            f"{caller} found several compiled losses it could drive: {names}. Pass "
            "loss_name=... to choose one."
        )
    return found[0]


def _describe(compiled: Any) -> str:
    """The compiled loss(es) by class name and name, not by object repr."""

    def one(loss: Any) -> str:
        if isinstance(loss, str):
            return repr(loss)
        if isinstance(loss, keras.losses.Loss):
            return f"{type(loss).__name__}(name={loss.name!r})"
        return getattr(loss, "__name__", type(loss).__name__)

    if isinstance(compiled, (list, tuple)):
        return "[" + ", ".join(one(loss) for loss in compiled) + "]"
    if isinstance(compiled, dict):
        return "{" + ", ".join(f"{key!r}: {one(loss)}" for key, loss in compiled.items()) + "}"
    return one(compiled)
