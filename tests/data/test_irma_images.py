"""IRMA loaders on the real 2009 code lists, with real chest radiographs standing in for the images.

The IRMA radiographs are not redistributable, so each fixture writes real radiographs
(PneumoniaMNIST, 28 px enlarged to 128 px) as ``<image_id>.png`` for the first few real
ids. The code lists come through the data registry.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from cbmir_tf.data.irma_images import load_irma_2007, load_irma_2009, read_codes_2009
from cbmir_tf.data.preprocess import resize_batch
from cbmir_tf.data.registry import fetch

TRAIN_CSV = "ImageCLEFmed2009_train_codes.02.csv"
TEST_CSV = "ImageCLEFmed2009_test_codes.03.csv"
N = 6  # images written per split


def _head(name: str, n: int) -> tuple[bytes, list[tuple[str, str]]]:
    """Header plus the first `n` rows of a real code list, bytes kept (CRLF or LF), and their (id, code)."""
    lines = fetch(f"irma-codes/{name}").read_bytes().splitlines(keepends=True)
    rows = [tuple(line.decode().strip().split(";")[:2]) for line in lines[1 : n + 1]]
    return b"".join(lines[: n + 1]), rows


@pytest.fixture(scope="module")
def xrays(small_benchmark) -> np.ndarray:
    """2 N real chest radiographs, uint8 (12, 128, 128)."""
    chest = small_benchmark.images[np.char.startswith(small_benchmark.codes.astype(str), "XR-chest-")]
    return resize_batch(chest[: 2 * N], 128)


def _write_images(folder: Path, ids: list[str], images: np.ndarray) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for image_id, image in zip(ids, images):
        Image.fromarray(image).save(folder / f"{image_id}.png")


@pytest.fixture
def root_2009(tmp_path, xrays):
    """Trimmed real train/test code lists and N images per split under train/ and test/."""
    rows = {}
    for split, name, offset in (("train", TRAIN_CSV, 0), ("test", TEST_CSV, N)):
        data, rows[split] = _head(name, N)
        (tmp_path / name).write_bytes(data)
        _write_images(tmp_path / split, [i for i, _ in rows[split]], xrays[offset : offset + N])
    return tmp_path, rows


def test_train_split_codes_and_pixels(root_2009, xrays):
    root, rows = root_2009
    assert (root / TRAIN_CSV).read_bytes().count(b"\r\n") == N + 1  # the real train file is CRLF
    data = load_irma_2009(root)
    codes = [c for _, c in rows["train"]]
    assert list(data.codes) == codes
    assert data.class_names == tuple(sorted(set(codes)))
    assert [data.class_names[label] for label in data.labels] == codes
    assert list(data.source_ids) == [f"train/{i}.png" for i, _ in rows["train"]]
    np.testing.assert_array_equal(data.images, xrays[:N])  # 128 px grey in, 128 px out
    assert set(data.split) == {"train"}


def test_all_splits_and_size(root_2009):
    root, rows = root_2009
    data = load_irma_2009(root, split="all", size=64)
    assert data.images.shape == (2 * N, 64, 64)
    assert list(data.split) == ["train"] * N + ["test"] * N
    assert list(data.codes) == [c for _, c in rows["train"] + rows["test"]]
    assert list(data.take_split("test").codes) == [c for _, c in rows["test"]]


def test_flat_folder_and_explicit_codes_file(root_2009, tmp_path_factory):
    root, rows = root_2009
    flat = tmp_path_factory.mktemp("flat")
    for path in (root / "test").iterdir():
        shutil.copy(path, flat / path.name)
    data = load_irma_2009(flat, codes_file=root / TEST_CSV, split="test")
    assert list(data.codes) == [c for _, c in rows["test"]]
    assert list(data.source_ids) == [f"{i}.png" for i, _ in rows["test"]]


def test_missing_images_name_file_count_and_source(root_2009):
    root, rows = root_2009
    shutil.copy(fetch(f"irma-codes/{TRAIN_CSV}"), root / TRAIN_CSV)  # the full real list
    total = len(read_codes_2009(root / TRAIN_CSV))
    assert total == 12677  # irma-codes/README.md
    first_missing = _head(TRAIN_CSV, N + 1)[1][N][0]
    with pytest.raises(FileNotFoundError) as info:
        load_irma_2009(root)
    message = str(info.value)
    assert message.startswith(str(root / "train" / f"{first_missing}.png"))
    assert f"{total - N} of {total}" in message
    assert "not redistributable" in message and "CBMIR_DATA_DIR/irma/" in message


def test_codes_found_through_the_registry(tmp_path, xrays):
    # No code list next to the images: the registry's irma-codes/ copy is used (and its ids lack images).
    _, rows = _head(TEST_CSV, N)
    _write_images(tmp_path / "test", [i for i, _ in rows], xrays[:N])
    with pytest.raises(FileNotFoundError, match=f"{1733 - N} of 1733"):
        load_irma_2009(tmp_path, split="test")


def test_bad_code_and_bad_split(tmp_path):
    (tmp_path / TRAIN_CSV).write_text("image_id;irma_code\n1880;1121-127-700-500\n1881;1121-12-700\n")
    with pytest.raises(ValueError, match=re.escape(f"{tmp_path / TRAIN_CSV}:3")):
        load_irma_2009(tmp_path)
    with pytest.raises(ValueError, match="split='val'"):
        load_irma_2009(tmp_path, split="val")


@pytest.mark.parametrize("flat", [False, True])
def test_irma_2007_layout(tmp_path, xrays, flat):
    _, train = _head(TRAIN_CSV, N)
    _, test = _head(TEST_CSV, N)
    # train.txt space separated with a header; test.txt ';' separated with CRLF and a comment.
    (tmp_path / "train.txt").write_text("image irma\n" + "".join(f"{i} {c}\n" for i, c in train))
    test_lines = "# 2007 test\r\n" + "".join(f"{i}.png;{c}\r\n" for i, c in test)
    (tmp_path / "test.txt").write_bytes(test_lines.encode())
    _write_images(tmp_path if flat else tmp_path / "train", [i for i, _ in train], xrays[:N])
    _write_images(tmp_path if flat else tmp_path / "test", [i for i, _ in test], xrays[N:])
    data = load_irma_2007(tmp_path)
    assert list(data.codes) == [c for _, c in train + test]
    assert list(data.split) == ["train"] * N + ["test"] * N
    np.testing.assert_array_equal(data.images, xrays[: 2 * N])
    (tmp_path / "val.txt").write_text(f"{train[0][0]} 1121-127-70\n")
    with pytest.raises(ValueError, match=re.escape(f"{tmp_path / 'val.txt'}:1")):
        load_irma_2007(tmp_path)


def test_irma_2007_missing_list(tmp_path):
    with pytest.raises(FileNotFoundError, match="train.txt"):
        load_irma_2007(tmp_path)
