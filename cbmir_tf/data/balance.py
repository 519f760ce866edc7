"""Class balancing: bring every class to ``per_class`` images.

Papers 000 and 003 trained on IRMA, whose classes range from a handful to
hundreds of radiographs. They evened this out by augmenting the small classes
(random rotation, shear, scaling and shift of real images) and sampling the
large ones down. :func:`balance_classes` does the same, reproducibly.
"""

from __future__ import annotations

import cv2
import numpy as np


def random_affine(image: np.ndarray, rng: np.random.Generator, *, rotation: float = 15.0,
                  shear: float = 0.15, scale: tuple[float, float] = (0.9, 1.1),
                  shift: float = 0.08) -> np.ndarray:
    """Apply one random rotation (degrees), shear, isotropic scale and shift (fraction of the side).

    The transform is about the image centre; uncovered pixels are filled with black.
    """
    h, w = image.shape[:2]
    angle = np.deg2rad(rng.uniform(-rotation, rotation))
    s, k = rng.uniform(*scale), rng.uniform(-shear, shear)
    rotate = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    linear = s * rotate @ np.array([[1.0, k], [0.0, 1.0]])
    centre = np.array([w / 2.0, h / 2.0])
    offset = centre - linear @ centre + rng.uniform(-shift, shift, size=2) * np.array([w, h])
    matrix = np.hstack([linear, offset[:, None]])
    return cv2.warpAffine(image, matrix, (w, h), flags=cv2.INTER_LINEAR, borderValue=0)


def balance_classes(images: np.ndarray, labels: np.ndarray, per_class: int, seed: int = 0,
                    **augment) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Return ``per_class`` images of every class present in ``labels``.

    Classes with more images are sampled down without replacement; classes with
    fewer keep all their images and are topped up with random affine copies
    (:func:`random_affine`, keyword arguments passed through) of randomly chosen members.

    Args:
        images: uint8 ``(n, h, w)``.
        labels: int ``(n,)``.
        per_class: Target count per class, at least 1.
        seed: Seed of the sampling and the augmentation. Defaults to 0.

    Returns:
        ``(images, labels, source_index)``: the balanced images ``(c * per_class, h, w)``, their
        labels, and for each the row of ``images`` it was made from.
    """
    if per_class < 1:
        raise ValueError(f"per_class must be at least 1. Received: per_class={per_class}")
    if len(images) != len(labels):
        raise ValueError(f"images and labels differ in length: {len(images)} != {len(labels)}")
    rng = np.random.default_rng(seed)
    out_images, out_labels, sources = [], [], []
    for label in np.unique(labels):
        members = np.flatnonzero(labels == label)
        if len(members) >= per_class:
            chosen = np.sort(rng.choice(members, per_class, replace=False))
            out_images.append(images[chosen])
        else:
            extra = rng.choice(members, per_class - len(members), replace=True)
            augmented = np.stack([random_affine(images[i], rng, **augment) for i in extra])
            chosen = np.concatenate([members, extra])
            out_images.append(np.concatenate([images[members], augmented]))
        out_labels.append(np.full(per_class, label, dtype=np.int64))
        sources.append(chosen)
    return np.concatenate(out_images), np.concatenate(out_labels), np.concatenate(sources)
