"""Retrieval and classification metrics as stateless functions of arrays.

Retrieval metrics start from a boolean *relevance matrix* of shape (nq, k):
``relevance[q, j]`` says whether the ``j``-th hit (rank ``j + 1``) of query
``q`` is relevant. Build it with :func:`relevance_matrix` (same label) or
:func:`axis_relevance` (same modality and/or region, as in paper 002).

Two different "mAP"s appear in the papers:

* :func:`map_at_kmax` is paper 002's mAP (Eq. 9): the mean of P@1..P@k_max,
  counting every rank, relevant or not. It rewards early hits and ignores
  recall: a list whose hits are all relevant scores 1 whatever the archive size.
* :func:`mean_average_precision` is the standard (TREC) mAP: precision is
  taken only at the ranks of relevant hits and divided by the number of
  relevant items ``R``; with ``n_relevant`` (and a full archive ranking) it
  measures recall as well.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
from sklearn.metrics import accuracy_score, precision_recall_fscore_support

from cbmir_tf.irma import CodeHierarchy, code_modality, code_region, total_error

__all__ = [
    "average_precision",
    "axis_relevance",
    "classification_report",
    "map_at_kmax",
    "mean_average_precision",
    "mean_precision_at_k",
    "precision_at_k",
    "precision_recall_curve",
    "relevance_matrix",
    "retrieval_irma_error",
]

AXES = ("modality", "region", "both", "class")


def _check_relevance(relevance) -> np.ndarray:
    """Return `relevance` as a bool array of shape (nq, k), or raise."""
    rel = np.asarray(relevance)
    if rel.ndim != 2 or rel.shape[1] == 0:
        raise ValueError(
            f"relevance must be a 2-D array of shape (nq, k) with k >= 1. Got shape {rel.shape} instead."
        )
    if rel.dtype != bool:
        if not np.issubdtype(rel.dtype, np.number) or not np.isin(rel, (0, 1)).all():
            raise ValueError(f"relevance must hold booleans or 0/1. Got dtype {rel.dtype} instead.")
        rel = rel.astype(bool)
    return rel


def _check_pair(
    query, retrieved, names: tuple[str, str] = ("query_labels", "retrieved_labels")
) -> tuple[np.ndarray, np.ndarray]:
    """Check a (nq,) array against a (nq, k) array."""
    q, r = np.asarray(query), np.asarray(retrieved)
    if q.ndim != 1 or r.ndim != 2 or r.shape[0] != q.shape[0]:
        raise ValueError(
            f"{names[0]} must have shape (nq,) and {names[1]} shape (nq, k). "
            f"Got shapes {q.shape} and {r.shape} instead."
        )
    return q, r


def relevance_matrix(query_labels, retrieved_labels) -> np.ndarray:
    """Mark the hits whose label equals the query's label.

    Args:
        query_labels: Array of shape (nq,) of hashable labels (ints or strings).
        retrieved_labels: Array of shape (nq, k): labels of the ranked hits
            (the caller maps the index ids ``I`` to labels, e.g. ``labels[I]``).

    Returns:
        Bool ndarray of shape (nq, k).

    Example:
        >>> relevance_matrix(["a", "b"], [["a", "b"], ["a", "a"]]).tolist()
        [[True, False], [False, False]]
    """
    q, r = _check_pair(query_labels, retrieved_labels)
    if q.dtype.kind != r.dtype.kind:  # e.g. ints vs strings: compare as Python objects
        q, r = q.astype(object), r.astype(object)
    return np.asarray(r == q[:, None], dtype=bool)


def precision_at_k(relevance, k: int) -> np.ndarray:
    """Per-query precision of the first `k` hits.

    Args:
        relevance: Bool array of shape (nq, n_hits), n_hits >= k.
        k: Cut-off rank, 1 <= k <= n_hits.

    Returns:
        Float ndarray of shape (nq,).
    """
    rel = _check_relevance(relevance)
    if not 1 <= int(k) <= rel.shape[1]:
        raise ValueError(f"k must be in [1, {rel.shape[1]}] (the number of hits). Received: k={k}")
    return rel[:, : int(k)].sum(axis=1) / int(k)


def mean_precision_at_k(relevance, ks: Iterable[int] = range(1, 11)) -> np.ndarray:
    """Mean top-k precision mP@k over queries (paper 002, Eq. 8).

    Args:
        relevance: Bool array of shape (nq, n_hits).
        ks: Cut-off ranks. Defaults to 1..10.

    Returns:
        Float ndarray of shape (len(ks),).
    """
    return np.array([precision_at_k(relevance, k).mean() for k in ks], dtype=float)


def map_at_kmax(relevance, k_max: int = 10) -> float:
    """Paper 002's mAP (Eq. 9): the mean over queries of mean(P@1, ..., P@k_max).

    Args:
        relevance: Bool array of shape (nq, n_hits), n_hits >= k_max.
        k_max: Largest cut-off. Defaults to 10.

    Returns:
        The score in [0, 1].
    """
    return float(mean_precision_at_k(relevance, range(1, int(k_max) + 1)).mean())


def average_precision(relevance, n_relevant=None) -> np.ndarray:
    """Standard average precision ``AP = (1 / R) * sum_k P@k * rel_k`` per query.

    Unlike :func:`map_at_kmax`, P@k only counts at ranks holding a relevant hit.

    Args:
        relevance: Bool array of shape (nq, n_hits).
        n_relevant: Optional int array of shape (nq,): the number ``R`` of
            relevant items in the whole archive for each query; then
            `relevance` should cover the full archive ranking (a truncated
            list scores missed items as precision 0). If `None`, ``R`` is the
            number of relevant hits in the list. Defaults to `None`.

    Returns:
        Float ndarray of shape (nq,); 0 for a query with ``R == 0``.
    """
    rel = _check_relevance(relevance)
    hits = rel.sum(axis=1)
    if n_relevant is None:
        n_rel = hits
    else:
        n_rel = np.asarray(n_relevant)
        if n_rel.shape != (rel.shape[0],) or not np.issubdtype(n_rel.dtype, np.number):
            raise ValueError(
                f"n_relevant must be a number array of shape ({rel.shape[0]},). "
                f"Got shape {n_rel.shape} instead."
            )
        if (n_rel < hits).any():
            q = int(np.argmax(n_rel < hits))
            raise ValueError(
                f"n_relevant must be at least the relevant hits in the list; query {q} has "
                f"{hits[q]} relevant hits. Got n_relevant[{q}]={n_rel[q]} instead."
            )
    ranks = np.arange(1, rel.shape[1] + 1)
    precision = np.cumsum(rel, axis=1) / ranks  # (nq, n_hits): P@k
    summed = (precision * rel).sum(axis=1)
    return np.divide(summed, n_rel, out=np.zeros(rel.shape[0]), where=n_rel > 0)


def mean_average_precision(relevance, n_relevant=None) -> float:
    """Standard (TREC) mAP: the mean of :func:`average_precision` over queries.

    See the module docstring for how this differs from paper 002's mAP.
    """
    return float(average_precision(relevance, n_relevant).mean())


def precision_recall_curve(relevance, n_relevant, n_levels: int = 11) -> tuple[np.ndarray, np.ndarray]:
    """Interpolated precision-recall curve averaged over queries.

    At recall level ``r`` a query's interpolated precision is the highest
    precision at any rank whose recall is >= ``r`` (0 if no rank reaches ``r``).
    Queries with ``n_relevant == 0`` have no recall and are left out.

    Args:
        relevance: Bool array of shape (nq, n_hits), ideally the full ranking.
        n_relevant: Int array of shape (nq,): relevant items in the archive.
        n_levels: Number of equally spaced recall levels from 0 to 1.
            Defaults to 11 (the classic 11-point curve).

    Returns:
        ``(recall_levels, mean_precision)``, two float ndarrays of shape (n_levels,).
    """
    rel = _check_relevance(relevance)
    if int(n_levels) < 2:
        raise ValueError(f"n_levels must be at least 2. Received: n_levels={n_levels}")
    n_rel = np.asarray(n_relevant)
    if n_rel.shape != (rel.shape[0],):
        raise ValueError(f"n_relevant must have shape ({rel.shape[0]},). Got shape {n_rel.shape} instead.")
    if (n_rel < rel.sum(axis=1)).any():
        raise ValueError(
            "n_relevant must be at least the number of relevant hits of each query. Got fewer instead."
        )
    keep = n_rel > 0
    if not keep.any():
        raise ValueError("Every query has n_relevant == 0, so recall is undefined. Got all zeros instead.")
    rel, n_rel = rel[keep], n_rel[keep]
    found = np.cumsum(rel, axis=1)
    precision = found / np.arange(1, rel.shape[1] + 1)  # (nq, n_hits)
    recall = found / n_rel[:, None]  # (nq, n_hits)
    levels = np.linspace(0.0, 1.0, int(n_levels))
    # (nq, n_hits, n_levels): precision where recall reaches the level, else 0.
    reach = recall[:, :, None] >= levels[None, None, :] - 1e-12
    interpolated = np.where(reach, precision[:, :, None], 0.0).max(axis=1)
    return levels, interpolated.mean(axis=0)


def axis_relevance(query_codes, retrieved_codes, axis: str = "both") -> np.ndarray:
    """Relevance by code axis (paper 002: same modality and/or region).

    Args:
        query_codes: Array of shape (nq,) of IRMA or benchmark codes.
        retrieved_codes: Array of shape (nq, k) of the hits' codes.
        axis: ``"modality"`` (IRMA technical axis / benchmark ``MOD``),
            ``"region"`` (IRMA anatomical axis / benchmark region), ``"both"``
            (modality and region) or ``"class"`` (identical code).
            Defaults to ``"both"``.

    Returns:
        Bool ndarray of shape (nq, k).
    """
    if axis not in AXES:
        raise ValueError(f"axis must be one of {AXES}. Received: axis={axis!r}")
    q, r = _check_pair(query_codes, retrieved_codes, ("query_codes", "retrieved_codes"))
    q, r = q.astype(str), r.astype(str)
    if axis == "class":
        return relevance_matrix(q, r)
    keys = {"modality": [code_modality], "region": [code_region], "both": [code_modality, code_region]}[axis]
    result = np.ones(r.shape, dtype=bool)
    # Map each distinct code once, then compare the mapped arrays.
    uniq, inverse = np.unique(np.concatenate([q, r.ravel()]), return_inverse=True)
    for key in keys:
        mapped = np.array([key(code) for code in uniq], dtype=object)[inverse]
        result &= relevance_matrix(mapped[: q.size], mapped[q.size :].reshape(r.shape))
    return result


def classification_report(y_true, y_pred) -> dict[str, float]:
    """Accuracy and macro precision / recall / F1, as the classification papers report them.

    "Average precision" (AP) and "average recall" (AR) in those papers are the
    macro averages over classes, not ranking AP. Classes are the union of the
    labels in `y_true` and `y_pred`; an undefined ratio counts as 0.

    Args:
        y_true: Array of shape (n,) of true labels.
        y_pred: Array of shape (n,) of predicted labels.

    Returns:
        Dict with float values under ``"accuracy"``, ``"average_precision"``,
        ``"average_recall"`` and ``"f1"``.
    """
    t, p = np.asarray(y_true), np.asarray(y_pred)
    if t.ndim != 1 or t.shape != p.shape or t.size == 0:
        raise ValueError(
            "y_true and y_pred must be non-empty and of shape (n,). "
            f"Got shapes {t.shape} and {p.shape} instead."
        )
    precision, recall, f1, _ = precision_recall_fscore_support(t, p, average="macro", zero_division=0)
    return {
        "accuracy": float(accuracy_score(t, p)),
        "average_precision": float(precision),
        "average_recall": float(recall),
        "f1": float(f1),
    }


def retrieval_irma_error(
    query_codes, retrieved_codes_top1, hierarchy: CodeHierarchy, normalize: str = "image"
) -> float:
    """Total IRMA error when the first hit's code is taken as the prediction.

    Args:
        query_codes: Array of shape (nq,) of true codes.
        retrieved_codes_top1: Array of shape (nq,) of the rank-1 hits' codes,
            or (nq, k), of which column 0 is used.
        hierarchy: Built from the archive's (training) codes.
        normalize: See :func:`cbmir_tf.irma.hierarchical_error`. Defaults to ``"image"``.

    Returns:
        The summed error (the ImageCLEF score for ``"image"``).
    """
    q, r = np.asarray(query_codes), np.asarray(retrieved_codes_top1)
    if r.ndim == 2:
        r = r[:, 0] if r.shape[1] > 0 else r.ravel()
    if q.ndim != 1 or r.shape != q.shape:
        raise ValueError(
            "query_codes must have shape (nq,) and retrieved_codes_top1 shape (nq,) or (nq, k). "
            f"Got shapes {np.shape(query_codes)} and {np.shape(retrieved_codes_top1)} instead."
        )
    return total_error(q.astype(str).tolist(), r.astype(str).tolist(), hierarchy, normalize)
