"""The one training loop, `train`, on a tiny network and real images: early stopping with the best
weights restored, the time budget, the step cap, augmentation, both optimisers, input checks, and
atomic saving with parameters."""

from __future__ import annotations

import io
import json
import zipfile

import h5py
import keras
import numpy as np
import pytest

from cbmir_tf.data.balance import balance_classes
from cbmir_tf.models.shallow_cnn import ShallowCNN, preprocess_input
from cbmir_tf.models.training import load_model, save_model, train


@pytest.fixture(scope="module")
def real_xy(small_benchmark):
    """24 real 28 px images (3 codes, 8 each after balancing) at 32 px, labels 0..2."""
    train_split = small_benchmark.take_split("train")
    keep = np.isin(train_split.labels, np.unique(train_split.labels)[:3])
    images, labels, _ = balance_classes(train_split.images[keep], train_split.labels[keep], per_class=8, seed=0)
    return preprocess_input(images, 32), np.unique(labels, return_inverse=True)[1]


@pytest.fixture(scope="module")
def real_val(small_benchmark):
    """The test images of the same 3 codes, for validation."""
    test = small_benchmark.take_split("test")
    codes = np.unique(small_benchmark.take_split("train").labels)[:3]
    keep = np.isin(test.labels, codes)
    return preprocess_input(test.images[keep], 32), np.searchsorted(codes, test.labels[keep])


def small_net(dropout: float = 0.5):
    keras.utils.set_random_seed(0)
    return ShallowCNN(input_shape=(32, 32, 1), classes=3, code_bits=16, dropout=dropout)


def test_early_stopping_restores_the_weights_of_the_best_epoch(real_xy, real_val):
    x, y = real_xy
    # a large step makes the validation loss rise again after its best epoch
    model = small_net()
    run = train(model, x, y, real_val, learning_rate=0.05, epochs=12, batch_size=8, patience=2)
    val_loss = run.history["val_loss"]
    assert run.best_epoch == int(np.argmin(val_loss)) + 1 < run.epochs_run  # stopped after a worse epoch
    assert run.stopped_by == "early stopping" and run.epochs_run == run.best_epoch + 2
    restored = model.evaluate(*real_val, batch_size=len(real_val[0]), verbose=0, return_dict=True)["loss"]
    assert restored == pytest.approx(val_loss[run.best_epoch - 1], rel=1e-4)
    assert restored != pytest.approx(val_loss[-1], rel=1e-3)  # not the last epoch's weights
    assert set(run.history) >= {"loss", "val_loss", "accuracy", "val_accuracy"}
    assert run.to_dict()["best_epoch"] == run.best_epoch and json.dumps(run.to_dict())


def test_without_validation_every_epoch_runs(real_xy):
    x, y = real_xy
    run = train(small_net(), x, y, epochs=3, batch_size=8)
    assert run.epochs_run == 3 and run.best_epoch == 3 and run.stopped_by == "epoch limit" and run.wall_s > 0
    assert run.images_seen == 3 * len(x) and run.images_per_s > 0


def test_the_time_budget_stops_after_the_epoch_that_passes_it(real_xy, real_val):
    x, y = real_xy
    run = train(small_net(), x, y, real_val, epochs=50, batch_size=8, patience=None, time_budget_s=1e-3)
    assert run.epochs_run == 1 and run.stopped_by == "time budget"


def test_steps_per_epoch_caps_the_batches_of_each_epoch(real_xy):
    x, y = real_xy
    run = train(small_net(), x, y, epochs=3, batch_size=8, steps_per_epoch=2)
    assert run.images_seen == 3 * 2 * 8  # 2 of the 3 batches, each epoch


def test_augment_is_applied_to_every_training_batch_with_a_seeded_generator(real_xy, real_val):
    x, y = real_xy

    def record(seed):
        seen = []

        def augment(batch, rng):
            assert isinstance(rng, np.random.Generator)
            shift = int(rng.integers(0, 4))
            seen.append((batch.shape, shift, int(batch.astype(np.int64).sum())))
            return np.roll(batch, shift, axis=2)

        train(small_net(), x, y, real_val, augment=augment, epochs=2, batch_size=8, patience=None, seed=seed)
        return seen

    first = record(0)
    # every training batch of both epochs (Keras also reads two batches first to learn their shapes);
    # the 11 validation images are never augmented
    assert len(first) >= 2 * 3 and all(shape == (8, 32, 32, 1) for shape, _, _ in first)
    assert record(0) == first  # same seed: same order and same augmentation
    assert record(1) != first


def test_sgd_and_adam_both_lower_the_training_loss(real_xy):
    x, y = real_xy
    for optimizer, learning_rate in (("sgd", 0.01), ("adam", 1e-3)):
        model = small_net(dropout=0.0)
        run = train(model, x, y, optimizer=optimizer, learning_rate=learning_rate, momentum=0.9, epochs=8,
                    batch_size=8)
        assert run.history["loss"][-1] < 0.9 * run.history["loss"][0], optimizer
        assert type(model.optimizer).__name__.lower() == optimizer
        assert float(model.optimizer.learning_rate) == pytest.approx(learning_rate)
    sgd = small_net()
    train(sgd, x, y, optimizer="sgd", learning_rate=0.01, momentum=0.5, epochs=1, batch_size=8)
    assert float(sgd.optimizer.momentum) == pytest.approx(0.5)


def test_bad_inputs_raise_with_the_values(real_xy):
    x, y = real_xy
    with pytest.raises(ValueError, match="equal length. Got 24 and 5 instead"):
        train(small_net(), x, y[:5])
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 3\).*Got labels in \[0, 7\]"):
        train(small_net(), x, np.where(y == 2, 7, y))
    with pytest.raises(ValueError, match="epochs=0"):
        train(small_net(), x, y, epochs=0)
    with pytest.raises(ValueError, match="steps_per_epoch=0"):
        train(small_net(), x, y, steps_per_epoch=0)
    with pytest.raises(ValueError, match="optimizer='rmsprop'"):
        train(small_net(), x, y, optimizer="rmsprop")
    with pytest.raises(ValueError, match="Received: path='model.h5'"):
        save_model(small_net(), "model.h5")


def test_save_writes_keras_and_parameters_and_load_restores_them(real_xy, tmp_path):
    x, _ = real_xy
    model = small_net()
    path = save_model(model, tmp_path / "sub" / "net.keras", {"epochs": 3, "per_class": 8})
    assert sorted(p.name for p in path.parent.iterdir()) == ["net.json", "net.keras"]  # no temporary left over
    assert json.loads((tmp_path / "sub" / "net.json").read_text())["params"] == {"epochs": 3, "per_class": 8}
    again, params = load_model(path)
    assert params == {"epochs": 3, "per_class": 8}
    np.testing.assert_array_equal(again.predict_on_batch(x), model.predict_on_batch(x))
    # a trained (compiled) model is saved for inference: weights, not Adam's moments
    x, y = real_xy
    train(model, x, y, epochs=1, batch_size=8, patience=None)
    trained = save_model(model, tmp_path / "trained.keras")
    with zipfile.ZipFile(trained) as saved, saved.open("model.weights.h5") as raw:
        with h5py.File(io.BytesIO(raw.read()), "r") as weights:
            assert "layers" in weights and "optimizer" not in weights
    np.testing.assert_array_equal(load_model(trained)[0].predict_on_batch(x), model.predict_on_batch(x))
    (tmp_path / "sub" / "net.json").unlink()
    with pytest.raises(FileNotFoundError, match="net.json not found"):
        load_model(path)
