"""Compare losses on one model and dataset over seeds: `kal.compare` and its CLI.

`kal.compare(dataset, losses, ...)` trains the same model with each loss over several seeds and
returns a `ComparisonResult` (table, CSV, JSON, PNG plots). The console script
``keras-adaptive-loss compare`` is the same function on the command line.
"""

from keras_adaptive_loss.comparison import paired, regimes
from keras_adaptive_loss.comparison.loss_presets import (
    LOSSES,
    SLF_CANDIDATES,
    LossContext,
    LossSetup,
    build_loss,
)
from keras_adaptive_loss.comparison.model_presets import MODELS, build_model
from keras_adaptive_loss.comparison.paired import PairedDifference, paired_difference
from keras_adaptive_loss.comparison.runner import (
    DEFAULT_LOSSES,
    ComparisonResult,
    RunRecord,
    compare,
    load_data,
)

__all__ = [
    "DEFAULT_LOSSES",
    "LOSSES",
    "MODELS",
    "SLF_CANDIDATES",
    "ComparisonResult",
    "LossContext",
    "LossSetup",
    "PairedDifference",
    "RunRecord",
    "build_loss",
    "build_model",
    "compare",
    "load_data",
    "paired",
    "paired_difference",
    "regimes",
]
