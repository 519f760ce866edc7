"""The one training loop of every network in the book, and saving a trained model.

:func:`train` compiles a model with the chosen optimiser (Adam or SGD with momentum) and
loss, feeds it shuffled minibatches (augmented afresh each epoch when an ``augment``
function is given, capped at ``steps_per_epoch`` batches when asked), stops early on the
validation loss with the best weights restored, stops at a wall-time budget, and reports
what it did as a :class:`TrainingRun` (history, epochs, why it stopped, time, throughput).
Every chapter and every method trains through it; each paper's recipe is a set of its
arguments, written in the method's profile (:mod:`cbmir_tf.profiles`).

:func:`save_model` writes a model as ``.keras`` with a JSON of the parameters that made it,
each file atomically; :func:`load_model` reads both back.
"""

from __future__ import annotations

import dataclasses
import json
import os
import time
from collections.abc import Callable
from pathlib import Path

import keras
import numpy as np

from cbmir_tf.data.io import atomic_write
from cbmir_tf.seeding import seed_everything

#: Optimisers :func:`train` builds by name.
OPTIMIZERS = ("adam", "sgd")


@dataclasses.dataclass
class TrainingRun:
    """What one call of :func:`train` did.

    Attributes:
        history: Keras' per-epoch logs (``loss``, ``accuracy``, ``val_loss``, ...).
        epochs_run: Epochs actually trained.
        best_epoch: 1-based epoch whose weights were kept (lowest ``val_loss``; the last without validation).
        stopped_by: ``"early stopping"``, ``"time budget"`` or ``"epoch limit"``.
        wall_s: Wall time of the whole fit, validation included.
        images_seen: Training images passed forward and backward.
    """

    history: dict
    epochs_run: int
    best_epoch: int
    stopped_by: str
    wall_s: float
    images_seen: int

    @property
    def images_per_s(self) -> float:
        """Training throughput (images per second of wall time, validation included)."""
        return self.images_seen / self.wall_s if self.wall_s > 0 else float("nan")

    def to_dict(self) -> dict:
        """A JSON-ready record of the run."""
        return dataclasses.asdict(self)


class TimeBudget(keras.callbacks.Callback):
    """Stop training at the end of the first epoch that ends past ``seconds`` of wall time."""

    def __init__(self, seconds: float):
        super().__init__()
        self.seconds, self.exceeded = float(seconds), False

    def on_train_begin(self, logs=None):
        self.start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        if time.perf_counter() - self.start >= self.seconds:
            self.exceeded = True
            self.model.stop_training = True


class Batches(keras.utils.PyDataset):
    """Shuffled minibatches from seeded NumPy generators: a fresh order (and augmentation) each epoch.

    Args:
        x, y: Inputs and targets.
        batch_size: Images per batch.
        seed: Seeds the order and the augmentation.
        augment: Optional ``augment(x_batch, rng) -> x_batch``, applied to each training batch.
        steps_per_epoch: Optional cap on batches per epoch (a random subset each epoch).
    """

    def __init__(self, x, y, batch_size: int, seed: int, augment: Callable | None = None,
                 steps_per_epoch: int | None = None):
        super().__init__()
        self.x, self.y, self.batch_size, self.augment = x, y, int(batch_size), augment
        self.rng = np.random.default_rng(seed)
        n_batches = -(-len(x) // self.batch_size)
        self.n_batches = min(n_batches, int(steps_per_epoch)) if steps_per_epoch else n_batches
        self.on_epoch_end()

    def __len__(self) -> int:
        return self.n_batches

    def __getitem__(self, i):
        rows = self.order[i * self.batch_size:(i + 1) * self.batch_size]
        x = self.x[rows]
        return (self.augment(x, self.rng) if self.augment else x), self.y[rows]

    def on_epoch_end(self):
        self.order = self.rng.permutation(len(self.x))


def _optimizer(optimizer, learning_rate: float, momentum: float):
    if not isinstance(optimizer, str):
        return optimizer
    if optimizer == "adam":
        return keras.optimizers.Adam(learning_rate)
    if optimizer == "sgd":
        return keras.optimizers.SGD(learning_rate, momentum=momentum)
    raise ValueError(f"optimizer must be one of {OPTIMIZERS} or a keras optimizer. Received: optimizer={optimizer!r}")


def train(model: keras.Model, x: np.ndarray, y: np.ndarray,
          validation_data: tuple[np.ndarray, np.ndarray] | None = None, *, optimizer: str = "adam",
          learning_rate: float = 1e-3, momentum: float = 0.0, loss="sparse_categorical_crossentropy",
          metrics=("accuracy",), augment: Callable | None = None, epochs: int = 500, batch_size: int = 16,
          steps_per_epoch: int | None = None, patience: int | None = 10, time_budget_s: float | None = None,
          seed: int = 0, run_eagerly: bool = False, verbose: int = 0) -> TrainingRun:
    """Train ``model`` on ``(x, y)``; the one loop behind every network of the book.

    Args:
        model: The network (compiled here).
        x: ``(n, h, w, c)`` network inputs.
        y: ``(n,)`` integer labels for the default loss, or any targets ``loss`` accepts (masks).
        validation_data: ``(x_val, y_val)``, monitored every epoch and used for early stopping.
        optimizer: ``"adam"``, ``"sgd"`` (with ``momentum``) or a `keras.optimizers.Optimizer`.
            Defaults to ``"adam"``.
        learning_rate: Constant step size. Defaults to 1e-3.
        momentum: SGD momentum. Defaults to 0.
        loss: A Keras loss. Defaults to sparse categorical cross-entropy.
        metrics: Keras metrics. Defaults to accuracy.
        augment: Optional ``augment(x_batch, rng) -> x_batch`` applied to every training batch,
            with a seeded ``numpy.random.Generator``. Defaults to none.
        epochs: Most epochs. Defaults to 500 (paper 000's limit).
        batch_size: Defaults to 16.
        steps_per_epoch: Cap on batches per epoch (a fresh random subset each epoch); `None` =
            every batch. Defaults to `None`.
        patience: Epochs without a lower ``val_loss`` before stopping, the best weights restored;
            `None` trains every epoch (keeping the best weights when there is validation data).
            Defaults to 10.
        time_budget_s: Stop after the epoch that ends past this many seconds (best weights
            restored). `None` = no budget. Defaults to `None`.
        seed: Seeds Keras, NumPy and Python (weights, order, augmentation). Defaults to 0.
        run_eagerly: Skip building the graph of the training step (cheaper for a step or two of
            a ResNet on a CPU). Defaults to `False`.
        verbose: Keras progress output. Defaults to 0 (a chapter plots the curves instead).

    Returns:
        A :class:`TrainingRun`.

    Raises:
        ValueError: empty or mismatched data, labels outside the model's outputs, bad counts.
    """
    x, y = np.asarray(x), np.asarray(y)
    if len(x) == 0 or len(x) != len(y):
        raise ValueError(f"x and y must be non-empty and of equal length. Got {len(x)} and {len(y)} instead.")
    if int(epochs) < 1 or int(batch_size) < 1 or (steps_per_epoch is not None and int(steps_per_epoch) < 1):
        raise ValueError(f"epochs, batch_size and steps_per_epoch must be positive. Received: epochs={epochs!r}, "
                         f"batch_size={batch_size!r}, steps_per_epoch={steps_per_epoch!r}")
    if loss == "sparse_categorical_crossentropy":
        n_out = int(model.output_shape[-1])
        if y.min() < 0 or y.max() >= n_out:
            raise ValueError(f"labels must lie in [0, {n_out}) for {model.name}'s {n_out} outputs. "
                             f"Got labels in [{y.min()}, {y.max()}] instead.")
    seed_everything(int(seed))
    model.compile(optimizer=_optimizer(optimizer, learning_rate, momentum), loss=loss, metrics=list(metrics),
                  run_eagerly=bool(run_eagerly))
    callbacks = []
    if validation_data is not None:
        # patience None: train every epoch but still keep the best epoch's weights
        callbacks.append(keras.callbacks.EarlyStopping(
            "val_loss", patience=int(patience) if patience is not None else int(epochs),
            restore_best_weights=True))
    budget = TimeBudget(time_budget_s) if time_budget_s else None
    if budget:
        callbacks.append(budget)
    data = Batches(x, y, batch_size, seed, augment, steps_per_epoch)
    start = time.perf_counter()
    history = model.fit(data, epochs=int(epochs), validation_data=validation_data, callbacks=callbacks,
                        verbose=verbose).history
    wall_s = time.perf_counter() - start
    epochs_run = len(history["loss"])
    best = int(np.argmin(history["val_loss"])) + 1 if "val_loss" in history else epochs_run
    stopped_by = ("time budget" if budget and budget.exceeded else
                  "early stopping" if epochs_run < int(epochs) else "epoch limit")
    seen = epochs_run * min(len(x), data.n_batches * data.batch_size)
    return TrainingRun(history={k: [float(v) for v in vals] for k, vals in history.items()},
                       epochs_run=epochs_run, best_epoch=best, stopped_by=stopped_by, wall_s=wall_s,
                       images_seen=seen)


def _sidecar(path: Path) -> Path:
    return path.with_suffix(".json")


def save_model(model: keras.Model, path: str | os.PathLike, params: dict | None = None) -> Path:
    """Write ``model`` to ``path`` (``.keras``) and ``params`` to the sibling ``.json``, each atomically.

    The architecture and weights are saved, not the optimiser's state (an uncompiled copy is
    written): a trained network is kept for inference, and Adam's two moments would triple the
    file of a ResNet.

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
    inference = type(model).from_config(model.get_config())  # uncompiled: no optimiser state
    inference.set_weights(model.get_weights())
    with atomic_write(path) as tmp:
        inference.save(tmp)
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
