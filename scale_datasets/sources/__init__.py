"""Readers of raw source data; importing this package never imports torch."""

from scale_datasets.sources.common import Source, SourceData, default_root
from scale_datasets.sources.idx import read_idx_images, read_idx_labels
from scale_datasets.sources.mnist_like import MNIST_LIKE_SOURCES, load_mnist_like

__all__ = [
    "MNIST_LIKE_SOURCES",
    "Source",
    "SourceData",
    "default_root",
    "load_mnist_like",
    "read_idx_images",
    "read_idx_labels",
]
