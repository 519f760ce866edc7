"""Print HOG extraction throughput and exact-search latency on the open benchmark.

    CBMIR_DATA_DIR=../shared/data .venv/bin/python benchmarks/bench_hog_search.py [--max-per-class N]

Timings are wall-clock on this machine, one query at a time (median and p95),
with the search also timed as one batch. Nothing here is asserted.
"""

from __future__ import annotations

import argparse
import os
import platform
import time
import warnings

import numpy as np

from cbmir_tf.data.benchmark import load_benchmark
from cbmir_tf.evaluation import time_per_query
from cbmir_tf.features.hog import HOGDescriptor
from cbmir_tf.search.index import Index


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-per-class", type=int, default=None)
    parser.add_argument("--queries", type=int, default=500)
    args = parser.parse_args()
    warnings.simplefilter("ignore", UserWarning)
    data = load_benchmark(max_per_class=args.max_per_class)
    archive, queries = data.take_split("train"), data.take_split("test")
    print(f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores; "
          f"archive {len(archive)}, queries {len(queries)}")
    for image_size, cell in ((256, 64), (128, 32)):
        hog = HOGDescriptor(cell_size=cell, block_size=2 * cell, block_stride=cell, image_size=image_size)
        hog.fit(archive.images[:1])
        start = time.perf_counter()
        database = hog.transform(archive.images)
        rate = len(archive) / (time.perf_counter() - start)
        print(f"HOG {image_size}px (d={database.shape[1]}): {rate:.0f} img/s")
        for metric in ("l1", "l2", "cosine"):
            index = Index(metric).add(database)
            q = hog.transform(queries.images[: args.queries])
            t = time_per_query(lambda i: index.search(q[i:i + 1], 10), len(q))
            start = time.perf_counter()
            index.search(q, 10)
            batch_ms = 1000 * (time.perf_counter() - start) / len(q)
            print(f"  search {metric:6s}: median {t['median_ms']:.3f} ms, p95 {t['p95_ms']:.3f} ms per query; "
                  f"batched {batch_ms:.4f} ms/query")


if __name__ == "__main__":
    main()
