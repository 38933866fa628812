"""Train-time transforms that draw from an explicit generator.

Each acts on one float32 tensor (C, H, W) in [0, 1], as the datasets return it, and draws from
a ``numpy.random.Generator`` (never a global RNG). They re-key that generator per DataLoader
worker (see ``_KeyedTransform``), so loading with workers stays reproducible.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torchvision.transforms import Compose, Normalize

from .checks import int_at_least
from .errors import InvalidParameterError
from .ops.pil_affine import check_interpolation
from .ops.pixels import to_unit_float
from .ops.scaling import scale_about_centre
from .rng import keyed_generator


def _is_real(value: object) -> bool:
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)


def _check_probability(p: float) -> float:
    if not _is_real(p) or not 0.0 <= p <= 1.0:
        raise InvalidParameterError(f"p: need 0 <= p <= 1, got {p!r}")
    return float(p)


def _image_hw(image: torch.Tensor) -> tuple[int, int]:
    if image.ndim < 2:
        raise InvalidParameterError(
            f"image: need a (C, H, W) tensor, got shape {tuple(image.shape)}"
        )
    return int(image.shape[-2]), int(image.shape[-1])


class _KeyedTransform:
    """A transform drawing from `generator`, re-keyed once per DataLoader worker.

    Inside DataLoader workers every worker holds a copy of the generator, so the first call in
    a worker replaces it with ``Generator(PCG64(SeedSequence([worker seed, salt])))``, the salt
    drawn from the copy. The DataLoader derives the worker seeds per epoch from its own
    ``generator=``, which keeps workers' draws distinct but reproducible. In the main process
    the generator is used as given (several transforms may share one).
    """

    def __init__(self, generator: np.random.Generator) -> None:
        if not isinstance(generator, np.random.Generator):
            raise InvalidParameterError(
                f"generator: need a numpy.random.Generator, got {type(generator).__name__}"
            )
        self.generator = generator
        self._worker_seed: int | None = None

    def _rng(self) -> np.random.Generator:
        info = torch.utils.data.get_worker_info()
        if info is not None and self._worker_seed != info.seed:
            self._worker_seed = info.seed
            salt = int(self.generator.integers(2**63))
            self.generator = keyed_generator(info.seed % 2**63, salt)
        return self.generator


class RandomScale(_KeyedTransform):
    """The MNIST-Scale "+" augmentation: rescale about the centre by s ~ U[min, max].

    Put it before Normalize. Pixels go through the same PIL-exact uint8 bicubic as the SESN
    recipe (PIL image -> RandomAffine(scale=(0.5, 2.0)) -> ToTensor); enlarged digits are
    cropped by the canvas.
    """

    def __init__(
        self,
        generator: np.random.Generator,
        min_scale: float = 0.5,
        max_scale: float = 2.0,
        interpolation: str = "bicubic",
    ) -> None:
        check_interpolation(interpolation)  # here, not at the first item inside a worker
        if not (_is_real(min_scale) and _is_real(max_scale) and 0 < min_scale <= max_scale):
            raise InvalidParameterError(
                f"min_scale, max_scale: need 0 < min_scale <= max_scale, got {min_scale}, "
                f"{max_scale}"
            )
        super().__init__(generator)
        self.min_scale = min_scale
        self.max_scale = max_scale
        self.interpolation = interpolation

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


class RandomCircularShift(_KeyedTransform):
    """With probability `p`, roll the image by random whole-pixel shifts (wrapping around).

    The Fourier MNIST-scale train augmentation (p = 0.7, up to 25% of H and W). Draws, in
    order: ``u = random()``; if ``u < p``, ``dy = integers(-my, my + 1)`` then
    ``dx = integers(-mx, mx + 1)`` with ``my = floor(max_fraction * H)``,
    ``mx = floor(max_fraction * W)``; the result is ``torch.roll(image, (dy, dx), (-2, -1))``.
    """

    def __init__(
        self, generator: np.random.Generator, p: float = 0.7, max_fraction: float = 0.25
    ) -> None:
        self.p = _check_probability(p)
        if not _is_real(max_fraction) or not 0.0 <= max_fraction < 1.0:
            raise InvalidParameterError(
                f"max_fraction: need 0 <= max_fraction < 1, got {max_fraction!r}"
            )
        self.max_fraction = float(max_fraction)
        super().__init__(generator)

    def __call__(self, image: torch.Tensor) -> torch.Tensor:
        h, w = _image_hw(image)
        rng = self._rng()
        if rng.random() >= self.p:
            return image
        my, mx = math.floor(self.max_fraction * h), math.floor(self.max_fraction * w)
        dy = int(rng.integers(-my, my + 1))
        dx = int(rng.integers(-mx, mx + 1))
        return torch.roll(image, shifts=(dy, dx), dims=(-2, -1))

    def __repr__(self) -> str:
        return f"RandomCircularShift(p={self.p}, max_fraction={self.max_fraction})"


class RandomCropPadded(_KeyedTransform):
    """Zero-pad by `padding` on every side, then crop `size` x `size` at a random offset.

    torchvision's ``RandomCrop(size, padding=padding)`` (the STL-10 recipe uses 96 and 12),
    with the offsets drawn as ``top = integers(0, H + 2 padding - size + 1)`` then
    ``left = integers(0, W + 2 padding - size + 1)``.
    """

    def __init__(self, generator: np.random.Generator, size: int = 96, padding: int = 12) -> None:
        self.size = int_at_least("size", size, 1)
        self.padding = int_at_least("padding", padding, 0)
        super().__init__(generator)

    def __call__(self, image: torch.Tensor) -> torch.Tensor:
        h, w = _image_hw(image)
        room_y = h + 2 * self.padding - self.size
        room_x = w + 2 * self.padding - self.size
        if room_y < 0 or room_x < 0:
            raise InvalidParameterError(
                f"size: a {self.size} x {self.size} crop does not fit a {h} x {w} image padded "
                f"by {self.padding}"
            )
        rng = self._rng()
        top = int(rng.integers(0, room_y + 1))
        left = int(rng.integers(0, room_x + 1))
        p = self.padding
        padded = F.pad(image, (p, p, p, p)) if p else image
        return padded[..., top : top + self.size, left : left + self.size]

    def __repr__(self) -> str:
        return f"RandomCropPadded(size={self.size}, padding={self.padding})"


class RandomHorizontalFlip(_KeyedTransform):
    """Mirror left-right when ``random() < p``."""

    def __init__(self, generator: np.random.Generator, p: float = 0.5) -> None:
        self.p = _check_probability(p)
        super().__init__(generator)

    def __call__(self, image: torch.Tensor) -> torch.Tensor:
        _image_hw(image)
        return image.flip(-1) if self._rng().random() < self.p else image

    def __repr__(self) -> str:
        return f"RandomHorizontalFlip(p={self.p})"


class Cutout(_KeyedTransform):
    """Zero `holes` squares of `length` x `length` pixels, clipped at the borders.

    DeVries & Taylor's Cutout as SESN and DISCO use it on STL-10 (1 hole of 32 px): each centre
    is a uniformly drawn pixel, ``cy = integers(H)`` then ``cx = integers(W)``, and rows
    ``cy - length // 2`` up to (not including) ``cy - length // 2 + length`` are zeroed, and
    likewise columns. For even lengths this is their square exactly; for odd lengths theirs
    is one pixel smaller (``length - 1``), ours is `length` wide and centred on the pixel.
    Returns a new tensor; the input is left untouched.
    """

    def __init__(self, generator: np.random.Generator, holes: int = 1, length: int = 32) -> None:
        self.holes = int_at_least("holes", holes, 1)
        self.length = int_at_least("length", length, 1)
        super().__init__(generator)

    def __call__(self, image: torch.Tensor) -> torch.Tensor:
        h, w = _image_hw(image)
        rng = self._rng()
        out = image.clone()
        half = self.length // 2
        for _ in range(self.holes):
            cy, cx = int(rng.integers(h)), int(rng.integers(w))
            y0, x0 = max(cy - half, 0), max(cx - half, 0)
            out[..., y0 : cy - half + self.length, x0 : cx - half + self.length] = 0
        return out

    def __repr__(self) -> str:
        return f"Cutout(holes={self.holes}, length={self.length})"


def stl10_train_transforms(
    generator: np.random.Generator,
    normalize: tuple[Sequence[float], Sequence[float]] | None = None,
) -> Compose:
    """The STL-10 train augmentation: RandomCrop(96, padding 12), horizontal flip, Cutout(1, 32).

    All three draw from the one `generator` (each re-keys its own copy in a DataLoader worker).
    SESN normalises before Cutout, so its holes hold the mean colour once un-normalised; pass
    ``normalize=(mean, std)`` to insert that ``Normalize`` before the Cutout and reproduce it.
    Without it the holes are black and any Normalize goes after this Compose.
    """
    steps: list[object] = [
        RandomCropPadded(generator, size=96, padding=12),
        RandomHorizontalFlip(generator, p=0.5),
    ]
    if normalize is not None:
        steps.append(Normalize(*normalize))
    steps.append(Cutout(generator, holes=1, length=32))
    return Compose(steps)
