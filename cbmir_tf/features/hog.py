"""Histogram-of-oriented-gradients descriptors (paper 002, Section VI).

One HOG vector per image, computed with OpenCV's ``cv2.HOGDescriptor`` as paper 002's
own code does (its detection window is the whole image): gradient-orientation
histograms of ``n_bins`` bins in square cells of ``cell_size`` pixels, grouped into
square blocks of ``block_size`` pixels that slide by ``block_stride`` pixels, each
block Gaussian-weighted, trilinearly voted and L2-Hys normalised, then concatenated.
Paper 002 compared HOG vectors by L1 distance and chose cell 64, block 128, stride 64
and 15 bins on 256 x 256 images, which are the defaults here.

Reference: Barać et al. (paper 002), Figs. 4-5 and Section IX.
"""

from __future__ import annotations

import cv2
import numpy as np

from cbmir_tf.data.preprocess import resize_batch
from cbmir_tf.features.base import Descriptor, check_images

# Paper 002 Fig. 4: block = 2 x 2 cells, with overlapping (stride = cell) and
# non-overlapping (stride = block) blocks, at 9 bins; Fig. 5 then varies the bins.
PAPER_GRID = [
    {"cell_size": cell, "block_size": 2 * cell, "block_stride": stride}
    for cell in (16, 32, 64)
    for stride in (cell, 2 * cell)
]
PAPER_BINS = (6, 9, 12, 15, 18)


class HOGDescriptor(Descriptor):
    """Global HOG descriptor of a grey image, compared by L1 distance.

    Reference: paper 002 (Barać et al.), Section VI; parameters of Figs. 4-5.

    Args:
        cell_size: Cell side in pixels. Defaults to 64.
        block_size: Block side in pixels, a multiple of ``cell_size``. Defaults to 128.
        block_stride: Step between blocks in pixels, a multiple of ``cell_size``.
            Defaults to 64 (overlapping blocks).
        n_bins: Orientation bins per cell histogram. Defaults to 15.
        image_size: Images are resized to this side first (paper: 256). Defaults to 256.

    Example:
        >>> hog_ = HOGDescriptor().fit(images)        # doctest: +SKIP
        >>> hog_.transform(images).shape              # doctest: +SKIP
        (n, 540)
    """

    name = "hog"
    metric = "l1"

    def __init__(self, *, cell_size: int = 64, block_size: int = 128, block_stride: int = 64,
                 n_bins: int = 15, image_size: int = 256):
        self.cell_size = cell_size
        self.block_size = block_size
        self.block_stride = block_stride
        self.n_bins = n_bins
        self.image_size = image_size

    def _validate(self) -> None:
        cell = self.cell_size
        if cell <= 0 or self.block_size % cell or self.block_stride % cell or self.block_stride <= 0:
            raise ValueError(
                "block_size and block_stride must be positive multiples of cell_size. Received: "
                f"cell_size={cell}, block_size={self.block_size}, block_stride={self.block_stride}"
            )
        if self.block_size > self.image_size or (self.image_size - self.block_size) % self.block_stride:
            raise ValueError(f"blocks of {self.block_size} px moving by {self.block_stride} px must tile "
                             f"image_size {self.image_size}")
        if self.n_bins < 2:
            raise ValueError(f"n_bins must be at least 2. Received: n_bins={self.n_bins}")

    def fit(self, images: np.ndarray, y=None) -> "HOGDescriptor":
        """Validate the parameters and record the output dimension (``n_features_out_``)."""
        self._validate()
        check_images(images)
        self.n_features_out_ = int(self._opencv().getDescriptorSize())
        return self

    def transform(self, images: np.ndarray) -> np.ndarray:
        """Return float32 HOG vectors of shape ``(n, n_features_out_)``."""
        self._check_fitted()
        images = resize_batch(check_images(images), self.image_size)
        hog = self._opencv()
        return np.stack([hog.compute(np.ascontiguousarray(image)).ravel() for image in images]).astype(np.float32)

    def _opencv(self) -> cv2.HOGDescriptor:
        """OpenCV's descriptor with the whole image as its window (not picklable, so made on demand)."""
        side, block, stride, cell = self.image_size, self.block_size, self.block_stride, self.cell_size
        return cv2.HOGDescriptor((side, side), (block, block), (stride, stride), (cell, cell), self.n_bins)
