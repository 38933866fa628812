"""The mode-major layout the 2D spectral layers compute in.

A (B, C, H, W) spectrum is *mode-major* when its memory is laid out (H, W, B, C): every mode's
(B, C) block is contiguous. The convolution's per-mode channel mix is then one batched GEMM
with no gather, and the nonlinearity reads its real coefficients and writes its rings with
maps innermost, so a stack of layers passes spectra along without transposing them. The
tensors are ordinary (B, C, H, W) tensors with other strides (like ``channels_last``), so
every operation accepts them.
"""

from __future__ import annotations

import torch

__all__ = ["from_mode_major", "is_mode_major", "mode_major"]


def is_mode_major(x: torch.Tensor) -> bool:
    """Whether a (B, C, H, W) tensor's memory is laid out (H, W, B, C): each mode's (B, C)
    block contiguous, the layout the 2D spectral layers compute in and return."""
    return x.dim() == 4 and x.permute(2, 3, 0, 1).is_contiguous()


def mode_major(x: torch.Tensor) -> torch.Tensor:
    """(H W, B, C) view of a (B, C, H, W) tensor (a copy only if not already mode-major)."""
    b, c, h, w = x.shape
    # contiguous(), not reshape: reshape may return a strided view (a (B, C, H, W) tensor's
    # H and W merge), which is not the layout
    return x.permute(2, 3, 0, 1).contiguous().view(h * w, b, c)


def from_mode_major(t: torch.Tensor, h: int, w: int) -> torch.Tensor:
    """The (B, C, H, W) view of an (H W, B, C) tensor: no copy."""
    return t.view(h, w, *t.shape[1:]).permute(2, 3, 0, 1)
