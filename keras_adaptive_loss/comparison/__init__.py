"""Compare losses on one model and dataset over seeds: `kal.compare` and its CLI.

`kal.compare(dataset, losses, ...)` trains the same model with each loss over several seeds and
returns a `ComparisonResult` (table, CSV, JSON, PNG plots). The console script
``keras-adaptive-loss compare`` builds the same `ComparisonSettings` from its arguments.

The modules, each with one job: `settings` (what to run, checked without TensorFlow), `data`
(load, regime, validation split), `training` (one run), `result` (runs and their pairing),
`report` (table, files, plots), `resume` (what an output folder already holds) and `runner`
(`compare` itself). Names resolve lazily, so importing `settings` does not import Keras.
"""

from keras_adaptive_loss import _lazy

_PACKAGE = __name__
_MODULES = (
    "data", "epoch_metrics", "loss_presets", "model_presets", "output_dir", "paired", "progress",
    "recorders", "regimes", "report", "result", "resume", "runner", "settings", "training",
)  # fmt: skip

__getattr__, __dir__ = _lazy.lazy_names(
    __name__,
    {
        "ComparisonSettings": f"{_PACKAGE}.settings",
        "SettingError": f"{_PACKAGE}.settings",
        "load_data": f"{_PACKAGE}.data",
        "ComparisonResult": f"{_PACKAGE}.result",
        "RunRecord": f"{_PACKAGE}.result",
        "DEFAULT_LOSSES": f"{_PACKAGE}.runner",
        "compare": f"{_PACKAGE}.runner",
        "LOSSES": f"{_PACKAGE}.loss_presets",
        "SLF_CANDIDATES": f"{_PACKAGE}.loss_presets",
        "LossContext": f"{_PACKAGE}.loss_presets",
        "LossSetup": f"{_PACKAGE}.loss_presets",
        "build_loss": f"{_PACKAGE}.loss_presets",
        "MODELS": f"{_PACKAGE}.model_presets",
        "build_model": f"{_PACKAGE}.model_presets",
        "PairedDifference": f"{_PACKAGE}.paired",
        "paired_difference": f"{_PACKAGE}.paired",
    },
    {module: f"{_PACKAGE}.{module}" for module in _MODULES},
)

__all__ = [
    "DEFAULT_LOSSES",
    "LOSSES",
    "MODELS",
    "SLF_CANDIDATES",
    "ComparisonResult",
    "ComparisonSettings",
    "LossContext",
    "LossSetup",
    "PairedDifference",
    "RunRecord",
    "SettingError",
    "build_loss",
    "build_model",
    "compare",
    "load_data",
    "paired",
    "paired_difference",
    "regimes",
]
