"""MedMNIST and MedNIST loaders on the real files, and their checksum / missing-file errors."""

import shutil
import tarfile

import numpy as np
import pytest
from PIL import Image

from cbmir_tf.data.medmnist import load_medmnist, medmnist_filename
from cbmir_tf.data.mednist import MEDNIST_CODES, load_mednist
from cbmir_tf.data.preprocess import resize_batch
from cbmir_tf.data.registry import fetch


def test_pneumoniamnist_has_the_official_split_and_codes():
    ds = load_medmnist("pneumoniamnist", 28)
    # MedMNIST INFO: train 4708, val 524, test 624.
    assert [(ds.split == s).sum() for s in ("train", "val", "test")] == [4708, 524, 624]
    assert ds.images.shape == (5856, 28, 28) and ds.images.dtype == np.uint8
    assert set(ds.codes) == {"XR-chest-normal", "XR-chest-pneumonia"}
    assert ds.class_names[ds.labels[0]] == ds.codes[0].split("-")[2]


def test_breastmnist_subsample():
    ds = load_medmnist("breastmnist", 28, max_per_class=10)
    assert len(ds) == 2 * 3 * 10  # two classes, three splits, all larger than 10
    assert set(ds.codes) == {"US-breast-malignant", "US-breast-normal_or_benign"}


def test_medmnist_checksum_mismatch(tmp_path):
    (tmp_path / "medmnist").mkdir()
    raw = bytearray(fetch("medmnist/breastmnist.npz").read_bytes())
    raw[1000] ^= 0xFF
    (tmp_path / "medmnist" / "breastmnist.npz").write_bytes(bytes(raw))
    with pytest.raises(ValueError, match=r"/breastmnist\.npz: checksum mismatch for 'medmnist/breastmnist"):
        load_medmnist("breastmnist", root=tmp_path)


def test_medmnist_missing_without_download(tmp_path, monkeypatch):
    monkeypatch.setenv("CBMIR_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("CBMIR_ALLOW_DOWNLOAD", "0")
    with pytest.raises(FileNotFoundError, match=r"medmnist/octmnist_128\.npz: not in .*downloads are off"):
        load_medmnist("octmnist", 128, root=tmp_path)
    assert medmnist_filename("octmnist", 28) == "octmnist.npz"
    with pytest.raises(ValueError, match="Received: size=100"):
        load_medmnist("octmnist", 100, root=tmp_path)


def _mednist_folder(root, ct_slices, xrays, per_class=6):
    """MedNIST's layout (64 px JPEGs) filled with real images: chest CT slices and chest radiographs
    (MedNIST itself, a 60 MB archive, is not read by the tests)."""
    for name, images in {"ChestCT": ct_slices[20::6], "CXR": xrays}.items():
        folder = root / "MedNIST" / name
        folder.mkdir(parents=True)
        for i, image in enumerate(resize_batch(images[:per_class], 64)):
            Image.fromarray(image).save(folder / f"{i:06d}.jpeg")


@pytest.fixture(scope="module")
def xrays(small_benchmark):
    return small_benchmark.images[np.char.startswith(small_benchmark.codes.astype(str), "XR-chest-")]


def test_mednist_reads_its_folder_layout(tmp_path, ct_slices, xrays):
    _mednist_folder(tmp_path, ct_slices, xrays)
    with pytest.warns(UserWarning, match="patient"):
        ds = load_mednist(tmp_path, size=64)
    assert ds.images.shape == (12, 64, 64)
    assert set(ds.codes) == {MEDNIST_CODES["ChestCT"], MEDNIST_CODES["CXR"]}
    assert (ds.split == "test").sum() == 2 * round(0.2 * 6)


def test_mednist_archive_with_wrong_checksum_is_refused(tmp_path, ct_slices, xrays):
    _mednist_folder(tmp_path / "src", ct_slices, xrays, per_class=2)
    with tarfile.open(tmp_path / "MedNIST.tar.gz", "w:gz") as tar:
        tar.add(tmp_path / "src" / "MedNIST", arcname="MedNIST")
    shutil.rmtree(tmp_path / "src")
    with pytest.raises(ValueError, match=r"MedNIST\.tar\.gz: checksum mismatch"):
        load_mednist(tmp_path)
