"""The archive-scale benchmark's building blocks, on real image features (no timing asserts)."""

from __future__ import annotations

import numpy as np
import pytest

from cbmir_tf.search.index import Index, default_nlist
from cbmir_tf.search.scale import NumpyIndex, memory_bandwidth, real_features, recall_at_k, replicate, run_scale_benchmark

K = 10


@pytest.fixture(scope="module")
def real(fallback_benchmark):
    """HOG and Radon-barcode vectors of a whole real archive, the benchmark's MedMNIST fallback
    (5,856 training images: PneumoniaMNIST and BreastMNIST, 28 px), and of its 780 test images."""
    return (real_features(fallback_benchmark.take_split("train").images),
            real_features(fallback_benchmark.take_split("test").images))


def _metric(X) -> str:
    return "hamming" if X.dtype == np.uint8 else "l2"


def test_real_features_are_hog_floats_and_packed_radon_barcodes(real):
    database, queries = real
    assert database["float"].dtype == np.float32 and database["float"].shape[1] == 324
    assert database["binary"].dtype == np.uint8 and database["binary"].shape[1] == 91  # 728 bits
    assert len(database["float"]) == len(database["binary"]) == 5856 and len(queries["float"]) == 780


@pytest.mark.parametrize("kind", ["float", "binary"])
@pytest.mark.parametrize("method", ["ivf", "hnsw"])
def test_approximate_indexes_reach_recall_095_at_the_defaults_on_real_features(real, kind, method):
    database, queries = real
    X, Q, metric = database[kind], queries[kind], _metric(database[kind])
    D_exact, I_exact = Index(metric).add(X).search(Q, K)
    index = Index(metric, kind=method).train(X).add(X)  # every setting at its default
    assert (index.nprobe, index.ef_search) == (16, 64)
    assert method == "hnsw" or index.nlist == default_nlist(len(X)) == 77  # about sqrt(5856)
    D, I = index.search(Q, K)
    ties = (D, D_exact) if metric == "hamming" else ()
    assert recall_at_k(I, I_exact, *ties) >= 0.95
    if method == "ivf":  # one cell is not enough here, so the recall above is not trivially exact
        D1, I1 = index.search(Q, K, nprobe=1)
        assert recall_at_k(I1, I_exact, *((D1, D_exact) if ties else ())) < 0.95


def test_replicate_keeps_the_real_rows_and_adds_small_float_noise(real):
    X = real[0]["float"]
    m, noise = len(X), 0.1
    R = replicate(X, 4 * m + 7, noise=noise, seed=3)
    assert R.shape == (4 * m + 7, X.shape[1]) and R.dtype == np.float32
    np.testing.assert_array_equal(R[:m], X)
    delta = R[m:] - X[np.arange(m, len(R)) % m]
    ratio = delta.std(axis=0) / (noise * X.std(axis=0))
    assert 0.9 < np.median(ratio) < 1.1
    assert (np.abs(delta) <= 6 * noise * X.std(axis=0)).all()
    np.testing.assert_array_equal(replicate(X, 2 * m, noise=noise, seed=3), R[:2 * m])  # seeded, chunk-free
    assert not np.array_equal(replicate(X, 2 * m, noise=noise, seed=4), R[:2 * m])
    np.testing.assert_array_equal(replicate(X, 50), X[:50])  # smaller than the real set: a prefix


def test_replicate_flips_a_small_fraction_of_bits_and_never_the_padding(real):
    B = real[0]["binary"]
    m, flip = len(B), 0.01
    R = replicate(B, 3 * m, flip=flip, n_bits=720, seed=0)  # leave the last 8 bits alone
    np.testing.assert_array_equal(R[:m], B)
    flipped = np.unpackbits(R[m:] ^ B[np.arange(m, 3 * m) % m], axis=1)
    assert 0.8 * flip < flipped[:, :720].mean() < 1.2 * flip
    assert flipped[:, 720:].sum() == 0
    assert flipped.sum(1).max() < 30  # ~7 bits a row on average, never dozens


@pytest.mark.parametrize("kind", ["float", "binary"])
def test_numpy_brute_force_matches_faiss_flat(real, kind):
    database, queries = real
    X, Q, metric = database[kind], queries[kind][:200], _metric(database[kind])
    D_ref, I_ref = Index(metric).add(X).search(Q, K + 1)
    D, I = NumpyIndex(metric, chunk_bytes=1 << 16).add(X).search(Q, K + 1)  # many chunks to merge
    if metric == "hamming":
        np.testing.assert_array_equal(D, D_ref)
    else:
        np.testing.assert_allclose(D, D_ref, rtol=1e-4, atol=1e-3)
    # ids agree except where the distances tie (or nearly: float round-off) at the cut
    gap = 0 if metric == "hamming" else 1e-3
    for row in range(len(Q)):
        inside = D_ref[row, :K] < D_ref[row, K] - gap
        assert set(I[row, :K][inside]) == set(I_ref[row, :K][inside])


def test_recall_counts_ties_only_when_distances_are_given():
    I, I_exact = np.array([[1, 2], [5, -1]]), np.array([[1, 3], [5, 6]])
    assert recall_at_k(I, I_exact) == pytest.approx(0.5)
    D, D_exact = np.array([[0, 4], [2, 99]]), np.array([[0, 4], [2, 3]])
    assert recall_at_k(I, I_exact, D, D_exact) == pytest.approx(0.75)  # id 2 ties id 3; padding never hits


def test_memory_bandwidth_is_a_plausible_positive_rate():
    rate = memory_bandwidth(n_bytes=32 << 20, repeat=2)
    assert np.isfinite(rate) and 1e8 < rate < 1e13


def test_run_scale_benchmark_returns_one_tidy_row_per_index_and_setting(real):
    database, queries = real
    small = {kind: v[:300] for kind, v in database.items()}
    table = run_scale_benchmark(small, {kind: v[:20] for kind, v in queries.items()}, [300, 900],
                                n_timing=3, sweep=False, threads=1, bandwidth=1e10, log=None)
    assert len(table) == 2 * 2 * 4  # descriptors x sizes x methods
    assert set(table["method"]) == {"numpy", "flat", "ivf", "hnsw"} and table["default"].all()
    exact = table[table["method"].isin(["numpy", "flat"])]
    assert (exact["recall"] == 1.0).all()
    assert (table.loc[table["n"] == 900, "n_real"] == 300).all()
    flat = table[table["method"] == "flat"].set_index(["descriptor", "n"])
    assert flat.loc[("float", 900), "index_bytes"] >= 900 * 324 * 4
    assert flat.loc[("binary", 900), "index_bytes"] >= 900 * 91
    np.testing.assert_allclose(table["bound_ms"], table["index_bytes"] / 1e10 * 1000)


def test_errors_name_the_problem():
    with pytest.raises(ValueError, match="2-D"):
        replicate(np.zeros(5, np.float32), 10)
    with pytest.raises(ValueError, match="metric"):
        NumpyIndex("cosine")
    with pytest.raises(ValueError, match="methods"):
        run_scale_benchmark({}, {}, [10], methods=["lsh"], bandwidth=1.0)
