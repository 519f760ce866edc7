# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Archives beyond one machine
#
# **The question:** the previous chapter searched up to a million vectors held in memory. A
# hospital's picture archive can hold ten or a hundred million images. What does an index cost when
# its float vectors no longer fit in one machine's memory, and how long would it take to describe
# that many images in the first place?
#
# **Measured here:** for the HOG vectors of the open benchmark, grown with replicas to the profile's
# largest archive (ten million vectors under `cpu` and `paper`), **compressed** IVF-PQ indexes:
# bytes per image, build time, the latency of one query, and recall@10 against exact search, with
# and without an exact re-ranking of a shortlist of candidates. Then the rate at which one core
# describes real images with each method of `cbmir index`, and from it **a plan** for 10 and 100
# million images: core-hours, machines, memory and disk, and where the design would go next.
#
# **Data:** as in {doc}`archive_scale`: HOG vectors (324 floats, 128 px) of the benchmark's training
# split are the real archive, and test images are the queries and the calibration images. Beyond the
# real archive, the rows are **replicas of the real vectors plus small random perturbations**
# (`scale.replica_blocks`), which stand in for a larger archive and are not descriptors of any image.

# %% tags=["parameters"]
profile = "cpu"  # smoke | cpu | paper
dry_run = False  # True: the profile capped to a few images and training steps (`make dry-run`)
data_dir = None  # None: $CBMIR_DATA_DIR, else the data registry's cache and downloads (`cbmir-data list`)
seed = 0
out_dir = "outputs/beyond_one_machine"
source_repository = "https://github.com/cbmir-tf/cbmir-tf"  # repository.url of _config.yml
source_commit = "main"  # the book build injects the commit it ran on (git rev-parse HEAD)

# %% tags=["hide-cell"]
import importlib.util
import subprocess
import sys

if importlib.util.find_spec("cbmir_tf") is None:  # e.g. on Colab
    subprocess.run([sys.executable, "-m", "pip", "install", "-q",
                    f"git+{source_repository}@{source_commit}"], check=True)

# %% tags=["hide-input"]
import os
import platform
import tempfile
import time
import warnings
from pathlib import Path

import faiss
import numpy as np
import pandas as pd
from PIL import Image
from threadpoolctl import threadpool_limits

warnings.filterwarnings("ignore", message="IProgress not found")  # tqdm, imported by the archive module
from cbmir_tf.archive import build_archive
from cbmir_tf.data.benchmark import describe_source, load_benchmark
from cbmir_tf.data.io import atomic_write
from cbmir_tf.profiles import get_profile
from cbmir_tf.report import environment_summary, glue_value, show_table, write_provenance
from cbmir_tf.search import compressed, scale
from cbmir_tf.seeding import seed_everything

settings = get_profile(profile, "compressed", dry_run=dry_run)
seed_everything(seed)
warnings.simplefilter("ignore", UserWarning)  # patient-leakage warning: see the benchmark chapter

# %% [markdown]
# ## Data
#
# This build's images: {glue:text}`source_note`. The real archive holds {glue:text}`n_real` HOG
# vectors; {glue:text}`n_queries` test images are the queries and {glue:text}`n_calibration` other
# test images calibrate the indexes' `nprobe`, drawn as in {doc}`archive_scale`.

# %%
benchmark = load_benchmark(data_dir, max_per_class=settings["max_per_class"], seed=seed, profile=profile,
                           dry_run=dry_run)
archive, tests = benchmark.take_split("train"), benchmark.take_split("test")
picks, tune = scale.split_test_images(len(tests), settings["n_queries"], settings["n_calibration"], seed)
database = {"float": scale.real_features(archive.images)["float"]}
queries = {"float": scale.real_features(tests.images[picks])["float"]}
calibration = {"float": scale.real_features(tests.images[tune])["float"]}
threads = faiss.omp_get_max_threads()
machine = f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores"
write_provenance(out_dir, {"profile": profile, "dry_run": dry_run, "seed": seed, **settings}, benchmark)
glue_value("source_note", describe_source(benchmark))
glue_value("n_real", f"{len(archive):,}")
glue_value("n_queries", f"{len(picks):,}")
glue_value("n_calibration", f"{len(tune):,}")
glue_value("target_recall", f"{settings['target_recall']:.2f}")
glue_value("threads", str(threads))
glue_value("machine", machine)

# %% [markdown]
# ## Compressed indexes: when the vectors no longer fit in memory
#
# Every index so far keeps each HOG vector whole, 1,296 bytes an image: 13 GB for ten million
# images and 130 GB for a hundred million, more than the memory of most single servers. A
# **product-quantised** index keeps a short code instead. `Index(kind="ivfpq")` cuts each vector
# into `pq_m` pieces of 324 / `pq_m` numbers and replaces each piece by the number (one byte) of the
# nearest of 256 centroids learned for that piece by k-means; the codes sit in IVF cells, as in
# `ivf` ({doc}`archive_scale`). A search compares the query with the codes through tables of query-to-centroid distances,
# never with the vectors ({cite}`jegou2011pq`). `opq=True` adds a learned rotation before the cut
# (OPQ), which spreads the variance evenly over the pieces; it is not measured here, because
# training it takes minutes on two cores.
#
# The codes lose detail, so even a scan of every cell misses some true neighbours. The knob that
# `Index.calibrate` sets is then `nprobe` against that full scan: the calibrated index finds
# {glue:text}`target_recall` of what its codes can find, on the held-out real images. What the codes
# themselves keep is measured against exact search of the original vectors. A system that keeps the
# original vectors on disk can win back most of what the codes lose: it re-ranks a shortlist of the
# codes' best candidates (here the top 100 and the top 1,000) by their exact distances, reading only
# those vectors from disk.
#
# At these sizes the archive cannot be held in memory to build the index either, so
# `compressed.run_compressed_benchmark` streams it in blocks of 65,536 replicas, three times over:
# to collect a training sample of {glue:text}`pq_train_rows` rows and find each query's exact ten
# nearest neighbours block by block; to add the codes; and to read back the shortlisted vectors.
# The IVF gets {glue:text}`pq_nlist` cells at every size: assigning each vector to its cell is most
# of the build, and scanning a cell of codes is cheap. The archive sizes are
# {glue:text}`pq_sizes_text`, each again the real vectors followed by replicas, so at the largest
# size each real image has about {glue:text}`pq_copies` perturbed copies.

# %%
pq_results = compressed.run_compressed_benchmark(
    database["float"], queries["float"], calibration["float"], settings["pq_sizes"], pq_ms=settings["pq_ms"],
    n_timing=settings["n_timing"], threads=threads, target_recall=settings["target_recall"], seed=seed, log=None)
with atomic_write(Path(out_dir) / "compressed_benchmark.csv", "w", encoding="utf-8") as handle:
    pq_results.to_csv(handle, index=False)
glue_value("pq_train_rows", f"{min(compressed.PQ_TRAIN_ROWS, min(settings['pq_sizes'])):,}")
glue_value("pq_nlist", f"{pq_results['nlist'].max():,}")
glue_value("pq_sizes_text", ", ".join(f"{n:,}" for n in sorted(settings["pq_sizes"])))
glue_value("pq_copies", f"{max(settings['pq_sizes']) // len(database['float']):,}")

# %% tags=["hide-input"]
PQ_COLUMNS = {"bytes_per_image": "bytes / image", "nprobe": "nprobe", "median_ms": "one query, median (ms)",
              "recall": "recall@10", "recall_all_cells": "recall@10, all cells",
              "source_recall": "recall@10 of the real images",
              "rerank100_recall": "recall@10, top 100 re-ranked", "rerank1000_recall": "recall@10, top 1000 re-ranked",
              "build_min": "build (min)"}
pq_table = (pq_results.assign(build_min=(pq_results["train_s"] + pq_results["add_s"]) / 60)
            .set_index(["n", "pq_m"])[list(PQ_COLUMNS)].rename(columns=PQ_COLUMNS)
            .rename_axis(["archive size", "code bytes (pq_m)"]))
show_table(pq_table, "compressed_table", out_dir,
           column_formats={c: "{:.3f}" for c in pq_table.columns if "recall" in c}
           | {"bytes / image": "{:.1f}", "one query, median (ms)": "{:.2f}", "build (min)": "{:.1f}"})
pq_small = pq_results[pq_results["n"] == pq_results["n"].max()].sort_values("pq_m").iloc[0]  # smallest codes
glue_value("pq_n_max", f"{int(pq_small['n']):,}")
glue_value("pq_m_small", str(int(pq_small["pq_m"])))
glue_value("pq_bytes_small", f"{pq_small['bytes_per_image']:.0f}")
glue_value("pq_ratio_small", f"{1296 / pq_small['bytes_per_image']:.0f}")
glue_value("pq_gib_small", f"{pq_small['index_bytes'] / 2**30:.2f} GiB")
glue_value("pq_flat_gib", f"{pq_small['n'] * 1296 / 2**30:.1f} GiB")
glue_value("pq_recall_small", f"{pq_small['recall']:.3f}")
glue_value("pq_source_small", f"{pq_small['source_recall']:.3f}")
glue_value("pq_rerank100_small", f"{pq_small['rerank100_recall']:.3f}")
glue_value("pq_rerank1000_small", f"{pq_small['rerank1000_recall']:.3f}")
glue_value("pq_ms_small", f"{pq_small['median_ms']:.2f} ms")
glue_value("pq_exact_min", f"{pq_small['exact_s'] / 60:.1f} min")

# %% [markdown]
# ```{glue:figure} compressed_table
# :name: tab-scale-compressed
# IVF-PQ indexes of the HOG vectors at each archive size and code size: the whole index's bytes per
# image (codes, 8-byte ids, centroids and codebooks; a flat index takes 1,296), the `nprobe`
# calibrated on the held-out real images, the median latency of one query on one core, and recall@10
# of the real queries against exact search of the original vectors: at that `nprobe`, with every
# cell scanned, counting a perturbed copy of the right real image as a hit, and after re-ranking the
# best 100 or 1,000 candidates by their exact distance. Build time is training and adding, on
# {glue:text}`threads` threads.
# ```
#
# At {glue:text}`pq_n_max` vectors, codes of {glue:text}`pq_m_small` bytes made an index of
# {glue:text}`pq_gib_small` ({glue:text}`pq_bytes_small` bytes an image, {glue:text}`pq_ratio_small`
# times less than the {glue:text}`pq_flat_gib` of the float vectors), searched in
# {glue:text}`pq_ms_small` per query. Their recall@10 against exact search was only
# {glue:text}`pq_recall_small`, and the table shows why it says more about the replicas than about
# the codes: the true ten nearest neighbours of a query are mostly perturbed copies of one or two real
# images, which differ by less than the codes can tell apart. Counted by the real image they copy,
# the codes found {glue:text}`pq_source_small` of them. Re-ranking the top 100 candidates by their
# exact distances brought recall@10 to {glue:text}`pq_rerank100_small`, and the top 1,000 to
# {glue:text}`pq_rerank1000_small`: a compressed index in memory, with the full vectors on disk for
# a final check of a shortlist, wins back much of what the codes lose, the more the longer the
# shortlist, and the less so the more near-copies crowd each query's neighbourhood. (Exact search itself
# took {glue:text}`pq_exact_min` for the queries at this size, streaming the archive in blocks on
# {glue:text}`threads` threads.)

# %% [markdown]
# ## What 10 million and 100 million images would cost
#
# The search side is settled by the measurements above. The other cost is describing the images,
# which every method must do once per image and again whenever it changes. We measure it as
# `cbmir index` does it, with its default settings: `build_archive` reads PNG files of real
# benchmark images from disk, standardises them to 256 pixels and describes them in one process on
# one core (SqueezeNet's TensorFlow on one thread too). Each method indexes {glue:text}`throughput_images` images and then three times as
# many; the rate is the difference in images over the difference in time, so that starting the
# process and loading a network do not count.

# %%
def per_core_rate(method: str, small: Path, large: Path) -> float:
    """Images per second one core describes with ``method`` (`build_archive`, one worker), counting only
    the images ``large`` holds beyond ``small``."""
    seconds = []
    for folder in (small, large):
        start = time.perf_counter()
        with threadpool_limits(1):
            archive = build_archive(folder, method, image_size=256, workers=1)  # `cbmir index`'s default size
        seconds.append(time.perf_counter() - start)
    return (len(archive) - count_images(small)) / max(seconds[1] - seconds[0], 1e-9)


def count_images(folder: Path) -> int:
    return sum(1 for _ in folder.rglob("*.png"))


n_rate = settings["throughput_images"]
with tempfile.TemporaryDirectory() as work:
    picks = np.random.default_rng(seed).choice(len(archive), 3 * n_rate, replace=False)
    folders = {size: Path(work) / f"archive-{size}" for size in (n_rate, 3 * n_rate)}
    for size, folder in folders.items():
        folder.mkdir()
        for i in picks[:size]:
            Image.fromarray(archive.images[i]).save(folder / f"{i:05d}.png")
    rates = {m: per_core_rate(m, folders[n_rate], folders[3 * n_rate]) for m in settings["throughput_methods"]}
glue_value("throughput_images", f"{n_rate:,}")

# %% [markdown]
# From those rates, the table sets out what describing and indexing a larger archive would take:
# core-hours of description, the hours on 10 machines of 32 cores each (assuming the rate holds on
# every core, which the cores' shared memory bandwidth can erode), and the memory and disk of the
# HOG index: float vectors in memory (flat or IVF, as above), or the smallest IVF-PQ codes measured
# above in memory with the float vectors on disk for re-ranking.

# %% tags=["hide-input"]
DESCRIPTORS = {"hog": "HOG", "rbc": "Radon barcode", "cnn": "SqueezeNet CNN"}  # `cbmir index --method`
code_bytes = pq_small["pq_m"] + 8  # an image's code and its id; the centroids and codebooks are fixed
fixed_bytes = pq_small["index_bytes"] - pq_small["n"] * code_bytes
plan_rows = []
for n in (10_000_000, 100_000_000):
    for method, rate in rates.items():
        core_hours = n / rate / 3600
        plan_rows.append({"images": n, "method": DESCRIPTORS[method], "rate per core (img/s)": rate,
                          "core-hours": core_hours, "hours on 10 x 32 cores": core_hours / 320})
plan = pd.DataFrame(plan_rows).set_index(["images", "method"])
show_table(plan, "plan_table", out_dir,
           column_formats={"rate per core (img/s)": "{:.1f}", "core-hours": "{:,.0f}", "hours on 10 x 32 cores": "{:.1f}"})
memory = pd.DataFrame([{"images": n, "HOG floats in memory (GiB)": n * 1296 / 2**30,
                        f"IVF-PQ, {int(pq_small['pq_m'])} bytes, in memory (GiB)": (fixed_bytes + n * code_bytes) / 2**30,
                        "HOG floats on disk for re-ranking (GiB)": n * 1296 / 2**30}
                       for n in (10_000_000, 100_000_000)]).set_index("images")
show_table(memory, "plan_memory", out_dir, float_format="{:,.1f}")
for method in DESCRIPTORS:  # a profile may leave a method out (smoke: no network)
    rate = rates.get(method)
    glue_value(f"rate_{method}", "not measured in this build" if rate is None else
               f"{rate:.0f} images/s" if rate >= 10 else f"{rate:.1f} images/s")
    glue_value(f"days_100m_{method}", "(not measured)" if rate is None else f"{1e8 / rate / 3600 / 320 / 24:.1f} days")
    glue_value(f"hours_10m_{method}", "(not measured)" if rate is None else f"{1e7 / rate / 3600 / 320:.1f} hours")

# %% [markdown]
# ```{glue:figure} plan_table
# :name: tab-scale-plan
# Describing 10 and 100 million images: each method's measured rate on one core of
# {glue:text}`machine` (reading 128-pixel PNG files, standardising them to 256 pixels and describing
# them, as `cbmir index` does by default), the core-hours it
# implies, and the hours on ten 32-core machines at that rate per core.
# ```
#
# ```{glue:figure} plan_memory
# :name: tab-scale-plan-memory
# The index of the chapter's HOG vectors (324 floats) at 10 and 100 million images: the float
# vectors (flat or IVF index), and the IVF-PQ index measured above (its code and 8-byte id for each
# image, plus its centroids and codebooks), whose float vectors would live on disk for the re-ranking.
# ```
#
# **Where the design goes next.** Describing is embarrassingly parallel: each image is described
# on its own. `cbmir index --cluster` already spreads it over a Dask cluster and merges the shards
# in a fixed order, so the plan for the description is machines, not a new design. At the measured
# rates, HOG needs {glue:text}`hours_10m_hog` on ten 32-core machines for 10M images
# ({glue:text}`rate_hog` a core), the Radon barcodes {glue:text}`hours_10m_rbc`, and at 100M images the
# CNN would take {glue:text}`days_100m_cnn` of those machines ({glue:text}`rate_cnn` a core), which
# is where a GPU earns its place.
#
# Searching is where the design would change. Up to a few tens of millions of images, one server
# holds an IVF or HNSW index of the float vectors, or an IVF-PQ index with the vectors on a local
# disk. Beyond that, or when queries must be answered faster than one server allows, the index is
# **sharded**: each machine holds the codes of one part of the archive, every query goes to all
# shards, and their top k are merged (FAISS' `IndexShards`, or a search service that does the same
# over the network). A vector database (Milvus, Qdrant, Weaviate and the like) packages that
# sharding with replication, updates and filtering by metadata (modality, body region, date), which
# a hospital archive needs as soon as images arrive every day. Our single-process FAISS index,
# rebuilt by `cbmir index`, is the right tool up to the sizes measured in this chapter, and the
# numbers above are what a move to either would have to beat.

# %% [markdown]
# ## Summary
#
# At {glue:text}`pq_n_max` vectors, IVF-PQ codes of {glue:text}`pq_m_small` bytes held the HOG
# archive in {glue:text}`pq_gib_small` instead of {glue:text}`pq_flat_gib`, and answered a query in
# {glue:text}`pq_ms_small` on one core. The codes alone found only part of the exact ten nearest
# neighbours, mostly because the replicas' nearest neighbours are near-identical copies; with the
# float vectors on disk and the top 1,000 candidates re-ranked exactly, recall@10 was
# {glue:text}`pq_rerank1000_small`. Describing the images is the larger bill: at the measured rates,
# one core describes {glue:text}`rate_hog` with HOG and {glue:text}`rate_cnn` with SqueezeNet, so
# 100 million images call for a cluster (which `cbmir index --cluster` drives) and, for a network,
# GPUs.
#
# The caveats of {doc}`archive_scale` hold here too: beyond the real archive the vectors are
# replicas, so recall at large sizes measures how an index separates near-duplicates, and the
# timings come from a shared two-core machine.

# %% tags=["hide-input"]
print(environment_summary())
print(f"faiss {faiss.__version__}; build threads {threads}, search threads 1")
