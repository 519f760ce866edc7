"""Paper 001's method on real images: InRes-Net trained once per key, codes and FC1 searched coarse to fine."""

from __future__ import annotations

import numpy as np
import pytest

from cbmir_tf.methods import from_profile
from cbmir_tf.methods.inres_hashing import InResHashing
from cbmir_tf.profiles import PAPER

#: A tiny network and a few training steps: the tests check the machinery, not the accuracy.
TINY = {"input_size": 32, "stem_filters": 8, "stages": 1, "fc1_units": 32, "hash_bits": 16, "dropout": 0.0,
        "init_stddev": None, "hamming_threshold": 2, "threshold_step": 2, "min_pool": 5, "val_fraction": 0.2,
        "training": {"optimizer": "sgd", "learning_rate": 0.01, "momentum": 0.9, "epochs": 2, "batch_size": 8,
                     "patience": None}}


@pytest.fixture(scope="module")
def fitted(archive, tmp_path_factory):
    images, labels = archive
    cache = tmp_path_factory.mktemp("inres-cache")
    return InResHashing(**TINY).fit(images, labels, cache=cache).add(images), cache


def test_settings_are_the_profile_keys_plus_seed():
    method = from_profile("inres_hashing", "paper", seed=3)
    assert set(method.get_settings()) == set(PAPER["methods"]["inres_hashing"]) | {"seed"}
    assert method.seed == 3 and method.training == PAPER["methods"]["inres_hashing"]["training"]
    assert (method.key, method.paper, method.name) == ("inres_hashing", "001", "InRes-Net hashing")
    cpu = from_profile("inres_hashing", "cpu")
    assert cpu.training["time_budget_s"] and cpu.training["patience"]  # early stopping within a budget


def test_trains_once_then_loads_with_identical_results(archive, fitted):
    images, labels = archive
    method, cache = fitted
    assert not method.from_cache_
    run = method.training_["inres_net"]
    assert run["epochs_run"] == 2 and len(run["history"]["val_loss"]) == 2 and run["stopped_by"] == "epoch limit"
    assert (cache / "inres_hashing" / method.cache_folder_.name / "inres_net.keras").is_file()
    again = InResHashing(**TINY).fit(images, labels, cache=cache).add(images)
    assert again.from_cache_ and again.training_ == method.training_
    D1, I1 = method.search(images[:10], 5)
    D2, I2 = again.search(images[:10], 5)
    np.testing.assert_array_equal(I1, I2)
    np.testing.assert_allclose(D1, D2, rtol=1e-6)
    changed = InResHashing(**{**TINY, "hash_bits": 24}).fit(images, labels, cache=cache)
    assert not changed.from_cache_ and changed.cache_folder_ != method.cache_folder_


def test_codes_are_the_hash_layer_thresholded(archive, fitted):
    images, _ = archive
    method, _ = fitted
    described = method.describe(images)
    layers = method.features(images)
    assert described["codes"].dtype == bool and described["codes"].shape == (40, 16)
    np.testing.assert_array_equal(described["codes"], layers["hash"] >= 0.5)
    np.testing.assert_allclose(described["fc1"], layers["fc1"], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(layers["fc3"].sum(1), 1.0, rtol=1e-5)
    assert len(np.unique(described["codes"], axis=0)) > 1  # real images get different codes


def test_search_ranks_the_widened_hamming_pool_by_fc1(archive, fitted):
    images, _ = archive
    method, _ = fitted
    described = method.describe(images)
    codes, fc1 = described["codes"], described["fc1"]
    D, I = method.search_described(described, 5)
    assert I.shape == (40, 5) and (I >= 0).all()  # min_pool 5: the top 5 is always full
    assert (I[:, 0] == np.arange(40)).all() and np.allclose(D[:, 0], 0, atol=1e-3)
    for q in range(40):  # brute force: the pool widened from 2 bits by 2 until it holds 5 images
        hamming = (codes != codes[q]).sum(1)
        radius = 2
        while (hamming <= radius).sum() < 5:
            radius += 2
        pool = np.flatnonzero(hamming <= radius)
        distance = np.linalg.norm(fc1[pool] - fc1[q], axis=1)
        np.testing.assert_allclose(np.sort(distance)[:5], D[q], rtol=1e-4, atol=1e-4)
        assert set(I[q]) <= set(pool)
    _, loo = method.search_described(described, 5, exclude=np.arange(40))
    assert not (loo == np.arange(40)[:, None]).any()
    assert method.bytes_per_image == 16 / 8 + 32 * 4  # packed code and float32 FC1


def test_bad_input(archive):
    images, labels = archive
    with pytest.raises(ValueError, match="Received unknown: \\['epoch'\\]"):
        InResHashing(training={"epoch": 3})
    with pytest.raises(ValueError, match="Received: val_fraction=0"):
        InResHashing(val_fraction=0)
    with pytest.raises(ValueError, match="needs the archive's labels"):
        InResHashing(**TINY).fit(images)
    with pytest.raises(ValueError, match="not fitted yet"):
        InResHashing(**TINY).describe(images)
    with pytest.raises(ValueError, match="with 'codes' and 'fc1'"):
        InResHashing(**TINY).add_described(np.zeros((2, 32)))
    with pytest.raises(ValueError, match="call add"):
        InResHashing(**TINY).search_described({"codes": np.zeros((1, 16), bool), "fc1": np.zeros((1, 32))})
