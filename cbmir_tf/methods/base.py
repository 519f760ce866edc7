"""What every retrieval method shares: ``fit``, ``add``, ``search``, and training once.

A `RetrievalMethod` goes from pixels to hits:

* ``fit(images, labels)`` learns what the method needs from the archive: nothing for HOG or the
  Radon barcode, a visual vocabulary for BoVW, a trained network for CNNC+RBC, ResNet50V2-FPN,
  InRes-Net and the VGG-style configurations (these need the archive's integer labels);
* ``add(images)`` describes and indexes the archive (grey ``uint8`` ``(n, h, w)``);
* ``search(images, k)`` describes the queries and returns ``(D, I)``, both ``(nq, k)``: distances
  and archive row numbers, nearest first.

Both ``add`` and ``search`` go through ``describe(images)`` (an array, or a dict of arrays for
methods with two stages), so a chapter can describe once and then call ``add_described`` and
``search_described`` (the latter with ``exclude`` for leave-one-out). A method's settings are its
constructor's keyword arguments (:meth:`RetrievalMethod.get_settings`), written per profile in
:mod:`cbmir_tf.profiles`.

`LearnedMethod` adds the train-once cache of :mod:`cbmir_tf.methods.cache`: ``fit`` loads the
network saved under the key of (data, settings, versions) when there is one, and trains and saves
it otherwise; ``describe`` keeps each batch's descriptors beside it.
"""

from __future__ import annotations

import inspect
import json
import time
from pathlib import Path

import numpy as np

from cbmir_tf.data.io import atomic_directory, atomic_write
from cbmir_tf.features.base import Descriptor, check_images
from cbmir_tf.methods import cache as model_cache
from cbmir_tf.search.index import Index


class RetrievalMethod:
    """Base class: a retrieval method from archive pixels to ranked hits."""

    #: Display name (tables, plots).
    name: str = "method"
    #: Short name in :data:`cbmir_tf.methods.METHODS` and in the profiles.
    key: str = "method"
    #: Which paper the method comes from ("000" .. "004").
    paper: str = ""
    needs_labels: bool = False

    def get_settings(self) -> dict:
        """The method's settings: its constructor's keyword arguments, as stored on the instance."""
        names = [p for p in inspect.signature(type(self).__init__).parameters if p not in ("self",)]
        return {name: getattr(self, name) for name in names if hasattr(self, name)}

    def fit(self, images: np.ndarray, labels: np.ndarray | None = None) -> RetrievalMethod:
        """Learn what the method needs from the archive images (and labels). Returns ``self``."""
        return self

    def describe(self, images: np.ndarray):
        """The method's description of each image: ``(n, d)`` vectors, or a dict of such arrays."""
        raise NotImplementedError

    def add(self, images: np.ndarray) -> RetrievalMethod:
        """Describe and index the archive ``images``; their row numbers become the ids."""
        return self.add_described(self.describe(images))

    def add_described(self, described) -> RetrievalMethod:
        """Index an archive described by `describe`."""
        raise NotImplementedError

    def search(self, images: np.ndarray, k: int = 10) -> tuple[np.ndarray, np.ndarray]:
        """The ``k`` nearest archive images of each query image: ``(D, I)`` of shape ``(nq, k)``."""
        return self.search_described(self.describe(images), k)

    def search_described(self, described, k: int = 10, *, exclude=None) -> tuple[np.ndarray, np.ndarray]:
        """`search` from queries described by `describe`; ``exclude`` as in `Index.search` (leave-one-out)."""
        raise NotImplementedError

    @property
    def bytes_per_image(self) -> float:
        """Bytes stored per archive image (vectors and codes; the index's own overhead excluded)."""
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r})"


class VectorSearchMixin:
    """``add_described`` / ``search_described`` for methods that describe an image by one vector:
    an exact FAISS index under ``self.metric``."""

    metric: str = "l2"
    #: The FAISS index kind ``add_described`` builds: ``"flat"`` (exact), ``"ivf"`` / ``"hnsw"``
    #: (approximate, calibrated to recall@10 >= 0.95 against exact search) or ``"ivfpq"`` (compressed
    #: codes; `cbmir_tf.search.index.Index`).
    index_kind: str = "flat"

    def add_described(self, vectors):
        self.vectors_ = np.asarray(vectors)
        descriptor = getattr(self, "descriptor", None)  # a DescriptorMethod's index names its descriptor
        index = Index(self.metric, kind=self.index_kind, descriptor=descriptor.name if descriptor else self.key)
        if self.index_kind in ("ivf", "ivfpq"):
            index.train(self.vectors_)
        self.index_ = index.add(self.vectors_)
        return self

    def search_described(self, vectors, k: int = 10, *, exclude=None):
        return self.index_.search(vectors, k, exclude=exclude)

    @property
    def bytes_per_image(self) -> float:
        if self.metric == "hamming":  # bits, stored packed 8 to a byte
            return self.index_.d / 8
        if self.index_.kind == "ivfpq":  # one byte of code per sub-vector
            return float(self.index_.pq_m)
        return self.vectors_.nbytes / len(self.vectors_)


class DescriptorMethod(VectorSearchMixin, RetrievalMethod):
    """One descriptor, one exact FAISS index under the descriptor's metric.

    Args:
        descriptor: Any `cbmir_tf.features.base.Descriptor` (HOG, BoVW, CNN, Radon barcode, ...).
        name: Display name. Defaults to the descriptor's ``name``.

    Learned state (``add``): ``vectors_`` (the archive's descriptors) and ``index_``.
    """

    def __init__(self, descriptor: Descriptor, name: str | None = None):
        self.descriptor = descriptor
        self.name = name or descriptor.name
        self.needs_labels = bool(getattr(descriptor, "needs_labels", False))

    def get_settings(self) -> dict:
        return self.descriptor.get_params()

    @property
    def metric(self) -> str:
        return self.descriptor.metric

    def fit(self, images, labels=None) -> DescriptorMethod:
        self.descriptor.fit(check_images(images), labels)
        return self

    def describe(self, images) -> np.ndarray:
        """The descriptor of each image, ``(n, d)``."""
        return self.descriptor.transform(check_images(images))


def validation_split(labels: np.ndarray, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Boolean masks (fit, validation): a stratified ``fraction`` of each class, at least one image kept."""
    from cbmir_tf.data.dataset import stratified_split

    val = stratified_split(labels, fraction, seed) == "test"
    return ~val, val


def check_learning_settings(val_fraction: float, training: dict | None) -> None:
    """Raise a one-line ``ValueError`` for a validation share outside (0, 1) or a ``training`` key that
    :func:`cbmir_tf.models.training.train` does not take."""
    from cbmir_tf.models.training import train

    if not 0.0 < val_fraction < 1.0:
        raise ValueError(f"val_fraction must lie in (0, 1). Received: val_fraction={val_fraction!r}")
    known = set(inspect.signature(train).parameters) - {"model", "x", "y", "validation_data", "seed"}
    unknown = set(training or {}) - known
    if unknown:
        raise ValueError(f"training takes the arguments of cbmir_tf.models.training.train {sorted(known)}. "
                         f"Received unknown: {sorted(unknown)}")


_SECONDS = "__describe_seconds__"  # stored beside cached descriptors


class LearnedMethod(RetrievalMethod):
    """A method whose network is trained on the archive's labels, once per cache key.

    Subclasses implement ``_train(images, labels) -> dict`` (the training runs, as
    `TrainingRun.to_dict` records, by network name), ``_save(folder)``, ``_load(folder)`` and
    ``_describe(images)``. ``fit`` and ``describe`` add the cache around them.

    Learned state: ``training_`` (the runs, loaded from the cache too), ``cache_folder_``,
    ``from_cache_`` (whether ``fit`` loaded instead of training), ``train_s_`` (the training's
    wall time, when it ran), ``fit_s_`` (this call's) and ``describe_s_`` (the last `describe`'s
    wall time, when it was computed, also for a batch read from the cache).
    """

    needs_labels = True
    #: Smallest batch whose descriptors `describe` keeps in the cache.
    CACHE_MIN_BATCH = 32

    def fit(self, images, labels=None, *, cache: bool | str | Path = True) -> LearnedMethod:
        """Train on ``(images, labels)``, or load the network trained before under the same key.

        Args:
            images: Archive images, grey ``uint8`` ``(n, h, w)``.
            labels: Their integer class labels ``(n,)``.
            cache: `True`: the model cache (:func:`cbmir_tf.config.model_cache_dir`); a folder:
                that cache root; `False`: train without caching. Defaults to `True`.
        """
        images = check_images(images)
        if labels is None:
            raise ValueError(f"{self.name} trains a network: fit(images, labels) needs the archive's labels.")
        labels = np.asarray(labels)
        if len(labels) != len(images):
            raise ValueError(f"labels must have one entry per image ({len(images)}). Got {len(labels)} instead.")
        settings = self.get_settings()
        data = model_cache.data_checksum(images, labels)
        root = model_cache.resolve_cache(cache)
        key = model_cache.cache_key(self.key, settings, data)
        self.cache_folder_ = None if root is None else root / self.key / key
        start = time.perf_counter()
        if self.cache_folder_ is not None and (self.cache_folder_ / model_cache.RECORD).is_file():
            self._load(self.cache_folder_)
            record = json.loads((self.cache_folder_ / model_cache.RECORD).read_text(encoding="utf-8"))
            self.training_, self.train_s_, self.from_cache_ = record["training"], record["train_s"], True
        else:
            self.training_ = self._train(images, labels)
            self.train_s_, self.from_cache_ = time.perf_counter() - start, False
            if self.cache_folder_ is not None:
                self._store(self.cache_folder_, key, settings, data)
        self.fit_s_ = time.perf_counter() - start
        return self

    def _store(self, folder: Path, key: str, settings: dict, data: str) -> None:
        record = {"key": key, **model_cache.key_inputs(self.key, settings, data), "train_s": self.train_s_,
                  "training": self.training_}
        text = json.dumps(record, indent=1, default=str)
        with atomic_directory(folder, marker=model_cache.RECORD) as tmp:
            self._save(tmp)
            (tmp / model_cache.RECORD).write_text(text, encoding="utf-8")

    def describe(self, images):
        """The description of each image, read from the cache when this batch was described before.

        Batches of at least :attr:`CACHE_MIN_BATCH` images (an archive, a query set) are cached;
        smaller ones (a single query) are always described afresh.
        """
        self._check_fitted()
        images = check_images(images)
        folder = self.cache_folder_
        if folder is None or len(images) < self.CACHE_MIN_BATCH:
            start = time.perf_counter()
            described = self._describe(images)
            self.describe_s_ = time.perf_counter() - start
            return described
        path = folder / "described" / f"{model_cache.data_checksum(images)[:24]}.npz"
        if path.is_file():
            with np.load(path) as saved:
                arrays = {name: saved[name] for name in saved.files}
            self.describe_s_ = float(arrays.pop(_SECONDS, np.nan))  # what describing took when computed
            return arrays["vectors"] if list(arrays) == ["vectors"] else arrays
        start = time.perf_counter()
        described = self._describe(images)
        self.describe_s_ = time.perf_counter() - start
        arrays = described if isinstance(described, dict) else {"vectors": described}
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_write(path, "wb") as f:
            np.savez(f, **arrays, **{_SECONDS: np.float64(self.describe_s_)})
        return described

    def _check_fitted(self) -> None:
        if not hasattr(self, "training_"):
            raise ValueError(f"This {type(self).__name__} is not fitted yet: call fit(images, labels) first.")

    def _train(self, images: np.ndarray, labels: np.ndarray) -> dict:
        raise NotImplementedError

    def _save(self, folder: Path) -> None:
        raise NotImplementedError

    def _load(self, folder: Path) -> None:
        raise NotImplementedError

    def _describe(self, images: np.ndarray):
        raise NotImplementedError
