"""Tests of cbmir_tf.metrics against hand-computed values."""

from __future__ import annotations

import numpy as np
import pytest

from cbmir_tf.data.registry import fetch
from cbmir_tf.irma import CodeHierarchy, read_irma_codes
from cbmir_tf.metrics import (
    average_precision,
    axis_relevance,
    classification_report,
    map_at_kmax,
    mean_average_precision,
    mean_precision_at_k,
    precision_at_k,
    precision_recall_curve,
    relevance_matrix,
    retrieval_irma_error,
)

# Two queries, four hits each.
REL = np.array([[1, 0, 1, 0], [0, 1, 1, 1]], dtype=bool)


def test_relevance_matrix_labels():
    got = relevance_matrix([3, 5], [[3, 5, 3], [5, 5, 1]])
    assert got.tolist() == [[True, False, True], [True, True, False]]
    got = relevance_matrix(np.array(["a", "b"]), np.array([["a", "b"], ["b", "a"]]))
    assert got.dtype == bool and got.tolist() == [[True, False], [True, False]]
    # Ints never equal strings.
    assert not relevance_matrix([1], [["1", "2"]]).any()
    with pytest.raises(ValueError, match=r"Got shapes \(2,\) and \(3, 1\) instead"):
        relevance_matrix([1, 2], [[1], [2], [3]])


def test_precision_at_k():
    # P@3: q0 2/3, q1 2/3; mP@1..4: (1+0)/2, (1/2+1/2)/2, 2/3, (1/2+3/4)/2 = 0.625.
    assert precision_at_k(REL, 3) == pytest.approx([2 / 3, 2 / 3])
    assert mean_precision_at_k(REL, ks=range(1, 5)) == pytest.approx([0.5, 0.5, 2 / 3, 0.625])
    with pytest.raises(ValueError, match="Received: k=5"):
        precision_at_k(REL, 5)
    with pytest.raises(ValueError, match="Got shape"):
        precision_at_k(np.ones(4), 1)
    with pytest.raises(ValueError, match="Got dtype"):
        precision_at_k(np.array([[0, 2]]), 1)


def test_map_at_kmax_paper002():
    # q0: (1 + 1/2 + 2/3 + 1/2) / 4 = 2/3 = 32/48; q1: (0 + 1/2 + 2/3 + 3/4) / 4 = 23/48; mean 55/96.
    assert map_at_kmax(REL, k_max=4) == pytest.approx(55 / 96)
    assert map_at_kmax(np.ones((3, 10), dtype=bool)) == 1.0


def test_average_precision_standard():
    # q0 [1,0,1,0]: (1 + 2/3) / 2 = 5/6; q1 [0,1,1,1]: (1/2 + 2/3 + 3/4) / 3 = 23/36.
    assert average_precision(REL) == pytest.approx([5 / 6, 23 / 36])
    assert mean_average_precision(REL) == pytest.approx((5 / 6 + 23 / 36) / 2)  # 53/72
    # With 4 relevant items in the archive for q0: (1 + 2/3) / 4 = 5/12.
    assert average_precision(REL, n_relevant=[4, 3]) == pytest.approx([5 / 12, 23 / 36])
    assert average_precision(np.zeros((1, 3), dtype=bool)).tolist() == [0.0]
    with pytest.raises(ValueError, match=r"Got n_relevant\[1\]=2 instead"):
        average_precision(REL, n_relevant=[2, 2])
    with pytest.raises(ValueError, match="Got shape"):
        average_precision(REL, n_relevant=[2, 3, 4])


def test_precision_recall_curve():
    # q0 [1,0,1,0], R=2: precision 1, 1/2, 2/3, 1/2; recall 1/2, 1/2, 1, 1.
    # q1 [0,1,1,1], R=4: precision 0, 1/2, 2/3, 3/4; recall 0, 1/4, 1/2, 3/4 (never 1).
    # q2 has R=0 and is left out.
    rel = np.vstack([REL, np.zeros((1, 4), dtype=bool)])
    levels, prec = precision_recall_curve(rel, n_relevant=[2, 4, 0])
    assert levels == pytest.approx(np.linspace(0, 1, 11))
    assert prec[0] == pytest.approx((1 + 3 / 4) / 2)  # recall 0: best precision anywhere
    assert prec[5] == pytest.approx((1 + 3 / 4) / 2)  # recall 0.5
    assert prec[8] == pytest.approx((2 / 3 + 0) / 2)  # recall 0.8: q1 never reaches it
    assert prec[10] == pytest.approx(1 / 3)  # recall 1
    levels, prec = precision_recall_curve(REL[:1], n_relevant=[2], n_levels=3)
    assert prec == pytest.approx([1.0, 1.0, 2 / 3])
    with pytest.raises(ValueError, match="all zeros"):
        precision_recall_curve(np.zeros((2, 4), dtype=bool), n_relevant=[0, 0])
    with pytest.raises(ValueError, match="Got fewer instead"):
        precision_recall_curve(REL, n_relevant=[0, 0])


def test_axis_relevance_benchmark_codes():
    query = ["CT-abdomen-kidney_stone"]
    hits = [
        [
            "CT-abdomen-kidney_cyst",
            "MR-abdomen-liver_lesion",
            "CT-brain-hemorrhage",
            "CT-abdomen-kidney_stone",
        ]
    ]
    assert axis_relevance(query, hits, "modality").tolist() == [[True, False, True, True]]
    assert axis_relevance(query, hits, "region").tolist() == [[True, True, False, True]]
    assert axis_relevance(query, hits, "both").tolist() == [[True, False, False, True]]
    assert axis_relevance(query, hits, "class").tolist() == [[False, False, False, True]]
    # IRMA: modality = technical axis, region = anatomical axis.
    irma_hits = [["1121-12f-466-700", "1123-120-466-700", "1121-120-412-700"]]
    irma = axis_relevance(["1121-120-466-700"], irma_hits)
    assert irma.tolist() == [[True, False, False]]
    with pytest.raises(ValueError, match="Received: axis='organ'"):
        axis_relevance(query, hits, "organ")


def test_classification_report_hand_example():
    # accuracy 3/5. Class 0: P 1/2, R 1/2, F1 1/2. Class 1: P 2/3, R 1, F1 4/5. Class 2: P 0, R 0, F1 0.
    # Macro: P 7/18, R 1/2, F1 (1/2 + 4/5) / 3 = 13/30.
    report = classification_report([0, 0, 1, 1, 2], [0, 1, 1, 1, 0])
    expected = {"accuracy": 0.6, "average_precision": 7 / 18, "average_recall": 0.5, "f1": 13 / 30}
    assert report == pytest.approx(expected)
    with pytest.raises(ValueError, match="Got shapes"):
        classification_report([0, 1], [0])


def test_retrieval_irma_error_real_hierarchy():
    path = fetch("irma-codes/ImageCLEFmed2009_train_codes.02.csv")
    hierarchy = CodeHierarchy.from_codes(read_irma_codes(path)["irma_code"])
    queries = ["1121-120-466-700", "1121-120-466-700"]
    hits = [["1121-12f-466-700", "1121-120-466-700"], ["1121-120-466-700", "1121-12f-466-700"]]
    # Only the first query's rank-1 hit is wrong, at D position 3 (b = 6): (1/18) / (91/180) / 4 = 5/182.
    assert retrieval_irma_error(queries, hits, hierarchy) == pytest.approx(5 / 182)
    top1 = [h[0] for h in hits]
    assert retrieval_irma_error(queries, top1, hierarchy, normalize="raw") == pytest.approx(1 / 18)
    with pytest.raises(ValueError, match="Got shapes"):
        retrieval_irma_error(queries, ["1121-120-466-700"], hierarchy)
