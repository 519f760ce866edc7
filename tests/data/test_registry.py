"""The data registry: resolution order, checksums, the mirror switch, `cbmir-data`, and `prepare`."""

from __future__ import annotations

import contextlib
import functools
import hashlib
import http.server
import re
import shutil
import threading
from pathlib import Path

import numpy as np
import pytest

from cbmir_tf.data import manage, registry
from cbmir_tf.data.benchmark import MEMBERS, prepare

SMALL_FILE = "medmnist/breastmnist.npz"  # 0.56 MB, not shipped by any package
# SHA-256 of the 20 published rows of head_ct_hemorrhage_128.npz made from source-sample/,
# concatenated in source-path order (computed from the published npz; see its README).
HEAD_CT_SAMPLE_ROWS_SHA256 = "cced8a05135e24dfab9bc552cd644c5183888bddeb824918cfdc87be9b626884"


@pytest.fixture(scope="session")
def published(tmp_path_factory) -> dict[str, Path]:
    """Copies of a few registered files, fetched the ordinary way before a test isolates itself."""
    folder = tmp_path_factory.mktemp("published")
    names = [SMALL_FILE] + [item.name for item in registry.entries("lidc-xml-sample")]
    copies = {}
    for name in names:
        copies[name] = folder / name
        copies[name].parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(registry.fetch(name), copies[name])
    return copies


def lay_out(copies: dict[str, Path], names, folder: Path) -> Path:
    """A data folder holding ``names``."""
    for name in names:
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(copies[name], folder / name)
    return folder


@pytest.fixture
def isolated(monkeypatch, tmp_path):
    """No data folder, an empty cache and no mirror: only packages and downloads remain."""
    monkeypatch.delenv("CBMIR_DATA_DIR", raising=False)
    monkeypatch.delenv(registry.MIRROR_ENV, raising=False)
    monkeypatch.setenv("CBMIR_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path


@contextlib.contextmanager
def serve(folder: Path):
    """An HTTP server for ``folder`` on a free port of 127.0.0.1; yields its base URL."""
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(folder))
    handler.log_message = lambda *args: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_every_entry_is_pinned_and_licensed():
    entries = registry.registry()
    assert len(entries) > 100
    for item in entries.values():
        assert item.licence and item.source, item.name
        assert item.hash == "" or re.fullmatch(r"(sha256:[0-9a-f]{64}|md5:[0-9a-f]{32})", item.hash), item.name
        if "githubusercontent" in item.url:  # raw files are pinned to a 40-digit commit
            assert re.search(r"/[0-9a-f]{40}/", item.url), item.url
    unpinned = [i.name for i in entries.values() if i.url and not i.hash]
    assert unpinned == ["weights/mobilenet_1_0_224_tf_no_top.h5"]  # Keras publishes no checksum for it
    derived = {i.name for i in entries.values() if not i.url}
    assert derived == {m.registry_name for m in MEMBERS.values()}


def test_mirror_url_maps_host_and_path():
    url = "https://zenodo.org/records/10519652/files/breastmnist.npz?download=1"
    assert registry.mirror_url(url, "http://127.0.0.1:8000/") == (
        "http://127.0.0.1:8000/zenodo.org/records/10519652/files/breastmnist.npz")
    assert registry.mirror_url(url, "") == url
    spaced = "https://raw.githubusercontent.com/o/r/" + "0" * 40 + "/a%20b/c.png"
    assert registry.mirror_path(spaced) == Path("raw.githubusercontent.com", "o", "r", "0" * 40, "a b", "c.png")


def test_dicom_files_come_from_the_pydicom_packages(isolated):
    path = registry.fetch("dicom/CT_small.dcm")
    assert registry.status("dicom/CT_small.dcm") == "packaged"
    assert "pydicom" in path.parts and not (isolated / "cache").exists()
    assert registry.status("dicom/OBXXXX1A.dcm") == "packaged"  # from pydicom-data


def test_download_through_a_mirror_is_verified_and_cached(published, isolated, monkeypatch):
    original = published[SMALL_FILE]
    data = lay_out(published, [SMALL_FILE], isolated / "data")
    placed = registry.make_mirror(data, isolated / "mirror")
    assert [item.name for item in placed] == [SMALL_FILE]
    with serve(isolated / "mirror") as base:
        monkeypatch.setenv(registry.MIRROR_ENV, base)
        assert registry.status(SMALL_FILE) == "downloadable"
        path = registry.fetch(SMALL_FILE, progressbar=False)
    assert path == isolated / "cache" / SMALL_FILE
    assert path.read_bytes() == original.read_bytes()
    assert registry.status(SMALL_FILE) == "cached"
    assert not list(path.parent.glob("tmp*"))  # pooch renames a finished download into place


def test_a_corrupt_download_is_an_error_naming_the_file(published, isolated, monkeypatch):
    target = isolated / "mirror" / registry.mirror_path(registry.entry(SMALL_FILE).url)
    target.parent.mkdir(parents=True)
    target.write_bytes(published[SMALL_FILE].read_bytes()[:-10])
    with serve(isolated / "mirror") as base:
        monkeypatch.setenv(registry.MIRROR_ENV, base)
        with pytest.raises(ValueError, match="medmnist/breastmnist.npz.*checksum"):
            registry.fetch(SMALL_FILE, progressbar=False)
    assert not (isolated / "cache" / SMALL_FILE).exists()


def test_a_corrupt_copy_in_the_data_folder_is_an_error(isolated, monkeypatch):
    data = isolated / "data"
    (data / "medmnist").mkdir(parents=True)
    (data / SMALL_FILE).write_bytes(b"not an npz")
    monkeypatch.setenv("CBMIR_DATA_DIR", str(data))
    with pytest.raises(ValueError, match=r"breastmnist\.npz: checksum mismatch"):
        registry.fetch(SMALL_FILE)


def test_missing_and_offline_is_one_clear_line(isolated, monkeypatch):
    monkeypatch.setenv(registry.ALLOW_DOWNLOAD_ENV, "0")
    with pytest.raises(FileNotFoundError, match="downloads are off") as info:
        registry.fetch("medmnist/octmnist_64.npz")
    assert "\n" not in str(info.value)
    with pytest.raises(FileNotFoundError, match="cannot be downloaded"):
        registry.fetch(MEMBERS["kidney-ct"].registry_name)


def test_fetch_folder_gathers_a_folder_in_the_cache(published, isolated, monkeypatch):
    names = [item.name for item in registry.entries("lidc-xml-sample")]
    monkeypatch.setenv("CBMIR_DATA_DIR", str(lay_out(published, names[:2], isolated / "data")))
    registry.make_mirror(lay_out(published, names[2:], isolated / "served"), isolated / "mirror")
    with serve(isolated / "mirror") as base:
        monkeypatch.setenv(registry.MIRROR_ENV, base)
        folder = registry.fetch_folder("lidc-xml-sample")
    assert folder == isolated / "cache" / "lidc-xml-sample"
    assert sorted(p.name for p in folder.glob("*.xml")) == ["157_158.xml", "157_160.xml", "157_162.xml"]


def test_cbmir_data_command(isolated, capsys, monkeypatch):
    assert manage.main(["list"]) == 0
    out = capsys.readouterr().out
    assert "dicom/CT_small.dcm" in out and "packaged" in out and "CC BY 4.0" in out
    assert manage.main(["fetch", "no/such-file"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 2 and "not in the data registry" in err
    assert manage.main(["fetch", "dicom/MR_small.dcm"]) == 0
    monkeypatch.setenv(registry.ALLOW_DOWNLOAD_ENV, "0")
    assert manage.main(["fetch", "kidney-ct"]) == 1  # its source cannot be downloaded now
    assert "downloads are off" in capsys.readouterr().err


@pytest.fixture(scope="session")
def head_ct_source(tmp_path_factory) -> Path:
    """The 20 original head-CT files and the set's label table, laid out as in their repository."""
    source = tmp_path_factory.mktemp("source") / "Head-CT-hemorrhage-detection"
    for item in registry.entries("head-ct-hemorrhage/source-sample/head_ct"):
        target = source / "Dataset" / "head_ct" / Path(item.name).name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(registry.fetch(item.name), target)
    shutil.copyfile(registry.fetch("head-ct-hemorrhage/labels.csv"), source / "Dataset" / "labels.csv")
    return source


def test_prepare_reproduces_the_published_rows_byte_for_byte(head_ct_source, tmp_path):
    out = prepare("head-ct-hemorrhage", head_ct_source, root=tmp_path / "data")
    with np.load(out) as npz:
        assert npz["images"].shape == (20, 128, 128) and npz["images"].dtype == np.uint8
        assert npz["source_paths"][0] == "Dataset/head_ct/000.png"
        assert list(npz["class_names"][npz["labels"]]) == ["hemorrhage"] * 10 + ["no_hemorrhage"] * 10
        assert hashlib.sha256(npz["images"].tobytes()).hexdigest() == HEAD_CT_SAMPLE_ROWS_SHA256
    assert (out.parent / (out.name + ".sha256")).read_text().split()[0] == registry.file_digest(out)


@pytest.mark.open_benchmark
def test_prepared_rows_equal_the_published_npz(head_ct_source, tmp_path):
    from cbmir_tf.data.benchmark import load_member

    out = prepare("head-ct-hemorrhage", head_ct_source, root=tmp_path / "data")
    published = load_member("head-ct-hemorrhage")
    rows = {source.split(":", 1)[1]: i for i, source in enumerate(published.source_ids)}
    with np.load(out) as npz:
        for path, image, size in zip(npz["source_paths"], npz["images"], npz["original_size_wh"]):
            np.testing.assert_array_equal(image, published.images[rows[str(path)]])
            assert min(size) >= 128


def test_fetch_member_downloads_its_source_and_keeps_only_a_matching_npz(head_ct_source, isolated, monkeypatch,
                                                                        capsys):
    import tarfile

    member = MEMBERS["head-ct-hemorrhage"]
    checkout = head_ct_source  # 20 of the 200 source images: the result cannot match
    tarball = isolated / "mirror" / registry.mirror_path(member.source.archive_url)
    tarball.parent.mkdir(parents=True)
    with tarfile.open(tarball, "w:gz") as tar:
        tar.add(checkout, arcname=f"Head-CT-hemorrhage-detection-{member.source.commit}")
    with serve(isolated / "mirror") as base:
        monkeypatch.setenv(registry.MIRROR_ENV, base)
        assert manage.main(["fetch", "head-ct-hemorrhage"]) == 1
    out, err = capsys.readouterr()
    assert "licence: unknown" in out and "Roiabr/Head-CT-hemorrhage-detection@36b7fe82b5" in out
    assert "checksum mismatch" in err and "head-ct-hemorrhage" in err
    cache = isolated / "cache"
    assert len(list((cache / "sources").glob("head-ct-hemorrhage-*/Dataset/head_ct/*.png"))) == 20
    assert not list((cache / "head-ct-hemorrhage").rglob("*"))  # nothing half-made is left
