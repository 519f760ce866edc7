"""Coarse-to-fine search of paper 001: a Hamming pool on the binary codes, then Euclidean FC1 ranking.

For a query with binary code ``h_q`` (H >= 0.5) and FC1 vector ``v_q``:

1. **coarse**: the candidate pool ``P`` is every database image whose code lies within
   ``hamming_threshold`` bits of ``h_q``;
2. **fine**: the pool is ranked by the Euclidean distance of FC1 vectors and the first
   ``k`` are returned.

**Empty or small pools.** If ``P`` holds fewer than ``min_pool`` images, the threshold grows
by ``threshold_step`` bits until it does or until ``max_threshold`` is reached. If the pool
is still too small then, the query falls back to an exhaustive FC1 search over the whole
database. A pool smaller than ``k`` (but at least ``min_pool``) returns fewer than ``k``
results, padded with id -1 and distance inf. The pool size, the threshold finally used and
whether the query fell back are reported per query.

The coarse step computes the Hamming distance of the query to every database code at once
(XOR and popcount of the packed codes, ``n * bits / 8`` bytes), so widening the radius only
recounts an array. The fallback and :meth:`CoarseToFineSearch.exhaustive_search` use an exact
``Index("l2")`` over all FC1 vectors.

Reference: Qin et al. (paper 001), Section 3.3 and Fig. 5.
"""

from __future__ import annotations

import numpy as np

from cbmir_tf.search.index import Index

__all__ = ["CoarseToFineSearch", "class_filtered_ranking"]


def class_filtered_ranking(query_probabilities, database_probabilities, query_features, database_features):
    """Paper 001's "FC1+FC3" ranking: images of the query's predicted class first, each part by FC1 distance.

    The predicted class is the argmax of the FC3 softmax. Within the predicted class and among
    the rest, images are ordered by the Euclidean distance of FC1 vectors.

    Args:
        query_probabilities: FC3 outputs ``(nq, classes)``.
        database_probabilities: FC3 outputs ``(n, classes)``.
        query_features: FC1 vectors ``(nq, d)``.
        database_features: FC1 vectors ``(n, d)``.

    Returns:
        int64 ids ``(nq, n)``, the full ranking of the database for every query.
    """
    qp, dp = np.asarray(query_probabilities), np.asarray(database_probabilities)
    qf, df = np.asarray(query_features, np.float32), np.asarray(database_features, np.float32)
    if qp.shape[1] != dp.shape[1] or qf.shape[1] != df.shape[1] or len(qp) != len(qf) or len(dp) != len(df):
        raise ValueError(f"inconsistent shapes: query FC3 {qp.shape}, database FC3 {dp.shape}, "
                         f"query FC1 {qf.shape}, database FC1 {df.shape}")
    d = ((qf[:, None, :] - df[None, :, :]) ** 2).sum(-1)  # (nq, n) squared FC1 distances
    other = qp.argmax(1)[:, None] != dp.argmax(1)[None, :]
    return np.lexsort((d, other), axis=1).astype(np.int64)


def _as_bits(codes, name: str) -> np.ndarray:
    """0/1 or bool codes ``(n, bits)`` as bool (one bit a column), so that ``Index`` packs them itself."""
    codes = np.asarray(codes)
    if codes.ndim != 2 or not np.isin(codes, (0, 1)).all():
        raise ValueError(f"{name} must be a 2-D array of 0/1 bits (n, bits), one bit per column. "
                         f"Got dtype {codes.dtype} of shape {codes.shape} with other values instead.")
    return codes.astype(bool)


class CoarseToFineSearch:
    """Hamming candidate pool on binary codes, then exact L2 ranking of FC1 vectors inside the pool.

    Args:
        hamming_threshold: Largest Hamming distance (bits) of the first pool. Defaults to 8.
        threshold_step: Bits added per widening step. Defaults to 2.
        max_threshold: Largest threshold tried before the exhaustive fallback; `None` means the
            code length (then the pool ends up holding every image). Defaults to `None`.
        min_pool: Smallest acceptable pool. Defaults to 1 (only an empty pool widens).

    Learned state (``fit``): ``codes_`` (bool ``(n, bits)``), ``features_`` (float32 ``(n, d)``),
    ``packed_codes_`` (uint8 ``(n, ceil(bits / 8))``), ``n_bits_`` and ``l2_index_`` (the exhaustive fallback).

    Example:
        >>> codes = np.array([[0] * 8, [1] * 8, [0] * 7 + [1]], dtype=np.uint8)
        >>> feats = np.array([[0.0], [5.0], [1.0]], dtype=np.float32)
        >>> search = CoarseToFineSearch(hamming_threshold=1).fit(codes, feats)
        >>> D, I, pools = search.search(codes[:1], feats[:1], k=3, return_pools=True)
        >>> I.tolist(), pools["size"].tolist()
        ([[0, 2, -1]], [2])
    """

    def __init__(self, *, hamming_threshold: int = 8, threshold_step: int = 2, max_threshold: int | None = None,
                 min_pool: int = 1):
        self.hamming_threshold = hamming_threshold
        self.threshold_step = threshold_step
        self.max_threshold = max_threshold
        self.min_pool = min_pool

    def _check_params(self) -> None:
        for name in ("hamming_threshold", "threshold_step", "min_pool"):
            value = getattr(self, name)
            if not isinstance(value, (int, np.integer)) or value < (1 if name != "hamming_threshold" else 0):
                raise ValueError(f"{name} must be a {'positive' if name != 'hamming_threshold' else 'non-negative'} "
                                 f"integer. Received: {name}={value!r}")
        if self.max_threshold is not None and self.max_threshold < self.hamming_threshold:
            raise ValueError(f"max_threshold must be >= hamming_threshold ({self.hamming_threshold}). "
                             f"Received: max_threshold={self.max_threshold!r}")

    def fit(self, codes, features) -> "CoarseToFineSearch":
        """Store the database: 0/1 or bool ``codes`` ``(n, bits)`` (bits a multiple of 8) and FC1 ``features`` ``(n, d)``."""
        self._check_params()
        codes, features = np.asarray(codes), np.asarray(features, dtype=np.float32)
        if codes.ndim != 2 or features.ndim != 2 or len(codes) != len(features) or len(codes) == 0:
            raise ValueError(f"codes (n, bits) and features (n, d) must be non-empty 2-D arrays with the same n. "
                             f"Got shapes {codes.shape} and {features.shape} instead.")
        codes = _as_bits(codes, "codes")
        self.packed_codes_ = np.packbits(codes, axis=1)
        self.l2_index_ = Index("l2", descriptor="inres_net_fc1").add(features)
        self.codes_, self.features_ = codes, features
        self.n_bits_ = codes.shape[1]
        return self

    def _check_fitted(self) -> None:
        if not hasattr(self, "features_"):
            raise ValueError("This CoarseToFineSearch is not fitted yet; call fit first.")

    def search(self, query_codes, query_features, k: int = 10, *, exclude=None, return_pools: bool = False):
        """Coarse-to-fine top-``k`` of each query.

        Args:
            query_codes: 0/1 codes ``(nq, bits)``.
            query_features: FC1 vectors ``(nq, d)``.
            k: Results per query. Defaults to 10.
            exclude: Optional database ids ``(nq,)`` left out of each query's pool (leave-one-out).
            return_pools: Also return the per-query pool statistics. Defaults to `False`.

        Returns:
            ``(D, I)``: FC1 Euclidean distances (float32) and database ids (int64), ``(nq, k)``,
            nearest first, padded with inf / -1 when a pool is smaller than ``k``. With
            ``return_pools``, a third item: dict of ``(nq,)`` arrays ``"size"`` (final pool size),
            ``"threshold"`` (bits used; -1 after the fallback) and ``"exhaustive"`` (bool).
        """
        self._check_fitted()
        self._check_params()
        if int(k) < 1:
            raise ValueError(f"k must be a positive integer. Received: k={k!r}")
        query_features = np.asarray(query_features, dtype=np.float32)
        nq, n = len(query_features), len(self.features_)
        if np.shape(query_codes)[0] != nq:
            raise ValueError(f"query_codes and query_features must have the same number of rows. "
                             f"Got {np.shape(query_codes)[0]} and {nq} instead.")
        query_codes = _as_bits(query_codes, "query_codes")
        if query_codes.shape[1] != self.n_bits_:
            raise ValueError(f"query_codes must have {self.n_bits_} bits. Got {query_codes.shape[1]} instead.")
        packed = np.packbits(query_codes, axis=1)
        top = self.max_threshold if self.max_threshold is not None else self.n_bits_
        excluded = np.full(nq, -1) if exclude is None else np.asarray(exclude, dtype=np.int64)
        D = np.full((nq, int(k)), np.inf, dtype=np.float32)
        I = np.full((nq, int(k)), -1, dtype=np.int64)
        sizes, thresholds, exhaustive = np.zeros(nq, np.int64), np.zeros(nq, np.int64), np.zeros(nq, bool)
        for q in range(nq):
            dist = np.bitwise_count(np.bitwise_xor(self.packed_codes_, packed[q])).sum(axis=1, dtype=np.int64)
            if 0 <= excluded[q] < n:
                dist[excluded[q]] = np.iinfo(np.int64).max  # never in any pool
            threshold = int(self.hamming_threshold)
            while True:
                within = dist <= threshold
                size = int(within.sum())
                if size >= self.min_pool or threshold >= top:
                    break
                threshold = min(threshold + int(self.threshold_step), top)
            if size < self.min_pool:  # still too small at max_threshold: exhaustive FC1 search
                pool = np.flatnonzero(dist < np.iinfo(np.int64).max)
                threshold, exhaustive[q] = -1, True
            else:
                pool = np.flatnonzero(within)
            d = np.linalg.norm(self.features_[pool] - query_features[q], axis=1)
            order = np.argsort(d, kind="stable")[: int(k)]
            D[q, : len(order)], I[q, : len(order)] = d[order], pool[order]
            sizes[q], thresholds[q] = len(pool), threshold
        if return_pools:
            return D, I, {"size": sizes, "threshold": thresholds, "exhaustive": exhaustive}
        return D, I

    def ranking(self, query_codes, query_features, *, exclude=None) -> np.ndarray:
        """Full ranking of the database for precision-recall: the pool first (by FC1), then the rest (by FC1).

        Returns:
            int64 ids ``(nq, n)`` (``n - 1`` columns with `exclude`).
        """
        n = len(self.features_) - (exclude is not None)
        _, pool_ids = self.search(query_codes, query_features, n, exclude=exclude)
        _, all_ids = self.exhaustive_search(query_features, n, exclude=exclude)
        out = np.empty_like(all_ids)
        for q in range(len(all_ids)):
            pool = pool_ids[q][pool_ids[q] >= 0]
            out[q] = np.concatenate([pool, all_ids[q][~np.isin(all_ids[q], pool)]])
        return out

    def exhaustive_search(self, query_features, k: int = 10, *, exclude=None):
        """The baseline: exact FC1 Euclidean search over the whole database, ``(D, I)`` of ``(nq, k)``."""
        self._check_fitted()
        return self.l2_index_.search(query_features, k, exclude=exclude)
