"""`get`, `serialize` and `deserialize` for the package's losses, as Keras's own behave.

`keras.losses.get` resolves a Keras loss from a class name (``"CategoricalCrossentropy"``), a
snake-case name (``"categorical_crossentropy"``), a config dict, a class or an instance.
`kal.losses.get <get>` does the same for the package's losses, and hands every identifier it
does not know to `keras.losses.get`, so one call resolves both:

>>> import keras_adaptive_loss as kal
>>> type(kal.losses.get("CrossentropyExpectationMix")).__name__
'CrossentropyExpectationMix'
>>> type(kal.losses.get("crossentropy_expectation_mix")).__name__
'CrossentropyExpectationMix'
>>> config = kal.losses.serialize(kal.losses.PolyLoss(epsilon=(2.0,)))
>>> kal.losses.get(config).epsilon
(2.0,)
>>> type(kal.losses.get("CategoricalCrossentropy")).__name__  # a Keras loss
'CategoricalCrossentropy'

The per-sample *candidate* losses of `StochasticLoss` and ``compare`` (``"mse"``,
``"poly1"``, ...) are a different thing, one value per sample: look those up with
`kal.losses.get_candidate <keras_adaptive_loss.losses.registry.get_candidate>`.
"""

from __future__ import annotations

import inspect
import re
from typing import Any

import keras

__all__ = ["deserialize", "get", "loss_classes", "serialize", "snake_case"]


def snake_case(name: str) -> str:
    """``"UniLossAveragePrecision"`` -> ``"uni_loss_average_precision"``, as Keras names
    ``"CategoricalCrossentropy"`` ``"categorical_crossentropy"``; acronyms stay one word
    (``"LDAMLoss"`` -> ``"ldam_loss"``).

    >>> snake_case("LDAMLoss"), snake_case("NormalizedFocalLoss")
    ('ldam_loss', 'normalized_focal_loss')
    """
    name = re.sub(r"([A-Z]+)([A-Z][a-z])", r"\1_\2", name)
    return re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", name).lower()


def loss_classes() -> dict[str, type[keras.losses.Loss]]:
    """The package's public loss classes by class name and by snake-case name (not the
    `AdaptiveLoss` base class, which is for writing new losses and computes none itself).

    >>> loss_classes()["stochastic_loss"] is loss_classes()["StochasticLoss"]
    True
    """
    from keras_adaptive_loss import losses  # the package's public names, without a cycle

    classes = {}
    for name in losses.__all__:
        value = getattr(losses, name)
        if (
            inspect.isclass(value)
            and issubclass(value, keras.losses.Loss)
            and name != "AdaptiveLoss"
        ):
            classes[name] = value
            classes[snake_case(name)] = value
    return classes


def serialize(loss: Any) -> Any:
    """The config of a loss (the package's or Keras's), as `keras.losses.serialize` gives it;
    `deserialize` and `get` turn it back, with every adapted value stored in it.

    >>> import keras_adaptive_loss as kal
    >>> loss = kal.losses.PolyLoss(epsilon=[2.0, 0.5])
    >>> config = kal.losses.serialize(loss)
    >>> config["class_name"]
    'PolyLoss'
    >>> kal.losses.deserialize(config).get_config() == loss.get_config()
    True
    """
    return keras.saving.serialize_keras_object(loss)


def deserialize(config: Any, custom_objects: dict[str, Any] | None = None) -> Any:
    """The loss described by ``config`` (from `serialize`, or a name), as
    `keras.losses.deserialize` does, with the package's loss classes known by name.

    >>> import keras_adaptive_loss as kal
    >>> type(kal.losses.deserialize("Squentropy")).__name__
    'Squentropy'
    >>> mix = kal.losses.CrossentropyExpectationMix(alpha=0.5, beta=2.0)
    >>> kal.losses.deserialize(kal.losses.serialize(mix)).parameters
    {'alpha': 0.5, 'beta': 2.0}
    """
    known = {**_keras_objects(), **loss_classes()}
    return keras.saving.deserialize_keras_object(
        config, module_objects=known, custom_objects=custom_objects
    )


def get(identifier: Any) -> Any:
    """A loss instance (or Keras loss function) for ``identifier``, as `keras.losses.get`.

    Args:
        identifier: ``None``; a class name or its snake-case form (the package's first, then
            Keras's); a registered name as saved configs write it
            (``"keras_adaptive_loss>PolyLoss"``, or another package's); a config dict from
            `serialize`; a loss class (instantiated with its defaults); or a loss instance or
            function (returned as it is).

    Returns:
        A `keras.losses.Loss` instance or a Keras loss function; ``None`` for ``None``.

    Raises:
        ValueError: for a name neither the package nor Keras knows (the message lists the
            package's names and points per-sample candidates to `get_candidate`), and for a
            class that cannot be built without arguments (the message names them).

    >>> import keras_adaptive_loss as kal
    >>> type(kal.losses.get("crossentropy_expectation_mix")).__name__
    'CrossentropyExpectationMix'
    >>> kal.losses.get("categorical_crossentropy").__name__  # Keras's names resolve too
    'categorical_crossentropy'
    >>> type(kal.losses.get("keras_adaptive_loss>PolyLoss")).__name__
    'PolyLoss'
    """
    if identifier is None:
        return None
    if isinstance(identifier, dict):
        obj = deserialize(identifier)
    elif isinstance(identifier, str):
        obj = _by_name(identifier)
    else:
        obj = identifier
    if inspect.isclass(obj):
        return _instantiate(obj)
    if callable(obj):
        return obj
    raise ValueError(
        f"Could not interpret loss identifier {identifier!r}: expected a loss name, a config "
        "dict from kal.losses.serialize, a loss class, or a loss instance or function."
    )


def _by_name(name: str) -> Any:
    classes = loss_classes()
    if name in classes:
        return classes[name]
    if ">" in name:  # a registered name, as saved configs write it: "keras_adaptive_loss>PolyLoss"
        registered = keras.saving.get_registered_object(name)
        if registered is not None:
            return registered
    try:
        return keras.losses.get(name)
    except ValueError:
        pass
    from keras_adaptive_loss.losses import registry

    names = sorted(n for n in classes if n[0].isupper())
    hint = ""
    if registry.is_candidate_name(name):
        hint = (
            f" {name!r} is a per-sample candidate loss: kal.losses.get_candidate({name!r}) "
            f"returns it, and kal.losses.CandidateLoss({name!r}) makes it a compiled loss."
        )
    raise ValueError(
        f"Unknown loss {name!r}: neither a keras-adaptive-loss loss ({', '.join(names)}, or "
        f"their snake_case names) nor a Keras loss.{hint}"
    )


def required_arguments(cls: type) -> list[str]:
    """The ``__init__`` arguments of ``cls`` that have no default.

    >>> import keras_adaptive_loss as kal
    >>> required_arguments(kal.losses.PolyLoss), required_arguments(kal.StochasticLoss)
    ([], ['candidates'])
    """
    return [
        parameter.name
        for parameter in inspect.signature(cls.__init__).parameters.values()
        if parameter.default is inspect.Parameter.empty
        and parameter.kind in (parameter.POSITIONAL_OR_KEYWORD, parameter.KEYWORD_ONLY)
        and parameter.name != "self"
    ]


def _instantiate(cls: type) -> Any:
    required = required_arguments(cls)
    if required:
        raise ValueError(
            f"{cls.__name__} cannot be built from its name alone: it needs "
            f"{', '.join(required)}. Construct it, e.g. kal.losses.{cls.__name__}(...), or pass "
            "a config dict from kal.losses.serialize."
        )
    return cls()


def _keras_objects() -> dict[str, Any]:
    """Keras's own loss classes and functions by name, for configs that name them."""
    objects = {}
    for name in dir(keras.losses):
        value = getattr(keras.losses, name)
        if (inspect.isclass(value) and issubclass(value, keras.losses.Loss)) or inspect.isfunction(
            value
        ):
            objects[name] = value
    return objects
