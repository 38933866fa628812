"""Small real matrices for ideal resampling and DFTs on several grids at once.

The batched scale-equivariant nonlinearity replaces one FFT per resolution by a few batched
matrix products. Everything here is built in float64 on the CPU, with phases reduced exactly
in integers, so the matrices agree with an FFT to round-off; the caller casts them to the
working dtype and device and zero-pads grids to a common size (padded rows and columns are
zero, so padded samples never leak into a result).

Conventions (those of :mod:`scale_datasets.ops.fourier`): DFTs use norm "forward" (a
coefficient is a mean), a resolution r keeps exactly the modes ``|k| <= (r - 1) // 2`` and the
Nyquist mode of an even grid is dropped.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch

from scale_datasets.ops.fourier import kept_modes

_F64 = torch.float64


def angles(k: torch.Tensor, t: torch.Tensor, n: int) -> torch.Tensor:
    """2 pi (k t mod n) / n as an outer product, reduced exactly in integers first.

    Reducing ``k * t`` modulo n before the division keeps the phases exact to one rounding,
    whatever the size, so the matrices agree with an FFT to round-off.
    """
    return (2 * math.pi / n) * torch.remainder(k[:, None] * t[None, :], n).to(_F64)


def resample_matrix(n: int, r: int) -> torch.Tensor:
    """The (r, n) real matrix of 1D ideal resampling D_r of a real n-point signal.

    D_r keeps the modes |k| <= (min(n, r) - 1) // 2 and inverts on the r grid:
    ``(D_r x)[t] = sum_j x[j] / n * sum_{|k| <= m} exp(2 pi i k (t / r - j / n))``, which is
    real because the mode set is symmetric. Built as a product of the analysis and synthesis
    cos/sin bases, so it matches the FFT route to round-off.
    """
    m = kept_modes(n, r)
    k = torch.arange(1, m + 1)
    t, j = torch.arange(r), torch.arange(n)
    a_syn, a_ana = angles(k, t, r), angles(k, j, n)  # (m, r), (m, n)
    out = torch.full((r, n), 1.0 / n, dtype=_F64)
    out += (2.0 / n) * (a_syn.cos().T @ a_ana.cos() + a_syn.sin().T @ a_ana.sin())
    return out


def lowpass_matrix(r: int, q: int) -> torch.Tensor:
    """The (r, r) matrix of D_r(D_q(.)) on an r grid: keep |k| <= (min(r, q) - 1) // 2."""
    return resample_matrix(q, r) @ resample_matrix(r, q) if q < r else torch.eye(r, dtype=_F64)


def analysis_matrix(n: int, m: int) -> torch.Tensor:
    """(2m + 1, n): the coefficients of a real n-point signal on the real Fourier basis.

    Rows in frequency order [1, cos 1, sin 1, cos 2, sin 2, ...] (m < n / 2), scaled so that
    ``x_low = synthesis_matrix(n, m) @ analysis_matrix(n, m) @ x`` keeps exactly |k| <= m.
    Frequency order makes the coefficients of any smaller m a leading block.
    """
    k = torch.arange(1, m + 1)
    ang = angles(k, torch.arange(n), n)
    out = torch.empty(2 * m + 1, n, dtype=_F64)
    out[0] = 1.0 / n
    out[1::2] = (2.0 / n) * ang.cos()
    out[2::2] = (2.0 / n) * ang.sin()
    return out


def synthesis_matrix(r: int, m: int, width: int | None = None) -> torch.Tensor:
    """(r, width): the real Fourier basis [1, cos 1, sin 1, ..., cos m, sin m] sampled on an r
    grid, zero-padded to ``width`` columns; ``synthesis_matrix(r, m) @ analysis_matrix(n, m)``
    is ``resample_matrix(n, r)`` when m = (min(n, r) - 1) // 2."""
    width = 2 * m + 1 if width is None else width
    k = torch.arange(1, m + 1)
    ang = angles(k, torch.arange(r), r)
    out = torch.zeros(r, width, dtype=_F64)
    out[:, 0] = 1.0
    out[:, 1 : 2 * m + 1 : 2] = ang.cos().T
    out[:, 2 : 2 * m + 2 : 2] = ang.sin().T
    return out


def mean_square_weights(width: int) -> torch.Tensor:
    """Mean of the square of each real basis function on a grid that keeps it: 1 for the
    constant, 1/2 for cos and sin (Parseval in the real basis)."""
    w = torch.full((width,), 0.5, dtype=_F64)
    w[0] = 1.0
    return w


def basis_frequency(width: int) -> torch.Tensor:
    """The frequency |k| of each column of the real basis [1, cos 1, sin 1, ...]."""
    return (torch.arange(width) + 1) // 2


def partition(
    sizes: list[int], cost: Callable[[int], float], overhead: float, most: int
) -> list[int]:
    """Split ascending sizes into at most `most` contiguous groups, each padded to its largest
    size, minimising sum(len(group) * cost(max(group))) + overhead * groups; returns the group
    lengths. Padding every resolution to the largest wastes most of the work on small grids;
    each extra group costs a few more (batched) kernel launches."""
    n = len(sizes)
    inf = float("inf")
    # best[g][j]: cheapest split of sizes[:j] into g groups
    best = [[inf] * (n + 1) for _ in range(most + 1)]
    cut = [[0] * (n + 1) for _ in range(most + 1)]
    best[0][0] = 0.0
    for g in range(1, most + 1):
        for j in range(1, n + 1):
            for i in range(j):
                c = best[g - 1][i] + (j - i) * cost(sizes[j - 1]) + overhead
                if c < best[g][j]:
                    best[g][j], cut[g][j] = c, i
    g = min(range(1, most + 1), key=lambda h: best[h][n])
    lengths, j = [], n
    while g:
        i = cut[g][j]
        lengths.append(j - i)
        j, g = i, g - 1
    return lengths[::-1]


@dataclass(frozen=True)
class Step:
    """One resolution of the schedule that brings new output rings.

    ``res`` is the resolution r the input is resampled to; ``grid`` the grid the rings are
    read from (r, or ceil(r / p) after a max-pool of window p); rings ``lo..hi`` of that grid
    are new here.
    """

    res: int
    grid: int
    lo: int
    hi: int


def grid_resolutions(base_res: int, max_res: int, increment: int) -> range:
    """The resolution grid R = {base_res, base_res + increment, ...}, up to the first point
    >= max_res (the published layer's grid: it keeps a norm for that point too)."""
    steps = -(-(max_res - base_res) // increment)
    return range(base_res, base_res + steps * increment + 1, increment)


def schedule(
    n: int, base_res: int, max_res: int, increment: int, pool_window: int = 1
) -> list[Step]:
    """The resolutions of the grid that bring new rings to an n-sized input, smallest first:
    each output ring comes from the smallest grid resolution whose (pooled) grid keeps it.

    Grid points up to n are used as they are. An input off the grid (between two points)
    carries rings that no grid point <= n keeps; those come from the next grid point r > n,
    computed on the input up-sampled to r (zero-padded spectrum), so the layer at n is
    ``D_n f(U_r x)``, the grid layer seen through ideal resampling. Only rings the output
    keeps are taken. Resolutions that add no ring (e.g. r = 2m + 2 after 2m + 1) are
    skipped: they would only recompute rings an earlier resolution already fixed. An input
    larger than the grid's last point gets no rings above that point's.
    """
    carried = kept_modes(-(-n // pool_window))  # the highest ring the output keeps
    steps: list[Step] = []
    top = -1
    for r in grid_resolutions(base_res, max_res, increment):
        g = -(-r // pool_window)
        m = min(kept_modes(g), carried)
        if m > top:
            steps.append(Step(r, g, top + 1, m))
            top = m
        if r >= n:
            break
    return steps


def signed(k: int, n: int) -> int:
    """The signed frequency of DFT index k on an n grid (the Nyquist index of even n -> n/2)."""
    return k - n if k > n // 2 else k
