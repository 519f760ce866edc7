"""What every model builder of the package shares: its argument checks, its input and its ending.

The builders follow ``keras.applications``: ``include_top``, ``weights``, ``input_tensor``,
``input_shape``, ``pooling``, ``classes``, ``classifier_activation`` and ``name``. Each builds
its own body between :func:`image_input` and :func:`finish_model`:

    inputs = image_input(input_shape, input_tensor)
    x = ...body...
    x = top_or_pooling(x, include_top=..., pooling=..., top=lambda x: ..., )
    return finish_model(inputs, x, input_tensor, name, weights)
"""

from __future__ import annotations

import os
from collections.abc import Callable

import keras

POOLINGS = (None, "avg", "max")


def check_builder_args(*, weights, input_shape, classes, include_top, pooling=None, min_side: int = 8,
                       allowed_weights: tuple = (None,)) -> None:
    """Validate the arguments every builder shares; raise a ``ValueError`` that names the value.

    Args:
        weights: `None`, one of ``allowed_weights`` (e.g. ``"imagenet"``) or the path of an
            existing weights file.
        input_shape: ``(height, width, channels)`` with sides of at least ``min_side``.
        classes: At least 2 when ``include_top``.
        include_top: Whether the classifier is built.
        pooling: `None`, ``"avg"`` or ``"max"``.
        min_side: Smallest accepted side. Defaults to 8.
        allowed_weights: Named weights the builder knows besides a file path. Defaults to ``(None,)``.
    """
    if not (weights in allowed_weights or (isinstance(weights, (str, os.PathLike)) and os.path.exists(weights))):
        names = ", ".join(repr(w) for w in allowed_weights)
        raise ValueError(f"weights must be {names} or the path of an existing weights file. Received: weights={weights!r}")
    if pooling not in POOLINGS:
        raise ValueError(f"pooling must be None, 'avg' or 'max'. Received: pooling={pooling!r}")
    if input_shape is None or len(input_shape) != 3 or min(input_shape[:2]) < min_side:
        raise ValueError(f"input_shape must be (height, width, channels) with sides of at least {min_side}. "
                         f"Received: input_shape={input_shape!r}")
    if include_top and int(classes) < 2:
        raise ValueError(f"classes must be at least 2. Received: classes={classes!r}")


def image_input(input_shape, input_tensor=None, name: str = "image"):
    """The model's image input: a new ``keras.Input`` of ``input_shape``, or ``input_tensor``."""
    return keras.Input(shape=tuple(input_shape), name=name) if input_tensor is None else input_tensor


def top_or_pooling(x, *, include_top: bool, pooling: str | None, top: Callable):
    """``top(x)`` when ``include_top``; else ``x`` globally average- or max-pooled, or as it is."""
    if include_top:
        return top(x)
    if pooling == "avg":
        return keras.layers.GlobalAveragePooling2D(name="avg_pool")(x)
    if pooling == "max":
        return keras.layers.GlobalMaxPooling2D(name="max_pool")(x)
    return x


def classifier(x, classes: int, classifier_activation: str | None = "softmax", name: str = "predictions",
               **dense_kwargs):
    """The last layer of every classifier: ``Dense(classes)`` named ``"predictions"``."""
    return keras.layers.Dense(int(classes), activation=classifier_activation, name=name, **dense_kwargs)(x)


def finish_model(inputs, outputs, input_tensor, name: str, weights=None) -> keras.Model:
    """The shared ending: the `keras.Model` from the source inputs, with a weights file loaded if given."""
    source = keras.utils.get_source_inputs(inputs) if input_tensor is not None else inputs
    model = keras.Model(source, outputs, name=name)
    if weights is not None and weights != "imagenet":
        model.load_weights(weights)
    return model
