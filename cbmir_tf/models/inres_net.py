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
Training is plain SGD with a constant learning rate and the negative log-likelihood, as in
the paper; all other kernels start from N(0, 0.01) (``init_stddev=None`` swaps in Keras'
He / Glorot defaults, which suit short CPU runs better).

Reference: Qin et al. (paper 001), Section 3.2-3.4, Figs. 2-4; Szegedy et al., Inception-v4 /
Inception-ResNet (2017); Lin et al., deep binary hash codes (CVPRW 2015).
"""

from __future__ import annotations

import os
import sys

import keras
import numpy as np

from cbmir_tf.data.preprocess import to_model_input
from cbmir_tf.seeding import seed_everything

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
    if not (weights is None or (isinstance(weights, (str, os.PathLike)) and os.path.exists(weights))):
        raise ValueError("weights must be None or the path of an existing .weights.h5 file. "
                         f"Received: weights={weights!r}")
    if pooling not in (None, "avg", "max"):
        raise ValueError(f"pooling must be None, 'avg' or 'max'. Received: pooling={pooling!r}")
    step = 2 ** (int(stages) + 1)
    if len(input_shape) != 3 or input_shape[0] % step or input_shape[1] % step:
        raise ValueError(f"input_shape must be (height, width, channels) with sides divisible by "
                         f"2**(stages + 1) = {step}. Received: input_shape={input_shape!r}")
    if int(stem_filters) % 4 or int(stem_filters) < 4:
        raise ValueError(f"stem_filters must be a positive multiple of 4. Received: stem_filters={stem_filters!r}")
    if include_top and int(classes) < 2:
        raise ValueError(f"classes must be at least 2. Received: classes={classes!r}")
    if int(hash_bits) < 1:
        raise ValueError(f"hash_bits must be positive. Received: hash_bits={hash_bits!r}")

    inputs = keras.Input(shape=input_shape, name="image") if input_tensor is None else input_tensor
    x = keras.layers.Rescaling(1.0 / 255.0, name="rescale")(inputs)
    x = conv_bn(x, stem_filters // 2, 3, "stem1", strides=2, seed=seed, stddev=init_stddev)
    x = conv_bn(x, stem_filters, 3, "stem2", seed=seed, stddev=init_stddev)
    for stage in range(1, int(stages) + 1):
        x = inv2_block(x, f"inv2_{stage}", seed=seed, stddev=init_stddev)
        x = inred_block(x, f"inred_{stage}", seed=seed, stddev=init_stddev)
    if include_top:
        x = keras.layers.GlobalAveragePooling2D(name="avg_pool")(x)
        x = keras.layers.Dense(fc1_units, activation="relu", kernel_initializer=_init(seed, init_stddev, True),
                               name="fc1")(x)
        x = keras.layers.Dropout(dropout, name="fc1_dropout")(x)
        # LSH-like start: H's kernel is a Gaussian random projection of FC1 (unit variance per output).
        projection = keras.initializers.RandomNormal(0.0, 1.0 / np.sqrt(fc1_units), seed=seed)
        x = keras.layers.Dense(hash_bits, activation="sigmoid", kernel_initializer=projection, name="hash")(x)
        x = keras.layers.Dense(classes, activation=classifier_activation,
                               kernel_initializer=_init(seed, init_stddev, True), name="fc3")(x)
    elif pooling == "avg":
        x = keras.layers.GlobalAveragePooling2D(name="avg_pool")(x)
    elif pooling == "max":
        x = keras.layers.GlobalMaxPooling2D(name="max_pool")(x)
    source = keras.utils.get_source_inputs(inputs) if input_tensor is not None else inputs
    model = keras.Model(source, x, name=name)
    if weights is not None:
        model.load_weights(weights)
    return model


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


def train_inres_net(model: keras.Model, x_train: np.ndarray, y_train: np.ndarray, validation_data=None, *,
                    epochs: int = 30, batch_size: int = 32, learning_rate: float = 1e-4, momentum: float = 0.0,
                    seed: int = 0, verbose: int | str = "auto"):
    """Train with SGD at a constant learning rate and the negative log-likelihood; returns the history.

    The paper used plain SGD at 1e-4 for at most 30 epochs. Short CPU runs need a larger step
    (and optionally momentum); the rate never decays.

    Args:
        model: An InRes-Net with its top (compiled here).
        x_train: ``(n, h, w, 1)`` inputs from :func:`preprocess_input`.
        y_train: ``(n,)`` integer labels.
        validation_data: Optional ``(x_val, y_val)``, only monitored.
        epochs: Defaults to 30 (the paper).
        batch_size: Defaults to 32.
        learning_rate: Constant SGD step. Defaults to 1e-4 (the paper).
        momentum: SGD momentum. Defaults to 0 (plain SGD).
        seed: Seeds Keras, NumPy and Python. Defaults to 0.
        verbose: Keras progress; one line per epoch in notebooks. Defaults to ``"auto"``.
    """
    x_train, y_train = np.asarray(x_train), np.asarray(y_train)
    if len(x_train) != len(y_train) or len(x_train) == 0:
        raise ValueError(f"x_train and y_train must be non-empty and of equal length. "
                         f"Got {len(x_train)} and {len(y_train)} instead.")
    seed_everything(seed)
    model.compile(optimizer=keras.optimizers.SGD(learning_rate, momentum=momentum),
                  loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    if verbose == "auto" and "ipykernel" in sys.modules:
        verbose = 2
    return model.fit(x_train, y_train, batch_size=batch_size, epochs=int(epochs), shuffle=True,
                     validation_data=validation_data, verbose=verbose)
