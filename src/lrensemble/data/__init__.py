"""Datasets (MNIST-1D as the embedded default, CIFAR-10/100 from local files, a user's own
arrays, .npz/.npy files, CSV tables and image folders), validation splits, input normalization,
device-resident batch loading and batch-wise augmentation."""

from lrensemble.data import cifar as _cifar  # noqa: F401  (registers cifar10, cifar100)
from lrensemble.data import files as _files  # noqa: F401  (registers npz, csv)
from lrensemble.data import images as _images  # noqa: F401  (registers image_folder)
from lrensemble.data import mnist1d as _mnist1d  # noqa: F401  (registers mnist1d)
from lrensemble.data.augment import ImageAugment
from lrensemble.data.base import SPLITS, Dataset, carve_validation, from_arrays
from lrensemble.data.cifar import read_cifar
from lrensemble.data.files import data_table
from lrensemble.data.loader import BatchLoader, epoch_generator
from lrensemble.data.normalize import Normalization
from lrensemble.data.registry import DATASETS, list_datasets, load_dataset

__all__ = [
    "DATASETS",
    "SPLITS",
    "BatchLoader",
    "Dataset",
    "ImageAugment",
    "Normalization",
    "carve_validation",
    "data_table",
    "epoch_generator",
    "from_arrays",
    "list_datasets",
    "load_dataset",
    "read_cifar",
]
