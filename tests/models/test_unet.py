"""The small U-Net: shapes, named layers, and learning the threshold masks of real CT slices through
the book's one training loop."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from cbmir_tf.data.lung import segmentation_pairs
from cbmir_tf.models.training import train
from cbmir_tf.models.unet import UNet, dice_bce_loss, predict_masks, preprocess_input


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
    watch_images, watch_masks = segmentation_pairs(lung_series.hu[25:40:4], 32, windows=1)
    keras.utils.set_random_seed(0)
    model = UNet(input_shape=(32, 32, 1), filters=4, depth=2)
    run = train(model, preprocess_input(images), masks, (preprocess_input(watch_images), watch_masks),
                loss=dice_bce_loss, metrics=(), optimizer="adam", learning_rate=3e-3, epochs=6, batch_size=4,
                patience=None)
    loss = run.history["loss"]
    assert loss[-1] < 0.9 * loss[0]
    assert set(run.history) == {"loss", "val_loss"}  # no accuracy metric for masks
    assert run.best_epoch == int(np.argmin(run.history["val_loss"])) + 1
    predicted = predict_masks(model, preprocess_input(images))
    assert predicted.shape == masks.shape and predicted.dtype == bool


def test_dice_bce_loss_on_real_masks(lung_series):
    _, masks = segmentation_pairs(lung_series.hu[30:34], 32, windows=1)
    target = masks[..., None].astype("float32")
    perfect = keras.ops.convert_to_numpy(dice_bce_loss(target, np.clip(target, 1e-6, 1 - 1e-6)))
    inverted = keras.ops.convert_to_numpy(dice_bce_loss(target, np.clip(1 - target, 1e-6, 1 - 1e-6)))
    assert perfect.shape == (4,) and (perfect < 0.01).all() and (inverted > 1.0).all()


def test_bad_input():
    with pytest.raises(ValueError, match="depth, filters and classes must be positive"):
        UNet(input_shape=(64, 64, 1), depth=0)
    with pytest.raises(ValueError, match="Received: weights='imagenet'"):
        UNet(weights="imagenet")
