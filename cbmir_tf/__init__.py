"""cbmir_tf: content-based medical image retrieval, reproduced in Keras 3.

The package follows the retrieval pipeline from left to right:

``data`` (loaders, DICOM, the open benchmark) -> ``features`` (hand-crafted
descriptors) and ``models`` (Keras networks) -> ``index`` (FAISS search) ->
``metrics`` and ``irma`` (evaluation).
"""

__version__ = "0.1.0"
