"""`AdaptiveLoss`: the base class of losses whose parameters change during training."""

from __future__ import annotations

import math
from typing import Any

import keras
import numpy as np

__all__ = ["AdaptiveLoss", "ParameterStore", "deserialize_nested"]


def deserialize_nested(config: dict[str, Any], key: str) -> dict[str, Any]:
    """A copy of ``config`` whose serialized Keras object under ``key`` is rebuilt, if any."""
    config = dict(config)
    if isinstance(config.get(key), dict):
        config[key] = keras.saving.deserialize_keras_object(config[key])
    return config


@keras.saving.register_keras_serializable(package="keras_adaptive_loss")
class ParameterStore(keras.layers.Layer):
    """The variables of an `AdaptiveLoss`, as non-trainable weights of a layer the loss holds.

    Keras writes the weights of layers held by a compiled loss with the model (``model.save``,
    ``save_weights`` and so `keras.callbacks.BackupAndRestore`), but not variables held by the
    loss directly. Keeping the adaptive parameters (and other state, such as a random-stream
    position) here means a run restored from a checkpoint continues with the adapted values.
    """

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.built = True

    def add(self, name: str, value: Any, dtype: str = "float32") -> keras.Variable:
        """A non-trainable, replica-consistent variable holding ``value``."""
        return self.add_weight(
            shape=np.shape(value),
            initializer=keras.initializers.Constant(value),
            dtype=dtype,
            trainable=False,
            autocast=False,
            aggregation="only_first_replica",
            name=name,
        )


class AdaptiveLoss(keras.losses.Loss):
    """Base class for losses with parameters that change while a model trains.

    A Python float read in ``call()`` is baked into the graph that `fit` traces, so changing it
    later (from a callback, a schedule or a controller) is silently ignored in graph and XLA
    mode. An `AdaptiveLoss` therefore keeps each adaptive parameter in a non-trainable
    `keras.Variable` (float32, ``aggregation="only_first_replica"``) of its `ParameterStore`
    layer — so ``model.save_weights`` and `keras.callbacks.BackupAndRestore` keep the adapted
    values too — and reads the variable in ``call()``; `set_parameter` assigns it, which takes
    effect at the next step in eager, graph and ``jit_compile=True`` mode, and on every replica
    of a `tf.distribute` strategy when called from a callback (cross-replica context). Build the
    loss inside ``strategy.scope()`` so that its variables are mirrored.

    Contract for subclasses:

    - declare each parameter in ``__init__`` with `add_parameter`, under the same name as the
      ``__init__`` argument that sets it;
    - implement ``call(y_true, y_pred)`` returning per-sample values (never override
      ``__call__``; a loss whose value is a metric of the whole batch derives from
      `keras_adaptive_loss.losses.set_metric.SetMetricLoss` too, whose thin ``__call__`` hands
      the sample weights into ``call``);
    - extend `get_config` with the other ``__init__`` arguments. The base `get_config` already
      records every parameter's *current* value, so `keras.models.load_model` restores the
      adapted values, not the initial ones;
    - register the class with
      ``keras.saving.register_keras_serializable(package="keras_adaptive_loss")``.

    Args:
        name: name of the loss instance.
        reduction: Keras reduction, ``"sum_over_batch_size"`` by default.
        dtype: dtype of the loss computation; ``None`` uses ``keras.config.floatx()``.

    Example:

    >>> import keras
    >>> from keras import ops
    >>> class ScaledCrossentropy(AdaptiveLoss):
    ...     def __init__(self, scale=1.0, **kwargs):
    ...         super().__init__(**kwargs)
    ...         self.add_parameter("scale", scale, minimum=0.0)
    ...     def call(self, y_true, y_pred):
    ...         ce = keras.losses.sparse_categorical_crossentropy(y_true, y_pred)
    ...         return self.variable("scale") * ce
    >>> loss = ScaledCrossentropy(scale=2.0)
    >>> loss.set_parameter("scale", 0.5)
    >>> loss.parameters
    {'scale': 0.5}
    >>> loss.get_config()["scale"]
    0.5
    """

    def __init__(
        self,
        name: str | None = None,
        reduction: str | None = "sum_over_batch_size",
        dtype: Any = None,
    ) -> None:
        super().__init__(name=name, reduction=reduction, dtype=dtype)
        self._variables: dict[str, keras.Variable] = {}
        self._bounds: dict[str, tuple[float, float]] = {}
        self.parameter_store = ParameterStore(name="parameter_store")

    def add_parameter(
        self,
        name: str,
        initial_value: float | np.ndarray,
        *,
        minimum: float = -math.inf,
        maximum: float = math.inf,
    ) -> keras.Variable:
        """Creates the adaptive parameter ``name`` and returns its variable.

        Args:
            name: parameter name; also the ``__init__`` argument and `get_config` key.
            initial_value: starting value (a number, or an array for a vector or matrix
                parameter), validated against the bounds.
            minimum: smallest allowed value (inclusive), for every element.
            maximum: largest allowed value (inclusive), for every element.
        """
        if name in self._variables:
            raise ValueError(f"{type(self).__name__} already has a parameter named {name!r}.")
        self._bounds[name] = (float(minimum), float(maximum))
        value = self._checked(name, initial_value)
        variable = self.parameter_store.add(name, value)
        self._variables[name] = variable
        return variable

    @property
    def parameter_names(self) -> tuple[str, ...]:
        """Names of the adaptive parameters, in creation order."""
        return tuple(self._variables)

    @property
    def parameters(self) -> dict[str, float | np.ndarray]:
        """Current value of every adaptive parameter (floats; arrays for array parameters)."""
        return {name: self.get_parameter(name) for name in self._variables}

    def variable(self, name: str) -> keras.Variable:
        """Returns the `keras.Variable` that holds parameter ``name`` (read it in ``call()``)."""
        self._require(name)
        return self._variables[name]

    def get_parameter(self, name: str) -> float | np.ndarray:
        """Returns the current value of parameter ``name`` (a float, or a NumPy array)."""
        value = np.asarray(self.variable(name).numpy())
        return float(value) if value.ndim == 0 else value.copy()

    def set_parameter(self, name: str, value: float | np.ndarray) -> None:
        """Assigns parameter ``name``; the next training step uses the new value.

        Raises:
            ValueError: if the name is unknown or the value is not finite or out of bounds.
        """
        self._require(name)
        value = self._checked(name, value)
        shape = tuple(self._variables[name].shape)
        if np.shape(value) != shape:
            raise ValueError(
                f"Parameter {name!r} of {type(self).__name__} has shape {shape}; got a value of "
                f"shape {np.shape(value)}."
            )
        self._variables[name].assign(value)

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        for name, value in self.parameters.items():
            config[name] = value.tolist() if isinstance(value, np.ndarray) else value
        return config

    def _require(self, name: str) -> None:
        if name not in self._variables:
            raise ValueError(
                f"{type(self).__name__} has no adaptive parameter {name!r}; "
                f"its parameters are {list(self._variables)}."
            )

    def _checked(self, name: str, value: Any) -> float | np.ndarray:
        try:
            array = np.asarray(value, dtype="float64")
        except (TypeError, ValueError) as error:
            raise ValueError(
                f"Parameter {name!r} of {type(self).__name__} needs a number, got {value!r}."
            ) from error
        low, high = self._bounds[name]
        if not (np.isfinite(array).all() and (array >= low).all() and (array <= high).all()):
            raise ValueError(
                f"Parameter {name!r} of {type(self).__name__} must be a finite number in "
                f"[{low:g}, {high:g}]; got {value!r}."
            )
        return float(array) if array.ndim == 0 else array.astype("float32")
