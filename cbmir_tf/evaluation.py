"""Glue between an index and the metrics: search a database, score the hits, time the queries.

Relevance follows paper 002: a hit is relevant when it shares the query's body
region, its modality, or both (``axis="region" | "modality" | "both"``); ``"class"``
asks for the identical code (region, modality and finding).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd

from cbmir_tf.search.index import Index
from cbmir_tf.irma import CodeHierarchy, code_axes
from cbmir_tf.metrics import (axis_relevance, map_at_kmax, mean_average_precision, mean_precision_at_k,
                             retrieval_irma_error)

AXES = ("region", "modality", "both", "class")


def search_database(database: np.ndarray, queries: np.ndarray, metric: str, k: int = 10, *,
                    descriptor: str = "unnamed", params: dict | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Exact k-NN of each query among the database vectors.

    Args:
        database: ``(n, d)`` float32 vectors (or binary codes for ``"hamming"``).
        queries: ``(nq, d)`` vectors of the same kind.
        metric: ``"l2"``, ``"l1"``, ``"cosine"`` or ``"hamming"``.
        k: Hits per query. Defaults to 10.

    Returns:
        ``(D, I)``: distances and database row numbers, both ``(nq, k)``, nearest first.
    """
    index = Index(metric, descriptor=descriptor, params=params)
    index.add(database)
    return index.search(queries, k)


def retrieval_report(query_codes: Sequence[str], database_codes: Sequence[str], hits: np.ndarray,
                     k_max: int = 10, axes: Sequence[str] = AXES) -> pd.DataFrame:
    """mP@k for k = 1..k_max and paper 002's mAP for each relevance axis.

    Args:
        query_codes: ``(nq,)`` codes of the queries.
        database_codes: ``(n,)`` codes of the database images.
        hits: ``(nq, >= k_max)`` database row numbers, nearest first.
        k_max: Largest k. Defaults to 10.
        axes: Relevance axes to report. Defaults to all four.

    Returns:
        One row per axis, columns ``P@1 .. P@k_max`` and ``mAP``.
    """
    retrieved = np.asarray(database_codes)[np.asarray(hits)[:, :k_max]]
    rows = {}
    for axis in axes:
        relevance = axis_relevance(np.asarray(query_codes), retrieved, axis)
        precision = mean_precision_at_k(relevance, range(1, k_max + 1))
        rows[axis] = {**{f"P@{k}": p for k, p in zip(range(1, k_max + 1), precision)},
                      "mAP": map_at_kmax(relevance, k_max)}
    table = pd.DataFrame.from_dict(rows, orient="index")
    table.index.name = "relevance"
    return table


def code_axes_known(codes: Sequence[str]) -> bool:
    """Whether every code splits into axes (IRMA or ``MOD-region-finding``), so that region,
    modality and the hierarchical error are defined; plain class names do not."""
    try:
        for code in np.unique(np.asarray(codes, dtype=str)):
            code_axes(code)
    except ValueError:
        return False
    return True


def relevant_counts(query_codes: Sequence[str], database_codes: Sequence[str], axis: str) -> np.ndarray:
    """How many database images are relevant to each query under ``axis``: int ``(nq,)``."""
    q_unique, q_inverse = np.unique(np.asarray(query_codes, dtype=str), return_inverse=True)
    d_unique, d_counts = np.unique(np.asarray(database_codes, dtype=str), return_counts=True)
    relevant = axis_relevance(q_unique, np.tile(d_unique, (len(q_unique), 1)), axis)
    return (relevant @ d_counts)[q_inverse]


def metrics_table(query_codes: Sequence[str], database_codes: Sequence[str], hits: np.ndarray, k: int = 10,
                  axes: Sequence[str] | None = None, leave_one_out: bool = False) -> pd.DataFrame:
    """The book's summary scores of one ranked list per query, one row per relevance axis.

    Columns: ``mP@1``, ``mP@k``, ``mAP@k (paper 002)`` (mean of P@1..P@k, `map_at_kmax`) and
    ``mAP@k (AP)``, the standard average precision of the top ``k`` normalised by
    ``min(R, k)``, R being the number of relevant database images.

    Args:
        query_codes: ``(nq,)`` codes (or any class names) of the queries.
        database_codes: ``(n,)`` codes of the database images.
        hits: ``(nq, >= k)`` database row numbers, nearest first (no padding).
        k: Cut-off. Defaults to 10.
        axes: Relevance axes; defaults to all of `AXES` when the codes have axes, else ``("class",)``.
        leave_one_out: The queries are database images searched with themselves excluded,
            so each R is one less. Defaults to `False`.

    Returns:
        DataFrame indexed by axis.
    """
    hits = np.asarray(hits)[:, :k]
    if hits.shape[1] < k or (hits < 0).any():
        raise ValueError(f"hits must hold {k} valid row numbers per query. Got shape {hits.shape} "
                         f"with {(hits < 0).sum()} padding entries instead.")
    query_codes, database_codes = np.asarray(query_codes, dtype=str), np.asarray(database_codes, dtype=str)
    if axes is None:
        axes = AXES if code_axes_known(np.concatenate([query_codes, database_codes])) else ("class",)
    rows = {}
    for axis in axes:
        relevance = axis_relevance(query_codes, database_codes[hits], axis)
        n_relevant = relevant_counts(query_codes, database_codes, axis) - int(leave_one_out)
        precision = mean_precision_at_k(relevance, (1, k))
        rows[axis] = {"mP@1": precision[0], f"mP@{k}": precision[1],
                      f"mAP@{k} (paper 002)": map_at_kmax(relevance, k),
                      f"mAP@{k} (AP)": mean_average_precision(relevance, np.minimum(n_relevant, k))}
    table = pd.DataFrame.from_dict(rows, orient="index")
    table.index.name = "relevance"
    return table


def first_hit_error(query_codes: Sequence[str], database_codes: Sequence[str], hits: np.ndarray,
                    normalize: str = "image") -> dict[str, float]:
    """Hierarchical (IRMA-style) error and accuracy when the first hit's code is the prediction.

    The code hierarchy (the ``b_i`` of the error) is learned from the database codes.

    Returns:
        ``{"error_total", "error_mean", "accuracy"}``.
    """
    database_codes = np.asarray(database_codes)
    predicted = database_codes[np.asarray(hits)[:, 0]]
    hierarchy = CodeHierarchy.from_codes(np.unique(database_codes))
    total = retrieval_irma_error(np.asarray(query_codes), predicted, hierarchy, normalize=normalize)
    return {"error_total": float(total), "error_mean": float(total) / len(predicted),
            "accuracy": float(np.mean(predicted == np.asarray(query_codes)))}


def time_per_query(run_query: Callable[[int], object], n_queries: int, repeat: int = 1) -> dict[str, float]:
    """Wall time of ``run_query(i)`` for i in ``range(n_queries)``, one query at a time.

    Returns:
        Median, mean and 95th percentile in milliseconds, and the number of queries.
    """
    times = []
    for _ in range(repeat):
        for i in range(n_queries):
            start = time.perf_counter()
            run_query(i)
            times.append(time.perf_counter() - start)
    ms = 1000.0 * np.asarray(times)
    return {"median_ms": float(np.median(ms)), "mean_ms": float(ms.mean()),
            "p95_ms": float(np.percentile(ms, 95)), "n_queries": n_queries}
