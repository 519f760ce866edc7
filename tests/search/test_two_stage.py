"""CNN codes and the CNNC -> RBC two-stage search of paper 003 (from descriptors and from pixels), on real images."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from cbmir_tf.features.cnn_code import CNNCode
from cbmir_tf.features.radon_barcode import RadonBarcode
from cbmir_tf.models.shallow_cnn import ShallowCNN
from cbmir_tf.search.two_stage import CNNCRBCSearch, TwoStageIndex


@pytest.fixture(scope="module")
def net():
    keras.utils.set_random_seed(0)  # an untrained network: its codes are still a fixed function of the image
    return ShallowCNN(input_shape=(64, 64, 1), classes=28)


@pytest.fixture(scope="module")
def archive(fallback_benchmark):
    """60 real training images, 15 of each code (28 px MedMNIST)."""
    return fallback_benchmark.take_split("train").stratified_sample(15, seed=0).images


def test_cnnc_is_1000_bits_deterministic_and_binarised_at_zero(net, ct_slices):
    cnnc = CNNCode(net).fit()
    codes = cnnc.transform(ct_slices[:6])
    assert codes.shape == (6, 1000) and codes.dtype == bool and cnnc.metric == "hamming"
    np.testing.assert_array_equal(codes, CNNCode(net, batch_size=4).fit().transform(ct_slices[:6]))
    raw = CNNCode(net, binary=False).fit()
    activations = raw.transform(ct_slices[:6])
    assert activations.dtype == np.float32 and raw.metric == "l2"
    np.testing.assert_array_equal(codes, activations > 0)


def test_cnnc_hamming_ranking_matches_brute_force(net, archive):
    search = CNNCRBCSearch(CNNCode(net), n_candidates=20, k=5).add(archive)
    D, I = search.candidates(archive[:6])
    codes = CNNCode(net).fit().transform(archive)
    brute = (codes[:6, None, :] != codes[None, :, :]).sum(-1)
    np.testing.assert_array_equal(D, np.take_along_axis(brute, I, 1))
    np.testing.assert_array_equal(D, np.sort(brute, 1)[:, :20])
    assert (I[:, 0] == np.arange(6)).all() and (D[:, 0] == 0).all()


def test_rerank_permutes_the_top50_by_barcode_distance(net, archive, small_benchmark):
    queries = small_benchmark.take_split("test").images[::10][:3]
    rbc = RadonBarcode(image_size=96).fit()  # a smaller barcode: the re-ranking logic is the same
    paper = CNNCRBCSearch(CNNCode(net), rbc, n_candidates=50, k=10).add(archive)
    _, candidates = paper.candidates(queries)
    D, I = paper.search(queries, k=50)
    q_bars, db_bars = rbc.transform(queries), rbc.transform(archive)
    for row in range(len(queries)):
        assert set(I[row]) == set(candidates[row])
        expected = (q_bars[row] != db_bars[I[row]]).sum(1)
        np.testing.assert_array_equal(D[row], expected)
        assert (np.diff(D[row]) >= 0).all()
    assert not np.array_equal(I, candidates)  # the order did change
    cached = CNNCRBCSearch(CNNCode(net), rbc, cache_barcodes=True).add(archive)
    D10, I10 = cached.search(queries)
    np.testing.assert_array_equal(I10, I[:, :10])
    np.testing.assert_array_equal(D10, D[:, :10])


def test_errors(net, archive):
    with pytest.raises(ValueError, match="k <= n_candidates"):
        CNNCRBCSearch(CNNCode(net), n_candidates=5, k=10)
    with pytest.raises(ValueError, match="call add"):
        CNNCRBCSearch(CNNCode(net)).search(archive[:1])
    with pytest.raises(TypeError, match="CNNCode"):
        CNNCRBCSearch(RadonBarcode())
    with pytest.raises(ValueError, match=r"barcodes must be bool of shape \(60, 4352\)"):
        CNNCRBCSearch(CNNCode(net), cache_barcodes=True).add(archive, barcodes=np.zeros((60, 8), bool))
    with pytest.raises(ValueError, match="call fit first"):
        CNNCode(net).transform(archive[:1])


def test_two_stage_index_from_descriptors_matches_the_image_search(net, archive, small_benchmark):
    queries = small_benchmark.take_split("test").images[::10][:4]
    rbc, cnnc = RadonBarcode(image_size=96).fit(), CNNCode(net).fit()
    bars, q_bars = rbc.transform(archive), rbc.transform(queries)
    index = TwoStageIndex(20).add(cnnc.transform(archive), bars)
    D, I = index.search(cnnc.transform(queries), q_bars, 8)
    D2, I2 = CNNCRBCSearch(cnnc, rbc, n_candidates=20, k=8).add(archive).search(queries)
    np.testing.assert_array_equal(I, I2)
    np.testing.assert_array_equal(D, D2)
    # barcodes computed for the candidates only, at query time (the paper's way): same ranking
    calls = []
    lazy = TwoStageIndex(20).add(cnnc.transform(archive), lambda rows: calls.append(rows) or bars[rows])
    D3, I3 = lazy.search(cnnc.transform(queries), q_bars, 8)
    np.testing.assert_array_equal(I3, I)
    np.testing.assert_array_equal(D3, D)
    assert len(calls) == 4 and all(len(rows) == 20 for rows in calls)
    assert index.bytes_per_image == 1000 / 8 + bars.shape[1] / 8 and lazy.bytes_per_image == 1000 / 8
    # float codes by L2; leave-one-out never returns the query
    floats = CNNCode(net, binary=False).fit().transform(archive)
    l2 = TwoStageIndex(20, code_metric="l2").add(floats, bars)
    _, I_loo = l2.search(floats[:5], bars[:5], 8, exclude=np.arange(5))
    assert not (I_loo == np.arange(5)[:, None]).any()
    assert l2.bytes_per_image == 4 * 1000 + bars.shape[1] / 8


def test_two_stage_index_errors(net, archive):
    codes = CNNCode(net).fit().transform(archive)
    bars = RadonBarcode(image_size=32).fit().transform(archive)
    with pytest.raises(ValueError, match="Received: n_candidates=0"):
        TwoStageIndex(0)
    with pytest.raises(ValueError, match="Received: code_metric='cosine'"):
        TwoStageIndex(code_metric="cosine")
    with pytest.raises(ValueError, match="call add"):
        TwoStageIndex().candidates(codes)
    with pytest.raises(ValueError, match=r"one row per code \(60\)"):
        TwoStageIndex().add(codes, bars[:10])
    with pytest.raises(ValueError, match="barcodes must be bool"):
        TwoStageIndex().add(codes, bars.astype(np.float32))
    index = TwoStageIndex(10).add(codes, bars)
    with pytest.raises(ValueError, match=r"k must lie in \[1, n_candidates=10\]"):
        index.search(codes[:2], bars[:2], 11)
    with pytest.raises(ValueError, match="bytes per row"):
        index.search(codes[:2], bars[:2, :64], 5)
