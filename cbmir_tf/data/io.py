"""Reading single image files, writing files atomically and checksumming them.

:func:`read_image` is the one entry point the folder loaders use: it returns a
2-D ``uint8`` grey image for PNG, JPEG, TIFF and BMP files (through Pillow) and
for DICOM files (through :func:`cbmir_tf.data.dicom.read_dicom`). Broken files
raise :class:`ValueError` naming the file and the problem, so a loader can skip
them and say why.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import re
import shutil
import stat
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import numpy as np
from PIL import Image, UnidentifiedImageError

from cbmir_tf.data.sniff import is_dicom
from cbmir_tf.data.preprocess import to_gray_uint8

__all__ = ["IMAGE_EXTENSIONS", "WriteError", "atomic_directory", "atomic_write", "check_output", "file_digest",
           "md5sum", "read_image", "remove_stale_temporaries", "sha256sum"]

#: Suffixes :func:`read_image` knows (lower case). Other files are still tried by content.
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".dcm", ".dicom")

# Pillow modes that numpy turns straight into a 2-D array (grey, 16-bit, 32-bit int, float).
_GREY_MODES = ("L", "I", "I;16", "I;16B", "I;16L", "I;16N", "F")

# errno values that mean "this output cannot be written here" (turned into a WriteError).
_WRITE_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EFBIG, errno.EACCES, errno.EPERM, errno.EISDIR,
                 errno.ENOTDIR, errno.EXDEV, errno.EBUSY, errno.EEXIST}
#: A temporary sibling whose owner still runs is removed only when older than this (seconds).
STALE_AFTER_S = 6 * 3600.0


class WriteError(OSError):
    """An output could not be written; ``str()`` is one line: ``cannot write <path>: <reason>``."""

    def __init__(self, path: str | os.PathLike, reason: str | OSError, code: int | None = None):
        if isinstance(reason, OSError):
            code = reason.errno if code is None else code
            reason = reason.reason if isinstance(reason, WriteError) else (reason.strerror or str(reason))
        super().__init__(f"cannot write {path}: {reason}")
        self.path, self.reason, self.errno = Path(path), str(reason), code


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
        ValueError: If the file is empty, truncated, corrupt, not an image, larger
            than Pillow's limit (``Image.MAX_IMAGE_PIXELS``, twice over) or holds
            NaN/inf pixel values; the message starts with the path.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such file")
    if path.is_dir():
        raise ValueError(f"{path}: is a directory, not an image file")
    if path.stat().st_size == 0:
        raise ValueError(f"{path}: empty file (0 bytes)")
    if path.suffix.lower() in (".dcm", ".dicom") or is_dicom(path):
        from cbmir_tf.data.dicom import read_dicom  # pydicom: only for DICOM files

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
    except Image.DecompressionBombError as err:  # the header claims more pixels than Pillow's limit
        raise ValueError(f"{path}: too large, {_one_line(err)}") from None
    except PermissionError as err:
        raise ValueError(f"{path}: cannot read ({err.strerror})") from None
    except (OSError, SyntaxError, ValueError, EOFError, MemoryError) as err:
        raise ValueError(f"{path}: truncated or corrupt {kind} ({_one_line(err)})") from err
    try:
        return to_gray_uint8(array)
    except ValueError as err:
        if "NaN/inf" in str(err):
            raise ValueError(f"{path}: {err}") from None
        raise ValueError(f"{path}: cannot convert {kind} of shape {array.shape} to grey ({err})") from err


def _one_line(err: BaseException | str) -> str:
    """An error message with its whitespace (newlines included) collapsed to single spaces."""
    return " ".join(str(err).split())


def _pil_to_array(img: Image.Image) -> np.ndarray:
    """Turn a loaded Pillow image into a grey ``(h, w)`` or colour ``(h, w, 3|4)`` array."""
    if img.mode in _GREY_MODES:
        return np.asarray(img)
    if img.mode == "1":
        return np.asarray(img.convert("L"))
    keep_alpha = "A" in img.mode or "transparency" in img.info
    return np.asarray(img.convert("RGBA" if keep_alpha else "RGB"))


def check_output(path: str | os.PathLike, *, folder: bool = False, marker: str | None = None) -> Path:
    """Refuse, before any work, an output that cannot be written: one-line errors naming `path`.

    Checks that `path` is not a mount point, a device or pipe, a folder where a file is
    wanted (or a file or unrelated folder where a folder is wanted, see
    :func:`atomic_directory`'s `marker`), and that its folder exists (for a file) or can be
    made, and is writable.

    Returns:
        `path` as a :class:`~pathlib.Path`.

    Raises:
        WriteError: The output cannot be written there. ValueError: `path` is a folder
        that :func:`atomic_directory` must not replace.
    """
    path = Path(path)
    if os.path.ismount(path):
        raise WriteError(path, "it is a mount point, which cannot be replaced; give a folder inside it "
                               f"(e.g. {path / 'index'})", errno.EBUSY)
    if path.exists() or path.is_symlink():
        if folder:
            if path.is_dir() and not ((marker and (path / marker).is_file()) or not any(path.iterdir())):
                what = f"holds no {marker}" if marker else "is not an empty folder"
                raise ValueError(f"{path} exists and {what}; refusing to overwrite it. Choose another path.")
            if not path.is_dir():
                raise WriteError(path, "exists and is not a folder", errno.ENOTDIR)
        elif path.is_dir():
            raise WriteError(path, "is a folder; give a file name", errno.EISDIR)
        elif not path.is_file():
            raise WriteError(path, "not a regular file (a device, pipe or broken link); give a file name")
    parent = path.parent
    if not folder and not parent.is_dir():
        raise WriteError(path, f"folder {parent} does not exist", errno.ENOENT)
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent  # atomic_directory makes the missing folders
    if not parent.is_dir():
        raise WriteError(path, f"{parent} is not a folder", errno.ENOTDIR)
    if not os.access(parent, os.W_OK | os.X_OK):
        raise WriteError(path, f"folder {parent} is not writable", errno.EACCES)
    return path


def _umask() -> int:
    """The process umask (read from /proc when possible, so it is never changed, even briefly)."""
    try:
        with open("/proc/self/status", encoding="ascii") as handle:
            for line in handle:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _honour_umask(path: Path) -> None:
    """Give `path` (recursively, for a folder) the modes a plain ``open``/``mkdir`` would have:
    ``mkstemp``/``mkdtemp`` make them private (0600/0700), so other users could not read an index."""
    mask = _umask()
    if path.is_file():
        os.chmod(path, 0o666 & ~mask)
        return
    for folder, _, files in os.walk(path):
        os.chmod(folder, 0o777 & ~mask)
        for name in files:
            if not os.path.islink(os.path.join(folder, name)):
                os.chmod(os.path.join(folder, name), 0o666 & ~mask)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


def remove_stale_temporaries(path: str | os.PathLike) -> list[Path]:
    """Remove the leftovers of interrupted atomic writes of `path`: its hidden siblings
    ``.<name>.tmp-<pid>-*`` and ``.<name>.old-<pid>-*`` whose process no longer runs (on this
    machine), or that are older than :data:`STALE_AFTER_S` (also those of older versions, without a pid).

    A previous folder moved aside (``.old-*/previous``) by a save that was killed before the
    new one took its place is put back when `path` is missing. Returns the removed paths.
    """
    path = Path(path)
    pattern = re.compile(rf"\.{re.escape(path.name)}\.(?:(?:tmp|old)-(?:(\d+)-)?|[a-z0-9_]{{8}}\.tmp)")
    removed = []
    try:
        entries = [e for e in os.scandir(path.parent) if e.name.startswith(f".{path.name}.")]
    except OSError:
        return removed
    for entry in entries:
        match = pattern.match(entry.name)
        if not match:
            continue
        pid = int(match.group(1)) if match.group(1) else None
        try:
            age = time.time() - entry.stat(follow_symlinks=False).st_mtime
        except OSError:
            continue
        if pid == os.getpid() or (age < STALE_AFTER_S and (pid is None or _pid_alive(pid))):
            continue
        stale = Path(entry.path)
        previous = stale / "previous"
        if ".old-" in entry.name and previous.is_dir() and not os.path.lexists(path):
            with contextlib.suppress(OSError):
                os.replace(previous, path)
        if entry.is_dir(follow_symlinks=False):
            shutil.rmtree(stale, ignore_errors=True)
        else:
            with contextlib.suppress(OSError):
                stale.unlink()
        removed.append(stale)
    return removed


def _as_write_error(err: BaseException, path: Path, tmp: Path | None) -> BaseException:
    """`err` as a WriteError naming `path` when it is a failed write (a full disk, no permission)."""
    if isinstance(err, WriteError):  # from a nested atomic write inside our temporary folder
        inside = tmp is not None and (err.path == tmp or tmp in err.path.parents)
        return WriteError(path, err.reason, err.errno) if inside else err
    if isinstance(err, OSError) and err.errno in _WRITE_ERRNOS:
        return WriteError(path, err)
    if isinstance(err, RuntimeError) and "write error" in str(err):  # FAISS: "...write error in f: ... (strerror)"
        found = re.search(r"\(([^()]+)\)\s*$", str(err))
        return WriteError(path, found.group(1) if found else "write error")
    return err


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike, mode: str | None = None, **open_kwargs: Any) -> Iterator[Any]:
    """Write a file through a temporary sibling that is renamed into place on success.

    The temporary file ``.<name>.tmp-<pid>-*<suffix>`` lives in the target's folder (so
    :func:`os.replace` is atomic) and ends with the target's suffix (so ``np.savez`` does not
    append another ``.npz``). On any error it is removed and `path` is left untouched; the
    leftovers of killed writers are removed by the next write (:func:`remove_stale_temporaries`).
    The new file gets the mode of the file it replaces, else ``0o666`` less the umask.

    Args:
        path: The file to create or replace.
        mode: ``None`` yields the temporary :class:`~pathlib.Path` for writers
            that take a file name (``np.savez``, ``faiss.write_index``);
            ``"w"``/``"wb"`` yield an open file object instead. Defaults to `None`.
        **open_kwargs: Passed to :func:`open` when `mode` is given (``encoding=``).

    Yields:
        The temporary path, or an open file when `mode` is given.

    Raises:
        WriteError: `path` cannot be written (see :func:`check_output`), or the disk is full,
            read-only or denies access; the message is one line naming `path`.

    Example:
        >>> with atomic_write("index.json", "w", encoding="utf-8") as f:  # doctest: +SKIP
        ...     f.write("{}")
    """
    path = Path(path)
    if mode is not None and mode not in ("w", "wb", "wt"):
        raise ValueError(f"atomic_write only writes whole files. Received: mode={mode!r}")
    check_output(path)
    remove_stale_temporaries(path)
    try:
        fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.tmp-{os.getpid()}-",
                                        suffix=path.suffix)
    except OSError as err:
        raise WriteError(path, err) from None
    tmp = Path(tmp_name)
    try:
        if mode is None:
            os.close(fd)
            yield tmp
        else:
            handle: IO[Any]
            with open(fd, mode, **open_kwargs) as handle:
                yield handle
        old_mode = stat.S_IMODE(path.stat().st_mode) if path.is_file() else 0o666 & ~_umask()
        os.chmod(tmp, old_mode)
        os.replace(tmp, path)
    except BaseException as err:
        tmp.unlink(missing_ok=True)
        converted = _as_write_error(err, path, None)
        if converted is not err:
            raise converted from None
        raise


@contextlib.contextmanager
def atomic_directory(path: str | os.PathLike, marker: str | None = None) -> Iterator[Path]:
    """Fill a folder through a temporary sibling that replaces `path` only once complete.

    The caller writes into the yielded temporary folder ``.<name>.tmp-<pid>-*``. On success its
    modes are set as ``mkdir``/``open`` would (``0o777``/``0o666`` less the umask; the temporary
    folder is private), an existing `path` is moved aside, the new folder renamed into place and
    the old one deleted; on any error (an exception, Ctrl-C, SIGTERM turned into an exception)
    the temporary folder is removed and `path` is left as it was. Leftovers of a killed process
    (SIGKILL, power loss) are removed by the next write of `path` (:func:`remove_stale_temporaries`).

    Args:
        path: The folder to create or replace.
        marker: A file name that an existing `path` must contain to be replaced (e.g.
            ``"manifest.json"``), so that an unrelated folder is never overwritten. `None`
            replaces only empty folders. Defaults to `None`.

    Yields:
        The temporary folder, a :class:`~pathlib.Path` beside `path`.

    Raises:
        ValueError: If `path` exists and is not a folder this function may replace.
        WriteError: If `path` cannot be written: a mount point, a read-only or full disk, no
            permission; the message is one line naming `path`.
    """
    path = Path(path)
    check_output(path, folder=True, marker=marker)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        remove_stale_temporaries(path)
        tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.tmp-{os.getpid()}-", dir=path.parent))
    except OSError as err:
        raise WriteError(path, err) from None
    old = None
    try:
        yield tmp
        _honour_umask(tmp)
        if path.exists():  # move the old folder aside; it is deleted only after the swap
            old = Path(tempfile.mkdtemp(prefix=f".{path.name}.old-{os.getpid()}-", dir=path.parent))
            os.replace(path, old / "previous")
        os.replace(tmp, path)
    except BaseException as err:
        shutil.rmtree(tmp, ignore_errors=True)
        if old is not None and not path.exists() and (old / "previous").exists():
            os.replace(old / "previous", path)  # put the previous folder back
        converted = _as_write_error(err, path, tmp)
        if converted is not err:
            raise converted from None
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
