"""Every retrieval method of the book behind one interface: ``fit``, ``add``, ``search``.

A `RetrievalMethod` goes from pixels to hits:

* ``fit(images, labels)`` learns what the method needs from the archive: nothing for HOG or
  the Radon barcode, a visual vocabulary for BoVW, a trained network for CNNC, ResNet50V2-FPN,
  InRes-Net and the VGG-style configurations (these need the archive's integer labels);
* ``add(images)`` describes and indexes the archive (grey ``uint8`` ``(n, h, w)``);
* ``search(images, k)`` describes the queries and returns ``(D, I)``, both ``(nq, k)``:
  distances and archive row numbers, nearest first.

``bytes_per_image`` is what the method keeps per archive image to answer a query. The
side-by-side chapter builds its methods with these classes, and the ``cbmir`` command
line builds and stores the ones that need no labels (`CLI_METHODS`).
"""

from __future__ import annotations

import numpy as np

from cbmir_tf.features.base import Descriptor, check_images
from cbmir_tf.index import Index
from cbmir_tf.rerank import rerank_hits

__all__ = ["CLI_METHODS", "CNNCRBCMethod", "DescriptorMethod", "FPNFeatures", "InResHashingMethod",
           "RerankedMethod", "RetrievalMethod", "VGGFeatures", "make_method"]


class RetrievalMethod:
    """Base class: a retrieval method from archive pixels to ranked hits."""

    name: str = "method"
    needs_labels: bool = False

    def fit(self, images: np.ndarray, labels: np.ndarray | None = None) -> "RetrievalMethod":
        """Learn what the method needs from the archive images (and labels). Returns ``self``."""
        return self

    def add(self, images: np.ndarray) -> "RetrievalMethod":
        """Describe and index the archive ``images``; their row numbers become the ids."""
        raise NotImplementedError

    def search(self, images: np.ndarray, k: int = 10) -> tuple[np.ndarray, np.ndarray]:
        """The ``k`` nearest archive images of each query image: ``(D, I)`` of shape ``(nq, k)``."""
        raise NotImplementedError

    @property
    def bytes_per_image(self) -> float:
        """Bytes stored per archive image (vectors and codes; the index's own overhead excluded)."""
        raise NotImplementedError

    def _check_labels(self, labels) -> np.ndarray:
        if labels is None:
            raise ValueError(f"{self.name} trains a network: fit(images, labels) needs the archive's labels.")
        return np.asarray(labels)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r})"


class DescriptorMethod(RetrievalMethod):
    """One descriptor, one exact FAISS index under the descriptor's metric.

    Args:
        descriptor: Any `cbmir_tf.features.base.Descriptor` (HOG, BoVW, CNN, Radon barcode,
            `FPNFeatures`, `VGGFeatures`, ...).
        name: Display name. Defaults to the descriptor's ``name``.

    Learned state (``add``): ``vectors_`` (the archive's descriptors) and ``index_``.
    """

    def __init__(self, descriptor: Descriptor, name: str | None = None):
        self.descriptor = descriptor
        self.name = name or descriptor.name
        self.needs_labels = bool(getattr(descriptor, "needs_labels", False))

    @property
    def metric(self) -> str:
        return self.descriptor.metric

    def fit(self, images, labels=None) -> "DescriptorMethod":
        self.descriptor.fit(check_images(images), labels)
        return self

    def describe(self, images) -> np.ndarray:
        """The descriptor of each image, ``(n, d)``."""
        return self.descriptor.transform(check_images(images))

    def add(self, images) -> "DescriptorMethod":
        return self.add_vectors(self.describe(images))

    def add_vectors(self, vectors: np.ndarray) -> "DescriptorMethod":
        """Index precomputed archive descriptors ``(n, d)`` (row numbers are the ids)."""
        self.vectors_ = np.asarray(vectors)
        self.index_ = Index(self.metric, descriptor=self.descriptor.name).add(self.vectors_)
        return self

    def search(self, images, k: int = 10):
        return self.search_vectors(self.describe(images), k)

    def search_vectors(self, vectors: np.ndarray, k: int = 10, *, exclude=None):
        """`search` from descriptors computed before; ``exclude`` as in `Index.search` (leave-one-out)."""
        return self.index_.search(vectors, k, exclude=exclude)

    @property
    def bytes_per_image(self) -> float:
        if self.metric == "hamming":  # bits, stored packed 8 to a byte
            return self.index_.d / 8
        return self.vectors_.nbytes / len(self.vectors_)


class RerankedMethod(RetrievalMethod):
    """Paper 002's re-ranking: ``k_prep`` hits of a first method, re-sorted by a second descriptor.

    Args:
        first: The method that proposes candidates.
        second: The method whose descriptor re-sorts them (only its descriptor and archive vectors
            are used).
        k_prep: Candidates taken from ``first``. Defaults to 30.
    """

    def __init__(self, first: DescriptorMethod, second: DescriptorMethod, k_prep: int = 30):
        self.first, self.second, self.k_prep = first, second, int(k_prep)
        self.name = f"{first.name} re-ranked by {second.name}"
        self.needs_labels = first.needs_labels or second.needs_labels

    def fit(self, images, labels=None) -> "RerankedMethod":
        self.first.fit(images, labels)
        self.second.fit(images, labels)
        return self

    def add(self, images) -> "RerankedMethod":
        self.first.add(images)
        self.second.vectors_ = self.second.describe(images)
        return self

    def search(self, images, k: int = 10):
        return self.search_vectors(self.first.describe(images), self.second.describe(images), k)

    def search_vectors(self, first_vectors: np.ndarray, second_vectors: np.ndarray, k: int = 10, *, exclude=None):
        """`search` from both descriptors of the queries computed before; ``exclude`` as in `Index.search`."""
        # a small archive (one image fewer when excluding) has fewer candidates
        k_prep = min(self.k_prep, self.first.index_.ntotal - (exclude is not None))
        if not 1 <= int(k) <= k_prep:
            raise ValueError(f"k must lie in [1, k_prep={k_prep}]. Received: k={k!r}")
        _, candidates = self.first.search_vectors(first_vectors, k_prep, exclude=exclude)
        return rerank_hits(candidates, second_vectors, self.second.vectors_, self.second.metric, k_prep, int(k))

    @property
    def bytes_per_image(self) -> float:
        second = self.second.vectors_
        bits = self.second.metric == "hamming" and second.dtype != np.uint8
        return self.first.bytes_per_image + second.nbytes / len(second) / (8 if bits else 1)


def _validation_split(labels: np.ndarray, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Boolean masks (fit, validation): a stratified ``fraction`` of each class, at least one image kept."""
    from cbmir_tf.data.dataset import stratified_split

    val = stratified_split(labels, fraction, seed) == "test"
    return ~val, val


class FPNFeatures(Descriptor):
    """Paper 000's descriptor: ResNet50V2-FPN trained on the archive's classes, pooled pyramid vector (L2).

    ``fit(images, labels)`` holds out a stratified ``val_fraction`` for early stopping, balances
    the rest to ``balance_per_class`` images a class (random affine copies for small classes) and
    trains with Adam, as chapter 6 does; ``transform`` returns the ``features`` layer.
    """

    name = "resnet50v2-fpn"
    metric = "l2"
    needs_labels = True

    def __init__(self, *, input_size: int = 64, feature_dim: int = 256, pyramid_channels: int = 128,
                 balance_per_class: int = 20, epochs: int = 3, batch_size: int = 16, learning_rate: float = 1e-3,
                 patience: int | None = 2, val_fraction: float = 0.2, run_eagerly: bool = False, seed: int = 0):
        self.input_size = input_size
        self.feature_dim = feature_dim
        self.pyramid_channels = pyramid_channels
        self.balance_per_class = balance_per_class
        self.epochs = epochs
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.patience = patience
        self.val_fraction = val_fraction
        self.run_eagerly = run_eagerly
        self.seed = seed

    def fit(self, images, y=None) -> "FPNFeatures":
        from cbmir_tf.data.balance import balance_classes
        from cbmir_tf.models.baselines import build_network
        from cbmir_tf.models.resnet50v2_fpn import feature_extractor, preprocess_input
        from cbmir_tf.models.training import fit_classifier
        from cbmir_tf.seeding import seed_everything

        images, y = check_images(images), np.asarray(y)
        fit_rows, val_rows = _validation_split(y, self.val_fraction, self.seed)
        x_bal, y_bal, _ = balance_classes(images[fit_rows], y[fit_rows], self.balance_per_class, self.seed)
        seed_everything(self.seed)
        size = int(self.input_size)
        self.model_ = build_network("resnet50v2_fpn", input_shape=(size, size, 1), classes=int(y.max()) + 1,
                                    feature_dim=self.feature_dim, pyramid_channels=self.pyramid_channels)
        self.run_ = fit_classifier(self.model_, preprocess_input(x_bal, size), y_bal,
                                   (preprocess_input(images[val_rows], size), y[val_rows]), epochs=self.epochs,
                                   batch_size=self.batch_size, learning_rate=self.learning_rate,
                                   patience=self.patience, seed=self.seed, run_eagerly=self.run_eagerly, verbose=0)
        self.extractor_ = feature_extractor(self.model_)
        return self

    def transform(self, images) -> np.ndarray:
        from cbmir_tf.models.resnet50v2_fpn import extract_features

        self._check_fitted()
        return extract_features(self.extractor_, check_images(images))


class VGGFeatures(Descriptor):
    """Paper 004's descriptor: one VGG-style configuration (A-G) trained on the archive, last hidden FC (L2).

    ``fit(images, labels)`` learns the CLAHE + mean-image preprocessing, holds out a stratified
    ``val_fraction`` and trains with the paper's SGD recipe and early stopping (chapter 5).
    """

    name = "vgg-config"
    metric = "l2"
    needs_labels = True

    def __init__(self, *, config: str = "C", image_size: int = 64, epochs: int = 4, batch_size: int = 32,
                 learning_rate: float = 0.01, patience: int = 3, val_fraction: float = 0.1, seed: int = 0):
        self.config = config
        self.image_size = image_size
        self.epochs = epochs
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.patience = patience
        self.val_fraction = val_fraction
        self.seed = seed

    def fit(self, images, y=None) -> "VGGFeatures":
        from cbmir_tf.models.vgg_configs import VGGPreprocessor, feature_extractor, train_config

        images, y = check_images(images), np.asarray(y)
        fit_rows, val_rows = _validation_split(y, self.val_fraction, self.seed)
        self.preprocessor_ = VGGPreprocessor(image_size=self.image_size).fit(images[fit_rows])
        x = self.preprocessor_.transform(images)
        self.model_, self.history_ = train_config(
            self.config, (x[fit_rows], y[fit_rows]), (x[val_rows], y[val_rows]), classes=int(y.max()) + 1,
            epochs=self.epochs, batch_size=self.batch_size, learning_rate=self.learning_rate,
            patience=self.patience, seed=self.seed)
        self.extractor_ = feature_extractor(self.model_)
        return self

    def transform(self, images) -> np.ndarray:
        self._check_fitted()
        x = self.preprocessor_.transform(check_images(images))
        return np.concatenate([np.asarray(self.extractor_.predict_on_batch(x[s:s + 256]))
                               for s in range(0, len(x), 256)]).astype(np.float32)


class CNNCRBCMethod(RetrievalMethod):
    """Paper 003: binary codes of a trained shallow CNN propose candidates, Radon barcodes re-rank them.

    Args:
        input_size: Network input side (paper: 128 or 96). Defaults to 128.
        n_candidates: CNNC candidates per query (paper: 50). Defaults to 50.
        epochs, steps_per_epoch, batch_size, learning_rate, patience, val_fraction, seed: Training
            of `cbmir_tf.models.shallow_cnn.train_classifier` (Adam; chapter 4).

    The archive's barcodes are computed once in ``add`` and kept (``cache_barcodes``), so
    ``bytes_per_image`` counts the 1,000-bit CNNC and the 4,352-bit barcode.
    """

    name = "CNNC+RBC"
    needs_labels = True

    def __init__(self, *, input_size: int = 128, n_candidates: int = 50, epochs: int = 6,
                 steps_per_epoch: int | None = None, batch_size: int = 32, learning_rate: float = 1e-3,
                 patience: int | None = 3, val_fraction: float = 0.2, seed: int = 0):
        self.input_size, self.n_candidates = int(input_size), int(n_candidates)
        self.training = {"epochs": epochs, "steps_per_epoch": steps_per_epoch, "batch_size": batch_size,
                         "learning_rate": learning_rate, "patience": patience}
        self.val_fraction, self.seed = val_fraction, seed

    def fit(self, images, labels=None) -> "CNNCRBCMethod":
        from cbmir_tf.cnnc_rbc import CNNCRBCSearch
        from cbmir_tf.features.cnn_code import CNNCode
        from cbmir_tf.features.radon_barcode import RadonBarcode
        from cbmir_tf.models.shallow_cnn import ShallowCNN, preprocess_input, train_classifier
        from cbmir_tf.seeding import seed_everything

        images, y = check_images(images), self._check_labels(labels)
        fit_rows, val_rows = _validation_split(y, self.val_fraction, self.seed)
        size = self.input_size
        seed_everything(self.seed)
        self.model_ = ShallowCNN(input_shape=(size, size, 1), classes=int(y.max()) + 1)
        train_classifier(self.model_, preprocess_input(images[fit_rows], size), y[fit_rows],
                         validation_data=(preprocess_input(images[val_rows], size), y[val_rows]),
                         seed=self.seed, verbose=0, **self.training)
        self.search_ = CNNCRBCSearch(CNNCode(self.model_), RadonBarcode(), n_candidates=self.n_candidates,
                                     k=min(10, self.n_candidates), cache_barcodes=True)
        return self

    def add(self, images) -> "CNNCRBCMethod":
        self.search_.add(check_images(images))
        return self

    def search(self, images, k: int = 10):
        return self.search_.search(check_images(images), k)

    @property
    def bytes_per_image(self) -> float:
        codes = self.search_.index_
        return codes.d / 8 + self.search_.barcodes_.shape[1]


class InResHashingMethod(RetrievalMethod):
    """Paper 001: InRes-Net's hash layer gives a Hamming pool, FC1 vectors rank it (coarse to fine).

    The U-Net lung mask of paper 001 is specific to chest CT and is left out here: the network is
    trained on the archive's classes and searches whole images.

    Args:
        input_size, stem_filters, stages, fc1_units, hash_bits, init_stddev: The network
            (`cbmir_tf.models.inres_net.InResNet`).
        epochs, batch_size, learning_rate, momentum: SGD training (`train_inres_net`).
        hamming_threshold, threshold_step: The coarse pool (`CoarseToFineSearch`); the pool is
            widened until it holds at least ``min_pool`` images. Defaults to 8, 2 and 10.
        seed: Seeds the weights and the training. Defaults to 0.
    """

    name = "InRes-Net hashing"
    needs_labels = True

    def __init__(self, *, input_size: int = 64, stem_filters: int = 16, stages: int = 2, fc1_units: int = 128,
                 hash_bits: int = 48, init_stddev: float | None = None, epochs: int = 10, batch_size: int = 32,
                 learning_rate: float = 0.01, momentum: float = 0.9, hamming_threshold: int = 8,
                 threshold_step: int = 2, min_pool: int = 10, seed: int = 0):
        self.network = {"stem_filters": stem_filters, "stages": stages, "fc1_units": fc1_units,
                        "hash_bits": hash_bits, "init_stddev": init_stddev}
        self.training = {"epochs": epochs, "batch_size": batch_size, "learning_rate": learning_rate,
                         "momentum": momentum}
        self.pool = {"hamming_threshold": hamming_threshold, "threshold_step": threshold_step, "min_pool": min_pool}
        self.input_size, self.seed = int(input_size), seed

    def _features(self, images) -> tuple[np.ndarray, np.ndarray]:
        """Binary codes (H >= 0.5) and FC1 vectors, from the feature tap built once in ``fit``."""
        from cbmir_tf.models import inres_net

        x = inres_net.preprocess_input(check_images(images), self.input_size)
        outputs = [self.features_model_.predict_on_batch(x[s:s + 64]) for s in range(0, len(x), 64)]
        fc1, hash_layer = (np.concatenate([np.asarray(o[i]) for o in outputs]).astype(np.float32)
                           for i in (inres_net.FEATURE_LAYERS.index("fc1"), inres_net.FEATURE_LAYERS.index("hash")))
        return inres_net.binary_codes(hash_layer), fc1

    def fit(self, images, labels=None) -> "InResHashingMethod":
        from cbmir_tf.models import inres_net

        images, y = check_images(images), self._check_labels(labels)
        size = self.input_size
        self.model_ = inres_net.InResNet(input_shape=(size, size, 1), classes=int(y.max()) + 1, seed=self.seed,
                                         **self.network)
        inres_net.train_inres_net(self.model_, inres_net.preprocess_input(images, size), y, seed=self.seed,
                                  verbose=0, **self.training)
        self.features_model_ = inres_net.feature_model(self.model_)
        return self

    def add(self, images) -> "InResHashingMethod":
        from cbmir_tf.coarse_to_fine import CoarseToFineSearch

        codes, fc1 = self._features(images)
        self.search_ = CoarseToFineSearch(**self.pool).fit(codes, fc1)
        return self

    def search(self, images, k: int = 10):
        codes, fc1 = self._features(images)
        return self.search_.search(codes, fc1, k)

    @property
    def bytes_per_image(self) -> float:
        return self.search_.packed_codes_.shape[1] + self.search_.features_.shape[1] * 4


def _hog():
    from cbmir_tf.features.hog import HOGDescriptor

    return HOGDescriptor()


def _bovw(n_words: int = 1000):
    from cbmir_tf.features.bovw import BoVWDescriptor

    return BoVWDescriptor(n_words=n_words, n_init=1)


def _cnn():
    from cbmir_tf.features.cnn import CNNDescriptor

    return CNNDescriptor(model="squeezenet")


def _rbc():
    from cbmir_tf.features.radon_barcode import RadonBarcode

    return RadonBarcode()


#: Methods that need no labels, by the name the ``cbmir`` command line knows them by.
CLI_METHODS = {
    "hog": "HOG, L1 (paper 002; 540 floats at 256 px)",
    "bovw": "RootSIFT bag of 1,000 visual words, TF-IDF, cosine (paper 002)",
    "cnn": "SqueezeNet (ImageNet) last map, 5 x 5 average pooling, L2 (paper 002)",
    "rbc": "Radon barcode, 16 angles at 192 px, Hamming (paper 003)",
    "cnn+hog": "SqueezeNet hits re-ranked by HOG, k_prep 30 (paper 002's final pair)",
}


def make_method(name: str, **kwargs) -> RetrievalMethod:
    """The label-free method ``name`` of `CLI_METHODS`.

    ``kwargs``: ``n_words`` for ``"bovw"``, ``k_prep`` for ``"cnn+hog"``.
    """
    single = {"hog": _hog, "bovw": _bovw, "cnn": _cnn, "rbc": _rbc}
    if name in single:
        return DescriptorMethod(single[name](**kwargs), name=name)
    if name == "cnn+hog":
        return RerankedMethod(DescriptorMethod(_cnn(), "cnn"), DescriptorMethod(_hog(), "hog"), **kwargs)
    raise ValueError(f"Unknown method {name!r}. Choose one of {sorted(CLI_METHODS)}.")
