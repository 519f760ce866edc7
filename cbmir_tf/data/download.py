"""Find a data file under ``CBMIR_DATA_DIR``, or download it with a checksum.

Every file a loader needs is looked up at ``data_dir() / relative_path``. If it
is there, its checksum is verified (when one is known); if it is missing and
downloads are allowed, it is fetched with ``keras.utils.get_file``, which
verifies the hash and writes atomically; otherwise the error says where the
file was expected and how to get it.
"""

from __future__ import annotations

import os
from pathlib import Path

from cbmir_tf.config import DATA_DIR_ENV, data_dir
from cbmir_tf.data.io import file_digest

ALLOW_DOWNLOAD_ENV = "CBMIR_ALLOW_DOWNLOAD"


def verify_checksum(path: str | os.PathLike, expected: str, algorithm: str = "md5") -> None:
    """Raise `ValueError` naming ``path`` if its checksum is not ``expected``."""
    actual = file_digest(path, algorithm)
    if actual != expected.lower():
        raise ValueError(
            f"{path}: checksum mismatch ({algorithm} {actual}, expected {expected}). "
            "The file is corrupt or a different version; delete it and download it again."
        )


def downloads_allowed() -> bool:
    """Downloads are on unless ``CBMIR_ALLOW_DOWNLOAD`` is ``0``/``false``/``no``."""
    return os.environ.get(ALLOW_DOWNLOAD_ENV, "1").strip().lower() not in {"0", "false", "no"}


def fetch(
    relative_path: str,
    url: str | None,
    checksum: str | None = None,
    algorithm: str = "md5",
    *,
    root: str | os.PathLike | None = None,
    how_to_get: str = "",
    extract: bool = False,
) -> Path:
    """Return the local path of a data file, downloading it if needed and allowed.

    Args:
        relative_path: Path under the data directory, e.g. ``"medmnist/breastmnist_128.npz"``.
        url: Where to download it from, or `None` if it cannot be downloaded.
        checksum: Expected hex digest, verified on every call. Defaults to `None` (not checked).
        algorithm: ``"md5"`` or ``"sha256"``. Defaults to ``"md5"``.
        root: Data directory. Defaults to :func:`cbmir_tf.config.data_dir`.
        how_to_get: One sentence added to the error when the file is missing.
        extract: Extract a downloaded archive next to it. Defaults to `False`.

    Returns:
        The path of the verified file.

    Raises:
        FileNotFoundError: The file is missing and cannot be downloaded.
        ValueError: The checksum does not match.
    """
    path = data_dir(root) / relative_path
    if path.exists():
        if checksum:
            verify_checksum(path, checksum, algorithm)
        return path
    if url is None or not downloads_allowed():
        reason = "downloads are disabled" if url else "it cannot be downloaded automatically"
        raise FileNotFoundError(
            f"{path} not found ({reason}). Set {DATA_DIR_ENV} to the folder that holds "
            f"'{relative_path}'. {how_to_get}".strip()
        )
    import keras  # imported here: it pulls in TensorFlow

    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        downloaded = keras.utils.get_file(
            fname=path.name,
            origin=url,
            file_hash=checksum,
            hash_algorithm=algorithm if checksum else "auto",
            cache_dir=str(path.parent),
            cache_subdir=".",
            extract=extract,
        )
    except ValueError:  # keras' checksum mismatch: already names the file
        raise
    except Exception as err:  # noqa: BLE001 - get_file raises a plain Exception when offline
        raise FileNotFoundError(f"{path} not found, and downloading it from {url} failed ({err}). "
                                f"Set {DATA_DIR_ENV} to the folder that holds '{relative_path}'. "
                                f"{how_to_get}".strip()) from None
    return Path(downloaded) if not extract else path
