"""Radon barcodes: length, determinism, the per-projection median threshold, and retrieval on real images."""

from __future__ import annotations

import numpy as np
import pytest

from cbmir_tf.features.radon_barcode import RadonBarcode, pack_codes
from cbmir_tf.search.index import Index
from cbmir_tf.metrics import axis_relevance


def test_length_is_angles_times_projection_length(ct_slices):
    rbc = RadonBarcode().fit(ct_slices)
    # skimage pads a 192 px square to its diagonal: 192 + ceil(192 * (sqrt(2) - 1)) = 272 bins
    assert rbc.projection_length_ == 272
    codes = rbc.transform(ct_slices[:3])
    assert codes.shape == (3, 16 * 272) and codes.dtype == bool
    assert RadonBarcode(image_size=64, n_angles=8).fit().n_features_out_ == 8 * 91  # 64 + 27 bins


@pytest.mark.parametrize("size, n_angles", [(192, 16), (65, 7)])
def test_projections_and_codes_match_scikit_image(ct_slices, size, n_angles):
    """OpenCV's rotations give scikit-image's Radon transform (its padding, centre and direction)."""
    from skimage.transform import radon

    from cbmir_tf.data.preprocess import resize_batch

    rbc = RadonBarcode(image_size=size, n_angles=n_angles).fit()
    images = resize_batch(ct_slices[::8], size)
    ours = rbc.transform(ct_slices[::8])
    agree = []
    for image, code in zip(images, ours):
        reference = radon(image.astype(np.float64), rbc.theta_, circle=False)
        projections = rbc.projections(image)
        assert projections.shape == reference.shape
        np.testing.assert_allclose(projections, reference, rtol=0, atol=2e-3 * reference.max())
        bits = np.zeros(reference.shape, bool)
        for j in range(reference.shape[1]):
            p = reference[:, j]
            bits[:, j] = p >= np.median(p[p > 0])
        agree.append((bits.T.ravel() == code).mean())
    assert min(agree) > 0.999


def test_codes_are_deterministic(ct_slices):
    a = RadonBarcode().fit().transform(ct_slices[:4])
    b = RadonBarcode().fit().transform(ct_slices[:4])
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a[0], a[1])  # different slices, different codes


def test_each_projection_is_cut_at_its_median(ct_slices):
    rbc = RadonBarcode(image_size=96, n_angles=4).fit()
    code = rbc.transform(ct_slices[5])[0].reshape(4, -1)
    projections = rbc.projections(ct_slices[5])
    assert projections.shape == (96 + 40, 4)
    for j in range(4):
        p = projections[:, j]
        nonzero = p > 0
        ones = code[j].sum()
        assert not code[j][~nonzero].any()  # outside the body nothing is set
        assert nonzero.sum() / 2 <= ones <= nonzero.sum() / 2 + 1 + (p == np.median(p[nonzero])).sum()


def test_hamming_search_matches_brute_force_and_finds_itself(ct_slices):
    codes = RadonBarcode().fit().transform(ct_slices[:40])
    D, I = Index("hamming").add(pack_codes(codes)).search(pack_codes(codes[:5]), k=10)
    brute = (codes[:5, None, :] != codes[None, :, :]).sum(-1)
    np.testing.assert_array_equal(I[:, 0], np.arange(5))
    np.testing.assert_array_equal(D, np.take_along_axis(brute, I, 1))
    np.testing.assert_array_equal(D, np.sort(brute, 1)[:, :10])


def test_pack_codes_pads_without_changing_distances():
    codes = np.array([[1, 0, 1, 1, 0, 0, 1, 0, 1, 1], [0, 0, 1, 0, 0, 1, 1, 0, 0, 1]], dtype=bool)
    packed = pack_codes(codes)
    assert packed.shape == (2, 2)
    assert np.unpackbits(packed[0] ^ packed[1]).sum() == (codes[0] != codes[1]).sum() == 4


def test_rbc_retrieval_beats_chance_on_real_images(small_benchmark):
    # 28 px MedMNIST images (resized to 192 px): four codes, two modality-regions
    archive = small_benchmark.take_split("train").stratified_sample(5, 0)
    test = small_benchmark.take_split("test")
    rng = np.random.default_rng(0)
    pick = np.concatenate([rng.permutation(np.flatnonzero(test.labels == c))[:4]
                           for c in np.unique(test.labels)])
    rbc = RadonBarcode().fit()
    _, I = Index("hamming").add(rbc.transform(archive.images)).search(rbc.transform(test.images[pick]), k=1)
    for axis, better in (("both", lambda chance: chance + 0.3), ("class", lambda chance: 2 * chance)):
        hit = axis_relevance(test.codes[pick], archive.codes[I], axis)[:, 0].mean()
        # chance: probability that a random archive image shares the query's modality and region / code
        chance = axis_relevance(test.codes[pick], np.tile(archive.codes, (len(pick), 1)), axis).mean()
        assert hit > better(chance), (axis, hit, chance)


def test_errors():
    with pytest.raises(ValueError, match="call fit first"):
        RadonBarcode().transform(np.zeros((1, 8, 8), np.uint8))
    with pytest.raises(ValueError, match="Received: n_angles=0"):
        RadonBarcode(n_angles=0).fit()
    with pytest.raises(TypeError, match="uint8"):
        RadonBarcode().fit().transform(np.zeros((1, 8, 8), np.float32))
