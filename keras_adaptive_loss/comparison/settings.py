"""What a comparison runs: `ComparisonSettings`, frozen and checked when it is made.

This module imports neither Keras nor TensorFlow, so the command line builds the settings, and
answers a bad argument, before TensorFlow starts. Everything that can be checked without the
data is checked here; what needs the data (a model that does not fit it, a class that is not
in it) is checked by `kal.compare` before the first run trains.

>>> settings = ComparisonSettings(dataset="iris", losses="crossentropy,focal", seeds=3)
>>> settings.seeds, list(settings.losses), settings.reference_loss
((0, 1, 2), ['crossentropy', 'focal'], 'crossentropy')
>>> ComparisonSettings(epochs=0)
Traceback (most recent call last):
...
keras_adaptive_loss.comparison.settings.SettingError: epochs must be an integer >= 1; got 0.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import numbers
import os
import re
import sys
import types
import warnings
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from keras_adaptive_loss import names
from keras_adaptive_loss.comparison.regimes import NOISE_TYPES

__all__ = [
    "EVALUATIONS",
    "OPTIMIZERS",
    "ComparisonSettings",
    "SettingError",
    "canonical_name",
]

#: Which weights `compare` scores on the test split: the last epoch's, or those of the epoch
#: with the best validation accuracy, ties going to the earliest (``"best"``) or the latest
#: (``"best-latest"``, as the CE+EL authors select) such epoch.
EVALUATIONS = ("last", "best", "best-latest")

#: The optimizers `compare` builds by name: Adam, and SGD with momentum 0.9.
OPTIMIZERS = ("adam", "sgd")

_WARNED_SPELLINGS: set[str] = set()


class SettingError(ValueError):
    """A setting that cannot run, and which one (``field``).

    The message names settings as ``{field}`` placeholders; ``str(error)`` spells them as the
    Python argument names, `message` as the caller names them (the command line's options).

    >>> error = SettingError("batch_size", "{batch_size} must be an integer >= 1; got 0.")
    >>> str(error), error.message(lambda field: "--" + field.replace("_", "-"))
    ('batch_size must be an integer >= 1; got 0.', '--batch-size must be an integer >= 1; got 0.')
    """

    def __init__(self, field: str, template: str) -> None:
        self.field = field
        self.template = template
        super().__init__(self.message(lambda name: name))

    def message(self, spell: Callable[[str], str]) -> str:
        """The message with each ``{field}`` spelt by ``spell(field)``."""
        fields = {item.name for item in dataclasses.fields(ComparisonSettings)}
        return re.sub(
            r"\{(\w+)\}",
            lambda match: spell(match[1]) if match[1] in fields else match[0],
            self.template,
        )


def canonical_name(name: str) -> str:
    """``name`` if it is a loss preset; the preset an older hyphenated spelling stands for,
    with a deprecation warning (once per spelling; a `FutureWarning`, the category Python shows
    to users of a script or the CLI by default); otherwise a `ValueError` listing the presets.

    >>> canonical_name("uniloss_ap")
    'uniloss_ap'
    """
    if name in names.PRESETS:
        return name
    respelled = names.respelled(name)
    if respelled in names.PRESETS:
        if name not in _WARNED_SPELLINGS:
            _WARNED_SPELLINGS.add(name)
            warnings.warn(
                f"Loss preset {name!r} is deprecated: it is spelled {respelled!r} since 0.1.0 "
                "(presets use snake_case, as candidate names do); the old spelling will be "
                "removed.",
                FutureWarning,
                stacklevel=_outside_the_package(),
            )
        return respelled
    raise ValueError(f"Unknown loss {name!r}; choose from {', '.join(names.PRESETS)}.")


def _outside_the_package() -> int:
    """The ``stacklevel`` of the first caller outside this package (and outside the dataclass
    ``__init__`` that Python generates), so that a warning points at the user's line."""
    package = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    frame, level = sys._getframe(1), 1
    while frame is not None and (
        frame.f_code.co_filename.startswith(package)
        or (frame.f_code.co_filename == "<string>" and frame.f_code.co_name == "__init__")
    ):
        frame, level = frame.f_back, level + 1
    return level


def _preset(name: str) -> str:
    try:
        return canonical_name(name)
    except ValueError:
        raise SettingError(
            "losses",
            f"Unknown loss {name!r} in {{losses}}; choose from {', '.join(names.PRESETS)}.",
        ) from None


def _is_count(value: Any) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool) and value >= 1


def _loss_specs(losses: Any) -> dict[str, Any]:
    """``{label: preset name or factory}`` from a comma-separated string, a list of names or
    factories, or a mapping."""
    if isinstance(losses, str):
        losses = [name.strip() for name in losses.split(",") if name.strip()]
    if isinstance(losses, Mapping):
        specs = {
            label: _preset(spec) if isinstance(spec, str) else spec
            for label, spec in losses.items()
        }
        listed: list[Any] | None = None
    elif isinstance(losses, Sequence):
        listed = [_preset(name) if isinstance(name, str) else name for name in losses]
        specs = {name if isinstance(name, str) else _name(name): name for name in listed}
    else:
        raise SettingError(
            "losses", f"{{losses}} must be preset names or a mapping label -> loss; got {losses!r}."
        )
    if not specs:
        raise SettingError(
            "losses", "{losses} is empty: name at least one loss, e.g. crossentropy."
        )
    if listed is not None and len(specs) != len(listed):
        raise SettingError("losses", f"{{losses}} names a loss twice: {listed}.")
    for label, spec in specs.items():
        if not isinstance(spec, str) and not callable(spec):
            raise SettingError(
                "losses",
                f"Loss {label!r} must be a preset name or a factory (LossContext) -> keras Loss "
                f"or LossSetup; got {spec!r}.",
            )
    return specs


def _name(function: Any) -> str:
    return getattr(function, "__name__", type(function).__name__)


def _seeds(seeds: Any) -> tuple[int, ...]:
    if isinstance(seeds, numbers.Integral) and not isinstance(seeds, bool):
        if seeds < 1:
            raise SettingError("seeds", f"{{seeds}} must be an integer >= 1; got {seeds}.")
        return tuple(range(int(seeds)))
    try:
        values = [] if isinstance(seeds, (str, Mapping)) else list(seeds)
    except TypeError:
        values = []
    if not values or not all(
        isinstance(s, numbers.Integral) and not isinstance(s, bool) for s in values
    ):
        raise SettingError(
            "seeds", f"{{seeds}} must be a count >= 1 or a non-empty list of ints; got {seeds!r}."
        )
    if len(set(values)) != len(values):
        raise SettingError("seeds", f"{{seeds}} names a seed twice: {values}.")
    return tuple(int(s) for s in values)


def _is_strategy(value: Any) -> bool:
    """Whether ``value`` looks like a `tf.distribute.Strategy` (checked without TensorFlow)."""
    return hasattr(value, "scope") and hasattr(value, "num_replicas_in_sync")


@dataclasses.dataclass(frozen=True, kw_only=True)
class ComparisonSettings:
    """The settings of a comparison: data, losses, model, training and where results go.

    Frozen and checked when made: a value that cannot run raises `SettingError` (a
    `ValueError`) naming the setting. Normalised on the way in: ``losses`` becomes a read-only
    mapping ``{label: preset name or factory}`` (older preset spellings become the current
    ones), ``seeds`` a tuple and ``strategy="none"`` ``None``; `reference_loss` is the loss
    the others are paired against. `kal.compare` takes these settings, or the same names as
    keywords.

    Regimes change the training data only, never the test split: ``train_size`` keeps a
    stratified subset of the training split and ``imbalance`` an exponential long tail
    (`kal.comparison.regimes.long_tail_counts`), both fixed across seeds and losses and applied
    before the validation hold-out; ``label_noise`` flips that fraction of the training *and*
    validation labels, a different draw per seed but the same for every loss of a seed.

    Args:
        dataset: an offline dataset (``digits``, ``iris``, ``wine``, ``breast_cancer``,
            ``mnist1d``), a ``.csv`` or ``.npz`` file (`kal.datasets.load_csv`, `load_npz`), a
            ``synthetic:key=value,...`` spec (`kal.datasets.synthetic`), a TFDS name, or a
            `kal.datasets.Dataset`.
        losses: preset names (a list, or one comma-separated string; see
            `kal.comparison.LOSSES`) or a mapping ``{label: name or factory}`` where a factory
            takes a `LossContext` and returns a Keras loss or a `LossSetup` (loss + callbacks).
        model: ``"mlp"``, ``"cnn1d"``, ``"resnet"`` (image data) or a builder
            ``(input_shape, num_classes) -> keras.Model`` with a softmax output.
        seeds: a number of seeds (0, 1, ...) or a list of distinct seeds.
        epochs: training epochs per run.
        batch_size: training batch size.
        learning_rate: the optimizer's step size.
        strategy: ``None``, ``"mirrored"`` or a `tf.distribute.Strategy` to build and train in.
        jit_compile: compile the training step with XLA (not with a strategy).
        positive_class: train "class k vs rest" (binary; needed by ``uniloss_ap``): a class
            id, or a class name of a CSV file whose labels are names.
        validation_fraction: share of the training split held out for validation, in (0, 1).
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
        output: directory for runs.csv, summary.csv, results.json and PNG plots (see
            `kal.compare` for how it is written while the comparison runs).
        plots: write PNG plots into ``output`` (needs matplotlib).
        resume: continue the comparison saved in ``output``: its finished (loss, seed) runs are
            kept and only the others are trained. The settings, and the data file's content
            for a ``.csv`` or ``.npz`` dataset, must be the same.
        tensorboard: a directory for TensorBoard logs, one per run
            (``<tensorboard>/<loss>/seed-<s>``), with every adapted parameter the loss's
            callbacks log; ``None`` writes none.
        verbose: 1 reports each run and prints the table; 0 is silent.

    Example:

    >>> settings = ComparisonSettings(dataset="wine", losses="focal,crossentropy", seeds=[3, 7])
    >>> list(settings.losses), settings.seeds, settings.reference_loss
    (['focal', 'crossentropy'], (3, 7), 'crossentropy')
    >>> ComparisonSettings(losses=["focal"], reference="crossentropy")
    Traceback (most recent call last):
    ...
    keras_adaptive_loss.comparison.settings.SettingError: reference 'crossentropy' is not \
among the compared losses (focal); add it to the losses or name one of them.
    """

    dataset: Any = "digits"
    losses: Any = names.DEFAULT_PRESETS
    model: Any = "mlp"
    seeds: Any = 5
    epochs: int = 20
    batch_size: int = 32
    learning_rate: float = 1e-3
    strategy: Any = None
    jit_compile: bool = False
    positive_class: int | str | None = None
    validation_fraction: float = 0.15
    reference: str | None = None
    optimizer: Any = "adam"
    label_noise: float = 0.0
    noise_type: str = "symmetric"
    imbalance: float | None = None
    train_size: int | None = None
    evaluation: str = "last"
    label_column: str = "label"
    data_dir: str | None = None
    try_gcs: bool = True
    download: bool = False
    output: str | None = None
    plots: bool = True
    resume: bool = False
    tensorboard: str | None = None
    verbose: int = 1

    def __post_init__(self) -> None:
        def fail(field: str, template: str) -> None:
            raise SettingError(field, template)

        normalise = object.__setattr__  # the dataclass is frozen
        if not isinstance(self.dataset, str) and not hasattr(self.dataset, "x_train"):
            fail(
                "dataset",
                f"{{dataset}} must be a name, a file or a kal.datasets.Dataset; "
                f"got {self.dataset!r}.",
            )
        specs = _loss_specs(self.losses)
        normalise(self, "losses", types.MappingProxyType(specs))
        normalise(self, "seeds", _seeds(self.seeds))
        for field in ("epochs", "batch_size"):
            if not _is_count(getattr(self, field)):
                fail(field, f"{{{field}}} must be an integer >= 1; got {getattr(self, field)!r}.")
        if self.train_size is not None and not _is_count(self.train_size):
            fail("train_size", f"{{train_size}} must be an integer >= 1; got {self.train_size!r}.")
        if not _is_number(self.learning_rate) or not self.learning_rate > 0:
            fail("learning_rate", f"{{learning_rate}} must be > 0; got {self.learning_rate!r}.")
        if not callable(self.model) and self.model not in names.MODELS:
            fail(
                "model",
                f"Unknown model {self.model!r}; {{model}} is one of {', '.join(names.MODELS)}, "
                "or a builder (input_shape, num_classes) -> keras.Model.",
            )
        if self.strategy == "none":
            normalise(self, "strategy", None)
        if self.strategy not in (None, "mirrored") and not _is_strategy(self.strategy):
            fail(
                "strategy",
                "{strategy} must be None, 'mirrored' or a tf.distribute.Strategy; "
                f"got {self.strategy!r}.",
            )
        if self.strategy is not None and self.jit_compile:
            fail(
                "jit_compile",
                "{jit_compile} cannot be combined with a strategy: Keras turns XLA off under "
                "tf.distribute. Drop one of the two.",
            )
        if not _is_number(self.validation_fraction) or not 0.0 < self.validation_fraction < 1.0:
            fail(
                "validation_fraction",
                f"{{validation_fraction}} must lie in (0, 1); got {self.validation_fraction!r}.",
            )
        if self.reference is not None:
            normalise(self, "reference", self._reference(specs))
        if not callable(self.optimizer) and self.optimizer not in OPTIMIZERS:
            fail(
                "optimizer",
                f"{{optimizer}} must be one of {', '.join(OPTIMIZERS)} or a function "
                f"learning_rate -> keras optimizer; got {self.optimizer!r}.",
            )
        if not _is_number(self.label_noise) or not 0.0 <= self.label_noise < 1.0:
            fail("label_noise", f"{{label_noise}} must lie in [0, 1); got {self.label_noise!r}.")
        if self.noise_type not in NOISE_TYPES:
            fail(
                "noise_type",
                f"{{noise_type}} must be one of {', '.join(NOISE_TYPES)}; got {self.noise_type!r}.",
            )
        if self.imbalance is not None and not (
            _is_number(self.imbalance) and self.imbalance >= 1.0
        ):
            fail(
                "imbalance",
                f"{{imbalance}} must be a head:tail ratio >= 1; got {self.imbalance!r}.",
            )
        if self.evaluation not in EVALUATIONS:
            fail(
                "evaluation",
                f"{{evaluation}} must be one of {', '.join(EVALUATIONS)}; got {self.evaluation!r}.",
            )
        self._check_folders()

    def _reference(self, specs: Mapping[str, Any]) -> str:
        reference = self.reference
        if reference not in specs and names.respelled(reference) in specs:
            reference = canonical_name(reference)  # an older spelling of a compared preset
        if reference not in specs:
            raise SettingError(
                "reference",
                f"{{reference}} {reference!r} is not among the compared losses "
                f"({', '.join(specs)}); add it to the {{losses}} or name one of them.",
            )
        return reference

    def _check_folders(self) -> None:
        if self.resume and self.output is None:
            raise SettingError(
                "resume", "{resume} needs the {output} folder of the comparison to continue."
            )
        plotted = self.output is not None and self.plots
        if plotted and importlib.util.find_spec("matplotlib") is None:
            raise SettingError(
                "plots",
                "PNG {plots} need matplotlib: pip install keras-adaptive-loss[plots], or turn "
                "{plots} off (plots=False, CLI: --no-plots).",
            )
        tensorboard = self.tensorboard
        if (
            tensorboard is not None
            and os.path.exists(tensorboard)
            and not os.path.isdir(tensorboard)
        ):
            raise SettingError(
                "tensorboard",
                f"{{tensorboard}} {tensorboard!r} is a file, not a directory: name a new or "
                "existing folder.",
            )

    @property
    def reference_loss(self) -> str:
        """The loss the others are paired against: ``reference``, else ``crossentropy`` when
        it is compared, else the first loss."""
        if self.reference is not None:
            return self.reference
        return "crossentropy" if "crossentropy" in self.losses else next(iter(self.losses))

    @property
    def optimizer_name(self) -> str:
        """The optimizer as results.json records it: its preset name or its function's name."""
        return self.optimizer if isinstance(self.optimizer, str) else _name(self.optimizer)

    @property
    def model_name(self) -> str:
        """The model as results.json records it: its preset name, else the builder's name."""
        return (
            self.model if isinstance(self.model, str) else getattr(self.model, "__name__", "custom")
        )

    def record(self) -> dict[str, Any]:
        """The settings results.json records (and ``resume`` compares), without the facts that
        come from the data."""
        return {
            "losses": list(self.losses),
            "model": self.model_name,
            "seeds": list(self.seeds),
            "epochs": int(self.epochs),
            "batch_size": int(self.batch_size),
            "learning_rate": float(self.learning_rate),
            "jit_compile": bool(self.jit_compile),
            "validation_fraction": float(self.validation_fraction),
            "reference": self.reference_loss,
            "optimizer": self.optimizer_name,
            "label_noise": float(self.label_noise),
            "noise_type": self.noise_type,
            "imbalance": None if self.imbalance is None else float(self.imbalance),
            "train_subset": None if self.train_size is None else int(self.train_size),
            "evaluation": self.evaluation,
        }


def _is_number(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)
