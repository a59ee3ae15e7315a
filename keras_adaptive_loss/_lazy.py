"""Lazy public names (PEP 562) and the registration of the package's classes with Keras.

``import keras_adaptive_loss`` imports neither Keras nor TensorFlow: a public name imports its
module when it is first used. Loading a saved model needs the package's classes registered
with Keras before `keras.models.load_model` reads the file, so `register_with_keras` imports
every module that registers one, as soon as Keras itself is imported: at once if Keras is
already imported, else right after ``import keras`` finishes.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.util
import sys
from collections.abc import Callable, Mapping
from typing import Any

from keras_adaptive_loss import names

__all__ = ["check_backend", "lazy_names", "register_when_keras_is_imported"]

_registered = False


def check_backend() -> None:
    """Raises `ImportError` unless Keras runs on its TensorFlow backend."""
    import keras

    if keras.backend.backend() != "tensorflow":
        raise ImportError(
            "keras-adaptive-loss runs on Keras's TensorFlow backend (it uses TensorFlow's custom "
            "gradients, tf.distribute and tf.data), but Keras is running on "
            f"{keras.backend.backend()!r}. Set KERAS_BACKEND=tensorflow before Python imports "
            'keras (or "backend": "tensorflow" in ~/.keras/keras.json).'
        )


def lazy_names(
    package: str,
    attributes: Mapping[str, str],
    modules: Mapping[str, str] | None = None,
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """``__getattr__`` and ``__dir__`` for ``package``: ``attributes`` maps a public name to
    the module that defines it, ``modules`` a public name to a module."""
    modules = dict(modules or {})

    def get_attribute(name: str) -> Any:
        if name in attributes:
            check_backend()
            value = getattr(importlib.import_module(attributes[name]), name)
        elif name in modules:
            check_backend()
            value = importlib.import_module(modules[name])
        else:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        setattr(sys.modules[package], name, value)
        return value

    def names_of_package() -> list[str]:
        return sorted(set(vars(sys.modules[package])) | set(attributes) | set(modules))

    return get_attribute, names_of_package


def register_with_keras() -> None:
    """Imports every module that registers a class with Keras (for `load_model`), and the
    string names ``compile(loss="keras_adaptive_loss>PolyLoss")`` resolves."""
    global _registered
    if _registered:
        return
    import keras

    if keras.backend.backend() != "tensorflow":
        return  # the package cannot run there; using one of its names says why
    _registered = True
    for module in sorted({*names.LOSSES.values(), *names.CALLBACKS.values(), *names.SERIALIZABLES}):
        importlib.import_module(module)
    from keras_adaptive_loss.losses import lookup
    from keras_adaptive_loss.private_api import register_loss_names

    classes = {
        name: cls
        for name, cls in lookup.loss_classes().items()
        if name[0].isupper() and not lookup.required_arguments(cls)
    }
    register_loss_names(classes)


class _AfterKerasImport(importlib.abc.MetaPathFinder):
    """Finds ``keras`` as the other finders do, and registers the package once it is loaded."""

    def find_spec(self, fullname: str, path: Any, target: Any = None) -> Any:
        if fullname != "keras":
            return None
        sys.meta_path.remove(self)
        spec = importlib.util.find_spec("keras")
        if spec is None or spec.loader is None:
            return spec
        load = spec.loader.exec_module

        def exec_module(module: Any) -> None:
            load(module)
            register_with_keras()

        spec.loader.exec_module = exec_module  # type: ignore[method-assign]
        return spec


def register_when_keras_is_imported() -> None:
    """`register_with_keras` now if Keras is imported, else right after it is."""
    if "keras" in sys.modules:
        register_with_keras()
    elif not any(isinstance(finder, _AfterKerasImport) for finder in sys.meta_path):
        sys.meta_path.insert(0, _AfterKerasImport())
