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
from cbmir_tf.search.index import BLAS_MIN_QUERIES, Index
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
# vectors a cell, and HNSW 32 links a node. No single `nprobe` or `ef_search` suits every archive:
# how many cells or candidates a search must visit depends on how the vectors crowd together, and
# that changes as the archive grows. So each index sets its own knob once it holds its vectors
# (`Index.calibrate`, described below), and promises recall@10 of at least 0.95 with it.

# %% [markdown]
# ## Data: the real archive and its replicas
#
# This build's images: {glue:text}`source_note`, resized by each descriptor to its own input size.
# The real archive holds {glue:text}`n_real` images; {glue:text}`n_queries` test images are the
# queries, and {glue:text}`n_calibration` other test images calibrate the approximate indexes (see
# below); the archive sizes measured are {glue:text}`sizes`.

# %%
benchmark = load_benchmark(data_dir, max_per_class=settings["max_per_class"], seed=seed, profile=profile,
                           dry_run=dry_run)
archive, tests = benchmark.take_split("train"), benchmark.take_split("test")
picks, tune = scale.split_test_images(len(tests), settings["n_queries"], settings["n_calibration"], seed)
database, queries = scale.real_features(archive.images), scale.real_features(tests.images[picks])
calibration = scale.real_features(tests.images[tune])
sizes = sorted({len(archive), *settings["sizes"]})
write_provenance(out_dir, {"profile": profile, "dry_run": dry_run, "seed": seed, **settings, "sizes": sizes},
                 benchmark)
glue_value("source_note", describe_source(benchmark))
glue_value("n_real", f"{len(archive):,}")
glue_value("n_queries", f"{len(picks):,}")
glue_value("n_calibration", f"{len(tune):,}")
glue_value("target_recall", f"{settings['target_recall']:.2f}")
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
# Besides the calibrated settings, it also tries a few other values of `nprobe` and `ef_search`. With
# binary codes, many archive vectors can share the tenth-nearest distance, so any of them counts as a hit.

# %%
results = scale.run_scale_benchmark(database, queries, sizes, n_timing=settings["n_timing"],
                                    bandwidth=bandwidth, threads=threads, seed=seed, calibration=calibration,
                                    target_recall=settings["target_recall"], log=None)
Path(out_dir).mkdir(parents=True, exist_ok=True)
with atomic_write(Path(out_dir) / "scale_benchmark.csv", "w", encoding="utf-8") as handle:
    results.to_csv(handle, index=False)
defaults = results[results["default"]]

# %% [markdown]
# ## Calibrating `nprobe` and `ef_search`
#
# Once an IVF or HNSW index holds its vectors, it looks for the cheapest setting of its knob that
# keeps its promise of recall@10 >= 0.95. It takes a sample of queries, finds their true ten nearest
# neighbours by scanning every stored vector, and tries the knob at 1, 2, 4, 8, ... (IVF) or 10, 20,
# 40, ... (HNSW) until the approximate answers hold enough of the true neighbours. "Enough" is
# judged with the sampling error in mind: the mean recall over the sample, less 1.64 times its
# standard error, must reach 0.95, so that new queries like the sample reach it too (with 95 %
# confidence), not only the sample itself. A few bisection steps between the last two tries then
# bring the value close to the smallest that passes. The index keeps that value as its default, and
# its saved manifest records it with the recall measured, the sample size and the seed.
#
# Where do the sample queries come from? By default from the index itself. IVF draws a thousand of
# its stored vectors and leaves each out of its own answer. HNSW keeps a sample of its vectors out of
# the graph until the calibration is done, because a stored vector is an easy query for a graph that
# links it straight to its neighbours. On the real archive this is sound. On the grown archives it is
# not: each stored vector there has many near-copies, its ten nearest neighbours are those copies,
# and they share its IVF cell or its corner of the graph. The calibration then sees a high recall at
# a small setting, while a new image, whose neighbours are copies of several different real images,
# gets far less. The benchmark therefore calibrates every approximate index a second time, on the
# {glue:text}`n_calibration` real test images that are never queries, and that setting is the one
# measured in the rest of this chapter. The table shows both calibrations at every size, and what
# each gave the real queries.
#
# One more margin. The queries are a different sample from the calibration images, and with an
# approximate index a few hard queries move the mean recall by a point or two. A setting that just
# clears 0.95 on one sample can fall short on the other. This chapter therefore asks the calibration
# for {glue:text}`target_recall` (the profile's `target_recall`), so that the real queries clear 0.95.

# %% tags=["hide-input"]
SHORT = {"float": "HOG", "binary": "Radon barcode"}
approx = results[results["method"].isin(["ivf", "hnsw"])]
approx = approx.assign(descriptor=approx["descriptor"].map(SHORT))
keys = ["descriptor", "n", "method"]
own = approx[approx["stored"]].set_index(keys)
held = approx[approx["default"]].set_index(keys)
calibration_table = pd.DataFrame({
    "knob": held["knob"],
    "own vectors: value": own["value"], "own vectors: recall@10 of the queries": own["recall"],
    "held-out images: value": held["value"], "held-out images: their recall@10": held["heldout_recall"],
    "held-out images: recall@10 of the queries": held["recall"], "calibration (s)": held["heldout_s"],
}).rename_axis(["descriptor", "archive size", "index"])
show_table(calibration_table, "calibration_table", out_dir,
           column_formats={c: "{:.3f}" for c in calibration_table.columns if "recall" in c}
           | {"calibration (s)": "{:.1f}"})

# %% [markdown]
# ```{glue:figure} calibration_table
# :name: tab-scale-calibration
# The search knob each approximate index chose for recall@10 >= {glue:text}`target_recall`, calibrated on its own vectors
# and on {glue:text}`n_calibration` held-out real images, with the recall@10 that the
# {glue:text}`n_queries` real queries got at each setting, and the recall the held-out images
# measured (the lower bound of its confidence interval is the target or more). The time is that of the
# second calibration, including its exact search of the archive, on {glue:text}`threads` threads.
# ```

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
        label, color, marker = STYLE[method]
        rows = part[part["method"] == method]
        ax.plot(rows["n"], rows["recall"], marker=marker, color=color,
                label=f"{label}, calibrated on held-out images")
        rows = results[(results["descriptor"] == kind) & (results["method"] == method) & results["stored"]]
        ax.plot(rows["n"], rows["recall"], marker=marker, color=color, ls=":", mfc="none",
                label=f"{label}, calibrated on its own vectors")
    ax.axhline(0.95, color="grey", ls="--", lw=0.8)
    ax.axvline(part["n_real"].max(), color="grey", lw=0.8, ls=":")
    ax.set(xscale="log", xlabel="archive size (vectors)")
    ax.set_title(NAMES[kind], fontsize=10)
axes[0].set_ylabel("recall@10 against exact search")
fig.legend(*axes[0].get_legend_handles_labels(), fontsize=8.5, loc="upper center", ncol=2,
           bbox_to_anchor=(0.5, -0.02), frameon=False)
show_figure(fig, "recall_vs_size", out_dir)

# %% [markdown]
# ```{glue:figure} recall_vs_size
# :name: fig-scale-recall
# Recall@10 of the real queries against the archive size, for the approximate indexes with their
# knob calibrated on held-out real images (solid; the setting every other figure and table uses) and
# on their own vectors (dotted). The dashed line is 0.95; to the right of the dotted vertical line,
# the archive holds replicas.
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
# from FAISS' (the two round differently), so its recall may read just under 1. And a batch of float
# queries is searched far faster per query than a single one, well under the bandwidth bound: both
# exact searches turn the batch into matrix products, one per block of the archive, so that each block
# is read once for all the queries. FAISS on its own would do so only when queries times dimension
# reaches `faiss.cvar.distance_compute_blas_threshold` ({glue:text}`blas_threshold` in this build:
# {glue:text}`blas_queries` HOG queries), and below that scans the archive once per query. `Index`
# lowers the switch to {glue:text}`blas_min_queries` queries, about where matrix products start to
# pay. With it, FAISS searched the batch of HOG queries at {glue:text}`n_max` vectors in
# {glue:text}`float_flat_batch` per query, and NumPy in {glue:text}`float_numpy_batch`. Binary codes
# have no matrix-product path: FAISS compares them one query at a time, batched or not.

# %% tags=["hide-input"]
at = defaults[defaults["n"] == defaults["n"].max()].set_index(["descriptor", "method"])
glue_value("n_max", f"{int(at['n'].max()):,}")
glue_value("blas_threshold", f"{faiss.cvar.distance_compute_blas_threshold:,}")
blas_queries = -(-faiss.cvar.distance_compute_blas_threshold // database["float"].shape[1])  # rounded up
glue_value("blas_queries", f"{blas_queries:,}")
glue_value("blas_min_queries", str(BLAS_MIN_QUERIES))
for kind in NAMES:
    for method in ("numpy", "flat", "ivf", "hnsw"):
        glue_value(f"{kind}_{method}_ms", f"{at.loc[(kind, method), 'median_ms']:.2f} ms")
        glue_value(f"{kind}_{method}_batch", f"{at.loc[(kind, method), 'batch_ms']:.2f} ms")
    glue_value(f"{kind}_bound_ms", f"{at.loc[(kind, 'flat'), 'bound_ms']:.2f} ms")
    for method in ("ivf", "hnsw"):
        glue_value(f"{kind}_{method}_recall", f"{at.loc[(kind, method), 'recall']:.3f}")
        glue_value(f"{kind}_{method}_value", f"{at.loc[(kind, method), 'value']:,.0f}")
approx_defaults = defaults[defaults["method"].isin(["ivf", "hnsw"])]
glue_value("min_recall", f"{approx_defaults['recall'].min():.3f}")
glue_value("min_own_recall", f"{results.loc[results['stored'], 'recall'].min():.3f}")
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
# The approximate indexes read only a small part of the archive. With `nprobe` calibrated to
# {glue:text}`float_ivf_value` (HOG) and {glue:text}`binary_ivf_value` (barcodes), IVF answered in
# {glue:text}`float_ivf_ms` and {glue:text}`binary_ivf_ms`, with recall@10 of
# {glue:text}`float_ivf_recall` and {glue:text}`binary_ivf_recall`. With `ef_search` calibrated to
# {glue:text}`float_hnsw_value` and {glue:text}`binary_hnsw_value`, HNSW answered in
# {glue:text}`float_hnsw_ms` and {glue:text}`binary_hnsw_ms`, with recall@10 of
# {glue:text}`float_hnsw_recall` and {glue:text}`binary_hnsw_recall`. Over every size, the lowest
# recall@10 of the real queries at a calibrated setting was {glue:text}`min_recall`, against the
# target of 0.95. The calibration had to raise both knobs as the archive grew (see the calibration
# table): a setting that suffices for the real archive is not enough for a much larger one, so the
# knobs are set for the archive they serve, once it is built. Calibrated on the index's own vectors
# instead, the knobs stayed low on the grown archives, and the real queries' recall@10 fell to
# {glue:text}`min_own_recall`: queries that resemble the archive too closely promise too much.
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
