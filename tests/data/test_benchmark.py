"""The open multi-axis benchmark: its eight sets (``open_benchmark`` tests, skipped when absent),
its MedMNIST fallback, and the loader's errors and conversion."""

import shutil
import warnings

import numpy as np
import pytest
from PIL import Image

from cbmir_tf.data.benchmark import (MEMBERS, REGISTRY, available_members, composition, load_benchmark,
                                     load_member, prepare)
from cbmir_tf.data.dataset import validation_split
from cbmir_tf.data.registry import fetch
from cbmir_tf.irma import code_axes


@pytest.fixture(scope="module")
def benchmark():
    with pytest.warns(UserWarning, match="leak"):
        return load_benchmark(source="local")


@pytest.mark.open_benchmark
def test_composition_matches_the_member_readmes(benchmark):
    # Counts from each folder's README (kept images): 3500 + 1500 + 2500 + 307 + 1914 + 1055 + 200 + 778.
    assert len(benchmark) == 11754
    assert benchmark.images.shape[1:] == (128, 128) and benchmark.images.dtype == np.uint8
    counts = benchmark.class_counts()
    assert counts["MR-brain-glioma"] == 701 + 159  # README: kept train 701, test 159
    assert counts["XR-knee-kl4"] == 52 + 8 + 16  # train + val + test
    assert counts["US-breast-benign"] == 436
    assert counts["CT-abdomen-kidney_cyst"] == 420
    table = composition(benchmark)
    assert set(table["modality"]) == {"MR", "XR", "CT", "US"}
    assert set(table["region"]) == {"brain", "knee", "chest", "abdomen", "breast"}
    assert len(table) == sum(len(m.findings) for m in REGISTRY) == 28


@pytest.mark.open_benchmark
def test_codes_are_two_axis_hierarchical(benchmark):
    assert code_axes("CT-abdomen-kidney_stone") == (("CT",), ("abdomen", "kidney_stone"))
    assert all(code == benchmark.class_names[label] for code, label in zip(benchmark.codes[::97], benchmark.labels[::97]))


@pytest.mark.open_benchmark
def test_split_is_fixed_and_uses_the_source_split(benchmark):
    with np.load(fetch("brain-tumor-mri/brain_tumor_mri_128.npz")) as npz:
        source_split = npz["split"]
    brain = benchmark.subset(np.char.startswith(benchmark.source_ids, "brain-tumor-mri:"))
    assert np.array_equal(brain.split, source_split)
    knee = load_member("knee-oa-xray")
    assert set(knee.split) == {"train", "test"} and (knee.split == "test").sum() == 502  # val joins train
    kidney_a, kidney_b = load_member("kidney-ct"), load_member("kidney-ct")
    assert np.array_equal(kidney_a.split, kidney_b.split)
    share = (kidney_a.split == "test").mean()
    assert 0.18 < share < 0.22


@pytest.mark.open_benchmark
def test_subsampling_is_seeded_and_stratified():
    with pytest.warns(UserWarning):
        a = load_benchmark(source="local", max_per_class=5, seed=3)
    with pytest.warns(UserWarning):
        b = load_benchmark(source="local", max_per_class=5, seed=3)
    assert np.array_equal(a.source_ids, b.source_ids)
    assert max(np.bincount(a.labels[a.split == "test"])) <= 5


def test_fallback_is_medmnist_coded_like_the_eight_sets(fallback_benchmark, small_benchmark):
    full = fallback_benchmark
    assert full.meta["source"] == "fallback" and full.meta["members"] == ["pneumoniamnist", "breastmnist"]
    # MedMNIST INFO: PneumoniaMNIST 4708 + 524 + 624, BreastMNIST 546 + 78 + 156 (train, val, test)
    assert full.images.shape == (5856 + 780, 28, 28) and full.images.dtype == np.uint8
    assert set(full.split) == {"train", "test"}  # validation joins training
    assert (full.split == "test").sum() == 624 + 156
    assert full.class_names == ("XR-chest-normal", "XR-chest-pneumonia", "US-breast-malignant",
                                "US-breast-normal_or_benign")
    assert (np.asarray(full.class_names)[full.labels] == full.codes).all()
    assert {code_axes(c) for c in ("XR-chest-pneumonia", "US-breast-malignant")} == {
        (("XR",), ("chest", "pneumonia")), (("US",), ("breast", "malignant"))}
    # max_per_class: a seeded, stratified subset of it
    assert small_benchmark.summary()[["train", "test"]].to_numpy().tolist() == [[10, 10]] * 4
    assert set(small_benchmark.source_ids) <= set(full.source_ids)
    again = load_benchmark(source="fallback", profile="smoke", max_per_class=10, seed=0)
    other = load_benchmark(source="fallback", profile="smoke", max_per_class=10, seed=1)
    assert np.array_equal(again.source_ids, small_benchmark.source_ids)
    assert not np.array_equal(other.source_ids, small_benchmark.source_ids)


def test_auto_takes_the_eight_sets_when_present_else_the_fallback():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # patient-leakage note of the eight sets
        data = load_benchmark(profile="smoke", max_per_class=2)
    assert data.meta["source"] == ("local" if available_members() else "fallback")
    assert data.meta["members"] == ([m.key for m in available_members()] if available_members()
                                    else ["pneumoniamnist", "breastmnist"])


def test_validation_split_takes_from_train_only(small_benchmark):
    ds = validation_split(small_benchmark, 0.2, seed=0)
    assert np.array_equal(ds.split == "test", small_benchmark.split == "test")
    assert (ds.split == "val").sum() > 0
    assert set(ds.split[small_benchmark.split == "train"]) == {"train", "val"}


def test_checksum_mismatch_names_the_file(tmp_path, monkeypatch):
    monkeypatch.setenv("CBMIR_CACHE_DIR", str(tmp_path / "cache"))
    folder = tmp_path / "head-ct-hemorrhage"
    folder.mkdir()
    # real npz bytes, but not the published head-CT file
    shutil.copy(fetch("medmnist/breastmnist.npz"), folder / "head_ct_hemorrhage_128.npz")
    with pytest.raises(ValueError, match=r"head_ct_hemorrhage_128\.npz: checksum mismatch"):
        load_member("head-ct-hemorrhage", tmp_path)


def test_missing_dataset_says_how_to_get_it(tmp_path, monkeypatch):
    monkeypatch.setenv("CBMIR_CACHE_DIR", str(tmp_path / "cache"))
    how = r"CBMIR_DATA_DIR.*`cbmir-data fetch busi-ultrasound`"
    with pytest.raises(FileNotFoundError, match=how) as info:
        load_member("busi-ultrasound", tmp_path)
    assert "busi-ultrasound/busi_breast_us_128.npz" in str(info.value)
    with pytest.raises(FileNotFoundError, match="No benchmark set found.*cbmir-data fetch open-benchmark"):
        load_benchmark(tmp_path, source="local")


def test_prepare_rebuilds_the_npz_form_from_image_folders(tmp_path, small_benchmark):
    # Real breast ultrasound images (BreastMNIST, which was made from BUSI) written in BUSI's folder
    # layout: its "normal_or_benign" images under benign/, with one byte-identical duplicate in the same
    # class (kept once) and one in another class (dropped: its labels disagree).
    breast = small_benchmark.subset(np.char.startswith(small_benchmark.codes.astype(str), "US-breast-"))
    source = tmp_path / "BMI702_project"
    written = []
    for i, (image, code) in enumerate(zip(breast.images[:12], breast.codes[:12])):
        folder = source / "Dataset_BUSI_with_GT" / ("malignant" if code.endswith("malignant") else "benign")
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.pad(image, ((0, 0), (20, 20)))).save(folder / f"{i:03d}.png")  # wider than high
        written.append(folder / f"{i:03d}.png")
    shutil.copy(written[0], written[0].with_name("900.png"))
    other = source / "Dataset_BUSI_with_GT" / ("benign" if "malignant" in str(written[1]) else "malignant")
    shutil.copy(written[1], other / "901.png")
    out = prepare("busi-ultrasound", source, root=tmp_path / "data")
    with np.load(out) as npz:
        # 12 images: the same-class copy kept once, the pair with two labels dropped
        assert npz["images"].shape == (11, 128, 128)
        assert list(npz["class_names"]) == list(MEMBERS["busi-ultrasound"].findings)
        assert tuple(npz["original_size_wh"][0]) == (68, 28)
        assert not npz["images"][:, :30].any() and npz["images"][:, 40:88].any()  # black padding on top
        assert written[1].relative_to(source).as_posix() not in list(npz["source_paths"])
    member = load_member("busi-ultrasound", tmp_path / "data")  # verified against its sidecar
    assert len(member) == 11 and set(member.codes) <= set(MEMBERS["busi-ultrasound"].codes())
