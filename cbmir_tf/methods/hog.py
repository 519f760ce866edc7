"""HOG retrieval (paper 002): one histogram of oriented gradients per image, L1 distance.

The descriptor is OpenCV's ``HOGDescriptor``, as in paper 002's code
(:class:`cbmir_tf.features.hog.HOGDescriptor`); its settings are the profile's ``hog`` entry.
"""

from __future__ import annotations

from cbmir_tf.features.hog import HOGDescriptor
from cbmir_tf.methods.base import DescriptorMethod


class HOG(DescriptorMethod):
    """HOG vectors in an exact L1 index.

    Args:
        **settings: :class:`~cbmir_tf.features.hog.HOGDescriptor` arguments (``image_size``,
            ``cell_size``, ``block_size``, ``block_stride``, ``n_bins``); paper 002's by default.
    """

    key, paper = "hog", "002"

    def __init__(self, **settings):
        super().__init__(HOGDescriptor(**settings), "HOG")
