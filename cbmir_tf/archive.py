"""A user's own image archive on disk: a folder of images or DICOM files, described and indexed.

`build_archive` reads every image under a folder (PNG, JPEG, TIFF, BMP or DICOM, found by
suffix or by the DICOM magic), skips and lists the unreadable ones, describes the rest with
a label-free method of `cbmir_tf.methods` and returns an `Archive`. ``Archive.save`` writes
one folder, atomically (`cbmir_tf.data.io.atomic_directory`)::

    manifest.json        method, parameters, image size, package version, skipped files, the sha256
                         of every other file (``index/`` included) and of its own content
    images.csv           id, path relative to the indexed folder
    index/               the FAISS index of the (first) descriptor (`cbmir_tf.search.index.Index.save`)
    <part>_state.npz     learned state of a descriptor (the BoVW vocabulary and idf), if any
    rerank_vectors.npy   the archive's vectors under the re-ranking descriptor, if any

``Archive.load`` verifies the checksums (of the manifest itself too; a file present but not
listed is refused), checks that the image list, the index and the manifest agree, and refuses
an archive written by another package version or, when asked, by another method; every
refusal is a one-line ``ValueError`` naming the folder or file. This is what the ``cbmir``
command line runs.
"""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

import cbmir_tf
from cbmir_tf.data.sniff import is_dicom
from cbmir_tf.data.io import IMAGE_EXTENSIONS, atomic_directory, read_image, sha256sum
from cbmir_tf.data.preprocess import standardize_image
from cbmir_tf.search.index import Index
from cbmir_tf.methods import DescriptorMethod, RetrievalMethod, make_method
from cbmir_tf.methods.reranked import Reranked

__all__ = ["Archive", "build_archive", "find_images", "read_images"]

FORMAT = "cbmir-archive"
FORMAT_VERSION = 2  # 2: the checksums cover index/ and the manifest itself
MANIFEST, IMAGES, RERANK_VECTORS = "manifest.json", "images.csv", "rerank_vectors.npy"


def find_images(folder: str | os.PathLike) -> list[Path]:
    """Image and DICOM files under ``folder`` (recursively, hidden ones left out), sorted.

    Raises:
        FileNotFoundError: ``folder`` does not exist. ValueError: it holds no image file.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder}: no such folder")
    paths = sorted(p for p in folder.rglob("*") if p.is_file()
                   and not any(part.startswith(".") for part in p.relative_to(folder).parts)
                   and (p.suffix.lower() in IMAGE_EXTENSIONS or is_dicom(p)))
    if not paths:
        raise ValueError(f"{folder}: no image files (suffixes {', '.join(IMAGE_EXTENSIONS)} or DICOM) found; "
                         "nothing to index")
    return paths


def read_images(paths: Sequence[Path], size: int, progress: bool = False
                ) -> tuple[np.ndarray, list[Path], list[tuple[str, str]]]:
    """Read and standardise images (grey, padded square, ``size`` px); unreadable files are skipped.

    Returns:
        ``(images, kept, skipped)``: uint8 ``(n, size, size)``, the paths read, and
        ``(path, reason)`` for each file that could not be read.
    """
    images, kept, skipped = [], [], []
    for path in tqdm(paths, desc="reading", unit="img", disable=not progress):
        try:
            images.append(standardize_image(read_image(path), size))
            kept.append(Path(path))
        except (ValueError, OSError) as err:
            skipped.append((str(path), str(err)))
    return np.asarray(images, np.uint8).reshape(-1, size, size), kept, skipped


def _parts(method: RetrievalMethod) -> dict[str, DescriptorMethod]:
    """The descriptor methods inside a label-free method: ``primary`` and, if re-ranked, ``rerank``."""
    if isinstance(method, Reranked):
        return {"primary": method.first, "rerank": method.second}
    if isinstance(method, DescriptorMethod):
        return {"primary": method}
    raise TypeError(f"only DescriptorMethod and Reranked can be stored. Got {type(method).__name__}.")


def _learned_state(descriptor) -> dict[str, np.ndarray]:
    """The fitted arrays (names ending in ``_``) of a descriptor whose ``fit`` learns from the images."""
    if not descriptor.learns_from_images:
        return {}
    return {k: v for k, v in vars(descriptor).items() if k.endswith("_") and isinstance(v, np.ndarray)}


class Archive:
    """An indexed archive: a label-free `RetrievalMethod` fitted and filled with a folder's images.

    Attributes:
        method_name: Name in `cbmir_tf.methods.CLI_METHODS`.
        method: The fitted `RetrievalMethod`.
        root: The indexed folder; ``paths`` are relative to it.
        image_size: Side the images were standardised to before description.
        skipped: ``(path, reason)`` of the files that could not be read.
    """

    def __init__(self, method_name: str, method: RetrievalMethod, root: Path, paths: list[str],
                 image_size: int, skipped: list[tuple[str, str]] | None = None):
        self.method_name, self.method, self.root = method_name, method, Path(root)
        self.paths, self.image_size, self.skipped = list(paths), int(image_size), list(skipped or [])

    def __len__(self) -> int:
        return len(self.paths)

    def search(self, images: np.ndarray, k: int = 10) -> tuple[np.ndarray, np.ndarray]:
        """Describe standardised query images ``(nq, s, s)`` and return ``(D, I)`` ``(nq, k)``."""
        return self.method.search(images, min(int(k), len(self)))

    @property
    def index(self) -> Index:
        """The search index of the (first) descriptor."""
        return _parts(self.method)["primary"].index_

    def search_archive(self, k: int = 10) -> tuple[np.ndarray, np.ndarray]:
        """Leave-one-out: every archive image queries the others, from the stored vectors."""
        vectors, own = self.index.stored_vectors(), np.arange(len(self))
        if isinstance(self.method, Reranked):
            k = min(k, self.method.k_prep, len(self) - 1)
            return self.method.search_described({"first": vectors, "second": self.method.second.vectors_}, k,
                                                exclude=own)
        return self.method.search_described(vectors, k, exclude=own)

    def save(self, path: str | os.PathLike) -> Path:
        """Write the archive folder atomically (see the module docstring). Returns ``path``."""
        with atomic_directory(path, marker=MANIFEST) as tmp:
            parts = {}
            for part, method in _parts(self.method).items():
                params = method.descriptor.get_params()
                parts[part] = {"descriptor": method.descriptor.name, "params": params}
                if part == "primary":
                    method.index_.params = params
                    method.index_.save(tmp / "index")
                else:
                    np.save(tmp / RERANK_VECTORS, method.vectors_)
                state = _learned_state(method.descriptor)
                if state:
                    np.savez(tmp / f"{part}_state.npz", **state)
            with open(tmp / IMAGES, "w", newline="", encoding="utf-8") as handle:
                writer = csv.writer(handle)
                writer.writerow(["id", "path"])
                writer.writerows(enumerate(self.paths))
            manifest = {"format": FORMAT, "format_version": FORMAT_VERSION,
                        "cbmir_tf_version": cbmir_tf.__version__, "method": self.method_name,
                        "k_prep": getattr(self.method, "k_prep", None), "parts": parts,
                        "image_size": self.image_size, "count": len(self), "root": str(self.root.resolve()),
                        "skipped": self.skipped, "sha256": _file_digests(tmp)}
            manifest["manifest_sha256"] = manifest_digest(manifest)
            (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2), encoding="utf-8")
        return Path(path)

    @classmethod
    def load(cls, path: str | os.PathLike, method: str | None = None) -> "Archive":
        """Read an archive folder, verify it, and rebuild its method.

        Args:
            path: A folder written by `save` (``cbmir index``).
            method: If given, the method the caller expects; another one is refused.

        Raises:
            FileNotFoundError: not an archive folder. ValueError (one line, naming the folder or
            file): another format, package version or method; an edited manifest; a file
            missing, unlisted or whose checksum does not match; a count that images.csv or the
            index contradicts.
        """
        path = Path(path)
        manifest = cls._read_manifest(path)
        try:
            archive = cls._rebuild(path, manifest, method)
            _check_counts(path, manifest, archive)
        except (KeyError, TypeError, IndexError, AttributeError, ValueError) as err:
            if isinstance(err, ValueError) and str(path) in str(err):
                raise
            text = " ".join(str(err).split())
            raise ValueError(f"{path / MANIFEST}: inconsistent archive ({type(err).__name__}: {text}); "
                             "index the folder again.") from None
        return archive

    @classmethod
    def _rebuild(cls, path: Path, manifest: dict, method: str | None) -> "Archive":
        """The archive a verified manifest describes (its method, index and image list)."""
        if method is not None and method != manifest["method"]:
            raise ValueError(f"{path} was indexed with method {manifest['method']!r}, not {method!r}. "
                             f"Query it with --method {manifest['method']}, or index the folder again "
                             f"with --method {method}.")
        rebuilt = make_method(manifest["method"], **({"k_prep": manifest["k_prep"]} if manifest["k_prep"] else {}))
        size = int(manifest["image_size"])
        for part, method_part in _parts(rebuilt).items():
            spec = manifest["parts"][part]
            descriptor = method_part.descriptor.set_params(**spec["params"])
            if descriptor.learns_from_images:
                with np.load(path / f"{part}_state.npz") as state:
                    for name in state.files:
                        setattr(descriptor, name, state[name])
            else:
                descriptor.fit(np.zeros((1, size, size), np.uint8))  # label-free descriptors learn nothing
            if part == "primary":
                method_part.index_ = Index.load(path / "index", descriptor=spec["descriptor"], params=spec["params"])
                method_part.vectors_ = None
            else:
                method_part.vectors_ = np.load(path / RERANK_VECTORS, allow_pickle=False)
        with open(path / IMAGES, newline="", encoding="utf-8") as handle:
            rows = list(csv.DictReader(handle))
        if [row.get("id") for row in rows] != [str(i) for i in range(len(rows))]:
            raise ValueError(f"{path / IMAGES}: the ids are not 0, 1, 2, ... in order; index the folder again.")
        return cls(manifest["method"], rebuilt, Path(manifest["root"]), [row["path"] for row in rows], size,
                   [tuple(s) for s in manifest["skipped"]])

    @staticmethod
    def _read_manifest(path: Path) -> dict:
        file = path / MANIFEST
        if not file.is_file():
            raise FileNotFoundError(f"{path}: not an archive index (no {MANIFEST}); build one with `cbmir index`.")
        try:
            manifest = json.loads(file.read_text())
            found = (manifest["format"], manifest["format_version"], manifest["cbmir_tf_version"])
        except (json.JSONDecodeError, KeyError, TypeError) as err:
            raise ValueError(f"{file}: not a valid archive manifest ({err}); index the folder again.") from None
        if found != (FORMAT, FORMAT_VERSION, cbmir_tf.__version__):
            raise ValueError(f"{path} was written by cbmir-tf {found[2]} (format {found[0]} v{found[1]}); this is "
                             f"cbmir-tf {cbmir_tf.__version__} (format {FORMAT} v{FORMAT_VERSION}). "
                             "Index the folder again with this version.")
        if not isinstance(manifest, dict) or manifest.get("manifest_sha256") != manifest_digest(manifest):
            raise ValueError(f"{file}: its own checksum (manifest_sha256) is missing or does not match; the "
                             "manifest was edited or is corrupt. Index the folder again.")
        listed = manifest.get("sha256")
        if not isinstance(listed, dict) or not listed:
            raise ValueError(f"{file}: no sha256 checksums listed; the archive cannot be verified. "
                             "Index the folder again.")
        present = set(_relative_files(path))
        for name in sorted(present - set(listed)):
            raise ValueError(f"{path / name}: not listed in the checksums of {file}; the archive was modified. "
                             "Remove the file or index the folder again.")
        for name, digest in sorted(listed.items()):
            if name not in present or sha256sum(path / name) != digest:
                raise ValueError(f"{path / name}: missing or its sha256 does not match {file}; "
                                 "the archive is corrupt or was modified. Index the folder again.")
        return manifest

    def absolute_path(self, i: int) -> Path:
        """The file of archive image ``i``."""
        return self.root / self.paths[i]


def _relative_files(folder: Path) -> list[str]:
    """Every file below `folder` but its top-level manifest, as sorted posix paths relative to it."""
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*")
                  if not p.is_dir() and p.relative_to(folder).as_posix() != MANIFEST)


def _file_digests(folder: Path) -> dict[str, str]:
    """``{relative path: sha256}`` of every file below `folder` (``index/manifest.json`` included)."""
    return {name: sha256sum(folder / name) for name in _relative_files(folder)}


def manifest_digest(manifest: dict) -> str:
    """sha256 of the canonical JSON (sorted keys, no spaces, ASCII) of every manifest key but
    ``manifest_sha256``: any edit of the manifest (method, ``k_prep``, count, checksums) changes it."""
    import hashlib

    body = {k: v for k, v in manifest.items() if k != "manifest_sha256"}
    text = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(text.encode("ascii")).hexdigest()


def _check_counts(path: Path, manifest: dict, archive: "Archive") -> None:
    """The manifest's count, the rows of images.csv and the index (vectors and ids) must agree."""
    index = _parts(archive.method)["primary"].index_
    count, rows, ntotal = manifest["count"], len(archive.paths), index.ntotal
    if not (isinstance(count, int) and count == rows == ntotal):
        raise ValueError(f"{path}: the manifest says {count!r} images, {IMAGES} lists {rows} and the index holds "
                         f"{ntotal} vectors; index the folder again.")
    if not np.array_equal(np.sort(np.asarray(index.ids_)), np.arange(ntotal)):
        raise ValueError(f"{path / 'index'}: its ids are not 0..{ntotal - 1}, one per image of {IMAGES}; "
                         "index the folder again.")
    rerank = getattr(archive.method, "second", None)
    if rerank is not None and len(rerank.vectors_) != count:
        raise ValueError(f"{path / RERANK_VECTORS}: {len(rerank.vectors_)} rows for {count} images; "
                         "index the folder again.")
    k_prep = manifest.get("k_prep")
    if k_prep is not None and not (isinstance(k_prep, int) and k_prep >= 1):
        raise ValueError(f"{path / MANIFEST}: k_prep must be a positive integer. Found: {k_prep!r}")


def _utf8_named(paths: list[Path], folder: Path) -> tuple[list[Path], list[tuple[str, str]]]:
    """Split off the files whose name below `folder` is not valid UTF-8 (images.csv holds UTF-8),
    as ``(shown path, reason)`` with the undecodable bytes shown as ``\\xNN``."""
    kept, skipped = [], []
    for path in paths:
        try:
            path.relative_to(folder).as_posix().encode("utf-8")
            kept.append(path)
        except UnicodeEncodeError:
            shown = os.fsencode(path).decode("utf-8", "backslashreplace")
            skipped.append((shown, f"{shown}: name not valid UTF-8; rename the file to index it"))
    return kept, skipped


def build_archive(folder: str | os.PathLike, method: str = "hog", *, image_size: int = 256,
                  batch_size: int = 64, progress: bool = False, index_kind: str = "flat", workers: int = 1,
                  cluster=None, chunk_size: int | None = None, **method_options) -> Archive:
    """Read, describe and index every image under ``folder`` with a label-free ``method``.

    Unreadable files are skipped and listed in ``Archive.skipped``. The sorted files are read and
    described in chunks of ``chunk_size`` (default `cbmir_tf.distributed.CHUNK_SIZE`), batches of
    ``batch_size`` within a chunk (with progress bars when ``progress``): in this process
    (``workers=1``), in ``workers`` processes, or as tasks of a Dask ``cluster`` (a scheduler address
    ``tcp://HOST:PORT``, ``"local:N"`` or a `distributed.Client`); see `cbmir_tf.distributed`. The
    result is the same, byte for byte once saved, whatever ran the chunks. ``index_kind`` is the FAISS
    index of the (first) descriptor: ``"flat"`` (exact), ``"ivf"`` / ``"hnsw"`` (approximate,
    calibrated on the archive's own vectors to recall@10 >= 0.95) or ``"ivfpq"`` (compressed
    product-quantisation codes, for float descriptors). ``method_options`` go to
    `cbmir_tf.methods.make_method` (e.g. ``n_words`` for ``"bovw"``).

    Raises:
        FileNotFoundError: ``folder`` is missing. ValueError: no file in it could be read, or
        ``index_kind="ivfpq"`` for a method that compares by L1 or Hamming distance.
        cbmir_tf.distributed.IndexingError: a worker process or cluster task failed for good (or the
        scheduler could not be reached).
    """
    from cbmir_tf.distributed import CHUNK_SIZE, MethodSpec, chunked, merge_shards, open_runner

    folder = Path(folder)
    paths, unnamed = _utf8_named(find_images(folder), folder)
    chunks = chunked(paths, chunk_size or CHUNK_SIZE)
    retrieval = make_method(method, **method_options)
    parts = _parts(retrieval)
    metric = parts["primary"].metric
    if index_kind == "ivfpq" and metric not in ("l2", "cosine"):  # refused before any image is read
        raise ValueError(f"index kind 'ivfpq' codes vectors compared by L2 or cosine distance (methods cnn, "
                         f"cnn+hog, bovw); {method} compares by {metric}. Use ivf or hnsw for it.")
    with open_runner(workers, cluster) as runner:
        read = None
        if any(part.descriptor.learns_from_images for part in parts.values()):
            read = runner.read(chunks, image_size, progress)  # fitted on all the images, as in one process
            _check_readable(folder, paths, unnamed + [s for shard in read for s in shard.skipped],
                            sum(len(shard.kept) for shard in read))
            retrieval.fit(np.concatenate([shard.images for shard in read]))
        else:  # label-free: nothing to learn from the images
            retrieval.fit(np.zeros((1, image_size, image_size), np.uint8))
        spec = MethodSpec.of(method, method_options, retrieval, image_size, batch_size)
        kept, skipped, vectors = merge_shards(runner.describe(spec, retrieval, chunks, progress, read))
    skipped = unnamed + skipped
    _check_readable(folder, paths, skipped, len(kept))
    parts["primary"].index_kind = index_kind
    for name, part in parts.items():
        if name == "primary":
            part.add_described(vectors[name])
        else:
            part.vectors_ = vectors[name]
    relative = [p.relative_to(folder).as_posix() for p in kept]
    return Archive(method, retrieval, folder, relative, image_size, skipped)


def _check_readable(folder: Path, paths: list[Path], skipped: list[tuple[str, str]], kept: int) -> None:
    """Refuse an archive of which no file could be read (``paths``: those with a UTF-8 name), naming
    the first error."""
    if not kept:
        raise ValueError(f"{folder}: none of its {len(paths)} image files could be read; first error: "
                         f"{skipped[0][1]}")
