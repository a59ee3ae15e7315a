"""One run of a comparison: build the model and the loss for a seed, train, score the test
split."""

from __future__ import annotations

import contextlib
import math
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import keras
import numpy as np

from keras_adaptive_loss import _tensorflow
from keras_adaptive_loss.ala.controllers.metrics import average_precision, f1_score
from keras_adaptive_loss.comparison.data import PreparedData, noisy_labels
from keras_adaptive_loss.comparison.epoch_metrics import PositiveClassPRAUC
from keras_adaptive_loss.comparison.loss_presets import LossContext, LossSetup, build_loss, describe
from keras_adaptive_loss.comparison.model_presets import build_model
from keras_adaptive_loss.comparison.recorders import BestEpochWeights, EpochTimer, ParameterRecorder
from keras_adaptive_loss.comparison.result import RunRecord
from keras_adaptive_loss.comparison.settings import ComparisonSettings
from keras_adaptive_loss.selection.training_data import ShuffledBatches

__all__ = ["TrainedRun", "Trainer", "check_tensorboard"]

_OPTIMIZERS: dict[str, Callable[[float], keras.optimizers.Optimizer]] = {
    "adam": lambda rate: keras.optimizers.Adam(rate),
    "sgd": lambda rate: keras.optimizers.SGD(rate, momentum=0.9),
}


@dataclass(frozen=True)
class TrainedRun:
    """A finished run and how its loss was built (`kal.comparison.loss_presets.describe`)."""

    record: RunRecord
    loss_setup: dict[str, Any]


class Trainer:
    """Trains one (loss, seed) run of a comparison on its prepared data.

    Args:
        settings: the comparison's settings.
        prepared: its data, regime applied and validation held out.
    """

    def __init__(self, settings: ComparisonSettings, prepared: PreparedData) -> None:
        self.settings = settings
        self.prepared = prepared
        self.distribution = _strategy(settings.strategy)

    def record(self) -> dict[str, Any]:
        """What results.json records about where the runs train."""
        distribution = self.distribution
        return {
            "strategy": None if distribution is None else type(distribution).__name__,
            "replicas": 1 if distribution is None else int(distribution.num_replicas_in_sync),
        }

    def context(self, seed: int) -> tuple[LossContext, tuple[np.ndarray, ...]]:
        """The loss presets' view of a seed's run, and the seed's (noisy) splits."""
        settings, prepared = self.settings, self.prepared
        splits = noisy_labels(
            prepared.splits, seed, prepared.num_classes, settings.label_noise, settings.noise_type
        )
        context = LossContext(
            prepared.num_classes,
            seed,
            prepared.steps_per_epoch(settings.batch_size),
            settings.epochs,
            (splits[2], splits[3]),
            class_counts=prepared.class_counts(splits[1]),
        )
        return context, splits

    def check(self) -> None:
        """Builds the model and every loss once, so that a model or preset that does not fit
        this task fails before any run trains."""
        data = self.prepared.data
        build_model(self.settings.model, data.num_features, data.num_classes, data.image_shape)
        context, _ = self.context(0)
        for spec in self.settings.losses.values():
            _make_setup(spec, context)

    def train(self, label: str, seed: int) -> TrainedRun:
        """Trains ``label``'s loss from ``seed``'s initial weights and scores the test split.

        Every run of a seed starts from the same weights and sees the same batches: a new
        permutation of the training split every epoch (`ShuffledBatches`), the order a
        `select_loss` population of that seed trains on."""
        settings, data = self.settings, self.prepared.data
        context, (x_train, y_train, x_val, y_val) = self.context(seed)
        keras.utils.set_random_seed(seed)
        distribution = self.distribution
        scope = distribution.scope() if distribution is not None else contextlib.nullcontext()
        with scope:
            model = build_model(
                settings.model, data.num_features, data.num_classes, data.image_shape
            )
            setup = _make_setup(settings.losses[label], context)
            if setup.population is not None:
                splits = (x_train, y_train, x_val, y_val)
                return self._train_population(label, seed, setup, splits)
            if setup.logits:
                _output_logits(model, label)
            metrics: list[Any] = ["accuracy"]
            if data.num_classes == 2:  # learning curves of the binary task's metric too
                metrics.append(PositiveClassPRAUC(from_logits=setup.logits))
            model.compile(
                optimizer=_optimizer(settings.optimizer, settings.learning_rate),
                loss=setup.loss,
                metrics=metrics,
                jit_compile=settings.jit_compile,
            )
        timer, recorder = EpochTimer(), ParameterRecorder()
        selector = None
        if settings.evaluation != "last":
            selector = BestEpochWeights(latest_ties=settings.evaluation == "best-latest")
        replicas = 1 if distribution is None else int(distribution.num_replicas_in_sync)
        batches = ShuffledBatches(
            x_train, y_train, settings.batch_size, settings.epochs, seed, replicas
        )
        history = model.fit(
            batches,
            shuffle=False,
            steps_per_epoch=batches.steps_per_epoch,
            validation_data=(x_val, y_val),
            validation_batch_size=_even_first_batch(len(x_val), settings.batch_size, distribution),
            epochs=settings.epochs,
            callbacks=[
                *setup.callbacks,
                timer,
                recorder,
                *([selector] if selector else []),
                *_tensorboard(settings.tensorboard, label, seed),
            ],
            verbose=0,
        )
        test_metrics = _test_metrics(model, data, logits=setup.logits)
        record = RunRecord(
            loss=label,
            seed=seed,
            test_metrics=test_metrics,
            diverged=any(math.isnan(value) for value in test_metrics.values()),
            epoch_seconds=timer.seconds,
            history={key: [float(v) for v in values] for key, values in history.history.items()},
            parameters=recorder.trajectories,
            selected_epoch=selector.best_epoch if selector is not None else settings.epochs,
        )
        return TrainedRun(record, describe(setup))

    def _train_population(
        self, label: str, seed: int, setup: LossSetup, splits: tuple[np.ndarray, ...]
    ) -> TrainedRun:
        """A `select_loss` population from ``seed``'s initial weights (its children start
        from the weights a single run's model starts from); scores the child it chooses. The
        population keeps its final weights (``evaluation`` does not apply); its batches are
        the single runs'."""
        from keras_adaptive_loss.selection import select_loss

        settings, data = self.settings, self.prepared.data
        x_train, y_train, x_val, y_val = splits
        keras.utils.set_random_seed(seed)
        result = select_loss(
            lambda: build_model(
                settings.model, data.num_features, data.num_classes, data.image_shape
            ),
            x_train,
            y_train,
            (x_val, y_val),
            epochs=settings.epochs,
            batch_size=settings.batch_size,
            optimizer=lambda: _optimizer(settings.optimizer, settings.learning_rate),
            strategy=self.distribution,
            seed=seed,
            **setup.population,
        )
        test_metrics = _test_metrics(result.best_model, data)
        record = RunRecord(
            loss=label,
            seed=seed,
            test_metrics=test_metrics,
            diverged=any(math.isnan(value) for value in test_metrics.values()),
            epoch_seconds=[result.seconds / settings.epochs] * settings.epochs,
            history={},
            selected_epoch=settings.epochs,
            chosen_loss=result.losses[result.best_index].label,
        )
        return TrainedRun(record, describe(setup))


def check_tensorboard(directory: str | None) -> None:
    """Makes the TensorBoard folder; raises `ValueError` when it cannot be made."""
    if directory is None:
        return
    try:
        os.makedirs(directory, exist_ok=True)
    except OSError as error:
        message = f"tensorboard {directory!r} cannot be created: {error.strerror}."
        raise ValueError(message) from None


def _strategy(strategy: Any) -> Any:
    """The `tf.distribute.Strategy` to train in, or ``None``."""
    if strategy is None:
        return None
    if strategy == "mirrored":
        return _tensorflow.mirrored_strategy()
    if _tensorflow.is_strategy(strategy):
        return strategy
    raise ValueError(
        f"strategy must be None, 'mirrored' or a tf.distribute.Strategy; got {strategy!r}."
    )


def _optimizer(
    optimizer: str | Callable[[float], keras.optimizers.Optimizer], learning_rate: float
) -> keras.optimizers.Optimizer:
    make = optimizer if callable(optimizer) else _OPTIMIZERS[optimizer]
    return make(learning_rate)


def _make_setup(spec: Any, context: LossContext) -> LossSetup:
    made = build_loss(spec, context) if isinstance(spec, str) else spec(context)
    if isinstance(made, LossSetup):
        return made
    if isinstance(made, keras.losses.Loss) or callable(made):
        return LossSetup(made)
    raise ValueError(f"A loss factory must return a keras Loss or a LossSetup; got {made!r}.")


def _even_first_batch(size: int, batch_size: int, distribution: Any) -> int:
    """A validation batch size whose first batch splits evenly over the replicas.

    Keras 3.15 / TF 2.21 `evaluate` under MirroredStrategy fails with "Inputs to operation
    AddN ... must have the same size" when the first batch (the one that traces the step) does
    not divide by the number of replicas, e.g. 17 samples on 2 replicas. Later partial batches
    are fine.
    """
    replicas = 1 if distribution is None else distribution.num_replicas_in_sync
    if size >= batch_size or replicas == 1:
        return batch_size
    return max(replicas, size - size % replicas)


def _output_logits(model: keras.Model, label: str) -> None:
    """Makes the model output logits: its last layer's softmax becomes linear."""
    last = model.layers[-1]
    if getattr(last, "activation", None) is not keras.activations.softmax:
        raise ValueError(
            f"Loss {label!r} reads logits, so compare removes the softmax of the model's last "
            f"layer; but the last layer ({type(last).__name__} {last.name!r}) has no softmax "
            "activation. End the model with Dense(num_classes, activation='softmax')."
        )
    last.activation = keras.activations.linear


def _tensorboard(directory: str | None, label: str, seed: int) -> list[keras.callbacks.Callback]:
    """A TensorBoard callback for one run, listed after the loss's own callbacks so that the
    parameters they write into ``logs`` reach it."""
    if directory is None:
        return []
    safe = "".join(c if c.isalnum() or c in "-_.+" else "_" for c in label)
    return [keras.callbacks.TensorBoard(os.path.join(directory, safe, f"seed-{seed}"))]


def _test_metrics(model: keras.Model, data: Any, logits: bool = False) -> dict[str, float]:
    # Eager batches: model.predict would trace a new tf.function for every model of the loop.
    outputs = [
        model(data.x_test[i : i + 1024], training=False) for i in range(0, len(data.x_test), 1024)
    ]
    if logits:
        outputs = [keras.ops.softmax(output, axis=-1) for output in outputs]
    probabilities = np.concatenate([keras.ops.convert_to_numpy(output) for output in outputs])
    names = ("accuracy", "average_precision", "f1") if data.num_classes == 2 else ("accuracy",)
    if not np.all(np.isfinite(probabilities)):  # diverged: argmax of NaN is no prediction
        return {name: math.nan for name in names}
    metrics = {"accuracy": float(np.mean(probabilities.argmax(-1) == data.y_test))}
    if data.num_classes == 2:
        metrics["average_precision"] = average_precision(data.y_test, probabilities[:, 1])
        metrics["f1"] = f1_score(data.y_test, probabilities.argmax(-1))
    return metrics
