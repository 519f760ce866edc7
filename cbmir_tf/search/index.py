"""Exact (and optionally approximate) k-NN search: a thin wrapper around FAISS.

``Index(metric)`` keeps FAISS' verbs and return order: ``train`` (IVF only), ``add``
then ``search(Q, k) -> (D, I)``, both of shape ``(nq, k)``. Distances are reported as
true distances, smallest first: Euclidean (not squared) for ``"l2"``, city-block for
``"l1"``, ``1 - cos`` for ``"cosine"`` and integer bit counts for ``"hamming"``.
``save``/``load`` store the FAISS file beside ``ids.npy`` and a ``manifest.json`` that
records the descriptor, its parameters and sha256 checksums, and refuse a mismatched query.

A compressed kind, ``"ivfpq"`` (optionally with an OPQ rotation), keeps a few bytes of product-
quantisation code per vector instead of the vector, for archives whose float vectors do not fit in
memory; its distances are those of the decoded vectors, so even a scan of every cell is approximate.

The approximate kinds calibrate their search knob (``nprobe`` for IVF, ``ef_search`` for HNSW)
when vectors are added (:meth:`Index.calibrate`, on a sample of their own vectors or on held-out
queries): the smallest value whose recall@10 against exact search reaches a target (0.95 by
default, with 95 % confidence) becomes the search default, and the manifest records it with the
recall it measured.

Exact L2 and cosine search of a batch of queries uses one matrix product (BLAS) per block of
stored vectors from :data:`BLAS_MIN_QUERIES` queries on. FAISS' own switch would leave every batch
of fewer than 128,000 / d queries (395 for 324-d HOG) to a scan of the archive per query.
"""

from __future__ import annotations

import json
import os
import statistics
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import faiss
import numpy as np
from faiss.contrib.inspect_tools import get_invlist

import cbmir_tf
from cbmir_tf.data.io import atomic_directory, sha256sum

METRICS = ("l2", "l1", "cosine", "hamming")
KINDS = ("flat", "hnsw", "ivf", "ivfpq")
_IVF_KINDS = ("ivf", "ivfpq")  # kinds searched through inverted lists, with nprobe
FORMAT_VERSION = 1
_INDEX_FILE, _IDS_FILE, _MANIFEST = "index.faiss", "ids.npy", "manifest.json"
_FAISS_METRIC = {"l2": faiss.METRIC_L2, "l1": faiss.METRIC_L1, "cosine": faiss.METRIC_INNER_PRODUCT}
_PAD_INT = np.iinfo(np.int32).max  # Hamming distance reported for padding ids (-1)
#: Search knobs of an approximate index that is not calibrated (``target_recall=None``).
DEFAULT_NPROBE, DEFAULT_EF_SEARCH = 16, 64
#: Recall@k (k = 10) that :meth:`Index.calibrate` aims for, on this many queries, and the confidence
#: that the mean recall over queries like them reaches it.
TARGET_RECALL, CALIBRATION_QUERIES, CALIBRATION_K, CALIBRATION_CONFIDENCE = 0.95, 1000, 10, 0.95
#: Largest ``ef_search`` calibration tries (an HNSW search reads a few ef_search x M vectors).
MAX_EF_SEARCH = 4096
#: Fewest queries that exact L2 and inner-product search compares with the stored vectors by matrix
#: products (BLAS) rather than one scan per query. FAISS switches when queries x dimension reaches
#: ``faiss.cvar.distance_compute_blas_threshold`` (128,000 in FAISS 1.15). One scan costs the same per
#: query whatever the batch; BLAS costs 3 to 4 times more for a single query but breaks even at about
#: 4 queries and is 13 times faster per query at 200 (1M x 324 floats, one core).
BLAS_MIN_QUERIES = 8
MIN_TRAIN_PER_CELL = 39  # FAISS' k-means wants at least 39 training vectors a cell
PQ_CENTROIDS = 256  # codes of one byte per sub-vector: 256 centroids each, trained by k-means
OPQ_ITERATIONS = 50  # alternations of rotation and codebooks when OPQ is trained (FAISS' default)
_CHUNK_ROWS = 65536  # stored vectors per block of calibration's exact search


def default_nlist(n_train: int) -> int:
    """IVF cells for ``n_train`` training vectors: about sqrt(n), at least 1 and at most n / 39."""
    return int(max(1, min(round(np.sqrt(n_train)), n_train // MIN_TRAIN_PER_CELL)))


def default_pq_m(d: int) -> int:
    """Sub-vectors (code bytes) of a product quantiser for dimension ``d``: the divisor of ``d``
    nearest to ``d / 8`` (the larger on a tie), so each byte encodes about 8 dimensions.

    Example:
        >>> default_pq_m(324), default_pq_m(512)  # HOG at 128 px, a 512-d CNN embedding
        (36, 64)
    """
    divisors = [m for m in range(1, d + 1) if d % m == 0]
    return min(divisors, key=lambda m: (abs(m - d / 8), -m))


def _as_vectors(X, metric: str, d: int | None = None, name: str = "X") -> np.ndarray:
    """Validate ``X`` and return contiguous float32 ``(n, d)`` or packed uint8 ``(n, d / 8)``.

    For ``"hamming"``, a uint8 array is taken as already packed (8 bits a byte, as
    ``np.packbits`` writes them); any other dtype (bool, or 0/1 ints/floats) holds one
    bit per column and is packed here. ``d`` is then a number of bits.
    """
    X = np.asarray(X)
    if X.ndim != 2:
        raise ValueError(f"{name} must be a 2-D array (n, d). Got shape {X.shape} instead.")
    if metric == "hamming":
        if X.dtype != np.uint8:
            if not np.isin(X, (0, 1)).all():  # also catches NaN
                raise ValueError(f"{name} must hold 0/1 bits or packed uint8 codes. Got dtype {X.dtype} "
                                 "with values other than 0 and 1 (or NaN) instead.")
            if X.shape[1] % 8:
                raise ValueError(f"hamming codes need a multiple of 8 bits. Got {X.shape[1]} bits instead.")
            X = np.packbits(X.astype(bool), axis=1)
        got = X.shape[1] * 8
        X = np.ascontiguousarray(X, dtype=np.uint8)
    else:
        X = np.ascontiguousarray(X, dtype=np.float32)
        if not np.isfinite(X).all():
            raise ValueError(f"{name} must be finite. Got {(~np.isfinite(X)).sum()} NaN/inf values instead.")
        got = X.shape[1]
        if metric == "cosine":  # unit rows; zero rows stay zero
            norms = np.linalg.norm(X, axis=1, keepdims=True)
            X = np.ascontiguousarray(X / np.where(norms > 0, norms, 1), dtype=np.float32)
    if d is not None and got != d:
        unit = " bits" if metric == "hamming" else ""
        raise ValueError(f"{name} must have dimension {d}{unit}. Got {got}{unit} (shape {X.shape}) instead.")
    return X


@contextmanager
def blas_batches(d: int, min_queries: int = BLAS_MIN_QUERIES) -> Iterator[None]:
    """Inside the block, FAISS' exact L2 / inner-product search of ``d``-dimensional vectors uses
    BLAS for batches of ``min_queries`` queries or more.

    Sets ``faiss.cvar.distance_compute_blas_threshold`` (global to the process; compared with
    queries x ``d``) to at most ``min_queries * d`` and restores it on exit. L1 and Hamming
    distances have no BLAS path.
    """
    before = faiss.cvar.distance_compute_blas_threshold
    faiss.cvar.distance_compute_blas_threshold = min(before, int(min_queries) * int(d))
    try:
        yield
    finally:
        faiss.cvar.distance_compute_blas_threshold = before


def recall_per_query(I, I_exact, D=None, D_exact=None) -> np.ndarray:
    """Fraction of each query's exact top-k ids that ``I`` found (both ``(nq, k)``): float ``(nq,)``.

    With ``D`` and ``D_exact`` (distances, smallest first) a returned id at a distance no larger
    than the exact k-th distance also counts, so that ties (e.g. equal Hamming distances) are hits.
    Padding (id -1) never counts.
    """
    I, I_exact = np.asarray(I), np.asarray(I_exact)
    k = I_exact.shape[1]
    hit = (I[:, :k, None] == I_exact[:, None, :]).any(-1) & (I[:, :k] >= 0)
    if D is not None:
        hit |= (np.asarray(D)[:, :k] <= np.asarray(D_exact)[:, k - 1:k]) & (I[:, :k] >= 0)
    return hit.sum(1) / k


def recall_at_k(I, I_exact, D=None, D_exact=None) -> float:
    """Mean of :func:`recall_per_query`: recall@k of ``I`` against the exact ``I_exact``."""
    return float(recall_per_query(I, I_exact, D, D_exact).mean())


def _direct_scores(flat, Q: np.ndarray, I: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Scores (squared L2 or inner product) from each query of ``Q`` to its found rows ``I`` of a
    flat float index, computed one pair at a time, with each row re-sorted by them (ties by position).

    BLAS finds the neighbours through matrix products, and L2 as ``|q|^2 - 2 q.x + |x|^2``, whose
    round-off would put identical vectors up to about 1e-2 apart; recomputed, they are exactly 0
    apart, and a batch's distances no longer depend on whether FAISS used BLAS for it.
    """
    D = np.empty(I.shape, dtype=np.float32)
    flat.compute_distance_subset(len(Q), faiss.swig_ptr(Q), I.shape[1], faiss.swig_ptr(D), faiss.swig_ptr(I))
    order = np.lexsort((I, D if flat.metric_type == faiss.METRIC_L2 else -D), axis=1)
    return np.take_along_axis(D, order, 1), np.take_along_axis(I, order, 1)


def _drop_own(D: np.ndarray, I: np.ndarray, own: np.ndarray | None, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The first ``k`` columns of ``(D, I)`` once each row's ``own`` id is moved last (stable)."""
    if own is not None:
        order = np.argsort(I == own[:, None], axis=1, kind="stable")
        D, I = np.take_along_axis(D, order, 1), np.take_along_axis(I, order, 1)
    return D[:, :k], I[:, :k]


def _to_distances(D: np.ndarray, I: np.ndarray, metric: str) -> np.ndarray:
    """Turn raw FAISS scores into distances; padding (``I == -1``) gets inf (int32 max for hamming)."""
    if metric == "hamming":
        return np.where(I < 0, _PAD_INT, D).astype(np.int32)
    if metric == "l2":
        D = np.sqrt(np.maximum(D, 0))
    elif metric == "cosine":
        D = 1.0 - D
    return np.where(I < 0, np.inf, D).astype(np.float32)


def _jsonable(params) -> dict:
    """Return ``params`` after a JSON round trip (tuples become lists), so that comparisons are fair."""
    try:
        return json.loads(json.dumps({} if params is None else dict(params)))
    except TypeError as e:
        raise TypeError(f"descriptor params must be JSON-serialisable. Got {params!r} instead: {e}") from None


class Index:
    """k-NN index over descriptor vectors, wrapping a FAISS index.

    Args:
        metric: ``"l2"``, ``"l1"``, ``"cosine"`` or ``"hamming"`` (binary codes). Defaults to ``"l2"``.
        kind: ``"flat"`` (exact, the default), ``"hnsw"`` or ``"ivf"`` (approximate; IVF needs
            ``train``), or ``"ivfpq"``: IVF cells holding product-quantisation codes (compressed;
            needs ``train`` on at least 256 vectors; ``"l2"`` and ``"cosine"`` only).
        descriptor: Name of the descriptor that made the vectors, stored by ``save``.
        params: JSON-serialisable dict of the descriptor's parameters, stored by ``save``.
        nlist: Number of IVF cells; `None` picks `default_nlist` of the training set (about sqrt(n)).
            Defaults to `None`.
        hnsw_m: Neighbours per HNSW node. Defaults to 32.
        pq_m: Bytes of code per vector of ``"ivfpq"``: the vector is cut into this many sub-vectors,
            each coded by one byte. Must divide the dimension unless ``opq``. `None` picks
            `default_pq_m` (about one byte per 8 dimensions). Defaults to `None`.
        opq: Rotate the vectors by a learned OPQ matrix before ``"ivfpq"`` codes them, which
            balances the sub-vectors' variance (FAISS' ``OPQMatrix``). Defaults to `False`.
        nprobe: IVF cells visited per query unless ``search`` says otherwise. `None` (the default)
            lets ``add`` calibrate it (see ``target_recall``); a number fixes it.
        ef_search: HNSW search breadth unless ``search`` says otherwise. `None` (the default) lets
            ``add`` calibrate it; a number fixes it.
        target_recall: Recall@10 that each ``add`` of an IVF or HNSW index calibrates its unfixed
            knob for (:meth:`calibrate`). `None` calibrates nothing and uses ``DEFAULT_NPROBE`` (16)
            and ``DEFAULT_EF_SEARCH`` (64). Defaults to 0.95.

    Learned state: ``index_`` (the FAISS index, built on the first ``train``/``add``),
    ``ids_`` (int64 array of shape ``(ntotal,)``, the caller's id of each stored vector) and
    ``calibration_`` (what the last :meth:`calibrate` measured, or `None`).

    An ``"ivfpq"`` index stores no vectors, only their codes: its recall is bounded by the
    quantisation as well as by ``nprobe``, and :meth:`calibrate` sets ``nprobe`` against a scan of
    all its cells (the best it can do), not against exact search of the original vectors.

    Example:
        >>> import numpy as np
        >>> X = np.eye(4, dtype="float32")
        >>> D, I = Index("l2").add(X, ids=[10, 11, 12, 13]).search(X[:1], k=2)
        >>> int(I[0, 0]), float(D[0, 0])
        (10, 0.0)
    """

    def __init__(self, metric: str = "l2", *, kind: str = "flat", descriptor: str = "unnamed",
                 params: dict | None = None, nlist: int | None = None, hnsw_m: int = 32,
                 pq_m: int | None = None, opq: bool = False,
                 nprobe: int | None = None, ef_search: int | None = None,
                 target_recall: float | None = TARGET_RECALL):
        if metric not in METRICS:
            raise ValueError(f"metric must be one of {METRICS}. Received: metric={metric!r}")
        if kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}. Received: kind={kind!r}")
        if kind == "ivfpq" and metric not in ("l2", "cosine"):
            raise ValueError(f"kind='ivfpq' codes float vectors for metric 'l2' or 'cosine'. Received: "
                             f"metric={metric!r} (Hamming codes are already compact: use 'ivf' or 'hnsw')")
        if pq_m is not None and int(pq_m) < 1:
            raise ValueError(f"pq_m must be a positive integer. Received: pq_m={pq_m!r}")
        if target_recall is not None and not 0 < target_recall <= 1:
            raise ValueError(f"target_recall must be in (0, 1] or None. Received: {target_recall}")
        self.metric, self.kind, self.descriptor, self.params = metric, kind, descriptor, params
        self.nlist, self.hnsw_m, self.target_recall = nlist, hnsw_m, target_recall
        self.pq_m, self.opq = None if pq_m is None else int(pq_m), bool(opq)
        fixed = {"ivf": nprobe, "ivfpq": nprobe, "hnsw": ef_search}.get(kind)
        self.calibrate_on_add = kind != "flat" and fixed is None and target_recall is not None
        self.nprobe = int(DEFAULT_NPROBE if nprobe is None else nprobe)
        self.ef_search = int(DEFAULT_EF_SEARCH if ef_search is None else ef_search)
        self.calibration_: dict | None = None
        self.index_ = None
        self.ids_ = np.zeros(0, dtype=np.int64)
        self.path_: Path | None = None  # set by ``load``; used in error messages

    @property
    def d(self) -> int | None:
        """Vector dimension (in bits for hamming); ``None`` before the first ``train``/``add``."""
        return None if self.index_ is None else int(self.index_.d)

    @property
    def ntotal(self) -> int:
        """Number of stored vectors."""
        return 0 if self.index_ is None else int(self.index_.ntotal)

    def __len__(self) -> int:
        return self.ntotal

    @property
    def is_trained(self) -> bool:
        """Whether vectors can be added (``False`` for an untrained IVF index or before any data)."""
        return self.index_ is not None and bool(self.index_.is_trained)

    def _build(self, d: int, n: int) -> None:
        """Create the empty FAISS index for dimension ``d`` (bits for hamming), first given ``n`` vectors."""
        if self.kind in _IVF_KINDS and self.nlist is None:
            self.nlist = default_nlist(n)
        if self.kind == "ivfpq":
            self.index_ = self._new_ivfpq(d)
            self._apply_search_defaults()
            return
        if self.metric == "hamming":
            flat, hnsw, ivf = faiss.IndexBinaryFlat, faiss.IndexBinaryHNSW, faiss.IndexBinaryIVF
            self._quantizer = flat(d)  # the IVF coarse quantizer; a Python reference keeps it alive
            new = {"flat": lambda: flat(d), "hnsw": lambda: hnsw(d, self.hnsw_m),
                   "ivf": lambda: ivf(self._quantizer, d, self.nlist)}
        else:
            m = _FAISS_METRIC[self.metric]
            self._quantizer = faiss.IndexFlat(d, m)
            new = {"flat": lambda: faiss.IndexFlat(d, m),
                   "hnsw": lambda: faiss.IndexHNSWFlat(d, self.hnsw_m, m),
                   "ivf": lambda: faiss.IndexIVFFlat(self._quantizer, d, self.nlist, m)}
        self.index_ = new[self.kind]()
        self._apply_search_defaults()

    def _new_ivfpq(self, d: int):
        """An empty IVF-PQ FAISS index (behind an OPQ rotation when ``opq``), 8-bit codes of ``pq_m`` bytes."""
        m = self.pq_m = self.pq_m or default_pq_m(d)
        if d % m and not self.opq:
            raise ValueError(f"pq_m must divide the dimension {d} (or set opq=True). Received: pq_m={m}")
        d_coded = d if d % m == 0 else m * -(-d // m)  # OPQ can rotate into a dimension that m divides
        self._quantizer = faiss.IndexFlat(d_coded, _FAISS_METRIC[self.metric])
        ivfpq = faiss.IndexIVFPQ(self._quantizer, d_coded, self.nlist, m, 8, _FAISS_METRIC[self.metric])
        ivfpq.pq.cp.min_points_per_centroid = 1  # FAISS would warn once per sub-vector; train warns once
        if not self.opq:
            return ivfpq
        self._ivfpq = ivfpq  # a Python reference keeps the wrapped index alive
        rotation = faiss.OPQMatrix(d, m, d_coded)
        rotation.niter = OPQ_ITERATIONS
        return faiss.IndexPreTransform(rotation, ivfpq)

    def _ivf(self):
        """The FAISS IVF index of an ``"ivf"`` or ``"ivfpq"`` index (the one behind an OPQ rotation)."""
        return self.index_ if self.kind == "ivf" else faiss.extract_index_ivf(self.index_)

    def _apply_search_defaults(self) -> None:
        """Give the FAISS index our ``nprobe`` / ``ef_search``, used when ``search`` is not told otherwise."""
        if self.kind in _IVF_KINDS:
            self._ivf().nprobe = self.nprobe
        elif self.kind == "hnsw":
            self.index_.hnsw.efSearch = self.ef_search

    def _prepare(self, X, name: str) -> np.ndarray:
        X = _as_vectors(X, self.metric, self.d, name)
        if self.index_ is None:
            self._build(X.shape[1] * (8 if self.metric == "hamming" else 1), len(X))
        return X

    def train(self, X) -> "Index":
        """Train IVF cells (and IVF-PQ codebooks) on ``X`` of shape ``(n, d)`` (a no-op for other
        kinds). Returns ``self``."""
        X = self._prepare(X, "X")
        if self.kind == "ivfpq" and not self.index_.is_trained:
            # k-means of 256 centroids needs 256 vectors; OPQ (FAISS crashes otherwise) one more than it outputs
            needed = max(PQ_CENTROIDS, self._ivf().d + 1 if self.opq else 0)
            if len(X) < needed:
                raise ValueError(f"kind='ivfpq'{' with opq' if self.opq else ''} needs at least {needed} training "
                                 f"vectors (about {PQ_CENTROIDS * MIN_TRAIN_PER_CELL:,} for good codebooks). "
                                 f"Got {len(X)} instead.")
        if self.kind == "ivfpq" and len(X) < PQ_CENTROIDS * MIN_TRAIN_PER_CELL:
            warnings.warn(f"kind='ivfpq' trained on {len(X):,} vectors: its codebooks of {PQ_CENTROIDS} "
                          f"centroids want at least {PQ_CENTROIDS * MIN_TRAIN_PER_CELL:,}.", stacklevel=2)
        if not self.index_.is_trained:
            with blas_batches(self.d):
                self.index_.train(X)
        return self

    def add(self, X, ids=None) -> "Index":
        """Add vectors ``X`` of shape ``(n, d)`` under ``ids``, returning ``self``.

        ``X`` is float (cast to float32) or, for hamming, either packed uint8 codes ``(n, d / 8)``
        or a bool / 0-1 array ``(n, d)`` that is packed here with ``np.packbits`` (``d`` a multiple
        of 8). ``ids`` is an integer array of shape ``(n,)``, non-negative and unique across calls;
        it defaults to running numbers. For ``kind="ivf"`` and ``"ivfpq"`` call ``train`` first.

        An IVF or HNSW index whose knob is not fixed then calibrates it (:meth:`calibrate`). IVF
        uses 1,000 stored vectors as queries, each left out of its own answer. HNSW would find its
        stored vectors too easily (the graph links each one to its neighbours), so it holds back a
        seeded sample of ``X`` (1,000 rows, a tenth at most), adds the rest, calibrates with the
        held-back rows as queries, adds them and restores the order of ``X`` (positions stay those
        of the rows). Under 10 rows, HNSW uses stored vectors too.
        """
        X = self._prepare(X, "X")
        if not self.index_.is_trained:
            raise ValueError(f"this {self.kind} index is not trained; call train(X) first, then add.")
        n, start = X.shape[0], int(self.ids_.max()) + 1 if len(self.ids_) else 0
        ids = np.arange(start, start + n) if ids is None else np.asarray(ids)
        if ids.shape != (n,) or ids.dtype.kind not in "iu" or (ids < 0).any():
            raise ValueError(f"ids must hold {n} non-negative integers (-1 marks padding). "
                             f"Got {ids.dtype} of shape {ids.shape} instead.")
        ids = ids.astype(np.int64)
        if np.unique(np.concatenate([self.ids_, ids])).size != len(self.ids_) + n:
            raise ValueError("ids must be unique, also across calls to add. Got duplicates instead.")
        if self.calibrate_on_add and self.kind == "hnsw" and n >= 10:
            self._add_holding_back(X)
        else:
            self._add_rows(X)
            if self.calibrate_on_add:
                self.calibrate(self.target_recall)
        self.ids_ = np.concatenate([self.ids_, ids])
        return self

    def _add_rows(self, X: np.ndarray, rows: np.ndarray | None = None) -> None:
        """Add ``X`` (or ``X[rows]``) to the FAISS index in one call: FAISS links an HNSW batch far
        better than the same rows added in parts (recall@10 0.97 against 0.80 at ef_search 256 for
        300,000 HOG vectors added at once or in blocks of 65,536)."""
        with blas_batches(self.d):
            self.index_.add(X if rows is None else X[rows])

    def _add_holding_back(self, X: np.ndarray) -> None:
        """Add ``X`` to an HNSW index but a seeded sample, calibrate on that sample, add it, then
        renumber the graph so that the rows of ``X`` keep their order."""
        n, n0 = len(X), self.ntotal
        held = np.zeros(n, dtype=bool)
        held[np.random.default_rng(0).choice(n, min(CALIBRATION_QUERIES, n // 10), replace=False)] = True
        order = np.argsort(held, kind="stable")  # the rows added first, then the held-back ones
        n_first = n - int(held.sum())
        self._add_rows(X, order[:n_first])
        self.calibrate(self.target_recall, queries=X[held])
        self.calibration_["queries"] = "held back"
        self._add_rows(X, order[n_first:])
        new_to_old = np.concatenate([np.arange(n0), n0 + np.argsort(order)]).astype(np.int64)
        if self.metric == "hamming":  # IndexBinaryHNSW has no permute_entries: renumber its parts
            storage = faiss.downcast_IndexBinary(self.index_.storage)
            codes = storage.reconstruct_n(0, storage.ntotal)[new_to_old]
            storage.reset()
            storage.add(codes)
            self.index_.hnsw.permute_entries(faiss.swig_ptr(new_to_old))
        else:
            self.index_.permute_entries(new_to_old)

    def search(self, Q, k: int, *, exclude=None, nprobe: int | None = None, ef_search: int | None = None,
               batch_size: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Return the ``k`` nearest stored vectors of each query, nearest first.

        Args:
            Q: Queries of shape ``(nq, d)`` (see ``add`` for hamming codes).
            k: Neighbours per query. Clamped to ``ntotal`` (``ntotal - 1`` with ``exclude``), so an
                exact index never pads; approximate kinds may still return id -1 when they find fewer.
            exclude: Optional ids of shape ``(nq,)``, for leave-one-out retrieval: row ``i`` never
                returns id ``exclude[i]`` (the query's own entry). One extra neighbour is fetched.
            nprobe: IVF cells visited per query (``kind="ivf"`` or ``"ivfpq"``). Defaults to ``self.nprobe``.
            ef_search: HNSW search breadth (``kind="hnsw"`` only). Defaults to ``self.ef_search``.
            batch_size: Search at most this many queries at once, to bound memory.

        Returns:
            ``(D, I)`` of shape ``(nq, k)``: float32 distances (int32 bit counts for hamming; inf /
            int32 max on padding) and int64 ids (the ones given to ``add``; -1 on padding).
        """
        if self.ntotal == 0:
            raise ValueError("the index is empty; call add(X) before search.")
        if int(k) < 1:
            raise ValueError(f"k must be a positive integer. Received: k={k!r}")
        for knob, value, kinds in (("nprobe", nprobe, _IVF_KINDS), ("ef_search", ef_search, ("hnsw",))):
            if value is not None and self.kind not in kinds:
                raise ValueError(f"{knob} applies to kind {' or '.join(map(repr, kinds))} only, not "
                                 f"{self.kind!r}. Received: {knob}={value}")
        Q = _as_vectors(Q, self.metric, self.d, "Q")
        nq = Q.shape[0]
        if exclude is not None:
            exclude = np.asarray(exclude, dtype=np.int64)
            if exclude.shape != (nq,):
                raise ValueError(f"exclude must have shape ({nq},). Got {exclude.shape} instead.")
        k_out = min(int(k), self.ntotal - (exclude is not None))
        if k_out < 1:
            raise ValueError("exclude leaves no candidates: the index holds a single vector.")
        k_ask = min(k_out + (exclude is not None), self.ntotal)
        sp = (faiss.SearchParametersIVF(nprobe=int(nprobe)) if nprobe is not None else
              faiss.SearchParametersHNSW(efSearch=int(ef_search)) if ef_search is not None else None)
        step = int(batch_size or nq)
        Ds, Is = [], []
        for s in range(0, max(nq, 1), max(step, 1)):
            with blas_batches(self.d):
                D, I = self.index_.search(Q[s:s + step], k_ask, params=sp)
            if self.kind == "flat" and self.metric in ("l2", "cosine"):
                D, I = _direct_scores(self.index_, Q[s:s + step], I)
            Ds.append(_to_distances(D, I, self.metric))
            Is.append(np.where(I < 0, -1, self.ids_[np.maximum(I, 0)]))
        D, I = np.concatenate(Ds), np.concatenate(Is)
        return _drop_own(D, I, exclude, k_out)  # each query's own id moved to the end, then cut

    def calibrate(self, target_recall: float | None = None, *, queries=None,
                  n_queries: int = CALIBRATION_QUERIES, k: int = CALIBRATION_K,
                  confidence: float = CALIBRATION_CONFIDENCE, seed: int = 0) -> "Index":
        """Make ``nprobe`` (IVF) or ``ef_search`` (HNSW) the smallest value that reaches ``target_recall``.

        The queries are a seeded sample of ``n_queries`` stored vectors (all of them in a smaller
        index), or of ``queries`` when given. Their exact ``k`` nearest neighbours come from a
        brute-force scan of all stored vectors. A stored query's own entry is left out of both the
        exact and the approximate answer (leave-one-out): an index almost always finds a stored
        vector itself, which would count as one free hit in ``k`` and pick too small a value for
        queries it does not hold.

        An ``"ivfpq"`` index holds codes, not vectors: its reference is then a scan of all its cells
        (the best its codes can do), its stored queries are decoded codes, and the calibrated
        ``nprobe`` loses at most the target's share of what the quantisation keeps.

        The knob climbs a doubling ladder (IVF: 1, 2, 4, ... up to ``nlist``; HNSW: ``k``, 2 ``k``,
        ... up to ``MAX_EF_SEARCH``) until a value passes; bisection between the last two rungs then
        brings it within an eighth of the smallest value that passes (recall grows with the knob). A
        value passes when the mean recall@k over the queries, less ``z`` standard errors of that
        mean, reaches the target (``z`` = 1.64 for ``confidence=0.95``, 0 for 0.5): the promise is
        then kept for new queries like the sample, not only on average over the sample. A returned
        vector whose distance ties the exact k-th counts as a hit. When even the top rung falls short
        (HNSW only: IVF probing every cell is exact), the top rung is kept and the recall it reached
        recorded.

        Stored vectors make optimistic queries for HNSW, whose graph links each of them to its
        neighbours (``add`` therefore calibrates on rows it holds back), and for any index whose
        archive holds near-copies of each vector (several slices of one series, augmented images):
        their nearest neighbours are those copies, which are easy to find. Pass held-out real
        ``queries`` then.

        The value becomes the search default, and ``calibration_`` (saved in the manifest) a dict
        with ``knob``, ``value``, ``recall`` and ``recall_se`` (mean and its standard error at
        ``value``), ``target_recall``, ``confidence``, ``reached``, ``queries`` (``"stored"``,
        ``"given"``, or ``"held back"`` by ``add``), ``n_queries``, ``k``, ``seed``, ``ntotal``
        (vectors stored when calibrated) and ``seconds``. The value depends only on the index, the
        queries and ``seed``; an HNSW graph built on several threads may itself differ from build to
        build.

        Args:
            target_recall: Recall@k to reach, in (0, 1]. Defaults to ``self.target_recall``, or 0.95.
            queries: Query vectors ``(nq, d)`` not stored in the index. Defaults to stored vectors.
            n_queries: Queries sampled (with ``seed``). Defaults to 1,000.
            k: Neighbours per query. Defaults to 10.
            confidence: One-sided confidence, in [0.5, 1), that the mean recall reaches the target.
                Defaults to 0.95.
            seed: Seed of the query sample. Defaults to 0.

        Returns:
            ``self``.
        """
        if self.kind == "flat":
            raise ValueError("calibrate applies to kind 'ivf', 'ivfpq' or 'hnsw'; a flat index is exact.")
        if self.ntotal == 0:
            raise ValueError("the index is empty; call add(X) before calibrate.")
        target = next(t for t in (target_recall, self.target_recall, TARGET_RECALL) if t is not None)
        if not (0 < target <= 1 and 0.5 <= confidence < 1 and int(n_queries) >= 1 and int(k) >= 1):
            raise ValueError("target_recall must be in (0, 1], confidence in [0.5, 1), n_queries and k "
                             f"positive. Received: target_recall={target}, confidence={confidence}, "
                             f"n_queries={n_queries}, k={k}")
        start = time.perf_counter()
        Q, own = self._calibration_queries(queries, int(n_queries), seed)
        k = min(int(k), self.ntotal - (own is not None))
        if k < 1:
            raise ValueError("calibration needs an index of at least two vectors, or given queries.")
        D_exact, I_exact = _drop_own(*self._exact_search(Q, k + (own is not None)), own, k)
        z = statistics.NormalDist().inv_cdf(confidence)
        ivf = self.kind in _IVF_KINDS
        knob, top = ("nprobe", self.nlist) if ivf else ("ef_search", max(MAX_EF_SEARCH, k))
        tried: dict[int, tuple[float, float]] = {}  # value: (mean recall, its standard error)

        def passes(value: int) -> bool:
            sp = (faiss.SearchParametersIVF(nprobe=value) if ivf
                  else faiss.SearchParametersHNSW(efSearch=value))
            with blas_batches(self.d):
                D, I = self.index_.search(Q, k + (own is not None), params=sp)
            D, I = _drop_own(_to_distances(D, I, self.metric), I, own, k)
            per_query = recall_per_query(I, I_exact, D, D_exact)
            se = per_query.std(ddof=1) / np.sqrt(len(Q)) if len(Q) > 1 else 0.0
            tried[value] = float(per_query.mean()), float(se)
            return tried[value][0] - z * tried[value][1] >= target

        hi = 1 if ivf else k  # HNSW searches with at least k candidates anyway
        lo, reached = hi - 1, passes(hi)
        while not reached and hi < top:
            lo, hi = hi, min(2 * hi, top)
            reached = passes(hi)
        while reached and hi - lo > max(1, lo // 8):
            mid = (lo + hi) // 2
            lo, hi = (lo, mid) if passes(mid) else (mid, hi)
        setattr(self, knob, hi)
        self._apply_search_defaults()
        self.calibration_ = {"knob": knob, "value": hi, "recall": tried[hi][0], "recall_se": tried[hi][1],
                             "target_recall": target, "confidence": confidence, "reached": reached,
                             "queries": "stored" if queries is None else "given", "n_queries": len(Q),
                             "k": k, "seed": int(seed), "ntotal": self.ntotal,
                             "seconds": round(time.perf_counter() - start, 3)}
        return self

    def _calibration_queries(self, queries, n_queries: int,
                             seed: int) -> tuple[np.ndarray, np.ndarray | None]:
        """A seeded sample of ``n_queries`` rows of ``queries``, or of the stored vectors when it is
        None, with the stored vectors' positions (None for given queries)."""
        rng = np.random.default_rng(seed)
        if queries is not None:
            queries = _as_vectors(queries, self.metric, self.d, "queries")
            picks = np.sort(rng.choice(len(queries), min(n_queries, len(queries)), replace=False))
            return queries[picks], None
        picks = np.sort(rng.choice(self.ntotal, min(n_queries, self.ntotal), replace=False))
        return self._stored_rows(picks), picks

    def _decoded_rows(self, positions: np.ndarray) -> np.ndarray:
        """The decoded vectors of an ``"ivfpq"`` index at ``positions`` (its codes hold no exact rows)."""
        self._ivf().make_direct_map()
        return np.vstack([self.index_.reconstruct(int(p)) for p in positions]).astype(np.float32)

    def stored_vectors(self) -> np.ndarray:
        """Every stored vector in the order added: float32 ``(ntotal, d)`` or packed uint8 codes; for
        ``"ivfpq"`` the decoded codes. IVF kinds get a direct map (row to list) to find them."""
        if self.kind in _IVF_KINDS:
            self._ivf().make_direct_map()
        return self.index_.reconstruct_n(0, self.ntotal)

    def _stored_blocks(self) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """Every stored vector once, as blocks ``(positions, vectors)`` of about ``_CHUNK_ROWS`` rows.

        Positions index ``ids_``; vectors are float32 ``(n, d)`` or packed uint8 codes.
        """
        if self.kind != "ivf":  # flat and HNSW keep the vectors in order
            for s in range(0, self.ntotal, _CHUNK_ROWS):
                n = min(_CHUNK_ROWS, self.ntotal - s)
                yield np.arange(s, s + n), self.index_.reconstruct_n(s, n)
            return
        positions, codes = [], []
        for cell in range(self.index_.nlist):  # IVF: read the inverted lists
            ids, rows = get_invlist(self.index_.invlists, cell)
            positions.append(ids)
            codes.append(rows)
            count = sum(map(len, positions))
            if count >= _CHUNK_ROWS or (count and cell == self.index_.nlist - 1):
                block = np.concatenate(codes)
                yield np.concatenate(positions), block if self.metric == "hamming" else block.view(np.float32)
                positions, codes = [], []

    def _stored_rows(self, positions: np.ndarray) -> np.ndarray:
        """The stored vectors at sorted ``positions``, in that order (decoded codes for ``"ivfpq"``)."""
        if self.kind == "ivfpq":
            return self._decoded_rows(positions)
        found = [(pos[keep], block[keep]) for pos, block in self._stored_blocks()
                 for keep in [np.isin(pos, positions)] if keep.any()]
        pos = np.concatenate([p for p, _ in found])
        return np.ascontiguousarray(np.concatenate([b for _, b in found])[np.argsort(pos)])

    def _exact_search(self, Q: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Exact ``k`` nearest stored vectors of ``Q``, by brute force: ``(distances, positions)``.

        For ``"ivfpq"``: the nearest by their codes, from a scan of every cell."""
        if self.kind == "ivfpq":
            with blas_batches(self.d):
                D, I = self.index_.search(Q, k, params=faiss.SearchParametersIVF(nprobe=self.nlist))
            return _to_distances(D, I, self.metric), I
        Ds, Is = [], []
        for positions, block in self._stored_blocks():
            flat = (faiss.IndexBinaryFlat(self.d) if self.metric == "hamming"
                    else faiss.IndexFlat(self.d, _FAISS_METRIC[self.metric]))
            flat.add(block)
            with blas_batches(self.d):
                D, I = flat.search(Q, min(k, len(positions)))
            if self.metric in ("l2", "cosine"):
                D, I = _direct_scores(flat, Q, I)
            Ds.append(_to_distances(D, I, self.metric))
            Is.append(positions[I])
        D, I = np.concatenate(Ds, 1), np.concatenate(Is, 1)
        order = np.lexsort((I, D), axis=1)[:, :k]  # by distance, ties by position
        return np.take_along_axis(D, order, 1), np.take_along_axis(I, order, 1)

    def check_query(self, descriptor: str | None = None, params: dict | None = None,
                    dim: int | None = None) -> None:
        """Raise ``ValueError`` naming both sides if a query's descriptor, params or dim differ from ours.

        Arguments left as ``None`` are not checked.
        """
        ours = _jsonable(self.params)
        if ((descriptor is not None and descriptor != self.descriptor)
                or (params is not None and _jsonable(params) != ours)
                or (dim is not None and int(dim) != self.d)):
            theirs = " ".join(v for v in (descriptor and repr(descriptor), params and str(params),
                                          dim and f"(dim {dim})") if v)
            where = f"index at {self.path_}" if self.path_ else "this index"
            raise ValueError(f"{where} was built with descriptor {self.descriptor!r} {ours} (dim {self.d}); "
                             f"this query uses {theirs}. Rebuild the index with the query's descriptor, "
                             "or compute the queries with the index's.")

    def save(self, path: str | os.PathLike) -> Path:
        """Write the index atomically to directory ``path``: ``index.faiss``, ``ids.npy``, ``manifest.json``.

        Files go to a temporary directory beside ``path`` that is renamed into place; an existing
        index at ``path`` is replaced only once the new one is complete. Returns ``path``.
        """
        if self.index_ is None:
            raise ValueError("nothing to save: call add(X) first.")
        path = Path(path)
        params = _jsonable(self.params)
        with atomic_directory(path, marker=_MANIFEST) as tmp:
            write = faiss.write_index_binary if self.metric == "hamming" else faiss.write_index
            write(self.index_, str(tmp / _INDEX_FILE))
            np.save(tmp / _IDS_FILE, self.ids_)
            manifest = {
                "format_version": FORMAT_VERSION, "cbmir_tf_version": cbmir_tf.__version__,
                "descriptor": self.descriptor, "params": params, "metric": self.metric, "kind": self.kind,
                "dim": self.d, "count": self.ntotal, "nlist": self.nlist, "hnsw_m": self.hnsw_m,
                "pq_m": self.pq_m, "opq": self.opq,
                "nprobe": self.nprobe, "ef_search": self.ef_search, "target_recall": self.target_recall,
                "calibrate_on_add": self.calibrate_on_add, "calibration": self.calibration_,
                "sha256": {f: sha256sum(tmp / f) for f in (_INDEX_FILE, _IDS_FILE)},
            }
            (tmp / _MANIFEST).write_text(json.dumps(manifest, indent=2))
        return path

    @classmethod
    def load(cls, path: str | os.PathLike, *, descriptor: str | None = None, params: dict | None = None,
             dim: int | None = None) -> "Index":
        """Read an index written by ``save``, verify its checksums and ``check_query`` the given arguments."""
        path = Path(path)
        mf = path / _MANIFEST
        if not mf.is_file():
            raise FileNotFoundError(f"{mf}: no index manifest; is {path} a directory written by Index.save?")
        try:
            m = json.loads(mf.read_text())
            if m["format_version"] != FORMAT_VERSION:
                raise ValueError(f"format_version {m['format_version']} instead of {FORMAT_VERSION}")
            for name in (_INDEX_FILE, _IDS_FILE):  # checksums first: a truncated file fails here
                if sha256sum(path / name) != m["sha256"][name]:
                    raise ValueError(f"{path / name}: sha256 checksum does not match {mf}; "
                                     "the file is corrupt or was modified.")
        except (json.JSONDecodeError, KeyError, TypeError) as e:
            raise ValueError(f"{mf}: not a valid index manifest (bad or missing {e}); save again.") from None
        f = path / _INDEX_FILE
        try:
            raw = (faiss.read_index_binary if m["metric"] == "hamming" else faiss.read_index)(str(f))
        except RuntimeError as e:
            reason = (str(e).strip().splitlines() or ["unknown error"])[-1]
            raise ValueError(f"{f}: cannot read the FAISS index ({reason}); it may be truncated or "
                             "corrupt. Save the index again.") from None
        ids = np.load(path / _IDS_FILE, allow_pickle=False)
        if raw.ntotal != m["count"] or raw.d != m["dim"] or ids.shape != (m["count"],):
            raise ValueError(f"{f}: holds {raw.ntotal} vectors of dim {raw.d} and {ids.shape[0]} ids; "
                             f"{mf} says {m['count']} of dim {m['dim']}.")
        self = cls(m["metric"], kind=m["kind"], descriptor=m["descriptor"], params=m["params"],
                   nlist=m["nlist"], hnsw_m=m["hnsw_m"], pq_m=m.get("pq_m"), opq=m.get("opq", False),
                   nprobe=m.get("nprobe", DEFAULT_NPROBE),
                   ef_search=m.get("ef_search", DEFAULT_EF_SEARCH), target_recall=m.get("target_recall"))
        self.calibrate_on_add, self.calibration_ = bool(m.get("calibrate_on_add")), m.get("calibration")
        self.index_, self.ids_, self.path_ = raw, ids.astype(np.int64), path
        self._apply_search_defaults()
        self.check_query(descriptor, params, dim)
        return self
