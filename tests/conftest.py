"""Shared fixtures: the real data directory and small real subsets of it.

Tests read real data from ``$CBMIR_DATA_DIR`` (CI points it at ``../shared/data``;
by default the sibling ``../shared/data`` of the repository is used). A missing
data directory is a failure with instructions, never a silent skip.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
os.environ.setdefault("CBMIR_DATA_DIR", str(REPO.parent / "shared" / "data"))
os.environ.setdefault("CBMIR_ALLOW_DOWNLOAD", "0")  # tests never reach the network
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("MPLBACKEND", "Agg")


@pytest.fixture(scope="session")
def data_dir() -> Path:
    path = Path(os.environ["CBMIR_DATA_DIR"])
    if not (path / "README.md").exists():
        pytest.fail(f"CBMIR_DATA_DIR={path} does not hold the shared data; point it at ../shared/data")
    return path


@pytest.fixture(scope="session")
def kidney_images(data_dir) -> np.ndarray:
    """64 real abdominal CT slices, uint8 (64, 128, 128)."""
    with np.load(data_dir / "kidney-ct" / "kidney_ct_128.npz") as npz:
        return npz["images"][:64]


@pytest.fixture(scope="session")
def small_benchmark(data_dir):
    """A real per-class subset of the open benchmark (about 10 images per code and split)."""
    from cbmir_tf.data.benchmark import load_benchmark

    with pytest.warns(UserWarning, match="leak"):
        return load_benchmark(data_dir, max_per_class=10, seed=0)
