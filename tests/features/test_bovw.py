"""SIFT / RootSIFT bags of visual words with TF-IDF (paper 002) on real CT slices and MedMNIST images."""

import numpy as np
import pytest

from cbmir_tf.data.lung import window_hu
from cbmir_tf.evaluation import retrieval_report, search_database
from cbmir_tf.features.bovw import BoVWDescriptor, inverse_document_frequency, root_sift, sift_features, tfidf

LOG_1_5, LOG_3 = 0.4054651081081644, 1.0986122886681098  # ln(3/2), ln(3)


@pytest.fixture(scope="module")
def sift(ct_slices):
    return sift_features(ct_slices[:6])


def test_sift_gives_128_d_descriptors_per_keypoint(sift):
    assert len(sift) == 6
    assert all(f.ndim == 2 and f.shape[1] == 128 and f.dtype == np.float32 for f in sift)
    assert all(len(f) > 10 for f in sift)  # CT slices have structure


def test_rootsift_is_non_negative_and_unit_l2(sift):
    rs = root_sift(np.concatenate(sift))
    assert (rs >= 0).all()
    np.testing.assert_allclose(np.linalg.norm(rs, axis=1), 1.0, atol=1e-5)


def test_rootsift_euclidean_equals_hellinger(sift):
    x, y = sift[0][:10].astype(np.float64), sift[1][:10].astype(np.float64)
    x, y = x / x.sum(1, keepdims=True), y / y.sum(1, keepdims=True)
    hellinger = np.sqrt(x * y).sum(1)  # Bhattacharyya coefficient of the L1-normalised SIFT vectors
    euclid2 = ((root_sift(sift[0][:10]) - root_sift(sift[1][:10])) ** 2).sum(1)
    np.testing.assert_allclose(euclid2, 2 - 2 * hellinger, atol=1e-5)


def test_rootsift_rejects_negative_values():
    with pytest.raises(ValueError, match="non-negative"):
        root_sift(np.array([[1.0, -0.5]]))


def test_tfidf_matches_a_hand_computed_case():
    counts = np.array([[2, 0, 1], [0, 0, 3], [1, 1, 0]])
    # n_i = (2, 1, 2) images hold each word, N = 3: idf = (ln 3/2, ln 3, ln 3/2)
    np.testing.assert_allclose(inverse_document_frequency(counts), [LOG_1_5, LOG_3, LOG_1_5])
    expected = [[2 / 3 * LOG_1_5, 0.0, 1 / 3 * LOG_1_5],
                [0.0, 0.0, LOG_1_5],
                [0.5 * LOG_1_5, 0.5 * LOG_3, 0.0]]
    np.testing.assert_allclose(tfidf(counts, inverse_document_frequency(counts)), expected, rtol=1e-6)


def test_idf_is_zero_for_ubiquitous_and_unseen_words():
    counts = np.array([[1, 0, 2], [4, 0, 1]])  # word 0 and 2 in every image, word 1 in none
    np.testing.assert_allclose(inverse_document_frequency(counts), [0.0, 0.0, 0.0])


def test_word_counts_add_up_to_the_keypoints(ct_slices, sift):
    bovw = BoVWDescriptor(n_words=30, max_iter=5, n_init=1).fit(ct_slices[:6])
    counts = bovw.word_counts(sift)
    assert counts.shape == (6, 30)
    np.testing.assert_array_equal(counts.sum(1), [len(f) for f in sift])
    assert bovw.vocabulary_.shape == (30, 128) and bovw.idf_.shape == (30,)


def test_uniform_region_of_a_real_image_has_no_keypoints_and_a_zero_histogram(lung_series, ct_slices):
    # the corner of a real 512 px CT slice outside the scanner's field of view (stored as -1024 HU)
    slices = window_hu(lung_series.hu[::8])
    corner = next(image[:64, :64] for image in slices if np.ptp(image[:64, :64]) == 0)
    assert sift_features(corner[None])[0].shape == (0, 128)
    bovw = BoVWDescriptor(n_words=20, max_iter=5, n_init=1).fit(ct_slices[:4])
    vectors = bovw.transform(np.stack([corner, slices[4][224:288, 224:288]]))  # as large, inside the chest
    assert not vectors[0].any() and vectors[1].any()


def test_needs_fit_and_checks_its_parameters(ct_slices):
    with pytest.raises(Exception, match="call fit first"):
        BoVWDescriptor().transform(ct_slices[:2])
    with pytest.raises(ValueError, match="Received: algorithm='kmeans'"):
        BoVWDescriptor(algorithm="kmeans").fit(ct_slices[:2])
    with pytest.raises(ValueError, match="n_words=100000"):
        BoVWDescriptor(n_words=100000).fit(ct_slices[:2])


def test_minibatch_kmeans_gives_the_same_kind_of_vocabulary(ct_slices):
    bovw = BoVWDescriptor(n_words=25, algorithm="minibatch", max_iter=5, n_init=1).fit(ct_slices[:6])
    assert bovw.vocabulary_.shape == (25, 128)
    assert bovw.transform(ct_slices[6:8]).shape == (2, 25)


def _chance(codes, axis):
    keys = np.array(codes) if axis == "class" else np.array([c.split("-")[{"modality": 0, "region": 1}[axis]]
                                                             for c in codes])
    _, n = np.unique(keys, return_counts=True)
    return float(((n / n.sum()) ** 2).sum())  # P(a random archive image shares a random query's key)


def test_bovw_retrieval_beats_chance_with_sift_and_rootsift(small_benchmark):
    # 28 px MedMNIST images (chest radiographs, breast ultrasound): about 10 keypoints an image
    archive, queries = small_benchmark.take_split("train"), small_benchmark.take_split("test")
    sift_db, sift_q = sift_features(archive.images), sift_features(queries.images)
    for root in (False, True):
        db, q = (sift_db, sift_q) if not root else (
            [root_sift(f) if len(f) else f for f in x] for x in (sift_db, sift_q))
        bovw = BoVWDescriptor(n_words=100, root=root, max_iter=10, n_init=1).fit_features(db)
        _, hits = search_database(bovw.transform_features(db), bovw.transform_features(q), "cosine", 10)
        report = retrieval_report(queries.codes, archive.codes, hits, axes=("region", "modality", "class"))
        for axis in ("region", "modality"):  # two of each, balanced: chance 0.5
            assert report.loc[axis, "P@1"] > _chance(archive.codes, axis) + 0.3, (root, axis)
        assert report.loc["class", "P@1"] > _chance(archive.codes, "class") + 0.15, root  # four codes: 0.25


def test_kmeans_clusters_a_seeded_sample_of_points_per_word(sift):
    n_local = sum(len(f) for f in sift)
    sampled = BoVWDescriptor(n_words=8, points_per_word=4, n_init=1, max_iter=5).fit_features(sift)
    assert sampled.n_local_fit_ == 32 < n_local
    everything = BoVWDescriptor(n_words=8, points_per_word=None, n_init=1, max_iter=5,
                                max_descriptors_per_image=0).fit_features(sift)
    assert everything.n_local_fit_ == n_local
    again = BoVWDescriptor(n_words=8, points_per_word=4, n_init=1, max_iter=5).fit_features(sift)
    np.testing.assert_array_equal(again.vocabulary_, sampled.vocabulary_)  # the sample is seeded
