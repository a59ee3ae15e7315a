"""Per-task loss selection: a population of children with different losses, cross-entropy as
the control child, steered by validation (population-based training or successive halving).

>>> import keras_adaptive_loss as kal
>>> [family.name for family in kal.selection.default_search_space(3)][:2]
['crossentropy', 'label_smoothing']
"""

from keras_adaptive_loss.selection.population import Decision, SelectionResult, select_loss
from keras_adaptive_loss.selection.search_space import (
    CONTROL,
    ChildLoss,
    LossFamily,
    class_correlation_family,
    default_search_space,
)
from keras_adaptive_loss.selection.training_data import ShuffledBatches

__all__ = [
    "CONTROL",
    "ChildLoss",
    "Decision",
    "LossFamily",
    "SelectionResult",
    "ShuffledBatches",
    "class_correlation_family",
    "default_search_space",
    "select_loss",
]
