"""Saving and showing the figures and tables of the notebooks, with their provenance.

Each figure is written as PNG and each table as CSV into the notebook's
``out_dir`` (atomically), then handed to myst-nb's ``glue`` so that the book can
caption and number it. Outside Jupyter Book (e.g. on Colab) it is displayed inline.
"""

from __future__ import annotations

import json
import os
import platform
from pathlib import Path

import numpy as np
import pandas as pd

from cbmir_tf.data.io import atomic_write


def _atomic_write(path: Path, write) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(path) as tmp:
        write(tmp)
    return path


def _glue(name: str, obj) -> None:
    try:
        from myst_nb import glue
    except ImportError:  # plain Jupyter / Colab: just show it
        from IPython.display import display

        display(obj)
        return
    glue(name, obj, display=False)


def show_figure(fig, name: str, out_dir: str | os.PathLike, dpi: int = 110) -> None:
    """Save ``fig`` as ``out_dir/name.png`` and glue that PNG under ``name``."""
    import matplotlib.pyplot as plt
    from IPython.display import Image

    path = _atomic_write(Path(out_dir) / f"{name}.png",
                         lambda tmp: fig.savefig(tmp, dpi=dpi, bbox_inches="tight", format="png"))
    plt.close(fig)
    _glue(name, Image(data=path.read_bytes(), format="png"))


def _number(value, float_format: str) -> str:
    """One cell by its meaning: integers (also integral floats) as integers, other floats with
    ``float_format``, missing values as a dash, anything else as text."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.number)):
        return "–" if value is None else str(value)
    if not np.isfinite(value):
        return "–" if np.isnan(value) else str(value)
    if float(value).is_integer():
        return f"{int(value):,}" if abs(value) >= 10_000 else str(int(value))
    return float_format.format(value)


def _column_formatter(column: pd.Series, float_format: str):
    """A float column whose values are all whole numbers (counts, dimensions, ``nprobe``) is shown
    as integers; any other float column keeps ``float_format`` on every row, so its digits line up."""
    values = pd.to_numeric(column, errors="coerce") if column.dtype == object else column
    finite = values[np.isfinite(values.astype(float))] if pd.api.types.is_numeric_dtype(values) else None
    if pd.api.types.is_float_dtype(column) and finite is not None and len(finite) and \
            not np.all(np.mod(finite, 1) == 0):
        return lambda v: "–" if pd.isna(v) else float_format.format(v)
    return lambda v: _number(v, float_format)


def _column_values(table: pd.DataFrame, column) -> pd.Series:
    """Every value under the label ``column``, also when several columns share it (e.g. the profile
    overrides of the ``paper`` profile itself: columns ``setting``, ``paper``, ``paper``)."""
    values = table[column]
    if values.ndim == 1:
        return values
    return pd.concat([values.iloc[:, i] for i in range(values.shape[1])], ignore_index=True)


def show_table(table: pd.DataFrame, name: str, out_dir: str | os.PathLike, float_format: str = "{:.4f}",
               column_formats: dict[str, str] | None = None) -> None:
    """Save ``table`` as ``out_dir/name.csv`` and glue a formatted copy under ``name``.

    Cells are formatted by meaning (:func:`_column_formatter`): whole numbers as integers, other
    floats with ``float_format``, except the columns named in ``column_formats``.
    """
    _atomic_write(Path(out_dir) / f"{name}.csv", lambda tmp: table.to_csv(tmp, float_format="%.6g"))
    formats = {column: _column_formatter(_column_values(table, column), float_format) for column in table.columns}
    styled = table.style.format({**formats, **(column_formats or {})}, na_rep="–")
    styled = styled.format_index(lambda v: _number(v, float_format))
    _glue(name, styled)


def glue_value(name: str, value) -> None:
    """Glue a scalar for ``{glue:text}`` references in the narrative."""
    try:
        from myst_nb import glue
    except ImportError:
        print(f"{name} = {value}")
        return
    glue(name, value, display=False)


def write_provenance(out_dir: str | os.PathLike, parameters: dict, dataset=None) -> Path:
    """Record the parameters, data and software that produced a notebook's results."""
    import keras
    import sklearn
    import skimage

    import cbmir_tf

    record = {
        "parameters": parameters,
        "versions": {"cbmir_tf": cbmir_tf.__version__, "python": platform.python_version(),
                     "numpy": np.__version__, "keras": keras.__version__,
                     "scikit-learn": sklearn.__version__, "scikit-image": skimage.__version__},
        "machine": {"processor": platform.processor() or platform.machine(), "cpus": os.cpu_count()},
    }
    if dataset is not None:
        record["data"] = {"name": dataset.name, "n_images": len(dataset), **{
            k: v for k, v in dataset.meta.items() if isinstance(v, (str, int, float, list, bool, type(None)))}}
    text = json.dumps(record, indent=2, default=str)
    return _atomic_write(Path(out_dir) / "provenance.json", lambda tmp: Path(tmp).write_text(text))


def environment_summary() -> str:
    """One line naming the software versions and the processor, for the notebooks' last cell."""
    import keras
    import tensorflow as tf

    devices = [d.device_type for d in tf.config.list_physical_devices()]
    return (f"Python {platform.python_version()}, numpy {np.__version__}, keras {keras.__version__}, "
            f"tensorflow {tf.__version__}; {os.cpu_count()} CPU cores ({platform.machine()}); "
            f"devices: {', '.join(devices)}")


# ----------------------------------------------------------------------------------------------
# Claims: what a paper asserts, and what this build finds, with a paired bootstrap interval
# ----------------------------------------------------------------------------------------------

CLAIM_COLUMNS = ["paper", "claim", "paper_evidence", "measure", "ours", "baseline", "ours_value",
                 "baseline_value", "difference", "ci_low", "ci_high", "n", "verdict"]


def paired_bootstrap(better: np.ndarray, baseline: np.ndarray, n_boot: int = 2000, seed: int = 0,
                     level: float = 0.95) -> tuple[float, float, float]:
    """Mean of ``better - baseline`` over paired items (queries) and its percentile bootstrap interval."""
    diff = np.asarray(better, float) - np.asarray(baseline, float)
    if diff.ndim != 1 or len(diff) == 0:
        raise ValueError(f"need two equal-length 1-d arrays of per-item scores, got {diff.shape}")
    rng = np.random.default_rng(seed)
    means = diff[rng.integers(0, len(diff), (n_boot, len(diff)))].mean(axis=1)
    tail = (1 - level) / 2 * 100
    return float(diff.mean()), float(np.percentile(means, tail)), float(np.percentile(means, 100 - tail))


def verdict(ci_low: float, ci_high: float) -> str:
    """``supported`` when the whole interval favours the claim, ``contradicted`` when it all opposes
    it, ``inconclusive`` when it straddles zero."""
    if ci_low > 0:
        return "supported"
    if ci_high < 0:
        return "contradicted"
    return "inconclusive"


def claim(paper: str, text: str, paper_evidence: str, measure: str, ours: str, baseline: str,
          ours_scores: np.ndarray, baseline_scores: np.ndarray, higher_is_better: bool = True,
          seed: int = 0) -> dict:
    """One row of a chapter's claims table: ``text`` says that ``ours`` beats ``baseline``.

    Args:
        paper: The paper's number in this book, e.g. ``"000"``.
        text: The claim in our words, e.g. "the feature pyramid beats plain ResNet50V2 on retrieval".
        paper_evidence: The published numbers behind it, e.g. "MAP 0.585 vs 0.535 (Table 4)".
        measure: What the per-item scores are, e.g. "AP@10 per test query (exact code)".
        ours, baseline: The two arms' names.
        ours_scores, baseline_scores: Per-item scores of the two arms on the same items (paired).
        higher_is_better: False for errors, so that a positive difference always favours the claim.
        seed: Bootstrap seed.
    """
    sign = 1.0 if higher_is_better else -1.0
    a, b = np.asarray(ours_scores, float), np.asarray(baseline_scores, float)
    diff, low, high = paired_bootstrap(sign * a, sign * b, seed=seed)
    return {"paper": paper, "claim": text, "paper_evidence": paper_evidence, "measure": measure,
            "ours": ours, "baseline": baseline, "ours_value": float(a.mean()), "baseline_value": float(b.mean()),
            "difference": diff, "ci_low": low, "ci_high": high, "n": len(a), "verdict": verdict(low, high)}


def save_claims(rows: list[dict], out_dir: str | os.PathLike) -> pd.DataFrame:
    """Write a chapter's claims (rows of :func:`claim`) to ``out_dir/claims.csv``; the
    reproducibility chapter gathers every chapter's file."""
    table = pd.DataFrame(rows, columns=CLAIM_COLUMNS)
    _atomic_write(Path(out_dir) / "claims.csv", lambda tmp: table.to_csv(tmp, index=False, float_format="%.6g"))
    return table


def gather_claims(generated_dir: str | os.PathLike, profile: str | None = None) -> pd.DataFrame:
    """Every chapter's ``claims.csv`` under ``generated_dir`` (one folder per chapter), as one table.

    Args:
        generated_dir: The build's folder of chapter outputs, ``<generated>/<chapter>/claims.csv``.
        profile: When given, keep only the chapters of that build: their ``provenance.json`` names
            this profile, and their claims were written after it (a chapter that failed in this
            build after recording its provenance leaves an older ``claims.csv`` behind).
            A ``claims.csv`` without the columns of :func:`save_claims` (e.g. a formatted table that
            ``show_table(..., "claims", ...)`` wrote over it) is skipped.

    Returns:
        One row per claim: ``chapter`` (the folder's name), then :data:`CLAIM_COLUMNS`, in the order
        of the chapters' names and of the rows in each file; ``paper`` stays text ("000").
    """
    tables = []
    for path in sorted(Path(generated_dir).glob("*/claims.csv")):
        provenance = path.parent / "provenance.json"
        if profile is not None:
            if not provenance.exists() or provenance.stat().st_mtime > path.stat().st_mtime:
                continue
            if json.loads(provenance.read_text()).get("parameters", {}).get("profile") != profile:
                continue
        table = pd.read_csv(path, dtype={"paper": str, "claim": str, "verdict": str})
        if not set(CLAIM_COLUMNS) <= set(table.columns):
            continue
        tables.append(table.reindex(columns=CLAIM_COLUMNS).assign(chapter=path.parent.name))
    if not tables:
        return pd.DataFrame(columns=["chapter", *CLAIM_COLUMNS])
    return pd.concat(tables, ignore_index=True)[["chapter", *CLAIM_COLUMNS]]


def show_claims(rows: list[dict], out_dir: str | os.PathLike, name: str = "claims") -> pd.DataFrame:
    """Save a chapter's claims (:func:`save_claims`) and glue them for the page.

    Glues the table under ``name`` (one row per claim: the two arms' means, the difference with its
    95 % interval, the verdict) and, for the narrative, ``n_claims`` and ``claims_supported``,
    ``claims_contradicted``, ``claims_inconclusive``.
    """
    table = save_claims(rows, out_dir)
    shown = pd.DataFrame({
        "claim": table["claim"], "paper's evidence": table["paper_evidence"], "measure": table["measure"],
        "ours": [f"{o}: {v:.3f}" for o, v in zip(table["ours"], table["ours_value"])],
        "baseline": [f"{b}: {v:.3f}" for b, v in zip(table["baseline"], table["baseline_value"])],
        "difference [95 % CI]": [f"{d:+.3f} [{lo:+.3f}, {hi:+.3f}]"
                                 for d, lo, hi in zip(table["difference"], table["ci_low"], table["ci_high"])],
        "queries": table["n"], "verdict": table["verdict"]})
    _glue(name, shown.style.hide(axis="index"))
    glue_value("n_claims", str(len(table)))
    for outcome in ("supported", "contradicted", "inconclusive"):
        glue_value(f"claims_{outcome}", str(int((table["verdict"] == outcome).sum())))
    return table
