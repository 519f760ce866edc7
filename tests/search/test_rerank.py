"""Re-ranking the hits of one descriptor by another (paper 002, Figs. 7-8), on real images."""

import numpy as np
import pytest

from cbmir_tf.evaluation import search_database
from cbmir_tf.features.hog import HOGDescriptor
from cbmir_tf.search.rerank import rerank_hits, rerank_sweep


@pytest.fixture(scope="module")
def methods(small_benchmark):
    """First method: HOG with cell 32 and 9 bins; second: HOG with cell 16 and 15 bins; on real images
    (28 px MedMNIST, enlarged to 128 px): 40 archive images, 40 queries."""
    archive = small_benchmark.take_split("train")
    queries = small_benchmark.take_split("test").subset(np.arange(40))
    first = HOGDescriptor(cell_size=32, block_size=64, block_stride=64, n_bins=9, image_size=128)
    second = HOGDescriptor(cell_size=16, block_size=32, block_stride=16, n_bins=15, image_size=128)
    first, second = first.fit(archive.images), second.fit(archive.images)
    _, hits = search_database(first.transform(archive.images), first.transform(queries.images), "l1", 30)
    return hits, second.transform(queries.images), second.transform(archive.images)


def test_rerank_returns_a_permutation_of_its_candidates(methods):
    hits, q2, db2 = methods
    D, I = rerank_hits(hits, q2, db2, "l1", k_prep=20, k=20)
    assert I.shape == (len(hits), 20)
    for row, candidates in zip(I, hits[:, :20]):
        assert sorted(row) == sorted(candidates)
    expected = np.abs(q2[:, None, :].astype(np.float64) - db2[I]).sum(-1)
    np.testing.assert_allclose(D, expected, rtol=1e-5)
    assert (np.diff(D, axis=1) >= 0).all()


def test_rerank_keeps_the_best_k_of_the_candidates_and_chunks_transparently(methods):
    hits, q2, db2 = methods
    _, full = rerank_hits(hits, q2, db2, "l1", k_prep=30, k=30)
    _, top = rerank_hits(hits, q2, db2, "l1", k_prep=30, k=10, max_bytes=1)  # one query per chunk
    np.testing.assert_array_equal(top, full[:, :10])
    assert all(set(row) <= set(c) for row, c in zip(top, hits))


def test_rerank_sweep_uses_prefixes_of_the_first_search(methods):
    hits, q2, db2 = methods
    sweep = rerank_sweep(hits, q2, db2, "l1", (10, 30), k=10)
    assert set(sweep) == {10, 30}
    for row, candidates in zip(sweep[10], hits[:, :10]):
        assert sorted(row) == sorted(candidates)
    with pytest.raises(ValueError, match="k_prep=50"):
        rerank_hits(hits, q2, db2, "l1", k_prep=50)
