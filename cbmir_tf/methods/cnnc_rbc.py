"""CNN codes and Radon barcodes (paper 003): a shallow CNN's binary codes propose candidates,
Radon barcodes re-rank them; and the Radon barcode on its own.

:class:`CNNCRBC` trains :func:`~cbmir_tf.models.shallow_cnn.ShallowCNN` on the archive's labels
(once per cache key, :mod:`cbmir_tf.methods.cache`), describes every image by its binary CNN
code and its Radon barcode, and searches in two stages
(:class:`~cbmir_tf.search.two_stage.TwoStageIndex`). :class:`RadonBarcodeMethod` is the barcode
alone in a Hamming index.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from cbmir_tf.features.radon_barcode import RadonBarcode, pack_codes
from cbmir_tf.methods.base import DescriptorMethod, LearnedMethod, check_learning_settings, validation_split

#: The file of the trained network in the method's cache folder.
MODEL_FILE = "shallow_cnn.keras"


class RadonBarcodeMethod(DescriptorMethod):
    """Radon barcodes in an exact Hamming index (no training).

    Args:
        **settings: :class:`~cbmir_tf.features.radon_barcode.RadonBarcode` arguments
            (``image_size``, ``n_angles``).
    """

    key, paper = "rbc", "003"

    def __init__(self, **settings):
        super().__init__(RadonBarcode(**settings), "Radon barcode")


class CNNCRBC(LearnedMethod):
    """Paper 003: binary codes of a trained shallow CNN find candidates, Radon barcodes re-rank them.

    Reference: Liu et al. (paper 003), Sections 3.1-3.3 and Table 1.

    Args:
        input_size: Side of the network's input (paper: 128, and 96 for a variant). Defaults to 128.
        code_bits: Units of the two fully connected layers, i.e. bits of the code. Defaults to 1000.
        dropout: Dropout after the fully connected layers. Defaults to 0.5.
        n_candidates: Candidates the code search passes to the barcodes. Defaults to 50.
        barcode_size: Side the images are resized to for the barcode. Defaults to 192.
        n_angles: Radon projection angles of the barcode. Defaults to 16.
        val_fraction: Stratified share of the archive held out to watch the validation loss
            (early stopping); it stays in the archive. Defaults to 0.2.
        training: Keyword arguments of :func:`cbmir_tf.models.training.train` (optimiser,
            learning rate, epochs, batch size, patience, time budget, ...). Defaults to its defaults.
        seed: Seeds the split, the initial weights and the training. Defaults to 0.

    ``describe`` gives ``{"codes": ..., "barcodes": ...}``, both packed uint8 (8 bits a byte).

    Learned state: ``model_`` (the trained network), ``cnnc_`` (its `CNNCode`), ``rbc_`` (the
    `RadonBarcode`), ``training_`` (``{"shallow_cnn": run}``) and, after ``add``, ``index_``
    (a `TwoStageIndex`).

    Example:
        >>> method = from_profile("cnnc_rbc", "cpu").fit(archive.images, archive.labels)  # doctest: +SKIP
        >>> D, I = method.add(archive.images).search(queries.images, k=10)                 # doctest: +SKIP
    """

    key, paper, name = "cnnc_rbc", "003", "CNNC+RBC"

    def __init__(self, *, input_size: int = 128, code_bits: int = 1000, dropout: float = 0.5,
                 n_candidates: int = 50, barcode_size: int = 192, n_angles: int = 16, val_fraction: float = 0.2,
                 training: dict | None = None, seed: int = 0):
        self.input_size, self.code_bits, self.dropout = input_size, code_bits, dropout
        self.n_candidates, self.barcode_size, self.n_angles = n_candidates, barcode_size, n_angles
        self.val_fraction, self.training, self.seed = val_fraction, training, seed
        self._check_settings()

    def _check_settings(self) -> None:
        for name in ("input_size", "code_bits", "n_candidates", "barcode_size", "n_angles"):
            value = getattr(self, name)
            if not isinstance(value, (int, np.integer)) or value < (8 if name.endswith("size") else 1):
                raise ValueError(f"{name} must be a positive integer (a side of at least 8 px). "
                                 f"Received: {name}={value!r}")
        check_learning_settings(self.val_fraction, self.training)

    # training and the cache

    def _train(self, images: np.ndarray, labels: np.ndarray) -> dict:
        from cbmir_tf.models.shallow_cnn import ShallowCNN, preprocess_input
        from cbmir_tf.models.training import train
        from cbmir_tf.seeding import seed_everything

        fit_rows, val_rows = validation_split(labels, self.val_fraction, self.seed)
        size = int(self.input_size)
        seed_everything(int(self.seed))  # the same initial weights on every run
        self.model_ = ShallowCNN(input_shape=(size, size, 1), classes=int(labels.max()) + 1,
                                 code_bits=int(self.code_bits), dropout=self.dropout, name=f"shallow_cnn_{size}")
        run = train(self.model_, preprocess_input(images[fit_rows], size), labels[fit_rows],
                    (preprocess_input(images[val_rows], size), labels[val_rows]), seed=int(self.seed),
                    **(self.training or {}))
        self._ready()
        return {"shallow_cnn": run.to_dict()}

    def _save(self, folder: Path) -> None:
        from cbmir_tf.models.training import save_model

        save_model(self.model_, Path(folder) / MODEL_FILE, params=self.get_settings())

    def _load(self, folder: Path) -> None:
        from cbmir_tf.models.training import load_model

        self.model_, _ = load_model(Path(folder) / MODEL_FILE)
        self._ready()

    def _ready(self) -> None:
        """The code and barcode descriptors of the trained network."""
        self.cnnc_ = self.cnn_code(binary=True)
        self.rbc_ = RadonBarcode(image_size=int(self.barcode_size), n_angles=int(self.n_angles)).fit()

    def cnn_code(self, binary: bool = True):
        """A fitted `CNNCode` of the trained network: binary (the paper's CNNC) or the float activations."""
        from cbmir_tf.features.cnn_code import CNNCode

        if not hasattr(self, "model_"):
            raise ValueError(f"This {type(self).__name__} is not fitted yet: call fit(images, labels) first.")
        return CNNCode(self.model_, binary=binary).fit()

    # describing and searching

    def _describe(self, images: np.ndarray) -> dict:
        return {"codes": pack_codes(self.cnnc_.transform(images)), "barcodes": pack_codes(self.rbc_.transform(images))}

    @staticmethod
    def _check_described(described) -> dict:
        if not isinstance(described, dict) or not {"codes", "barcodes"} <= set(described):
            got = sorted(described) if isinstance(described, dict) else type(described).__name__
            raise ValueError(f"described must be the dict of describe(images), with 'codes' and 'barcodes'. "
                             f"Got {got} instead.")
        return described

    def add_described(self, described) -> CNNCRBC:
        """Index an archive described by ``describe``: its codes, with its barcodes beside them."""
        from cbmir_tf.search.two_stage import TwoStageIndex

        described = self._check_described(described)
        self.index_ = TwoStageIndex(int(self.n_candidates)).add(described["codes"], described["barcodes"])
        return self

    def search_described(self, described, k: int = 10, *, exclude=None) -> tuple[np.ndarray, np.ndarray]:
        """The ``n_candidates`` nearest codes, re-ranked by barcode: ``(D, I)`` of shape ``(nq, k)``,
        ``D`` the barcode Hamming distances; ``k`` at most ``n_candidates``."""
        self._check_added()
        described = self._check_described(described)
        return self.index_.search(described["codes"], described["barcodes"], k, exclude=exclude)

    def _check_added(self) -> None:
        if not hasattr(self, "index_"):
            raise ValueError(f"This {type(self).__name__} holds no archive: call add(images) first.")

    @property
    def bytes_per_image(self) -> float:
        """Packed code bytes plus packed barcode bytes per archive image."""
        self._check_added()
        return self.index_.bytes_per_image
