"""Hounsfield units and the -400 HU lung mask on the real Lung-PET-CT-Dx chest CT series."""

from __future__ import annotations

import shutil
from xml.etree import ElementTree

import numpy as np
import pydicom
import pytest
from scipy import ndimage
from skimage import measure

from cbmir_tf.data.lung import (LUNG_THRESHOLD_HU, apply_mask, dice, load_ct_series, lung_mask_steps,
                                mask_images, read_voc_boxes, segmentation_pairs, threshold_lung_mask,
                                window_hu)
from cbmir_tf.data.registry import fetch_folder


@pytest.fixture(scope="module")
def series(lung_series):
    return lung_series


@pytest.fixture(scope="module")
def index_rows():
    """The boxes listed without the loader: each VOC file parsed with ElementTree, the z of its slice
    read from the DICOM header whose SOP Instance UID names the file."""
    base = fetch_folder("lung-pet-ct-dx-sample")
    z_of = {}
    for path in base.glob("Lung_Dx-*/*/*/*.dcm"):
        ds = pydicom.dcmread(path, stop_before_pixels=True)
        z_of[str(ds.SOPInstanceUID)] = float(ds.ImagePositionPatient[2])
    assert len(z_of) == 64
    return [{"z_mm": z_of[xml.stem], **{k: int(box.find(k).text) for k in ("xmin", "ymin", "xmax", "ymax")}}
            for xml in sorted((base / "annotations").rglob("*.xml"))
            for box in ElementTree.parse(xml).getroot().iter("bndbox")]


def test_series_is_hu_sorted_by_z_with_its_boxes(series, index_rows):
    assert series.hu.shape == (64, 512, 512) and series.hu.dtype == np.float32
    assert np.all(np.diff(series.z) == 5.0) and series.z[0] == -439.0 and series.z[-1] == -124.0
    assert series.pixel_spacing == pytest.approx((0.841796875, 0.841796875))
    # HU by hand from pydicom's raw stored values: value * slope + intercept (1 and -1024 here)
    path = series.paths[30]
    ds = pydicom.dcmread(path)
    by_hand = ds.pixel_array.astype(np.float64) * float(ds.RescaleSlope) + float(ds.RescaleIntercept)
    np.testing.assert_array_equal(series.hu[30], by_hand)
    assert series.hu.min() == -1024.0
    # the boxes match an independent listing by z and coordinates
    got = sorted((float(series.z[b["slice"]]), b["xmin"], b["ymin"], b["xmax"], b["ymax"]) for b in series.boxes)
    want = sorted((float(r["z_mm"]), int(r["xmin"]), int(r["ymin"]), int(r["xmax"]), int(r["ymax"]))
                  for r in index_rows)
    assert got == want and len(got) == 11


def test_threshold_mask_keeps_the_lungs_inside_the_body(series):
    k = max(series.boxes, key=lambda b: b["xmax"] - b["xmin"])["slice"]
    hu = series.hu[k]
    steps = lung_mask_steps(hu)
    mask = steps["mask"]
    assert 0.05 < mask.mean() < 0.35  # two lungs of an adult on a 512 x 512 chest slice
    # the outside air (e.g. the image corners, which are < -400 HU) is excluded
    assert steps["threshold"][0, 0] and not mask[0, 0] and not mask[-1, -1] and not mask[0].any()
    # every mask pixel lies inside the body: the filled largest region of tissue >= -400 HU
    tissue = measure.label(hu >= LUNG_THRESHOLD_HU)
    body = ndimage.binary_fill_holes(tissue == np.argmax(np.bincount(tissue.ravel())[1:]) + 1)
    assert mask[~body].sum() == 0
    assert np.median(hu[mask]) < -700  # mostly air-filled parenchyma
    assert measure.label(mask).max() <= 2


def test_no_lung_below_the_diaphragm_and_area_follows_the_chest(series):
    fractions = np.array([threshold_lung_mask(h).mean() for h in series.hu[::7]])
    assert fractions[0] < 0.01  # lowest slice: abdomen
    assert fractions.max() > 0.12 and np.argmax(fractions) not in (0, len(fractions) - 1)


def test_segmentation_pairs_and_masking(series):
    images, masks = segmentation_pairs(series.hu[30:32], 64, windows=2, seed=0)
    assert images.shape == masks.shape == (4, 64, 64) and images.dtype == np.uint8 and masks.dtype == bool
    full = threshold_lung_mask(series.hu[30])
    assert abs(masks[0].mean() - full.mean()) < 0.02  # lung-window rendering keeps the whole frame
    assert masks[1].mean() <= masks[0].mean() + 0.02  # the shrunk rendering has no more lung
    assert window_hu(np.array([-1350.0, -600.0, 150.0])).tolist() == [0, 128, 255]
    masked, applied = mask_images(images, masks)
    assert applied.all() and (masked[~ndimage.binary_dilation(masks, np.ones((1, 5, 5)))] == 0).all()
    assert dice(masks, masks).tolist() == [1.0] * 4 and dice(masks[:1], ~masks[:1])[0] == 0.0


def test_bad_input_names_the_file_or_value(tmp_path, series):
    with pytest.raises(ValueError, match=r"Got shape \(2, 512, 512\)"):
        threshold_lung_mask(series.hu[:2])
    with pytest.raises(FileNotFoundError, match="no DICOM files"):
        load_ct_series(tmp_path)
    bad = tmp_path / "not_voc.xml"
    shutil.copy(series.paths[0], bad)
    with pytest.raises(ValueError, match="not_voc.xml"):
        read_voc_boxes(bad)
    folder = tmp_path / "series"
    folder.mkdir()
    shutil.copy(series.paths[0], folder / "a.dcm")
    (folder / "b.dcm").write_bytes(open(series.paths[1], "rb").read()[:2000])
    with pytest.raises(ValueError, match="b.dcm"):
        load_ct_series(folder)
    with pytest.raises(ValueError, match="same shape"):
        apply_mask(np.zeros((4, 4)), np.zeros((4, 5), bool))
