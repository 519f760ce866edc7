"""Data in: every loader returns one :class:`ImageDataset` form (grey uint8 images, labels, codes, split)."""

from cbmir_tf.data.balance import balance_classes
from cbmir_tf.data.benchmark import REGISTRY, load_benchmark, load_member, prepare
from cbmir_tf.data.dataset import ImageDataset, concatenate, stratified_split, validation_split
from cbmir_tf.data.dicom import load_dicom_folder, read_dicom, read_hu
from cbmir_tf.data.folders import load_class_folders
from cbmir_tf.data.io import read_image
from cbmir_tf.data.irma_images import load_irma_2007, load_irma_2009
from cbmir_tf.data.medmnist import load_medmnist
from cbmir_tf.data.mednist import load_mednist

__all__ = [
    "REGISTRY", "ImageDataset", "balance_classes", "concatenate", "load_benchmark", "load_class_folders",
    "load_dicom_folder", "load_irma_2007", "load_irma_2009", "load_medmnist", "load_mednist", "load_member",
    "prepare", "read_dicom", "read_hu", "read_image", "stratified_split", "validation_split",
]
