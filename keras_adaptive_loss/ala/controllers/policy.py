"""The ALA loss-control policy: a shared per-parameter MLP trained with REINFORCE."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import keras
import numpy as np
from keras import ops

from keras_adaptive_loss._tensorflow import GradientTape, compiled

__all__ = ["ACTIONS", "Policy"]

ACTIONS = (-1.0, 0.0, 1.0)  # multiples of the step size beta: decrease, keep, increase
_CONFIG_FILE = "policy.json"
_WEIGHTS_FILE = "policy.weights.h5"


class Policy:
    """``pi_theta(a | s)``: one MLP shared by all loss parameters, three actions each.

    As in the ALA paper (Secs. 3.2, 5): the network has two hidden layers of 32 ReLU units and
    three outputs per parameter (``-beta, 0, +beta``); actions are sampled from their softmax.
    It learns with REINFORCE (Eq. 3): ``loss = -mean(advantage * log pi(a | s)) -
    entropy_weight * mean(H(pi(. | s)))`` with Adam at learning rate 1e-3. The entropy bonus
    (not in the paper; 0.01 by default) keeps the policy from locking onto one action after a
    few noisy ±1 rewards: with a pure-noise reward and no bonus, P(keep) drifted from 0.59 to
    0.87 in 22 updates. The feature size does not depend on the number of parameters, so one
    policy serves tasks with any number of classes.

    Save and load with `save` / `load`: a JSON config and a Keras ``.weights.h5`` file, no pickle.

    The paper does not say how the policy starts. A uniform start (1/3 each) makes the loss
    parameters random-walk while the policy is still untrained, which on short runs hurt badly:
    on MNIST-1D (1-D CNN, 40 epochs, 22 decisions per run, 2 seeds) ALA with Eq. 6 reached
    10.2 / 15.7 % test accuracy with a uniform start and 19.0 / 22.9 % with ``keep_prior=0.8``;
    the linear form 29.0 / 49.8 % against 42.7 / 52.9 %. The default therefore starts with the
    "keep" action at probability ``keep_prior`` (through the output bias).

    Args:
        feature_size: length of a parameter's state vector.
        hidden_units: widths of the hidden layers.
        learning_rate: Adam learning rate.
        seed: seed of the initial weights and of the action sampling.
        keep_prior: initial probability of the "keep" action, in (0, 1); 1/3 is uniform.
        entropy_weight: weight of the entropy bonus.

    >>> policy = Policy(feature_size=4, seed=0)
    >>> probabilities = policy.probabilities(np.zeros((2, 4), "float32"))  # 2 parameters
    >>> probabilities.shape, round(float(probabilities[0, 1]), 4)  # "keep" starts at keep_prior
    ((2, 3), 0.8)
    """

    def __init__(
        self,
        feature_size: int,
        hidden_units: tuple[int, ...] = (32, 32),
        learning_rate: float = 1e-3,
        seed: int | None = None,
        keep_prior: float = 0.8,
        entropy_weight: float = 0.01,
    ) -> None:
        if feature_size < 1:
            raise ValueError(f"feature_size must be >= 1; got {feature_size!r}.")
        if not 0.0 < keep_prior < 1.0:
            raise ValueError(f"keep_prior must lie in (0, 1); got {keep_prior!r}.")
        if not entropy_weight >= 0.0:
            raise ValueError(f"entropy_weight must be >= 0; got {entropy_weight!r}.")
        self.keep_prior = float(keep_prior)
        self.entropy_weight = float(entropy_weight)
        self.feature_size = int(feature_size)
        self.hidden_units = tuple(int(u) for u in hidden_units)
        self.learning_rate = float(learning_rate)
        self.seed = seed
        initializer = keras.initializers.GlorotUniform(seed=seed)
        layers = [keras.Input((self.feature_size,))]
        layers += [
            keras.layers.Dense(
                u, activation="relu", kernel_initializer=initializer, dtype="float32"
            )
            for u in self.hidden_units
        ]
        # Output bias b on "keep" gives P(keep) = e^b / (e^b + 2) = keep_prior at zero input.
        keep_bias = float(np.log(2.0 * self.keep_prior / (1.0 - self.keep_prior)))
        layers.append(
            keras.layers.Dense(
                len(ACTIONS),
                kernel_initializer=initializer,
                bias_initializer=keras.initializers.Constant([0.0, keep_bias, 0.0]),
                dtype="float32",  # float32 even under a mixed-precision global policy
            )
        )
        self.network = keras.Sequential(layers, name="ala_policy")
        self.optimizer = keras.optimizers.Adam(self.learning_rate)
        self.optimizer.build(self.network.trainable_variables)
        # One graph each for any number of parameters, traced and run once here, before
        # training: a decision inside `fit` then costs a graph call, not a trace (ALA's
        # amortised step).
        states = ([None, self.feature_size], "float32")
        self._learn_step = compiled(
            self._learn, input_signature=[states, ([None], "int32"), ([None], "float32")]
        )
        self._probabilities = compiled(
            lambda s: ops.softmax(self.network(s, training=False), axis=-1),
            input_signature=[states],
        )
        self._warm_up()

    def _warm_up(self) -> None:
        """Runs both graphs once and restores every variable the learning step changed.

        A graph's first run is much slower than the later ones (TensorFlow instantiates and
        optimises it). Paid here, before training, it does not land on the first decisions
        inside `fit`.
        """
        variables = [*self.network.variables, *self.optimizer.variables]
        saved = [variable.numpy() for variable in variables]
        states = ops.zeros([1, self.feature_size])
        self._probabilities(states)
        self._learn_step(states, ops.zeros([1], "int32"), ops.zeros([1]))
        for variable, value in zip(variables, saved, strict=True):
            variable.assign(value)

    @classmethod
    def random_walk(cls, feature_size: int, keep_prior: float = 0.8) -> Policy:
        """A policy that ignores its state: keep with ``keep_prior``, else -1 or +1 at random.

        The control arm of the effectiveness benchmark: Φ random-walks with ALA's step and
        bounds. Use it with ``learn=False``.
        """
        policy = cls(feature_size, keep_prior=keep_prior, entropy_weight=0.0)
        last = policy.network.layers[-1]
        last.kernel.assign(np.zeros(last.kernel.shape, "float32"))
        return policy

    def probabilities(self, states: np.ndarray) -> np.ndarray:
        """Action probabilities, ``[parameters, 3]``."""
        states = ops.convert_to_tensor(np.asarray(states, "float32").reshape(-1, self.feature_size))
        return ops.convert_to_numpy(self._probabilities(states)).astype("float64")

    def act(
        self,
        states: np.ndarray,
        generator: np.random.Generator | None = None,
        greedy: bool = False,
    ) -> np.ndarray:
        """An action index per parameter: sampled with ``generator``, or the most probable
        with ``greedy``."""
        probabilities = self.probabilities(states)
        if greedy:
            return probabilities.argmax(-1)
        if generator is None:
            raise ValueError("Policy.act needs a generator to sample (or greedy=True).")
        cumulative = probabilities.cumsum(-1)
        draws = generator.random((len(probabilities), 1))
        return np.minimum((draws > cumulative).sum(-1), len(ACTIONS) - 1)

    def _learn(self, states, actions, advantages):
        with GradientTape() as tape:
            log_p = ops.log_softmax(self.network(states, training=True), axis=-1)
            chosen = ops.take_along_axis(log_p, actions[:, None], axis=-1)[:, 0]
            entropy = -ops.sum(ops.exp(log_p) * log_p, axis=-1)
            loss = -ops.mean(advantages * chosen) - self.entropy_weight * ops.mean(entropy)
        gradients = tape.gradient(loss, self.network.trainable_variables)
        self.optimizer.apply(gradients, self.network.trainable_variables)
        return loss

    def learn(self, states: np.ndarray, actions: np.ndarray, advantages: np.ndarray) -> float:
        """One REINFORCE step (Eq. 3) on a batch of transitions; returns the policy loss."""
        loss = self._learn_step(
            ops.convert_to_tensor(np.asarray(states, "float32")),
            ops.convert_to_tensor(np.asarray(actions, "int32")),
            ops.convert_to_tensor(np.asarray(advantages, "float32")),
        )
        return float(loss)

    def get_config(self) -> dict[str, Any]:
        return {
            "feature_size": self.feature_size,
            "hidden_units": list(self.hidden_units),
            "learning_rate": self.learning_rate,
            "seed": self.seed,
            "keep_prior": self.keep_prior,
            "entropy_weight": self.entropy_weight,
        }

    def save(self, directory: str | Path) -> None:
        """Writes ``policy.json`` (config) and ``policy.weights.h5`` (weights) to ``directory``."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        (directory / _CONFIG_FILE).write_text(json.dumps(self.get_config(), indent=2))
        self.network.save_weights(directory / _WEIGHTS_FILE)

    @classmethod
    def load(cls, directory: str | Path) -> Policy:
        """Rebuilds a policy saved with `save` (its weights; a fresh optimizer)."""
        directory = Path(directory)
        path = directory / _CONFIG_FILE
        config = json.loads(path.read_text())
        if not isinstance(config, dict):
            raise ValueError(f"{path} is not a saved ALA policy config (a JSON object).")
        _check_config(config, path)
        policy = cls(**config)
        policy.network.load_weights(directory / _WEIGHTS_FILE)
        return policy


# The JSON types of a saved policy config; anything else is refused before it is used.
_CONFIG_TYPES = {
    "feature_size": (int,),
    "hidden_units": (list,),
    "learning_rate": (int, float),
    "seed": (int, type(None)),
    "keep_prior": (int, float),
    "entropy_weight": (int, float),
}


def _check_config(config: dict[str, Any], path: Path) -> None:
    unknown = sorted(set(config) - set(_CONFIG_TYPES))
    if unknown:
        raise ValueError(f"{path} has unknown keys {unknown}: it is not a saved ALA policy config.")
    if "feature_size" not in config:
        raise ValueError(f"{path} has no feature_size; it is not a saved ALA policy config.")
    for key, value in config.items():
        types = _CONFIG_TYPES[key]
        valid = isinstance(value, types) and not isinstance(value, bool)
        if key == "hidden_units":
            valid = valid and all(isinstance(u, int) and u > 0 for u in value)
        if not valid:
            raise ValueError(f"{path}: policy config {key}={value!r} has the wrong type.")
