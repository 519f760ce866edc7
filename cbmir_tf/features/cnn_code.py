"""CNN codes (CNNC): the pre-ReLU activations of a trained network's last hidden layer.

Paper 003 reads the 1000 activations of its shallow CNN's last fully connected
layer before the ReLU and dropout, and binarises them at zero: a positive
activation is a 1 bit. It also tried the activations without binarisation,
which did worse. ``CNNCode`` wraps a trained Keras model as a descriptor that
gives either form; binary codes are compared by Hamming distance, float codes by
Euclidean distance (the paper does not name the distance of its float variant).

Reference: Liu et al. (paper 003), Section 3.1 and Table 2.
"""

from __future__ import annotations

import keras
import numpy as np

from cbmir_tf.data.preprocess import resize_batch
from cbmir_tf.features.base import Descriptor, check_images


class CNNCode(Descriptor):
    """Binary (or float) code read from a layer of a trained Keras image model.

    Reference: paper 003 (Liu et al.), Section 3.1.

    Args:
        model: A trained `keras.Model` taking grey images ``(n, h, w, 1)`` with values 0..255,
            such as ``cbmir_tf.models.shallow_cnn.ShallowCNN``.
        layer: Name of the layer whose output is the code (the linear ``Dense`` before the
            ReLU). Defaults to ``"fc2"``.
        binary: Binarise at 0 (``activations > 0``) into a bool code compared by Hamming
            distance; `False` keeps the float32 activations, compared by L2. Defaults to `True`.
        batch_size: Images per forward pass. Defaults to 64.

    Learned state (``fit`` only builds the tap): ``code_model_`` (input -> ``layer``),
    ``input_size_`` (the model's input side) and ``n_features_out_``.

    Example:
        >>> cnnc = CNNCode(model).fit(images)          # doctest: +SKIP
        >>> cnnc.transform(images).shape, cnnc.metric   # doctest: +SKIP
        ((n, 1000), 'hamming')
    """

    name = "cnnc"

    def __init__(self, model: keras.Model, *, layer: str = "fc2", binary: bool = True, batch_size: int = 64):
        self.model = model
        self.layer = layer
        self.binary = binary
        self.batch_size = batch_size

    @property
    def metric(self) -> str:
        """``"hamming"`` for binary codes, ``"l2"`` for float codes."""
        return "hamming" if self.binary else "l2"

    def fit(self, images: np.ndarray | None = None, y=None) -> "CNNCode":
        """Build the tap on ``layer`` and check the model's input; nothing is trained. Returns ``self``."""
        if not isinstance(self.model, keras.Model):
            raise TypeError(f"model must be a keras.Model. Got {type(self.model).__name__} instead.")
        shape = tuple(self.model.input_shape)
        if len(shape) != 4 or shape[-1] != 1 or shape[1] != shape[2] or shape[1] is None:
            raise ValueError(f"{self.model.name} must take square grey images (n, s, s, 1). "
                             f"Got input shape {shape} instead.")
        if int(self.batch_size) < 1:
            raise ValueError(f"batch_size must be positive. Received: batch_size={self.batch_size!r}")
        if images is not None:
            check_images(images)
        try:
            output = self.model.get_layer(self.layer).output
        except ValueError:
            names = [lyr.name for lyr in self.model.layers]
            raise ValueError(f"{self.model.name} has no layer {self.layer!r}; it has {names}. "
                             f"Received: layer={self.layer!r}") from None
        self.code_model_ = keras.Model(self.model.inputs, output, name=f"{self.model.name}_{self.layer}_code")
        self.input_size_ = int(shape[1])
        self.n_features_out_ = int(self.code_model_.output_shape[-1])
        return self

    def activations(self, images: np.ndarray) -> np.ndarray:
        """Float32 pre-ReLU activations ``(n, n_features_out_)`` (inference mode: no shift, no dropout)."""
        self._check_fitted()
        x = resize_batch(check_images(images), self.input_size_)[..., None]
        step = int(self.batch_size)
        out = [self.code_model_.predict_on_batch(x[s:s + step]) for s in range(0, len(x), step)]
        return np.concatenate([keras.ops.convert_to_numpy(o) for o in out]).astype(np.float32)

    def transform(self, images: np.ndarray) -> np.ndarray:
        """Codes ``(n, n_features_out_)``: bool when ``binary`` (activation > 0), else float32."""
        a = self.activations(images)
        return a > 0 if self.binary else a

    def index_params(self) -> dict:
        """JSON-serialisable description of this code, for ``Index(params=...)`` manifests."""
        self._check_fitted()
        return {"model": self.model.name, "layer": self.layer, "binary": bool(self.binary),
                "input_size": self.input_size_, "bits": self.n_features_out_}
