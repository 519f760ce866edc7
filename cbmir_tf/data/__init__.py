"""Data in: every loader returns one :class:`ImageDataset` form (grey uint8 images, labels, codes, split).

The names below are imported from their modules on first use (PEP 562), so that reading one
image file (``cbmir query``) does not import pandas and every loader.
"""

import importlib

_HOMES = {
    "REGISTRY": "benchmark", "load_benchmark": "benchmark", "load_member": "benchmark", "prepare": "benchmark",
    "balance_classes": "balance",
    "ImageDataset": "dataset", "concatenate": "dataset", "stratified_split": "dataset",
    "validation_split": "dataset",
    "load_dicom_folder": "dicom", "read_dicom": "dicom", "read_hu": "dicom",
    "load_class_folders": "folders",
    "read_image": "io",
    "load_irma_2007": "irma_images", "load_irma_2009": "irma_images",
    "load_medmnist": "medmnist",
    "load_mednist": "mednist",
}
__all__ = sorted(_HOMES)


def __getattr__(name: str):
    if name not in _HOMES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_HOMES[name]}"), name)


def __dir__() -> list[str]:
    return sorted([*globals(), *_HOMES])
