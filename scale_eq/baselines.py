"""The MNIST-Scale CNN template shared by the CNN baseline and the SESN models (PROTOCOLS 6.1).

Three blocks ``conv -> ReLU -> MaxPool -> BatchNorm`` with 32 / 63 / 95 channels (the first two
pool by 2, the third with kernel 4 and padding 2, so 28 x 28 inputs end at 2 x 2), then
``Linear(4 * 95, 256, no bias) -> BatchNorm1d -> ReLU -> Dropout(0.7) -> Linear(256, 10)``.
With 7 x 7 convolutions this is the published CNN baseline, 494,549 parameters; the SESN models
put scale convolutions in the blocks and keep everything else (same count, since their
kernels are 49 basis weights per channel pair).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from .registry import register_model

__all__ = ["MNIST_CHANNELS", "MnistTemplate", "cnn_mnist", "mnist_head"]

MNIST_CHANNELS: tuple[int, int, int] = (32, 63, 95)


def mnist_head(channels: int, num_classes: int = 10, dropout: float = 0.7) -> nn.Sequential:
    """``Linear(4 C, 256, no bias) -> BN1d -> ReLU -> Dropout -> Linear(256, classes)``."""
    return nn.Sequential(
        nn.Flatten(),
        nn.Linear(4 * channels, 256, bias=False),
        nn.BatchNorm1d(256),
        nn.ReLU(inplace=True),
        nn.Dropout(dropout),
        nn.Linear(256, num_classes),
    )


class MnistTemplate(nn.Module):
    """``features`` (blocks ending in (B, C, 2, 2) for 28 x 28 inputs) then the shared head.

    Larger inputs (MNIST Large Scale's 112 x 112) end in larger maps, max-pooled to 2 x 2 before
    the head; on 28 x 28 inputs that pool is the identity (same parameters, same outputs).
    """

    def __init__(self, features: nn.Module, channels: int, num_classes: int, dropout: float):
        super().__init__()
        self.features = features
        self.pool = nn.AdaptiveMaxPool2d(2)
        self.head = mnist_head(channels, num_classes, dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.pool(self.features(x)))


def pool(block: int) -> nn.MaxPool2d:
    """The template's pooling after block ``block`` (0, 1: by 2; 2: kernel 4, padding 2)."""
    return nn.MaxPool2d(2) if block < 2 else nn.MaxPool2d(4, padding=2)


@register_model("cnn_mnist")
def cnn_mnist(
    *,
    channels: Sequence[int] = MNIST_CHANNELS,
    kernel_size: int = 7,
    in_channels: int = 1,
    num_classes: int = 10,
    dropout: float = 0.7,
) -> MnistTemplate:
    """The MNIST-Scale CNN baseline: 7 x 7 convolutions, 494,549 parameters."""
    layers: list[nn.Module] = []
    cin = in_channels
    for i, c in enumerate(channels):
        layers += [
            nn.Conv2d(cin, c, kernel_size, padding=kernel_size // 2),
            nn.ReLU(inplace=True),
            pool(i),
            nn.BatchNorm2d(c),
        ]
        cin = c
    return MnistTemplate(nn.Sequential(*layers), cin, num_classes, dropout)
