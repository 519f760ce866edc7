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


def _class_picks(dataset, per_class: int, seed: int) -> list[np.ndarray]:
    """Indices of ``per_class`` random images of every class, in class order (seeded)."""
    rng = np.random.default_rng(seed)
    picks = []
    for label in range(len(dataset.class_names)):
        idx = np.flatnonzero(dataset.labels == label)
        picks.append(rng.choice(idx, min(per_class, len(idx)), replace=False))
    return picks


def class_examples(dataset, per_class: int = 4, seed: int = 0):
    """A grid with ``per_class`` random images of every class, one row per class."""
    rows = _class_picks(dataset, per_class, seed)
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


VERDICT_COLOURS = {"supported": "tab:green", "contradicted": "tab:red", "inconclusive": "tab:grey"}


def forest_plot(claims: pd.DataFrame, label: str = "label", group: str = "paper", width: float = 3.4,
                wrap: int = 38, fontsize: float = 10):
    """Each claim's difference with its interval, one row per claim, coloured by verdict.

    Args:
        claims: One row per claim with ``difference``, ``ci_low``, ``ci_high`` and ``verdict``
            (``supported`` / ``contradicted`` / ``inconclusive``, as :func:`cbmir_tf.report.claim`
            writes them), the row's text in ``label`` and its group (paper) in ``group``. A positive
            difference favours the claim.
        label: Column holding the text of each row (wrapped at ``wrap`` characters).
        group: Column whose changes draw a thin separating line (rows keep their order).
        width: Width of the plotting area in inches (the row texts and numbers come beside it).
        wrap: Characters per line of a row's text.
        fontsize: Font size of every text, in points.

    Returns:
        The figure: rows top to bottom in the table's order, a zero line, and the difference and
        interval printed at the right of each row. When the rows' ranges differ by more than ten
        times, the axis is symmetric-logarithmic (linear within the smallest row's range), so that a
        large difference does not flatten the small ones. An empty table gives a figure that says so.
    """
    import textwrap

    n = len(claims)
    labels = ["\n".join(textwrap.wrap(str(t), wrap)) for t in claims[label]]
    lines = max((text.count("\n") + 1 for text in labels), default=1)
    fig, ax = plt.subplots(figsize=(width, max(0.45, 0.2 * lines * fontsize / 10 + 0.15) * max(n, 1) + 1.2))
    if n == 0:
        ax.text(0.5, 0.5, "no claims in this build", ha="center", va="center", fontsize=10)
        ax.set_axis_off()
        return fig
    y = np.arange(n)[::-1]
    colours = [VERDICT_COLOURS.get(v, "black") for v in claims["verdict"]]
    diff, low, high = (claims[c].to_numpy(float) for c in ("difference", "ci_low", "ci_high"))
    ax.hlines(y, low, high, colors=colours, lw=2)
    ax.scatter(np.r_[low, high], np.r_[y, y], c=colours * 2, marker="|", s=60)
    ax.scatter(diff, y, c=colours, s=36, zorder=3, edgecolor="black", linewidth=0.5)
    ax.axvline(0, color="black", lw=0.8)
    groups = claims[group].astype(str).to_numpy()
    for i in range(1, n):
        if groups[i] != groups[i - 1]:
            ax.axhline(y[i] + 0.5, color="grey", lw=0.5, ls=":")
    ax.set_yticks(y, labels, fontsize=fontsize)
    for yi, d, lo, hi in zip(y, diff, low, high):
        ax.annotate(f"{d:+.3f} [{lo:+.3f}, {hi:+.3f}]", (1.02, yi), xycoords=("axes fraction", "data"),
                    fontsize=fontsize, va="center")
    ax.set_ylim(-0.6, n - 0.4)
    rows_reach = np.nanmax(np.abs(np.c_[low, high]), axis=1)
    rows_reach = np.maximum(rows_reach[rows_reach > 0] if (rows_reach > 0).any() else [1.0], 1e-3)
    reach = 1.15 * rows_reach.max()
    if rows_reach.max() > 10 * rows_reach.min():
        linthresh = 10 ** np.floor(np.log10(rows_reach.min()))
        ax.set_xscale("symlog", linthresh=linthresh, linscale=1)
        reach *= 2  # a margin on the logarithmic part
        decades = 10.0 ** np.arange(np.log10(linthresh), np.log10(reach) + 1e-9)
        labelled = decades[::-1][::2]  # every other decade, from the largest, so that labels do not collide
        ax.set_xticks(np.r_[-labelled, 0, labelled])
        ax.set_xticks(np.r_[-decades, decades], minor=True)
        ax.xaxis.set_major_formatter(plt.FuncFormatter(lambda v, _: f"{v:g}"))
    ax.set_xlim(-reach, reach)
    ax.set_xlabel("difference in favour of the claim, 95 % interval\n(each row in its own measure)",
                  fontsize=fontsize)
    ax.tick_params(axis="x", labelsize=fontsize)
    ax.grid(axis="x", alpha=0.3)
    handles = [plt.Line2D([], [], marker="o", ls="", color=c, label=v) for v, c in VERDICT_COLOURS.items()]
    ax.legend(handles=handles, fontsize=fontsize, loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=3,
              frameon=False)
    return fig


def relevance_query_strips(query_images: np.ndarray, query_codes: Sequence[str], hit_images: np.ndarray,
                           hit_codes: np.ndarray, row_labels: Sequence[str] | None = None, size: float = 1.75,
                           fontsize: float = 7.5):
    """One row per query (blue frame) and its hits, each hit framed by how relevant it is.

    A hit with the query's whole code is framed green, one with the query's modality and region but
    another finding orange (relevant under paper 002's "both"), any other red. Codes
    ``MOD-region-finding`` are titled on two lines (``MOD-region`` over the finding), so that they
    stay readable at ``fontsize``; other codes are titled as they are and only an identical code
    counts as relevant.

    Args:
        query_images: ``(nq, h, w)`` grey images.
        query_codes: ``(nq,)``.
        hit_images: ``(nq, k, h, w)``.
        hit_codes: ``(nq, k)``.
        row_labels: Text left of each row (e.g. the query's region); `None` for none.
        size: Width of one panel in inches.
        fontsize: Font size of the titles and row labels, in points.
    """

    def parts(code: str) -> tuple[str, str]:
        pieces = str(code).split("-", 2)
        return ("-".join(pieces[:2]), pieces[2].replace("_", " ")) if len(pieces) == 3 else (str(code), "")

    nq, k = np.asarray(hit_codes).shape
    fig, axes = plt.subplots(nq, k + 1, figsize=((k + 1) * size, nq * size * 1.22), squeeze=False)
    for q in range(nq):
        query_group = parts(query_codes[q])[0] if parts(query_codes[q])[1] else None
        panels = [(query_images[q], query_codes[q], "tab:blue")]
        for j in range(k):
            code = hit_codes[q, j]
            colour = ("tab:green" if code == query_codes[q] else
                      "tab:orange" if query_group is not None and parts(code)[0] == query_group else "tab:red")
            panels.append((hit_images[q, j], code, colour))
        for ax, (image, code, colour) in zip(axes[q], panels):
            ax.imshow(image, cmap="gray", vmin=0, vmax=255)
            ax.set_xticks([]), ax.set_yticks([])
            for spine in ax.spines.values():
                spine.set_color(colour), spine.set_linewidth(3)
            group, finding = parts(code)
            ax.set_title(f"{group}\n{finding}" if finding else group, fontsize=fontsize, linespacing=1.1)
        if row_labels is not None:
            axes[q, 0].set_ylabel(row_labels[q], fontsize=fontsize + 1.5, fontweight="bold")
    fig.tight_layout()
    return fig


def class_example_blocks(dataset, per_class: int = 4, seed: int = 0, panels_per_row: int = 12,
                         size: float = 0.75, fontsize: float = 9):
    """``per_class`` random images of every class, in blocks that wrap: a page-wide grid, not a column.

    The images are those :func:`class_examples` draws (same ``seed``, same order); each class is a
    block of ``per_class`` images side by side with the class name above it, and as many blocks
    share a row as fit in about ``panels_per_row`` images.

    Args:
        dataset: An ``ImageDataset`` (``images`` ``(n, h, w)`` uint8, ``labels``, ``class_names``).
        per_class: Images per class.
        seed: Seed of the draw.
        panels_per_row: Images per row to aim at (at least one block per row).
        size: Width of one image in inches.
        fontsize: Font size of the class names, in points.
    """
    picks = _class_picks(dataset, per_class, seed)
    blocks = max(1, round(panels_per_row / per_class))
    rows = -(-len(picks) // blocks)
    ratios = ([1] * per_class + [0.25]) * blocks
    fig, axes = plt.subplots(rows, len(ratios) - 1, squeeze=False, gridspec_kw={"width_ratios": ratios[:-1]},
                             figsize=(size * sum(ratios[:-1]), rows * size * (1 + 0.45 * fontsize / 9)))
    for ax in axes.flat:
        ax.set_axis_off()
    for c, (idx, name) in enumerate(zip(picks, dataset.class_names)):
        row, first = divmod(c, blocks)
        for j, i in enumerate(idx):
            ax = axes[row, first * (per_class + 1) + j]
            ax.imshow(dataset.images[i], cmap="gray", vmin=0, vmax=255)
        axes[row, first * (per_class + 1)].set_title(name, loc="left", fontsize=fontsize)
    fig.subplots_adjust(wspace=0.04, hspace=0.35)
    return fig
