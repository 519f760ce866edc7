"""Lung masks from chest CT: the -400 HU threshold of paper 001 and its morphological clean-up.

Paper 001 masks the lung parenchyma before retrieval: voxels darker than an empirical
-400 HU are air or lung, everything brighter is soft tissue or bone (its Fig. 6). A raw
threshold also keeps the air around the patient, the table gaps and the trachea, so
:func:`threshold_lung_mask` cleans it up in a fixed order:

1. ``values < threshold`` (air and lung);
2. drop every air region touching the image border (the air outside the body);
3. keep the ``n_components`` largest remaining regions (the two lungs) of at least
   ``min_area`` pixels; smaller ones (bowel gas, the trachea at low levels) go;
4. a binary closing with a disk of ``closing_radius`` pixels, so that nodules and
   vessels touching the pleura are not cut out;
5. fill the holes (vessels, nodules and airway walls inside each lung).

The same function works on any grey scale where air is dark: pass a grey-level
threshold (for instance Otsu's, :func:`otsu_threshold`) instead of -400 for 8-bit
windowed images that carry no Hounsfield units.

:func:`load_ct_series` reads a folder of axial CT DICOM slices into a HU volume sorted
by z, and :func:`read_voc_boxes` the PASCAL-VOC box annotations of the Lung-PET-CT-Dx
collection; :func:`load_lung_pet_ct_dx_sample` joins both for the sample in
``$CBMIR_DATA_DIR/lung-pet-ct-dx-sample/``.

Reference: Qin et al. (paper 001), Section 4.1 and Fig. 6.
"""

from __future__ import annotations

import dataclasses
import os
import xml.etree.ElementTree as ET
from pathlib import Path

import cv2
import numpy as np
import pydicom
from scipy import ndimage
from skimage import filters, measure, morphology, segmentation

from cbmir_tf.data.dicom import is_dicom, read_hu

__all__ = ["LUNG_THRESHOLD_HU", "LUNG_WINDOW", "CTSeries", "apply_mask", "clean_lung_mask", "dice", "load_ct_series", "mask_images",
           "load_lung_pet_ct_dx_sample", "lung_mask_steps", "otsu_threshold", "read_voc_boxes", "segmentation_pairs",
           "threshold_lung_mask", "window_hu"]

LUNG_THRESHOLD_HU = -400.0  # paper 001, Section 4.1
LUNG_WINDOW = (-600.0, 1500.0)  # (level, width) of a usual lung window, in HU
SAMPLE_FOLDER = "lung-pet-ct-dx-sample"


def _check_slice(values, name: str = "values") -> np.ndarray:
    values = np.asarray(values)
    if values.ndim != 2 or min(values.shape) < 8:
        raise ValueError(f"{name} must be one 2-D slice (h, w) with sides of at least 8. "
                         f"Got shape {values.shape} instead.")
    if not np.issubdtype(values.dtype, np.number) or not np.isfinite(values).all():
        raise ValueError(f"{name} must hold finite numbers. Got dtype {values.dtype} instead.")
    return values


def clean_lung_mask(binary, *, n_components: int = 2, min_area: int | None = None, closing_radius: int = 2,
                    drop_border: bool = True) -> dict[str, np.ndarray]:
    """Steps 2-5 of the module docstring on a bool air mask ``(h, w)``; returns the stages as a dict.

    Also cleans a U-Net's thresholded output (``drop_border=False`` there, since the network
    already left out the air outside the body).

    Returns:
        ``{"inside_body", "largest", "mask"}``, bool arrays ``(h, w)``.
    """
    binary = _check_slice(np.asarray(binary, dtype=bool).astype(np.uint8), "binary").astype(bool)
    if int(n_components) < 1:
        raise ValueError(f"n_components must be at least 1. Received: n_components={n_components!r}")
    if int(closing_radius) < 0:
        raise ValueError(f"closing_radius must be >= 0. Received: closing_radius={closing_radius!r}")
    min_area = int(0.001 * binary.size) if min_area is None else int(min_area)
    inside = segmentation.clear_border(binary) if drop_border else binary
    labels = measure.label(inside, connectivity=1)
    areas = np.bincount(labels.ravel())[1:]
    order = np.argsort(areas)[::-1][: int(n_components)]
    largest = np.isin(labels, [i + 1 for i in order if areas[i] >= min_area])
    mask = largest
    if closing_radius:
        # pad so that the closing never glues a lung to the image border
        mask = ndimage.binary_closing(np.pad(mask, closing_radius), morphology.disk(int(closing_radius)))
        mask = mask[closing_radius:-closing_radius, closing_radius:-closing_radius]
    return {"inside_body": inside, "largest": largest, "mask": ndimage.binary_fill_holes(mask)}


def lung_mask_steps(values, threshold: float = LUNG_THRESHOLD_HU, **kwargs) -> dict[str, np.ndarray]:
    """The intermediate masks of :func:`threshold_lung_mask`, for figures.

    Args:
        values: One slice of shape ``(h, w)``: HU for CT, or grey levels with a matching `threshold`.
        threshold: Values strictly below it count as air or lung. Defaults to -400 (HU).
        **kwargs: ``n_components`` (regions kept, default 2: the lungs), ``min_area`` (smallest region
            kept in pixels, default 0.1 % of the slice) and ``closing_radius`` (pixels, default 2;
            0 skips the closing), as in :func:`clean_lung_mask`.

    Returns:
        A dict of bool ``(h, w)`` arrays, in order: ``"threshold"``, ``"inside_body"``
        (border-connected air removed), ``"largest"``, ``"mask"`` (closed and filled).
    """
    values = _check_slice(values)
    air = values < threshold
    return {"threshold": air, **clean_lung_mask(air, **kwargs)}


def threshold_lung_mask(values, threshold: float = LUNG_THRESHOLD_HU, **kwargs) -> np.ndarray:
    """Lung mask of one slice by thresholding and morphological clean-up (see the module docstring).

    Reference: Qin et al. (paper 001), Fig. 6 (threshold -400 HU).

    Args:
        values: One slice ``(h, w)``: HU for CT, or grey levels with a matching `threshold`.
        threshold: Defaults to -400 (HU).
        **kwargs: ``n_components``, ``min_area``, ``closing_radius`` of :func:`lung_mask_steps`.

    Returns:
        bool ndarray of shape ``(h, w)``; all False when the slice holds no lung.

    Example:
        >>> hu = np.full((64, 64), -1000.0); hu[8:56, 8:56] = 40.0; hu[16:48, 14:30] = -850.0
        >>> int(threshold_lung_mask(hu).sum())   # the outside air is dropped, the lung kept
        512
    """
    return lung_mask_steps(values, threshold, **kwargs)["mask"]


def otsu_threshold(image) -> float:
    """Otsu's grey-level threshold of one slice, for images without Hounsfield units."""
    return float(filters.threshold_otsu(_check_slice(image, "image")))


def window_hu(hu, level: float = LUNG_WINDOW[0], width: float = LUNG_WINDOW[1]) -> np.ndarray:
    """Map HU to display grey ``uint8``: ``[level - width / 2, level + width / 2]`` to 0..255.

    Args:
        hu: Array of any shape, in HU.
        level: Window centre. Defaults to -600 (lung window).
        width: Window width, > 0. Defaults to 1500.

    Returns:
        uint8 ndarray of the same shape.
    """
    if not width > 0:
        raise ValueError(f"width must be positive. Received: width={width!r}")
    scaled = (np.asarray(hu, dtype=np.float64) - (level - width / 2.0)) / width
    return np.rint(np.clip(scaled, 0.0, 1.0) * 255.0).astype(np.uint8)


def apply_mask(images, masks, fill: int = 0) -> np.ndarray:
    """Keep the pixels under ``masks`` and set the others to ``fill``; shapes must match."""
    images, masks = np.asarray(images), np.asarray(masks)
    if images.shape != masks.shape:
        raise ValueError(f"images and masks must have the same shape. Got {images.shape} and "
                         f"{masks.shape} instead.")
    return np.where(masks.astype(bool), images, np.asarray(fill, dtype=images.dtype))


def mask_images(images, masks, *, min_fraction: float = 0.02, dilate: int = 2) -> tuple[np.ndarray, np.ndarray]:
    """The retrieval inputs: each image times its (slightly dilated) lung mask.

    An image whose mask covers less than ``min_fraction`` of it (a failed or empty mask) is
    kept unmasked rather than blanked, and flagged.

    Args:
        images: uint8 ``(n, h, w)``.
        masks: bool ``(n, h, w)``.
        min_fraction: Smallest mask area, as a fraction of the image, that is applied. Defaults to 0.02.
        dilate: Radius in pixels of a dilation of the mask, keeping nodules at the pleura. Defaults to 2.

    Returns:
        ``(masked, applied)``: uint8 ``(n, h, w)`` and bool ``(n,)`` (False where the image was kept whole).
    """
    images, masks = np.asarray(images), np.asarray(masks, dtype=bool)
    if images.ndim != 3 or images.shape != masks.shape:
        raise ValueError(f"images and masks must have the same shape (n, h, w). Got {images.shape} and "
                         f"{masks.shape} instead.")
    applied = masks.mean(axis=(1, 2)) >= min_fraction
    if dilate:
        footprint = morphology.disk(int(dilate))
        masks = np.stack([ndimage.binary_dilation(m, footprint) for m in masks])
    masks = np.where(applied[:, None, None], masks, True)
    return apply_mask(images, masks), applied


def dice(a, b) -> np.ndarray:
    """Dice overlap ``2 |A & B| / (|A| + |B|)`` of bool masks ``(..., h, w)``; 1 when both are empty."""
    a, b = np.asarray(a, dtype=bool), np.asarray(b, dtype=bool)
    if a.shape != b.shape:
        raise ValueError(f"masks must have the same shape. Got {a.shape} and {b.shape} instead.")
    inter = (a & b).sum(axis=(-2, -1))
    total = a.sum(axis=(-2, -1)) + b.sum(axis=(-2, -1))
    return np.where(total > 0, 2.0 * inter / np.maximum(total, 1), 1.0)


def segmentation_pairs(hu_slices, size: int = 128, windows: int = 1, *, seed: int = 0,
                       levels: tuple[float, float] = (-700.0, 40.0), widths: tuple[float, float] = (350.0, 1600.0),
                       scales: tuple[float, float] = (0.6, 1.0), **mask_kwargs) -> tuple[np.ndarray, np.ndarray]:
    """(image, mask) pairs for a U-Net: windowed slices and their -400 HU threshold masks.

    The mask is computed once per slice at full resolution from the HU values. Each slice is
    then shown through ``windows`` display windows: the first is the lung window
    (:data:`LUNG_WINDOW`), the others have a level and a width drawn uniformly from `levels` and
    `widths`, and the patient shrunk by a factor drawn from `scales` and placed at a random spot
    of a frame of air (-1024 HU), so that the network also sees how 8-bit exports with other
    windows and framings look. Images and masks are area-resized to ``size`` (a mask pixel is
    lung when over half of it is).

    Args:
        hu_slices: ``(n, h, w)`` HU slices.
        size: Output side. Defaults to 128.
        windows: Renderings per slice, >= 1. Defaults to 1.
        seed: For the random windows. Defaults to 0.
        levels: Range of random window levels (HU). Defaults to (-700, 40).
        widths: Range of random window widths (HU). Defaults to (350, 1600).
        scales: Range of the random shrink factor. Defaults to (0.6, 1.0).
        **mask_kwargs: Passed to :func:`threshold_lung_mask`.

    Returns:
        ``(images, masks)``: uint8 ``(n * windows, size, size)`` and bool of the same shape, the
        ``windows`` renderings of slice ``i`` at rows ``i * windows ...``.
    """
    hu_slices = np.asarray(hu_slices)
    if hu_slices.ndim != 3:
        raise ValueError(f"hu_slices must have shape (n, h, w). Got shape {hu_slices.shape} instead.")
    if int(windows) < 1:
        raise ValueError(f"windows must be at least 1. Received: windows={windows!r}")
    rng = np.random.default_rng(seed)
    images, masks = [], []
    for hu in hu_slices:
        hu = np.asarray(hu, dtype=np.float32)
        mask = threshold_lung_mask(hu, **mask_kwargs).astype(np.float32)
        for w in range(int(windows)):
            level, width = LUNG_WINDOW if w == 0 else (rng.uniform(*levels), rng.uniform(*widths))
            side = size if w == 0 else max(8, int(round(size * rng.uniform(*scales))))
            top, left = rng.integers(0, size - side + 1, size=2)
            canvas_hu = np.full((size, size), -1024.0, np.float32)
            canvas_mask = np.zeros((size, size), np.float32)
            canvas_hu[top:top + side, left:left + side] = cv2.resize(hu, (side, side), interpolation=cv2.INTER_AREA)
            canvas_mask[top:top + side, left:left + side] = cv2.resize(mask, (side, side),
                                                                       interpolation=cv2.INTER_AREA)
            images.append(window_hu(canvas_hu, level, width))
            masks.append(canvas_mask > 0.5)
    return np.stack(images), np.stack(masks)


@dataclasses.dataclass(frozen=True, eq=False)
class CTSeries:
    """One axial CT series in Hounsfield units, slices sorted by z (feet to head order kept ascending).

    Attributes:
        hu: float32 array ``(n_slices, rows, columns)``.
        z: float array ``(n_slices,)``, ImagePositionPatient z in mm, ascending.
        pixel_spacing: ``(row_mm, column_mm)``.
        slice_thickness: mm (0028,0050)... (0018,0050) Slice Thickness, or the z step when absent.
        sop_uids: str array ``(n_slices,)``.
        paths: str array ``(n_slices,)``.
        boxes: list of dicts ``{"slice", "label", "xmin", "ymin", "xmax", "ymax"}`` (pixels).
    """

    hu: np.ndarray
    z: np.ndarray
    pixel_spacing: tuple[float, float]
    slice_thickness: float
    sop_uids: np.ndarray
    paths: np.ndarray
    boxes: list = dataclasses.field(default_factory=list)

    def __len__(self) -> int:
        return len(self.hu)


def load_ct_series(folder: str | os.PathLike) -> CTSeries:
    """Read every DICOM slice in ``folder`` (one series) into a HU volume sorted by z.

    Args:
        folder: A folder of single-frame axial CT DICOM files (``*.dcm`` or files with the DICM magic).

    Returns:
        A :class:`CTSeries` without boxes.

    Raises:
        FileNotFoundError: If the folder does not exist or holds no DICOM file.
        ValueError: If a file cannot be read, slices differ in size or spacing, or two slices share a z.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder}: no such folder of CT DICOM slices")
    paths = sorted(p for p in folder.iterdir() if p.is_file() and (p.suffix.lower() == ".dcm" or is_dicom(p)))
    if not paths:
        raise FileNotFoundError(f"{folder}: no DICOM files (*.dcm) found")
    rows = []
    for path in paths:
        try:
            ds = pydicom.dcmread(path, stop_before_pixels=True)
        except Exception as err:  # pydicom raises many types on broken headers
            raise ValueError(f"{path}: cannot parse DICOM header ({type(err).__name__}: {err})") from err
        position, spacing = ds.get("ImagePositionPatient"), ds.get("PixelSpacing")
        if position is None or spacing is None:
            raise ValueError(f"{path}: (0020,0032) Image Position (Patient) or (0028,0030) Pixel Spacing "
                             "is missing; cannot place the slice in a series")
        rows.append((float(position[2]), tuple(float(s) for s in spacing), float(ds.get("SliceThickness") or 0),
                     str(ds.SOPInstanceUID), path))
    rows.sort(key=lambda r: r[0])
    z = np.array([r[0] for r in rows])
    if len(np.unique(z)) != len(z):
        raise ValueError(f"{folder}: several slices share a z position; the folder holds more than one series")
    spacings = {r[1] for r in rows}
    if len(spacings) != 1:
        raise ValueError(f"{folder}: slices differ in (0028,0030) Pixel Spacing: {sorted(spacings)}")
    hu = []
    for r in rows:
        slice_hu = read_hu(r[4])
        if slice_hu.ndim != 2 or (hu and slice_hu.shape != hu[0].shape):
            raise ValueError(f"{r[4]}: expected one 2-D slice of shape {hu[0].shape if hu else '(rows, cols)'}, "
                             f"got shape {slice_hu.shape}")
        hu.append(slice_hu)
    thickness = rows[0][2] or (float(np.median(np.diff(z))) if len(z) > 1 else 0.0)
    return CTSeries(np.stack(hu), z, rows[0][1], thickness, np.array([r[3] for r in rows]),
                    np.array([str(r[4]) for r in rows]))


def read_voc_boxes(path: str | os.PathLike) -> list[dict]:
    """Boxes of one PASCAL-VOC XML file: ``[{"label", "xmin", "ymin", "xmax", "ymax"}, ...]`` in pixels.

    Raises:
        ValueError: If the file is not VOC XML or a box lacks a coordinate, naming the file.
    """
    path = Path(path)
    try:
        root = ET.parse(path).getroot()
    except (ET.ParseError, OSError) as err:
        raise ValueError(f"{path}: not a readable PASCAL-VOC XML file ({err})") from err
    if root.tag != "annotation":
        raise ValueError(f"{path}: expected a PASCAL-VOC <annotation> root. Got <{root.tag}> instead.")
    boxes = []
    for obj in root.iter("object"):
        box = obj.find("bndbox")
        try:
            coords = {k: int(float(box.findtext(k))) for k in ("xmin", "ymin", "xmax", "ymax")}
        except (AttributeError, TypeError, ValueError) as err:
            raise ValueError(f"{path}: an <object> has no complete <bndbox> xmin/ymin/xmax/ymax") from err
        boxes.append({"label": obj.findtext("name", "").strip(), **coords})
    return boxes


def load_lung_pet_ct_dx_sample(root: str | os.PathLike | None = None) -> CTSeries:
    """The real 64-slice chest CT series of ``lung-pet-ct-dx-sample`` with its tumour boxes.

    The series is TCIA Lung-PET-CT-Dx subject A0001 (5 mm slices, 0.84 mm pixels). Each box
    file ``annotations/A0001/<SOPInstanceUID>.xml`` is matched to its slice by the SOP UID in
    its name.

    Args:
        root: The data directory holding ``lung-pet-ct-dx-sample/``. Defaults to ``$CBMIR_DATA_DIR``.

    Returns:
        A :class:`CTSeries` whose ``boxes`` carry the slice index (into ``hu``).

    Raises:
        FileNotFoundError: If the folder is missing (naming ``CBMIR_DATA_DIR`` and the path).
        ValueError: If a box file names a SOP UID that is not in the series.
    """
    from cbmir_tf.data.registry import fetch_folder

    base = fetch_folder(SAMPLE_FOLDER, root)
    series_dirs = sorted({p.parent for p in base.glob("Lung_Dx-*/*/*/*.dcm")})
    series = load_ct_series(series_dirs[0])
    slice_of = {uid: i for i, uid in enumerate(series.sop_uids)}
    boxes = []
    for xml in sorted((base / "annotations").rglob("*.xml")):
        if xml.stem not in slice_of:
            raise ValueError(f"{xml}: SOP Instance UID {xml.stem} is not a slice of {series_dirs[0]}")
        boxes += [{"slice": slice_of[xml.stem], **box} for box in read_voc_boxes(xml)]
    return dataclasses.replace(series, boxes=sorted(boxes, key=lambda b: b["slice"]))
