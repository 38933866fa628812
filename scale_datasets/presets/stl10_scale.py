"""STL10-scale of the Fourier-layer paper (PROTOCOLS.md section 2).

The 13,000 labelled STL-10 images (5,000 train then 8,000 test, 96 x 96 RGB), stratified 7,000 /
1,000 / 5,000, resolutions 49..97 in equal groups, ideal D_r (97: the 96 x 96 image on a 97 x 97
grid). Train augmentation (before scaling, on the base image): RandomCrop(96, padding=12),
horizontal flip and Cutout(1 hole, 32 px) (`stl10_train_transforms`, as `base_transform`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..sources.common import Source
from .base import register
from .multires import MultiResolutionParams, MultiResolutionPreset
from .params import option

STL10_SCALE_MEAN = (0.4467, 0.4398, 0.4066)
STL10_SCALE_STD = (0.2603, 0.2566, 0.2713)


@dataclass(frozen=True)
class STL10ScaleParams(MultiResolutionParams):
    min_resolution: int = option(49, "Smallest resolution r (an r x r sample).", lo=1, hi=4096)
    max_resolution: int = option(97, "Largest resolution r.", lo=1, hi=4096)
    n_train: int = option(7_000, "Train samples.", lo=1)
    n_val: int = option(1_000, "Validation samples.", lo=0)
    n_test: int = option(5_000, "Test samples.", lo=1)


class STL10ScalePreset(MultiResolutionPreset):
    name = "stl10-scale"
    version = 1
    summary = (
        "STL10-scale (Fourier-layer protocol): 13k labelled STL-10 images, 7k/1k/5k stratified, "
        "r = 49..97 in equal groups, ideal Fourier down-scaling, rendered on access"
    )
    params_type = STL10ScaleParams
    normalisation = (STL10_SCALE_MEAN, STL10_SCALE_STD)
    sources = ("stl10",)
    source_dir_help = "stl10_binary/ with {train,test}_{X,y}.bin (torchvision's layout)"
    loader_example = (
        "from scale_datasets import ResolutionBatchSampler, ScaleDataset\n"
        "train = ScaleDataset('{path}', split='train', realisation=0)\n"
        "sampler = ResolutionBatchSampler(train, batch_size=16, generator=0)"
    )

    def load_source(
        self,
        source: str | None,
        source_dir: Path | None,
        root: Path | None,
        download: bool,
        params: Any = None,
    ) -> Source:
        from ..sources.stl10 import load_stl10

        self.check_source_name(source)
        return load_stl10(source_dir=source_dir, root=root, download=download)


PRESET = register(STL10ScalePreset())
