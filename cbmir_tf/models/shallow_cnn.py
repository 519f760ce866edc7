"""The shallow CNN of paper 003, whose last hidden layer gives the CNN code (CNNC).

Three convolution + max-pooling stages (32, 64 and 128 channels, 3 x 3 kernels,
2 x 2 non-overlapping pooling), two fully connected layers of 1000 units and a
softmax classifier. ReLU follows all five hidden layers, dropout 0.5 follows the
two fully connected ones, and random shifts augment the training images.

The code is read before the ReLU of the last fully connected layer: ``fc2`` is a
linear ``Dense`` followed by separate ``fc2_relu`` and ``fc2_dropout`` layers, so
``cnn_code_model(model)`` taps ``fc2`` by name. Binarised at 0 it is the paper's
1000-bit CNNC. The network trains through :func:`cbmir_tf.models.training.train`, like every
network of the book (:class:`cbmir_tf.methods.cnnc_rbc.CNNCRBC` holds paper 003's recipe).

Reference: Liu et al. (paper 003), Section 3.1 and Table 1.
"""

from __future__ import annotations

import keras

from cbmir_tf.data.preprocess import to_model_input
from cbmir_tf.models.common import check_builder_args, classifier, finish_model, image_input, top_or_pooling

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
    check_builder_args(weights=weights, input_shape=input_shape, classes=classes, include_top=include_top,
                       pooling=pooling)
    if not 0.0 <= dropout < 1.0:
        raise ValueError(f"dropout must lie in [0, 1). Received: dropout={dropout!r}")
    if int(code_bits) < 1:
        raise ValueError(f"code_bits must be a positive integer. Received: code_bits={code_bits!r}")

    def top(x):
        x = keras.layers.Flatten(name="flatten")(x)
        x = dense_block(x, int(code_bits), dropout, name="fc1")
        x = dense_block(x, int(code_bits), dropout, name=CODE_LAYER)
        return classifier(x, classes, classifier_activation)

    inputs = image_input(input_shape, input_tensor)
    x = keras.layers.RandomTranslation(max_shift, max_shift, fill_mode="constant", name="random_shift")(inputs)
    x = keras.layers.Rescaling(1.0 / 255.0, name="rescale")(x)
    for stage, filters in enumerate((32, 64, 128), start=1):
        x = conv_block(x, filters, name=f"block{stage}")
    x = top_or_pooling(x, include_top=include_top, pooling=pooling, top=top)
    return finish_model(inputs, x, input_tensor, name, weights)


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
