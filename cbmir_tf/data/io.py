"""Reading single image files, writing files atomically and checksumming them.

:func:`read_image` is the one entry point the folder loaders use: it returns a
2-D ``uint8`` grey image for PNG, JPEG, TIFF and BMP files (through Pillow) and
for DICOM files (through :func:`cbmir_tf.data.dicom.read_dicom`). Broken files
raise :class:`ValueError` naming the file and the problem, so a loader can skip
them and say why.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import numpy as np
from PIL import Image, UnidentifiedImageError

from cbmir_tf.data.dicom import is_dicom, read_dicom
from cbmir_tf.data.preprocess import to_gray_uint8

__all__ = ["IMAGE_EXTENSIONS", "atomic_directory", "atomic_write", "file_digest", "md5sum", "read_image", "sha256sum"]

#: Suffixes :func:`read_image` knows (lower case). Other files are still tried by content.
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".dcm", ".dicom")

# Pillow modes that numpy turns straight into a 2-D array (grey, 16-bit, 32-bit int, float).
_GREY_MODES = ("L", "I", "I;16", "I;16B", "I;16L", "I;16N", "F")


def read_image(path: str | os.PathLike) -> np.ndarray:
    """Read one image file as a 2-D grey ``uint8`` array.

    Raster files are decoded fully (``Image.load()``), so a truncated file fails
    here rather than later. RGB(A), palette and 16-bit images go through
    :func:`~cbmir_tf.data.preprocess.to_gray_uint8` (luma weights; min-max
    scaling for 16-bit and float). A DICOM file (suffix ``.dcm``/``.dicom`` or the
    ``DICM`` magic at byte 128) is read with
    ``read_dicom(path, frame="middle")``, so a multi-frame file gives its middle frame.

    Args:
        path: The image file.

    Returns:
        uint8 array of shape ``(height, width)``.

    Raises:
        FileNotFoundError: If `path` does not exist.
        ValueError: If the file is empty, truncated, corrupt or not an image.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such file")
    if path.is_dir():
        raise ValueError(f"{path}: is a directory, not an image file")
    if path.stat().st_size == 0:
        raise ValueError(f"{path}: empty file (0 bytes)")
    if path.suffix.lower() in (".dcm", ".dicom") or is_dicom(path):
        return read_dicom(path, frame="middle")

    kind = path.suffix.lstrip(".").upper() or "image"
    try:
        with Image.open(path) as img:
            kind = img.format or kind
            img.load()  # decode now: truncation and bad chunks surface here
            array = _pil_to_array(img)
    except UnidentifiedImageError as err:
        raise ValueError(
            f"{path}: not a recognised image format (tried Pillow and DICOM); "
            f"supported: {', '.join(IMAGE_EXTENSIONS)}"
        ) from err
    except (OSError, SyntaxError, ValueError, EOFError) as err:
        raise ValueError(f"{path}: truncated or corrupt {kind} ({err})") from err
    try:
        return to_gray_uint8(array)
    except ValueError as err:
        raise ValueError(f"{path}: cannot convert {kind} of shape {array.shape} to grey ({err})") from err


def _pil_to_array(img: Image.Image) -> np.ndarray:
    """Turn a loaded Pillow image into a grey ``(h, w)`` or colour ``(h, w, 3|4)`` array."""
    if img.mode in _GREY_MODES:
        return np.asarray(img)
    if img.mode == "1":
        return np.asarray(img.convert("L"))
    keep_alpha = "A" in img.mode or "transparency" in img.info
    return np.asarray(img.convert("RGBA" if keep_alpha else "RGB"))


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike, mode: str | None = None, **open_kwargs: Any) -> Iterator[Any]:
    """Write a file through a temporary sibling that is renamed into place on success.

    The temporary file lives in the target's folder (so :func:`os.replace` is
    atomic) and ends with the target's suffix (so ``np.savez`` does not append
    another ``.npz``). On any error it is removed and `path` is left untouched.

    Args:
        path: The file to create or replace.
        mode: ``None`` yields the temporary :class:`~pathlib.Path` for writers
            that take a file name (``np.savez``, ``faiss.write_index``);
            ``"w"``/``"wb"`` yield an open file object instead. Defaults to `None`.
        **open_kwargs: Passed to :func:`open` when `mode` is given (``encoding=``).

    Yields:
        The temporary path, or an open file when `mode` is given.

    Example:
        >>> with atomic_write("index.json", "w", encoding="utf-8") as f:  # doctest: +SKIP
        ...     f.write("{}")
    """
    path = Path(path)
    if mode is not None and mode not in ("w", "wb", "wt"):
        raise ValueError(f"atomic_write only writes whole files. Received: mode={mode!r}")
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=f".tmp{path.suffix}")
    tmp = Path(tmp_name)
    try:
        if mode is None:
            os.close(fd)
            yield tmp
        else:
            handle: IO[Any]
            with open(fd, mode, **open_kwargs) as handle:
                yield handle
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


@contextlib.contextmanager
def atomic_directory(path: str | os.PathLike, marker: str | None = None) -> Iterator[Path]:
    """Fill a folder through a temporary sibling that replaces `path` only once complete.

    The caller writes into the yielded temporary folder. On success an existing `path` is
    moved aside, the new folder renamed into place and the old one deleted; on any error
    (an exception, Ctrl-C) the temporary folder is removed and `path` is left as it was.

    Args:
        path: The folder to create or replace.
        marker: A file name that an existing `path` must contain to be replaced (e.g.
            ``"manifest.json"``), so that an unrelated folder is never overwritten. `None`
            replaces only empty folders. Defaults to `None`.

    Yields:
        The temporary folder, a :class:`~pathlib.Path` beside `path`.

    Raises:
        ValueError: If `path` exists and is not a folder this function may replace.
    """
    path = Path(path)
    if path.exists() and not (path.is_dir() and ((marker and (path / marker).is_file()) or not any(path.iterdir()))):
        what = f"holds no {marker}" if marker else "is not an empty folder"
        raise ValueError(f"{path} exists and {what}; refusing to overwrite it. Choose another path.")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.tmp-", dir=path.parent))
    old = None
    try:
        yield tmp
        if path.exists():  # move the old folder aside; it is deleted only after the swap
            old = Path(tempfile.mkdtemp(prefix=f".{path.name}.old-", dir=path.parent))
            os.replace(path, old / "previous")
        os.replace(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        if old is not None and not path.exists():
            os.replace(old / "previous", path)  # put the previous folder back
        raise
    finally:
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)


def file_digest(path: str | os.PathLike, algorithm: str = "sha256", chunk_size: int = 1 << 20) -> str:
    """Hex digest of a file (``algorithm`` as :func:`hashlib.new` names it), read in chunks."""
    digest = hashlib.new(algorithm)
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(chunk_size), b""):
            digest.update(chunk)
    return digest.hexdigest()


def sha256sum(path: str | os.PathLike, chunk_size: int = 1 << 20) -> str:
    """Hex SHA-256 of a file, read in chunks of `chunk_size` bytes."""
    return file_digest(path, "sha256", chunk_size)


def md5sum(path: str | os.PathLike, chunk_size: int = 1 << 20) -> str:
    """Hex MD5 of a file (for sources that publish MD5 only), read in chunks."""
    return file_digest(path, "md5", chunk_size)
