"""Hand-crafted global histograms: the baselines of paper 004's Table 4.

Paper 004 compared its networks with texture, colour and local-feature
histograms in the style of Deselaers et al. (2004). Four of them are here, each a
:class:`~cbmir_tf.features.base.Descriptor` that maps grey ``uint8`` images
``(n, h, w)`` to non-negative float32 histograms ``(n, d)``, each part summing to 1:

* :class:`IntensityHistogram`: grey-level histogram (the grey-image "colour histogram"),
  ``d = n_bins``.
* :class:`GaborHistogram`: a histogram of the response magnitude of each filter of a
  Gabor bank (kernels from ``skimage.filters.gabor_kernel``), ``d = len(frequencies) *
  n_orientations * n_bins``.
* :class:`TamuraHistogram`: a joint histogram of per-pixel Tamura coarseness,
  contrast and directionality, ``d = n_scales * n_bins * (n_bins + 1)``.
* :class:`LBPHistogram`: uniform local binary patterns (``skimage.feature.local_binary_pattern``)
  histogrammed in a ``grid x grid`` layout of cells, ``d = grid ** 2 * (n_points + 2)``.

:func:`make_classifier` is the classifier used to score them: a square-root (Hellinger)
map, standardisation and a linear SVM.

Reference: ElMarakbey et al. (paper 004), Table 4; H. Tamura, S. Mori and T. Yamawaki,
"Textural features corresponding to visual perception", IEEE SMC 8(6), 1978.
"""

from __future__ import annotations

import cv2
import numpy as np
from skimage.feature import local_binary_pattern
from skimage.filters import gabor_kernel
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer, StandardScaler
from sklearn.svm import LinearSVC

from cbmir_tf.data.preprocess import resize_batch
from cbmir_tf.features.base import Descriptor, check_images


def _histogram(values: np.ndarray, n_bins: int, upper: float) -> np.ndarray:
    """Normalised histogram of `values` in ``n_bins`` equal bins over [0, upper]; larger values go last."""
    index = np.minimum((values.ravel() / max(upper, 1e-12) * n_bins).astype(np.int64), n_bins - 1)
    return np.bincount(index, minlength=n_bins) / values.size


class _HistogramDescriptor(Descriptor):
    """Shared fit/transform: resize, then one histogram vector per image."""

    metric = "l1"

    def fit(self, images: np.ndarray, y=None):
        """Validate the images and learn any value ranges; `y` is ignored."""
        images = resize_batch(check_images(images), self.image_size)
        self._fit_ranges(images)
        self.n_features_out_ = self._describe(images[0]).size
        return self

    def _fit_ranges(self, images: np.ndarray) -> None:
        pass

    def transform(self, images: np.ndarray) -> np.ndarray:
        """Return float32 histograms of shape ``(n, n_features_out_)``."""
        self._check_fitted()
        images = resize_batch(check_images(images), self.image_size)
        return np.stack([self._describe(image) for image in images]).astype(np.float32)


class IntensityHistogram(_HistogramDescriptor):
    """Grey-level histogram of ``n_bins`` equal bins over 0..255.

    Args:
        n_bins: Number of bins. Defaults to 32.
        image_size: Images are resized to this side first. Defaults to 128.
    """

    name = "intensity_histogram"

    def __init__(self, *, n_bins: int = 32, image_size: int = 128):
        self.n_bins = n_bins
        self.image_size = image_size

    def _describe(self, image):
        return _histogram(image.astype(np.float64), self.n_bins, 256.0)


class GaborHistogram(_HistogramDescriptor):
    """Histograms of the Gabor response magnitude, one per filter of the bank.

    The magnitude ``|I * g|`` equals that of ``skimage.filters.gabor`` (reflected
    borders); the kernels are applied with OpenCV for speed. ``fit`` sets each
    filter's histogram range to the 99th percentile of its training magnitudes
    (``upper_``, shape ``(n_filters,)``).

    Args:
        frequencies: Spatial frequencies in cycles per pixel. Defaults to (0.05, 0.1, 0.2, 0.4).
        n_orientations: Orientations equally spaced in [0, pi). Defaults to 4.
        n_bins: Bins per filter histogram. Defaults to 8.
        image_size: Images are resized to this side first. Defaults to 64.
    """

    name = "gabor_histogram"

    def __init__(self, *, frequencies=(0.05, 0.1, 0.2, 0.4), n_orientations: int = 4, n_bins: int = 8,
                 image_size: int = 64):
        self.frequencies = frequencies
        self.n_orientations = n_orientations
        self.n_bins = n_bins
        self.image_size = image_size

    def _responses(self, image: np.ndarray) -> list[np.ndarray]:
        image = image.astype(np.float32) / 255.0
        out = []
        for frequency in self.frequencies:
            for k in range(self.n_orientations):
                kernel = gabor_kernel(frequency, theta=np.pi * k / self.n_orientations)
                real, imag = (cv2.filter2D(image, cv2.CV_32F, np.float32(part), borderType=cv2.BORDER_REFLECT)
                              for part in (kernel.real, kernel.imag))
                out.append(np.hypot(real, imag))
        return out

    def _fit_ranges(self, images):
        if not self.frequencies or self.n_orientations < 1 or self.n_bins < 2:
            raise ValueError("GaborHistogram needs frequencies, n_orientations >= 1 and n_bins >= 2. "
                             "Received: "
                             f"frequencies={self.frequencies}, n_orientations={self.n_orientations}, "
                             f"n_bins={self.n_bins}")
        stacked = np.stack([np.stack(self._responses(image)) for image in images[:64]])  # (m, filters, h, w)
        self.upper_ = np.percentile(stacked, 99, axis=(0, 2, 3))

    def _describe(self, image):
        responses = self._responses(image)
        return np.concatenate([_histogram(r, self.n_bins, u) for r, u in zip(responses, self.upper_)])


class TamuraHistogram(_HistogramDescriptor):
    """Joint histogram of per-pixel Tamura coarseness, contrast and directionality.

    Per pixel: coarseness is the scale ``k = 1..n_scales`` whose ``2**k`` box
    averages differ most between the two sides (horizontal or vertical);
    contrast is ``sigma / kurtosis ** 0.25`` in a ``window`` x ``window``
    neighbourhood; directionality is the Prewitt gradient angle in ``n_bins``
    bins over [0, pi), plus one bin for pixels whose gradient is below
    ``edge_threshold`` grey levels. ``fit`` learns the contrast range (``contrast_upper_``).

    Args:
        n_scales: Coarseness scales (window sides 2, 4, .., 2**n_scales). Defaults to 4.
        n_bins: Bins for contrast and for directionality. Defaults to 8.
        window: Side of the contrast neighbourhood. Defaults to 9.
        edge_threshold: Gradient magnitude (grey levels) below which a pixel has no direction.
            Defaults to 12 (Tamura's t).
        image_size: Images are resized to this side first. Defaults to 64.
    """

    name = "tamura_histogram"

    def __init__(self, *, n_scales: int = 4, n_bins: int = 8, window: int = 9, edge_threshold: float = 12.0,
                 image_size: int = 64):
        self.n_scales = n_scales
        self.n_bins = n_bins
        self.window = window
        self.edge_threshold = edge_threshold
        self.image_size = image_size

    def _maps(self, image: np.ndarray):
        img = image.astype(np.float64)
        best, energy = np.zeros(img.shape, np.int64), np.full(img.shape, -1.0)
        for k in range(1, self.n_scales + 1):
            mean, s = cv2.blur(img, (2 ** k, 2 ** k), borderType=cv2.BORDER_REFLECT), 2 ** (k - 1)
            pad = np.pad(mean, s, mode="edge")
            e = np.maximum(np.abs(pad[s:-s, 2 * s:] - pad[s:-s, :-2 * s]),  # left/right and top/bottom
                           np.abs(pad[2 * s:, s:-s] - pad[:-2 * s, s:-s]))
            best, energy = np.where(e > energy, k - 1, best), np.maximum(e, energy)
        x, box = img / 255.0, (self.window, self.window)
        m1, m2, m3, m4 = (cv2.blur(x ** p, box, borderType=cv2.BORDER_REFLECT) for p in (1, 2, 3, 4))
        var = np.maximum(m2 - m1 ** 2, 0.0)
        mu4 = np.maximum(m4 - 4 * m1 * m3 + 6 * m1 ** 2 * m2 - 3 * m1 ** 4, 0.0)
        contrast = np.divide(var, mu4 ** 0.25, out=np.zeros_like(var), where=mu4 > 1e-12)
        prewitt = np.array([[-1, 0, 1]] * 3, np.float64) / 3.0
        dh, dv = cv2.filter2D(img, -1, prewitt), cv2.filter2D(img, -1, prewitt.T)
        theta = np.mod(np.arctan2(dv, dh), np.pi)
        direction = np.minimum((theta / np.pi * self.n_bins).astype(np.int64), self.n_bins - 1) + 1
        direction[(np.abs(dh) + np.abs(dv)) / 2 < self.edge_threshold] = 0
        return best, contrast, direction

    def _fit_ranges(self, images):
        if self.n_scales < 1 or self.n_bins < 2 or self.window < 3:
            raise ValueError("TamuraHistogram needs n_scales >= 1, n_bins >= 2 and window >= 3. Received: "
                             f"n_scales={self.n_scales}, n_bins={self.n_bins}, window={self.window}")
        self.contrast_upper_ = float(np.percentile(np.stack([self._maps(i)[1] for i in images[:64]]), 99))

    def _describe(self, image):
        best, contrast, direction = self._maps(image)
        level = np.minimum((contrast / max(self.contrast_upper_, 1e-12) * self.n_bins).astype(np.int64),
                           self.n_bins - 1)
        joint = (best * self.n_bins + level) * (self.n_bins + 1) + direction
        size = self.n_scales * self.n_bins * (self.n_bins + 1)
        return np.bincount(joint.ravel(), minlength=size) / joint.size


class LBPHistogram(_HistogramDescriptor):
    """Uniform local binary patterns, histogrammed per cell of a ``grid`` x ``grid`` layout.

    Args:
        n_points: Neighbours on the circle. Defaults to 8.
        radius: Circle radius in pixels. Defaults to 1.
        grid: Cells per side; each cell contributes ``n_points + 2`` bins summing to 1. Defaults to 4.
        image_size: Images are resized to this side first. Defaults to 128.
    """

    name = "lbp_histogram"

    def __init__(self, *, n_points: int = 8, radius: float = 1, grid: int = 4, image_size: int = 128):
        self.n_points = n_points
        self.radius = radius
        self.grid = grid
        self.image_size = image_size

    def _fit_ranges(self, images):
        if self.grid < 1 or self.image_size % self.grid:
            raise ValueError(f"grid must divide image_size. "
                             f"Received: grid={self.grid}, image_size={self.image_size}")

    def _describe(self, image):
        codes = local_binary_pattern(image, self.n_points, self.radius, method="uniform").astype(np.int64)
        side, bins = self.image_size // self.grid, self.n_points + 2
        cells = codes.reshape(self.grid, side, self.grid, side).swapaxes(1, 2).reshape(self.grid ** 2, -1)
        return np.concatenate([np.bincount(c, minlength=bins) / c.size for c in cells])


def make_classifier(C: float = 1.0, seed: int = 0):
    """The Table 4 classifier for histogram features: sqrt, standardise, linear SVM.

    Returns:
        An unfitted scikit-learn `Pipeline` with ``fit(X, y)`` and ``predict(X)``.
    """
    return make_pipeline(FunctionTransformer(np.sqrt), StandardScaler(),
                         LinearSVC(C=C, max_iter=5000, random_state=seed))
