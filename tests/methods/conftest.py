"""What the learned methods' tests share: a small real archive to train on."""

from __future__ import annotations

import numpy as np
import pytest


@pytest.fixture(scope="module")
def archive(small_benchmark):
    """The 40 real training images of the small benchmark (4 codes, 10 each, 28 px), labels 0..3."""
    train = small_benchmark.take_split("train")
    return train.images, np.unique(train.labels, return_inverse=True)[1]
