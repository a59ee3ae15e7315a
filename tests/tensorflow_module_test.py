"""TensorFlow is imported in one internal module; the losses compute with `keras.ops`."""

from __future__ import annotations

import ast
from pathlib import Path

import keras_adaptive_loss as kal

PACKAGE = Path(kal.__file__).parent
#: The internal module; `kal.distribute`, whose strategies are TensorFlow's by nature; and the
#: CLI, which imports TensorFlow early only to quiet its start-up log.
ALLOWED = {"_tensorflow.py", "distribute.py", "cli.py"}


def _imports_tensorflow(path: Path) -> bool:
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            names = [node.module or ""]
        else:
            continue
        if any(name == "tensorflow" or name.startswith("tensorflow.") for name in names):
            return True
    return False


def test_only_the_internal_module_imports_tensorflow():
    importing = {
        str(path.relative_to(PACKAGE))
        for path in PACKAGE.rglob("*.py")
        if _imports_tensorflow(path)
    }
    assert importing == ALLOWED


def test_the_check_sees_an_import(tmp_path):
    module = tmp_path / "module.py"
    module.write_text("def f():\n    from tensorflow.python import x\n")
    assert _imports_tensorflow(module)
    module.write_text("import tensorflow_datasets as tfds\n")
    assert not _imports_tensorflow(module)
