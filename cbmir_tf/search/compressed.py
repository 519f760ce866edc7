"""Compressed indexes at archive sizes whose float vectors outgrow memory (1M to 10M rows and more).

A flat index of 324-d HOG vectors takes 1,296 bytes an image: 13 GB at ten million images. An
IVF-PQ index (``Index(kind="ivfpq")``) keeps ``pq_m`` bytes of product-quantisation code an image
(plus its 8-byte id) and answers from those codes alone. :func:`run_compressed_benchmark`
measures what that costs in recall: the archive, grown from the real vectors by
:func:`cbmir_tf.search.scale.replica_blocks`, is streamed block by block (never held whole) three
times, to draw the training sample and the exact neighbours of the queries, to add the codes, and
to read back the original vectors of each query's shortlist for an exact re-ranking (what a
system would do with the full vectors kept on disk).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence

import faiss
import numpy as np
import pandas as pd

from cbmir_tf.search.index import TARGET_RECALL, Index, blas_batches, default_pq_m, recall_per_query
from cbmir_tf.search.scale import _standard_error, _threads, index_bytes, measure, replica_blocks

#: IVF cells of the compressed indexes: fewer than ``Index``'s sqrt(n) (3,162 at 10M), since scanning
#: a cell of codes is cheap and assigning every vector to its cell is most of the build.
PQ_NLIST = 1024
PQ_TRAIN_ROWS = 65536  # training sample (IVF cells and codebooks); FAISS' PQ uses at most 65,536
#: Candidates per query that the exact re-ranking reads back (10 and 100 times k = 10).
SHORTLISTS = (100, 1000)
_ADD_ROWS = 1 << 20  # rows per Index.add call while streaming


def exact_neighbours(blocks: Iterator[tuple[int, np.ndarray]], queries: np.ndarray, k: int,
                     keep: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Exact L2 ``k`` nearest rows of ``queries`` over an archive streamed as ``blocks``.

    Args:
        blocks: ``(first row, rows)`` pairs covering the archive in order (see ``replica_blocks``).
        queries: Float32 query vectors ``(nq, d)``.
        k: Neighbours per query.
        keep: Sorted row numbers whose vectors to collect on the way (e.g. a training sample).

    Returns:
        ``(D, I, kept)``: Euclidean distances and row numbers ``(nq, k)``, nearest first (ties by
        row), and the vectors of ``keep`` in its order (`None` without ``keep``).
    """
    D, I, kept = np.zeros((len(queries), 0), np.float32), np.zeros((len(queries), 0), np.int64), []
    for start, block in blocks:
        flat = faiss.IndexFlatL2(block.shape[1])
        flat.add(np.ascontiguousarray(block, dtype=np.float32))
        with blas_batches(block.shape[1]):
            d, i = flat.search(queries, min(k, len(block)))
        D, I = np.concatenate([D, d], 1), np.concatenate([I, i + start], 1)
        order = np.lexsort((I, D), axis=1)[:, :k]
        D, I = np.take_along_axis(D, order, 1), np.take_along_axis(I, order, 1)
        if keep is not None:
            inside = keep[(keep >= start) & (keep < start + len(block))]
            kept.append(block[inside - start])
    return np.sqrt(np.maximum(D, 0)), I, None if keep is None else np.concatenate(kept)


def gather_rows(blocks: Iterator[tuple[int, np.ndarray]], rows: np.ndarray) -> np.ndarray:
    """The vectors of sorted, unique ``rows`` of an archive streamed as ``blocks``, in that order."""
    found = [block[rows[(rows >= start) & (rows < start + len(block))] - start] for start, block in blocks]
    return np.concatenate(found)


def rerank_exact(queries: np.ndarray, shortlist: np.ndarray, vectors: np.ndarray,
                 rows: np.ndarray, k: int, batch: int = 64) -> np.ndarray:
    """Re-rank each query's ``shortlist`` (row numbers ``(nq, s)``, -1 padding) by exact L2
    distance to the original vectors, ``vectors[j]`` being row ``rows[j]``; return the ``k`` best rows."""
    best = []
    for b in range(0, len(queries), batch):  # (batch, s, d) candidates at a time
        found = shortlist[b:b + batch]
        candidates = vectors[np.searchsorted(rows, np.maximum(found, 0))]
        distances = np.linalg.norm(candidates - queries[b:b + batch, None, :], axis=2)
        distances[found < 0] = np.inf
        order = np.lexsort((found, distances), axis=1)[:, :k]
        best.append(np.take_along_axis(found, order, 1))
    return np.concatenate(best)


def source_recall(I: np.ndarray, I_exact: np.ndarray, n_real: int) -> np.ndarray:
    """Per query, the share of the real images behind the exact top k (row ``i`` is a copy of real
    row ``i % n_real``) that the rows ``I`` also stand for: recall that forgives taking one
    perturbed copy of the right image for another."""
    found, wanted = np.where(I >= 0, I % n_real, -1), I_exact % n_real
    return np.array([np.isin(np.unique(w), f).mean() for f, w in zip(found, wanted)])


def _streamed_index(real, n, seed, nlist, pq_m, sample, log) -> tuple[Index, float, float]:
    """Train an IVF-PQ index on ``sample`` and add the ``n`` streamed rows: ``(index, train_s, add_s)``."""
    index = Index("l2", kind="ivfpq", nlist=nlist, pq_m=pq_m, nprobe=1)  # nprobe calibrated afterwards
    start = time.perf_counter()
    index.train(sample)
    train_s, start = time.perf_counter() - start, time.perf_counter()
    buffer, first = [], 0
    for row, block in replica_blocks(real, n, seed=seed):
        buffer.append(block)
        if sum(map(len, buffer)) >= _ADD_ROWS or row + len(block) == n:
            X = np.concatenate(buffer)
            index.add(X, ids=np.arange(first, first + len(X)))
            first, buffer = first + len(X), []
    add_s = time.perf_counter() - start
    if log:
        log(f"ivfpq n={n:>10,} pq_m={pq_m:3d} nlist={nlist}: trained in {train_s:.1f} s, added in {add_s:.1f} s")
    return index, train_s, add_s


def run_compressed_benchmark(real: np.ndarray, queries: np.ndarray, calibration: np.ndarray,
                             sizes: Sequence[int], *, pq_ms: Sequence[int | None] = (None,), k: int = 10,
                             shortlists: Sequence[int] = SHORTLISTS, nlist: int = PQ_NLIST, n_timing: int = 100,
                             threads: int | None = None, target_recall: float = TARGET_RECALL,
                             seed: int = 0, log: Callable[[str], None] | None = print) -> pd.DataFrame:
    """Build an IVF-PQ index of each code size at each archive size and measure what it keeps.

    Args:
        real: Real float32 archive vectors ``(m, d)``, grown to each size by ``replica_blocks``.
        queries: Real query vectors ``(nq, d)``, not in the archive.
        calibration: Further real vectors (never queries) on which ``nprobe`` is calibrated, for
            ``target_recall`` against a scan of every cell (``Index.calibrate``).
        sizes: Archive sizes.
        pq_ms: Code bytes per image (``pq_m``); `None` is ``default_pq_m(d)``. Defaults to ``(None,)``.
        k: Neighbours per query. Defaults to 10.
        shortlists: Candidates per query re-ranked with the original vectors. Defaults to
            ``(100, 1000)``.
        nlist: IVF cells (fewer when the archive is small: at most one per 39 training rows).
            Defaults to 1,024.
        n_timing: Queries timed one at a time, on one thread. Defaults to 100.
        threads: FAISS/BLAS threads for building and calibrating. Defaults to all.
        target_recall: What ``nprobe`` is calibrated for. Defaults to 0.95.
        seed: Seed of the replicas and of the training sample. Defaults to 0.
        log: Called with a line per step; `None` for silence. Defaults to ``print``.

    Returns:
        One row per (size, code size): ``n``, ``n_real``, ``dim``, ``pq_m``, ``nlist``, ``nprobe``
        (calibrated), ``calibration_recall`` (of the calibration vectors against a scan of all
        cells), ``train_s``, ``add_s``, ``index_bytes``, ``bytes_per_image`` (the whole index: codes,
        ids, centroids, codebooks), ``flat_bytes_per_image`` (4 ``d``), ``median_ms``, ``p95_ms``,
        ``batch_ms``, ``recall`` and ``recall_se`` (recall@k of the queries against exact search of
        the original vectors), ``recall_all_cells`` (the same with every cell scanned: the codes'
        own limit), ``source_recall`` (see :func:`source_recall`), ``rerank{s}_recall`` and
        ``rerank{s}_recall_se`` for each ``s`` of ``shortlists`` (after re-ranking ``s``
        candidates exactly), and ``exact_s`` (the streamed exact search).
    """
    real = np.ascontiguousarray(real, dtype=np.float32)
    queries = np.ascontiguousarray(queries, dtype=np.float32)
    threads = int(threads or faiss.omp_get_max_threads())
    rows = []
    for n in sorted({int(s) for s in sizes}):
        sample = np.sort(np.random.default_rng(seed).choice(n, min(PQ_TRAIN_ROWS, n), replace=False))
        cells = int(min(nlist, len(sample) // 39))
        with _threads(threads):
            start = time.perf_counter()
            D_exact, I_exact, train = exact_neighbours(replica_blocks(real, n, seed=seed), queries, k, keep=sample)
            exact_s = time.perf_counter() - start
            built = {m: _streamed_index(real, n, seed, cells, m or default_pq_m(real.shape[1]), train, log)
                     for m in pq_ms}
        candidates = {}
        for m, (index, train_s, add_s) in built.items():
            with _threads(threads):
                index.calibrate(target_recall, queries=calibration, k=k, seed=seed)
            _, I, stats = measure(index, queries, k, n_timing)
            _, I_all = index.search(queries, k, nprobe=index.nlist)
            candidates[m] = index.search(queries, max(shortlists))[1]
            per_query = recall_per_query(I, I_exact)
            rows.append({"n": n, "n_real": min(n, len(real)), "dim": real.shape[1], "pq_m": index.pq_m,
                         "nlist": index.nlist, "nprobe": index.nprobe,
                         "calibration_recall": index.calibration_["recall"], "train_s": train_s, "add_s": add_s,
                         "index_bytes": index_bytes(index), "bytes_per_image": index_bytes(index) / n,
                         "flat_bytes_per_image": 4 * real.shape[1], **stats, "recall": float(per_query.mean()),
                         "recall_se": _standard_error(per_query),
                         "recall_all_cells": float(recall_per_query(I_all, I_exact).mean()),
                         "source_recall": float(source_recall(I, I_exact, len(real)).mean()), "exact_s": exact_s})
        wanted = np.unique(np.concatenate([found.ravel() for found in candidates.values()]))
        wanted = wanted[wanted >= 0]
        vectors = gather_rows(replica_blocks(real, n, seed=seed), wanted)
        for row, m in zip(rows[-len(built):], built):
            for s in shortlists:
                top = rerank_exact(queries, candidates[m][:, :s], vectors, wanted, k)
                per_query = recall_per_query(top, I_exact)
                row.update({f"rerank{s}_recall": float(per_query.mean()),
                            f"rerank{s}_recall_se": _standard_error(per_query)})
            if log:
                reranked = ", ".join(f"top {s} re-ranked {row[f'rerank{s}_recall']:.3f}" for s in shortlists)
                log(f"ivfpq n={n:>10,} pq_m={row['pq_m']:3d} nprobe={row['nprobe']:4d} "
                    f"{row['bytes_per_image']:6.1f} B/image  median {row['median_ms']:7.3f} ms  recall@{k} "
                    f"{row['recall']:.3f} (all cells {row['recall_all_cells']:.3f}, {reranked})")
        del built
    return pd.DataFrame(rows)
