"""IRMA codes and the hierarchical ImageCLEF error score.

An IRMA code ``TTTT-DDD-AAA-BBB`` has four axes (technical, directional,
anatomical, biological). Each position is one character from ``[0-9a-z]``,
read left to right from coarse to fine; ``*`` means "not classified" (a
prediction that stops at some depth). The open benchmark of this project uses
codes ``MOD-region-finding`` (``CT-abdomen-kidney_stone``), which split into two
axes: modality ``(MOD,)`` and anatomy ``(region, finding)``.

The ImageCLEF 2007/2009 error (Tommasi et al.; Deselaers et al.; Eq. 1 of
paper 003) sums, over axes and positions ``i = 1..I``::

    (1 / b_i) * (1 / i) * delta_i

where ``b_i`` is the number of values seen at position ``i`` below the *true*
code's prefix, and ``delta_i`` is decided by the first position ``j <= i`` that
is not right: none -> 0, a ``*`` -> 0.5, a wrong value -> 1. So one wrong
position makes every later position wrong, and one ``*`` makes every later
position unknown.

Normalisations (``normalize=``):

* ``"raw"``: the plain sum over axes (Eq. 1 of paper 003 as printed).
* ``"axis"``: each axis divided by its error when every position is wrong,
  so one image scores 0..n_axes (0..4 for IRMA).
* ``"image"``: the ``"axis"`` value divided by n_axes, so a fully wrong image
  scores 1. Summed over a test set this is the ImageCLEF total that paper 003
  reports in Table 2 (224.13 over 1,733 images) and paper 000 in Tables 1 and 3
  (32.2); use :func:`total_error` with ``normalize="image"`` to compare.
"""

from __future__ import annotations

import csv
import os
import re
from collections.abc import Iterable
from pathlib import Path

import pandas as pd

__all__ = [
    "CodeHierarchy",
    "code_axes",
    "code_modality",
    "code_region",
    "hierarchical_error",
    "parse_irma_code",
    "read_irma_codes",
    "total_error",
]

Axes = tuple[tuple[str, ...], ...]

_IRMA_RE = re.compile(r"^([0-9a-z*]{4})-([0-9a-z*]{3})-([0-9a-z*]{3})-([0-9a-z*]{3})$")
_BENCH_RE = re.compile(r"^([A-Za-z0-9_]+)-([A-Za-z0-9_]+)-([A-Za-z0-9_]+)$")
IRMA_AXIS_NAMES = ("technical", "directional", "anatomical", "biological")
NORMALIZATIONS = ("raw", "axis", "image")
UNKNOWN = "*"


def parse_irma_code(code: str) -> tuple[str, str, str, str]:
    """Split an IRMA code ``TTTT-DDD-AAA-BBB`` into its four axis strings.

    Args:
        code: The code, e.g. ``"1121-12f-466-700"``.

    Returns:
        The technical, directional, anatomical and biological axis strings.

    Raises:
        ValueError: If `code` is not a string of that form.

    Example:
        >>> parse_irma_code("1121-12f-466-700")
        ('1121', '12f', '466', '700')
    """
    match = _IRMA_RE.match(code) if isinstance(code, str) else None
    if match is None:
        raise ValueError(
            "An IRMA code has the form TTTT-DDD-AAA-BBB with characters from "
            f"[0-9a-z] or '*'. Received: code={code!r}"
        )
    return match.groups()  # type: ignore[return-value]


def code_axes(code: str) -> Axes:
    """Split an IRMA or benchmark code into axes of hierarchical tokens.

    Args:
        code: ``"TTTT-DDD-AAA-BBB"`` or ``"MOD-region-finding"``.

    Returns:
        For IRMA, four axes of single characters,
        e.g. ``(("1","1","2","1"), ("1","2","f"), ("4","6","6"), ("7","0","0"))``.
        For the benchmark, ``((MOD,), (region, finding))``.

    Raises:
        ValueError: If `code` matches neither form.
    """
    if isinstance(code, str) and _IRMA_RE.match(code):
        return tuple(tuple(axis) for axis in parse_irma_code(code))
    match = _BENCH_RE.match(code) if isinstance(code, str) else None
    if match is None:
        raise ValueError(
            "Expected an IRMA code TTTT-DDD-AAA-BBB or a benchmark code "
            f"MOD-region-finding (tokens [A-Za-z0-9_]+). Received: code={code!r}"
        )
    modality, region, finding = match.groups()
    return ((modality,), (region, finding))


def code_modality(code: str) -> str:
    """Return the modality part: the IRMA technical axis or the benchmark ``MOD``."""
    axes = code_axes(code)
    return "".join(axes[0])


def code_region(code: str) -> str:
    """Return the anatomical region: the IRMA anatomical axis or the benchmark region."""
    axes = code_axes(code)
    return "".join(axes[2]) if len(axes) == 4 else axes[1][0]


def _shape(axes: Axes) -> tuple[int, ...]:
    return tuple(len(axis) for axis in axes)


class CodeHierarchy:
    """The tree of code prefixes observed in a set of (training) codes.

    For every axis and every prefix of that axis, the hierarchy stores the set
    of tokens seen right after it; :meth:`branching` turns that into ``b_i``.

    Args:
        children: A list with one dict per axis, mapping a prefix (tuple of
            tokens) to the set of tokens that follow it.
        axis_lengths: Number of positions on each axis, e.g. ``(4, 3, 3, 3)``.

    Example:
        >>> h = CodeHierarchy.from_codes(["CT-abdomen-cyst", "MR-brain-glioma"])
        >>> h.branching(0, ())
        2
    """

    def __init__(self, children: list[dict[tuple[str, ...], set[str]]], axis_lengths: tuple[int, ...]):
        self.children = children
        self.axis_lengths = axis_lengths

    @classmethod
    def from_codes(cls, codes: Iterable[str]) -> "CodeHierarchy":
        """Build the hierarchy from codes of one family (all IRMA or all benchmark).

        Args:
            codes: Iterable of code strings. ``*`` tokens are not counted as values.

        Returns:
            A new `CodeHierarchy`.

        Raises:
            ValueError: If `codes` is empty, holds a bad code, or mixes families.
        """
        children: list[dict[tuple[str, ...], set[str]]] | None = None
        lengths: tuple[int, ...] | None = None
        for code in codes:
            axes = code_axes(code)
            if lengths is None:
                lengths = _shape(axes)
                children = [{} for _ in axes]
            elif _shape(axes) != lengths:
                raise ValueError(
                    f"All codes of a hierarchy must have axis lengths {lengths}; "
                    f"got {_shape(axes)} instead. Received: code={code!r}"
                )
            for tree, axis in zip(children, axes):
                for i, token in enumerate(axis):
                    if token == UNKNOWN:
                        break
                    tree.setdefault(axis[:i], set()).add(token)
        if lengths is None:
            raise ValueError("Cannot build a CodeHierarchy from no codes. Received: codes=[]")
        return cls(children, lengths)

    @property
    def n_axes(self) -> int:
        """Number of axes (4 for IRMA, 2 for benchmark codes)."""
        return len(self.axis_lengths)

    def branching(self, axis: int, prefix: tuple[str, ...]) -> int:
        """Number of values seen after `prefix` on `axis` (``b_i``, at least 1)."""
        if not 0 <= axis < self.n_axes:
            raise ValueError(f"axis must be in [0, {self.n_axes}). Received: axis={axis}")
        return max(1, len(self.children[axis].get(tuple(prefix), ())))

    def __repr__(self) -> str:
        n_prefixes = sum(len(tree) for tree in self.children)
        return f"CodeHierarchy(axis_lengths={self.axis_lengths}, n_prefixes={n_prefixes})"


def _axis_error(
    hierarchy: CodeHierarchy, axis: int, true: tuple[str, ...], pred: tuple[str, ...]
) -> tuple[float, float]:
    """Return (error, error when every position is wrong) of one axis."""
    error, worst, delta = 0.0, 0.0, 0.0
    for i, (t, p) in enumerate(zip(true, pred), start=1):
        weight = 1.0 / (hierarchy.branching(axis, true[: i - 1]) * i)
        if delta == 0.0 and p != t:  # the first position that is not right decides
            delta = 0.5 if p == UNKNOWN else 1.0
        error += weight * delta
        worst += weight
    return error, worst


def hierarchical_error(
    true_code: str, pred_code: str, hierarchy: CodeHierarchy, normalize: str = "image"
) -> float:
    """ImageCLEF hierarchical error of one predicted code.

    Args:
        true_code: The ground-truth code.
        pred_code: The predicted code (may hold ``*`` or lie in another branch).
        hierarchy: Built from the training codes; ``b_i`` uses the true prefix.
        normalize: ``"raw"``, ``"axis"`` or ``"image"`` (see the module
            docstring). Defaults to ``"image"``.

    Returns:
        The error: 0 for a right code; at most 1 (``"image"``) or n_axes (``"axis"``).

    Raises:
        ValueError: On a bad code, unknown `normalize`, or codes whose axes
            do not match the hierarchy.
    """
    if normalize not in NORMALIZATIONS:
        raise ValueError(f"normalize must be one of {NORMALIZATIONS}. Received: normalize={normalize!r}")
    true_axes, pred_axes = code_axes(true_code), code_axes(pred_code)
    for name, axes in (("true_code", true_axes), ("pred_code", pred_axes)):
        if _shape(axes) != hierarchy.axis_lengths:
            code = true_code if name == "true_code" else pred_code
            raise ValueError(
                f"{name} has axis lengths {_shape(axes)} but the hierarchy has "
                f"{hierarchy.axis_lengths}. Received: {name}={code!r}"
            )
    total = 0.0
    for axis, (t, p) in enumerate(zip(true_axes, pred_axes)):
        error, worst = _axis_error(hierarchy, axis, t, p)
        total += error if normalize == "raw" else error / worst
    return total / hierarchy.n_axes if normalize == "image" else total


def total_error(
    true_codes: Iterable[str],
    pred_codes: Iterable[str],
    hierarchy: CodeHierarchy,
    normalize: str = "image",
) -> float:
    """Sum of :func:`hierarchical_error` over a test set.

    Args:
        true_codes: Sequence of n ground-truth codes.
        pred_codes: Sequence of n predicted codes, in the same order.
        hierarchy: See :func:`hierarchical_error`.
        normalize: See :func:`hierarchical_error`. Defaults to ``"image"``.

    Returns:
        The total error (ImageCLEF score for ``"image"``).
    """
    true_codes, pred_codes = list(true_codes), list(pred_codes)
    if len(true_codes) != len(pred_codes):
        raise ValueError(
            "true_codes and pred_codes must have the same length. "
            f"Got {len(true_codes)} and {len(pred_codes)} instead."
        )
    return float(sum(hierarchical_error(t, p, hierarchy, normalize) for t, p in zip(true_codes, pred_codes)))


def read_irma_codes(path: str | os.PathLike) -> pd.DataFrame:
    """Read an ImageCLEFmed code list (``image_id;irma_code;...``, LF or CRLF).

    Args:
        path: e.g. ``$CBMIR_DATA_DIR/irma-codes/ImageCLEFmed2009_train_codes.02.csv``.

    Returns:
        DataFrame of shape (n_images, 2) with string columns ``image_id`` and
        ``irma_code``, in file order.

    Raises:
        FileNotFoundError: If `path` does not exist.
        ValueError: If the header lacks a column or a line holds a bad code;
            the message names the file and the line number.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"{path}: IRMA code list not found. Set CBMIR_DATA_DIR to the data folder "
            "holding irma-codes/ (see irma-codes/README.md)."
        )
    ids, codes = [], []
    with path.open(newline="", encoding="utf-8") as f:
        reader = csv.reader(f, delimiter=";")
        header = [name.strip() for name in next(reader, [])]
        missing = [c for c in ("image_id", "irma_code") if c not in header]
        if missing:
            raise ValueError(f"{path}:1: header lacks column(s) {missing}. Got {header} instead.")
        id_col, code_col = header.index("image_id"), header.index("irma_code")
        for row in reader:
            if not row:  # blank line
                continue
            line = reader.line_num
            if len(row) <= max(id_col, code_col):
                raise ValueError(f"{path}:{line}: expected {len(header)} fields. Got {len(row)} instead.")
            code = row[code_col].strip()
            try:
                parse_irma_code(code)
            except ValueError as err:
                raise ValueError(f"{path}:{line}: {err}") from None
            ids.append(row[id_col].strip())
            codes.append(code)
    return pd.DataFrame({"image_id": pd.Series(ids, dtype=str), "irma_code": pd.Series(codes, dtype=str)})
