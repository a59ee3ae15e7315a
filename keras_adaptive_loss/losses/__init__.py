"""Losses: the adaptive losses, the related-loss family and the candidate-loss registry.

`get`, `serialize` and `deserialize` resolve the package's loss classes as Keras's own do
(`keras_adaptive_loss.losses.lookup`); `get_candidate`, `serialize_candidate`,
`deserialize_candidate` and `available` are the per-sample candidate registry
(`keras_adaptive_loss.losses.registry`). Names resolve on first use.

>>> import keras_adaptive_loss as kal
>>> len(kal.losses.available()), "poly1" in kal.losses.available()
(19, True)
"""

from keras_adaptive_loss import _lazy, names

_MODULES = {
    name: module for name, module in names.LOSS_HELPERS.items() if module.endswith("." + name)
}
__getattr__, __dir__ = _lazy.lazy_names(
    __name__,
    {**names.LOSSES, **{k: v for k, v in names.LOSS_HELPERS.items() if k not in _MODULES}},
    _MODULES,
)

__all__ = sorted([*names.LOSSES, *names.LOSS_HELPERS], key=lambda name: (name[0].islower(), name))
