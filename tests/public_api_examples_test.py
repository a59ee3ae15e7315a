"""Every public class and function has an example in its docstring (a doctest or a ```python
block, both run by the test suite).

Public: what the package's namespaces export (``__all__`` of ``kal``, ``kal.losses``,
``kal.callbacks``, ... and of the modules they export), plus the modules the API reference
renders whole (``docs/api/*.md``).
"""

from __future__ import annotations

import importlib
import inspect
import re
import types
from pathlib import Path

import keras_adaptive_loss as kal

ROOT = Path(kal.__file__).parent.parent
NAMESPACES = [
    "keras_adaptive_loss",
    "keras_adaptive_loss.losses",
    "keras_adaptive_loss.callbacks",
    "keras_adaptive_loss.comparison",
    "keras_adaptive_loss.ala.controllers",
    "keras_adaptive_loss.ala",
    "keras_adaptive_loss.tuning",
    "keras_adaptive_loss.distribute",
    "keras_adaptive_loss.datasets",
    "keras_adaptive_loss.schedules",
    "keras_adaptive_loss.layers",
    "keras_adaptive_loss.private_api",
]


def _documented_modules() -> list[str]:
    """Modules the API reference renders whole (``::: module`` lines of docs/api)."""
    names = []
    for page in sorted((ROOT / "docs" / "api").glob("*.md")):
        names += re.findall(r"^::: (keras_adaptive_loss[\w.]*)\s*$", page.read_text(), re.M)
    return [name for name in names if not name.rsplit(".", 1)[-1][:1].isupper()]


def public_objects() -> dict[str, object]:
    """Qualified name -> object, for every public class and function (first name found)."""
    found: dict[int, tuple[str, object]] = {}
    queue, done = NAMESPACES + _documented_modules(), set()
    while queue:
        name = queue.pop(0)
        if name in done:
            continue
        done.add(name)
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError:  # a function rendered by its module path
            continue
        for attribute in getattr(module, "__all__", []):
            obj = getattr(module, attribute)
            if isinstance(obj, types.ModuleType):
                if obj.__name__.startswith("keras_adaptive_loss"):
                    queue.append(obj.__name__)
            elif inspect.isclass(obj) or inspect.isfunction(obj):
                found.setdefault(id(obj), (f"{name}.{attribute}", obj))
    return dict(found.values())


def test_the_public_api_is_found():
    names = public_objects()
    assert len(names) > 100
    assert "keras_adaptive_loss.StochasticLoss" in names
    assert "keras_adaptive_loss.losses.registry.per_sample_values" in names  # a documented module


def test_every_public_class_and_function_has_an_example():
    missing = [
        name
        for name, obj in public_objects().items()
        if not any(marker in (obj.__doc__ or "") for marker in (">>>", "```python"))
    ]
    assert not missing, f"{len(missing)} public names without an example: {missing}"
