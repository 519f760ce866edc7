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
from cbmir_tf.data.download import fetch
from cbmir_tf.data.preprocess import to_gray_uint8

ZENODO = "https://zenodo.org/records/10519652/files/{name}?download=1"

# flag -> modality, region, class names (as codes' finding tokens), MD5 per size.
# MD5 sums: MedMNIST info.py (v3.0), sizes 28 / 64 / 128 / 224.
MEDMNIST_2D: dict[str, dict] = {
    "pneumoniamnist": {
        "modality": "XR", "region": "chest", "classes": ("normal", "pneumonia"),
        "md5": {28: "28209eda62fecd6e6a2d98b1501bb15f", 64: "8f4eceb4ccffa70c672198ea285246c6",
                128: "05b46931834c231683c68f40c47b2971", 224: "d6a3c71de1b945ea11211b03746c1fe1"},
    },
    "breastmnist": {
        "modality": "US", "region": "breast", "classes": ("malignant", "normal_or_benign"),
        "md5": {28: "750601b1f35ba3300ea97c75c52ff8f6", 64: "742edef2a1fd1524b2efff4bd7ba9364",
                128: "363e4b3f8d712e9b5de15470a2aaadf1", 224: "b56378a6eefa9fed602bb16d192d4c8b"},
    },
    "octmnist": {
        "modality": "OCT", "region": "retina",
        "classes": ("choroidal_neovascularization", "diabetic_macular_edema", "drusen", "normal"),
        "md5": {28: "c68d92d5b585d8d81f7112f81e2d0842", 64: "e229e9440236b774d9f0dfef9d07bdaf",
                128: "0a97e76651ace45c5d943ee3f65b63ae", 224: "abc493b6d529d5de7569faaef2773ba3"},
    },
    "organamnist": {
        "modality": "CT", "region": "abdomen",
        "classes": ("bladder", "femur_left", "femur_right", "heart", "kidney_left", "kidney_right",
                    "liver", "lung_left", "lung_right", "pancreas", "spleen"),
        # The slices are abdominal CT, but each organ sits in its own body region.
        "regions": ("pelvis", "pelvis", "pelvis", "chest", "abdomen", "abdomen", "abdomen", "chest",
                    "chest", "abdomen", "abdomen"),
        "md5": {28: "68e3f8846a6bd62f0c9bf841c0d9eacc", 64: "2dcccc29b88e6da5a01161ef20cda288",
                128: "eeae80d0a227a8d099027e1b3cfd3b60", 224: "50747347e05c87dd3aaf92c49f9f3170"},
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
    path = fetch(
        f"medmnist/{name}", ZENODO.format(name=name), info["md5"][size], "md5", root=root,
        how_to_get=f"Download it from {ZENODO.format(name=name)} into <data dir>/medmnist/.",
    )
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
        meta={"origin": ZENODO.format(name=name), "licence": "CC BY 4.0 (MedMNIST)", "file": str(path)},
    )
    return dataset.stratified_sample(max_per_class, seed) if max_per_class else dataset


def _to_gray(images: np.ndarray) -> np.ndarray:
    """MedMNIST colour subsets are (n, h, w, 3); the retrieval pipeline is grey."""
    if images.ndim == 3:
        return images.astype(np.uint8)
    return np.stack([to_gray_uint8(image) for image in images])
