"""InRes-Net of paper 001: module shapes, named feature layers, the shared builder ending, binary codes,
and SGD at a constant rate through the book's one training loop."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from cbmir_tf.models.inres_net import (InResNet, binary_codes, extract_features, inred_block, inv2_block,
                                       preprocess_input)
from cbmir_tf.models.training import train


@pytest.mark.parametrize("side, channels", [(32, 16), (16, 64)])
def test_inv2_halves_the_side_and_doubles_the_channels(side, channels):
    inputs = keras.Input((side, side, channels))
    out = inv2_block(inputs, "probe")
    assert tuple(out.shape) == (None, side // 2, side // 2, 2 * channels)
    # paths: max pool (N), conv N/4, conv N/4, conv N/2
    widths = [int(keras.Model(inputs, keras.Model(inputs, out).get_layer(n).output).output.shape[-1])
              for n in ("probe_pool", "probe_a_relu", "probe_b2_relu", "probe_c3_relu")]
    assert widths == [channels, channels // 4, channels // 4, channels // 2]
    assert tuple(inred_block(inputs, "res").shape) == (None, side, side, channels)


def test_named_feature_layers_and_lsh_like_hash_init():
    model = InResNet(input_shape=(64, 64, 1), classes=3, hash_bits=32, fc1_units=64, stem_filters=16, stages=2,
                     seed=0)
    shapes = {n: tuple(model.get_layer(n).output.shape) for n in ("fc1", "hash", "fc3", "inv2_2_concat")}
    assert shapes == {"fc1": (None, 64), "hash": (None, 32), "fc3": (None, 3), "inv2_2_concat": (None, 8, 8, 64)}
    assert model.get_layer("hash").activation.__name__ == "sigmoid"
    kernel = keras.ops.convert_to_numpy(model.get_layer("hash").kernel)
    assert abs(kernel.std() * np.sqrt(64) - 1.0) < 0.2 and abs(kernel.mean()) < 0.05  # Gaussian projection
    fc1 = keras.ops.convert_to_numpy(model.get_layer("fc1").kernel)
    assert abs(fc1.std() - 0.01) < 0.002  # the paper's N(0, 0.01)
    with pytest.raises(ValueError, match=r"Received: input_shape=\(60, 60, 1\)"):
        InResNet(input_shape=(60, 60, 1), stages=2)
    with pytest.raises(ValueError, match="Received: pooling='mean'"):
        InResNet(include_top=False, pooling="mean")
    with pytest.raises(ValueError, match="Received: weights='imagenet'"):
        InResNet(weights="imagenet")


def test_without_top_and_from_an_input_tensor():
    pooled = InResNet(include_top=False, pooling="avg", input_shape=(32, 32, 1), stem_filters=8, stages=1)
    assert pooled.output_shape == (None, 16) and "fc1" not in [layer.name for layer in pooled.layers]
    tensor = keras.Input((32, 32, 1))
    model = InResNet(input_tensor=tensor, input_shape=(32, 32, 1), classes=3, stem_filters=8, stages=1,
                     fc1_units=16, hash_bits=8)
    assert model.inputs[0] is tensor and model.output_shape == (None, 3)


def test_codes_are_binary_and_deterministic_and_sgd_rate_stays_constant(small_benchmark):
    images, labels = small_benchmark.images[::3][:24], small_benchmark.labels[::3][:24]  # real, four codes
    assert len(np.unique(labels)) == 4
    x = preprocess_input(images, 32)
    model = InResNet(input_shape=(32, 32, 1), classes=4, hash_bits=16, fc1_units=32, stem_filters=8, stages=1,
                     init_stddev=None, seed=0)
    run = train(model, x, labels, optimizer="sgd", learning_rate=0.01, epochs=1, batch_size=8, patience=None)
    assert run.epochs_run == 1 and np.isfinite(run.history["loss"]).all()
    assert isinstance(model.optimizer, keras.optimizers.SGD)
    assert float(keras.ops.convert_to_numpy(model.optimizer.learning_rate)) == pytest.approx(0.01)
    first, second = extract_features(model, x), extract_features(model, x)
    codes = binary_codes(first["hash"])
    assert codes.dtype == bool and codes.shape == (24, 16)
    np.testing.assert_array_equal(codes, binary_codes(second["hash"]))
    np.testing.assert_array_equal(codes, first["hash"] >= 0.5)
    assert len(np.unique(codes, axis=0)) > 1  # the random projection separates real images
    np.testing.assert_allclose(first["fc3"].sum(1), 1.0, rtol=1e-5)
    with pytest.raises(ValueError, match="Got shape"):
        binary_codes(np.zeros(5))
