"""MedNIST: 58,954 64 x 64 images of six modality/region classes (MONAI's teaching set).

The classes are AbdomenCT, BreastMRI, CXR, ChestCT, Hand and HeadCT, gathered by
B. Kitamura from TCIA, the RSNA bone-age and the NIH chest X-ray sets (CC BY-SA 4.0).
The loader reads ``$CBMIR_DATA_DIR/MedNIST/<class>/*.jpeg``, or extracts
``MedNIST.tar.gz`` there, downloading it (MD5 checked) when both are absent.
There is no finding, so the third token of the codes is ``unspecified``.
"""

from __future__ import annotations

import tarfile
import warnings
from pathlib import Path

import numpy as np

from cbmir_tf.config import data_dir
from cbmir_tf.data.dataset import ImageDataset, stratified_split
from cbmir_tf.data.registry import entry, fetch
from cbmir_tf.data.preprocess import resize

# class folder -> benchmark code
MEDNIST_CODES = {
    "AbdomenCT": "CT-abdomen-unspecified",
    "BreastMRI": "MR-breast-unspecified",
    "CXR": "XR-chest-unspecified",
    "ChestCT": "CT-chest-unspecified",
    "Hand": "XR-hand-unspecified",
    "HeadCT": "CT-brain-unspecified",
}


def mednist_folder(root=None) -> Path:
    """Return ``<data dir>/MedNIST``, extracting or downloading the archive if needed."""
    folder = data_dir(root) / "MedNIST"
    if folder.is_dir():
        return folder
    archive = fetch("MedNIST.tar.gz", root)
    with tarfile.open(archive) as tar:
        tar.extractall(folder.parent, filter="data")
    return folder


def load_mednist(root=None, *, size: int = 64, max_per_class: int | None = None,
                 test_fraction: float = 0.2, seed: int = 0) -> ImageDataset:
    """Load MedNIST with a stratified, seeded train/test split.

    Args:
        root: Data directory. Defaults to ``$CBMIR_DATA_DIR``.
        size: Output side in pixels (64 is native). Defaults to 64.
        max_per_class: Read at most this many files per class (the first ones in
            sorted order after a seeded shuffle). Defaults to `None` (all 58,954).
        test_fraction: Share of each class put in the test split. Defaults to 0.2.
        seed: Seed of the subsample and the split. Defaults to 0.

    Returns:
        An `ImageDataset` of grey uint8 images ``(n, size, size)``.
    """
    from cbmir_tf.data.io import read_image

    folder = mednist_folder(root)
    rng = np.random.default_rng(seed)
    images, labels, sources = [], [], []
    class_names = tuple(c for c in MEDNIST_CODES if (folder / c).is_dir())
    if not class_names:
        raise FileNotFoundError(f"{folder}: no MedNIST class folders ({', '.join(MEDNIST_CODES)}) found")
    for label, name in enumerate(class_names):
        files = sorted((folder / name).glob("*.jpeg"))
        if max_per_class and len(files) > max_per_class:
            files = sorted(rng.choice(files, max_per_class, replace=False))
        for path in files:
            images.append(resize(read_image(path), size))
            labels.append(label)
            sources.append(f"MedNIST:{name}/{path.name}")
    labels = np.asarray(labels)
    warnings.warn("MedNIST has no patient ids: its random split can put one patient in both splits.",
                  stacklevel=2)
    return ImageDataset(
        np.stack(images), labels, class_names, stratified_split(labels, test_fraction, seed),
        np.asarray(sources), np.array([MEDNIST_CODES[class_names[l]] for l in labels]), name="mednist",
        meta={"origin": entry("MedNIST.tar.gz").url, "licence": "CC BY-SA 4.0", "patient_leakage": True},
    )
