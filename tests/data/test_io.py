"""read_image on real pixels written as PNG/JPEG/TIFF/BMP, atomic writes and checksums."""

from __future__ import annotations

import hashlib
import re
import shutil

import numpy as np
import pytest
from PIL import Image

from cbmir_tf.data.dicom import read_dicom
from cbmir_tf.data.io import atomic_write, md5sum, read_image, sha256sum
from cbmir_tf.data.preprocess import rescale_to_uint8
from cbmir_tf.data.registry import fetch


@pytest.fixture(scope="module")
def slices(ct_slices) -> np.ndarray:
    """Four real 128x128 chest CT slices (lung window), uint8 (4, 128, 128)."""
    return ct_slices[24:48:6].copy()


@pytest.mark.parametrize("suffix", [".png", ".tif", ".bmp"])
def test_lossless_round_trip(tmp_path, slices, suffix):
    path = tmp_path / f"slices{suffix}"
    Image.fromarray(slices[0]).save(path)
    image = read_image(path)
    assert image.dtype == np.uint8 and image.shape == (128, 128)
    np.testing.assert_array_equal(image, slices[0])


def test_jpeg_is_close(tmp_path, slices):
    path = tmp_path / "slices.jpg"
    Image.fromarray(slices[1]).save(path, quality=95)
    assert np.abs(read_image(path).astype(int) - slices[1]).mean() < 2.0


@pytest.mark.parametrize(("suffix", "kind"), [(".png", "PNG"), (".jpg", "JPEG")])
def test_truncated_raises_naming_file(tmp_path, slices, suffix, kind):
    path = tmp_path / f"cut{suffix}"
    Image.fromarray(slices[2]).save(path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match=re.escape(f"{path}: truncated or corrupt {kind}")):
        read_image(path)


def test_empty_missing_and_unknown(tmp_path):
    empty = tmp_path / "empty.png"
    empty.write_bytes(b"")
    with pytest.raises(ValueError, match=re.escape(f"{empty}: empty file")):
        read_image(empty)
    with pytest.raises(FileNotFoundError, match=re.escape(str(tmp_path / "absent.png"))):
        read_image(tmp_path / "absent.png")
    text = tmp_path / "notes.png"
    text.write_text("not an image at all\n")
    with pytest.raises(ValueError, match=re.escape(f"{text}: not a recognised image")):
        read_image(text)


def test_rgb_to_grey_matches_pillow(tmp_path, slices):
    rgb = np.stack([slices[0], slices[1], 255 - slices[2]], axis=-1)
    path = tmp_path / "rgb.png"
    Image.fromarray(rgb).save(path)
    reference = np.asarray(Image.open(path).convert("L"), dtype=np.int16)
    grey = read_image(path)
    assert grey.shape == (128, 128)
    assert np.abs(grey.astype(np.int16) - reference).max() <= 1


def test_rgba_is_composited_on_black(tmp_path, slices):
    rgba = np.stack([slices[0]] * 3 + [np.zeros_like(slices[0])], axis=-1)
    rgba[:64, :, 3] = 255  # top half opaque, bottom half transparent
    path = tmp_path / "rgba.png"
    Image.fromarray(rgba).save(path)
    grey = read_image(path)
    assert np.abs(grey[:64].astype(int) - slices[0][:64]).max() <= 1
    assert grey[64:].max() == 0


def test_sixteen_bit_is_min_max_scaled(tmp_path, lung_series):
    stored = (lung_series.hu[30] + 1024).astype(np.uint16)  # a real CT slice's stored 12-bit values
    assert stored.max() > 255
    path = tmp_path / "deep.png"
    Image.fromarray(stored).save(path)
    assert Image.open(path).mode.startswith("I")
    np.testing.assert_array_equal(read_image(path), rescale_to_uint8(stored))


def test_dicom_by_suffix_and_by_magic(tmp_path):
    ct = fetch("dicom/CT_small.dcm")
    np.testing.assert_array_equal(read_image(ct), read_dicom(ct))
    no_suffix = tmp_path / "slice"
    shutil.copy(ct, no_suffix)
    np.testing.assert_array_equal(read_image(no_suffix), read_dicom(ct))
    emri = fetch("dicom/emri_small.dcm")
    np.testing.assert_array_equal(read_image(emri), read_dicom(emri)[5])  # middle of 10 frames


def test_atomic_write_replaces_only_on_success(tmp_path):
    target = tmp_path / "table.csv"
    with atomic_write(target, "w", encoding="utf-8") as handle:
        handle.write("a,b\n1,2\n")
    assert target.read_text() == "a,b\n1,2\n"
    with pytest.raises(RuntimeError):
        with atomic_write(target, "w") as handle:
            handle.write("half")
            raise RuntimeError("writer failed")
    assert target.read_text() == "a,b\n1,2\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["table.csv"]


def test_atomic_write_path_mode_keeps_suffix(tmp_path, slices):
    target = tmp_path / "images.npz"
    with atomic_write(target) as tmp:
        assert tmp.parent == tmp_path and tmp.suffix == ".npz"
        np.savez(tmp, images=slices)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["images.npz"]
    with np.load(target) as z:
        np.testing.assert_array_equal(z["images"], slices)


def test_checksums_match_published_values():
    path = fetch("dicom/CT_small.dcm")
    # sha256 from dicom/README.md
    assert sha256sum(path) == "3dd31e5cc835b3f2cdd46c9da1982f59251e78518fefa8163d914631c66437d6"
    assert sha256sum(path, chunk_size=1000) == sha256sum(path)
    assert md5sum(path) == hashlib.md5(path.read_bytes()).hexdigest()
