"""Execute the jupytext notebooks with papermill and store them in the book.

For every ``notebooks/NN_name.py`` this converts the percent script to a
notebook (jupytext), executes it with papermill, injecting the profile and the
output folder as parameters, and writes the executed notebook to
``book/chapters/NN_name.ipynb`` and its figures and tables to
``book/generated/NN_name/``. Each notebook is written to a temporary file and
renamed only when it ran to the end, so a failure never leaves a half-executed
chapter behind.

A notebook may list, in its header metadata (``cbmir: requires: [...]``), data
paths under ``CBMIR_DATA_DIR`` that cannot be downloaded automatically (the
Lung-PET-CT-Dx series, LIDC XML). When one is missing, the chapter is not
executed: a short stand-in page says which data it needs and where to put them,
so the rest of the book still builds on a fresh machine.

    python book/run_notebooks.py --profile smoke notebooks/02_hog_retrieval.py
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import jupytext
import nbformat
import papermill

from cbmir_tf.config import DATA_DIR_ENV, data_dir
from cbmir_tf.data.io import atomic_write

ROOT = Path(__file__).resolve().parents[1]
CHAPTERS = ROOT / "book" / "chapters"
GENERATED = ROOT / "book" / "generated"


def missing_data(notebook: nbformat.NotebookNode) -> list[Path]:
    """The paths the notebook's ``cbmir.requires`` metadata names that are absent from the data dir."""
    required = notebook.metadata.get("cbmir", {}).get("requires", [])
    return [data_dir() / path for path in required if not (data_dir() / path).exists()]


def stand_in(notebook: nbformat.NotebookNode, missing: list[Path]) -> nbformat.NotebookNode:
    """A page with the chapter's title and header that says which data it needs."""
    lines = "\n".join(f"* `{path}`" for path in missing)
    note = nbformat.v4.new_markdown_cell(
        "```{warning}\nThis chapter was not executed in this build: the real data it needs are not in "
        f"`{DATA_DIR_ENV}` and cannot be downloaded automatically.\n```\n\nMissing:\n\n{lines}\n\n"
        f"Put them under `{DATA_DIR_ENV}` (see the data sets' READMEs and the project README, 'Data') and "
        "rerun `make book`.")
    page = nbformat.v4.new_notebook(metadata=notebook.metadata)
    page.cells = [notebook.cells[0], note]
    return page


def run_notebook(script: Path, profile: str, seed: int = 0) -> Path:
    """Execute one jupytext script and return the path of the executed notebook."""
    notebook = jupytext.read(script)
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    out_dir = GENERATED / script.stem
    out_dir.mkdir(parents=True, exist_ok=True)
    CHAPTERS.mkdir(parents=True, exist_ok=True)
    target = CHAPTERS / f"{script.stem}.ipynb"
    missing = missing_data(notebook)
    if missing:
        print(f"  skipped: missing {', '.join(map(str, missing))}", flush=True)
        with atomic_write(target, "w", encoding="utf-8") as handle:
            nbformat.write(stand_in(notebook, missing), handle)
        return target
    parameters = {"profile": profile, "seed": seed, "out_dir": str(out_dir)}
    with tempfile.TemporaryDirectory(dir=CHAPTERS) as tmp:
        source, executed = Path(tmp) / "input.ipynb", Path(tmp) / "output.ipynb"
        nbformat.write(notebook, source)
        papermill.execute_notebook(
            str(source), str(executed), parameters=parameters, kernel_name="python3",
            cwd=str(ROOT), progress_bar=False, log_output=False,
        )
        os.replace(executed, target)
    return target


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="*", type=Path, help="jupytext scripts (default: all)")
    parser.add_argument("--profile", default="cpu", choices=["smoke", "cpu", "paper"])
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    scripts = args.notebooks or sorted((ROOT / "notebooks").glob("[0-9]*.py"))
    for script in scripts:
        start = time.perf_counter()
        print(f"[{args.profile}] executing {script} ...", flush=True)
        target = run_notebook(Path(script).resolve(), args.profile, args.seed)
        print(f"  -> {target.relative_to(ROOT)} in {time.perf_counter() - start:.0f} s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
