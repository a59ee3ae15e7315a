"""Values a callback reports as metrics of the train step, so every logger sees them.

Keras hands one ``logs`` dict to the callbacks of ``fit`` in the order they were listed: a value a
callback writes in ``on_epoch_end`` is missed by a ``CSVLogger`` or ``TensorBoard`` listed before
it. The epoch logs start as the model's metric results, computed before any callback runs, so a
value reported as a metric reaches History, CSVLogger, TensorBoard and the progress bar whatever
the callback order. `ReportedValues` is that metric: it holds no state of its own and its
``result()`` reads the variables the reporting callbacks name (the adaptive parameters of the
loss, or the callback's own bookkeeping), so inside the compiled train step it reads them live, in
eager, graph and ``jit_compile=True`` mode, on every replica.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable
from typing import Any

import keras
from keras import ops

__all__ = ["ReportedValues", "ReportingCallback"]

# The model attribute that holds the shared metric. A tracked attribute is how a Keras model
# learns about a metric outside `compile`; it adds no variable, so saved files load as before.
_ATTRIBUTE = "kal_reported_values"

Source = Callable[[], Any]


class ReportedValues(keras.metrics.Metric):
    """A stateless metric whose result is the current value of each registered source.

    One instance per model, shared by every `ReportingCallback` that trains it. Results are
    empty while evaluating (fit's validation pass calls ``pause``), so no ``val_``-prefixed copy
    of a training parameter appears in the logs.

    A traced train step keeps the sources it was traced with, so `synchronize` rebuilds the
    model's train function whenever the registered sources differ from those of the function
    it built last: at the start of a `fit` with reporting callbacks and, through
    ``reset_state`` (which `fit` calls at every epoch start), at the start of a later `fit`
    without them. Repeated fits with the same callbacks reuse the traced function.

    Example:

    >>> import keras
    >>> reported = ReportedValues()
    >>> reported.register("owner", {"alpha": lambda: keras.ops.convert_to_tensor(0.5)})
    >>> {k: float(v) for k, v in reported.result().items()}
    {'alpha': 0.5}
    >>> reported.pause()
    >>> reported.result()
    {}
    """

    def __init__(self, name: str = "kal_reported_values") -> None:
        super().__init__(name=name)
        self._sources: dict[int, dict[str, Source]] = {}
        self._paused = False
        self._model: Callable[[], Any] = lambda: None
        self._function: Any = None
        self._function_signature: tuple = ()

    def attach(self, model: keras.Model) -> None:
        """Remembers (weakly) the model whose train function `reset_state` keeps in sync."""
        self._model = weakref.ref(model)

    def _signature(self) -> tuple:
        return tuple((owner, key) for owner, sources in self._sources.items() for key in sources)

    def synchronize(self, model: keras.Model) -> None:
        """Rebuilds ``model``'s train function if it was built for other sources.

        Rebuilding only replaces the `tf.function`; the trace happens at the next train step.
        """
        if self._paused or model.train_function is None:
            return
        signature = self._signature()
        if model.train_function is not self._function or signature != self._function_signature:
            model.make_train_function(force=True)
            self._function = model.train_function
            self._function_signature = signature

    def register(self, owner: Any, sources: dict[str, Source]) -> None:
        """Adds (or replaces) ``owner``'s sources: ``log key -> callable returning a scalar``."""
        self._sources[id(owner)] = dict(sources)

    def unregister(self, owner: Any) -> None:
        """Removes ``owner``'s sources."""
        self._sources.pop(id(owner), None)

    def pause(self) -> None:
        """Reports nothing until `resume` (used around evaluation)."""
        self._paused = True

    def resume(self) -> None:
        """Reports the registered sources again."""
        self._paused = False

    @property
    def keys(self) -> list[str]:
        """The log keys currently registered."""
        return [key for sources in self._sources.values() for key in sources]

    def update_state(self, *args: Any, **kwargs: Any) -> None:
        """Nothing to accumulate: the values are read when the result is asked for."""

    def reset_state(self) -> None:
        """Nothing to reset; keeps the model's train function in sync with the sources."""
        model = self._model()
        if model is not None:
            self.synchronize(model)

    def result(self) -> dict[str, Any]:
        if self._paused:
            return {}
        values: dict[str, Any] = {}
        for sources in self._sources.values():
            for key, source in sources.items():
                values[key] = ops.cast(ops.convert_to_tensor(source()), "float32")
        return values


def reported_values(model: keras.Model) -> ReportedValues:
    """The model's shared `ReportedValues`, attached on first use."""
    reported = getattr(model, _ATTRIBUTE, None)
    if not isinstance(reported, ReportedValues):
        reported = ReportedValues()
        setattr(model, _ATTRIBUTE, reported)
        reported.attach(model)
    return reported


class ReportingCallback(keras.callbacks.Callback):
    """Base of the callbacks whose values must reach every logger, whatever the callback order.

    A subclass calls `_start_reporting` at the end of its ``on_train_begin`` with its sources
    (``log key -> callable returning a scalar tensor or variable``), and `_fill_missing` in its
    ``on_epoch_end``. The sources are reported as a metric of the train step (see
    `ReportedValues`), so History, CSVLogger, TensorBoard and the progress bar record them even
    when those loggers are listed first. `_fill_missing` covers models whose own ``train_step``
    returns custom logs (there the metric results are not used): it writes the keys still
    missing, which then reach only the loggers listed after the callback.

    The train function is rebuilt when the reporting callbacks of a ``fit`` differ from those
    it was traced for (see `ReportedValues`), so the logged keys always match the traced step
    and repeated fits with the same callbacks trace once.

    Example:

    >>> import keras
    >>> class StepCount(ReportingCallback):
    ...     def on_train_begin(self, logs=None):
    ...         self._start_reporting({"steps": lambda: self.model.optimizer.iterations})
    >>> callback = StepCount()
    """

    def __init__(self) -> None:
        super().__init__()
        self._reporting: ReportedValues | None = None
        self._report_sources: dict[str, Source] = {}
        self._owned: dict[str, keras.Variable] = {}

    def _owned_variable(self, key: str, value: float = 0.0) -> keras.Variable:
        """A float32 variable of the callback's own (Python-side values made reportable)."""
        if key not in self._owned:
            self._owned[key] = keras.Variable(
                float(value), dtype="float32", trainable=False, name=key
            )
        else:
            self._owned[key].assign(float(value))
        return self._owned[key]

    def _set_owned(self, key: str, value: float) -> None:
        self._owned[key].assign(float(value))

    def _start_reporting(self, sources: dict[str, Source]) -> None:
        self._report_sources = dict(sources)
        self._reporting = reported_values(self.model)
        self._reporting.register(self, self._report_sources)
        self._reporting.resume()
        self._reporting.synchronize(self.model)

    def _fill_missing(self, logs: dict | None) -> None:
        if logs is None:
            return
        for key, source in self._report_sources.items():
            if key not in logs:
                logs[key] = float(ops.convert_to_numpy(source()))

    def on_test_begin(self, logs: dict | None = None) -> None:
        if self._reporting is not None:
            self._reporting.pause()

    def on_test_end(self, logs: dict | None = None) -> None:
        if self._reporting is not None:
            self._reporting.resume()

    def on_train_end(self, logs: dict | None = None) -> None:
        if self._reporting is not None:
            # A later fit without this callback rebuilds the train function (reset_state).
            self._reporting.unregister(self)
            self._reporting = None
