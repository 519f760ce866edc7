"""ResNet50V2 with a feature pyramid whose pooled levels form the retrieval vector (paper 000).

The backbone is ``keras.applications.ResNet50V2`` without its top. ResNet v2 puts the
stride-2 step in the *last* block of a stage, so the full-resolution output of each stage
is the output of the block before it; we tap

========  =====================  ======  ===========
level     backbone layer         stride  channels
========  =====================  ======  ===========
C2        ``conv2_block2_out``   4       256
C3        ``conv3_block3_out``   8       512
C4        ``conv4_block5_out``   16      1024
C5        ``post_relu``          32      2048
========  =====================  ======  ===========

The top-down pathway of Lin et al. (FPN) follows: a 1 x 1 lateral convolution brings every
``C`` to ``pyramid_channels``, the coarser level is upsampled by 2 (nearest) and added, and a
3 x 3 convolution smooths the sum into ``P2 .. P5``. Each kept level is global-average
pooled and projected by a short ``Dense`` (``level_dim`` units, ReLU) into ``P{i}_vector``;
their concatenation is the layer ``"features"``, the retrieval vector (the penultimate layer
of the paper's Fig. 5), followed by dropout and the softmax classifier ``"predictions"``.

Grey input: the model takes ``(h, w, 1)`` images with values 0..255 (see
:func:`preprocess_input`), repeats the channel three times (no weights, so ImageNet
weights keep their meaning) and rescales to [-1, 1] as ResNet50V2's own preprocessing does.

Reference: paper 000 (ResNet50V2 + FPN for multi-semantic X-ray retrieval), Fig. 5 and
Section "Materials and methods"; T.-Y. Lin et al., "Feature Pyramid Networks for Object
Detection", CVPR 2017; K. He et al., "Identity Mappings in Deep Residual Networks", 2016.
"""

from __future__ import annotations

import warnings

import keras
import numpy as np

from cbmir_tf.data.preprocess import to_model_input
from cbmir_tf.models.common import check_builder_args, classifier, finish_model, image_input

FEATURE_LAYER = "features"
PREDICTION_LAYER = "predictions"
LEVELS = ("P2", "P3", "P4", "P5")
#: Backbone layer tapped for each pyramid level, and the level's stride.
TAPS = {"P2": ("conv2_block2_out", 4), "P3": ("conv3_block3_out", 8), "P4": ("conv4_block5_out", 16),
        "P5": ("post_relu", 32)}
#: Keras' no-top ImageNet weight files, looked for under ``$CBMIR_DATA_DIR/weights/`` first.
WEIGHT_FILES = {"ResNet50V2": "resnet50v2_weights_tf_dim_ordering_tf_kernels_notop.h5",
                "ResNet50": "resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5",
                "VGG16": "vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5"}
#: How each backbone expects its three channels: "tf" = [-1, 1]; "caffe" = minus the BGR means.
PREPROCESS_MODE = {"ResNet50V2": "tf", "ResNet50": "caffe", "VGG16": "caffe"}


def check_common_args(weights, input_shape, classes, include_top, dropout, multiple: int = 32) -> None:
    """Validate the arguments every model of this chapter shares; raise ``ValueError`` naming the value.

    The shared checks of :func:`cbmir_tf.models.common.check_builder_args` (with ``"imagenet"``
    weights allowed), then a grey input with sides that are multiples of ``multiple``, and the dropout rate.
    """
    check_builder_args(weights=weights, input_shape=input_shape, classes=classes, include_top=include_top,
                       min_side=32, allowed_weights=(None, "imagenet"))
    if input_shape[-1] != 1 or input_shape[0] % multiple or input_shape[1] % multiple:
        raise ValueError(f"input_shape must be (height, width, 1) with sides that are multiples of {multiple} "
                         f"and at least 32. Received: input_shape={tuple(input_shape)!r}")
    if not 0.0 <= dropout < 1.0:
        raise ValueError(f"dropout must lie in [0, 1). Received: dropout={dropout!r}")


def grey_stem(inputs, mode: str, name: str = "grey"):
    """Grey 0..255 ``(h, w, 1)`` to the three-channel input a ``keras.applications`` backbone expects."""
    x = keras.layers.Concatenate(name=f"{name}_to_rgb")([inputs, inputs, inputs])
    if mode == "tf":
        return keras.layers.Rescaling(1.0 / 127.5, offset=-1.0, name=f"{name}_rescale")(x)
    return keras.layers.Normalization(mean=[103.939, 116.779, 123.68], variance=[1.0, 1.0, 1.0],
                                      name=f"{name}_caffe_mean")(x)


def backbone_model(arch: str, weights, input_shape) -> tuple[keras.Model, bool]:
    """A ``keras.applications`` backbone (no top) on ``(h, w, 3)``, and whether ImageNet weights loaded.

    ``weights="imagenet"`` takes Keras' file through the data registry (data folder, cache,
    download); when both fail (e.g. offline) it warns and falls back to random weights.
    """
    from cbmir_tf.data.registry import fetch

    builder = getattr(keras.applications, arch)
    shape = (int(input_shape[0]), int(input_shape[1]), 3)
    if weights != "imagenet":
        return builder(include_top=False, weights=None, input_shape=shape), False
    try:
        local = fetch(f"weights/{WEIGHT_FILES[arch]}")
        return builder(include_top=False, weights=str(local), input_shape=shape), True
    except (FileNotFoundError, ValueError) as e:
        warnings.warn(f"{arch}: ImageNet weights unavailable ({e}). Falling back to RANDOM weights.",
                      stacklevel=3)
        return builder(include_top=False, weights=None, input_shape=shape), False


def projection(x, units: int, name: str):
    """Global average pooling, then a ``Dense`` of ``units`` with ReLU: one short vector per map."""
    x = keras.layers.GlobalAveragePooling2D(name=f"{name}_pool")(x)
    return keras.layers.Dense(units, activation="relu", name=name)(x)


def classification_head(features, classes: int, classifier_activation, dropout: float):
    """Dropout on the feature vector, then the ``"predictions"`` classifier (shared by every network)."""
    x = keras.layers.Dropout(dropout, name=f"{FEATURE_LAYER}_dropout")(features) if dropout else features
    return classifier(x, classes, classifier_activation, name=PREDICTION_LAYER)


def fpn_top_down(stages: dict, pyramid_channels: int, name: str = "fpn") -> dict:
    """FPN top-down pathway: lateral 1 x 1 convs, 2x nearest upsampling with addition, 3 x 3 smoothing.

    Args:
        stages: ``{"P2": C2, ..., "P5": C5}`` backbone maps, each half the size of the previous one.
        pyramid_channels: Channels of every pyramid level.

    Returns:
        ``{"P2": ..., "P5": ...}``, the smoothed levels, named ``"P2" .. "P5"``.
    """
    merged, pyramid = None, {}
    for level in reversed(LEVELS):
        lateral = keras.layers.Conv2D(pyramid_channels, 1, name=f"{name}_{level}_lateral")(stages[level])
        if merged is not None:
            up = keras.layers.UpSampling2D(2, interpolation="nearest", name=f"{name}_{level}_upsample")(merged)
            lateral = keras.layers.Add(name=f"{name}_{level}_add")([lateral, up])
        merged = lateral
        pyramid[level] = keras.layers.Conv2D(pyramid_channels, 3, padding="same", name=level)(merged)
    return pyramid


def ResNet50V2FPN(include_top: bool = True, weights: str | None = None, input_tensor=None,
                  input_shape: tuple[int, int, int] = (128, 128, 1), classes: int = 116,
                  classifier_activation: str | None = "softmax", name: str = "resnet50v2_fpn", *,
                  pyramid_channels: int = 256, level_dim: int = 64, levels=LEVELS, dropout: float = 0.3):
    """Instantiate ResNet50V2 + FPN, whose concatenated pooled pyramid levels are the retrieval vector.

    Reference: paper 000 (ResNet50V2 + feature pyramid for multi-semantic X-ray retrieval), Fig. 5.

    Layers: the tapped backbone ``"resnet50v2_c2_c5"`` (a nested model whose inner layers keep
    Keras' names), ``fpn_P{i}_lateral``, ``fpn_P{i}_upsample``, ``fpn_P{i}_add``, the levels
    ``"P2" .. "P5"``, ``"P{i}_vector"`` (pooled and projected level), ``"features"`` and
    ``"predictions"``. All four levels are always built (the top-down sums need them); ``levels``
    chooses which ones enter the feature vector, for the ablation of the paper's Table 5.

    Args:
        include_top: Whether to add dropout and the classifier after ``"features"``; without it the
            model outputs the feature vector. Defaults to `True`.
        weights: `None` (random initialisation), ``"imagenet"`` (backbone only; falls back to random
            weights with a warning when the file can be neither found under
            ``$CBMIR_DATA_DIR/weights/`` nor downloaded) or the path of a ``.weights.h5`` file of
            this whole model. Defaults to `None`.
        input_tensor: Optional Keras tensor to use as the image input.
        input_shape: ``(height, width, 1)``, sides multiples of 32. Defaults to ``(128, 128, 1)``,
            the paper's.
        classes: Number of classes (116 IRMA 2007 codes in the paper). Defaults to 116.
        classifier_activation: Activation of the last layer. Defaults to ``"softmax"``.
        name: Model name. Defaults to ``"resnet50v2_fpn"``.
        pyramid_channels: Channels of every pyramid level. Defaults to 256 (Lin et al.).
        level_dim: Length of each level's vector. Defaults to 64.
        levels: Levels that enter the feature vector, a non-empty subset of
            ``("P2", "P3", "P4", "P5")``. Defaults to all four.
        dropout: Dropout rate between the features and the classifier. Defaults to 0.3.

    Returns:
        A `keras.Model`; its layer ``"features"`` yields ``len(levels) * level_dim`` values per image.
    """
    levels = tuple(levels)
    if not levels or len(set(levels)) != len(levels) or not set(levels) <= set(LEVELS):
        raise ValueError(f"levels must be a non-empty subset of {LEVELS} without repeats. Received: levels={levels!r}")
    if int(pyramid_channels) < 1 or int(level_dim) < 1:
        raise ValueError("pyramid_channels and level_dim must be positive. "
                         f"Received: pyramid_channels={pyramid_channels!r}, level_dim={level_dim!r}")
    if input_tensor is not None:
        input_shape = tuple(input_tensor.shape[1:])
    check_common_args(weights, input_shape, classes, include_top, dropout)

    inputs = image_input(input_shape, input_tensor)
    backbone, _ = backbone_model("ResNet50V2", "imagenet" if weights == "imagenet" else None, input_shape)
    taps = keras.Model(backbone.input, {level: backbone.get_layer(layer).output for level, (layer, _) in TAPS.items()},
                       name="resnet50v2_c2_c5")
    stages = taps(grey_stem(inputs, PREPROCESS_MODE["ResNet50V2"]))
    pyramid = fpn_top_down(stages, int(pyramid_channels))
    vectors = [projection(pyramid[level], int(level_dim), name=f"{level}_vector") for level in LEVELS if level in levels]
    features = (keras.layers.Concatenate(name=FEATURE_LAYER)(vectors) if len(vectors) > 1
                else keras.layers.Identity(name=FEATURE_LAYER)(vectors[0]))
    x = classification_head(features, int(classes), classifier_activation, dropout) if include_top else features
    return finish_model(inputs, x, input_tensor, name, weights)


# keras.applications keeps a preprocess_input beside each model; ours is the shared one.
preprocess_input = to_model_input


def feature_extractor(model: keras.Model, output: str = "features") -> keras.Model:
    """The retrieval descriptor of a trained model: the penultimate layer, or the softmax output.

    Args:
        model: A model of this chapter built with ``include_top=True``.
        output: ``"features"`` (the pooled pyramid vector, layer ``"features"``) or ``"softmax"``
            (the class probabilities, for the "pooled features vs. softmax" ablation).
            Defaults to ``"features"``.

    Returns:
        A `keras.Model` from the model's input to the chosen vector.
    """
    if output not in ("features", "softmax"):
        raise ValueError(f"output must be 'features' or 'softmax'. Received: output={output!r}")
    layer = FEATURE_LAYER if output == "features" else PREDICTION_LAYER
    try:
        tensor = model.get_layer(layer).output
    except ValueError:
        raise ValueError(f"{model.name} has no layer {layer!r}; build it with include_top=True. "
                         f"Its last layers are {[lyr.name for lyr in model.layers[-4:]]}") from None
    return keras.Model(model.inputs, tensor, name=f"{model.name}_{output}")


def extract_features(extractor: keras.Model, images: np.ndarray, batch_size: int = 64) -> np.ndarray:
    """Run ``extractor`` on grey uint8 images ``(n, h, w)`` (resized to its input); returns float32 ``(n, d)``."""
    size = int(extractor.input_shape[1])
    out = [np.asarray(extractor.predict_on_batch(preprocess_input(images[s:s + batch_size], size)))
           for s in range(0, len(images), int(batch_size))]
    return np.concatenate(out).astype(np.float32)


def extract_layers(model: keras.Model, images: np.ndarray, layers=(FEATURE_LAYER, PREDICTION_LAYER),
                   batch_size: int = 64) -> dict[str, np.ndarray]:
    """Outputs of several named layers of ``model`` in one pass over grey uint8 images ``(n, h, w)``.

    Returns:
        ``{layer: float32 array (n, d)}`` for each name in ``layers`` (e.g. ``"P3_vector"``).
    """
    tap = keras.Model(model.inputs, [model.get_layer(name).output for name in layers], name=f"{model.name}_taps")
    parts = [tap.predict_on_batch(preprocess_input(images[s:s + batch_size], int(model.input_shape[1])))
             for s in range(0, len(images), int(batch_size))]
    parts = [p if isinstance(p, (list, tuple)) else [p] for p in parts]  # one layer: Keras returns one array
    return {name: np.concatenate([np.asarray(p[i]) for p in parts]).astype(np.float32)
            for i, name in enumerate(layers)}
