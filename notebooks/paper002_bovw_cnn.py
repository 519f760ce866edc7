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
# # Paper 002: bag of visual words, pretrained CNN descriptors and re-ranking
#
# **Paper:** D. Barać et al., a content-based retrieval system for radiology images that compares
# a SIFT bag of visual words, HOG and ImageNet-pretrained CNN descriptors, and re-ranks the hits of
# one method with another (paper 002 of this book, {cite}`barac_cbmir`).
#
# **Reproduced here:** the system (Fig. 1), the images per region and per modality (Tables I and
# II), the vocabulary-size sweeps for SIFT and RootSIFT (Figs. 2 and 3), the CNN comparison (Fig. 6),
# re-ranking for every ordered pair of methods over a grid of `k_prep` (Figs. 7 and 8), the test mP@k
# for k = 1..10 (Fig. 9), mAP by region, modality and both (Table III), the offline time (Table IV),
# the time per query (Table V), one example query per anatomical region with its top five hits
# (Figs. 10 and 11, Appendix A), and the paper's main claims tested on our queries. The HOG sweeps of
# Figs. 4 and 5 are in the {doc}`hog_retrieval` chapter; this chapter uses the HOG configuration the
# paper chose there.
#
# **Data:** the open multi-axis benchmark (its eight sets: MR, CT, X-ray and ultrasound; brain, chest,
# abdomen, knee and breast; or, without them, its MedMNIST fallback), not the paper's private set of
# 38,000 radiology images of 24 regions and 6 modalities. The paper's numbers are printed beside ours
# for orientation only: the data sets differ.
#
# ## Overview
#
# The paper's system has an offline phase, which describes every archive image once, and an online
# phase, which describes the query and returns the archive images whose descriptors are nearest. Its
# three descriptors are:
#
# * **Bag of visual words (BoVW).** SIFT finds 50 to 350 keypoints per image and describes the
#   gradients around each by a 128-d histogram. k-means over the archive's descriptors gives a
#   vocabulary of visual words; an image becomes the histogram of the words its keypoints fall on,
#   re-weighted by TF-IDF (the paper's Eq. 1) and compared by cosine distance. RootSIFT, the square
#   root of the L1-normalised SIFT vector, replaces SIFT's Euclidean geometry by the Hellinger kernel.
# * **HOG.** One histogram of oriented gradients per image, compared by L1 distance (chapter
#   {doc}`hog_retrieval`).
# * **CNN.** The last feature map of a network pretrained on ImageNet, without any training on the
#   radiology images, shrunk by a 5 x 5 average pooling and compared by L2 distance.
#
# Re-ranking takes the `k_prep` nearest images under one descriptor and re-sorts them under another.
# The figure below redraws the paper's Fig. 1 with the settings the paper finally chose.

# %% tags=["parameters"]
profile = "cpu"  # smoke | cpu | paper
dry_run = False  # True: the profile capped to a few images and training steps (`make dry-run`)
data_dir = None  # None: $CBMIR_DATA_DIR, else the data registry's cache and downloads (`cbmir-data list`)
seed = 0
out_dir = "outputs/paper002_bovw_cnn"
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
import itertools
import math
import os
import platform
import time
import warnings

import keras
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from cbmir_tf import diagrams, plots
from cbmir_tf.data.benchmark import describe_source, load_benchmark, source_label
from cbmir_tf.data.dataset import validation_split
from cbmir_tf.evaluation import retrieval_report, search_database, time_per_query
from cbmir_tf.features.bovw import BoVWDescriptor, root_sift
from cbmir_tf.features.cnn import CNNDescriptor
from cbmir_tf.features.hog import HOGDescriptor
from cbmir_tf.metrics import axis_relevance
from cbmir_tf.search.index import Index
from cbmir_tf.profiles import get_profile
from cbmir_tf.report import (claim, environment_summary, glue_value, show_claims, show_figure, show_table,
                             write_provenance)
from cbmir_tf.seeding import seed_everything
from cbmir_tf.search.rerank import rerank_hits, rerank_sweep

settings = get_profile(profile, "bovw_cnn", dry_run=dry_run)
seed_everything(seed)  # seeds and deterministic TF ops
warnings.simplefilter("ignore", UserWarning)  # patient-leakage warning: see the benchmark chapter
warnings.filterwarnings("ignore", message="IProgress not found")  # tqdm's notice in a notebook kernel
P_COLS = [f"P@{k}" for k in range(1, 11)]
AXES = ["region", "modality", "both"]
settings

# %% tags=["hide-input"]
SYSTEM = {  # key: (column, row, text); the offline phase above, the online phase below
    "archive": (0, 3.2, "Archive images\ntraining set, 256 px"),
    "sift": (1, 4.4, "SIFT / RootSIFT\n50-350 keypoints,\n128 values each"),
    "vocab": (2, 4.4, "Visual vocabulary\nk-means, 4,000 words"),
    "bovw": (3, 4.4, "BoVW histograms\nTF-IDF weighted"),
    "hog": (1, 3.2, "HOG\n64 px cells, 128 px blocks,\nstride 64, 15 bins"),
    "cnn": (1, 2.0, "Pretrained CNN\nSqueezeNet (ImageNet),\n5 x 5 average pooling"),
    "store": (4, 3.2, "Stored descriptors\none array per method"),
    "query": (0, 0.0, "Query image\nand k"),
    "describe": (1, 0.0, "Query descriptor\nBoVW, HOG or CNN"),
    "search": (2, 0.0, "Nearest search\ndistance to every stored\nvector: cos / L1 / L2"),
    "rerank": (3, 0.0, "Re-ranking (optional)\nk_prep hits re-sorted\nby a second method"),
    "result": (4, 0.0, "Top-k images\nnearest first"),
}
fig = diagrams.block_diagram(
    {key: (3.3 * col, y, text) for key, (col, y, text) in SYSTEM.items()},
    [("archive", "sift"), ("sift", "vocab"), ("vocab", "bovw"), ("archive", "hog"), ("archive", "cnn"),
     ("bovw", "store"), ("hog", "store"), ("cnn", "store"), ("query", "describe"), ("describe", "search"),
     ("store", "search", "loaded at start"), ("search", "rerank", "k_prep"), ("rerank", "result")],
    kinds={"archive": "data", "query": "data", "sift": "model", "vocab": "model", "bovw": "model",
           "hog": "model", "cnn": "model", "describe": "model", "store": "search", "search": "search",
           "rerank": "search", "result": "output"},
    box_size=(2.6, 1.0), scale=0.72)
ax = fig.axes[0]
for y, phase in ((5.15, "offline phase: describe the archive once"), (0.75, "online phase: one query")):
    ax.text(-1.35, y, phase, fontsize=9, fontstyle="italic", color="#444444", ha="left", va="center")
ax.set_ylim(-0.75, 5.4)
show_figure(fig, "fig1_system", out_dir)

# %% [markdown]
# ```{glue:figure} fig1_system
# :name: fig-002-system
# The retrieval system of the paper's Fig. 1, redrawn. Offline, every archive image is described
# three ways (a bag of SIFT or RootSIFT words over a k-means vocabulary, one HOG vector, and a
# pooled SqueezeNet feature map) and the vectors are stored. Online, the query is described the same
# way and compared with every stored vector; the `k_prep` nearest may be re-sorted by a second
# descriptor before the top k are returned. The settings written in the boxes are the paper's final
# choices; this chapter chooses its own on validation queries.
# ```

# %% [markdown]
# ## Data and protocol
#
# The paper chose every parameter on a validation set, 20 % of each anatomical region of its
# training images, which queried the other 80 %; the chosen configuration then ran once on the test
# set with the whole training set as the archive. We do the same with a stratified 20 % of each
# benchmark code. Under the `smoke` and `cpu` profiles everything runs on a per-class subset
# (`max_per_class` images per code and split, printed below); `paper` uses every image. This build's
# data: {glue:text}`source_note`.
#
# Every descriptor is computed once for the archive (training and validation images) and once for
# the test queries; the sweeps use the archive's rows. The archive pass is timed: it is the offline
# phase of Table IV.

# %%
benchmark = load_benchmark(data_dir, max_per_class=settings["max_per_class"], seed=seed, profile=profile,
                           dry_run=dry_run)
data = validation_split(benchmark, settings["val_fraction"], seed)
source_note = describe_source(benchmark)
glue_value("source_note", source_note)
glue_value("image_px", data.images.shape[1])
glue_value("n_regions", pd.Series(data.codes).str.split("-").str[1].nunique())
glue_value("n_modalities", pd.Series(data.codes).str.split("-").str[0].nunique())
archive, queries = data.take_split("train", "val"), data.take_split("test")
sweep_db, sweep_q = np.flatnonzero(archive.split == "train"), np.flatnonzero(archive.split == "val")
write_provenance(out_dir, {"profile": profile, "dry_run": dry_run, "seed": seed, **settings}, data)
for key, value in {"n_sweep_archive": len(sweep_db), "n_sweep_queries": len(sweep_q),
                   "n_archive": len(archive), "n_queries": len(queries),
                   "n_codes": len(np.unique(data.codes))}.items():
    glue_value(key, f"{value:,}")

# %% [markdown]
# The sweeps search {glue:text}`n_sweep_archive` archive images with {glue:text}`n_sweep_queries`
# validation queries; the test searches all {glue:text}`n_archive` archive images with
# {glue:text}`n_queries` test queries, over {glue:text}`n_codes` benchmark codes.
#
# ## Images per region and modality (Tables I and II of the paper)
#
# The paper's archive held 24 anatomical regions and 6 modalities; the tables below count ours the
# same way, the archive (training and validation images) beside the test queries, with the paper's
# counts typed in under them. Regions are sorted by their archive count, as in the paper.

# %%
def count_by(part: int) -> pd.DataFrame:
    """Archive and test images per region (part 1 of the code) or modality (part 0)."""
    key = lambda codes: pd.Series(codes).str.split("-").str[part]
    table = pd.DataFrame({"archive": key(archive.codes).value_counts(),
                          "test": key(queries.codes).value_counts()})
    return table.fillna(0).astype(int).sort_values(["archive", "test"], ascending=False)


# paper 002, Tables I and II: (training, test) images per anatomical region and per modality
PAPER_TABLE_I = {"Chest": (5123, 1587), "Urinary tract": (5000, 1961), "Colon": (3672, 1011),
                 "Abdomen": (3351, 758), "Head": (3239, 555), "Cerebral": (3062, 879), "Breast": (1104, 432),
                 "L-spine": (944, 65), "C-spine": (877, 128), "Knee": (505, 55), "Shoulder": (477, 68),
                 "Heart": (369, 69), "Arm": (337, 15), "Pelvis": (306, 118), "Extremity": (292, 70),
                 "Foot": (282, 63), "Neck": (260, 59), "Ankle": (231, 16), "Hand": (202, 15),
                 "Spine": (162, 22), "Whole body": (77, 40), "Lower extrem": (70, 5), "T-spine": (42, 12),
                 "Extrem": (16, 6)}
PAPER_TABLE_II = {"RF": (5123, 1587), "XA": (5000, 1961), "CT": (3672, 1011), "MR": (3351, 758),
                  "CR": (3239, 555), "NM": (3062, 879)}


def beside_paper(ours: pd.DataFrame, paper: dict, what: str) -> pd.DataFrame:
    theirs = pd.DataFrame(paper, index=["archive", "test"]).T
    table = pd.concat({source_label(benchmark): ours, "paper 002 (private radiology set)": theirs})
    table.index.names = ["data", what]
    return table


regions, modalities = count_by(1), count_by(0)
show_table(beside_paper(regions, PAPER_TABLE_I, "anatomical region"), "table1_regions", out_dir)
show_table(beside_paper(modalities, PAPER_TABLE_II, "modality"), "table2_modalities", out_dir)
paper_i, paper_ii = pd.DataFrame(PAPER_TABLE_I).sum(axis=1), pd.DataFrame(PAPER_TABLE_II).sum(axis=1)
glue_value("paper_i_totals", f"{paper_i[0]:,} and {paper_i[1]:,}")
glue_value("paper_ii_totals", f"{paper_ii[0]:,} and {paper_ii[1]:,}")

# %% [markdown]
# ```{glue:figure} table1_regions
# :name: tab-002-table1
# Table I of the paper beside ours: images per anatomical region in the archive (the paper's
# training set) and among the test queries. The paper's region counts add up to
# {glue:text}`paper_i_totals` images.
# ```
#
# ```{glue:figure} table2_modalities
# :name: tab-002-table2
# Table II of the paper beside ours: images per modality. The paper's six modality counts repeat
# the first six counts of its Table I and add up to only {glue:text}`paper_ii_totals`, short of its
# 30,000 training and 8,000 test images: the printed table looks like a copying slip, and we show it
# as printed.
# ```

# %% [markdown]
# A hit is relevant when it shares the query's anatomical region, its modality, or both, as in the
# paper. Our benchmark has fewer and more distinct region/modality groups than the paper's archive,
# so the chance level differs: a random hit shares the query's region with probability
# {glue:text}`chance_region`, its modality with {glue:text}`chance_modality`, and both with
# {glue:text}`chance_both` (the mP@k of a random ranking).

# %%
def chance(codes: np.ndarray, axis: str) -> float:
    """Probability that a random archive image shares a random query's region / modality / both."""
    parts = pd.Series(codes).str.split("-", expand=True)
    key = {"region": parts[1], "modality": parts[0], "both": parts[0] + "-" + parts[1]}[axis]
    return float((key.value_counts(normalize=True) ** 2).sum())


for axis in AXES:
    glue_value(f"chance_{axis}", f"{chance(archive.codes, axis):.2f}")

# %% [markdown]
# ## Local features
#
# OpenCV's SIFT runs on the benchmark images as they are (profile `sift_image_size`;
# {glue:text}`image_px` px in this build). The eight sets' 128-pixel images give about 20 to 300
# keypoints each, close to the 50 to 350 the paper found at 256 pixels; smaller images give fewer. In
# this build the archive gives {glue:text}`sift_total` descriptors, a median of
# {glue:text}`sift_median` per image (5 to 95 %: {glue:text}`sift_range`), and
# {glue:text}`sift_empty` images without any keypoint. RootSIFT is computed from the same keypoints.
# An image without keypoints, such as an almost uniform slice, gets an all-zero histogram rather
# than an error.

# %%
def sift_of(images):
    return BoVWDescriptor(root=False, image_size=settings["sift_image_size"]).local_features(images)


start = time.perf_counter()
sift_archive = sift_of(archive.images)
sift_seconds = time.perf_counter() - start
sift_queries = sift_of(queries.images)
rootsift_archive = [root_sift(f) if len(f) else f for f in sift_archive]
rootsift_queries = [root_sift(f) if len(f) else f for f in sift_queries]
counts = np.array([len(f) for f in sift_archive])
glue_value("sift_total", f"{counts.sum():,}")
glue_value("sift_median", f"{np.median(counts):.0f}")
glue_value("sift_range", f"{np.percentile(counts, 5):.0f} to {np.percentile(counts, 95):.0f}")
glue_value("sift_empty", f"{(counts == 0).sum():,}")


# %% [markdown]
# ## Vocabulary size, SIFT (Fig. 2 of the paper)
#
# The paper clustered its 4.15 million training descriptors with k-means for 50 iterations and 5
# restarts, for vocabularies of 250 to 4,000 words, and found 3,000 best. We fit the vocabulary with
# FAISS k-means on at most `max_descriptors_per_image` randomly drawn descriptors per image, with the
# iterations and restarts of the profile; the `cpu` profile stops the grid at 2,000 words, because
# its archive is smaller than the paper's and a 4,000-word vocabulary would hold few descriptors per
# word. Each configuration is scored on the validation queries.

# %%
def evaluate(db, q, metric, k=10, db_rows=sweep_db, q_rows=sweep_q, codes=archive.codes):
    """Validation search: (hits of shape (nq, k), mP@k / mAP report)."""
    _, hits = search_database(db, q, metric, k)
    return hits, retrieval_report(codes[q_rows], codes[db_rows], hits)


def bovw_sweep(features, sizes, root):
    curves, rows = {}, []
    for n_words in sizes:
        start = time.perf_counter()
        bovw = BoVWDescriptor(n_words=n_words, root=root, max_iter=settings["kmeans_iter"],
                              n_init=settings["kmeans_restarts"], seed=seed,
                              max_descriptors_per_image=settings["max_descriptors_per_image"])
        bovw.fit_features([features[i] for i in sweep_db])
        vectors = bovw.transform_features(features)
        _, report = evaluate(vectors[sweep_db], vectors[sweep_q], "cosine")
        label = f"{'RootSIFT' if root else 'SIFT'}, {n_words} words"
        curves[label] = report.loc["both", P_COLS].to_numpy()
        rows.append({"local feature": label.split(",")[0], "n_words": n_words, "fit + describe (s)":
                     time.perf_counter() - start, **report["mAP"].add_prefix("mAP ").to_dict()})
    return curves, pd.DataFrame(rows)


sift_curves, sift_table = bovw_sweep(sift_archive, settings["sift_vocab_sizes"], root=False)

# %% tags=["hide-input"]
show_figure(plots.precision_curves(sift_curves, "BoVW vocabulary size, SIFT (validation)"),
            "fig2_bovw_sift", out_dir)
show_table(sift_table, "fig2_bovw_sift_table", out_dir)

# %% [markdown]
# ```{glue:figure} fig2_bovw_sift
# :name: fig-002-bovw-sift
# Figure 2 of the paper, on the open benchmark: validation mP@k (relevance: region and modality) of
# SIFT bags of words for several vocabulary sizes. The paper's best size was 3,000 words.
# ```
#
# ```{glue:figure} fig2_bovw_sift_table
# :name: tab-002-bovw-sift
# The SIFT sweep as a table: validation mAP (k_max = 10) for each relevance axis, and the time to fit
# the vocabulary and describe the sweep images.
# ```
#
# ## RootSIFT (Fig. 3 of the paper)
#
# At 3,000 words RootSIFT raised the paper's mP@1 by 2.2 %, and it then tried 3,000, 3,500 and 4,000
# words with RootSIFT; 4,000 was best for larger k and became its final choice. We run RootSIFT at
# the profile's sizes, beside the best SIFT vocabulary, and keep whichever of all these
# configurations has the best validation mAP (both).

# %%
best_sift = sift_table.sort_values("mAP both", ascending=False).iloc[0]
root_curves, root_table = bovw_sweep(rootsift_archive, settings["rootsift_vocab_sizes"], root=True)
best_sift_label = f"SIFT, {int(best_sift['n_words'])} words"
bovw_table = pd.concat([sift_table, root_table], ignore_index=True)
best_bovw = bovw_table.sort_values("mAP both", ascending=False).iloc[0]
bovw_choice = {"n_words": int(best_bovw["n_words"]), "root": best_bovw["local feature"] == "RootSIFT"}
glue_value("bovw_choice", f"{best_bovw['local feature']}, {bovw_choice['n_words']} words")

# %% tags=["hide-input"]
show_figure(plots.precision_curves({**root_curves, best_sift_label: sift_curves[best_sift_label]},
                                   "BoVW vocabulary size, RootSIFT (validation)"),
            "fig3_bovw_rootsift", out_dir)
show_table(root_table, "fig3_bovw_rootsift_table", out_dir)

# %% [markdown]
# ```{glue:figure} fig3_bovw_rootsift
# :name: fig-002-bovw-rootsift
# Figure 3 of the paper, on the open benchmark: validation mP@k of RootSIFT bags of words, with the
# best SIFT vocabulary for comparison. Our choice for the test: {glue:text}`bovw_choice`. The
# paper's: RootSIFT, 4,000 words.
# ```
#
# ```{glue:figure} fig3_bovw_rootsift_table
# :name: tab-002-bovw-rootsift
# The RootSIFT sweep as a table.
# ```
#
# ## HOG
#
# The HOG sweeps of the paper (Figs. 4 and 5) are reproduced in {doc}`hog_retrieval`. Here HOG
# uses the paper's final choice: 64-pixel cells, 128-pixel blocks sliding by 64 pixels, 15 bins, on
# images resized to 256 pixels, compared by L1. Its validation mAP (both) is {glue:text}`hog_val_map`.

# %%
hog = HOGDescriptor(cell_size=64, block_size=128, block_stride=64, n_bins=15).fit(archive.images)
start = time.perf_counter()
hog_archive = hog.transform(archive.images)
hog_seconds = time.perf_counter() - start
hog_queries = hog.transform(queries.images)
hog_hits, hog_val = evaluate(hog_archive[sweep_db], hog_archive[sweep_q], "l1")
glue_value("hog_val_map", f"{hog_val.loc['both', 'mAP']:.3f}")

# %% [markdown]
# ## Pretrained CNNs (Fig. 6 of the paper)
#
# The paper compared ResNet18, ResNet34, AlexNet, SqueezeNet and VGG16, all pretrained on ImageNet
# and used without training, with the grey channel repeated three times; SqueezeNet followed by a
# 5 x 5 average pooling was best. Here SqueezeNet v1.1 is written in Keras in this package
# (`cbmir_tf.models.squeezenet`) and loads the ImageNet weights of keras-squeezenet from the data
# directory. At 256 pixels its last fire module gives a 15 x 15 x 512 map; the 5 x 5 average pooling
# (stride 5) shrinks it to 3 x 3 x 512 = 4,608 values, against 115,200 without it.
#
# The `keras.applications` networks of the profile (ResNet50, VGG16 or MobileNet, Keras' closest
# relatives of the paper's list) need Keras' ImageNet weight files, which the data registry takes
# from the data directory or, where downloads are allowed, fetches once into its cache. When they
# cannot be had (this book is built offline), the table says *skipped*: a network with random weights
# is not the paper's method, and we do not report it as if it were.

# %%
cnn_rows, cnn_curves, cnn_vectors = [], {}, {}
candidates = [("squeezenet", 5), ("squeezenet", None)]
candidates += [(m, 5) for m in settings["cnn_models"] if m != "squeezenet"]
for model, pooling in candidates:
    cnn = CNNDescriptor(model=model, pooling=pooling, input_size=settings["cnn_input_size"]).fit()
    label = f"{model}" + (f" + {pooling}x{pooling} avg pool" if pooling else ", no pooling")
    if not cnn.pretrained_:  # not evaluated with random weights: the table says so
        cnn_rows.append({"network": label, "status": "skipped: ImageNet weights unavailable offline"})
        continue
    start = time.perf_counter()
    vectors = cnn.transform(archive.images)
    seconds = time.perf_counter() - start
    _, report = evaluate(vectors[sweep_db], vectors[sweep_q], "l2")
    cnn_curves[label] = report.loc["both", P_COLS].to_numpy()
    cnn_rows.append({"network": label, "status": "pretrained (ImageNet)", "dimension": cnn.n_features_out_,
                     **report["mAP"].add_prefix("mAP ").to_dict()})
    if pooling:  # candidates for the test; the unpooled map is too long to index the archive with
        cnn_vectors[label] = (cnn, vectors, seconds, report.loc["both", "mAP"])
cnn_table = pd.DataFrame(cnn_rows)

# %% tags=["hide-input"]
show_figure(plots.precision_curves(cnn_curves, "Pretrained CNN descriptors (validation)"),
            "fig6_cnn", out_dir)
show_table(cnn_table, "fig6_cnn_table", out_dir)

# %% [markdown]
# ```{glue:figure} fig6_cnn
# :name: fig-002-cnn
# Figure 6 of the paper, on the open benchmark: validation mP@k of the pretrained networks whose
# weights were available, with and without the 5 x 5 average pooling for SqueezeNet. It differs from
# the paper's in its networks: Keras has no ImageNet weights for ResNet18, ResNet34 or AlexNet, so
# Keras' closest networks stand in for them, and only when their weights are on disk.
# ```
#
# ```{glue:figure} fig6_cnn_table
# :name: tab-002-cnn
# The CNN comparison as a table. Rows marked *skipped* had no ImageNet weights on this machine; no
# numbers are reported for them.
# ```

# %%
cnn_choice = max(cnn_vectors, key=lambda label: cnn_vectors[label][3])  # best validation mAP (both)
cnn, cnn_archive, cnn_seconds, _ = cnn_vectors[cnn_choice]
cnn_queries = cnn.transform(queries.images)
glue_value("cnn_choice", cnn_choice)

# %% [markdown]
# ## Re-ranking (Figs. 7 and 8 of the paper)
#
# Re-ranking retrieves `k_prep` images with a first method and re-sorts them by the distance under
# a second method. The paper tried every method as first and as second with several `k_prep`; its
# text does not list the values (its final choice was CNN then HOG with `k_prep` = 10), so we use
# the profile's grid, from 10 to 100 under `cpu`. Re-ranking helped BoVW most in the paper, and was
# the only way to beat CNN retrieval alone by a little.

# %%
bovw = BoVWDescriptor(**bovw_choice, image_size=settings["sift_image_size"], max_iter=settings["kmeans_iter"],
                      n_init=settings["kmeans_restarts"], seed=seed,
                      max_descriptors_per_image=settings["max_descriptors_per_image"])
local_archive = rootsift_archive if bovw_choice["root"] else sift_archive
bovw.fit_features([local_archive[i] for i in sweep_db])
val_vectors = {"BoVW": (bovw.transform_features(local_archive), "cosine"),
               "HOG": (hog_archive, "l1"), "CNN": (cnn_archive, "l2")}
k_preps, first_hits, rerank_rows = settings["k_preps"], {}, []
for name, (vectors, metric) in val_vectors.items():
    first_hits[name], report = evaluate(vectors[sweep_db], vectors[sweep_q], metric, k=max(k_preps))
    rerank_rows.append({"first": name, "second": "none", "k_prep": 0, **report["mAP"].to_dict()})
for first, second in itertools.permutations(val_vectors, 2):
    vectors, metric = val_vectors[second]
    sweep = rerank_sweep(first_hits[first], vectors[sweep_q], vectors[sweep_db], metric, k_preps)
    for kp, hits in sweep.items():
        report = retrieval_report(archive.codes[sweep_q], archive.codes[sweep_db], hits)
        rerank_rows.append({"first": first, "second": second, "k_prep": kp, **report["mAP"].to_dict()})
rerank_table = pd.DataFrame(rerank_rows)


# %% tags=["hide-input"]
def plot_rerank(pairs, title):
    fig, ax = plt.subplots(figsize=(6, 3.8))
    for (first, second), colour in zip(pairs, plt.cm.tab10.colors):
        rows = rerank_table[(rerank_table["first"] == first) & (rerank_table["second"] == second)]
        ax.plot(rows["k_prep"], rows["both"], marker="o", color=colour,
                label=f"{first}, re-ranked by {second}")
    for first, style in zip(dict.fromkeys(first for first, _ in pairs), ("--", ":", "-.")):
        alone = rerank_table.query("first == @first and second == 'none'")["both"].item()
        ax.axhline(alone, ls=style, lw=1.2, color="gray", label=f"{first} alone")
    ax.set(xlabel="k_prep", ylabel="validation mAP (both)", title=title, xticks=list(k_preps))
    ax.grid(alpha=0.3), ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


show_figure(plot_rerank([("BoVW", "HOG"), ("HOG", "BoVW")], "Re-ranking BoVW and HOG"),
            "fig7_rerank", out_dir)
show_figure(plot_rerank([("BoVW", "CNN"), ("HOG", "CNN"), ("CNN", "BoVW"), ("CNN", "HOG")],
                        "Re-ranking with CNN descriptors"), "fig8_rerank_cnn", out_dir)
show_table(rerank_table.rename(columns={a: f"mAP {a}" for a in ("region", "modality", "both", "class")}),
           "fig7_8_rerank_table", out_dir)

# %% [markdown]
# ```{glue:figure} fig7_rerank
# :name: fig-002-rerank
# Figure 7 of the paper, on the open benchmark: validation mAP (both) after re-ranking BoVW hits by
# HOG and HOG hits by BoVW, against `k_prep`; grey lines are the first method alone. Unlike the
# paper's figure, each configuration is one point (its mAP) rather than a curve over k, and the
# `k_prep` grid is ours, since the paper does not list its values.
# ```
#
# ```{glue:figure} fig8_rerank_cnn
# :name: fig-002-rerank-cnn
# Figure 8 of the paper, on the open benchmark: validation mAP (both) after re-ranking with the CNN
# descriptor as the first or the second method, against `k_prep`, drawn as our Fig. 7 twin (one point
# per configuration, our `k_prep` grid).
# ```
#
# ```{glue:figure} fig7_8_rerank_table
# :name: tab-002-rerank
# Every ordered pair and `k_prep` (0 = no re-ranking), validation mAP for each relevance axis.
# ```
#
# For the test, we keep the paper's final pair, CNN re-ranked by HOG, with the `k_prep` that was best
# for that pair on our validation queries ({glue:text}`k_prep`). The best pair overall on our
# validation queries was {glue:text}`best_pair`.

# %%
pairs = rerank_table[rerank_table["second"] != "none"].sort_values("both", ascending=False)
cnn_hog = pairs[(pairs["first"] == "CNN") & (pairs["second"] == "HOG")].iloc[0]
k_prep = int(cnn_hog["k_prep"])
bovw_hog_k_prep = int(pairs[(pairs["first"] == "BoVW") & (pairs["second"] == "HOG")].iloc[0]["k_prep"])
glue_value("k_prep", k_prep)
glue_value("bovw_hog_k_prep", bovw_hog_k_prep)
best = pairs.iloc[0]
glue_value("best_pair", f"{best['first']} re-ranked by {best['second']} with k_prep = {int(best['k_prep'])} "
                        f"(mAP both {best['both']:.3f})")

# %% [markdown]
# ## The test run (Fig. 9 of the paper)
#
# The chosen configurations now index the whole archive (training and validation images) and every
# test image is a query. The BoVW vocabulary is fitted again on the whole archive, and that fit is
# timed for Table IV.

# %%
start = time.perf_counter()
bovw.fit_features(local_archive)
vocab_seconds = time.perf_counter() - start
start = time.perf_counter()
bovw_index = Index("cosine", descriptor=bovw.name).add(bovw.transform_features(local_archive))
bovw_describe_seconds = time.perf_counter() - start
local_queries = rootsift_queries if bovw_choice["root"] else sift_queries
indexes = {"BoVW": bovw_index, "HOG": Index("l1", descriptor=hog.name).add(hog_archive),
           "CNN": Index("l2", descriptor=cnn.name).add(cnn_archive)}
query_vectors = {"BoVW": bovw.transform_features(local_queries), "HOG": hog_queries, "CNN": cnn_queries}
test_hits = {name: index.search(query_vectors[name], max(10, k_prep))[1] for name, index in indexes.items()}
test_hits[f"CNN + HOG re-ranking (k_prep={k_prep})"] = rerank_hits(
    test_hits["CNN"], hog_queries, hog_archive, "l1", k_prep, 10)[1]
test_reports = {name: retrieval_report(queries.codes, archive.codes, hits)
                for name, hits in test_hits.items()}

# %% tags=["hide-input"]
# paper 002, Table III: mAP (k_max = 10) by anatomical region, by modality and by both
PAPER_TABLE_III = {"BoVW": (0.7097, 0.8576, 0.7022), "HOG": (0.8249, 0.9121, 0.8146),
                   "CNN": (0.8845, 0.9654, 0.8821), "CNN + re-ranking": (0.8855, 0.9635, 0.8835)}
test_curves = {name: r.loc["both", P_COLS].to_numpy() for name, r in test_reports.items()}
fig = plots.precision_curves(test_curves, "Test split, relevance: region and modality")
ax = fig.axes[0]
for line, paper_map in zip(ax.get_lines(), (both for _, _, both in PAPER_TABLE_III.values())):
    ax.axhline(paper_map, ls="--", lw=1, color=line.get_color())  # the paper's level in our curve's colour
ax.plot([], [], ls="--", color="gray", label="paper 002: mAP (both), Table III")
ax.legend(fontsize=7, loc="best")
ax.set_ylim(min(ax.get_ylim()[0], 0.65), 1.01)
show_figure(fig, "fig9_test_mpk", out_dir)
show_table(pd.concat({name: r.loc[AXES, P_COLS] for name, r in test_reports.items()}), "fig9_test_mpk_table",
           out_dir)

# %% [markdown]
# ```{glue:figure} fig9_test_mpk
# :name: fig-002-test
# Figure 9 of the paper, on the open benchmark: test mP@k for k = 1..10, a hit being relevant when it
# shares the query's region and modality. The paper gives its curves only as a picture; the dashed
# lines, in the colour of our matching method, are its mAP (both) from Table III, which is the mean
# height of its curve over k = 1..10.
# ```
#
# ```{glue:figure} fig9_test_mpk_table
# :name: tab-002-test-mpk
# The test mP@k of each method under each relevance axis.
# ```
#
# ## Table III: mAP by region, modality and both
#
# Paper 002's mAP is the mean of mP@1..10 (its Eq. 9), not the usual average precision. The paper's
# rows are printed beside ours; its archive has 24 regions and 6 modalities, ours
# {glue:text}`n_regions` and {glue:text}`n_modalities`, so only the order of the methods can be compared.

# %%
ours = pd.DataFrame({name: r.loc[AXES, "mAP"] for name, r in test_reports.items()}).T
ours.index = list(PAPER_TABLE_III)
table_iii = pd.concat({source_label(benchmark): ours,
                       "paper 002 (private radiology set)": pd.DataFrame(PAPER_TABLE_III, index=AXES).T},
                      axis=1)
table_iii.index.name = "method"
show_table(table_iii, "table3_map", out_dir)
for name, key in zip(PAPER_TABLE_III, ("bovw", "hog", "cnn", "rerank")):
    glue_value(f"map_both_{key}", f"{ours.loc[name, 'both']:.3f}")

# %% [markdown]
# ```{glue:figure} table3_map
# :name: tab-002-table3
# Table III of the paper beside ours: test mAP (k_max = 10) by anatomical region, by modality and by
# both. Our BoVW is {glue:text}`bovw_choice`, our CNN {glue:text}`cnn_choice`, and the re-ranking is
# CNN then HOG with `k_prep` = {glue:text}`k_prep` (the paper: RootSIFT with 4,000 words, SqueezeNet
# with 5 x 5 pooling, `k_prep` = 10). mAP (both) here: BoVW {glue:text}`map_both_bovw`, HOG
# {glue:text}`map_both_hog`, CNN {glue:text}`map_both_cnn`, CNN + HOG {glue:text}`map_both_rerank`.
# ```
#
# ## Tables IV and V: offline and query time
#
# The offline phase describes and indexes the archive: for BoVW, SIFT extraction, the vocabulary and
# the TF-IDF histograms; for HOG and CNN, one descriptor per image. The query time runs every test
# image through the whole online phase, one at a time, from pixels to the ranked list: description
# (SIFT and word assignment, HOG, or a forward pass of the network), search, and for the last row the
# HOG re-ranking of the CNN's `k_prep` hits. The paper timed 30,000 archive and 8,000 query images on
# an AMD Ryzen 5 2600 (6 cores, 3.4 GHz) with 16 GB of memory; ours ran on the machine named below,
# with a much smaller archive.

# %%
offline = pd.DataFrame({
    "ours (s)": {"BoVW": sift_seconds + vocab_seconds + bovw_describe_seconds, "BoVW: SIFT": sift_seconds,
                 "BoVW: vocabulary": vocab_seconds, "BoVW: descriptors": bovw_describe_seconds,
                 "HOG": hog_seconds, "CNN": cnn_seconds},
    "paper 002 (s)": {"BoVW": 141 * 60.0, "BoVW: SIFT": 6 * 60.0, "BoVW: vocabulary": 121 * 60.0,
                      "BoVW: descriptors": 14 * 60.0, "HOG": 60.0, "CNN": 22 * 60.0}})
offline.insert(1, "ours: archive images", len(archive))
offline["paper 002: archive images"] = 30000
show_table(offline, "table4_offline_time", out_dir, float_format="{:.1f}")
machine = f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPU cores"
glue_value("machine", machine)

# %% [markdown]
# ```{glue:figure} table4_offline_time
# :name: tab-002-table4
# Table IV of the paper beside ours: the offline phase per method, in seconds. Ours on
# {glue:text}`machine`; the paper's on an AMD Ryzen 5 2600, with 30,000 archive images.
# ```

# %%
def bovw_query(i):
    return bovw_index.search(bovw.transform(queries.images[i:i + 1]), 10)


def cnn_hog_query(i):
    _, hits = indexes["CNN"].search(cnn.transform(queries.images[i:i + 1]), k_prep)
    return rerank_hits(hits, hog.transform(queries.images[i:i + 1]), hog_archive, "l1", k_prep, 10)


runs = {"BoVW": bovw_query,
        "HOG": lambda i: indexes["HOG"].search(hog.transform(queries.images[i:i + 1]), 10),
        "CNN": lambda i: indexes["CNN"].search(cnn.transform(queries.images[i:i + 1]), 10),
        "CNN + HOG re-ranking": cnn_hog_query}
timings = {name: time_per_query(run, len(queries)) for name, run in runs.items()}
table_v = pd.DataFrame({"ours: mean (ms)": {n: t["mean_ms"] for n, t in timings.items()},
                        "ours: median (ms)": {n: t["median_ms"] for n, t in timings.items()},
                        "ours: p95 (ms)": {n: t["p95_ms"] for n, t in timings.items()},
                        "paper 002: mean (ms)": {"BoVW": 334.0, "HOG": 53.0, "CNN": 339.0,
                                                 "CNN + HOG re-ranking": 341.0}})
table_v.insert(3, "ours: queries", len(queries))
show_table(table_v, "table5_query_time", out_dir, float_format="{:.1f}")

# %% [markdown]
# ```{glue:figure} table5_query_time
# :name: tab-002-table5
# Table V of the paper beside ours: time per query over every test query, description included. Ours
# on {glue:text}`machine`, against archives of the size above; the paper's mean over its 8,000 test
# queries on an AMD Ryzen 5 2600 against 30,000 archive images.
# ```
#
# ## Example queries (Appendix A)
#
# The paper drew one random test query for each of its 24 anatomical regions and showed it with the
# top five hits of its best system, CNN re-ranked by HOG: the first 12 regions in its Fig. 10, the
# last 12 in its Fig. 11. We do the same for our {glue:text}`n_regions` regions, in the order of
# Table I (most archive images first), the first half in Fig. 10's twin and the rest in Fig. 11's.

# %%
rng = np.random.default_rng(seed)
query_regions = pd.Series(queries.codes).str.split("-").str[1].to_numpy()
region_order = [r for r in regions.index if r in set(query_regions)]
half = math.ceil(len(region_order) / 2)
first_half, second_half = region_order[:half], region_order[half:]
example_hits = test_hits[f"CNN + HOG re-ranking (k_prep={k_prep})"]
for name, chosen in (("fig10_examples", first_half), ("fig11_examples", second_half or first_half)):
    picks = np.array([rng.choice(np.flatnonzero(query_regions == region)) for region in chosen])
    top5 = example_hits[picks, :5]
    fig = plots.relevance_query_strips(queries.images[picks], queries.codes[picks], archive.images[top5],
                                       archive.codes[top5], row_labels=list(chosen))
    show_figure(fig, name, out_dir)
glue_value("fig10_regions", ", ".join(first_half))
glue_value("fig11_regions", ", ".join(second_half or first_half))

# %% [markdown]
# ```{glue:figure} fig10_examples
# :name: fig-002-examples-1
# As the paper's Fig. 10: one random test query (blue frame) for each of the first regions of
# Table I ({glue:text}`fig10_regions`), with the top five hits of CNN retrieval re-ranked by HOG.
# Green: the query's whole code; orange: its modality and region but another finding (relevant under
# the paper's "both"); red: another modality or region.
# ```
#
# ```{glue:figure} fig11_examples
# :name: fig-002-examples-2
# As the paper's Fig. 11: the same for the remaining regions ({glue:text}`fig11_regions`).
# ```
#
# ## The paper's claims on our queries
#
# Each row below pits two of the test runs above against each other on the same test queries. The
# per-query score is the paper's Eq. 9 for one query: its precision at k = 1..10 averaged over k, a
# hit being relevant when it shares the query's region and modality. A paired bootstrap over the
# queries gives the 95 % interval of the mean difference; a claim is *supported* when the whole
# interval favours it, *contradicted* when the whole interval opposes it, and *inconclusive*
# otherwise. Re-ranking BoVW by HOG uses the `k_prep` that was best for that pair on the validation
# queries ({glue:text}`bovw_hog_k_prep`).

# %%
def per_query_map(hits: np.ndarray, axis: str = "both", k_max: int = 10) -> np.ndarray:
    """Paper 002's Eq. 9 for each test query: precision at k = 1..k_max averaged over k."""
    relevant = axis_relevance(queries.codes, archive.codes[hits[:, :k_max]], axis)
    return (relevant.cumsum(axis=1) / np.arange(1, k_max + 1)).mean(axis=1)


bovw_first = indexes["BoVW"].search(query_vectors["BoVW"], max(10, bovw_hog_k_prep))[1]
bovw_hog = rerank_hits(bovw_first, hog_queries, hog_archive, "l1", bovw_hog_k_prep, 10)[1]
scores = {name: per_query_map(hits) for name, hits in test_hits.items()}
scores["BoVW + HOG re-ranking"] = per_query_map(bovw_hog)
rerank_name = f"CNN + HOG re-ranking (k_prep={k_prep})"
measure = "mean of P@1..10 per test query (relevant: same region and modality)"
rows = [
    claim("002", "pretrained CNN descriptors retrieve better than HOG",
          "mAP (both) 0.8821 vs 0.8146 (Table III)", measure, "CNN", "HOG", scores["CNN"], scores["HOG"],
          seed=seed),
    claim("002", "HOG retrieves better than a bag of visual words", "mAP (both) 0.8146 vs 0.7022 (Table III)",
          measure, "HOG", "BoVW", scores["HOG"], scores["BoVW"], seed=seed),
    claim("002", "re-ranking the CNN's hits by HOG improves on the CNN alone",
          "mAP (both) 0.8835 vs 0.8821 (Table III)", measure, rerank_name, "CNN", scores[rerank_name],
          scores["CNN"], seed=seed),
    claim("002", "re-ranking BoVW's hits by HOG improves on BoVW alone",
          "the largest gain of any re-ranking (Fig. 7; no numbers given)", measure, "BoVW + HOG re-ranking",
          "BoVW", scores["BoVW + HOG re-ranking"], scores["BoVW"], seed=seed),
]
claims = show_claims(rows, out_dir)
for key, row in zip(["cnn_hog", "hog_bovw", "rerank_cnn", "rerank_bovw"], claims.itertuples()):
    glue_value(f"verdict_{key}", row.verdict)
    glue_value(f"diff_{key}", f"{row.difference:+.3f} [{row.ci_low:+.3f}, {row.ci_high:+.3f}]")
glue_value("paper_rerank_gain", f"{PAPER_TABLE_III['CNN + re-ranking'][2] - PAPER_TABLE_III['CNN'][2]:.4f}")

# %% [markdown]
# ```{glue:figure} claims
# :name: tab-002-claims
# The paper's main claims tested on our test queries: the mean per-query score of each arm, their
# mean difference in favour of the claim with its 95 % paired-bootstrap interval, the number of
# queries, and the verdict.
# ```
#
# On our queries, CNN against HOG is {glue:text}`verdict_cnn_hog` (difference
# {glue:text}`diff_cnn_hog`), HOG against BoVW is {glue:text}`verdict_hog_bovw`
# ({glue:text}`diff_hog_bovw`), re-ranking the CNN by HOG is {glue:text}`verdict_rerank_cnn`
# ({glue:text}`diff_rerank_cnn`) and re-ranking BoVW by HOG is {glue:text}`verdict_rerank_bovw`
# ({glue:text}`diff_rerank_bovw`). The interval is for the mean difference of the per-query scores;
# the paper's own gain from re-ranking the CNN was {glue:text}`paper_rerank_gain` in mAP (both), far
# below what a few hundred or a few thousand queries can resolve, so that row mostly tells whether
# re-ranking does any harm on our data.
#
# ## Summary
#
# In the paper, pretrained CNN descriptors beat HOG, which beat the bag of visual words, and
# re-ranking the CNN's hits by HOG added a little for region and for both (Table III). On the open
# benchmark the test mAP (both) is {glue:text}`map_both_bovw` for BoVW, {glue:text}`map_both_hog` for
# HOG, {glue:text}`map_both_cnn` for the CNN and {glue:text}`map_both_rerank` for the CNN re-ranked by
# HOG. The benchmark's region and modality groups come from a handful of source collections with
# distinct looks, so all methods score higher than on the paper's archive and the gaps between them
# are narrower; a ranking that differs from the paper's by less than about one percentage point is
# within the noise of our few hundred to few thousand test queries. BoVW costs the most offline,
# because of k-means. Networks whose ImageNet weights could not be loaded are marked as skipped
# rather than evaluated with random weights.

# %% tags=["hide-input"]
print(environment_summary())
