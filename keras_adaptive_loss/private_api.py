"""The three places where the package reads private TensorFlow / Keras API, gathered here.

None has a public equivalent in the tested versions (TensorFlow 2.21, Keras 3.15):

- `in_xla_compilation` asks TensorFlow whether the code is being traced for XLA
  (``jit_compile=True``). UniLoss's average precision picks its comparison layout from it: a
  compact ``[positives, negatives]`` grid is the fastest without XLA but 5x slower under XLA,
  which pads data-dependent shapes, where static grids bucketed by the number of positives
  take its place. A loss cannot see ``model.jit_compile`` itself.
- `keras_mask` reads the mask Keras attaches to a layer's output (``Embedding(mask_zero=True)``,
  ``Masking``), the attribute Keras's own ``Loss.__call__`` reads. `StochasticLoss` needs it
  per position, before the reduction that Keras would mask.
- `register_loss_names` adds the package's registered names (``"keras_adaptive_loss>PolyLoss"``,
  the names saved configs write) to the table Keras's ``keras.losses.get`` reads strings from,
  so ``model.compile(loss="keras_adaptive_loss>PolyLoss")`` works: Keras resolves a string loss
  only from its own table, not from the registry that ``register_keras_serializable`` fills.

Each is checked against the versions it was tested with: outside them it still works if the
attribute exists, and says once, with a warning, what it falls back to when it does not.
``tests/private_api_test.py`` checks both against the installed versions, so an upgrade that
removes either fails a test instead of changing behaviour silently.
"""

from __future__ import annotations

import warnings
from typing import Any

import keras

from keras_adaptive_loss._tensorflow import TESTED_TENSORFLOW, in_xla_compilation

__all__ = ["TESTED_TENSORFLOW", "in_xla_compilation", "keras_mask", "register_loss_names"]

_warned: set[str] = set()


def _warn_once(key: str, message: str) -> None:
    if key not in _warned:
        _warned.add(key)
        warnings.warn(message, RuntimeWarning, stacklevel=3)


def keras_mask(tensor: Any) -> Any | None:
    """The mask Keras attached to ``tensor`` (a layer's output), or ``None`` if it has none.

    Keras 3 keeps it in the ``_keras_mask`` attribute, which its own ``Loss.__call__`` reads;
    there is no public accessor.

    Example:

    >>> import keras, numpy as np
    >>> from keras_adaptive_loss.private_api import keras_mask
    >>> embedded = keras.layers.Embedding(5, 2, mask_zero=True)(np.array([[3, 1, 0]]))
    >>> keras.ops.convert_to_numpy(keras_mask(embedded)).tolist()
    [[True, True, False]]
    >>> keras_mask(np.zeros(3)) is None
    True
    """
    return getattr(tensor, "_keras_mask", None)


def register_loss_names(classes: dict[str, type]) -> list[str]:
    """Makes Keras's ``keras.losses.get`` (and so ``compile(loss=...)``) resolve each
    ``"package>ClassName"`` registered name of ``classes`` to its class; returns the names added.

    Keras looks up a string loss in the ``ALL_OBJECTS_DICT`` of the module that defines
    ``keras.losses.get`` (read here through the function's globals). The names hold ``>``, so
    they cannot shadow a Keras name. If a Keras version lacks that table, nothing is added and
    a warning says once that `kal.losses.get` still resolves these names.

    Example:

    >>> import keras, keras_adaptive_loss as kal
    >>> type(keras.losses.get("keras_adaptive_loss>PolyLoss")).__name__
    'PolyLoss'
    """
    table = getattr(keras.losses.get, "__globals__", {}).get("ALL_OBJECTS_DICT")
    if not isinstance(table, dict):
        _warn_once(
            "loss_names",
            f"Keras {keras.__version__} has no loss table in keras.losses.get; "
            "model.compile(loss='keras_adaptive_loss>Name') will not resolve. Pass the loss "
            "object, or kal.losses.get('keras_adaptive_loss>Name').",
        )
        return []
    added = []
    for cls in classes.values():
        name = keras.saving.get_registered_name(cls)
        if ">" in name and table.get(name, cls) is cls:
            table[name] = cls
            added.append(name)
    return added
