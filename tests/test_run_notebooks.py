"""The book runner: a failing chapter becomes an error page and the build goes on."""

import importlib.util
import re
import subprocess
from pathlib import Path

import nbformat

REPO = Path(__file__).resolve().parents[1]

PARAMETERS = '''
# %% tags=["parameters"]
profile = "cpu"
seed = 0
out_dir = "outputs"
source_repository = "https://example.org/repo"
source_commit = "main"
'''

FAILING = '''# %% [markdown]
# # A chapter that fails
''' + PARAMETERS + '''
# %%
import os

open(os.path.join(os.getcwd(), "no_such_file.npz"))  # the build machine's path is in the message
'''

GOOD = '''# %% [markdown]
# # A chapter that runs
''' + PARAMETERS + '''
# %%
print(profile, source_commit)
'''


def _runner(tmp_path, monkeypatch):
    spec = importlib.util.spec_from_file_location("run_notebooks", REPO / "book" / "run_notebooks.py")
    runner = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(runner)
    monkeypatch.setattr(runner, "CHAPTERS", tmp_path / "chapters")
    monkeypatch.setattr(runner, "GENERATED", tmp_path / "generated")
    monkeypatch.setattr(runner, "SMOKE", tmp_path / "smoke")
    return runner


def test_a_failing_chapter_becomes_an_error_page_and_the_build_goes_on(tmp_path, monkeypatch, capsys):
    runner = _runner(tmp_path, monkeypatch)
    failing, good = tmp_path / "01_fails.py", tmp_path / "02_runs.py"
    failing.write_text(FAILING, encoding="utf-8")
    good.write_text(GOOD, encoding="utf-8")

    result = runner.build_chapter(failing, "smoke")
    assert result.status == "FAILED" and result.error == "FileNotFoundError"
    page = nbformat.read(tmp_path / "smoke" / "chapters" / "01_fails.ipynb", as_version=4)
    assert [cell.cell_type for cell in page.cells] == ["markdown", "markdown"]
    assert page.cells[0].source == "# A chapter that fails"
    text = page.cells[1].source
    assert text.startswith("```{error}") and "failed in this build" in text
    assert "FileNotFoundError" in text and "./no_such_file.npz" in text
    assert "In [3]" in text and "`import os`" in text  # the failing cell and its first line
    assert "--profile smoke notebooks/01_fails.py" in text
    assert "Traceback" not in text and "----" not in text and "\x1b[" not in text
    assert str(REPO) not in text and str(Path.home()) not in text

    assert runner.main(["--profile", "smoke", str(failing), str(good)]) == 1
    out = capsys.readouterr().out
    assert re.search(r"^01_fails +FAILED +\d+$", out, re.M) and re.search(r"^02_runs +executed +\d+$", out, re.M)
    assert "1 chapter(s) FAILED: 01_fails" in out
    assert not (tmp_path / "chapters").exists()  # a smoke run never touches the record
    executed = nbformat.read(tmp_path / "smoke" / "chapters" / "02_runs.ipynb", as_version=4)
    injected = [c for c in executed.cells if "injected-parameters" in c.metadata.get("tags", [])]
    assert "remove-cell" in injected[0].metadata.tags  # shown in the notebook, not on the page
    assert all("execution" not in c.metadata for c in executed.cells)  # no timestamps to diff
    assert [c.id for c in executed.cells] == [f"cell-{i}" for i in range(len(executed.cells))]
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO, capture_output=True, text=True).stdout.strip()
    assert f'source_commit = "{head or "main"}"' in injected[0].source
    assert 'source_repository = "https://github.com/' in injected[0].source
    assert f"smoke {head or 'main'}" in executed.cells[-1].outputs[0].text


def test_a_dry_run_injects_dry_run_and_writes_only_under_its_own_folder(tmp_path, monkeypatch, capsys):
    runner = _runner(tmp_path, monkeypatch)
    monkeypatch.setattr(runner, "DRY_RUN", tmp_path / "dry-run")
    chapter = tmp_path / "02_runs.py"
    chapter.write_text(GOOD.replace('profile = "cpu"\n', 'profile = "cpu"\ndry_run = False\n')
                       + "print('dry run' if dry_run else 'full run', out_dir)\n", encoding="utf-8")

    assert runner.main(["--profile", "paper", "--dry-run", str(chapter)]) == 0
    assert "[paper, dry run] executing" in capsys.readouterr().out
    assert not (tmp_path / "chapters").exists() and not (tmp_path / "generated").exists()
    executed = nbformat.read(tmp_path / "dry-run" / "chapters" / "02_runs.ipynb", as_version=4)
    injected = [c for c in executed.cells if "injected-parameters" in c.metadata.get("tags", [])]
    assert 'profile = "paper"' in injected[0].source and "dry_run = True" in injected[0].source
    out_dir = tmp_path / "dry-run" / "generated" / "02_runs"
    assert executed.cells[-1].outputs[-1].text.endswith(f"\ndry run {out_dir}\n")


def test_the_toc_alone_orders_the_chapters(tmp_path, monkeypatch):
    scripts = _runner(tmp_path, monkeypatch).toc_notebooks()
    assert sorted(scripts) == sorted((REPO / "notebooks").glob("*.py"))  # every chapter, once
    names = [script.stem for script in scripts]
    assert names[:2] == ["open_benchmark", "hog_retrieval"]
    assert names.index("paper000_resnet50v2_fpn") < names.index("side_by_side")


def test_a_run_of_record_writes_the_book_and_a_smoke_book_is_staged_apart(tmp_path, monkeypatch):
    runner = _runner(tmp_path, monkeypatch)
    chapter = tmp_path / "02_runs.py"
    chapter.write_text(GOOD + "print(out_dir)\n", encoding="utf-8")

    assert runner.main(["--profile", "cpu", str(chapter)]) == 0
    record = nbformat.read(tmp_path / "chapters" / "02_runs.ipynb", as_version=4)
    assert record.cells[-1].outputs[-1].text.endswith(f"{tmp_path / 'generated' / '02_runs'}\n")
    assert runner.book_root("cpu") == REPO

    assert runner.main(["--profile", "smoke", str(chapter)]) == 0
    stage = runner.book_root("smoke")
    assert stage == tmp_path / "smoke" / "book"
    assert (stage / "_config.yml").is_file() and (stage / "_toc.yml").is_file()
    assert (stage / "book" / "intro.md").is_file()
    assert [p.name for p in (stage / "book" / "chapters").iterdir()] == ["02_runs.ipynb"]
    smoke = nbformat.read(stage / "book" / "chapters" / "02_runs.ipynb", as_version=4)
    assert 'profile = "smoke"' in smoke.cells[2].source or any(
        'profile = "smoke"' in c.source for c in smoke.cells)


def test_an_out_dir_inside_the_repository_is_injected_relative(tmp_path, monkeypatch):
    runner = _runner(tmp_path, monkeypatch)
    assert runner._relative(REPO / "book" / "generated" / "x") == "book/generated/x"
    assert runner._relative(tmp_path / "x") == str(tmp_path / "x")
