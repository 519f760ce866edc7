"""What every descriptor shares: the scikit-learn estimator contract, without importing scikit-learn.

A descriptor stores its keyword arguments unchanged in ``__init__``, learns any
state in ``fit`` (attributes ending in ``_``) and returns ``self``, and maps a
batch of grey ``uint8`` images ``(n, h, w)`` to a float32 (or packed uint8 for
binary codes) array ``(n, d)`` in ``transform``. ``metric`` names the distance
the source paper compared the vectors with, so an index can be built for it.

`Descriptor` implements ``get_params`` / ``set_params`` / ``fit_transform`` as
``sklearn.base.BaseEstimator`` and ``TransformerMixin`` define them (so
``sklearn.base.clone`` and pipelines accept a descriptor), but does not inherit
them: importing scikit-learn costs about a second, which a one-shot ``cbmir query``
with HOG cannot afford.
"""

from __future__ import annotations

import inspect

import numpy as np


class NotFittedError(ValueError, AttributeError):
    """A descriptor used before ``fit`` (the same bases as scikit-learn's ``NotFittedError``)."""


class Descriptor:
    """Base class of the image descriptors."""

    name: str = "descriptor"
    metric: str = "l2"
    #: ``fit`` learns arrays from the images (e.g. a vocabulary) that must be stored with an index.
    learns_from_images: bool = False

    @classmethod
    def _param_names(cls) -> list[str]:
        """The keyword arguments of ``__init__``: the descriptor's parameters."""
        signature = inspect.signature(cls.__init__)
        return sorted(p.name for p in signature.parameters.values()
                      if p.name != "self" and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD))

    def get_params(self, deep: bool = True) -> dict:
        """The parameters given to ``__init__``, by name (``deep`` is accepted for scikit-learn)."""
        return {name: getattr(self, name) for name in self._param_names()}

    def set_params(self, **params) -> "Descriptor":
        """Set parameters by name; an unknown name raises ValueError. Returns ``self``."""
        valid = self._param_names()
        for name, value in params.items():
            if name not in valid:
                raise ValueError(f"Invalid parameter {name!r} for {type(self).__name__}. Valid parameters: {valid}.")
            setattr(self, name, value)
        return self

    def fit_transform(self, images: np.ndarray, y=None) -> np.ndarray:
        """``fit(images, y)`` then ``transform(images)``."""
        return self.fit(images, y).transform(images)

    def __repr__(self) -> str:
        defaults = {p.name: p.default for p in inspect.signature(type(self).__init__).parameters.values()}
        changed = {k: v for k, v in self.get_params().items() if not _same(v, defaults.get(k))}
        return f"{type(self).__name__}({', '.join(f'{k}={v!r}' for k, v in changed.items())})"

    def manifest(self) -> dict:
        """Name, metric and parameters: what an index stores to refuse mismatched queries."""
        return {"descriptor": self.name, "metric": self.metric, "params": self.get_params()}

    def _check_fitted(self) -> None:
        """Raise if ``fit`` has not run (no attribute ending in ``_``), as scikit-learn's check does."""
        if not any(k.endswith("_") and not k.startswith("__") for k in vars(self)):
            raise NotFittedError(f"This {type(self).__name__} is not fitted yet: call fit first.")


def _same(a, b) -> bool:
    try:
        return bool(a == b)
    except (TypeError, ValueError):  # arrays
        return a is b


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
