"""LIDC-IDRI reading XML on the three real files, Table 2 classes, and the LUNA16 MetaImage reader on real CT."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest

from cbmir_tf.data.lidc import (cluster_nodules, diameter_class, lesion_table, load_luna_slices, nodule_table,
                                parse_lidc_xml, polygon_area, read_luna_annotations, read_mhd, write_mhd)
from cbmir_tf.data.lung import window_hu
from cbmir_tf.data.preprocess import resize
from cbmir_tf.data.registry import fetch_folder

FILES = ("157_158.xml", "157_160.xml", "157_162.xml")


@pytest.fixture(scope="module")
def xml_dir(lidc_dir):
    return lidc_dir


@pytest.mark.parametrize("name", FILES)
def test_parser_counts_match_a_plain_text_count(xml_dir, name):
    text = (xml_dir / name).read_text()
    reading = parse_lidc_xml(xml_dir / name)
    assert len(reading.sessions) == len(re.findall(r"<readingSession>", text))
    assert sum(len(s["nodules"]) for s in reading.sessions) == len(re.findall(r"<unblindedReadNodule>", text))
    assert sum(len(s["non_nodules"]) for s in reading.sessions) == len(re.findall(r"<nonNodule>", text))
    rois = [r for s in reading.sessions for n in s["nodules"] for r in n["rois"]]
    assert len(rois) == len(re.findall(r"<roi>", text))
    assert sum(len(r.xy) for r in rois) == len(re.findall(r"<edgeMap>", text))
    assert reading.series_uid == re.search(r"<SeriesInstanceUid>([^<]+)", text).group(1)


def test_outline_area_and_diameter_by_hand(xml_dir):
    reading = parse_lidc_xml(xml_dir / "157_160.xml")
    first = reading.sessions[0]["nodules"][0]["rois"][0]
    assert first.z == 1605.0 and first.inclusion and len(first.xy) == 13
    assert polygon_area(first.xy) == 13.0  # shoelace sum of this 13-point outline, worked out by hand
    assert polygon_area([[0, 0], [10, 0], [10, 10], [0, 10]]) == 100.0
    table = nodule_table(reading, pixel_spacing=0.5)
    row = table.iloc[0]
    assert row["diameter_mm"] == pytest.approx(2 * np.sqrt(row["max_area_px"] / np.pi) * 0.5)
    assert table.loc[table.point_only, "diameter_class"].eq(1).all()  # < 3 mm point marks


def test_four_readers_agree_on_the_large_nodule_of_157_160(xml_dir):
    table = cluster_nodules(nodule_table(parse_lidc_xml(xml_dir / "157_160.xml"), 0.7), 0.7)
    lesions = lesion_table(table)
    largest = lesions.dropna(subset=["diameter_px"]).sort_values("diameter_px").iloc[-1]
    assert largest["n_readers"] == 4 and largest["n_marks"] == 4  # one outline by each of the 4 sessions
    assert lesions["n_readers"].between(1, 4).all() and lesions["n_marks"].sum() == len(table)


def test_table2_classes():
    d = [0, 0.5, 5, 5.01, 6, 7.9, 8, 12, 13, 17, 18, 20, 23, 23.5, 60, np.nan]
    assert diameter_class(d).tolist() == [0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7, 1]
    with pytest.raises(ValueError, match="Got"):
        diameter_class([-1.0])


def test_bad_xml_names_the_file(tmp_path, xml_dir):
    truncated = tmp_path / "cut.xml"
    truncated.write_bytes((xml_dir / "157_160.xml").read_bytes()[:3000])
    with pytest.raises(ValueError, match="cut.xml"):
        parse_lidc_xml(truncated)
    voc = next((fetch_folder("lung-pet-ct-dx-sample") / "annotations").rglob("*.xml"))  # a VOC box file
    with pytest.raises(ValueError, match="LidcReadMessage"):
        parse_lidc_xml(voc)
    with pytest.raises(FileNotFoundError, match="missing.xml"):
        parse_lidc_xml(tmp_path / "missing.xml")


@pytest.fixture(scope="module")
def series(lung_series):
    return lung_series


def test_read_mhd_on_a_hand_written_header(tmp_path, series):
    volume = series.hu[20:23, ::8, ::4].astype(">i2")  # real HU, big-endian, 3 x 64 x 128
    volume.tofile(tmp_path / "scan.raw")
    (tmp_path / "scan.mhd").write_text(
        "ObjectType = Image\nNDims = 3\nBinaryData = True\nBinaryDataByteOrderMSB = True\n"
        "Offset = -200.5 -150 -400\nElementSpacing = 3.37 1.68 5\nDimSize = 128 64 3\n"
        "ElementType = MET_SHORT\nElementDataFile = scan.raw\n")
    got, header = read_mhd(tmp_path / "scan.mhd")
    assert got.shape == (3, 64, 128) and got.dtype == np.int16
    np.testing.assert_array_equal(got, series.hu[20:23, ::8, ::4])
    assert header["spacing"].tolist() == [3.37, 1.68, 5.0] and header["offset"].tolist() == [-200.5, -150.0, -400.0]


def test_luna_slices_from_a_real_series_with_its_real_tumour_box(tmp_path, series):
    x0, y0 = -228.036842, -93.0631599  # ImagePositionPatient of the series
    sx = series.pixel_spacing[1]
    write_mhd(tmp_path / "A0001.mhd", series.hu.astype(np.int16), (sx, sx, 5.0), (x0, y0, series.z[0]))
    box = max(series.boxes, key=lambda b: b["xmax"] - b["xmin"])
    diameter = (box["xmax"] - box["xmin"]) * sx
    pd.DataFrame({"seriesuid": ["A0001"], "coordX": [x0 + sx * (box["xmin"] + box["xmax"]) / 2],
                  "coordY": [y0 + sx * (box["ymin"] + box["ymax"]) / 2], "coordZ": [series.z[box["slice"]]],
                  "diameter_mm": [diameter]}).to_csv(tmp_path / "annotations.csv", index=False)
    annotations = read_luna_annotations(tmp_path / "annotations.csv")
    slices = load_luna_slices([tmp_path / "A0001.mhd"], annotations, n_normal=4, size=64, seed=0)
    assert diameter > 23 and slices.labels.tolist() == [7, 0, 0, 0, 0]
    np.testing.assert_array_equal(slices.images[0], resize(window_hu(series.hu[box["slice"]]), 64))
    normal_z = np.array([float(s.split("z=")[1]) for s in slices.source_ids[1:]])
    assert (np.abs(normal_z - series.z[box["slice"]]) > 10 + diameter / 2).all()
    (tmp_path / "A0001.raw").write_bytes((tmp_path / "A0001.raw").read_bytes()[:1000])
    with pytest.raises(ValueError, match="A0001.raw"):
        read_mhd(tmp_path / "A0001.mhd")
    (tmp_path / "bad.csv").write_text("seriesuid,x,y\n")
    with pytest.raises(ValueError, match="bad.csv"):
        read_luna_annotations(tmp_path / "bad.csv")
