"""The ``cbmir`` command end to end, on the real DICOM samples and on real MedMNIST images written as PNGs."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from PIL import Image

from cbmir_tf import cli
from cbmir_tf.archive import Archive, build_archive
from cbmir_tf.data.io import atomic_directory


@pytest.fixture(scope="module")
def png_folder(small_benchmark, tmp_path_factory):
    """Three real 28 px images of each of the four codes, as PNGs in one folder per code."""
    root = tmp_path_factory.mktemp("archive")
    codes = sorted(set(small_benchmark.codes))
    assert len(codes) == 4
    for code in codes:
        (root / code).mkdir()
        for j, i in enumerate(np.flatnonzero(small_benchmark.codes == code)[:3]):
            Image.fromarray(small_benchmark.images[i]).save(root / code / f"{j}.png")
    return root


def run(capsys, *argv):
    status = cli.main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return status, out, err


def test_index_query_evaluate_dicom(dicom_dir, tmp_path, capsys):
    index = tmp_path / "dicom_index"
    status, out, err = run(capsys, "index", dicom_dir, "--method", "hog", "--out", index, "--quiet")
    assert status == 0, err
    assert "indexed 14 images" in out
    manifest = json.loads((index / "manifest.json").read_text())
    assert manifest["method"] == "hog" and manifest["count"] == 14 and manifest["skipped"] == []

    sheet = tmp_path / "hits.png"
    status, out, err = run(capsys, "query", dicom_dir / "CT_small.dcm", "--index", index, "-k", "4",
                           "--roi", "20,30,40,40", "--sheet", sheet)
    assert status == 0, err
    lines = [line for line in out.splitlines() if line.startswith("  ")]
    assert len(lines) == 4
    assert lines[0].split()[1:3] == ["0", "CT_small.dcm"]  # the query itself, at distance 0
    assert "ncc=1.000" in lines[0]  # its ROI is found where it was drawn
    assert Image.open(sheet).size[0] > 500

    status, out, err = run(capsys, "evaluate", "--index", index, "--labels", "dicom", "-k", "3")
    assert status == 0, err
    assert "mP@1" in out and "class" in out


@pytest.mark.parametrize("method", ["bovw", "cnn+hog", "rbc"])
def test_label_free_methods_round_trip(png_folder, tmp_path, method):
    # 12 small images give about 200 SIFT descriptors: 100 visual words (`cbmir index --words 100`)
    options = {"n_words": 100} if method == "bovw" else {}
    archive = build_archive(png_folder, method, image_size=128, **options)
    path = archive.save(tmp_path / method)
    loaded = Archive.load(path, method=method)
    assert loaded.paths == archive.paths and len(loaded) == 12
    from cbmir_tf.archive import read_images

    images, _, _ = read_images([png_folder / p for p in archive.paths[:3]], 128)
    D0, I0 = archive.search(images, 5)
    D1, I1 = loaded.search(images, 5)
    np.testing.assert_array_equal(I0, I1)  # the stored state (vocabulary, vectors) gives the same hits
    np.testing.assert_allclose(D0, D1, rtol=1e-5)
    assert (I1[:, 0] == np.arange(3)).all()  # each image finds itself first


def test_evaluate_benchmark_codes(png_folder, tmp_path, capsys):
    index = tmp_path / "hog"
    assert run(capsys, "index", png_folder, "--out", index, "--quiet")[0] == 0
    labels = tmp_path / "labels.csv"
    paths = Archive.load(index).paths
    labels.write_text("path,label\n" + "".join(f"{p},{p.split('/')[0]}\n" for p in paths))
    status, out, err = run(capsys, "evaluate", "--index", index, "--labels", labels, "-k", "2")
    assert status == 0, err
    for axis in ("region", "modality", "both", "class"):
        assert axis in out
    assert "first-hit hierarchical error" in out
    assert run(capsys, "evaluate", "--index", index, "-k", "2")[1] == out  # folder names are the same labels


def test_unreadable_files_are_skipped_and_listed(png_folder, tmp_path, capsys):
    folder = tmp_path / "mixed"
    shutil.copytree(png_folder, folder)
    (folder / "broken.png").write_bytes((png_folder / sorted(p.name for p in png_folder.iterdir())[0] / "0.png")
                                        .read_bytes()[:200])
    (folder / "empty.dcm").write_bytes(b"")
    status, out, err = run(capsys, "index", folder, "--out", tmp_path / "idx", "--quiet")
    assert status == cli.EXIT_SKIPPED
    assert "indexed 12 images" in out
    assert "broken.png" in err and "truncated or corrupt" in err and "empty.dcm" in err
    skipped = json.loads((tmp_path / "idx" / "manifest.json").read_text())["skipped"]
    assert sorted(p.rsplit("/", 1)[-1] for p, _ in skipped) == ["broken.png", "empty.dcm"]


def test_clear_errors(dicom_dir, png_folder, tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    status, _, err = run(capsys, "index", tmp_path / "empty", "--out", tmp_path / "x")
    assert status == cli.EXIT_ERROR and "no image files" in err and not (tmp_path / "x").exists()

    index = tmp_path / "idx"
    assert run(capsys, "index", png_folder, "--out", index, "--quiet")[0] == 0
    notes = tmp_path / "README.md"
    notes.write_text("# DICOM samples\n\nNot an image.\n")
    status, _, err = run(capsys, "query", notes, "--index", index)
    assert status == cli.EXIT_ERROR and "README.md" in err and "not a recognised image format" in err
    status, _, err = run(capsys, "query", dicom_dir / "CT_small.dcm", "--index", index, "--method", "cnn")
    assert status == cli.EXIT_ERROR and "indexed with method 'hog', not 'cnn'" in err
    status, _, err = run(capsys, "query", dicom_dir / "CT_small.dcm", "--index", index, "--roi", "0,0,9999,5")
    assert status == cli.EXIT_ERROR and "does not lie inside" in err
    status, _, err = run(capsys, "query", dicom_dir / "CT_small.dcm", "--index", tmp_path)
    assert status == cli.EXIT_ERROR and "not an archive index" in err

    manifest = json.loads((index / "manifest.json").read_text())
    manifest["cbmir_tf_version"] = "0.0.1"
    (index / "manifest.json").write_text(json.dumps(manifest))
    status, _, err = run(capsys, "evaluate", "--index", index)
    assert status == cli.EXIT_ERROR and "written by cbmir-tf 0.0.1" in err


def test_interrupted_index_leaves_nothing(png_folder, tmp_path, monkeypatch, capsys):
    import cbmir_tf.archive as archive_module

    def interrupt(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(archive_module.Index, "save", interrupt)
    status, _, err = run(capsys, "index", png_folder, "--out", tmp_path / "idx", "--quiet")
    assert status == cli.EXIT_INTERRUPTED and "nothing was written" in err
    assert list(tmp_path.iterdir()) == []  # no index, no temporary folder


def test_atomic_directory_keeps_old_content_on_failure(tmp_path):
    target = tmp_path / "out"
    with atomic_directory(target) as tmp:
        (tmp / "manifest.json").write_text("old")
    with pytest.raises(RuntimeError), atomic_directory(target, marker="manifest.json") as tmp:
        (tmp / "manifest.json").write_text("new")
        raise RuntimeError("disk full")
    assert (target / "manifest.json").read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["out"]
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("x")
    with pytest.raises(ValueError, match="refusing to overwrite"), atomic_directory(tmp_path / "other", "manifest.json"):
        pass


@pytest.mark.parametrize("method, metric", [("hog", "l1"), ("rbc", "hamming")])
def test_compressed_index_is_refused_for_a_method_it_cannot_code_before_reading(dicom_dir, tmp_path, capsys,
                                                                               method, metric):
    status, out, err = run(capsys, "index", dicom_dir, "--out", tmp_path / "pq", "--method", method,
                           "--index-kind", "ivfpq", "--quiet")
    assert status == 1 and f"{method} compares by {metric}. Use ivf or hnsw" in err
    assert len(err.strip().splitlines()) == 1 and not (tmp_path / "pq").exists()


@pytest.mark.parametrize("kind, knob", [("hnsw", "ef_search"), ("ivf", "nprobe")])
def test_approximate_index_is_calibrated_and_stored(dicom_dir, tmp_path, capsys, kind, knob):
    index = tmp_path / f"{kind}_index"
    status, out, err = run(capsys, "index", dicom_dir, "--out", index, "--index-kind", kind, "--quiet")
    assert status == 0, err
    assert f"{kind}: {knob} " in out and "recall@10" in out
    archive = Archive.load(index)
    assert archive.index.kind == kind
    calibration = archive.index.calibration_
    assert calibration["knob"] == knob and calibration["recall"] >= 0.95
    assert getattr(archive.index, knob) == calibration["value"]
    status, out, err = run(capsys, "query", dicom_dir / "MR_small.dcm", "--index", index, "-k", "3",
                           "--sheet", tmp_path / "sheet.png")
    assert status == 0, err
    assert out.splitlines()[1].split()[1:3] == ["0", "MR_small.dcm"]
    status, out, err = run(capsys, "evaluate", "--index", index, "--labels", "dicom", "-k", "3")
    assert status == 0 and "mP@1" in out, err
