"""Pixel preprocessing shared by every method.

The functions take and return numpy arrays; a batch is ``(n, h, w)`` uint8.
The order used by the benchmark conversion is: convert to grey, centre-pad to a
square with black, then area-resize (anti-aliased) to the target size.
"""

from __future__ import annotations

import cv2
import numpy as np


def to_gray_uint8(image: np.ndarray) -> np.ndarray:
    """Convert a 2-D grey, RGB(A) or float image to 2-D ``uint8``.

    RGB uses the ITU-R 601-2 luma weights (as Pillow's ``convert("L")``); RGBA is
    composited on black first. Float and 16-bit images are min-max scaled.

    Raises:
        ValueError: For another shape, or ``"N NaN/inf pixel values"`` for a float image
            with non-finite values.
    """
    image = np.asarray(image)
    if image.ndim == 3 and image.shape[-1] in (3, 4):
        scale = 255.0 / np.iinfo(image.dtype).max if image.dtype.kind == "u" else 1.0
        rgb = image[..., :3].astype(np.float64) * scale
        if image.shape[-1] == 4:  # composite on black
            rgb *= image[..., 3:4].astype(np.float64) * scale / 255.0
        gray = rgb @ np.array([0.299, 0.587, 0.114])
        return np.clip(np.rint(gray), 0, 255).astype(np.uint8) if image.dtype.kind == "u" else rescale_to_uint8(gray)
    if image.ndim != 2:
        raise ValueError(f"Expected a 2-D grey or (h, w, 3|4) colour image; got shape {image.shape}")
    if image.dtype == np.uint8:
        return image
    return rescale_to_uint8(image)


def rescale_to_uint8(image: np.ndarray) -> np.ndarray:
    """Min-max scale any numeric 2-D array to ``uint8`` (a constant image becomes 0).

    Raises:
        ValueError: ``"N NaN/inf pixel values"`` if any value is not finite (min-max scaling
            would make the whole image black).
    """
    image = np.asarray(image, dtype=np.float64)
    check_finite(image)
    lo, hi = float(np.min(image)), float(np.max(image))
    if hi <= lo:
        return np.zeros(image.shape, dtype=np.uint8)
    return np.rint((image - lo) * (255.0 / (hi - lo))).astype(np.uint8)


def check_finite(values: np.ndarray, name: str | None = None) -> None:
    """Raise ``ValueError("[<name>: ]N NaN/inf pixel values")`` if `values` holds any non-finite number."""
    values = np.asarray(values)
    if values.dtype.kind not in "fc":
        return
    bad = int(values.size - np.count_nonzero(np.isfinite(values)))
    if bad:
        raise ValueError(f"{name + ': ' if name else ''}{bad:,} NaN/inf pixel values")


def pad_to_square(image: np.ndarray, fill: int = 0) -> np.ndarray:
    """Centre-pad a 2-D image with ``fill`` to a square, keeping its aspect ratio."""
    h, w = image.shape[:2]
    side = max(h, w)
    top, left = (side - h) // 2, (side - w) // 2
    return cv2.copyMakeBorder(
        image, top, side - h - top, left, side - w - left, cv2.BORDER_CONSTANT, value=fill
    )


def resize(image: np.ndarray, size: int | tuple[int, int]) -> np.ndarray:
    """Anti-aliased resize of one 2-D image to ``size`` (an int for a square, or ``(h, w)``).

    Shrinking uses area averaging (``cv2.INTER_AREA``); enlarging uses bicubic
    interpolation. The dtype is kept.
    """
    h, w = (size, size) if isinstance(size, int) else size
    if image.shape[:2] == (h, w):
        return image
    shrink = h <= image.shape[0] and w <= image.shape[1]
    return cv2.resize(image, (w, h), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_CUBIC)


def resize_batch(images: np.ndarray, size: int | tuple[int, int]) -> np.ndarray:
    """Resize every image of a ``(n, h, w)`` batch; returns ``(n, size_h, size_w)``."""
    h, w = (size, size) if isinstance(size, int) else size
    if images.shape[1:3] == (h, w):
        return images
    out = np.empty((len(images), h, w), dtype=images.dtype)
    for i, image in enumerate(images):
        out[i] = resize(image, (h, w))
    return out


def to_model_input(images: np.ndarray, size: int | None = None) -> np.ndarray:
    """Grey uint8 images ``(n, h, w)`` to a Keras input ``(n, size, size, 1)``, values kept 0..255.

    Images are area-resized to ``size`` when it is given; the networks cast and rescale
    themselves, so the dtype stays as it is.
    """
    images = np.asarray(images)
    if images.ndim != 3:
        raise ValueError(f"images must have shape (n, height, width). Got shape {images.shape} instead.")
    return (resize_batch(images, int(size)) if size is not None else images)[..., None]


def standardize_image(image: np.ndarray, size: int) -> np.ndarray:
    """Grey ``uint8``, centre-padded to a square and area-resized to ``size`` x ``size``.

    The archive loaders (class folders, DICOM, IRMA, ``cbmir index``) use it; the benchmark's
    ``*_128.npz`` files were made with Pillow instead (``benchmark.convert_source_image``).
    """
    return resize(pad_to_square(to_gray_uint8(image)), size)


def clahe(images: np.ndarray, clip_limit: float = 2.0, tile_grid_size: int = 8) -> np.ndarray:
    """Contrast-limited adaptive histogram equalisation of ``uint8`` images.

    Accepts one image ``(h, w)`` or a batch ``(n, h, w)`` and keeps the shape and dtype.
    """
    if images.dtype != np.uint8:
        raise TypeError(f"clahe expects uint8 images; got {images.dtype}")
    op = cv2.createCLAHE(clipLimit=clip_limit, tileGridSize=(tile_grid_size, tile_grid_size))
    if images.ndim == 2:
        return op.apply(images)
    return np.stack([op.apply(image) for image in images])


def normalize(images: np.ndarray, mean: float | np.ndarray | None = None, std: float | np.ndarray | None = None) -> np.ndarray:
    """Scale ``uint8`` images to float32 in [0, 1], then optionally subtract ``mean`` and divide by ``std``.

    ``mean`` may be a scalar or a mean image of shape ``(h, w)`` computed on the
    training split only (paper 004 subtracts the training mean image).
    """
    out = images.astype(np.float32) / 255.0
    if mean is not None:
        out -= np.asarray(mean, dtype=np.float32)
    if std is not None:
        out /= np.asarray(std, dtype=np.float32)
    return out
