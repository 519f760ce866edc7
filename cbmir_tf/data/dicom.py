"""DICOM files to grey ``uint8`` images (and to Hounsfield units), through ``pydicom.pixels``.

The display pipeline of :func:`read_dicom` is fixed and runs in this order:

1. decode the Pixel Data (``pydicom.pixels.pixel_array``; JPEG 2000 through
   pylibjpeg-openjpeg or Pillow, JPEG Lossless and JPEG-LS through pylibjpeg-libjpeg);
2. modality LUT: Rescale Slope/Intercept (Hounsfield units for CT) or a Modality
   LUT Sequence (``apply_modality_lut``);
3. VOI: an explicit ``window=(center, width)`` if given, else the file's VOI LUT
   Sequence or its first Window Center/Width (``apply_voi_lut``); the windowed
   range maps to 0..255. Without any VOI information each frame is min-max scaled;
4. MONOCHROME1 is inverted, so bone is bright in every image;
5. rounding to ``uint8``.

Enhanced multi-frame files keep rescale and window values in their shared or
per-frame functional groups; these are used per frame (per-frame wins).
PALETTE COLOR is expanded with ``apply_color_lut`` (16-bit palettes of big-endian files
byte-swapped first) and RGB/YBR is decoded to RGB, both then converted to grey with the
ITU-R 601-2 luma weights. NaN or infinite values after the modality LUT are refused.

A file without the 128-byte preamble and ``DICM`` magic (older equipment) is read with
``force=True`` when its suffix is ``.dcm``/``.dicom`` or it starts like a data set, and kept
only if it holds image elements; every error is one line, starting with the file's path.
"""

from __future__ import annotations

import os
import re
import warnings
from pathlib import Path
from typing import Literal

import numpy as np
import pydicom
from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError
from pydicom.pixels import apply_color_lut, apply_modality_lut, apply_voi_lut, pixel_array

from cbmir_tf.data.dataset import ImageDataset
from cbmir_tf.data.sniff import is_dicom, starts_like_dataset
from cbmir_tf.data.preprocess import check_finite, standardize_image, to_gray_uint8

__all__ = ["dicom_labels", "is_dicom", "load_dicom_folder", "read_dicom", "read_hu"]

Frame = int | Literal["middle"] | None
_PIXEL_KEYWORDS = ("PixelData", "FloatPixelData", "DoubleFloatPixelData")
_GREY = ("MONOCHROME1", "MONOCHROME2")
# Elements the LUT functions read; copied into a flat per-frame dataset.
_LUT_KEYWORDS = ("PhotometricInterpretation", "BitsStored", "PixelRepresentation", "RescaleSlope",
                 "RescaleIntercept", "ModalityLUTSequence", "WindowCenter", "WindowWidth",
                 "VOILUTFunction", "VOILUTSequence")
_TOKEN = re.compile(r"[^A-Za-z0-9_]+")
_LABEL_KEYS = ("Modality", "BodyPartExamined")


def _load(src: str | os.PathLike | Dataset, pixels: bool = True) -> tuple[Dataset, str]:
    """Return the dataset (without Pixel Data if not `pixels`) and a name for messages."""
    if isinstance(src, Dataset):
        return src, str(getattr(src, "filename", None) or "<pydicom Dataset>")
    path = Path(src)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such DICOM file")
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            ds = _read_forcing(path, pixels)
    except InvalidDicomError as err:
        raise ValueError(f"{path}: not a DICOM file ({_one_line(err)})") from None
    except Exception as err:  # pydicom raises many types on broken headers
        raise ValueError(f"{path}: cannot parse DICOM header ({type(err).__name__}: {_one_line(err)})") from None
    for item in caught:  # pydicom only warns when a file ends inside a sequence
        if "End of file reached" in str(item.message):
            raise ValueError(f"{path}: truncated DICOM file ({_one_line(item.message)})")
        warnings.warn_explicit(item.message, item.category, item.filename, item.lineno)
    return ds, str(path)


def _read_forcing(path: Path, pixels: bool) -> Dataset:
    """``dcmread``; a file without the 128-byte preamble and ``DICM`` (old equipment) is read with
    ``force=True`` when its suffix is ``.dcm``/``.dicom`` or it starts like a data set, and kept only
    if it holds image elements. Its transfer syntax, if not stated, is the encoding it was read with."""
    try:
        return pydicom.dcmread(path, stop_before_pixels=not pixels)
    except InvalidDicomError:
        with open(path, "rb") as handle:
            head = handle.read(132)
        if path.suffix.lower() not in (".dcm", ".dicom") and not starts_like_dataset(head):
            raise
    try:
        ds = pydicom.dcmread(path, stop_before_pixels=not pixels, force=True)
        looks_valid = any(k in ds for k in ("SOPClassUID", "Modality", "Rows")) and len(ds) > 2
    except Exception:  # noqa: BLE001 - forced parsing of a non-DICOM file fails in many ways
        looks_valid = False
    if not looks_valid:
        raise InvalidDicomError("no DICM magic at byte 128, and the content does not parse as a DICOM data set")
    if "TransferSyntaxUID" not in ds.file_meta:
        implicit, little = ds.original_encoding
        ds.file_meta.TransferSyntaxUID = (pydicom.uid.ImplicitVRLittleEndian if implicit else
                                          pydicom.uid.ExplicitVRLittleEndian if little else
                                          pydicom.uid.ExplicitVRBigEndian)
    return ds


def _one_line(text: object) -> str:
    """`text` with its whitespace (newlines included) collapsed: every message stays on one line."""
    return " ".join(str(text).split())


def _decode(ds: Dataset, name: str, frame: Frame) -> tuple[np.ndarray, bool, int]:
    """Decode to ``(frames, stacked, first)``: ``(k, h, w[, 3])`` values, whether all frames
    of a multi-frame file were read, and the frame index of ``frames[0]``."""
    if not any(k in ds for k in _PIXEL_KEYWORDS):
        raise ValueError(f"{name}: (7FE0,0010) Pixel Data missing; the file holds no image or is truncated")
    n_frames = int(ds.get("NumberOfFrames", 1) or 1)
    if frame == "middle":
        frame = n_frames // 2
    if frame is not None and not (isinstance(frame, int) and 0 <= frame < n_frames):
        raise ValueError(
            f"{name}: frame must be None, 'middle' or an index in [0, {n_frames}) "
            f"((0028,0008) Number of Frames is {n_frames}). Received: frame={frame!r}"
        )
    try:
        arr = pixel_array(ds, index=frame if n_frames > 1 else None)
    except Exception as err:  # decoders raise ValueError, RuntimeError, NotImplementedError, ...
        meta = getattr(ds, "file_meta", None)
        uid = meta.get("TransferSyntaxUID") if meta is not None else None
        syntax = f"(0002,0010) Transfer Syntax UID '{uid.name}'" if uid else "unknown transfer syntax"
        raise ValueError(
            f"{name}: cannot decode (7FE0,0010) Pixel Data with {syntax} ({type(err).__name__}: {_one_line(err)})"
        ) from err
    stacked = n_frames > 1 and frame is None
    return (arr if stacked else arr[None]), stacked, frame or 0


def _frame_attrs(ds: Dataset, index: int) -> Dataset:
    """A flat dataset with the LUT elements of frame `index` (functional groups applied)."""
    flat = Dataset()
    if hasattr(ds, "file_meta"):
        flat.file_meta = ds.file_meta  # endianness of OW LUT data
    for keyword in _LUT_KEYWORDS:
        if keyword in ds:
            flat[keyword] = ds[keyword]
    flat.PhotometricInterpretation = str(ds.get("PhotometricInterpretation", "MONOCHROME2")).upper()
    shared = ds.get("SharedFunctionalGroupsSequence") or []
    per_frame = ds.get("PerFrameFunctionalGroupsSequence") or []
    groups = list(shared[:1]) + ([per_frame[index]] if index < len(per_frame) else [])
    for group in groups:
        for seq in ("PixelValueTransformationSequence", "FrameVOILUTSequence"):
            if group.get(seq):
                for elem in group[seq][0]:
                    flat[elem.tag] = elem
    return flat


def _grey_frame(values: np.ndarray, attrs: Dataset, window: tuple[float, float] | None,
                name: str = "<pydicom Dataset>") -> np.ndarray:
    """Modality LUT, VOI, MONOCHROME1 inversion and uint8 mapping of one ``(h, w)`` frame."""
    values = apply_modality_lut(values, attrs)
    _check_rescaled(values, attrs, name)
    if window is not None:
        for keyword in ("VOILUTSequence", "VOILUTFunction"):
            if keyword in attrs:
                del attrs[keyword]
        attrs.WindowCenter, attrs.WindowWidth = float(window[0]), float(window[1])
    has_window = "WindowCenter" in attrs and "WindowWidth" in attrs
    if attrs.get("VOILUTSequence") or has_window:
        out = apply_voi_lut(values, attrs).astype(np.float64)
        if attrs.get("VOILUTSequence") or not has_window:
            lo, hi = out.min(), out.max()  # LUT output: scale its actual range
        else:  # windowing clips to a fixed range; find it from two extreme inputs
            lo, hi = apply_voi_lut(np.array([-1e30, 1e30]), attrs)
    else:
        out = values.astype(np.float64)
        lo, hi = out.min(), out.max()
    scaled = np.clip((out - lo) / (hi - lo), 0.0, 1.0) if hi > lo else np.zeros(out.shape)
    if attrs.PhotometricInterpretation == "MONOCHROME1":
        scaled = 1.0 - scaled
    return np.rint(scaled * 255.0).astype(np.uint8)


def _check_rescaled(values: np.ndarray, attrs: Dataset, name: str) -> None:
    """Refuse NaN/inf values after the modality LUT (e.g. Rescale Slope ``NaN``): the frame would be black."""
    try:
        check_finite(values, name)
    except ValueError as err:
        rescale = ", ".join(f"{k} {attrs.get(k)}" for k in ("RescaleSlope", "RescaleIntercept") if k in attrs)
        raise ValueError(f"{err}{f' after rescaling ({rescale})' if rescale else ''}") from None


def _palette_rgb(frame: np.ndarray, ds: Dataset) -> np.ndarray:
    """PALETTE COLOR to RGB. pydicom reads non-segmented 16-bit LUT data in the machine's byte
    order, so a big-endian file's palettes are byte-swapped first (else the image is nearly black)."""
    little = ds.original_encoding[1]
    if little is None and hasattr(ds, "file_meta") and "TransferSyntaxUID" in ds.file_meta:
        little = ds.file_meta.TransferSyntaxUID.is_little_endian
    if little is not False or "RedPaletteColorLookupTableData" not in ds:
        return apply_color_lut(frame, ds)
    flat = Dataset()
    for elem in ds.group_dataset(0x0028):
        flat.add(elem)
    for colour in ("Red", "Green", "Blue", "Alpha"):
        keyword = f"{colour}PaletteColorLookupTableData"
        if keyword in ds:
            entries = ds[f"{colour}PaletteColorLookupTableDescriptor"].value[0] or 65536
            data = bytes(ds[keyword].value)
            if len(data) == 2 * entries:  # 16-bit entries: to the native (little-endian) order
                data = np.frombuffer(data, ">u2").astype("<u2").tobytes()
            setattr(flat, keyword, data)
    return apply_color_lut(frame, flat)


def read_dicom(
    src: str | os.PathLike | Dataset, *, frame: Frame = None, window: tuple[float, float] | None = None
) -> np.ndarray:
    """Read a DICOM image as display-ready grey ``uint8`` (see the module docstring for the order).

    Args:
        src: A path or a ``pydicom.Dataset``.
        frame: ``None`` reads every frame, an int reads that frame (0-based) and
            ``"middle"`` reads frame ``n_frames // 2``. Defaults to `None`.
        window: ``(center, width)`` in modality units (HU for CT), overriding the
            file's VOI LUT and Window Center/Width. Defaults to `None`.

    Returns:
        uint8 array of shape ``(h, w)`` for a single-frame file or when `frame` is
        given, and ``(n_frames, h, w)`` for a multi-frame file with ``frame=None``.

    Raises:
        FileNotFoundError: If the path does not exist.
        ValueError: If the file is not DICOM, has no Pixel Data, cannot be decoded
            (truncated, unsupported transfer syntax), `frame` is out of range, or
            `window` is given for a colour image.
    """
    ds, name = _load(src)
    frames, stacked, first = _decode(ds, name, frame)
    photometric = str(ds.get("PhotometricInterpretation", "MONOCHROME2")).upper()
    if window is not None and photometric not in _GREY:
        raise ValueError(f"{name}: (0028,0004) Photometric Interpretation '{photometric}' cannot be windowed")
    if photometric in _GREY:
        out = [_grey_frame(f, _frame_attrs(ds, first + i), window, name) for i, f in enumerate(frames)]
    elif photometric == "PALETTE COLOR":
        out = [to_gray_uint8(_palette_rgb(f, ds)) for f in frames]
    elif frames.ndim == 4 and frames.shape[-1] == 3:  # RGB, or YBR decoded to RGB by pydicom
        out = [to_gray_uint8(f) for f in frames]
    else:
        raise ValueError(
            f"{name}: (0028,0004) Photometric Interpretation '{photometric}' with pixel shape "
            f"{frames.shape[1:]} is not supported"
        )
    out = np.stack(out)
    return out if stacked else out[0]


def read_hu(src: str | os.PathLike | Dataset, *, frame: Frame = None) -> np.ndarray:
    """Read rescaled values (Hounsfield units for CT) without any windowing.

    Args:
        src: A path or a ``pydicom.Dataset`` with a MONOCHROME1/2 image.
        frame: As in :func:`read_dicom`. Defaults to `None`.

    Returns:
        float32 array of shape ``(h, w)``, or ``(n_frames, h, w)`` for a
        multi-frame file with ``frame=None``.
    """
    ds, name = _load(src)
    photometric = str(ds.get("PhotometricInterpretation", "")).upper()
    if photometric not in _GREY:
        raise ValueError(f"{name}: (0028,0004) Photometric Interpretation '{photometric}' has no HU values")
    frames, stacked, first = _decode(ds, name, frame)
    out = np.stack([apply_modality_lut(f, _frame_attrs(ds, first + i)) for i, f in enumerate(frames)])
    _check_rescaled(out, _frame_attrs(ds, first), name)
    out = out.astype(np.float32)
    return out if stacked else out[0]


def dicom_labels(ds: Dataset | str | os.PathLike) -> dict[str, str]:
    """The two tags paper 002 labelled its images by, upper-case.

    Args:
        ds: A ``pydicom.Dataset`` or a path (read without its pixels).

    Returns:
        ``{"Modality": "CT", "BodyPartExamined": "WHOLE_BODY"}``; characters outside
        ``[A-Za-z0-9_]`` become ``_`` and an absent or empty tag gives ``"UNKNOWN"``.

    Raises:
        ValueError: If a path is not a DICOM file.
    """
    ds, _ = _load(ds, pixels=False)
    tokens = {key: _TOKEN.sub("_", str(ds.get(key) or "").strip()).strip("_").upper() for key in _LABEL_KEYS}
    return {key: token or "UNKNOWN" for key, token in tokens.items()}


def load_dicom_folder(root: str | os.PathLike, size: int = 128, recursive: bool = True) -> ImageDataset:
    """Load every DICOM image under a folder as one labelled dataset.

    Files ending in ``.dcm``/``.dicom`` or with the ``DICM`` magic count. Each gives one
    image, ``read_dicom(path, frame="middle")`` (the only frame, or frame
    ``n_frames // 2``), standardised with ``standardize_image(image, size)``.

    Args:
        root: The folder.
        size: Side of the square output images. Defaults to 128.
        recursive: Also search sub-folders. Defaults to `True`.

    Returns:
        An :class:`ImageDataset` with images ``(n, size, size)`` uint8, class names
        ``"MODALITY-BODYPART"`` (sorted), codes ``"MODALITY-bodypart-unspecified"``,
        split all ``"train"`` and source ids the paths relative to `root`.
        ``meta["skipped"]`` lists ``(path, reason)`` for unreadable files.

    Raises:
        FileNotFoundError: If `root` is not a folder.
        ValueError: If no file could be read.
    """
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: no such folder of DICOM files")
    paths = sorted(p for p in (root.rglob("*") if recursive else root.glob("*")) if p.is_file())
    paths = [p for p in paths if p.suffix.lower() in (".dcm", ".dicom") or is_dicom(p)]
    images, names, sources, skipped = [], [], [], []
    for path in paths:
        try:
            ds, _ = _load(path)
            image = standardize_image(read_dicom(ds, frame="middle"), size)
        except ValueError as err:
            skipped.append((str(path), str(err)))
            continue
        labels = dicom_labels(ds)
        images.append(image)
        names.append((labels["Modality"], labels["BodyPartExamined"]))
        sources.append(path.relative_to(root).as_posix())
    if skipped:
        warnings.warn(f"{root}: skipped {len(skipped)} unreadable DICOM file(s); see meta['skipped']",
                      stacklevel=2)
    if not images:
        raise ValueError(f"{root}: no readable DICOM files found ({len(skipped)} skipped: {skipped[:3]})")
    class_names = sorted({f"{m}-{b}" for m, b in names})
    return ImageDataset(
        images=np.stack(images),
        labels=np.array([class_names.index(f"{m}-{b}") for m, b in names]),
        class_names=tuple(class_names),
        split=np.full(len(images), "train"),
        source_ids=np.array(sources),
        codes=np.array([f"{m}-{b.lower()}-unspecified" for m, b in names]),
        name=f"dicom:{root.name}",
        meta={"root": str(root), "frame": "middle", "skipped": skipped},
    )
