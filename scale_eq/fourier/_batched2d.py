"""The batched 2D nonlinearity: every resolution at once, with a hand-written backward.

The direct method (:func:`.reference.reference_forward`) is a Python loop with an FFT pair, a
norm and sigma per resolution. This computes the same numbers (to round-off, forward and
backward) with a few batched matrix products on all resolutions at once:

* the real Fourier coefficients of each map (``Xc = C x C^T`` on the basis [1, cos k, sin k],
  frequency ordered, so any resolution's coefficients are a leading block; read straight off
  the mode-major (N N, maps) spectrum by :mod:`._coefficients`, no FFT) give every
  ``D_r x = B_r Xc B_r^T``. The resolutions are split into a few size buckets, each zero-padded
  to its largest size P (so small grids do not pay for the largest), and a bucket is one GEMM
  and one batched GEMM producing maps laid out (R, P, P, maps), maps innermost: no copies, and
  the per-map norm is an innermost broadcast;
* instance norm without visiting the maps: D_r keeps the mean, and by Parseval the variance of
  D_r x on its r x r grid is a weighted sum of its squared kept coefficients (one small matrix
  product), so the norm is one fused multiply-add;
* only the new rings are read: a cos and a sin row per new ring frequency of each grid, then a
  DFT of that row (and of the matching column) straight to (Re, Im), gathered into the output
  with a precomputed index map; the other half of each ring is the conjugate, so the output is
  exactly Hermitian. The base resolution's whole block is one small 2D DFT.

All arithmetic is real (the maps are real). The backward is written by hand (:class:`_Layer2d`):
in place on one buffer per bucket, keeping only sigma's input (for ReLU, its output) and, with
a norm, the first factor of D_r x. The batch is processed in chunks of whole samples: on the
CPU, tensors above a few MiB are fresh, page-faulting mmaps and fall out of the caches, which
costs more than the arithmetic. The pooled variant uses the same pieces with autograd.

The buckets split the full schedule (that of max_res) once and are shared by every input size,
which adds only its coefficient reader and gather map (per N), so a layer that sees many sizes
(the multi-resolution benchmarks) stays small.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.autograd.function import once_differentiable

from scale_datasets.ops.fourier import kept_modes

from ._batched import (
    Activation,
    cast_record,
    cos_sin,
    norm_affine,
    synthesis_stack,
    variance_weights,
)
from ._coefficients import (
    ReadCoefficients,
    coefficient_reader,
    real_coefficients,
    real_coefficients_backward,
)
from ._grids import Step, lowpass_matrix, partition, signed

_MAX_BUCKETS = 5
_CPU_CHUNK_BYTES = 2 << 20  # largest intermediate per chunk and CPU thread (see chunk_size)
_ACCEL_CHUNK_BYTES = 1 << 30  # bounds the memory of one chunk on an accelerator
_REPEATED_BYTES = 4 << 20  # largest repeated matrix kept in a bucket (see _grouped_bmm)


# --------------------------------------------------------------------------------------------
# plans: the matrices and index maps of buckets (shared by input sizes) and of an input size


@dataclass(frozen=True)
class Bucket2d:
    """Consecutive steps of the schedule processed together, zero-padded to the largest size.

    The first bucket of a plan holds the base step, whose whole block of kept modes is read
    at once (``base_rows``, ``base_dft``); every other step brings a few new rings, read as a
    cos and a sin row (and column) per ring frequency (``ring_*``). The ``*_repeated`` fields
    are the same matrices repeated per batch entry, kept where small, which makes some products
    one batched GEMM (see :func:`_grouped_bmm`). Tensors are (step, ...) unless stated.
    """

    first_step: int  # index of its first step in the schedule
    step_count: int
    padded_res: int  # P: the resampled maps are zero-padded to P x P
    ring_grid: int  # padded size of the grids the rings are read from (P, or ceil(P / p))
    ring_slots: int  # most rings a (non-base) step of the bucket brings
    top_ring: int  # highest ring it brings
    synthesis: Tensor  # (steps, P, K): B_r on each grid, zero rows below P
    synthesis_repeated: Tensor | None = None
    # the pooled layer: anti-alias matrices, and the masks of the padding before / after pooling
    lowpass: Tensor | None = None  # (steps, P, P)
    lowpass_repeated: Tensor | None = None
    outside_grid: Tensor | None = None  # (steps, 1, P, P) bool
    inside_pooled_grid: Tensor | None = None  # (steps, 1, pe, pe) bool
    # the base step's block: cos / sin rows of its frequencies, then its 2D DFT
    base_rows: Tensor | None = None  # ((m0 + 1) 2, pe)
    base_dft: Tensor | None = None  # (2 (2 m0 + 1), 2 pe)
    # new rings: rows u = w a, then the DFT along the second axis; columns v = a w^T, then
    # the DFT along the first (its cos and sin halves as two products)
    ring_rows: Tensor | None = None  # (ring steps, 2 slots, pe): rows (slot, cos / sin)
    ring_dft: Tensor | None = None  # (ring steps, 2 (2 top + 1), 2 pe), the same per slot
    ring_dft_repeated: Tensor | None = None
    ring_cols: Tensor | None = None  # (ring steps, 2 slots, pe): rows (cos / sin, slot)
    ring_cols_repeated: Tensor | None = None
    ring_cols_dft_cos: Tensor | None = None  # (ring steps, 2 (2 top + 1), pe)
    ring_cols_dft_sin: Tensor | None = None

    @property
    def coef_width(self) -> int:
        """Width of the leading block of real coefficients it needs: its grids keep no
        higher frequency than P's."""
        return 2 * kept_modes(self.padded_res) + 1

    @property
    def has_base(self) -> bool:
        return self.first_step == 0

    @property
    def ring_steps(self) -> int:
        """Steps whose new rings are read as rows and columns (all but the base)."""
        return self.step_count - self.has_base

    @property
    def ring_width(self) -> int:
        """Frequencies -top..top of a row or column: 2 top + 1."""
        return 2 * self.top_ring + 1

    @property
    def part_rows(self) -> list[int]:
        """Table rows of its parts: [base block], rows, columns (see :func:`_extract`)."""
        rows = []
        if self.base_rows is not None and self.base_dft is not None:
            rows.append(self.base_rows.shape[0] // 2 * self.base_dft.shape[0])
        if self.ring_steps:
            rows += [self.ring_steps * self.ring_slots * 2 * self.ring_width] * 2
        return rows

    def to(self, dtype: torch.dtype, device: torch.device) -> Bucket2d:
        """Cast, adding the repeated matrices where they are small (see :func:`_grouped_bmm`)."""
        cast = cast_record(self, dtype, device)

        def repeated(mat: Tensor | None, times: int) -> Tensor | None:
            if mat is None or mat.numel() * times * mat.element_size() > _REPEATED_BYTES:
                return None
            return mat.repeat_interleave(times, dim=0)

        return replace(
            cast,
            synthesis_repeated=repeated(cast.synthesis, self.padded_res),
            lowpass_repeated=repeated(cast.lowpass, self.padded_res),
            ring_dft_repeated=repeated(cast.ring_dft, self.ring_slots),
            ring_cols_repeated=repeated(cast.ring_cols, self.ring_grid),
        )


@dataclass(frozen=True)
class Plan2d:
    """Everything the 2D forward needs for one input size (and dtype and device): the shared
    buckets and this size's coefficient reader, norm weights and gather map."""

    n: int
    out_n: int
    steps: tuple[Step, ...]
    buckets: tuple[Bucket2d, ...]
    coef_index: Tensor  # flat positions of the modes the coefficients need
    coef_unread: Tensor  # the other positions (zeroed in the input's gradient)
    gather_index: Tensor  # table rows of (Re, Im) of each output coefficient
    gather_sign: Tensor  # sign of Im of each output coefficient (a conjugate half: -1)
    variance_weights: Tensor | None = None  # (steps, K^2), with a norm (Parseval)

    @property
    def coef_width(self) -> int:
        """K: width of the real coefficient block the buckets read."""
        return 2 * kept_modes(self.steps[-1].res) + 1

    @property
    def read_width(self) -> int:
        """Width of the block read off the input: K, or less for an input off the grid."""
        return 2 * kept_modes(self.n, self.steps[-1].res) + 1

    @property
    def table_rows(self) -> int:
        """Rows of the per-chunk (Re, Im) table: a zero row, then every bucket's parts."""
        return 1 + sum(sum(b.part_rows) for b in self.buckets)

    def chunk_size(self, itemsize: int, device: torch.device, multiple: int) -> int:
        """Maps per chunk: the largest multiple of `multiple` whose biggest intermediate fits
        the budget. On the CPU, tensors above a few MiB are fresh page-faulting mmaps and
        leave the caches (the budget grows with the threads, which each need enough work);
        on an accelerator the caching allocator makes big chunks best."""
        per_map = max(
            b.step_count * b.padded_res * max(b.padded_res, b.coef_width) for b in self.buckets
        )
        per_map *= itemsize
        if device.type == "cpu":
            budget = _CPU_CHUNK_BYTES * max(1, torch.get_num_threads())
        else:
            budget = _ACCEL_CHUNK_BYTES
        return max(multiple, budget // per_map // multiple * multiple)


def _ring_cost(res: int) -> float:
    """Rough cost per map of one resolution padded to `res`: its GEMMs plus its passes."""
    modes = 2 * kept_modes(res) + 1
    return res * modes * (res + modes) + 40.0 * res * res


def bucket_sizes(steps: list[Step]) -> list[int]:
    """Split the schedule into buckets (see :func:`partition`)."""
    sizes = [s.res for s in steps]
    return partition(sizes, _ring_cost, 0.25 * _ring_cost(sizes[-1]), _MAX_BUCKETS)


def plan_2d(
    n: int,
    steps: list[Step],
    buckets: list[Bucket2d],
    pool: int,
    norm: bool,
    dtype: torch.dtype,
    device: torch.device,
) -> Plan2d:
    """The input-size dependent part of the batched 2D forward, around shared buckets."""
    width = 2 * kept_modes(steps[-1].res) + 1
    # an input off the grid is read up to its own modes; the next grid point's block is wider
    # and sees zeros above them (the input up-sampled, see _grids.schedule)
    coef_index = coefficient_reader(n, kept_modes(n, steps[-1].res))
    unread = torch.ones(n * n, dtype=torch.bool)
    unread[coef_index] = False
    out_n = -(-n // pool)
    gather_index, gather_sign = _gather_2d(steps, buckets, out_n)
    plan = Plan2d(
        n=n,
        out_n=out_n,
        steps=tuple(steps),
        buckets=tuple(buckets),
        coef_index=coef_index,
        coef_unread=unread.nonzero().flatten(),
        gather_index=gather_index,
        gather_sign=gather_sign,
        variance_weights=variance_weights(steps, width, 2) if norm else None,
    )
    return cast_record(plan, dtype, device)  # the buckets are cast already


def bucket_2d(steps: list[Step], first: int, count: int, pool: int) -> Bucket2d:
    """The float64 bucket of ``steps[first : first + count]`` (cast it with ``.to``)."""
    own = steps[first : first + count]
    padded = own[-1].res
    width = 2 * kept_modes(padded) + 1
    grid = -(-padded // pool)  # the padded size of the grids the rings are read from
    ring_steps = own[1:] if first == 0 else own
    slots = max((s.hi - s.lo + 1 for s in ring_steps), default=0)
    top = own[-1].hi
    parts: dict[str, Tensor] = {}
    # (steps, P, K): B_r on each grid, zero rows below P; along the first axis as one
    # (steps P, K) GEMM, along the second as one product per first-axis index
    parts["synthesis"] = synthesis_stack(own, width, padded)
    if pool > 1:
        lowpass = torch.zeros(count, padded, padded, dtype=torch.float64)
        outside = torch.ones(count, 1, padded, padded, dtype=torch.bool)
        inside_pooled = torch.zeros(count, 1, grid, grid, dtype=torch.bool)
        for i, s in enumerate(own):
            lowpass[i, : s.res, : s.res] = lowpass_matrix(s.res, s.grid)
            outside[i, :, : s.res, : s.res] = False
            inside_pooled[i, :, : s.grid, : s.grid] = True
        parts.update(lowpass=lowpass, outside_grid=outside, inside_pooled_grid=inside_pooled)
    if first == 0:  # the base grid's whole block of kept modes: one small 2D DFT
        base_grid, base_top = own[0].grid, own[0].hi
        # rows (kx, cos / sin), then the DFT of every ky
        parts["base_rows"] = cos_sin(base_grid, torch.arange(base_top + 1), grid).reshape(-1, grid)
        parts["base_dft"] = _dft_rows(
            cos_sin(base_grid, torch.arange(-base_top, base_top + 1), grid)
        )
    if ring_steps:
        ring_width = 2 * top + 1
        rings = len(ring_steps)
        basis = torch.zeros(rings, slots, 2, grid, dtype=torch.float64)  # (step, slot, cos/sin)
        dft = torch.zeros(rings, 2 * ring_width, 2 * grid, dtype=torch.float64)
        for j, s in enumerate(ring_steps):
            basis[j, : s.hi - s.lo + 1] = cos_sin(s.grid, torch.arange(s.lo, s.hi + 1), grid)
            dft[j] = _dft_rows(cos_sin(s.grid, torch.arange(-top, top + 1), grid))
        parts["ring_rows"] = basis.reshape(rings, 2 * slots, grid)
        parts["ring_dft"] = dft
        parts["ring_cols"] = basis.transpose(1, 2).reshape(rings, 2 * slots, grid)
        parts["ring_cols_dft_cos"] = dft[..., :grid].contiguous()
        parts["ring_cols_dft_sin"] = dft[..., grid:].contiguous()
    return Bucket2d(
        first_step=first,
        step_count=count,
        padded_res=padded,
        ring_grid=grid,
        ring_slots=slots,
        top_ring=top,
        **parts,  # type: ignore[arg-type]
    )


def _gather_2d(steps: list[Step], buckets: list[Bucket2d], out_n: int) -> tuple[Tensor, Tensor]:
    """Where each output coefficient is read from the per-chunk table of (Re, Im) values.

    The table is [0; then per bucket: base block (kx, Re / Im, ky), row values (step, slot,
    Re / Im, ky), column values (step, Re / Im, kx, slot)]; a row or column holds Z[rho, ky]
    and Z[kx, rho], and the other half of each ring is their conjugate (a real map's spectrum
    is Hermitian): (index of Re, index of Im) and the sign of Im for each output coefficient.
    """
    where: dict[int, tuple[Bucket2d, int, int, int]] = {}  # step -> bucket, local, rows, cols
    offset = 1
    base_offset = base_top = 0
    for bucket in buckets:
        if bucket.has_base:
            base_top = steps[0].hi
            base_offset, offset = offset, offset + (base_top + 1) * 2 * (2 * base_top + 1)
        block = bucket.ring_steps * bucket.ring_slots * 2 * bucket.ring_width
        rows, cols = offset, offset + block
        offset += 2 * block
        first_ring = bucket.first_step + bucket.has_base
        for local, j in enumerate(range(first_ring, bucket.first_step + bucket.step_count)):
            where[j] = (bucket, local, rows, cols)
    step_of_ring = {rho: j for j, s in enumerate(steps) for rho in range(s.lo, s.hi + 1)}
    top = steps[-1].hi
    re_at, im_at, sign = [0] * out_n**2, [0] * out_n**2, [1.0] * out_n**2
    for ix in range(out_n):
        for iy in range(out_n):
            kx, ky = signed(ix, out_n), signed(iy, out_n)
            rho = max(abs(kx), abs(ky))
            if rho > top:
                continue
            pos = ix * out_n + iy
            j = step_of_ring[rho]
            if j == 0:  # Z[kx, ky] for kx >= 0, or the conjugate of Z[-kx, -ky]
                conj = kx < 0 or (kx == 0 and ky < 0)
                kx, ky = (-kx, -ky) if conj else (kx, ky)
                re_at[pos] = base_offset + kx * 2 * (2 * base_top + 1) + ky + base_top
                im_at[pos] = re_at[pos] + 2 * base_top + 1
                sign[pos] = -1.0 if conj else 1.0
                continue
            bucket, local, rows, cols = where[j]
            slot, top_b, width = rho - steps[j].lo, bucket.top_ring, bucket.ring_width
            slots = bucket.ring_slots
            if abs(kx) == rho:  # a row: Z[rho, ky], or the conjugate of Z[rho, -ky]
                conj = kx < 0
                other = -ky if conj else ky
                re = rows + (local * slots + slot) * 2 * width + other + top_b
                im = re + width
            else:  # a column: Z[kx, rho], or the conjugate of Z[-kx, rho]
                conj = ky < 0
                other = -kx if conj else kx
                re = cols + ((local * 2 * width + other + top_b) * slots + slot)
                im = cols + ((local * 2 * width + width + other + top_b) * slots + slot)
            re_at[pos], im_at[pos], sign[pos] = re, im, -1.0 if conj else 1.0
    index = torch.tensor(re_at + im_at, dtype=torch.long)
    return index, torch.tensor(sign, dtype=torch.float64)[:, None]


def _dft_rows(cs: Tensor) -> Tensor:
    """(2 K, 2 W) from cos / sin rows (K, 2, W) of frequencies k: applied to [u_c; u_s], the
    cos and sin products (along the other axis) of a real map at one frequency f, it gives
    (Re, Im) of the 2D DFT at (f, k) for each k, because e^(-i theta) = cos - i sin:
    Re = u_c . c_k - u_s . s_k and Im = -(u_s . c_k + u_c . s_k)."""
    c, s = cs[:, 0], cs[:, 1]
    return torch.cat([torch.cat([c, -s], 1), torch.cat([-s, -c], 1)])


# --------------------------------------------------------------------------------------------
# the batched 2D computation, on maps laid out (..., maps) last
#
# A bucket's resampled maps are y (R, P, P, maps): every product below is then one plain GEMM
# or one batched GEMM without copies, and the per-map norm is an innermost-axis broadcast.


_INPLACE: dict[Callable[..., Tensor], Callable[[Tensor], Tensor]] = {
    torch.relu: torch.relu_,
    F.relu: torch.relu_,
}


def _grouped_bmm(
    mat: Tensor, x: Tensor, rep: Tensor | None, out: Tensor | None = None, add: bool = False
) -> Tensor:
    """bmm(mat with each of its G matrices repeated T times, x (G T, b, c)) -> (G T, a, c).

    With ``rep`` (the repeated matrices, cached where small) one batched GEMM; otherwise one
    per group on a stride-0 expansion, so that large plans stay small in memory. ``out``
    receives the result (``add``: is accumulated into); without it, the result is new and
    differentiable.
    """
    if rep is not None:
        if add and out is not None:
            return out.baddbmm_(rep, x)
        return torch.bmm(rep, x) if out is None else torch.bmm(rep, x, out=out)
    groups, times = mat.shape[0], x.shape[0] // mat.shape[0]
    shape = (times, *mat.shape[1:])
    if out is None:
        return torch.cat(
            [torch.bmm(mat[g].expand(shape), x.split(times)[g]) for g in range(groups)]
        )
    for g, (o, xg) in enumerate(zip(out.split(times), x.split(times), strict=True)):
        if add:
            o.baddbmm_(mat[g].expand(shape), xg)
        else:
            torch.bmm(mat[g].expand(shape), xg, out=o)
    return out


def _transposed(mat: Tensor | None) -> Tensor | None:
    """The batch of matrices transposed (a view), or None."""
    return None if mat is None else mat.transpose(1, 2)


def _resampled(lead: Tensor, bucket: Bucket2d) -> tuple[Tensor, Tensor]:
    """D_r x = B_r Xc B_r^T for the bucket's resolutions, (steps, P, P, maps), from the leading
    (K, K, maps) real coefficients: one GEMM along the first axis (h = B_r Xc, (steps P, K,
    maps)), one batched GEMM along the second. Returns (D_r x, h)."""
    steps, padded, width = bucket.step_count, bucket.padded_res, bucket.coef_width
    maps = lead.shape[-1]
    syn = bucket.synthesis
    h = (syn.view(steps * padded, width) @ lead.reshape(width, width * maps)).view(
        steps * padded, width, maps
    )
    y = _grouped_bmm(syn, h, bucket.synthesis_repeated)
    return y.view(steps, padded, padded, maps), h


def _resampled_backward(g: Tensor, bucket: Bucket2d) -> Tensor:
    """The transpose of the second product of :func:`_resampled`: (steps, P, P, maps) -> d h."""
    steps, padded, maps = bucket.step_count, bucket.padded_res, g.shape[-1]
    return _grouped_bmm(
        bucket.synthesis.transpose(1, 2),
        g.view(steps * padded, padded, maps),
        _transposed(bucket.synthesis_repeated),
    )


def _extract(a: Tensor, bucket: Bucket2d) -> list[Tensor]:
    """(Re, Im) table parts from activated maps a (steps, pe, pe, maps): [base block], rows,
    columns (pe: the bucket's ``ring_grid``).

    Rows: u = w a (a cos and a sin row per new ring frequency, along the first axis), then the
    DFT of [u_c; u_s] along the second; columns: v = a w^T along the second axis, then the DFT
    along the first. Each part is (.., maps).
    """
    grid, maps = bucket.ring_grid, a.shape[-1]
    parts = []
    if bucket.base_rows is not None and bucket.base_dft is not None:
        h = bucket.base_rows @ a[0].reshape(grid, grid * maps)  # ((m0 + 1) 2, pe maps)
        h = h.view(-1, 2 * grid, maps)
        parts.append(torch.matmul(bucket.base_dft, h).reshape(-1, maps))  # (m0 + 1, 2 kb, maps)
    if bucket.ring_steps:
        assert bucket.ring_rows is not None and bucket.ring_dft is not None
        assert bucket.ring_cols is not None
        assert bucket.ring_cols_dft_cos is not None and bucket.ring_cols_dft_sin is not None
        rest = a[1:] if bucket.has_base else a
        rings, row_count = bucket.ring_rows.shape[:2]  # row_count: 2 per slot (cos, sin)
        u = torch.bmm(bucket.ring_rows, rest.reshape(rings, grid, grid * maps))
        rows = _grouped_bmm(bucket.ring_dft, u.view(-1, 2 * grid, maps), bucket.ring_dft_repeated)
        parts.append(rows.reshape(-1, maps))  # (rings slots, 2 (2 top + 1), maps)
        v = _grouped_bmm(
            bucket.ring_cols, rest.reshape(rings * grid, grid, maps), bucket.ring_cols_repeated
        )
        v = v.view(rings, grid, row_count * maps)
        half = row_count * maps // 2
        cols = torch.bmm(bucket.ring_cols_dft_cos, v[..., :half])
        parts.append(cols.baddbmm_(bucket.ring_cols_dft_sin, v[..., half:]).reshape(-1, maps))
    return parts


def _extract_backward(grads: list[Tensor], bucket: Bucket2d, maps: int, like: Tensor) -> Tensor:
    """Gradient of :func:`_extract` w.r.t. its maps, written into one buffer: the rows' and
    columns' contributions are accumulated in place instead of added as separate tensors."""
    grid = bucket.ring_grid
    g_a = like.new_empty(bucket.step_count, grid, grid, maps)
    grads = list(grads)
    if bucket.base_rows is not None and bucket.base_dft is not None:
        half, dft_rows = bucket.base_rows.shape[0] // 2, bucket.base_dft.shape[0]
        g_h = torch.matmul(bucket.base_dft.T, grads.pop(0).view(half, dft_rows, maps))
        torch.mm(
            bucket.base_rows.T,
            g_h.view(2 * half, grid * maps),
            out=g_a[0].view(grid, grid * maps),
        )
    if bucket.ring_steps:
        assert bucket.ring_rows is not None and bucket.ring_dft is not None
        assert bucket.ring_cols is not None
        assert bucket.ring_cols_dft_cos is not None and bucket.ring_cols_dft_sin is not None
        g_rows, g_cols = grads
        rings, row_count = bucket.ring_rows.shape[:2]
        rest = g_a[1:] if bucket.has_base else g_a
        dft_rows = bucket.ring_dft.shape[1]
        g_u = _grouped_bmm(
            bucket.ring_dft.transpose(1, 2),
            g_rows.view(-1, dft_rows, maps),
            _transposed(bucket.ring_dft_repeated),
        )
        torch.bmm(
            bucket.ring_rows.transpose(1, 2),
            g_u.view(rings, row_count, grid * maps),
            out=rest.view(rings, grid, grid * maps),
        )
        g_c = g_cols.view(rings, dft_rows, row_count * maps // 2)
        w = bucket.ring_cols.transpose(1, 2)  # [cos | sin]
        w_repeated = _transposed(bucket.ring_cols_repeated)
        for half, dft in ((0, bucket.ring_cols_dft_cos), (1, bucket.ring_cols_dft_sin)):
            # (rings pe, slots, maps)
            g_v = torch.bmm(dft.transpose(1, 2), g_c).view(rings * grid, row_count // 2, maps)
            cols = slice(half * row_count // 2, (half + 1) * row_count // 2)
            part = None if w_repeated is None else w_repeated[..., cols]
            _grouped_bmm(w[..., cols], g_v, part, out=rest.view(rings * grid, grid, maps), add=True)
    return g_a


def _steps_of(bucket: Bucket2d) -> slice:
    """The bucket's steps in the plan's per-step tensors (norm affines, norm weights)."""
    return slice(bucket.first_step, bucket.first_step + bucket.step_count)


def _core(
    coeffs: Tensor,
    scale: Tensor | None,
    offset: Tensor | None,
    bucket: Bucket2d,
    activation: Activation,
) -> tuple[Tensor, Tensor, Tensor]:
    """(h, z, a) of one bucket, from the (K, K, maps) coefficients and the norm affine of every
    step (steps, maps): y = D_r x for the bucket's resolutions (steps, P, P, maps) and h its
    first factor (see :func:`_resampled`), a = sigma(z) with z = scale * y + offset; for ReLU,
    z is overwritten by a (its backward needs only a)."""
    y, h = _resampled(_lead(coeffs, bucket.coef_width), bucket)
    if scale is not None and offset is not None:
        own = _steps_of(bucket)
        shape = (bucket.step_count, 1, 1, coeffs.shape[-1])
        y = torch.addcmul(offset[own].view(shape), y, scale[own].view(shape))
    inplace = _INPLACE.get(activation)
    if inplace is None:
        return h, y, activation(y)
    y = inplace(y)
    return h, y, y


def _table(
    coeffs: Tensor,
    scale: Tensor | None,
    offset: Tensor | None,
    plan: Plan2d,
    activation: Activation,
    saved: list[Tensor | None],
) -> Tensor:
    """Real coefficients (K, K, maps) and per-resolution norm affine (steps, maps) -> the
    (Re, Im) table (L, maps) of every bucket: a = sigma(scale * D_r x + offset), then its new
    rings. Appends to `saved` what the backward needs, per bucket: the first factor h of D_r x
    (with a norm) and sigma's input (for ReLU, its output)."""
    maps = coeffs.shape[-1]
    table = coeffs.new_empty(plan.table_rows, maps)
    table[0] = 0.0
    at = 1
    for bucket in plan.buckets:
        h, z, a = _core(coeffs, scale, offset, bucket, activation)
        saved += [h if scale is not None else None, z]
        for part in _extract(a, bucket):
            table[at : at + part.shape[0]] = part
            at += part.shape[0]
    return table


def _table_backward(
    g_table: Tensor,
    scale: Tensor | None,
    plan: Plan2d,
    activation: Activation,
    saved: list[Tensor | None],
) -> tuple[Tensor, Tensor | None, Tensor | None]:
    """The transpose of :func:`_table`: (L, maps) -> d coeffs (K, K, maps), d scale and
    d offset (steps, maps). Works in place on one buffer per bucket.

    The norm's gradients are taken after the first backward product, on (steps P, K, maps)
    instead of the maps: d offset sums the constant column (B_r's first column is 1 on the
    grid, and d sigma is 0 on the padding) and d scale = sum(g * y) = sum(g_h * h)."""
    maps, width = g_table.shape[-1], plan.coef_width
    g_coeffs = g_table.new_zeros(width, width, maps)
    g_scale = g_offset = None
    if scale is not None:
        g_scale, g_offset = torch.empty_like(scale), torch.empty_like(scale)
    at = 1
    for i, bucket in enumerate(plan.buckets):
        h, z = saved[2 * i], saved[2 * i + 1]
        assert z is not None
        grads = []
        for rows in bucket.part_rows:
            grads.append(g_table[at : at + rows])
            at += rows
        g = _extract_backward(grads, bucket, maps, z)  # d loss / d a, (steps, P, P, maps)
        if activation in _INPLACE:  # ReLU: z is its output, > 0 exactly where its input is
            g = torch.ops.aten.threshold_backward(g, z, 0)  # one fused pass (masked_fill_: 4)
        else:
            with torch.enable_grad():
                z_leaf = z.detach().requires_grad_()
                (g,) = torch.autograd.grad(activation(z_leaf), z_leaf, g)
        steps, padded, bucket_width = bucket.step_count, bucket.padded_res, bucket.coef_width
        g_h = _resampled_backward(g, bucket).view(steps, padded, bucket_width, maps)
        if scale is not None and g_scale is not None and g_offset is not None and h is not None:
            own = _steps_of(bucket)
            torch.sum(g_h[:, :, 0], 1, out=g_offset[own])
            torch.sum((g_h * h.view_as(g_h)).view(steps, -1, maps), 1, out=g_scale[own])
            g_h.mul_(scale[own].view(steps, 1, 1, maps))
        syn = bucket.synthesis.view(steps * padded, bucket_width)
        g_lead = (syn.T @ g_h.view(steps * padded, bucket_width * maps)).view(
            bucket_width, bucket_width, maps
        )
        g_coeffs[:bucket_width, :bucket_width] += g_lead
    return g_coeffs, g_scale, g_offset


class _Layer2d(torch.autograd.Function):
    """The whole (unpooled) 2D layer, chunk by chunk, with a hand-written backward.

    (N N, maps) spectra, norm weight and bias (R, C) -> (M M, maps) spectra. Autograd on
    the same ops would keep more full-size tensors, add the rows' and columns' gradients as
    separate tensors, spend extra passes in ``addcmul``'s generic backward and concatenate
    the chunks' outputs and gradients; here each chunk writes straight into the output (and
    into the input's gradient), the backward works in place on one buffer per bucket, and
    only sigma's input (for ReLU, its output) and the first factor of D_r x are kept.
    Differentiable once (no double backward).
    """

    @staticmethod
    def forward(  # type: ignore[override]
        ctx: torch.autograd.function.FunctionCtx,
        spectrum: Tensor,
        weight: Tensor | None,
        bias: Tensor | None,
        plan: Plan2d,
        activation: Activation,
        eps: float,
        size: int,
        keep: bool,
    ) -> Tensor:
        out = spectrum.new_empty(plan.out_n**2, spectrum.shape[1])
        chunks = []
        for i in range(0, spectrum.shape[1], size):
            read = real_coefficients(spectrum[:, i : i + size], plan.coef_index)
            coeffs = _widened(read, plan)
            scale = offset = None
            if weight is not None and bias is not None:
                var, mean = _moments(coeffs, plan)
                scale, offset = norm_affine(var, mean, weight, bias, eps)
            saved: list[Tensor | None] = []
            table = _table(coeffs, scale, offset, plan, activation, saved)
            re, im = table.index_select(0, plan.gather_index).view(2, -1, coeffs.shape[-1])
            dst = torch.view_as_real(out[:, i : i + size])
            dst[..., 0].copy_(re)
            torch.mul(im, plan.gather_sign, out=dst[..., 1])
            if keep:  # nothing is kept for inference, so its chunks reuse the same memory
                chunks.append(((coeffs, var) if weight is not None else None, scale, saved))
        ctx.plan, ctx.activation, ctx.eps, ctx.size = plan, activation, eps, size
        ctx.chunks = chunks
        ctx.save_for_backward(weight, bias)
        return out

    @staticmethod
    @once_differentiable
    def backward(ctx: torch.autograd.function.FunctionCtx, g_out: Tensor) -> tuple:  # type: ignore[override]
        weight, bias = ctx.saved_tensors
        plan: Plan2d = ctx.plan
        n, size = plan.n, ctx.size
        g_spectrum = None
        if ctx.needs_input_grad[0]:
            # the read modes are all overwritten chunk by chunk: zero only the others
            g_spectrum = g_out.new_empty(n * n, g_out.shape[1])
            g_spectrum.index_fill_(0, plan.coef_unread, 0)
        g_weight = g_bias = None
        if weight is not None:
            g_weight, g_bias = torch.zeros_like(weight), torch.zeros_like(bias)
        for c, (stats, scale, saved) in enumerate(ctx.chunks):
            i = c * size
            g = torch.view_as_real(g_out[:, i : i + size])  # (M * M, maps, 2)
            maps = g.shape[1]
            g_table = g.new_zeros(plan.table_rows, maps)
            g_im = g[..., 1] * plan.gather_sign
            g_table.index_add_(0, plan.gather_index, torch.cat([g[..., 0], g_im]))
            g_coeffs, g_scale, g_offset = _table_backward(
                g_table, scale, plan, ctx.activation, saved
            )
            if stats is not None and g_scale is not None and g_offset is not None:
                coeffs, var = stats
                d_c, d_w, d_b = _norm_backward(
                    coeffs, var, scale, weight, g_scale, g_offset, plan, ctx.eps
                )
                g_coeffs += d_c
                g_weight += d_w
                g_bias += d_b
            if g_spectrum is not None:
                # the widened block's zeros above the input's modes have no source
                g_read = g_coeffs[: plan.read_width, : plan.read_width]
                real_coefficients_backward(g_read, plan.coef_index, g_spectrum[:, i : i + size])
        return g_spectrum, g_weight, g_bias, None, None, None, None, None


def _norm_backward(
    coeffs: Tensor,
    var: Tensor,
    scale: Tensor,
    weight: Tensor,
    g_scale: Tensor,
    g_offset: Tensor,
    plan: Plan2d,
    eps: float,
) -> tuple[Tensor, Tensor, Tensor]:
    """The transpose of ``norm_affine(*_moments(coeffs))``: d coeffs (K, K, maps), d weight and
    d bias (steps, C), from d scale and d offset (steps, maps).

    With inv = (var + eps)^-1/2, scale = w inv and offset = b - mean scale: d b = sum g_o,
    the whole gradient on scale is g_s - g_o mean, d w = sum of it times inv, d var = -1/2 of
    it times scale / (var + eps), d mean = -sum_r g_o scale, and var = variance_weights
    coeffs^2.
    """
    steps, channels = weight.shape
    width, maps = plan.coef_width, coeffs.shape[-1]
    assert plan.variance_weights is not None
    shape = (steps, -1, channels)
    mean = coeffs[0, 0].view(1, -1, channels)
    g_o = g_offset.view(shape)
    g_s = (g_scale.view(shape) - g_o * mean).view(steps, maps)
    d_b = g_o.sum(1)
    d_w = (g_s * torch.rsqrt(var + eps)).view(shape).sum(1)
    d_var = -0.5 * g_s * scale / (var + eps)
    d_c = (plan.variance_weights.T @ d_var).view(width, width, maps).mul_(coeffs).mul_(2.0)
    d_c[0, 0] -= (g_offset * scale).sum(0)
    return d_c, d_w, d_b


def _moments(coeffs: Tensor, plan: Plan2d) -> tuple[Tensor, Tensor]:
    """(variance (steps, maps), mean (maps,)) of each D_r x on its r grid, by Parseval."""
    width, maps = plan.coef_width, coeffs.shape[-1]
    assert plan.variance_weights is not None
    return plan.variance_weights @ coeffs.square().view(width * width, maps), coeffs[0, 0]


def _widened(coeffs: Tensor, plan: Plan2d) -> Tensor:
    """The (K, K, maps) block of the plan from the coefficients read off the input, zero
    above the input's own modes (the input up-sampled to the next grid point)."""
    read, width = coeffs.shape[0], plan.coef_width
    if read == width:
        return coeffs
    return F.pad(coeffs, (0, 0, 0, width - read, 0, width - read))


def _lead(coeffs: Tensor, width: int) -> Tensor:
    """The leading (width, width) block of the (K, K, maps) coefficients: a bucket's grids
    keep no higher frequency."""
    return coeffs if coeffs.shape[0] == width else coeffs[:width, :width]


def _pooled(a: Tensor, bucket: Bucket2d, window: int) -> Tensor:
    """Anti-alias each r grid to its pooled grid's modes, then max-pool (window and stride p,
    partial windows as ceil_mode): (steps, P, P, maps) -> (steps, pe, pe, maps). Padding is
    -inf so it never wins; windows wholly in the padding are set back to 0."""
    assert bucket.lowpass is not None
    assert bucket.outside_grid is not None and bucket.inside_pooled_grid is not None
    steps, padded, maps = bucket.step_count, bucket.padded_res, a.shape[-1]
    a = torch.bmm(bucket.lowpass, a.reshape(steps, padded, padded * maps))  # the first axis
    a = _grouped_bmm(
        bucket.lowpass, a.view(steps * padded, padded, maps), bucket.lowpass_repeated
    )  # the second
    a = a.view(steps, padded, padded, maps)
    a = a.permute(0, 3, 1, 2).masked_fill(bucket.outside_grid, float("-inf"))
    a = F.max_pool2d(a, window, window, ceil_mode=True)  # (steps, maps, pe, pe)
    a = a.masked_fill(~bucket.inside_pooled_grid, 0.0)
    return a.permute(0, 2, 3, 1).contiguous()  # (steps, pe, pe, maps)


# --------------------------------------------------------------------------------------------
# the forward pass


def forward_2d(
    spectrum: Tensor,
    plan: Plan2d,
    norm: tuple[Tensor, Tensor, float] | None,
    activation: Activation,
    pool: int,
    size: int,
) -> Tensor:
    """The 2D layer on (N N, maps) spectra, `size` maps per chunk -> (M M, maps) spectra.

    ``norm`` is the (weight, bias) of the plan's resolutions, each (steps, C), and eps.
    Without pooling, :class:`_Layer2d` with its hand-written backward; with it, plain
    autograd.
    """
    if pool == 1:
        weight, bias, eps = norm if norm is not None else (None, None, 0.0)
        keep = torch.is_grad_enabled() and (
            spectrum.requires_grad or (weight is not None and weight.requires_grad)
        )
        return _Layer2d.apply(spectrum, weight, bias, plan, activation, eps, size, keep)
    outs = [_pooled_chunk(s, plan, norm, activation, pool) for s in spectrum.split(size, 1)]
    return outs[0] if len(outs) == 1 else torch.cat(outs, 1)


def _pooled_chunk(
    spectrum: Tensor,
    plan: Plan2d,
    norm: tuple[Tensor, Tensor, float] | None,
    activation: Activation,
    pool: int,
) -> Tensor:
    """The pooled layer on a chunk of maps, with autograd: (N N, maps) -> (M M, maps)."""
    maps = spectrum.shape[1]
    coeffs = _widened(ReadCoefficients.apply(spectrum, plan.coef_index), plan)
    scale = offset = None
    if norm is not None:
        scale, offset = norm_affine(*_moments(coeffs, plan), *norm)
    parts = [coeffs.new_zeros(1, maps)]
    for bucket in plan.buckets:
        _, _, a = _core(coeffs, scale, offset, bucket, activation)
        parts += _extract(_pooled(a, bucket, pool), bucket)
    table = torch.cat(parts)  # (L, maps)
    re, im = table.index_select(0, plan.gather_index).view(2, -1, maps)  # (M M, maps) each
    return torch.complex(re, im * plan.gather_sign)
