"""Tests for cbmir_tf.search.index on features of 64 real chest CT slices, checked against SciPy brute force."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import faiss
import numpy as np
import pytest
from scipy.spatial.distance import cdist

from cbmir_tf.search.index import BLAS_MIN_QUERIES, Index, blas_batches
from cbmir_tf.search.rerank import rerank

METRICS = ("l2", "l1", "cosine", "hamming")
N = 64


@pytest.fixture(scope="module")
def images(ct_slices) -> np.ndarray:
    """The 64 slices of the real chest CT series (lung window, 128 px), see conftest."""
    assert ct_slices.shape == (N, 128, 128)
    return ct_slices


@pytest.fixture(scope="module")
def feats(images) -> dict[str, np.ndarray]:
    """16x16 block means in [0, 1] (float32, (64, 256)), 8x8 ones (float32, (64, 64)) and their bits.

    Each bit thresholds one block at its median over the 64 slices. (Thresholding at each
    image's own median gives only 56 distinct codes: the slices share one body outline.)
    """
    x = images.astype(np.float32) / 255.0
    f16 = x.reshape(N, 16, 8, 16, 8).mean(axis=(2, 4)).reshape(N, -1)
    f8 = x.reshape(N, 8, 16, 8, 16).mean(axis=(2, 4)).reshape(N, -1)
    bits = f16 > np.median(f16, axis=0)  # bool (64, 256)
    bits8 = f8 > np.median(f8, axis=0)  # bool (64, 64)
    return {"float": f16, "float8": f8, "bits": bits, "bits8": bits8}


def data_for(metric, feats, second=False):
    if metric == "hamming":
        return feats["bits8" if second else "bits"]
    return feats["float8" if second else "float"]


def brute(metric, Q, X) -> np.ndarray:
    """All-pairs distances (nq, n) computed independently with SciPy, in float64."""
    name = {"l2": "euclidean", "l1": "cityblock", "cosine": "cosine", "hamming": "hamming"}[metric]
    D = cdist(np.asarray(Q, np.float64), np.asarray(X, np.float64), name)
    return D * Q.shape[1] if metric == "hamming" else D


TOL = {"l2": 2e-3, "l1": 2e-3, "cosine": 2e-5, "hamming": 0}


def assert_knn(D, I, full, k, tol):
    """(D, I) must be a valid k-NN answer for all-pairs distances ``full``, allowing ties in any order."""
    ref = np.sort(full, axis=1)[:, :k]
    assert D.shape == I.shape == ref.shape
    for i in range(len(I)):
        assert len(set(I[i])) == k, "an id is repeated in one row"
    np.testing.assert_allclose(D, ref, atol=tol, rtol=1e-5)  # distances are the k smallest
    np.testing.assert_allclose(np.take_along_axis(full, I, 1), ref, atol=tol, rtol=1e-5)  # ids fit them


def test_features_have_no_duplicates(feats):
    # Precondition of the self-retrieval test: no two slices share a code or a vector.
    assert len(np.unique(feats["bits"], axis=0)) == N
    assert len(np.unique(feats["float"], axis=0)) == N


@pytest.mark.parametrize("metric", METRICS)
def test_self_retrieval_at_rank_one(metric, feats):
    X = data_for(metric, feats)
    D, I = Index(metric).add(X).search(X, k=5)
    np.testing.assert_array_equal(I[:, 0], np.arange(N))
    assert np.all(D[:, 0] <= TOL[metric] + 1e-3) and np.all(D[:, 1] > D[:, 0])


@pytest.mark.parametrize("metric", METRICS)
def test_flat_matches_brute_force(metric, feats):
    X = data_for(metric, feats)
    D, I = Index(metric).add(X).search(X[:20], k=10)
    assert I.dtype == np.int64
    assert D.dtype == (np.int32 if metric == "hamming" else np.float32)
    assert_knn(D, I, brute(metric, X[:20], X), 10, TOL[metric])


def test_hamming_accepts_packed_codes(feats):
    bits = feats["bits"]
    packed = np.packbits(bits, axis=1)  # uint8 (64, 32)
    a = Index("hamming").add(bits)
    b = Index("hamming").add(packed)
    assert a.d == b.d == 256
    for x, y in zip(a.search(bits[:8], 6), b.search(packed[:8], 6)):
        np.testing.assert_array_equal(x, y)


def test_custom_ids_and_size(feats):
    X = feats["float"]
    ids = np.arange(N) * 7 + 1000
    index = Index("l2").add(X[:40], ids=ids[:40]).add(X[40:], ids=ids[40:])
    assert len(index) == index.ntotal == N and index.d == 256
    _, I = index.search(X, k=3)
    np.testing.assert_array_equal(I[:, 0], ids)
    assert np.isin(I, ids).all()
    with pytest.raises(ValueError, match="unique"):
        index.add(X[:1], ids=ids[:1])


def test_k_is_clamped_and_batches_agree(feats):
    X = feats["float"]
    index = Index("cosine").add(X[:5])
    D, I = index.search(X, k=50)
    assert I.shape == (N, 5) and (I >= 0).all() and np.isfinite(D).all()
    Db, Ib = index.search(X, k=50, batch_size=7)
    np.testing.assert_array_equal(I, Ib)
    np.testing.assert_array_equal(D, Db)


@pytest.mark.parametrize("metric", METRICS)
def test_exclude_self(metric, feats):
    X = data_for(metric, feats)
    ids = np.arange(N) + 500
    index = Index(metric).add(X, ids=ids)
    D, I = index.search(X, k=5, exclude=ids)
    assert I.shape == (N, 5)
    assert not (I == ids[:, None]).any()
    full = brute(metric, X, X)
    full[np.arange(N), np.arange(N)] = np.inf  # leave-one-out reference
    assert_knn(D, I - 500, full, 5, TOL[metric])
    # k as large as the index: every other entry comes back, none padded
    _, I_all = index.search(X[:3], k=N, exclude=ids[:3])
    assert I_all.shape == (3, N - 1) and (I_all >= 0).all()


def test_input_errors(feats):
    X = feats["float"]
    index = Index("l2").add(X)
    with pytest.raises(ValueError, match="2-D.*instead"):
        index.search(X[0], k=1)
    with pytest.raises(ValueError, match="dimension 256. Got 64.*instead"):
        index.search(feats["float8"], k=1)
    bad = X[:2].copy()
    bad[0, 3] = np.nan
    with pytest.raises(ValueError, match="NaN.*instead"):
        index.search(bad, k=1)
    with pytest.raises(ValueError, match="nprobe"):
        index.search(X, k=1, nprobe=4)
    with pytest.raises(ValueError, match="Received: metric='dot'"):
        Index("dot")
    with pytest.raises(ValueError, match="multiple of 8 bits"):
        Index("hamming").add(feats["bits"][:, :250])
    with pytest.raises(ValueError, match="call train"):
        Index("l2", kind="ivf", nlist=4).add(X)


@pytest.mark.parametrize("metric", METRICS)
def test_hnsw_recall_vs_flat(metric, feats):
    X = data_for(metric, feats)
    _, I_flat = Index(metric).add(X).search(X, k=10)
    _, I_hnsw = Index(metric, kind="hnsw", hnsw_m=8).add(X).search(X, k=10, ef_search=32)
    recall = np.mean([len(np.intersect1d(a, b)) / 10 for a, b in zip(I_flat, I_hnsw)])
    assert recall >= 0.95


@pytest.mark.parametrize("metric", METRICS)
def test_ivf_with_all_cells_probed_is_exact(metric, feats):
    X = data_for(metric, feats)
    index = Index(metric, kind="ivf", nlist=4).train(X)
    assert index.is_trained
    D, I = index.add(X).search(X[:16], k=8, nprobe=4)
    assert_knn(D, I, brute(metric, X[:16], X), 8, TOL[metric])


@pytest.mark.parametrize("metric", METRICS)
def test_save_load_roundtrip(metric, feats, tmp_path):
    X = data_for(metric, feats)
    kind = "ivf" if metric == "l1" else "flat"
    index = Index(metric, kind=kind, nlist=4, descriptor="blockmean", params={"grid": (16, 16)})
    index.train(X).add(X, ids=np.arange(N)[::-1] * 3)
    path = index.save(tmp_path / "idx")
    manifest = json.loads((path / "manifest.json").read_text())
    assert manifest["descriptor"] == "blockmean" and manifest["params"] == {"grid": [16, 16]}
    assert manifest["dim"] == index.d and manifest["count"] == N and manifest["metric"] == metric
    loaded = Index.load(path, descriptor="blockmean", params={"grid": (16, 16)}, dim=index.d)
    sp = {"nprobe": 2} if kind == "ivf" else {}
    for a, b in zip(index.search(X, 7, **sp), loaded.search(X, 7, **sp)):
        np.testing.assert_array_equal(a, b)
    assert sorted(os.listdir(tmp_path)) == ["idx"]  # no temp dirs left behind


@pytest.mark.parametrize("kind", ["ivf", "hnsw"])
def test_calibration_survives_save_and_load(kind, feats, tmp_path):
    X = feats["float"]
    index = Index("l2", kind=kind, nlist=4).train(X).add(X)
    c = index.calibration_
    n_queries = N // 10 if kind == "hnsw" else N  # HNSW holds back a tenth of X to calibrate on
    assert c["n_queries"] == n_queries and c["ntotal"] == N - (n_queries if kind == "hnsw" else 0)
    assert c["reached"] and getattr(index, c["knob"]) == c["value"] and index.ntotal == N
    path = index.save(tmp_path / "idx")
    manifest = json.loads((path / "manifest.json").read_text())
    assert manifest["calibration"] == c and manifest[c["knob"]] == c["value"] and manifest["calibrate_on_add"]
    loaded = Index.load(path)
    assert loaded.calibration_ == c and getattr(loaded, c["knob"]) == c["value"] and loaded.calibrate_on_add
    faiss_knob = loaded.index_.nprobe if kind == "ivf" else loaded.index_.hnsw.efSearch
    assert faiss_knob == c["value"]  # FAISS searches with it when search is not told otherwise
    for a, b in zip(index.search(X, 7), loaded.search(X, 7)):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("metric", ["l2", "hamming"])
def test_hnsw_holding_back_calibration_queries_keeps_the_order_of_the_rows(metric, feats):
    X = data_for(metric, feats)
    index = Index(metric, kind="hnsw").add(X[:40]).add(X[40:])  # both adds calibrate on held-back rows
    assert index.calibration_["queries"] == "held back" and index.calibration_["ntotal"] == 40 + 24 - 2
    stored = np.packbits(X, axis=1) if metric == "hamming" else X
    np.testing.assert_array_equal(index.index_.reconstruct_n(0, N), stored)  # row i at position i
    D, I = index.search(X, 1)
    np.testing.assert_array_equal(I[:, 0], np.arange(N))  # every stored vector finds itself, by its id
    assert (D[:, 0] == 0).all()


def test_manifest_without_calibration_loads_with_its_knobs(feats, tmp_path):
    X = feats["float"]
    path = Index("l2", kind="ivf", nlist=4, nprobe=3).train(X).add(X).save(tmp_path / "idx")
    m = json.loads((path / "manifest.json").read_text())
    assert m["calibration"] is None and not m["calibrate_on_add"]  # a fixed nprobe is not calibrated
    for key in ("calibration", "calibrate_on_add", "target_recall"):  # as an older version wrote it
        del m[key]
    (path / "manifest.json").write_text(json.dumps(m))
    loaded = Index.load(path)
    assert loaded.nprobe == loaded.index_.nprobe == 3 and loaded.calibration_ is None
    loaded.add(X[:5] + 1.0)  # and adding does not calibrate
    assert loaded.calibration_ is None and loaded.ntotal == N + 5


@pytest.mark.parametrize("metric", ["l2", "cosine"])
def test_batched_exact_search_matches_one_query_at_a_time(metric, feats):
    X = feats["float"]
    index = Index(metric).add(X)
    before = faiss.cvar.distance_compute_blas_threshold
    D, I = index.search(X, 10)  # 64 queries: matrix products (BLAS)
    assert faiss.cvar.distance_compute_blas_threshold == before  # restored
    with blas_batches(index.d):  # FAISS compares queries x dimension with the threshold
        assert faiss.cvar.distance_compute_blas_threshold <= BLAS_MIN_QUERIES * index.d < N * index.d
    singles = [index.search(X[i:i + 1], 10) for i in range(N)]  # one query: FAISS' scan, no BLAS
    np.testing.assert_allclose(D, np.concatenate([d for d, _ in singles]), rtol=1e-6, atol=1e-6)
    np.testing.assert_array_equal(I, np.concatenate([i for _, i in singles]))
    if metric == "l2":  # distances computed directly, so a stored vector is exactly 0 from itself
        assert (D[:, 0] == 0).all() and (I[:, 0] == np.arange(N)).all()


def saved(feats, tmp_path) -> Path:
    index = Index("l2", descriptor="hog", params={"orientations": 9}).add(feats["float"])
    return index.save(tmp_path / "idx")


def test_load_refuses_other_descriptor_or_dim(feats, tmp_path):
    path = saved(feats, tmp_path)
    with pytest.raises(ValueError, match=r"descriptor 'hog' \{'orientations': 9\}.*this query uses 'bovw'"):
        Index.load(path, descriptor="bovw")
    with pytest.raises(ValueError, match=r"dim 256.*dim 64"):
        Index.load(path, dim=64)
    with pytest.raises(ValueError, match=r"'orientations': 9.*'orientations': 12"):
        Index.load(path, params={"orientations": 12})
    Index.load(path).check_query("hog", {"orientations": 9}, 256)  # matching query passes


def test_tampered_vectors_fail_checksum(feats, tmp_path):
    path = saved(feats, tmp_path)
    f = path / "index.faiss"
    raw = bytearray(f.read_bytes())
    raw[-5] ^= 0xFF  # flip one byte of a stored vector
    f.write_bytes(bytes(raw))
    with pytest.raises(ValueError, match=r"index\.faiss.*checksum"):
        Index.load(path)


def test_truncated_faiss_file_names_the_file(feats, tmp_path):
    path = saved(feats, tmp_path)
    f = path / "index.faiss"
    f.write_bytes(f.read_bytes()[:100])
    with pytest.raises(ValueError, match=str(f).replace(".", r"\.")):
        Index.load(path)  # caught by the checksum
    # even with a manifest rewritten to match, FAISS' own read error is reported with the path
    m = json.loads((path / "manifest.json").read_text())
    m["sha256"]["index.faiss"] = hashlib.sha256(f.read_bytes()).hexdigest()
    (path / "manifest.json").write_text(json.dumps(m))
    with pytest.raises(ValueError, match=r"index\.faiss: cannot read the FAISS index"):
        Index.load(path)


def test_missing_manifest_names_the_file(feats, tmp_path):
    path = saved(feats, tmp_path)
    (path / "manifest.json").unlink()
    with pytest.raises(FileNotFoundError, match=r"idx/manifest\.json"):
        Index.load(path)


def test_failed_save_leaves_nothing(feats, tmp_path, monkeypatch):
    index = Index("l2").add(feats["float"])

    def broken(*args):
        raise RuntimeError("disk full")

    monkeypatch.setattr(faiss, "write_index", broken)
    with pytest.raises(RuntimeError, match="disk full"):
        index.save(tmp_path / "idx")
    assert os.listdir(tmp_path) == []


def test_failed_overwrite_keeps_old_index(feats, tmp_path, monkeypatch):
    path = saved(feats, tmp_path)
    before = Index.load(path).search(feats["float"][:4], 3)
    monkeypatch.setattr(np, "save", lambda *a, **k: (_ for _ in ()).throw(OSError("disk full")))
    with pytest.raises(OSError, match="disk full"):
        Index("l2", descriptor="other").add(feats["float"][:10]).save(path)
    assert sorted(os.listdir(tmp_path)) == ["idx"]
    after = Index.load(path).search(feats["float"][:4], 3)
    np.testing.assert_array_equal(before[1], after[1])


@pytest.mark.parametrize("metric", METRICS)
def test_rerank_matches_brute_force_resort(metric, feats):
    first, second = data_for("l2", feats), data_for(metric, feats, second=True)
    D, I = Index("l2").add(first).search(first[:16], k=20)
    I[:, -2:] = -1  # padding must go last
    D2, I2 = rerank(D, I, second[:16], second, metric, k=12)
    full = brute(metric, second[:16], second)
    for i in range(16):
        cand = I[i, I[i] >= 0]
        d = full[i, cand]
        ref = np.sort(d)[:12]
        np.testing.assert_allclose(D2[i], ref, atol=TOL[metric] + 1e-5, rtol=1e-5)
        assert set(I2[i]) <= set(cand)
        np.testing.assert_allclose(full[i, I2[i]], ref, atol=TOL[metric] + 1e-5, rtol=1e-5)
    _, I_all = rerank(D, I, second[:16], second, metric)
    assert (I_all[:, -2:] == -1).all() and (I_all[:, :-2] >= 0).all()
