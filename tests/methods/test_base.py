"""The shared method machinery on real images: descriptor methods, re-ranked pairs, the registry and
the train-once cache (with a small learned method: class-mean templates)."""

from __future__ import annotations

import numpy as np
import pytest

from cbmir_tf.methods import CLI_METHODS, METHODS, from_profile, make_method, method_class
from cbmir_tf.methods.base import LearnedMethod, VectorSearchMixin
from cbmir_tf.methods.cache import cache_key, cached_entries, data_checksum
from cbmir_tf.methods.cnnc_rbc import RadonBarcodeMethod
from cbmir_tf.methods.hog import HOG
from cbmir_tf.methods.reranked import Reranked
from cbmir_tf.profiles import method_settings


@pytest.fixture(scope="module")
def subset(small_benchmark):
    """Nine real 28 px images of each of the four codes (36 images), labels 0..3."""
    codes = sorted(set(small_benchmark.codes))
    assert len(codes) == 4
    rows = np.concatenate([np.flatnonzero(small_benchmark.codes == c)[:9] for c in codes])
    labels = np.searchsorted(codes, small_benchmark.codes[rows])
    return small_benchmark.images[rows], labels


def finds_itself(method, images, k=5):
    D, I = method.search(images, k)
    assert I.shape == D.shape == (len(images), k) and (I >= 0).all()
    return (I[:, 0] == np.arange(len(images))).mean()


def test_hog_method(subset):
    images, _ = subset
    method = HOG().fit(images).add(images)
    assert finds_itself(method, images) == 1.0
    assert method.bytes_per_image == 540 * 4  # 540 float32 at the paper's 256 px layout
    assert method.metric == "l1"
    assert method.get_settings() == method_settings("paper", "hog")


def test_reranked_method_resorts_the_candidates(subset):
    images, _ = subset
    first, second = RadonBarcodeMethod(), HOG()
    method = Reranked(first, second, k_prep=8).fit(images).add(images)
    D, I = method.search(images[:5], 4)
    _, candidates = first.search(images[:5], 8)
    for row, cands in zip(I, candidates):
        assert set(row) <= set(cands)  # only the first method's candidates come back
    assert (np.diff(D, axis=1) >= 0).all()  # in the second descriptor's order
    assert (I[:, 0] == np.arange(5)).all() and np.allclose(D[:, 0], 0)
    hog = second.describe(images[:5])
    expected = np.abs(hog[:, None] - second.vectors_[I]).sum(-1)
    np.testing.assert_allclose(D, expected, rtol=1e-5)
    assert first.bytes_per_image == 4352 / 8  # barcode bits, packed
    assert method.bytes_per_image == first.bytes_per_image + 540 * 4
    # leave-one-out from described queries: the query itself never comes back
    described = method.describe(images[:5])
    _, I_loo = method.search_described(described, 4, exclude=np.arange(5))
    assert not (I_loo == np.arange(5)[:, None]).any()


def test_registry_and_cli_names():
    assert {type(make_method(name)).__name__ for name in CLI_METHODS} == {"HOG", "BoVW", "PretrainedCNN",
                                                                          "RadonBarcodeMethod", "Reranked"}
    assert make_method("bovw").descriptor.n_words == 1000  # the CLI's vocabulary
    with pytest.raises(ValueError, match="Unknown method 'sift'"):
        make_method("sift")
    for key in ("hog", "bovw", "pretrained_cnn", "cnn_hog", "rbc"):
        assert method_class(key).key in (key, "reranked")
    assert set(METHODS) >= {"cnnc_rbc", "resnet50v2_fpn", "inres_hashing", "vgg_configs"}


def test_from_profile_uses_the_profile_settings():
    paper, cpu = from_profile("bovw", "paper"), from_profile("bovw", "cpu", seed=3)
    assert paper.descriptor.n_words == 4000 and paper.descriptor.points_per_word is None
    assert cpu.descriptor.n_words == 1000 and cpu.descriptor.seed == 3
    pair = from_profile("cnn_hog", "cpu")
    assert pair.k_prep == 30 and pair.second.descriptor.n_bins == 15


def test_data_checksum_and_key_follow_data_and_settings(subset):
    images, labels = subset
    same = data_checksum(images, labels)
    assert same == data_checksum(images.copy(), labels.copy())
    assert same != data_checksum(images[:-1], labels[:-1])
    changed = images.copy()
    changed[0, 0, 0] ^= 1
    assert same != data_checksum(changed, labels)
    assert same != data_checksum(images, labels[::-1])
    assert cache_key("m", {"a": 1}, same) == cache_key("m", {"a": 1}, same)
    assert len({cache_key("m", {"a": 1}, same), cache_key("m", {"a": 2}, same), cache_key("n", {"a": 1}, same),
                cache_key("m", {"a": 1}, data_checksum(images))}) == 4


def test_key_follows_the_networks_code(monkeypatch):
    from cbmir_tf.methods import cache

    before = cache.cache_key("m", {}, "data")
    cache.code_digest.cache_clear()
    monkeypatch.setattr(cache, "CODE_FOLDERS", ("models", "methods"))  # as if the descriptors' code changed
    try:
        assert cache.cache_key("m", {}, "data") != before
    finally:
        cache.code_digest.cache_clear()


class ClassTemplates(VectorSearchMixin, LearnedMethod):
    """A small learned method: distances to the class-mean images of the archive."""

    key, name = "class_templates", "class templates"

    def __init__(self, scale: float = 1.0, seed: int = 0):
        self.scale, self.seed = scale, seed

    def _train(self, images, labels):
        self.calls = getattr(self, "calls", 0) + 1
        self.templates_ = np.stack([images[labels == c].mean(0) for c in np.unique(labels)]).reshape(
            len(np.unique(labels)), -1)
        return {"templates": {"classes": len(self.templates_)}}

    def _save(self, folder):
        np.save(folder / "templates.npy", self.templates_)

    def _load(self, folder):
        self.templates_ = np.load(folder / "templates.npy")

    def _describe(self, images):
        flat = images.reshape(len(images), -1).astype(np.float32)
        return self.scale * np.linalg.norm(flat[:, None] - self.templates_[None], axis=-1).astype(np.float32)


def test_learned_method_trains_once_per_key(subset, tmp_path):
    images, labels = subset
    first = ClassTemplates().fit(images, labels, cache=tmp_path)
    assert not first.from_cache_ and first.calls == 1
    first.add(images)
    again = ClassTemplates().fit(images, labels, cache=tmp_path)
    assert again.from_cache_ and not hasattr(again, "calls")
    assert again.training_ == first.training_
    np.testing.assert_array_equal(again.templates_, first.templates_)
    np.testing.assert_array_equal(again.add(images).search(images, 3)[1], first.search(images, 3)[1])
    assert len(list((first.cache_folder_ / "described").glob("*.npz"))) == 1  # one batch, described once
    first.search(images[:1], 3)  # one query is described afresh, never cached
    assert len(list((first.cache_folder_ / "described").glob("*.npz"))) == 1
    assert not ClassTemplates(scale=2.0).fit(images, labels, cache=tmp_path).from_cache_  # new setting
    assert not ClassTemplates().fit(images[1:], labels[1:], cache=tmp_path).from_cache_  # new data
    rows = cached_entries(tmp_path)
    assert len(rows) == 3 and {r["method"] for r in rows} == {"class_templates"}
    assert not ClassTemplates().fit(images, labels, cache=False).from_cache_
    assert not list(tmp_path.glob("class_templates/.*tmp*"))  # nothing half-written


def test_learned_method_needs_labels(subset):
    images, labels = subset
    with pytest.raises(ValueError, match="needs the archive's labels"):
        ClassTemplates().fit(images)
    with pytest.raises(ValueError, match="one entry per image"):
        ClassTemplates().fit(images, labels[:-1])
    with pytest.raises(ValueError, match="not fitted"):
        ClassTemplates().describe(images)
