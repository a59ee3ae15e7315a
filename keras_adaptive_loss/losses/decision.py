"""`DecisionNetwork`: the network h(.; v) of the stochastic loss, with its own optimizer."""

from __future__ import annotations

from typing import Any

import keras
import tensorflow as tf
from keras import ops

from keras_adaptive_loss.losses.base import deserialize_nested

__all__ = ["DecisionNetwork"]


@keras.saving.register_keras_serializable(package="keras_adaptive_loss")
class DecisionNetwork(keras.layers.Layer):
    """Maps a model's predictions to logits over candidate losses, and trains itself with Adam.

    The decision network of the stochastic-loss-function paper (Eq. 4) is trained in the same
    backward pass as the model (Algorithm 1), but Keras only trains the model's own variables.
    This layer therefore keeps its Adam state (first and second moments, step count) as
    non-trainable weights and applies its own update (`adam_step`, TensorFlow's fused
    Adam kernel: Kingma & Ba's update with bias correction folded into the step size). Being a
    layer held by the loss, its weights and optimizer state are saved by ``model.save`` and
    restored by `keras.models.load_model`.

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

        def state(name, shape=()):
            return self.add_weight(
                shape=shape, initializer="zeros", trainable=False, autocast=False, name=name
            )

        self.step = state("step")
        self.moments = [
            (state("m", v.shape), state("v", v.shape)) for v in self.network.trainable_variables
        ]
        super().build(input_shape)

    def load_own_variables(self, store: Any) -> None:
        """Builds the layer from the saved shapes first if it is not built yet.

        The network is built lazily, on the first batch, because only then is the number of
        classes known. `keras.callbacks.BackupAndRestore` and ``model.load_weights`` load
        before that batch; without this, Keras would skip the unbuilt layer and the restored
        run would silently start from a fresh decision network. Keras loads a layer's own
        variables before those of its sublayers, so building here lets the network's weights
        load too.
        """
        if not self.built and store is not None and len(store.keys()) > 1:
            if self._custom_network:
                raise ValueError(
                    "Restoring weights into a StochasticLoss with a custom decision_network "
                    "that has not been built: pass num_classes= to StochasticLoss so that it is "
                    "built before the weights are loaded."
                )
            # Variable 0 is the Adam step; variable 1 the first moment of the first kernel,
            # of shape [num_classes, hidden_units].
            self.build((None, int(store["1"].shape[0])))
        super().load_own_variables(store)

    def call(self, inputs: Any) -> Any:
        return self.network(inputs)

    def adam_step(self, *gradients: Any) -> list:
        """One Adam step on the network's weights from replica-averaged ``gradients``.

        Call it once per training step in cross-replica context (`StochasticLoss` does, from
        `all_replicas_mean`); returns the update ops.
        """
        # TensorFlow's fused Adam kernel: one op per variable instead of ~17 small ones (the
        # unfused update cost ~0.15 ms per training step). Runs in cross-replica context;
        # `extended.update` applies it to every mirrored copy with that copy's moments.
        strategy = tf.distribute.get_strategy()
        step = self.step.value + 1.0
        beta_1_power = ops.power(self.beta_1, step)
        beta_2_power = ops.power(self.beta_2, step)

        def apply(variable, m, v, gradient):
            return tf.raw_ops.ResourceApplyAdam(
                var=variable.handle, m=m.handle, v=v.handle,
                beta1_power=ops.cast(beta_1_power, variable.dtype),
                beta2_power=ops.cast(beta_2_power, variable.dtype),
                lr=ops.cast(self.learning_rate, variable.dtype),
                beta1=ops.cast(self.beta_1, variable.dtype),
                beta2=ops.cast(self.beta_2, variable.dtype),
                epsilon=ops.cast(self.epsilon, variable.dtype),
                grad=ops.cast(gradient, variable.dtype),
            )  # fmt: skip

        updates = [self.step.assign(step)]
        for variable, (m, v), gradient in zip(
            self.network.trainable_variables, self.moments, gradients, strict=True
        ):
            updates.append(
                strategy.extended.update(variable.value, apply, args=(m.value, v.value, gradient))
            )
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
