"""Bag of visual words (paper 002): (Root)SIFT points, a k-means vocabulary, TF-IDF histograms, cosine.

``fit`` clusters the archive's local descriptors into the vocabulary (a seeded sample of
``points_per_word`` points per word unless the profile says otherwise); see
:class:`cbmir_tf.features.bovw.BoVWDescriptor`.
"""

from __future__ import annotations

from cbmir_tf.features.bovw import BoVWDescriptor
from cbmir_tf.methods.base import DescriptorMethod


class BoVW(DescriptorMethod):
    """TF-IDF word histograms in an exact cosine index.

    Args:
        **settings: :class:`~cbmir_tf.features.bovw.BoVWDescriptor` arguments (``n_words``,
            ``root``, ``max_iter``, ``n_init``, ``max_descriptors_per_image``, ``points_per_word``,
            ``image_size``, ``seed``).
    """

    key, paper = "bovw", "002"

    def __init__(self, **settings):
        super().__init__(BoVWDescriptor(**settings), "BoVW (RootSIFT, TF-IDF)")
