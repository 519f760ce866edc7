"""Re-ranking with a second descriptor, in memory-bounded chunks (paper 002, Figs. 7-8).

Paper 002 retrieves ``k_prep`` candidates with one method, re-sorts them by the
distance under another method, and keeps the top ``k``. `rerank` does
the re-sort; it gathers a ``(nq, k_prep, d)`` block of candidate vectors, which for a
few thousand queries, ``k_prep = 100`` and 4,608-d CNN vectors would not fit in memory,
so `rerank_hits` feeds it a chunk of queries at a time.

Reference: Barać et al. (paper 002), Section VIII-B.4 and Figs. 7-8.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from cbmir_tf.search.index import _PAD_INT, METRICS, _as_vectors


def rerank(D, I, query_vectors, database_vectors, metric: str, k: int | None = None):
    """Re-sort each row of candidates ``I`` by distance under a second descriptor; keep the top ``k``.

    Args:
        D: Distances of shape ``(nq, kp)`` from the first search (only its shape is used; ties
            under the new distance keep the first search's order).
        I: Candidate ids of shape ``(nq, kp)``, row positions in ``database_vectors``; -1 = padding.
        query_vectors: ``(nq, d2)`` queries under the second descriptor.
        database_vectors: ``(n, d2)`` database under the second descriptor.
        metric: ``"l2"``, ``"l1"``, ``"cosine"`` or ``"hamming"`` (codes as accepted by ``Index.add``).
        k: Neighbours to keep. Defaults to ``kp``.

    Returns:
        ``(D2, I2)`` of shape ``(nq, k)``, distances as ``Index.search`` reports them; padding last.
    """
    if metric not in METRICS:
        raise ValueError(f"metric must be one of {METRICS}. Received: metric={metric!r}")
    I = np.asarray(I, dtype=np.int64)
    if I.ndim != 2 or np.shape(D) != I.shape:
        raise ValueError(f"D and I must share a 2-D shape (nq, kp). Got {np.shape(D)} and {I.shape} instead.")
    Q = _as_vectors(query_vectors, metric, name="query_vectors")
    d2 = Q.shape[1] * (8 if metric == "hamming" else 1)
    X = _as_vectors(database_vectors, metric, d2, "database_vectors")
    if Q.shape[0] != I.shape[0]:
        raise ValueError(f"query_vectors must have one row per row of I ({I.shape[0]}). "
                         f"Got {Q.shape[0]} instead.")
    if (I >= len(X)).any():
        raise ValueError(f"I holds ids up to {I.max()}, but database_vectors has only {len(X)} rows.")
    C = X[np.maximum(I, 0)]  # candidates, (nq, kp, d2)
    if metric == "hamming":
        dist = np.where(I < 0, _PAD_INT, np.unpackbits(Q[:, None, :] ^ C, axis=-1).sum(-1))
    else:
        diff = Q[:, None, :].astype(np.float64) - C  # float64 so that the re-sort is exact
        dist = {"l2": lambda: np.sqrt((diff**2).sum(-1)), "l1": lambda: np.abs(diff).sum(-1),
                "cosine": lambda: 1.0 - np.einsum("qd,qkd->qk", Q.astype(np.float64), C)}[metric]()
        dist = np.where(I < 0, np.inf, dist)
    order = np.argsort(dist, axis=1, kind="stable")[:, :k]
    D2 = np.take_along_axis(dist, order, 1)
    return D2.astype(np.int32 if metric == "hamming" else np.float32), np.take_along_axis(I, order, 1)


def rerank_hits(first_hits: np.ndarray, query_vectors: np.ndarray, database_vectors: np.ndarray, metric: str,
                k_prep: int, k: int = 10, max_bytes: float = 2e8) -> tuple[np.ndarray, np.ndarray]:
    """Re-sort the first ``k_prep`` hits of each query by a second descriptor and keep ``k``.

    Args:
        first_hits: ``(nq, >= k_prep)`` database row numbers from the first method, nearest first.
        query_vectors: ``(nq, d2)`` queries under the second descriptor.
        database_vectors: ``(n, d2)`` database under the second descriptor.
        metric: The second descriptor's metric (``"l2"``, ``"l1"``, ``"cosine"``, ``"hamming"``).
        k_prep: Candidates taken from the first method.
        k: Hits kept (at most ``k_prep``). Defaults to 10.
        max_bytes: Bound on the float64 candidate block of one chunk. Defaults to 2e8.

    Returns:
        ``(D, I)`` of shape ``(nq, min(k, k_prep))``: distances under the second descriptor and
        database row numbers, a permutation of (a prefix of) each row's ``k_prep`` candidates.
    """
    first_hits = np.asarray(first_hits)
    if first_hits.ndim != 2 or first_hits.shape[1] < k_prep or k_prep < 1:
        raise ValueError(f"first_hits must have shape (nq, >= k_prep) with k_prep >= 1. Got shape "
                         f"{first_hits.shape} and k_prep={k_prep} instead.")
    candidates = first_hits[:, :k_prep]
    row_bytes = 8 * k_prep * max(1, np.shape(database_vectors)[1])
    step = max(1, int(max_bytes // row_bytes))
    Ds, Is = [], []
    for s in range(0, len(candidates), step):
        block = candidates[s:s + step]
        D, I = rerank(np.zeros(block.shape, np.float32), block, query_vectors[s:s + step], database_vectors,
                      metric, min(k, k_prep))
        Ds.append(D)
        Is.append(I)
    return np.concatenate(Ds), np.concatenate(Is)


def rerank_sweep(first_hits: np.ndarray, query_vectors: np.ndarray, database_vectors: np.ndarray, metric: str,
                 k_preps: Iterable[int], k: int = 10) -> dict[int, np.ndarray]:
    """`rerank_hits` for each ``k_prep`` (a prefix of one first search): ``{k_prep: (nq, k) hits}``."""
    return {int(kp): rerank_hits(first_hits, query_vectors, database_vectors, metric, int(kp), k)[1]
            for kp in k_preps}
