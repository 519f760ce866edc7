"""Paper 003's method on real images: a shallow CNN trained once per key, two-stage search, bad input."""

from __future__ import annotations

import numpy as np
import pytest

from cbmir_tf.methods import from_profile
from cbmir_tf.methods.cnnc_rbc import CNNCRBC
from cbmir_tf.profiles import PAPER
from cbmir_tf.search.rerank import rerank

#: A tiny network and a few training steps: the tests check the machinery, not the accuracy.
TINY = {"input_size": 32, "code_bits": 256, "n_candidates": 12, "barcode_size": 64, "n_angles": 8,
        "training": {"learning_rate": 1e-4, "epochs": 2, "batch_size": 8, "steps_per_epoch": 3, "patience": None}}


@pytest.fixture(scope="module")
def fitted(archive, tmp_path_factory):
    images, labels = archive
    cache = tmp_path_factory.mktemp("cnnc-cache")
    return CNNCRBC(**TINY).fit(images, labels, cache=cache).add(images), cache


def test_settings_are_the_profile_keys_plus_seed():
    method = from_profile("cnnc_rbc", "paper", seed=3)
    assert set(method.get_settings()) == set(PAPER["methods"]["cnnc_rbc"]) | {"seed"}
    assert method.seed == 3 and method.training == PAPER["methods"]["cnnc_rbc"]["training"]
    assert (method.key, method.paper, method.name) == ("cnnc_rbc", "003", "CNNC+RBC")


def test_trains_once_then_loads_with_identical_results(archive, fitted):
    images, labels = archive
    method, cache = fitted
    assert not method.from_cache_
    run = method.training_["shallow_cnn"]
    assert run["epochs_run"] == 2 and len(run["history"]["val_loss"]) == 2 and run["stopped_by"] == "epoch limit"
    again = CNNCRBC(**TINY).fit(images, labels, cache=cache).add(images)
    assert again.from_cache_ and again.training_ == method.training_
    D1, I1 = method.search(images[:10], 5)
    D2, I2 = again.search(images[:10], 5)
    np.testing.assert_array_equal(I1, I2)
    np.testing.assert_array_equal(D1, D2)
    changed = CNNCRBC(**{**TINY, "dropout": 0.3}).fit(images, labels, cache=cache)
    assert not changed.from_cache_ and changed.cache_folder_ != method.cache_folder_


def test_two_stage_search_finds_itself_and_reranks_the_code_candidates(archive, fitted):
    images, _ = archive
    method, _ = fitted
    described = method.describe(images)
    assert described["codes"].shape == (40, 256 // 8) and described["barcodes"].dtype == np.uint8
    D, I = method.search_described(described, 10)
    assert I.shape == (40, 10) and (I[:, 0] == np.arange(40)).all() and (D[:, 0] == 0).all()
    assert (np.diff(D, axis=1) >= 0).all()
    # the hits are the code search's 12 candidates, re-sorted by barcode distance
    Dc, Ic = method.index_.candidates(described["codes"])
    D2, I2 = rerank(Dc, Ic, described["barcodes"], described["barcodes"], "hamming", 10)
    np.testing.assert_array_equal(I, I2)
    np.testing.assert_array_equal(D, D2)
    _, loo = method.search_described(described, 5, exclude=np.arange(40))
    assert not (loo == np.arange(40)[:, None]).any()
    assert method.bytes_per_image == 256 / 8 + described["barcodes"].shape[1]


def test_float_codes_of_the_same_network(archive, fitted):
    images, _ = archive
    method, _ = fitted
    binary, floats = method.cnn_code().transform(images[:5]), method.cnn_code(binary=False).transform(images[:5])
    assert floats.dtype == np.float32 and floats.shape == (5, 256)
    np.testing.assert_array_equal(binary, floats > 0)


def test_bad_input_raises(archive, fitted):
    images, labels = archive
    method, _ = fitted
    with pytest.raises(ValueError, match="needs the archive's labels"):
        CNNCRBC(**TINY).fit(images)
    with pytest.raises(ValueError, match="not fitted"):
        CNNCRBC(**TINY).describe(images)
    with pytest.raises(ValueError, match="call add"):
        CNNCRBC(**TINY).search_described({"codes": None, "barcodes": None})
    with pytest.raises(ValueError, match=r"k must lie in \[1, n_candidates=12\]"):
        method.search(images[:2], 20)
    with pytest.raises(ValueError, match="'codes' and 'barcodes'"):
        method.search_described(np.zeros((2, 8), np.uint8))
    with pytest.raises(ValueError, match="val_fraction must lie in"):
        CNNCRBC(val_fraction=0.0)
    with pytest.raises(ValueError, match="Received: input_size=4"):
        CNNCRBC(input_size=4)
    with pytest.raises(ValueError, match=r"Received unknown: \['epoch'\]"):
        CNNCRBC(training={"epoch": 3})
