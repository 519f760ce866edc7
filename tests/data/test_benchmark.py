"""The open multi-axis benchmark on the real shared data."""

import shutil

import numpy as np
import pytest
from PIL import Image

from cbmir_tf.data.benchmark import MEMBERS, REGISTRY, composition, load_benchmark, load_member, prepare
from cbmir_tf.data.dataset import validation_split
from cbmir_tf.irma import code_axes


@pytest.fixture(scope="module")
def benchmark(data_dir):
    with pytest.warns(UserWarning, match="leak"):
        return load_benchmark(data_dir)


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


def test_codes_are_two_axis_hierarchical(benchmark):
    assert code_axes("CT-abdomen-kidney_stone") == (("CT",), ("abdomen", "kidney_stone"))
    assert all(code == benchmark.class_names[label] for code, label in zip(benchmark.codes[::97], benchmark.labels[::97]))


def test_split_is_fixed_and_uses_the_source_split(benchmark, data_dir):
    with np.load(data_dir / "brain-tumor-mri" / "brain_tumor_mri_128.npz") as npz:
        source_split = npz["split"]
    brain = benchmark.subset(np.char.startswith(benchmark.source_ids, "brain-tumor-mri:"))
    assert np.array_equal(brain.split, source_split)
    knee = load_member("knee-oa-xray", data_dir)
    assert set(knee.split) == {"train", "test"} and (knee.split == "test").sum() == 502  # val joins train
    kidney_a, kidney_b = load_member("kidney-ct", data_dir), load_member("kidney-ct", data_dir)
    assert np.array_equal(kidney_a.split, kidney_b.split)
    share = (kidney_a.split == "test").mean()
    assert 0.18 < share < 0.22


def test_subsampling_is_seeded_and_stratified(data_dir):
    with pytest.warns(UserWarning):
        a = load_benchmark(data_dir, max_per_class=5, seed=3)
    with pytest.warns(UserWarning):
        b = load_benchmark(data_dir, max_per_class=5, seed=3)
    assert np.array_equal(a.source_ids, b.source_ids)
    assert max(np.bincount(a.labels[a.split == "test"])) <= 5


def test_validation_split_takes_from_train_only(small_benchmark):
    ds = validation_split(small_benchmark, 0.2, seed=0)
    assert np.array_equal(ds.split == "test", small_benchmark.split == "test")
    assert (ds.split == "val").sum() > 0
    assert set(ds.split[small_benchmark.split == "train"]) == {"train", "val"}


def test_checksum_mismatch_names_the_file(tmp_path, data_dir):
    folder = tmp_path / "head-ct-hemorrhage"
    folder.mkdir()
    raw = (data_dir / "head-ct-hemorrhage" / "head_ct_hemorrhage_128.npz").read_bytes()
    (folder / "head_ct_hemorrhage_128.npz").write_bytes(raw[:-1] + bytes([raw[-1] ^ 1]))
    with pytest.raises(ValueError, match=r"head_ct_hemorrhage_128\.npz: checksum mismatch"):
        load_member("head-ct-hemorrhage", tmp_path)


def test_missing_dataset_says_how_to_get_it(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"CBMIR_DATA_DIR.*https://.*cbmir-prepare busi-ultrasound") as info:
        load_member("busi-ultrasound", tmp_path)
    assert "busi_breast_us_128.npz" in str(info.value)
    with pytest.raises(FileNotFoundError, match="No benchmark set found"):
        load_benchmark(tmp_path, source="local")


def test_prepare_rebuilds_the_npz_form_from_image_folders(tmp_path, data_dir):
    # Real head-CT slices written as PNG class folders, with one byte-identical duplicate.
    with np.load(data_dir / "head-ct-hemorrhage" / "head_ct_hemorrhage_128.npz") as npz:
        images, labels, names = npz["images"][:12], npz["labels"][:12], list(npz["class_names"])
    source = tmp_path / "download"
    for i, (image, label) in enumerate(zip(images, labels)):
        folder = source / names[label]
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.pad(image, ((0, 0), (20, 20)))).save(folder / f"{i:03d}.png")  # wider than high
    shutil.copy(source / names[labels[0]] / "000.png", source / names[labels[0]] / "999.png")
    out = prepare("head-ct-hemorrhage", source, root=tmp_path / "data")
    with np.load(out) as npz:
        assert npz["images"].shape == (12, 128, 128)  # the duplicate was dropped
        assert list(npz["class_names"]) == names
        assert tuple(npz["original_size_wh"][0]) == (168, 128)
    member = load_member("head-ct-hemorrhage", tmp_path / "data")  # verified against its sidecar
    assert len(member) == 12 and set(member.codes) <= set(MEMBERS["head-ct-hemorrhage"].codes())
