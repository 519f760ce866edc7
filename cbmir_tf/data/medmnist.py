"""MedMNIST v2 / MedMNIST+ 2D subsets, read from their official ``.npz`` files.

The files are ``<flag>.npz`` (28 px) and ``<flag>_<size>.npz`` (64, 128, 224 px)
with arrays ``{train,val,test}_{images,labels}``. They are looked up under
``$CBMIR_DATA_DIR/medmnist/`` and otherwise downloaded from Zenodo (record
10519652) and checked against the MD5 sums that MedMNIST publishes in its
``info.py``. The ``medmnist`` package itself is not needed (it pulls in torch).

Reference: Yang et al., "MedMNIST v2", Scientific Data 10:41 (2023).
"""

from __future__ import annotations

import numpy as np

from cbmir_tf.data.dataset import ImageDataset
from cbmir_tf.data.registry import entry, fetch
from cbmir_tf.data.preprocess import to_gray_uint8

# flag -> modality, region, class names (as codes' finding tokens). Files, URLs and MD5 sums:
# the data registry (registry.csv), from MedMNIST's info.py (v3.0).
MEDMNIST_2D: dict[str, dict] = {
    "pneumoniamnist": {
        "modality": "XR", "region": "chest", "classes": ("normal", "pneumonia"),
    },
    "breastmnist": {
        "modality": "US", "region": "breast", "classes": ("malignant", "normal_or_benign"),
    },
    "octmnist": {
        "modality": "OCT", "region": "retina",
        "classes": ("choroidal_neovascularization", "diabetic_macular_edema", "drusen", "normal"),
    },
    "organamnist": {
        "modality": "CT", "region": "abdomen",
        "classes": ("bladder", "femur_left", "femur_right", "heart", "kidney_left", "kidney_right",
                    "liver", "lung_left", "lung_right", "pancreas", "spleen"),
        # The slices are abdominal CT, but each organ sits in its own body region.
        "regions": ("pelvis", "pelvis", "pelvis", "chest", "abdomen", "abdomen", "abdomen", "chest",
                    "chest", "abdomen", "abdomen"),
    },
}
SIZES = (28, 64, 128, 224)


def medmnist_filename(flag: str, size: int = 28) -> str:
    """``<flag>.npz`` for 28 px, ``<flag>_<size>.npz`` otherwise."""
    return f"{flag}.npz" if size == 28 else f"{flag}_{size}.npz"


def load_medmnist(flag: str, size: int = 28, *, root=None, max_per_class: int | None = None,
                  seed: int = 0) -> ImageDataset:
    """Load one MedMNIST 2D subset with its official train/val/test split.

    Args:
        flag: Subset name, one of ``MEDMNIST_2D`` (e.g. ``"pneumoniamnist"``).
        size: Image side, one of 28, 64, 128, 224. Defaults to 28.
        root: Data directory. Defaults to ``$CBMIR_DATA_DIR``.
        max_per_class: Keep at most this many images per (split, class), chosen
            with ``seed``. Defaults to `None` (all).
        seed: Seed of that subsampling. Defaults to 0.

    Returns:
        An `ImageDataset` with grey uint8 images of shape ``(n, size, size)`` and codes
        ``MOD-region-finding``.
    """
    if flag not in MEDMNIST_2D:
        raise ValueError(f"Unknown MedMNIST 2D flag. Use one of {sorted(MEDMNIST_2D)}. Received: flag={flag!r}")
    if size not in SIZES:
        raise ValueError(f"MedMNIST sizes are {SIZES}. Received: size={size}")
    info, name = MEDMNIST_2D[flag], medmnist_filename(flag, size)
    path = fetch(f"medmnist/{name}", root)
    with np.load(path) as npz:
        parts = [(s, npz[f"{s}_images"], npz[f"{s}_labels"].reshape(-1)) for s in ("train", "val", "test")]
    images = np.concatenate([_to_gray(imgs) for _, imgs, _ in parts])
    labels = np.concatenate([lab for _, _, lab in parts]).astype(np.int64)
    split = np.concatenate([np.full(len(lab), s) for s, _, lab in parts])
    source_ids = np.array([f"{flag}:{s}/{i}" for s, _, lab in parts for i in range(len(lab))])
    regions = info.get("regions", (info["region"],) * len(info["classes"]))
    codes = np.array([f"{info['modality']}-{regions[l]}-{info['classes'][l]}" for l in labels])
    dataset = ImageDataset(
        images, labels, tuple(info["classes"]), split, source_ids, codes, name=flag,
        meta={"origin": entry(f"medmnist/{name}").url, "licence": "CC BY 4.0 (MedMNIST)", "file": str(path)},
    )
    return dataset.stratified_sample(max_per_class, seed) if max_per_class else dataset


def _to_gray(images: np.ndarray) -> np.ndarray:
    """MedMNIST colour subsets are (n, h, w, 3); the retrieval pipeline is grey."""
    if images.ndim == 3:
        return images.astype(np.uint8)
    return np.stack([to_gray_uint8(image) for image in images])
