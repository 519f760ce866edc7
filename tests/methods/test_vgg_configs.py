"""Paper 004's method: a VGG-style configuration trained on real archive images, searched by its FC features."""

from __future__ import annotations

import numpy as np
import pytest

from cbmir_tf.methods import from_profile
from cbmir_tf.methods.vgg_configs import VGGConfigMethod
from cbmir_tf.profiles import PAPER, method_settings

# a tiny configuration G (two FC layers, the last 800 wide) on 32 px inputs
TINY = {"config": "G", "image_size": 32, "val_fraction": 0.25,
        "training": {"optimizer": "adam", "learning_rate": 0.001, "epochs": 5, "batch_size": 8,
                     "patience": None}}


@pytest.fixture(scope="module")
def fitted(archive, tmp_path_factory):
    images, labels = archive
    cache = tmp_path_factory.mktemp("vgg-cache")
    return VGGConfigMethod(**TINY).fit(images, labels, cache=cache), cache


def test_settings_are_the_constructor_arguments_and_the_paper_profile():
    assert set(VGGConfigMethod().get_settings()) == set(PAPER["methods"]["vgg_configs"]) | {"seed"}
    method = from_profile("vgg_configs", "paper", seed=4)
    assert method.get_settings() == {**method_settings("paper", "vgg_configs"), "seed": 4}
    assert method.name == "VGG-style C" and method.metric == "l2" and method.paper == "004"
    ablation = from_profile("vgg_configs", "cpu", config="F", dropout=0.0, training={"time_budget_s": 5})
    assert (ablation.config, ablation.dropout, ablation.training["time_budget_s"]) == ("F", 0.0, 5)
    assert ablation.training["batch_size"] == method_settings("cpu", "vgg_configs")["training"]["batch_size"]
    with pytest.raises(ValueError, match="config='H'"):
        VGGConfigMethod(config="H")
    with pytest.raises(ValueError, match="val_fraction"):
        VGGConfigMethod(val_fraction=0.0)


def test_training_lowers_the_loss_and_is_recorded(fitted):
    method, _ = fitted
    run = method.training_["vgg_G"]
    assert list(method.training_) == ["vgg_G"] and run["epochs_run"] == 5 and run["stopped_by"] == "epoch limit"
    assert run["history"]["loss"][-1] < run["history"]["loss"][0]
    assert len(run["history"]["val_loss"]) == 5 and not method.from_cache_
    # the mean image comes from the 30 fit images, not the 10 held out for validation
    assert method.preprocessor_.mean_image_.shape == (32, 32)


def test_describe_search_and_class_probabilities(fitted, archive):
    method, _ = fitted
    images, labels = archive
    vectors = method.describe(images)
    assert vectors.shape == (40, 800) and vectors.dtype == np.float32 and (vectors >= 0).all()  # ReLU FC layer
    method.add(images)
    D, I = method.search(images[:6], 5)
    assert (I[:, 0] == np.arange(6)).all() and np.allclose(D[:, 0], 0, atol=1e-3)
    assert method.bytes_per_image == 800 * 4
    proba = method.predict_proba(images)
    assert proba.shape == (40, 4) and np.allclose(proba.sum(axis=1), 1, atol=1e-5)
    np.testing.assert_array_equal(method.predict(images), proba.argmax(axis=1))
    assert np.mean(method.predict(images) == labels) > 0.5  # it learnt its training images (chance: 0.25)
    with pytest.raises(ValueError, match="not fitted"):
        VGGConfigMethod().predict_proba(images)


def test_a_second_fit_loads_the_network_from_the_cache(fitted, archive):
    method, cache = fitted
    images, labels = archive
    again = VGGConfigMethod(**TINY).fit(images, labels, cache=cache)
    assert again.from_cache_ and again.cache_folder_ == method.cache_folder_
    assert again.training_ == method.training_
    assert not again.model_.compiled  # the cache keeps the weights, not the optimiser's state
    np.testing.assert_allclose(again.predict_proba(images), method.predict_proba(images), atol=1e-6)
    np.testing.assert_allclose(again._describe(images), method._describe(images), atol=1e-5)
    other = VGGConfigMethod(**{**TINY, "dropout": 0.0, "training": {**TINY["training"], "epochs": 1}})
    assert not other.fit(images, labels, cache=cache).from_cache_  # another setting, another network


def test_augmentation_trains_through_the_shared_loop(archive):
    images, labels = archive
    settings = {**TINY, "augmentation": True, "training": {**TINY["training"], "epochs": 1, "steps_per_epoch": 2}}
    method = VGGConfigMethod(**settings).fit(images, labels, cache=False)
    run = method.training_["vgg_G"]
    assert run["epochs_run"] == 1 and run["images_seen"] == 16 and np.isfinite(run["history"]["loss"][0])
    assert method.cache_folder_ is None
