"""A small U-Net that learns paper 001's threshold lung masks from (slice, mask) pairs.

Paper 001 first masks the lungs by a -400 HU threshold, then trains a U-Net on the
(slice, mask) pairs so that new slices are masked in one forward pass (its Fig. 7).
This U-Net has ``depth`` encoder stages of two 3 x 3 convolutions (batch norm, ReLU)
and 2 x 2 max pooling, a bottleneck, and mirrored decoder stages with 2 x 2
transposed convolutions and skip connections; a 1 x 1 convolution with a sigmoid gives
the lung probability of each pixel.

Reference: Ronneberger et al., "U-Net", MICCAI 2015; Qin et al. (paper 001), Section 3.1 and Fig. 7.
"""

from __future__ import annotations

import keras
import numpy as np

from cbmir_tf.data.preprocess import to_model_input
from cbmir_tf.models.common import check_builder_args, finish_model, image_input


def conv_block(x, filters: int, name: str):
    """Two 3 x 3 convolutions, each with batch normalisation and ReLU."""
    for i in (1, 2):
        x = keras.layers.Conv2D(filters, 3, padding="same", use_bias=False, name=f"{name}_{i}_conv")(x)
        # momentum 0.9: the moving statistics settle within the few hundred steps of a short CPU run
        x = keras.layers.BatchNormalization(momentum=0.9, name=f"{name}_{i}_bn")(x)
        x = keras.layers.Activation("relu", name=f"{name}_{i}_relu")(x)
    return x


def UNet(weights: str | None = None, input_tensor=None, input_shape: tuple[int, int, int] = (128, 128, 1),
         classes: int = 1, classifier_activation: str | None = "sigmoid", name: str = "unet", *,
         filters: int = 16, depth: int = 3):
    """Instantiate a small U-Net for binary (lung) segmentation.

    Reference: Ronneberger et al., MICCAI 2015; Qin et al. (paper 001), Fig. 7.

    The model takes grey images with values 0..255 and rescales them itself.

    Args:
        weights: `None` (random initialisation) or the path of a ``.weights.h5`` file. Defaults to `None`.
        input_tensor: Optional Keras tensor to use as the image input.
        input_shape: ``(height, width, channels)``; height and width divisible by ``2 ** depth``.
            Defaults to ``(128, 128, 1)``.
        classes: Output channels. Defaults to 1 (lung probability).
        classifier_activation: Activation of the output layer ``"mask"``. Defaults to ``"sigmoid"``.
        name: Model name. Defaults to ``"unet"``.
        filters: Channels of the first stage; doubled at each stage. Defaults to 16.
        depth: Number of pooling stages. Defaults to 3.

    Returns:
        A `keras.Model` mapping ``(n, h, w, c)`` to ``(n, h, w, classes)``.
    """
    if int(depth) < 1 or int(filters) < 1 or int(classes) < 1:
        raise ValueError(f"depth, filters and classes must be positive. Received: depth={depth!r}, "
                         f"filters={filters!r}, classes={classes!r}")
    step = 2 ** int(depth)
    # the mask head is not a classifier top: classes may be 1
    check_builder_args(weights=weights, input_shape=input_shape, classes=classes, include_top=False,
                       min_side=step)
    if input_shape[0] % step or input_shape[1] % step:
        raise ValueError(f"input_shape must have sides divisible by 2**depth = {step}. "
                         f"Received: input_shape={input_shape!r}")
    inputs = image_input(input_shape, input_tensor)
    x = keras.layers.Rescaling(1.0 / 255.0, name="rescale")(inputs)
    skips = []
    for level in range(int(depth)):
        x = conv_block(x, filters * 2 ** level, name=f"down{level + 1}")
        skips.append(x)
        x = keras.layers.MaxPooling2D(2, name=f"down{level + 1}_pool")(x)
    x = conv_block(x, filters * 2 ** int(depth), name="bottleneck")
    for level in reversed(range(int(depth))):
        x = keras.layers.Conv2DTranspose(filters * 2 ** level, 2, strides=2, name=f"up{level + 1}_upconv")(x)
        x = keras.layers.Concatenate(name=f"up{level + 1}_concat")([x, skips[level]])
        x = conv_block(x, filters * 2 ** level, name=f"up{level + 1}")
    outputs = keras.layers.Conv2D(classes, 1, activation=classifier_activation, name="mask")(x)
    return finish_model(inputs, outputs, input_tensor, name, weights)


# keras.applications keeps a preprocess_input beside each model; ours is the shared one.
preprocess_input = to_model_input


def dice_bce_loss(y_true, y_pred, smooth: float = 1.0):
    """Binary cross-entropy plus the soft Dice loss ``1 - (2 |A B| + s) / (|A| + |B| + s)`` per image.

    The Dice term keeps the small lung area from being ignored at the start of training. Masks
    ``(n, h, w)`` and probabilities ``(n, h, w, 1)`` both work (Keras brings them to one rank).
    """
    y_true = keras.ops.cast(y_true, y_pred.dtype)
    axes = tuple(range(1, len(y_pred.shape)))  # every axis but the batch
    inter = keras.ops.sum(y_true * y_pred, axis=axes)
    total = keras.ops.sum(y_true, axis=axes) + keras.ops.sum(y_pred, axis=axes)
    soft_dice = 1.0 - (2.0 * inter + smooth) / (total + smooth)
    bce = keras.ops.mean(keras.ops.binary_crossentropy(y_true, y_pred), axis=axes)
    return bce + soft_dice


def predict_masks(model: keras.Model, images: np.ndarray, threshold: float = 0.5, batch_size: int = 16) -> np.ndarray:
    """Bool masks ``(n, h, w)`` where the predicted lung probability exceeds ``threshold``."""
    probabilities = model.predict(np.asarray(images), batch_size=batch_size, verbose=0)
    return probabilities[..., 0] > threshold
