"""Keras layers of the package: `Sparsemax`, the activation that goes with `SparsemaxLoss`.

>>> import numpy as np
>>> import keras_adaptive_loss as kal
>>> np.asarray(kal.layers.Sparsemax()(np.array([[0.5, 0.3, -1.0]]))).round(3).tolist()
[[0.6, 0.4, 0.0]]
"""

from keras_adaptive_loss.losses.sparsemax import Sparsemax

__all__ = ["Sparsemax"]
