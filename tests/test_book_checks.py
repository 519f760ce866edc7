"""The publication's own checks: the coverage of the papers' figures and tables, the comparison of
regenerated tables with the record (check_results) and the page-text rules of check_book."""

import importlib.util
import re
from pathlib import Path

import pandas as pd
import pytest

REPO = Path(__file__).resolve().parents[1]
COVERAGE = REPO / "book" / "coverage"
# Every numbered figure and table of each paper, as the paper numbers them (56 in all). Paper 004's
# text cites a "Table 2" for its 5 x 5 networks, but that table is printed as its Table 3.
ITEMS = {
    "paper000": [f"Fig. {i}" for i in range(1, 8)] + [f"Table {i}" for i in range(1, 7)],
    "paper001": [f"Fig. {i}" for i in range(1, 11)] + [f"Table {i}" for i in range(1, 4)],
    "paper002": [f"Fig. {i}" for i in range(1, 12)] + [f"Table {r}" for r in ("I", "II", "III", "IV", "V")],
    "paper003": [f"Fig. {i}" for i in range(1, 6)] + ["Table 1", "Table 2"],
    "paper004": ["Fig. 1", "Table 1"] + [f"Table {i}" for i in range(3, 8)],
}
PAPERS = sorted(ITEMS)
PAPER_CHAPTERS = ["paper000_resnet50v2_fpn", "paper001_inresnet_hashing", "hog_retrieval", "paper002_bovw_cnn",
                  "paper003_cnnc_rbc", "paper004_vgg_configs"]


def _load(name: str):
    spec = importlib.util.spec_from_file_location(name, REPO / "book" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("paper", PAPERS)
def test_every_item_of_the_paper_has_a_twin_in_its_chapter(paper):
    table = pd.read_csv(COVERAGE / f"{paper}.csv", dtype=str, keep_default_na=False)
    assert list(table.columns) == ["item", "paper_shows", "chapter", "twin", "status", "how_it_differs"]
    assert list(table["item"]) == ITEMS[paper]
    assert set(table["status"]) <= {"faithful", "differs"}, "no item may be missing"
    for row in table.itertuples():
        assert (row.status == "differs") == bool(row.how_it_differs.strip()), row.item
        source = (REPO / "notebooks" / f"{row.chapter}.py").read_text(encoding="utf-8")
        assert re.search(rf"^# ```\{{glue:figure\}} {re.escape(row.twin)}$", source, re.M), (row.item, row.twin)
        assert f'"{row.twin}"' in source, (row.item, row.twin)  # glued by show_figure / show_table


@pytest.mark.parametrize("chapter", PAPER_CHAPTERS)
def test_each_paper_chapter_tests_its_papers_claims_and_places_them(chapter):
    source = (REPO / "notebooks" / f"{chapter}.py").read_text(encoding="utf-8")
    assert "show_claims(" in source  # writes claims.csv, which the reproducibility chapter gathers
    assert re.search(r"^# ```\{glue:figure\} claims$", source, re.M)


def test_check_results_names_each_moved_cell_and_ignores_timing_columns():
    check = _load("check_results")
    old = "method,mAP@10,train s,ms median\nHOG,0.564,0,1.6\nVGG C,0.624,161,15.4\n"
    same_but_slower = "method,mAP@10,train s,ms median\nHOG,0.564,0,2.9\nVGG C,0.624,170,18.0\n"
    moved = "method,mAP@10,train s,ms median\nHOG,0.564,0,1.6\nVGG C,0.610,161,15.4\n"
    assert check.compare({"t.csv": old}, {"t.csv": same_but_slower}) == []
    assert check.compare({"t.csv": old}, {"t.csv": moved}) == ["t.csv: row 'VGG C', column 'mAP@10': 0.624 -> 0.61"]
    assert check.compare({"t.csv": old}, {"u.csv": old}) == ["t.csv: table removed", "u.csv: table added"]
    assert check.compare({"x_time.csv": old}, {"x_time.csv": moved}) == []  # a table of timings


def test_check_book_flags_logs_tracebacks_and_machine_paths():
    check = _load("check_book")
    assert check.text_problems("mAP@10 0.62 for configuration C") == []
    assert check.text_problems("WARNING: All log messages before absl")[0].startswith("log prefix")
    assert check.text_problems("I0000 00:00:1733 cpu_feature_guard")[0].startswith("log prefix")
    assert check.text_problems("Traceback (most recent call last):")[0].startswith("traceback")
    assert check.text_problems(f"saved to {REPO}/book/generated")[0].startswith("absolute path")
    assert check.text_problems("read /home/someone/data.npz")[0].startswith("absolute path")
