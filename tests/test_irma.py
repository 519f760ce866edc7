"""Tests of cbmir_tf.irma on the real ImageCLEFmed 2009 code lists and hand-made benchmark codes."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import pandas as pd
import pytest

from cbmir_tf.data.registry import fetch
from cbmir_tf.irma import (
    CodeHierarchy,
    code_axes,
    code_modality,
    code_region,
    hierarchical_error,
    parse_irma_code,
    read_irma_codes,
    total_error,
)

TRAIN = "ImageCLEFmed2009_train_codes.02.csv"
NORMS = ["raw", "axis", "image"]
TEST = "ImageCLEFmed2009_test_codes.03.csv"


def _code_file(name: str) -> Path:
    """The published code list, through the data registry."""
    return fetch(f"irma-codes/{name}")


@pytest.fixture(scope="module")
def train_df() -> pd.DataFrame:
    return read_irma_codes(_code_file(TRAIN))


@pytest.fixture(scope="module")
def test_df() -> pd.DataFrame:
    return read_irma_codes(_code_file(TEST))


@pytest.fixture(scope="module")
def train_hierarchy(train_df) -> CodeHierarchy:
    return CodeHierarchy.from_codes(train_df["irma_code"])


@pytest.fixture(scope="module")
def train_codes_raw() -> pd.Series:
    """Distinct train codes read with pandas directly, independent of read_irma_codes."""
    df = pd.read_csv(_code_file(TRAIN), sep=";", dtype=str)
    return pd.Series(sorted(df["irma_code"].str.strip().unique()))


# --- parsing -------------------------------------------------------------------


def test_parse_real_code_lists(train_df, test_df):
    assert len(train_df) == 12677 and len(test_df) == 1733
    assert train_df["irma_code"].nunique() == 193
    assert test_df["irma_code"].nunique() == 169
    assert list(train_df.columns) == ["image_id", "irma_code"]
    # First data rows of each file (see the README): ids are strings, CRLF is gone.
    assert train_df.iloc[0].tolist() == ["1877", "1121-117-720-452"]
    assert test_df.iloc[0].tolist() == ["948610", "1121-120-900-700"]
    for code in pd.concat([train_df["irma_code"], test_df["irma_code"]]).unique():
        assert len(parse_irma_code(code)) == 4


def test_parse_irma_code_letters_and_star():
    assert parse_irma_code("1121-12f-466-700") == ("1121", "12f", "466", "700")
    assert parse_irma_code("1121-12*-***-700") == ("1121", "12*", "***", "700")


@pytest.mark.parametrize(
    "bad",
    ["1121-120-466", "1121-120-466-7000", "1121-12F-466-700", "1121_120_466_700", "", "1121-120-4 6-700"],
)
def test_parse_irma_code_rejects(bad):
    with pytest.raises(ValueError, match=f"Received: code='{bad}'"):
        parse_irma_code(bad)


def test_code_axes_both_families():
    expected = (("1", "1", "2", "1"), ("1", "2", "f"), ("4", "6", "6"), ("7", "0", "0"))
    assert code_axes("1121-12f-466-700") == expected
    assert code_axes("CT-abdomen-kidney_stone") == (("CT",), ("abdomen", "kidney_stone"))
    assert (code_modality("1121-12f-466-700"), code_region("1121-12f-466-700")) == ("1121", "466")
    assert (code_modality("XR-knee-kl2"), code_region("XR-knee-kl2")) == ("XR", "knee")
    for bad in ["CT-abdomen", "CT-abdomen-kidney-stone", "CT-abdo men-x", 42]:
        with pytest.raises(ValueError, match="Received: code="):
            code_axes(bad)


def test_read_irma_codes_errors(tmp_path):
    missing = tmp_path / "nope.csv"
    with pytest.raises(FileNotFoundError, match="nope.csv"):
        read_irma_codes(missing)
    bad = tmp_path / "bad.csv"
    bad.write_bytes(b"image_id;irma_code;x\r\n1;1121-120-466-700;a\r\n2;1121-120-46-700;b\r\n")
    with pytest.raises(ValueError, match=r"bad\.csv:3: .*Received: code='1121-120-46-700'"):
        read_irma_codes(bad)


# --- hierarchy and error on real codes --------------------------------------------


def test_branching_matches_hand_counts(train_codes_raw, train_hierarchy):
    d_axis = train_codes_raw.str[5:8]
    # D axis of the train list: first digits {1,2,3,4,5} -> 5; after "1": {1,2} -> 2;
    # after "12": 120,121,125,127,129,12f -> {0,1,5,7,9,f} -> 6.
    assert d_axis.str[0].nunique() == 5
    assert d_axis[d_axis.str.startswith("1")].str[1].nunique() == 2
    assert sorted(d_axis[d_axis.str.startswith("12")].str[2].unique()) == ["0", "1", "5", "7", "9", "f"]
    assert [train_hierarchy.branching(1, p) for p in [(), ("1",), ("1", "2")]] == [5, 2, 6]
    # A axis: first digits 1..9 -> 9; after "4": {0,1,2,3,4,5,6} -> 7; after "46": 462,463,466,467 -> 4.
    a_axis = train_codes_raw.str[9:12]
    assert a_axis.str[0].nunique() == 9
    assert sorted(a_axis[a_axis.str.startswith("46")].str[2].unique()) == ["2", "3", "6", "7"]
    assert [train_hierarchy.branching(2, p) for p in [(), ("4",), ("4", "6")]] == [9, 7, 4]
    # T axis: all start "112"; then {1,2,3,4,7,d} -> 6. An unseen prefix still gives 1.
    t_prefixes = [(), ("1",), ("1", "1"), ("1", "1", "2")]
    assert [train_hierarchy.branching(0, p) for p in t_prefixes] == [1, 1, 1, 6]
    assert train_hierarchy.branching(0, ("9",)) == 1


TRUE = "1121-120-466-700"  # both codes below are real train codes
# D axis max error for "120": 1/5*1 + 1/2*1/2 + 1/6*1/3 = 36/180 + 45/180 + 10/180 = 91/180.
D_MAX = Fraction(91, 180)


def test_error_one_wrong_position(train_hierarchy):
    pred = "1121-12f-466-700"  # differs at D position 3 only
    raw = Fraction(1, 6) * Fraction(1, 3)  # = 1/18
    assert hierarchical_error(TRUE, pred, train_hierarchy, "raw") == pytest.approx(float(raw))
    # axis: (1/18) / (91/180) = 10/91
    assert hierarchical_error(TRUE, pred, train_hierarchy, "axis") == pytest.approx(float(raw / D_MAX))
    assert hierarchical_error(TRUE, pred, train_hierarchy, "image") == pytest.approx(10 / 91 / 4)  # 5/182
    # A "*" in that position gives half: 1/36.
    assert hierarchical_error(TRUE, "1121-12*-466-700", train_hierarchy, "raw") == pytest.approx(1 / 36)


def test_error_wrong_position_propagates(train_hierarchy):
    pred = "1121-120-412-700"  # A axis 466 -> 412: position 2 wrong, so 3 counts as wrong too
    raw = Fraction(1, 7) * Fraction(1, 2) + Fraction(1, 4) * Fraction(1, 3)  # 1/14 + 1/12 = 13/84
    a_max = Fraction(1, 9) + Fraction(1, 14) + Fraction(1, 12)  # 28/252 + 18/252 + 21/252 = 67/252
    assert hierarchical_error(TRUE, pred, train_hierarchy, "raw") == pytest.approx(float(raw))
    assert hierarchical_error(TRUE, pred, train_hierarchy, "axis") == pytest.approx(39 / 67)
    assert float(raw / a_max) == pytest.approx(39 / 67)
    # "*" at A position 2 then a (wrong) digit: the "*" comes first, so positions 2 and 3 are 0.5 each.
    assert hierarchical_error(TRUE, "1121-120-4*2-700", train_hierarchy, "raw") == pytest.approx(13 / 168)


def test_error_extremes(train_hierarchy, test_df):
    for norm in ["raw", "axis", "image"]:
        assert hierarchical_error(TRUE, TRUE, train_hierarchy, norm) == 0.0
    # Fully wrong D axis costs 1 under "axis" (D_MAX / D_MAX).
    assert hierarchical_error(TRUE, "1121-999-466-700", train_hierarchy, "axis") == pytest.approx(1.0)
    wrong = "zzzz-zzz-zzz-zzz"
    # Raw: T 1 + 1/2 + 1/3 + 1/24 = 15/8; D 91/180; A 67/252; B (b = 6, 1, 1) 1/6 + 1/2 + 1/3 = 1.
    raw = Fraction(15, 8) + D_MAX + Fraction(67, 252) + 1
    assert hierarchical_error(TRUE, wrong, train_hierarchy, "raw") == pytest.approx(float(raw))
    assert hierarchical_error(TRUE, wrong, train_hierarchy, "axis") == pytest.approx(4.0)
    assert hierarchical_error(TRUE, wrong, train_hierarchy, "image") == pytest.approx(1.0)
    # Over the 1,733 real test images: perfect -> 0, all wrong -> 1733, all "*" -> 1733 * 0.5 = 866.5.
    truth = test_df["irma_code"].tolist()
    n = len(truth)
    assert total_error(truth, truth, train_hierarchy) == 0.0
    assert total_error(truth, [wrong] * n, train_hierarchy) == pytest.approx(1733.0)
    assert total_error(truth, ["****-***-***-***"] * n, train_hierarchy) == pytest.approx(866.5)


def test_error_argument_checks(train_hierarchy):
    with pytest.raises(ValueError, match="Received: normalize='max'"):
        hierarchical_error(TRUE, TRUE, train_hierarchy, "max")
    with pytest.raises(ValueError, match="axis lengths"):
        hierarchical_error(TRUE, "CT-abdomen-kidney_stone", train_hierarchy)
    with pytest.raises(ValueError, match="Got 1 and 2 instead"):
        total_error([TRUE], [TRUE, TRUE], train_hierarchy)
    with pytest.raises(ValueError, match="axis lengths"):
        CodeHierarchy.from_codes([TRUE, "MR-brain-glioma"])
    with pytest.raises(ValueError, match="no codes"):
        CodeHierarchy.from_codes([])


# --- benchmark codes with a hand-made hierarchy -------------------------------------

BENCH = [
    "CT-abdomen-kidney_stone",
    "CT-abdomen-kidney_cyst",
    "CT-brain-hemorrhage",
    "MR-brain-glioma",
    "MR-brain-meningioma",
    "US-breast-malignant",
    "XR-knee-kl2",
]


@pytest.fixture(scope="module")
def bench_hierarchy() -> CodeHierarchy:
    return CodeHierarchy.from_codes(BENCH)


def test_benchmark_branching(bench_hierarchy):
    # Modalities {CT, MR, US, XR}; regions {abdomen, brain, breast, knee};
    # findings: abdomen 2, brain 3 (hemorrhage, glioma, meningioma), breast 1.
    assert bench_hierarchy.axis_lengths == (1, 2)
    assert bench_hierarchy.branching(0, ()) == 4
    assert bench_hierarchy.branching(1, ()) == 4
    assert [bench_hierarchy.branching(1, (r,)) for r in ["abdomen", "brain", "breast"]] == [2, 3, 1]


def test_benchmark_errors(bench_hierarchy):
    h = bench_hierarchy
    # Wrong finding under abdomen: 1/2 * 1/2 = 1/4; anatomy max 1/4 + 1/4 = 1/2 -> axis 0.5, image 0.25.
    pair = ("CT-abdomen-kidney_stone", "CT-abdomen-kidney_cyst")
    assert [hierarchical_error(*pair, h, n) for n in NORMS] == pytest.approx([0.25, 0.5, 0.25])
    # Wrong modality (1/4) and wrong finding under brain (1/3 * 1/2 = 1/6): raw 5/12;
    # axis: 1 + (1/6) / (1/4 + 1/6) = 1 + 2/5 = 1.4; image 0.7.
    pair = ("MR-brain-glioma", "CT-brain-hemorrhage")
    assert [hierarchical_error(*pair, h, n) for n in NORMS] == pytest.approx([5 / 12, 1.4, 0.7])
    # All wrong: 1/4 + (1/4 + 1/1 * 1/2) = 1; axis 2; image 1.
    pair = ("US-breast-malignant", "XR-knee-kl2")
    assert [hierarchical_error(*pair, h, n) for n in NORMS] == pytest.approx([1.0, 2.0, 1.0])
    preds = ["MR-brain-glioma", "CT-brain-hemorrhage"]
    assert total_error(["MR-brain-glioma"] * 2, preds, h) == pytest.approx(0.7)
