"""Query latency of ``cbmir serve`` over HTTP, and of a one-shot ``cbmir query`` process, on a real archive.

    CBMIR_DATA_DIR=../shared/data .venv/bin/python benchmarks/bench_serve.py \
        [--methods hog,cnn] [--queries 200] [--work ~/.cache/cbmir_tf/bench_serve]

The archive is the open benchmark's training split, 9,417 real images, written once as PNG files
(one folder per code) under ``--work`` and indexed there with ``cbmir index --image-size 128`` (the
images are 128 px) for each method; the indexes are kept for the next run. The queries are test-split
images (not in the archive), also written as PNGs. For each method a ``cbmir serve`` process is started
on a free port of 127.0.0.1, warmed up, and sent ``--queries`` of them one after another over one
kept-alive connection, as ``POST /api/search`` with k = 10;
the time of each request is measured by the client (upload, read, describe, search, JSON). Then
``cbmir query`` (the whole process: start, imports, index load, search, contact sheet) is timed
``--runs`` times for ``hog``. Medians and 95th percentiles are printed; nothing is asserted.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import platform
import socket
import subprocess
import sys
import time
import uuid
import warnings
from pathlib import Path

import numpy as np

from cbmir_tf.archive import FORMAT, FORMAT_VERSION

CLI = [sys.executable, "-m", "cbmir_tf.cli"]


def write_pngs(work: Path) -> tuple[Path, Path]:
    """The benchmark's training split as PNGs under ``work/archive/<code>/`` and its test split under
    ``work/queries/<code>/``; written once (a marker file says done)."""
    archive, queries = work / "archive", work / "queries"
    if (work / ".complete").is_file():
        return archive, queries
    from PIL import Image

    from cbmir_tf.data.benchmark import load_benchmark

    warnings.simplefilter("ignore", UserWarning)  # the benchmark's patient-leakage warning
    data = load_benchmark()
    for split, folder in (("train", archive), ("test", queries)):
        part = data.take_split(split)
        for i, (image, label) in enumerate(zip(part.images, part.labels)):
            target = folder / part.class_names[label] / f"{i:05d}.png"
            target.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(image).save(target)
    (work / ".complete").write_text("done")
    return archive, queries


def build_index(images: Path, index: Path, method: str) -> float | None:
    """``cbmir index`` the archive with ``method`` unless already there; the seconds it took (or None)."""
    if (index / "manifest.json").is_file():
        return None
    start = time.perf_counter()
    subprocess.run([*CLI, "index", str(images), "--method", method, "--out", str(index), "--image-size", "128",
                    "--quiet"], check=True)
    return time.perf_counter() - start


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_server(index: Path) -> tuple[subprocess.Popen, int]:
    port = free_port()
    process = subprocess.Popen([*CLI, "serve", "--index", str(index), "--port", str(port)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    for _ in range(1200):
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return process, port
        except OSError:
            if process.poll() is not None:
                raise RuntimeError(f"cbmir serve --index {index} exited: {process.stderr.read()}") from None
            time.sleep(0.1)
    process.kill()
    raise RuntimeError(f"cbmir serve --index {index} did not start in 120 s")


def multipart(path: Path, k: int) -> tuple[bytes, str]:
    """A ``multipart/form-data`` body with the file and ``k``, and its content type."""
    boundary = uuid.uuid4().hex
    parts = [f'--{boundary}\r\nContent-Disposition: form-data; name="k"\r\n\r\n{k}\r\n'.encode(),
             f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{path.name}"\r\n'
             f"Content-Type: application/octet-stream\r\n\r\n".encode(), path.read_bytes(),
             f"\r\n--{boundary}--\r\n".encode()]
    return b"".join(parts), f"multipart/form-data; boundary={boundary}"


def time_http(port: int, files: list[Path], k: int, warmup: int = 5) -> tuple[np.ndarray, np.ndarray]:
    """Client-side seconds of each request, and the server's own ``seconds`` field."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    wall, server = [], []
    for n, path in enumerate([*files[:warmup], *files]):
        body, content_type = multipart(path, k)
        start = time.perf_counter()
        connection.request("POST", "/api/search", body, {"Content-Type": content_type})
        response = connection.getresponse()
        payload = response.read()
        seconds = time.perf_counter() - start
        if response.status != 200:
            raise RuntimeError(f"{path}: HTTP {response.status} {payload[:200]!r}")
        if n >= warmup:
            wall.append(seconds)
            server.append(json.loads(payload)["seconds"])
    connection.close()
    return np.array(wall), np.array(server)


def time_one_shot(index: Path, files: list[Path], out: Path) -> np.ndarray:
    """Wall seconds of whole ``cbmir query`` processes, one per file."""
    times = []
    for path in files:
        start = time.perf_counter()
        subprocess.run([*CLI, "query", str(path), "--index", str(index), "-k", "10", "--sheet",
                        str(out / "sheet.png")], check=True, stdout=subprocess.DEVNULL)
        times.append(time.perf_counter() - start)
    return np.array(times)


def ms(values: np.ndarray) -> str:
    return f"{np.median(values) * 1000:8.1f} {np.percentile(values, 95) * 1000:8.1f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--methods", default="hog,cnn", help="comma-separated cbmir methods")
    parser.add_argument("--queries", type=int, default=200, help="HTTP queries timed per method")
    parser.add_argument("--runs", type=int, default=7, help="whole cbmir query processes timed (hog)")
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--work", type=Path, default=Path.home() / ".cache" / "cbmir_tf" / "bench_serve",
                        help="folder for the PNG archive and its indexes (kept between runs)")
    args = parser.parse_args()
    methods = [m for m in args.methods.split(",") if m]

    images, query_folder = write_pngs(args.work)
    n_images = sum(1 for _ in images.rglob("*.png"))
    queries = sorted(query_folder.rglob("*.png"))
    picks = [queries[i] for i in np.random.default_rng(args.seed).choice(len(queries), args.queries, replace=False)]
    print(f"archive: {n_images:,} real benchmark images (training split) as 128-px PNGs in {images}; "
          f"{len(picks)} queries from the {len(queries):,} test images")
    print(f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}")
    print(f"\n{'method':8s} {'index s':>8s} {'queries':>8s} {'median ms':>9s} {'p95 ms':>8s}   server-side median/p95 ms")
    for method in methods:
        index = args.work / f"index-{method}-{FORMAT}{FORMAT_VERSION}"
        built = build_index(images, index, method)
        process, port = start_server(index)
        try:
            wall, server = time_http(port, picks, args.k)
        finally:
            process.terminate()
            process.wait(timeout=30)
        built_text = f"{built:8.0f}" if built is not None else f"{'cached':>8s}"
        print(f"{method:8s} {built_text} {len(wall):8d} {ms(wall)}   {ms(server)}", flush=True)

    if "hog" in methods:
        runs = time_one_shot(args.work / f"index-hog-{FORMAT}{FORMAT_VERSION}", picks[: args.runs], args.work)
        print(f"\none-shot `cbmir query` (hog, whole process, {len(runs)} runs): median {np.median(runs):.2f} s, "
              f"p95 {np.percentile(runs, 95):.2f} s, min {runs.min():.2f} s")


if __name__ == "__main__":
    main()
