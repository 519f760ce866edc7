"""Indexing in parallel processes and on a Dask cluster gives the one-process archive, byte for byte.

A local Dask cluster of two worker processes (127.0.0.1 only) indexes the real DICOM samples and
real benchmark images written as PNGs; one of its workers is killed mid-run.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import signal
import socket
import threading
import time
from pathlib import Path

import distributed
import numpy as np
import pytest
from PIL import Image

from cbmir_tf import cli
from cbmir_tf.archive import Archive, build_archive
from cbmir_tf.distributed import TASK_RETRIES, IndexingError, MethodSpec, chunked, merge_shards, open_runner


@pytest.fixture(scope="module")
def mixed_folder(dicom_dir, small_benchmark, tmp_path_factory) -> Path:
    """The 14 DICOM samples, the 80 images of `small_benchmark` as PNGs (one folder per code) and one
    of those PNGs cut in half (a real file made bad): 95 files."""
    root = tmp_path_factory.mktemp("mixed")
    shutil.copytree(dicom_dir, root / "dicom", ignore=shutil.ignore_patterns("*.md"))
    for i, (image, code) in enumerate(zip(small_benchmark.images, small_benchmark.codes)):
        (root / code).mkdir(exist_ok=True)
        Image.fromarray(image).save(root / code / f"{i:03d}.png")
    whole = (root / code / f"{i:03d}.png").read_bytes()
    (root / code / "truncated.png").write_bytes(whole[: len(whole) // 2])
    return root


@pytest.fixture(scope="module")
def client():
    """A Dask cluster of two one-thread worker processes on 127.0.0.1, and its client."""
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                                  dashboard_address=None) as cluster, distributed.Client(cluster) as client:
        yield client


def digests(folder: Path) -> dict[str, str]:
    """sha256 of every file of a saved archive (its manifest included), by relative path."""
    return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def saved(archive: Archive, path: Path) -> dict[str, str]:
    return digests(archive.save(path))


def test_chunks_depend_on_the_list_alone():
    paths = [Path(f"{i}.png") for i in range(10)]
    assert [len(c) for c in chunked(paths, 4)] == [4, 4, 2]
    assert [p for c in chunked(paths, 3) for p in c] == paths
    with pytest.raises(ValueError, match="chunk_size must be at least 1"):
        chunked(paths, 0)


def test_local_workers_equal_one_process(mixed_folder, tmp_path, capsys):
    reference = build_archive(mixed_folder, "hog", image_size=128, workers=1, chunk_size=16)
    assert len(reference) == 94 and [Path(p).name for p, _ in reference.skipped] == ["truncated.png"]
    expected = saved(reference, tmp_path / "one")
    status = cli.main(["index", str(mixed_folder), "--out", str(tmp_path / "two"), "--workers", "2",
                       "--chunk-size", "16", "--image-size", "128", "--quiet"])
    out, err = capsys.readouterr()
    assert status == cli.EXIT_SKIPPED, err  # the truncated PNG is listed, the rest indexed
    assert "on 2 processes" in out and "truncated.png" in err
    assert digests(tmp_path / "two") == expected


def test_network_vectors_do_not_depend_on_the_workers(dicom_dir, tmp_path):
    # TensorFlow's float sums depend on its thread count: each describing process uses the same one
    one = build_archive(dicom_dir, "cnn", image_size=128, workers=1, chunk_size=7)
    two = build_archive(dicom_dir, "cnn", image_size=128, workers=2, chunk_size=7)
    assert saved(two, tmp_path / "two") == saved(one, tmp_path / "one")


@pytest.mark.parametrize("method, options", [("hog", {}), ("bovw", {"n_words": 50})])
def test_cluster_equals_one_process(mixed_folder, client, tmp_path, method, options):
    reference = build_archive(mixed_folder, method, image_size=128, chunk_size=8, **options)
    on_cluster = build_archive(mixed_folder, method, image_size=128, chunk_size=8, cluster=client, **options)
    assert on_cluster.paths == reference.paths and on_cluster.skipped == reference.skipped
    assert saved(on_cluster, tmp_path / "cluster") == saved(reference, tmp_path / "one")


def test_cli_on_a_running_scheduler(dicom_dir, client, tmp_path, capsys):
    address = client.scheduler.address
    assert address.startswith("tcp://127.0.0.1:")
    status = cli.main(["index", str(dicom_dir), "--out", str(tmp_path / "cluster"), "--cluster", address,
                       "--chunk-size", "3", "--quiet"])
    out, err = capsys.readouterr()
    assert status == 0, err
    assert f"on the Dask cluster at {address}" in out
    status = cli.main(["index", str(dicom_dir), "--out", str(tmp_path / "one"), "--workers", "1", "--quiet"])
    assert status == 0
    assert digests(tmp_path / "cluster") == digests(tmp_path / "one")


def test_unreachable_scheduler_is_one_line(dicom_dir, tmp_path, capsys):
    import dask

    with socket.socket() as sock:  # a port of this machine that nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with dask.config.set({"distributed.comm.timeouts.connect": "1s"}):
        status = cli.main(["index", str(dicom_dir), "--out", str(tmp_path / "idx"), "--cluster",
                           f"tcp://127.0.0.1:{port}", "--quiet"])
    _, err = capsys.readouterr()
    assert status == cli.EXIT_ERROR
    assert err.startswith(f"cbmir index: error: cannot reach the Dask scheduler at tcp://127.0.0.1:{port}: ")
    assert len(err.strip().splitlines()) == 1
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("argv, message", [(["--cluster", "local:0"], "N >= 1"),
                                           (["--cluster", "local:2", "--workers", "2"], "not allowed with"),
                                           (["--workers", "0"], "--workers must be at least 1")])
def test_engine_usage_errors(dicom_dir, tmp_path, capsys, argv, message):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["index", str(dicom_dir), "--out", str(tmp_path / "idx"), *argv])
    assert exit_info.value.code == 2 and message in capsys.readouterr().err


def test_failing_task_is_retried_then_reported(dicom_dir, client):
    # a spec the workers cannot build (an unknown method) fails every try of every task
    spec = MethodSpec("no-such-method", {}, 64, 8)
    chunks = chunked(sorted(dicom_dir.glob("*.dcm")), 7)
    with open_runner(cluster=client) as runner:
        with pytest.raises(IndexingError, match=f"failed after {1 + TASK_RETRIES} tries"):
            runner.describe(spec, None, chunks)

    def starts(dask_scheduler) -> dict[str, int]:  # on the scheduler: how often each task that erred started
        log = [(str(key), start, finish) for key, start, finish, *_ in dask_scheduler.transition_log]
        erred = {key for key, _, finish in log if finish == "erred"}
        return {key: sum((k, s, f) == (key, "waiting", "processing") for k, s, f in log) for key in erred}

    # the chunk reported was tried 1 + TASK_RETRIES times (the other one may be cancelled before)
    assert set(client.run_on_scheduler(starts).values()) == {1 + TASK_RETRIES}


def test_worker_killed_mid_run_loses_nothing(mixed_folder, client, tmp_path):
    reference = build_archive(mixed_folder, "rbc", image_size=128, workers=1, chunk_size=2)
    pids = client.run(os.getpid)  # worker address -> process id
    killed: dict[str, object] = {}

    def kill_a_busy_worker():
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not killed:
            for address, keys in client.processing().items():
                busy = [k for k in keys if str(k).startswith("cbmir-describe-")]
                if busy and address in pids:
                    os.kill(pids[address], signal.SIGKILL)
                    killed.update(address=address, key=busy[0])
                    return
            time.sleep(0.005)

    killer = threading.Thread(target=kill_a_busy_worker, daemon=True)
    killer.start()
    out = tmp_path / "idx"
    archive = build_archive(mixed_folder, "rbc", image_size=128, chunk_size=2, cluster=client)
    archive.save(out)
    killer.join(5)
    assert killed, "no worker was seen describing a chunk"
    assert killed["address"] not in client.run(os.getpid)  # it is gone (the nanny started another)
    assert digests(out) == saved(reference, tmp_path / "one")  # every image, once, in order
    assert sorted(p.name for p in tmp_path.iterdir()) == ["idx", "one"]  # nothing half-written
    client.wait_for_workers(2, timeout=60)


def test_merge_refuses_missing_chunks():
    from cbmir_tf.distributed import Shard

    shards = [Shard(0, ["a.png"], [], {"primary": np.zeros((1, 2))}), Shard(2, ["c.png"], [], {})]
    with pytest.raises(IndexingError, match="came back"):
        merge_shards(shards)
