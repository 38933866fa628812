"""Load a ``state_dict`` of the published Fourier scale-equivariant package into our modules.

The published package (Rahman & Yeh, "Truly scale-equivariant deep nets with Fourier layers")
saves, per layer:

* ``SpectralConv2dLocalized`` / ``SpectralConvLocalized1d``: a complex parameter ``L``
  (Cin, Cout, n[, n]), a real ``spectral_decay`` (a regulariser weight) and, in 2D, the buffer
  ``mat`` (G, n) with ``mat[l, j] = (1/n) sum_{m<n} exp(-2 pi i (l/G - j/n) m)``. The kernel
  spectrum on the G grid is ``W = mat L mat^T``: the plain-sum G-grid DFT of the spatial kernel
  ``s = ifft2(L)`` placed at pixels ``0..n-1`` (not centred). Ours (:class:`SpectralConv2d`)
  holds a real kernel of side n' centred at the origin with wrap-around, so ``s`` fits exactly
  with ``n' = 2n - 1`` (offset p at tap ``p + n - 1``, the negative half zero), or ``n' = G``
  when ``2n - 1 > G``.
* ``ComplexConv2d(Cin, Cout, 1, bias=False)`` skips: ``conv_r.weight`` / ``conv_i.weight``,
  acting as ``W_r + i W_i``; ours (:class:`SpectralSkip`) is a real (Cout, Cin) matrix.
* ``scaleEqNonlin`` / ``scaleEqNonlinMaxp``: ``norm.<r>`` instance norms for every r of
  ``range(base, max_res + increment, increment)``; ours keeps ``norms.<r>`` only for the
  resolutions that bring output rings.
* the MLP head ``res_dict.{0,2,4,6}`` (LayerNorm, Linear, LayerNorm, Linear): our ``head.mlp``.

Imaginary parts. For real input maps, the real part of the published output map (what the next
layer reads, ``Re ifft2``) has, on every mode ``|k| <= (min(G, N) - 1) // 2``, exactly the
spectrum of the convolution with ``Re s``; ``Im s`` reaches it only through the Nyquist rows and
columns, which our layers do not keep. Likewise ``Re`` of the skip's output sees only ``W_r``.
A kernel with a non-negligible imaginary part is still refused by default (it is not a kernel
our real layers hold); ``imaginary="drop"`` maps the real part.

What is exact, and what is not: the mapping is exact layer by layer on the modes our layers
keep (a mapped convolution or skip gives, on ``|k| <= (min(G, N) - 1) // 2``, the spectrum of
the real part of the published layer's output map; norms and MLP weights are copied). Whole-model
logits do not match: the published convolution also multiplies the Nyquist rows/columns (ours
drops them), the published head's stack uses another inverse transform than our Nyquist-free
crops, and the published nonlinearity's even resolutions keep the Nyquist. One layer-level
exception: with an odd G (only the 1D layer allows it) and an even input length N > G, the
published layer multiplies k = -(G - 1) / 2 but not +(G - 1) / 2, so that ring of its real map
differs from ours; every lower ring matches.
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Literal

import torch
from torch import Tensor, nn

from scale_datasets.ops.fourier import kept_modes

__all__ = [
    "IMAG_RTOL",
    "PublishedFourier",
    "load_published_fourier",
    "published_dirichlet_matrix",
]

logger = logging.getLogger(__name__)

Imaginary = Literal["reject", "drop"]

IMAG_RTOL = 1e-6
"""Largest imaginary part accepted as round-off, relative: ``max|Im| <= IMAG_RTOL * max|.|``.

A real kernel saved as ``L = fft2(s)`` in complex64 comes back from ``ifft2`` with an imaginary
part of at most ~1e-7 of max|s| (measured up to n = 33, 1D and 2D); a trained published kernel's
imaginary part is of the order of its real part. The same bound decides whether a skip's
``conv_i`` is zero.
"""

_HEAD_INDICES = frozenset({"0", "2", "4", "6"})
_BARE_ROOTS = frozenset({"L", "mat", "spectral_decay", "norm", "conv_r", "conv_i"})


@dataclass(frozen=True)
class PublishedFourier:
    """What :func:`load_published_fourier` returns.

    Attributes:
        state_dict: our keys -> tensors (fresh tensors, not views of the checkpoint's).
        local_modes: our key of each convolution weight -> its kernel side n'.
        global_modes: our key of each convolution weight -> its canonical grid G.
        dropped: published keys whose content is not carried over (``spectral_decay``,
            the checked ``mat``, zero or dropped ``conv_i``, norms the target has no slot for).
        imaginary: published key of each convolution ``L`` and skip ``conv_i`` -> the relative
            size of its imaginary part (``max|Im s| / max|s|``, ``max|W_i| / max|W_r + i W_i|``);
            round-off (<= :data:`IMAG_RTOL`) for real kernels.
    """

    state_dict: dict[str, Tensor]
    local_modes: dict[str, int] = field(default_factory=dict)
    global_modes: dict[str, int] = field(default_factory=dict)
    dropped: tuple[str, ...] = ()
    imaginary: dict[str, float] = field(default_factory=dict)


# --------------------------------------------------------------------------------------------
# the published conventions


def published_dirichlet_matrix(global_modes: int, local_modes: int) -> Tensor:
    """The published ``get_mat(G, n)`` in complex128, from its definition.

    ``mat[l, j] = (1/n) sum_{m=0}^{n-1} exp(-2 pi i (l/G - j/n) m)``; each phase
    ``(l n - j G) m / (G n)`` is reduced modulo 1 in integers before the float64 exponential.
    """
    g, n = int(global_modes), int(local_modes)
    l_idx = torch.arange(g).view(g, 1, 1)
    j_idx = torch.arange(n).view(1, n, 1)
    m_idx = torch.arange(n).view(1, 1, n)
    turns = torch.remainder((l_idx * n - j_idx * g) * m_idx, g * n).to(torch.float64)
    phase = (-2.0 * math.pi / (g * n)) * turns
    return torch.polar(torch.ones_like(phase), phase).sum(-1) / n


def _mat_atol(dtype: torch.dtype) -> float:
    """Tolerance of a saved ``mat``: four ulps of the checkpoint's precision, and never below
    float32's (the published layer builds ``mat`` in complex64 unless told otherwise, so a model
    cast to complex128 afterwards carries a float32-rounded ``mat`` of the same convention)."""
    return 4.0 * max(torch.finfo(_real_dtype(dtype)).eps, torch.finfo(torch.float32).eps)


def _relative_imaginary(value: Tensor) -> float:
    """max|Im v| / max|v| (0 for a zero tensor)."""
    ref = float(value.abs().max()) if value.numel() else 0.0
    return float(value.imag.abs().max()) / ref if ref > 0 else 0.0


def _real_dtype(dtype: torch.dtype) -> torch.dtype:
    return dtype.to_real() if dtype.is_complex else dtype


def _check_imaginary(key: str, value: Tensor, what: str, imaginary: Imaginary, out: _Out) -> None:
    """Record the relative imaginary part of a complex `value`; refuse it, or log that it is
    dropped, when it is more than round-off."""
    rel = _relative_imaginary(value)
    out.imaginary[key] = rel
    if rel <= IMAG_RTOL:
        return
    if imaginary == "reject":
        raise ValueError(
            f"{key}: {what} has an imaginary part of {rel:.3g} of its largest entry (more than "
            f"round-off, {IMAG_RTOL:g}); our layers hold real kernels: pass imaginary='drop' to "
            f"map the real part (exact on every mode our layer keeps)"
        )
    logger.warning("%s: dropping an imaginary part of %.3g of %s", key, rel, what)


def _kernel_positions(n: int, global_modes: int, local_modes: int) -> Tensor:
    """Tap a of a centred n'-kernel holding the published pixel p (p = 0..n-1), or -1 if none.

    Tap a sits at offset ``a - n' // 2`` (wrap-around on the G grid), so pixel p goes to
    ``a = (p + n' // 2) mod G`` when that is < n'.
    """
    a = torch.remainder(torch.arange(n) + local_modes // 2, global_modes)
    return torch.where(a < local_modes, a, torch.full_like(a, -1))


def _embed(real_kernel: Tensor, global_modes: int, local_modes: int) -> Tensor:
    """(Cin, Cout, n[, n]) real kernel at pixels 0..n-1 -> our (Cout, Cin, n'[, n']) weight."""
    dims = real_kernel.dim() - 2
    n = real_kernel.shape[-1]
    pos = _kernel_positions(n, global_modes, local_modes).to(real_kernel.device)
    out = real_kernel.transpose(0, 1)
    for axis in range(2, 2 + dims):
        shape = list(out.shape)
        shape[axis] = local_modes
        # index_add: a kernel wider than G (n > G) folds onto the G grid, as its DFT does
        out = out.new_zeros(shape).index_add_(axis, pos, out)
    return out.contiguous()


def _needed_local_modes(n: int, global_modes: int) -> int:
    """The smallest centred kernel side that holds pixels 0..n-1 on the G grid."""
    return min(2 * n - 1, global_modes)


# --------------------------------------------------------------------------------------------
# module names


Kind = Literal["conv", "skip", "nl", "head"]
_Rule = tuple[re.Pattern[str], Kind, Callable[[re.Match[str]], str]]

_MIST: tuple[_Rule, ...] = (
    (re.compile(r"L(\d+)"), "conv", lambda m: f"blocks.{m[1]}.convs.0"),
    (re.compile(r"conv(\d+)"), "skip", lambda m: f"blocks.{m[1]}.skip"),
    (re.compile(r"NL(\d+)"), "nl", lambda m: f"blocks.{m[1]}.nl"),
    (re.compile(r"res_dict"), "head", lambda m: "head.mlp"),
)

_STL: tuple[_Rule, ...] = (
    (re.compile(r"projector"), "skip", lambda m: "blocks.0.skip"),
    (re.compile(r"PN"), "nl", lambda m: "blocks.0.nl"),
    (
        re.compile(r"L(\d+)_([12])"),
        "conv",
        lambda m: f"blocks.{int(m[1]) + 1}.convs.{int(m[2]) - 1}",
    ),
    (re.compile(r"conv(\d+)"), "skip", lambda m: f"blocks.{int(m[1]) + 1}.skip"),
    (re.compile(r"NL(\d+)_1"), "nl", lambda m: f"blocks.{int(m[1]) + 1}.inner.0"),
    (re.compile(r"NL(\d+)_2"), "nl", lambda m: f"blocks.{int(m[1]) + 1}.nl"),
    (re.compile(r"res_dict"), "head", lambda m: "head.mlp"),
)

_STL_MARK = re.compile(r"projector|PN|L\d+_[12]|NL\d+_[12]")


def _leaf_kind(leaf: str) -> Kind | None:
    """The published module kind a key's leaf (the part after the module name) belongs to."""
    if leaf in ("L", "mat", "spectral_decay"):
        return "conv"
    if leaf in ("conv_r.weight", "conv_i.weight"):
        return "skip"
    if re.fullmatch(r"norm\.\d+\.(weight|bias)", leaf):
        return "nl"
    if re.fullmatch(r"\d+\.(weight|bias)", leaf):
        return "head"
    return None


def _match_rule(root: str, rules: tuple[_Rule, ...]) -> tuple[Kind, str] | None:
    """(kind, our module name) of a published top-level module name, or None."""
    for pattern, kind, ours in rules:
        match = pattern.fullmatch(root)
        if match:
            return kind, ours(match)
    return None


def _split(keys: list[str]) -> dict[str, tuple[str, Kind, dict[str, str]]]:
    """Published module name -> (our module name, kind, {leaf: published key})."""
    roots = {k.split(".", 1)[0] for k in keys}
    if roots <= _BARE_ROOTS:  # one bare layer
        kinds: set[Kind] = set()
        for key in keys:
            kind = _leaf_kind(key)
            if kind is None:
                raise ValueError(f"{key}: not a parameter of a published layer")
            kinds.add(kind)
        if len(kinds) != 1:
            raise ValueError(f"keys {sorted(keys)[:6]} mix published layers without module names")
        return {"": ("", kinds.pop(), {k: k for k in keys})}
    rules = _STL if any(_STL_MARK.fullmatch(r) for r in roots) else _MIST
    modules: dict[str, tuple[str, Kind, dict[str, str]]] = {}
    for key in keys:
        root, _, leaf = key.partition(".")
        found = _match_rule(root, rules)
        if found is None:
            raise ValueError(f"{key}: no published FourierSeqMist/FourierSeqStl module {root!r}")
        kind, ours = found
        if _leaf_kind(leaf) != kind or (kind == "head" and leaf.split(".")[0] not in _HEAD_INDICES):
            raise ValueError(f"{key}: not a parameter of the published {kind} module {root!r}")
        modules.setdefault(root, (ours, kind, {}))[2][leaf] = key
    return modules


def _join(prefix: str, name: str) -> str:
    return f"{prefix}.{name}" if prefix else name


# --------------------------------------------------------------------------------------------
# the mapping


@dataclass
class _Out:
    state_dict: dict[str, Tensor] = field(default_factory=dict)
    sources: dict[str, str] = field(default_factory=dict)  # our key -> published key
    local_modes: dict[str, int] = field(default_factory=dict)
    global_modes: dict[str, int] = field(default_factory=dict)
    dropped: list[str] = field(default_factory=list)
    imaginary: dict[str, float] = field(default_factory=dict)

    def put(self, ours: str, value: Tensor, source: str) -> None:
        if ours in self.state_dict:
            raise ValueError(f"{source}: maps onto {ours}, as {self.sources[ours]} does")
        self.state_dict[ours] = value
        self.sources[ours] = source


def _target_module(target: nn.Module | None, name: str, source: str) -> nn.Module | None:
    if target is None:
        return None
    try:
        return target.get_submodule(name) if name else target
    except AttributeError:
        raise ValueError(f"{source}: the target has no module {name!r}") from None


def _map_conv(
    ours: str,
    leaves: dict[str, str],
    state_dict: Mapping[str, Tensor],
    out: _Out,
    target: nn.Module | None,
    global_modes: int | None,
    imaginary: Imaginary,
) -> None:
    if "L" not in leaves:
        raise ValueError(f"{next(iter(leaves.values()))}: a published convolution without its L")
    key = leaves["L"]
    weight = state_dict[key]
    dims = weight.dim() - 2
    n = weight.shape[-1]
    if dims not in (1, 2) or (dims == 2 and weight.shape[-2] != n) or n < 1:
        raise ValueError(f"{key}: expected (Cin, Cout, n[, n]), got {tuple(weight.shape)}")
    module = _target_module(target, ours, key)

    g = _canonical_grid(key, leaves, state_dict, n, dims, ours, module, global_modes, out)

    kernel = torch.fft.ifftn(weight.to(torch.complex128), dim=tuple(range(-dims, 0)))
    _check_imaginary(key, kernel, "the spatial kernel ifft(L)", imaginary, out)

    local = _needed_local_modes(n, g) if module is None else module.local_modes
    if bool((_kernel_positions(min(n, g), g, local) < 0).any()):
        raise ValueError(
            f"{key}: a {n}-pixel kernel (pixels 0..{n - 1} of G={g}) does not fit target "
            f"{ours!r} with local_modes={local}; it needs an odd local_modes >= "
            f"{_needed_local_modes(n, g)} (or G)"
        )
    if g % 2:
        logger.warning(
            "%s: odd G=%d: at even lengths N > G the published layer multiplies only k = -%d "
            "of the ring |k| = %d, ours both (the real maps differ on that ring)",
            key,
            g,
            kept_modes(g),
            kept_modes(g),
        )
    ours_key = _join(ours, "weight")
    out.put(ours_key, _embed(kernel.real, g, local).to(_real_dtype(weight.dtype)), key)
    out.local_modes[ours_key] = local
    out.global_modes[ours_key] = g
    if "spectral_decay" in leaves:
        out.dropped.append(leaves["spectral_decay"])


def _canonical_grid(
    key: str,
    leaves: dict[str, str],
    state_dict: Mapping[str, Tensor],
    n: int,
    dims: int,
    ours: str,
    module: nn.Module | None,
    global_modes: int | None,
    out: _Out,
) -> int:
    """G of a published convolution, from every place that states it (its ``mat``, checked
    against the published convention; the target module; ``global_modes=``), which must agree.
    Also checks the target module's class and channels against ``L``."""
    sizes: dict[str, int] = {}  # where G comes from -> G
    if "mat" in leaves:
        mat_key = leaves["mat"]
        mat = state_dict[mat_key]
        if dims != 2 or mat.dim() != 2 or mat.shape[1] != n:
            raise ValueError(f"{mat_key}: expected (G, {n}) for L {tuple(state_dict[key].shape)}")
        sizes[mat_key] = mat.shape[0]
        expect = published_dirichlet_matrix(mat.shape[0], n).to(mat.device)
        err = float((mat.to(torch.complex128) - expect).abs().max())
        atol = _mat_atol(mat.dtype)
        if not err <= atol:
            raise ValueError(
                f"{mat_key}: differs from the published get_mat({mat.shape[0]}, {n}) by {err:.3g} "
                f"(tolerance {atol:.3g} for {mat.dtype}): another convention, not mapped"
            )
        out.dropped.append(mat_key)
    if module is not None:
        conv_cls = _conv_class(dims)
        if not isinstance(module, conv_cls):
            raise ValueError(
                f"{key}: target module {ours!r} is {type(module).__name__}, not {conv_cls.__name__}"
            )
        cin, cout = state_dict[key].shape[:2]
        if (module.in_channels, module.out_channels) != (cin, cout):
            raise ValueError(
                f"{key}: {cin} -> {cout} channels, target {ours!r} has "
                f"{module.in_channels} -> {module.out_channels}"
            )
        sizes[f"target {ours or 'module'}"] = module.global_modes
    if global_modes is not None:
        sizes["global_modes="] = int(global_modes)
    if not sizes:
        raise ValueError(
            f"{key}: a 1D convolution saves no mat, so its G is unknown: pass global_modes= or "
            f"target="
        )
    if len(set(sizes.values())) > 1:
        raise ValueError(f"{key}: the canonical grids disagree: {sizes}")
    return next(iter(sizes.values()))


def _conv_class(dims: int) -> type[nn.Module]:
    from .fourier.spectral_conv import SpectralConv1d, SpectralConv2d

    return SpectralConv2d if dims == 2 else SpectralConv1d


def _map_skip(
    ours: str,
    leaves: dict[str, str],
    state_dict: Mapping[str, Tensor],
    out: _Out,
    imaginary: Imaginary,
) -> None:
    if "conv_r.weight" not in leaves:
        raise ValueError(f"{leaves['conv_i.weight']}: a published skip without its conv_r.weight")
    key = leaves["conv_r.weight"]
    real = state_dict[key]
    if real.dim() < 2 or any(s != 1 for s in real.shape[2:]):
        raise ValueError(f"{key}: expected a 1x1 kernel (Cout, Cin, 1, 1), got {tuple(real.shape)}")
    if "conv_i.weight" in leaves:
        imag_key = leaves["conv_i.weight"]
        imag = state_dict[imag_key]
        if imag.shape != real.shape:
            raise ValueError(f"{imag_key}: shape {tuple(imag.shape)}, conv_r {tuple(real.shape)}")
        both = torch.complex(real.to(torch.float64), imag.to(torch.float64))
        _check_imaginary(imag_key, both, "the skip W_r + i W_i", imaginary, out)
        out.dropped.append(imag_key)
    out.put(_join(ours, "weight"), real.detach().reshape(real.shape[:2]).clone(), key)


def _copy(ours: str, leaves: dict[str, str], state_dict: Mapping[str, Tensor], out: _Out) -> None:
    """Norms (``norm.<r>`` -> ``norms.<r>``) and the MLP head, copied unchanged."""
    for leaf, key in leaves.items():
        name = "norms" + leaf[len("norm") :] if leaf.startswith("norm.") else leaf
        out.put(_join(ours, name), state_dict[key].detach().clone(), key)


def _fit_target(out: _Out, target: nn.Module) -> None:
    """Drop the published norms the target has no slot for; check keys and shapes."""
    expected = target.state_dict()
    for ours in list(out.state_dict):
        source = out.sources[ours]
        if ours not in expected:
            module, _, leaf = ours.rpartition(".norms.")
            if leaf and any(k.startswith(f"{_join(module, 'norms')}.") for k in expected):
                del out.state_dict[ours], out.sources[ours]
                out.dropped.append(source)
                continue
            raise ValueError(f"{source}: maps onto {ours}, which the target does not have")
        have, want = tuple(out.state_dict[ours].shape), tuple(expected[ours].shape)
        if have != want:
            raise ValueError(f"{source}: shape {have} maps onto {ours}, target has {want}")
    missing = [k for k in expected if k not in out.state_dict]
    if missing:
        more = f" (and {len(missing) - 5} more)" if len(missing) > 5 else ""
        raise ValueError(f"the checkpoint has nothing for target keys {missing[:5]}{more}")


def load_published_fourier(
    state_dict: Mapping[str, Tensor],
    *,
    target: nn.Module | None = None,
    imaginary: Imaginary = "reject",
    global_modes: int | None = None,
) -> PublishedFourier:
    """Map a published Fourier checkpoint onto our modules' ``state_dict`` keys.

    Args:
        state_dict: a ``state_dict`` of a published ``FourierSeqMist`` or ``FourierSeqStl``, or of
            one bare published layer (``SpectralConv2dLocalized``, ``SpectralConvLocalized1d``,
            ``scaleEqNonlin``, ``ComplexConv2d``); a Lightning checkpoint (a dict with a
            ``"state_dict"`` entry) is unwrapped.
        target: our module to load into (e.g. ``create_model("fourier_mnist", local_modes=9)``
            for the published MNIST model). With it the result is exactly the target's key set,
            so ``target.load_state_dict(result.state_dict, strict=True)`` works: the published
            norms of resolutions the target has no norm for are dropped (listed in ``dropped``),
            every shape is checked, and each kernel is embedded in the target's ``local_modes``
            (which must hold pixels ``0..n-1`` of the G grid: an odd ``n' >= 2n - 1``, or G).
            Without it keys are only renamed and each kernel gets ``n' = min(2n - 1, G)``.
        imaginary: "reject" (default) refuses a convolution whose spatial kernel ``ifft(L)``, or a
            skip whose ``conv_i``, is more than round-off (:data:`IMAG_RTOL`); "drop" maps the
            real part, exact on every mode our layers keep (see the module doc).
        global_modes: G of 1D convolutions (they save no ``mat``) when there is no target.

    Returns:
        :class:`PublishedFourier`. Our convolution weights have the real dtype of the
        checkpoint's complex ``L``; everything else keeps its dtype.

    Raises:
        ValueError (one line) for any key that cannot be mapped exactly: an unknown module or
        parameter, a ``mat`` other than the published ``get_mat(G, n)``, an imaginary part under
        ``imaginary="reject"``, a kernel that does not fit the target, a shape or key mismatch.

    Exact layer by layer on the modes our layers keep; whole-model logits do not match (the
    published convolution also multiplies the Nyquist rows/columns, its head stacks crops with
    another inverse transform, and its nonlinearity's even resolutions keep the Nyquist).
    """
    if imaginary not in ("reject", "drop"):
        raise ValueError(f"imaginary must be 'reject' or 'drop', got {imaginary!r}")
    inner = state_dict.get("state_dict") if isinstance(state_dict, Mapping) else None
    if isinstance(inner, Mapping):
        state_dict = inner
    if not isinstance(state_dict, Mapping) or not state_dict:
        raise ValueError("state_dict must be a non-empty mapping of names to tensors")
    for key, value in state_dict.items():
        if not isinstance(key, str) or not isinstance(value, Tensor):
            raise ValueError(f"{key!r}: not a tensor entry of a state_dict")

    out = _Out()
    for ours, kind, leaves in _split(list(state_dict)).values():
        if kind == "conv":
            _map_conv(ours, leaves, state_dict, out, target, global_modes, imaginary)
        elif kind == "skip":
            _map_skip(ours, leaves, state_dict, out, imaginary)
        else:
            _copy(ours, leaves, state_dict, out)
    if target is not None:
        _fit_target(out, target)
    logger.info(
        "mapped %d published tensors onto %d keys; dropped %d",
        len(state_dict),
        len(out.state_dict),
        len(out.dropped),
    )
    return PublishedFourier(
        state_dict=out.state_dict,
        local_modes=out.local_modes,
        global_modes=out.global_modes,
        dropped=tuple(out.dropped),
        imaginary=out.imaginary,
    )
