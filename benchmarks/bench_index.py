"""Indexing throughput (img/s) of ``build_archive`` in 1 and 2 local processes and on 1 and 2 Dask workers.

    CBMIR_DATA_DIR=../shared/data .venv/bin/python benchmarks/bench_index.py \
        [--methods hog,rbc,cnn] [--images 2000] [--cnn-images 10] [--runs 3] [--work DIR]

The archive is real: ``--images`` images drawn (seed 0) from the open benchmark's training split,
written once as 128-px PNG files (one folder per code) under ``--work``, plus the 14 DICOM samples;
it is indexed at ``--image-size 128``. Each method is timed ``--runs`` times, the settings taking turns
(the median is printed; cnn once, on the first ``--cnn-images`` images of each code folder, about
280) with ``workers=1`` (this process; for cnn, one worker process),
``workers=2`` (spawned processes: their start is timed) and on a local Dask cluster of 1 and of 2
worker processes of one thread (started before the timing, as a running cluster would be; the first
run includes the workers' imports and, for cnn, loading SqueezeNet). Every result's image list and
vectors must equal the one-process result's: a difference stops the benchmark. Timings are
wall-clock on this machine, shared with whatever else runs on it.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import time
import warnings
from pathlib import Path

import numpy as np

from cbmir_tf.archive import build_archive


def write_archive(work: Path, n_images: int, seed: int = 0) -> Path:
    """``n_images`` training images of the benchmark as PNGs under ``work/archive/<code>/`` and the
    DICOM samples under ``work/archive/dicom/``; written once (a marker file says done)."""
    folder = work / f"archive-{n_images}"
    if (folder / ".complete").is_file():
        return folder
    from PIL import Image

    from cbmir_tf.data.benchmark import load_benchmark
    from cbmir_tf.data.registry import fetch_folder

    shutil.rmtree(folder, ignore_errors=True)
    warnings.simplefilter("ignore", UserWarning)  # the benchmark's patient-leakage warning
    data = load_benchmark().take_split("train")
    picks = np.sort(np.random.default_rng(seed).choice(len(data.images), min(n_images, len(data.images)),
                                                       replace=False))
    for i in picks:
        target = folder / data.class_names[data.labels[i]] / f"{i:05d}.png"
        target.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(data.images[i]).save(target)
    shutil.copytree(fetch_folder("dicom"), folder / "dicom", ignore=shutil.ignore_patterns("*.md"))
    (folder / ".complete").write_text("done")
    return folder


def subset(folder: Path, per_folder: int, work: Path) -> Path:
    """A folder of links to the first ``per_folder`` files of each sub-folder of ``folder`` (for cnn)."""
    target = work / f"{folder.name}-first{per_folder}"
    if not (target / ".complete").is_file():
        shutil.rmtree(target, ignore_errors=True)
        for sub in sorted(p for p in folder.iterdir() if p.is_dir()):
            (target / sub.name).mkdir(parents=True)
            for path in sorted(sub.iterdir())[:per_folder]:
                (target / sub.name / path.name).symlink_to(path)
        (target / ".complete").write_text("done")
    return target


def timed(folder: Path, method: str, **engine) -> tuple[float, object]:
    """The seconds of one build, and its archive."""
    start = time.perf_counter()
    archive = build_archive(folder, method, image_size=128, **engine)
    return time.perf_counter() - start, archive


def same(archive, reference) -> bool:
    """The same images, skipped files and stored vectors (the index's own, reconstructed)."""
    a, b = archive.index.index_, reference.index.index_
    return (archive.paths == reference.paths and archive.skipped == reference.skipped
            and np.array_equal(a.reconstruct_n(0, a.ntotal), b.reconstruct_n(0, b.ntotal)))


def main() -> None:
    from distributed import Client, LocalCluster

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--methods", default="hog,rbc,cnn", help="comma-separated cbmir methods")
    parser.add_argument("--images", type=int, default=2000, help="benchmark images (+ 14 DICOM)")
    parser.add_argument("--cnn-images", type=int, default=10, help="cnn: images taken from each code folder")
    parser.add_argument("--runs", type=int, default=3, help="builds timed per setting (cnn: 1)")
    parser.add_argument("--work", type=Path, default=Path.home() / ".cache" / "cbmir_tf" / "bench_index",
                        help="folder for the PNG archive, kept between runs (~/.cache/cbmir_tf/bench_index)")
    args = parser.parse_args()
    warnings.filterwarnings("ignore", "Port .* is already in use", UserWarning)  # the 2nd cluster's HTTP port
    folder = write_archive(args.work, args.images)
    print(f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, load "
          f"{' '.join(f'{x:.1f}' for x in os.getloadavg())}, Python {platform.python_version()}")
    clusters = {n: LocalCluster(n_workers=n, threads_per_worker=1, processes=True, host="127.0.0.1",
                                dashboard_address=None) for n in (1, 2)}
    clients = {n: Client(cluster) for n, cluster in clusters.items()}
    settings = {"1 process": {"workers": 1}, "2 processes": {"workers": 2},
                "Dask, 1 worker": {"cluster": clients[1]}, "Dask, 2 workers": {"cluster": clients[2]}}
    print(f"\n{'method':6s} {'images':>6s} " + " ".join(f"{name:>16s}" for name in settings) + "   (img/s)")
    try:
        for method in [m for m in args.methods.split(",") if m]:
            source = subset(folder, args.cnn_images, args.work) if method == "cnn" else folder
            reference, seconds = None, {name: [] for name in settings}
            for _ in range(1 if method == "cnn" else args.runs):  # round robin: a change of load hits all
                for name, engine in settings.items():
                    spent, archive = timed(source, method, **engine)
                    reference = reference or archive
                    if not same(archive, reference):
                        raise SystemExit(f"{method}, {name}: the index differs from the one-process index")
                    seconds[name].append(spent)
            rates = [len(reference) / np.median(spent) for spent in seconds.values()]
            print(f"{method:6s} {len(reference):6d} " + " ".join(f"{r:16.1f}" for r in rates)
                  + f"   load {os.getloadavg()[0]:.1f}", flush=True)
    finally:
        for n in clusters:
            clients[n].close()
            clusters[n].close()
    print("\nevery index equals the one-process index (image list, skipped files, vectors)")


if __name__ == "__main__":
    main()
