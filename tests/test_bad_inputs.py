"""Regression tests of the ten bad-input defects of issue 15, each on a real file made bad.

The images are real: MedMNIST chest X-ray / breast ultrasound images written as PNGs, a real
chest CT slice (TCIA Lung-PET-CT-Dx) and the registered DICOM samples (pydicom's and
pydicom-data's test files). Each test is named after its defect (``test_d<number>_...``).
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import signal
import stat
import struct
import subprocess
import sys
import warnings
import zlib
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.dataset import FileMetaDataset
from PIL import Image

from cbmir_tf import cli
from cbmir_tf.archive import Archive, manifest_digest
from cbmir_tf.data.dicom import is_dicom, read_dicom, read_hu
from cbmir_tf.data.folders import load_class_folders
from cbmir_tf.data.io import WriteError, atomic_write, read_image, remove_stale_temporaries, sha256sum
from cbmir_tf.data.registry import fetch



@pytest.fixture(scope="module")
def png_folder(small_benchmark, tmp_path_factory) -> Path:
    """Three real 28 px images of each of the four codes, as PNGs in one folder per code (12 files)."""
    root = tmp_path_factory.mktemp("pngs")
    for code in sorted(set(small_benchmark.codes)):
        (root / code).mkdir()
        for j, i in enumerate(np.flatnonzero(small_benchmark.codes == code)[:3]):
            Image.fromarray(small_benchmark.images[i]).save(root / code / f"{j}.png")
    return root


@pytest.fixture(scope="module")
def built_index(png_folder, tmp_path_factory) -> Path:
    """A hog index of `png_folder`, built once; tests work on copies (`index_copy`)."""
    out = tmp_path_factory.mktemp("built") / "idx"
    assert cli.main(["index", str(png_folder), "--out", str(out), "--quiet"]) == 0
    return out


@pytest.fixture
def index_copy(built_index, tmp_path) -> Path:
    target = tmp_path / "idx"
    shutil.copytree(built_index, target)
    return target


def run(capsys, *argv):
    status = cli.main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return status, out, err


def one_line_error(err: str, *needles: str) -> None:
    """`err` is exactly one line with no traceback and holds every needle."""
    assert err.count("\n") == 1 and "Traceback" not in err, err
    for needle in needles:
        assert needle in err, (needle, err)


def first_png(folder: Path) -> Path:
    return sorted(folder.rglob("*.png"))[0]


def copy_with(folder: Path, tmp: Path, name: str = "mixed") -> Path:
    target = tmp / name
    shutil.copytree(folder, target)
    return target


# 1. A PNG whose header claims 20000 x 20000 pixels (a decompression bomb).
def _bomb(src: Path, dst: Path, side: int = 20000) -> Path:
    data = bytearray(src.read_bytes())
    assert data[12:16] == b"IHDR"
    data[16:24] = struct.pack(">II", side, side)
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(data[12:29])))
    dst.write_bytes(bytes(data))
    return dst


def test_d01_decompression_bomb_png(png_folder, tmp_path, capsys):
    folder = copy_with(png_folder, tmp_path)
    bomb = _bomb(first_png(png_folder), folder / sorted(p.name for p in folder.iterdir())[0] / "bomb.png")
    with pytest.raises(ValueError, match=rf"^{bomb}: too large"):
        read_image(bomb)

    status, out, err = run(capsys, "index", folder, "--out", tmp_path / "idx", "--quiet")
    assert status == cli.EXIT_SKIPPED and "indexed 12 images" in out
    assert f"{bomb}: too large" in err and "Traceback" not in err
    status, _, err = run(capsys, "query", bomb, "--index", tmp_path / "idx", "--sheet", tmp_path / "s.png")
    assert status == cli.EXIT_ERROR
    one_line_error(err, str(bomb), "too large")
    with pytest.warns(UserWarning, match="skipped 1"):
        data = load_class_folders(folder, size=32)
    assert len(data) == 12 and [p for p, _ in data.meta["skipped"]] == [str(bomb)]


# 2. A file name that is not valid UTF-8.
def test_d02_file_name_not_utf8(png_folder, tmp_path, capsys):
    folder = copy_with(png_folder, tmp_path)
    odd = Path(os.fsdecode(bytes(folder) + b"/caf\xe9.png"))
    try:
        shutil.copy(first_png(png_folder), odd)
    except (OSError, UnicodeError) as err:
        pytest.skip(f"this file system refuses a non-UTF-8 file name ({err})")
    status, out, err = run(capsys, "index", folder, "--out", tmp_path / "idx", "--quiet")
    assert status == cli.EXIT_SKIPPED and "indexed 12 images" in out
    assert "caf\\xe9.png: name not valid UTF-8" in err and "Traceback" not in err
    archive = Archive.load(tmp_path / "idx")
    assert len(archive) == 12 and len(archive.skipped) == 1
    assert "name not valid UTF-8" in archive.skipped[0][1]

    odd_root = Path(os.fsdecode(bytes(tmp_path) + b"/\xe9tudes"))  # only the names below the folder are stored
    shutil.copytree(png_folder, odd_root)
    status, _, err = run(capsys, "index", odd_root, "--out", tmp_path / "idx2", "--quiet")
    assert status == 0, err
    loaded = Archive.load(tmp_path / "idx2")
    assert loaded.root == odd_root and read_image(loaded.absolute_path(0)).shape == (28, 28)


# 3. Outputs that cannot be written: a folder, a missing folder, a device, a full disk,
#    a read-only folder, a mount point.
def test_d03_sheet_cannot_be_written(built_index, dicom_dir, tmp_path, capsys):
    query = dicom_dir / "CT_small.dcm"
    (tmp_path / "a_folder").mkdir()
    for sheet, problem in ((tmp_path / "a_folder", "is a folder"),
                           (tmp_path / "missing" / "hits.png", f"folder {tmp_path / 'missing'} does not exist")):
        status, out, err = run(capsys, "query", query, "--index", built_index, "--sheet", sheet)
        assert status == cli.EXIT_ERROR and out == ""
        one_line_error(err, f"cannot write {sheet}: {problem}")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a_folder"]
    if Path("/dev/full").exists():
        status, _, err = run(capsys, "query", query, "--index", built_index, "--sheet", "/dev/full")
        assert status == cli.EXIT_ERROR
        one_line_error(err, "cannot write /dev/full: not a regular file")
        assert stat.S_ISCHR(os.stat("/dev/full").st_mode)  # the device is still a device


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="no /dev/full (a device that is always full) here")
def test_d03_full_disk(png_folder, built_index, dicom_dir, tmp_path, monkeypatch, capsys):
    import faiss

    real_write = faiss.write_index
    monkeypatch.setattr(faiss, "write_index", lambda index, name: real_write(index, "/dev/full"))
    status, _, err = run(capsys, "index", png_folder, "--out", tmp_path / "idx", "--quiet")
    assert status == cli.EXIT_ERROR
    one_line_error(err, f"cannot write {tmp_path / 'idx'}: No space left on device")
    assert list(tmp_path.iterdir()) == []  # nothing half-written, no temporary folder

    real_save = Image.Image.save
    monkeypatch.setattr(Image.Image, "save", lambda self, fp, *a, **k: real_save(self, "/dev/full", *a, **k))
    sheet = tmp_path / "hits.png"
    status, _, err = run(capsys, "query", dicom_dir / "CT_small.dcm", "--index", built_index, "--sheet", sheet)
    assert status == cli.EXIT_ERROR
    one_line_error(err, f"cannot write {sheet}: No space left on device")
    assert list(tmp_path.iterdir()) == []


def test_d03_full_disk_atomic_write_keeps_old_file(tmp_path):
    target = tmp_path / "table.csv"
    target.write_text("old\n")
    with pytest.raises(WriteError, match=rf"^cannot write {target}: No space left on device$"):
        with atomic_write(target, "w") as handle:
            handle.write("new")
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    assert target.read_text() == "old\n" and [p.name for p in tmp_path.iterdir()] == ["table.csv"]


def test_d03_read_only_folder(png_folder, tmp_path, capsys):
    if os.geteuid() == 0:  # root ignores file modes; sysfs refuses new files even to root
        out = Path("/sys/idx")
        status, _, err = run(capsys, "index", png_folder, "--out", out, "--quiet")
        assert status == cli.EXIT_ERROR
        one_line_error(err, f"cannot write {out}")
        assert not out.exists()
        return
    parent = tmp_path / "locked"
    parent.mkdir()
    parent.chmod(0o555)
    try:
        status, _, err = run(capsys, "index", png_folder, "--out", parent / "idx", "--quiet")
    finally:
        parent.chmod(0o755)
    assert status == cli.EXIT_ERROR
    one_line_error(err, f"cannot write {parent / 'idx'}", "not writable")
    assert list(parent.iterdir()) == []


def test_d03_permission_denied_while_writing(png_folder, tmp_path, monkeypatch, capsys):
    # root cannot be refused by chmod: the refusal the kernel gives a user, raised where mkdtemp makes the folder
    import tempfile

    def refuse(*args, **kwargs):
        raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(tmp_path))

    monkeypatch.setattr(tempfile, "mkdtemp", refuse)
    status, _, err = run(capsys, "index", png_folder, "--out", tmp_path / "idx", "--quiet")
    assert status == cli.EXIT_ERROR
    one_line_error(err, f"cannot write {tmp_path / 'idx'}: Permission denied")


def test_d03_out_on_a_mount_point(png_folder, index_copy, tmp_path, monkeypatch, capsys):
    mount = Path("/")  # always a mount point; refused before any work
    status, _, err = run(capsys, "index", png_folder, "--out", mount, "--quiet")
    assert status == cli.EXIT_ERROR
    one_line_error(err, "cannot write /: it is a mount point")

    # a mount point that `os.path.ismount` cannot see (a bind mount): the rename fails with EBUSY
    before = {p.relative_to(index_copy): p.read_bytes() for p in index_copy.rglob("*") if p.is_file()}
    real_replace = os.replace

    def busy(src, dst):
        if Path(src) == index_copy:
            raise OSError(errno.EBUSY, os.strerror(errno.EBUSY), str(src))
        return real_replace(src, dst)

    monkeypatch.setattr(os, "replace", busy)
    status, _, err = run(capsys, "index", png_folder, "--out", index_copy, "--quiet")
    assert status == cli.EXIT_ERROR
    one_line_error(err, f"cannot write {index_copy}: Device or resource busy")
    assert [p.name for p in tmp_path.iterdir()] == ["idx"]  # no temporary folder left
    assert {p.relative_to(index_copy): p.read_bytes() for p in index_copy.rglob("*") if p.is_file()} == before


# 4. SIGTERM / SIGKILL while saving.
def _dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_d04_stale_temporaries_are_removed(png_folder, index_copy, tmp_path, capsys):
    dead = _dead_pid()
    stale_tmp = tmp_path / f".idx.tmp-{dead}-k1ll3d"
    stale_old = tmp_path / f".idx.old-{dead}-k1ll3d"
    (stale_tmp / "index").mkdir(parents=True)
    (stale_tmp / "index" / "ids.npy").write_bytes(b"half")
    (stale_old / "previous").mkdir(parents=True)
    live = tmp_path / f".idx.tmp-{os.getppid()}-saving"  # a running process's save: kept
    live.mkdir()
    assert run(capsys, "index", png_folder, "--out", index_copy, "--quiet")[0] == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["idx", live.name])

    sheet = tmp_path / "hits.png"
    stale_file = tmp_path / f".hits.png.tmp-{dead}-abc123.png"
    stale_file.write_bytes(b"half a png")
    with atomic_write(sheet, "wb") as handle:
        handle.write(b"png")
    assert not stale_file.exists() and sheet.read_bytes() == b"png"


def test_d04_killed_during_swap_puts_previous_back(index_copy, tmp_path):
    # SIGKILL after the old index was moved aside and before the new one took its place
    aside = tmp_path / f".idx.old-{_dead_pid()}-swap"
    aside.mkdir()
    os.replace(index_copy, aside / "previous")
    assert remove_stale_temporaries(index_copy) == [aside]
    assert not aside.exists() and len(Archive.load(index_copy)) == 12


def test_d04_sigterm_while_saving(png_folder, tmp_path, monkeypatch, capsys):
    import time

    from cbmir_tf.search.index import Index

    def terminated_while_saving(self, path):
        Path(path).mkdir()
        (Path(path) / "index.faiss").write_bytes(b"half")
        os.kill(os.getpid(), signal.SIGTERM)  # as `kill <pid>` would
        time.sleep(5)  # the handler raises before this ends
        raise AssertionError("SIGTERM was not handled")

    monkeypatch.setattr(Index, "save", terminated_while_saving)
    before = signal.getsignal(signal.SIGTERM)
    status, _, err = run(capsys, "index", png_folder, "--out", tmp_path / "idx", "--quiet")
    assert status == cli.EXIT_TERMINATED == 143
    assert "terminated (SIGTERM); nothing was written" in err
    assert list(tmp_path.iterdir()) == []  # no index, no temporary folder
    assert signal.getsignal(signal.SIGTERM) is before  # the handler is only installed while main runs


# 5. The labels CSV of `cbmir evaluate`.
def _labels(index: Path) -> list[tuple[str, str]]:
    return [(p, p.split("/")[0]) for p in Archive.load(index).paths]


def test_d05_labels_csv_with_bom(built_index, tmp_path, capsys):
    csv = tmp_path / "labels.csv"
    rows = _labels(built_index)
    csv.write_text("path,label\n" + "".join(f"{p},{c}\n" for p, c in rows + rows[:1]), encoding="utf-8-sig")
    assert csv.read_bytes().startswith(b"\xef\xbb\xbf")
    status, out, err = run(capsys, "evaluate", "--index", built_index, "--labels", csv, "-k", "2")
    assert status == 0, err  # an identical duplicate row is fine
    assert "mP@1" in out


def test_d05_labels_csv_conflicts_and_empty_labels(built_index, tmp_path, capsys):
    rows = _labels(built_index)
    conflict = tmp_path / "conflict.csv"
    conflict.write_text("path,label\n" + "".join(f"{p},{c}\n" for p, c in rows) + f"{rows[1][0]},other\n")
    status, _, err = run(capsys, "evaluate", "--index", built_index, "--labels", conflict)
    assert status == cli.EXIT_ERROR
    one_line_error(err, f"{conflict}: line {len(rows) + 2}: '{rows[1][0]}' labelled 'other'", "on line 3")
    empty = tmp_path / "empty.csv"
    empty.write_text("path,label\n" + "".join(f"{p},{'' if i == 4 else c}\n" for i, (p, c) in enumerate(rows)))
    status, _, err = run(capsys, "evaluate", "--index", built_index, "--labels", empty)
    assert status == cli.EXIT_ERROR
    one_line_error(err, f"{empty}: line 6: empty label for '{rows[4][0]}'")


def test_d05_labels_csv_not_utf8(built_index, tmp_path, capsys):
    rows = _labels(built_index)
    latin = tmp_path / "latin1.csv"
    latin.write_bytes(("path,label\n" + "".join(f"{p},{c}é\n" for p, c in rows)).encode("latin-1"))
    offset = latin.read_bytes().index(b"\xe9")
    status, _, err = run(capsys, "evaluate", "--index", built_index, "--labels", latin)
    assert status == cli.EXIT_ERROR
    one_line_error(err, f"{latin}: not UTF-8 text (byte 0xe9 at offset {offset}, line 2)")


# 6. NaN / inf pixels.
def test_d06_nan_pixels_float_tiff(lung_series, png_folder, tmp_path, capsys):
    hu = lung_series.hu[30].astype(np.float32).copy()  # a real chest CT slice in HU
    hu[10, 10:15] = np.nan
    hu[100, 100], hu[101, 101] = np.inf, -np.inf
    folder = copy_with(png_folder, tmp_path)
    tiff = folder / "ct_hu.tif"
    Image.fromarray(hu).save(tiff)
    assert Image.open(tiff).mode == "F"
    with pytest.raises(ValueError, match=rf"^{tiff}: 7 NaN/inf pixel values$"):
        read_image(tiff)
    status, _, err = run(capsys, "index", folder, "--out", tmp_path / "idx", "--quiet")
    assert status == cli.EXIT_SKIPPED and f"{tiff}: 7 NaN/inf pixel values" in err


def test_d06_dicom_rescale_slope_nan(tmp_path):
    ds = pydicom.dcmread(fetch("dicom/CT_small.dcm"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # pydicom: 'NaN' is not a valid DS value
        ds.RescaleSlope = "NaN"
    target = tmp_path / "ct_nan_slope.dcm"
    ds.save_as(target)
    for read in (read_dicom, read_image, read_hu):
        with pytest.raises(ValueError, match=rf"^{target}: 16,384 NaN/inf pixel values after rescaling"):
            read(target)


# 7. Archive manifests: every file and the manifest itself are covered by checksums.
def _reseal(index: Path) -> None:
    """Recompute every checksum, as someone editing the archive by hand could."""
    manifest = json.loads((index / "manifest.json").read_text())
    manifest["sha256"] = {p.relative_to(index).as_posix(): sha256sum(p) for p in sorted(index.rglob("*"))
                          if p.is_file() and p.relative_to(index).as_posix() != "manifest.json"}
    manifest["manifest_sha256"] = manifest_digest(manifest)
    (index / "manifest.json").write_text(json.dumps(manifest))


def _edit_json(path: Path, **changes) -> None:
    data = json.loads(path.read_text())
    data.update(changes)
    path.write_text(json.dumps(data, indent=2))


def _refused(capsys, index: Path, *needles: str) -> None:
    status, _, err = run(capsys, "evaluate", "--index", index, "-k", "2")
    assert status == cli.EXIT_ERROR
    one_line_error(err, *needles)


def test_d07_index_manifest_is_covered(index_copy, capsys):
    manifest = json.loads((index_copy / "manifest.json").read_text())
    assert {"index/manifest.json", "index/index.faiss", "index/ids.npy", "images.csv"} <= set(manifest["sha256"])
    _edit_json(index_copy / "index" / "manifest.json", metric="l2")  # hog is searched with l1
    _refused(capsys, index_copy, f"{index_copy / 'index' / 'manifest.json'}: missing or its sha256 does not match")


def test_d07_manifest_edits_are_detected(built_index, tmp_path, capsys):
    for n, change in enumerate(({"sha256": {}}, {"k_prep": 5}, {"count": 3}, {"method": "rbc"})):
        index = tmp_path / f"idx{n}"
        shutil.copytree(built_index, index)
        _edit_json(index / "manifest.json", **change)
        _refused(capsys, index, f"{index / 'manifest.json'}: its own checksum (manifest_sha256)")


def test_d07_resealed_edits_give_one_line_errors(built_index, tmp_path, capsys):
    def edited(name: str, edit) -> Path:
        index = tmp_path / name
        shutil.copytree(built_index, index)
        edit(index)
        _reseal(index)
        return index

    empty = edited("empty_map", lambda i: None)
    _edit_json(empty / "manifest.json", sha256={})
    _edit_json(empty / "manifest.json",
               manifest_sha256=manifest_digest(json.loads((empty / "manifest.json").read_text())))
    _refused(capsys, empty, "no sha256 checksums listed")

    unlisted = tmp_path / "unlisted"
    shutil.copytree(built_index, unlisted)
    (unlisted / "index" / "notes.txt").write_text("added later")
    _refused(capsys, unlisted, f"{unlisted / 'index' / 'notes.txt'}: not listed in the checksums")

    short = edited("short_csv", lambda i: (i / "images.csv").write_text(
        "".join((i / "images.csv").read_text().splitlines(keepends=True)[:-1])))
    _refused(capsys, short, "the manifest says 12 images, images.csv lists 11 and the index holds 12 vectors")

    def shift_ids(index: Path) -> None:
        np.save(index / "index" / "ids.npy", np.arange(12) + 100)
        inner = json.loads((index / "index" / "manifest.json").read_text())
        inner["sha256"]["ids.npy"] = sha256sum(index / "index" / "ids.npy")
        (index / "index" / "manifest.json").write_text(json.dumps(inner))

    ids = edited("ids", shift_ids)
    _refused(capsys, ids, "its ids are not 0..11")

    for name, change in (("k_prep", {"k_prep": "many"}), ("count", {"count": 40}), ("method", {"method": "nope"}),
                         ("parts", {"parts": {}}), ("size", {"image_size": "big"})):
        index = tmp_path / name
        shutil.copytree(built_index, index)
        _edit_json(index / "manifest.json", **change)
        _edit_json(index / "manifest.json",
                   manifest_sha256=manifest_digest(json.loads((index / "manifest.json").read_text())))
        _refused(capsys, index, str(index))

    kind = edited("kind", lambda i: _edit_json(i / "index" / "manifest.json", kind="hnsw"))  # a flat index
    _refused(capsys, kind, f"{kind / 'manifest.json'}: inconsistent archive")


# 8. Argument bounds.
@pytest.mark.parametrize(("argv", "message"), [
    (["--image-size", "0"], "--image-size must be between 32 and 4096. Received: 0"),
    (["--image-size", "1"], "--image-size must be between 32 and 4096. Received: 1"),
    (["--image-size", "100000"], "--image-size must be between 32 and 4096"),
    (["--batch-size", "0"], "--batch-size must be at least 1. Received: 0"),
    (["--image-size", "big"], "--image-size must be an integer. Received: 'big'"),
])
def test_d08_index_argument_bounds(png_folder, tmp_path, capsys, argv, message):
    with pytest.raises(SystemExit) as exit_:
        cli.main(["index", str(png_folder), "--out", str(tmp_path / "idx"), *argv])
    assert exit_.value.code == 2 and message in capsys.readouterr().err
    assert not (tmp_path / "idx").exists()


def test_d08_k_bounds_and_large_k(built_index, dicom_dir, tmp_path, capsys):
    for command in (["query", str(dicom_dir / "CT_small.dcm"), "--index"], ["evaluate", "--index"]):
        with pytest.raises(SystemExit) as exit_:
            cli.main([*command, str(built_index), "-k", "0"])
        assert exit_.value.code == 2 and "-k must be at least 1. Received: 0" in capsys.readouterr().err
    status, out, err = run(capsys, "query", first_png(Path(Archive.load(built_index).root)), "--index", built_index,
                           "-k", "1000", "--sheet", tmp_path / "hits.png")
    assert status == 0
    assert err == f"note: {built_index} holds 12 images; showing 12\n"
    assert [line.split()[0] for line in out.splitlines()[1:-1]] == [str(r) for r in range(1, 13)]
    status, _, err = run(capsys, "evaluate", "--index", built_index, "-k", "1000")
    assert status == 0 and "holds 12 images; scoring the 11 others of each" in err


# 9. Modes of what is written: the umask, not the private modes of mkstemp/mkdtemp.
@pytest.mark.parametrize("umask", [0o022, 0o027])
def test_d09_index_and_sheet_honour_umask(png_folder, dicom_dir, tmp_path, capsys, umask):
    old = os.umask(umask)
    try:
        assert run(capsys, "index", png_folder, "--out", tmp_path / "idx", "--quiet")[0] == 0
        sheet = tmp_path / "hits.png"
        assert run(capsys, "query", dicom_dir / "CT_small.dcm", "--index", tmp_path / "idx", "-k", "2",
                   "--sheet", sheet)[0] == 0
    finally:
        os.umask(old)
    written = [tmp_path / "idx", *(tmp_path / "idx").rglob("*"), sheet]
    assert len(written) >= 8
    for path in written:
        expected = (0o777 if path.is_dir() else 0o666) & ~umask
        assert stat.S_IMODE(path.stat().st_mode) == expected, path


def test_d09_replaced_file_keeps_its_mode(tmp_path):
    target = tmp_path / "private.csv"
    target.write_text("a\n")
    target.chmod(0o600)
    with atomic_write(target, "w") as handle:
        handle.write("b\n")
    assert stat.S_IMODE(target.stat().st_mode) == 0o600 and target.read_text() == "b\n"


# 10. DICOM: big-endian palettes, JPEG Lossless / JPEG-LS, no preamble, the skipped-file list.
def _testdata(name: str) -> Path:
    from pydicom.data import get_testdata_file

    found = get_testdata_file(name)
    if found is None:
        pytest.skip(f"{name} is not installed (it comes with the test extra pydicom-data)")
    return Path(found)


def test_d10_big_endian_palette_color():
    big = _testdata("OBXXXX1A_expb.dcm")
    assert not pydicom.dcmread(big).file_meta.TransferSyntaxUID.is_little_endian
    little = read_dicom(fetch("dicom/OBXXXX1A.dcm"))
    assert little.std() > 10
    np.testing.assert_array_equal(read_dicom(big), little)


def test_d10_jpeg_lossless_and_jpeg_ls():
    ll = pydicom.dcmread(_testdata("JPEG-LL.dcm"))
    assert ll.file_meta.TransferSyntaxUID == pydicom.uid.JPEGLosslessSV1
    image = read_dicom(ll)
    twin = read_dicom(fetch("dicom/JPEG2000_UNC.dcm"))  # the same NM whole-body scan, uncompressed
    assert np.corrcoef(image.ravel().astype(float), twin.ravel().astype(float))[0, 1] > 0.9
    ls = _testdata("MR_small_jpeg_ls_lossless.dcm")
    assert pydicom.dcmread(ls).file_meta.TransferSyntaxUID == pydicom.uid.JPEGLSLossless
    np.testing.assert_array_equal(read_dicom(ls), read_dicom(fetch("dicom/MR_small.dcm")))
    np.testing.assert_array_equal(read_dicom(_testdata("emri_small_jpeg_ls_lossless.dcm")),
                                  read_dicom(fetch("dicom/emri_small.dcm")))
    near = read_dicom(_testdata("JPEGLSNearLossless_16.dcm"))
    assert near.shape == (50, 10) and near.std() > 1


def test_d10_dicom_without_preamble(tmp_path):
    source = fetch("dicom/CT_small.dcm")
    expected = read_dicom(source)
    no_preamble = tmp_path / "no_preamble.dcm"
    no_preamble.write_bytes(source.read_bytes()[132:])  # file meta kept, preamble and DICM dropped
    raw = tmp_path / "raw_dataset"  # no suffix, no preamble, no file meta (implicit VR): found by its content
    ds = pydicom.dcmread(source)
    ds.file_meta, ds.preamble = FileMetaDataset(), None
    ds.save_as(raw, enforce_file_format=False, implicit_vr=True, little_endian=True)
    assert raw.read_bytes()[:2] == b"\x08\x00" and is_dicom(raw)
    for path in (no_preamble, raw):
        np.testing.assert_array_equal(read_dicom(path), expected)
        np.testing.assert_array_equal(read_image(path), expected)
    notes = tmp_path / "notes.dcm"
    notes.write_text("this is not a DICOM file\n" * 20)
    with pytest.raises(ValueError, match=rf"^{notes}: not a DICOM file"):
        read_dicom(notes)
    assert not is_dicom(tmp_path / "notes.dcm")


def test_d10_skipped_list_is_one_line_each(png_folder, tmp_path, capsys):
    folder = copy_with(png_folder, tmp_path)
    data = first_png(png_folder).read_bytes()
    for i in range(6):
        (folder / f"cut{i}.png").write_bytes(data[: 60 + 10 * i])
    for i in range(3):
        (folder / f"text{i}.png").write_text("not\nan\nimage\n")
    ct = fetch("dicom/CT_small.dcm").read_bytes()
    (folder / "cut.dcm").write_bytes(ct[:20000])
    status, _, err = run(capsys, "index", folder, "--out", tmp_path / "idx", "--quiet")
    assert status == cli.EXIT_SKIPPED
    lines = err.splitlines()
    assert len(lines) == 11 and all(line.startswith(f"  {folder}/") for line in lines[:-1])
    assert lines[-1] == "skipped 10 files: 7 truncated, 3 not an image"
