"""Readers of raw source data; importing this package never imports torch."""

from scale_datasets.sources.common import Source, SourceData, default_root
from scale_datasets.sources.idx import read_idx_images, read_idx_labels
from scale_datasets.sources.mnist_like import MNIST_LIKE_SOURCES, load_mnist_like
from scale_datasets.sources.stl10 import STL10_SOURCES, load_stl10

__all__ = [
    "MNIST_LIKE_SOURCES",
    "STL10_SOURCES",
    "Source",
    "SourceData",
    "default_root",
    "load_mnist_like",
    "load_stl10",
    "read_idx_images",
    "read_idx_labels",
]
