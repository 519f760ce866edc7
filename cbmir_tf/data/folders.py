"""A folder per class (``root/<class>/<image>``) as an :class:`ImageDataset`."""

from __future__ import annotations

import os
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from cbmir_tf.data.dataset import SPLITS, ImageDataset
from cbmir_tf.data.io import read_image
from cbmir_tf.data.preprocess import standardize_image

__all__ = ["DEFAULT_EXTENSIONS", "load_class_folders"]

DEFAULT_EXTENSIONS = (".png", ".jpg", ".jpeg", ".dcm", ".tif", ".bmp")


def load_class_folders(
    root: str | os.PathLike,
    size: int = 128,
    extensions: Sequence[str] = DEFAULT_EXTENSIONS,
    split: str = "train",
    on_error: str = "skip",
) -> ImageDataset:
    """Load ``root/<class>/**/<file>`` images, one class per sub-folder of `root`.

    Files are matched by suffix (case-insensitive) anywhere below a class folder;
    hidden files and folders (``.name``) are ignored. Each is read with
    :func:`~cbmir_tf.data.io.read_image` (DICOM included, middle frame) and
    standardised with ``standardize_image(image, size)``.

    Args:
        root: Folder whose sub-folders are the classes.
        size: Side of the square output images. Defaults to 128.
        extensions: Suffixes to load. Defaults to
            ``(".png", ".jpg", ".jpeg", ".dcm", ".tif", ".bmp")``.
        split: Split given to every image: ``"train"``, ``"val"`` or ``"test"``.
            Defaults to ``"train"``.
        on_error: ``"skip"`` leaves unreadable files out, lists them as
            ``(path, reason)`` in ``meta["skipped"]`` and warns; ``"raise"``
            re-raises the first error. Defaults to ``"skip"``.

    Returns:
        An :class:`ImageDataset` with images ``(n, size, size)`` uint8, labels the
        index of the class folder in sorted order, class names the folder names
        (only folders holding matching files) and source ids the paths relative to `root`.

    Raises:
        FileNotFoundError: If `root` is not a folder.
        ValueError: If an argument is invalid, or no image could be read.
    """
    if on_error not in ("skip", "raise"):
        raise ValueError(f"on_error must be 'skip' or 'raise'. Received: on_error={on_error!r}")
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}. Received: split={split!r}")
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: no such folder of class sub-folders")
    suffixes = {e.lower() if e.startswith(".") else f".{e.lower()}" for e in extensions}

    def visible(path: Path) -> bool:
        return not any(part.startswith(".") for part in path.relative_to(root).parts)

    files: dict[str, list[Path]] = {}
    for folder in sorted(p for p in root.iterdir() if p.is_dir() and visible(p)):
        found = sorted(
            p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in suffixes and visible(p)
        )
        if found:
            files[folder.name] = found
    if not files:
        raise ValueError(
            f"{root}: no class sub-folders with files ending in {sorted(suffixes)}; "
            "expected root/<class>/<image>"
        )

    class_names = sorted(files)
    images, labels, sources, skipped = [], [], [], []
    for label, name in enumerate(class_names):
        for path in files[name]:
            try:
                images.append(standardize_image(read_image(path), size))
            except (ValueError, OSError) as err:  # OSError: the file vanished or cannot be opened
                if on_error == "raise":
                    raise
                skipped.append((str(path), str(err)))
                continue
            labels.append(label)
            sources.append(path.relative_to(root).as_posix())
    if skipped:
        warnings.warn(f"{root}: skipped {len(skipped)} unreadable file(s); see meta['skipped']", stacklevel=2)
    if not images:
        raise ValueError(f"{root}: none of the {len(skipped)} matching files could be read: {skipped[:3]}")
    return ImageDataset(
        images=np.stack(images),
        labels=np.array(labels, dtype=np.int64),
        class_names=tuple(class_names),
        split=np.full(len(images), split),
        source_ids=np.array(sources),
        name=root.name or "folders",
        meta={"root": str(root), "skipped": skipped},
    )
