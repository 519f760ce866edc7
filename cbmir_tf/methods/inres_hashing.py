"""InRes-Net hashing (paper 001): a sigmoid hash layer proposes a Hamming pool, FC1 vectors rank it.

``fit`` trains :func:`cbmir_tf.models.inres_net.InResNet` on the archive's classes (a stratified
``val_fraction`` held out for early stopping) through :func:`cbmir_tf.models.training.train`;
``describe`` gives each image its binary code (H >= 0.5) and its FC1 vector; the archive is
searched coarse to fine by :class:`cbmir_tf.search.coarse_to_fine.CoarseToFineSearch`.

Paper 001 masks chest CT slices with a U-Net first; that step belongs to lung CT and stays in
its chapter, which fits this method on the masked slices. Elsewhere (the side-by-side chapter)
the method sees whole images.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from cbmir_tf.methods.base import LearnedMethod, check_learning_settings, validation_split

#: The file of the trained network in the method's cache folder.
MODEL_FILE = "inres_net.keras"
#: ``training=None``: the paper's recipe (Section 3.4): plain SGD at a constant 1e-4, at most 30 epochs.
PAPER_TRAINING = {"optimizer": "sgd", "learning_rate": 1e-4, "momentum": 0.0, "epochs": 30, "batch_size": 32,
                  "patience": None}


class InResHashing(LearnedMethod):
    """InRes-Net's binary codes for a Hamming pool, its FC1 vectors for the ranking.

    Args:
        input_size: Network input side (images are area-resized to it). Defaults to 256.
        stem_filters, stages, fc1_units, hash_bits, dropout, init_stddev: The network
            (:func:`~cbmir_tf.models.inres_net.InResNet`). Defaults: 32, 4, 1024, 48, 0.5, 0.01.
        hamming_threshold, threshold_step, min_pool: The coarse pool: every archive image within
            ``hamming_threshold`` bits, widened by ``threshold_step`` bits until it holds
            ``min_pool`` images. Defaults to 8, 2 and 10.
        val_fraction: Stratified share of each class held out to monitor training. Defaults to 0.1.
        training: Keyword arguments of :func:`cbmir_tf.models.training.train` (optimiser, rate,
            epochs, batch size, patience, time budget). `None` (the default): :data:`PAPER_TRAINING`.
        seed: Seeds the initialisation, the validation split and the training. Defaults to 0.

    Learned state: ``model_`` (the trained network), ``features_model_`` (its FC1, H and FC3
    taps) and, after ``add``, ``search_``; ``training_`` holds the run as ``{"inres_net": ...}``.
    """

    key, paper, name = "inres_hashing", "001", "InRes-Net hashing"

    def __init__(self, *, input_size: int = 256, stem_filters: int = 32, stages: int = 4, fc1_units: int = 1024,
                 hash_bits: int = 48, dropout: float = 0.5, init_stddev: float | None = 0.01,
                 hamming_threshold: int = 8, threshold_step: int = 2, min_pool: int = 10,
                 val_fraction: float = 0.1, training: dict | None = None, seed: int = 0):
        self.input_size = input_size
        self.stem_filters = stem_filters
        self.stages = stages
        self.fc1_units = fc1_units
        self.hash_bits = hash_bits
        self.dropout = dropout
        self.init_stddev = init_stddev
        self.hamming_threshold = hamming_threshold
        self.threshold_step = threshold_step
        self.min_pool = min_pool
        self.val_fraction = val_fraction
        self.training = training
        self.seed = seed
        self._check_settings()

    def _check_settings(self) -> None:
        for name in ("input_size", "stem_filters", "stages", "fc1_units", "hash_bits", "threshold_step", "min_pool"):
            value = getattr(self, name)
            if not isinstance(value, (int, np.integer)) or value < 1:
                raise ValueError(f"{name} must be a positive integer. Received: {name}={value!r}")
        if not isinstance(self.hamming_threshold, (int, np.integer)) or self.hamming_threshold < 0:
            raise ValueError(f"hamming_threshold must be a non-negative integer. "
                             f"Received: hamming_threshold={self.hamming_threshold!r}")
        check_learning_settings(self.val_fraction, self.training)

    def _train(self, images: np.ndarray, labels: np.ndarray) -> dict:
        from cbmir_tf.models import inres_net
        from cbmir_tf.models.training import train
        from cbmir_tf.seeding import seed_everything

        fit_rows, val_rows = validation_split(labels, self.val_fraction, self.seed)
        side = int(self.input_size)
        x = inres_net.preprocess_input(images, side)
        seed_everything(int(self.seed))  # the same initial weights (and dropout masks) on every run
        self.model_ = inres_net.InResNet(
            input_shape=(side, side, 1), classes=int(labels.max()) + 1, hash_bits=self.hash_bits,
            fc1_units=self.fc1_units, stem_filters=self.stem_filters, stages=self.stages, dropout=self.dropout,
            init_stddev=self.init_stddev, seed=self.seed)
        # an archive too small for the validation share (a dry run) leaves none: epochs run unwatched
        validation = (x[val_rows], labels[val_rows]) if val_rows.any() else None
        recipe = PAPER_TRAINING if self.training is None else self.training
        run = train(self.model_, x[fit_rows], labels[fit_rows], validation, seed=int(self.seed), **recipe)
        self.features_model_ = inres_net.feature_model(self.model_)
        return {"inres_net": run.to_dict()}

    def _save(self, folder: Path) -> None:
        from cbmir_tf.models.training import save_model

        save_model(self.model_, Path(folder) / MODEL_FILE, self.get_settings())

    def _load(self, folder: Path) -> None:
        from cbmir_tf.models import inres_net
        from cbmir_tf.models.training import load_model

        self.model_, _ = load_model(Path(folder) / MODEL_FILE)
        self.features_model_ = inres_net.feature_model(self.model_)

    def features(self, images: np.ndarray, batch_size: int = 64) -> dict[str, np.ndarray]:
        """FC1, H and FC3 activations of grey ``uint8`` images ``(n, h, w)``: float32 arrays by layer name.

        The chapter of paper 001 compares retrieval from each layer; `describe` keeps FC1 and the codes.
        """
        from cbmir_tf.features.base import check_images
        from cbmir_tf.models import inres_net

        self._check_fitted()
        x = inres_net.preprocess_input(check_images(images), int(self.input_size))
        outputs = [self.features_model_.predict_on_batch(x[s:s + batch_size]) for s in range(0, len(x), batch_size)]
        return {layer: np.concatenate([np.asarray(out[i]) for out in outputs]).astype(np.float32)
                for i, layer in enumerate(inres_net.FEATURE_LAYERS)}

    def _describe(self, images: np.ndarray) -> dict[str, np.ndarray]:
        from cbmir_tf.models.inres_net import binary_codes

        layers = self.features(images)
        return {"codes": binary_codes(layers["hash"]), "fc1": layers["fc1"]}

    @staticmethod
    def _check_described(described) -> dict:
        if not isinstance(described, dict) or not {"codes", "fc1"} <= set(described):
            got = sorted(described) if isinstance(described, dict) else type(described).__name__
            raise ValueError(f"described must be the dict of describe(images), with 'codes' and 'fc1'. "
                             f"Got {got} instead.")
        return described

    def add_described(self, described: dict) -> InResHashing:
        """Index the archive's codes and FC1 vectors (``describe``'s dict) for coarse-to-fine search."""
        from cbmir_tf.search.coarse_to_fine import CoarseToFineSearch

        described = self._check_described(described)
        self.search_ = CoarseToFineSearch(hamming_threshold=int(self.hamming_threshold),
                                          threshold_step=int(self.threshold_step), min_pool=int(self.min_pool))
        self.search_.fit(described["codes"], described["fc1"])
        return self

    def search_described(self, described: dict, k: int = 10, *, exclude=None) -> tuple[np.ndarray, np.ndarray]:
        """Coarse-to-fine top ``k``: the Hamming pool (widened to ``min_pool``) ranked by FC1 distance.

        A pool smaller than ``k`` pads with id -1 and distance inf; with ``min_pool >= k`` it never does.
        """
        if not hasattr(self, "search_"):
            raise ValueError(f"This {type(self).__name__} has no archive yet: call add(images) first.")
        described = self._check_described(described)
        return self.search_.search(described["codes"], described["fc1"], k, exclude=exclude)

    @property
    def bytes_per_image(self) -> float:
        """The packed code (``hash_bits / 8`` bytes) plus the float32 FC1 vector."""
        return self.search_.packed_codes_.shape[1] + self.search_.features_.shape[1] * 4
