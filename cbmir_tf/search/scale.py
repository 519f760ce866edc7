"""Retrieval at archive scale: real descriptors grown to a million rows and searched every way.

A real archive of the open benchmark holds about ten thousand images. To see how search behaves
at hospital-archive sizes, :func:`replicate` grows the real descriptor vectors to ``n`` rows: the
real rows come first, unchanged, and every further row is a copy of a real row with a small
seeded perturbation (Gaussian noise for float vectors, a few flipped bits for binary codes).
:func:`run_scale_benchmark` then builds FAISS flat, IVF and HNSW indexes (through
:class:`cbmir_tf.search.index.Index`) and a plain NumPy brute force (:class:`NumpyIndex`) at each size,
and reports build time, index bytes, per-query latency, batched throughput and recall@k against
exact search, beside the memory-bandwidth bound (index bytes / :func:`memory_bandwidth`): the
time one core needs just to read the index once. IVF and HNSW calibrate their search knob for a
target recall, on their own vectors and, given held-out real queries, on those.

Two real descriptors are used: HOG at 128 px (324-d float, L2; :data:`FLOAT_DESCRIPTOR`) and
Radon barcodes at 64 px (728 bits, Hamming; :data:`BINARY_DESCRIPTOR`).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager

import faiss
import numpy as np
import pandas as pd
from threadpoolctl import threadpool_limits

from cbmir_tf.evaluation import time_per_query
from cbmir_tf.features.hog import HOGDescriptor
from cbmir_tf.features.radon_barcode import RadonBarcode, pack_codes
from cbmir_tf.search.index import TARGET_RECALL, Index, default_nlist, recall_per_query
from cbmir_tf.search.index import recall_at_k  # noqa: F401 - re-exported, as before it moved to index

#: HOG at 128 px: 3 x 3 overlapping blocks of 2 x 2 cells of 32 px, 9 bins: 324-d float32 (1.3 GB at 1M).
FLOAT_DESCRIPTOR = {"cell_size": 32, "block_size": 64, "block_stride": 32, "n_bins": 9, "image_size": 128}
#: Radon barcode at 64 px, 8 angles: 728 bits, 91 bytes packed (91 MB at 1M).
BINARY_DESCRIPTOR = {"image_size": 64, "n_angles": 8}
#: The search knob of each approximate index, calibrated by :meth:`cbmir_tf.search.index.Index.calibrate`.
KNOBS = {"ivf": "nprobe", "hnsw": "ef_search"}
#: Further settings of each approximate index's knob, for the recall / latency trade-off.
SWEEP = {"ivf": (1, 4, 64), "hnsw": (16, 256, 1024)}
HNSW_M = 32  # neighbours per HNSW node (the Index default)
IVF_TRAIN_PER_CELL = 40  # k-means training rows per IVF cell (FAISS asks for at least 39)
METHODS = ("numpy", "flat", "ivf", "hnsw")


def real_features(images: np.ndarray) -> dict[str, np.ndarray]:
    """Describe grey uint8 images ``(n, h, w)`` with both real descriptors of the benchmark.

    Returns:
        ``{"float": (n, 324) float32 HOG vectors, "binary": (n, 91) packed uint8 Radon barcodes}``.
    """
    hog = HOGDescriptor(**FLOAT_DESCRIPTOR).fit(images[:1])
    rbc = RadonBarcode(**BINARY_DESCRIPTOR).fit()
    return {"float": hog.transform(images), "binary": pack_codes(rbc.transform(images))}


def split_test_images(n_tests: int, n_queries: int, n_calibration: int, seed: int = 0
                      ) -> tuple[np.ndarray, np.ndarray]:
    """Draw disjoint, sorted row numbers of the test split: the queries, and the images that calibrate.

    When the split is too small for both, the calibration images get at most half of it and the
    queries the rest, so that neither is ever empty (a split of one image has no calibration images).

    Returns:
        ``(queries, calibration)``, two sorted integer arrays with no row in common.
    """
    rng = np.random.default_rng(seed)
    n_calibration = min(n_calibration, n_tests // 2)
    queries = np.sort(rng.choice(n_tests, min(n_queries, n_tests - n_calibration), replace=False))
    others = np.setdiff1d(np.arange(n_tests), queries)
    return queries, np.sort(rng.choice(others, n_calibration, replace=False))


def replicate(X: np.ndarray, n: int, *, noise: float = 0.1, flip: float = 0.01, n_bits: int | None = None,
              seed: int = 0, chunk_rows: int = 65536) -> np.ndarray:
    """Grow real vectors ``X`` to ``n`` rows: the real rows first, then perturbed copies.

    Row ``i >= len(X)`` is a copy of real row ``i % len(X)`` plus a perturbation:

    * float ``X`` ``(m, d)``: Gaussian noise of standard deviation ``noise`` times each
      dimension's standard deviation over the real rows;
    * packed uint8 codes ``(m, bytes)``: each of the first ``n_bits`` bits (default: all) is
      flipped with probability ``flip``.

    Returns:
        Array of shape ``(n, d)`` and the dtype of ``X`` (float32 for float input); the first
        ``min(n, m)`` rows are ``X`` itself. The same rows as :func:`replica_blocks` yields.
    """
    blocks = replica_blocks(X, n, noise=noise, flip=flip, n_bits=n_bits, seed=seed, chunk_rows=chunk_rows)
    first, block = next(blocks)
    out = np.empty((max(int(n), 0), block.shape[1]), dtype=block.dtype)
    out[:len(block)] = block
    for start, block in blocks:
        out[start:start + len(block)] = block
    return out


def replica_blocks(X: np.ndarray, n: int, *, noise: float = 0.1, flip: float = 0.01, n_bits: int | None = None,
                   seed: int = 0, chunk_rows: int = 65536) -> Iterator[tuple[int, np.ndarray]]:
    """The rows of :func:`replicate` as blocks ``(first row, rows)``, so that an archive too large
    for memory can be streamed (and streamed again: the same seed gives the same blocks).

    The first block is the real rows ``X[:n]``; each further block holds at most ``chunk_rows``
    perturbed copies.
    """
    X = np.asarray(X)
    if X.ndim != 2 or len(X) == 0:
        raise ValueError(f"X must be a non-empty 2-D array (m, d). Got shape {X.shape} instead.")
    binary = X.dtype == np.uint8
    if not binary:
        X = X.astype(np.float32, copy=False)
    m, n = len(X), max(int(n), 0)
    yield 0, X[:n]
    rng = np.random.default_rng(seed)
    bits = X.shape[1] * 8 if n_bits is None else int(n_bits)
    scale = None if binary else (noise * X.std(axis=0)).astype(np.float32)
    for start in range(m, n, chunk_rows):
        rows = np.arange(start, min(start + chunk_rows, n))
        if binary:
            flips = np.zeros((len(rows), X.shape[1] * 8), dtype=bool)
            flips[:, :bits] = rng.random((len(rows), bits), dtype=np.float32) < flip
            yield start, X[rows % m] ^ np.packbits(flips, axis=1)
        else:
            yield start, X[rows % m] + rng.standard_normal((len(rows), X.shape[1]), dtype=np.float32) * scale


def row_distances(A: np.ndarray, B: np.ndarray) -> np.ndarray:
    """Distances between matching rows of ``A`` and ``B`` ``(n, d)``: L2 (float) or Hamming (packed uint8)."""
    A, B = np.asarray(A), np.asarray(B)
    if A.shape != B.shape or A.dtype != B.dtype:
        raise ValueError(f"A and B must match in shape and dtype. Got {A.shape} {A.dtype} and {B.shape} "
                         f"{B.dtype} instead.")
    if A.dtype == np.uint8:
        return np.bitwise_count(A ^ B).sum(axis=1, dtype=np.int64)
    return np.linalg.norm(A.astype(np.float64) - B, axis=1)


def memory_bandwidth(n_bytes: int = 1 << 30, repeat: int = 5) -> float:
    """Read bandwidth of one core in bytes/s: best of ``repeat`` NumPy sums over ``n_bytes`` of float64."""
    a = np.ones(max(int(n_bytes) // 8, 1))  # np.ones writes every page, so none is faulted in while timed
    best = np.inf
    for _ in range(repeat):
        start = time.perf_counter()
        a.sum()
        best = min(best, time.perf_counter() - start)
    return a.nbytes / best


class NumpyIndex:
    """Exact k-NN in plain NumPy, scanning the database in chunks: the baseline FAISS should beat.

    ``"l2"`` uses matrix products (``|q|^2 - 2 q.x + |x|^2``, the norms of ``x`` stored by ``add``);
    ``"hamming"`` XORs packed codes as uint64 words and counts bits with ``np.bitwise_count``.

    Args:
        metric: ``"l2"`` (float vectors) or ``"hamming"`` (packed uint8 codes). Defaults to ``"l2"``.
        chunk_bytes: Memory of the temporary (queries x chunk) arrays. Defaults to 64 MiB.
    """

    def __init__(self, metric: str = "l2", *, chunk_bytes: int = 64 << 20):
        if metric not in ("l2", "hamming"):
            raise ValueError(f"metric must be 'l2' or 'hamming'. Received: metric={metric!r}")
        self.metric, self.chunk_bytes = metric, chunk_bytes

    def _words(self, X) -> np.ndarray:
        """Packed uint8 codes ``(n, b)`` as uint64 words ``(n, ceil(b / 8))``, zero-padded."""
        X = np.asarray(X, dtype=np.uint8)
        pad = -X.shape[1] % 8
        return np.ascontiguousarray(np.pad(X, ((0, 0), (0, pad)))).view(np.uint64)

    def add(self, X) -> "NumpyIndex":
        """Store the database ``X`` of shape ``(n, d)`` (float, or packed uint8 codes). Returns ``self``."""
        if self.metric == "l2":
            self.X_ = np.ascontiguousarray(X, dtype=np.float32)
            self.norms_ = np.einsum("ij,ij->i", self.X_, self.X_)
        else:
            self.X_ = self._words(X)
        return self

    @property
    def nbytes(self) -> int:
        """Bytes a search reads: the vectors (and their norms)."""
        return self.X_.nbytes + (self.norms_.nbytes if self.metric == "l2" else 0)

    def search(self, Q, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Return ``(D, I)`` of shape ``(nq, k)``: distances as ``Index.search`` reports them, and row ids."""
        Q = np.ascontiguousarray(Q, dtype=np.float32) if self.metric == "l2" else self._words(Q)
        n, nq, k = len(self.X_), len(Q), min(int(k), len(self.X_))
        width = 4 if self.metric == "l2" else self.X_.shape[1] * 8
        step = max(64, self.chunk_bytes // (nq * width))
        Ds, Is = [], []
        for s in range(0, n, step):
            if self.metric == "l2":
                d = self.norms_[s:s + step] - 2 * (Q @ self.X_[s:s + step].T)  # |q|^2 added at the end
            else:
                d = np.bitwise_count(Q[:, None, :] ^ self.X_[None, s:s + step]).sum(-1, dtype=np.int32)
            kc = min(k, d.shape[1])
            top = np.argpartition(d, kc - 1, axis=1)[:, :kc]
            Ds.append(np.take_along_axis(d, top, 1))
            Is.append(top + s)
        D, I = np.concatenate(Ds, 1), np.concatenate(Is, 1)
        order = np.lexsort((I, D), axis=1)[:, :k]  # by distance, ties by id
        D, I = np.take_along_axis(D, order, 1), np.take_along_axis(I, order, 1).astype(np.int64)
        if self.metric == "l2":
            D = np.sqrt(np.maximum(D + np.einsum("ij,ij->i", Q, Q)[:, None], 0))
        return D, I


def index_bytes(index: Index | NumpyIndex) -> int:
    """Size of an index in memory: its serialised FAISS bytes, or the NumPy arrays it scans."""
    if isinstance(index, NumpyIndex):
        return index.nbytes
    serialize = faiss.serialize_index_binary if index.metric == "hamming" else faiss.serialize_index
    return int(serialize(index.index_).nbytes)


def build(X: np.ndarray, metric: str, method: str, *, seed: int = 0,
          target_recall: float = TARGET_RECALL) -> tuple[Index | NumpyIndex, str]:
    """Build one index of ``method`` (see :data:`METHODS`) over ``X``; return it and its build parameters.

    IVF gets :func:`cbmir_tf.search.index.default_nlist` cells, trained on a seeded sample of
    ``IVF_TRAIN_PER_CELL`` rows a cell; HNSW gets ``HNSW_M`` neighbours a node and FAISS' default
    ``efConstruction`` (40). Both calibrate their knob for ``target_recall`` on a sample of their
    own vectors when ``add`` ends (``Index``'s default).
    """
    if method == "numpy":
        return NumpyIndex(metric).add(X), ""
    if method == "ivf":
        nlist = default_nlist(len(X))
        sample = np.sort(np.random.default_rng(seed).permutation(len(X))[:IVF_TRAIN_PER_CELL * nlist])
        index = Index(metric, kind="ivf", nlist=nlist, target_recall=target_recall)
        return index.train(X[sample]).add(X), f"nlist={nlist}"
    if method == "hnsw":
        return Index(metric, kind="hnsw", hnsw_m=HNSW_M, target_recall=target_recall).add(X), f"M={HNSW_M}"
    return Index(metric).add(X), ""


def measure(index: Index | NumpyIndex, queries: np.ndarray, k: int, n_timing: int, *, repeats: int = 1,
            **search) -> tuple[np.ndarray, np.ndarray, dict]:
    """Search all ``queries`` at once (``repeats`` times), then time ``n_timing`` of them one at a
    time, all on one thread.

    Returns:
        ``(D, I, stats)``: the batched results and ``{"batch_ms", "median_ms", "p95_ms"}`` (per
        query; ``batch_ms`` is the median over the repeats).
    """
    with _threads(1):
        index.search(queries[:8], k, **search)  # warm-up: caches, allocations
        batch = []
        for _ in range(max(int(repeats), 1)):
            start = time.perf_counter()
            D, I = index.search(queries, k, **search)
            batch.append(time.perf_counter() - start)
        batch_ms = 1000 * float(np.median(batch)) / len(queries)
        t = time_per_query(lambda i: index.search(queries[i:i + 1], k, **search), min(n_timing, len(queries)))
    return D, I, {"batch_ms": batch_ms, "median_ms": t["median_ms"], "p95_ms": t["p95_ms"]}


@contextmanager
def _threads(n: int):
    """Run FAISS (OpenMP) and NumPy's BLAS on ``n`` threads inside the block."""
    before = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(int(n))
    try:
        with threadpool_limits(int(n)):
            yield
    finally:
        faiss.omp_set_num_threads(before)


def run_scale_benchmark(database: dict[str, np.ndarray], queries: dict[str, np.ndarray],
                        sizes: Sequence[int], *, k: int = 10, n_timing: int = 100,
                        methods: Sequence[str] = METHODS, sweep: bool = True, threads: int | None = None,
                        bandwidth: float | None = None, seed: int = 0,
                        calibration: dict[str, np.ndarray] | None = None,
                        target_recall: float = TARGET_RECALL, repeats: int = 1,
                        log: Callable[[str], None] | None = print) -> pd.DataFrame:
    """Build and search every index of ``methods`` at every size, for each descriptor.

    Args:
        database: Real archive vectors by descriptor kind (see :func:`real_features`): ``"float"``
            ``(m, d)`` float32 (searched by L2) and/or ``"binary"`` packed uint8 (Hamming).
        queries: Real query vectors of the same kinds, ``(nq, d)``; none of them is in ``database``.
        sizes: Archive sizes. A size up to ``m`` takes the first real rows; a larger one is grown by
            :func:`replicate` (seeded with ``seed``).
        k: Neighbours per query. Defaults to 10.
        n_timing: Queries timed one at a time (all of them are searched in the batch). Defaults to 100.
        methods: Subset of :data:`METHODS`. Defaults to all.
        sweep: Also measure the :data:`SWEEP` settings of the IVF and HNSW knobs. Defaults to `True`.
        threads: FAISS/BLAS threads for the builds and calibrations. Searches always run on one
            thread, so that latencies are per core and a neighbour's load on the other cores does not
            stall them. Defaults to ``faiss.omp_get_max_threads()``.
        bandwidth: Read bandwidth in bytes/s. Defaults to :func:`memory_bandwidth`.
        seed: Seed of the replicas, of the IVF training sample and of the calibration samples.
            Defaults to 0.
        calibration: Held-out real query vectors by kind, disjoint from ``queries`` and
            ``database``. IVF and HNSW first calibrate their knob on their own vectors (as ``add``
            does); with ``calibration`` they calibrate it again on these, and that value becomes
            their default. Defaults to `None` (the first calibration stands).
        target_recall: Recall@k the calibrations aim for. Defaults to 0.95.
        repeats: Batched searches timed per setting (their median is ``batch_ms``). Defaults to 1.
        log: Called with one line per measurement; `None` for silence. Defaults to ``print``.

    Returns:
        A tidy DataFrame, one row per (descriptor, size, method, knob setting), with the columns
        ``descriptor``, ``metric``, ``dim``, ``n``, ``n_real``, ``method``, ``build`` (build
        parameters), ``knob``, ``value``, ``default`` (the index's search default: its calibrated
        value), ``stored`` (the value calibrated on stored vectors), ``build_s`` (with the first
        calibration), ``index_bytes``, ``bound_ms`` (index bytes / bandwidth), ``median_ms``,
        ``p95_ms`` (one query at a time), ``batch_ms`` (per query, all queries at once), ``recall``
        (recall@k of ``queries`` against FAISS flat search), ``recall_se`` (its standard error over
        the queries), ``threads``, ``bandwidth_gbs``, and
        for IVF and HNSW each calibration's ``{stored,heldout}_{value,recall,s}`` (the value, the
        recall it measured on its own queries, its seconds).
    """
    unknown = set(methods) - set(METHODS)
    if unknown:
        raise ValueError(f"methods must be among {METHODS}. Received: methods={sorted(unknown)}")
    if set(database) != set(queries) or (calibration is not None and set(calibration) != set(queries)):
        raise ValueError(f"database, queries and calibration must have the same kinds. Got "
                         f"{sorted(database)}, {sorted(queries)} and {sorted(calibration or {})} instead.")
    settings = {"k": k, "n_timing": n_timing, "methods": methods, "sweep": sweep, "seed": seed, "log": log,
                "threads": int(threads or faiss.omp_get_max_threads()),
                "bandwidth": float(bandwidth or memory_bandwidth()), "target_recall": target_recall,
                "repeats": repeats}
    rows = [row for kind, real in database.items() for n in sorted({int(s) for s in sizes})
            for row in _benchmark_size(kind, real, queries[kind], (calibration or {}).get(kind), n,
                                       **settings)]
    return pd.DataFrame(rows)


def _standard_error(values: np.ndarray) -> float:
    """Standard error of the mean of ``values`` (0 for a single value)."""
    return float(values.std(ddof=1) / np.sqrt(len(values))) if len(values) > 1 else 0.0


def _calibrations(index: Index, held_out: np.ndarray | None, seed: int) -> dict:
    """Record the calibration ``add`` made on stored vectors, then calibrate on ``held_out`` if given."""
    stored = index.calibration_
    out = {"stored_value": stored["value"], "stored_recall": stored["recall"], "stored_s": stored["seconds"]}
    if held_out is not None:
        held = index.calibrate(queries=held_out, seed=seed).calibration_
        out.update(heldout_value=held["value"], heldout_recall=held["recall"], heldout_s=held["seconds"])
    return out


def _benchmark_size(kind: str, real: np.ndarray, queries: np.ndarray, held_out: np.ndarray | None, n: int, *,
                    k, n_timing, methods, sweep, threads, bandwidth, seed, target_recall, repeats,
                    log) -> list[dict]:
    """The rows of :func:`run_scale_benchmark` for one descriptor at one archive size."""
    metric = "hamming" if real.dtype == np.uint8 else "l2"
    X = replicate(real, n, seed=seed)
    truth, rows = None, []
    for method in ("flat", *[m for m in methods if m != "flat"]):  # flat first: it gives the ground truth
        with _threads(threads):
            start = time.perf_counter()
            index, built = build(X, metric, method, seed=seed, target_recall=target_recall)
            build_s = time.perf_counter() - start
            knob = KNOBS.get(method, "")
            calibrated = _calibrations(index, held_out, seed) if knob else {}
        size = index_bytes(index)
        default = getattr(index, knob) if knob else None
        values = [default] if not knob else sorted({default, calibrated["stored_value"],
                                                     *(SWEEP[method] if sweep else ())})
        for value in values:
            search = {knob: value} if knob else {}
            D, I, stats = measure(index, queries, k, n_timing, repeats=repeats, **search)
            truth = (D, I) if truth is None else truth
            if method not in methods:
                continue
            ties = (D, truth[0]) if metric == "hamming" else ()  # integer distances: ties are hits
            per_query = recall_per_query(I, truth[1], *ties)
            rows.append({"descriptor": kind, "metric": metric, "dim": X.shape[1] * (8 if ties else 1), "n": n,
                         "n_real": min(n, len(real)), "method": method, "build": built, "knob": knob,
                         "value": value, "default": value == default,
                         "stored": bool(knob) and value == calibrated["stored_value"], "build_s": build_s,
                         "index_bytes": size, "bound_ms": 1000 * size / bandwidth, **stats,
                         "recall": float(per_query.mean()), "recall_se": _standard_error(per_query),
                         "threads": threads,
                         "bandwidth_gbs": bandwidth / 1e9, **calibrated})
            if log:
                log(f"{kind:6s} n={n:>9,} {method:5s} {f'{knob}={value}' if knob else '':14s} build "
                    f"{build_s:7.2f} s {size / 2**20:8.1f} MiB  bound {rows[-1]['bound_ms']:8.3f} ms  median "
                    f"{stats['median_ms']:8.3f} ms  p95 {stats['p95_ms']:8.3f} ms  batch "
                    f"{stats['batch_ms']:7.3f} ms/q  recall@{k} {rows[-1]['recall']:.3f}"
                    + ("  (default)" if knob and value == default else ""))
        del index
    return rows
