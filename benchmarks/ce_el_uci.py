"""CE vs the CE+EL mixing protocols with the paper's Table 4 protocol, as the authors ran it.

Battash, Hazan & Wolf, "Mixing between the Cross Entropy and the Expectation Loss Terms",
Sec. "UCI Datasets" / Table 4: a linear classifier (I x C) and a classifier with one hidden
layer (I x I, ReLU, then I x C); 50 epochs, batch 8, SGD with momentum 0.9, a learning-rate
sweep over {0.01, 0.005, 0.001} with the best rate per method chosen on validation, and the
test accuracy read at the best validation epoch, ties going to the *latest* such epoch (the
authors' code keeps the last maximum). Methods: CE, CE+EL with F = 0, F = 0,0.5 and F = 0-0.5
(`kal.schedules.FOCUS_PROTOCOLS`, F changed per epoch as `kal.callbacks.FocusSchedule` does),
EL alone and focal loss (gamma 2).

Tasks: the UCI data sets that ship with scikit-learn (iris, wine, breast cancer, optical
digits) and 16 synthetic tasks from `kal.datasets.synthetic` (2-10 classes, 200-2,000
samples, a third of them with 20 % symmetric label noise on the training and validation
labels, never on test), since four data sets cannot test a claim made over 121. Validation: a
fixed 15 % of the training split. Learning-rate ties go to the larger rate.

Every (method, learning rate, seed) configuration of a task trains at once, as one batched
TensorFlow program: the configurations of a seed share the initial weights (Keras's
initialisers under `keras.utils.set_random_seed(seed)`) and the order of the batches, so
each method is paired with CE. The per-sample losses are the package's candidates
(`kal.losses.candidates.crossentropy`, ``expectation``, ``focal``) and the CE+EL weights come
from `kal.mixing.loss.focus_to_weights`; `tests/examples_test.py` checks that one batched
configuration ends with the same weights as `model.fit` with `CrossentropyExpectationMix`,
`FocusSchedule` and Keras's SGD.

    python benchmarks/ce_el_uci.py                       # 20 tasks x 2 models, 5 seeds
    python benchmarks/ce_el_uci.py --tasks iris wine --epochs 10 --seeds 2
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras
import numpy as np
import tensorflow as tf

import keras_adaptive_loss as kal
from keras_adaptive_loss.comparison import regimes
from keras_adaptive_loss.comparison.paired import paired_difference
from keras_adaptive_loss.losses import candidates
from keras_adaptive_loss.mixing.loss import focus_to_weights
from keras_adaptive_loss.schedules import focus_phases, phase_starts

UCI = ("iris", "wine", "breast_cancer", "digits")
#: 16 synthetic tasks: (spec, training label noise).
SYNTHETIC = tuple(
    (
        f"synthetic:classes={classes},samples={samples},features={features},"
        f"informative={min(features, max(2, classes))},separation={separation},seed={index}",
        0.2 if index % 3 == 2 else 0.0,
    )
    for index, (classes, samples, features, separation) in enumerate(
        [
            (2, 200, 10, 1.0), (2, 1000, 20, 0.8), (3, 300, 8, 1.0), (3, 2000, 20, 0.7),
            (4, 500, 12, 1.0), (4, 1500, 30, 0.8), (5, 400, 10, 1.2), (5, 2000, 16, 0.8),
            (6, 800, 20, 1.0), (6, 1200, 12, 0.9), (7, 1000, 24, 1.0), (8, 600, 16, 1.2),
            (8, 2000, 30, 0.9), (9, 1500, 20, 1.0), (10, 1000, 24, 1.2), (10, 2000, 30, 1.0),
        ]
    )
)  # fmt: skip
TASKS = UCI + tuple(spec for spec, _ in SYNTHETIC)
LEARNING_RATES = (0.01, 0.005, 0.001)
BATCH_SIZE = 8
MOMENTUM = 0.9
#: method -> F protocol (CE+EL), or fixed weights of (crossentropy, expectation, focal).
METHODS: dict[str, str | tuple[float, float, float]] = {
    "CE": (1.0, 0.0, 0.0),
    "CE+EL F=0": "0",
    "CE+EL F=0,0.5": "0,0.5",
    "CE+EL F=0-0.5": "0-0.5",
    "EL": (0.0, 1.0, 0.0),
    "Focal": (0.0, 0.0, 1.0),
}


def loss_weights(method: str, epochs: int) -> np.ndarray:
    """``[epochs, 3]``: the weights of (CE, EL, focal) in each epoch of ``method``."""
    spec = METHODS[method]
    if not isinstance(spec, str):
        return np.tile(np.asarray(spec, "float32"), (epochs, 1))
    phases = focus_phases(spec)
    starts = phase_starts([fraction for _, fraction in phases], epochs)
    weights = np.zeros((epochs, 3), "float32")
    for epoch in range(epochs):
        phase = max(i for i, start in enumerate(starts) if start <= epoch)  # later phases win
        weights[epoch, :2] = focus_to_weights(phases[phase][0])
    return weights


def load_task(task: str) -> tuple[kal.datasets.Dataset, float]:
    noise = dict(SYNTHETIC).get(task, 0.0)
    data = kal.datasets.synthetic(task) if task.startswith("synthetic") else kal.datasets.load(task)
    return data, noise


def split(data: kal.datasets.Dataset, noise: float, seed: int):
    """Train / validation (a fixed 15 % hold-out), label noise drawn per seed."""
    order = np.random.default_rng(0).permutation(len(data.x_train))
    held = max(1, round(0.15 * len(order)))
    val, train = order[:held], order[held:]
    y_train, y_val = data.y_train[train], data.y_train[val]
    if noise:
        rng = np.random.default_rng([seed, 7919])
        y_train = regimes.add_label_noise(y_train, noise, data.num_classes, "symmetric", rng)
        y_val = regimes.add_label_noise(y_val, noise, data.num_classes, "symmetric", rng)
    return data.x_train[train], y_train, data.x_train[val], y_val


def initial_weights(model: str, features: int, classes: int, seed: int) -> list[np.ndarray]:
    """The weights Keras initialises for ``model`` under ``set_random_seed(seed)``."""
    keras.utils.set_random_seed(seed)
    layers = [keras.Input((features,))]
    if model == "hidden":
        layers.append(keras.layers.Dense(features, activation="relu"))
    layers.append(keras.layers.Dense(classes, activation="softmax"))
    return keras.Sequential(layers).get_weights()


@dataclass
class Trajectories:
    """Accuracy per evaluated set ``[configs, epochs]``, and the final weights per parameter
    ``[configs, ...]``."""

    scores: list[np.ndarray]
    weights: list[np.ndarray]

    @property
    def validation(self) -> np.ndarray:
        return self.scores[0]

    @property
    def test(self) -> np.ndarray:
        return self.scores[1]


def train_batched(
    initial: list[list[np.ndarray]],
    weights: np.ndarray,
    learning_rates: np.ndarray,
    orders: list[list[np.ndarray]],
    seed_of: np.ndarray,
    x_train: np.ndarray,
    y_train: np.ndarray,
    evaluation: Sequence[tuple[np.ndarray, np.ndarray]],
) -> Trajectories:
    """Trains ``M`` configurations at once with SGD (momentum 0.9) and batch 8.

    Args:
        initial: per seed, the Keras weights ``[W1, b1, (W2, b2)]``.
        weights: ``[M, epochs, 3]`` weights of (CE, EL, focal) per configuration and epoch.
        learning_rates: ``[M]``.
        orders: per seed, per epoch, the permutation of the training samples.
        seed_of: ``[M]`` the seed (index into ``initial`` / ``orders``) of each configuration.
        x_train, y_train: training data; ``y_train`` may differ per seed: ``[seeds, N]``.
        evaluation: (x, y) sets scored after every epoch (y per seed ``[seeds, N]`` allowed).
    """
    seed_of = np.asarray(seed_of)
    params = [
        tf.Variable(np.stack([initial[s][i] for s in seed_of]).astype("float32"))
        for i in range(len(initial[0]))
    ]
    velocity = [tf.Variable(tf.zeros_like(p)) for p in params]
    rates = tf.constant(np.asarray(learning_rates, "float32"))
    y_train = np.asarray(y_train)
    labels_per_seed = y_train if y_train.ndim == 2 else np.tile(y_train, (len(initial), 1))
    x = tf.constant(x_train, "float32")

    def forward(inputs):  # inputs [M, B, I]
        hidden = inputs
        for i in range(0, len(params) - 2, 2):
            hidden = tf.nn.relu(
                tf.einsum("mbi,mih->mbh", hidden, params[i]) + params[i + 1][:, None]
            )
        return tf.nn.softmax(tf.einsum("mbi,mic->mbc", hidden, params[-2]) + params[-1][:, None])

    @tf.function(reduce_retracing=True)
    def step(batch_x, batch_y, mix):  # [M, B, I], [M, B], [M, 3]
        with tf.GradientTape() as tape:
            p = forward(batch_x)
            flat_p = tf.reshape(p, (-1, p.shape[-1]))
            flat_y = tf.reshape(batch_y, (-1,))
            terms = tf.stack(
                [
                    candidates.crossentropy(flat_y, flat_p),
                    candidates.expectation(flat_y, flat_p),
                    candidates.focal(flat_y, flat_p),
                ],
                axis=-1,
            )  # [M * B, 3]
            per_config = tf.reduce_mean(
                tf.reshape(terms, tf.concat([tf.shape(batch_y), [3]], 0)), 1
            )
            loss = tf.reduce_sum(per_config * mix)  # each configuration's mean loss
        gradients = tape.gradient(loss, params)
        for param, moment, gradient in zip(params, velocity, gradients, strict=True):
            shape = (-1,) + (1,) * (len(param.shape) - 1)
            moment.assign(MOMENTUM * moment - tf.reshape(rates, shape) * gradient)
            param.assign_add(moment)

    @tf.function(reduce_retracing=True)
    def predict(inputs):
        return tf.argmax(forward(tf.tile(inputs[None], (len(seed_of), 1, 1))), axis=-1)

    epochs = weights.shape[1]
    scores = [np.zeros((len(seed_of), epochs)) for _ in evaluation]
    for epoch in range(epochs):
        mix = tf.constant(weights[:, epoch])
        order = np.stack([orders[s][epoch] for s in seed_of])  # [M, N]
        for start in range(0, order.shape[1], BATCH_SIZE):
            index = order[:, start : start + BATCH_SIZE]
            batch_y = np.take_along_axis(labels_per_seed[seed_of], index, axis=1)
            step(tf.gather(x, index), tf.constant(batch_y), mix)
        for scored, (inputs, labels) in zip(scores, evaluation, strict=True):
            labels = np.asarray(labels)
            labels = labels[seed_of] if labels.ndim == 2 else labels[None]
            predicted = predict(tf.constant(inputs, "float32")).numpy()
            scored[:, epoch] = np.mean(predicted == labels, axis=1)
    return Trajectories(scores, [p.numpy() for p in params])


def run_task(task: str, model: str, seeds: int, epochs: int, learning_rates) -> dict:
    """``{method: [test accuracy per seed]}`` under the protocol (best rate and epoch on
    validation, latest epoch on ties, larger rate on ties)."""
    data, noise = load_task(task)
    splits = [split(data, noise, seed) for seed in range(seeds)]
    x_train, _, x_val, _ = splits[0]
    configs = [(m, lr, s) for m in METHODS for lr in learning_rates for s in range(seeds)]
    initial = [initial_weights(model, data.num_features, data.num_classes, s) for s in range(seeds)]
    orders = [
        [np.random.default_rng([s, e]).permutation(len(x_train)) for e in range(epochs)]
        for s in range(seeds)
    ]
    trajectories = train_batched(
        initial,
        np.stack([loss_weights(m, epochs) for m, _, _ in configs]),
        np.array([lr for _, lr, _ in configs]),
        orders,
        np.array([s for _, _, s in configs]),
        x_train,
        np.stack([y for _, y, _, _ in splits]),
        [(x_val, np.stack([y for _, _, _, y in splits])), (data.x_test, data.y_test)],
    )
    results: dict[str, list[float]] = {}
    for method in METHODS:
        per_seed = []
        for seed in range(seeds):
            rows = [i for i, (m, _, s) in enumerate(configs) if m == method and s == seed]
            # best validation accuracy per rate; ties to the larger rate (grid order)
            best_row = max(rows, key=lambda i: (trajectories.validation[i].max(), -rows.index(i)))
            curve = trajectories.validation[best_row]
            epoch = len(curve) - 1 - int(np.argmax(curve[::-1]))  # latest best epoch
            per_seed.append(float(trajectories.test[best_row, epoch]))
        results[method] = per_seed
    return results


def main(
    tasks: Sequence[str] = TASKS,
    models: Sequence[str] = ("linear", "hidden"),
    seeds: int = 5,
    epochs: int = 50,
    learning_rates: Sequence[float] = LEARNING_RATES,
) -> dict:
    """Returns ``{(model, task): {method: [test accuracy per seed]}}`` and prints the tables."""
    start = time.perf_counter()
    results: dict = {}
    for task in tasks:
        for model in models:
            table = run_task(task, model, seeds, epochs, learning_rates)
            results[(model, task)] = table
            print(
                f"{task[:60]:<60} {model:<6} "
                + "  ".join(f"{m} {100 * np.mean(a):6.2f}" for m, a in table.items()),
                flush=True,
            )
    print()
    print(summary(results))
    print(f"total {time.perf_counter() - start:.0f} s")
    return results


def summary(results: dict) -> str:
    """Table 4's columns per model (wins, mean Δ accuracy to CE, mean rank; on the mean over
    seeds per task) and the paired 95 % interval of Δ over tasks."""
    header = (
        f"{'model':<7} {'method':<14} {'#wins':>5} {'Δ acc (points)':>15} "
        f"{'95% CI over tasks':>19} {'W/T/L':>8} {'mean rank':>9}"
    )
    lines = [header]
    for model in dict.fromkeys(model for model, _ in results):
        tables = [
            {method: float(np.mean(values)) for method, values in table.items()}
            for (m, _), table in results.items()
            if m == model
        ]
        for method in METHODS:
            wins = sum(table[method] == max(table.values()) for table in tables)
            stats = paired_difference(
                [table[method] for table in tables], [table["CE"] for table in tables]
            )
            ranks = []
            for table in tables:
                values = np.array(list(table.values()))
                better = (values > table[method]).sum()
                equal = (values == table[method]).sum()
                ranks.append(better + (equal + 1) / 2)  # average rank among ties, 1 = best
            interval = (
                "-" if np.isnan(stats.low) else f"[{100 * stats.low:+.2f}, {100 * stats.high:+.2f}]"
            )
            record = f"{stats.wins}/{stats.ties}/{stats.losses}"
            lines.append(
                f"{model:<7} {method:<14} {wins:>5} {100 * stats.mean:>15.2f} {interval:>19} "
                f"{record:>8} {np.mean(ranks):>9.2f}"
            )
    return "\n".join(lines)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", nargs="+", default=list(TASKS))
    parser.add_argument("--models", nargs="+", default=["linear", "hidden"])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--epochs", type=int, default=50)
    args = parser.parse_args()
    main(args.tasks, args.models, seeds=args.seeds, epochs=args.epochs)
