"""SqueezeNet v1.1 in Keras and its old-Keras ImageNet weights file (paper 002, Fig. 6)."""

import h5py
import numpy as np
import pytest

from cbmir_tf.data.registry import fetch
from cbmir_tf.models.squeezenet import WEIGHTS_FILE, SqueezeNet, preprocess_input


@pytest.fixture(scope="module")
def weights_path():
    return fetch(f"weights/{WEIGHTS_FILE}")


@pytest.fixture(scope="module")
def batch(ct_slices):
    """Four real CT slices, grey stacked to three channels, 96 px."""
    from cbmir_tf.data.preprocess import resize_batch

    grey = resize_batch(ct_slices[:4], 96)
    return preprocess_input(np.repeat(grey[..., None], 3, axis=-1))


@pytest.fixture(scope="module")
def pretrained(weights_path):
    return SqueezeNet(weights=weights_path, input_shape=(96, 96, 3))


def test_architecture_matches_the_weights_file_readme():
    model = SqueezeNet(weights=None, input_shape=(224, 224, 3))
    assert model.count_params() == 722_496  # the registered weights file (`cbmir-data list`): 722,496 parameters
    assert model.output.shape == (None, 13, 13, 512)
    assert model.get_layer("fire9_concat").output.shape[-1] == 512
    assert all(layer.name for layer in model.layers)
    top = SqueezeNet(include_top=True, weights=None, input_shape=(64, 64, 3), classes=7)
    assert top.output.shape == (None, 7)


def test_every_weighted_layer_of_the_file_is_loaded(pretrained, weights_path):
    with h5py.File(weights_path, "r") as f:
        loaded = 0
        for raw in f.attrs["layer_names"]:
            group = f[raw.decode()]
            names = [n.decode() for n in group.attrs.get("weight_names", [])]
            if not names:
                continue
            layer = pretrained.get_layer(raw.decode().replace("/", "_"))
            for name, weight in zip(names, layer.get_weights()):
                np.testing.assert_array_equal(weight, group[name][()])
            loaded += 1
    assert loaded == 25  # conv1 + 8 fire modules x 3 convolutions
    assert loaded == sum(1 for layer in pretrained.layers if layer.weights)


def test_loaded_network_is_deterministic_and_differs_from_random(pretrained, batch):
    first = pretrained.predict_on_batch(batch)
    np.testing.assert_array_equal(first, pretrained.predict_on_batch(batch))
    again = SqueezeNet(weights="imagenet", input_shape=(96, 96, 3)).predict_on_batch(batch)
    np.testing.assert_allclose(first, again, rtol=1e-5, atol=1e-5)
    random = SqueezeNet(weights=None, input_shape=(96, 96, 3)).predict_on_batch(batch)
    assert not np.allclose(first, random, atol=1e-3)


def test_truncated_weights_file_is_refused_by_name(weights_path, tmp_path):
    truncated = tmp_path / "squeezenet_truncated.h5"
    truncated.write_bytes(weights_path.read_bytes()[:100_000])
    with pytest.raises(ValueError, match="squeezenet_truncated.h5"):
        SqueezeNet(weights=truncated, input_shape=(64, 64, 3))


def test_other_hdf5_or_missing_file_is_refused_by_name(weights_path, tmp_path):
    other = tmp_path / "not_squeezenet.h5"
    with h5py.File(weights_path, "r") as src, h5py.File(other, "w") as dst:  # the real file without fire9
        names = [n for n in src.attrs["layer_names"] if not n.startswith(b"fire9")]
        dst.attrs["layer_names"] = names
        for n in names:
            src.copy(src[n.decode()], dst, name=n.decode())
    with pytest.raises(ValueError, match=r"not_squeezenet\.h5.*missing \['fire9/expand1x1'"):
        SqueezeNet(weights=other, input_shape=(64, 64, 3))
    with pytest.raises(FileNotFoundError, match="nowhere.h5"):
        SqueezeNet(weights=tmp_path / "nowhere.h5", input_shape=(64, 64, 3))


def test_arguments_are_checked():
    with pytest.raises(ValueError, match="Received: pooling='mean'"):
        SqueezeNet(weights=None, pooling="mean")
    with pytest.raises(ValueError, match="include_top=True"):
        SqueezeNet(include_top=True, weights="imagenet")
