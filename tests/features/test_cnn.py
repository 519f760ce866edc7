"""Pretrained-CNN descriptors (paper 002, Section VII) on real benchmark images."""

import numpy as np
import pytest

from cbmir_tf.evaluation import retrieval_report, search_database
from cbmir_tf.features.cnn import CNNDescriptor


def test_squeezenet_with_paper_pooling_gives_3x3x512(kidney_images):
    cnn = CNNDescriptor().fit(kidney_images[:2])  # 256 px: 15 x 15 x 512 map, 5 x 5 average pooling
    assert cnn.pretrained_ and cnn.feature_shape_ == (15, 15, 512)
    vectors = cnn.transform(kidney_images[:3])
    assert vectors.shape == (3, 3 * 3 * 512) and vectors.dtype == np.float32
    assert (vectors >= 0).all() and vectors.any()  # averages of ReLU outputs
    alone = cnn.transform(kidney_images[1:2])  # the same image in a batch of one
    np.testing.assert_allclose(vectors[1:2], alone, rtol=1e-4, atol=1e-4)


def test_no_pooling_keeps_the_whole_map(kidney_images):
    cnn = CNNDescriptor(pooling=None, input_size=96).fit()
    assert cnn.transform(kidney_images[:2]).shape == (2, int(np.prod(cnn.feature_shape_)))


def test_keras_application_without_weights_falls_back_loudly():
    with pytest.warns(UserWarning, match="RANDOM weights"):  # tests run with CBMIR_ALLOW_DOWNLOAD=0
        cnn = CNNDescriptor(model="mobilenet", input_size=128, pooling=None).fit()
    assert cnn.pretrained_ is False


def test_bad_arguments_are_refused(kidney_images):
    with pytest.raises(Exception, match="call fit first"):
        CNNDescriptor().transform(kidney_images[:1])
    with pytest.raises(ValueError, match="Received: model='alexnet'"):
        CNNDescriptor(model="alexnet").fit()
    with pytest.raises(ValueError, match="Received: pooling=9"):
        CNNDescriptor(pooling=9, input_size=128).fit()  # 7 x 7 map at 128 px


def test_squeezenet_retrieval_beats_chance(small_benchmark):
    archive = small_benchmark.take_split("train")
    queries = small_benchmark.take_split("test").stratified_sample(4)
    cnn = CNNDescriptor(input_size=128, pooling=3).fit()  # 7 x 7 map -> 2 x 2 x 512
    _, hits = search_database(cnn.transform(archive.images), cnn.transform(queries.images), "l2", 10)
    report = retrieval_report(queries.codes, archive.codes, hits, axes=("region", "modality", "both"))
    for axis in ("region", "modality", "both"):
        part = {"modality": [0], "region": [1], "both": [0, 1]}[axis]
        keys = np.array(["-".join(np.array(c.split("-"))[part]) for c in archive.codes])
        _, n = np.unique(keys, return_counts=True)
        chance = ((n / n.sum()) ** 2).sum()
        assert report.loc[axis, "P@1"] > chance + 0.5
