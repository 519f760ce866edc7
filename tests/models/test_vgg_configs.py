"""Paper 004's configurations A-G, its preprocessing and augmentation, on real images."""

import dataclasses

import cv2
import keras
import numpy as np
import pytest

from cbmir_tf.data.irma_images import read_codes_2009
from cbmir_tf.data.registry import fetch
from cbmir_tf.data.preprocess import clahe, resize_batch
from cbmir_tf.models.training import train
from cbmir_tf.models.vgg_configs import (FEATURE_LAYER, VGGConfig, VGGPreprocessor, anatomy_labels, augment,
                                         feature_extractor)

# Written by hand from the paper's Table 1 (A-D, Conv3-20) and Table 3 (E-G, Conv5-20):
# (conv layers, max poolings, hidden FC widths). A and E lack the first max pooling.
PAPER_TABLES = {
    "A": (3, 2, [4500]), "B": (6, 3, [4500]), "C": (7, 3, [4500]), "D": (8, 4, [1280]),
    "E": (3, 2, [5120, 800]), "F": (3, 3, [5120, 800]), "G": (4, 4, [1280, 800]),
}


@pytest.fixture(scope="module")
def regions(small_benchmark):
    labels, names = anatomy_labels(small_benchmark.codes)
    return dataclasses.replace(small_benchmark, labels=labels, class_names=names)


@pytest.mark.parametrize("config", sorted(PAPER_TABLES))
def test_each_configuration_has_the_paper_layers(config):
    model = VGGConfig(config=config, input_shape=(64, 64, 1), classes=5)  # layer counts do not depend on size
    convs = [l for l in model.layers if isinstance(l, keras.layers.Conv2D)]
    pools = [l for l in model.layers if isinstance(l, keras.layers.MaxPooling2D)]
    dense = [l for l in model.layers if isinstance(l, keras.layers.Dense)]
    n_conv, n_pool, fc = PAPER_TABLES[config]
    assert (len(convs), len(pools)) == (n_conv, n_pool)
    assert all(l.filters == 20 and l.kernel_size == ((3, 3) if config in "ABCD" else (5, 5)) for l in convs)
    assert [l.units for l in dense] == fc + [5]
    assert len([l for l in model.layers if isinstance(l, keras.layers.Dropout)]) == len(fc)
    assert model.output_shape == (None, 5)
    assert model.get_layer(FEATURE_LAYER).output.shape[-1] == fc[-1]


def test_flattened_maps_match_the_printed_fc_widths():
    # The paper's FC widths for D, F and G equal the flattened 128-px maps (20 maps of 8x8 or 16x16).
    for config, side in (("D", 8), ("F", 16), ("G", 8)):
        model = VGGConfig(config=config, input_shape=(128, 128, 1), classes=3)
        assert model.get_layer("flatten").output.shape[-1] == side * side * 20 == PAPER_TABLES[config][2][0]


def test_builder_rejects_bad_arguments_and_drops_dropout_on_request():
    with pytest.raises(ValueError, match="config='H'"):
        VGGConfig(config="H")
    with pytest.raises(ValueError, match="pooling='mean'"):
        VGGConfig(include_top=False, pooling="mean")
    with pytest.raises(ValueError, match="sides of at least 16"):  # D pools four times
        VGGConfig(config="D", input_shape=(8, 8, 1))
    with pytest.raises(ValueError, match="dropout must lie"):
        VGGConfig(dropout=1.0)
    with pytest.raises(ValueError, match="weights"):
        VGGConfig(weights="no-such-file.weights.h5")
    model = VGGConfig(config="G", input_shape=(32, 32, 1), dropout=0.0)
    assert not any(isinstance(l, keras.layers.Dropout) for l in model.layers)
    headless = VGGConfig(config="G", input_shape=(32, 32, 1), include_top=False, pooling="avg")
    assert headless.output_shape == (None, 20)


def test_builder_takes_an_input_tensor_and_a_weights_file(tmp_path):
    tensor = keras.Input(shape=(32, 32, 1))
    model = VGGConfig(config="F", input_tensor=tensor, classes=3)
    assert model.inputs[0] is tensor and model.output_shape == (None, 3)
    path = tmp_path / "f.weights.h5"
    model.save_weights(path)
    again = VGGConfig(config="F", input_shape=(32, 32, 1), classes=3, weights=str(path))
    for a, b in zip(model.get_weights(), again.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_mean_image_comes_from_the_training_split_only(regions):
    prep = VGGPreprocessor(image_size=64).fit(regions.images, split=regions.split)
    op = cv2.createCLAHE(clipLimit=2.0, tileGridSize=(8, 8))
    assert regions.images.shape[1:] == (28, 28)  # MedMNIST: enlarged, which is bicubic
    by_hand = {s: np.mean([op.apply(cv2.resize(i, (64, 64), interpolation=cv2.INTER_CUBIC)) / 255.0
                           for i in regions.images[regions.split == s]], axis=0) for s in ("train", "test")}
    np.testing.assert_allclose(prep.mean_image_, by_hand["train"], atol=1e-5)
    assert np.abs(prep.mean_image_ - by_hand["test"]).max() > 0.01
    x = prep.transform(regions.images[:5])
    assert x.shape == (5, 64, 64, 1) and x.dtype == np.float32 and -1 <= x.min() and x.max() <= 1
    with pytest.raises(RuntimeError, match="call fit first"):
        VGGPreprocessor().transform(regions.images[:2])
    with pytest.raises(ValueError, match="float64"):
        prep.fit(regions.images.astype(np.float64))


def test_preprocessor_saves_and_loads_its_mean_image(regions, tmp_path):
    prep = VGGPreprocessor(image_size=32, clip_limit=3.0).fit(regions.images[:20])
    prep.save(tmp_path / "prep.npz")
    again = VGGPreprocessor.load(tmp_path / "prep.npz")
    assert (again.image_size, again.use_clahe, again.clip_limit) == (32, True, 3.0)
    np.testing.assert_array_equal(again.transform(regions.images[20:25]), prep.transform(regions.images[20:25]))
    with pytest.raises(RuntimeError, match="not fitted"):
        VGGPreprocessor().save(tmp_path / "unfitted.npz")


def test_clahe_keeps_dtype_shape_and_range_and_raises_contrast(small_benchmark):
    images = resize_batch(small_benchmark.images[::10][:8], 128)  # radiographs and ultrasound, enlarged
    out = clahe(images)
    assert out.dtype == np.uint8 and out.shape == images.shape
    assert out.max() == 255 and out.min() < 10  # still spans the 8-bit range
    assert (out.std(axis=(1, 2)) > images.std(axis=(1, 2))).all()  # equalised: more global contrast
    with pytest.raises(TypeError, match="uint8"):
        clahe(images.astype(np.float32))


def test_augment_rotates_by_right_angles_and_keeps_shape(ct_slices):
    x = ct_slices[:6, :, :, None].astype(np.float32)
    rotated = augment(x, np.random.default_rng(0), crop_fraction=1.0)  # no crop: a pure rotation
    for original, out in zip(x, rotated):
        assert any(np.array_equal(np.rot90(original, k), out) for k in range(4))
    cropped = augment(x, np.random.default_rng(0))
    assert cropped.shape == x.shape and not np.array_equal(cropped, rotated)


def test_the_shared_training_loop_trains_a_configuration_with_augmentation(regions):
    prep = VGGPreprocessor(image_size=32).fit(regions.images, split=regions.split)
    train_set = regions.take_split("train").stratified_sample(8, seed=0)
    x, y = prep.transform(train_set.images), train_set.labels
    n = len(regions.class_names)

    def cross_entropy(model):
        p = model.predict(x, verbose=0)
        return -np.mean(np.log(p[np.arange(len(y)), y] + 1e-9))

    keras.utils.set_random_seed(0)
    model = VGGConfig(config="G", input_shape=(32, 32, 1), classes=n)
    before = cross_entropy(model)
    run = train(model, x, y, (x, y), optimizer="sgd", learning_rate=0.01, momentum=0.9, epochs=6, batch_size=8,
                patience=None, augment=augment)
    assert run.epochs_run == 6 and cross_entropy(model) < before - 0.1
    assert feature_extractor(model).predict(x[:3], verbose=0).shape == (3, 800)


def test_anatomy_labels_give_regions_and_the_paper_irma_groups():
    labels, names = anatomy_labels(["XR-knee-kl0", "CT-brain-hemorrhage", "XR-knee-kl3"])
    assert names == ("brain", "knee") and labels.tolist() == [1, 0, 1]
    codes = dict(read_codes_2009(fetch("irma-codes/ImageCLEFmed2009_train_codes.02.csv")))
    # Image ids looked up by hand in the 2009 list: anatomy 200 cranium, 951 lower extremity,
    # 500 chest, 720 abdomen (not one of the paper's groups).
    picked = [codes["2975"], codes["2551"], codes["3145"], codes["1877"]]
    assert picked == ["1121-120-200-700", "1121-120-951-700", "1123-127-500-000", "1121-117-720-452"]
    labels, names = anatomy_labels(picked)
    assert names == ("chest", "cranium", "lower extremity")
    assert labels.tolist() == [1, 2, 0, -1]
