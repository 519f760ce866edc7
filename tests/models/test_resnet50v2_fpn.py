"""ResNet50V2-FPN of paper 000 and its baselines: pyramid shapes, feature length, determinism, learning, saving."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from cbmir_tf.models.baselines import BackboneClassifier, build_network
from cbmir_tf.models.resnet50v2_fpn import (
    ResNet50V2FPN,
    extract_features,
    extract_layers,
    feature_extractor,
    preprocess_input,
)
from cbmir_tf.models.training import load_model, save_model, train


@pytest.mark.parametrize("side", [64, 96, 128])
def test_pyramid_levels_have_strides_4_to_32(side):
    model = ResNet50V2FPN(input_shape=(side, side, 1), classes=5, pyramid_channels=32, level_dim=8)
    # By hand: the stem halves twice (side / 4); ResNet v2 halves in the last block of stages 2-4.
    expected = {"P2": side // 4, "P3": side // 8, "P4": side // 16, "P5": side // 32}
    for level, cells in expected.items():
        assert tuple(model.get_layer(level).output.shape) == (None, cells, cells, 32), (side, level)
        assert tuple(model.get_layer(f"{level}_vector").output.shape) == (None, 8)
    taps = model.get_layer("resnet50v2_c2_c5")
    assert {k: tuple(v.shape) for k, v in taps.output.items()} == {
        "P2": (None, side // 4, side // 4, 256), "P3": (None, side // 8, side // 8, 512),
        "P4": (None, side // 16, side // 16, 1024), "P5": (None, side // 32, side // 32, 2048)}
    assert model.get_layer("fpn_P4_lateral").kernel_size == (1, 1) and model.get_layer("P4").kernel_size == (3, 3)
    assert tuple(model.get_layer("features").output.shape) == (None, 4 * 8)
    assert model.output_shape == (None, 5)


def test_features_have_levels_times_level_dim_and_are_deterministic(ct_slices):
    keras.utils.set_random_seed(0)
    model = ResNet50V2FPN(input_shape=(64, 64, 1), classes=4, levels=("P3", "P5"), level_dim=16,
                          pyramid_channels=32, dropout=0.5)
    extractor = feature_extractor(model)
    a = extract_features(extractor, ct_slices[:6], batch_size=4)  # 128 px images resized to 64
    b = extract_features(extractor, ct_slices[:6], batch_size=6)
    assert a.shape == (6, 2 * 16) and a.dtype == np.float32
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)  # dropout is off at inference
    assert np.ptp(a, axis=0).max() > 0  # different images give different vectors
    parts = extract_layers(model, ct_slices[:6], ["P3_vector"])
    np.testing.assert_allclose(parts["P3_vector"], a[:, :16], rtol=1e-5, atol=1e-6)  # P3 comes first in "features"
    probs = extract_features(feature_extractor(model, "softmax"), ct_slices[:6])
    assert probs.shape == (6, 4)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-5)


def test_baselines_share_the_head():
    for backbone, dim in (("vgg16", 24), ("resnet50", 16)):
        model = BackboneClassifier(backbone, input_shape=(64, 64, 1), classes=3, feature_dim=dim)
        assert tuple(model.get_layer("features").output.shape) == (None, dim)
        assert model.get_layer("predictions").activation.__name__ == "softmax"
        assert model.get_layer(backbone).output_shape[1:3] == (2, 2)  # stride 32
    full = build_network("resnet50v2_fpn", input_shape=(64, 64, 1), classes=3, feature_dim=64)
    assert tuple(full.get_layer("features").output.shape) == (None, 64)  # 4 levels x 16 = baselines' length


def test_a_few_training_steps_lower_the_loss_on_real_images(small_benchmark):
    split = small_benchmark.take_split("train")
    codes = sorted(set(split.codes))  # 4 real codes: chest radiographs and breast ultrasound
    keep = np.concatenate([np.flatnonzero(split.codes == c)[:3] for c in codes])  # 3 images each
    x, y = preprocess_input(split.images[keep], 32), np.unique(split.labels[keep], return_inverse=True)[1]
    keras.utils.set_random_seed(0)
    model = ResNet50V2FPN(input_shape=(32, 32, 1), classes=4, pyramid_channels=32, level_dim=8, dropout=0.0)
    loss = keras.losses.SparseCategoricalCrossentropy()
    before = float(loss(y, model(x, training=True)))  # batch statistics: BN's moving averages lag behind
    run = train(model, x, y, epochs=3, batch_size=12, learning_rate=1e-3, seed=0, run_eagerly=True)  # three steps
    after = float(loss(y, model(x, training=True)))
    assert run.epochs_run == 3 and run.images_seen == 3 * len(x) and run.images_per_s > 0
    assert after < 0.8 * before, (before, after)


def test_save_load_round_trip_gives_identical_features(ct_slices, tmp_path):
    keras.utils.set_random_seed(1)
    model = ResNet50V2FPN(input_shape=(32, 32, 1), classes=3, pyramid_channels=16, level_dim=8)
    path = save_model(model, tmp_path / "fpn.keras", {"input_size": 32, "levels": ["P2", "P3", "P4", "P5"]})
    again, params = load_model(path)
    assert params["input_size"] == 32
    x = ct_slices[:4]
    np.testing.assert_array_equal(extract_features(feature_extractor(again), x),
                                  extract_features(feature_extractor(model), x))


def test_bad_arguments_raise_with_the_value():
    with pytest.raises(ValueError, match=r"Received: levels=\('P6',\)"):
        ResNet50V2FPN(levels=("P6",))
    with pytest.raises(ValueError, match=r"Received: input_shape=\(100, 100, 1\)"):
        ResNet50V2FPN(input_shape=(100, 100, 1))
    with pytest.raises(ValueError, match="Received: backbone='alexnet'"):
        BackboneClassifier("alexnet")
    headless = ResNet50V2FPN(include_top=False, input_shape=(32, 32, 1), level_dim=4)
    assert headless.output_shape == (None, 16)
    with pytest.raises(ValueError, match="has no layer 'predictions'"):
        feature_extractor(headless, "softmax")
    with pytest.raises(ValueError, match="Received: output='logits'"):
        feature_extractor(headless, "logits")


def test_imagenet_weights_fall_back_to_random_with_a_warning(monkeypatch, tmp_path):
    monkeypatch.setenv("CBMIR_DATA_DIR", str(tmp_path))  # no weights file there nor in the cache,
    monkeypatch.setenv("CBMIR_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("CBMIR_ALLOW_DOWNLOAD", "0")  # and no download
    with pytest.warns(UserWarning, match="resnet50v2_weights_tf_dim_ordering_tf_kernels_notop.h5.*RANDOM"):
        model = ResNet50V2FPN(weights="imagenet", input_shape=(32, 32, 1), classes=2)
    assert model.get_layer("features").output.shape[-1] == 256


def test_a_weights_file_and_an_input_tensor_go_through_the_shared_ending(ct_slices, tmp_path):
    keras.utils.set_random_seed(2)
    model = BackboneClassifier("resnet50v2", input_shape=(32, 32, 1), classes=3, feature_dim=8)
    model.save_weights(tmp_path / "plain.weights.h5")
    keras.utils.set_random_seed(3)  # other initial weights, replaced by the file's
    again = BackboneClassifier("resnet50v2", weights=str(tmp_path / "plain.weights.h5"), input_shape=(32, 32, 1),
                               classes=3, feature_dim=8)
    x = preprocess_input(ct_slices[:3], 32)
    np.testing.assert_array_equal(again.predict_on_batch(x), model.predict_on_batch(x))
    tensor = keras.Input((64, 64, 1), name="slice")
    fpn = ResNet50V2FPN(input_tensor=tensor, classes=3, pyramid_channels=8, level_dim=4)
    assert fpn.input_shape == (None, 64, 64, 1) and fpn.inputs[0].name == "slice"
    with pytest.raises(ValueError, match="Received: weights='no_such.weights.h5'"):
        BackboneClassifier(weights="no_such.weights.h5")
    with pytest.raises(ValueError, match="Received: dropout=1.0"):
        ResNet50V2FPN(input_shape=(32, 32, 1), dropout=1.0)
