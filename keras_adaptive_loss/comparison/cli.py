"""The ``keras-adaptive-loss`` console script, reachable from the package.

The script itself is the top-level module `keras_adaptive_loss_cli`, so that ``--help``,
``--version`` and ``list`` run without importing TensorFlow; this module re-exports it for
``python -m keras_adaptive_loss`` and for code that imports it from here.
"""

from keras_adaptive_loss_cli import PROGRAM, main

__all__ = ["PROGRAM", "main"]
