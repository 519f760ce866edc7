"""SqueezeNet v1.1 in Keras 3, with the ImageNet weights of keras-squeezenet (paper 002).

Paper 002 took descriptors from ImageNet-pretrained CNNs without further training;
its best was SqueezeNet followed by a 5 x 5 average pooling. Keras has no SqueezeNet,
so it is written here: a stem convolution, eight fire modules (a 1 x 1 "squeeze"
convolution feeding parallel 1 x 1 and 3 x 3 "expand" convolutions whose outputs are
concatenated) and three max-poolings.

The pretrained weights are the channels-last, no-top HDF5 file of keras-squeezenet
(converted from DeepScale's Caffe model). It was written by old Keras, whose layer
names contain ``/`` (``fire2/squeeze1x1``), which Keras 3 does not allow, and whose
datasets carry auto-generated names (``uniform2``). ``load_squeezenet_weights`` therefore
reads it with h5py and maps each old layer to ours explicitly (``fire2/squeeze1x1`` ->
``fire2_squeeze1x1``), taking each group's arrays in its ``weight_names`` order.

Reference: Iandola et al., "SqueezeNet: AlexNet-level accuracy with 50x fewer parameters
and <0.5MB model size", 2016 (v1.1 from the DeepScale repository); used in paper 002, Fig. 6.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

import keras
from keras import layers

WEIGHTS_FILE = "squeezenet_weights_tf_dim_ordering_tf_kernels_notop.h5"

# (block name, squeeze filters, expand filters) of SqueezeNet v1.1; "pool" marks a max-pooling.
FIRE_CONFIG = (("fire2", 16, 64), ("fire3", 16, 64), "pool3", ("fire4", 32, 128), ("fire5", 32, 128), "pool5",
               ("fire6", 48, 192), ("fire7", 48, 192), ("fire8", 64, 256), ("fire9", 64, 256))

# Old-Keras layer name in the HDF5 file -> layer name in this model.
H5_LAYER_NAMES = {"conv1": "conv1", **{
    f"{block[0]}/{conv}": f"{block[0]}_{conv}"
    for block in FIRE_CONFIG if not isinstance(block, str)
    for conv in ("squeeze1x1", "expand1x1", "expand3x3")}}


def fire_module(x, squeeze: int, expand: int, name: str):
    """Fire module: 1 x 1 squeeze, then concatenated 1 x 1 and 3 x 3 expand convolutions (ReLU after each)."""
    x = layers.Conv2D(squeeze, 1, padding="valid", name=f"{name}_squeeze1x1")(x)
    x = layers.ReLU(name=f"{name}_relu_squeeze1x1")(x)
    left = layers.Conv2D(expand, 1, padding="valid", name=f"{name}_expand1x1")(x)
    left = layers.ReLU(name=f"{name}_relu_expand1x1")(left)
    right = layers.Conv2D(expand, 3, padding="same", name=f"{name}_expand3x3")(x)
    right = layers.ReLU(name=f"{name}_relu_expand3x3")(right)
    return layers.Concatenate(axis=-1, name=f"{name}_concat")([left, right])


def SqueezeNet(include_top: bool = False, weights: str | os.PathLike | None = "imagenet", input_tensor=None,
               input_shape: tuple[int, int, int] | None = None, pooling: str | None = None,
               classes: int = 1000, classifier_activation: str | None = "softmax",
               name: str = "squeezenet_v1_1") -> keras.Model:
    """Instantiate SqueezeNet v1.1 (channels last).

    Reference: Iandola et al. 2016 (SqueezeNet v1.1); paper 002 (Barać et al.), Fig. 6 and Section IX.

    Args:
        include_top: Add the classifier (dropout, 1 x 1 conv to ``classes``, global average pooling,
            activation). Only random weights exist for it here. Defaults to `False`.
        weights: `None` (random), ``"imagenet"`` (the file ``weights/{WEIGHTS_FILE}`` under
            ``$CBMIR_DATA_DIR``, downloaded with its sha256 if missing and allowed) or a path to that
            HDF5 file. Defaults to ``"imagenet"``.
        input_tensor: Optional Keras tensor to use as the input.
        input_shape: ``(height, width, 3)``, at least 32 pixels a side. Defaults to ``(224, 224, 3)``.
        pooling: Without the top: `None` (the last fire module's feature map, layer ``fire9_concat``),
            ``"avg"`` or ``"max"`` (global pooling). Defaults to `None`.
        classes: Classes of the top. Defaults to 1000.
        classifier_activation: Activation of the top. Defaults to ``"softmax"``.
        name: Model name. Defaults to ``"squeezenet_v1_1"``.

    Returns:
        A `keras.Model`. Inputs are expected as made by `preprocess_input`.
    """
    if pooling not in (None, "avg", "max"):
        raise ValueError(f"pooling must be None, 'avg' or 'max'. Received: pooling={pooling!r}")
    if include_top and weights is not None:
        raise ValueError("Only the no-top ImageNet weights of SqueezeNet are available; use "
                         f"include_top=False or weights=None. "
                         f"Received: include_top=True, weights={weights!r}")
    if input_shape is None:
        input_shape = (224, 224, 3)
    if len(input_shape) != 3 or input_shape[-1] != 3 or min(input_shape[:2]) < 32:
        raise ValueError(f"input_shape must be (height, width, 3) with sides of at least 32. "
                         f"Received: input_shape={input_shape}")
    inputs = layers.Input(shape=input_shape, name="input") if input_tensor is None else input_tensor
    x = layers.Conv2D(64, 3, strides=2, padding="valid", name="conv1")(inputs)
    x = layers.ReLU(name="relu_conv1")(x)
    x = layers.MaxPooling2D(3, strides=2, name="pool1")(x)
    for block in FIRE_CONFIG:
        if isinstance(block, str):
            x = layers.MaxPooling2D(3, strides=2, name=block)(x)
        else:
            x = fire_module(x, block[1], block[2], name=block[0])
    if include_top:
        x = layers.Dropout(0.5, name="drop9")(x)
        x = layers.Conv2D(classes, 1, padding="valid", name="conv10")(x)
        x = layers.ReLU(name="relu_conv10")(x)
        x = layers.GlobalAveragePooling2D(name="avg_pool")(x)
        x = layers.Activation(classifier_activation, name="predictions")(x)
    elif pooling == "avg":
        x = layers.GlobalAveragePooling2D(name="avg_pool")(x)
    elif pooling == "max":
        x = layers.GlobalMaxPooling2D(name="max_pool")(x)
    model = keras.Model(inputs if input_tensor is None else keras.utils.get_source_inputs(input_tensor), x,
                        name=name)
    if weights is not None:
        load_squeezenet_weights(model, weights)
    return model


def resolve_weights(weights: str | os.PathLike) -> Path:
    """Path of the ImageNet weights file for ``weights="imagenet"`` (or the given path, which must exist)."""
    if str(weights) == "imagenet":
        from cbmir_tf.data.registry import fetch

        return fetch(f"weights/{WEIGHTS_FILE}")
    path = Path(weights)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: SqueezeNet weights file not found. Pass weights='imagenet' to use "
                                f"$CBMIR_DATA_DIR/weights/{WEIGHTS_FILE}, or the path of that file.")
    return path


def load_squeezenet_weights(model: keras.Model, weights: str | os.PathLike) -> keras.Model:
    """Load keras-squeezenet's old-Keras HDF5 weights into ``model`` by the explicit name map.

    Every weighted layer in the file must map onto a layer of ``model`` with the same array shapes,
    and every convolution of ``model`` except ``conv10`` must receive weights.

    Raises:
        ValueError: naming the file, when it cannot be read (e.g. truncated) or does not match.
    """
    import h5py

    path = resolve_weights(weights)
    arrays = {}
    try:
        with h5py.File(path, "r") as f:
            for raw in f.attrs["layer_names"]:
                old = raw.decode() if isinstance(raw, bytes) else str(raw)
                group = f[old]
                names = [n.decode() if isinstance(n, bytes) else str(n)
                         for n in group.attrs.get("weight_names", [])]
                if names:
                    arrays[old] = [np.asarray(group[n]) for n in names]
    except (OSError, KeyError) as e:
        raise ValueError(f"{path}: cannot read SqueezeNet weights ({e}); the file may be truncated or not a "
                         f"Keras HDF5 weights file (expected {WEIGHTS_FILE}, see `cbmir-data list`)") from None
    unknown = sorted(set(arrays) - set(H5_LAYER_NAMES))
    missing = sorted(set(H5_LAYER_NAMES) - set(arrays))
    if unknown or missing:
        raise ValueError(f"{path}: layers do not match SqueezeNet v1.1; unexpected {unknown}, "
                         f"missing {missing}.")
    ours = {layer.name for layer in model.layers if layer.weights}
    unmapped = sorted(ours - set(H5_LAYER_NAMES.values()) - {"conv10"})
    if unmapped:
        raise ValueError(f"model layers {unmapped} get no weights from {path}.")
    for old, new in H5_LAYER_NAMES.items():
        layer = model.get_layer(new)
        expected = [tuple(w.shape) for w in layer.weights]
        got = [a.shape for a in arrays[old]]
        if expected != got:
            raise ValueError(f"{path}: layer {old!r} holds shapes {got}, but {new!r} needs {expected}.")
        layer.set_weights(arrays[old])
    return model


def preprocess_input(x):
    """Caffe-style input of the converted weights: RGB -> BGR and ImageNet mean subtraction.

    Args:
        x: Float or uint8 array ``(..., 3)`` of RGB values in [0, 255].

    Returns:
        float32 array of the same shape.
    """
    return keras.applications.imagenet_utils.preprocess_input(np.asarray(x, dtype="float32"), mode="caffe")
