"""DICOM decoding on the 14 real sample files of the data registry (``dicom/``; see its README).

They are pydicom's and pydicom-data's test files: with those packages installed (test
dependencies), :func:`cbmir_tf.data.registry.fetch` finds them there.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import numpy as np
import pydicom
import pytest

from cbmir_tf.data.dicom import dicom_labels, load_dicom_folder, read_dicom, read_hu
from cbmir_tf.data.preprocess import standardize_image
from cbmir_tf.data.registry import entries, fetch

# file -> (Modality, shape of read_dicom(path)); from the README table, colour channels dropped.
EXPECTED = {
    "693_UNCI.dcm": ("CT", (512, 512)),
    "CT_small.dcm": ("CT", (128, 128)),
    "JPEG2000_UNC.dcm": ("NM", (1024, 256)),
    "MR-SIEMENS-DICOM-WithOverlays.dcm": ("MR", (484, 484)),
    "MR2_UNCI.dcm": ("MR", (1024, 1024)),
    "MR_small.dcm": ("MR", (64, 64)),
    "OBXXXX1A.dcm": ("US", (600, 800)),
    "RG1_J2KI.dcm": ("CR", (1955, 1841)),
    "RG3_J2KI.dcm": ("CR", (1760, 1760)),
    "RG3_J2KR.dcm": ("CR", (1760, 1760)),
    "US1_J2KI.dcm": ("US", (480, 640)),
    "dicomdirtests_77654033_CR1_6154.dcm": ("CR", (16, 16)),
    "eCT_Supplemental.dcm": ("CT", (2, 512, 512)),
    "emri_small.dcm": ("MR", (10, 64, 64)),
}


COLOURS = ("Red", "Green", "Blue")


def _path(name: str) -> Path:
    """The registered sample ``dicom/<name>``, checksum-verified."""
    return fetch(f"dicom/{name}")


@pytest.fixture(scope="module")
def decoded() -> dict[str, np.ndarray]:
    """Every sample decoded once with default settings."""
    return {name: read_dicom(_path(name)) for name in EXPECTED}


def _corr(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.corrcoef(a.ravel().astype(np.float64), b.ravel().astype(np.float64))[0, 1])


def test_every_sample_file_is_listed(dicom_dir):
    assert sorted(e.name.removeprefix("dicom/") for e in entries("dicom")) == sorted(EXPECTED)
    assert sorted(p.name for p in dicom_dir.glob("*.dcm")) == sorted(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_decode_every_file(decoded, name):
    image = decoded[name]
    assert image.dtype == np.uint8
    assert image.shape == EXPECTED[name][1]
    for frame in image.reshape(-1, *image.shape[-2:]):
        assert frame.std() > 1.0, f"{name}: a frame is (nearly) constant"


def test_multiframe_frames_match_stack(decoded):
    stack = decoded["emri_small.dcm"]
    path = _path("emri_small.dcm")
    for i in (0, 3, 9):
        np.testing.assert_array_equal(read_dicom(path, frame=i), stack[i])
    np.testing.assert_array_equal(read_dicom(path, frame="middle"), stack[5])
    assert not np.array_equal(stack[0], stack[9])
    with pytest.raises(ValueError, match=r"Number of Frames.*frame=10"):
        read_dicom(path, frame=10)


def test_ct_small_hu_is_rescaled():
    path = _path("CT_small.dcm")
    ds = pydicom.dcmread(path)
    manual = ds.pixel_array.astype(np.float64) * float(ds.RescaleSlope) + float(ds.RescaleIntercept)
    hu = read_hu(path)
    assert hu.dtype == np.float32 and hu.shape == (128, 128)
    np.testing.assert_array_equal(hu, manual.astype(np.float32))
    assert -1100 <= hu.min() <= -500  # air in a body CT slice
    assert 500 <= hu.max() <= 3100  # bone


def test_enhanced_ct_uses_functional_group_rescale():
    path = _path("eCT_Supplemental.dcm")
    ds = pydicom.dcmread(path)
    assert "RescaleIntercept" not in ds  # only in the functional groups
    group = ds.SharedFunctionalGroupsSequence[0].PixelValueTransformationSequence[0]
    manual = ds.pixel_array.astype(np.float64) * float(group.RescaleSlope) + float(group.RescaleIntercept)
    np.testing.assert_array_equal(read_hu(path), manual.astype(np.float32))


def test_explicit_window_on_hu():
    path = _path("CT_small.dcm")
    hu = read_hu(path).astype(np.float64)
    center, width = 40.0, 400.0
    # DICOM LINEAR window (PS3.3 C.11.2.1.2.1): centre - 0.5, width - 1
    expected = np.clip((hu - (center - 0.5)) / (width - 1.0) + 0.5, 0.0, 1.0) * 255.0
    got = read_dicom(path, window=(center, width)).astype(np.float64)
    assert np.abs(got - expected).max() <= 1.0
    assert not np.array_equal(got, read_dicom(path))  # no VOI in the file: min-max instead


@pytest.mark.parametrize("name", ["dicomdirtests_77654033_CR1_6154.dcm", "RG3_J2KR.dcm"])
def test_monochrome1_is_inverted(decoded, name):
    raw = pydicom.dcmread(_path(name)).pixel_array
    assert pydicom.dcmread(_path(name)).PhotometricInterpretation == "MONOCHROME1"
    assert _corr(decoded[name], raw) < -0.5


def test_monochrome2_is_not_inverted(decoded):
    raw = pydicom.dcmread(_path("MR_small.dcm")).pixel_array
    assert _corr(decoded["MR_small.dcm"], raw) > 0.5


def test_palette_color_is_applied_then_grey(decoded):
    ds = pydicom.dcmread(_path("OBXXXX1A.dcm"))
    assert ds.PhotometricInterpretation == "PALETTE COLOR"
    # 256-entry, 16-bit palettes stored as little-endian OW
    rgb = [np.frombuffer(ds[f"{c}PaletteColorLookupTableData"].value, "<u2") for c in COLOURS]
    luma = (0.299 * rgb[0] + 0.587 * rgb[1] + 0.114 * rgb[2]) * 255.0 / 65535.0
    expected = luma[ds.pixel_array]
    assert np.abs(decoded["OBXXXX1A.dcm"] - expected).max() <= 1.0


def test_dataset_input_equals_path_input(decoded):
    ds = pydicom.dcmread(_path("MR_small.dcm"))
    np.testing.assert_array_equal(read_dicom(ds), decoded["MR_small.dcm"])


@pytest.mark.parametrize("name", ["CT_small.dcm", "RG1_J2KI.dcm", "OBXXXX1A.dcm", "JPEG2000_UNC.dcm"])
def test_labels_read_modality(name):
    direct = pydicom.dcmread(_path(name))
    labels = dicom_labels(direct)
    assert labels["Modality"] == direct.Modality == EXPECTED[name][0]
    assert dicom_labels(_path(name)) == labels


def test_labels_body_part():
    assert dicom_labels(_path("RG1_J2KI.dcm"))["BodyPartExamined"] == "CHEST"
    assert dicom_labels(_path("JPEG2000_UNC.dcm"))["BodyPartExamined"] == "WHOLE_BODY"  # "WHOLE BODY"
    assert dicom_labels(_path("CT_small.dcm"))["BodyPartExamined"] == "UNKNOWN"  # tag absent


@pytest.mark.parametrize("name", ["CT_small.dcm", "RG3_J2KI.dcm"])
def test_truncated_copy_raises_naming_file(tmp_path, name):
    data = _path(name).read_bytes()
    target = tmp_path / f"cut_{name}"
    target.write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match=re.escape(str(target))) as info:
        read_dicom(target)
    assert "Pixel Data" in str(info.value) or "truncated" in str(info.value)


def test_missing_pixel_data_names_tag(tmp_path):
    ds = pydicom.dcmread(_path("CT_small.dcm"))
    del ds.PixelData
    target = tmp_path / "no_pixels.dcm"
    ds.save_as(target)
    with pytest.raises(ValueError, match=re.escape(f"{target}: (7FE0,0010) Pixel Data missing")):
        read_dicom(target)


def test_unsupported_transfer_syntax_names_tag(tmp_path):
    ds = pydicom.dcmread(_path("RG3_J2KI.dcm"))
    ds.file_meta.TransferSyntaxUID = pydicom.uid.UID("1.2.3.4.5.6.7")  # unknown, still encapsulated
    target = tmp_path / "unknown_syntax.dcm"
    ds.save_as(target)
    with pytest.raises(ValueError, match=re.escape(f"{target}: cannot decode (7FE0,0010) Pixel Data")) as info:
        read_dicom(target)
    assert "(0002,0010) Transfer Syntax UID '1.2.3.4.5.6.7'" in str(info.value)


def test_non_dicom_and_missing_files(tmp_path):
    target = tmp_path / "notes.dcm"
    target.write_text("this is not a DICOM file\n" * 20)
    with pytest.raises(ValueError, match=re.escape(f"{target}: not a DICOM file")):
        read_dicom(target)
    with pytest.raises(FileNotFoundError, match="absent.dcm"):
        read_dicom(tmp_path / "absent.dcm")
    with pytest.raises(ValueError, match="Photometric Interpretation 'PALETTE COLOR'"):
        read_hu(_path("OBXXXX1A.dcm"))


def test_load_dicom_folder_real(dicom_dir):
    data = load_dicom_folder(dicom_dir)
    assert len(data) == len(EXPECTED) and data.meta["skipped"] == []
    assert data.images.shape == (14, 128, 128) and data.images.dtype == np.uint8
    assert sorted(data.source_ids) == sorted(EXPECTED)
    modalities = {c.split("-")[0] for c in data.class_names}
    assert modalities == {"CT", "MR", "CR", "US", "NM"}
    assert list(data.class_names) == sorted(data.class_names)
    for source, label, code in zip(data.source_ids, data.labels, data.codes):
        assert data.class_names[label].split("-")[0] == EXPECTED[source][0]
        assert re.fullmatch(r"[A-Za-z0-9_]+-[A-Za-z0-9_]+-unspecified", code)
    i = list(data.source_ids).index("emri_small.dcm")  # multi-frame: the middle frame
    middle = read_dicom(_path("emri_small.dcm"))[5]
    np.testing.assert_array_equal(data.images[i], standardize_image(middle, 128))
    assert set(data.split) == {"train"}


def test_load_dicom_folder_skips_and_recurses(tmp_path):
    (tmp_path / "nested").mkdir()
    shutil.copy(_path("CT_small.dcm"), tmp_path / "ct.dcm")
    shutil.copy(_path("MR_small.dcm"), tmp_path / "nested" / "mr_without_suffix")  # found by DICM magic
    broken = tmp_path / "broken.dcm"
    broken.write_bytes(_path("CT_small.dcm").read_bytes()[:20000])
    (tmp_path / "readme.txt").write_text("not an image")
    with pytest.warns(UserWarning, match="skipped 1"):
        data = load_dicom_folder(tmp_path, size=32)
    assert sorted(data.source_ids) == ["ct.dcm", "nested/mr_without_suffix"]
    assert data.images.shape == (2, 32, 32)
    assert [p for p, _ in data.meta["skipped"]] == [str(broken)]
    with pytest.warns(UserWarning):
        flat = load_dicom_folder(tmp_path, recursive=False)
    assert list(flat.source_ids) == ["ct.dcm"] and flat.class_names == ("CT-UNKNOWN",)


def test_load_dicom_folder_empty_raises(tmp_path):
    (tmp_path / "readme.txt").write_text("no DICOM here")
    with pytest.raises(ValueError, match=re.escape(str(tmp_path))):
        load_dicom_folder(tmp_path)
