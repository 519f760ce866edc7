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
# # Retrieval at archive scale
#
# **The question:** the open benchmark's archive holds about ten thousand images (on its eight sets),
# a hospital's picture archive millions. How do the time of one query and the quality of its answer change as the
# archive grows, and which index keeps up: an exhaustive scan, or an approximate index?
#
# **Measured here:** for two real descriptors of the benchmark images, at archive sizes from the real
# archive up to the profile's largest (one million under `cpu` and `paper`): the latency of one query
# (median and 95th percentile), the throughput of a batch of queries, the build time, the size in
# memory, and recall@10 against exact search, for
#
# * a plain NumPy brute force (matrix products for float vectors, bit counts for binary codes);
# * FAISS exact search (`flat`) and two approximate FAISS indexes: inverted lists (`ivf`) and a
#   hierarchical navigable small-world graph (`hnsw`), all through `cbmir_tf.search.index.Index`;
#
# and beside them the **memory-bandwidth bound**: the bytes of the index divided by the rate at which
# one core of this machine reads memory, that is, the time needed just to read the index once.
#
# **Data:** HOG vectors and Radon barcodes of the open benchmark's images (its training split is the
# archive, its test split the queries). Beyond the real archive, the archive is grown with
# **replicas of the real vectors plus small random perturbations**. Those rows are not descriptors of
# any image: they stand in for a larger archive whose vectors look locally like ours.

# %% tags=["parameters"]
profile = "cpu"  # smoke | cpu | paper
dry_run = False  # True: the profile capped to a few images and training steps (`make dry-run`)
data_dir = None  # None: $CBMIR_DATA_DIR, else the data registry's cache and downloads (`cbmir-data list`)
seed = 0
out_dir = "outputs/archive_scale"
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
import warnings
from pathlib import Path

import faiss
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.ticker import NullFormatter

from cbmir_tf.search import scale
from cbmir_tf.data.benchmark import describe_source, load_benchmark
from cbmir_tf.data.io import atomic_write
from cbmir_tf.search.index import Index
from cbmir_tf.profiles import get_profile
from cbmir_tf.report import environment_summary, glue_value, show_figure, show_table, write_provenance
from cbmir_tf.seeding import seed_everything

settings = get_profile(profile, "scale", dry_run=dry_run)
seed_everything(seed)
warnings.simplefilter("ignore", UserWarning)  # patient-leakage warning: see the benchmark chapter

# %% [markdown]
# ## Overview
#
# An exhaustive scan compares the query with every stored vector, so its cost grows in proportion to
# the archive. Reading the vectors from memory is often what limits it, not the arithmetic, which is
# why we set each measured latency beside the bandwidth bound. Approximate indexes avoid most of the
# scan. An IVF index clusters the archive into cells with k-means and searches only the `nprobe`
# cells nearest to the query. An HNSW index links every vector to a few near neighbours in a layered
# graph and walks that graph greedily, keeping `ef_search` candidates. Both can miss true neighbours,
# so each is scored by recall@10: the share of the exact ten nearest neighbours it returns.
#
# Two descriptors show the two kinds of vector the papers use.
#
# * **HOG** at 128 pixels (cells of 32 pixels, 2 x 2 cells a block, overlapping blocks, 9 bins):
#   324 float32 numbers, 1,296 bytes per image, compared by Euclidean (L2) distance. The HOG chapter
#   compared HOG vectors by L1, but FAISS is fastest with L2, and speed is the subject here.
# * **Radon barcodes** at 64 pixels and 8 angles: 728 bits, 91 bytes per image, compared by Hamming
#   distance, the binary codes of paper 003 ({cite}`cnnc_rbc`) at a smaller size.
#
# Parameters of the indexes are `Index`'s defaults: IVF gets about sqrt(n) cells
# (`cbmir_tf.search.index.default_nlist`; 1,000 at a million), here trained on a seeded sample of 40
# vectors a cell, and HNSW 32 links a node. The defaults of the search knobs, `nprobe` = 16 and
# `ef_search` = 64, were chosen on the real features, where they reach
# recall@10 of at least 0.95 (the test suite checks this on a real subset).

# %% [markdown]
# ## Data: the real archive and its replicas
#
# This build's images: {glue:text}`source_note`, resized by each descriptor to its own input size.
# The real archive holds {glue:text}`n_real` images; {glue:text}`n_queries` test images are the
# queries; the archive sizes measured are {glue:text}`sizes`.

# %%
benchmark = load_benchmark(data_dir, max_per_class=settings["max_per_class"], seed=seed, profile=profile,
                           dry_run=dry_run)
archive, tests = benchmark.take_split("train"), benchmark.take_split("test")
picks = np.sort(np.random.default_rng(seed).choice(len(tests), min(settings["n_queries"], len(tests)),
                                                    replace=False))
database, queries = scale.real_features(archive.images), scale.real_features(tests.images[picks])
sizes = sorted({len(archive), *settings["sizes"]})
write_provenance(out_dir, {"profile": profile, "dry_run": dry_run, "seed": seed, **settings, "sizes": sizes},
                 benchmark)
glue_value("source_note", describe_source(benchmark))
glue_value("n_real", f"{len(archive):,}")
glue_value("n_queries", f"{len(picks):,}")
glue_value("sizes", ", ".join(f"{n:,}" for n in sizes))

# %% [markdown]
# ```{admonition} Beyond the real archive, the vectors are replicas
# :class: warning
# Every archive larger than the real one starts with the real vectors, unchanged. Each further row
# is a copy of a real vector (cycling through them) with a seeded perturbation (`scale.replicate`):
# Gaussian noise of 0.1 times each dimension's standard deviation for HOG, and each bit flipped with
# probability 0.01 for the barcodes. The queries are always real test images that are not in the
# archive. The largest archives thus hold about a hundred perturbed copies of each real vector. An
# exact scan does not care, since it reads every row whatever the row holds. Approximate indexes do:
# they must tell the near-duplicates apart (see the recall below).
# ```
#
# How small is "small"? The table compares the distance from a replica to its source with the
# distance from a real query to its nearest real archive image.

# %%
spread = {}
for kind, X in database.items():
    copies = scale.replicate(X, 2 * len(X), seed=seed)[len(X):]
    nearest, _ = Index("hamming" if X.dtype == np.uint8 else "l2").add(X).search(queries[kind], 1)
    spread[kind] = {"replica to its source (median)": np.median(scale.row_distances(copies, X)),
                    "real query to its nearest real image (median)": np.median(nearest)}
spread = pd.DataFrame(spread).rename(columns={"float": "HOG, L2", "binary": "Radon barcode, Hamming bits"})
show_table(spread, "replica_spread", out_dir, float_format="{:.3f}")

# %% [markdown]
# ```{glue:figure} replica_spread
# :name: tab-scale-spread
# The perturbation beside the real neighbourhood: median distance from a replica to the real vector
# it copies, and from a real query to its nearest real archive vector.
# ```
#
# ## The memory-bandwidth bound
#
# NumPy sums a 1 GiB array a few times; the best rate is the rate at which one core streams memory.
# An index of B bytes cannot be scanned faster than B divided by that rate, unless it fits in the
# processor's caches (our smallest archives do). The rate is measured once, under whatever load the
# shared machine carries at that moment, so the bound is approximate: a scan can beat it a little.
# On this machine ({glue:text}`machine`), one core read memory at {glue:text}`bandwidth`.

# %%
bandwidth = scale.memory_bandwidth()
threads = faiss.omp_get_max_threads()
machine = f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores"
glue_value("bandwidth", f"{bandwidth / 1e9:.1f} GB/s")
glue_value("machine", machine)
glue_value("threads", str(threads))

# %% [markdown]
# ## The benchmark
#
# At every size and for each descriptor, `scale.run_scale_benchmark` builds each index (on
# {glue:text}`threads` threads) and searches it on one thread. It searches all queries as one batch,
# which gives the throughput and the results that recall is scored on. It then searches the first
# `n_timing` queries one at a time for the latency. Exact FAISS search gives the ground truth.
# Besides the defaults, it also tries a few other values of `nprobe` and `ef_search`. With binary
# codes, many archive vectors can share the tenth-nearest distance, so any of them counts as a hit.

# %%
results = scale.run_scale_benchmark(database, queries, sizes, n_timing=settings["n_timing"],
                                    bandwidth=bandwidth, threads=threads, seed=seed, log=None)
Path(out_dir).mkdir(parents=True, exist_ok=True)
with atomic_write(Path(out_dir) / "scale_benchmark.csv", "w", encoding="utf-8") as handle:
    results.to_csv(handle, index=False)
defaults = results[results["default"]]

# %% [markdown]
# ## Latency against archive size

# %% tags=["hide-input"]
NAMES = {"float": "HOG (324 floats, L2)", "binary": "Radon barcode (728 bits, Hamming)"}
STYLE = {"numpy": ("NumPy brute force", "C0", "o"), "flat": ("FAISS flat (exact)", "C1", "s"),
         "ivf": ("FAISS IVF", "C2", "^"), "hnsw": ("FAISS HNSW", "C3", "D")}
fig, axes = plt.subplots(1, 2, figsize=(8.5, 3.8), sharey=True)
for ax, kind in zip(axes, NAMES):
    part = defaults[defaults["descriptor"] == kind]
    for method, (label, color, marker) in STYLE.items():
        rows = part[part["method"] == method]
        ax.plot(rows["n"], rows["median_ms"], marker=marker, color=color, label=label)
    flat = part[part["method"] == "flat"]
    ax.plot(flat["n"], flat["bound_ms"], "k--", label="bandwidth bound (flat index bytes)")
    ax.axvline(part["n_real"].max(), color="grey", lw=0.8, ls=":")
    ax.set(xscale="log", yscale="log", xlabel="archive size (vectors)")
    ax.set_title(NAMES[kind], fontsize=10)
axes[0].set_ylabel("one query, median (ms)")
fig.legend(*axes[0].get_legend_handles_labels(), fontsize=8.5, loc="upper center", ncol=3,
           bbox_to_anchor=(0.5, -0.02), frameon=False)  # below the panels, where it hides no line
show_figure(fig, "latency_vs_size", out_dir)

# %% [markdown]
# ```{glue:figure} latency_vs_size
# :name: fig-scale-latency
# Median latency of one query, on one core, against the archive size (log-log), at the default search
# settings. The dashed line is the bandwidth bound of the exact (flat) index; the dotted vertical
# line marks the end of the real archive (replicas to its right). Measured on {glue:text}`machine`
# at {glue:text}`bandwidth`.
# ```
#
# ## Recall against archive size

# %% tags=["hide-input"]
fig, axes = plt.subplots(1, 2, figsize=(8.5, 3.5), sharey=True)
for ax, kind in zip(axes, NAMES):
    part = defaults[defaults["descriptor"] == kind]
    for method in ("ivf", "hnsw"):
        rows = part[part["method"] == method]
        label, color, marker = STYLE[method]
        ax.plot(rows["n"], rows["recall"], marker=marker, color=color,
                label=f"{label}, {rows['knob'].iloc[0]} = {rows['value'].iloc[0]:.0f}")
    ax.axhline(0.95, color="grey", ls="--", lw=0.8)
    ax.axvline(part["n_real"].max(), color="grey", lw=0.8, ls=":")
    ax.set(xscale="log", xlabel="archive size (vectors)")
    ax.set_title(NAMES[kind], fontsize=10)
axes[0].set_ylabel("recall@10 against exact search")
axes[1].legend(fontsize=8.5)
show_figure(fig, "recall_vs_size", out_dir)

# %% [markdown]
# ```{glue:figure} recall_vs_size
# :name: fig-scale-recall
# Recall@10 of the approximate indexes at their default settings against the archive size. The
# dashed line is 0.95; to the right of the dotted line, the archive holds replicas.
# ```
#
# ## Recall against latency at the largest size
#
# A larger `nprobe` or `ef_search` buys recall with time. The figure shows the trade-off at the
# largest archive, with exact search as the reference point (recall 1).

# %% tags=["hide-input"]
largest = results[results["n"] == results["n"].max()]
fig, axes = plt.subplots(1, 2, figsize=(8.5, 3.6))
for ax, kind in zip(axes, NAMES):
    part = largest[largest["descriptor"] == kind]
    for method, (label, color, marker) in STYLE.items():
        rows = part[part["method"] == method].sort_values("median_ms")
        ax.plot(rows["median_ms"], rows["recall"], marker=marker, color=color, label=label)
        for _, r in rows[rows["knob"] != ""].iterrows():
            ax.annotate(f"{r['value']:.0f}", (r["median_ms"], r["recall"]), fontsize=8.5,
                        textcoords="offset points", xytext=(3, -9))
    ax.set(xscale="log", xlabel="one query, median (ms)")
    ax.set_title(f"{NAMES[kind]}, n = {part['n'].max():,}", fontsize=10)
    ax.xaxis.set_minor_formatter(NullFormatter())
axes[0].set_ylabel("recall@10")
axes[1].legend(fontsize=8.5)
show_figure(fig, "recall_vs_latency", out_dir)

# %% [markdown]
# ```{glue:figure} recall_vs_latency
# :name: fig-scale-tradeoff
# Recall@10 against the median latency of one query at the largest archive, for each setting of
# `nprobe` (IVF) and `ef_search` (HNSW), with the two exact searches.
# ```
#
# ## The numbers at the largest size

# %% tags=["hide-input"]
def index_settings(row):
    """The build parameters and the search knob of one index, e.g. ``nlist=32, nprobe=16``."""
    knob = f"{row['knob']}={row['value']:.0f}" if row["knob"] else ""
    parts = [str(row["build"]) if pd.notna(row["build"]) else "", knob]
    return ", ".join(p for p in parts if p) or "–"


SHORT = {"float": "HOG", "binary": "Radon barcode"}
table = (largest[largest["default"]]
         .assign(index_mib=lambda t: t["index_bytes"] / 2**20,
                 descriptor=lambda t: t["descriptor"].map(SHORT),
                 settings=lambda t: t.apply(index_settings, axis=1))
         .set_index(["descriptor", "method"]))
BUILD = {"settings": "settings", "build_s": "build (s)", "index_mib": "index (MiB)", "recall": "recall@10"}
SEARCH = {"bound_ms": "bandwidth bound", "median_ms": "median", "p95_ms": "95th percentile",
          "batch_ms": "batched, per query"}
show_table(table[list(BUILD)].rename(columns=BUILD), "largest_size_table", out_dir,
           column_formats={"build (s)": "{:.2f}", "index (MiB)": "{:.1f}", "recall@10": "{:.3f}"})
show_table(table[list(SEARCH)].rename(columns=SEARCH), "largest_size_latency", out_dir, float_format="{:.2f}")

# %% [markdown]
# ```{glue:figure} largest_size_table
# :name: tab-scale-largest
# Each index at the largest archive size ({glue:text}`n_max` vectors) and its default settings:
# build time (on {glue:text}`threads` threads), size in memory, and recall@10 against exact
# search. All sizes and settings are in `scale_benchmark.csv`.
# ```
#
# ```{glue:figure} largest_size_latency
# :name: tab-scale-largest-latency
# The same indexes' search times in milliseconds, on one core of {glue:text}`machine`: the bandwidth
# bound of the index's size, one query at a time (median and 95th percentile), and per query when
# all queries are searched as one batch.
# ```
#
# Two details of the tables. NumPy's exact search can order near-ties among replicas differently
# from FAISS' (the two round differently), so its recall may read just under 1. And NumPy's batched
# search of float vectors can beat FAISS flat: NumPy turns a batch into one matrix product per chunk
# of the archive. This FAISS build scans one query at a time unless a batch holds at least
# {glue:text}`blas_threshold` queries (`faiss.cvar.distance_compute_blas_threshold`).

# %% tags=["hide-input"]
at = defaults[defaults["n"] == defaults["n"].max()].set_index(["descriptor", "method"])
glue_value("n_max", f"{int(at['n'].max()):,}")
glue_value("blas_threshold", f"{faiss.cvar.distance_compute_blas_threshold:,}")
for kind in NAMES:
    for method in ("numpy", "flat", "ivf", "hnsw"):
        glue_value(f"{kind}_{method}_ms", f"{at.loc[(kind, method), 'median_ms']:.2f} ms")
    glue_value(f"{kind}_bound_ms", f"{at.loc[(kind, 'flat'), 'bound_ms']:.2f} ms")
    for method in ("ivf", "hnsw"):
        glue_value(f"{kind}_{method}_recall", f"{at.loc[(kind, method), 'recall']:.3f}")
flat = at.loc[("binary", "flat")]
glue_value("binary_flat_vs_bound", "above its bound: counting the differing bits of 91-byte codes costs more "
           "than reading them" if flat["median_ms"] > flat["bound_ms"] else
           f"within its bound: an index of {flat['index_bytes'] / 2**20:.1f} MiB can stay in the processor's "
           "caches between queries, and then it is not read from memory at all")

# %% [markdown]
# ## Summary
#
# At {glue:text}`n_max` vectors, an exact scan of the HOG vectors took {glue:text}`float_flat_ms`
# per query with FAISS and {glue:text}`float_numpy_ms` with NumPy, against a bandwidth bound of
# {glue:text}`float_bound_ms`. Once the HOG index no longer fits in the caches, exact search is a
# memory-bound scan: its latency grows in proportion to the archive and stays close to the time it
# takes to read the index. Binary codes are 14 times smaller (91 bytes against 1,296), and so is
# their bound ({glue:text}`binary_bound_ms`). FAISS' Hamming scan took {glue:text}`binary_flat_ms`,
# {glue:text}`binary_flat_vs_bound`. NumPy's bit counting took {glue:text}`binary_numpy_ms`.
#
# The approximate indexes read only a small part of the archive. IVF answered in
# {glue:text}`float_ivf_ms` (HOG) and {glue:text}`binary_ivf_ms` (barcodes), with recall@10 of
# {glue:text}`float_ivf_recall` and {glue:text}`binary_ivf_recall`. HNSW answered in
# {glue:text}`float_hnsw_ms` and {glue:text}`binary_hnsw_ms`, almost independently of the size, but
# at its default `ef_search` its recall@10 fell as replicas were added, to {glue:text}`float_hnsw_recall`
# and {glue:text}`binary_hnsw_recall`. The trade-off figure shows how large `ef_search` must be to
# win it back, and what that costs. The defaults that reach 0.95 on the real archive are not enough for
# a much larger one: the search knobs have to be tuned at the size they will serve.
#
# Two caveats bound these conclusions. Beyond the {glue:text}`n_real` real vectors the archive holds
# replicas, so recall at large sizes measures how well an index separates near-duplicates of the same
# image. It says little about how it would rank a million distinct images, and the recall-latency
# figure shows what a larger `nprobe` or `ef_search` costs. And all timings come from one core of a
# shared machine; a server with more cores would search batches of queries in parallel.

# %% tags=["hide-input"]
print(environment_summary())
print(f"faiss {faiss.__version__}; build threads {threads}, search threads 1; "
      f"read bandwidth {bandwidth / 1e9:.1f} GB/s (one core)")
