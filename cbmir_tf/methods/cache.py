"""Train once: where a trained method and the descriptors it computed are kept between runs.

A learned method (a network trained on the archive's labels) is saved under

    <model cache>/<method>/<key>/

where ``<model cache>`` is :func:`cbmir_tf.config.model_cache_dir` (``$CBMIR_MODEL_CACHE``,
default ``~/.cache/cbmir_tf/models``) and ``<key>`` is :func:`cache_key`: a digest of the
training data (:func:`data_checksum`: the images and labels themselves, so a different subset,
resolution or source gives a different key), the method's settings (its seed included), the
versions of this package and Keras, and the source code that builds, trains and applies the
networks (:func:`code_digest`), so that a network is never reused after that code changed. Every chapter and every rerun that trains the same method
with the same settings on the same data loads the saved network instead of training again; a
changed setting or dataset makes a new key. The folder is written atomically
(:func:`cbmir_tf.data.io.atomic_directory`), so an interrupted run leaves no half-saved model.
``make clean-cache`` removes the cache; ``make clean`` leaves it.

The folder holds what the method saves (its ``.keras`` networks and any fitted preprocessing),
``record.json`` (the key's inputs, the training runs and their timings), and ``described/``: the
descriptors the method computed for an image batch, one ``.npz`` per batch checksum, so that an
archive is described once too.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import shutil
from pathlib import Path

import numpy as np

from cbmir_tf.config import model_cache_dir

RECORD = "record.json"


def data_checksum(*arrays: np.ndarray) -> str:
    """SHA-256 over the dtype, shape and bytes of each array (e.g. the training images and labels)."""
    digest = hashlib.sha256()
    for array in arrays:
        array = np.ascontiguousarray(array)
        digest.update(f"{array.dtype.str}{array.shape}".encode())
        digest.update(memoryview(array).cast("B"))
    return digest.hexdigest()


#: The source folders whose code makes a trained network and its descriptors.
CODE_FOLDERS = ("models", "methods", "features")


@functools.cache
def code_digest() -> str:
    """SHA-256 (16 hex digits) of the package's network, method and descriptor source files."""
    package = Path(__file__).resolve().parents[1]
    digest = hashlib.sha256()
    for path in sorted(f for folder in CODE_FOLDERS for f in (package / folder).glob("*.py")):
        digest.update(path.relative_to(package).as_posix().encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def key_inputs(method: str, settings: dict, data: str) -> dict:
    """What a cache key is made of: method name, settings, data checksum, versions and code digest."""
    import keras

    import cbmir_tf

    return {"method": method, "settings": settings, "data": data, "cbmir_tf": cbmir_tf.__version__,
            "keras": keras.__version__, "code": code_digest()}


def cache_key(method: str, settings: dict, data: str) -> str:
    """The cache key (20 hex digits) of ``method`` trained with ``settings`` on data ``data``."""
    text = json.dumps(key_inputs(method, settings, data), sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:20]


def resolve_cache(cache: bool | str | os.PathLike | None) -> Path | None:
    """The cache root for a ``cache`` argument: `True` → :func:`model_cache_dir`, a path → itself,
    `False` / `None` → no cache."""
    if cache is True:
        return model_cache_dir()
    if not cache:
        return None
    return Path(cache).expanduser().resolve()


def cached_entries(root: Path | None = None) -> list[dict]:
    """One row per cached model: method, key, size in bytes and the record's training time."""
    root = root or model_cache_dir()
    rows = []
    for record in sorted(root.glob(f"*/*/{RECORD}")):
        folder = record.parent
        info = json.loads(record.read_text(encoding="utf-8"))
        size = sum(f.stat().st_size for f in folder.rglob("*") if f.is_file())
        rows.append({"method": folder.parent.name, "key": folder.name, "bytes": size,
                     "train_s": info.get("train_s")})
    return rows


def clean(root: Path | None = None) -> None:
    """Remove the whole model cache (``make clean-cache``)."""
    shutil.rmtree(root or model_cache_dir(), ignore_errors=True)
