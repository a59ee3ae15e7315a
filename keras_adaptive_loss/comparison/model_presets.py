"""Model presets of `kal.compare`: ``mlp``, ``cnn1d`` and ``resnet`` (small, for images)."""

from __future__ import annotations

from collections.abc import Callable

import keras
import numpy as np

from keras_adaptive_loss import names

__all__ = ["MODELS", "build_model"]


def _mlp(num_features: int, num_classes: int, image_shape: tuple | None) -> keras.Model:
    """One hidden ReLU layer of 128 units and a softmax output."""
    return keras.Sequential(
        [
            keras.Input((num_features,)),
            keras.layers.Dense(128, activation="relu"),
            keras.layers.Dense(num_classes, activation="softmax"),
        ],
        name="mlp",
    )


def _cnn1d(num_features: int, num_classes: int, image_shape: tuple | None) -> keras.Model:
    """Two 1-D convolutions over the feature vector read as a sequence (MNIST-1D style)."""
    return keras.Sequential(
        [
            keras.Input((num_features,)),
            keras.layers.Reshape((num_features, 1)),
            keras.layers.Conv1D(16, 5, padding="same", activation="relu"),
            keras.layers.MaxPooling1D(2, padding="same"),
            keras.layers.Conv1D(32, 5, padding="same", activation="relu"),
            keras.layers.GlobalAveragePooling1D(),
            keras.layers.Dense(num_classes, activation="softmax"),
        ],
        name="cnn1d",
    )


def _residual_block(x, filters: int, stride: int):
    shortcut = x
    y = keras.layers.Conv2D(filters, 3, strides=stride, padding="same", use_bias=False)(x)
    y = keras.layers.BatchNormalization(momentum=0.9)(y)
    y = keras.layers.ReLU()(y)
    y = keras.layers.Conv2D(filters, 3, padding="same", use_bias=False)(y)
    y = keras.layers.BatchNormalization(momentum=0.9)(y)
    if stride != 1 or shortcut.shape[-1] != filters:
        shortcut = keras.layers.Conv2D(filters, 1, strides=stride, use_bias=False)(shortcut)
        shortcut = keras.layers.BatchNormalization(momentum=0.9)(shortcut)
    return keras.layers.ReLU()(keras.layers.Add()([y, shortcut]))


def _resnet(num_features: int, num_classes: int, image_shape: tuple | None) -> keras.Model:
    """A small ResNet: a 3x3 stem (16), residual blocks of 16 and 32 filters, global pooling."""
    if image_shape is None:
        raise ValueError(
            "The 'resnet' model preset needs image data (digits or a TFDS image dataset); this "
            "dataset has flat features. Use model 'mlp' or 'cnn1d'."
        )
    inputs = keras.Input((num_features,))
    x = keras.layers.Reshape(tuple(image_shape))(inputs)
    x = keras.layers.Conv2D(16, 3, padding="same", use_bias=False)(x)
    x = keras.layers.BatchNormalization(momentum=0.9)(x)
    x = keras.layers.ReLU()(x)
    x = _residual_block(x, 16, 1)
    x = _residual_block(x, 32, 2)
    x = keras.layers.GlobalAveragePooling2D()(x)
    outputs = keras.layers.Dense(num_classes, activation="softmax")(x)
    return keras.Model(inputs, outputs, name="resnet")


_BUILDERS = {"mlp": _mlp, "cnn1d": _cnn1d, "resnet": _resnet}

#: Model preset name (`keras_adaptive_loss.names.MODELS`) -> builder.
MODELS: dict[str, Callable[[int, int, tuple | None], keras.Model]] = {
    name: _BUILDERS[name] for name in names.MODELS
}


def build_model(
    model: str | Callable[..., keras.Model],
    num_features: int,
    num_classes: int,
    image_shape: tuple | None = None,
) -> keras.Model:
    """Builds a preset by name, or calls a user builder ``model(input_shape, num_classes)``.

    Every model takes flat features ``[batch, num_features]`` and outputs class probabilities
    ``[batch, num_classes]`` (softmax), which is what every loss of `kal.compare` expects.

    >>> model = build_model("mlp", num_features=8, num_classes=3)
    >>> model.output_shape, model.layers[-1].activation.__name__
    ((None, 3), 'softmax')
    """
    if isinstance(model, str):
        if model not in MODELS:
            raise ValueError(f"Unknown model {model!r}; presets: {', '.join(MODELS)}.")
        return MODELS[model](num_features, num_classes, image_shape)
    if not callable(model):
        raise ValueError(
            "model must be a preset name or a builder (input_shape, num_classes) -> keras.Model; "
            f"got {model!r}."
        )
    built = model((num_features,), num_classes)
    if not isinstance(built, keras.Model):
        raise ValueError(f"The model builder must return a keras.Model; it returned {built!r}.")
    shape = tuple(built(np.zeros((2, num_features), "float32")).shape)
    if shape != (2, num_classes):
        raise ValueError(
            "The model builder must return a model with output [batch, num_classes] of class "
            f"probabilities (softmax), here [batch, {num_classes}]; on a batch of 2 its output "
            f"has shape {shape}."
        )
    return built
