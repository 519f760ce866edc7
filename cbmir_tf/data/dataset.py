"""The one in-memory form every loader returns.

An :class:`ImageDataset` holds grayscale ``uint8`` images of shape ``(n, h, w)``,
integer labels with their class names, an optional hierarchical code per image
(an IRMA code ``TTTT-DDD-AAA-BBB`` or a benchmark code ``MOD-region-finding``),
the split each image belongs to and an id that traces it back to its source file.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import numpy as np

SPLITS = ("train", "val", "test")


@dataclasses.dataclass(frozen=True, eq=False)
class ImageDataset:
    """Grayscale images with labels, codes, splits and source ids.

    Attributes:
        images: uint8 array of shape ``(n, height, width)``.
        labels: int64 array of shape ``(n,)``, indices into ``class_names``.
        class_names: tuple of ``n_classes`` strings.
        split: str array of shape ``(n,)`` with values in ``{"train", "val", "test"}``.
        source_ids: str array of shape ``(n,)`` naming each image's origin
            (for example ``"kidney-ct:Training/Cyst/Cyst- (1).jpg"``).
        codes: optional str array of shape ``(n,)`` with a hierarchical code per image.
        name: short name of the dataset.
        meta: free-form provenance (origin URL, licence, checksums, warnings).
    """

    images: np.ndarray
    labels: np.ndarray
    class_names: tuple[str, ...]
    split: np.ndarray
    source_ids: np.ndarray
    codes: np.ndarray | None = None
    name: str = "dataset"
    meta: dict[str, Any] = dataclasses.field(default_factory=dict)

    def __post_init__(self) -> None:
        images, n = self.images, len(self.images)
        if not isinstance(images, np.ndarray) or images.ndim != 3 or images.dtype != np.uint8:
            raise TypeError(
                f"{self.name}: images must be a uint8 array of shape (n, h, w); "
                f"got {getattr(images, 'dtype', type(images))} of shape {getattr(images, 'shape', None)}"
            )
        object.__setattr__(self, "labels", np.asarray(self.labels, dtype=np.int64))
        object.__setattr__(self, "class_names", tuple(str(c) for c in self.class_names))
        object.__setattr__(self, "split", np.asarray(self.split, dtype=str))
        object.__setattr__(self, "source_ids", np.asarray(self.source_ids, dtype=str))
        if self.codes is not None:
            object.__setattr__(self, "codes", np.asarray(self.codes, dtype=str))
        for field in ("labels", "split", "source_ids", "codes"):
            value = getattr(self, field)
            if value is not None and value.shape != (n,):
                raise ValueError(f"{self.name}: {field} must have shape ({n},); got {value.shape}")
        if n and (self.labels.min() < 0 or self.labels.max() >= len(self.class_names)):
            raise ValueError(
                f"{self.name}: labels must lie in [0, {len(self.class_names)}); "
                f"got range [{self.labels.min()}, {self.labels.max()}]"
            )
        unknown = set(np.unique(self.split)) - set(SPLITS)
        if unknown:
            raise ValueError(f"{self.name}: unknown split values {sorted(unknown)}; use {SPLITS}")

    def __len__(self) -> int:
        return len(self.images)

    def __repr__(self) -> str:
        counts = {s: int((self.split == s).sum()) for s in SPLITS if (self.split == s).any()}
        return (
            f"ImageDataset(name={self.name!r}, n={len(self)}, image_shape={self.images.shape[1:]}, "
            f"classes={len(self.class_names)}, splits={counts})"
        )

    @property
    def image_size(self) -> tuple[int, int]:
        """``(height, width)`` of the images."""
        return tuple(self.images.shape[1:3])

    def subset(self, index: np.ndarray | Sequence[int], name: str | None = None) -> ImageDataset:
        """Return the images selected by a boolean mask or an index array."""
        index = np.asarray(index)
        pick = (lambda a: None if a is None else a[index])
        return dataclasses.replace(
            self,
            images=self.images[index],
            labels=self.labels[index],
            split=self.split[index],
            source_ids=self.source_ids[index],
            codes=pick(self.codes),
            name=name or self.name,
        )

    def take_split(self, *splits: str) -> ImageDataset:
        """Return the images whose split is one of ``splits`` (e.g. ``"train", "val"``)."""
        bad = set(splits) - set(SPLITS)
        if bad:
            raise ValueError(f"Unknown split {sorted(bad)}; use {SPLITS}. Received: splits={splits}")
        return self.subset(np.isin(self.split, splits), name=f"{self.name}[{'+'.join(splits)}]")

    def with_images(self, images: np.ndarray) -> ImageDataset:
        """Return the same dataset with other pixels (for example resized ones)."""
        if len(images) != len(self):
            raise ValueError(f"{self.name}: expected {len(self)} images, got {len(images)}")
        return dataclasses.replace(self, images=images)

    def class_counts(self) -> dict[str, int]:
        """Number of images per class name, in label order."""
        counts = np.bincount(self.labels, minlength=len(self.class_names))
        return dict(zip(self.class_names, counts.tolist()))

    def stratified_sample(self, per_class: int, seed: int = 0) -> ImageDataset:
        """Keep at most ``per_class`` images of every (split, label) group, chosen with ``seed``."""
        rng = np.random.default_rng(seed)
        keep = []
        for split in SPLITS:
            for label in np.unique(self.labels):
                idx = np.flatnonzero((self.split == split) & (self.labels == label))
                if len(idx) > per_class:
                    idx = rng.choice(idx, per_class, replace=False)
                keep.append(idx)
        return self.subset(np.sort(np.concatenate(keep)))

    def summary(self) -> "pandas.DataFrame":  # noqa: F821
        """A table of image counts per class and split (one row per class)."""
        import pandas as pd

        frame = pd.crosstab(
            pd.Categorical(np.asarray(self.class_names)[self.labels], categories=self.class_names),
            pd.Categorical(self.split, categories=[s for s in SPLITS if (self.split == s).any()]),
            dropna=False,
        )
        frame.index.name, frame.columns.name = "class", "split"
        frame["total"] = frame.sum(axis=1)
        return frame


def concatenate(datasets: Sequence[ImageDataset], name: str = "combined") -> ImageDataset:
    """Join datasets of equal image size, merging their class lists by name.

    Classes with the same name in two datasets become one class, so give
    classes unique names (the benchmark uses their hierarchical codes).
    """
    if not datasets:
        raise ValueError("concatenate() needs at least one dataset")
    sizes = {d.image_size for d in datasets}
    if len(sizes) != 1:
        raise ValueError(f"All datasets must have one image size to be joined; got {sorted(sizes)}")
    class_names = list(dict.fromkeys(c for d in datasets for c in d.class_names))
    lookup = {c: i for i, c in enumerate(class_names)}
    labels = [np.array([lookup[d.class_names[l]] for l in d.labels], dtype=np.int64) for d in datasets]
    with_codes = all(d.codes is not None for d in datasets)
    return ImageDataset(
        images=np.concatenate([d.images for d in datasets]),
        labels=np.concatenate(labels),
        class_names=tuple(class_names),
        split=np.concatenate([d.split for d in datasets]),
        source_ids=np.concatenate([d.source_ids for d in datasets]),
        codes=np.concatenate([d.codes for d in datasets]) if with_codes else None,
        name=name,
        meta={"members": [d.name for d in datasets]},
    )


def stratified_split(
    labels: np.ndarray, test_fraction: float, seed: int = 0
) -> np.ndarray:
    """Assign ``"train"``/``"test"`` per image, stratified by label, reproducibly.

    Args:
        labels: int array of shape ``(n,)``.
        test_fraction: Share of each class that goes to the test split, in (0, 1).
        seed: Seed of the permutation. Defaults to 0.

    Returns:
        str array of shape ``(n,)``.
    """
    if not 0.0 < test_fraction < 1.0:
        raise ValueError(f"test_fraction must lie in (0, 1). Received: test_fraction={test_fraction}")
    rng = np.random.default_rng(seed)
    split = np.full(len(labels), "train", dtype="<U5")
    for label in np.unique(labels):
        idx = rng.permutation(np.flatnonzero(labels == label))
        n_test = int(round(test_fraction * len(idx)))
        split[idx[:n_test]] = "test"
    return split


def validation_split(dataset: ImageDataset, fraction: float = 0.2, seed: int = 0) -> ImageDataset:
    """Move a stratified ``fraction`` of the training images into the ``"val"`` split.

    Images already in ``"val"`` or ``"test"`` keep their split. Paper 002 held out
    20 % of each class of its training set this way to choose parameters.
    """
    train = np.flatnonzero(dataset.split == "train")
    inner = stratified_split(dataset.labels[train], fraction, seed)
    split = dataset.split.copy()
    split[train[inner == "test"]] = "val"
    return dataclasses.replace(dataset, split=split)
