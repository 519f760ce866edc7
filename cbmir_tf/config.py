"""One place that says where data live.

* ``CBMIR_DATA_DIR``: an optional folder laid out like the project's shared data copy
  (``dicom/``, ``medmnist/``, ...), searched first;
* ``CBMIR_CACHE_DIR`` (default ``~/.cache/cbmir_tf/data``): the same layout, where
  downloads go (see :mod:`cbmir_tf.data.registry`);
* ``CBMIR_MODEL_CACHE`` (default ``~/.cache/cbmir_tf/models``): trained networks and the
  descriptors they computed, one folder per method and cache key (see
  :mod:`cbmir_tf.methods.cache`), so that each network is trained once.

:func:`data_dir` is the folder a user's own data (e.g. IRMA images) is looked for in:
the configured data folder when there is one, else the cache.
"""

from __future__ import annotations

import os
from pathlib import Path

DATA_DIR_ENV = "CBMIR_DATA_DIR"
CACHE_DIR_ENV = "CBMIR_CACHE_DIR"
DEFAULT_CACHE_DIR = Path.home() / ".cache" / "cbmir_tf" / "data"
MODEL_CACHE_ENV = "CBMIR_MODEL_CACHE"
DEFAULT_MODEL_CACHE = Path.home() / ".cache" / "cbmir_tf" / "models"


def configured_data_dir(path: str | os.PathLike | None = None) -> Path | None:
    """``path`` if given, else ``$CBMIR_DATA_DIR``, else `None`, as an absolute `Path`."""
    value = path if path is not None else os.environ.get(DATA_DIR_ENV)
    return Path(value).expanduser().resolve() if value else None


def cache_dir() -> Path:
    """The download cache: ``$CBMIR_CACHE_DIR``, else ``~/.cache/cbmir_tf/data`` (not created here)."""
    env = os.environ.get(CACHE_DIR_ENV)
    return Path(env).expanduser().resolve() if env else DEFAULT_CACHE_DIR


def model_cache_dir() -> Path:
    """The train-once cache: ``$CBMIR_MODEL_CACHE``, else ``~/.cache/cbmir_tf/models`` (not created here)."""
    env = os.environ.get(MODEL_CACHE_ENV)
    return Path(env).expanduser().resolve() if env else DEFAULT_MODEL_CACHE


def data_dir(path: str | os.PathLike | None = None) -> Path:
    """The data folder: ``path`` if given, else ``$CBMIR_DATA_DIR``, else the download cache.

    Args:
        path: An explicit directory that overrides the environment. Defaults to `None`.

    Returns:
        The directory as an absolute `Path` (it is not created here).
    """
    return configured_data_dir(path) or cache_dir()
