"""The IRMA radiographs of ImageCLEFmed 2007 and 2009, labelled by IRMA code.

The images are not redistributable: obtain them from the IRMA/ImageCLEF
organisers (RWTH Aachen) under their usage terms and unpack them under
``$CBMIR_DATA_DIR/irma/``. Only the 2009 code lists ship with the project data
(``$CBMIR_DATA_DIR/irma-codes/``); they are found there when the image folder
has no copy of its own.

Accepted layouts (``<root>`` defaults to ``$CBMIR_DATA_DIR/irma``)::

    2009                                           2007
    <root>/ImageCLEFmed2009_train_codes.02.csv     <root>/train.txt   "<image_id> <irma_code>"
    <root>/ImageCLEFmed2009_test_codes.03.csv      <root>/test.txt    (or "<image_id>;<irma_code>")
    <root>/train/<image_id>.png                    <root>/val.txt     (optional)
    <root>/test/<image_id>.png                     <root>/train/<image_id>.png, <root>/test/...

In both, an image is looked up in ``<root>/<split>/``, then ``<root>/images/``,
then ``<root>/`` itself, so a single flat folder of ``<image_id>.png`` also works.
Every image is read with :func:`~cbmir_tf.data.io.read_image` and standardised
with ``standardize_image(image, size)``.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from cbmir_tf.config import DATA_DIR_ENV, data_dir
from cbmir_tf.data.registry import fetch
from cbmir_tf.data.dataset import ImageDataset
from cbmir_tf.data.io import read_image
from cbmir_tf.data.preprocess import standardize_image
from cbmir_tf.irma import parse_irma_code, read_irma_codes

__all__ = ["CODE_FILES_2009", "load_irma_2007", "load_irma_2009", "read_codes_2007", "read_codes_2009"]

#: Official names of the ImageCLEFmed 2009 code lists, per split.
CODE_FILES_2009 = {
    "train": "ImageCLEFmed2009_train_codes.02.csv",
    "test": "ImageCLEFmed2009_test_codes.03.csv",
}
_SPLITS_2007 = ("train", "val", "test")

Rows = list[tuple[str, str]]


def _valid(code: str, where: str) -> str:
    try:
        parse_irma_code(code)
    except ValueError as err:
        raise ValueError(f"{where}: {err}") from None
    return code


def read_codes_2009(path: str | os.PathLike) -> Rows:
    """Read an ImageCLEFmed 2009 code list (``image_id;irma_code;...``, LF or CRLF).

    A thin view of :func:`cbmir_tf.irma.read_irma_codes`, which parses and validates it.

    Returns:
        ``(image_id, irma_code)`` pairs in file order.

    Raises:
        ValueError: If the header lacks a column or a row has a bad code (names file and line).
    """
    table = read_irma_codes(path)
    return list(zip(table["image_id"], table["irma_code"]))


def read_codes_2007(path: str | os.PathLike) -> Rows:
    """Read an ImageCLEF 2007 style list: ``<image_id> <irma_code>`` per line (or ``;``-separated).

    Blank lines and ``#`` comments are ignored; a first line whose second field has
    no ``-`` is taken as a header. A ``.png`` suffix on the id is dropped.

    Returns:
        ``(image_id, irma_code)`` pairs in file order.
    """
    path = Path(path)
    rows: Rows = []
    seen_first = False
    with path.open(encoding="utf-8") as handle:  # universal newlines: LF and CRLF
        for number, line in enumerate(handle, start=1):
            line = line.split("#", 1)[0].strip()
            if not line:
                continue
            fields = line.replace(";", " ").split()
            where = f"{path}:{number}"
            if len(fields) < 2:
                raise ValueError(f"{where}: expected '<image_id> <irma_code>'. Got {line!r} instead.")
            image_id, code = fields[0].removesuffix(".png"), fields[1]
            if not seen_first:
                seen_first = True
                if "-" not in code:
                    continue  # header line such as "image_id irma_code"
            rows.append((image_id, _valid(code, where)))
    return rows


def _locate(root: Path, split: str, rows: Rows, listing: Path) -> list[Path]:
    """Path of ``<image_id>.png`` for every row; raises if any is missing."""
    folders = [root / split, root / "images", root]
    found, missing = [], []
    for image_id, _ in rows:
        name = f"{image_id}.png"
        path = next((f / name for f in folders if (f / name).is_file()), None)
        found.append(path)
        if path is None:
            missing.append(folders[0] / name)
    if missing:
        raise FileNotFoundError(
            f"{missing[0]}: {len(missing)} of {len(rows)} IRMA images listed in {listing} are missing "
            f"(looked in {root / split}, {root / 'images'} and {root}). The IRMA/ImageCLEFmed radiographs "
            "are not redistributable: obtain them from the IRMA/ImageCLEF organisers (RWTH Aachen) and "
            f"unpack them as <image_id>.png under ${DATA_DIR_ENV}/irma/ (here {data_dir() / 'irma'})."
        )
    return found


def _build(
    parts: list[tuple[str, Rows, list[Path]]], root: Path, size: int, name: str, meta: dict
) -> ImageDataset:
    """One dataset from ``(split, rows, paths)`` parts; class names are the sorted distinct codes."""
    codes = [code for _, rows, _ in parts for _, code in rows]
    class_names = sorted(set(codes))
    lookup = {code: i for i, code in enumerate(class_names)}
    paths = [p for _, _, found in parts for p in found]
    images = np.empty((len(paths), size, size), dtype=np.uint8)
    for i, path in enumerate(paths):
        images[i] = standardize_image(read_image(path), size)
    return ImageDataset(
        images=images,
        labels=np.array([lookup[c] for c in codes], dtype=np.int64),
        class_names=tuple(class_names),
        split=np.array([s for s, rows, _ in parts for _ in rows]),
        source_ids=np.array([p.relative_to(root).as_posix() for p in paths]),
        codes=np.array(codes),
        name=name,
        meta={"root": str(root), **meta},
    )


def _root(root: str | os.PathLike | None) -> Path:
    root = data_dir() / "irma" if root is None else Path(root)
    if not root.is_dir():
        raise FileNotFoundError(
            f"{root}: IRMA image folder not found. Put the ImageCLEFmed images under "
            f"${DATA_DIR_ENV}/irma/ (see the layouts in cbmir_tf.data.irma_images)."
        )
    return root


def load_irma_2009(
    root: str | os.PathLike | None = None,
    codes_file: str | os.PathLike | None = None,
    split: str = "train",
    size: int = 128,
) -> ImageDataset:
    """Load the ImageCLEFmed 2009 annotation images with their IRMA codes.

    Args:
        root: Folder of the images (and optionally the code lists).
            Defaults to ``$CBMIR_DATA_DIR/irma``.
        codes_file: An explicit code list for `split`. Defaults to the official
            file name in `root`, else in ``$CBMIR_DATA_DIR/irma-codes/``.
        split: ``"train"`` (12,677 images), ``"test"`` (1,733) or ``"all"`` (both,
            each image keeping its split). Defaults to ``"train"``.
        size: Side of the square output images. Defaults to 128.

    Returns:
        An :class:`ImageDataset` with images ``(n, size, size)`` uint8, one class per
        distinct IRMA code (class names sorted), codes the ``irma_code`` strings in
        file order and source ids the image paths relative to `root`.

    Raises:
        FileNotFoundError: If the code list or any listed image is missing.
        ValueError: If `split` is unknown or a code is malformed.
    """
    if split not in ("train", "test", "all"):
        raise ValueError(f"split must be 'train', 'test' or 'all'. Received: split={split!r}")
    if codes_file is not None and split == "all":
        raise ValueError(
            "codes_file names one list; pass split='train' or 'test' with it. Received: split='all'"
        )
    root = _root(root)
    parts = []
    for part in ("train", "test") if split == "all" else (split,):
        if codes_file is not None:
            listing = Path(codes_file)
        else:
            listing = root / CODE_FILES_2009[part]
            if not listing.is_file():  # the published code lists, through the data registry
                listing = fetch(f"irma-codes/{CODE_FILES_2009[part]}")
        rows = read_codes_2009(listing)
        parts.append((part, rows, _locate(root, part, rows, listing)))
    return _build(parts, root, size, f"irma2009[{split}]", {"year": 2009, "split_arg": split})


def load_irma_2007(root: str | os.PathLike | None = None, size: int = 128) -> ImageDataset:
    """Load ImageCLEF 2007 style IRMA images from ``train.txt``/``val.txt``/``test.txt`` lists.

    Each present list (see :func:`read_codes_2007`) becomes the split of its name;
    ``train.txt`` is required.

    Args:
        root: Folder with the lists and images (layout in the module docstring).
            Defaults to ``$CBMIR_DATA_DIR/irma``.
        size: Side of the square output images. Defaults to 128.

    Returns:
        An :class:`ImageDataset` as in :func:`load_irma_2009`.

    Raises:
        FileNotFoundError: If ``train.txt`` or any listed image is missing.
    """
    root = _root(root)
    if not (root / "train.txt").is_file():
        raise FileNotFoundError(
            f"{root / 'train.txt'}: ImageCLEF 2007 list not found (lines '<image_id> <irma_code>')"
        )
    parts = []
    for part in _SPLITS_2007:
        listing = root / f"{part}.txt"
        if listing.is_file():
            rows = read_codes_2007(listing)
            parts.append((part, rows, _locate(root, part, rows, listing)))
    return _build(parts, root, size, "irma2007", {"year": 2007})
