"""`DecisionNetwork`: the network h(.; v) of the stochastic loss, with its own optimizer."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import keras
import numpy as np
from keras import ops

from keras_adaptive_loss._tensorflow import apply_in_replicas, outside_traced_functions
from keras_adaptive_loss.losses.base import deserialize_nested

__all__ = ["MAX_HIDDEN", "DecisionNetwork"]

#: The widest hidden layer of the default decision network (it reads C class scores and
#: outputs a logit per candidate: a few dozen units suffice).
MAX_HIDDEN = 65536


class _NotSaved:
    """Holds an object out of Keras's saving walk, which writes only Keras objects and
    containers of them: the decision network writes its optimizer's variables itself."""

    def __init__(self, value: Any) -> None:
        self.value = value


@keras.saving.register_keras_serializable(package="keras_adaptive_loss")
class DecisionNetwork(keras.layers.Layer):
    """Maps a model's predictions to logits over candidate losses, and trains itself with Adam.

    The decision network of the stochastic-loss-function paper (Eq. 4) is trained in the same
    backward pass as the model (Algorithm 1), but Keras only trains the model's own variables.
    This layer therefore holds its own `keras.optimizers.Adam` (`get_optimizer`), and
    `apply_gradients` applies it. Being
    a layer held by the loss, its weights and its optimizer's state (the step count and one
    first and second moment per weight) are saved by ``model.save`` and restored by
    `keras.models.load_model`.

    Args:
        num_candidates: number of candidate losses (outputs).
        network: any Keras layer or model mapping ``[batch, num_classes]`` to
            ``[batch, num_candidates]`` logits. Default: a small MLP,
            ``Dense(hidden_units, relu) -> Dense(num_candidates)``, whose output layer starts
            at zero, so that the selection starts uniform over the candidates.
        hidden_units: width of the default MLP.
        learning_rate: Adam learning rate of the decision network.
        beta_1: Adam constants.
        beta_2: Adam constants.
        epsilon: Adam constants.

    >>> import numpy as np
    >>> network = DecisionNetwork(3)
    >>> logits = network(np.full((2, 4), 0.25, "float32"))
    >>> tuple(logits.shape), float(ops.max(ops.abs(logits)))  # uniform start: zero logits
    ((2, 3), 0.0)
    >>> gradients = [ops.ones_like(w) for w in network.network.trainable_weights]
    >>> network.apply_gradients(network.flat(gradients))
    >>> int(network.get_optimizer().iterations)
    1
    """

    def __init__(
        self,
        num_candidates: int,
        network: keras.layers.Layer | None = None,
        hidden_units: int = 32,
        learning_rate: float = 1e-3,
        beta_1: float = 0.9,
        beta_2: float = 0.999,
        epsilon: float = 1e-7,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if not isinstance(hidden_units, (int, np.integer)) or not 1 <= hidden_units <= MAX_HIDDEN:
            raise ValueError(
                f"hidden_units must be an integer in [1, {MAX_HIDDEN}]; got {hidden_units!r}."
            )
        self.num_candidates = int(num_candidates)
        self.hidden_units = int(hidden_units)
        self.learning_rate = float(learning_rate)
        self.beta_1, self.beta_2, self.epsilon = float(beta_1), float(beta_2), float(epsilon)
        self._custom_network = network is not None
        self._optimizer = _NotSaved(None)
        self.network = network or keras.Sequential(
            [
                keras.layers.Dense(self.hidden_units, activation="relu", dtype="float32"),
                keras.layers.Dense(
                    self.num_candidates, kernel_initializer="zeros", dtype="float32"
                ),
            ],
            name="decision_mlp",
        )

    def get_optimizer(self) -> keras.optimizers.Adam:
        """The `keras.optimizers.Adam` that trains the network, created on first use.

        Created eagerly, in the strategy of that use (the first training step, or loading),
        not in `build`: Keras may build the layer inside a stateless scope (its symbolic build
        under a strategy), where an optimizer cannot create its variables. A method, not an
        attribute: Keras's saving walk would save an attribute a second time.
        """
        if not self.built:
            raise ValueError("The decision network has no optimizer before it is built.")
        if self._optimizer.value is None:
            with outside_traced_functions():
                optimizer = keras.optimizers.Adam(
                    self.learning_rate, self.beta_1, self.beta_2, self.epsilon,
                    name="decision_adam",
                )  # fmt: skip
                optimizer.build(self.network.trainable_variables)
            self._optimizer = _NotSaved(optimizer)
        return self._optimizer.value

    def build(self, input_shape: Any) -> None:
        self.input_dim = int(input_shape[-1])
        self.network.build(input_shape)
        output_shape = self.network.compute_output_shape(input_shape)
        if output_shape[-1] != self.num_candidates:
            raise ValueError(
                f"The decision network must output one logit per candidate loss "
                f"({self.num_candidates}); it outputs shape {output_shape}."
            )
        self._shapes = [tuple(v.shape) for v in self.network.trainable_variables]
        self._sizes = [int(np.prod(shape)) for shape in self._shapes]
        super().build(input_shape)

    def _optimizer_state(self) -> dict[str, keras.Variable]:
        """The optimizer's step count and moments, by the names they are saved under.

        Keras's Adam lists its variables as the step count and learning rate, then each
        weight's first and second moment, interleaved in the order of the weights.
        """
        optimizer, count = self.get_optimizer(), len(self._shapes)
        moments = optimizer.variables[len(optimizer.variables) - 2 * count :]
        state = {"iterations": optimizer.iterations}
        for i in range(count):
            state[f"momentum_{i}"], state[f"velocity_{i}"] = moments[2 * i], moments[2 * i + 1]
        return state

    def save_own_variables(self, store: Any) -> None:
        """Writes the optimizer's step count and moments (the network saves its weights)."""
        for name, variable in self._optimizer_state().items():
            store[name] = variable.numpy()

    def load_own_variables(self, store: Any) -> None:
        """Restores the optimizer's state, building the layer first if needed.

        The network is built lazily, on the first batch, because only then is the number of
        classes known. `keras.callbacks.BackupAndRestore` and ``model.load_weights`` load
        before that batch; without this, Keras would skip the unbuilt layer and the restored
        run would silently start from a fresh decision network. Keras loads a layer's own
        variables before those of its sublayers, so building here lets the network's weights
        load too.

        Files written by keras-adaptive-loss 0.1.0.dev (2026-12-06) hold both moments in one
        ``[2, weights]`` array; they are unpacked here, and the step count is set by the
        loss's `SelectionState` (its ``updates`` counts the same steps; see `restore_step`).
        """
        keys = set(store.keys()) if store is not None else set()
        if not keys:
            return
        packed = keys == {"0"}
        if not packed and "momentum_0" not in keys:
            raise ValueError(
                f"The saved decision network holds {sorted(keys)}: no optimizer moments. Was "
                "it saved with other candidates or hidden_units?"
            )
        if not self.built:
            if self._custom_network:
                raise ValueError(
                    "Restoring weights into a StochasticLoss with a custom decision_network "
                    "that has not been built: pass num_classes= to StochasticLoss so that it is "
                    "built before the weights are loaded."
                )
            if packed:  # [2, (C + 1) * H + (H + 1) * n]
                total = int(store["0"].shape[1])
                hidden, outputs = self.hidden_units, self.num_candidates
                num_classes = (total - hidden - (hidden + 1) * outputs) // hidden
            else:  # the first kernel's first moment is [C, H]
                num_classes = int(store["momentum_0"].shape[0])
            self.build((None, num_classes))
        state = self._optimizer_state()
        if packed:
            first, second = np.asarray(store["0"])
            offsets = np.cumsum([0, *self._sizes])
            for i, shape in enumerate(self._shapes):
                piece = slice(offsets[i], offsets[i + 1])
                state[f"momentum_{i}"].assign(first[piece].reshape(shape))
                state[f"velocity_{i}"].assign(second[piece].reshape(shape))
            return
        if keys != set(state):
            raise ValueError(
                f"The saved decision network holds {sorted(keys)}; this one expects "
                f"{sorted(state)}. Was it saved with other candidates or hidden_units?"
            )
        for name, variable in state.items():
            variable.assign(np.asarray(store[name]).astype(variable.dtype))

    def restore_step(self, step: Any) -> None:
        """Sets the optimizer's step count (used when loading the packed layout; see above)."""
        self.get_optimizer().iterations.assign(np.asarray(step).astype("int64"))

    def call(self, inputs: Any) -> Any:
        return self.network(inputs)

    def flat(self, gradients: Sequence[Any]) -> Any:
        """The gradients of the network's weights as one float32 vector (`apply_gradients`)."""
        return ops.concatenate(
            [ops.reshape(ops.cast(g, "float32"), (-1,)) for g in gradients], axis=0
        )

    def apply_gradients(self, gradient: Any) -> None:
        """One Adam step on the network's weights from a flat ``gradient`` (as `flat` lays it
        out, averaged over the replicas).

        Call it once per training step; under a `tf.distribute` strategy, in cross-replica
        context (`StochasticLoss` does, from `all_replicas_mean`).
        """
        offsets = np.cumsum([0, *self._sizes])
        gradients = [
            ops.reshape(gradient[offsets[i] : offsets[i + 1]], shape)
            for i, shape in enumerate(self._shapes)
        ]
        apply_in_replicas(self.get_optimizer(), gradients, self.network.trainable_variables)

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(
            num_candidates=self.num_candidates,
            network=keras.saving.serialize_keras_object(self.network)
            if self._custom_network
            else None,
            hidden_units=self.hidden_units,
            learning_rate=self.learning_rate,
            beta_1=self.beta_1,
            beta_2=self.beta_2,
            epsilon=self.epsilon,
        )
        return config

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> DecisionNetwork:
        return cls(**deserialize_nested(config, "network"))
