"""load_class_folders on real images written into temporary class folders."""

from __future__ import annotations

import re
import shutil

import numpy as np
import pytest
from PIL import Image

from cbmir_tf.data.dicom import read_dicom
from cbmir_tf.data.folders import load_class_folders
from cbmir_tf.data.preprocess import resize_batch, standardize_image
from cbmir_tf.data.registry import fetch

PER_CLASS = 3


@pytest.fixture(scope="module")
def xrays(small_benchmark) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Real chest radiographs and breast ultrasound images (MedMNIST 28 px, enlarged to 128 px):
    images (n, 128, 128) uint8, labels (n,), class names (their codes)."""
    return (resize_batch(small_benchmark.images, 128), small_benchmark.labels,
            np.array(small_benchmark.class_names))


@pytest.fixture
def tree(tmp_path, xrays):
    """root/<three codes>/*.png (3 real images each), a truncated PNG in the second, a real DICOM in CT/."""
    images, labels, names = xrays
    written = {}
    for label in range(3):
        folder = tmp_path / str(names[label])
        folder.mkdir()
        picks = np.flatnonzero(labels == label)[:PER_CLASS]
        written[str(names[label])] = images[picks]
        for j, i in enumerate(picks):
            Image.fromarray(images[i]).save(folder / f"img{j}.png")
    broken = tmp_path / str(names[1]) / "broken.png"
    data = (tmp_path / str(names[1]) / "img0.png").read_bytes()
    broken.write_bytes(data[: len(data) // 2])
    (tmp_path / "CT").mkdir()
    shutil.copy(fetch("dicom/CT_small.dcm"), tmp_path / "CT" / "ct.dcm")
    (tmp_path / str(names[0]) / "notes.txt").write_text("not loaded: wrong suffix")
    (tmp_path / ".cache").mkdir()
    Image.fromarray(images[0]).save(tmp_path / ".cache" / "hidden.png")
    return tmp_path, written, broken


def test_loads_classes_skips_broken(tree):
    root, written, broken = tree
    with pytest.warns(UserWarning, match="skipped 1"):
        data = load_class_folders(root)
    assert data.class_names == ("CT", *sorted(written))  # sorted folder names, hidden one ignored
    assert data.class_counts() == {"CT": 1, **{name: 3 for name in written}}
    assert data.images.shape == (10, 128, 128) and data.images.dtype == np.uint8
    for name, originals in written.items():
        np.testing.assert_array_equal(data.images[data.labels == data.class_names.index(name)], originals)
    ct = data.images[list(data.source_ids).index("CT/ct.dcm")]
    np.testing.assert_array_equal(ct, standardize_image(read_dicom(root / "CT" / "ct.dcm"), 128))
    assert [p for p, _ in data.meta["skipped"]] == [str(broken)]
    assert "truncated or corrupt PNG" in data.meta["skipped"][0][1]
    assert broken.relative_to(root).as_posix() not in data.source_ids
    assert set(data.split) == {"train"}


def test_on_error_raise_names_file(tree):
    root, _, broken = tree
    with pytest.raises(ValueError, match=re.escape(str(broken))):
        load_class_folders(root, on_error="raise")


def test_size_split_and_extensions(tree):
    root, _, _ = tree
    data = load_class_folders(root, size=32, extensions=("DCM",), split="test")
    assert data.class_names == ("CT",) and data.images.shape == (1, 32, 32)
    assert set(data.split) == {"test"}


def test_bad_arguments_and_empty_folder(tmp_path):
    (tmp_path / "empty_class").mkdir()
    with pytest.raises(ValueError, match=re.escape(str(tmp_path))):
        load_class_folders(tmp_path)
    with pytest.raises(ValueError, match="on_error='ignore'"):
        load_class_folders(tmp_path, on_error="ignore")
    with pytest.raises(ValueError, match="split='holdout'"):
        load_class_folders(tmp_path, split="holdout")
    with pytest.raises(FileNotFoundError, match="nowhere"):
        load_class_folders(tmp_path / "nowhere")
