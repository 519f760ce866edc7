"""Paper 000's method: ResNet50V2-FPN (and a baseline) trained on real archive images, searched by
its pooled pyramid vector, trained once per setting."""

from __future__ import annotations

import numpy as np
import pytest

from cbmir_tf.methods import from_profile, method_class
from cbmir_tf.methods.resnet50v2_fpn import LEVELS, NETWORK_NAMES, ResNet50V2FPN
from cbmir_tf.models.baselines import NETWORKS
from cbmir_tf.profiles import PAPER, method_settings

# 32 px inputs, a 16-value vector (four levels of 4), 6 balanced images a code, two epochs of two
# eager steps (building the graph of a ResNet training step costs more than a few steps on a CPU)
TINY = {"input_size": 32, "feature_dim": 16, "pyramid_channels": 8, "balance_per_class": 6, "val_fraction": 0.25,
        "training": {"epochs": 2, "batch_size": 12, "patience": None, "run_eagerly": True}}


@pytest.fixture(scope="module")
def fitted(archive, tmp_path_factory):
    images, labels = archive
    cache = tmp_path_factory.mktemp("fpn-cache")
    return ResNet50V2FPN(**TINY).fit(images, labels, cache=cache), cache


def test_settings_are_the_constructor_arguments_and_the_paper_profile():
    assert method_class("resnet50v2_fpn") is ResNet50V2FPN and set(NETWORK_NAMES) == set(NETWORKS)
    assert set(ResNet50V2FPN().get_settings()) == set(PAPER["methods"]["resnet50v2_fpn"]) | {"seed"}
    method = from_profile("resnet50v2_fpn", "paper", seed=3)
    assert method.get_settings() == {**method_settings("paper", "resnet50v2_fpn"), "seed": 3}
    defaults = ResNet50V2FPN().get_settings()  # the paper's, but for the training (train's own defaults)
    assert {k: v for k, v in method.get_settings().items() if k != "training"} == {
        **{k: v for k, v in defaults.items() if k != "training"}, "seed": 3}
    assert (method.name, method.metric, method.paper, method.key) == ("ResNet50V2-FPN", "l2", "000", "resnet50v2_fpn")
    baseline = from_profile("resnet50v2_fpn", "cpu", network="resnet50v2", training={"time_budget_s": 7})
    assert baseline.name == "ResNet50V2" and baseline.training["time_budget_s"] == 7
    assert baseline.training["batch_size"] == method_settings("cpu", "resnet50v2_fpn")["training"]["batch_size"]
    assert ResNet50V2FPN(levels=("P4", "P5")).name == "ResNet50V2-FPN (P4+P5)"


@pytest.mark.parametrize("bad, match", [({"network": "alexnet"}, "network='alexnet'"),
                                        ({"levels": ("P6",)}, r"levels=\('P6',\)"),
                                        ({"levels": ()}, r"levels=\(\)"),
                                        ({"input_size": 100}, "input_size=100"),
                                        ({"val_fraction": 1.0}, "val_fraction=1.0"),
                                        ({"balance_per_class": 0}, "balance_per_class=0")])
def test_bad_settings_raise_with_the_value(bad, match):
    with pytest.raises(ValueError, match=match):
        ResNet50V2FPN(**bad)


def test_fit_balances_the_training_part_and_records_the_run(fitted):
    method, _ = fitted
    assert list(method.training_) == ["resnet50v2_fpn"] and not method.from_cache_
    run = method.training_["resnet50v2_fpn"]
    # 4 codes x 6 balanced images per epoch; validation on the held-out quarter of each code
    assert run["epochs_run"] == 2 and run["images_seen"] == 2 * 4 * 6 and run["stopped_by"] == "epoch limit"
    assert len(run["history"]["val_loss"]) == 2 and np.isfinite(run["history"]["loss"]).all()
    assert method.model_.output_shape == (None, 4)


def test_describe_search_and_class_probabilities(fitted, archive):
    method, _ = fitted
    images, labels = archive
    vectors = method.describe(images)
    assert vectors.shape == (40, 16) and vectors.dtype == np.float32 and (vectors >= 0).all()  # ReLU level vectors
    np.testing.assert_allclose(method.embed(images), vectors, atol=1e-5)
    method.add(images)
    D, I = method.search(images[:6], 5)
    assert (I[:, 0] == np.arange(6)).all() and np.allclose(D[:, 0], 0, atol=1e-3)
    assert method.bytes_per_image == 16 * 4
    proba = method.predict_proba(images)
    assert proba.shape == (40, 4) and np.allclose(proba.sum(axis=1), 1, atol=1e-5)
    np.testing.assert_allclose(method.proba_from_described(vectors), proba, atol=1e-5)
    np.testing.assert_array_equal(method.predict(images), proba.argmax(axis=1))
    slices = method.level_slices()
    assert list(slices) == list(LEVELS) and slices["P3"] == slice(4, 8)
    with pytest.raises(ValueError, match=r"shape \(n, 16\)"):
        method.proba_from_described(vectors[:, :8])
    with pytest.raises(ValueError, match="not fitted"):
        ResNet50V2FPN().predict_proba(images)
    with pytest.raises(ValueError, match="needs the archive's labels"):
        ResNet50V2FPN().fit(images)


def test_a_second_fit_loads_the_network_from_the_cache(fitted, archive):
    method, cache = fitted
    images, labels = archive
    again = ResNet50V2FPN(**TINY).fit(images, labels, cache=cache)
    assert again.from_cache_ and again.cache_folder_ == method.cache_folder_
    assert again.training_ == method.training_
    np.testing.assert_allclose(again._describe(images), method._describe(images), atol=1e-5)


def test_a_baseline_is_the_same_method_with_another_network(archive, fitted):
    images, labels = archive
    _, cache = fitted
    settings = {**TINY, "training": {**TINY["training"], "epochs": 1}}
    plain = ResNet50V2FPN(**settings, network="resnet50v2").fit(images, labels, cache=cache)
    assert not plain.from_cache_ and list(plain.training_) == ["resnet50v2"]  # another setting, another network
    assert plain.model_.get_layer("resnet50v2") is not None
    assert plain.describe(images[:5]).shape == (5, 16)  # the baselines' vector is as long as the FPN's
    with pytest.raises(ValueError, match="needs the FPN"):
        plain.level_slices()
