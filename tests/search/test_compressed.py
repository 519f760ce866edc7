"""IVF-PQ indexes (Index(kind="ivfpq")) and the streamed compressed-index benchmark, on real HOG vectors."""

from __future__ import annotations

import json

import faiss
import numpy as np
import pytest

from cbmir_tf.search import compressed
from cbmir_tf.search import index as index_module
from cbmir_tf.search.index import Index, default_pq_m, recall_at_k
from cbmir_tf.search.scale import real_features, replica_blocks, replicate

K = 10


@pytest.fixture(scope="module")
def hog(fallback_benchmark):
    """324-d HOG vectors of the MedMNIST fallback: 5,856 training images (the archive), 780 test images."""
    return (real_features(fallback_benchmark.take_split("train").images)["float"],
            real_features(fallback_benchmark.take_split("test").images)["float"])


@pytest.fixture(scope="module")
def pq_index(hog):
    archive, _ = hog
    return Index("l2", kind="ivfpq").train(archive).add(archive)


def test_default_pq_m_is_the_divisor_nearest_an_eighth_of_the_dimension():
    assert [default_pq_m(d) for d in (324, 512, 2048, 7, 64)] == [36, 64, 256, 1, 8]


def test_ivfpq_warns_once_when_its_codebooks_get_few_training_vectors(hog):
    archive, _ = hog
    with pytest.warns(UserWarning, match="trained on 5,856 vectors") as caught:
        Index("l2", kind="ivfpq", nlist=8).train(archive)
    assert len(caught) == 1


def test_ivfpq_keeps_36_bytes_an_image_and_finds_most_exact_neighbours(hog, pq_index):
    archive, queries = hog
    _, I_exact = Index("l2").add(archive).search(queries, K)
    c = pq_index.calibration_
    assert pq_index.pq_m == 36 and c["knob"] == "nprobe" and c["reached"] and c["value"] == pq_index.nprobe
    recall = recall_at_k(pq_index.search(queries, K)[1], I_exact)
    recall_all = recall_at_k(pq_index.search(queries, K, nprobe=pq_index.nlist)[1], I_exact)
    assert 0.5 < recall <= recall_all < 0.95  # the codes lose neighbours that no nprobe brings back
    assert recall >= 0.9 * recall_all  # the calibrated nprobe keeps almost all of what the codes can find
    size = len(faiss.serialize_index(pq_index.index_)) / len(archive)
    assert size < archive.shape[1] * 4 / 5  # 1,296 bytes a HOG vector, 36 + 8 a code and its id


def test_ivfpq_survives_save_and_load(hog, pq_index, tmp_path):
    _, queries = hog
    path = pq_index.save(tmp_path / "pq")
    manifest = json.loads((path / "manifest.json").read_text())
    assert manifest["kind"] == "ivfpq" and manifest["pq_m"] == 36 and manifest["opq"] is False
    loaded = Index.load(path)
    assert (loaded.pq_m, loaded.nprobe, loaded.opq) == (36, pq_index.nprobe, False)
    for a, b in zip(pq_index.search(queries, K), loaded.search(queries, K)):
        np.testing.assert_array_equal(a, b)


def test_opq_rotates_before_coding_and_pads_a_dimension_pq_m_does_not_divide(hog, monkeypatch):
    archive, queries = hog
    monkeypatch.setattr(index_module, "OPQ_ITERATIONS", 3)  # FAISS' 50 take a minute here
    index = Index("l2", kind="ivfpq", nlist=4, pq_m=7, opq=True, nprobe=4).train(archive[:400])
    index.add(archive[:2000])
    assert isinstance(index.index_, faiss.IndexPreTransform) and index.d == 324
    assert faiss.extract_index_ivf(index.index_).d == 329  # 7 sub-vectors of 47 dimensions
    D, I = index.search(queries[:20], K)
    assert I.shape == (20, K) and (I >= 0).all() and np.all(np.diff(D, axis=1) >= 0)


def test_ivfpq_refuses_what_it_cannot_code(hog):
    archive, _ = hog
    with pytest.raises(ValueError, match="metric 'l2' or 'cosine'"):
        Index("hamming", kind="ivfpq")
    with pytest.raises(ValueError, match="pq_m must divide the dimension 324 \\(or set opq=True\\)"):
        Index("l2", kind="ivfpq", pq_m=40).train(archive)
    with pytest.raises(ValueError, match="at least 256 training vectors"):
        Index("l2", kind="ivfpq").train(archive[:100])
    with pytest.raises(ValueError, match="with opq needs at least 361 training vectors"):  # 40 x 9 dims
        Index("l2", kind="ivfpq", pq_m=40, opq=True).train(archive[:300])
    with pytest.raises(ValueError, match="call train"):
        Index("l2", kind="ivfpq").add(archive)


def test_streamed_exact_neighbours_and_rows_match_the_whole_archive(hog):
    archive, queries = hog
    X = replicate(archive, 20_000, seed=3)
    blocks = lambda: replica_blocks(archive, 20_000, seed=3, chunk_rows=4096)  # noqa: E731
    keep = np.array([0, 5, 5855, 5856, 19_999])
    D, I, kept = compressed.exact_neighbours(blocks(), queries[:50], K, keep=keep)
    D_flat, I_flat = Index("l2").add(X).search(queries[:50], K)
    np.testing.assert_array_equal(I, I_flat)
    np.testing.assert_allclose(D, D_flat, rtol=1e-4, atol=1e-4)
    np.testing.assert_array_equal(kept, X[keep])
    np.testing.assert_array_equal(compressed.gather_rows(blocks(), keep), X[keep])


def test_exact_reranking_of_a_shortlist_that_holds_the_answer_gives_the_exact_answer(hog):
    archive, queries = hog
    D_exact, I_exact = Index("l2").add(archive).search(queries[:30], 50)
    shuffled = np.random.default_rng(0).permuted(I_exact, axis=1)
    shuffled = np.concatenate([np.full((30, 1), -1), shuffled], axis=1)  # padding never wins
    rows = np.arange(len(archive))
    top = compressed.rerank_exact(queries[:30], shuffled, archive, rows, K, batch=7)
    distances = np.linalg.norm(archive[top] - queries[:30, None, :], axis=2)
    np.testing.assert_allclose(distances, D_exact[:, :K], rtol=1e-5, atol=1e-5)  # tied images may swap
    assert recall_at_k(top, I_exact[:, :K]) > 0.9 and (top >= 0).all()


def test_source_recall_forgives_another_copy_of_the_same_real_image():
    I_exact = np.array([[3, 13, 7]])  # with 10 real images, rows 3 and 13 are copies of image 3
    assert compressed.source_recall(np.array([[23, 7, -1]]), I_exact, 10).tolist() == [1.0]
    assert compressed.source_recall(np.array([[23, 8, -1]]), I_exact, 10).tolist() == [0.5]


def test_compressed_benchmark_reports_codes_recall_and_reranking_on_a_streamed_archive(hog):
    archive, queries = hog
    table = compressed.run_compressed_benchmark(archive, queries[:200], queries[200:500], [20_000],
                                                pq_ms=(None,), shortlists=(100,), n_timing=5, log=None)
    row = table.iloc[0]
    assert (row["n"], row["n_real"], row["pq_m"], row["flat_bytes_per_image"]) == (20_000, 5856, 36, 1296)
    assert row["nlist"] == 20_000 // 39 and 1 <= row["nprobe"] <= 512  # at most one cell per 39 training rows
    assert row["calibration_recall"] >= 0.95
    assert row["bytes_per_image"] < 1296 / 5
    assert 0 < row["recall"] <= row["recall_all_cells"] + 0.02
    assert row["recall"] < row["rerank100_recall"] <= 1 and 0 < row["source_recall"] <= 1
