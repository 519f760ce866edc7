"""Radon barcodes (RBC): binarised Radon projections, compared by Hamming distance.

Tizhoosh's barcode resizes an image to a fixed square, takes its Radon transform
(line integrals) at a few equally spaced angles in [0, 180) degrees, binarises
each projection at a "local" threshold -- the median of that projection's
non-zero values -- and concatenates the binary projections. Paper 003 used
192 x 192 images and 16 angles to re-rank its CNN-code candidates.

The projections come from ``skimage.transform.radon`` with ``circle=False``, so
the whole image (corners included) is projected and each projection has
``ceil(sqrt(2) * image_size)``-ish bins (272 at 192 px): the code has
``n_angles * projection_length`` bits (4,352 at the defaults).

Reference: Tizhoosh, "Barcode annotations for medical image retrieval: a preliminary
investigation", ICIP 2015; used by paper 003 (Liu et al.), Section 3.2.
"""

from __future__ import annotations

import numpy as np
from skimage.transform import radon

from cbmir_tf.data.preprocess import resize_batch
from cbmir_tf.features.base import Descriptor, check_images


def pack_codes(codes: np.ndarray) -> np.ndarray:
    """Pack bool codes ``(n, bits)`` into uint8 ``(n, ceil(bits / 8))``, padding with zero bits.

    Padding bits are zero in every code, so Hamming distances are unchanged; the result is
    what ``cbmir_tf.index.Index("hamming")`` takes as packed codes.
    """
    codes = np.asarray(codes)
    if codes.ndim != 2 or codes.dtype != bool:
        raise ValueError(f"codes must be a bool array of shape (n, bits). Got {codes.dtype} of shape "
                         f"{codes.shape} instead.")
    return np.packbits(codes, axis=1)


class RadonBarcode(Descriptor):
    """Radon barcode of a grey image (Tizhoosh's RBC with local, per-projection thresholds).

    Reference: Tizhoosh (ICIP 2015); parameters of paper 003, Section 3.2 (192 px, 16 angles).

    Args:
        image_size: Images are resized to ``image_size`` x ``image_size`` first. Defaults to 192.
        n_angles: Projection angles, ``180 * i / n_angles`` degrees for ``i < n_angles``.
            Defaults to 16.

    Learned state (``fit`` only validates): ``theta_`` (the angles in degrees),
    ``projection_length_`` and ``n_features_out_`` (bits per code).

    Example:
        >>> rbc = RadonBarcode().fit(images)          # doctest: +SKIP
        >>> rbc.transform(images).shape                # doctest: +SKIP
        (n, 4352)
    """

    name = "radon_barcode"
    metric = "hamming"

    def __init__(self, *, image_size: int = 192, n_angles: int = 16):
        self.image_size = image_size
        self.n_angles = n_angles

    def fit(self, images: np.ndarray | None = None, y=None) -> "RadonBarcode":
        """Validate the parameters (and ``images`` when given); nothing is learned. Returns ``self``."""
        if not isinstance(self.image_size, (int, np.integer)) or self.image_size < 8:
            raise ValueError("image_size must be an integer of at least 8. "
                             f"Received: image_size={self.image_size!r}")
        if not isinstance(self.n_angles, (int, np.integer)) or self.n_angles < 1:
            raise ValueError(f"n_angles must be a positive integer. Received: n_angles={self.n_angles!r}")
        if images is not None:
            check_images(images)
        self.theta_ = np.arange(self.n_angles) * 180.0 / self.n_angles
        self.projection_length_ = radon(np.zeros((self.image_size,) * 2), self.theta_, circle=False).shape[0]
        self.n_features_out_ = self.n_angles * self.projection_length_
        return self

    def transform(self, images: np.ndarray) -> np.ndarray:
        """Return bool barcodes of shape ``(n, n_features_out_)``, angle by angle."""
        self._check_fitted()
        images = resize_batch(check_images(images), self.image_size)
        return np.stack([self._barcode(image) for image in images])

    def projections(self, image: np.ndarray) -> np.ndarray:
        """Radon projections ``(projection_length_, n_angles)`` of one grey image (after resizing)."""
        self._check_fitted()
        image = resize_batch(check_images(image, "image"), self.image_size)[0]
        return radon(image.astype(np.float64), self.theta_, circle=False)

    def _barcode(self, image: np.ndarray) -> np.ndarray:
        sinogram = radon(image.astype(np.float64), self.theta_, circle=False)  # (length, angles)
        code = np.zeros(sinogram.shape, dtype=bool)
        for j in range(sinogram.shape[1]):
            p = sinogram[:, j]
            nonzero = p[p > 0]
            if nonzero.size:  # a black image gives an all-zero code
                code[:, j] = p >= np.median(nonzero)
        return code.T.ravel()
