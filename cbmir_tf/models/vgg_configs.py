"""Seven small VGG-style networks A-G for coarse anatomical classification (paper 004).

Each configuration is data in :data:`CONFIGS`: its kernel size (3 for A-D of the
paper's Table 1, 5 for E-G of its Table 3), its stack of ``"conv"`` and ``"pool"``
steps in input order, and the widths of its hidden fully connected layers. One
builder, :func:`VGGConfig`, reads that spec. Every convolution has 20 filters,
stride 1, "same" padding and a ReLU; every pooling is 2 x 2 max pooling with
stride 2; the hidden FC layers use ReLU and are followed by dropout; a softmax
over the classes ends the network. The paper does not say how it initialised the
weights; the ReLU layers use He-normal initialisation, without which these
networks sit at the uniform prediction for many epochs.

Reading of the tables (their printed layout is partly merged cells):

* The first max pooling of Table 1 spans B-D only, and that of Table 3 spans F-G
  only: A and E are the configurations "without the first max pooling" that the
  paper's abstract mentions.
* With that reading and 128 x 128 inputs the flattened maps have 20,480 (A, E),
  5,120 (B, C, F) and 1,280 (D, G) values, which matches the FC widths printed
  for D, F and G (1280, 5120, 1280).
* Table 1 prints one hidden FC layer for A-D (FC-4500 or FC-1280) before the
  classifier, Table 3 two (FC-5120 or FC-1280, then FC-800). The text speaks of
  three FC layers in general; we follow the tables. Edit :data:`CONFIGS` to try
  the other reading.

The paper's preprocessing (:class:`VGGPreprocessor`) and augmentation (:func:`augment`)
sit beside the builder. Training goes through :func:`cbmir_tf.models.training.train` (SGD with
momentum, the recipe written in :mod:`cbmir_tf.profiles`), with :func:`augment` as its
``augment`` hook; :class:`cbmir_tf.methods.vgg_configs.VGGConfigMethod` puts the pieces together.

Reference: M. A. ElMarakbey et al., "Content based medical image retrieval using
deep learning" (paper 004), Tables 1 and 3, Sections III.B and IV.B-C.
"""

from __future__ import annotations

import cv2
import keras
import numpy as np
from keras import layers

from cbmir_tf.data.io import atomic_write
from cbmir_tf.data.preprocess import clahe, resize_batch
from cbmir_tf.irma import code_region
from cbmir_tf.models.common import check_builder_args, classifier, finish_model, image_input, top_or_pooling

#: Configurations A-G: kernel size, conv/pool stack in input order, hidden FC widths.
CONFIGS: dict[str, dict] = {
    "A": {"kernel_size": 3, "stack": ("conv", "conv", "pool", "conv", "pool"), "fc": (4500,)},
    "B": {"kernel_size": 3, "stack": ("conv", "conv", "pool", "conv", "conv", "pool", "conv", "conv", "pool"),
          "fc": (4500,)},
    "C": {"kernel_size": 3, "stack": ("conv", "conv", "pool", "conv", "conv", "pool", "conv", "conv", "conv",
                                      "pool"), "fc": (4500,)},
    "D": {"kernel_size": 3, "stack": ("conv", "conv", "pool", "conv", "conv", "pool", "conv", "conv", "pool",
                                      "conv", "conv", "pool"), "fc": (1280,)},
    "E": {"kernel_size": 5, "stack": ("conv", "conv", "pool", "conv", "pool"), "fc": (5120, 800)},
    "F": {"kernel_size": 5, "stack": ("conv", "pool", "conv", "pool", "conv", "pool"), "fc": (5120, 800)},
    "G": {"kernel_size": 5, "stack": ("conv", "pool", "conv", "pool", "conv", "pool", "conv", "pool"),
          "fc": (1280, 800)},
}
FILTERS = 20
#: Name of the layer whose output is the retrieval descriptor (the last hidden FC layer).
FEATURE_LAYER = "features"
#: IRMA anatomical axis, first digit -> the paper's five coarse classes (Section IV.A).
IRMA_ANATOMY_GROUPS = {"2": "cranium", "3": "spine", "4": "upper extremity", "5": "chest",
                       "9": "lower extremity"}


def VGGConfig(include_top=True, weights=None, input_tensor=None, input_shape=(128, 128, 1), pooling=None,
              classes=5, classifier_activation="softmax", name=None, *, config="C", dropout=0.5,
              weight_decay=5e-4):
    """Instantiate one of the paper's VGG-style configurations A-G.

    Reference: ElMarakbey et al. (paper 004), Tables 1 (A-D, 3 x 3) and 3 (E-G, 5 x 5).

    Layers are named ``block{b}_conv{c}`` and ``block{b}_pool`` (a block ends at a
    pooling), ``fc1``, ``fc2``, ``fc{i}_dropout``, ``features`` (identity on the last
    hidden FC layer) and ``predictions``.

    Args:
        include_top: Whether to add the FC layers and classifier. Defaults to `True`.
        weights: `None` (random) or the path of a ``.weights.h5`` file. Defaults to `None`.
        input_tensor: Optional Keras tensor to use as the input. Defaults to `None`.
        input_shape: ``(height, width, channels)``, sides of at least ``2 ** (number of
            poolings)``. Defaults to ``(128, 128, 1)``.
        pooling: Without the top: `None`, ``"avg"`` or ``"max"`` global pooling. Defaults to `None`.
        classes: Number of classes. Defaults to 5.
        classifier_activation: Activation of the last layer. Defaults to ``"softmax"``.
        name: Model name. Defaults to ``"vgg_config_<config>"``.
        config: One of ``"A"`` .. ``"G"`` (a key of :data:`CONFIGS`). Defaults to ``"C"``.
        dropout: Drop rate after each hidden FC layer (0 disables it). Defaults to 0.5.
        weight_decay: SGD weight decay of the paper (5e-4), applied to every kernel as
            the L2 penalty ``weight_decay / 2 * sum(w ** 2)``, whose gradient is
            ``weight_decay * w`` as in Caffe. Defaults to 5e-4.

    Returns:
        A `keras.Model`.
    """
    if config not in CONFIGS:
        raise ValueError(f"config must be one of {sorted(CONFIGS)}. Received: config={config!r}")
    spec = CONFIGS[config]
    check_builder_args(weights=weights, input_shape=input_shape, classes=classes, include_top=include_top,
                       pooling=pooling, min_side=2 ** spec["stack"].count("pool"))
    if not 0 <= dropout < 1:
        raise ValueError(f"dropout must lie in [0, 1). Received: dropout={dropout}")
    regularizer = keras.regularizers.L2(weight_decay / 2) if weight_decay else None
    inputs = image_input(input_shape, input_tensor)
    x = _convolutions(inputs, spec, regularizer)

    def top(x):
        x = layers.Flatten(name="flatten")(x)
        for i, width in enumerate(spec["fc"], start=1):
            x = layers.Dense(width, activation="relu", kernel_initializer="he_normal",
                             kernel_regularizer=regularizer, name=f"fc{i}")(x)
            if i == len(spec["fc"]):
                x = layers.Identity(name=FEATURE_LAYER)(x)
            if dropout:
                x = layers.Dropout(dropout, name=f"fc{i}_dropout")(x)
        return classifier(x, classes, classifier_activation, kernel_regularizer=regularizer)

    x = top_or_pooling(x, include_top=include_top, pooling=pooling, top=top)
    return finish_model(inputs, x, input_tensor, name or f"vgg_config_{config}", weights)


def _convolutions(x, spec: dict, regularizer):
    """The configuration's stack: 20-filter ReLU convolutions and 2 x 2 max poolings, in order."""
    block, conv = 1, 1
    for step in spec["stack"]:
        if step == "conv":
            x = layers.Conv2D(FILTERS, spec["kernel_size"], padding="same", activation="relu",
                              kernel_initializer="he_normal", kernel_regularizer=regularizer,
                              name=f"block{block}_conv{conv}")(x)
            conv += 1
        else:
            x = layers.MaxPooling2D(2, strides=2, name=f"block{block}_pool")(x)
            block, conv = block + 1, 1
    return x


def anatomy_labels(codes) -> tuple[np.ndarray, tuple[str, ...]]:
    """Coarse anatomical class of each code: the benchmark region, or the IRMA group.

    Benchmark codes ``MOD-region-finding`` give their region. IRMA codes give the
    group of the first digit of their anatomical axis (:data:`IRMA_ANATOMY_GROUPS`);
    other IRMA anatomies get label -1 (the paper dropped them).

    Returns:
        ``(labels, class_names)``: int64 ``(n,)`` indices into the sorted names.
    """
    names = np.array([IRMA_ANATOMY_GROUPS.get(region[0], "") if region[:1].isdigit() else region
                      for region in (code_region(str(c)) for c in codes)])
    class_names = tuple(sorted(set(names) - {""}))
    labels = np.array([class_names.index(n) if n else -1 for n in names], dtype=np.int64)
    return labels, class_names


class VGGPreprocessor:
    """The paper's preprocessing: resize, CLAHE, then subtract the training mean image.

    CLAHE works on ``uint8`` pixels, so it comes before the mean subtraction
    (the paper lists the steps without an order). ``fit`` learns ``mean_image_``
    from the training images only.

    Args:
        image_size: Side of the square network input. Defaults to 128.
        use_clahe: Apply CLAHE (``cbmir_tf.data.preprocess.clahe``). Defaults to `True`.
        clip_limit: CLAHE clip limit. Defaults to 2.0.
    """

    def __init__(self, *, image_size=128, use_clahe=True, clip_limit=2.0):
        self.image_size = image_size
        self.use_clahe = use_clahe
        self.clip_limit = clip_limit

    def _pixels(self, images) -> np.ndarray:
        images = np.asarray(images)
        if images.ndim != 3 or images.dtype != np.uint8:
            raise ValueError(f"images must be uint8 of shape (n, h, w). "
                             f"Got {images.dtype} of shape {images.shape} instead.")
        images = resize_batch(images, self.image_size)
        images = clahe(images, self.clip_limit) if self.use_clahe else images
        return images.astype(np.float32) / 255.0

    def fit(self, images, split=None) -> "VGGPreprocessor":
        """Learn ``mean_image_``, float32 ``(size, size)``, from ``images[split == "train"]``.

        With ``split=None`` every image counts as training.
        """
        if split is not None:
            images = np.asarray(images)[np.asarray(split) == "train"]
        if len(images) == 0:
            raise ValueError("No training images to compute the mean image from. Got an empty selection.")
        self.mean_image_ = self._pixels(images).mean(axis=0)
        return self

    def transform(self, images) -> np.ndarray:
        """Return float32 network inputs of shape ``(n, size, size, 1)``."""
        if not hasattr(self, "mean_image_"):
            raise RuntimeError("This VGGPreprocessor is not fitted yet: call fit first.")
        return (self._pixels(images) - self.mean_image_)[..., None]

    def save(self, path) -> None:
        """Write the settings and the fitted mean image to ``path`` (``.npz``)."""
        if not hasattr(self, "mean_image_"):
            raise RuntimeError("This VGGPreprocessor is not fitted yet: call fit first.")
        with atomic_write(path, "wb") as f:
            np.savez(f, mean_image=self.mean_image_, image_size=self.image_size, use_clahe=self.use_clahe,
                     clip_limit=self.clip_limit)

    @classmethod
    def load(cls, path) -> "VGGPreprocessor":
        """A fitted preprocessor read back from a file written by :meth:`save`."""
        with np.load(path) as saved:
            prep = cls(image_size=int(saved["image_size"]), use_clahe=bool(saved["use_clahe"]),
                       clip_limit=float(saved["clip_limit"]))
            prep.mean_image_ = saved["mean_image"].astype(np.float32)
        return prep


def augment(x: np.ndarray, rng: np.random.Generator, crop_fraction: float = 0.875) -> np.ndarray:
    """Rotate each image by 0, 90, 180 or 270 degrees and take a random crop, resized back.

    Args:
        x: float32 ``(n, h, w, c)`` square network inputs.
        rng: The random generator.
        crop_fraction: Side of the random crop as a fraction of ``h``. Defaults to 0.875.

    Returns:
        float32 ``(n, h, w, c)``.
    """
    n, h, w = x.shape[:3]
    side = int(round(crop_fraction * h))
    out = np.empty_like(x)
    for i, (k, top, left) in enumerate(zip(rng.integers(0, 4, n), rng.integers(0, h - side + 1, n),
                                           rng.integers(0, w - side + 1, n))):
        crop = np.ascontiguousarray(np.rot90(x[i], k)[top:top + side, left:left + side])
        out[i] = cv2.resize(crop, (w, h), interpolation=cv2.INTER_LINEAR).reshape(x.shape[1:])
    return out


def feature_extractor(model: keras.Model) -> keras.Model:
    """The sub-model from the input to the :data:`FEATURE_LAYER` (the retrieval descriptor)."""
    return keras.Model(model.input, model.get_layer(FEATURE_LAYER).output, name=f"{model.name}_features")
