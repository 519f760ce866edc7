"""The plain backbones paper 000 compares its FPN with: VGG16, ResNet50 and ResNet50V2, with the same head.

Each is the ``keras.applications`` network without its top, fed by the same grey stem as
:func:`cbmir_tf.models.resnet50v2_fpn.ResNet50V2FPN` (the grey channel repeated to three, then
the backbone's own scaling), followed by the same head: global average pooling and a short
``Dense`` into the layer ``"features"`` (``feature_dim`` values, the retrieval vector), dropout
and the ``"predictions"`` softmax. Only the backbone differs, as in the paper's Tables 2 and 4.

Reference: paper 000, Tables 2 and 4 (VGG16, ResNet50, ResNet50V2 beside the FPN).
"""

from __future__ import annotations

import keras

from cbmir_tf.models.common import finish_model, image_input
from cbmir_tf.models.resnet50v2_fpn import (
    FEATURE_LAYER,
    PREPROCESS_MODE,
    ResNet50V2FPN,
    backbone_model,
    check_common_args,
    classification_head,
    grey_stem,
    projection,
)

#: Short name of each baseline -> ``keras.applications`` builder name.
BACKBONES = {"vgg16": "VGG16", "resnet50": "ResNet50", "resnet50v2": "ResNet50V2"}
#: Every network of the chapter, by short name.
NETWORKS = (*BACKBONES, "resnet50v2_fpn")


def BackboneClassifier(backbone: str = "resnet50v2", include_top: bool = True, weights: str | None = None,
                       input_tensor=None, input_shape: tuple[int, int, int] = (128, 128, 1), classes: int = 116,
                       classifier_activation: str | None = "softmax", name: str | None = None, *,
                       feature_dim: int = 256, dropout: float = 0.3):
    """Instantiate a plain ``keras.applications`` backbone with the chapter's shared retrieval head.

    Reference: paper 000, Tables 2 and 4 (the VGG16, ResNet50 and ResNet50V2 rows).

    Layers: the backbone as a nested model named after ``backbone``, ``"features_pool"``
    (global average pooling of its last map), ``"features"``, ``"features_dropout"`` and
    ``"predictions"``.

    Args:
        backbone: ``"vgg16"``, ``"resnet50"`` or ``"resnet50v2"``. Defaults to ``"resnet50v2"``.
        include_top: Whether to add dropout and the classifier; without it the model outputs the
            feature vector. Defaults to `True`.
        weights: `None`, ``"imagenet"`` (backbone only, random with a warning when unavailable) or the
            path of a ``.weights.h5`` file of the whole model. Defaults to `None`.
        input_tensor: Optional Keras tensor to use as the image input.
        input_shape: ``(height, width, 1)``, sides multiples of 32. Defaults to ``(128, 128, 1)``.
        classes: Number of classes. Defaults to 116 (IRMA 2007).
        classifier_activation: Activation of the last layer. Defaults to ``"softmax"``.
        name: Model name. Defaults to ``backbone``.
        feature_dim: Length of the feature vector. Defaults to 256, the length of the FPN's default
            vector (4 levels x 64).
        dropout: Dropout rate between the features and the classifier. Defaults to 0.3.

    Returns:
        A `keras.Model`; its layer ``"features"`` yields ``feature_dim`` values per image.
    """
    if backbone not in BACKBONES:
        raise ValueError(f"backbone must be one of {tuple(BACKBONES)}. Received: backbone={backbone!r}")
    if int(feature_dim) < 1:
        raise ValueError(f"feature_dim must be positive. Received: feature_dim={feature_dim!r}")
    if input_tensor is not None:
        input_shape = tuple(input_tensor.shape[1:])
    check_common_args(weights, input_shape, classes, include_top, dropout)
    arch = BACKBONES[backbone]
    inputs = image_input(input_shape, input_tensor)
    net, _ = backbone_model(arch, "imagenet" if weights == "imagenet" else None, input_shape)
    net.name = backbone
    x = net(grey_stem(inputs, PREPROCESS_MODE[arch]))
    features = projection(x, int(feature_dim), name=FEATURE_LAYER)
    x = classification_head(features, int(classes), classifier_activation, dropout) if include_top else features
    return finish_model(inputs, x, input_tensor, name or backbone, weights)


def build_network(network: str, *, input_shape=(128, 128, 1), classes: int = 116, weights=None,
                  feature_dim: int = 256, levels=("P2", "P3", "P4", "P5"), pyramid_channels: int = 256,
                  **kwargs) -> keras.Model:
    """Any network of the chapter by short name, with one feature length for all.

    The FPN's ``level_dim`` is ``feature_dim // 4``, so that with all four levels its vector is as
    long as the baselines'; with fewer ``levels`` (the ablation) it is ``len(levels) * level_dim``.

    Args:
        network: One of :data:`NETWORKS`.
        feature_dim: Length of the baselines' feature vector (and of the full FPN's). Defaults to 256.
        levels: FPN only: the levels that enter the feature vector. Defaults to all four.
        pyramid_channels: FPN only: channels of the pyramid levels. Defaults to 256.
        **kwargs: Passed on to the builder (e.g. ``dropout``).
    """
    if network not in NETWORKS:
        raise ValueError(f"network must be one of {NETWORKS}. Received: network={network!r}")
    if network == "resnet50v2_fpn":
        return ResNet50V2FPN(weights=weights, input_shape=input_shape, classes=classes, levels=tuple(levels),
                             level_dim=max(1, int(feature_dim) // 4), pyramid_channels=pyramid_channels, **kwargs)
    return BackboneClassifier(network, weights=weights, input_shape=input_shape, classes=classes,
                              feature_dim=feature_dim, **kwargs)
