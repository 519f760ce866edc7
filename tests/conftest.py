"""Shared fixtures: small real data sets, all read through the data registry.

Every file a test reads is a registered one (``cbmir-data list``), found by
:func:`cbmir_tf.data.registry.fetch`: in ``$CBMIR_DATA_DIR`` when it is set (``make test``
sets it to a pre-filled data folder when one sits beside the repository), in an installed package (pydicom's
test files), in the cache, or downloaded there (checksum-verified). So the suite runs on a
fresh clone with internet access, and offline with a pre-filled data folder.

Only the tests marked ``open_benchmark`` read the eight 128 px sets of the open benchmark;
they are skipped, with a reason that says how to get them, when those files are absent.
Nothing else is skipped for missing data: a file that cannot be had is a failure.
"""

from __future__ import annotations

import os
import warnings

import numpy as np
import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("MPLBACKEND", "Agg")


@pytest.fixture(autouse=True, scope="session")
def _model_cache(tmp_path_factory):
    """Trained test networks go to a temporary model cache, never the user's."""
    os.environ["CBMIR_MODEL_CACHE"] = str(tmp_path_factory.mktemp("model-cache"))

OPEN_BENCHMARK_REASON = ("the eight-set open benchmark is not here: run `cbmir-data fetch open-benchmark` "
                         "or set CBMIR_DATA_DIR (README, 'Data')")


def pytest_collection_modifyitems(config, items):
    """Skip the ``open_benchmark`` tests when any of the eight npz files is absent."""
    marked = [item for item in items if item.get_closest_marker("open_benchmark")]
    if not marked:
        return
    from cbmir_tf.data.benchmark import REGISTRY, available_members

    if len(available_members()) < len(REGISTRY):
        skip = pytest.mark.skip(reason=OPEN_BENCHMARK_REASON)
        for item in marked:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def dicom_dir():
    """A folder holding the 14 registered DICOM samples (``fetch_folder("dicom")``)."""
    from cbmir_tf.data.registry import fetch_folder

    return fetch_folder("dicom")


@pytest.fixture(scope="session")
def lidc_dir():
    """A folder holding the three registered LIDC-IDRI reading XML files."""
    from cbmir_tf.data.registry import fetch_folder

    return fetch_folder("lidc-xml-sample")


@pytest.fixture(scope="session")
def lung_series():
    """The real 64-slice chest CT series (TCIA Lung-PET-CT-Dx A0001) in HU, with its tumour boxes."""
    from cbmir_tf.data.lung import load_lung_pet_ct_dx_sample

    return load_lung_pet_ct_dx_sample()


@pytest.fixture(scope="session")
def ct_slices(lung_series) -> np.ndarray:
    """The 64 real chest CT slices of ``lung_series``, lung window, uint8 (64, 128, 128), in z order."""
    from cbmir_tf.data.lung import window_hu
    from cbmir_tf.data.preprocess import resize_batch

    images = resize_batch(window_hu(lung_series.hu), 128)
    images.setflags(write=False)
    return images


def _fallback(**kwargs):
    from cbmir_tf.data.benchmark import load_benchmark

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # a patient-leakage note, if any
        return load_benchmark(source="fallback", profile="smoke", seed=0, **kwargs)


@pytest.fixture(scope="session")
def small_benchmark():
    """The benchmark's MedMNIST fallback (PneumoniaMNIST + BreastMNIST, 28 px), at most 10 images a code
    and split: 4 codes (XR-chest-normal, XR-chest-pneumonia, US-breast-malignant,
    US-breast-normal_or_benign), 40 train and 40 test images."""
    return _fallback(max_per_class=10)


@pytest.fixture(scope="session")
def fallback_benchmark():
    """The whole MedMNIST fallback of the smoke profile: 6,636 real 28 px images (5,856 train, 780 test)."""
    return _fallback()
