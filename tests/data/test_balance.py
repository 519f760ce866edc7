"""Class balancing on real images."""

import numpy as np
import pytest

from cbmir_tf.data.balance import balance_classes, random_affine


def test_every_class_gets_per_class_images(ct_slices):
    labels = np.array([0] * 40 + [1] * 20 + [2] * 4)
    images, out_labels, source = balance_classes(ct_slices, labels, per_class=10, seed=1)
    assert images.shape == (30, 128, 128) and images.dtype == np.uint8
    assert np.bincount(out_labels).tolist() == [10, 10, 10]
    assert (labels[source] == out_labels).all()
    # The large class is sampled down without repeats and copied unchanged.
    big = np.flatnonzero(out_labels == 0)
    assert len(set(source[big])) == 10 and np.array_equal(images[big], ct_slices[source[big]])
    # The small class keeps its four originals and adds ten minus four augmented copies.
    small = np.flatnonzero(out_labels == 2)
    assert np.array_equal(images[small[:4]], ct_slices[60:64])
    assert not any(np.array_equal(images[i], ct_slices[source[i]]) for i in small[4:])


def test_seeded(ct_slices):
    labels = np.array([0] * 60 + [1] * 4)
    a = balance_classes(ct_slices, labels, 8, seed=3)
    b = balance_classes(ct_slices, labels, 8, seed=3)
    assert all(np.array_equal(x, y) for x, y in zip(a, b))


def test_identity_affine_keeps_the_image(ct_slices):
    rng = np.random.default_rng(0)
    same = random_affine(ct_slices[0], rng, rotation=0, shear=0, scale=(1, 1), shift=0)
    assert np.array_equal(same, ct_slices[0])
    with pytest.raises(ValueError, match="per_class=0"):
        balance_classes(ct_slices, np.zeros(64, int), 0)
