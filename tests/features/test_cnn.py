"""Pretrained-CNN descriptors (paper 002, Section VII) on real CT slices and MedMNIST images."""

import numpy as np
import pytest

from cbmir_tf.evaluation import retrieval_report, search_database
from cbmir_tf.features.cnn import CNNDescriptor


def test_squeezenet_with_paper_pooling_gives_3x3x512(ct_slices):
    cnn = CNNDescriptor().fit(ct_slices[:2])  # 256 px: 15 x 15 x 512 map, 5 x 5 average pooling
    assert cnn.pretrained_ and cnn.feature_shape_ == (15, 15, 512)
    vectors = cnn.transform(ct_slices[:3])
    assert vectors.shape == (3, 3 * 3 * 512) and vectors.dtype == np.float32
    assert (vectors >= 0).all() and vectors.any()  # averages of ReLU outputs
    alone = cnn.transform(ct_slices[1:2])  # the same image in a batch of one
    np.testing.assert_allclose(vectors[1:2], alone, rtol=1e-4, atol=1e-4)


def test_no_pooling_keeps_the_whole_map(ct_slices):
    cnn = CNNDescriptor(pooling=None, input_size=96).fit()
    assert cnn.transform(ct_slices[:2]).shape == (2, int(np.prod(cnn.feature_shape_)))


def test_keras_application_without_weights_falls_back_loudly(tmp_path, monkeypatch):
    # no weights file in the data folder or the cache, and downloads off
    monkeypatch.setenv("CBMIR_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("CBMIR_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("CBMIR_ALLOW_DOWNLOAD", "0")
    with pytest.warns(UserWarning, match=r"mobilenet_1_0_224_tf_no_top\.h5.*downloads are off.*RANDOM"):
        cnn = CNNDescriptor(model="mobilenet", input_size=128, pooling=None).fit()
    assert cnn.pretrained_ is False


def test_bad_arguments_are_refused(ct_slices):
    with pytest.raises(Exception, match="call fit first"):
        CNNDescriptor().transform(ct_slices[:1])
    with pytest.raises(ValueError, match="Received: model='alexnet'"):
        CNNDescriptor(model="alexnet").fit()
    with pytest.raises(ValueError, match="Received: pooling=9"):
        CNNDescriptor(pooling=9, input_size=128).fit()  # 7 x 7 map at 128 px


def test_squeezenet_retrieval_beats_chance(small_benchmark):
    # 28 px MedMNIST images, upsampled to 128 px: two balanced modality-regions, four codes
    archive, queries = small_benchmark.take_split("train"), small_benchmark.take_split("test")
    cnn = CNNDescriptor(input_size=128, pooling=3).fit()  # 7 x 7 map -> 2 x 2 x 512
    assert cnn.pretrained_
    _, hits = search_database(cnn.transform(archive.images), cnn.transform(queries.images), "l2", 10)
    report = retrieval_report(queries.codes, archive.codes, hits)
    for axis, margin in (("region", 0.4), ("modality", 0.4), ("both", 0.4), ("class", 0.15)):
        part = {"modality": [0], "region": [1], "both": [0, 1], "class": [0, 1, 2]}[axis]
        keys = np.array(["-".join(np.array(c.split("-"))[part]) for c in archive.codes])
        _, n = np.unique(keys, return_counts=True)
        chance = ((n / n.sum()) ** 2).sum()
        assert report.loc[axis, "P@1"] > chance + margin, axis
