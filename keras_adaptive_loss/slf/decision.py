"""`DecisionNetwork`: the network h(.; v) of the stochastic loss, with its own optimizer."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import keras
import numpy as np
import tensorflow as tf
from keras import ops

from keras_adaptive_loss.losses.base import deserialize_nested

__all__ = ["MAX_HIDDEN", "DecisionNetwork"]

#: The widest hidden layer of the default decision network (it reads C class scores and
#: outputs a logit per candidate: a few dozen units suffice).
MAX_HIDDEN = 65536


@keras.saving.register_keras_serializable(package="keras_adaptive_loss")
class DecisionNetwork(keras.layers.Layer):
    """Maps a model's predictions to logits over candidate losses, and trains itself with Adam.

    The decision network of the stochastic-loss-function paper (Eq. 4) is trained in the same
    backward pass as the model (Algorithm 1), but Keras only trains the model's own variables.
    This layer therefore keeps its Adam moments as a non-trainable weight and applies its own
    update (`adam_step`: Kingma & Ba's update with the bias correction folded into the step
    size, as TensorFlow's fused Adam kernel computes it; the caller passes the step count).
    Being a layer held by the loss, its weights and optimizer state are saved by
    ``model.save`` and restored by `keras.models.load_model`.

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
        self.network = network or keras.Sequential(
            [
                keras.layers.Dense(self.hidden_units, activation="relu", dtype="float32"),
                keras.layers.Dense(
                    self.num_candidates, kernel_initializer="zeros", dtype="float32"
                ),
            ],
            name="decision_mlp",
        )

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
        # Adam's first and second moments of all the network's weights, flattened and
        # concatenated, in one variable: a training step touches one variable instead of
        # two per weight (see `adam_step`).
        self.moments = self.add_weight(
            shape=(2, sum(self._sizes)), initializer="zeros", trainable=False, autocast=False,
            name="moments",
        )  # fmt: skip
        super().build(input_shape)

    def load_own_variables(self, store: Any) -> None:
        """Builds the layer from the saved shapes first if it is not built yet.

        The network is built lazily, on the first batch, because only then is the number of
        classes known. `keras.callbacks.BackupAndRestore` and ``model.load_weights`` load
        before that batch; without this, Keras would skip the unbuilt layer and the restored
        run would silently start from a fresh decision network. Keras loads a layer's own
        variables before those of its sublayers, so building here lets the network's weights
        load too.

        Files saved before the moments were packed hold an Adam step count followed by one
        first and one second moment per weight; they are packed on loading (the step count
        is the `StochasticLoss`'s ``state.updates``, which counts the same steps).
        """
        keys = set(store.keys()) if store is not None else set()
        if not self.built and keys:
            if self._custom_network:
                raise ValueError(
                    "Restoring weights into a StochasticLoss with a custom decision_network "
                    "that has not been built: pass num_classes= to StochasticLoss so that it is "
                    "built before the weights are loaded."
                )
            if len(keys) == 1:  # the packed moments, [2, (C + 1) * H + (H + 1) * n]
                total = int(store["0"].shape[1])
                hidden, outputs = self.hidden_units, self.num_candidates
                num_classes = (total - hidden - (hidden + 1) * outputs) // hidden
            else:  # separate moments: "1" is the first moment of the first kernel, [C, H]
                num_classes = int(store["1"].shape[0])
            self.build((None, num_classes))
        if len(keys) == 1 + 2 * len(self._sizes) and len(self._sizes) > 0:
            first = [np.ravel(store[f"{1 + 2 * i}"]) for i in range(len(self._sizes))]
            second = [np.ravel(store[f"{2 + 2 * i}"]) for i in range(len(self._sizes))]
            self.moments.assign(np.stack([np.concatenate(first), np.concatenate(second)]))
            return
        super().load_own_variables(store)

    def call(self, inputs: Any) -> Any:
        return self.network(inputs)

    def flat(self, gradients: Sequence[Any]) -> Any:
        """The gradients of the network's weights as one float32 vector (the moments' layout)."""
        return ops.concatenate(
            [ops.reshape(ops.cast(g, "float32"), (-1,)) for g in gradients], axis=0
        )

    def adam_step(self, gradient: Any, step: Any) -> list:
        """One Adam step on the network's weights from a replica-averaged flat ``gradient``.

        ``gradient`` is laid out as `flat` lays it out; ``step`` is the 1-based number of this
        step (bias correction). Call it once per training step in cross-replica context
        (`StochasticLoss` does, from `all_replicas_mean`); assigning there writes every
        mirrored copy. Returns the update ops.

        The update is the one TensorFlow's fused Adam kernel (``ResourceApplyAdam``) computes:
        Kingma & Ba's with the bias correction folded into the step size, ``lr_t = lr
        sqrt(1 - beta_2^t) / (1 - beta_1^t)``, ``w -= lr_t m / (sqrt(v) + epsilon)``. It runs
        on the flat vector so that the moments are one variable: the fused kernel needs two
        moment variables per weight, and with XLA each variable a step touches cost ~11 us
        on the 2-core overhead benchmark.
        """
        # Both moments in one update of the stacked [2, P] tensor: m + (1 - beta) (g - m)
        # with g and g^2 stacked, the same arithmetic per element as two separate updates.
        moments = self.moments.value
        targets = ops.stack([gradient, ops.square(gradient)])
        rates = np.array([[1.0 - self.beta_1], [1.0 - self.beta_2]], "float32")
        moments = moments + rates * (targets - moments)
        first, second = ops.unstack(moments, 2)
        step = ops.cast(step, "float32")
        rate = (
            self.learning_rate
            * ops.sqrt(1.0 - ops.power(self.beta_2, step))
            / (1.0 - ops.power(self.beta_1, step))
        )
        change = rate * first / (ops.sqrt(second) + self.epsilon)
        updates = [self.moments.assign(moments)]
        pieces = (
            tf.split(change, self._sizes) if len(self._sizes) > 1 else [change] * len(self._sizes)
        )
        for variable, piece, shape in zip(
            self.network.trainable_variables, pieces, self._shapes, strict=True
        ):
            if len(shape) != 1:
                piece = ops.reshape(piece, shape)
            # The backend variable's assign_sub is one op; Keras's `Variable.assign_sub` is
            # three (read, subtract, assign). Keras's own TensorFlow optimizer does the same.
            updates.append(variable.value.assign_sub(ops.cast(piece, variable.dtype)))
        return updates

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
