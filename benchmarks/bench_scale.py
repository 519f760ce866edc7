"""Search latency and recall@10 of FAISS flat, IVF and HNSW indexes and a NumPy brute force, up to 1M vectors.

    CBMIR_DATA_DIR=../shared/data .venv/bin/python benchmarks/bench_scale.py \
        --sizes 30000,100000,300000,1000000 --queries 200 --out scale.csv [--max-per-class N]

The archive is the benchmark's training split, described by HOG (324-d float, L2) and Radon
barcodes (728 bits, Hamming); the queries are test images. The real archive size is always
measured too. Larger archives are the real vectors followed by replicas of them with small seeded
perturbations (see ``cbmir_tf.search.scale.replicate``): beyond the real images, the vectors are not
images of anyone. IVF and HNSW calibrate their search knob for recall@10 >= 0.95 on their own
vectors, then on up to ``--calibration`` other test images (never the queries), which sets their
default. Builds run on ``--threads`` threads, every search on one; timings are wall-clock on this
machine and nothing here is asserted. The last lines compare exact search of the whole batch of
queries in FAISS and in NumPy (median of ``--repeats``). The CSV is the table the scale chapter plots.
"""

from __future__ import annotations

import argparse
import os
import platform
import time
import warnings

import faiss
import numpy as np
import pandas as pd

from cbmir_tf.data.benchmark import load_benchmark
from cbmir_tf.data.io import atomic_write
from cbmir_tf.search.scale import memory_bandwidth, real_features, run_scale_benchmark


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="30000,100000,300000,1000000",
                        help="comma-separated archive sizes (the real size is added)")
    parser.add_argument("--queries", type=int, default=200, help="real test images used as queries")
    parser.add_argument("--timed", type=int, default=100, help="queries timed one at a time")
    parser.add_argument("--calibration", type=int, default=1000,
                        help="other test images the approximate indexes calibrate on (0: their own vectors)")
    parser.add_argument("--repeats", type=int, default=3, help="batched searches timed per setting (median)")
    parser.add_argument("--max-per-class", type=int, default=None, help="per-class subset of the benchmark")
    parser.add_argument("--threads", type=int, default=None, help="build threads (default: all cores)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=None, help="CSV file to write (atomically)")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    if not sizes or min(sizes) < 1:
        parser.error(f"--sizes must list positive integers. Received: --sizes={args.sizes!r}")

    warnings.simplefilter("ignore", UserWarning)  # the benchmark's patient-leakage warning
    data = load_benchmark(max_per_class=args.max_per_class, seed=args.seed)
    archive, queries = data.take_split("train"), data.take_split("test")
    rng = np.random.default_rng(args.seed)
    picks = np.sort(rng.choice(len(queries), min(args.queries, len(queries)), replace=False))
    others = np.setdiff1d(np.arange(len(queries)), picks)
    tune = np.sort(rng.choice(others, min(args.calibration, len(others)), replace=False))
    start = time.perf_counter()
    database, query_vectors = real_features(archive.images), real_features(queries.images[picks])
    calibration = real_features(queries.images[tune]) if len(tune) else None
    print(f"real features of {len(archive)} + {len(picks)} + {len(tune)} images in "
          f"{time.perf_counter() - start:.0f} s")

    threads = args.threads or faiss.omp_get_max_threads()
    bandwidth = memory_bandwidth()
    print(f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, faiss {faiss.__version__}; "
          f"build threads {threads}, search threads 1; read bandwidth {bandwidth / 1e9:.1f} GB/s (one core)")
    table = run_scale_benchmark(database, query_vectors, [len(archive), *sizes], n_timing=args.timed,
                                threads=threads, bandwidth=bandwidth, seed=args.seed, calibration=calibration,
                                repeats=args.repeats)
    shown = table[table["default"]].assign(index_mib=table["index_bytes"] / 2**20)
    columns = ["descriptor", "n", "method", "build", "knob", "value", "build_s", "index_mib", "bound_ms",
               "median_ms", "p95_ms", "batch_ms", "recall", "stored_value"]
    exact = table[table["method"].isin(["numpy", "flat"])].pivot_table(
        index=["descriptor", "n"], columns="method", values="batch_ms")
    ratio = (exact["numpy"] / exact["flat"]).rename("numpy / faiss").reset_index()
    with pd.option_context("display.width", 220, "display.max_rows", 500, "display.max_columns", 20,
                           "display.float_format", "{:.4g}".format):
        print(shown[[c for c in columns if c in shown]].to_string(index=False))
        print(f"\nexact search of {len(picks)} queries at once, one thread: NumPy's time over FAISS "
              f"flat's (median of {args.repeats}; above 1: FAISS is faster)")
        print(ratio.to_string(index=False))
    if args.out:
        with atomic_write(args.out, "w", encoding="utf-8") as handle:
            table.to_csv(handle, index=False)
        print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
