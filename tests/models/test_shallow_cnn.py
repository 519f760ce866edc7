"""The shallow CNN of paper 003: layers by name, deterministic codes, weights, and learning on real images."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from cbmir_tf.models.shallow_cnn import ShallowCNN, cnn_code_model, preprocess_input
from cbmir_tf.models.training import train as train_model


@pytest.fixture(scope="module")
def model():
    keras.utils.set_random_seed(0)
    return ShallowCNN(input_shape=(128, 128, 1), classes=28)


def test_table1_layers_and_shapes(model):
    expected = {"block1_conv": (None, 128, 128, 32), "block1_pool": (None, 64, 64, 32),
                "block2_conv": (None, 64, 64, 64), "block3_conv": (None, 32, 32, 128),
                "block3_pool": (None, 16, 16, 128), "fc1": (None, 1000), "fc2": (None, 1000),
                "predictions": (None, 28)}
    for name, shape in expected.items():
        assert tuple(model.get_layer(name).output.shape) == shape, name
    assert model.get_layer("block1_conv").kernel_size == (3, 3)
    assert model.get_layer("fc1_dropout").rate == 0.5 and model.get_layer("fc2_dropout").rate == 0.5
    assert model.get_layer("fc2").activation.__name__ == "linear"  # the code is read before the ReLU
    assert isinstance(model.get_layer("random_shift"), keras.layers.RandomTranslation)


def test_paper_96_input_and_headless_pooling():
    small = ShallowCNN(input_shape=(96, 96, 1), classes=5)
    assert tuple(small.get_layer("block3_pool").output.shape) == (None, 12, 12, 128)
    headless = ShallowCNN(include_top=False, input_shape=(96, 96, 1), pooling="avg")
    assert headless.output_shape == (None, 128)


def test_code_is_pre_relu_1000_wide_and_deterministic(model, ct_slices):
    x = preprocess_input(ct_slices[:8])
    tap = cnn_code_model(model)
    a, b = tap.predict_on_batch(x), tap.predict_on_batch(x)
    assert a.shape == (8, 1000)
    np.testing.assert_array_equal(a, b)  # the random shift and dropout are off at inference
    assert (a < 0).any() and (a > 0).any()  # before the ReLU, both signs occur


def test_weights_path_round_trip(model, ct_slices, tmp_path):
    path = tmp_path / "shallow.weights.h5"
    model.save_weights(path)
    again = ShallowCNN(input_shape=(128, 128, 1), classes=28, weights=str(path))
    x = preprocess_input(ct_slices[:4])
    np.testing.assert_allclose(again.predict_on_batch(x), model.predict_on_batch(x), rtol=1e-6)


def test_bad_arguments_raise_with_the_value():
    with pytest.raises(ValueError, match="Received: pooling='mean'"):
        ShallowCNN(include_top=False, pooling="mean")
    with pytest.raises(ValueError, match="Received: weights='imagenet'"):
        ShallowCNN(weights="imagenet")
    with pytest.raises(ValueError, match="Received: dropout=1.0"):
        ShallowCNN(dropout=1.0)
    with pytest.raises(ValueError, match="Received: classes=1"):
        ShallowCNN(classes=1)
    with pytest.raises(ValueError, match="has no layer 'fc9'"):
        cnn_code_model(ShallowCNN(input_shape=(32, 32, 1), classes=3), "fc9")


def test_a_few_training_steps_lower_the_loss_on_real_images(small_benchmark):
    train = small_benchmark.take_split("train")  # 4 real codes: 2 of chest radiographs, 2 of breast US
    x, y = preprocess_input(train.images, 48), np.unique(train.labels, return_inverse=True)[1]
    assert len(x) == 40 and np.bincount(y).tolist() == [10] * 4
    keras.utils.set_random_seed(0)
    net = ShallowCNN(input_shape=(48, 48, 1), classes=4, code_bits=128, dropout=0.2)
    net.compile(loss="sparse_categorical_crossentropy")
    before = net.evaluate(x, y, verbose=0, return_dict=True)["loss"]
    run = train_model(net, x, y, epochs=5, batch_size=8, seed=0)
    after = net.evaluate(x, y, verbose=0, return_dict=True)["loss"]
    assert run.epochs_run == 5 and len(run.history["loss"]) == 5
    assert after < 0.9 * before
