"""The figures the chapters share: image grids, query strips and mP@k curves."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd


def image_grid(images: np.ndarray, titles: Sequence[str] | None = None, ncols: int = 8,
               size: float = 1.4, title_size: int = 6):
    """Show grey images ``(n, h, w)`` in a grid; returns the figure."""
    n = len(images)
    nrows = max(1, int(np.ceil(n / ncols)))
    fig, axes = plt.subplots(nrows, ncols, figsize=(ncols * size, nrows * size * 1.1), squeeze=False)
    for i, ax in enumerate(axes.flat):
        ax.axis("off")
        if i < n:
            ax.imshow(images[i], cmap="gray", vmin=0, vmax=255)
            if titles is not None:
                ax.set_title(titles[i], fontsize=title_size)
    fig.tight_layout()
    return fig


def class_examples(dataset, per_class: int = 4, seed: int = 0):
    """A grid with ``per_class`` random images of every class, one row per class."""
    rng = np.random.default_rng(seed)
    rows = []
    for label, name in enumerate(dataset.class_names):
        idx = np.flatnonzero(dataset.labels == label)
        rows.append(rng.choice(idx, min(per_class, len(idx)), replace=False))
    fig, axes = plt.subplots(len(rows), per_class, figsize=(per_class * 1.2, len(rows) * 1.25), squeeze=False)
    for r, (idx, name) in enumerate(zip(rows, dataset.class_names)):
        for c, ax in enumerate(axes[r]):
            ax.set_xticks([]), ax.set_yticks([])
            for spine in ax.spines.values():
                spine.set_visible(False)
            if c < len(idx):
                ax.imshow(dataset.images[idx[c]], cmap="gray", vmin=0, vmax=255)
        axes[r, 0].set_ylabel(name, rotation=0, ha="right", va="center", fontsize=7)
    fig.subplots_adjust(wspace=0.03, hspace=0.05, left=0.3)
    return fig


def query_strips(query_images: np.ndarray, query_codes: Sequence[str], hit_images: np.ndarray,
                 hit_codes: np.ndarray, size: float = 1.35):
    """One row per query: the query (blue frame) and its hits, framed green when the code matches.

    Args:
        query_images: ``(nq, h, w)``.
        query_codes: ``(nq,)``.
        hit_images: ``(nq, k, h, w)``.
        hit_codes: ``(nq, k)``.
    """
    nq, k = hit_codes.shape
    fig, axes = plt.subplots(nq, k + 1, figsize=((k + 1) * size, nq * size * 1.2), squeeze=False)
    for q in range(nq):
        panels = [(query_images[q], query_codes[q], "tab:blue")] + [
            (hit_images[q, j], hit_codes[q, j], "tab:green" if hit_codes[q, j] == query_codes[q] else "tab:red")
            for j in range(k)]
        for ax, (image, code, colour) in zip(axes[q], panels):
            ax.imshow(image, cmap="gray", vmin=0, vmax=255)
            ax.set_xticks([]), ax.set_yticks([])
            for spine in ax.spines.values():
                spine.set_color(colour), spine.set_linewidth(3)
            ax.set_title(code, fontsize=5.5)
    axes[0, 0].set_xlabel("query", fontsize=7)
    fig.tight_layout()
    return fig


def precision_curves(curves: Mapping[str, Sequence[float]], title: str = "", ylabel: str = "mP@k",
                     reference: Mapping[str, Sequence[float]] | None = None):
    """Plot mP@k against k for several methods (dashed: published reference curves)."""
    fig, ax = plt.subplots(figsize=(6, 3.8))
    for name, values in curves.items():
        ax.plot(range(1, len(values) + 1), values, marker="o", ms=3, label=name)
    for name, values in (reference or {}).items():
        ax.plot(range(1, len(values) + 1), values, ls="--", color="gray", label=name)
    ax.set_xlabel("k (images retrieved)")
    ax.set_ylabel(ylabel)
    ax.set_xticks(range(1, 1 + max(len(v) for v in curves.values())))
    ax.grid(alpha=0.3)
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=7, loc="best")
    fig.tight_layout()
    return fig


def counts_bar(table: pd.DataFrame, column: str = "total", label: str = "code"):
    """Horizontal bar chart of image counts per class, coloured by modality."""
    colours = dict(zip(sorted(table["modality"].unique()), plt.cm.tab10.colors))
    fig, ax = plt.subplots(figsize=(6.5, 0.22 * len(table) + 1))
    ax.barh(table[label], table[column], color=[colours[m] for m in table["modality"]])
    ax.invert_yaxis()
    ax.set_xlabel("images")
    ax.tick_params(axis="y", labelsize=7)
    handles = [plt.Rectangle((0, 0), 1, 1, color=c) for c in colours.values()]
    ax.legend(handles, colours.keys(), title="modality", fontsize=7)
    fig.tight_layout()
    return fig


def training_curves(runs: Mapping[str, Mapping], title: str = ""):
    """Loss (solid) and validation loss (dashed) per epoch of each training run, best epoch marked.

    Args:
        runs: ``{network name: TrainingRun.to_dict()}``, e.g. a learned method's ``training_``
            (several methods' runs can be merged into one dict).
        title: Figure title.
    """
    fig, ax = plt.subplots(figsize=(6.5, 3.6))
    for (name, run), colour in zip(runs.items(), plt.cm.tab10.colors):
        history = run["history"]
        epochs = range(1, len(history["loss"]) + 1)
        ax.plot(epochs, history["loss"], color=colour, label=f"{name} ({run['stopped_by']}, "
                                                              f"{run['wall_s']:.0f} s)")
        if "val_loss" in history:
            ax.plot(epochs, history["val_loss"], color=colour, ls="--")
            best = run["best_epoch"]
            ax.plot(best, history["val_loss"][best - 1], "o", color=colour, ms=5)
    ax.set(xlabel="epoch", ylabel="loss (solid: training, dashed: validation)", title=title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="best")
    fig.tight_layout()
    return fig
