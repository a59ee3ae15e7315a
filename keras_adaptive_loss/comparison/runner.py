"""`compare`: train one model with several losses over several seeds and report the results."""

from __future__ import annotations

import contextlib
import dataclasses
import os
import sys
import time
from typing import Any

from keras_adaptive_loss import names
from keras_adaptive_loss.comparison import resume, training
from keras_adaptive_loss.comparison.data import prepare
from keras_adaptive_loss.comparison.output_dir import OutputDirectory
from keras_adaptive_loss.comparison.paired import MIN_SEEDS
from keras_adaptive_loss.comparison.progress import RunProgress
from keras_adaptive_loss.comparison.result import ComparisonResult
from keras_adaptive_loss.comparison.settings import ComparisonSettings

__all__ = ["DEFAULT_LOSSES", "compare"]

#: Losses `compare` trains when none are named: every preset that fits a multi-class task.
DEFAULT_LOSSES = names.DEFAULT_PRESETS


def compare(
    dataset: Any = "digits", losses: Any = DEFAULT_LOSSES, **settings: Any
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

    With ``output``, the folder is checked before training. While the comparison runs, its
    files are rewritten (atomically) after every finished run in ``output/unfinished/``, with
    ``results.json`` marked ``"complete": false``, so an interrupted comparison keeps its
    finished runs. The results of an earlier comparison in ``output`` stay until this one has
    finished; then its files replace them, and files of the earlier comparison that this one
    does not write are removed. A folder that holds an interrupted comparison's runs is refused
    unless ``resume=True``.

    Args:
        dataset: the data (see `ComparisonSettings`), or a whole `ComparisonSettings`; then
            ``losses`` and the keywords, if given, replace its fields.
        losses: preset names or ``{label: name or factory}`` (see `ComparisonSettings`).
        **settings: the other fields of `ComparisonSettings` (``model``, ``seeds``,
            ``epochs``, ``batch_size``, ``learning_rate``, ``strategy``, ``jit_compile``,
            ``positive_class``, ``validation_fraction``, ``reference``, ``optimizer``,
            ``label_noise``, ``noise_type``, ``imbalance``, ``train_size``, ``evaluation``,
            ``label_column``, ``data_dir``, ``try_gcs``, ``download``, ``output``, ``plots``,
            ``resume``, ``tensorboard``, ``verbose``).

    Returns:
        A `ComparisonResult`; ``result.table()`` is the printed table.

    Raises:
        SettingError: a `ValueError` for a setting that cannot run, before any data loads.

    Example:

    ```python
    result = kal.compare("iris", ["crossentropy", "ce_el_0-0.5"], seeds=2, epochs=5)
    print(result.table())
    ```
    """
    if isinstance(dataset, ComparisonSettings):
        if losses is not DEFAULT_LOSSES:
            settings["losses"] = losses
        run = dataclasses.replace(dataset, **settings) if settings else dataset
    else:
        run = ComparisonSettings(dataset=dataset, losses=losses, **settings)
    return _Comparison(run).run()


class _Comparison:
    """One call of `compare`: its data, trainer, output folder and the runs so far."""

    def __init__(self, settings: ComparisonSettings) -> None:
        self.settings = settings
        self.folder = OutputDirectory(settings.output) if settings.output is not None else None
        training.check_tensorboard(settings.tensorboard)
        self.prepared = prepare(settings)
        self.trainer = training.Trainer(settings, self.prepared)
        self.trainer.check()
        self.loss_setups: dict[str, Any] = {}
        self.total_seconds: float | None = None

    def config(self) -> dict[str, Any]:
        """results.json's ``config``: the settings, the data and how each loss was built."""
        config = {
            **self.prepared.record(),
            **self.settings.record(),
            **self.trainer.record(),
            "loss_setups": dict(self.loss_setups),
        }
        if self.total_seconds is not None:
            config["total_seconds"] = self.total_seconds
        return config

    def run(self) -> ComparisonResult:
        settings, folder = self.settings, self.folder
        if settings.verbose and len(settings.losses) > 1 and len(settings.seeds) < 5:
            print(
                f"note: {len(settings.seeds)} seed(s) give a rough comparison (no interval below "
                f"{MIN_SEEDS}); 5 or more are recommended.",
                file=sys.stderr,
            )
        with folder.locked() if folder is not None else contextlib.nullcontext():
            finished = resume.PreviousRuns()
            if settings.resume:
                finished = resume.previous_runs(folder, self.config())
                self.loss_setups.update(finished.loss_setups)
            if folder is not None and not settings.resume:
                resume.refuse_to_discard_unfinished(folder)
                folder.start_unfinished()
            elif folder is not None:
                os.makedirs(folder.unfinished, exist_ok=True)
            try:
                result = self._train_all(finished.runs)
            except BaseException:
                if folder is not None:
                    folder.drop_empty_unfinished()
                raise
            if settings.verbose:
                print()
                print(result.table())
            if folder is not None:
                written = result.save(folder.unfinished, plots=settings.plots)
                files = {os.path.basename(path) for path in written.values()}
                folder.publish(files)
                if settings.verbose:
                    print("wrote " + ", ".join(sorted(folder.file(name) for name in files)))
        return result

    def _train_all(self, finished: dict) -> ComparisonResult:
        """Trains every (loss, seed) run not in ``finished``, saving after each one."""
        settings, folder = self.settings, self.folder
        order = [(label, seed) for seed in settings.seeds for label in settings.losses]
        progress = RunProgress(len(order)) if settings.verbose else None
        runs = dict(finished)
        start = time.perf_counter()
        for label, seed in order:
            resumed = (label, seed) in runs
            if not resumed:
                if progress is not None:
                    progress.start(label, seed)
                trained = self.trainer.train(label, seed)
                runs[(label, seed)] = trained.record
                self.loss_setups.setdefault(label, trained.loss_setup)
                if folder is not None:
                    done = [runs[key] for key in order if key in runs]
                    ComparisonResult(self.config(), done).save(
                        folder.unfinished, plots=False, complete=False
                    )
            if progress is not None:
                progress.finish(label, seed, runs[(label, seed)].test_metrics, resumed=resumed)
        self.total_seconds = time.perf_counter() - start
        return ComparisonResult(self.config(), [runs[key] for key in order])
