"""The generic training harness: early stopping, input checks and atomic saving with parameters."""

from __future__ import annotations

import json

import keras
import numpy as np
import pytest

from cbmir_tf.data.balance import balance_classes
from cbmir_tf.models.shallow_cnn import ShallowCNN, preprocess_input
from cbmir_tf.models.training import fit_classifier, load_model, save_model


@pytest.fixture(scope="module")
def real_xy(small_benchmark):
    train = small_benchmark.take_split("train")
    keep = np.isin(train.labels, np.unique(train.labels)[:3])
    images, labels, _ = balance_classes(train.images[keep], train.labels[keep], per_class=8, seed=0)
    return preprocess_input(images, 32), np.unique(labels, return_inverse=True)[1]


def small_net():
    keras.utils.set_random_seed(0)
    return ShallowCNN(input_shape=(32, 32, 1), classes=3, code_bits=16)


def test_early_stopping_stops_when_val_loss_stalls_and_keeps_the_best_epoch(real_xy):
    x, y = real_xy
    # With a zero step size the validation loss never falls after epoch 1: patience 1 stops at epoch 2.
    run = fit_classifier(small_net(), x, y, validation_data=(x[:8], y[:8]), epochs=6, batch_size=8,
                         learning_rate=0.0, patience=1, verbose=0)
    assert run.epochs_run == 2 and run.best_epoch == 1
    assert set(run.history) >= {"loss", "val_loss", "accuracy"}
    assert run.images_seen == 2 * len(x)


def test_without_validation_all_epochs_run(real_xy):
    x, y = real_xy
    run = fit_classifier(small_net(), x, y, epochs=3, batch_size=8, verbose=0)
    assert run.epochs_run == 3 and run.best_epoch == 3 and run.wall_s > 0


def test_bad_inputs_raise_with_the_values(real_xy):
    x, y = real_xy
    with pytest.raises(ValueError, match="equal length. Got 24 and 5 instead"):
        fit_classifier(small_net(), x, y[:5], verbose=0)
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 3\).*Got labels in \[0, 7\]"):
        fit_classifier(small_net(), x, np.where(y == 2, 7, y), verbose=0)
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
    (tmp_path / "sub" / "net.json").unlink()
    with pytest.raises(FileNotFoundError, match="net.json not found"):
        load_model(path)
