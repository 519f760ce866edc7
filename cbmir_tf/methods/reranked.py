"""Re-ranked pairs (paper 002): a first method proposes ``k_prep`` candidates, a second re-sorts them.

Paper 002's best pair takes SqueezeNet's candidates and re-sorts them by HOG
(:func:`cbmir_tf.search.rerank.rerank_hits` does the re-sort).
"""

from __future__ import annotations

import numpy as np

from cbmir_tf.methods.base import DescriptorMethod, RetrievalMethod
from cbmir_tf.search.rerank import rerank_hits


class Reranked(RetrievalMethod):
    """``k_prep`` hits of ``first``, re-sorted by ``second``'s descriptor.

    Args:
        first: The method that proposes candidates.
        second: The method whose descriptor re-sorts them (only its descriptor and archive
            vectors are used).
        k_prep: Candidates taken from ``first``. Defaults to 30.
    """

    key, paper = "reranked", "002"

    def __init__(self, first: DescriptorMethod, second: DescriptorMethod, k_prep: int = 30):
        self.first, self.second, self.k_prep = first, second, int(k_prep)
        self.name = f"{first.name} re-ranked by {second.name}"
        self.needs_labels = first.needs_labels or second.needs_labels

    def get_settings(self) -> dict:
        return {"first": self.first.get_settings(), "second": self.second.get_settings(), "k_prep": self.k_prep}

    def fit(self, images, labels=None) -> Reranked:
        self.first.fit(images, labels)
        self.second.fit(images, labels)
        return self

    def describe(self, images) -> dict[str, np.ndarray]:
        """Both descriptors of each image: ``{"first": ..., "second": ...}``."""
        return {"first": self.first.describe(images), "second": self.second.describe(images)}

    def add_described(self, described) -> Reranked:
        self.first.add_described(described["first"])
        self.second.vectors_ = np.asarray(described["second"])
        return self

    def search_described(self, described, k: int = 10, *, exclude=None):
        # a small archive (one image fewer when excluding) has fewer candidates
        k_prep = min(self.k_prep, self.first.index_.ntotal - (exclude is not None))
        if not 1 <= int(k) <= k_prep:
            raise ValueError(f"k must lie in [1, k_prep={k_prep}]. Received: k={k!r}")
        _, candidates = self.first.search_described(described["first"], k_prep, exclude=exclude)
        return rerank_hits(candidates, described["second"], self.second.vectors_, self.second.metric, k_prep,
                           int(k))

    @property
    def bytes_per_image(self) -> float:
        second = self.second.vectors_
        bits = self.second.metric == "hamming" and second.dtype != np.uint8
        return self.first.bytes_per_image + second.nbytes / len(second) / (8 if bits else 1)
