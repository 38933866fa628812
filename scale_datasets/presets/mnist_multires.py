"""Multi-resolution MNIST-scale of the Fourier-layer paper (PROTOCOLS.md section 2).

70,000 MNIST-format images, stratified 10,000 / 10,000 / 50,000, resolutions 8..28 in equal
groups, ideal D_r. Train augmentation (before scaling, on the base image): a random circular
shift with p = 0.7 of up to 25% of H and W (`RandomCircularShift`, as `base_transform`).
"""

from __future__ import annotations

from dataclasses import dataclass

from .base import MnistLikeSources, register
from .multires import MultiResolutionParams, MultiResolutionPreset
from .params import option

# The Fourier paper normalises multi-resolution MNIST with MNIST-Scale's statistics.
MNIST_MULTIRES_MEAN = 0.0607
MNIST_MULTIRES_STD = 0.2161


@dataclass(frozen=True)
class MNISTMultiResParams(MultiResolutionParams):
    min_resolution: int = option(8, "Smallest resolution r (an r x r sample).", lo=1, hi=4096)
    max_resolution: int = option(28, "Largest resolution r.", lo=1, hi=4096)
    n_train: int = option(10_000, "Train samples.", lo=1)
    n_val: int = option(10_000, "Validation samples.", lo=0)
    n_test: int = option(50_000, "Test samples.", lo=1)


class MNISTMultiResPreset(MnistLikeSources, MultiResolutionPreset):
    name = "mnist-multires"
    version = 1
    summary = (
        "Multi-resolution MNIST (Fourier-layer protocol): 10k/10k/50k stratified, "
        "r = 8..28 in equal groups, ideal Fourier down-scaling, rendered on access"
    )
    params_type = MNISTMultiResParams
    normalisation = (MNIST_MULTIRES_MEAN, MNIST_MULTIRES_STD)
    loader_example = (
        "from scale_datasets import ResolutionBatchSampler, ScaleDataset\n"
        "train = ScaleDataset('{path}', split='train', realisation=0)\n"
        "sampler = ResolutionBatchSampler(train, batch_size=128, generator=0)"
    )


PRESET = register(MNISTMultiResPreset())
