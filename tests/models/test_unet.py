"""The small U-Net: shapes, named layers, and learning the threshold masks of real CT slices."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from cbmir_tf.data.lung import segmentation_pairs
from cbmir_tf.models.unet import UNet, predict_masks, preprocess_input, train_unet


def test_output_shape_and_layer_names():
    model = UNet(input_shape=(64, 64, 1), filters=4, depth=3)
    assert model.output_shape == (None, 64, 64, 1)
    assert tuple(model.get_layer("bottleneck_2_relu").output.shape) == (None, 8, 8, 32)
    assert tuple(model.get_layer("up1_concat").output.shape) == (None, 64, 64, 8)
    assert model.get_layer("mask").activation.__name__ == "sigmoid"
    with pytest.raises(ValueError, match=r"Received: input_shape=\(60, 60, 1\)"):
        UNet(input_shape=(60, 60, 1), depth=3)


def test_a_few_steps_lower_the_loss_on_real_slices(lung_series):
    images, masks = segmentation_pairs(lung_series.hu[24:40:2], 32, windows=1)
    keras.utils.set_random_seed(0)
    model = UNet(input_shape=(32, 32, 1), filters=4, depth=2)
    history = train_unet(model, preprocess_input(images), masks, epochs=6, batch_size=4, learning_rate=3e-3,
                         verbose=0)
    loss = history.history["loss"]
    assert loss[-1] < 0.9 * loss[0]
    predicted = predict_masks(model, preprocess_input(images))
    assert predicted.shape == masks.shape and predicted.dtype == bool
    with pytest.raises(ValueError, match="equal count"):
        train_unet(model, preprocess_input(images), masks[:3], epochs=1)
