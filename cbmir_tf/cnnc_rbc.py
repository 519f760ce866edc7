"""Paper 003's two-stage search: CNN codes find 50 candidates, Radon barcodes re-rank them.

``CNNCRBCSearch`` indexes the CNN codes (CNNC) of an archive. A query's code finds
the ``n_candidates`` archive images nearest by Hamming distance (L2 for float
codes); the Radon barcode (RBC) of the query is then compared with those
candidates' barcodes and the ``k`` nearest by RBC Hamming distance are returned.

Barcodes are either computed for the candidates only, at query time, as the paper
does (``cache_barcodes=False``: nothing but the images is kept), or computed once
for the whole archive when it is added (``cache_barcodes=True``: faster queries,
``n_bits / 8`` bytes more per archive image). Both give the same ranking.

Reference: Liu et al. (paper 003), Sections 3.3 and 4.2.
"""

from __future__ import annotations

import numpy as np

from cbmir_tf.features.base import check_images
from cbmir_tf.features.cnn_code import CNNCode
from cbmir_tf.features.radon_barcode import RadonBarcode, pack_codes
from cbmir_tf.index import Index, rerank


class CNNCRBCSearch:
    """CNNC candidate search re-ranked by Radon barcodes.

    Args:
        cnnc: A `CNNCode` around a trained network (fitted here if it is not yet).
        rbc: The `RadonBarcode` of the re-ranking. Defaults to ``RadonBarcode()`` (192 px, 16 angles).
        n_candidates: Candidates taken from the CNNC search. Defaults to 50 (the paper).
        k: Hits returned after re-ranking. Defaults to 10 (the paper).
        cache_barcodes: Compute the archive's barcodes in ``add`` (`True`) or the candidates'
            barcodes in every ``search`` (`False`, the paper's way). Defaults to `False`.

    Learned state (from ``add``): ``index_`` (the CNNC `Index`), ``images_`` (the archive,
    uint8 ``(n, h, w)``) and, when caching, ``barcodes_`` (packed uint8 ``(n, bits / 8)``).

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

    def add(self, images: np.ndarray, *, barcodes: np.ndarray | None = None) -> "CNNCRBCSearch":
        """Code and index the archive ``images`` (uint8 ``(n, h, w)``); row numbers are the ids.

        With ``cache_barcodes``, ``barcodes`` may pass the archive's bool RBCs ``(n, bits)``
        computed before (e.g. shared by several searches); otherwise they are computed here.
        """
        images = check_images(images)
        if not hasattr(self.cnnc, "code_model_"):
            self.cnnc.fit(images)
        if not hasattr(self.rbc, "n_features_out_"):
            self.rbc.fit(images)
        self.index_ = Index(self.cnnc.metric, descriptor=self.cnnc.name, params=self.cnnc.index_params())
        self.index_.add(self.cnnc.transform(images))
        self.images_ = images
        self.barcodes_ = None
        if self.cache_barcodes:
            if barcodes is None:
                barcodes = self.rbc.transform(images)
            self.barcodes_ = pack_codes(self._check_barcodes(barcodes, images))
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
        codes = self.cnnc.transform(check_images(query_images, "query_images"))
        return self.index_.search(codes, self.n_candidates, exclude=exclude)

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
        k = self.k if k is None else int(k)
        if not 1 <= k <= self.n_candidates:
            raise ValueError(f"k must lie in [1, n_candidates={self.n_candidates}]. Received: k={k!r}")
        query_images = check_images(query_images, "query_images")
        Dc, Ic = self.candidates(query_images, exclude=exclude)
        query_codes = pack_codes(self.rbc.transform(query_images) if query_barcodes is None
                                 else self._check_barcodes(query_barcodes, query_images, "query_barcodes"))
        D_out, I_out = [], []
        for q in range(len(query_images)):
            ids = Ic[q]
            bars = (self.barcodes_[np.maximum(ids, 0)] if self.barcodes_ is not None
                    else pack_codes(self.rbc.transform(self.images_[np.maximum(ids, 0)])))
            local = np.where(ids < 0, -1, np.arange(len(ids)))[None]
            D, J = rerank(Dc[q:q + 1], local, query_codes[q:q + 1], bars, "hamming", k)
            D_out.append(D[0]), I_out.append(np.where(J[0] < 0, -1, ids[np.maximum(J[0], 0)]))
        return np.stack(D_out), np.stack(I_out)
