"""Train-time transforms that draw from an explicit generator."""

from __future__ import annotations

import numpy as np
import torch

from .errors import InvalidParameterError
from .ops.pixels import to_unit_float
from .ops.scaling import scale_about_centre


class RandomScale:
    """The MNIST-Scale "+" augmentation: rescale about the centre by s ~ U[min, max].

    Expects a (C, H, W) tensor in [0, 1] as the datasets return it (put it before Normalize).
    Pixels go through the same PIL-exact uint8 bicubic as the SESN recipe (PIL image ->
    RandomAffine(scale=(0.5, 2.0)) -> ToTensor); enlarged digits are cropped by the canvas.

    Draws come from `generator`. Inside DataLoader workers every worker holds a copy of it, so
    the first call in a worker re-keys it with that worker's seed (which the DataLoader derives
    per epoch from its own `generator=`), keeping workers' draws distinct but reproducible.
    """

    def __init__(
        self,
        generator: np.random.Generator,
        min_scale: float = 0.5,
        max_scale: float = 2.0,
        interpolation: str = "bicubic",
    ) -> None:
        if not 0 < min_scale <= max_scale:
            raise InvalidParameterError(
                f"min_scale, max_scale: need 0 < min_scale <= max_scale, got {min_scale}, "
                f"{max_scale}"
            )
        self.generator = generator
        self.min_scale = min_scale
        self.max_scale = max_scale
        self.interpolation = interpolation
        self._worker_seed: int | None = None

    def _rng(self) -> np.random.Generator:
        info = torch.utils.data.get_worker_info()
        if info is not None and self._worker_seed != info.seed:
            self._worker_seed = info.seed
            salt = int(self.generator.integers(2**63))
            self.generator = np.random.Generator(
                np.random.PCG64(np.random.SeedSequence([info.seed % 2**63, salt]))
            )
        return self.generator

    def __call__(self, image: torch.Tensor) -> torch.Tensor:
        scale = self._rng().uniform(self.min_scale, self.max_scale)
        pixels = np.rint(image.detach().cpu().numpy() * 255.0).clip(0, 255).astype(np.uint8)
        channels = pixels.reshape(-1, *pixels.shape[-2:])
        out = scale_about_centre(
            channels, np.full(len(channels), scale), interpolation=self.interpolation
        )
        return torch.from_numpy(to_unit_float(out.reshape(pixels.shape)))

    def __repr__(self) -> str:
        return f"RandomScale(min_scale={self.min_scale}, max_scale={self.max_scale})"
