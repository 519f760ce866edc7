"""Table 4 baselines of paper 004: shapes, normalisation, reference values and better-than-chance accuracy."""

import dataclasses

import numpy as np
import pytest
from skimage.feature import local_binary_pattern
from skimage.filters import gabor

from cbmir_tf.features.handcrafted import (GaborHistogram, IntensityHistogram, LBPHistogram, TamuraHistogram,
                                           make_classifier)
from cbmir_tf.irma import code_region

# descriptor, documented dimension, number of parts that each sum to 1
CASES = [
    (IntensityHistogram(n_bins=32), 32, 1),
    (GaborHistogram(frequencies=(0.1, 0.3), n_orientations=4, n_bins=8), 2 * 4 * 8, 8),
    (TamuraHistogram(n_scales=4, n_bins=8), 4 * 8 * 9, 1),
    (LBPHistogram(n_points=8, radius=1, grid=4), 16 * 10, 16),
]


@pytest.fixture(scope="module")
def regions(small_benchmark):
    names = np.array([code_region(c) for c in small_benchmark.codes])
    classes = sorted(set(names))
    return dataclasses.replace(small_benchmark, labels=np.searchsorted(classes, names), class_names=classes)


@pytest.mark.parametrize("descriptor,dimension,parts", CASES, ids=lambda c: getattr(c, "name", ""))
def test_histograms_have_the_documented_shape_and_sum_to_one(descriptor, dimension, parts, ct_slices):
    with pytest.raises(Exception, match="call fit first"):
        type(descriptor)().transform(ct_slices[:2])
    vectors = descriptor.fit(ct_slices[:16]).transform(ct_slices[:10])
    assert vectors.shape == (10, dimension) and vectors.dtype == np.float32
    assert descriptor.n_features_out_ == dimension and vectors.min() >= 0
    np.testing.assert_allclose(vectors.reshape(10, parts, -1).sum(axis=2), 1.0, atol=1e-5)


def test_intensity_and_lbp_match_direct_computations(ct_slices):
    image = ct_slices[3]
    hist = IntensityHistogram(n_bins=4).fit(image[None]).transform(image)[0]
    counts = [np.sum(image < 64), np.sum((image >= 64) & (image < 128)),
              np.sum((image >= 128) & (image < 192)), np.sum(image >= 192)]
    np.testing.assert_allclose(hist, np.array(counts) / image.size, atol=1e-7)
    lbp = LBPHistogram(grid=1).fit(image[None]).transform(image)[0]
    codes = local_binary_pattern(image, 8, 1, method="uniform")
    np.testing.assert_allclose(lbp, [np.mean(codes == v) for v in range(10)], atol=1e-7)


def test_gabor_magnitudes_equal_scikit_image(ct_slices):
    descriptor = GaborHistogram(frequencies=(0.1,), n_orientations=4, image_size=128)
    image = ct_slices[0]
    ours = descriptor._responses(image)[1]  # frequency 0.1, orientation pi / 4
    real, imag = gabor(image / 255.0, 0.1, theta=np.pi / 4, mode="reflect")
    np.testing.assert_allclose(ours, np.hypot(real, imag), atol=1e-5)


def test_bad_parameters_and_images_are_refused(ct_slices):
    with pytest.raises(ValueError, match="n_bins=1"):
        TamuraHistogram(n_bins=1).fit(ct_slices[:2])
    with pytest.raises(ValueError, match="grid=5"):
        LBPHistogram(grid=5).fit(ct_slices[:2])
    with pytest.raises(TypeError, match="float64"):
        IntensityHistogram().fit(ct_slices[:2].astype(np.float64))


@pytest.mark.parametrize("descriptor", [c[0] for c in CASES], ids=lambda d: d.name)
def test_each_descriptor_classifies_regions_better_than_chance(descriptor, regions):
    sample = regions.stratified_sample(10, seed=0)  # 10 images per region and split
    train, test = sample.take_split("train"), sample.take_split("test")
    model = make_classifier().fit(descriptor.fit(train.images).transform(train.images), train.labels)
    accuracy = np.mean(model.predict(descriptor.transform(test.images)) == test.labels)
    chance = np.bincount(test.labels).max() / len(test)  # always guessing the largest region
    assert accuracy > chance + 0.1
