"""Paper 003's two-stage search: CNN codes find 50 candidates, Radon barcodes re-rank them.

:class:`TwoStageIndex` works from descriptors computed beforehand: it indexes the archive's
CNN codes (CNNC; Hamming distance, or L2 for float codes) and keeps its Radon barcodes (RBC).
A query's code finds the ``n_candidates`` nearest archive images; the query's barcode is
compared with those candidates' barcodes, and the ``k`` nearest by barcode Hamming distance
are returned (ties keep the code order).

The archive's barcodes are either stored (computed once, ``bits / 8`` bytes per image) or
computed for the candidates only, at query time, as the paper does: pass a function of the
archive rows instead of an array. Both give the same ranking.

:class:`CNNCRBCSearch` does the same from pixels, with a `CNNCode` and a `RadonBarcode`.

Reference: Liu et al. (paper 003), Sections 3.3 and 4.2.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from cbmir_tf.features.base import check_images
from cbmir_tf.features.cnn_code import CNNCode
from cbmir_tf.features.radon_barcode import RadonBarcode, pack_codes
from cbmir_tf.search.index import Index
from cbmir_tf.search.rerank import rerank


def packed_barcodes(barcodes, name: str = "barcodes") -> np.ndarray:
    """Barcodes as packed uint8 ``(n, ceil(bits / 8))``: bool ``(n, bits)`` are packed, uint8 taken as packed."""
    barcodes = np.asarray(barcodes)
    if barcodes.ndim == 2 and barcodes.dtype == bool:
        return pack_codes(barcodes)
    if barcodes.ndim == 2 and barcodes.dtype == np.uint8:
        return np.ascontiguousarray(barcodes)
    raise ValueError(f"{name} must be bool (n, bits) or packed uint8 (n, bits / 8). "
                     f"Got {barcodes.dtype} of shape {barcodes.shape} instead.")


class TwoStageIndex:
    """Candidates by code distance, re-ranked by barcode Hamming distance (from descriptors).

    Args:
        n_candidates: Candidates taken from the code search. Defaults to 50 (the paper).
        code_metric: ``"hamming"`` (binary codes) or ``"l2"`` (float codes). Defaults to ``"hamming"``.

    Learned state (from ``add``): ``codes_`` (the code `Index`) and ``barcodes_`` (packed uint8
    ``(n, bits / 8)``, or the function that computes the barcodes of archive rows).

    Example:
        >>> index = TwoStageIndex(50).add(codes, barcodes)                 # doctest: +SKIP
        >>> D, I = index.search(query_codes, query_barcodes, k=10)          # doctest: +SKIP
    """

    def __init__(self, n_candidates: int = 50, *, code_metric: str = "hamming"):
        if int(n_candidates) < 1:
            raise ValueError(f"n_candidates must be a positive integer. Received: n_candidates={n_candidates!r}")
        if code_metric not in ("hamming", "l2"):
            raise ValueError(f"code_metric must be 'hamming' or 'l2'. Received: code_metric={code_metric!r}")
        self.n_candidates, self.code_metric = int(n_candidates), code_metric
        self.codes_ = None

    def add(self, codes, barcodes: np.ndarray | Callable[[np.ndarray], np.ndarray]) -> TwoStageIndex:
        """Index the archive's ``codes`` ``(n, d)`` beside its ``barcodes``; row numbers are the ids.

        Args:
            codes: Bool / packed uint8 codes for ``"hamming"``, float codes for ``"l2"``.
            barcodes: Bool ``(n, bits)`` or packed uint8 barcodes, or a function from archive
                row numbers ``(m,)`` to their barcodes (computed at query time, the paper's way).
        """
        self.codes_ = Index(self.code_metric, descriptor="cnnc").add(codes)
        if callable(barcodes):
            self.barcodes_ = barcodes
        else:
            self.barcodes_ = packed_barcodes(barcodes)
            if len(self.barcodes_) != self.codes_.ntotal:
                raise ValueError(f"barcodes must have one row per code ({self.codes_.ntotal}). "
                                 f"Got {len(self.barcodes_)} instead.")
        return self

    def _check_added(self) -> None:
        if self.codes_ is None:
            raise ValueError(f"this {type(self).__name__} holds no archive: call add first.")

    def candidates(self, query_codes, *, exclude=None) -> tuple[np.ndarray, np.ndarray]:
        """First stage only (the code search): ``(D, I)`` of shape ``(nq, n_candidates)``."""
        self._check_added()
        return self.codes_.search(query_codes, self.n_candidates, exclude=exclude)

    def search(self, query_codes, query_barcodes, k: int = 10, *, exclude=None) -> tuple[np.ndarray, np.ndarray]:
        """Both stages: the ``k`` candidates nearest to each query by barcode Hamming distance.

        Args:
            query_codes: ``(nq, d)`` codes, as in ``add``.
            query_barcodes: ``(nq, bits)`` bool or packed barcodes.
            k: Hits per query, in ``[1, n_candidates]``. Defaults to 10.
            exclude: Optional archive ids ``(nq,)`` that row ``i`` must not return (leave-one-out).

        Returns:
            ``(D, I)`` of shape ``(nq, k)``: int32 barcode Hamming distances and archive row
            numbers, nearest first.
        """
        self._check_added()
        if not 1 <= int(k) <= self.n_candidates:
            raise ValueError(f"k must lie in [1, n_candidates={self.n_candidates}]. Received: k={k!r}")
        Q = packed_barcodes(query_barcodes, "query_barcodes")
        if not callable(self.barcodes_) and Q.shape[1] != self.barcodes_.shape[1]:
            raise ValueError(f"query_barcodes must have {self.barcodes_.shape[1]} bytes per row (packed), as the "
                             f"archive's. Got {Q.shape[1]} instead.")
        Dc, Ic = self.candidates(query_codes, exclude=exclude)
        if len(Q) != len(Ic):
            raise ValueError(f"query_barcodes must have one row per query code ({len(Ic)}). Got {len(Q)} instead.")
        if not callable(self.barcodes_):
            return rerank(Dc, Ic, Q, self.barcodes_, "hamming", int(k))
        rows = [self._rerank_one(Dc[q], Ic[q], Q[q], int(k)) for q in range(len(Q))]
        return np.stack([r[0] for r in rows]), np.stack([r[1] for r in rows])

    def _rerank_one(self, d, ids, query_barcode, k):
        """One query's re-ranking with its candidates' barcodes computed now (exact: no padding)."""
        bars = packed_barcodes(self.barcodes_(ids))
        D, J = rerank(d[None], np.arange(len(ids))[None], query_barcode[None], bars, "hamming", k)
        return D[0], ids[J[0]]

    @property
    def bytes_per_image(self) -> float:
        """Bytes per archive image: the code (packed bits, or float32) plus the stored barcode, if any."""
        self._check_added()
        code = self.codes_.d / 8 if self.code_metric == "hamming" else 4 * self.codes_.d
        return code + (0 if callable(self.barcodes_) else self.barcodes_.shape[1])


class CNNCRBCSearch:
    """CNNC candidate search re-ranked by Radon barcodes, from images.

    Args:
        cnnc: A `CNNCode` around a trained network (fitted here if it is not yet).
        rbc: The `RadonBarcode` of the re-ranking. Defaults to ``RadonBarcode()`` (192 px, 16 angles).
        n_candidates: Candidates taken from the CNNC search. Defaults to 50 (the paper).
        k: Hits returned after re-ranking. Defaults to 10 (the paper).
        cache_barcodes: Compute the archive's barcodes in ``add`` (`True`) or the candidates'
            barcodes in every ``search`` (`False`, the paper's way). Defaults to `False`.

    Learned state (from ``add``): ``index_`` (a `TwoStageIndex`) and ``images_`` (the archive,
    uint8 ``(n, h, w)``).

    Example:
        >>> search = CNNCRBCSearch(CNNCode(model)).add(archive_images)   # doctest: +SKIP
        >>> D, I = search.search(query_images)                             # doctest: +SKIP
        >>> I.shape                                                          # doctest: +SKIP
        (nq, 10)
    """

    def __init__(self, cnnc: CNNCode, rbc: RadonBarcode | None = None, *, n_candidates: int = 50,
                 k: int = 10, cache_barcodes: bool = False):
        if not isinstance(cnnc, CNNCode):
            raise TypeError(f"cnnc must be a CNNCode. Got {type(cnnc).__name__} instead.")
        if int(n_candidates) < 1 or not 1 <= int(k) <= int(n_candidates):
            raise ValueError("need 1 <= k <= n_candidates. "
                             f"Received: k={k!r}, n_candidates={n_candidates!r}")
        self.cnnc, self.rbc = cnnc, RadonBarcode() if rbc is None else rbc
        self.n_candidates, self.k, self.cache_barcodes = int(n_candidates), int(k), bool(cache_barcodes)
        self.index_ = None

    def add(self, images: np.ndarray, *, barcodes: np.ndarray | None = None) -> CNNCRBCSearch:
        """Code and index the archive ``images`` (uint8 ``(n, h, w)``); row numbers are the ids.

        With ``cache_barcodes``, ``barcodes`` may pass the archive's bool RBCs ``(n, bits)``
        computed before (e.g. shared by several searches); otherwise they are computed here.
        """
        images = check_images(images)
        if not hasattr(self.cnnc, "code_model_"):
            self.cnnc.fit(images)
        if not hasattr(self.rbc, "n_features_out_"):
            self.rbc.fit(images)
        self.images_ = images
        if not self.cache_barcodes:
            stored = lambda rows: self.rbc.transform(self.images_[rows])  # noqa: E731
        else:
            stored = self._check_barcodes(self.rbc.transform(images) if barcodes is None else barcodes, images)
        self.index_ = TwoStageIndex(self.n_candidates, code_metric=self.cnnc.metric).add(
            self.cnnc.transform(images), stored)
        return self

    def _check_barcodes(self, barcodes: np.ndarray, images: np.ndarray, name: str = "barcodes") -> np.ndarray:
        barcodes = np.asarray(barcodes)
        if barcodes.shape != (len(images), self.rbc.n_features_out_) or barcodes.dtype != bool:
            raise ValueError(f"{name} must be bool of shape ({len(images)}, {self.rbc.n_features_out_}), "
                             f"from {self.rbc!r}. Got {barcodes.dtype} of shape {barcodes.shape} instead.")
        return barcodes

    def _check_added(self) -> None:
        if self.index_ is None:
            raise ValueError("this CNNCRBCSearch holds no archive: call add(images) first.")

    def candidates(self, query_images: np.ndarray, *, exclude=None) -> tuple[np.ndarray, np.ndarray]:
        """First stage only (CNNC-only search): ``(D, I)`` ``(nq, n_candidates)`` by CNNC distance."""
        self._check_added()
        return self.index_.candidates(self.cnnc.transform(check_images(query_images, "query_images")),
                                      exclude=exclude)

    def search(self, query_images: np.ndarray, k: int | None = None, *, exclude=None,
               query_barcodes: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Both stages: the ``k`` best of the CNNC candidates by RBC Hamming distance.

        Args:
            query_images: uint8 ``(nq, h, w)`` (one 2-D image is promoted).
            k: Hits per query, at most ``n_candidates``. Defaults to ``self.k``.
            exclude: Optional archive ids ``(nq,)`` that row ``i`` must not return (leave-one-out).
            query_barcodes: Optional bool RBCs of the queries ``(nq, bits)``, computed before.

        Returns:
            ``(D, I)`` of shape ``(nq, k)``: int32 RBC Hamming distances and archive row numbers,
            nearest first (ties keep the CNNC order).
        """
        self._check_added()
        k = self.k if k is None else int(k)
        if not 1 <= k <= self.n_candidates:
            raise ValueError(f"k must lie in [1, n_candidates={self.n_candidates}]. Received: k={k!r}")
        query_images = check_images(query_images, "query_images")
        bars = (self.rbc.transform(query_images) if query_barcodes is None
                else self._check_barcodes(query_barcodes, query_images, "query_barcodes"))
        return self.index_.search(self.cnnc.transform(query_images), bars, k, exclude=exclude)

    @property
    def bytes_per_image(self) -> float:
        """Bytes per archive image: packed CNNC, plus the packed barcode when cached."""
        self._check_added()
        return self.index_.bytes_per_image
