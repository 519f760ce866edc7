"""Smoke execution of the HOG chapter with papermill, as `make book PROFILE=smoke` runs it, and the
book runner's stand-in page for a chapter whose data cannot be had."""

import json
from pathlib import Path

import jupytext
import nbformat
import pandas as pd
import papermill
import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.notebook
def test_hog_notebook_runs_under_the_smoke_profile(tmp_path):
    from cbmir_tf.data.benchmark import available_members

    notebook = jupytext.read(REPO / "notebooks" / "hog_retrieval.py")
    source = tmp_path / "hog.ipynb"
    nbformat.write(notebook, source)
    out_dir = tmp_path / "out"
    papermill.execute_notebook(  # data_dir stays None: $CBMIR_DATA_DIR, else the registry's cache
        str(source), str(tmp_path / "executed.ipynb"), kernel_name="python3", cwd=str(REPO),
        parameters={"profile": "smoke", "out_dir": str(out_dir)}, progress_bar=False,
    )
    provenance = json.loads((out_dir / "provenance.json").read_text())
    assert provenance["parameters"]["profile"] == "smoke"
    data = provenance["data"]
    if available_members():  # the eight 128 px sets: 11,754 images, many modality-region pairs
        assert data["source"] == "local" and data["n_images"] > 10_000
        floor = 0.5
    else:  # the MedMNIST fallback of the smoke profile: two modality-regions, balanced by the profile
        assert data["source"] == "fallback" and data["members"] == ["pneumoniamnist", "breastmnist"]
        assert data["n_images"] == 5856 + 780
        floor = 0.75  # halfway from chance (0.5) to perfect
    table = pd.read_csv(out_dir / "table3_hog_map.csv", index_col=0)
    assert set(table.index) == {"region", "modality", "both"}
    ours = table[[c for c in table.columns if c.startswith("ours")]]
    assert ours.shape == (3, 1) and (ours.iloc[:, 0] > floor).all() and (ours.iloc[:, 0] <= 1).all()
    for name in ("fig4_hog_grid", "fig5_hog_bins", "fig9_hog_test", "appendix_examples"):
        assert (out_dir / f"{name}.png").stat().st_size > 10_000


def test_every_notebook_has_a_parameters_cell_with_the_profile():
    for script in sorted((REPO / "notebooks").glob("*.py")):
        cells = jupytext.read(script).cells
        tagged = [c for c in cells if "parameters" in c.metadata.get("tags", [])]
        assert len(tagged) == 1, script
        for name in ("profile", "dry_run", "data_dir", "seed", "out_dir"):
            assert f"{name} =" in tagged[0].source, (script, name)


def test_every_notebook_requires_only_registered_data():
    from cbmir_tf.data import registry

    for script in sorted((REPO / "notebooks").glob("*.py")):
        for name in jupytext.read(script).metadata.get("cbmir", {}).get("requires", []):
            name = str(name).rstrip("/")
            assert name in registry.registry() or registry.entries(name), (script, name)


CHAPTER = '''# ---
# jupyter:
#   cbmir:
#     requires:
#     - lidc-xml-sample
#     - lung-ct-iq-oth-nccd/iq_oth_nccd_lung_ct_128.npz
# ---

# %% [markdown]
# # Lung nodules

# %% tags=["parameters"]
profile = "cpu"
'''


def test_a_chapter_whose_data_is_missing_becomes_a_stand_in_page(tmp_path, monkeypatch):
    import importlib.util

    spec = importlib.util.spec_from_file_location("run_notebooks", REPO / "book" / "run_notebooks.py")
    runner = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(runner)
    notebook = jupytext.reads(CHAPTER, fmt="py:percent")
    npz = "lung-ct-iq-oth-nccd/iq_oth_nccd_lung_ct_128.npz"  # registered without a URL: never downloaded
    monkeypatch.setenv("CBMIR_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("CBMIR_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("CBMIR_ALLOW_DOWNLOAD", "0")
    assert runner.missing_data(notebook) == ["lidc-xml-sample", npz]  # nothing here, no downloads
    page = runner.stand_in(notebook, ["lidc-xml-sample", npz])
    assert page.cells[0].source.startswith("# Lung nodules")
    assert "`lidc-xml-sample`" in page.cells[1].source and f"`{npz}`" in page.cells[1].source
    monkeypatch.setenv("CBMIR_ALLOW_DOWNLOAD", "1")
    assert runner.missing_data(notebook) == [npz]  # the XML files can be downloaded
    (tmp_path / "data" / npz).parent.mkdir(parents=True)
    (tmp_path / "data" / npz).write_bytes(b"placed by hand")  # present in the data folder (checked on use)
    assert runner.missing_data(notebook) == []
    notebook.metadata["cbmir"]["requires"].append("no-such-folder")
    with pytest.raises(KeyError, match="no-such-folder"):
        runner.missing_data(notebook)
