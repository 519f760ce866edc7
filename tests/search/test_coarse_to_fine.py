"""Coarse-to-fine search equals a brute-force FC1 search restricted to the Hamming pool (real vectors)."""

from __future__ import annotations

import numpy as np
import pytest

from cbmir_tf.search.coarse_to_fine import CoarseToFineSearch, class_filtered_ranking
from cbmir_tf.data.preprocess import resize_batch


@pytest.fixture(scope="module")
def vectors(fallback_benchmark):
    """120 real images (MedMNIST chest radiographs and breast ultrasound) as 256-d vectors and
    16-bit random-projection codes of them."""
    images = fallback_benchmark.images[::55][:120]
    feats = resize_batch(images, 16).reshape(len(images), -1).astype(np.float32) / 255.0
    rng = np.random.default_rng(0)
    codes = (feats - feats.mean(0)) @ rng.normal(size=(256, 16)) > 0
    return feats, codes


def brute_force(db_codes, db_feats, q_code, q_feat, threshold, k):
    dist = np.array([sum(int(a) != int(b) for a, b in zip(c, q_code)) for c in db_codes])
    pool = [i for i in range(len(db_codes)) if dist[i] <= threshold]
    d = [float(np.sqrt(((db_feats[i] - q_feat) ** 2).sum())) for i in pool]
    return [pool[j] for j in np.argsort(d, kind="stable")[:k]], len(pool)


def test_equals_brute_force_within_the_pool(vectors):
    feats, codes = vectors
    db, q = slice(0, 100), slice(100, 120)
    search = CoarseToFineSearch(hamming_threshold=4).fit(codes[db], feats[db])
    D, I, pools = search.search(codes[q], feats[q], k=5, return_pools=True)
    for row in range(20):
        want, size = brute_force(codes[db], feats[db], codes[q][row], feats[q][row], pools["threshold"][row], 5)
        assert I[row][I[row] >= 0].tolist() == want and pools["size"][row] == size
        assert (I[row] < 0).sum() == max(0, 5 - size)
    for row in D:
        assert np.all(np.diff(row[np.isfinite(row)]) >= 0)


def test_empty_pool_widens_then_falls_back(vectors):
    feats, codes = vectors
    db, q = slice(0, 100), slice(100, 110)
    widened = CoarseToFineSearch(hamming_threshold=0, threshold_step=1, min_pool=10).fit(codes[db], feats[db])
    _, I, pools = widened.search(codes[q], feats[q], k=3, return_pools=True)
    for row in range(10):
        r = pools["threshold"][row]
        _, size_at = brute_force(codes[db], feats[db], codes[q][row], feats[q][row], r, 3)
        _, size_before = brute_force(codes[db], feats[db], codes[q][row], feats[q][row], r - 1, 3) if r else (0, 0)
        assert size_at >= 10 and (r == 0 or size_before < 10)
    fallback = CoarseToFineSearch(hamming_threshold=0, max_threshold=1, min_pool=1000).fit(codes[db], feats[db])
    D, I, pools = fallback.search(codes[q], feats[q], k=4, return_pools=True)
    assert pools["exhaustive"].all() and (pools["size"] == 100).all() and (pools["threshold"] == -1).all()
    D_all, I_all = fallback.exhaustive_search(feats[q], 4)
    np.testing.assert_array_equal(I, I_all)
    np.testing.assert_allclose(D, D_all, rtol=1e-4, atol=1e-4)


def test_self_query_rank_one_exclude_and_full_ranking(vectors):
    feats, codes = vectors
    search = CoarseToFineSearch(hamming_threshold=2).fit(codes, feats)
    _, I = search.search(codes[:10], feats[:10], k=1)
    assert I[:, 0].tolist() == list(range(10))
    _, I = search.search(codes[:10], feats[:10], k=3, exclude=np.arange(10))
    assert not (I == np.arange(10)[:, None]).any()
    ranking = search.ranking(codes[:5], feats[:5])
    assert ranking.shape == (5, 120) and all(sorted(r) == list(range(120)) for r in ranking)


def test_class_filtered_ranking_by_brute_force(vectors):
    feats, _ = vectors
    rng = np.random.default_rng(1)
    probs = rng.dirichlet(np.ones(3), size=len(feats))
    ranking = class_filtered_ranking(probs[:4], probs[4:], feats[:4], feats[4:])
    for q in range(4):
        same = probs[4:].argmax(1) == probs[q].argmax()
        d = ((feats[4:] - feats[q]) ** 2).sum(1)
        want = sorted(range(len(d)), key=lambda i: (not same[i], d[i]))
        assert ranking[q].tolist() == want


def test_bad_input():
    with pytest.raises(ValueError, match="Received: hamming_threshold=-1"):
        CoarseToFineSearch(hamming_threshold=-1).fit(np.zeros((2, 8)), np.zeros((2, 3)))
    with pytest.raises(ValueError, match="0/1 bits"):
        CoarseToFineSearch().fit(np.full((2, 8), 3), np.zeros((2, 3)))
    with pytest.raises(ValueError, match="call fit first"):
        CoarseToFineSearch().search(np.zeros((1, 8)), np.zeros((1, 3)))
