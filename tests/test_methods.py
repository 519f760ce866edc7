"""Every method of `cbmir_tf.methods` end to end on a few real MedMNIST images (tiny training runs)."""

from __future__ import annotations

import numpy as np
import pytest

from cbmir_tf.features.hog import HOGDescriptor
from cbmir_tf.features.radon_barcode import RadonBarcode
from cbmir_tf.methods import (CLI_METHODS, CNNCRBCMethod, DescriptorMethod, FPNFeatures, InResHashingMethod,
                              RerankedMethod, VGGFeatures, make_method)


@pytest.fixture(scope="module")
def subset(small_benchmark):
    """Nine real 28 px images of each of the four codes (36 images), labels 0..3."""
    codes = sorted(set(small_benchmark.codes))
    assert len(codes) == 4
    rows = np.concatenate([np.flatnonzero(small_benchmark.codes == c)[:9] for c in codes])
    labels = np.searchsorted(codes, small_benchmark.codes[rows])
    return small_benchmark.images[rows], labels


def finds_itself(method, images, k=5):
    D, I = method.search(images, k)
    assert I.shape == D.shape == (len(images), k) and (I >= 0).all()
    return (I[:, 0] == np.arange(len(images))).mean()


def test_descriptor_method_hog(subset):
    images, _ = subset
    method = DescriptorMethod(HOGDescriptor()).fit(images).add(images)
    assert finds_itself(method, images) == 1.0
    assert method.bytes_per_image == 540 * 4  # 540 float32 at the paper's 256 px layout
    assert method.metric == "l1"


def test_reranked_method_resorts_the_candidates(subset):
    images, _ = subset
    first, second = DescriptorMethod(RadonBarcode()), DescriptorMethod(HOGDescriptor())
    method = RerankedMethod(first, second, k_prep=8).fit(images).add(images)
    D, I = method.search(images[:5], 4)
    _, candidates = first.search(images[:5], 8)
    for row, cands in zip(I, candidates):
        assert set(row) <= set(cands)  # only the first method's candidates come back
    assert (np.diff(D, axis=1) >= 0).all()  # in the second descriptor's order
    assert (I[:, 0] == np.arange(5)).all() and np.allclose(D[:, 0], 0)
    hog = second.describe(images[:5])
    expected = np.abs(hog[:, None] - second.vectors_[I]).sum(-1)
    np.testing.assert_allclose(D, expected, rtol=1e-5)
    assert first.bytes_per_image == 4352 / 8  # barcode bits, packed
    assert method.bytes_per_image == first.bytes_per_image + 540 * 4


def test_cnnc_rbc_method(subset):
    images, labels = subset
    method = CNNCRBCMethod(input_size=64, n_candidates=20, epochs=1, steps_per_epoch=2, batch_size=8, patience=None)
    with pytest.raises(ValueError, match="needs the archive's labels"):
        method.fit(images)
    method.fit(images, labels).add(images)
    assert finds_itself(method, images) > 0.9  # Hamming 0 to itself whenever CNNC proposes it
    assert method.bytes_per_image == 1000 / 8 + 4352 / 8


def test_inres_hashing_method(subset):
    images, labels = subset
    method = InResHashingMethod(input_size=32, stem_filters=8, stages=1, fc1_units=32, hash_bits=16, epochs=1,
                                batch_size=12, min_pool=5).fit(images, labels).add(images)
    assert finds_itself(method, images) == 1.0  # its own code is in every pool, at FC1 distance 0
    assert method.bytes_per_image == 16 / 8 + 32 * 4


@pytest.mark.parametrize("descriptor", [
    FPNFeatures(input_size=32, feature_dim=32, pyramid_channels=16, balance_per_class=3, epochs=1, batch_size=8,
                patience=None, run_eagerly=True),
    VGGFeatures(config="A", image_size=32, epochs=1, batch_size=8, val_fraction=0.2),
], ids=["fpn", "vgg"])
def test_trained_network_descriptors(subset, descriptor):
    images, labels = subset
    method = DescriptorMethod(descriptor).fit(images, labels).add(images)
    assert method.vectors_.dtype == np.float32 and method.vectors_.shape[0] == len(images)
    assert np.isfinite(method.vectors_).all() and method.vectors_.std() > 0
    np.testing.assert_allclose(descriptor.transform(images[:3]), method.vectors_[:3], rtol=1e-4, atol=1e-5)
    assert finds_itself(method, images) > 0.9  # ties between identical vectors aside


def test_make_method_knows_the_cli_names():
    assert {type(make_method(name)).__name__ for name in CLI_METHODS} == {"DescriptorMethod", "RerankedMethod"}
    with pytest.raises(ValueError, match="Unknown method 'sift'"):
        make_method("sift")
