"""Region-of-interest (ROI) matching in retrieved images by 2-D cross-correlation.

Given a rectangle drawn on the query, paper 003 slides the query's ROI over each
retrieved image and takes the position of the largest cross-correlation, after
subtracting each image's mean intensity. Two scores are offered here:

* ``method="ncc"`` (the default): normalised cross-correlation, i.e. the
  zero-mean normalised correlation of ``skimage.feature.match_template``: at each
  position the ROI and the image window under it are both mean-subtracted and the
  dot product is divided by both norms, so scores lie in [-1, 1] and do not
  depend on brightness or contrast.
* ``method="xcorr"``: the paper's plain sliding dot product of the ROI of the
  mean-subtracted query with the mean-subtracted retrieved image (one global mean
  per image); scores are unbounded and favour bright regions.

Boxes are ``(x, y, w, h)`` in pixels: column and row of the top-left corner, width, height.

Reference: Liu et al. (paper 003), Section 3.4 and Fig. 5.
"""

from __future__ import annotations

import numpy as np
from scipy.signal import correlate
from skimage.feature import match_template

METHODS = ("ncc", "xcorr")


def _check_box(box, shape: tuple[int, int]) -> tuple[int, int, int, int]:
    try:
        x, y, w, h = (int(v) for v in box)
    except (TypeError, ValueError):
        raise ValueError(f"box must be four integers (x, y, w, h). Received: box={box!r}") from None
    if w < 2 or h < 2 or x < 0 or y < 0 or x + w > shape[1] or y + h > shape[0]:
        raise ValueError(f"box must lie inside the query image of shape {shape} and be at least 2 x 2 "
                         f"pixels. Received: box={box!r}")
    return x, y, w, h


def match_roi(query_image: np.ndarray, box, images: np.ndarray, *,
              method: str = "ncc") -> tuple[np.ndarray, np.ndarray]:
    """Find the region of each image that best matches the query's ROI.

    Args:
        query_image: Grey query image ``(h, w)``.
        box: The ROI on the query, ``(x, y, w, h)`` in pixels.
        images: Grey images to search, ``(n, H, W)`` (one 2-D image is promoted), each at least
            as large as the ROI.
        method: ``"ncc"`` (normalised cross-correlation, ``skimage.feature.match_template``) or
            ``"xcorr"`` (the paper's mean-subtracted cross-correlation). Defaults to ``"ncc"``.

    Returns:
        ``(boxes, scores)``: int64 ``(n, 4)`` boxes ``(x, y, w, h)`` of the best match in each
        image (same width and height as the ROI) and float64 ``(n,)`` peak scores.
    """
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}. Received: method={method!r}")
    query_image = np.asarray(query_image)
    if query_image.ndim != 2:
        raise ValueError(f"query_image must be one 2-D grey image. Got shape {query_image.shape} instead.")
    images = np.asarray(images)
    images = images[None] if images.ndim == 2 else images
    if images.ndim != 3 or len(images) == 0:
        raise ValueError(f"images must have shape (n, height, width). Got shape {images.shape} instead.")
    x, y, w, h = _check_box(box, query_image.shape)
    if images.shape[1] < h or images.shape[2] < w:
        raise ValueError(f"images of shape {images.shape[1:]} are smaller than the ROI ({h} x {w}).")
    query = query_image.astype(np.float64)
    if method == "xcorr":
        query = query - query.mean()
    template = query[y:y + h, x:x + w]
    boxes, scores = np.zeros((len(images), 4), np.int64), np.zeros(len(images))
    for i, image in enumerate(images.astype(np.float64)):
        if method == "ncc":
            response = match_template(image, template)  # (H - h + 1, W - w + 1), top-left anchored
        else:
            response = correlate(image - image.mean(), template, mode="valid", method="fft")
        row, col = np.unravel_index(int(np.argmax(response)), response.shape)
        boxes[i], scores[i] = (col, row, w, h), float(response[row, col])
    return boxes, scores


def draw_roi_matches(query_image: np.ndarray, box, images: np.ndarray, boxes: np.ndarray,
                     scores: np.ndarray, titles=None, axes=None, score_label: str = "NCC",
                     ax_size: float = 1.6):
    """Draw the query with its ROI (red) and each image with its matched box (yellow).

    Args:
        query_image: ``(h, w)`` grey query.
        box: The query ROI ``(x, y, w, h)``.
        images: ``(n, H, W)`` searched images; ``boxes`` ``(n, 4)`` and ``scores`` ``(n,)`` from
            ``match_roi``.
        titles: Optional ``n`` strings shown above the scores.
        axes: Optional ``n + 1`` matplotlib axes to draw into (e.g. one row of a grid); a new
            one-row figure otherwise.
        score_label: What the scores are, printed before each. Defaults to ``"NCC"``.

    Returns:
        The matplotlib figure.
    """
    import matplotlib.pyplot as plt
    from matplotlib.patches import Rectangle

    n = len(images)
    if axes is None:
        _, axes = plt.subplots(1, n + 1, figsize=((n + 1) * ax_size, ax_size * 1.25), squeeze=False)
        axes = axes[0]
    if len(axes) != n + 1:
        raise ValueError(f"axes must hold {n + 1} axes (query + {n} images). Got {len(axes)} instead.")
    panels = [(query_image, box, "tab:red", "query ROI")] + [
        (images[i], boxes[i], "yellow",
         ("" if titles is None else f"{titles[i]}\n") + f"{score_label} {scores[i]:.2f}")
        for i in range(n)]
    for ax, (image, (bx, by, bw, bh), colour, title) in zip(axes, panels):
        ax.imshow(image, cmap="gray", vmin=0, vmax=255)
        ax.add_patch(Rectangle((bx - 0.5, by - 0.5), bw, bh, fill=False, edgecolor=colour, linewidth=1.5))
        ax.set_title(title, fontsize=5.5)
        ax.axis("off")
    fig = axes[0].figure
    fig.tight_layout()
    return fig
