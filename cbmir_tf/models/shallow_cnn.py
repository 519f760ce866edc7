"""The shallow CNN of paper 003, whose last hidden layer gives the CNN code (CNNC).

Three convolution + max-pooling stages (32, 64 and 128 channels, 3 x 3 kernels,
2 x 2 non-overlapping pooling), two fully connected layers of 1000 units and a
softmax classifier. ReLU follows all five hidden layers, dropout 0.5 follows the
two fully connected ones, and random shifts augment the training images.

The code is read before the ReLU of the last fully connected layer: ``fc2`` is a
linear ``Dense`` followed by separate ``fc2_relu`` and ``fc2_dropout`` layers, so
``cnn_code_model(model)`` taps ``fc2`` by name. Binarised at 0 it is the paper's
1000-bit CNNC.

Reference: Liu et al. (paper 003), Section 3.1 and Table 1.
"""

from __future__ import annotations

import os
import sys

import keras
import numpy as np

from cbmir_tf.data.preprocess import to_model_input
from cbmir_tf.seeding import seed_everything

CODE_LAYER = "fc2"


def conv_block(x, filters: int, name: str):
    """3 x 3 convolution with ReLU, then 2 x 2 non-overlapping max pooling."""
    x = keras.layers.Conv2D(filters, 3, padding="same", activation="relu", name=f"{name}_conv")(x)
    return keras.layers.MaxPooling2D(2, name=f"{name}_pool")(x)


def dense_block(x, units: int, dropout: float, name: str):
    """Linear ``Dense`` named ``name`` (the code is read here), then ReLU and dropout."""
    x = keras.layers.Dense(units, name=name)(x)
    x = keras.layers.ReLU(name=f"{name}_relu")(x)
    return keras.layers.Dropout(dropout, name=f"{name}_dropout")(x)


def ShallowCNN(include_top: bool = True, weights: str | None = None, input_tensor=None,
               input_shape: tuple[int, int, int] = (128, 128, 1), pooling: str | None = None,
               classes: int = 193, classifier_activation: str | None = "softmax", name: str = "shallow_cnn",
               *, code_bits: int = 1000, dropout: float = 0.5, max_shift: float = 0.1):
    """Instantiate the shallow CNN of paper 003.

    Reference: Liu et al., "Medical image retrieval using deep convolutional neural network"
    (paper 003), Table 1 and Section 3.1.

    The model takes grey images with values 0..255 (see ``preprocess_input``) and rescales
    them itself. Random shifts are active in training only, so inference is deterministic.

    Args:
        include_top: Whether to include the two fully connected layers and the classifier.
            Defaults to `True`.
        weights: `None` (random initialisation) or the path of a ``.weights.h5`` file.
            Defaults to `None`.
        input_tensor: Optional Keras tensor to use as the image input.
        input_shape: ``(height, width, channels)``; the paper used 128 x 128 and 96 x 96 grey
            images. Defaults to ``(128, 128, 1)``.
        pooling: Without the top: `None` (the 4-D output of the last stage), ``"avg"`` or
            ``"max"`` (global pooling). Defaults to `None`.
        classes: Number of classes (193 IRMA codes in the paper). Defaults to 193.
        classifier_activation: Activation of the last layer. Defaults to ``"softmax"``.
        name: Model name. Defaults to ``"shallow_cnn"``.
        code_bits: Units of each fully connected layer, i.e. bits of the code. Defaults to 1000.
        dropout: Dropout rate after the fully connected layers. Defaults to 0.5.
        max_shift: Largest random shift, as a fraction of the height and width. Defaults to 0.1.

    Returns:
        A `keras.Model`; the layer ``"fc2"`` yields the (pre-ReLU) code.
    """
    if not (weights is None or (isinstance(weights, (str, os.PathLike)) and os.path.exists(weights))):
        raise ValueError("weights must be None or the path of an existing .weights.h5 file. "
                         f"Received: weights={weights!r}")
    if pooling not in (None, "avg", "max"):
        raise ValueError(f"pooling must be None, 'avg' or 'max'. Received: pooling={pooling!r}")
    if len(input_shape) != 3 or min(input_shape[:2]) < 8:
        raise ValueError(f"input_shape must be (height, width, channels) with sides of at least 8. "
                         f"Received: input_shape={input_shape!r}")
    if include_top and int(classes) < 2:
        raise ValueError(f"classes must be at least 2. Received: classes={classes!r}")
    if not 0.0 <= dropout < 1.0:
        raise ValueError(f"dropout must lie in [0, 1). Received: dropout={dropout!r}")

    inputs = keras.Input(shape=input_shape, name="image") if input_tensor is None else input_tensor
    x = keras.layers.RandomTranslation(max_shift, max_shift, fill_mode="constant",
                                       name="random_shift")(inputs)
    x = keras.layers.Rescaling(1.0 / 255.0, name="rescale")(x)
    for stage, filters in enumerate((32, 64, 128), start=1):
        x = conv_block(x, filters, name=f"block{stage}")
    if include_top:
        x = keras.layers.Flatten(name="flatten")(x)
        x = dense_block(x, code_bits, dropout, name="fc1")
        x = dense_block(x, code_bits, dropout, name=CODE_LAYER)
        x = keras.layers.Dense(classes, activation=classifier_activation, name="predictions")(x)
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


def cnn_code_model(model: keras.Model, layer: str = CODE_LAYER) -> keras.Model:
    """A model from ``model``'s input to the pre-ReLU activations of ``layer`` (the CNNC, unbinarised)."""
    try:
        output = model.get_layer(layer).output
    except ValueError:
        names = [lyr.name for lyr in model.layers]
        raise ValueError(f"{model.name} has no layer {layer!r}; it has {names}. "
                         "Build it with ShallowCNN(include_top=True).") from None
    return keras.Model(model.inputs, output, name=f"{model.name}_{layer}_code")


def train_classifier(model: keras.Model, x_train: np.ndarray, y_train: np.ndarray,
                     validation_data: tuple[np.ndarray, np.ndarray] | None = None, *, epochs: int = 50,
                     batch_size: int = 64, learning_rate: float = 1e-3, patience: int | None = 5,
                     seed: int = 0, verbose: int | str = "auto", steps_per_epoch: int | None = None):
    """Train a softmax classifier with Adam and sparse cross-entropy; returns the Keras history.

    The paper trained for 50 epochs without naming its optimiser; Adam is our choice. With
    ``validation_data`` and ``patience``, training stops when the validation loss has not
    improved for ``patience`` epochs and the best weights are restored.

    Args:
        model: A compiled or uncompiled classifier (it is compiled here).
        x_train: ``(n, h, w, 1)`` inputs (uint8 0..255 for ``ShallowCNN``).
        y_train: ``(n,)`` integer labels.
        validation_data: Optional ``(x_val, y_val)`` for early stopping.
        epochs: Most epochs. Defaults to 50 (the paper).
        batch_size: Defaults to 64.
        learning_rate: Adam step size. Defaults to 1e-3.
        patience: Epochs without improvement before stopping; `None` disables early stopping.
        seed: Seeds Keras, NumPy and Python and makes TF ops deterministic (``cbmir_tf.seeding.seed_everything``). Defaults to 0.
        verbose: Keras progress: ``"auto"``, 0, 1 or 2 (one line per epoch). Defaults to ``"auto"``.
        steps_per_epoch: Cap on batches per epoch (for quick runs); `None` = the whole set.
    """
    x_train, y_train = np.asarray(x_train), np.asarray(y_train)
    if len(x_train) != len(y_train) or len(x_train) == 0:
        raise ValueError(f"x_train and y_train must be non-empty and of equal length. "
                         f"Got {len(x_train)} and {len(y_train)} instead.")
    seed_everything(seed)
    model.compile(optimizer=keras.optimizers.Adam(learning_rate), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    callbacks = []
    if validation_data is not None and patience is not None:
        callbacks.append(keras.callbacks.EarlyStopping("val_loss", patience=int(patience),
                                                       restore_best_weights=True))
    if steps_per_epoch is not None:  # a random subset of batches per epoch, reshuffled each epoch
        n = min(len(x_train), int(steps_per_epoch) * batch_size)
        rng = np.random.default_rng(seed)

        def batches():
            while True:
                idx = rng.permutation(len(x_train))[:n]
                for s in range(0, n, batch_size):
                    yield x_train[idx[s:s + batch_size]], y_train[idx[s:s + batch_size]]

        data = {"x": batches(), "steps_per_epoch": -(-n // batch_size)}
    else:
        data = {"x": x_train, "y": y_train, "batch_size": batch_size, "shuffle": True}
    if verbose == "auto" and "ipykernel" in sys.modules:
        verbose = 2  # one line per epoch in notebooks
    return model.fit(**data, epochs=int(epochs), validation_data=validation_data, callbacks=callbacks,
                     verbose=verbose)
