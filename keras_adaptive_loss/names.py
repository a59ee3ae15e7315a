"""The package's one table of names: public classes and functions, and ``compare``'s presets.

Plain data with no import of Keras or TensorFlow, so that ``import keras_adaptive_loss``, the
command line's ``--help`` and its argument checks answer at once. The packages resolve their
public names from here lazily (PEP 562), and ``compare``'s presets, models and datasets are
keyed by these names.

>>> from keras_adaptive_loss import names
>>> names.LOSSES["StochasticLoss"]
'keras_adaptive_loss.slf.stochastic'
>>> names.respelled("ce-el-0-0.5"), names.respelled("nce-rce")
('ce_el_0-0.5', 'nce_rce')
"""

from __future__ import annotations

__all__ = [
    "CALLBACKS",
    "DATASETS",
    "DEFAULT_PRESETS",
    "LOSSES",
    "LOSS_HELPERS",
    "MODELS",
    "PRESETS",
    "SERIALIZABLES",
    "SUBMODULES",
    "respelled",
]

_SLF = "keras_adaptive_loss.slf"
_UNILOSS = "keras_adaptive_loss.uniloss"
_ALA = "keras_adaptive_loss.ala"
_MIXING = "keras_adaptive_loss.mixing"
_LOSSES = "keras_adaptive_loss.losses"

#: Public loss classes -> the module that defines them (``kal.<Name>``, ``kal.losses.<Name>``).
LOSSES = {
    "ActivePassiveLoss": f"{_LOSSES}.noisy_labels",
    "AdaptiveLoss": f"{_LOSSES}.base",
    "AnyLoss": f"{_LOSSES}.metric_derived",
    "CandidateLoss": f"{_LOSSES}.candidate_loss",
    "ClassBalancedLoss": f"{_LOSSES}.imbalance",
    "ClassCorrelationLoss": f"{_ALA}.losses",
    "CrossentropyExpectationMix": f"{_MIXING}.loss",
    "DistanceMixtureLoss": f"{_ALA}.losses",
    "EnsLoss": f"{_LOSSES}.metric_derived",
    "FocalWeightingLoss": f"{_ALA}.losses",
    "GeneralizedCrossentropy": f"{_LOSSES}.noisy_labels",
    "LDAMLoss": f"{_LOSSES}.imbalance",
    "MultiSimilarityLoss": f"{_LOSSES}.metric_learning",
    "NormalizedCrossentropy": f"{_LOSSES}.noisy_labels",
    "NormalizedFocalLoss": f"{_LOSSES}.noisy_labels",
    "PolyLoss": f"{_LOSSES}.polynomial",
    "ReverseCrossentropy": f"{_LOSSES}.noisy_labels",
    "SparsemaxLoss": f"{_LOSSES}.sparsemax",
    "Squentropy": f"{_LOSSES}.polynomial",
    "StochasticLoss": f"{_SLF}.stochastic",
    "UncertaintyWeightedLoss": f"{_LOSSES}.uncertainty",
    "UniLoss": f"{_UNILOSS}.loss",
    "UniLossAccuracy": f"{_UNILOSS}.loss",
    "UniLossAveragePrecision": f"{_UNILOSS}.loss",
    "UniLossFBeta": f"{_UNILOSS}.loss",
    "UniLossPCKh": f"{_UNILOSS}.loss",
}

#: The rest of ``kal.losses``: the candidate registry, lookup and helpers, and the modules
#: whose names it has always shown.
LOSS_HELPERS = {
    "Candidate": f"{_LOSSES}.registry",
    "DecisionNetwork": f"{_SLF}.decision",
    "available": f"{_LOSSES}.registry",
    "deserialize_candidate": f"{_LOSSES}.registry",
    "get_candidate": f"{_LOSSES}.registry",
    "serialize_candidate": f"{_LOSSES}.registry",
    "deserialize": f"{_LOSSES}.lookup",
    "get": f"{_LOSSES}.lookup",
    "serialize": f"{_LOSSES}.lookup",
    "focus_to_weights": f"{_MIXING}.loss",
    "weights_to_focus": f"{_MIXING}.loss",
    # modules
    "candidates": f"{_LOSSES}.candidates",
    "imbalance": f"{_LOSSES}.imbalance",
    "metric_derived": f"{_LOSSES}.metric_derived",
    "metric_learning": f"{_LOSSES}.metric_learning",
    "noisy_labels": f"{_LOSSES}.noisy_labels",
    "polynomial": f"{_LOSSES}.polynomial",
    "refactorings": f"{_UNILOSS}.refactorings",
}

#: Public callbacks -> their modules (``kal.<Name>``, ``kal.callbacks.<Name>``).
CALLBACKS = {
    "AdaptiveLossAlignment": f"{_ALA}.callback",
    "DeferredReweighting": "keras_adaptive_loss.callbacks.deferred_reweighting",
    "FocusSchedule": f"{_MIXING}.focus_schedule",
    "LossDiagnostics": "keras_adaptive_loss.callbacks.loss_diagnostics",
    "LossParameterLogger": "keras_adaptive_loss.callbacks.loss_parameter_logger",
    "ParameterSchedule": "keras_adaptive_loss.callbacks.parameter_schedule",
    "TemperatureSchedule": f"{_SLF}.temperature_schedule",
    "ValidationSelection": f"{_SLF}.validation_selection",
}

#: ``kal.<name>`` for subpackages and modules (``alignment`` and ``controllers`` are two more
#: names of ALA's package and of its controller).
SUBMODULES = {
    "ala": _ALA,
    "alignment": _ALA,
    "callbacks": "keras_adaptive_loss.callbacks",
    "comparison": "keras_adaptive_loss.comparison",
    "controllers": f"{_ALA}.controllers",
    "datasets": "keras_adaptive_loss.datasets",
    "distribute": "keras_adaptive_loss.distribute",
    "layers": "keras_adaptive_loss.layers",
    "losses": _LOSSES,
    "mixing": _MIXING,
    "schedules": "keras_adaptive_loss.schedules",
    "selection": "keras_adaptive_loss.selection",
    "slf": _SLF,
    "tuning": "keras_adaptive_loss.tuning",
    "uniloss": _UNILOSS,
}

#: ``compare``'s loss presets (`kal.comparison.LOSSES` maps each to what it builds). Names are
#: snake_case, as candidate names are; the CE+EL names append the F protocol as
#: `FocusSchedule` spells it, with "+" for "then" ("0,0.5" would clash with the
#: comma-separated command-line list).
PRESETS = (
    "crossentropy", "focal", "poly1", "poly", "ce_el_0", "ce_el_0+0.5", "ce_el_0-0.5",
    "ce_el_0-0.4", "stochastic", "stochastic_no_validation", "stochastic_paper",
    "uniloss_accuracy", "uniloss_ap", "ala", "nce_rce", "nce_mae", "ce_rce", "normalized_focal",
    "rce", "gce", "squentropy", "sparsemax",
    "ldam_drw", "class_balanced", "anyloss_f1", "anyloss_accuracy", "anyloss_balanced_accuracy",
    "anyloss_gmean", "ensloss", "ensloss_paper", "population", "population_halving",
)  # fmt: skip

#: The presets ``compare`` trains when none are named: the adaptive defaults and the drop-in
#: losses for a multi-class task (``ce_el_0``, the paper's F = 0 protocol, is ``poly1``).
DEFAULT_PRESETS = (
    "crossentropy", "focal", "poly1", "ce_el_0+0.5", "ce_el_0-0.5", "ce_el_0-0.4", "stochastic",
    "uniloss_accuracy", "ala",
)  # fmt: skip

#: ``compare``'s model presets (`kal.comparison.MODELS`).
MODELS = ("mlp", "cnn1d", "resnet")

#: Modules that register serializable classes besides those of `LOSSES` and `CALLBACKS`.
SERIALIZABLES = (
    f"{_SLF}.decision",
    f"{_UNILOSS}.refactorings",
    "keras_adaptive_loss.schedules",
    "keras_adaptive_loss.comparison.epoch_metrics",
)

#: The datasets ``compare`` loads offline (`kal.datasets.NAMES`); any other name is a TFDS
#: name or a file.
DATASETS = ("digits", "iris", "wine", "breast_cancer", "mnist1d")


def respelled(name: str) -> str:
    """The preset an older hyphenated spelling stands for (``"nce-rce"``, ``"ce-el-0-0.5"``):
    snake_case, as the candidate names are; the F protocol keeps its own spelling."""
    if name in PRESETS:
        return name
    if name.startswith("ce-el-"):
        return "ce_el_" + name[len("ce-el-") :]
    return name.replace("-", "_")
