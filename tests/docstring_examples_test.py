"""Every ```python example in the package's docstrings runs (the ``>>>`` ones run as doctests).

An example continues the docstring's own ``>>>`` lines and names what its text describes — a
compiled ``model``, training data ``x`` and ``y`` — so each runs after those lines, in a
namespace with a small model and data of the right kind. Epoch counts are cut to 1.
"""

from __future__ import annotations

import ast
import doctest
import importlib
import re
from pathlib import Path

import keras
import numpy as np
import pytest
from keras import ops

import keras_adaptive_loss as kal

PACKAGE = Path(kal.__file__).parent
FENCE = re.compile(r"```python\n(.*?)```", re.DOTALL)


def _docstrings():
    for path in sorted(PACKAGE.rglob("*.py")):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if not isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef):
                continue
            doc = ast.get_docstring(node, clean=True)
            if doc and "```python" in doc:
                name = getattr(node, "name", "<module>")
                module = ".".join(("keras_adaptive_loss", *path.relative_to(PACKAGE).parts))
                module = module.removesuffix(".py").removesuffix(".__init__")
                yield pytest.param(module, doc, id=f"{path.relative_to(PACKAGE)}::{name}")


DOCSTRINGS = list(_docstrings())


def _classifier():
    return keras.Sequential([keras.Input((8,)), keras.layers.Dense(3, activation="softmax")])


def _namespace(module: str, code: str) -> dict:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(96, 8)).astype("float32")
    y = np.arange(96) % 3
    namespace = dict(vars(importlib.import_module(module)))  # as doctests see it
    namespace.update({"keras": keras, "kal": kal, "ops": ops, "np": np, "x": x, "y": y})
    namespace["build_my_model"] = _classifier
    namespace["model"] = _classifier()
    if "AveragePrecision" in code:  # a binary classifier with one logit
        namespace["model"] = keras.Sequential([keras.Input((8,)), keras.layers.Dense(1)])
        namespace["y"] = (y == 0).astype("float32")
    if "y_digit" in code:  # a model with two named outputs
        inputs = keras.Input((8,))
        digit = keras.layers.Dense(3, activation="softmax", name="digit")(inputs)
        angle = keras.layers.Dense(1, name="angle")(inputs)
        namespace["model"] = keras.Model(inputs, [digit, angle])
        namespace["y_digit"], namespace["y_angle"] = y, rng.normal(size=(96, 1))
    if "keras_tuner" in code:
        import keras_tuner

        namespace["keras_tuner"] = keras_tuner
    return namespace


@pytest.mark.slow
@pytest.mark.parametrize(("module", "doc"), DOCSTRINGS)
def test_docstring_example_runs(module, doc, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # KerasTuner and compare write into the working directory
    before = "".join(example.source for example in doctest.DocTestParser().get_examples(doc))
    for block in FENCE.findall(doc):
        code = re.sub(r"epochs=\d+", "epochs=1", block)
        namespace = _namespace(module, code)
        exec(compile(before + code, "<docstring example>", "exec"), namespace)


def test_every_fenced_example_is_found():
    assert len(DOCSTRINGS) == 12
