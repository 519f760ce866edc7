"""cbmir_tf: content-based medical image retrieval, reproduced in Keras 3.

The package follows the retrieval pipeline from left to right:

``data`` (registry, loaders, DICOM, the open benchmark) -> ``features`` (descriptors) and
``models`` (Keras networks, one training loop) -> ``search`` (FAISS index, re-ranking, two-stage
and coarse-to-fine search, ROI matching) -> ``methods`` (one module per paper's method, behind
``fit`` / ``add`` / ``search``, trained once) -> ``metrics``, ``irma`` and ``evaluation``.
"""

__version__ = "0.1.0"
