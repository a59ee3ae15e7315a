"""KerasTuner helpers: search spaces for every method's hyper-parameters.

KerasTuner is an optional dependency (``pip install keras-adaptive-loss[tuner]``); these
helpers only call methods on the ``hp`` object they are given, so importing this module does
not import KerasTuner. Every helper registers its hyper-parameters under a ``prefix``
(``"slf_"``, ``"ce_el_"``, ``"uniloss_"``, ``"ala_"``, or the related loss's name), so they
cannot clash with the names of your own search space.

- `stochastic_loss`: K and tau of a `StochasticLoss`;
- `focus_schedule`: the F protocol of a `CrossentropyExpectationMix` (returns the loss and its
  `FocusSchedule`);
- `uniloss`: the sigmoid scale and anchor count of a UniLoss (accuracy or average precision);
- `adaptive_loss_alignment`: K (``period``) and the step size of the ALA controller;
- `related_loss`: the parameters of PolyLoss, the active-passive losses, LDAM, the
  class-balanced loss and AnyLoss.

Each searched hyper-parameter's KerasTuner default is the method's own default (the value its
constructor uses, e.g. the measured entropy bonus 1.0 of `StochasticLoss`) wherever that lies
in the range: KerasTuner uses the default for a hyper-parameter it does not search
(``tune_new_entries=False``, a fresh ``HyperParameters``), and without one it would use the
range's lower end (for `StochasticLoss`: K = 1, tau = 0.1 and no entropy bonus, the setting
whose selection collapses).

A loss goes into ``build``; a callback (FocusSchedule, AdaptiveLossAlignment) is added in the
hyper-model's ``fit``, where KerasTuner passes the trial's ``hp``:

```python
class MixHyperModel(keras_tuner.HyperModel):
    def build(self, hp):
        model = build_my_model()
        loss, self.schedule = kal.tuning.focus_schedule(hp)
        model.compile(optimizer="adam", loss=loss, metrics=["accuracy"])
        return model

    def fit(self, hp, model, *args, callbacks=(), **kwargs):
        return model.fit(*args, callbacks=[self.schedule, *callbacks], **kwargs)

tuner = keras_tuner.RandomSearch(MixHyperModel(), objective="val_accuracy", max_trials=3)
tuner.search(x, y, validation_split=0.2, epochs=20)
```
"""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from typing import Any

from keras_adaptive_loss.ala.callback import AdaptiveLossAlignment
from keras_adaptive_loss.losses.imbalance import ClassBalancedLoss, LDAMLoss
from keras_adaptive_loss.losses.metric_derived import AnyLoss
from keras_adaptive_loss.losses.noisy_labels import ActivePassiveLoss
from keras_adaptive_loss.losses.polynomial import PolyLoss
from keras_adaptive_loss.mixing.focus_schedule import FocusSchedule
from keras_adaptive_loss.mixing.loss import CrossentropyExpectationMix
from keras_adaptive_loss.slf.stochastic import StochasticLoss
from keras_adaptive_loss.uniloss.loss import UniLossAccuracy, UniLossAveragePrecision

__all__ = [
    "RELATED_LOSSES",
    "adaptive_loss_alignment",
    "focus_schedule",
    "related_loss",
    "stochastic_loss",
    "uniloss",
]

#: `related_loss` names.
RELATED_LOSSES = ("poly", "active_passive", "ldam", "class_balanced", "anyloss")


def _check_hyper_parameters(hp: Any, helper: str) -> None:
    """Raises `ValueError` unless ``hp`` is KerasTuner's ``HyperParameters`` (or behaves so)."""
    if not all(callable(getattr(hp, method, None)) for method in ("Float", "Int", "Choice")):
        raise ValueError(
            f"kal.tuning.{helper} needs the trial's keras_tuner.HyperParameters (the `hp` that "
            f"HyperModel.build receives); got {hp!r}."
        )


def _range(name: str, bounds: tuple, *, low: float, inclusive: bool = False) -> tuple:
    """``bounds`` as ``(low, high)`` after checking ``low <(=) bounds[0] <= bounds[1]``."""
    try:
        first, last = bounds
        ok = (first >= low if inclusive else first > low) and first <= last
    except (TypeError, ValueError):
        ok = False
    if not ok:
        sign = ">=" if inclusive else ">"
        raise ValueError(
            f"{name} must be a range (low, high) with low {sign} {low} and low <= high; "
            f"got {bounds!r}."
        )
    return first, last


def _constructor_default(owner: type, name: str) -> Any:
    """The default of ``owner``'s constructor argument ``name`` (``None`` if it has none).

    The constructor is the first ``__init__`` along the class's MRO that names the argument
    (`UniLossAccuracy` passes ``scale`` on to `UniLoss`).
    """
    for klass in owner.__mro__:
        if "__init__" not in vars(klass):
            continue
        parameter = inspect.signature(klass.__init__).parameters.get(name)
        if parameter is not None:
            return None if parameter.default is inspect.Parameter.empty else parameter.default
    return None


def _default_within(owner: type, name: str, low: Any, high: Any) -> Any:
    """``owner``'s default for ``name`` when it is a number within ``[low, high]``; ``None``
    otherwise (KerasTuner then defaults to ``low``).

    >>> from keras_adaptive_loss.losses.noisy_labels import ActivePassiveLoss
    >>> _default_within(ActivePassiveLoss, "beta", 0.01, 10.0)
    0.05
    >>> _default_within(ActivePassiveLoss, "beta", 0.1, 10.0) is None
    True
    """
    value = _constructor_default(owner, name)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return value if low <= value <= high else None


def _float(
    hp: Any, name: str, owner: type, argument: str, low: float, high: float, log: bool = False
) -> Any:
    """``hp.Float(name, low, high)`` defaulting to ``owner``'s default for ``argument``."""
    return hp.Float(
        name,
        min_value=float(low),
        max_value=float(high),
        sampling="log" if log else "linear",
        default=_default_within(owner, argument, low, high),
    )


def _int(hp: Any, name: str, owner: type, argument: str, low: int, high: int, step: int = 1) -> Any:
    """``hp.Int(name, low, high, step)`` defaulting to ``owner``'s default for ``argument``
    when that lies on the searched grid."""
    default = _default_within(owner, argument, low, high)
    if default is not None and (default - int(low)) % step:
        default = None  # off the searched grid
    return hp.Int(name, min_value=int(low), max_value=int(high), step=step, default=default)


def _default_among(owner: type, name: str, choices: Sequence[Any]) -> Any:
    """``owner``'s default for ``name`` when it is one of ``choices``; ``None`` otherwise
    (KerasTuner then defaults to the first choice)."""
    value = _constructor_default(owner, name)
    return value if value in list(choices) else None


def stochastic_loss(
    hp: Any,
    candidates: Sequence[Any],
    *,
    num_samples: tuple[int, int] = (1, 5),
    temperature: tuple[float, float] = (0.1, 10.0),
    entropy: tuple[float, float] | float | None = (0.0, 2.0),
    prefix: str = "slf_",
    **kwargs: Any,
) -> StochasticLoss:
    """A `StochasticLoss` whose K, tau and entropy bonus are KerasTuner hyper-parameters.

    Registers ``hp.Int(prefix + "num_samples", *num_samples)``,
    ``hp.Float(prefix + "temperature", *temperature, sampling="log")`` and
    ``hp.Float(prefix + "entropy", *entropy)``, each defaulting to `StochasticLoss`'s own
    value (K = 3, tau = 1, entropy 1.0) where the range holds it. The entropy bonus is what
    keeps the selection from collapsing onto one candidate (the default 1.0 was chosen by a
    paired study, see `StochasticLoss`); 0 is the paper's objective. A number fixes it for
    every trial, and ``None`` leaves the `StochasticLoss` default.

    Args:
        hp: the ``keras_tuner.HyperParameters`` of the trial.
        candidates: the candidate losses, as for `StochasticLoss`.
        num_samples: inclusive range of K (>= 1).
        temperature: range of tau (> 0), searched on a log scale.
        entropy: range of the entropy-bonus weight (>= 0); a number or ``None`` not to
            search it.
        prefix: prepended to the hyper-parameter names.
        **kwargs: further `StochasticLoss` arguments (fixed for every trial).

    Raises:
        ValueError: for a range that is not ``(low, high)`` within its bounds.

    Example:

    >>> import keras_tuner
    >>> import keras_adaptive_loss as kal
    >>> hp = keras_tuner.HyperParameters()
    >>> loss = kal.tuning.stochastic_loss(hp, ["crossentropy", "mse"], seed=0)
    >>> sorted(hp.values)
    ['slf_entropy', 'slf_num_samples', 'slf_temperature']
    >>> loss.num_samples == hp["slf_num_samples"], loss.entropy == hp["slf_entropy"]
    (True, True)
    """
    _check_hyper_parameters(hp, "stochastic_loss")
    low_k, high_k = _range("num_samples", num_samples, low=1, inclusive=True)
    low_t, high_t = _range("temperature", temperature, low=0)
    if low_t == high_t:
        raise ValueError(f"temperature must be a range with low < high; got {temperature}.")
    k = _int(hp, prefix + "num_samples", StochasticLoss, "num_samples", low_k, high_k)
    tau = _float(hp, prefix + "temperature", StochasticLoss, "temperature", low_t, high_t, log=True)
    if isinstance(entropy, (int, float)):
        kwargs["entropy"] = float(entropy)  # StochasticLoss checks it
    elif entropy is not None:
        low_e, high_e = _range("entropy", entropy, low=0, inclusive=True)
        kwargs["entropy"] = _float(hp, prefix + "entropy", StochasticLoss, "entropy", low_e, high_e)
    return StochasticLoss(candidates, num_samples=k, temperature=tau, **kwargs)


def focus_schedule(
    hp: Any,
    *,
    protocols: Sequence[str] = ("0", "0,0.5", "0-0.5"),
    prefix: str = "ce_el_",
    **kwargs: Any,
) -> tuple[CrossentropyExpectationMix, FocusSchedule]:
    """A `CrossentropyExpectationMix` and the `FocusSchedule` of a tuned F protocol.

    Registers ``hp.Choice(prefix + "protocol", protocols)`` (the paper's three protocols by
    default; any `keras_adaptive_loss.schedules.focus_phases` string works).

    Args:
        hp: the ``keras_tuner.HyperParameters`` of the trial.
        protocols: the protocols to choose from.
        prefix: prepended to the hyper-parameter name.
        **kwargs: `CrossentropyExpectationMix` arguments (e.g. ``from_logits``).

    >>> import keras_tuner
    >>> import keras_adaptive_loss as kal
    >>> hp = keras_tuner.HyperParameters()
    >>> loss, schedule = kal.tuning.focus_schedule(hp)
    >>> protocol = hp.values["ce_el_protocol"]  # "0", "0,0.5" or "0-0.5"
    >>> schedule.phases == kal.schedules.focus_phases(protocol)
    True
    """
    _check_hyper_parameters(hp, "focus_schedule")
    if not protocols:
        raise ValueError("protocols must name at least one F protocol, e.g. ('0', '0-0.5').")
    protocol = hp.Choice(prefix + "protocol", [str(p) for p in protocols])
    return CrossentropyExpectationMix(**kwargs), FocusSchedule(protocol)


def uniloss(
    hp: Any,
    metric: str = "accuracy",
    *,
    scale: tuple[float, float] = (0.3, 10.0),
    num_anchors: tuple[int, int] = (4, 32),
    prefix: str = "uniloss_",
    **kwargs: Any,
) -> UniLossAccuracy | UniLossAveragePrecision:
    """A UniLoss (``metric="accuracy"`` or ``"average_precision"``) with a tuned sigmoid
    ``scale`` (log scale) and number of anchors of each type.

    Args:
        hp: the ``keras_tuner.HyperParameters`` of the trial.
        metric: ``"accuracy"`` or ``"average_precision"``.
        scale: range of the sigmoid slope (> 0).
        num_anchors: inclusive range of anchors per type (>= 1).
        prefix: prepended to the hyper-parameter names.
        **kwargs: further loss arguments (``from_logits``, ``seed``, ...).

    >>> import keras_tuner
    >>> import keras_adaptive_loss as kal
    >>> hp = keras_tuner.HyperParameters()
    >>> loss = kal.tuning.uniloss(hp, "average_precision", from_logits=True)
    >>> sorted(hp.values), type(loss).__name__
    (['uniloss_num_anchors', 'uniloss_scale'], 'UniLossAveragePrecision')
    """
    _check_hyper_parameters(hp, "uniloss")
    classes = {"accuracy": UniLossAccuracy, "average_precision": UniLossAveragePrecision}
    if metric not in classes:
        raise ValueError(f"metric must be one of {tuple(classes)}; got {metric!r}.")
    low_s, high_s = _range("scale", scale, low=0)
    low_a, high_a = _range("num_anchors", num_anchors, low=1, inclusive=True)
    value = _float(hp, prefix + "scale", classes[metric], "scale", low_s, high_s, log=True)
    anchors = _int(hp, prefix + "num_anchors", classes[metric], "num_anchors", low_a, high_a)
    return classes[metric](scale=value, num_anchors=anchors, **kwargs)


def adaptive_loss_alignment(
    hp: Any,
    validation_data: tuple[Any, Any],
    *,
    period: tuple[int, int] = (50, 400),
    step_size: tuple[float, float] = (0.01, 0.2),
    prefix: str = "ala_",
    **kwargs: Any,
) -> AdaptiveLossAlignment:
    """An `AdaptiveLossAlignment` callback with a tuned K (``period``, steps of 50) and
    controller step size (log scale); compile the model with an ALA loss.

    Args:
        hp: the ``keras_tuner.HyperParameters`` of the trial.
        validation_data: ``(x, y)`` the controller measures.
        period: inclusive range of K, in training steps (>= 1).
        step_size: range of the step beta (> 0).
        prefix: prepended to the hyper-parameter names.
        **kwargs: further `AdaptiveLossAlignment` arguments.

    >>> import keras_tuner
    >>> import keras_adaptive_loss as kal
    >>> hp = keras_tuner.HyperParameters()
    >>> import numpy as np
    >>> x_val, y_val = np.zeros((8, 4), "float32"), np.arange(8) % 2
    >>> ala = kal.tuning.adaptive_loss_alignment(hp, (x_val, y_val))
    >>> ala.period == hp["ala_period"], ala.step_size == hp["ala_step_size"]
    (True, True)
    """
    _check_hyper_parameters(hp, "adaptive_loss_alignment")
    low_k, high_k = _range("period", period, low=1, inclusive=True)
    low_b, high_b = _range("step_size", step_size, low=0)
    step = max(1, (int(high_k) - int(low_k)) // 7) if high_k > low_k else 1
    k = _int(hp, prefix + "period", AdaptiveLossAlignment, "period", low_k, high_k, step)
    # The step size's own default is "auto" (the loss's safe step), not a number: KerasTuner
    # defaults to the range's lower end, the smallest step.
    beta = hp.Float(prefix + "step_size", min_value=low_b, max_value=high_b, sampling="log")
    return AdaptiveLossAlignment(validation_data, period=k, step_size=beta, **kwargs)


def related_loss(
    hp: Any,
    name: str,
    *,
    class_counts: Sequence[int] | None = None,
    prefix: str | None = None,
    **kwargs: Any,
) -> Any:
    """One of the related-loss family with its hyper-parameters tuned:

    - ``"poly"``: `PolyLoss` with ``epsilon`` in [-1, 5] (Poly-1);
    - ``"active_passive"``: `ActivePassiveLoss` with ``alpha`` in [0.1, 10] and ``beta`` in
      [0.01, 10] (log; the range holds the measured default 0.05, and the paper's 1);
    - ``"ldam"``: `LDAMLoss` with ``max_margin`` in [0.1, 1] and ``scale`` in [1, 30] (log);
      needs ``class_counts``;
    - ``"class_balanced"``: `ClassBalancedLoss` with ``beta`` in {0.9, 0.99, 0.999, 0.9999}
      and ``base`` in {crossentropy, focal}; needs ``class_counts``;
    - ``"anyloss"``: `AnyLoss` with the ``amplifier`` L in [5, 100] (log).

    Args:
        hp: the ``keras_tuner.HyperParameters`` of the trial.
        name: one of `RELATED_LOSSES`.
        class_counts: training samples per class (LDAM, class-balanced), e.g. from
            `keras_adaptive_loss.losses.imbalance.class_counts`.
        prefix: prepended to the hyper-parameter names; default ``name + "_"``.
        **kwargs: further arguments of the loss (``from_logits``, ``active``, ``metric``, ...).

    >>> import keras_tuner
    >>> import keras_adaptive_loss as kal
    >>> hp = keras_tuner.HyperParameters()
    >>> loss = kal.tuning.related_loss(hp, "ldam", class_counts=[90, 10])
    >>> sorted(hp.values), type(loss).__name__
    (['ldam_max_margin', 'ldam_scale'], 'LDAMLoss')
    """
    _check_hyper_parameters(hp, "related_loss")
    if name not in RELATED_LOSSES:
        raise ValueError(f"name must be one of {RELATED_LOSSES}; got {name!r}.")
    prefix = f"{name}_" if prefix is None else prefix
    if name in ("ldam", "class_balanced") and class_counts is None:
        raise ValueError(
            f"related_loss({name!r}) needs class_counts, e.g. "
            "kal.losses.imbalance.class_counts(y_train)."
        )

    def number(owner: type, argument: str, low: float, high: float, log: bool = False) -> Any:
        return _float(hp, prefix + argument, owner, argument, low, high, log=log)

    if name == "poly":
        return PolyLoss(epsilon=[number(PolyLoss, "epsilon", -1.0, 5.0)], **kwargs)
    if name == "active_passive":
        alpha = number(ActivePassiveLoss, "alpha", 0.1, 10.0, log=True)
        beta = number(ActivePassiveLoss, "beta", 0.01, 10.0, log=True)
        return ActivePassiveLoss(alpha=alpha, beta=beta, **kwargs)
    if name == "ldam":
        margin = number(LDAMLoss, "max_margin", 0.1, 1.0)
        scale = number(LDAMLoss, "scale", 1.0, 30.0, log=True)
        return LDAMLoss(class_counts, max_margin=margin, scale=scale, **kwargs)
    if name == "class_balanced":
        betas, bases = [0.9, 0.99, 0.999, 0.9999], ["crossentropy", "focal"]
        beta = hp.Choice(
            prefix + "beta", betas, default=_default_among(ClassBalancedLoss, "beta", betas)
        )
        base = hp.Choice(
            prefix + "base", bases, default=_default_among(ClassBalancedLoss, "base", bases)
        )
        return ClassBalancedLoss(class_counts, beta=beta, base=base, **kwargs)
    return AnyLoss(amplifier=number(AnyLoss, "amplifier", 5.0, 100.0, log=True), **kwargs)
