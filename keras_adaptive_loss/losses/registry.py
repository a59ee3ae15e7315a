"""One registry of per-sample candidate losses, looked up by lowercase name.

`get_candidate` turns a name, one of the functions in `keras_adaptive_loss.losses.candidates`,
a Keras loss object or any callable into a `Candidate`: a callable ``(y_true, y_pred) -> [batch]``
that returns one value per sample. `StochasticLoss`, the compare tool and the tuning helpers
all resolve candidate losses through this module.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import keras
from keras import ops

from keras_adaptive_loss.losses import candidates, noisy_labels, polynomial, sparsemax

__all__ = [
    "FAMILIES",
    "Candidate",
    "available",
    "deserialize_candidate",
    "get_candidate",
    "is_candidate_name",
    "per_sample_values",
    "serialize_candidate",
]

_CANDIDATES: dict[str, Callable[..., Any]] = {
    "crossentropy": candidates.crossentropy,
    "expectation": candidates.expectation,
    "mse": candidates.mse,
    "mae": candidates.mae,
    "hinge": candidates.hinge,
    "squared_hinge": candidates.squared_hinge,
    "cosine": candidates.cosine,
    "bce": candidates.bce,
    "focal": candidates.focal,
    "poly1": candidates.poly1,
    "poly": polynomial.poly,
    "squentropy": polynomial.squentropy,
    "nce": noisy_labels.nce,
    "normalized_focal": noisy_labels.normalized_focal,
    "rce": noisy_labels.rce,
    "nce_rce": noisy_labels.nce_rce,
    "nce_mae": noisy_labels.nce_mae,
    "gce": noisy_labels.gce,
    "sparsemax": sparsemax.sparsemax_loss,
}

_ALIASES = {
    "ce": "crossentropy",
    "cross_entropy": "crossentropy",
    "categorical_crossentropy": "crossentropy",
    "sparse_categorical_crossentropy": "crossentropy",
    "el": "expectation",
    "expectation_loss": "expectation",
    "mean_squared_error": "mse",
    "mean_absolute_error": "mae",
    "categorical_hinge": "hinge",
    "cosine_proximity": "cosine",
    "binary_crossentropy": "bce",
    "focal_loss": "focal",
    "poly_1": "poly1",
    "polyloss": "poly",
    "normalized_crossentropy": "nce",
    "nfl": "normalized_focal",
    "normalized_focal_loss": "normalized_focal",
    "reverse_crossentropy": "rce",
    "generalized_crossentropy": "gce",
    "categorical_generalized_cross_entropy": "gce",
    "sparsemax_loss": "sparsemax",
}

_NAME_OF_FUNCTION = {fn: name for name, fn in _CANDIDATES.items()}


#: The candidates by family: what they are for.
FAMILIES: dict[str, tuple[str, ...]] = {
    "cross-entropy and its polynomial relatives": (
        "crossentropy", "expectation", "poly1", "poly", "focal", "squentropy",
    ),
    "distances and margins on probabilities": (
        "mse", "mae", "hinge", "squared_hinge", "cosine", "bce",
    ),
    "robust to label noise": ("nce", "normalized_focal", "rce", "nce_rce", "nce_mae", "gce"),
    "sparse probabilities": ("sparsemax",),
}  # fmt: skip


def available(grouped: bool = False) -> list[str] | dict[str, list[str]]:
    """Returns the canonical names of the registered candidate losses, sorted; with
    ``grouped=True``, a dict ``{family: sorted names}`` (see `FAMILIES`).

    >>> from keras_adaptive_loss import losses
    >>> losses.available()[:4]
    ['bce', 'cosine', 'crossentropy', 'expectation']
    >>> losses.available(grouped=True)["robust to label noise"][:3]
    ['gce', 'nce', 'nce_mae']
    """
    if grouped:
        return {family: sorted(names) for family, names in FAMILIES.items()}
    return sorted(_CANDIDATES)


def is_candidate_name(name: str) -> bool:
    """Whether ``name`` (any spelling `get_candidate` accepts) names a registered candidate.

    >>> is_candidate_name("Squared-Hinge"), is_candidate_name("ce"), is_candidate_name("x")
    (True, True, False)
    """
    key = name.strip().lower().replace("-", "_").replace(" ", "_")
    return _ALIASES.get(key, key) in _CANDIDATES


def _canonical_name(name: str) -> str:
    key = name.strip().lower().replace("-", "_").replace(" ", "_")
    key = _ALIASES.get(key, key)
    if key not in _CANDIDATES:
        raise ValueError(
            f"Unknown candidate loss {name!r}. Valid names: {', '.join(available())} "
            f"(aliases: {', '.join(sorted(_ALIASES))}). You may also pass a Keras loss object "
            "or a callable (y_true, y_pred) -> per-sample loss."
        )
    return key


def _is_registered_function(identifier: Any) -> bool:
    return callable(identifier) and any(identifier is fn for fn in _NAME_OF_FUNCTION)


class Candidate:
    """A per-sample loss bound to its options; calling it returns one value per sample.

    Built by `get_candidate`; the value has shape ``y_pred.shape[:-1]`` (``[batch]`` for a
    classifier). A wrapped loss that returns more axes (e.g. one value per class) is averaged
    over them; one that returns fewer (e.g. an already reduced scalar) raises a `ValueError`
    naming it.

    Attributes:
        name: the canonical registry name, or the wrapped loss's own name.
        identifier: what `get_candidate` was given (a name is stored in canonical form).
        options: keyword arguments passed to the function on every call (``from_logits`` for
            registry candidates).

    >>> import numpy as np
    >>> candidate = get_candidate("mse")
    >>> candidate.name
    'mse'
    >>> ops.convert_to_numpy(candidate(np.array([0]), np.array([[0.8, 0.2]]))).tolist()
    [0.04]
    """

    def __init__(
        self,
        name: str,
        fn: Callable[..., Any],
        identifier: Any,
        options: dict[str, Any] | None = None,
    ) -> None:
        self.name = name
        self.identifier = identifier
        self.options = dict(options or {})
        self._fn = fn

    def __call__(self, y_true: Any, y_pred: Any) -> Any:
        y_pred = ops.convert_to_tensor(y_pred)
        values = ops.convert_to_tensor(self._fn(y_true, y_pred, **self.options))
        expected_rank = len(y_pred.shape) - 1
        if len(values.shape) < expected_rank:
            raise ValueError(
                f"Candidate loss {self.name!r} returned shape {tuple(values.shape)} for "
                f"predictions of shape {tuple(y_pred.shape)}, but a candidate must return one "
                f"value per sample (shape {tuple(y_pred.shape[:-1])}). Pass an unreduced loss: "
                "a keras.losses.Loss object, or a function that does not average over the batch."
            )
        if len(values.shape) > expected_rank:
            values = ops.mean(values, axis=tuple(range(expected_rank, len(values.shape))))
        return values

    def values_from_terms(self, terms: candidates.ClassificationTerms) -> Any:
        """Per-sample values from precomputed terms; registry candidates only."""
        options = {k: v for k, v in self.options.items() if k != "from_logits"}
        return self._fn.from_terms(terms, **options)

    @property
    def shares_terms(self) -> bool:
        """Whether `values_from_terms` applies (a registry candidate defined on the terms;
        ``squentropy`` reads the raw predictions)."""
        return _is_registered_function(self._fn) and hasattr(self._fn, "from_terms")

    def __repr__(self) -> str:
        return f"Candidate({self.name!r}, options={self.options})"


def get_candidate(identifier: Any, *, from_logits: bool = False) -> Candidate:
    """Returns a per-sample loss ``fn(y_true, y_pred) -> [batch]`` for ``identifier``.

    Args:
        identifier: a registry name (see `available`; lowercase aliases such as ``"ce"`` or
            ``"categorical_hinge"`` are accepted), a function from
            `keras_adaptive_loss.losses.candidates`, a `Candidate`, a `keras.losses.Loss`
            object (its unreduced ``call`` is used) or any callable
            ``(y_true, y_pred) -> per-sample values``.
        from_logits: whether registry candidates read ``y_pred`` as logits. Keras loss objects
            and other callables keep their own setting.

    Returns:
        A `Candidate`.

    Raises:
        ValueError: for an unknown name or an identifier that is not a loss.

    Example:

    >>> import numpy as np
    >>> from keras_adaptive_loss import losses
    >>> fn = losses.get_candidate("mse")
    >>> fn(np.array([1]), np.array([[0.25, 0.75]])).shape
    TensorShape([1])
    """
    if isinstance(identifier, Candidate):
        return identifier
    if isinstance(identifier, str):
        name = _canonical_name(identifier)
        return Candidate(name, _CANDIDATES[name], name, {"from_logits": from_logits})
    if _is_registered_function(identifier):
        name = _NAME_OF_FUNCTION[identifier]
        return Candidate(name, identifier, name, {"from_logits": from_logits})
    if isinstance(identifier, keras.losses.Loss):
        return Candidate(identifier.name, identifier.call, identifier)
    if callable(identifier):
        name = getattr(identifier, "__name__", type(identifier).__name__)
        return Candidate(name, identifier, identifier)
    raise ValueError(
        f"Cannot use {identifier!r} as a candidate loss: expected one of the names "
        f"{', '.join(available())}, a keras.losses.Loss object or a callable."
    )


def per_sample_values(candidate_list: list[Candidate], y_true: Any, y_pred: Any) -> list:
    """Evaluates several candidates on one batch, computing the shared front end once.

    Registry candidates read `keras_adaptive_loss.losses.candidates.ClassificationTerms`
    (labels, log-probabilities, probabilities), built once per ``from_logits`` setting; other
    candidates are called as they are.

    >>> import numpy as np
    >>> mse, hinge = get_candidate("mse"), get_candidate("hinge")
    >>> values = per_sample_values([mse, hinge], np.array([0]), np.array([[0.8, 0.2]]))
    >>> [ops.convert_to_numpy(v).round(4).tolist() for v in values]
    [[0.04], [0.4]]
    """
    terms: dict[bool, candidates.ClassificationTerms] = {}
    values = []
    for candidate in candidate_list:
        if not candidate.shares_terms:
            values.append(candidate(y_true, y_pred))
            continue
        from_logits = bool(candidate.options.get("from_logits", False))
        if from_logits not in terms:
            terms[from_logits] = candidates.classification_terms(
                y_true, y_pred, from_logits=from_logits
            )
        values.append(candidate.values_from_terms(terms[from_logits]))
    return values


def serialize_candidate(identifier: Any) -> Any:
    """Returns a JSON-friendly description of a candidate that `deserialize_candidate` turns
    back.

    Registry candidates serialize to their canonical name; Keras loss objects and registered
    loss functions to their Keras config. Unregistered callables (lambdas) cannot be saved.

    >>> serialize_candidate("mean_squared_error")  # stored in canonical form
    'mse'
    >>> serialize_candidate(keras.losses.Huber(delta=2.0))["config"]["delta"]  # see huber_delta
    2.0
    """
    if isinstance(identifier, Candidate):
        identifier = identifier.identifier
    if isinstance(identifier, str):
        return _canonical_name(identifier)
    if _is_registered_function(identifier):
        return _NAME_OF_FUNCTION[identifier]
    config = keras.saving.serialize_keras_object(identifier)
    if isinstance(identifier, keras.losses.Huber) and "delta" not in config["config"]:
        config["config"]["delta"] = huber_delta(identifier)
    return config


def huber_delta(loss: keras.losses.Huber) -> float:
    """The ``delta`` of a `keras.losses.Huber`, which its ``get_config`` drops (Keras 3.15).

    Without it a saved Huber candidate would load with the default delta 1, silently. It is read
    back from the loss's own value at a large error ``e``, ``delta * (e - delta / 2)`` (public
    API only).

    Raises:
        ValueError: if ``delta`` is beyond ``1e4`` (the error probed).

    >>> huber_delta(keras.losses.Huber(delta=2.5))
    2.5
    """
    error = 1e4
    target, prediction = ops.zeros((1, 1)), ops.full((1, 1), error)
    value = float(ops.convert_to_numpy(loss.call(target, prediction))[0])
    if value >= error**2 / 2 * (1 - 1e-6):
        raise ValueError(
            f"Cannot save the Huber loss {loss.name!r}: its delta exceeds {error:g}, and Keras's "
            "Huber.get_config does not record delta. Use a smaller delta."
        )
    return round(error - (error**2 - 2 * value) ** 0.5, 6)


def deserialize_candidate(config: Any, *, from_logits: bool = False) -> Candidate:
    """Inverse of `serialize_candidate`: returns the `Candidate` described by ``config``.

    >>> deserialize_candidate(serialize_candidate(keras.losses.Huber())).name
    'huber_loss'
    >>> deserialize_candidate("hinge", from_logits=True).options
    {'from_logits': True}
    """
    if isinstance(config, str):
        return get_candidate(config, from_logits=from_logits)
    return get_candidate(keras.saving.deserialize_keras_object(config), from_logits=from_logits)
