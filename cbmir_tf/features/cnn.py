"""Descriptors from ImageNet-pretrained CNNs, without training (paper 002, Section VII).

The grey image is resized, stacked to three channels and passed through the model's own
``preprocess_input``; the output of the last convolutional or pooling block (no
classifier) is average-pooled with a ``pooling x pooling`` kernel of the same stride,
as the paper's 5 x 5 average pooling, and flattened. Vectors are compared by L2.

``model="squeezenet"`` is `cbmir_tf.models.squeezenet.SqueezeNet` with the weights under
``$CBMIR_DATA_DIR/weights/``. ``"resnet50"``, ``"vgg16"`` and ``"mobilenet"`` are
``keras.applications`` models: their weights are taken from ``$CBMIR_DATA_DIR/weights/``
when the Keras file is there, else downloaded with ``weights="imagenet"``. When neither
works (e.g. offline), the descriptor warns, falls back to random weights and sets
``pretrained_ = False``, so that a notebook can say so rather than report an untrained
network as pretrained.

Reference: Barać et al. (paper 002), Section VII and Fig. 6; Razavian et al., "Visual instance
retrieval with deep convolutional networks", 2015.
"""

from __future__ import annotations

import warnings

import numpy as np

from cbmir_tf.data.preprocess import resize_batch
from cbmir_tf.features.base import Descriptor, check_images

# model name -> (keras.applications builder, preprocess module, Keras' no-top weights file name)
KERAS_MODELS = {
    "resnet50": ("ResNet50", "resnet50", "resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5"),
    "vgg16": ("VGG16", "vgg16", "vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5"),
    "mobilenet": ("MobileNet", "mobilenet", "mobilenet_1_0_224_tf_no_top.h5"),
}
MODELS = ("squeezenet", *KERAS_MODELS)


def build_backbone(model: str, input_size: int):
    """Return ``(keras_model, preprocess_input, pretrained)`` for a model name (no classifier).

    Raises:
        ValueError: unknown model name.
    """
    import keras

    from cbmir_tf.data.registry import fetch

    shape = (input_size, input_size, 3)
    if model == "squeezenet":
        from cbmir_tf.models.squeezenet import SqueezeNet, preprocess_input

        return SqueezeNet(weights="imagenet", input_shape=shape), preprocess_input, True
    if model not in KERAS_MODELS:
        raise ValueError(f"model must be one of {MODELS}. Received: model={model!r}")
    builder_name, module, filename = KERAS_MODELS[model]
    builder = getattr(keras.applications, builder_name)
    preprocess = getattr(keras.applications, module).preprocess_input
    try:
        weights = str(fetch(f"weights/{filename}"))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # MobileNet: "weights for 224 will be loaded"
            return builder(include_top=False, weights=weights, input_shape=shape), preprocess, True
    except (FileNotFoundError, ValueError) as e:
        warnings.warn(f"{builder_name}: ImageNet weights unavailable ({e}). Falling back to RANDOM "
                      "weights (pretrained_=False): its descriptors are not those of a pretrained network.",
                      stacklevel=3)
        return builder(include_top=False, weights=None, input_shape=shape), preprocess, False


class CNNDescriptor(Descriptor):
    """Flattened, average-pooled last feature map of a pretrained CNN, compared by L2.

    Reference: paper 002 (Barać et al.), Section VII and Fig. 6 (SqueezeNet + 5 x 5 average pooling).

    Args:
        model: ``"squeezenet"`` (v1.1), ``"resnet50"``, ``"vgg16"`` or ``"mobilenet"``. Defaults to
            ``"squeezenet"``.
        pooling: Kernel (and stride) of the average pooling on the last feature map, `None` for none.
            Defaults to 5 (SqueezeNet at 256 px: 15 x 15 x 512 -> 3 x 3 x 512 = 4608 values).
        input_size: Images are resized to this square side (paper: 256). Defaults to 256.
        batch_size: Images per forward pass. Defaults to 32.

    Learned state (set by ``fit``, which only builds the network): ``extractor_`` (the Keras model),
    ``pretrained_`` (whether ImageNet weights were loaded), ``feature_shape_`` (last map, h x w x c)
    and ``n_features_out_``.

    Example:
        >>> cnn = CNNDescriptor().fit(images)          # doctest: +SKIP
        >>> cnn.transform(images).shape                # doctest: +SKIP
        (n, 4608)
    """

    metric = "l2"

    def __init__(self, *, model: str = "squeezenet", pooling: int | None = 5, input_size: int = 256,
                 batch_size: int = 32):
        self.model = model
        self.pooling = pooling
        self.input_size = input_size
        self.batch_size = batch_size

    @property
    def name(self) -> str:
        return f"cnn-{self.model}" + (f"-avg{self.pooling}" if self.pooling else "")

    def fit(self, images: np.ndarray | None = None, y=None) -> "CNNDescriptor":
        """Build the network (nothing is learned); ``images`` are only validated. Returns ``self``."""
        import keras

        if self.model not in MODELS:
            raise ValueError(f"model must be one of {MODELS}. Received: model={self.model!r}")
        if self.pooling is not None and (not isinstance(self.pooling, (int, np.integer)) or self.pooling < 1):
            raise ValueError("pooling must be None or a positive integer. "
                             f"Received: pooling={self.pooling!r}")
        if images is not None:
            check_images(images)
        backbone, self._preprocess, self.pretrained_ = build_backbone(self.model, int(self.input_size))
        x = backbone.output
        self.feature_shape_ = tuple(int(s) for s in x.shape[1:])
        if self.pooling:
            if min(self.feature_shape_[:2]) < self.pooling:
                raise ValueError(f"{self.model} at input_size={self.input_size} gives a "
                                 f"{self.feature_shape_[:2]} feature map, smaller than the pooling kernel. "
                                 f"Received: pooling={self.pooling}")
            x = keras.layers.AveragePooling2D(self.pooling, strides=self.pooling,
                                              name=f"avg_pool_{self.pooling}")(x)
        x = keras.layers.Flatten(name="descriptor")(x)
        self.extractor_ = keras.Model(backbone.input, x, name=f"{backbone.name}_descriptor")
        self.n_features_out_ = int(x.shape[-1])
        return self

    def transform(self, images: np.ndarray) -> np.ndarray:
        """Return float32 descriptors of shape ``(n, n_features_out_)``."""
        self._check_fitted()
        images = check_images(images)
        out = np.empty((len(images), self.n_features_out_), np.float32)
        for start in range(0, len(images), int(self.batch_size)):
            batch = resize_batch(images[start:start + int(self.batch_size)], int(self.input_size))
            x = self._preprocess(np.repeat(batch[..., None].astype(np.float32), 3, axis=-1))
            out[start:start + len(batch)] = np.asarray(self.extractor_.predict_on_batch(x))
        return out
