"""Re-ranking with a second descriptor, in memory-bounded chunks (paper 002, Figs. 7-8).

Paper 002 retrieves ``k_prep`` candidates with one method, re-sorts them by the
distance under another method, and keeps the top ``k``. `cbmir_tf.index.rerank` does
the re-sort; it gathers a ``(nq, k_prep, d)`` block of candidate vectors, which for a
few thousand queries, ``k_prep = 100`` and 4,608-d CNN vectors would not fit in memory,
so `rerank_hits` feeds it a chunk of queries at a time.

Reference: Barać et al. (paper 002), Section VIII-B.4 and Figs. 7-8.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from cbmir_tf.index import rerank


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
