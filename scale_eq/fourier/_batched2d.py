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

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.autograd.function import once_differentiable

from scale_datasets.ops.fourier import kept_modes

from ._batched import (
    Activation,
    Bucket,
    Plan,
    cast,
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


# --------------------------------------------------------------------------------------------
# plans: the matrices and index maps of buckets (shared by input sizes) and of an input size


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
    buckets: list[Bucket],
    pool: int,
    norm: bool,
    dtype: torch.dtype,
    device: torch.device,
) -> Plan:
    """The input-size dependent part of the batched 2D forward, around shared buckets."""
    width = 2 * kept_modes(steps[-1].res) + 1
    shared: dict[str, Tensor] = {}
    # an input off the grid is read up to its own modes; the next grid point's block is wider
    # and sees zeros above them (the input up-sampled, see _grids.schedule)
    shared["coef_idx"] = coefficient_reader(n, kept_modes(n, steps[-1].res))
    unread = torch.ones(n * n, dtype=torch.bool)
    unread[shared["coef_idx"]] = False
    shared["coef_unread"] = unread.nonzero().flatten()  # zeroed in _Layer2d's input gradient
    if norm:
        shared["var_w"] = variance_weights(steps, width, 2)  # (R, K^2)
    out_n = -(-n // pool)
    shared["gather_idx"], shared["gather_sign"] = _gather_2d(steps, buckets, out_n)
    return Plan(n, out_n, steps, width, buckets, cast(shared, dtype, device))


def bucket_2d(steps: list[Step], first: int, count: int, pool: int) -> Bucket:
    own = steps[first : first + count]
    P = own[-1].res
    modes = 2 * kept_modes(P) + 1
    pe = -(-P // pool)
    rings = own[1:] if first == 0 else own
    slots = max((s.hi - s.lo + 1 for s in rings), default=0)
    top = own[-1].hi
    b = Bucket(first, count, P, modes, pe, slots, top)
    t = b.tensors
    # (R, P, K): B_r on each grid, zero rows below P; along the first axis as one (R P, K)
    # GEMM, along the second as one product per first-axis index (see _grouped_bmm)
    t["syn"] = synthesis_stack(own, modes, P)
    if pool > 1:
        lp = torch.zeros(count, P, P, dtype=torch.float64)
        invalid = torch.ones(count, 1, P, P, dtype=torch.bool)
        pooled = torch.zeros(count, 1, pe, pe, dtype=torch.bool)
        for i, s in enumerate(own):
            lp[i, : s.res, : s.res] = lowpass_matrix(s.res, s.grid)
            invalid[i, :, : s.res, : s.res] = False
            pooled[i, :, : s.grid, : s.grid] = True
        t["lowpass"], t["invalid"], t["pooled_valid"] = lp, invalid, pooled
    if b.has_base:  # the base grid's whole block of kept modes: one small 2D DFT
        g0, m0 = own[0].grid, own[0].hi
        t["base_rows"] = cos_sin(g0, torch.arange(m0 + 1), pe).reshape(-1, pe)  # (kx, cos / sin)
        t["base_dft"] = _dft_rows(cos_sin(g0, torch.arange(-m0, m0 + 1), pe))  # (2 kb, 2 pe)
    if rings:
        kt = 2 * top + 1
        w = torch.zeros(len(rings), slots, 2, pe, dtype=torch.float64)  # (ring, slot, cos / sin)
        dft = torch.zeros(len(rings), 2 * kt, 2 * pe, dtype=torch.float64)
        for j, s in enumerate(rings):
            w[j, : s.hi - s.lo + 1] = cos_sin(s.grid, torch.arange(s.lo, s.hi + 1), pe)
            dft[j] = _dft_rows(cos_sin(s.grid, torch.arange(-top, top + 1), pe))
        # rows: u = w a along the first axis, then the DFT along the second, per (ring, slot)
        t["ring_rows"] = w.reshape(len(rings), 2 * slots, pe)  # rows (slot, cos / sin)
        t["ring_dft"] = dft  # (rings, 2 kt, 2 pe), the same for each slot
        # columns: v = a w^T along the second axis (rows (cos / sin, slot), per first-axis
        # index), then the DFT along the first: one product for v's cos half, one for its sin
        t["ring_cols"] = w.transpose(1, 2).reshape(len(rings), 2 * slots, pe)
        t["ring_dft_cols_c"] = dft[..., :pe].contiguous()  # (rings, 2 kt, pe)
        t["ring_dft_cols_s"] = dft[..., pe:].contiguous()
    return b


def _gather_2d(steps: list[Step], buckets: list[Bucket], out_n: int) -> tuple[Tensor, Tensor]:
    """Where each output coefficient is read from the per-chunk table of (Re, Im) values.

    The table is [0; then per bucket: base block (kx, Re / Im, ky), row values (ring, slot,
    Re / Im, ky), column values (ring, Re / Im, kx, slot)]; a row or column holds Z[rho, ky]
    and Z[kx, rho], and the other half of each ring is their conjugate (a real map's spectrum
    is Hermitian): (index of Re, index of Im) and the sign of Im for each output coefficient.
    """
    where: dict[int, tuple[Bucket, int, int, int]] = {}  # step -> bucket, local, rows, cols
    offset = 1
    base_off = m0 = 0
    for b in buckets:
        if b.has_base:
            m0 = steps[0].hi
            base_off, offset = offset, offset + (m0 + 1) * 2 * (2 * m0 + 1)
        block = b.rings * b.slots * 2 * (2 * b.top + 1)
        rows, cols = offset, offset + block
        offset += 2 * block
        for local, j in enumerate(range(b.first + b.has_base, b.first + b.count)):
            where[j] = (b, local, rows, cols)
    which = {rho: j for j, s in enumerate(steps) for rho in range(s.lo, s.hi + 1)}
    top = steps[-1].hi
    re_at, im_at, sign = [0] * out_n**2, [0] * out_n**2, [1.0] * out_n**2
    for ix in range(out_n):
        for iy in range(out_n):
            kx, ky = signed(ix, out_n), signed(iy, out_n)
            rho = max(abs(kx), abs(ky))
            if rho > top:
                continue
            pos = ix * out_n + iy
            j = which[rho]
            if j == 0:  # Z[kx, ky] for kx >= 0, or the conjugate of Z[-kx, -ky]
                conj = kx < 0 or (kx == 0 and ky < 0)
                kx, ky = (-kx, -ky) if conj else (kx, ky)
                re_at[pos] = base_off + kx * 2 * (2 * m0 + 1) + ky + m0
                im_at[pos] = re_at[pos] + 2 * m0 + 1
                sign[pos] = -1.0 if conj else 1.0
                continue
            b, local, rows, cols = where[j]
            slot, t, kt = rho - steps[j].lo, b.top, 2 * b.top + 1
            if abs(kx) == rho:  # a row: Z[rho, ky], or the conjugate of Z[rho, -ky]
                conj = kx < 0
                other = -ky if conj else ky
                re = rows + (local * b.slots + slot) * 2 * kt + other + t
                im = re + kt
            else:  # a column: Z[kx, rho], or the conjugate of Z[-kx, rho]
                conj = ky < 0
                other = -kx if conj else kx
                re = cols + ((local * 2 * kt + other + t) * b.slots + slot)
                im = cols + ((local * 2 * kt + kt + other + t) * b.slots + slot)
            re_at[pos], im_at[pos], sign[pos] = re, im, -1.0 if conj else 1.0
    idx = torch.tensor(re_at + im_at, dtype=torch.long)
    return idx, torch.tensor(sign, dtype=torch.float64)[:, None]


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


def _t(rep: Tensor | None) -> Tensor | None:
    return None if rep is None else rep.transpose(1, 2)


def _resampled(lead: Tensor, b: Bucket) -> tuple[Tensor, Tensor]:
    """D_r x = B_r Xc B_r^T for the bucket's resolutions, (R, P, P, maps), from the leading
    (K, K, maps) real coefficients: one GEMM along the first axis (h = B_r Xc, (R P, K, maps)),
    one batched GEMM along the second. Returns (D_r x, h)."""
    t = b.tensors
    R, P, K, m = b.count, b.res, b.modes, lead.shape[-1]
    h = (t["syn"].view(R * P, K) @ lead.reshape(K, K * m)).view(R * P, K, m)
    return _grouped_bmm(t["syn"], h, t.get("syn_rep")).view(R, P, P, m), h


def _resampled_backward(g: Tensor, b: Bucket) -> Tensor:
    """The transpose of the second product of :func:`_resampled`: (R, P, P, maps) -> d h."""
    R, P, m, t = b.count, b.res, g.shape[-1], b.tensors
    return _grouped_bmm(t["syn"].transpose(1, 2), g.view(R * P, P, m), _t(t.get("syn_rep")))


def _extract(a: Tensor, b: Bucket) -> list[Tensor]:
    """(Re, Im) table parts from activated maps a (R, pe, pe, maps): [base block], rows, cols.

    Rows: u = w a (a cos and a sin row per new ring frequency, along the first axis), then the
    DFT of [u_c; u_s] along the second; columns: v = a w^T along the second axis, then the DFT
    along the first. Each part is (.., maps).
    """
    t, pe, m = b.tensors, b.ext, a.shape[-1]
    parts = []
    if b.has_base:
        h = t["base_rows"] @ a[0].reshape(pe, pe * m)  # ((m0 + 1) 2, pe maps)
        h = h.view(-1, 2 * pe, m)
        parts.append(torch.matmul(t["base_dft"], h).reshape(-1, m))  # (m0 + 1, 2 kb, maps)
    if b.rings:
        rest = a[1:] if b.has_base else a
        n, j2 = t["ring_rows"].shape[:2]
        u = torch.bmm(t["ring_rows"], rest.reshape(n, pe, pe * m))  # (n, J 2, pe maps)
        rows = _grouped_bmm(t["ring_dft"], u.view(-1, 2 * pe, m), t.get("ring_dft_rep"))
        parts.append(rows.reshape(-1, m))  # (n J, 2 kt, maps)
        v = _grouped_bmm(t["ring_cols"], rest.reshape(n * pe, pe, m), t.get("ring_cols_rep"))
        v = v.view(n, pe, j2 * m)
        half = j2 * m // 2
        cols = torch.bmm(t["ring_dft_cols_c"], v[..., :half])
        parts.append(cols.baddbmm_(t["ring_dft_cols_s"], v[..., half:]).reshape(-1, m))
    return parts


def _extract_backward(grads: list[Tensor], b: Bucket, m: int, like: Tensor) -> Tensor:
    """Gradient of :func:`_extract` w.r.t. its maps, written into one buffer: the rows' and
    columns' contributions are accumulated in place instead of added as separate tensors."""
    t, pe = b.tensors, b.ext
    g_a = like.new_empty(b.count, pe, pe, m)
    grads = list(grads)
    if b.has_base:
        half, k2 = t["base_rows"].shape[0] // 2, t["base_dft"].shape[0]
        g_h = torch.matmul(t["base_dft"].T, grads.pop(0).view(half, k2, m))  # (., 2 pe, maps)
        torch.mm(t["base_rows"].T, g_h.view(2 * half, pe * m), out=g_a[0].view(pe, pe * m))
    if b.rings:
        g_rows, g_cols = grads
        n, j2 = t["ring_rows"].shape[:2]
        rest = g_a[1:] if b.has_base else g_a
        k2 = t["ring_dft"].shape[1]
        g_u = _grouped_bmm(
            t["ring_dft"].transpose(1, 2), g_rows.view(-1, k2, m), _t(t.get("ring_dft_rep"))
        )
        torch.bmm(
            t["ring_rows"].transpose(1, 2), g_u.view(n, j2, pe * m), out=rest.view(n, pe, pe * m)
        )
        g_c = g_cols.view(n, k2, j2 * m // 2)
        w, w_rep = t["ring_cols"].transpose(1, 2), _t(t.get("ring_cols_rep"))  # [cos | sin]
        for half, dft in ((0, t["ring_dft_cols_c"]), (1, t["ring_dft_cols_s"])):
            g_v = torch.bmm(dft.transpose(1, 2), g_c).view(n * pe, j2 // 2, m)  # (n pe, J, maps)
            cols = slice(half * j2 // 2, (half + 1) * j2 // 2)
            part = None if w_rep is None else w_rep[..., cols]
            _grouped_bmm(w[..., cols], g_v, part, out=rest.view(n * pe, pe, m), add=True)
    return g_a


def _core(
    lead: Tensor, scale: Tensor | None, offset: Tensor | None, b: Bucket, activation: Activation
) -> tuple[Tensor, Tensor, Tensor]:
    """(h, z, a): y = D_r x for the bucket's resolutions (R, P, P, maps) and h its first
    factor (see :func:`_resampled`), a = sigma(z) with z = scale * y + offset; for ReLU, z is
    overwritten by a (its backward needs only a)."""
    y, h = _resampled(lead, b)
    if scale is not None and offset is not None:
        shape = (b.count, 1, 1, lead.shape[-1])
        y = torch.addcmul(offset.view(shape), y, scale.view(shape))
    inplace = _INPLACE.get(activation)
    if inplace is None:
        return h, y, activation(y)
    y = inplace(y)
    return h, y, y


def _table(
    coeffs: Tensor,
    scale: Tensor | None,
    offset: Tensor | None,
    plan: Plan,
    activation: Activation,
    saved: list[Tensor | None],
) -> Tensor:
    """Real coefficients (K, K, maps) and per-resolution norm affine (R, maps) -> the (Re, Im)
    table (L, maps) of every bucket: a = sigma(scale * D_r x + offset), then its new rings.
    Appends to `saved` what the backward needs, per bucket: the first factor h of D_r x (with
    a norm) and sigma's input (for ReLU, its output)."""
    m = coeffs.shape[-1]
    table = coeffs.new_empty(plan.table_rows, m)
    table[0] = 0.0
    at = 1
    for b in plan.buckets:
        sl = slice(b.first, b.first + b.count)
        bs = None if scale is None else scale[sl]
        bo = None if offset is None else offset[sl]
        h, z, a = _core(_lead(coeffs, b.modes), bs, bo, b, activation)
        saved += [h if scale is not None else None, z]
        for part in _extract(a, b):
            table[at : at + part.shape[0]] = part
            at += part.shape[0]
    return table


def _table_backward(
    g_table: Tensor,
    scale: Tensor | None,
    plan: Plan,
    activation: Activation,
    saved: list[Tensor | None],
) -> tuple[Tensor, Tensor | None, Tensor | None]:
    """The transpose of :func:`_table`: (L, maps) -> d coeffs (K, K, maps), d scale and
    d offset (R, maps). Works in place on one buffer per bucket.

    The norm's gradients are taken after the first backward product, on (R P, K, maps)
    instead of the maps: d offset sums the constant column (B_r's first column is 1 on the
    grid, and d sigma is 0 on the padding) and d scale = sum(g * y) = sum(g_h * h)."""
    m, K = g_table.shape[-1], plan.modes
    g_coeffs = g_table.new_zeros(K, K, m)
    g_scale = g_offset = None
    if scale is not None:
        g_scale, g_offset = torch.empty_like(scale), torch.empty_like(scale)
    at = 1
    for i, b in enumerate(plan.buckets):
        h, z = saved[2 * i], saved[2 * i + 1]
        assert z is not None
        grads = []
        for rows in b.part_rows:
            grads.append(g_table[at : at + rows])
            at += rows
        g = _extract_backward(grads, b, m, z)  # d loss / d a, (R, P, P, maps)
        if activation in _INPLACE:  # ReLU: z is its output, > 0 exactly where its input is
            g = torch.ops.aten.threshold_backward(g, z, 0)  # one fused pass (masked_fill_: 4)
        else:
            with torch.enable_grad():
                zz = z.detach().requires_grad_()
                (g,) = torch.autograd.grad(activation(zz), zz, g)
        g_h = _resampled_backward(g, b).view(b.count, b.res, b.modes, m)
        if scale is not None and g_scale is not None and g_offset is not None and h is not None:
            sl = slice(b.first, b.first + b.count)
            torch.sum(g_h[:, :, 0], 1, out=g_offset[sl])
            torch.sum((g_h * h.view_as(g_h)).view(b.count, -1, m), 1, out=g_scale[sl])
            g_h.mul_(scale[sl].view(b.count, 1, 1, m))
        R, P, Kb = b.count, b.res, b.modes
        g_lead = (b.tensors["syn"].view(R * P, Kb).T @ g_h.view(R * P, Kb * m)).view(Kb, Kb, m)
        g_coeffs[:Kb, :Kb] += g_lead
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
        plan: Plan,
        activation: Activation,
        eps: float,
        size: int,
        keep: bool,
    ) -> Tensor:
        t = plan.tensors
        out = spectrum.new_empty(plan.out_n**2, spectrum.shape[1])
        chunks = []
        for i in range(0, spectrum.shape[1], size):
            coeffs = _widened(real_coefficients(spectrum[:, i : i + size], t["coef_idx"]), plan)
            scale = offset = None
            if weight is not None and bias is not None:
                var, mean = _moments(coeffs, plan)
                scale, offset = norm_affine(var, mean, weight, bias, eps)
            saved: list[Tensor | None] = []
            table = _table(coeffs, scale, offset, plan, activation, saved)
            re, im = table.index_select(0, t["gather_idx"]).view(2, -1, coeffs.shape[-1])
            dst = torch.view_as_real(out[:, i : i + size])
            dst[..., 0].copy_(re)
            torch.mul(im, t["gather_sign"], out=dst[..., 1])
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
        plan: Plan = ctx.plan
        t, n, size = plan.tensors, plan.n, ctx.size
        g_spectrum = None
        if ctx.needs_input_grad[0]:
            # the read modes are all overwritten chunk by chunk: zero only the others
            g_spectrum = g_out.new_empty(n * n, g_out.shape[1])
            g_spectrum.index_fill_(0, t["coef_unread"], 0)
        g_weight = g_bias = None
        if weight is not None:
            g_weight, g_bias = torch.zeros_like(weight), torch.zeros_like(bias)
        idx = t["gather_idx"]
        for c, (stats, scale, saved) in enumerate(ctx.chunks):
            i = c * size
            g = torch.view_as_real(g_out[:, i : i + size])  # (M * M, maps, 2)
            m = g.shape[1]
            g_table = g.new_zeros(plan.table_rows, m)
            g_im = g[..., 1] * t["gather_sign"]
            g_table.index_add_(0, idx, torch.cat([g[..., 0], g_im]))
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
                read = _read_width(plan)  # the widened block's extra zeros have no source
                g_read = g_coeffs[:read, :read]
                real_coefficients_backward(g_read, t["coef_idx"], g_spectrum[:, i : i + size])
        return g_spectrum, g_weight, g_bias, None, None, None, None, None


def _norm_backward(
    coeffs: Tensor,
    var: Tensor,
    scale: Tensor,
    weight: Tensor,
    g_scale: Tensor,
    g_offset: Tensor,
    plan: Plan,
    eps: float,
) -> tuple[Tensor, Tensor, Tensor]:
    """The transpose of ``norm_affine(*_moments(coeffs))``: d coeffs (K, K, maps), d weight and
    d bias (R, C), from d scale and d offset (R, maps).

    With inv = (var + eps)^-1/2, scale = w inv and offset = b - mean scale: d b = sum g_o,
    the whole gradient on scale is g_s - g_o mean, d w = sum of it times inv, d var = -1/2 of
    it times scale / (var + eps), d mean = -sum_r g_o scale, and var = var_w coeffs^2.
    """
    R, C = weight.shape
    K, m = plan.modes, coeffs.shape[-1]
    shape = (R, -1, C)
    mean = coeffs[0, 0].view(1, -1, C)
    g_o = g_offset.view(shape)
    g_s = (g_scale.view(shape) - g_o * mean).view(R, m)
    d_b = g_o.sum(1)
    d_w = (g_s * torch.rsqrt(var + eps)).view(shape).sum(1)
    d_var = -0.5 * g_s * scale / (var + eps)
    d_c = (plan.tensors["var_w"].T @ d_var).view(K, K, m).mul_(coeffs).mul_(2.0)
    d_c[0, 0] -= (g_offset * scale).sum(0)
    return d_c, d_w, d_b


def _moments(coeffs: Tensor, plan: Plan) -> tuple[Tensor, Tensor]:
    """(variance (R, maps), mean (maps,)) of each D_r x on its r grid, by Parseval."""
    K, m = plan.modes, coeffs.shape[-1]
    return plan.tensors["var_w"] @ coeffs.square().view(K * K, m), coeffs[0, 0]


def _read_width(plan: Plan) -> int:
    """Width of the coefficient block read off the input: plan.modes, or less for an input
    off the grid (its own modes only)."""
    return math.isqrt(plan.tensors["coef_idx"].numel())


def _widened(coeffs: Tensor, plan: Plan) -> Tensor:
    """The (K, K, maps) block of the plan from the coefficients read off the input, zero
    above the input's own modes (the input up-sampled to the next grid point)."""
    read, width = coeffs.shape[0], plan.modes
    if read == width:
        return coeffs
    return F.pad(coeffs, (0, 0, 0, width - read, 0, width - read))


def _lead(coeffs: Tensor, modes: int) -> Tensor:
    """The leading (modes, modes) block of the (K, K, maps) coefficients: a bucket's grids keep
    no higher frequency."""
    return coeffs if coeffs.shape[0] == modes else coeffs[:modes, :modes]


def _pooled(a: Tensor, b: Bucket, p: int) -> Tensor:
    """Anti-alias each r grid to its pooled grid's modes, then max-pool (window and stride p,
    partial windows as ceil_mode): (R, P, P, maps) -> (R, pe, pe, maps). Padding is -inf so it
    never wins; windows wholly in the padding are set back to 0."""
    t = b.tensors
    R, P, m = b.count, b.res, a.shape[-1]
    a = torch.bmm(t["lowpass"], a.reshape(R, P, P * m))  # along the first axis
    a = _grouped_bmm(t["lowpass"], a.view(R * P, P, m), t.get("lowpass_rep"))  # the second
    a = a.view(R, P, P, m)
    a = a.permute(0, 3, 1, 2).masked_fill(t["invalid"], float("-inf"))  # (R, maps, P, P)
    a = F.max_pool2d(a, p, p, ceil_mode=True)  # (R, maps, pe, pe)
    a = a.masked_fill(~t["pooled_valid"], 0.0)
    return a.permute(0, 2, 3, 1).contiguous()  # (R, pe, pe, maps)


# --------------------------------------------------------------------------------------------
# the forward pass


def forward_2d(
    spectrum: Tensor,
    plan: Plan,
    norm: tuple[Tensor, Tensor, float] | None,
    activation: Activation,
    pool: int,
    size: int,
) -> Tensor:
    """The 2D layer on (N N, maps) spectra, `size` maps per chunk -> (M M, maps) spectra.

    ``norm`` is the (weight, bias) of the plan's resolutions, each (R, C), and eps. Without
    pooling, :class:`_Layer2d` with its hand-written backward; with it, plain autograd.
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
    plan: Plan,
    norm: tuple[Tensor, Tensor, float] | None,
    activation: Activation,
    pool: int,
) -> Tensor:
    """The pooled layer on a chunk of maps, with autograd: (N N, maps) -> (M M, maps)."""
    t = plan.tensors
    m = spectrum.shape[1]
    coeffs = _widened(ReadCoefficients.apply(spectrum, t["coef_idx"]), plan)
    scale = offset = None
    if norm is not None:
        scale, offset = norm_affine(*_moments(coeffs, plan), *norm)
    parts = [coeffs.new_zeros(1, m)]
    for b in plan.buckets:
        sl = slice(b.first, b.first + b.count)
        bs = None if scale is None else scale[sl]
        bo = None if offset is None else offset[sl]
        _, _, a = _core(_lead(coeffs, b.modes), bs, bo, b, activation)
        parts += _extract(_pooled(a, b, pool), b)
    table = torch.cat(parts)  # (L, maps)
    re, im = table.index_select(0, t["gather_idx"]).view(2, -1, m)  # (M * M, maps) each
    return torch.complex(re, im * t["gather_sign"])
