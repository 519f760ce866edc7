"""The data registry: every file the package, the notebooks and the tests read.

Each file has a name (its path under the data folder, e.g. ``dicom/CT_small.dcm``), a
public URL pinned to a commit or a record, a checksum, its size and its licence; the
table is ``registry.csv`` beside this module. :func:`fetch` finds a file in this order:

1. ``$CBMIR_DATA_DIR/<name>`` (a folder laid out like the project's shared data copy);
2. an installed package that ships the same bytes (pydicom's and pydicom-data's test files);
3. the user cache, ``$CBMIR_CACHE_DIR`` or ``~/.cache/cbmir_tf/data``;
4. a download with pooch into that cache, verified against the checksum.

With ``CBMIR_MIRROR=<base url>`` every download goes to ``<base>/<host>/<path>`` of its
URL instead (``cbmir-data mirror`` lays out such a mirror), and ``CBMIR_ALLOW_DOWNLOAD=0``
forbids downloads. A checksum mismatch is always an error naming the file.
"""

from __future__ import annotations

import csv
import dataclasses
import functools
import importlib.resources
import importlib.util
import os
import shutil
import sys
from pathlib import Path
from urllib.parse import unquote, urlsplit

from cbmir_tf.config import DATA_DIR_ENV, cache_dir, configured_data_dir
from cbmir_tf.data.io import atomic_write, file_digest

MIRROR_ENV = "CBMIR_MIRROR"
ALLOW_DOWNLOAD_ENV = "CBMIR_ALLOW_DOWNLOAD"
# Files that installed packages ship byte for byte: registry source prefix -> (package, prefix to strip).
PACKAGED_SOURCES = {
    "pydicom/pydicom-data@": ("data_store", "data_store/"),
    "pydicom/pydicom@": ("pydicom", "src/pydicom/"),
}


@dataclasses.dataclass(frozen=True)
class DataFile:
    """One registered file: where it lives in the data folder and where it comes from."""

    name: str
    url: str  # empty: not downloadable (derived, or must come from its owner)
    hash: str  # "sha256:<hex>" or "md5:<hex>"; empty: the publisher gives none
    size: int | None
    licence: str
    source: str

    @property
    def folder(self) -> str:
        """The first component of the name, e.g. ``dicom``."""
        return self.name.split("/", 1)[0]

    def packaged_path(self) -> Path | None:
        """The same file inside an installed package (pydicom's test files), if there is one."""
        for prefix, (package, strip) in PACKAGED_SOURCES.items():
            if self.source.startswith(prefix) and importlib.util.find_spec(package) is not None:
                inner = self.source.split(":", 1)[1].removeprefix(strip)
                path = Path(str(importlib.resources.files(package).joinpath(inner)))
                return path if path.is_file() else None
        return None


@functools.cache
def registry() -> dict[str, DataFile]:
    """Every registered file by name, read from ``registry.csv``."""
    table = importlib.resources.files("cbmir_tf.data").joinpath("registry.csv")
    text = table.read_text(encoding="utf-8")
    rows = csv.DictReader(line for line in text.splitlines() if not line.startswith("#"))
    return {row["name"]: DataFile(row["name"], row["url"], row["hash"],
                                  int(row["size"]) if row["size"] else None, row["licence"], row["source"])
            for row in rows}


def entry(name: str) -> DataFile:
    """The registry entry ``name``; a `KeyError` that says how to list the names otherwise."""
    try:
        return registry()[name]
    except KeyError:
        raise KeyError(f"'{name}' is not in the data registry (see `cbmir-data list`)") from None


def entries(prefix: str) -> list[DataFile]:
    """The entries whose name starts with ``prefix/`` (a folder), in name order."""
    return [e for name, e in sorted(registry().items()) if name.startswith(prefix.rstrip("/") + "/")]


def file_names(name: str) -> list[str]:
    """``[name]`` for a registered file, the names of its files for a folder; `KeyError` otherwise."""
    if name in registry():
        return [name]
    names = [item.name for item in entries(name)]
    if not names:
        raise KeyError(f"'{name}' is not in the data registry (see `cbmir-data list`)")
    return names


def downloads_allowed() -> bool:
    """Downloads are on unless ``CBMIR_ALLOW_DOWNLOAD`` is ``0``/``false``/``no``."""
    return os.environ.get(ALLOW_DOWNLOAD_ENV, "1").strip().lower() not in {"0", "false", "no"}


def mirror_url(url: str, base: str | None = None) -> str:
    """``url`` as served by a mirror at ``base`` (default ``$CBMIR_MIRROR``): ``<base>/<host>/<path>``."""
    base = os.environ.get(MIRROR_ENV, "") if base is None else base
    if not base:
        return url
    parts = urlsplit(url)
    return f"{base.rstrip('/')}/{parts.netloc}{parts.path}"


def mirror_path(url: str) -> Path:
    """The relative path of ``url`` inside a mirror folder: ``<host>/<unquoted path>``."""
    parts = urlsplit(url)
    return Path(parts.netloc, *unquote(parts.path).lstrip("/").split("/"))


@functools.cache
def _digest(path: Path, algorithm: str, mtime_ns: int, size: int) -> str:
    return file_digest(path, algorithm)


def verify(path: str | os.PathLike, item: DataFile) -> Path:
    """Return ``path`` if its checksum is the registry's; raise `ValueError` naming the file otherwise."""
    path = Path(path)
    if item.hash:
        algorithm, expected = item.hash.split(":", 1)
        stat = path.stat()
        actual = _digest(path.resolve(), algorithm, stat.st_mtime_ns, stat.st_size)
        if actual != expected.lower():
            raise ValueError(f"{path}: checksum mismatch for '{item.name}' ({algorithm} {actual}, expected "
                             f"{expected}); delete it and run `cbmir-data fetch {item.name}`")
    return path


def locate(name: str, root: str | os.PathLike | None = None) -> tuple[Path, str] | None:
    """Where ``name`` is without downloading: ``(path, "data dir" | "package" | "cache")`` or `None`."""
    item = entry(name)
    data = configured_data_dir(root)
    candidates = [(data / name if data else None, "data dir"), (item.packaged_path(), "package"),
                  (cache_dir() / name, "cache")]
    for path, where in candidates:
        if path is not None and path.is_file():
            return path, where
    return None


def fetch(name: str, root: str | os.PathLike | None = None, *, progressbar: bool | None = None) -> Path:
    """Return the verified local path of the registered file ``name``, downloading it if needed.

    Args:
        name: Registry name, e.g. ``"medmnist/breastmnist.npz"``.
        root: A data folder that overrides ``$CBMIR_DATA_DIR``. Defaults to `None`.
        progressbar: Show a download progress bar. Defaults to `None` (only on a terminal).

    Returns:
        The path of the file, its checksum verified.

    Raises:
        FileNotFoundError: The file is nowhere here and cannot be downloaded (one line that says
            where it was looked for and how to get it).
        ValueError: A copy, or the download, does not match the registry's checksum.
    """
    item = entry(name)
    found = locate(name, root)
    if found is not None:
        path, where = found
        if where != "cache":
            return verify(path, item)
        try:
            return verify(path, item)
        except ValueError:
            if not (item.url and downloads_allowed()):
                raise
            # a stale or broken cached copy is downloaded again below
    return _download(item, progressbar)


def _download(item: DataFile, progressbar: bool | None) -> Path:
    data = configured_data_dir()
    looked = (f"{data / item.name} nor {cache_dir() / item.name}" if data
              else f"{cache_dir() / item.name} ({DATA_DIR_ENV} is not set)")
    if not item.url:
        raise FileNotFoundError(f"{item.name}: not in {looked}, and it cannot be downloaded ({item.source})")
    if not downloads_allowed():
        raise FileNotFoundError(f"{item.name}: not in {looked}, and downloads are off ({ALLOW_DOWNLOAD_ENV}=0)")
    import pooch

    pooch.get_logger().setLevel("WARNING")
    url = mirror_url(item.url)
    fetcher = pooch.create(path=cache_dir(), base_url="", registry={item.name: item.hash or None},
                           urls={item.name: url}, retry_if_failed=2)
    show = sys.stderr.isatty() if progressbar is None else progressbar
    try:
        return Path(fetcher.fetch(item.name, progressbar=show))
    except ValueError as err:  # pooch: the downloaded file's hash does not match
        raise ValueError(f"{item.name}: the download from {url} does not match its checksum ({err})") from None
    except Exception as err:  # noqa: BLE001 - requests' errors differ by cause (offline, 404, ...)
        raise FileNotFoundError(f"{item.name}: not in {looked}, and downloading {url} failed "
                                f"({type(err).__name__}: {str(err)[:200]})") from None


def fetch_folder(folder: str, root: str | os.PathLike | None = None) -> Path:
    """Make every registered file under ``folder/`` available in one place and return that place.

    That is ``$CBMIR_DATA_DIR/<folder>`` when it holds them all, else ``<cache>/<folder>``
    (filled from the packages or by downloads).
    """
    items = [entry(name) for name in file_names(folder)]
    data = configured_data_dir(root)
    if data is not None and all((data / item.name).is_file() for item in items):
        for item in items:
            verify(data / item.name, item)
        return data / folder
    for item in items:
        path = fetch(item.name, root)
        target = cache_dir() / item.name
        if path.resolve() != target.resolve():
            target.parent.mkdir(parents=True, exist_ok=True)
            with atomic_write(target) as tmp:
                shutil.copyfile(path, tmp)
    return cache_dir() / folder


def status(name: str, root: str | os.PathLike | None = None) -> str:
    """``present`` (data dir), ``packaged``, ``cached``, ``downloadable`` or ``missing``."""
    found = locate(name, root)
    if found is not None:
        return {"data dir": "present", "package": "packaged", "cache": "cached"}[found[1]]
    return "downloadable" if entry(name).url else "missing"


def available(name: str, root: str | os.PathLike | None = None) -> bool:
    """Whether the file ``name`` (every file, for a folder) is here or can be downloaded."""
    states = {status(file, root) for file in file_names(name)}
    return "missing" not in states and ("downloadable" not in states or downloads_allowed())


def make_mirror(data_folder: str | os.PathLike, out: str | os.PathLike) -> list[DataFile]:
    """Lay out the registered files found in ``data_folder`` as a mirror under ``out``.

    Each file is verified and hard-linked (copied across file systems) to
    ``out/<host>/<path>`` of its URL, so that ``CBMIR_MIRROR=<base url of out>`` serves it.

    Returns:
        The entries placed in the mirror.
    """
    data_folder, out = Path(data_folder), Path(out)
    placed = []
    for item in registry().values():
        source = data_folder / item.name
        if not item.url or not source.is_file():
            continue
        verify(source, item)
        target = out / mirror_path(item.url)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.unlink(missing_ok=True)
        try:
            os.link(source, target)
        except OSError:
            shutil.copyfile(source, target)
        placed.append(item)
    return placed
