"""One query against an indexed archive, as the ``cbmir query`` command and ``cbmir serve`` run it.

`read_query` reads an image or DICOM file (or uploaded bytes, `read_upload`) and standardises it
like the archive's images; `find_similar` searches the archive and, given a box on the query,
finds the best-matching box in every hit (paper 003's ROI matching); `contact_sheet` draws the
query and its hits into one Pillow image.

Only NumPy, Pillow, pydicom, OpenCV and the chosen method are imported here, so that a one-shot
``cbmir query`` with HOG starts in well under a second; ROI matching imports scikit-image when asked.
"""

from __future__ import annotations

import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path, PurePath

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from cbmir_tf.data.io import read_image
from cbmir_tf.data.preprocess import standardize_image

__all__ = ["Hit", "contact_sheet", "find_similar", "read_query", "read_upload", "roi_on_standard_image"]

Box = tuple[int, int, int, int]


@dataclass(frozen=True)
class Hit:
    """One retrieved archive image.

    Attributes:
        rank: 1 for the nearest.
        id: Row of the archive (``images.csv``).
        path: Path relative to the indexed folder.
        distance: Distance to the query under the method's metric.
        box: Best-matching ``(x, y, w, h)`` on the standardised hit when the query had an ROI.
        score: Normalised cross-correlation of that box with the query's ROI.
    """

    rank: int
    id: int
    path: str
    distance: float
    box: Box | None = None
    score: float | None = None

    @property
    def label(self) -> str:
        """The hit's folder name, the label ``cbmir evaluate --labels folder`` gives it ('' at the top)."""
        return PurePath(self.path).parent.name

    def to_dict(self) -> dict:
        """JSON-ready fields, with the label."""
        return {**asdict(self), "label": self.label}


def read_query(path: str | Path, size: int) -> tuple[np.ndarray, np.ndarray]:
    """The query as read (grey, original size) and standardised to ``size`` px like the archive.

    Raises:
        FileNotFoundError, ValueError: the file is missing or not a readable image (message names it).
    """
    original = read_image(path)
    return original, standardize_image(original, size)


def read_upload(data: bytes, name: str, size: int) -> tuple[np.ndarray, np.ndarray]:
    """`read_query` for the bytes of an uploaded file called ``name`` (only its suffix is used).

    The bytes go through a private temporary file, so every format and check of
    `cbmir_tf.data.io.read_image` applies; errors name the upload, not the temporary file.
    """
    suffix = "".join(c for c in PurePath(name or "upload").suffix[:10] if c.isalnum() or c == ".")
    with tempfile.TemporaryDirectory(prefix="cbmir-upload-") as folder:
        path = Path(folder) / f"upload{suffix}"
        path.write_bytes(data)
        try:
            return read_query(path, size)
        except (ValueError, FileNotFoundError) as err:
            raise ValueError(str(err).replace(str(path), name or "upload")) from None


def roi_on_standard_image(roi: Box, shape: tuple[int, int], size: int) -> Box:
    """Map a box on an ``(h, w)`` image to the padded-square, ``size``-px image `standardize_image` makes.

    Raises:
        ValueError: the box does not lie inside the image.
    """
    x, y, w, h = (int(v) for v in roi)
    height, width = shape
    if w < 1 or h < 1 or x < 0 or y < 0 or x + w > width or y + h > height:
        raise ValueError(f"ROI {x},{y},{w},{h} does not lie inside the query image ({width} x {height} px)")
    side = max(height, width)
    scale = size / side
    left, top = (side - width) // 2, (side - height) // 2
    return (round((x + left) * scale), round((y + top) * scale), max(2, round(w * scale)), max(2, round(h * scale)))


def find_similar(archive, query: np.ndarray, k: int, roi: Box | None = None,
                 read_hit=None) -> list[Hit]:
    """The ``k`` nearest archive images of a standardised ``query``; with ``roi`` (a box on the
    standardised query), each hit's best-matching box.

    Args:
        archive: A loaded `cbmir_tf.archive.Archive`.
        query: ``(size, size)`` uint8, as `read_query` returns it second.
        k: Number of hits (at most the archive's size).
        roi: ``(x, y, w, h)`` on ``query``, or `None`.
        read_hit: ``id -> (size, size)`` image of an archive entry, needed with ``roi``
            (defaults to reading the archive's file; a server passes its cache).
    """
    D, I = archive.search(query[None], k)
    hits = [Hit(rank, int(i), archive.paths[i], float(d))
            for rank, (d, i) in enumerate(zip(D[0], I[0]), 1) if i >= 0]
    if roi is None or not hits:
        return hits
    from cbmir_tf.search.roi import match_roi  # scikit-image: only for ROI queries

    read_hit = read_hit or (lambda i: read_query(archive.absolute_path(i), archive.image_size)[1])
    boxes, scores = match_roi(query, roi, np.stack([read_hit(hit.id) for hit in hits]))
    return [Hit(h.rank, h.id, h.path, h.distance, tuple(int(v) for v in box), float(np.clip(s, -1, 1)))
            for h, box, s in zip(hits, boxes, scores)]


def contact_sheet(query: np.ndarray, hits: list[Hit], images: list[np.ndarray], roi: Box | None = None,
                  columns: int = 6, tile: int = 200) -> Image.Image:
    """The query (ROI in red) and its hits (matched box in yellow), captioned, on a grid of ``tile`` px."""
    font = ImageFont.load_default()
    caption = 30
    panels = [_panel(query, "query", roi, "red", tile, caption, font)]
    for hit, image in zip(hits, images):
        text = f"#{hit.rank} {PurePath(hit.path).name[:28]}\nd={hit.distance:.4g}"
        if hit.score is not None:
            text += f"  ncc={hit.score:.2f}"
        panels.append(_panel(image, text, hit.box, "yellow", tile, caption, font))
    columns = min(columns, len(panels))
    rows = -(-len(panels) // columns)
    sheet = Image.new("RGB", (columns * tile, rows * (tile + caption)), "white")
    for n, panel in enumerate(panels):
        sheet.paste(panel, ((n % columns) * tile, (n // columns) * (tile + caption)))
    return sheet


def _panel(image: np.ndarray, text: str, box: Box | None, colour: str, tile: int, caption: int, font):
    """One captioned tile: the image scaled to ``tile`` px, with ``box`` outlined."""
    scale = tile / max(image.shape)
    picture = Image.fromarray(image).convert("RGB").resize(
        (round(image.shape[1] * scale), round(image.shape[0] * scale)), Image.Resampling.BILINEAR)
    panel = Image.new("RGB", (tile, tile + caption), "white")
    panel.paste(picture, (0, caption))
    draw = ImageDraw.Draw(panel)
    draw.multiline_text((3, 2), text, fill="black", font=font, spacing=2)
    if box is not None:
        x, y, w, h = (v * scale for v in box)
        draw.rectangle((x, y + caption, x + w, y + h + caption), outline=colour, width=2)
    return panel
