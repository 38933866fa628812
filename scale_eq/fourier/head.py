"""Scale-consistent classification head and its loss.

The head turns the final feature spectrum into one logit vector per resolution ``r`` of a grid
(``base_res, base_res + increment, ...`` up to the input's own resolution, which is always the last
entry). The entry for ``r`` must depend on ``D_r`` of the features only, so that a down-scaled input
(whose features are ``D_r`` of the full input's, by equivariance) gets at its top resolution exactly
the logits the full input gets at ``r``. The published stack misses this (it inverts with the wrong
transform, so the two differ by up to 0.47); here the entry for ``r`` is computed from the
Nyquist-free crop ``|k| <= (r - 1) // 2``, which is bit-for-bit the same spectrum either way.

Representation: the crop is synthesised as a real map on a fixed ``grid_size`` grid (band-limited
interpolation, so every resolution is sampled at the same physical positions), max-pooled with
window ``pool_window`` (``ceil_mode``), flattened and passed through one MLP shared by all
resolutions. With the MNIST settings (grid 28, window 14) this is the published 2 x 2 max-pool per
channel, 400 features for 100 channels.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn
from torch.autograd.function import once_differentiable

from scale_datasets.ops.fourier import kept_modes

from ._coefficients import ReadCoefficients, coefficient_reader
from ._grids import analysis_matrix, synthesis_matrix
from ._layout import mode_major

__all__ = ["ScaleConsistentHead", "consistency_loss", "head_resolutions"]


def head_resolutions(n: int, base_res: int, increment: int = 1) -> list[int]:
    """The head's resolutions for an n-sized feature map: the grid below n, then n itself."""
    grid = list(range(base_res, n, increment)) if n > base_res else []
    return [*grid, n]


class ScaleConsistentHead(nn.Module):
    """Per-resolution logits (B, R, classes) from a complex (B, C, N[, N]) feature spectrum.

    Args:
        in_channels: channels of the feature spectrum.
        hidden: width of the MLP's hidden layer.
        num_classes: number of logits.
        base_res: the lowest resolution of the grid (in feature-map samples).
        increment: step of the grid.
        grid_size: side of the fixed grid each crop is synthesised on.
        pool_window: max-pool window on that grid; features = C * ceil(grid / window) ** dims.
        dims: 2 for images, 1 for signals.
        dropout_in, dropout_hidden: dropout before the first and second linear layers (published
            0.0 and 0.75).

    The MLP is the published one: LayerNorm -> Dropout -> Linear -> Dropout -> LayerNorm -> ReLU ->
    Linear. Everything after the crop acts on each resolution separately, so consistency is exact.
    """

    def __init__(
        self,
        in_channels: int,
        hidden: int,
        num_classes: int,
        base_res: int,
        *,
        increment: int = 1,
        grid_size: int = 28,
        pool_window: int = 14,
        dims: int = 2,
        dropout_in: float = 0.0,
        dropout_hidden: float = 0.75,
    ) -> None:
        super().__init__()
        if dims not in (1, 2):
            raise ValueError(f"dims must be 1 or 2, got {dims}")
        if min(in_channels, hidden, num_classes, base_res, increment, grid_size, pool_window) < 1:
            raise ValueError("channels, sizes, base_res, increment and pool_window must be >= 1")
        self.in_channels = in_channels
        self.num_classes = num_classes
        self.base_res = base_res
        self.increment = increment
        self.grid_size = grid_size
        self.pool_window = pool_window
        self.dims = dims
        self.num_features = in_channels * math.ceil(grid_size / pool_window) ** dims
        self._lifts: dict[tuple, tuple] = {}  # see _lift (1D) and _synthesis (2D)
        self.mlp = nn.Sequential(
            nn.LayerNorm(self.num_features),
            nn.Dropout(dropout_in),
            nn.Linear(self.num_features, hidden),
            nn.Dropout(dropout_hidden),
            nn.LayerNorm(hidden),
            nn.ReLU(),
            nn.Linear(hidden, num_classes),
        )

    def resolutions(self, n: int) -> list[int]:
        """The resolutions whose logits ``forward`` returns for an n-sized feature map, in order."""
        return head_resolutions(n, self.base_res, self.increment)

    def features(self, spectrum: torch.Tensor) -> torch.Tensor:
        """(B, R, num_features): the pooled map of each resolution's crop, before the MLP.

        The crop of ``|k| <= m`` synthesised on the g grid is ``Y_m = S_m Xc_m S_m^T``, with
        ``Xc_m`` the leading (2m + 1) block of the feature maps' real Fourier coefficients and
        ``S_m = synthesis_matrix(g, m)``. Resolutions that keep the same m share a crop. In 2D
        the coefficients are read off the mode-major spectrum (no FFT) and every crop is two
        GEMMs and a max-pool with the maps innermost, instead of the FFT per resolution of
        :func:`~.reference.reference_head_features` (timings: benchmarks/README.md).
        """
        n = self._check_spectrum(spectrum)
        if self.dims == 2:
            return self._features_2d(spectrum, n)
        g, p = self.grid_size, self.pool_window
        lift, index = self._lift(n, spectrum.real.dtype, spectrum.device)  # (M, g, n), (R,)
        x = torch.fft.ifft(spectrum, norm="forward").real
        b, c, crops = x.shape[0], x.shape[1], lift.shape[0]
        y = (lift.reshape(crops * g, n) @ x.reshape(b * c, n).T).reshape(crops, g, b * c)
        y = _pad_to_cells(y, 1, p)
        cells = y.shape[1] // p
        y = y.reshape(crops, cells, p, b, c).max(dim=2).values  # (M, cells, b, c)
        pooled = y.permute(2, 0, 3, 1).reshape(b, crops, self.num_features)
        return pooled[:, index]

    def _features_2d(self, spectrum: torch.Tensor, n: int) -> torch.Tensor:
        b, c = spectrum.shape[:2]
        syn, index, reader = self._synthesis(n, spectrum.real.dtype, spectrum.device)
        coeffs = ReadCoefficients.apply(mode_major(spectrum).view(n * n, b * c), reader)
        pooled = _PooledCrops2d.apply(coeffs, syn, self.pool_window)  # (M, ci, cj, maps)
        cells = pooled.shape[1]
        out = pooled.view(len(syn), cells, cells, b, c).permute(3, 0, 4, 1, 2)
        return out.reshape(b, len(syn), self.num_features)[:, index]

    def _check_spectrum(self, spectrum: torch.Tensor) -> int:
        if not spectrum.is_complex() or spectrum.dim() != self.dims + 2:
            raise ValueError(
                f"head takes a complex (B, C{', N' * self.dims}) spectrum, "
                f"got {tuple(spectrum.shape)} {spectrum.dtype}"
            )
        n = spectrum.shape[-1]
        if self.dims == 2 and spectrum.shape[-2] != n:
            raise ValueError(f"head takes square feature maps, got {tuple(spectrum.shape[-2:])}")
        if spectrum.shape[1] != self.in_channels:
            raise ValueError(f"head expects {self.in_channels} channels, got {spectrum.shape[1]}")
        return n

    def _crops(self, n: int) -> tuple[list[int], list[int]]:
        """The distinct kept frequencies m of the resolutions of n-sample maps (ascending),
        and each resolution's index into them: resolutions keeping the same m share a crop."""
        per_res = [kept_modes(min(r, self.grid_size)) for r in self.resolutions(n)]
        ms = sorted(set(per_res))
        return ms, [ms.index(m) for m in per_res]

    def _lift(
        self, n: int, dtype: torch.dtype, device: torch.device
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """1D: (lift, index) for n-sample maps, cached per (n, dtype, device) outside the
        state_dict. ``lift`` (M, g, n): per crop m, keep |k| <= m and synthesise on the g grid
        (built in float64); ``index`` (R,): each resolution's crop."""
        key = (n, dtype, device)
        hit = self._lifts.get(key)
        if hit is None:
            g = self.grid_size
            ms, index = self._crops(n)
            lift = torch.stack([synthesis_matrix(g, m) @ analysis_matrix(n, m) for m in ms])
            hit = self._lifts[key] = (
                lift.to(dtype=dtype, device=device),
                torch.tensor(index, device=device),
            )
        return hit

    def _synthesis(
        self, n: int, dtype: torch.dtype, device: torch.device
    ) -> tuple[list[torch.Tensor], torch.Tensor, torch.Tensor]:
        """2D: (S_m per crop m, each resolution's crop, the coefficient reader) for n x n maps,
        cached per (n, dtype, device) outside the state_dict."""
        key = (n, dtype, device)
        hit = self._lifts.get(key)
        if hit is None:
            g = self.grid_size
            ms, index = self._crops(n)
            syn = [synthesis_matrix(g, m).to(dtype=dtype, device=device) for m in ms]
            reader = coefficient_reader(n, ms[-1]).to(device)
            hit = self._lifts[key] = (syn, torch.tensor(index, device=device), reader)
        return hit

    def forward(self, spectrum: torch.Tensor) -> torch.Tensor:
        """Per-resolution logits (B, R, num_classes); the last entry is the input's resolution."""
        feats = self.features(spectrum)
        return self.mlp(feats.to(self.mlp[0].weight.dtype))


class _PooledCrops2d(torch.autograd.Function):
    """Every crop's max-pooled map, from the (K, K, maps) real coefficients of the features.

    Per crop m (``S_m`` (g, d), d = 2m + 1): ``Y_m = S_m Xc[:d, :d] S_m^T`` on the g grid (two
    GEMMs, maps innermost), max-pooled with window p (ceil mode: the grid is padded with -inf)
    -> (crops, cells, cells, maps). The backward is written by hand: it keeps only where each
    window's maximum sits (a boolean mask; tied maxima share the gradient evenly, as ``amax``'s
    do, an untied one gets it all, as ``max``'s) and reuses one g x g buffer for every crop
    (autograd's version allocated a fresh full-size zero tensor per crop for the max and the
    slice, and spent a third of its time zero-filling new pages).
    """

    @staticmethod
    def forward(  # type: ignore[override]
        ctx: torch.autograd.function.FunctionCtx,
        coeffs: torch.Tensor,
        syn: list[torch.Tensor],
        p: int,
    ) -> torch.Tensor:
        g, maps = syn[0].shape[0], coeffs.shape[-1]
        cells = -(-g // p)
        y = coeffs.new_full((cells * p, cells * p, maps), float("-inf"))
        inner = y[:g, :g]
        out = coeffs.new_empty(len(syn), cells, cells, maps)
        indices = []
        for i, s in enumerate(syn):
            d = s.shape[1]
            u = torch.matmul(s, coeffs[:d, :d]).view(d, g * maps)  # second axis: (d, g, maps)
            if inner.is_contiguous():
                torch.mm(s, u, out=inner.view(g, g * maps))  # first axis
            else:
                inner.copy_((s @ u).view(g, g, maps))
            # amax and where its maxima sit (max with indices along these axes is far slower)
            windows = y.view(cells, p, -1)
            rows = windows.amax(dim=1)  # (ci, g_pad maps)
            cols = rows.view(cells, cells, p, maps)
            torch.amax(cols, dim=2, out=out[i])
            at_rows, at_cols = windows == rows.unsqueeze(1), cols == out[i].unsqueeze(2)
            # ties (a dead channel's all-zero map) share the gradient evenly, as amax's do
            ties = at_rows.sum(1, dtype=y.dtype).view_as(cols) * at_cols.sum(
                2, keepdim=True, dtype=y.dtype
            )
            indices.append((at_rows, at_cols, ties))
        ctx.syn, ctx.p, ctx.shape, ctx.indices = syn, p, coeffs.shape, indices
        return out

    @staticmethod
    @once_differentiable
    def backward(ctx: torch.autograd.function.FunctionCtx, g_out: torch.Tensor) -> tuple:  # type: ignore[override]
        syn, p = ctx.syn, ctx.p
        K, _, maps = ctx.shape
        g = syn[0].shape[0]
        cells = -(-g // p)
        g_coeffs = g_out.new_zeros(K, K, maps)
        g_rows = g_out.new_empty(cells, cells, p, maps)
        g_y = g_out.new_empty(cells, p, cells * p * maps)
        zero = g_out.new_zeros(())
        for i, (s, (at_rows, at_cols, ties)) in enumerate(zip(syn, ctx.indices, strict=True)):
            d = s.shape[1]
            torch.where(at_cols, g_out[i].unsqueeze(2), zero, out=g_rows)
            g_rows.div_(ties)
            torch.where(at_rows, g_rows.view(cells, 1, -1), zero, out=g_y)
            inner = g_y.view(cells * p, cells * p, maps)[:g, :g]
            g_u = (s.T @ inner.reshape(g, g * maps)).view(d, g, maps)
            g_coeffs[:d, :d] += torch.matmul(s.T, g_u)
        return g_coeffs, None, None


def _pad_to_cells(y: torch.Tensor, dim: int, p: int) -> torch.Tensor:
    """Pad axis ``dim`` with -inf up to a multiple of p (max-pool with ceil_mode)."""
    extra = -y.shape[dim] % p
    if not extra:
        return y
    shape = list(y.shape)
    shape[dim] = extra
    return torch.cat([y, y.new_full(shape, float("-inf"))], dim=dim)


def consistency_loss(
    per_scale_logits: torch.Tensor, target: torch.Tensor, monotone_weight: float = 1e-3
) -> torch.Tensor:
    """sum_j CE_j + monotone_weight * sum_j max(CE_j - CE_{j-1}, 0)  (PROTOCOLS 6.2).

    ``CE_j`` is the batch-mean cross-entropy of resolution j (ordered low to high). The hinge term
    asks that the loss not grow as resolution rises: a higher resolution sees strictly more of the
    image, so it should never be worse.
    """
    if per_scale_logits.dim() != 3:
        raise ValueError(f"per_scale_logits must be (B, R, classes), got {per_scale_logits.shape}")
    ce = torch.stack(
        [F.cross_entropy(per_scale_logits[:, j], target) for j in range(per_scale_logits.shape[1])]
    )
    return ce.sum() + monotone_weight * torch.relu(ce[1:] - ce[:-1]).sum()
