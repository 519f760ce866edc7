"""The ``cbmir`` command: index a folder of images or DICOM files, query it, evaluate it.

    cbmir index FOLDER --method hog --out INDEX_DIR
    cbmir query IMAGE --index INDEX_DIR -k 10 [--roi X,Y,W,H] [--sheet hits.png]
    cbmir evaluate --index INDEX_DIR [--labels folder|dicom|LABELS.csv] [-k 10]

Exit status: 0 on success; 1 on an error (a clear message on stderr, nothing written);
2 on a usage error; 3 when ``index`` wrote the index but had to skip unreadable files
(listed on stderr); 130 when interrupted (no half-written index is left behind).
"""

from __future__ import annotations

import argparse
import csv
import os
import sys
import time
from pathlib import Path

import numpy as np

EXIT_ERROR, EXIT_SKIPPED, EXIT_INTERRUPTED = 1, 3, 130


class CLIError(Exception):
    """An error the user can fix; its message is printed without a traceback."""


def parse_roi(text: str) -> tuple[int, int, int, int]:
    """``"x,y,w,h"`` -> four ints (pixels of the query image as stored on disk)."""
    try:
        x, y, w, h = (int(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"--roi must be four integers x,y,w,h. Received: {text!r}") from None
    return x, y, w, h


def roi_on_standard_image(roi, shape: tuple[int, int], size: int) -> tuple[int, int, int, int]:
    """Map a box on an ``(h, w)`` image to the padded-square, ``size``-px image `standardize_image` makes."""
    x, y, w, h = roi
    height, width = shape
    if w < 1 or h < 1 or x < 0 or y < 0 or x + w > width or y + h > height:
        raise CLIError(f"--roi {x},{y},{w},{h} does not lie inside the query image ({width} x {height} px).")
    side = max(height, width)
    scale = size / side
    left, top = (side - width) // 2, (side - height) // 2
    return (round((x + left) * scale), round((y + top) * scale), max(2, round(w * scale)), max(2, round(h * scale)))


def _print_skipped(skipped) -> None:
    print(f"skipped {len(skipped)} unreadable file(s):", file=sys.stderr)
    for path, reason in skipped:
        print(f"  {path}: {reason}", file=sys.stderr)


def cmd_index(args) -> int:
    from cbmir_tf.archive import build_archive

    start = time.perf_counter()
    options = {"n_words": args.words} if args.method == "bovw" else {}
    archive = build_archive(args.folder, args.method, image_size=args.image_size, batch_size=args.batch_size,
                            progress=not args.quiet, **options)
    archive.save(args.out)
    seconds = time.perf_counter() - start
    print(f"indexed {len(archive)} images of {args.folder} with {args.method} in {seconds:.1f} s "
          f"({len(archive) / seconds:.1f} img/s, {archive.method.bytes_per_image:,.0f} bytes/image) -> {args.out}")
    if archive.skipped:
        _print_skipped(archive.skipped)
        return EXIT_SKIPPED
    return 0


def _read_query(path: str, size: int) -> tuple[np.ndarray, np.ndarray]:
    """The query as read (grey) and standardised like the archive images."""
    from cbmir_tf.data.io import read_image
    from cbmir_tf.data.preprocess import standardize_image

    try:
        original = read_image(path)
    except (ValueError, FileNotFoundError) as err:
        raise CLIError(str(err)) from None
    return original, standardize_image(original, size)


def contact_sheet(query: np.ndarray, hits: list[np.ndarray], titles: list[str], roi=None, boxes=None, scores=None):
    """The query and its hits in one figure; with an ROI, the query box and each hit's matched box."""
    from cbmir_tf import plots
    from cbmir_tf.search.roi import draw_roi_matches

    if roi is not None:
        return draw_roi_matches(query, roi, np.stack(hits), boxes, scores, titles=titles, ax_size=1.8)
    return plots.image_grid(np.stack([query, *hits]), ["query", *titles], ncols=min(6, len(hits) + 1), size=1.8)


def cmd_query(args) -> int:
    import matplotlib

    matplotlib.use("Agg")
    from cbmir_tf.archive import Archive
    from cbmir_tf.data.io import atomic_write
    from cbmir_tf.search.roi import match_roi

    archive = Archive.load(args.index, method=args.method)
    original, query = _read_query(args.image, archive.image_size)
    D, I = archive.search(query[None], args.k)
    hits = [int(i) for i in I[0] if i >= 0]
    thumbnails, titles = [], []
    for rank, i in enumerate(hits, 1):
        try:
            _, image = _read_query(archive.absolute_path(i), archive.image_size)
        except CLIError as err:  # the archive file moved or broke since indexing: show a blank
            print(f"warning: {err}", file=sys.stderr)
            image = np.zeros_like(query)
        thumbnails.append(image)
        titles.append(f"#{rank} {Path(archive.paths[i]).name}\nd={float(D[0, rank - 1]):.3g}")
    roi = boxes = scores = None
    if args.roi is not None:
        roi = roi_on_standard_image(args.roi, original.shape, archive.image_size)
        boxes, scores = match_roi(query, roi, np.stack(thumbnails))
    sheet = Path(args.sheet or f"{Path(args.image).stem}_hits.png")
    fig = contact_sheet(query, thumbnails, titles, roi, boxes, scores)
    with atomic_write(sheet) as tmp:
        fig.savefig(tmp, dpi=120, format="png")
    print(f"{len(hits)} nearest of {len(archive)} images ({archive.method_name}) for {args.image}:")
    for rank, i in enumerate(hits, 1):
        extra = f"  roi=({','.join(map(str, boxes[rank - 1]))}) ncc={scores[rank - 1]:.3f}" if roi else ""
        print(f"{rank:3d}  {float(D[0, rank - 1]):10.4g}  {archive.paths[i]}{extra}")
    print(f"contact sheet: {sheet}")
    return 0


def read_labels(source: str, archive) -> np.ndarray:
    """One label per archive image: ``folder`` (parent folder name), ``dicom`` (Modality-BodyPartExamined)
    or a CSV file with columns ``path,label`` (paths relative to the indexed folder)."""
    from cbmir_tf.data.dicom import dicom_labels

    if source == "folder":
        return np.array([Path(p).parent.name or "." for p in archive.paths])
    if source == "dicom":
        labels = []
        for i in range(len(archive)):
            try:
                tags = dicom_labels(archive.absolute_path(i))
            except (ValueError, OSError) as err:
                raise CLIError(f"--labels dicom: {err}") from None
            labels.append(f"{tags['Modality']}-{tags['BodyPartExamined']}")
        return np.array(labels)
    path = Path(source)
    if not path.is_file():
        raise CLIError(f"--labels {source}: no such file (give a CSV with columns path,label, or 'folder' or 'dicom')")
    with open(path, newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    if not rows or not {"path", "label"} <= set(rows[0]):
        raise CLIError(f"{path}: needs a header with columns 'path' and 'label'.")
    table = {Path(r["path"]).as_posix(): r["label"] for r in rows}
    missing = [p for p in archive.paths if p not in table]
    if missing:
        raise CLIError(f"{path}: no label for {len(missing)} indexed image(s), e.g. {missing[:3]}")
    return np.array([table[p] for p in archive.paths])


def cmd_evaluate(args) -> int:
    import pandas as pd

    from cbmir_tf.archive import Archive
    from cbmir_tf.evaluation import code_axes_known, first_hit_error, metrics_table

    archive = Archive.load(args.index, method=args.method)
    labels = read_labels(args.labels, archive)
    k = min(args.k, len(archive) - 1)
    if k < 1:
        raise CLIError(f"{args.index}: holds {len(archive)} image(s); leave-one-out needs at least two.")
    _, hits = archive.search_archive(k)
    table = metrics_table(labels, labels, hits, k, leave_one_out=True)
    print(f"{archive.method_name} on {len(archive)} images, leave-one-out, {len(np.unique(labels))} labels:")
    with pd.option_context("display.float_format", "{:.4f}".format, "display.width", 120):
        print(table)
    if code_axes_known(labels):
        error = first_hit_error(labels, labels, hits)
        print(f"first-hit hierarchical error: {error['error_mean']:.4f} per query "
              f"(total {error['error_total']:.2f}); first-hit accuracy {error['accuracy']:.4f}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    from cbmir_tf.methods import CLI_METHODS

    parser = argparse.ArgumentParser(prog="cbmir", description=__doc__.splitlines()[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog="methods:\n" + "\n".join(f"  {k:8s} {v}" for k, v in CLI_METHODS.items()))
    commands = parser.add_subparsers(dest="command", required=True)
    index = commands.add_parser("index", help="describe and index every image under a folder")
    index.add_argument("folder", help="folder of images (PNG, JPEG, TIFF, BMP) and/or DICOM files, searched recursively")
    index.add_argument("--method", choices=sorted(CLI_METHODS), default="hog")
    index.add_argument("--out", required=True, help="index folder to write (replaced atomically)")
    index.add_argument("--image-size", type=int, default=256, help="images are padded square and resized to this")
    index.add_argument("--batch-size", type=int, default=64)
    index.add_argument("--words", type=int, default=1000, help="bovw only: vocabulary size (n_words)")
    index.add_argument("--quiet", action="store_true", help="no progress bars")
    query = commands.add_parser("query", help="the nearest indexed images of one image")
    query.add_argument("image", help="an image or DICOM file")
    query.add_argument("--index", required=True)
    query.add_argument("-k", type=int, default=10)
    query.add_argument("--roi", type=parse_roi, help="x,y,w,h on the query: find this region in every hit")
    query.add_argument("--sheet", help="contact-sheet PNG to write (default: <image name>_hits.png)")
    query.add_argument("--method", choices=sorted(CLI_METHODS), help="refuse an index built with another method")
    evaluate = commands.add_parser("evaluate", help="leave-one-out retrieval scores of an index")
    evaluate.add_argument("--index", required=True)
    evaluate.add_argument("--labels", default="folder",
                          help="'folder' (parent folder names, the default), 'dicom' (Modality-BodyPartExamined) "
                               "or a CSV with columns path,label")
    evaluate.add_argument("-k", type=int, default=10)
    evaluate.add_argument("--method", choices=sorted(CLI_METHODS), help="refuse an index built with another method")
    return parser


def main(argv=None) -> int:
    """Run the ``cbmir`` command; returns the exit status."""
    args = build_parser().parse_args(argv)
    if getattr(args, "k", 1) < 1:
        print("cbmir: error: -k must be a positive integer", file=sys.stderr)
        return EXIT_ERROR
    command = {"index": cmd_index, "query": cmd_query, "evaluate": cmd_evaluate}[args.command]
    try:
        return command(args)
    except BrokenPipeError:  # e.g. `cbmir query ... | head`: the reader left, the work is done
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - silences the flush at exit
        return 0
    except KeyboardInterrupt:
        print("cbmir: interrupted; nothing was written", file=sys.stderr)
        return EXIT_INTERRUPTED
    except (CLIError, ValueError, FileNotFoundError) as err:
        print(f"cbmir {args.command}: error: {err}", file=sys.stderr)
        return EXIT_ERROR


if __name__ == "__main__":
    sys.exit(main())
