"""One place that says where data and results live.

Every loader finds its files under :func:`data_dir`, which is the environment
variable ``CBMIR_DATA_DIR`` when it is set, and ``~/.cache/cbmir_tf/data``
otherwise (that is where downloads go on a fresh machine).
"""

from __future__ import annotations

import os
from pathlib import Path

DATA_DIR_ENV = "CBMIR_DATA_DIR"
DEFAULT_DATA_DIR = Path.home() / ".cache" / "cbmir_tf" / "data"


def data_dir(path: str | os.PathLike | None = None) -> Path:
    """Return the data directory: ``path`` if given, else ``$CBMIR_DATA_DIR``, else the cache.

    Args:
        path: An explicit directory that overrides the environment. Defaults to `None`.

    Returns:
        The directory as an absolute `Path` (it is not created here).
    """
    if path is not None:
        return Path(path).expanduser().resolve()
    env = os.environ.get(DATA_DIR_ENV)
    return Path(env).expanduser().resolve() if env else DEFAULT_DATA_DIR
