"""Preprocessing and the ImageDataset form, on real images."""

import numpy as np
import pytest

from cbmir_tf.data.dataset import ImageDataset, concatenate, stratified_split
from cbmir_tf.data.preprocess import clahe, normalize, pad_to_square, resize, resize_batch, standardize_image, to_gray_uint8


def test_pad_and_resize_keep_aspect_and_dtype(ct_slices):
    wide = ct_slices[0][:, :100]  # 128 x 100 crop of a real slice
    square = pad_to_square(wide)
    assert square.shape == (128, 128) and (square[:, :14] == 0).all() and (square[:, 114:] == 0).all()
    assert resize(ct_slices[0], 64).shape == (64, 64) and resize(ct_slices[0], 64).dtype == np.uint8
    assert resize_batch(ct_slices[:3], (32, 48)).shape == (3, 32, 48)
    assert standardize_image(np.stack([wide] * 3, axis=-1), 96).shape == (96, 96)


def test_area_resize_averages(ct_slices):
    image = ct_slices[5]
    halved = resize(image, 64).astype(float)
    by_hand = image.reshape(64, 2, 64, 2).mean(axis=(1, 3))
    assert np.abs(halved - by_hand).max() <= 1.0


def test_gray_conversion_matches_luma(ct_slices):
    rgb = np.stack([ct_slices[0], ct_slices[1], ct_slices[2]], axis=-1)
    expected = np.rint(0.299 * rgb[..., 0] + 0.587 * rgb[..., 1] + 0.114 * rgb[..., 2])
    assert np.abs(to_gray_uint8(rgb).astype(float) - expected).max() <= 1
    sixteen = ct_slices[0].astype(np.uint16) * 200
    assert to_gray_uint8(sixteen).max() == 255 and to_gray_uint8(sixteen).dtype == np.uint8


def test_clahe_keeps_dtype_shape_and_range(ct_slices):
    out = clahe(ct_slices[:4])
    assert out.dtype == np.uint8 and out.shape == (4, 128, 128)
    assert out.std() > ct_slices[:4].std() * 0.9  # equalisation does not flatten the images
    with pytest.raises(TypeError, match="uint8"):
        clahe(ct_slices[:2].astype(np.float32))
    mean = ct_slices[:10].mean(axis=0) / 255.0
    assert abs(normalize(ct_slices[:10], mean).mean()) < 1e-6


def test_dataset_validation(ct_slices):
    labels = np.arange(4).repeat(16)
    ds = ImageDataset(ct_slices, labels, ("a", "b", "c", "d"), stratified_split(labels, 0.25), np.arange(64))
    assert (ds.split == "test").sum() == 16 and ds.class_counts() == {"a": 16, "b": 16, "c": 16, "d": 16}
    assert len(concatenate([ds, ds.subset(np.arange(8))])) == 72
    with pytest.raises(TypeError, match="uint8"):
        ImageDataset(ct_slices.astype(float), labels, ("a", "b", "c", "d"), ds.split, ds.source_ids)
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 2\)"):
        ImageDataset(ct_slices, labels, ("a", "b"), ds.split, ds.source_ids)
    with pytest.raises(ValueError, match="unknown split"):
        ImageDataset(ct_slices, labels, ("a", "b", "c", "d"), np.full(64, "holdout"), ds.source_ids)
