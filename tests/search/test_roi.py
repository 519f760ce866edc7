"""ROI matching by cross-correlation: a region cut from a real chest CT slice is found at its true offset."""

from __future__ import annotations

import numpy as np
import pytest

from cbmir_tf.search.roi import draw_roi_matches, match_roi


def _shifted(image: np.ndarray, dx: int, dy: int) -> np.ndarray:
    """The image moved right by dx and down by dy, padded with black (as a translated acquisition)."""
    out = np.zeros_like(image)
    out[dy:, dx:] = image[:image.shape[0] - dy, :image.shape[1] - dx]
    return out


@pytest.mark.parametrize("box", [(40, 30, 32, 24), (70, 60, 20, 28)])
def test_ncc_finds_the_region_at_its_true_offset(ct_slices, box):
    query = ct_slices[30]
    targets = np.stack([query, _shifted(query, 9, 5), _shifted(ct_slices[30], 0, 17)])
    boxes, scores = match_roi(query, box, targets)
    x, y, w, h = box
    np.testing.assert_array_equal(boxes, [[x, y, w, h], [x + 9, y + 5, w, h], [x, y + 17, w, h]])
    np.testing.assert_allclose(scores, 1.0, atol=1e-4)  # normalised: an exact copy scores 1


def test_ncc_score_drops_on_another_image(ct_slices):
    box = (40, 40, 32, 32)
    _, scores = match_roi(ct_slices[0], box, np.stack([ct_slices[0], ct_slices[40]]))
    assert scores[0] == pytest.approx(1.0, abs=1e-4) and scores[1] < 0.99


def test_paper_xcorr_finds_a_textured_region_in_its_own_image(ct_slices):
    query = ct_slices[30]  # through the lungs: vessels and airways give the region texture
    box = (44, 50, 40, 30)
    boxes, scores = match_roi(query, box, _shifted(query, 6, 4), method="xcorr")
    assert tuple(boxes[0]) == (50, 54, 40, 30)
    assert scores.shape == (1,) and scores[0] > 0


def test_draw_returns_one_panel_per_image(ct_slices):
    boxes, scores = match_roi(ct_slices[0], (10, 10, 20, 20), ct_slices[1:4])
    fig = draw_roi_matches(ct_slices[0], (10, 10, 20, 20), ct_slices[1:4], boxes, scores)
    assert len(fig.axes) == 4 and len(fig.axes[0].patches) == 1


def test_bad_box_raises_with_the_value(ct_slices):
    with pytest.raises(ValueError, match=r"Received: box=\(120, 0, 20, 20\)"):
        match_roi(ct_slices[0], (120, 0, 20, 20), ct_slices[1:2])
    with pytest.raises(ValueError, match="Received: method='sad'"):
        match_roi(ct_slices[0], (0, 0, 8, 8), ct_slices[1:2], method="sad")
