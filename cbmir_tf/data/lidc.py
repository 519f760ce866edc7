"""LIDC-IDRI reading XML and LUNA16 volumes to 2-D nodule slices with paper 001's diameter classes.

* :func:`parse_lidc_xml` reads one LIDC-IDRI ``LidcReadMessage`` file: up to four
  ``readingSession``s, each with its ``unblindedReadNodule`` entries (characteristics and
  one ``roi`` outline of ``edgeMap`` points per slice) and ``nonNodule`` points.
* :func:`nodule_table` measures each reader's nodule: the outline area of every slice
  (shoelace formula, pixels), the largest one, its equivalent diameter
  ``2 sqrt(area / pi)`` in pixels and, given the pixel spacing, in mm. A nodule marked by a
  single point (the readers' convention for nodules under 3 mm) has no outline: its
  diameter is NaN and it falls into the 0-5 mm class.
* :func:`cluster_nodules` groups the marks of different readers into one lesion when their
  centroids lie within ``max_distance_mm`` (single linkage) and counts the readers per lesion
  (the per-reader agreement).
* :func:`diameter_class` gives the classes of paper 001's Table 2: 0 (no nodule), 0-5, 5-6,
  6-8, 8-13, 13-18, 18-23 and > 23 mm, intervals closed on the right.
* :func:`load_lidc_case` (a TCIA LIDC-IDRI series folder with its XML) and
  :func:`load_luna_slices` (LUNA16 ``.mhd``/``.raw`` with ``annotations.csv``) return the axial
  slice through each nodule's centre plus normal slices as an :class:`ImageDataset`.
  :func:`read_mhd` parses the MetaImage header itself (SimpleITK is not required).

Reference: Qin et al. (paper 001), Section 4.1, Tables 1 and 2; Armato et al., Med Phys 38:915 (2011).
"""

from __future__ import annotations

import dataclasses
import os
import xml.etree.ElementTree as ET
import zlib
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.cluster.hierarchy import fcluster, linkage

from cbmir_tf.data.dataset import ImageDataset
from cbmir_tf.data.lung import CTSeries, load_ct_series, window_hu
from cbmir_tf.data.preprocess import resize

__all__ = ["DIAMETER_EDGES", "TABLE2_CLASSES", "LidcReading", "Roi", "cluster_nodules", "diameter_class", "lesion_table",
           "load_lidc_case", "load_luna_slices", "nodule_table", "parse_lidc_xml", "polygon_area", "read_luna_annotations",
           "read_mhd", "slices_dataset", "write_mhd"]

DIAMETER_EDGES = (0.0, 5.0, 6.0, 8.0, 13.0, 18.0, 23.0)  # class c > 0 holds (edge[c-1], edge[c]]; 7: > 23
TABLE2_CLASSES = ("=0", "0-5", "5-6", "6-8", "8-13", "13-18", "18-23", ">23")
_MET_TYPES = {"MET_CHAR": "i1", "MET_UCHAR": "u1", "MET_SHORT": "i2", "MET_USHORT": "u2", "MET_INT": "i4",
              "MET_UINT": "u4", "MET_LONG": "i8", "MET_ULONG": "u8", "MET_FLOAT": "f4", "MET_DOUBLE": "f8"}
LUNA_COLUMNS = ("seriesuid", "coordX", "coordY", "coordZ", "diameter_mm")


@dataclasses.dataclass(frozen=True)
class Roi:
    """One outline: ``z`` (imageZposition, mm), SOP UID, inclusion flag and ``xy`` points ``(n, 2)``."""

    z: float
    sop_uid: str
    inclusion: bool
    xy: np.ndarray


@dataclasses.dataclass(frozen=True)
class LidcReading:
    """One parsed XML file: ``sessions`` is a list of dicts ``{"reader", "nodules", "non_nodules"}``.

    ``nodules`` holds dicts ``{"id", "characteristics", "rois"}``; ``non_nodules`` dicts
    ``{"id", "z", "sop_uid", "xy"}``.
    """

    path: str
    series_uid: str
    study_uid: str
    sessions: list


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _child(elem, name: str):
    return next((c for c in elem if _local(c.tag) == name), None)


def _children(elem, name: str):
    return [c for c in elem if _local(c.tag) == name]


def _text(elem, name: str, path: Path, default=None) -> str:
    node = _child(elem, name)
    if node is None or node.text is None:
        if default is not None:
            return default
        raise ValueError(f"{path}: <{_local(elem.tag)}> lacks <{name}>")
    return node.text.strip()


def _points(elem, tag: str, path: Path) -> np.ndarray:
    try:
        return np.array([[float(_text(e, "xCoord", path)), float(_text(e, "yCoord", path))]
                         for e in _children(elem, tag)]).reshape(-1, 2)
    except ValueError as err:
        raise ValueError(f"{path}: bad <{tag}> coordinates ({err})") from err


def parse_lidc_xml(path: str | os.PathLike) -> LidcReading:
    """Parse one LIDC-IDRI reading XML file (any ``xmlns``).

    Args:
        path: The ``.xml`` file.

    Returns:
        A :class:`LidcReading`; sessions in file order.

    Raises:
        FileNotFoundError: If the file does not exist.
        ValueError: If it is not well-formed ``LidcReadMessage`` XML or an element lacks a field,
            naming the file.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such LIDC XML file")
    try:
        root = ET.parse(path).getroot()
    except ET.ParseError as err:
        raise ValueError(f"{path}: not well-formed XML ({err})") from err
    if _local(root.tag) != "LidcReadMessage":
        raise ValueError(f"{path}: expected a <LidcReadMessage> root. Got <{_local(root.tag)}> instead.")
    header = _child(root, "ResponseHeader")
    series = _text(header, "SeriesInstanceUid", path, "") if header is not None else ""
    study = _text(header, "StudyInstanceUID", path, "") if header is not None else ""
    sessions = []
    for session in _children(root, "readingSession"):
        nodules = []
        for nodule in _children(session, "unblindedReadNodule"):
            chars = _child(nodule, "characteristics")
            rois = [Roi(float(_text(r, "imageZposition", path)), _text(r, "imageSOP_UID", path, ""),
                        _text(r, "inclusion", path, "TRUE").upper() == "TRUE", _points(r, "edgeMap", path))
                    for r in _children(nodule, "roi")]
            nodules.append({"id": _text(nodule, "noduleID", path),
                            "characteristics": {} if chars is None else
                            {_local(c.tag): int(c.text) for c in chars if (c.text or "").strip().isdigit()},
                            "rois": rois})
        non_nodules = [{"id": _text(n, "nonNoduleID", path), "z": float(_text(n, "imageZposition", path)),
                        "sop_uid": _text(n, "imageSOP_UID", path, ""), "xy": _points(n, "locus", path)}
                       for n in _children(session, "nonNodule")]
        sessions.append({"reader": _text(session, "servicingRadiologistID", path, "anonymous"),
                         "nodules": nodules, "non_nodules": non_nodules})
    return LidcReading(str(path), series, study, sessions)


def polygon_area(xy) -> float:
    """Area of a closed outline by the shoelace formula (pixels squared); 0 for fewer than 3 points."""
    xy = np.asarray(xy, dtype=float)
    if len(xy) < 3:
        return 0.0
    x, y = xy[:, 0], xy[:, 1]
    return float(0.5 * abs(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1))))


def diameter_class(diameter_mm) -> np.ndarray:
    """Table 2 class (0..7) of nodule diameters in mm; 0 mm is class 0 (normal), NaN (< 3 mm point) is 1."""
    d = np.atleast_1d(np.asarray(diameter_mm, dtype=float))
    if (d < 0).any():
        raise ValueError(f"diameters must be >= 0 mm. Got {d[d < 0][:5]} instead.")
    cls = np.searchsorted(np.asarray(DIAMETER_EDGES), d, side="left")  # (e[c-1], e[c]] -> c
    cls = np.where(d == 0, 0, np.minimum(cls, len(DIAMETER_EDGES)))
    return np.where(np.isnan(d), 1, cls).astype(np.int64)


def nodule_table(reading: LidcReading, pixel_spacing: float | None = None) -> pd.DataFrame:
    """One row per reader's nodule, with its size and centroid.

    Args:
        reading: A parsed XML file.
        pixel_spacing: In-plane pixel size in mm (from the series' (0028,0030) Pixel Spacing).
            `None` leaves the mm columns NaN. Defaults to `None`.

    Returns:
        Columns ``session, reader, nodule_id, n_rois, z_min, z_max, x, y, z`` (centroid: pixels,
        pixels, mm), ``max_area_px`` (largest slice: inclusion areas minus exclusion areas),
        ``z_max_area``, ``sop_max_area``, ``diameter_px``, ``diameter_mm``, ``point_only``,
        ``diameter_class`` (NaN mm when the spacing is unknown, except point marks: class 1) and
        ``malignancy``.
    """
    rows = []
    for s, session in enumerate(reading.sessions):
        for nodule in session["nodules"]:
            rois = nodule["rois"]
            if not rois:
                continue
            per_z: dict[float, float] = {}
            for roi in rois:
                per_z[roi.z] = per_z.get(roi.z, 0.0) + (1 if roi.inclusion else -1) * polygon_area(roi.xy)
            z_best = max(per_z, key=per_z.get)
            points = np.concatenate([r.xy for r in rois if r.inclusion] or [rois[0].xy])
            area = max(per_z[z_best], 0.0)
            point_only = all(len(r.xy) < 3 for r in rois)
            d_px = np.nan if point_only else 2.0 * np.sqrt(area / np.pi)
            d_mm = d_px * pixel_spacing if pixel_spacing else np.nan
            rows.append({"session": s, "reader": session["reader"], "nodule_id": nodule["id"],
                         "n_rois": len(rois), "z_min": min(per_z), "z_max": max(per_z),
                         "x": points[:, 0].mean(), "y": points[:, 1].mean(),
                         "z": float(np.mean([r.z for r in rois])), "max_area_px": area, "z_max_area": z_best,
                         "sop_max_area": next(r.sop_uid for r in rois if r.z == z_best),
                         "diameter_px": d_px, "diameter_mm": d_mm, "point_only": point_only,
                         "malignancy": nodule["characteristics"].get("malignancy", np.nan)})
    table = pd.DataFrame(rows)
    if len(table):
        known = table["point_only"] | table["diameter_mm"].notna()
        table["diameter_class"] = np.where(known, diameter_class(table["diameter_mm"]), -1)
    return table


def cluster_nodules(table: pd.DataFrame, pixel_spacing: float, max_distance_mm: float = 10.0) -> pd.DataFrame:
    """Group the readers' marks of one lesion: single linkage on centroids within ``max_distance_mm``.

    Args:
        table: From :func:`nodule_table`.
        pixel_spacing: In-plane pixel size in mm, to put x and y in mm beside z.
        max_distance_mm: Largest centroid distance joining two marks. Defaults to 10 mm.

    Returns:
        A copy of `table` with ``cluster`` (0-based lesion id) and ``n_readers`` (distinct
        sessions that marked the lesion, 1..4).
    """
    if not pixel_spacing or pixel_spacing <= 0:
        raise ValueError(f"pixel_spacing must be a positive number of mm. Received: pixel_spacing={pixel_spacing!r}")
    out = table.copy()
    if len(out) == 0:
        return out.assign(cluster=[], n_readers=[])
    xyz = np.column_stack([out["x"] * pixel_spacing, out["y"] * pixel_spacing, out["z"]])
    labels = (np.zeros(len(out), int) if len(out) == 1 else
              fcluster(linkage(xyz, "single"), t=float(max_distance_mm), criterion="distance") - 1)
    _, out["cluster"] = np.unique(labels, return_inverse=True)
    out["n_readers"] = out.groupby("cluster")["session"].transform("nunique")
    return out


def lesion_table(table: pd.DataFrame) -> pd.DataFrame:
    """One row per lesion of :func:`cluster_nodules`: readers, mean outlined diameter and Table 2 class.

    A lesion that every reader marked with a single point (under 3 mm) has a NaN diameter and class 1.
    """
    if "cluster" not in table.columns:
        raise ValueError("table has no 'cluster' column; run cluster_nodules(table, pixel_spacing) first")
    lesions = table.groupby("cluster").agg(n_readers=("session", "nunique"), n_marks=("session", "size"),
                                           x=("x", "mean"), y=("y", "mean"), z=("z_max_area", "median"),
                                           diameter_px=("diameter_px", "mean"), diameter_mm=("diameter_mm", "mean"),
                                           point_only=("point_only", "all"))
    lesions["diameter_class"] = diameter_class(lesions["diameter_mm"])
    return lesions


def slices_dataset(hu_slices, labels, source_ids, size: int = 128, name: str = "ct_slices",
                   window: tuple[float, float] = (-600.0, 1500.0), meta: dict | None = None) -> ImageDataset:
    """Lung-windowed, resized uint8 slices with Table 2 labels as an :class:`ImageDataset`."""
    images = np.stack([resize(window_hu(h, *window), size) for h in hu_slices])
    labels = np.asarray(labels, dtype=np.int64)
    codes = np.array([f"CT-chest-nodule_{TABLE2_CLASSES[c]}mm" if c else "CT-chest-normal" for c in labels])
    return ImageDataset(images, labels, TABLE2_CLASSES, np.full(len(labels), "train"), np.asarray(source_ids),
                        codes, name=name, meta=meta or {})


def _normal_indices(n_slices: int, busy: np.ndarray, n_normal: int, rng) -> np.ndarray:
    free = np.flatnonzero(~busy)
    return np.sort(rng.choice(free, min(n_normal, len(free)), replace=False)) if len(free) else free


def load_lidc_case(series_dir: str | os.PathLike, xml_path: str | os.PathLike | None = None, *,
                   min_readers: int = 1, n_normal: int = 5, margin_mm: float = 10.0, size: int = 128,
                   seed: int = 0) -> ImageDataset:
    """Nodule and normal slices of one LIDC-IDRI series in TCIA's layout (DICOM files plus its XML).

    The slice through each lesion is the one where its readers' outlines are largest (the
    median z of their largest slices); its class comes from the mean diameter of the readers
    who outlined it. Normal slices lie farther than ``margin_mm`` from every mark.

    Args:
        series_dir: Folder of the series' ``*.dcm`` files (TCIA keeps the XML in it too).
        xml_path: The reading XML; defaults to the single ``*.xml`` in `series_dir`.
        min_readers: Keep lesions marked by at least this many readers. Defaults to 1.
        n_normal: Normal slices drawn at random. Defaults to 5.
        margin_mm: Distance in z that a normal slice keeps from any mark. Defaults to 10.
        size: Output side in pixels. Defaults to 128.
        seed: For the normal slices. Defaults to 0.
    """
    series_dir = Path(series_dir)
    if xml_path is None:
        found = sorted(series_dir.glob("*.xml")) if series_dir.is_dir() else []
        if len(found) != 1:
            raise FileNotFoundError(f"{series_dir}: expected one LIDC reading *.xml, found {len(found)}; "
                                    "pass xml_path=")
        xml_path = found[0]
    series: CTSeries = load_ct_series(series_dir)
    reading = parse_lidc_xml(xml_path)
    spacing = float(series.pixel_spacing[0])
    table = nodule_table(reading, spacing)
    lesions = lesion_table(cluster_nodules(table, spacing)) if len(table) else pd.DataFrame()
    hu, labels, ids, diameters = [], [], [], []
    for lesion in (lesions[lesions["n_readers"] >= min_readers].itertuples() if len(lesions) else []):
        k = int(np.argmin(np.abs(series.z - lesion.z)))
        hu.append(series.hu[k]), diameters.append(lesion.diameter_mm), labels.append(int(lesion.diameter_class))
        ids.append(f"{reading.series_uid}:z={series.z[k]:.1f}")
    marked = np.array([z for s in reading.sessions for n in s["nodules"] for z in (r.z for r in n["rois"])])
    busy = (np.abs(series.z[:, None] - marked[None]) <= margin_mm).any(1) if len(marked) else np.zeros(len(series), bool)
    for k in _normal_indices(len(series), busy, n_normal, np.random.default_rng(seed)):
        hu.append(series.hu[k]), labels.append(0), diameters.append(0.0)
        ids.append(f"{reading.series_uid}:z={series.z[k]:.1f}")
    return slices_dataset(hu, labels, ids, size, name=f"lidc:{reading.series_uid}",
                          meta={"diameter_mm": diameters, "xml": str(xml_path)})


def read_mhd(path: str | os.PathLike) -> tuple[np.ndarray, dict]:
    """Read a MetaImage ``.mhd`` header and its ``.raw`` data (or a ``.mha`` with ``ElementDataFile = LOCAL``).

    Args:
        path: The ``.mhd``/``.mha`` file.

    Returns:
        ``(volume, header)``: the array ``(z, y, x)`` (``DimSize`` reversed) in its stored type, and a
        dict with ``spacing`` and ``offset`` as float arrays in ``(x, y, z)`` order plus the raw keys.

    Raises:
        FileNotFoundError: If the header or the data file is missing.
        ValueError: If a key is missing or malformed, the type unsupported, or the data too short.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such MetaImage header")
    raw = path.read_bytes()
    header, pos = {}, 0
    while pos < len(raw):
        end = raw.find(b"\n", pos)
        end = len(raw) if end < 0 else end
        line = raw[pos:end].decode("latin-1").strip()
        pos = end + 1
        if line:
            if "=" not in line:
                raise ValueError(f"{path}: bad header line {line[:60]!r}; expected 'Key = value'")
            key, value = (s.strip() for s in line.split("=", 1))
            header[key] = value
            if key == "ElementDataFile":
                break
    for key in ("DimSize", "ElementType", "ElementDataFile"):
        if key not in header:
            raise ValueError(f"{path}: MetaImage header lacks '{key}'")
    try:
        dims = [int(v) for v in header["DimSize"].split()]
        ndims = int(header.get("NDims", len(dims)))
        spacing = np.array([float(v) for v in header.get("ElementSpacing", "1 " * ndims).split()])
        offset = np.array([float(v) for v in (header.get("Offset") or header.get("Position")
                                              or header.get("Origin") or "0 " * ndims).split()])
    except ValueError as err:
        raise ValueError(f"{path}: malformed DimSize/ElementSpacing/Offset ({err})") from err
    if len(dims) != ndims or len(spacing) != ndims or len(offset) != ndims:
        raise ValueError(f"{path}: NDims {ndims} does not match DimSize {dims}, spacing {spacing}, offset {offset}")
    if header["ElementType"] not in _MET_TYPES:
        raise ValueError(f"{path}: ElementType {header['ElementType']!r} is not supported; use one of "
                         f"{sorted(_MET_TYPES)}")
    if int(header.get("ElementNumberOfChannels", 1)) != 1:
        raise ValueError(f"{path}: only single-channel images are supported")
    msb = header.get("ElementByteOrderMSB", header.get("BinaryDataByteOrderMSB", "False")).lower() == "true"
    dtype = np.dtype(_MET_TYPES[header["ElementType"]]).newbyteorder(">" if msb else "<")
    if header["ElementDataFile"] == "LOCAL":
        data, source = raw[pos:], path
    else:
        source = path.parent / header["ElementDataFile"]
        if not source.is_file():
            raise FileNotFoundError(f"{path}: its ElementDataFile {source} does not exist")
        data = source.read_bytes()
    if header.get("CompressedData", "False").lower() == "true":
        data = zlib.decompress(data)
    count = int(np.prod(dims))
    if len(data) < count * dtype.itemsize:
        raise ValueError(f"{source}: holds {len(data)} bytes, but DimSize {dims} of {header['ElementType']} "
                         f"needs {count * dtype.itemsize}; the file is truncated")
    volume = np.frombuffer(data, dtype, count).reshape(dims[::-1]).astype(dtype.newbyteorder("="))
    return volume, {**header, "spacing": spacing, "offset": offset}


def write_mhd(path: str | os.PathLike, volume, spacing, offset) -> Path:
    """Write ``volume`` ``(z, y, x)`` as ``path`` (``.mhd``) plus ``<stem>.raw``; spacing and offset in (x, y, z)."""
    path = Path(path)
    volume = np.ascontiguousarray(volume)
    types = {v: k for k, v in _MET_TYPES.items()}
    code = volume.dtype.newbyteorder("=").str[1:]
    if code not in types:
        raise ValueError(f"volume dtype {volume.dtype} has no MetaImage ElementType")
    raw = path.with_suffix(".raw")
    raw.write_bytes(volume.astype(volume.dtype.newbyteorder("<")).tobytes())
    lines = ["ObjectType = Image", f"NDims = {volume.ndim}", "BinaryData = True", "BinaryDataByteOrderMSB = False",
             "CompressedData = False", "TransformMatrix = 1 0 0 0 1 0 0 0 1",
             f"Offset = {' '.join(map(str, offset))}", f"ElementSpacing = {' '.join(map(str, spacing))}",
             f"DimSize = {' '.join(map(str, volume.shape[::-1]))}", f"ElementType = {types[code]}",
             f"ElementDataFile = {raw.name}"]
    path.write_text("\n".join(lines) + "\n")
    return path


def read_luna_annotations(path: str | os.PathLike) -> pd.DataFrame:
    """LUNA16 ``annotations.csv`` (``seriesuid, coordX, coordY, coordZ, diameter_mm``; world mm)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such LUNA16 annotations.csv")
    table = pd.read_csv(path)
    missing = [c for c in LUNA_COLUMNS if c not in table.columns]
    if missing:
        raise ValueError(f"{path}: columns {missing} are missing; expected {list(LUNA_COLUMNS)}. "
                         f"Got {list(table.columns)} instead.")
    return table


def load_luna_slices(mhd_paths, annotations: str | os.PathLike | pd.DataFrame, *, n_normal: int = 5,
                     margin_mm: float = 10.0, size: int = 128, seed: int = 0) -> ImageDataset:
    """Nodule and normal axial slices of LUNA16 scans (``<seriesuid>.mhd``) with Table 2 classes.

    The slice through each annotation is ``round((coordZ - offset_z) / spacing_z)`` (the LUNA
    TransformMatrix is the identity). Normal slices lie farther than ``margin_mm`` plus the radius
    from every annotation of their scan.

    Args:
        mhd_paths: Paths of ``.mhd`` files; the stem is the ``seriesuid``.
        annotations: ``annotations.csv`` path or its table.
        n_normal: Normal slices per scan. Defaults to 5.
        margin_mm: Defaults to 10.
        size: Output side. Defaults to 128.
        seed: For the normal slices. Defaults to 0.
    """
    table = annotations if isinstance(annotations, pd.DataFrame) else read_luna_annotations(annotations)
    rng = np.random.default_rng(seed)
    hu, labels, ids, diameters = [], [], [], []
    for path in map(Path, mhd_paths):
        volume, header = read_mhd(path)
        if volume.ndim != 3:
            raise ValueError(f"{path}: expected a 3-D CT volume. Got shape {volume.shape} instead.")
        z_mm = header["offset"][2] + header["spacing"][2] * np.arange(volume.shape[0])
        rows = table[table["seriesuid"] == path.stem]
        busy = np.zeros(len(z_mm), bool)
        for row in rows.itertuples():
            k = int(round((row.coordZ - header["offset"][2]) / header["spacing"][2]))
            if not 0 <= k < len(z_mm):
                raise ValueError(f"{path}: annotation z={row.coordZ} mm lies outside the scan "
                                 f"({z_mm.min():.1f} .. {z_mm.max():.1f} mm)")
            hu.append(volume[k]), diameters.append(float(row.diameter_mm))
            labels.append(int(diameter_class(row.diameter_mm)[0])), ids.append(f"{path.stem}:z={z_mm[k]:.1f}")
            busy |= np.abs(z_mm - row.coordZ) <= margin_mm + row.diameter_mm / 2
        for k in _normal_indices(len(z_mm), busy, n_normal, rng):
            hu.append(volume[k]), labels.append(0), diameters.append(0.0), ids.append(f"{path.stem}:z={z_mm[k]:.1f}")
    if not hu:
        raise ValueError("no slices: mhd_paths is empty")
    return slices_dataset([np.asarray(h, np.float32) for h in hu], labels, ids, size, name="luna16",
                          meta={"diameter_mm": diameters})
