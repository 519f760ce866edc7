"""Compare the regenerated tables of the book with the committed results of record.

``make book`` (cpu) rewrites ``book/generated/<chapter>/*.csv`` in place. ``make check-results``
then reads every table as committed (``git show HEAD:...``) and as regenerated, and names each cell
that moved, table by table; tables that appeared or disappeared are listed too. Timing columns
(seconds, milliseconds, images per second, ...) and tables of timings are left out: they change
with the machine's load, not with the method. Exit status 1 when anything moved.

    python book/check_results.py [--against REV] [--rtol 1e-6]
"""

from __future__ import annotations

import argparse
import io
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
RECORD = "book/generated"
# A column (or a whole table, by its file name) that measures time: left out of the comparison.
TIMING = re.compile(r"(?i)(\btimes?\b|timing|seconds|\bsec\b|\bs\b|\(s\)|\bms\b|latency|img/s|images/s|"
                    r"per second|throughput|wall|minutes|duration|_s$|_ms$|\bs/|/s\b|speed)")


def committed_tables(rev: str) -> dict[str, str]:
    """``{path: CSV text}`` of every table of the record at ``rev``."""
    names = subprocess.run(["git", "ls-tree", "-r", "--name-only", rev, "--", RECORD], cwd=ROOT,
                           capture_output=True, text=True, check=True).stdout.split()
    return {name: subprocess.run(["git", "show", f"{rev}:{name}"], cwd=ROOT, capture_output=True, text=True,
                                 check=True).stdout
            for name in names if name.endswith(".csv")}


def current_tables() -> dict[str, str]:
    """``{path: CSV text}`` of every table of the record in the working tree."""
    return {p.relative_to(ROOT).as_posix(): p.read_text(encoding="utf-8")
            for p in sorted((ROOT / RECORD).rglob("*.csv"))}


def is_timing(name: str) -> bool:
    """Whether a column or table name measures time (:data:`TIMING`)."""
    return bool(TIMING.search(str(name)))


def moved_cells(path: str, old_text: str, new_text: str, rtol: float = 1e-6) -> list[str]:
    """One line per cell of the table at ``path`` whose value moved (timing columns aside)."""
    old, new = (pd.read_csv(io.StringIO(text), index_col=0) for text in (old_text, new_text))
    lines = []
    for column in sorted(set(old.columns) ^ set(new.columns), key=str):
        if not is_timing(column):
            lines.append(f"{path}: column {column!r} {'removed' if column in old.columns else 'added'}")
    if list(old.index) != list(new.index):
        lines.append(f"{path}: rows changed: {len(old)} -> {len(new)} "
                     f"(removed {sorted(set(map(str, old.index)) - set(map(str, new.index)))[:5]}, "
                     f"added {sorted(set(map(str, new.index)) - set(map(str, old.index)))[:5]})")
        return lines
    for column in [c for c in old.columns if c in new.columns and not is_timing(c)]:
        for row, a, b in zip(old.index, old[column], new[column]):
            if not _same(a, b, rtol):
                lines.append(f"{path}: row {row!r}, column {column!r}: {a} -> {b}")
    return lines


def _same(a, b, rtol: float) -> bool:
    if pd.isna(a) and pd.isna(b):
        return True
    try:
        return bool(np.isclose(float(a), float(b), rtol=rtol, atol=1e-12))
    except (TypeError, ValueError):
        return str(a) == str(b)


def compare(old: dict[str, str], new: dict[str, str], rtol: float = 1e-6) -> list[str]:
    """Every difference between two sets of tables, as lines."""
    lines = [f"{path}: table removed" for path in sorted(set(old) - set(new))]
    lines += [f"{path}: table added" for path in sorted(set(new) - set(old))]
    for path in sorted(set(old) & set(new)):
        if old[path] != new[path] and not is_timing(Path(path).stem.replace("_", " ")):
            lines += moved_cells(path, old[path], new[path], rtol)
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--against", default="HEAD", help="the committed record to compare with (a git revision)")
    parser.add_argument("--rtol", type=float, default=1e-6, help="relative tolerance of a numeric cell")
    args = parser.parse_args(argv)
    old, new = committed_tables(args.against), current_tables()
    if not old:
        print(f"check-results: no committed tables under {RECORD} at {args.against}", file=sys.stderr)
        return 2
    lines = compare(old, new, args.rtol)
    for line in lines:
        print(line)
    print(f"check-results: {len(new)} tables compared with {args.against}: "
          + ("nothing moved (timing columns aside)" if not lines else f"{len(lines)} difference(s)"))
    return 1 if lines else 0


if __name__ == "__main__":
    sys.exit(main())
