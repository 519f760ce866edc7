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
# # All methods side by side
#
# **The question:** which of the book's methods should I use on my archive, and what does it cost?
# Each paper chapter reproduced one paper under that paper's own protocol, on its own subset and with
# its own metric. This chapter runs **every method on the same split** of the open multi-axis
# benchmark, in one run, and scores them all the same way.
#
# **Methods** (chapter and paper in brackets):
#
# * HOG, L1 distance (chapter 2; paper 002, {cite}`barac_cbmir`);
# * RootSIFT bag of visual words with TF-IDF, cosine distance (paper 002);
# * ImageNet SqueezeNet features, L2 (paper 002), and the paper's final pair: SqueezeNet hits
#   re-ranked by HOG;
# * binary codes of a shallow CNN re-ranked by Radon barcodes, CNNC+RBC (paper 003, {cite}`cnnc_rbc`);
# * ResNet50V2-FPN pooled pyramid vectors, L2 (paper 000, {cite}`fpn_retrieval`);
# * InRes-Net hash codes searched coarse to fine (paper 001, {cite}`inresnet_hashing`);
# * the last hidden layer of the VGG-style configuration the profile names (paper 004,
#   {cite}`vgg_configs`; `C`, the paper's best, by default).
#
# **Scores**, for the test queries against the training archive, a hit being relevant when it has
# the query's exact code: mP@1 and mP@10; mAP@10 in paper 002's sense (the mean of P@1..P@10) and
# in the usual sense (average precision of the top 10, normalised by min(R, 10)); paper 002's mAP@10
# for "same region and modality"; the hierarchical (IRMA-style) error of the first hit, per query;
# the bytes each method stores per archive image; indexing throughput; and the end-to-end latency
# of one query (reading pixels, describing, searching, re-ranking), median and 95th percentile.
#
# The papers' own headline numbers sit in the last column. They come from other datasets (IRMA,
# LIDC-IDRI, a private set) and other metrics, so they orient; they do not rank.

# %% tags=["parameters"]
profile = "cpu"  # smoke | cpu | paper
dry_run = False  # True: the profile capped to a few images and training steps (`make dry-run`)
data_dir = None  # None: $CBMIR_DATA_DIR, else the data registry's cache and downloads (`cbmir-data list`)
irma_root = None  # folder of the ImageCLEFmed 2009 images, to run the same comparison on IRMA too
seed = 0
out_dir = "outputs/side_by_side"
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
import time
import warnings

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.ticker import LogLocator, MaxNLocator, NullFormatter, ScalarFormatter

from cbmir_tf import plots
from cbmir_tf.data.benchmark import benchmark_split, describe_source
from cbmir_tf.data.io import atomic_write
from cbmir_tf.data.irma_images import load_irma_2009
from cbmir_tf.evaluation import first_hit_error, metrics_table, time_per_query
from cbmir_tf.methods import LearnedMethod, from_profile
from cbmir_tf.methods.reranked import Reranked
from cbmir_tf.profiles import get_profile
from cbmir_tf.report import environment_summary, glue_value, show_figure, show_table, write_provenance
from cbmir_tf.seeding import seed_everything

settings = get_profile(profile, "side_by_side", dry_run=dry_run)
seed_everything(seed)
warnings.simplefilter("ignore", UserWarning)  # patient-leakage warning: see the benchmark chapter
machine = f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPU cores"
# a dry run keeps its networks beside its outputs, never in the user's model cache
cache = os.path.join(out_dir, "models") if dry_run else True

# %% [markdown]
# ## One split for everyone
#
# The archive is the benchmark's training split and the queries are its test split (a per-code
# subset under the `smoke` profile). Methods that learn (the BoVW vocabulary and the four networks)
# learn from the archive only, each holding out part of it for early stopping; the test queries are
# seen only at search time. All networks are trained on the benchmark's codes, so paper 004's network
# learns codes here rather than the paper's five anatomical groups. This build's data:
# {glue:text}`source_note`; the archive holds {glue:text}`n_archive` images, and
# {glue:text}`n_queries` test images query it, over {glue:text}`n_codes` codes.

# %%
benchmark, archive, queries = benchmark_split(data_dir, profile=profile, seed=seed, dry_run=dry_run)
write_provenance(out_dir, {"profile": profile, "dry_run": dry_run, "seed": seed, **settings}, benchmark)
glue_value("source_note", describe_source(benchmark))
glue_value("n_archive", f"{len(archive):,}")
glue_value("n_queries", f"{len(queries):,}")
glue_value("n_codes", str(len(benchmark.class_names)))


# %% [markdown]
# ## The methods
#
# `cbmir_tf.methods` puts every method behind the same three calls: `fit(images, labels)` learns
# what it needs from the archive, `add(images)` describes and indexes the archive, and
# `search(images, k)` answers queries from their pixels. Each method takes its settings from the
# profile (`cbmir_tf.profiles.method_settings`), the same settings its own chapter uses. A network
# is trained once: its paper chapter trained it on this same archive, and `fit` here loads it from
# the model cache (the *trained by* column says so); only a method no chapter trained on this
# archive (InRes-Net hashing, whose chapter works on lung CT) is trained here, and then kept for the
# next run. The re-ranked pair reuses the SqueezeNet and HOG methods already built, so its costs are
# the sum of theirs.

# %%
KEYS = ("hog", "bovw", "pretrained_cnn", "cnn_hog", "cnnc_rbc", "resnet50v2_fpn", "inres_hashing", "vgg_configs")


def build_methods():
    methods = {key: from_profile(key, profile, dry_run=dry_run, seed=seed) for key in KEYS if key != "cnn_hog"}
    pair = from_profile("cnn_hog", profile, dry_run=dry_run)
    methods["cnn_hog"] = Reranked(methods["pretrained_cnn"], methods["hog"], pair.k_prep)
    return {key: methods[key] for key in KEYS}


def fit_and_describe(key, method, described):
    """Fit ``method`` on the archive and describe archive and queries (a pair reuses its parts')."""
    if isinstance(method, Reranked):
        first, second = described["pretrained_cnn"], described["hog"]
        parts = {"first": first, "second": second}
        return {side: {"first": first[side], "second": second[side]} for side in ("archive", "queries")} | {
            "fit (s)": first["fit (s)"] + second["fit (s)"], "add (s)": first["add (s)"] + second["add (s)"],
            "trained by": "", "parts": parts}
    start = time.perf_counter()
    if isinstance(method, LearnedMethod):
        method.fit(archive.images, archive.labels, cache=cache)
        fit_s, trained_by = method.train_s_, ("an earlier run (model cache)" if method.from_cache_ else "this chapter")
    else:
        method.fit(archive.images, archive.labels)
        fit_s, trained_by = time.perf_counter() - start, ""
    start = time.perf_counter()
    archive_described = method.describe(archive.images)
    # a learned method's archive descriptors may come from the cache: count the original time
    add_s = method.describe_s_ if isinstance(method, LearnedMethod) else time.perf_counter() - start
    return {"archive": archive_described, "queries": method.describe(queries.images), "fit (s)": fit_s,
            "add (s)": add_s, "trained by": trained_by}


def latency(method):
    """Median and 95th percentile of one query end to end (pixels to hits), after one warm-up query."""
    rng = np.random.default_rng(seed)
    picks = rng.choice(len(queries), min(settings["n_timing_queries"], len(queries)), replace=False)
    method.search(queries.images[picks[:1]], settings["k"])  # warm-up (graph tracing)
    return time_per_query(lambda i: method.search(queries.images[picks[i]:picks[i] + 1], settings["k"]),
                          len(picks))


def compare():
    """One row of scores and costs per method; returns the table, the hits and the methods."""
    rows, all_hits, described = {}, {}, {}
    methods = build_methods()
    k = settings["k"]
    for key, method in methods.items():
        described[key] = fit_and_describe(key, method, described)
        method.add_described(described[key]["archive"])
        _, hits = method.search_described(described[key]["queries"], k)
        timing = latency(method)
        scores = metrics_table(queries.codes, archive.codes, hits, k, axes=("class", "both"))
        error = first_hit_error(queries.codes, archive.codes, hits)
        add_s = described[key]["add (s)"]
        rows[method.name] = {"paper": method.paper, **scores.loc["class"].to_dict(),
                             f"mAP@{k} (paper 002), region+modality": scores.loc["both", f"mAP@{k} (paper 002)"],
                             "hierarchical error / query": error["error_mean"],
                             "bytes / image": method.bytes_per_image, "training (s)": described[key]["fit (s)"],
                             "trained by": described[key]["trained by"],
                             "indexing (img/s)": len(archive) / add_s if add_s > 0 else np.nan,
                             "query median (ms)": timing["median_ms"], "query p95 (ms)": timing["p95_ms"]}
        all_hits[method.name] = hits
    return pd.DataFrame.from_dict(rows, orient="index"), all_hits, methods


table, hits, methods = compare()

# %% [markdown]
# ## How the networks trained
#
# Training and validation loss per epoch of the four networks (the dot marks the epoch whose
# weights were kept; the legend says why training stopped and how long it took). Under `cpu` each
# network trains on the whole archive until its validation loss stops falling or its time budget
# (written in the profile) runs out.

# %% tags=["hide-input"]
runs = {f"{m.name}: {net}": run for m in methods.values() if isinstance(m, LearnedMethod)
        for net, run in m.training_.items()}
fig = plots.training_curves(runs)
fig.axes[0].xaxis.set_major_locator(MaxNLocator(integer=True))  # epochs are whole numbers
show_figure(fig, "training_curves", out_dir)

# %% [markdown]
# ```{glue:figure} training_curves
# :name: fig-side-by-side-training
# Training (solid) and validation (dashed) loss of each network of the comparison.
# ```
#
# %% [markdown]
# ## The tables
#
# The scores and the costs come in two tables, one row per method in each; every column of both is in
# `side_by_side_all.csv` beside the chapter's other outputs. The papers' own figures, in a third
# table: paper 002's mAP for "same region and modality" on its private set of 38,000
# images (Table III); paper 003's summed IRMA error over the 1,733 ImageCLEF 2009 test images
# (Table 2); paper 000's retrieval IRMA error over the 1,000 IRMA 2007 test images; paper 001's
# per-class mAP of FC3 features on LIDC-IDRI (Table 3, lowest to highest); and paper 004's
# classification accuracy of network C on five anatomical groups of IRMA radiographs (Table 4).

# %%
PAPER_FIGURES = {
    "hog": "mAP 0.815 (region+modality; private 38k set)",
    "bovw": "mAP 0.702 (region+modality; private 38k set)",
    "pretrained_cnn": "mAP 0.882 (region+modality; private 38k set)",
    "cnn_hog": "mAP 0.884 (region+modality; private 38k set)",
    "cnnc_rbc": "IRMA error 224.13 over 1,733 queries (0.129 / query; ImageCLEF 2009)",
    "resnet50v2_fpn": "retrieval IRMA error 32.2 over 1,000 queries (0.032 / query; IRMA 2007)",
    "inres_hashing": "per-class mAP 0.520-0.846 (FC3; LIDC-IDRI)",
    "vgg_configs": "accuracy 92.69 % (network C; IRMA, 5 groups)",
}
table["paper's figure"] = [PAPER_FIGURES[key] for key in methods]

# %% tags=["hide-input"]
k = settings["k"]
with atomic_write(os.path.join(out_dir, "side_by_side_all.csv"), "w", encoding="utf-8") as handle:
    table.assign(hardware=machine).to_csv(handle)
SCORES = {"paper": "paper", "mP@1": "mP@1", f"mP@{k}": f"mP@{k}", f"mAP@{k} (AP)": f"mAP@{k} (AP)",
          f"mAP@{k} (paper 002)": f"mAP@{k} (paper 002)",
          f"mAP@{k} (paper 002), region+modality": f"mAP@{k} (paper 002), region + modality",
          "hierarchical error / query": "first-hit hierarchical error"}
COSTS = {"bytes / image": "{:,.0f}", "training (s)": "{:,.1f}", "trained by": "{}",
         "indexing (img/s)": "{:,.1f}", "query median (ms)": "{:,.1f}", "query p95 (ms)": "{:,.1f}"}
show_table(table[list(SCORES)].rename(columns=SCORES), "side_by_side", out_dir, float_format="{:.3f}")
costs = table[list(COSTS)].replace({"trained by": {"": "–"}})
show_table(costs, "side_by_side_costs", out_dir, column_formats=COSTS)
headline = table[["paper", "paper's figure"]].rename(columns={"paper's figure": "paper's headline figure"})
show_table(headline, "side_by_side_papers", out_dir)
best = table[f"mAP@{k} (AP)"].idxmax()
fastest = table["query median (ms)"].idxmin()
glue_value("best_method", best)
glue_value("best_map", f"{table.loc[best, f'mAP@{k} (AP)']:.3f}")
glue_value("fastest_method", fastest)
glue_value("machine", machine)

# %% [markdown]
# ```{glue:figure} side_by_side
# :name: tab-side-by-side
# Every method on the same split of the open benchmark: exact-code precision and mAP (in the usual
# sense and in paper 002's), paper 002's mAP for the same region and modality, and the hierarchical
# error of the first hit (lower is better). Best mAP@10 (AP): {glue:text}`best_method`
# ({glue:text}`best_map`).
# ```
#
# ```{glue:figure} side_by_side_costs
# :name: tab-side-by-side-costs
# What each method costs on {glue:text}`machine`: bytes stored per archive image, training time
# (and whether this chapter or an earlier run trained the network), indexing throughput, and the
# end-to-end latency of one query (median and 95th percentile).
# ```
#
# ```{glue:figure} side_by_side_papers
# :name: tab-side-by-side-papers
# The papers' own headline figures, for orientation only: each comes from the paper's data and
# metric, not from the split above.
# ```
#
# ## Accuracy against latency
#
# Up and to the left is better. The marker area grows with the bytes stored per image.

# %% tags=["hide-input"]
fig, ax = plt.subplots(figsize=(7, 4.2))
colours = plt.cm.tab10(np.arange(len(table)))
for (name, row), colour in zip(table.iterrows(), colours):
    ax.scatter(row["query median (ms)"], row[f"mAP@{k} (AP)"], s=20 + 60 * np.log10(row["bytes / image"]),
               color=colour, edgecolor="black", linewidth=0.5, label=f"{name} ({row['paper']})")
    ax.errorbar(row["query median (ms)"], row[f"mAP@{k} (AP)"], color=colour, lw=0.8,
                xerr=[[0], [max(row["query p95 (ms)"] - row["query median (ms)"], 0)]])
ax.set_xscale("log")
ax.xaxis.set_major_locator(LogLocator(subs=(1, 2, 5)))
ax.xaxis.set_major_formatter(ScalarFormatter())
ax.xaxis.set_minor_formatter(NullFormatter())
ax.set(xlabel="one query, end to end: median ms (bar to the 95th percentile)",
       ylabel=f"mAP@{k} (AP), exact code", title=f"{len(queries)} test queries, archive of {len(archive)}")
ax.grid(alpha=0.3, which="both")
ax.legend(fontsize=8.5, loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=2, frameon=False)
fig.tight_layout()
show_figure(fig, "accuracy_latency", out_dir)

# %% [markdown]
# ```{glue:figure} accuracy_latency
# :name: fig-accuracy-latency
# mAP@10 (AP, exact code) against the median end-to-end latency of one query, per method; the bar
# reaches the 95th percentile and the marker area grows with the bytes stored per image.
# ```
#
# ## IRMA, when you have it
#
# ImageCLEFmed 2009 images cannot be redistributed. With `irma_root` pointing at them (the
# official folder layout, see `cbmir_tf.data.irma_images`), the same comparison runs on the IRMA
# training images as archive and its 1,733 test images as queries, scored on the IRMA codes. In this
# build it {glue:text}`irma_note`.

# %%
if irma_root:
    irma = load_irma_2009(irma_root, split="all")
    archive, queries = irma.take_split("train"), irma.take_split("test")
    irma_table, _, _ = compare()
    show_table(irma_table, "side_by_side_irma", out_dir, float_format="{:.3f}")
glue_value("irma_note", "ran, and its scores are in side_by_side_irma.csv" if irma_root else
           "did not run (no IRMA images were given)")

# %% [markdown]
# ## Reading the tables
#
# * **Accuracy.** On this benchmark's exact codes the best mAP@10 came from
#   {glue:text}`best_method`. Region and modality are easy here for every method (see the HOG
#   chapter); the exact finding is what separates them.
# * **Cost.** HOG, BoVW and the ImageNet SqueezeNet need no labels (BoVW only clusters the
#   archive's local features); HOG needs no network at all. {glue:text}`fastest_method` answered a
#   query fastest. The four trained networks pay their training once and then describe a query in
#   one forward pass.
# * **Storage.** Binary codes (CNNC, the Radon barcode, the InRes-Net hash) cost a few hundred
#   bytes or less per image; the float vectors a few kilobytes. The scale chapter shows what that
#   means for a million images.
# * **Profiles.** Under `smoke` the networks train for a few steps on ten images per code, so
#   their rows say nothing about the methods. Under `cpu` (the default of `make book`) each network
#   trains on the whole archive until its validation loss stops improving or its time budget runs
#   out (the curves above), mostly with 64 px inputs and narrower layers than the papers'; the
#   ResNet50V2-FPN cannot converge within its budget on 2 CPU cores (see its chapter), so its row
#   understates the method. The `paper` profile trains every network with its paper's sizes and
#   schedule, on a GPU.
#
# To apply a label-free method to your own archive, use the `cbmir` command (see the README):
# `cbmir index`, `cbmir query` and `cbmir evaluate` run the methods of this table that need no labels.

# %% tags=["hide-input"]
print(environment_summary())
