"""What every descriptor shares: the scikit-learn estimator contract.

A descriptor stores its keyword arguments unchanged in ``__init__``, learns any
state in ``fit`` (attributes ending in ``_``) and returns ``self``, and maps a
batch of grey ``uint8`` images ``(n, h, w)`` to a float32 (or packed uint8 for
binary codes) array ``(n, d)`` in ``transform``. ``metric`` names the distance
the source paper compared the vectors with, so an index can be built for it.
"""

from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_is_fitted


class Descriptor(TransformerMixin, BaseEstimator):
    """Base class of the image descriptors."""

    name: str = "descriptor"
    metric: str = "l2"
    #: ``fit`` learns arrays from the images (e.g. a vocabulary) that must be stored with an index.
    learns_from_images: bool = False

    def manifest(self) -> dict:
        """Name, metric and parameters: what an index stores to refuse mismatched queries."""
        return {"descriptor": self.name, "metric": self.metric, "params": self.get_params()}

    def _check_fitted(self) -> None:
        check_is_fitted(self, msg=f"This {type(self).__name__} is not fitted yet: call fit first.")


def check_images(images: np.ndarray, name: str = "images") -> np.ndarray:
    """Validate a batch of grey uint8 images of shape ``(n, h, w)`` (one 2-D image is promoted)."""
    images = np.asarray(images)
    if images.ndim == 2:
        images = images[None]
    if images.ndim != 3:
        raise ValueError(f"{name} must have shape (n, height, width). Got shape {images.shape} instead.")
    if images.dtype != np.uint8:
        raise TypeError(f"{name} must be uint8 grey images. Got dtype {images.dtype} instead.")
    if len(images) == 0:
        raise ValueError(f"{name} is empty.")
    return images
