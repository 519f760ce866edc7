"""HOG descriptors on real CT slices, and HOG retrieval on real MedMNIST images."""

import cv2
import numpy as np
import pytest

from cbmir_tf.evaluation import retrieval_report, search_database
from cbmir_tf.features.hog import PAPER_GRID, HOGDescriptor


def test_paper_default_dimension(ct_slices):
    # 256 px, cell 64 -> 4 x 4 cells; 2 x 2-cell blocks moving by one cell -> 3 x 3 blocks;
    # 9 blocks x 4 cells x 15 bins = 540.
    features = HOGDescriptor().fit(ct_slices).transform(ct_slices[:5])
    assert features.shape == (5, 540) and features.dtype == np.float32


def test_grid_dimensions_follow_the_block_count(ct_slices):
    for params in PAPER_GRID:
        cells = 256 // params["cell_size"]
        per_block = params["block_size"] // params["cell_size"]
        blocks = (cells - per_block) // (params["block_stride"] // params["cell_size"]) + 1
        hog_ = HOGDescriptor(**params, n_bins=9).fit(ct_slices[:2])
        assert hog_.n_features_out_ == blocks**2 * per_block**2 * 9


def test_is_paper_002s_opencv_descriptor(ct_slices):
    # Paper 002's code: cv2.HOGDescriptor(win (256, 256), block (128, 128), stride (64, 64),
    # cell (64, 64), 15 bins) on the 256 px image, compared by L1.
    image = cv2.resize(np.ascontiguousarray(ct_slices[30]), (256, 256), interpolation=cv2.INTER_AREA)
    paper = cv2.HOGDescriptor((256, 256), (128, 128), (64, 64), (64, 64), 15).compute(image).ravel()
    ours = HOGDescriptor().fit(image[None]).transform(image[None])[0]
    np.testing.assert_array_equal(ours, paper)
    # Each of the 9 blocks is L2-Hys normalised (OpenCV adds a small epsilon to the norm).
    blocks = ours.reshape(9, -1)
    np.testing.assert_allclose(np.linalg.norm(blocks, axis=1), 1.0, atol=5e-3)
    assert ours.min() >= 0


def test_tiled_blocks_are_a_subset_of_overlapping_ones(ct_slices):
    image = ct_slices[30]
    overlapping = HOGDescriptor(cell_size=32, block_size=64, block_stride=32, n_bins=9, image_size=128)
    tiled = HOGDescriptor(cell_size=32, block_size=64, block_stride=64, n_bins=9, image_size=128)
    # OpenCV orders blocks column by column; with stride = block, every other block of each axis.
    dense = overlapping.fit(image[None]).transform(image[None])[0].reshape(3, 3, -1)
    sparse = tiled.fit(image[None]).transform(image[None])[0].reshape(2, 2, -1)
    np.testing.assert_allclose(sparse, dense[::2, ::2], rtol=1e-5, atol=1e-6)


def test_deterministic_and_needs_fit(ct_slices):
    hog_ = HOGDescriptor()
    with pytest.raises(Exception, match="call fit first"):
        hog_.transform(ct_slices[:2])
    hog_.fit(ct_slices)
    np.testing.assert_array_equal(hog_.transform(ct_slices[:4]), hog_.transform(ct_slices[:4]))
    assert hog_.manifest()["metric"] == "l1" and hog_.manifest()["params"]["n_bins"] == 15


def test_bad_parameters_and_inputs(ct_slices):
    with pytest.raises(ValueError, match="multiples of cell_size"):
        HOGDescriptor(cell_size=64, block_size=100).fit(ct_slices[:1])
    with pytest.raises(TypeError, match="uint8"):
        HOGDescriptor().fit(ct_slices[:2].astype(np.float32))
    with pytest.raises(ValueError, match=r"Got shape \(2, 128, 128, 1\)"):
        HOGDescriptor().fit(ct_slices[:2, ..., None])


def test_hog_retrieval_beats_chance_clearly(small_benchmark):
    # 28 px MedMNIST images (resized to the paper's 256 px): four codes, two modality-regions
    archive, queries = small_benchmark.take_split("train"), small_benchmark.take_split("test")
    hog_ = HOGDescriptor().fit(archive.images)
    _, hits = search_database(hog_.transform(archive.images), hog_.transform(queries.images), "l1", 10)
    report = retrieval_report(queries.codes, archive.codes, hits)
    # Chance of a random archive image sharing the query's code / modality+region.
    def chance(keys_q, keys_a):
        values, counts = np.unique(keys_a, return_counts=True)
        share = dict(zip(values, counts / counts.sum()))
        return np.mean([share.get(k, 0.0) for k in keys_q])
    both = lambda codes: np.array([c.rsplit("-", 1)[0] for c in codes])
    assert report.loc["class", "P@1"] > 2 * chance(queries.codes, archive.codes)  # 0.25 here
    assert report.loc["both", "P@1"] > chance(both(queries.codes), both(archive.codes)) + 0.4  # 0.5 here
