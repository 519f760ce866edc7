"""ResNet50V2 with a feature pyramid (paper 000): a classifier trained on the archive's balanced
classes, whose pooled pyramid vector (layer ``features``) is the descriptor, L2 distance.

``fit`` holds out a stratified ``val_fraction`` of the archive for early stopping, evens the
rest out to ``balance_per_class`` images a class (:func:`cbmir_tf.data.balance.balance_classes`:
small classes topped up with random affine copies of their images, large ones sampled down), as
the paper does, and trains through :func:`cbmir_tf.models.training.train`. The same class trains
the chapter's baselines (``network="resnet50v2"``, ``"resnet50"`` or ``"vgg16"``: a plain backbone
with the same head, :mod:`cbmir_tf.models.baselines`) and its ablation (``levels``: the pyramid
levels that enter the vector).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from cbmir_tf.features.base import check_images
from cbmir_tf.methods.base import LearnedMethod, VectorSearchMixin, check_learning_settings, validation_split

#: The pyramid levels of the FPN, finest first.
LEVELS = ("P2", "P3", "P4", "P5")
#: Display name of each network (:data:`cbmir_tf.models.baselines.NETWORKS`).
NETWORK_NAMES = {"resnet50v2_fpn": "ResNet50V2-FPN", "resnet50v2": "ResNet50V2", "resnet50": "ResNet50",
                 "vgg16": "VGG16"}
#: Images per forward pass when describing or classifying.
PREDICT_BATCH = 128


class ResNet50V2FPN(VectorSearchMixin, LearnedMethod):
    """ResNet50V2-FPN (or one of its baselines) trained on the archive; descriptors from ``features``.

    Args:
        input_size: Side of the square network input (a multiple of 32). Defaults to 128 (the paper's).
        feature_dim: Length of the descriptor (the FPN's is four levels of ``feature_dim // 4``).
            Defaults to 256.
        pyramid_channels: Channels of every pyramid level (FPN only). Defaults to 256.
        balance_per_class: Training images per class after balancing. Defaults to 200 (the paper's).
        val_fraction: Stratified share of the archive held out for early stopping. Defaults to 0.2.
        training: Keyword arguments of :func:`cbmir_tf.models.training.train` (optimiser, learning
            rate, epochs, batch size, steps per epoch, patience, time budget, ...). Defaults to its
            own defaults.
        network: ``"resnet50v2_fpn"`` or a baseline of :data:`cbmir_tf.models.baselines.NETWORKS`.
            Defaults to ``"resnet50v2_fpn"``.
        levels: FPN only: the pyramid levels whose vectors form the descriptor. Defaults to all four.
        seed: Seeds the split, the balancing, the weights and the batch order. Defaults to 0.

    Learned state (``fit``): ``model_`` (the classifier), ``extractor_`` (input to ``features``)
    and what :class:`~cbmir_tf.methods.base.LearnedMethod` adds (``training_``: one run, under the
    network's name).
    """

    key, paper, metric, name = "resnet50v2_fpn", "000", "l2", "ResNet50V2-FPN"

    def __init__(self, *, input_size: int = 128, feature_dim: int = 256, pyramid_channels: int = 256,
                 balance_per_class: int = 200, val_fraction: float = 0.2, training: dict | None = None,
                 network: str = "resnet50v2_fpn", levels=LEVELS, seed: int = 0):
        if network not in NETWORK_NAMES:
            raise ValueError(f"network must be one of {tuple(NETWORK_NAMES)}. Received: network={network!r}")
        if not levels or not set(levels) <= set(LEVELS) or len(set(levels)) != len(levels):
            raise ValueError(f"levels must be a non-empty subset of {LEVELS}. Received: levels={levels!r}")
        if int(input_size) < 32 or int(input_size) % 32:
            raise ValueError("input_size must be a positive multiple of 32. "
                             f"Received: input_size={input_size!r}")
        check_learning_settings(val_fraction, training)
        if int(balance_per_class) < 1:
            raise ValueError("balance_per_class must be at least 1. "
                             f"Received: balance_per_class={balance_per_class!r}")
        self.input_size = input_size
        self.feature_dim = feature_dim
        self.pyramid_channels = pyramid_channels
        self.balance_per_class = balance_per_class
        self.val_fraction = val_fraction
        self.training = training
        self.network = network
        self.levels = levels
        self.seed = seed
        fewer = network == "resnet50v2_fpn" and tuple(levels) != LEVELS
        self.name = NETWORK_NAMES[network] + (f" ({'+'.join(levels)})" if fewer else "")

    def _train(self, images: np.ndarray, labels: np.ndarray) -> dict:
        from cbmir_tf.data.balance import balance_classes
        from cbmir_tf.data.preprocess import to_model_input
        from cbmir_tf.models.baselines import build_network
        from cbmir_tf.models.training import train
        from cbmir_tf.seeding import seed_everything

        fit_rows, val_rows = validation_split(labels, self.val_fraction, self.seed)
        x, y, _ = balance_classes(images[fit_rows], labels[fit_rows], int(self.balance_per_class), self.seed)
        size = int(self.input_size)
        # a tiny archive (a dry run) may round every class's share to no image: no early stopping then
        validation = (to_model_input(images[val_rows], size), labels[val_rows]) if val_rows.any() else None
        seed_everything(self.seed)  # the initial weights
        self.model_ = build_network(self.network, input_shape=(size, size, 1),
                                    classes=max(int(labels.max()) + 1, 2), feature_dim=int(self.feature_dim),
                                    levels=tuple(self.levels), pyramid_channels=int(self.pyramid_channels))
        run = train(self.model_, to_model_input(x, size), y, validation, seed=self.seed,
                    **(self.training or {}))
        self._set_extractor()
        return {self.network: run.to_dict()}

    def _set_extractor(self) -> None:
        from cbmir_tf.models.resnet50v2_fpn import feature_extractor

        self.extractor_ = feature_extractor(self.model_)

    def _save(self, folder: Path) -> None:
        from cbmir_tf.models.training import save_model

        save_model(self.model_, folder / "model.keras", params=self.get_settings())

    def _load(self, folder: Path) -> None:
        from cbmir_tf.models.training import load_model

        self.model_, _ = load_model(folder / "model.keras")
        self._set_extractor()

    def _describe(self, images: np.ndarray) -> np.ndarray:
        from cbmir_tf.models.resnet50v2_fpn import extract_features

        return extract_features(self.extractor_, images, PREDICT_BATCH)

    def embed(self, images: np.ndarray) -> np.ndarray:
        """The ``features`` vector of each image, ``(n, d)`` float32, computed now (what ``describe``
        keeps in the model cache; e.g. to time one query end to end)."""
        self._check_fitted()
        return self._describe(check_images(images))

    def predict_proba(self, images: np.ndarray) -> np.ndarray:
        """Class probabilities of each image, ``(n, classes)`` float32 (the network's softmax)."""
        from cbmir_tf.models.resnet50v2_fpn import extract_features

        self._check_fitted()
        return extract_features(self.model_, check_images(images), PREDICT_BATCH)

    def proba_from_described(self, vectors: np.ndarray) -> np.ndarray:
        """Class probabilities from ``features`` vectors already described: the last layer alone
        (dropout is off at inference), so a chapter classifies without a second pass over the pixels."""
        self._check_fitted()
        vectors = np.asarray(vectors, dtype=np.float32)
        width = int(self.model_.get_layer("features").output.shape[-1])
        if vectors.ndim != 2 or vectors.shape[1] != width:
            raise ValueError(f"vectors must have shape (n, {width}). Got shape {vectors.shape} instead.")
        head = self.model_.get_layer("predictions")
        return np.concatenate([np.asarray(head(vectors[s:s + 4096])) for s in range(0, len(vectors), 4096)]
                              ).astype(np.float32)

    def level_slices(self) -> dict[str, slice]:
        """FPN only: where each pyramid level's vector lies in the descriptor, ``{"P2": slice, ...}``."""
        if self.network != "resnet50v2_fpn":
            raise ValueError(f"level_slices needs the FPN; this method's network is {self.network!r}.")
        levels = [level for level in LEVELS if level in self.levels]  # the builder's order
        width = max(1, int(self.feature_dim) // 4)
        return {level: slice(i * width, (i + 1) * width) for i, level in enumerate(levels)}

    def predict(self, images: np.ndarray) -> np.ndarray:
        """The most probable class of each image, ``(n,)`` int64."""
        return self.predict_proba(images).argmax(axis=1).astype(np.int64)
