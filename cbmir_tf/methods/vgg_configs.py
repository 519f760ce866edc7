"""VGG-style configurations A-G (paper 004): a shallow network trained on the archive's classes,
its last hidden fully connected layer as the descriptor, L2 distance.

The network is one of :data:`cbmir_tf.models.vgg_configs.CONFIGS` (C, the paper's best, by
default). Its inputs are the paper's preprocessing (:class:`~cbmir_tf.models.vgg_configs.VGGPreprocessor`:
resize, CLAHE, training mean image subtracted); it trains through
:func:`cbmir_tf.models.training.train` with SGD and momentum, weight decay, optional dropout
and, optionally, the paper's rotation-and-crop augmentation
(:func:`~cbmir_tf.models.vgg_configs.augment`).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from cbmir_tf.features.base import check_images
from cbmir_tf.methods.base import LearnedMethod, VectorSearchMixin, check_learning_settings, validation_split

#: Images per forward pass when describing or classifying.
PREDICT_BATCH = 256


class VGGConfigMethod(VectorSearchMixin, LearnedMethod):
    """One VGG-style configuration trained on the archive; descriptors from its last hidden FC layer.

    Args:
        config: ``"A"`` .. ``"G"``. Defaults to ``"C"``.
        image_size: Side of the square network input. Defaults to 128 (the paper's).
        dropout: Drop rate after the hidden FC layers (0: none). Defaults to 0.5.
        weight_decay: L2 weight decay of every kernel. Defaults to 5e-4.
        augmentation: Rotate by multiples of 90 degrees and crop at random, afresh each epoch.
            Defaults to `False`.
        val_fraction: Stratified share of the archive held out for early stopping. Defaults to 0.1.
        training: Keyword arguments of :func:`cbmir_tf.models.training.train` (optimiser,
            learning rate, momentum, epochs, batch size, patience, time budget). Defaults to
            its own defaults.
        seed: Seeds the split, the weights, the batch order and the augmentation. Defaults to 0.

    Learned state (``fit``): ``preprocessor_``, ``model_`` (the classifier), ``extractor_``
    (input to the ``features`` layer) and what :class:`~cbmir_tf.methods.base.LearnedMethod` adds.
    """

    key, paper, metric = "vgg_configs", "004", "l2"

    def __init__(self, *, config: str = "C", image_size: int = 128, dropout: float = 0.5,
                 weight_decay: float = 5e-4, augmentation: bool = False, val_fraction: float = 0.1,
                 training: dict | None = None, seed: int = 0):
        from cbmir_tf.models.vgg_configs import CONFIGS

        if config not in CONFIGS:
            raise ValueError(f"config must be one of {sorted(CONFIGS)}. Received: config={config!r}")
        check_learning_settings(val_fraction, training)
        self.config = config
        self.image_size = image_size
        self.dropout = dropout
        self.weight_decay = weight_decay
        self.augmentation = augmentation
        self.val_fraction = val_fraction
        self.training = training
        self.seed = seed
        self.name = f"VGG-style {config}"

    def _train(self, images: np.ndarray, labels: np.ndarray) -> dict:
        from cbmir_tf.models.training import train
        from cbmir_tf.models.vgg_configs import VGGConfig, VGGPreprocessor, augment
        from cbmir_tf.seeding import seed_everything

        fit_rows, val_rows = validation_split(labels, self.val_fraction, self.seed)
        self.preprocessor_ = VGGPreprocessor(image_size=self.image_size).fit(images[fit_rows])
        x = self.preprocessor_.transform(images)
        # a tiny archive (a dry run) may round every class's share to no image: no early stopping then
        validation = (x[val_rows], labels[val_rows]) if val_rows.any() else None
        seed_everything(self.seed)  # the initial weights
        self.model_ = VGGConfig(input_shape=x.shape[1:], classes=max(int(labels.max()) + 1, 2),
                                config=self.config, dropout=self.dropout, weight_decay=self.weight_decay)
        run = train(self.model_, x[fit_rows], labels[fit_rows], validation,
                    augment=augment if self.augmentation else None, seed=self.seed, **(self.training or {}))
        self.model_ = _uncompiled(self.model_)  # the optimiser's state is as large as the weights
        self._set_extractor()
        return {f"vgg_{self.config}": run.to_dict()}

    def _set_extractor(self) -> None:
        from cbmir_tf.models.vgg_configs import feature_extractor

        self.extractor_ = feature_extractor(self.model_)

    def _save(self, folder: Path) -> None:
        from cbmir_tf.models.training import save_model

        save_model(self.model_, folder / "model.keras", params=self.get_settings())
        self.preprocessor_.save(folder / "preprocessor.npz")

    def _load(self, folder: Path) -> None:
        from cbmir_tf.models.training import load_model
        from cbmir_tf.models.vgg_configs import VGGPreprocessor

        self.model_, _ = load_model(folder / "model.keras")
        self.preprocessor_ = VGGPreprocessor.load(folder / "preprocessor.npz")
        self._set_extractor()

    def _describe(self, images: np.ndarray) -> np.ndarray:
        return _predict(self.extractor_, self.preprocessor_.transform(images))

    def predict_proba(self, images: np.ndarray) -> np.ndarray:
        """Class probabilities of each image, ``(n, classes)`` float32 (the network's softmax)."""
        self._check_fitted()
        return _predict(self.model_, self.preprocessor_.transform(check_images(images)))

    def predict(self, images: np.ndarray) -> np.ndarray:
        """The most probable class of each image, ``(n,)`` int64."""
        return self.predict_proba(images).argmax(axis=1).astype(np.int64)


def _uncompiled(model):
    """The trained network's layers in an uncompiled model: saved without the optimiser's state."""
    import keras

    return keras.Model(model.inputs, model.outputs, name=model.name)


def _predict(model, x: np.ndarray) -> np.ndarray:
    """``model`` on ``x`` in batches of :data:`PREDICT_BATCH`, as float32."""
    parts = [np.asarray(model.predict_on_batch(x[start:start + PREDICT_BATCH]))
             for start in range(0, len(x), PREDICT_BATCH)]
    return np.concatenate(parts).astype(np.float32)
