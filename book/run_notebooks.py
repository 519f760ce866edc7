"""Execute the jupytext notebooks with papermill and store them in the book.

For every ``notebooks/<topic>.py`` (in the order of ``_toc.yml``) this converts the percent script to a
notebook (jupytext), executes it with papermill, injecting the profile and the
output folder as parameters, and writes the executed notebook to
``book/chapters/<topic>.ipynb`` and its figures and tables to
``book/generated/<topic>/``. Each notebook is written to a temporary file and
renamed only when it ran to the end, so a failure never leaves a half-executed
chapter behind.

Those two folders are the book's *results of record*, committed to the repository: a ``cpu`` run
(the default) or a ``paper`` run rewrites them in place, so ``git diff`` shows what a rerun changed
(``book/check_results.py`` names every table cell that moved). A full run of record also writes
``book/generated/record.json``: profile, commit, machine, package versions and data checksums. A
``smoke`` run writes under ``_build/smoke/`` instead and its HTML is built from a staged copy of the
book (:func:`book_root`), so a quick check never overwrites the record. The executed notebooks hold
no absolute path (the output folder is injected relative to the repository), papermill's injected
parameters cell is hidden from the page, and execution timestamps are dropped.

A notebook may list, in its header metadata (``cbmir: requires: [...]``), the
data-registry names (files or folders) it needs (``cbmir-data list``). When one
is neither here nor downloadable (e.g. the IQ-OTH/NCCD lung CT npz), the chapter
is not executed: a short stand-in page says which data it needs and where to put
them, so the rest of the book still builds on a fresh machine.

A chapter that raises does not stop the build either: its page becomes an error
page (the title, which cell failed and the exception, without the traceback),
the remaining chapters still run, and at the end a table lists every chapter's
status; the exit status is 1 when any chapter failed.

Every chapter also receives ``source_repository`` (``repository.url`` of
``_config.yml``) and ``source_commit`` (the ``git rev-parse HEAD`` of this
checkout) as parameters, so the install cell of a published notebook opened in
Colab installs the exact commit the book was built from.

``--dry-run`` injects ``dry_run=True``: each chapter caps its profile for a dry run
(:func:`cbmir_tf.profiles.dry_run_settings`: the same networks, a training step or two on a few
images per code). A dry run's notebooks and outputs go to ``_build/dry-run/`` (``chapters/``,
``generated/``), never to the book's folders, so it cannot overwrite published results, and
no HTML is built from them (``make dry-run``).

At the end the runner prints each chapter's status and time. A full run of every chapter (no
dry run) also writes that table to ``book/chapter_times_<profile>.md``, with the machine, the
commit and the size of the model cache; the rerun page includes it, so the book always shows how
long its last full run took.

    python book/run_notebooks.py --profile smoke notebooks/hog_retrieval.py
    python book/run_notebooks.py --profile paper --dry-run notebooks/paper001_inresnet_hashing.py
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import NamedTuple

import jupytext
import nbformat
import papermill
import yaml

from cbmir_tf.config import DATA_DIR_ENV
from cbmir_tf.data.io import atomic_write

ROOT = Path(__file__).resolve().parents[1]
CHAPTERS = ROOT / "book" / "chapters"
GENERATED = ROOT / "book" / "generated"
DRY_RUN = ROOT / "_build" / "dry-run"
SMOKE = ROOT / "_build" / "smoke"
CONFIG = ROOT / "_config.yml"
RECORD_PROFILES = ("cpu", "paper")  # the profiles whose results are the book's committed record
# Set for every chapter's kernel, however the runner is started: TensorFlow's C++ log lines and
# interactive plot windows have no place in a published page.
KERNEL_ENV = {"TF_CPP_MIN_LOG_LEVEL": "3", "MPLBACKEND": "Agg"}


def output_dirs(profile: str = "cpu", dry_run: bool = False) -> tuple[Path, Path]:
    """``(chapters, generated)`` for a run.

    The results of record (``cpu`` or ``paper``) go to the book's committed folders; a ``smoke``
    run goes under ``_build/smoke/`` and a dry run under ``_build/dry-run/``, so neither can
    overwrite the record.
    """
    if dry_run:
        return DRY_RUN / "chapters", DRY_RUN / "generated"
    if profile not in RECORD_PROFILES:
        return SMOKE / "chapters", SMOKE / "generated"
    return CHAPTERS, GENERATED


def book_root(profile: str) -> Path:
    """The folder to build the HTML from (``jupyter-book build``) for a profile's run.

    A run of record builds from the repository itself. A smoke run's chapters live under
    ``_build/smoke/``, so its book is staged there: a copy of the book's pages and configuration
    with the smoke chapters and outputs in place of the record's.
    """
    if profile in RECORD_PROFILES:
        return ROOT
    chapters, generated = output_dirs(profile)
    stage = SMOKE / "book"
    shutil.rmtree(stage, ignore_errors=True)
    shutil.copytree(ROOT / "book", stage / "book", ignore=shutil.ignore_patterns("chapters", "generated", "_build"))
    for name in ("_config.yml", "_toc.yml"):
        shutil.copy2(ROOT / name, stage / name)
    shutil.copytree(chapters, stage / "book" / "chapters")
    shutil.copytree(generated, stage / "book" / "generated", ignore=shutil.ignore_patterns("models"))
    return stage


def source_repository() -> str:
    """The repository URL the install cells use: ``repository.url`` of the book's ``_config.yml``."""
    config = yaml.safe_load(CONFIG.read_text(encoding="utf-8")) or {}
    return config["repository"]["url"]


def source_commit() -> str:
    """The commit this checkout is at (``git rev-parse HEAD``), or ``"main"`` outside a git checkout."""
    try:
        result = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True,
                                check=True)
    except (OSError, subprocess.CalledProcessError):
        return "main"
    return result.stdout.strip() or "main"


def missing_data(notebook: nbformat.NotebookNode) -> list[str]:
    """The registry names in the notebook's ``cbmir.requires`` metadata that are not available.

    A name is a registered file or a folder of them (:func:`cbmir_tf.data.registry.available`:
    here, or downloadable). A name that is neither raises the registry's `KeyError`.
    """
    from cbmir_tf.data import registry

    required = [str(name).rstrip("/") for name in notebook.metadata.get("cbmir", {}).get("requires", [])]
    return [name for name in required if not registry.available(name)]


def stand_in(notebook: nbformat.NotebookNode, missing: list[str]) -> nbformat.NotebookNode:
    """A page with the chapter's title and header that says which data it needs."""
    lines = "\n".join(f"* `{name}`" for name in missing)
    note = nbformat.v4.new_markdown_cell(
        "```{warning}\nThis chapter was not executed in this build: data it needs are not here and cannot "
        "be downloaded automatically.\n```\n\nMissing (names in the data registry):\n\n"
        f"{lines}\n\n`cbmir-data list` shows every registered file, its status and where it comes from. "
        f"Put the missing ones under `{DATA_DIR_ENV}` (see the project README, 'Data') and rerun `make book`.")
    page = nbformat.v4.new_notebook(metadata=notebook.metadata)
    page.cells = [notebook.cells[0], note]
    return page


def _public(text: str) -> str:
    """`text` without the build machine's absolute paths: the repo root becomes ``.``, the home ``~``."""
    text = text.replace(str(ROOT), ".")
    home = str(Path.home())
    return text.replace(home, "~") if len(home) > 1 else text


def _relative(path: Path) -> str:
    """``path`` relative to the repository (the kernels' working folder) when inside it, so the
    executed notebooks hold no absolute path of the build machine."""
    try:
        return path.relative_to(ROOT).as_posix()
    except ValueError:
        return str(path)


def _one_line(text: str, limit: int = 300) -> str:
    """The first non-empty line of `text`, without ANSI colours, trimmed to `limit` characters."""
    text = re.sub(r"\x1b\[[0-9;]*[A-Za-z]", "", str(text))
    line = next((line.strip() for line in text.splitlines() if line.strip()), "")
    return line if len(line) <= limit else line[: limit - 1] + "\u2026"


def _code(text: str) -> str:
    """`text` as MyST inline code, whatever backticks it holds."""
    fence = "`" * (max((len(run) for run in re.findall(r"`+", text)), default=0) + 1)
    pad = " " if "`" in text else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def _script_name(script: Path) -> str:
    """How the advice names the script: relative to the repository when it is inside it."""
    try:
        return str(Path(script).resolve().relative_to(ROOT))
    except ValueError:
        return f"notebooks/{Path(script).name}"


def error_page(notebook: nbformat.NotebookNode | None, script: Path, profile: str,
               error: BaseException, dry_run: bool = False) -> nbformat.NotebookNode:
    """A page with the chapter's title and an ``{error}`` admonition: which cell failed and why.

    No traceback and no absolute path of the build machine: the advice says how
    to rerun the chapter alone to see the full traceback.
    """
    if isinstance(error, papermill.PapermillExecutionError):
        first_line = _one_line(error.source, limit=120)
        where = (f"cell `In [{error.exec_count}]` (cell {error.cell_index} of the executed notebook"
                 + (f": {_code(_public(first_line))}" if first_line else "") + ")")
        ename, evalue = error.ename, error.evalue
    else:
        where = "the chapter could not be executed"
        ename, evalue = type(error).__name__, str(error)
    message = _one_line(_public(f"{ename}: {evalue}" if _one_line(evalue) else ename))
    note = nbformat.v4.new_markdown_cell(
        "```{error}\nThis chapter failed in this build.\n\n"
        f"Failed: {where}.\n\nError: {_code(message)}\n\n"
        f"Rerun `python book/run_notebooks.py --profile {profile}{' --dry-run' if dry_run else ''} "
        f"{_script_name(script)}` to see the full "
        f"traceback; if the error is about data, check `{DATA_DIR_ENV}` (`cbmir-data list`).\n```")
    if notebook is not None and notebook.cells and notebook.cells[0].cell_type == "markdown":
        title = notebook.cells[0]
    else:
        title = nbformat.v4.new_markdown_cell(f"# {Path(script).stem}")
    page = nbformat.v4.new_notebook(metadata=notebook.metadata if notebook is not None else {})
    page.cells = [title, note]
    return page


class ChapterResult(NamedTuple):
    """How one chapter went: ``status`` is ``executed``, ``stand-in`` or ``FAILED``."""

    script: Path
    target: Path
    status: str
    seconds: float
    error: str = ""


def build_chapter(script: Path, profile: str, seed: int = 0, dry_run: bool = False) -> ChapterResult:
    """Execute one chapter and write its page; never raises for a failing chapter.

    A chapter that raises (in a cell or before) gets an error page
    (:func:`error_page`) in place of the executed notebook.
    """
    script = Path(script).resolve()
    chapters, _ = output_dirs(profile, dry_run)
    target = chapters / f"{script.stem}.ipynb"
    start = time.perf_counter()
    try:
        status = "stand-in" if run_notebook(script, profile, seed, dry_run) is None else "executed"
        return ChapterResult(script, target, status, time.perf_counter() - start)
    except Exception as error:  # noqa: BLE001 - any failure becomes the chapter's error page
        try:
            notebook = jupytext.read(script)
        except Exception:  # noqa: BLE001 - the title falls back to the file name
            notebook = None
        chapters.mkdir(parents=True, exist_ok=True)
        with atomic_write(target, "w", encoding="utf-8") as handle:
            nbformat.write(error_page(notebook, script, profile, error, dry_run), handle)
        name = error.ename if isinstance(error, papermill.PapermillExecutionError) else type(error).__name__
        return ChapterResult(script, target, "FAILED", time.perf_counter() - start, name)


def run_notebook(script: Path, profile: str, seed: int = 0, dry_run: bool = False) -> Path | None:
    """Execute one jupytext script and return the path of the executed notebook.

    Returns ``None`` when the chapter's data are missing and a stand-in page was
    written instead. Raises whatever the execution raises. A dry run (``dry_run``)
    injects ``dry_run=True`` and writes under ``DRY_RUN`` (:func:`output_dirs`).
    """
    notebook = jupytext.read(script)
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    chapters, generated = output_dirs(profile, dry_run)
    out_dir = generated / script.stem
    out_dir.mkdir(parents=True, exist_ok=True)
    chapters.mkdir(parents=True, exist_ok=True)
    target = chapters / f"{script.stem}.ipynb"
    missing = missing_data(notebook)
    if missing:
        print(f"  skipped: missing {', '.join(map(str, missing))}", flush=True)
        with atomic_write(target, "w", encoding="utf-8") as handle:
            nbformat.write(stand_in(notebook, missing), handle)
        return None
    parameters = {"profile": profile, "seed": seed, "out_dir": _relative(out_dir),
                  **({"dry_run": True} if dry_run else {}),
                  "source_repository": source_repository(), "source_commit": source_commit()}
    with tempfile.TemporaryDirectory(dir=chapters) as tmp:
        source, executed = Path(tmp) / "input.ipynb", Path(tmp) / "output.ipynb"
        nbformat.write(notebook, source)
        with kernel_environment():
            papermill.execute_notebook(
                str(source), str(executed), parameters=parameters, kernel_name="python3",
                cwd=str(ROOT), progress_bar=False, log_output=False,
            )
        nbformat.write(for_publication(nbformat.read(executed, as_version=4)), executed)
        os.replace(executed, target)
    return target


@contextlib.contextmanager
def kernel_environment():
    """``KERNEL_ENV`` set (where not set already) while a chapter's kernel starts."""
    saved = dict(os.environ)
    os.environ.update({k: v for k, v in KERNEL_ENV.items() if k not in os.environ})
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


def for_publication(notebook: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """The executed notebook as the book shows it: papermill's injected-parameters cell is hidden
    (the parameters cell above it shows the defaults; the provenance records what was injected),
    papermill's execution timestamps are dropped and the cells are numbered, so a rerun that changes
    nothing changes no byte."""
    for index, cell in enumerate(notebook.cells):
        cell.id = f"cell-{index}"  # jupytext draws random ids: numbered ones keep a rerun's diff to results
        tags = cell.metadata.get("tags", [])
        if "injected-parameters" in tags and "remove-cell" not in tags:
            cell.metadata["tags"] = [*tags, "remove-cell"]
        cell.metadata.pop("execution", None)
        cell.metadata.get("papermill", {}).pop("start_time", None)
        cell.metadata.get("papermill", {}).pop("end_time", None)
        cell.metadata.get("papermill", {}).pop("duration", None)
    papermill_meta = notebook.metadata.get("papermill", {})
    for key in ("start_time", "end_time", "duration", "input_path", "output_path"):
        papermill_meta.pop(key, None)
    return notebook


def times_table(results: list[ChapterResult], profile: str) -> str:
    """The per-chapter times of a full run as a Markdown table, with the machine and the model cache."""
    import platform

    from cbmir_tf.methods.cache import cached_entries

    cache = cached_entries()
    lines = [f"Profile `{profile}`, commit `{source_commit()[:10]}`, {time.strftime('%Y-%m-%d')}, "
             f"{platform.processor() or platform.machine()} with {os.cpu_count()} CPU cores; model cache at the "
             f"end: {len(cache)} trained networks, {sum(r['bytes'] for r in cache) / 2**20:.0f} MiB.", "",
             "| chapter | status | minutes |", "|---|---|---:|"]
    lines += [f"| {r.script.stem} | {r.status} | {r.seconds / 60:.1f} |" for r in results]
    lines.append(f"| **total** | | **{sum(r.seconds for r in results) / 60:.1f}** |")
    return "\n".join(lines) + "\n"


RECORD_PACKAGES = ("numpy", "tensorflow", "keras", "scikit-learn", "scikit-image", "opencv-python-headless",
                   "faiss-cpu", "pydicom", "pandas", "matplotlib", "papermill", "jupytext", "jupyter-book")


def run_record(results: list[ChapterResult], profile: str) -> dict:
    """What produced a full run of the book: profile, commit, date, machine, package versions,
    the checksums of the registered data files found here, and each chapter's status and time."""
    import importlib.metadata
    import platform

    from cbmir_tf.data import registry

    versions = {"python": platform.python_version()}
    for package in RECORD_PACKAGES:
        try:
            versions[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            pass
    data = {item.name: item.hash for item in registry.registry().values()
            if registry.status(item.name) in ("present", "cached", "packaged")}
    return {"profile": profile, "commit": source_commit(), "date": time.strftime("%Y-%m-%d"),
            "machine": {"system": platform.system(), "processor": platform.processor() or platform.machine(),
                        "cpus": os.cpu_count()},
            "versions": versions, "data_checksums": data,
            "chapters": {r.script.stem: {"status": r.status, "seconds": round(r.seconds)} for r in results}}


def toc_notebooks() -> list[Path]:
    """Every chapter's jupytext script, in the book's order (``_toc.yml`` alone sets it)."""
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text(encoding="utf-8"))
    files = [chapter["file"] for part in toc.get("parts", []) for chapter in part.get("chapters", [])]
    return [ROOT / "notebooks" / f"{Path(f).name}.py" for f in files if f.startswith("book/chapters/")]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="*", type=Path,
                        help="jupytext scripts (default: every chapter, in the order of _toc.yml)")
    parser.add_argument("--profile", default="cpu", choices=["smoke", "cpu", "paper"])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--dry-run", action="store_true",
                        help="cap the profile (a training step or two, a few images per code); "
                             f"write under {_public(str(DRY_RUN))}, not into the book")
    parser.add_argument("--book-root", action="store_true",
                        help="run nothing: stage the profile's book (see book_root) and print its folder")
    args = parser.parse_args(argv)
    if args.book_root:
        print(book_root(args.profile))
        return 0
    scripts = args.notebooks or toc_notebooks()
    label = f"{args.profile}, dry run" if args.dry_run else args.profile
    results = []
    for script in scripts:
        print(f"[{label}] executing {script} ...", flush=True)
        result = build_chapter(Path(script), args.profile, args.seed, args.dry_run)
        results.append(result)
        detail = f" ({result.error})" if result.error else ""
        print(f"  -> {result.status}{detail}: {_public(str(result.target))} in {result.seconds:.0f} s",
              flush=True)
    width = max((len(r.script.stem) for r in results), default=7)
    print(f"\n{'chapter':<{width}}  {'status':<8}  {'seconds':>7}")
    for r in results:
        print(f"{r.script.stem:<{width}}  {r.status:<8}  {r.seconds:>7.0f}")
    print(f"{'total':<{width}}  {'':<8}  {sum(r.seconds for r in results):>7.0f}")
    if not args.notebooks and not args.dry_run:  # a full run: keep its times for the rerun page
        with atomic_write(ROOT / "book" / f"chapter_times_{args.profile}.md", "w", encoding="utf-8") as f:
            f.write(times_table(results, args.profile))
        _, generated = output_dirs(args.profile)
        with atomic_write(generated / "record.json", "w", encoding="utf-8") as f:
            json.dump(run_record(results, args.profile), f, indent=2)
            f.write("\n")
    failed = [r.script.stem for r in results if r.status == "FAILED"]
    if failed:
        print(f"\n{len(failed)} chapter(s) FAILED: {', '.join(failed)}", flush=True)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
