"""The glue between index and metrics, on hand-worked cases."""

import numpy as np

from cbmir_tf.evaluation import first_hit_error, retrieval_report, search_database, time_per_query


def test_retrieval_report_by_hand():
    db = np.array(["CT-abdomen-kidney_cyst", "CT-abdomen-kidney_stone", "MR-brain-glioma", "CT-brain-hemorrhage"])
    q = np.array(["CT-abdomen-kidney_cyst", "MR-brain-no_tumor"])
    hits = np.array([[1, 0, 3], [3, 2, 0]])
    report = retrieval_report(q, db, hits, k_max=3)
    # query 0 hits: stone (region+mod ok, class wrong), cyst (all ok), brain CT (mod only)
    # query 1 hits: brain CT (region only), glioma (region+mod), kidney CT (nothing)
    assert report.loc["class", "P@1"] == 0.0 and report.loc["class", "P@2"] == 0.25
    assert report.loc["region", "P@1"] == 1.0  # abdomen, brain
    assert report.loc["modality", "P@1"] == 0.5  # CT ok, CT vs MR wrong
    # both: q0 rel = [1,1,0] -> P@1..3 = 1, 1, 2/3; q1 rel = [0,1,0] -> 0, 1/2, 1/3
    np.testing.assert_allclose(report.loc["both", ["P@1", "P@2", "P@3"]], [0.5, 0.75, 0.5])
    np.testing.assert_allclose(report.loc["both", "mAP"], ((1 + 1 + 2 / 3) + (0 + 0.5 + 1 / 3)) / 6)


def test_first_hit_error_is_zero_for_self_retrieval(ct_slices):
    vectors = ct_slices.reshape(len(ct_slices), -1)[:, ::37].astype(np.float32)
    codes = np.array(["CT-abdomen-kidney_cyst", "CT-abdomen-kidney_stone"] * 32)
    _, hits = search_database(vectors, vectors, "l2", 1)
    result = first_hit_error(codes, codes, hits)
    assert result == {"error_total": 0.0, "error_mean": 0.0, "accuracy": 1.0}


def test_time_per_query_counts_every_query():
    calls = []
    timing = time_per_query(calls.append, 7)
    assert calls == list(range(7)) and timing["n_queries"] == 7 and timing["p95_ms"] >= timing["median_ms"] >= 0
