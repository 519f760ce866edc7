"""Exact (and optionally approximate) k-NN search: a thin wrapper around FAISS.

``Index(metric)`` keeps FAISS' verbs and return order: ``train`` (IVF only), ``add``
then ``search(Q, k) -> (D, I)``, both of shape ``(nq, k)``. Distances are reported as
true distances, smallest first: Euclidean (not squared) for ``"l2"``, city-block for
``"l1"``, ``1 - cos`` for ``"cosine"`` and integer bit counts for ``"hamming"``.
``save``/``load`` store the FAISS file beside ``ids.npy`` and a ``manifest.json`` that
records the descriptor, its parameters and sha256 checksums, and refuse a mismatched query.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import faiss
import numpy as np

import cbmir_tf
from cbmir_tf.data.io import atomic_directory, sha256sum

METRICS = ("l2", "l1", "cosine", "hamming")
KINDS = ("flat", "hnsw", "ivf")
FORMAT_VERSION = 1
_INDEX_FILE, _IDS_FILE, _MANIFEST = "index.faiss", "ids.npy", "manifest.json"
_FAISS_METRIC = {"l2": faiss.METRIC_L2, "l1": faiss.METRIC_L1, "cosine": faiss.METRIC_INNER_PRODUCT}
_PAD_INT = np.iinfo(np.int32).max  # Hamming distance reported for padding ids (-1)
#: Search defaults of the approximate kinds: recall@10 >= 0.95 against exact search on the real HOG
#: vectors and Radon barcodes of the open benchmark (tests/test_scale.py; chapter 9 measures them).
DEFAULT_NPROBE, DEFAULT_EF_SEARCH = 16, 64
MIN_TRAIN_PER_CELL = 39  # FAISS' k-means wants at least 39 training vectors a cell


def default_nlist(n_train: int) -> int:
    """IVF cells for ``n_train`` training vectors: about sqrt(n), at least 1 and at most n / 39."""
    return int(max(1, min(round(np.sqrt(n_train)), n_train // MIN_TRAIN_PER_CELL)))


def _as_vectors(X, metric: str, d: int | None = None, name: str = "X") -> np.ndarray:
    """Validate ``X`` and return contiguous float32 ``(n, d)`` or packed uint8 ``(n, d / 8)``.

    For ``"hamming"``, a uint8 array is taken as already packed (8 bits a byte, as
    ``np.packbits`` writes them); any other dtype (bool, or 0/1 ints/floats) holds one
    bit per column and is packed here. ``d`` is then a number of bits.
    """
    X = np.asarray(X)
    if X.ndim != 2:
        raise ValueError(f"{name} must be a 2-D array (n, d). Got shape {X.shape} instead.")
    if metric == "hamming":
        if X.dtype != np.uint8:
            if not np.isin(X, (0, 1)).all():  # also catches NaN
                raise ValueError(f"{name} must hold 0/1 bits or packed uint8 codes. Got dtype {X.dtype} "
                                 "with values other than 0 and 1 (or NaN) instead.")
            if X.shape[1] % 8:
                raise ValueError(f"hamming codes need a multiple of 8 bits. Got {X.shape[1]} bits instead.")
            X = np.packbits(X.astype(bool), axis=1)
        got = X.shape[1] * 8
        X = np.ascontiguousarray(X, dtype=np.uint8)
    else:
        X = np.ascontiguousarray(X, dtype=np.float32)
        if not np.isfinite(X).all():
            raise ValueError(f"{name} must be finite. Got {(~np.isfinite(X)).sum()} NaN/inf values instead.")
        got = X.shape[1]
        if metric == "cosine":  # unit rows; zero rows stay zero
            norms = np.linalg.norm(X, axis=1, keepdims=True)
            X = np.ascontiguousarray(X / np.where(norms > 0, norms, 1), dtype=np.float32)
    if d is not None and got != d:
        unit = " bits" if metric == "hamming" else ""
        raise ValueError(f"{name} must have dimension {d}{unit}. Got {got}{unit} (shape {X.shape}) instead.")
    return X


def _to_distances(D: np.ndarray, I: np.ndarray, metric: str) -> np.ndarray:
    """Turn raw FAISS scores into distances; padding (``I == -1``) gets inf (int32 max for hamming)."""
    if metric == "hamming":
        return np.where(I < 0, _PAD_INT, D).astype(np.int32)
    if metric == "l2":
        D = np.sqrt(np.maximum(D, 0))
    elif metric == "cosine":
        D = 1.0 - D
    return np.where(I < 0, np.inf, D).astype(np.float32)


def _jsonable(params) -> dict:
    """Return ``params`` after a JSON round trip (tuples become lists), so that comparisons are fair."""
    try:
        return json.loads(json.dumps({} if params is None else dict(params)))
    except TypeError as e:
        raise TypeError(f"descriptor params must be JSON-serialisable. Got {params!r} instead: {e}") from None


class Index:
    """k-NN index over descriptor vectors, wrapping a FAISS index.

    Args:
        metric: ``"l2"``, ``"l1"``, ``"cosine"`` or ``"hamming"`` (binary codes). Defaults to ``"l2"``.
        kind: ``"flat"`` (exact, the default), ``"hnsw"`` or ``"ivf"`` (approximate; IVF needs ``train``).
        descriptor: Name of the descriptor that made the vectors, stored by ``save``.
        params: JSON-serialisable dict of the descriptor's parameters, stored by ``save``.
        nlist: Number of IVF cells; `None` picks `default_nlist` of the training set (about sqrt(n)).
            Defaults to `None`.
        hnsw_m: Neighbours per HNSW node. Defaults to 32.
        nprobe: IVF cells visited per query unless ``search`` says otherwise. Defaults to 16.
        ef_search: HNSW search breadth unless ``search`` says otherwise. Defaults to 64.

    Learned state: ``index_`` (the FAISS index, built on the first ``train``/``add``) and
    ``ids_`` (int64 array of shape ``(ntotal,)``, the caller's id of each stored vector).

    Example:
        >>> import numpy as np
        >>> X = np.eye(4, dtype="float32")
        >>> D, I = Index("l2").add(X, ids=[10, 11, 12, 13]).search(X[:1], k=2)
        >>> int(I[0, 0]), float(D[0, 0])
        (10, 0.0)
    """

    def __init__(self, metric: str = "l2", *, kind: str = "flat", descriptor: str = "unnamed",
                 params: dict | None = None, nlist: int | None = None, hnsw_m: int = 32,
                 nprobe: int = DEFAULT_NPROBE, ef_search: int = DEFAULT_EF_SEARCH):
        if metric not in METRICS:
            raise ValueError(f"metric must be one of {METRICS}. Received: metric={metric!r}")
        if kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}. Received: kind={kind!r}")
        self.metric, self.kind, self.descriptor, self.params = metric, kind, descriptor, params
        self.nlist, self.hnsw_m, self.nprobe, self.ef_search = nlist, hnsw_m, int(nprobe), int(ef_search)
        self.index_ = None
        self.ids_ = np.zeros(0, dtype=np.int64)
        self.path_: Path | None = None  # set by ``load``; used in error messages

    @property
    def d(self) -> int | None:
        """Vector dimension (in bits for hamming); ``None`` before the first ``train``/``add``."""
        return None if self.index_ is None else int(self.index_.d)

    @property
    def ntotal(self) -> int:
        """Number of stored vectors."""
        return 0 if self.index_ is None else int(self.index_.ntotal)

    def __len__(self) -> int:
        return self.ntotal

    @property
    def is_trained(self) -> bool:
        """Whether vectors can be added (``False`` for an untrained IVF index or before any data)."""
        return self.index_ is not None and bool(self.index_.is_trained)

    def _build(self, d: int, n: int) -> None:
        """Create the empty FAISS index for dimension ``d`` (bits for hamming), first given ``n`` vectors."""
        if self.kind == "ivf" and self.nlist is None:
            self.nlist = default_nlist(n)
        if self.metric == "hamming":
            flat, hnsw, ivf = faiss.IndexBinaryFlat, faiss.IndexBinaryHNSW, faiss.IndexBinaryIVF
            self._quantizer = flat(d)  # the IVF coarse quantizer; a Python reference keeps it alive
            new = {"flat": lambda: flat(d), "hnsw": lambda: hnsw(d, self.hnsw_m),
                   "ivf": lambda: ivf(self._quantizer, d, self.nlist)}
        else:
            m = _FAISS_METRIC[self.metric]
            self._quantizer = faiss.IndexFlat(d, m)
            new = {"flat": lambda: faiss.IndexFlat(d, m),
                   "hnsw": lambda: faiss.IndexHNSWFlat(d, self.hnsw_m, m),
                   "ivf": lambda: faiss.IndexIVFFlat(self._quantizer, d, self.nlist, m)}
        self.index_ = new[self.kind]()
        self._apply_search_defaults()

    def _apply_search_defaults(self) -> None:
        """Give the FAISS index our ``nprobe`` / ``ef_search``, used when ``search`` is not told otherwise."""
        if self.kind == "ivf":
            self.index_.nprobe = self.nprobe
        elif self.kind == "hnsw":
            self.index_.hnsw.efSearch = self.ef_search

    def _prepare(self, X, name: str) -> np.ndarray:
        X = _as_vectors(X, self.metric, self.d, name)
        if self.index_ is None:
            self._build(X.shape[1] * (8 if self.metric == "hamming" else 1), len(X))
        return X

    def train(self, X) -> "Index":
        """Train IVF cells on ``X`` of shape ``(n, d)`` (a no-op for other kinds). Returns ``self``."""
        X = self._prepare(X, "X")
        if not self.index_.is_trained:
            self.index_.train(X)
        return self

    def add(self, X, ids=None) -> "Index":
        """Add vectors ``X`` of shape ``(n, d)`` under ``ids``, returning ``self``.

        ``X`` is float (cast to float32) or, for hamming, either packed uint8 codes ``(n, d / 8)``
        or a bool / 0-1 array ``(n, d)`` that is packed here with ``np.packbits`` (``d`` a multiple
        of 8). ``ids`` is an integer array of shape ``(n,)``, non-negative and unique across calls;
        it defaults to running numbers. For ``kind="ivf"`` call ``train`` first.
        """
        X = self._prepare(X, "X")
        if not self.index_.is_trained:
            raise ValueError("this IVF index is not trained; call train(X) first, then add.")
        n, start = X.shape[0], int(self.ids_.max()) + 1 if len(self.ids_) else 0
        ids = np.arange(start, start + n) if ids is None else np.asarray(ids)
        if ids.shape != (n,) or ids.dtype.kind not in "iu" or (ids < 0).any():
            raise ValueError(f"ids must hold {n} non-negative integers (-1 marks padding). "
                             f"Got {ids.dtype} of shape {ids.shape} instead.")
        ids = ids.astype(np.int64)
        if np.unique(np.concatenate([self.ids_, ids])).size != len(self.ids_) + n:
            raise ValueError("ids must be unique, also across calls to add. Got duplicates instead.")
        self.index_.add(X)
        self.ids_ = np.concatenate([self.ids_, ids])
        return self

    def search(self, Q, k: int, *, exclude=None, nprobe: int | None = None, ef_search: int | None = None,
               batch_size: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Return the ``k`` nearest stored vectors of each query, nearest first.

        Args:
            Q: Queries of shape ``(nq, d)`` (see ``add`` for hamming codes).
            k: Neighbours per query. Clamped to ``ntotal`` (``ntotal - 1`` with ``exclude``), so an
                exact index never pads; approximate kinds may still return id -1 when they find fewer.
            exclude: Optional ids of shape ``(nq,)``, for leave-one-out retrieval: row ``i`` never
                returns id ``exclude[i]`` (the query's own entry). One extra neighbour is fetched.
            nprobe: IVF cells visited per query (``kind="ivf"`` only). Defaults to ``self.nprobe``.
            ef_search: HNSW search breadth (``kind="hnsw"`` only). Defaults to ``self.ef_search``.
            batch_size: Search at most this many queries at once, to bound memory.

        Returns:
            ``(D, I)`` of shape ``(nq, k)``: float32 distances (int32 bit counts for hamming; inf /
            int32 max on padding) and int64 ids (the ones given to ``add``; -1 on padding).
        """
        if self.ntotal == 0:
            raise ValueError("the index is empty; call add(X) before search.")
        if int(k) < 1:
            raise ValueError(f"k must be a positive integer. Received: k={k!r}")
        for knob, value, kind in (("nprobe", nprobe, "ivf"), ("ef_search", ef_search, "hnsw")):
            if value is not None and self.kind != kind:
                raise ValueError(f"{knob} applies to kind={kind!r} only, not {self.kind!r}. "
                                 f"Received: {knob}={value}")
        Q = _as_vectors(Q, self.metric, self.d, "Q")
        nq = Q.shape[0]
        if exclude is not None:
            exclude = np.asarray(exclude, dtype=np.int64)
            if exclude.shape != (nq,):
                raise ValueError(f"exclude must have shape ({nq},). Got {exclude.shape} instead.")
        k_out = min(int(k), self.ntotal - (exclude is not None))
        if k_out < 1:
            raise ValueError("exclude leaves no candidates: the index holds a single vector.")
        k_ask = min(k_out + (exclude is not None), self.ntotal)
        sp = (faiss.SearchParametersIVF(nprobe=int(nprobe)) if nprobe is not None else
              faiss.SearchParametersHNSW(efSearch=int(ef_search)) if ef_search is not None else None)
        step = int(batch_size or nq)
        Ds, Is = [], []
        for s in range(0, max(nq, 1), max(step, 1)):
            D, I = self.index_.search(Q[s:s + step], k_ask, params=sp)
            Ds.append(_to_distances(D, I, self.metric))
            Is.append(np.where(I < 0, -1, self.ids_[np.maximum(I, 0)]))
        D, I = np.concatenate(Ds), np.concatenate(Is)
        if exclude is not None:  # move each query's own id to the end (stable), then cut
            order = np.argsort(I == exclude[:, None], axis=1, kind="stable")
            D, I = np.take_along_axis(D, order, 1), np.take_along_axis(I, order, 1)
        return D[:, :k_out], I[:, :k_out]

    def check_query(self, descriptor: str | None = None, params: dict | None = None,
                    dim: int | None = None) -> None:
        """Raise ``ValueError`` naming both sides if a query's descriptor, params or dim differ from ours.

        Arguments left as ``None`` are not checked.
        """
        ours = _jsonable(self.params)
        if ((descriptor is not None and descriptor != self.descriptor)
                or (params is not None and _jsonable(params) != ours)
                or (dim is not None and int(dim) != self.d)):
            theirs = " ".join(v for v in (descriptor and repr(descriptor), params and str(params),
                                          dim and f"(dim {dim})") if v)
            where = f"index at {self.path_}" if self.path_ else "this index"
            raise ValueError(f"{where} was built with descriptor {self.descriptor!r} {ours} (dim {self.d}); "
                             f"this query uses {theirs}. Rebuild the index with the query's descriptor, "
                             "or compute the queries with the index's.")

    def save(self, path: str | os.PathLike) -> Path:
        """Write the index atomically to directory ``path``: ``index.faiss``, ``ids.npy``, ``manifest.json``.

        Files go to a temporary directory beside ``path`` that is renamed into place; an existing
        index at ``path`` is replaced only once the new one is complete. Returns ``path``.
        """
        if self.index_ is None:
            raise ValueError("nothing to save: call add(X) first.")
        path = Path(path)
        params = _jsonable(self.params)
        with atomic_directory(path, marker=_MANIFEST) as tmp:
            write = faiss.write_index_binary if self.metric == "hamming" else faiss.write_index
            write(self.index_, str(tmp / _INDEX_FILE))
            np.save(tmp / _IDS_FILE, self.ids_)
            manifest = {
                "format_version": FORMAT_VERSION, "cbmir_tf_version": cbmir_tf.__version__,
                "descriptor": self.descriptor, "params": params, "metric": self.metric, "kind": self.kind,
                "dim": self.d, "count": self.ntotal, "nlist": self.nlist, "hnsw_m": self.hnsw_m,
                "nprobe": self.nprobe, "ef_search": self.ef_search,
                "sha256": {f: sha256sum(tmp / f) for f in (_INDEX_FILE, _IDS_FILE)},
            }
            (tmp / _MANIFEST).write_text(json.dumps(manifest, indent=2))
        return path

    @classmethod
    def load(cls, path: str | os.PathLike, *, descriptor: str | None = None, params: dict | None = None,
             dim: int | None = None) -> "Index":
        """Read an index written by ``save``, verify its checksums and ``check_query`` the given arguments."""
        path = Path(path)
        mf = path / _MANIFEST
        if not mf.is_file():
            raise FileNotFoundError(f"{mf}: no index manifest; is {path} a directory written by Index.save?")
        try:
            m = json.loads(mf.read_text())
            if m["format_version"] != FORMAT_VERSION:
                raise ValueError(f"format_version {m['format_version']} instead of {FORMAT_VERSION}")
            for name in (_INDEX_FILE, _IDS_FILE):  # checksums first: a truncated file fails here
                if sha256sum(path / name) != m["sha256"][name]:
                    raise ValueError(f"{path / name}: sha256 checksum does not match {mf}; "
                                     "the file is corrupt or was modified.")
        except (json.JSONDecodeError, KeyError, TypeError) as e:
            raise ValueError(f"{mf}: not a valid index manifest (bad or missing {e}); save again.") from None
        f = path / _INDEX_FILE
        try:
            raw = (faiss.read_index_binary if m["metric"] == "hamming" else faiss.read_index)(str(f))
        except RuntimeError as e:
            reason = (str(e).strip().splitlines() or ["unknown error"])[-1]
            raise ValueError(f"{f}: cannot read the FAISS index ({reason}); it may be truncated or "
                             "corrupt. Save the index again.") from None
        ids = np.load(path / _IDS_FILE, allow_pickle=False)
        if raw.ntotal != m["count"] or raw.d != m["dim"] or ids.shape != (m["count"],):
            raise ValueError(f"{f}: holds {raw.ntotal} vectors of dim {raw.d} and {ids.shape[0]} ids; "
                             f"{mf} says {m['count']} of dim {m['dim']}.")
        self = cls(m["metric"], kind=m["kind"], descriptor=m["descriptor"], params=m["params"],
                   nlist=m["nlist"], hnsw_m=m["hnsw_m"], nprobe=m.get("nprobe", DEFAULT_NPROBE),
                   ef_search=m.get("ef_search", DEFAULT_EF_SEARCH))
        self.index_, self.ids_, self.path_ = raw, ids.astype(np.int64), path
        self._apply_search_defaults()
        self.check_query(descriptor, params, dim)
        return self
