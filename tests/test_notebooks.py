"""Smoke execution of the HOG chapter with papermill, as `make book PROFILE=smoke` runs it."""

import json
import os
from pathlib import Path

import jupytext
import nbformat
import pandas as pd
import papermill
import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.notebook
def test_hog_notebook_runs_under_the_smoke_profile(tmp_path, data_dir):
    notebook = jupytext.read(REPO / "notebooks" / "02_hog_retrieval.py")
    source = tmp_path / "hog.ipynb"
    nbformat.write(notebook, source)
    out_dir = tmp_path / "out"
    papermill.execute_notebook(
        str(source), str(tmp_path / "executed.ipynb"), kernel_name="python3", cwd=str(REPO),
        parameters={"profile": "smoke", "out_dir": str(out_dir), "data_dir": str(data_dir)}, progress_bar=False,
    )
    table = pd.read_csv(out_dir / "table3_hog_map.csv", index_col=0)
    assert set(table.index) == {"region", "modality", "both"}
    assert (table["ours (open benchmark)"] > 0.5).all()
    for name in ("fig4_hog_grid", "fig5_hog_bins", "fig9_hog_test", "appendix_examples"):
        assert (out_dir / f"{name}.png").stat().st_size > 10_000
    provenance = json.loads((out_dir / "provenance.json").read_text())
    assert provenance["parameters"]["profile"] == "smoke" and provenance["data"]["n_images"] > 10_000


def test_every_notebook_has_a_parameters_cell_with_the_profile():
    for script in sorted((REPO / "notebooks").glob("[0-9]*.py")):
        cells = jupytext.read(script).cells
        tagged = [c for c in cells if "parameters" in c.metadata.get("tags", [])]
        assert len(tagged) == 1, script
        for name in ("profile", "data_dir", "seed", "out_dir"):
            assert f"{name} =" in tagged[0].source, (script, name)


def test_a_chapter_whose_data_is_missing_becomes_a_stand_in_page(tmp_path, monkeypatch, data_dir):
    import importlib.util

    spec = importlib.util.spec_from_file_location("run_notebooks", REPO / "book" / "run_notebooks.py")
    runner = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(runner)
    monkeypatch.setenv("CBMIR_DATA_DIR", str(tmp_path))
    notebook = jupytext.read(REPO / "notebooks" / "07_paper001_inresnet_hashing.py")
    missing = runner.missing_data(notebook)
    assert tmp_path / "lidc-xml-sample" in missing and len(missing) == 3
    page = runner.stand_in(notebook, missing)
    assert page.cells[0].source.startswith("# Lung masks") and "lidc-xml-sample" in page.cells[1].source
    monkeypatch.setenv("CBMIR_DATA_DIR", str(data_dir))
    assert runner.missing_data(notebook) == []
