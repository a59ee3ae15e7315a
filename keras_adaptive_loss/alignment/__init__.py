"""ALA's multi-model setting: child models trained in lockstep under one shared controller."""

from keras_adaptive_loss.alignment.population import PopulationResult, fit_children

__all__ = ["PopulationResult", "fit_children"]
