"""Bag of visual words over SIFT or RootSIFT, re-weighted by TF-IDF (paper 002, Section V).

The offline phase detects SIFT keypoints (OpenCV's difference-of-Gaussians detector
and 128-d descriptor) in every archive image, optionally turns each descriptor into
RootSIFT (L1-normalise, then element-wise square root), and clusters a sample of
them with k-means into ``n_words`` visual words. An image is then the histogram of
the words its descriptors are nearest to, re-weighted by the paper's Eq. 1, and two
images are compared by cosine distance.

TF-IDF, Eq. 1 of the paper: ``t_id = (n_id / n_d) * log(N / n_i)``, with ``n_id`` the
count of word ``i`` in image ``d``, ``n_d`` the number of words in image ``d``, ``N`` the
number of archive images and ``n_i`` the number of archive images containing word ``i``.
scikit-learn's ``TfidfTransformer`` differs from it: its idf is ``log(N / n_i) + 1``
(``smooth_idf=False``; ``log((1 + N) / (1 + n_i)) + 1`` by default), so a word found in
every image keeps weight 1 instead of 0, and its term frequency is the raw count.
The ``+ 1`` changes the cosine ranking, so Eq. 1 is computed here directly. (The
division by ``n_d`` does not change a cosine ranking; it is kept to follow the paper.)
A word no archive image contains gets idf 0 (Eq. 1 would give infinity); it cannot
match any archive image, and under cosine distance the query's own norm does not
change its ranking, so this choice is harmless.

Reference: Barać et al. (paper 002), Section V and Figs. 2-3; RootSIFT from
Arandjelović & Zisserman, "Three things everyone should know to improve object retrieval", CVPR 2012.
"""

from __future__ import annotations

import cv2
import faiss
import numpy as np

from cbmir_tf.data.preprocess import resize_batch
from cbmir_tf.features.base import Descriptor, check_images

SIFT_DIM = 128
ALGORITHMS = ("faiss", "minibatch")


def root_sift(descriptors: np.ndarray, eps: float = 1e-12) -> np.ndarray:
    """RootSIFT: L1-normalise each SIFT descriptor, then take the element-wise square root.

    The result has unit L2 norm, and the Euclidean distance between two RootSIFT vectors is a
    monotone function of the Hellinger kernel of the original (L1-normalised) SIFT vectors.

    Args:
        descriptors: Non-negative array of shape ``(n, 128)``.
        eps: Guard against division by zero for an all-zero descriptor (which stays zero).

    Returns:
        float32 array of shape ``(n, 128)``.
    """
    descriptors = np.asarray(descriptors, dtype=np.float32)
    if descriptors.ndim != 2:
        raise ValueError(f"descriptors must have shape (n, d). Got shape {descriptors.shape} instead.")
    if (descriptors < 0).any():
        raise ValueError("RootSIFT needs non-negative descriptors (SIFT histograms). "
                         "Got negative values instead.")
    l1 = descriptors.sum(axis=1, keepdims=True)
    return np.sqrt(descriptors / np.maximum(l1, eps)).astype(np.float32)


def sift_features(images: np.ndarray, *, root: bool = False, image_size: int | None = None,
                  n_features: int = 0) -> list[np.ndarray]:
    """SIFT (or RootSIFT) descriptors of each image.

    Args:
        images: Grey uint8 images of shape ``(n, h, w)``.
        root: Return RootSIFT instead of SIFT. Defaults to `False`.
        image_size: Resize the images to this side first; `None` keeps them. Defaults to `None`.
        n_features: Keep at most this many strongest keypoints per image (0: all). Defaults to 0.

    Returns:
        A list of ``n`` float32 arrays of shape ``(n_i, 128)``; ``n_i`` is 0 where no keypoint is found
        (e.g. a uniform region).
    """
    images = check_images(images)
    if image_size is not None:
        images = resize_batch(images, image_size)
    sift = cv2.SIFT_create(nfeatures=int(n_features))
    features = []
    for image in images:
        _, desc = sift.detectAndCompute(np.ascontiguousarray(image), None)
        desc = np.zeros((0, SIFT_DIM), np.float32) if desc is None else desc.astype(np.float32)
        features.append(root_sift(desc) if root and len(desc) else desc)
    return features


def tfidf(counts: np.ndarray, idf: np.ndarray) -> np.ndarray:
    """Eq. 1 of paper 002: ``counts / counts.sum(1) * idf``; images without words stay zero.

    Args:
        counts: Word counts of shape ``(n, n_words)``.
        idf: ``log(N / n_i)`` of shape ``(n_words,)`` (see `BoVWDescriptor.idf_`).

    Returns:
        float32 array of shape ``(n, n_words)``.
    """
    counts = np.asarray(counts, dtype=np.float64)
    n_d = counts.sum(axis=1, keepdims=True)
    return (counts / np.maximum(n_d, 1) * np.asarray(idf, dtype=np.float64)[None]).astype(np.float32)


def inverse_document_frequency(counts: np.ndarray) -> np.ndarray:
    """``log(N / n_i)`` per word from archive word counts ``(N, n_words)``; 0 for words no image has."""
    counts = np.asarray(counts)
    n_i = (counts > 0).sum(axis=0)
    return np.where(n_i > 0, np.log(len(counts) / np.maximum(n_i, 1)), 0.0)


class BoVWDescriptor(Descriptor):
    """Bag of visual words over SIFT or RootSIFT with TF-IDF weights, compared by cosine distance.

    Reference: paper 002 (Barać et al.), Section V, Figs. 2-3, Tables III-V.

    Args:
        n_words: Vocabulary size (k of k-means). Paper: 4000 with RootSIFT. Defaults to 1000.
        root: Use RootSIFT instead of SIFT. Defaults to `True`.
        max_iter: k-means iterations (paper: 50). Defaults to 50.
        n_init: k-means restarts; the best inertia wins (paper: 5). Defaults to 5.
        algorithm: ``"faiss"`` (``faiss.Kmeans``, as the paper's code) or ``"minibatch"``
            (scikit-learn's ``MiniBatchKMeans``). Defaults to ``"faiss"``.
        max_descriptors_per_image: At most this many local descriptors per image, drawn at random,
            go into the vocabulary fit (0: all). Defaults to 100.
        points_per_word: k-means clusters at most this many descriptors per visual word, drawn
            at random from those (FAISS's own default of 256; `None`: all of them). Defaults to 256.
        image_size: Resize images to this side before SIFT; `None` keeps them (our 128 px images give
            20-300 keypoints each, near the paper's 50-350 at 256 px). Defaults to `None`.
        seed: Seed of the sampling and of k-means. Defaults to 0.

    Learned state: ``vocabulary_`` (float32 ``(n_words, 128)``), ``idf_`` (float64 ``(n_words,)``),
    ``n_images_fit_``, ``n_local_fit_`` (descriptors clustered), ``inertia_``.

    Example:
        >>> bovw = BoVWDescriptor(n_words=100).fit(archive_images)   # doctest: +SKIP
        >>> bovw.transform(query_images).shape                       # doctest: +SKIP
        (n, 100)
    """

    name = "bovw"
    metric = "cosine"
    learns_from_images = True

    def __init__(self, *, n_words: int = 1000, root: bool = True, max_iter: int = 50, n_init: int = 5,
                 algorithm: str = "faiss", max_descriptors_per_image: int = 100,
                 points_per_word: int | None = 256, image_size: int | None = None, seed: int = 0):
        self.n_words = n_words
        self.root = root
        self.max_iter = max_iter
        self.n_init = n_init
        self.algorithm = algorithm
        self.max_descriptors_per_image = max_descriptors_per_image
        self.points_per_word = points_per_word
        self.image_size = image_size
        self.seed = seed

    def _validate(self) -> None:
        if self.algorithm not in ALGORITHMS:
            raise ValueError(f"algorithm must be one of {ALGORITHMS}. Received: algorithm={self.algorithm!r}")
        for param in ("n_words", "max_iter", "n_init"):
            value = getattr(self, param)
            if not isinstance(value, (int, np.integer)) or value < 1:
                raise ValueError(f"{param} must be a positive integer. Received: {param}={value!r}")

    def local_features(self, images: np.ndarray) -> list[np.ndarray]:
        """SIFT or RootSIFT descriptors of each image, as this descriptor extracts them (`sift_features`)."""
        return sift_features(images, root=self.root, image_size=self.image_size)

    def fit(self, images: np.ndarray, y=None) -> "BoVWDescriptor":
        """Learn the vocabulary and the idf from archive images ``(n, h, w)`` uint8. Returns ``self``."""
        self._validate()
        return self.fit_features(self.local_features(images))

    def fit_features(self, features: list[np.ndarray]) -> "BoVWDescriptor":
        """`fit` from precomputed `local_features` (to reuse one extraction across a sweep)."""
        self._validate()
        rng = np.random.default_rng(self.seed)
        cap = self.max_descriptors_per_image
        sample = [f[rng.choice(len(f), cap, replace=False)] if cap and len(f) > cap else f for f in features]
        X = np.concatenate([np.zeros((0, SIFT_DIM), np.float32), *sample])
        X = np.ascontiguousarray(X, dtype=np.float32)
        if len(X) < self.n_words:
            raise ValueError(f"{len(X)} local descriptors from {len(features)} images cannot make "
                             f"{self.n_words} visual words; lower n_words or fit on more images. "
                             f"Received: n_words={self.n_words}")
        if self.points_per_word and len(X) > self.points_per_word * self.n_words:
            X = X[np.sort(rng.choice(len(X), self.points_per_word * self.n_words, replace=False))]
        if self.algorithm == "faiss":  # X is already the sample: FAISS clusters all of it
            kmeans = faiss.Kmeans(SIFT_DIM, int(self.n_words), niter=int(self.max_iter),
                                  nredo=int(self.n_init), seed=int(self.seed), verbose=False,
                                  max_points_per_centroid=len(X) // self.n_words + 1)
            kmeans.train(X)
            self.vocabulary_ = kmeans.centroids.astype(np.float32)
            self.inertia_ = float(kmeans.obj[-1]) if len(kmeans.obj) else float("nan")
        else:
            from sklearn.cluster import MiniBatchKMeans

            kmeans = MiniBatchKMeans(n_clusters=int(self.n_words), max_iter=int(self.max_iter),
                                     n_init=int(self.n_init), batch_size=4096, random_state=self.seed).fit(X)
            self.vocabulary_ = kmeans.cluster_centers_.astype(np.float32)
            self.inertia_ = float(kmeans.inertia_)
        self.n_local_fit_ = len(X)
        self._quantizer = None
        self.idf_ = inverse_document_frequency(self.word_counts(features))
        self.n_images_fit_ = len(features)
        return self

    def word_counts(self, features: list[np.ndarray]) -> np.ndarray:
        """Histogram of the nearest visual words, float32 ``(n, n_words)``; zero rows without keypoints."""
        self._check_fitted()
        if getattr(self, "_quantizer", None) is None:
            self._quantizer = faiss.IndexFlatL2(SIFT_DIM)
            self._quantizer.add(self.vocabulary_)
        counts = np.zeros((len(features), len(self.vocabulary_)), np.float32)
        sizes = np.array([len(f) for f in features])
        if sizes.sum():
            X = np.ascontiguousarray(np.concatenate([f for f in features if len(f)]), dtype=np.float32)
            _, words = self._quantizer.search(X, 1)
            np.add.at(counts, (np.repeat(np.arange(len(features)), sizes), words[:, 0]), 1)
        return counts

    def transform(self, images: np.ndarray) -> np.ndarray:
        """TF-IDF-weighted word histograms, float32 ``(n, n_words)``; compare by cosine distance."""
        self._check_fitted()
        return self.transform_features(self.local_features(images))

    def transform_features(self, features: list[np.ndarray]) -> np.ndarray:
        """`transform` from precomputed `local_features`."""
        self._check_fitted()
        return tfidf(self.word_counts(features), self.idf_)

    def __getstate__(self):  # the FAISS quantizer is rebuilt on demand
        state = super().__getstate__()
        state["_quantizer"] = None
        return state
