"""`compare`: train one model with several losses over several seeds and report the results."""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import hashlib
import json
import math
import os
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import keras
import numpy as np

from keras_adaptive_loss import _tensorflow, datasets, names
from keras_adaptive_loss.ala.controllers.metrics import average_precision, f1_score
from keras_adaptive_loss.comparison import regimes
from keras_adaptive_loss.comparison.epoch_metrics import PositiveClassPRAUC
from keras_adaptive_loss.comparison.loss_presets import (
    LossContext,
    LossSetup,
    build_loss,
    canonical_name,
    describe,
)
from keras_adaptive_loss.comparison.model_presets import build_model
from keras_adaptive_loss.comparison.output_dir import OutputDirectory
from keras_adaptive_loss.comparison.paired import MIN_SEEDS, paired_difference
from keras_adaptive_loss.comparison.progress import RunProgress
from keras_adaptive_loss.comparison.recorders import (
    EVALUATIONS,
    BestEpochWeights,
    EpochTimer,
    ParameterRecorder,
)

__all__ = ["DEFAULT_LOSSES", "ComparisonResult", "RunRecord", "compare", "load_data"]

#: Losses `compare` trains when none are named: every preset that fits a multi-class task.
DEFAULT_LOSSES = names.DEFAULT_PRESETS

LossSpec = str | Callable[[LossContext], "keras.losses.Loss | LossSetup"]


@dataclass
class RunRecord:
    """One training run: a loss and a seed.

    >>> run = RunRecord("focal", 0, {"accuracy": 0.9}, [0.2, 0.4], {"loss": [1.0, 0.5]})
    >>> round(run.seconds_per_epoch, 4)
    0.3
    """

    loss: str
    seed: int
    test_metrics: dict[str, float]
    epoch_seconds: list[float]
    history: dict[str, list[float]]
    parameters: dict[str, list] = field(default_factory=dict)
    #: 1-based epoch whose weights were scored (the last one unless ``evaluation`` says best).
    selected_epoch: int | None = None
    #: The model's test predictions were not finite (NaN or inf): the run diverged, and its
    #: test metrics are NaN, not scores.
    diverged: bool = False

    @property
    def seconds_per_epoch(self) -> float:
        return float(np.mean(self.epoch_seconds)) if self.epoch_seconds else float("nan")


@dataclass
class ComparisonResult:
    """The runs of a comparison and its settings; `summary` aggregates them per loss.

    >>> runs = [
    ...     RunRecord(loss, seed, {"accuracy": accuracy}, [0.1], {})
    ...     for loss, seed, accuracy in [
    ...         ("crossentropy", 0, 0.90), ("crossentropy", 1, 0.92),
    ...         ("focal", 0, 0.93), ("focal", 1, 0.94),
    ...     ]
    ... ]
    >>> result = ComparisonResult({}, runs)
    >>> result.reference, result.losses
    ('crossentropy', ['crossentropy', 'focal'])
    >>> row = result.paired()[0]  # focal - crossentropy: +0.03 and +0.02
    >>> row["loss"], round(row["accuracy_mean"], 4), row["accuracy_wins"]
    ('focal', 0.025, 2)
    """

    config: dict[str, Any]
    runs: list[RunRecord]

    @property
    def losses(self) -> list[str]:
        return list(dict.fromkeys(run.loss for run in self.runs))

    @property
    def metric_names(self) -> list[str]:
        return list(self.runs[0].test_metrics) if self.runs else []

    @property
    def diverged(self) -> list[RunRecord]:
        """The runs whose test predictions were not finite."""
        return [run for run in self.runs if run.diverged]

    def summary(self) -> list[dict[str, Any]]:
        """Per loss: mean and sample std of each test metric over the seeds whose run did not
        diverge (NaN when all did), the number of diverged runs, and time per epoch."""
        rows = []
        for loss in self.losses:
            runs = [run for run in self.runs if run.loss == loss]
            scored = [run for run in runs if not run.diverged]
            row: dict[str, Any] = {"loss": loss, "seeds": len(runs)}
            for metric in self.metric_names:
                values = np.array([run.test_metrics[metric] for run in scored], "float64")
                row[f"{metric}_mean"] = float(values.mean()) if len(values) else math.nan
                row[f"{metric}_std"] = float(values.std(ddof=1)) if len(values) > 1 else 0.0
            row["diverged"] = len(runs) - len(scored)
            row["seconds_per_epoch"] = float(np.mean([run.seconds_per_epoch for run in runs]))
            rows.append(row)
        return rows

    @property
    def reference(self) -> str | None:
        """The loss the others are paired against: ``config["reference"]`` if set, else
        ``crossentropy`` when compared, else the first loss."""
        named = self.config.get("reference")
        if named is not None:
            return named
        losses = self.losses
        return "crossentropy" if "crossentropy" in losses else (losses[0] if losses else None)

    def paired_values(
        self, loss: str, reference: str
    ) -> list[tuple[dict[str, float], dict[str, float]]]:
        """``(test metrics of loss, test metrics of reference)`` for each seed both ran
        without diverging."""
        by_seed = {(run.loss, run.seed): run.test_metrics for run in self.runs if not run.diverged}
        return [
            (metrics, by_seed[(reference, seed)])
            for (name, seed), metrics in by_seed.items()
            if name == loss and (reference, seed) in by_seed
        ]

    def paired(self, reference: str | None = None) -> list[dict[str, Any]]:
        """Per loss and test metric: the mean paired difference to ``reference`` over the
        seeds both have, with a 95 % Student-t interval and wins/ties/losses (see
        `kal.comparison.paired_difference`). Metrics are fractions (0.01 = 1 point)."""
        reference = reference or self.reference
        if reference not in self.losses:
            raise ValueError(
                f"Reference loss {reference!r} is not in this comparison; its losses are "
                f"{self.losses}."
            )
        rows = []
        for loss in self.losses:
            if loss == reference:
                continue
            pairs = self.paired_values(loss, reference)
            row: dict[str, Any] = {"loss": loss, "reference": reference, "seeds": len(pairs)}
            row["diverged"] = sum(
                run.diverged for run in self.runs if run.loss in (loss, reference)
            )
            for metric in self.metric_names if pairs else ():
                stats = paired_difference(
                    [values[metric] for values, _ in pairs],
                    [reference_values[metric] for _, reference_values in pairs],
                )
                for key, value in stats.as_dict().items():
                    if key != "n":
                        row[f"{metric}_{key}"] = value
            rows.append(row)
        return rows

    def table(self) -> str:
        """The summary as a plain-text table (metrics in percent)."""
        from keras_adaptive_loss.comparison.report import format_table

        return format_table(self)

    def save(self, directory: str, plots: bool = True, complete: bool = True) -> dict[str, str]:
        """Writes runs.csv, summary.csv, results.json and (``plots``) PNG figures, atomically;
        ``complete=False`` marks the comparison as unfinished in results.json."""
        from keras_adaptive_loss.comparison.report import save

        return save(self, directory, plots=plots, complete=complete)


def load_data(
    dataset: str | datasets.Dataset,
    *,
    positive_class: int | str | None = None,
    data_dir: str | None = None,
    try_gcs: bool = True,
    label_column: str = "label",
    download: bool = False,
) -> datasets.Dataset:
    """An offline dataset by name, a ``.csv`` / ``.npz`` file (`kal.datasets.load_csv`,
    `load_npz`), a ``synthetic:...`` spec (`kal.datasets.synthetic`), else a TFDS dataset;
    optionally as "class k vs rest".

    >>> data = load_data("iris", positive_class=2)
    >>> data.name, data.num_classes
    ('iris-2-vs-rest', 2)
    """
    if isinstance(dataset, datasets.Dataset):
        data = dataset
    elif isinstance(dataset, str) and dataset in datasets.NAMES:
        data = datasets.load(dataset)
    elif isinstance(dataset, str) and dataset.lower().endswith(".csv"):
        data = datasets.load_csv(dataset, label_column)
    elif isinstance(dataset, str) and dataset.lower().endswith(".npz"):
        data = datasets.load_npz(dataset)
    elif isinstance(dataset, str) and dataset.split(":")[0] == "synthetic":
        data = datasets.synthetic(dataset)
    elif isinstance(dataset, str):
        try:
            import tensorflow_datasets  # noqa: F401
        except ImportError as error:
            raise ValueError(
                f"Unknown dataset {dataset!r}; offline datasets: {', '.join(datasets.NAMES)}. "
                "TFDS names need tensorflow-datasets (pip install keras-adaptive-loss[datasets])."
            ) from error
        data = datasets.load_tfds(dataset, data_dir=data_dir, try_gcs=try_gcs, download=download)
    else:
        raise ValueError(f"dataset must be a name or a kal.datasets.Dataset; got {dataset!r}.")
    return data if positive_class is None else datasets.one_vs_rest(data, positive_class)


def _seed_list(seeds: int | Sequence[int]) -> list[int]:
    if isinstance(seeds, (int, np.integer)) and not isinstance(seeds, bool):
        if seeds < 1:
            raise ValueError(f"seeds must be >= 1 (the number of seeds); got {seeds}.")
        return list(range(int(seeds)))
    values = list(seeds)
    if not values or not all(isinstance(s, (int, np.integer)) for s in values):
        raise ValueError(f"seeds must be a count >= 1 or a non-empty list of ints; got {seeds!r}.")
    return [int(s) for s in values]


def _loss_specs(losses: Sequence[str] | Mapping[str, LossSpec]) -> dict[str, LossSpec]:
    if isinstance(losses, str):
        losses = [name.strip() for name in losses.split(",") if name.strip()]
    if isinstance(losses, Mapping):
        specs = {
            label: canonical_name(spec) if isinstance(spec, str) else spec
            for label, spec in losses.items()
        }
    else:
        losses = [canonical_name(name) if isinstance(name, str) else name for name in losses]
        specs = {name: name for name in losses}
    if not specs:
        raise ValueError("losses is empty: name at least one loss, e.g. ['crossentropy'].")
    if isinstance(losses, Sequence) and len(specs) != len(losses):
        raise ValueError(f"losses names a loss twice: {list(losses)}.")
    for label, spec in specs.items():
        if not isinstance(spec, str) and not callable(spec):
            raise ValueError(
                f"Loss {label!r} must be a preset name or a factory (LossContext) -> keras Loss "
                f"or LossSetup; got {spec!r}."
            )
    return specs


def _make_setup(spec: LossSpec, context: LossContext) -> LossSetup:
    made = build_loss(spec, context) if isinstance(spec, str) else spec(context)
    if isinstance(made, LossSetup):
        return made
    if isinstance(made, keras.losses.Loss) or callable(made):
        return LossSetup(made)
    raise ValueError(f"A loss factory must return a keras Loss or a LossSetup; got {made!r}.")


_OPTIMIZERS: dict[str, Callable[[float], keras.optimizers.Optimizer]] = {
    "adam": lambda rate: keras.optimizers.Adam(rate),
    "sgd": lambda rate: keras.optimizers.SGD(rate, momentum=0.9),
}


def _name(function: Callable) -> str:
    return getattr(function, "__name__", type(function).__name__)


def _training_regime(
    data: datasets.Dataset, train_size: int | None, imbalance: float | None
) -> datasets.Dataset:
    """The training split cut to ``train_size`` samples and/or a long tail of ratio
    ``imbalance``; the same subset for every seed and loss (a fixed generator)."""
    keep = np.arange(len(data.y_train))
    rng = np.random.default_rng(20261129)
    if train_size is not None:
        keep = keep[regimes.subsample(data.y_train, train_size, rng)]
    if imbalance is not None:
        keep = keep[regimes.long_tail_indices(data.y_train[keep], imbalance, rng)]
    if len(keep) == len(data.y_train):
        return data
    return dataclasses.replace(data, x_train=data.x_train[keep], y_train=data.y_train[keep])


def _noisy_labels(
    splits: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray],
    seed: int,
    num_classes: int,
    config: dict[str, Any],
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``splits`` with ``config["label_noise"]`` of the training and validation labels flipped:
    one draw per seed (the same for every loss of the seed)."""
    rate = config["label_noise"]
    if not rate:
        return splits
    x_train, y_train, x_val, y_val = splits
    rng = np.random.default_rng([seed, 7919])
    kind = config["noise_type"]
    return (
        x_train,
        regimes.add_label_noise(y_train, rate, num_classes, kind, rng),
        x_val,
        regimes.add_label_noise(y_val, rate, num_classes, kind, rng),
    )


def _resolve_strategy(strategy: Any, jit_compile: bool) -> Any:
    if strategy is None or strategy == "none":
        return None
    if jit_compile:
        raise ValueError(
            "jit_compile=True cannot be combined with a strategy: Keras turns XLA off under "
            "tf.distribute. Drop one of the two."
        )
    if strategy == "mirrored":
        return _tensorflow.mirrored_strategy()
    if _tensorflow.is_strategy(strategy):
        return strategy
    raise ValueError(
        f"strategy must be None, 'mirrored' or a tf.distribute.Strategy; got {strategy!r}."
    )


def _split_validation(
    data: datasets.Dataset, fraction: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """A fixed random hold-out of the training split (the same for every loss and seed)."""
    if not 0.0 < fraction < 1.0:
        raise ValueError(f"validation_fraction must lie in (0, 1); got {fraction!r}.")
    order = np.random.default_rng(0).permutation(len(data.x_train))
    held = max(1, round(fraction * len(order)))
    if held >= len(order):
        raise ValueError(f"The training split of {data.name!r} is too small to hold out data.")
    val, train = order[:held], order[held:]
    return data.x_train[train], data.y_train[train], data.x_train[val], data.y_train[val]


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


def _test_metrics(
    model: keras.Model, data: datasets.Dataset, logits: bool = False
) -> dict[str, float]:
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


def compare(
    dataset: str | datasets.Dataset = "digits",
    losses: Sequence[str] | Mapping[str, LossSpec] = DEFAULT_LOSSES,
    *,
    model: str | Callable[..., keras.Model] = "mlp",
    seeds: int | Sequence[int] = 5,
    epochs: int = 20,
    batch_size: int = 32,
    learning_rate: float = 1e-3,
    strategy: str | Any = None,
    jit_compile: bool = False,
    positive_class: int | str | None = None,
    validation_fraction: float = 0.15,
    reference: str | None = None,
    optimizer: str | Callable[[float], keras.optimizers.Optimizer] = "adam",
    label_noise: float = 0.0,
    noise_type: str = "symmetric",
    imbalance: float | None = None,
    train_size: int | None = None,
    evaluation: str = "last",
    label_column: str = "label",
    data_dir: str | None = None,
    try_gcs: bool = True,
    download: bool = False,
    output: str | None = None,
    plots: bool = True,
    resume: bool = False,
    tensorboard: str | None = None,
    verbose: int = 1,
) -> ComparisonResult:
    """Trains the same model with each loss over several seeds and compares them.

    For every seed the model starts from the same initial weights (``keras.utils.set_random_seed``
    before it is built) and sees the same data, so the rows differ only in the loss. Each run
    trains on the training split minus a fixed validation hold-out (``validation_fraction``; it
    gives the learning curves and ALA's validation statistics) and is scored on the test split:
    accuracy, plus average precision and F1 (of class 1) on binary tasks. Because every seed
    pairs the losses, the table reports each loss's mean *paired* difference to ``reference``
    with a 95 % Student-t interval over seeds and wins/ties/losses
    (`ComparisonResult.paired`).

    Regimes (training data only; the test split is never changed): ``train_size`` keeps a
    stratified subset of the training split, ``imbalance`` an exponential long tail
    (`kal.comparison.regimes.long_tail_counts`), both fixed across seeds and losses and applied
    before the validation hold-out; ``label_noise`` flips that fraction of the training *and*
    validation labels, a different draw per seed but the same for every loss of a seed.

    Args:
        dataset: an offline dataset (``digits``, ``iris``, ``wine``, ``breast_cancer``,
            ``mnist1d``), a ``.csv`` or ``.npz`` file (`kal.datasets.load_csv`, `load_npz`), a
            ``synthetic:key=value,...`` spec (`kal.datasets.synthetic`), a TFDS name, or a
            `kal.datasets.Dataset`.
        losses: preset names (see `kal.comparison.LOSSES`) or a mapping ``{label: name or
            factory}`` where a factory takes a `LossContext` and returns a Keras loss or a
            `LossSetup` (loss + callbacks).
        model: ``"mlp"``, ``"cnn1d"``, ``"resnet"`` (image data) or a builder
            ``(input_shape, num_classes) -> keras.Model`` with a softmax output.
        seeds: a number of seeds (0, 1, ...) or a list of seeds.
        epochs: training epochs per run.
        batch_size: training batch size.
        learning_rate: the optimizer's step size.
        strategy: ``None``, ``"mirrored"`` or a `tf.distribute.Strategy` to build and train in.
        jit_compile: compile the training step with XLA (not with a strategy).
        positive_class: train "class k vs rest" (binary; needed by ``uniloss_ap``): a class
            id, or a class name of a CSV file whose labels are names.
        validation_fraction: share of the training split held out for validation.
        reference: the loss the others are paired against; default ``crossentropy`` when it
            is compared, else the first loss.
        optimizer: ``"adam"`` or ``"sgd"`` (SGD with momentum 0.9, as in the CE+EL paper;
            under SGD a loss's scale is a step-size change, under Adam it is normalised away),
            or a function ``learning_rate -> keras optimizer`` (recorded by its name).
        label_noise: fraction of training and validation labels flipped, in [0, 1).
        noise_type: ``"symmetric"`` (to another class uniformly) or ``"pair"`` (class c to
            c + 1 mod C).
        imbalance: head-to-tail ratio (>= 1) of an exponential long tail on the training split.
        train_size: number of training-split samples to keep (stratified), before the hold-out.
        evaluation: which weights are scored on the test split: ``"last"`` epoch's, or the
            ``"best"`` validation-accuracy epoch's (ties to the earliest), or
            ``"best-latest"`` (ties to the latest, as the CE+EL authors select).
        label_column: the label column of a ``.csv`` dataset.
        data_dir: passed to `kal.datasets.load_tfds` for TFDS names.
        try_gcs: passed to `kal.datasets.load_tfds` along with ``data_dir``.
        download: let TFDS download and prepare a TFDS dataset that is not prepared under
            ``data_dir`` (needs internet access); by default such a dataset is refused at once,
            with the ways to prepare it.
        output: directory for runs.csv, summary.csv, results.json and PNG plots. It is
            checked before training. While the comparison runs, its files are rewritten
            (atomically) after every finished run in ``output/unfinished/``, with
            ``results.json`` marked ``"complete": false``, so an interrupted comparison keeps
            its finished runs. The results of an earlier comparison in ``output`` stay until
            this one has finished; then its files replace them, and files of the earlier
            comparison that this one does not write are removed. A folder that holds an
            interrupted comparison's runs is refused unless ``resume=True``.
        plots: write PNG plots into ``output`` (needs matplotlib).
        resume: continue the comparison saved in ``output`` (an interrupted one in
            ``output/unfinished/``, else a finished one): its finished (loss, seed) runs are
            kept and only the others are trained. The settings, and the data file's content
            for a ``.csv`` or ``.npz`` dataset, must be the same.
        tensorboard: a directory for TensorBoard logs, one per run
            (``<tensorboard>/<loss>/seed-<s>``), with every adapted parameter the loss's
            callbacks log; ``None`` writes none.
        verbose: 1 reports each run (the loss and seed in flight, then its test scores:
            one line per run, rewritten in place on a terminal) and prints the table; 0 is
            silent.

    Returns:
        A `ComparisonResult`; ``result.table()`` is the printed table.

    Example:

    ```python
    result = kal.compare("iris", ["crossentropy", "ce_el_0-0.5"], seeds=2, epochs=5)
    print(result.table())
    ```
    """
    specs = _loss_specs(losses)
    seed_list = _seed_list(seeds)
    for name, value in (("epochs", epochs), ("batch_size", batch_size)):
        if not isinstance(value, (int, np.integer)) or value < 1:
            raise ValueError(f"{name} must be an integer >= 1; got {value!r}.")
    if not learning_rate > 0:
        raise ValueError(f"learning_rate must be > 0; got {learning_rate!r}.")
    if output is not None and plots:
        try:
            import matplotlib  # noqa: F401
        except ImportError as error:
            raise ValueError(
                "PNG plots need matplotlib: pip install keras-adaptive-loss[plots], or pass "
                "plots=False (CLI: --no-plots)."
            ) from error
    if resume and output is None:
        raise ValueError("resume=True needs the output folder of the comparison to continue.")
    if not callable(optimizer) and optimizer not in _OPTIMIZERS:
        raise ValueError(
            f"optimizer must be one of {', '.join(_OPTIMIZERS)} or a function learning_rate -> "
            f"keras optimizer; got {optimizer!r}."
        )
    make_optimizer = optimizer if callable(optimizer) else _OPTIMIZERS[optimizer]
    if evaluation not in EVALUATIONS:
        raise ValueError(f"evaluation must be one of {', '.join(EVALUATIONS)}; got {evaluation!r}.")
    if reference is not None and reference not in specs:
        with contextlib.suppress(ValueError):  # an older spelling of a compared preset
            reference = canonical_name(reference)
    if reference is not None and reference not in specs:
        raise ValueError(
            f"reference {reference!r} is not among the compared losses ({', '.join(specs)}); "
            "add it to the losses or name one of them."
        )
    # Checked here, before any data is loaded; the functions check again with the data.
    if not 0.0 <= label_noise < 1.0:
        raise ValueError(f"label_noise must lie in [0, 1); got {label_noise!r}.")
    if noise_type not in regimes.NOISE_TYPES:
        raise ValueError(
            f"noise_type must be one of {', '.join(regimes.NOISE_TYPES)}; got {noise_type!r}."
        )
    if imbalance is not None and not imbalance >= 1.0:
        raise ValueError(f"imbalance must be a head:tail ratio >= 1; got {imbalance!r}.")
    folder = OutputDirectory(output) if output is not None else None
    _check_tensorboard(tensorboard)
    data = load_data(
        dataset,
        positive_class=positive_class,
        data_dir=data_dir,
        try_gcs=try_gcs,
        label_column=label_column,
        download=download,
    )
    data = _training_regime(data, train_size, imbalance)
    x_train, y_train, x_val, y_val = _split_validation(data, validation_fraction)
    distribution = _resolve_strategy(strategy, jit_compile)
    steps_per_epoch = -(-len(x_train) // batch_size)
    # Check every preset against this task before spending time on training.
    build_model(model, data.num_features, data.num_classes, data.image_shape)
    counts = tuple(np.bincount(y_train, minlength=data.num_classes).tolist())
    for spec in specs.values():
        context = LossContext(
            data.num_classes, 0, steps_per_epoch, epochs, (x_val, y_val), class_counts=counts
        )
        _make_setup(spec, context)

    config = {
        "dataset": data.name,
        "losses": list(specs),
        "model": model if isinstance(model, str) else getattr(model, "__name__", "custom"),
        "seeds": seed_list,
        "epochs": int(epochs),
        "batch_size": int(batch_size),
        "learning_rate": float(learning_rate),
        "strategy": None if distribution is None else type(distribution).__name__,
        "replicas": 1 if distribution is None else int(distribution.num_replicas_in_sync),
        "jit_compile": bool(jit_compile),
        "validation_fraction": float(validation_fraction),
        "reference": reference
        or ("crossentropy" if "crossentropy" in specs else next(iter(specs))),
        "optimizer": optimizer if isinstance(optimizer, str) else _name(optimizer),
        "label_noise": float(label_noise),
        "noise_type": noise_type,
        "imbalance": None if imbalance is None else float(imbalance),
        "train_subset": None if train_size is None else int(train_size),
        "evaluation": evaluation,
        "train_size": len(x_train),
        "test_size": len(data.x_test),
        "num_classes": data.num_classes,
        "class_names": None if data.class_names is None else list(data.class_names),
        **_data_source(dataset, label_column, data_dir),
        "loss_setups": {},
    }
    if verbose and len(specs) > 1 and len(seed_list) < 5:
        print(
            f"note: {len(seed_list)} seed(s) give a rough comparison (no interval below "
            f"{MIN_SEEDS}); 5 or more are recommended.",
            file=sys.stderr,
        )
    with folder.locked() if folder is not None else contextlib.nullcontext():
        finished = _previous_runs(folder, config) if resume else {}
        if folder is not None and not resume:
            _refuse_to_discard_unfinished(folder)
            folder.start_unfinished()
        elif folder is not None:
            os.makedirs(folder.unfinished, exist_ok=True)
        try:
            result = _run_all(
                specs, seed_list, finished, model, data, (x_train, y_train, x_val, y_val),
                epochs, batch_size, functools.partial(make_optimizer, learning_rate),
                distribution, jit_compile, config, folder, verbose, tensorboard,
            )  # fmt: skip
        except BaseException:
            if folder is not None:
                folder.drop_empty_unfinished()
            raise
        if verbose:
            print()
            print(result.table())
        if folder is not None:
            written = result.save(folder.unfinished, plots=plots)
            names = {os.path.basename(path) for path in written.values()}
            folder.publish(names)
            if verbose:
                print("wrote " + ", ".join(sorted(folder.file(name) for name in names)))
    return result


def _check_tensorboard(directory: str | None) -> None:
    """Raises `ValueError` unless ``directory`` is ``None`` or a folder that can be made."""
    if directory is None:
        return
    if os.path.exists(directory) and not os.path.isdir(directory):
        raise ValueError(
            f"tensorboard {directory!r} is a file, not a directory: name a new or existing folder."
        )
    try:
        os.makedirs(directory, exist_ok=True)
    except OSError as error:
        message = f"tensorboard {directory!r} cannot be created: {error.strerror}."
        raise ValueError(message) from None


def _data_source(dataset: Any, label_column: str, data_dir: str | None) -> dict[str, Any]:
    """What identifies the data beyond its name, for resume's check: a data file's SHA-256
    and the label column of a CSV file, a TFDS name's ``data_dir``."""
    source: dict[str, Any] = {"data_sha256": None, "label_column": None, "data_dir": None}
    if isinstance(dataset, str) and dataset.lower().endswith((".csv", ".npz")):
        digest = hashlib.sha256()
        with open(dataset, "rb") as file:
            for block in iter(lambda: file.read(1 << 20), b""):
                digest.update(block)
        source["data_sha256"] = digest.hexdigest()
        if dataset.lower().endswith(".csv"):
            source["label_column"] = label_column
    elif isinstance(dataset, str) and dataset not in datasets.NAMES:
        source["data_dir"] = None if data_dir is None else os.path.abspath(data_dir)
    return source


def _refuse_to_discard_unfinished(folder: OutputDirectory) -> None:
    """Raises when ``folder`` holds the finished runs of an interrupted comparison: a new
    comparison would overwrite them."""
    path = folder.unfinished_file("results.json")
    if not os.path.exists(path):
        return
    try:
        with open(path) as file:
            runs = len(json.load(file)["runs"])
    except (OSError, ValueError, KeyError, TypeError):
        return  # nothing readable to keep
    if runs:
        raise ValueError(
            f"{folder.unfinished!r} holds {runs} finished run(s) of an interrupted comparison. "
            "Add --resume (resume=True) to finish it, or remove that folder to start over."
        )


def _previous_runs(folder: OutputDirectory, config: dict[str, Any]) -> dict[tuple, RunRecord]:
    """The finished runs of an interrupted comparison in ``folder`` (its `unfinished`
    subfolder), else of its finished comparison, if that had the same settings."""
    path = folder.unfinished_file("results.json")
    if not os.path.exists(path):
        path = folder.file("results.json")
    if not os.path.exists(path):
        return {}
    try:
        with open(path) as file:
            saved = json.load(file)
        saved_config, saved_runs = saved["config"], saved["runs"]
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise ValueError(
            f"Cannot resume from {path!r}: it is not a results.json written by compare "
            f"({type(error).__name__}: {error}). Drop --resume to start over."
        ) from None
    saved = {"config": saved_config, "runs": saved_runs}
    ignored = {"loss_setups", "total_seconds"}
    different = sorted(
        key
        for key in set(config) | set(saved["config"])
        if key not in ignored and config.get(key) != saved["config"].get(key)
    )
    if different:
        raise ValueError(
            f"Cannot resume the comparison in {folder.path!r}: its settings differ in "
            f"{', '.join(different)}. Use the same arguments, or drop --resume to start over."
        )
    config["loss_setups"].update(saved["config"].get("loss_setups", {}))
    runs = {}
    for run in saved["runs"]:  # JSON has no NaN: a diverged run's metrics were saved as null
        metrics = {k: math.nan if v is None else v for k, v in run["test_metrics"].items()}
        runs[(run["loss"], run["seed"])] = RunRecord(**{**run, "test_metrics": metrics})
    return runs


def _run_all(
    specs, seed_list, finished, model, data, splits, epochs, batch_size, new_optimizer,
    distribution, jit_compile, config, folder, verbose, tensorboard=None,
) -> ComparisonResult:  # fmt: skip
    """Trains every (loss, seed) run not in ``finished``, saving after each one."""
    x_train, _, x_val, _ = splits
    steps_per_epoch = -(-len(x_train) // batch_size)
    total = len(specs) * len(seed_list)
    progress = RunProgress(total) if verbose else None
    runs = dict(finished)
    order = [(label, seed) for seed in seed_list for label in specs]
    start = time.perf_counter()
    for label, seed in order:
        resumed = (label, seed) in runs
        if not resumed:
            if progress is not None:
                progress.start(label, seed)
            seed_splits = _noisy_labels(splits, seed, data.num_classes, config)
            counts = np.bincount(seed_splits[1], minlength=data.num_classes)
            context = LossContext(
                data.num_classes,
                seed,
                steps_per_epoch,
                epochs,
                (x_val, seed_splits[3]),
                class_counts=tuple(counts.tolist()),
            )
            runs[(label, seed)] = _train_once(
                label, specs[label], context, model, data, seed_splits, epochs, batch_size,
                new_optimizer, distribution, jit_compile, config, tensorboard,
            )  # fmt: skip
            if folder is not None:
                done = [runs[key] for key in order if key in runs]
                ComparisonResult(config, done).save(folder.unfinished, plots=False, complete=False)
        if progress is not None:
            progress.finish(label, seed, runs[(label, seed)].test_metrics, resumed=resumed)
    config["total_seconds"] = time.perf_counter() - start
    return ComparisonResult(config, [runs[key] for key in order])


def _tensorboard(directory: str | None, label: str, seed: int) -> list[keras.callbacks.Callback]:
    """A TensorBoard callback for one run, listed after the loss's own callbacks so that the
    parameters they write into ``logs`` reach it."""
    if directory is None:
        return []
    safe = "".join(c if c.isalnum() or c in "-_.+" else "_" for c in label)
    return [keras.callbacks.TensorBoard(os.path.join(directory, safe, f"seed-{seed}"))]


def _train_once(
    label: str,
    spec: LossSpec,
    context: LossContext,
    model_spec: str | Callable[..., keras.Model],
    data: datasets.Dataset,
    splits: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray],
    epochs: int,
    batch_size: int,
    new_optimizer: Callable[[], keras.optimizers.Optimizer],
    distribution: Any,
    jit_compile: bool,
    config: dict[str, Any],
    tensorboard: str | None = None,
) -> RunRecord:
    x_train, y_train, x_val, y_val = splits
    keras.utils.set_random_seed(context.seed)
    scope = distribution.scope() if distribution is not None else contextlib.nullcontext()
    with scope:
        model = build_model(model_spec, data.num_features, data.num_classes, data.image_shape)
        setup = _make_setup(spec, context)
        if setup.logits:
            _output_logits(model, label)
        metrics: list[Any] = ["accuracy"]
        if data.num_classes == 2:  # learning curves of the binary task's metric too
            metrics.append(PositiveClassPRAUC(from_logits=setup.logits))
        model.compile(
            optimizer=new_optimizer(),
            loss=setup.loss,
            metrics=metrics,
            jit_compile=jit_compile,
        )
    config["loss_setups"].setdefault(label, describe(setup))
    timer, recorder = EpochTimer(), ParameterRecorder()
    selector = None
    if config["evaluation"] != "last":
        selector = BestEpochWeights(latest_ties=config["evaluation"] == "best-latest")
    history = model.fit(
        x_train,
        y_train,
        validation_data=(x_val, y_val),
        validation_batch_size=_even_first_batch(len(x_val), batch_size, distribution),
        epochs=epochs,
        batch_size=batch_size,
        callbacks=[
            *setup.callbacks,
            timer,
            recorder,
            *([selector] if selector else []),
            *_tensorboard(tensorboard, label, context.seed),
        ],
        verbose=0,
    )
    test_metrics = _test_metrics(model, data, logits=setup.logits)
    return RunRecord(
        loss=label,
        seed=context.seed,
        test_metrics=test_metrics,
        diverged=any(math.isnan(value) for value in test_metrics.values()),
        epoch_seconds=timer.seconds,
        history={key: [float(v) for v in values] for key, values in history.history.items()},
        parameters=recorder.trajectories,
        selected_epoch=selector.best_epoch if selector is not None else epochs,
    )
