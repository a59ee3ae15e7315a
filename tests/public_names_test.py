"""Every public name of the package resolves where it did before the layout by method.

The lists are the packages' ``__all__`` as they stood in the flat layout (2026-12-06): code
written against them keeps working, whatever the modules behind the names are now.
"""

from __future__ import annotations

import inspect

import pytest

import keras_adaptive_loss as kal

LOSSES = [
    "ActivePassiveLoss", "AdaptiveLoss", "AnyLoss", "CandidateLoss", "ClassBalancedLoss",
    "ClassCorrelationLoss", "CrossentropyExpectationMix", "DistanceMixtureLoss", "EnsLoss",
    "FocalWeightingLoss", "LDAMLoss", "MultiSimilarityLoss", "NormalizedCrossentropy",
    "NormalizedFocalLoss", "PolyLoss", "ReverseCrossentropy", "SparsemaxLoss", "Squentropy",
    "StochasticLoss", "UncertaintyWeightedLoss", "UniLoss", "UniLossAccuracy",
    "UniLossAveragePrecision", "UniLossFBeta", "UniLossPCKh",
]  # fmt: skip
CALLBACKS = [
    "AdaptiveLossAlignment", "DeferredReweighting", "FocusSchedule", "LossDiagnostics",
    "LossParameterLogger", "ParameterSchedule", "TemperatureSchedule", "ValidationSelection",
]  # fmt: skip
TOP_LEVEL_MODULES = [
    "alignment", "callbacks", "comparison", "controllers", "datasets", "distribute", "layers",
    "losses", "schedules", "tuning",
]  # fmt: skip
LOSSES_EXTRA = [
    "Candidate", "DecisionNetwork", "available", "candidates", "deserialize",
    "deserialize_candidate", "focus_to_weights", "get", "get_candidate", "imbalance",
    "metric_derived", "metric_learning", "noisy_labels", "polynomial", "refactorings",
    "serialize", "serialize_candidate", "weights_to_focus",
]  # fmt: skip
SUBPACKAGES = {
    "alignment": ["PopulationResult", "fit_children"],
    "controllers": [
        "ACTIONS", "AlignmentController", "MemberState", "Observation", "Policy",
        "ReplayMemory", "discounted_metric", "feature_size", "sign_reward", "state_features",
    ],
    "comparison": [
        "DEFAULT_LOSSES", "LOSSES", "MODELS", "SLF_CANDIDATES", "ComparisonResult",
        "LossContext", "LossSetup", "PairedDifference", "RunRecord", "build_loss",
        "build_model", "compare", "load_data", "paired", "paired_difference", "regimes",
    ],
}  # fmt: skip


@pytest.mark.parametrize("name", LOSSES + CALLBACKS + TOP_LEVEL_MODULES + ["compare"])
def test_top_level_names_resolve_and_are_listed(name):
    assert getattr(kal, name) is not None
    assert name in kal.__all__ and name in dir(kal)


@pytest.mark.parametrize("name", LOSSES + LOSSES_EXTRA)
def test_losses_names_resolve(name):
    assert getattr(kal.losses, name) is not None
    assert name in kal.losses.__all__ and name in dir(kal.losses)


@pytest.mark.parametrize("name", CALLBACKS)
def test_callbacks_names_resolve(name):
    assert inspect.isclass(getattr(kal.callbacks, name))
    assert name in kal.callbacks.__all__


@pytest.mark.parametrize("name", LOSSES)
def test_a_loss_is_the_same_class_at_every_address(name):
    assert getattr(kal, name) is getattr(kal.losses, name)


@pytest.mark.parametrize(
    ("package", "name"), [(p, n) for p, names in SUBPACKAGES.items() for n in names]
)
def test_subpackage_names_resolve(package, name):
    assert getattr(getattr(kal, package), name) is not None


def test_an_unknown_name_raises_attribute_error():
    with pytest.raises(AttributeError, match="has no attribute 'StochasticLos'"):
        _ = kal.StochasticLos
    with pytest.raises(AttributeError, match=r"keras_adaptive_loss\.losses"):
        _ = kal.losses.PolyLos


def test_compare_is_the_function_and_comparison_the_package():
    assert callable(kal.compare) and inspect.isfunction(kal.compare)
    assert inspect.ismodule(kal.comparison) and kal.comparison.compare is kal.compare
