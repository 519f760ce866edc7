"""The archive-scale benchmark's building blocks, on real image features (no timing asserts)."""

from __future__ import annotations

import numpy as np
import pytest

from cbmir_tf.search import index as index_module
from cbmir_tf.search import scale
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


def _recall(index, Q, exact, metric, **search) -> float:
    D, I = index.search(Q, K, **search)
    return recall_at_k(I, exact[1], *((D, exact[0]) if metric == "hamming" else ()))


@pytest.mark.parametrize("kind", ["float", "binary"])
@pytest.mark.parametrize("method", ["ivf", "hnsw"])
def test_calibrated_indexes_reach_recall_095_on_new_real_queries(real, kind, method):
    database, queries = real
    X, Q, metric = database[kind], queries[kind], _metric(database[kind])
    exact = Index(metric).add(X).search(Q, K)
    index = Index(metric, kind=method).train(X).add(X)  # add calibrates
    c = index.calibration_
    if method == "ivf":  # on 1,000 stored vectors, each left out of its own answer
        assert (c["knob"], c["queries"], c["n_queries"], c["ntotal"]) == ("nprobe", "stored", 1000, len(X))
    else:  # on a tenth of X, added only afterwards
        assert (c["knob"], c["queries"], c["n_queries"], c["ntotal"]) == ("ef_search", "held back", 585, 5271)
    assert c["value"] == getattr(index, c["knob"]) and index.ntotal == len(X)
    assert c["reached"] and c["recall"] - 1.6 * c["recall_se"] >= 0.95
    assert method == "hnsw" or index.nlist == default_nlist(len(X)) == 77  # about sqrt(5856)
    assert _recall(index, Q, exact, metric) >= 0.95  # the 780 test images: none of them is stored
    if method == "ivf":  # one cell is not enough here, so the recall above is not trivially exact
        assert c["value"] > 1 and _recall(index, Q, exact, metric, nprobe=1) < 0.95


def test_calibration_on_its_own_vectors_is_fooled_by_near_copies_and_held_out_queries_are_not(real):
    """Grown by replicas, the archive holds 10 near-copies of every real vector: the neighbours of
    one are its copies, which the same IVF cell holds, so new images fare worse."""
    database, queries = real
    X, Q = replicate(database["float"], 10 * len(database["float"])), queries["float"]
    tune, test = Q[::2], Q[1::2]  # held-out real images: calibrate on half, measure on the other
    exact = Index("l2").add(X).search(test, K)
    index = Index("l2", kind="ivf").train(X[::5]).add(X)  # 48 training vectors a cell
    stored = index.calibration_
    assert stored["reached"] and _recall(index, test, exact, "l2") < 0.95
    held = index.calibrate(queries=tune).calibration_
    assert held["queries"] == "given" and held["n_queries"] == len(tune) and held["value"] > stored["value"]
    assert _recall(index, test, exact, "l2") >= 0.95


@pytest.mark.parametrize("method", ["ivf", "hnsw"])
def test_calibration_is_deterministic(real, method):
    X = real[0]["binary"]
    with scale._threads(1):  # a multi-threaded HNSW build may link the graph differently
        a, b = (Index("hamming", kind=method).train(X).add(X) for _ in range(2))
    same = ("knob", "value", "recall", "recall_se", "n_queries", "seed")
    assert [a.calibration_[key] for key in same] == [b.calibration_[key] for key in same]
    first = dict(a.calibrate(n_queries=300, seed=1).calibration_)  # stored vectors, leave-one-out
    again = a.calibrate(n_queries=300, seed=1).calibration_
    assert [again[key] for key in same] == [first[key] for key in same] and first["n_queries"] == 300


def test_calibration_keeps_the_top_rung_and_says_so_when_the_target_is_out_of_reach(real, monkeypatch):
    X = real[0]["float"]
    monkeypatch.setattr(index_module, "MAX_EF_SEARCH", 12)  # the ladder: ef_search 10, then 12
    index = Index("l2", kind="hnsw", target_recall=1.0).add(X)
    c = index.calibration_
    assert (c["value"], index.ef_search, c["reached"]) == (12, 12, False) and c["recall"] < 1.0


def test_calibrate_rejects_what_it_cannot_do(real):
    X = real[0]["float"][:500]
    with pytest.raises(ValueError, match="flat index is exact"):
        Index("l2").add(X).calibrate()
    with pytest.raises(ValueError, match="empty"):
        Index("l2", kind="hnsw").calibrate()
    with pytest.raises(ValueError, match="target_recall must be in"):
        Index("l2", kind="hnsw", target_recall=1.5)
    index = Index("l2", kind="hnsw", ef_search=40).add(X)  # a fixed knob is not calibrated
    assert index.calibration_ is None and index.ef_search == 40
    with pytest.raises(ValueError, match="confidence"):
        index.calibrate(confidence=1.0)
    with pytest.raises(ValueError, match="dimension 324"):
        index.calibrate(queries=X[:, :10])


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
    held_out = {kind: v[20:120] for kind, v in queries.items()}
    table = run_scale_benchmark(small, {kind: v[:20] for kind, v in queries.items()}, [300, 900],
                                n_timing=3, sweep=False, threads=1, bandwidth=1e10, calibration=held_out,
                                log=None)
    defaults = table[table["default"]]
    assert len(defaults) == 2 * 2 * 4  # descriptors x sizes x methods
    assert set(table["method"]) == {"numpy", "flat", "ivf", "hnsw"}
    # besides its default, an approximate index is measured at its stored-vector calibration only
    others = table[~table["default"]]
    assert others["method"].isin(["ivf", "hnsw"]).all() and others["stored"].all()
    approx = defaults[defaults["method"].isin(["ivf", "hnsw"])]
    assert (approx["value"] == approx["heldout_value"]).all() and (approx["heldout_recall"] >= 0.95).all()
    assert (approx["stored_recall"] >= 0.95).all() and approx["heldout_value"].notna().all()
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


@pytest.mark.parametrize("n_tests, n_queries, n_calibration, expected", [
    (2337, 1000, 1000, (1000, 1000)),  # the cpu profile's split: both as asked
    (80, 100, 300, (40, 40)),  # the MedMNIST fallback under smoke: half and half
    (539, 100, 300, (100, 269)),
    (1, 10, 10, (1, 0)),
])
def test_split_test_images_keeps_queries_and_calibration_apart_and_never_empty(n_tests, n_queries,
                                                                               n_calibration, expected):
    queries, calibration = scale.split_test_images(n_tests, n_queries, n_calibration, seed=0)
    assert (len(queries), len(calibration)) == expected
    assert not np.intersect1d(queries, calibration).size
    assert np.all(np.diff(queries) > 0) and np.all(np.diff(calibration) > 0)
    assert queries.max() < n_tests and (calibration.size == 0 or calibration.max() < n_tests)
    again = scale.split_test_images(n_tests, n_queries, n_calibration, seed=0)
    assert all(np.array_equal(a, b) for a, b in zip((queries, calibration), again))
