"""The report helpers: claims with a paired bootstrap, and numbers formatted by meaning."""

import numpy as np
import pandas as pd
import pytest

from cbmir_tf.metrics import average_precision, relevance_matrix
from cbmir_tf.report import _column_formatter, claim, paired_bootstrap, save_claims, verdict


def per_query_ap(labels: np.ndarray, vectors: np.ndarray, k: int = 10) -> np.ndarray:
    """AP@k of every image against the others (leave one out), by Euclidean distance."""
    distances = ((vectors[:, None, :] - vectors[None, :, :]) ** 2).sum(-1)
    np.fill_diagonal(distances, np.inf)
    hits = np.argsort(distances, axis=1)[:, :k]
    return average_precision(relevance_matrix(labels, labels[hits]))


@pytest.fixture(scope="module")
def two_descriptors(small_benchmark):
    """Per-query AP@10 of raw pixels and of random noise, on the 80 real images of the small benchmark
    (chest X-rays and breast ultrasound: pixels tell the modality apart, noise does not)."""
    images, labels = small_benchmark.images, np.unique(small_benchmark.labels, return_inverse=True)[1]
    small = images.reshape(len(images), -1).astype(float)
    noise = np.random.default_rng(0).normal(size=small.shape)
    return per_query_ap(labels, small), per_query_ap(labels, noise)


def test_paired_bootstrap_interval_holds_the_mean():
    rng = np.random.default_rng(1)
    a, b = rng.random(300), rng.random(300)
    mean, low, high = paired_bootstrap(a, b, seed=0)
    assert low < mean < high
    assert mean == pytest.approx((a - b).mean())
    assert paired_bootstrap(a, b, seed=0) == (mean, low, high)  # seeded


def test_claim_on_real_retrieval_is_supported_and_its_opposite_contradicted(two_descriptors):
    pixels, noise = two_descriptors
    row = claim("000", "pixels beat noise", "none", "AP@10", "pixels", "noise", pixels, noise)
    assert row["verdict"] == "supported" and row["ci_low"] > 0
    assert row["ours_value"] == pytest.approx(pixels.mean())
    opposite = claim("000", "noise beats pixels", "none", "AP@10", "noise", "pixels", noise, pixels)
    assert opposite["verdict"] == "contradicted"


def test_claim_for_an_error_counts_lower_as_better():
    rng = np.random.default_rng(2)
    low_error, high_error = rng.random(200) * 0.2, rng.random(200) * 0.2 + 0.5
    row = claim("003", "x lowers the error", "", "error", "x", "y", low_error, high_error,
                higher_is_better=False)
    assert row["verdict"] == "supported" and row["difference"] > 0


def test_verdict_straddling_zero_is_inconclusive():
    assert verdict(-0.01, 0.02) == "inconclusive"


def test_save_claims_writes_every_column(tmp_path, two_descriptors):
    pixels, noise = two_descriptors
    table = save_claims([claim("000", "c", "e", "m", "a", "b", pixels, noise)], tmp_path)
    assert list(pd.read_csv(tmp_path / "claims.csv").columns) == list(table.columns)


@pytest.mark.parametrize("values, shown", [
    ([1.0, 16.0, np.nan], ["1", "16", "–"]),                # whole numbers stay whole
    ([4608.0, 12345.0], ["4608", "12,345"]),                   # thousands separated from 10,000
    ([0.5, 1.0, 81.999999], ["0.5000", "1.0000", "82.0000"]),  # one format per float column
])
def test_columns_formatted_by_meaning(values, shown):
    column = pd.Series(values)
    assert [_column_formatter(column, "{:.4f}")(v) for v in column] == shown


def test_show_table_formats_columns_that_share_a_label(tmp_path):
    # the paper profile's own overrides table has the columns setting, paper, paper
    from cbmir_tf.report import _column_values

    table = pd.DataFrame([("epochs", "500", "2"), ("batch", "16", "4")], columns=["setting", "paper", "paper"])
    assert list(_column_values(table, "paper")) == ["500", "16", "2", "4"]
    formatter = _column_formatter(_column_values(table, "paper"), "{:.4f}")
    assert formatter("500") == "500"
