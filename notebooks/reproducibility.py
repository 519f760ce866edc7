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
# # What reproduces: the papers' claims on open data
#
# **The question:** each paper of this book says that its method, or one of its choices, beats
# something else. Which of those statements still hold when the method runs here, on the open
# benchmark, with this build's training budget, and how sure can we be?
#
# This chapter computes nothing new. It collects the claims that every paper chapter of this build
# tested at the end of its results and puts them side by side: one table per paper, a summary of the
# verdicts, and one figure with every interval.

# %% tags=["parameters"]
profile = "cpu"  # smoke | cpu | paper
dry_run = False  # True: the profile capped to a few images and training steps (`make dry-run`)
data_dir = None  # unused here: this chapter reads the other chapters' outputs, not images
seed = 0
out_dir = "outputs/reproducibility"
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
import json
from pathlib import Path

import pandas as pd

from cbmir_tf import plots
from cbmir_tf.report import environment_summary, gather_claims, glue_value, show_figure, show_table

generated = Path(out_dir).parent  # every chapter of this build writes its outputs beside this one
VERDICTS = ["supported", "contradicted", "inconclusive"]
#: The paper chapters, with the data each paper measured its claims on (the papers' own, not ours).
PAPERS = {
    "000": ("paper000_resnet50v2_fpn", "ResNet50V2-FPN", "IRMA 2007 radiographs"),
    "001": ("paper001_inresnet_hashing", "InRes-Net hashing", "LIDC-IDRI lung CT"),
    "002": ("paper002_bovw_cnn", "BoVW, HOG and CNN features", "a private set of 38,000 radiology images"),
    "003": ("paper003_cnnc_rbc", "CNNC + Radon barcodes", "ImageCLEFmed 2009 (IRMA) radiographs"),
    "004": ("paper004_vgg_configs", "VGG-style configurations", "IRMA radiographs in five groups"),
}

# %% [markdown]
# ## What is tested, and how
#
# **A claim** here is one sentence of a paper of the form "arm A beats arm B": the feature pyramid
# beats the plain backbone, re-ranking beats the first search alone, and so on. Each paper chapter
# picked the two to five claims a reader comes for, wrote them in our words next to the numbers the
# paper published for them, and scored both arms on the **same test queries** of this build. Every
# query gives one score per arm (its AP@10, its precision at *k*, the error of its first hit, or 1
# and 0 for a right or wrong class), and the claim's **difference** is the mean over the queries of
# A's score minus B's, signed so that a positive difference always favours the claim (for an error,
# lower is better, so the sign is flipped).
#
# **How sure.** The queries are a sample; another sample of queries would give another difference.
# A paired bootstrap (`cbmir_tf.report.paired_bootstrap`) redraws the queries with replacement 2,000
# times, keeping each query's two scores together, and takes the 2.5th and 97.5th percentiles of
# the redrawn mean differences as a 95 % interval. The verdict reads the interval:
# **supported** when all of it lies above zero, **contradicted** when all of it lies below, and
# **inconclusive** when it contains zero.
#
# **What the interval does not capture.**
#
# * *Training seeds.* Each network is trained once, with one seed. A second training run could land
#   elsewhere; the interval only covers the choice of queries, so a claim about a trained network
#   can look surer than it is.
# * *The data.* The papers measured on IRMA radiographs, LIDC-IDRI lung CT or a private hospital
#   set; we measure on the open benchmark of eight public sets (or, for paper 001, on open lung CT).
#   A claim that fails here may still hold on the paper's data, and the other way round.
# * *The budget.* Under the `cpu` profile the networks are smaller, see smaller images and train for
#   minutes on two cores, not for hours on a GPU; under `smoke` they train for a few steps only, so
#   a smoke build's verdicts say nothing about the methods, only that the pipeline runs.
# * *Several claims at once.* Each interval is a 95 % interval on its own; among many claims, one
#   may fall on the wrong side of zero by chance.

# %% tags=["hide-input"]
def chapter_status(chapter, claims):
    """The state of one chapter in this build, from its outputs folder."""
    provenance = generated / chapter / "provenance.json"
    record = json.loads(provenance.read_text()) if provenance.exists() else {}
    data, own = record.get("data", {}), claims[claims["chapter"] == chapter]
    papers = sorted(own["paper"].unique()) or [p for p, (c, _, _) in PAPERS.items() if c == chapter]
    loaded = f"{data['name']}, {data['n_images']:,} images" if data.get("name") else "its own data"
    counts = {v: int((own["verdict"] == v).sum()) for v in VERDICTS} if len(own) else dict.fromkeys(VERDICTS)
    return {"chapter": chapter, "paper": ", ".join(papers), "data loaded": loaded if len(own) else None,
            "claims": len(own) or None, **counts}


claims = gather_claims(generated, profile=profile).sort_values("paper", kind="stable")
numbers = claims.groupby("paper").cumcount() + 1
claims = claims.assign(id=[f"{paper}.{i}" for paper, i in zip(claims["paper"], numbers)])
chapters = sorted({chapter for chapter, _, _ in PAPERS.values()} | set(claims["chapter"]))
status = pd.DataFrame([chapter_status(chapter, claims) for chapter in chapters]).set_index("chapter")

# %% [markdown]
# ## This build
#
# This build ran under the {glue:text}`profile` profile. {glue:text}`n_run` of its chapters tested
# claims (the five paper chapters, and any other chapter that tests a paper's claim on the way).
# Paper chapters not run in this build, or run without claims: {glue:text}`not_run`. Together
# they tested {glue:text}`n_claims` claims: {glue:text}`n_supported` supported,
# {glue:text}`n_contradicted` contradicted and {glue:text}`n_inconclusive` inconclusive. The data
# each chapter loaded, from its provenance record: {glue:text}`data_note`.

# %% tags=["hide-input"]
missing = status.index[status["claims"].isna()].tolist()
summary = status.drop(columns="data loaded")
summary.loc["all"] = ["", *status[["claims", *VERDICTS]].sum()]
show_table(summary, "summary", out_dir)
loaded = status.dropna(subset=["data loaded"]).groupby("data loaded", sort=False).groups
glue_value("data_note", "; ".join(f"{data} ({', '.join(names)})" for data, names in loaded.items()) or "none")
glue_value("profile", profile)
glue_value("n_run", str(len(status) - len(missing)))
glue_value("not_run", ", ".join(missing) or "none")
glue_value("n_claims", str(len(claims)))
for v in VERDICTS:
    glue_value(f"n_{v}", str(int((claims["verdict"] == v).sum())))

# %% [markdown]
# ```{glue:figure} summary
# :name: tab-claims-summary
# The chapters of this build that test claims: which paper each tests, and how many of its claims
# the paired bootstrap supported, contradicted or left open. A dash: the chapter did not run in
# this build (it failed, or its data were missing) or wrote no claims.
# ```
#
# ## Every claim at a glance
#
# One row per claim, grouped by paper: the point is the mean difference over the test queries, the
# bar its 95 % interval. Rows to the right of the zero line favour the paper. The measures differ
# from row to row (a difference of AP@10 is not a difference of error), so compare each row with
# zero, not with the other rows.

# %% tags=["hide-input"]
claims = claims.assign(label=[f"{i}  {text[:1].upper()}{text[1:]}" for i, text in zip(claims["id"], claims["claim"])])
fig = plots.forest_plot(claims)
glue_value("forest_scale", "logarithmic away from zero (linear close to it), so that one large "
           "difference does not flatten the small ones" if fig.axes[0].get_xscale() == "symlog" else "linear")
show_figure(fig, "forest", out_dir)

# %% [markdown]
# ```{glue:figure} forest
# :name: fig-claims-forest
# Each tested claim (numbered by paper, as in the tables below) with its mean difference over the
# test queries and the 95 % paired-bootstrap interval, coloured by verdict. A positive difference
# favours the claim; each row is in its own measure (named in the paper's table below), and the
# numbers at the right repeat the difference and its interval. The axis is
# {glue:text}`forest_scale`.
# ```
#
# ## The claims, paper by paper
#
# For each paper: the claim in our words, with what we scored per query and over how many queries;
# the published numbers behind it (with the paper's table or figure); the two arms' mean scores
# here; the difference with its interval; and the verdict. The paper's numbers come from its own
# data, ours from this build's.

# %% tags=["hide-input"]
def paper_table(paper):
    """The claims of one paper as a readable table, or one row saying that its chapter did not run."""
    own = claims[claims["paper"] == paper]
    if own.empty:
        return pd.DataFrame({"claim": [f"not run in this build: {PAPERS[paper][0]} wrote no claims"]},
                            index=pd.Index(["–"], name="#"))
    several = own["chapter"].nunique() > 1  # then say which chapter tested each claim
    return pd.DataFrame(index=pd.Index(own["id"], name="#"), data={
        "claim, and what was scored": [
            f"{r.claim.rstrip('.')}. Score: {r.measure}; {int(r.n)} queries"
            + (f"; in {r.chapter}." if several else ".") for r in own.itertuples()],
        "paper's evidence": own["paper_evidence"].to_numpy(),
        "ours vs baseline, mean": [f"{r.ours} {r.ours_value:.3f} vs {r.baseline} {r.baseline_value:.3f}"
                                   for r in own.itertuples()],
        "difference [95 %]": [f"{r.difference:+.3f} [{r.ci_low:+.3f}, {r.ci_high:+.3f}]"
                              for r in own.itertuples()],
        "verdict": own["verdict"].to_numpy()})


for paper, (chapter, method, their_data) in PAPERS.items():
    show_table(paper_table(paper), f"claims_{paper}", out_dir)
    glue_value(f"data_{paper}", their_data)

# %% [markdown]
# ```{glue:figure} claims_000
# :name: tab-claims-000
# Paper 000, ResNet50V2 with a feature pyramid ({cite}`fpn_retrieval`; the paper's data:
# {glue:text}`data_000`).
# ```
#
# ```{glue:figure} claims_001
# :name: tab-claims-001
# Paper 001, InRes-Net hashing with coarse-to-fine search ({cite}`inresnet_hashing`; the paper's
# data: {glue:text}`data_001`).
# ```
#
# ```{glue:figure} claims_002
# :name: tab-claims-002
# Paper 002, bag of visual words, HOG and pretrained CNN features with re-ranking
# ({cite}`barac_cbmir`; the paper's data: {glue:text}`data_002`).
# ```
#
# ```{glue:figure} claims_003
# :name: tab-claims-003
# Paper 003, shallow-CNN binary codes re-ranked by Radon barcodes ({cite}`cnnc_rbc`; the paper's
# data: {glue:text}`data_003`).
# ```
#
# ```{glue:figure} claims_004
# :name: tab-claims-004
# Paper 004, VGG-style network configurations ({cite}`vgg_configs`; the paper's data:
# {glue:text}`data_004`).
# ```
#
# ## Reading the verdicts
#
# In this build ({glue:text}`profile` profile), {glue:text}`n_supported` of the
# {glue:text}`n_claims` claims came out supported, {glue:text}`n_contradicted` contradicted and
# {glue:text}`n_inconclusive` inconclusive. Three things decide how much such a count means.
#
# * **The profile.** A `smoke` build trains each network for a few steps on a handful of images per
#   code; its verdicts about trained networks are noise, and an inconclusive or contradicted claim
#   there is expected. The `cpu` build trains until the validation loss stops improving or a time
#   budget runs out, and `paper` uses the papers' own sizes and schedules.
# * **The number of queries.** The interval narrows roughly with the square root of the number of
#   test queries (the *queries* column). An inconclusive verdict over a few dozen queries is a
#   statement about the sample size as much as about the method.
# * **The data.** A supported claim says that the paper's ordering of the two arms also holds on our
#   open data; a contradicted one says that it does not hold here, which is not the same as saying
#   that the paper was wrong on its own data. The paper's evidence column is there to set the size
#   of our difference beside the size of theirs.
#
# Each chapter discusses its own claims where it tests them; this page is the index.

# %% tags=["hide-input"]
print(environment_summary())
