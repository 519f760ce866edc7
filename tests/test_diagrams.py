"""The diagrams are read off real Keras models: boxes name the layers and their real output shapes."""

import keras
import matplotlib
import pytest

matplotlib.use("Agg")

from cbmir_tf.diagrams import branch_diagram, chain_rows, layer_summary, network_diagram  # noqa: E402


def _module():
    inputs = keras.Input((8, 8, 4), name="x")
    pool = keras.layers.MaxPooling2D(3, strides=2, padding="same", name="pool")(inputs)
    a = keras.layers.Conv2D(2, 1, name="a1")(inputs)
    a = keras.layers.Conv2D(6, 3, strides=2, padding="same", name="a2")(a)
    merged = keras.layers.Concatenate(name="concat")([pool, a])
    up = keras.layers.Conv2D(4, 1, strides=2, name="project")(inputs)
    out = keras.layers.Add(name="add")([merged[..., :4], up])
    return keras.Model(inputs, [merged, out])


def _texts(fig):
    return {text.get_text() for ax in fig.axes for text in ax.texts}


def test_boxes_name_the_layers_operation_and_output_shape():
    fig = branch_diagram(_module(), ("module input", "x"), [["pool"], ["a1", "a2"]], ["concat"], title="m")
    texts = _texts(fig)
    assert {"module input", "MaxPool 3x3 /2", "Conv 1x1", "Conv 3x3 /2", "Concat"} <= texts
    assert {"8 x 8 x 4", "4 x 4 x 4", "8 x 8 x 2", "4 x 4 x 6", "4 x 4 x 10"} <= texts
    assert fig.axes[0].get_title() == "m"


def test_a_residual_link_is_labelled_and_must_end_in_a_merge_layer():
    fig = branch_diagram(_module(), "x", [["a1"]], ["concat", "add"], residual_to="add")
    assert "identity" in _texts(fig)
    with pytest.raises(ValueError, match="residual_to"):
        branch_diagram(_module(), "x", [["a1"]], ["concat"], residual_to="add")


def test_network_diagram_of_the_shallow_cnn_shows_its_real_shapes():
    from cbmir_tf.models.shallow_cnn import ShallowCNN

    model = ShallowCNN(input_shape=(64, 64, 1), classes=5)
    rows = dict((label.split("\n")[1], shape) for label, shape in layer_summary(model))
    assert rows["block1_conv"] == "64 x 64 x 32" and rows["block3_pool"] == "8 x 8 x 128"
    assert rows["predictions"] == "5"
    fig = network_diagram(model, per_row=4)
    assert len(fig.axes[0].patches) == len(rows)
    assert "block1_conv\n64 x 64 x 32" in {t.get_text() for t in fig.axes[0].texts}


def test_chain_rows_draws_one_box_per_text_and_an_arrow_between_neighbours():
    fig = chain_rows({"A": ["A\n8 x 8 x 1", "conv\n4 x 4 x 2", "softmax\n3"], "B": ["B\n8 x 8 x 1", "softmax\n3"]})
    ax = fig.axes[0]
    assert len(ax.patches) == 5
    assert sum(1 for child in ax.texts if getattr(child, "arrow_patch", None) is not None) == 3
    with pytest.raises(ValueError, match="at least one row"):
        chain_rows({"A": []})
