"""The ``cbmir`` command: index a folder of images or DICOM files, query it, evaluate it.

    cbmir index FOLDER --method hog --out INDEX_DIR [--workers N | --cluster tcp://HOST:PORT | --cluster local:N]
    cbmir query IMAGE --index INDEX_DIR -k 10 [--roi X,Y,W,H] [--sheet hits.png]
    cbmir evaluate --index INDEX_DIR [--labels folder|dicom|LABELS.csv] [-k 10]
    cbmir serve --index INDEX_DIR [--host 127.0.0.1] [--port 8000]   (a web page and a JSON API)

Exit status: 0 on success; 1 on an error (a clear message on stderr, nothing written);
2 on a usage error; 3 when ``index`` wrote the index but had to skip unreadable files
(listed on stderr, one line each, then one line counting them by reason); 130 when interrupted
by Ctrl-C (SIGINT) and 143 when terminated by SIGTERM (both: no half-written index is left behind).
An error is one line, ``cbmir <command>: error: <path>: <problem>``.
"""

from __future__ import annotations

import argparse
import csv
import os
import re
import signal
import sys
import threading
import time
from pathlib import Path

import numpy as np

EXIT_ERROR, EXIT_SKIPPED, EXIT_INTERRUPTED, EXIT_TERMINATED = 1, 3, 130, 143
MIN_IMAGE_SIZE, MAX_IMAGE_SIZE = 32, 4096


class CLIError(Exception):
    """An error the user can fix; its message is printed without a traceback."""


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised in the main thread like Ctrl-C, so that atomic writes clean up on the way out."""


def _raise_terminated(signum, frame) -> None:
    raise Terminated


def bounded_int(name: str, low: int, high: int | None = None):
    """An argparse ``type``: an integer ``low <= value [<= high]``, else a usage error naming ``name``."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{name} must be an integer. Received: {text!r}") from None
        if value < low or (high is not None and value > high):
            bounds = f"between {low} and {high}" if high is not None else f"at least {low}"
            raise argparse.ArgumentTypeError(f"{name} must be {bounds}. Received: {value}")
        return value

    parse.__name__ = name
    return parse


def parse_roi(text: str) -> tuple[int, int, int, int]:
    """``"x,y,w,h"`` -> four ints (pixels of the query image as stored on disk)."""
    try:
        x, y, w, h = (int(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"--roi must be four integers x,y,w,h. Received: {text!r}") from None
    return x, y, w, h


# Reason category of a skipped file: the first pattern found in its message wins.
_SKIP_CATEGORIES = (("name not valid UTF-8", "name not UTF-8"), ("empty file", "empty"), ("too large", "too large"),
                    ("NaN/inf", "NaN/inf pixels"), ("Pixel Data missing", "no pixel data"),
                    ("truncated|less than expected", "truncated"),
                    ("not a recognised image|not a DICOM file", "not an image"), ("cannot decode", "cannot decode"),
                    ("cannot read|no such file", "unreadable"), ("corrupt|cannot parse", "corrupt"))


def skip_category(reason: str) -> str:
    """A short category of a skipped file's reason: ``"truncated"``, ``"not an image"``, ... else ``"other"``."""
    return next((name for pattern, name in _SKIP_CATEGORIES if re.search(pattern, reason, re.IGNORECASE)), "other")


def _shown(text) -> str:
    """`text` (a path) with the undecodable bytes of a file name shown as ``\\xNN``, printable as UTF-8."""
    return str(text).encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def _printable(text: str) -> str:
    """One line (whitespace collapsed), with undecodable bytes of a file name shown as ``\\xNN``."""
    return " ".join(_shown(text).split())


def _print_skipped(skipped) -> None:
    """One line per skipped file, ``<path>: <reason>``, then one line counting them by reason."""
    counts: dict[str, int] = {}
    for path, reason in skipped:
        line = reason if reason.startswith(str(path)) else f"{path}: {reason}"
        print(f"  {_printable(line)}", file=sys.stderr)
        category = skip_category(reason)
        counts[category] = counts.get(category, 0) + 1
    ranked = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    print(f"skipped {len(skipped)} file{'s' * (len(skipped) != 1)}: "
          + ", ".join(f"{n} {name}" for name, n in ranked), file=sys.stderr)


def cluster_address(text: str) -> str:
    """An argparse ``type`` for ``--cluster``: ``local:N`` (N >= 1) or a scheduler address, as given."""
    from cbmir_tf.distributed import parse_local

    try:
        parse_local(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None
    if not text.strip():
        raise argparse.ArgumentTypeError("--cluster needs an address, tcp://HOST:PORT or local:N")
    return text


def _engine(args) -> str:
    """Who describes the images, in words (for the summary line)."""
    if args.cluster:
        local = args.cluster.startswith("local:")
        return f"a local Dask cluster of {args.cluster[6:]} workers" if local else f"the Dask cluster at {args.cluster}"
    return f"{args.workers} process{'es' * (args.workers != 1)}"


def cmd_index(args) -> int:
    from cbmir_tf.archive import MANIFEST, build_archive
    from cbmir_tf.data.io import check_output
    from cbmir_tf.distributed import IndexingError, available_cores

    check_output(args.out, folder=True, marker=MANIFEST)  # before the work, not after
    if args.workers is None:
        args.workers = available_cores()
    start = time.perf_counter()
    options = {"n_words": args.words} if args.method == "bovw" else {}
    try:
        archive = build_archive(args.folder, args.method, image_size=args.image_size, batch_size=args.batch_size,
                                progress=not args.quiet, index_kind=args.index_kind, workers=args.workers,
                                cluster=args.cluster, chunk_size=args.chunk_size, **options)
    except IndexingError as err:
        raise CLIError(str(err)) from None
    archive.save(args.out)
    seconds = time.perf_counter() - start
    print(f"indexed {len(archive)} images of {_shown(args.folder)} with {args.method} in {seconds:.1f} s "
          f"({len(archive) / seconds:.1f} img/s on {_engine(args)}, {archive.method.bytes_per_image:,.0f} "
          f"bytes/image) -> {_shown(args.out)}")
    calibration = archive.index.calibration_
    if calibration:
        reference = "a scan of all its cells" if args.index_kind == "ivfpq" else "exact search"
        print(f"{args.index_kind}: {calibration['knob']} {calibration['value']} gives recall@{calibration['k']} "
              f"{calibration['recall']:.3f} against {reference} on {calibration['n_queries']:,} of the archive's "
              f"vectors (target {calibration['target_recall']})")
    if archive.skipped:
        _print_skipped(archive.skipped)
        return EXIT_SKIPPED
    return 0


def _read_query(path: str, size: int) -> tuple[np.ndarray, np.ndarray]:
    """The query as read (grey) and standardised like the archive images."""
    from cbmir_tf.queries import read_query

    try:
        return read_query(path, size)
    except (ValueError, FileNotFoundError) as err:
        raise CLIError(str(err)) from None


def cmd_query(args) -> int:
    from cbmir_tf.archive import Archive
    from cbmir_tf.data.io import atomic_write, check_output
    from cbmir_tf.queries import contact_sheet, find_similar, roi_on_standard_image

    sheet = check_output(args.sheet or f"{Path(args.image).stem}_hits.png")
    archive = Archive.load(args.index, method=args.method)
    if args.k > len(archive):
        print(f"note: {args.index} holds {len(archive)} images; showing {len(archive)}", file=sys.stderr)
    original, query = _read_query(args.image, archive.image_size)
    roi = roi_on_standard_image(args.roi, original.shape, archive.image_size) if args.roi else None
    images = {}

    def read_hit(i: int) -> np.ndarray:
        if i not in images:
            try:
                images[i] = _read_query(archive.absolute_path(i), archive.image_size)[1]
            except CLIError as err:  # the archive file moved or broke since indexing: show a blank
                print(f"warning: {_printable(str(err))}", file=sys.stderr)
                images[i] = np.zeros_like(query)
        return images[i]

    hits = find_similar(archive, query, args.k, roi, read_hit=read_hit)
    picture = contact_sheet(query, hits, [read_hit(hit.id) for hit in hits], roi)
    with atomic_write(sheet) as tmp:
        picture.save(tmp, format="PNG")
    print(f"{len(hits)} nearest of {len(archive)} images ({archive.method_name}) for {_shown(args.image)}:")
    for hit in hits:
        extra = f"  roi=({','.join(map(str, hit.box))}) ncc={hit.score:.3f}" if hit.box else ""
        print(f"{hit.rank:3d}  {hit.distance:10.4g}  {hit.path}{extra}")
    print(f"contact sheet: {_shown(sheet)}")
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
    table = read_labels_csv(path)
    missing = [p for p in archive.paths if p not in table]
    if missing:
        raise CLIError(f"{path}: no label for {len(missing)} indexed image(s), e.g. {missing[:3]}")
    return np.array([table[p] for p in archive.paths])


def read_labels_csv(path: Path) -> dict[str, str]:
    """``{path: label}`` from a CSV with a ``path,label`` header (UTF-8, a byte-order mark allowed).

    Raises:
        CLIError: one line naming the CSV (and the line): not UTF-8, no such header, an empty
        label, or one path given two different labels.
    """
    data = path.read_bytes()
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        start = err.start + (3 if data.startswith(b"\xef\xbb\xbf") else 0)
        line = data[:start].count(b"\n") + 1
        raise CLIError(f"{path}: not UTF-8 text (byte 0x{data[start]:02x} at offset {start}, line {line}); "
                       "save it as UTF-8") from None
    reader = csv.DictReader(text.splitlines(keepends=True))
    if not reader.fieldnames or not {"path", "label"} <= {(f or "").strip() for f in reader.fieldnames}:
        raise CLIError(f"{path}: needs a header with columns 'path' and 'label'.")
    reader.fieldnames = [(f or "").strip() for f in reader.fieldnames]
    table: dict[str, str] = {}
    first_line: dict[str, int] = {}
    for row in reader:
        line, name, label = reader.line_num, Path(row["path"] or "").as_posix(), (row["label"] or "").strip()
        if not label:
            raise CLIError(f"{path}: line {line}: empty label for {name!r}")
        if name in table and table[name] != label:
            raise CLIError(f"{path}: line {line}: {name!r} labelled {label!r}, but {table[name]!r} on line "
                           f"{first_line[name]}")
        table.setdefault(name, label)
        first_line.setdefault(name, line)
    return table


def cmd_evaluate(args) -> int:
    import pandas as pd

    from cbmir_tf.archive import Archive
    from cbmir_tf.evaluation import code_axes_known, first_hit_error, metrics_table

    archive = Archive.load(args.index, method=args.method)
    labels = read_labels(args.labels, archive)
    k = min(args.k, len(archive) - 1)
    if k < 1:
        raise CLIError(f"{args.index}: holds {len(archive)} image(s); leave-one-out needs at least two.")
    if k < args.k:
        print(f"note: {args.index} holds {len(archive)} images; scoring the {k} others of each", file=sys.stderr)
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


def cmd_serve(args) -> int:
    from cbmir_tf.serve import serve

    serve(args.index, host=args.host, port=args.port, method=args.method, max_upload_mb=args.max_upload_mb)
    return 0


def build_parser() -> argparse.ArgumentParser:
    from cbmir_tf.distributed import CHUNK_SIZE
    from cbmir_tf.methods import CLI_METHODS

    parser = argparse.ArgumentParser(prog="cbmir", description=__doc__.splitlines()[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog="methods:\n" + "\n".join(f"  {k:8s} {v}" for k, v in CLI_METHODS.items()))
    commands = parser.add_subparsers(dest="command", required=True)
    index = commands.add_parser("index", help="describe and index every image under a folder")
    index.add_argument("folder", help="folder of images (PNG, JPEG, TIFF, BMP) and/or DICOM files, searched recursively")
    index.add_argument("--method", choices=sorted(CLI_METHODS), default="hog")
    index.add_argument("--out", required=True, help="index folder to write (replaced atomically)")
    index.add_argument("--image-size", type=bounded_int("--image-size", MIN_IMAGE_SIZE, MAX_IMAGE_SIZE), default=256,
                       help=f"images are padded square and resized to this ({MIN_IMAGE_SIZE} to {MAX_IMAGE_SIZE})")
    index.add_argument("--batch-size", type=bounded_int("--batch-size", 1), default=64)
    index.add_argument("--index-kind", choices=("flat", "ivf", "hnsw", "ivfpq"), default="flat",
                       help="flat: exact search (the default); ivf, hnsw: approximate, for large archives, "
                            "calibrated on the archive's own vectors to recall@10 >= 0.95 against exact search; "
                            "ivfpq: compressed codes (float descriptors), for archives whose vectors do not "
                            "fit in memory")
    index.add_argument("--words", type=bounded_int("--words", 2), default=1000,
                       help="bovw only: vocabulary size (n_words)")
    engine = index.add_mutually_exclusive_group()
    engine.add_argument("--workers", type=bounded_int("--workers", 1), default=None,
                        help="processes describing the images on this machine (default: all its cores; "
                             "1: this process); the index is the same for any number")
    engine.add_argument("--cluster", metavar="ADDRESS", type=cluster_address,
                        help="describe the images as tasks of a Dask cluster: tcp://HOST:PORT of a running "
                             "scheduler (the folder must be readable at the same path on every worker), or "
                             "local:N to start N worker processes here; the index is the same as one process's")
    index.add_argument("--chunk-size", type=bounded_int("--chunk-size", 1), default=CHUNK_SIZE,
                       help=f"files read and described per task (default {CHUNK_SIZE})")
    index.add_argument("--quiet", action="store_true", help="no progress bars")
    query = commands.add_parser("query", help="the nearest indexed images of one image")
    query.add_argument("image", help="an image or DICOM file")
    query.add_argument("--index", required=True)
    query.add_argument("-k", type=bounded_int("-k", 1), default=10)
    query.add_argument("--roi", type=parse_roi, help="x,y,w,h on the query: find this region in every hit")
    query.add_argument("--sheet", help="contact-sheet PNG to write (default: <image name>_hits.png)")
    query.add_argument("--method", choices=sorted(CLI_METHODS), help="refuse an index built with another method")
    evaluate = commands.add_parser("evaluate", help="leave-one-out retrieval scores of an index")
    evaluate.add_argument("--index", required=True)
    evaluate.add_argument("--labels", default="folder",
                          help="'folder' (parent folder names, the default), 'dicom' (Modality-BodyPartExamined) "
                               "or a CSV with columns path,label")
    evaluate.add_argument("-k", type=bounded_int("-k", 1), default=10)
    evaluate.add_argument("--method", choices=sorted(CLI_METHODS), help="refuse an index built with another method")
    serve = commands.add_parser("serve", help="a web page and a JSON API for searching an index")
    serve.add_argument("--index", required=True)
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on (default: this machine only)")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--max-upload-mb", type=float, default=64, help="largest accepted upload (MiB)")
    serve.add_argument("--method", choices=sorted(CLI_METHODS), help="refuse an index built with another method")
    return parser


def main(argv=None) -> int:
    """Run the ``cbmir`` command; returns the exit status (see the module docstring).

    SIGTERM is handled like Ctrl-C while the command runs (in the main thread): the partial output
    is removed and the status is 143 (130 for Ctrl-C).
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # TensorFlow's start-up chatter is not for users
    args = build_parser().parse_args(argv)
    previous = None
    if threading.current_thread() is threading.main_thread():
        previous = signal.signal(signal.SIGTERM, _raise_terminated)
    try:
        return _run(args)
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def _run(args) -> int:
    command = {"index": cmd_index, "query": cmd_query, "evaluate": cmd_evaluate, "serve": cmd_serve}[args.command]
    try:
        return command(args)
    except BrokenPipeError:  # e.g. `cbmir query ... | head`: the reader left, the work is done
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - silences the flush at exit
        return 0
    except Terminated:
        print("cbmir: terminated (SIGTERM); nothing was written", file=sys.stderr)
        return EXIT_TERMINATED
    except KeyboardInterrupt:
        print("cbmir: interrupted; nothing was written", file=sys.stderr)
        return EXIT_INTERRUPTED
    except (CLIError, ValueError, FileNotFoundError) as err:
        print(f"cbmir {args.command}: error: {_printable(str(err))}", file=sys.stderr)
        return EXIT_ERROR
    except OSError as err:  # e.g. an index folder this user may not read
        text = f"{err.filename}: {err.strerror}" if err.filename and err.strerror else str(err)
        print(f"cbmir {args.command}: error: {_printable(text)}", file=sys.stderr)
        return EXIT_ERROR


if __name__ == "__main__":
    sys.exit(main())
