"""InRes-Net of paper 001: inception-residual modules, FC1, a sigmoid hash layer H and FC3.

The network (Fig. 2 of the paper) alternates two modules taken from Inception-ResNet v2:

* **inV2** (space compression, Fig. 3): a ``k x k x N`` input goes through four parallel
  paths that all halve the side to ``k/2``: a 3 x 3 max pooling (N channels kept), a
  stride-2 3 x 3 convolution (N/4), 1 x 1 then stride-2 3 x 3 (N/4), and 1 x 1, 3 x 3,
  stride-2 3 x 3 (N/2). Their concatenation has 2N channels.
* **inRed** (multi-receptive field, Fig. 4): 1 x 1, 3 x 3 and two stacked 3 x 3 paths
  (receptive fields 1, 3 and 5 pixels) are concatenated, projected back to the input width
  by a linear 1 x 1 convolution and added to the input (the residual connection).

A stem of two convolutions precedes ``stages`` pairs of (inV2, inRed); global average
pooling then feeds **FC1** (ReLU), the latent layer **H** (``"hash"``, ``hash_bits`` sigmoid
units whose kernel starts as random Gaussian projections, as LSH does) and **FC3**
(``"fc3"``, softmax over the classes). Every layer is named, so features are taken by name.
All other kernels start from N(0, 0.01) as in the paper (``init_stddev=None`` swaps in
Keras' He / Glorot defaults, which suit short CPU runs better). The network trains through
:func:`cbmir_tf.models.training.train` (the paper: plain SGD at a constant rate, negative
log-likelihood); :class:`cbmir_tf.methods.inres_hashing.InResHashing` holds the recipe.

Reference: Qin et al. (paper 001), Section 3.2-3.4, Figs. 2-4; Szegedy et al., Inception-v4 /
Inception-ResNet (2017); Lin et al., deep binary hash codes (CVPRW 2015).
"""

from __future__ import annotations

import keras
import numpy as np

from cbmir_tf.data.preprocess import to_model_input
from cbmir_tf.models.common import (check_builder_args, classifier, finish_model, image_input,
                                     top_or_pooling)

FEATURE_LAYERS = ("fc1", "hash", "fc3")


def _init(seed: int | None, stddev: float | None = 0.01, dense: bool = False):
    """N(0, stddev) as in the paper, or Keras' He (convolutions) / Glorot (dense) default when `None`."""
    if stddev is None:
        return keras.initializers.GlorotUniform(seed) if dense else keras.initializers.HeNormal(seed)
    return keras.initializers.RandomNormal(0.0, stddev, seed=seed)


def conv_bn(x, filters: int, kernel: int, name: str, strides: int = 1, activation: str | None = "relu",
            seed: int | None = None, stddev: float | None = 0.01):
    """Convolution (no bias), batch normalisation and an optional activation."""
    x = keras.layers.Conv2D(filters, kernel, strides=strides, padding="same", use_bias=False,
                            kernel_initializer=_init(seed, stddev), name=f"{name}_conv")(x)
    # momentum 0.9: the moving statistics settle within the few hundred steps of a short CPU run
    x = keras.layers.BatchNormalization(momentum=0.9, name=f"{name}_bn")(x)
    return x if activation is None else keras.layers.Activation(activation, name=f"{name}_{activation}")(x)


def inv2_block(x, name: str, seed: int | None = None, stddev: float | None = 0.01):
    """Space compression: ``(k, k, N)`` to ``(k/2, k/2, 2N)`` by a max-pool path and three conv paths."""
    n = int(x.shape[-1])
    if n % 4:
        raise ValueError(f"inV2 needs a channel count divisible by 4. Received: N={n} at block {name!r}")
    pool = keras.layers.MaxPooling2D(3, strides=2, padding="same", name=f"{name}_pool")(x)
    a = conv_bn(x, n // 4, 3, f"{name}_a", strides=2, seed=seed, stddev=stddev)
    b = conv_bn(x, n // 4, 1, f"{name}_b1", seed=seed, stddev=stddev)
    b = conv_bn(b, n // 4, 3, f"{name}_b2", strides=2, seed=seed, stddev=stddev)
    c = conv_bn(x, n // 4, 1, f"{name}_c1", seed=seed, stddev=stddev)
    c = conv_bn(c, n // 2, 3, f"{name}_c2", seed=seed, stddev=stddev)
    c = conv_bn(c, n // 2, 3, f"{name}_c3", strides=2, seed=seed, stddev=stddev)
    return keras.layers.Concatenate(name=f"{name}_concat")([pool, a, b, c])


def inred_block(x, name: str, scale: float = 1.0, seed: int | None = None, stddev: float | None = 0.01):
    """Multi-receptive-field paths (1, 3, 5 px), a linear 1 x 1 projection and a residual addition."""
    n = int(x.shape[-1])
    width = max(n // 4, 8)
    a = conv_bn(x, width, 1, f"{name}_a", seed=seed, stddev=stddev)
    b = conv_bn(x, width, 1, f"{name}_b1", seed=seed, stddev=stddev)
    b = conv_bn(b, width, 3, f"{name}_b2", seed=seed, stddev=stddev)
    c = conv_bn(x, width, 1, f"{name}_c1", seed=seed, stddev=stddev)
    c = conv_bn(c, width, 3, f"{name}_c2", seed=seed, stddev=stddev)
    c = conv_bn(c, width, 3, f"{name}_c3", seed=seed, stddev=stddev)
    mixed = keras.layers.Concatenate(name=f"{name}_concat")([a, b, c])
    up = keras.layers.Conv2D(n, 1, kernel_initializer=_init(seed, stddev), name=f"{name}_project")(mixed)
    if scale != 1.0:
        up = keras.layers.Rescaling(scale, name=f"{name}_scale")(up)
    x = keras.layers.Add(name=f"{name}_add")([x, up])
    return keras.layers.Activation("relu", name=f"{name}_out")(x)


def InResNet(include_top: bool = True, weights: str | None = None, input_tensor=None,
             input_shape: tuple[int, int, int] = (128, 128, 1), pooling: str | None = None, classes: int = 8,
             classifier_activation: str | None = "softmax", name: str = "inres_net", *, hash_bits: int = 48,
             fc1_units: int = 512, stem_filters: int = 32, stages: int = 3, dropout: float = 0.5,
             init_stddev: float | None = 0.01, seed: int | None = None):
    """Instantiate InRes-Net with its hash layer.

    Reference: Qin et al. (paper 001), Figs. 2-4 and Section 3.3 (latent layer H, 8 classes in Table 2).

    Args:
        include_top: Whether to include FC1, H and FC3. Defaults to `True`.
        weights: `None` (random initialisation) or the path of a ``.weights.h5`` file. Defaults to `None`.
        input_tensor: Optional Keras tensor to use as the image input.
        input_shape: ``(height, width, channels)``; sides divisible by ``2 ** (stages + 1)``.
            Defaults to ``(128, 128, 1)``.
        pooling: Without the top: `None` (the 4-D output of the last stage), ``"avg"`` or ``"max"``.
            Defaults to `None`.
        classes: Classes of FC3 (8 diameter classes in the paper). Defaults to 8.
        classifier_activation: Activation of FC3. Defaults to ``"softmax"``.
        name: Model name. Defaults to ``"inres_net"``.
        hash_bits: Units of H, i.e. bits of the binary code. Defaults to 48.
        fc1_units: Units of FC1. Defaults to 512.
        stem_filters: Channels N of the first inV2 input (divisible by 4); each inV2 doubles them.
            Defaults to 32.
        stages: Number of (inV2, inRed) pairs. Defaults to 3.
        dropout: Dropout after FC1 during training. Defaults to 0.5.
        init_stddev: Standard deviation of the Gaussian initialisation of every kernel but H's (0.01 in
            the paper); `None` uses Keras' He / Glorot defaults, which train faster in short runs.
            Defaults to 0.01.
        seed: Seed of the initialisers (also of H's random projections). Defaults to `None`.

    Returns:
        A `keras.Model`; layers ``"fc1"``, ``"hash"`` and ``"fc3"`` give the retrieval features.
    """
    step = 2 ** (int(stages) + 1)
    check_builder_args(weights=weights, input_shape=input_shape, classes=classes, include_top=include_top,
                       pooling=pooling, min_side=step)
    if input_shape[0] % step or input_shape[1] % step:
        raise ValueError(f"input_shape must have sides divisible by 2**(stages + 1) = {step}. "
                         f"Received: input_shape={input_shape!r}")
    if int(stem_filters) % 4 or int(stem_filters) < 4:
        raise ValueError(f"stem_filters must be a positive multiple of 4. Received: stem_filters={stem_filters!r}")
    if int(hash_bits) < 1:
        raise ValueError(f"hash_bits must be positive. Received: hash_bits={hash_bits!r}")

    inputs = image_input(input_shape, input_tensor)
    x = keras.layers.Rescaling(1.0 / 255.0, name="rescale")(inputs)
    x = conv_bn(x, stem_filters // 2, 3, "stem1", strides=2, seed=seed, stddev=init_stddev)
    x = conv_bn(x, stem_filters, 3, "stem2", seed=seed, stddev=init_stddev)
    for stage in range(1, int(stages) + 1):
        x = inv2_block(x, f"inv2_{stage}", seed=seed, stddev=init_stddev)
        x = inred_block(x, f"inred_{stage}", seed=seed, stddev=init_stddev)

    def top(x):
        x = keras.layers.GlobalAveragePooling2D(name="avg_pool")(x)
        x = keras.layers.Dense(fc1_units, activation="relu", kernel_initializer=_init(seed, init_stddev, True),
                               name="fc1")(x)
        x = keras.layers.Dropout(dropout, name="fc1_dropout")(x)
        # LSH-like start: H's kernel is a Gaussian random projection of FC1 (unit variance per output)
        projection = keras.initializers.RandomNormal(0.0, 1.0 / np.sqrt(fc1_units), seed=seed)
        x = keras.layers.Dense(hash_bits, activation="sigmoid", kernel_initializer=projection, name="hash")(x)
        return classifier(x, classes, classifier_activation, name="fc3",
                          kernel_initializer=_init(seed, init_stddev, True))

    x = top_or_pooling(x, include_top=include_top, pooling=pooling, top=top)
    return finish_model(inputs, x, input_tensor, name, weights)


# keras.applications keeps a preprocess_input beside each model; ours is the shared one.
preprocess_input = to_model_input


def feature_model(model: keras.Model, layers=FEATURE_LAYERS) -> keras.Model:
    """A model from ``model``'s input to the outputs of ``layers`` (a list, in that order)."""
    try:
        outputs = [model.get_layer(layer).output for layer in layers]
    except ValueError:
        names = [lyr.name for lyr in model.layers]
        raise ValueError(f"{model.name} lacks one of the layers {list(layers)}; it has {names}. "
                         "Build it with InResNet(include_top=True).") from None
    return keras.Model(model.inputs, outputs, name=f"{model.name}_features")


def extract_features(model: keras.Model, images: np.ndarray, batch_size: int = 64) -> dict[str, np.ndarray]:
    """FC1, H and FC3 activations of ``images`` (model input), as float32 arrays keyed by layer name."""
    outputs = feature_model(model).predict(np.asarray(images), batch_size=batch_size, verbose=0)
    return {layer: np.asarray(out, dtype=np.float32) for layer, out in zip(FEATURE_LAYERS, outputs)}


def binary_codes(hash_activations: np.ndarray) -> np.ndarray:
    """The paper's codes: True where H's sigmoid output is >= 0.5 (bool ``(n, bits)``, one bit per column)."""
    h = np.asarray(hash_activations)
    if h.ndim != 2 or not np.isfinite(h).all():
        raise ValueError(f"hash_activations must be a finite (n, bits) array. Got shape {h.shape} instead.")
    return h >= 0.5
