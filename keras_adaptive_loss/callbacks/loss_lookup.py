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
        raise ValueError(
            f"{caller} found no compiled loss{selector} that it can drive: it needs {wanted}, but "
            f"the model was compiled with loss={compiled!r}. Compile the model with such a loss "
            "(e.g. model.compile(loss=kal.losses.CrossentropyExpectationMix()))."
        )
    if len(found) > 1:
        names = [getattr(loss, "name", repr(loss)) for loss in found]
        raise ValueError(
            f"{caller} found several compiled losses it could drive: {names}. Pass "
            "loss_name=... to choose one."
        )
    return found[0]
