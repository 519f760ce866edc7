"""A generic, seeded Keras training harness for the chapters' softmax classifiers.

:func:`fit_classifier` compiles a model with Adam and sparse cross-entropy, trains it with a
batch size and an epoch limit, stops early on the validation loss and restores the best
weights, and measures the wall time and the training throughput. :func:`save_model` writes
the model as ``.keras`` together with a JSON of the parameters that made it, each file
atomically; :func:`load_model` reads both back. Class balancing (augmenting small classes,
sampling large ones down) is :func:`cbmir_tf.data.balance.balance_classes`, applied before.

Reference: paper 000, "Materials and methods" (batch 16, early stopping, at most 500 epochs,
about 200 images per class).
"""

from __future__ import annotations

import dataclasses
import json
import os
import sys
import time
from pathlib import Path

import keras
import numpy as np

from cbmir_tf.data.io import atomic_write
from cbmir_tf.seeding import seed_everything


@dataclasses.dataclass
class TrainingRun:
    """What one call of :func:`fit_classifier` did.

    Attributes:
        history: Keras' per-epoch logs (``loss``, ``accuracy``, ``val_loss``, ...).
        epochs_run: Epochs actually trained (fewer than the limit after an early stop).
        best_epoch: 1-based epoch whose weights were kept (lowest ``val_loss``; the last without validation).
        wall_s: Wall time of the whole fit, validation included.
        images_seen: Training images passed forward and backward.
    """

    history: dict
    epochs_run: int
    best_epoch: int
    wall_s: float
    images_seen: int

    @property
    def images_per_s(self) -> float:
        """Training throughput (images per second of wall time, validation included)."""
        return self.images_seen / self.wall_s if self.wall_s > 0 else float("nan")


def fit_classifier(model: keras.Model, x: np.ndarray, y: np.ndarray,
                   validation_data: tuple[np.ndarray, np.ndarray] | None = None, *, epochs: int = 500,
                   batch_size: int = 16, learning_rate: float = 1e-3, patience: int | None = 10,
                   seed: int = 0, run_eagerly: bool = False, verbose: int | str = "auto") -> TrainingRun:
    """Train a softmax classifier with Adam, early stopping on ``val_loss`` and the best weights restored.

    Args:
        model: An uncompiled (or compiled) classifier; it is compiled here.
        x: ``(n, h, w, c)`` network inputs.
        y: ``(n,)`` integer labels.
        validation_data: ``(x_val, y_val)`` for early stopping, or `None` to train all ``epochs``.
        epochs: Most epochs. Defaults to 500 (the paper's limit).
        batch_size: Defaults to 16 (the paper's).
        learning_rate: Adam step size. Defaults to 1e-3.
        patience: Epochs without a lower ``val_loss`` before stopping; `None` disables early stopping.
            Defaults to 10.
        seed: Seeds Keras, NumPy and Python before training. Defaults to 0.
        run_eagerly: Skip building the graph of the training step. Tracing a ResNet's training step
            costs minutes on a busy 2-core CPU, more than a handful of eager steps, so the ``smoke``
            profile trains eagerly; longer runs should not. Defaults to `False`.
        verbose: Keras progress: ``"auto"`` (a progress bar in a terminal, one line per epoch in a
            notebook), 0, 1 or 2. Defaults to ``"auto"``.

    Returns:
        A :class:`TrainingRun`.
    """
    x, y = np.asarray(x), np.asarray(y)
    if len(x) == 0 or len(x) != len(y):
        raise ValueError(f"x and y must be non-empty and of equal length. Got {len(x)} and {len(y)} instead.")
    if int(epochs) < 1 or int(batch_size) < 1:
        raise ValueError(f"epochs and batch_size must be positive. Received: epochs={epochs!r}, "
                         f"batch_size={batch_size!r}")
    n_out = int(model.output_shape[-1])
    if y.min() < 0 or y.max() >= n_out:
        raise ValueError(f"labels must lie in [0, {n_out}) for {model.name}'s {n_out} outputs. "
                         f"Got labels in [{y.min()}, {y.max()}] instead.")
    seed_everything(int(seed))
    model.compile(optimizer=keras.optimizers.Adam(learning_rate), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"], run_eagerly=bool(run_eagerly))
    callbacks = []
    if validation_data is not None and patience is not None:
        callbacks.append(keras.callbacks.EarlyStopping("val_loss", patience=int(patience),
                                                       restore_best_weights=True))
    if verbose == "auto":
        verbose = 2 if "ipykernel" in sys.modules else 1
    start = time.perf_counter()
    history = model.fit(x, y, batch_size=int(batch_size), epochs=int(epochs), validation_data=validation_data,
                        shuffle=True, callbacks=callbacks, verbose=verbose).history
    wall_s = time.perf_counter() - start
    epochs_run = len(history["loss"])
    best = int(np.argmin(history["val_loss"])) + 1 if "val_loss" in history else epochs_run
    return TrainingRun(history={k: [float(v) for v in vals] for k, vals in history.items()},
                       epochs_run=epochs_run, best_epoch=best, wall_s=wall_s, images_seen=epochs_run * len(x))


def _sidecar(path: Path) -> Path:
    return path.with_suffix(".json")


def save_model(model: keras.Model, path: str | os.PathLike, params: dict | None = None) -> Path:
    """Write ``model`` to ``path`` (``.keras``) and ``params`` to the sibling ``.json``, each atomically.

    Args:
        model: The model to save.
        path: Target file; must end in ``.keras``.
        params: JSON-serialisable parameters that made the model (builder arguments, training
            settings, data subset, seed, timings). Defaults to none.

    Returns:
        The path of the ``.keras`` file.
    """
    path = Path(path)
    if path.suffix != ".keras":
        raise ValueError(f"path must end in .keras. Received: path={str(path)!r}")
    path.parent.mkdir(parents=True, exist_ok=True)
    record = {"model": model.name, "keras": keras.__version__, "params": params or {}}
    text = json.dumps(record, indent=2, default=str)  # fails before anything is written
    with atomic_write(path) as tmp:
        model.save(tmp)
    with atomic_write(_sidecar(path), "w", encoding="utf-8") as f:
        f.write(text)
    return path


def load_model(path: str | os.PathLike) -> tuple[keras.Model, dict]:
    """Read a model written by :func:`save_model`; returns ``(model, params)``.

    Raises:
        FileNotFoundError: the ``.keras`` file or its ``.json`` sidecar is missing.
    """
    path = Path(path)
    for required in (path, _sidecar(path)):
        if not required.is_file():
            raise FileNotFoundError(f"{required} not found; write the model with cbmir_tf.models.training.save_model")
    params = json.loads(_sidecar(path).read_text(encoding="utf-8"))["params"]
    return keras.saving.load_model(path), params
