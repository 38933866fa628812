"""scale_eq.compat.load_published_fourier: published Fourier checkpoints onto our modules.

The published layers are rebuilt here from their documented conventions (a complex ``L``, the
Dirichlet ``mat`` of get_mat(G, n), ``W = mat L mat^T``, the mode set ``:e + s`` / ``-e:`` with
``e = min(G // 2, N // 2)``, ``s = N % 2``), so the mapping is checked against what a published
layer computes, not against the mapping's own formulas.
"""

from __future__ import annotations

import math
import re

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from scale_eq.compat import IMAG_RTOL, PublishedFourier, load_published_fourier
from scale_eq.fourier.spectral_conv import SpectralConv1d, SpectralConv2d, SpectralSkip
from scale_eq.registry import create_model

TOL = 1e-12
wb = ("weight", "bias")


# --------------------------------------------------------------------------------------------
# the published API, from its conventions


def get_mat(g: int, n: int) -> torch.Tensor:
    """mat[l, j] = (1/n) sum_{m<n} exp(-2 pi i (l/G - j/n) m), summed directly in complex128."""
    l_idx = torch.arange(g, dtype=torch.float64).view(g, 1, 1)
    j_idx = torch.arange(n, dtype=torch.float64).view(1, n, 1)
    m_idx = torch.arange(n, dtype=torch.float64).view(1, 1, n)
    phase = -2.0 * math.pi * (l_idx / g - j_idx / n) * m_idx
    return torch.exp(1j * phase).mean(-1)


def published_modes(g: int, n_in: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(positions in the input's axis, positions in W's G axis) the published layer multiplies."""
    e, s = min(g // 2, n_in // 2), n_in % 2
    x_idx = list(range(e + s)) + list(range(n_in - e, n_in))
    w_idx = list(range(e + s)) + list(range(g - e, g))
    return torch.tensor(x_idx), torch.tensor(w_idx)


class PublishedConv2d(nn.Module):
    """SpectralConv2dLocalized(in, out, G, n): L (Cin, Cout, n, n), spectral_decay, mat."""

    def __init__(self, cin: int, cout: int, g: int, n: int, dtype=torch.complex128) -> None:
        super().__init__()
        self.g = g
        self.L = nn.Parameter(torch.zeros(cin, cout, n, n, dtype=dtype))
        self.register_buffer("spectral_decay", torch.rand(n, n))
        self.register_buffer("mat", get_mat(g, n).to(dtype))

    def spectrum(self) -> torch.Tensor:
        return self.mat @ self.L @ self.mat.T  # (Cin, Cout, G, G)

    def forward(self, x_ft: torch.Tensor) -> torch.Tensor:
        w = self.spectrum()
        xi, wi = published_modes(self.g, x_ft.shape[-1])
        out = x_ft.new_zeros(x_ft.shape[0], w.shape[1], *x_ft.shape[-2:])
        x_sel = x_ft[:, :, xi[:, None], xi[None, :]]
        w_sel = w[:, :, wi[:, None], wi[None, :]]
        out[:, :, xi[:, None], xi[None, :]] = torch.einsum("bixy,ioxy->boxy", x_sel, w_sel)
        return out


class PublishedConv1d(nn.Module):
    """SpectralConvLocalized1d(in, out, G, n): L (Cin, Cout, n), spectral_decay, no mat."""

    def __init__(self, cin: int, cout: int, g: int, n: int, dtype=torch.complex128) -> None:
        super().__init__()
        self.g = g
        self.L = nn.Parameter(torch.zeros(cin, cout, n, dtype=dtype))
        self.register_buffer("spectral_decay", torch.rand(n))

    def forward(self, x_ft: torch.Tensor) -> torch.Tensor:
        w = self.L @ get_mat(self.g, self.L.shape[-1]).to(self.L.dtype).T  # (Cin, Cout, G)
        xi, wi = published_modes(self.g, x_ft.shape[-1])
        out = x_ft.new_zeros(x_ft.shape[0], w.shape[1], x_ft.shape[-1])
        out[:, :, xi] = torch.einsum("bix,iox->box", x_ft[:, :, xi], w[:, :, wi])
        return out


class ComplexConv(nn.Module):
    """complexPyTorch ComplexConv2d(in, out, 1, bias=False): conv_r and conv_i."""

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.conv_r = nn.Conv2d(cin, cout, 1, bias=False)
        self.conv_i = nn.Conv2d(cin, cout, 1, bias=False)
        nn.init.zeros_(self.conv_i.weight)


class PublishedNonlin(nn.Module):
    """scaleEqNonlin's parameters: an affine InstanceNorm2d per r of range(base, top, step)."""

    def __init__(self, channels: int, resolutions: range) -> None:
        super().__init__()
        self.norm = nn.ModuleDict(
            {str(r): nn.InstanceNorm2d(channels, affine=True) for r in resolutions}
        )


def published_head(features: int, hidden: int) -> nn.Sequential:
    return nn.Sequential(
        nn.LayerNorm(features),
        nn.Dropout(0.0),
        nn.Linear(features, hidden),
        nn.Dropout(0.7),
        nn.LayerNorm(hidden),
        nn.ReLU(),
        nn.Linear(hidden, 10),
    )


def real_kernel_l(shape: tuple[int, ...], dims: int, gen: torch.Generator, dtype) -> torch.Tensor:
    """L = fft of a random real n^dims kernel: its spatial kernel ifft(L) is real."""
    kernel = torch.randn(shape, generator=gen, dtype=torch.float64)
    return torch.fft.fftn(kernel.to(dtype.to_real()), dim=tuple(range(-dims, 0))).to(dtype)


def randomize(module: nn.Module, gen: torch.Generator, dims: int = 2) -> None:
    """Random real kernels in every published conv, random norms / MLP / skips (conv_i = 0)."""
    with torch.no_grad():
        for name, p in module.named_parameters():
            if name.endswith(".L") or name == "L":
                p.copy_(real_kernel_l(tuple(p.shape), dims, gen, p.dtype))
            elif not name.endswith("conv_i.weight"):
                p.copy_(torch.randn(p.shape, generator=gen, dtype=p.dtype))


def spatial(l_param: torch.Tensor) -> torch.Tensor:
    dims = l_param.dim() - 2
    return torch.fft.ifftn(l_param.detach().to(torch.complex128), dim=tuple(range(-dims, 0)))


def kept_index(m: int, size: int) -> torch.Tensor:
    """Positions of the frequencies -m..m in an fft-ordered axis of length ``size``."""
    return torch.remainder(torch.arange(-m, m + 1), size)


def real_map_spectrum(out_ft: torch.Tensor, dims: int) -> torch.Tensor:
    """Spectrum of the real part of the output map: what the next layer reads."""
    axes = tuple(range(-dims, 0))
    real = torch.fft.ifftn(out_ft, dim=axes, norm="forward").real
    return torch.fft.fftn(real, dim=axes, norm="forward")


def kept_error_2d(ours: torch.Tensor, theirs: torch.Tensor, g: int, n_in: int) -> float:
    idx = kept_index((min(g, n_in) - 1) // 2, n_in)
    a = ours[..., idx[:, None], idx[None, :]]
    b = theirs[..., idx[:, None], idx[None, :]]
    assert float(b.abs().max()) > 1e-3  # the compared modes carry signal
    return float((a - b).abs().max())


def kept_error_1d(ours: torch.Tensor, theirs: torch.Tensor, g: int, n_in: int) -> float:
    m = (min(g, n_in) - 1) // 2
    if g % 2 and n_in > g and n_in % 2 == 0:
        # odd G (1D only), even N > G: the published layer multiplies k = -(G-1)/2 but not
        # +(G-1)/2 (its slices are :G//2 and -G//2:), so that ring's real map differs
        top = kept_index(m, n_in)[[0, -1]]
        assert float((ours[..., top] - theirs[..., top]).abs().max()) > 1e-3
        m -= 1
    idx = kept_index(m, n_in)
    assert float(theirs[..., idx].abs().max()) > 1e-3
    return float((ours[..., idx] - theirs[..., idx]).abs().max())


# --------------------------------------------------------------------------------------------
# one convolution, layer by layer


@pytest.mark.parametrize(("g", "n"), [(12, 4), (8, 5), (10, 10)])
@pytest.mark.parametrize("n_in", [7, 8, None, 13, 16, 17])  # None: N = G
def test_conv2d_matches_published_real_map_on_kept_modes(g: int, n: int, n_in: int | None):
    n_in = n_in or g
    gen = torch.Generator().manual_seed(g * 100 + n)
    pub = PublishedConv2d(3, 2, g, n)
    randomize(pub, gen)
    result = load_published_fourier(pub.state_dict())
    local = min(2 * n - 1, g)
    assert result.local_modes == {"weight": local} and result.global_modes == {"weight": g}
    assert set(result.dropped) == {"mat", "spectral_decay"}
    assert result.imaginary["L"] < 1e-14

    conv = SpectralConv2d(3, 2, g, local, dtype=torch.float64)
    conv.load_state_dict(result.state_dict, strict=True)
    x = torch.randn(4, 3, n_in, n_in, generator=gen, dtype=torch.float64)
    x_ft = torch.fft.fft2(x, norm="forward")
    with torch.no_grad():
        theirs = real_map_spectrum(pub(x_ft), 2)
        ours = conv(x_ft)
    assert kept_error_2d(ours, theirs, g, n_in) < TOL


@pytest.mark.parametrize("n_in", [7, 8, 12, 13, 16, 17])
def test_conv2d_drop_maps_real_part_of_complex_kernel(n_in: int):
    g, n = 12, 4
    gen = torch.Generator().manual_seed(n_in)
    pub = PublishedConv2d(2, 3, g, n)
    with torch.no_grad():
        pub.L.copy_(torch.randn(pub.L.shape, generator=gen, dtype=torch.complex128))
    result = load_published_fourier(pub.state_dict(), imaginary="drop")
    assert result.imaginary["L"] > 0.1
    conv = SpectralConv2d(2, 3, g, 2 * n - 1, dtype=torch.float64)
    conv.load_state_dict(result.state_dict)
    x_ft = torch.fft.fft2(torch.randn(3, 2, n_in, n_in, generator=gen, dtype=torch.float64))
    with torch.no_grad():
        err = kept_error_2d(conv(x_ft), real_map_spectrum(pub(x_ft), 2), g, n_in)
    assert err < TOL


@pytest.mark.parametrize(("g", "n"), [(16, 5), (8, 6), (9, 3)])
@pytest.mark.parametrize("n_in", [7, 8, 9, 16, 21, 24])
@pytest.mark.parametrize("complex_kernel", [False, True])
def test_conv1d_matches_published_real_map_on_kept_modes(
    g: int, n: int, n_in: int, complex_kernel: bool
):
    gen = torch.Generator().manual_seed(g + n + n_in)
    pub = PublishedConv1d(2, 3, g, n)
    randomize(pub, gen, dims=1)
    if complex_kernel:
        with torch.no_grad():
            pub.L.copy_(torch.randn(pub.L.shape, generator=gen, dtype=torch.complex128))
        with pytest.raises(ValueError, match=r"^L: .*imaginary='drop'"):
            load_published_fourier(pub.state_dict(), global_modes=g)
    with pytest.raises(ValueError, match="its G is unknown"):
        load_published_fourier(pub.state_dict(), imaginary="drop")
    result = load_published_fourier(pub.state_dict(), global_modes=g, imaginary="drop")
    local = min(2 * n - 1, g)
    assert result.local_modes == {"weight": local}
    assert result.dropped == ("spectral_decay",)
    conv = SpectralConv1d(2, 3, g, local, dtype=torch.float64)
    conv.load_state_dict(result.state_dict, strict=True)
    # the same through target= (G from the target)
    target = SpectralConv1d(2, 3, g, local, dtype=torch.float64)
    via_target = load_published_fourier(pub.state_dict(), target=target, imaginary="drop")
    assert torch.equal(via_target.state_dict["weight"], result.state_dict["weight"])

    x_ft = torch.fft.fft(torch.randn(4, 2, n_in, generator=gen, dtype=torch.float64))
    with torch.no_grad():
        err = kept_error_1d(conv(x_ft), real_map_spectrum(pub(x_ft), 1), g, n_in)
    assert err < TOL


def test_complex64_checkpoint_passes_round_off_and_keeps_float32():
    """A float32 real kernel saved the published way (complex64 L and mat) is accepted."""
    g, n = 28, 7
    gen = torch.Generator().manual_seed(3)
    pub = PublishedConv2d(4, 5, g, n, dtype=torch.complex64)
    randomize(pub, gen)
    result = load_published_fourier(pub.state_dict())
    weight = result.state_dict["weight"]
    assert weight.dtype == torch.float32 and weight.shape == (5, 4, 13, 13)
    assert result.imaginary["L"] < IMAG_RTOL / 5


@given(
    g_half=st.integers(1, 20),
    n_frac=st.floats(0.0, 1.0),
    seed=st.integers(0, 2**31 - 1),
)
@settings(max_examples=60, deadline=None)
def test_embedding_reproduces_published_spectrum(g_half: int, n_frac: float, seed: int):
    """For even G and 1 <= n <= G, our kernel spectrum equals W = mat L mat^T on |k| <= (G-1)//2."""
    g = 2 * g_half
    n = 1 + round(n_frac * (g - 1))
    gen = torch.Generator().manual_seed(seed)
    pub = PublishedConv2d(2, 2, g, n)
    randomize(pub, gen)
    result = load_published_fourier(pub.state_dict())
    local = result.local_modes["weight"]
    assert local == min(2 * n - 1, g)
    conv = SpectralConv2d(2, 2, g, local, dtype=torch.float64)
    conv.load_state_dict(result.state_dict)
    with torch.no_grad():
        ours = conv.kernel_spectrum()  # (Cout, Cin, 2M + 1, 2M + 1), fft order
        w = pub.spectrum().permute(1, 0, 2, 3)  # (Cout, Cin, G, G)
    m = (g - 1) // 2
    ours_idx, w_idx = kept_index(m, 2 * m + 1), kept_index(m, g)
    a = ours[..., ours_idx[:, None], ours_idx[None, :]]
    b = w[..., w_idx[:, None], w_idx[None, :]]
    assert float((a - b).abs().max()) < TOL * max(1.0, float(b.abs().max()))


# --------------------------------------------------------------------------------------------
# refusals


def test_imaginary_kernel_rejected_by_default():
    pub = PublishedConv2d(1, 1, 8, 3)
    with torch.no_grad():
        pub.L.copy_(real_kernel_l((1, 1, 3, 3), 2, torch.Generator().manual_seed(0), pub.L.dtype))
        pub.L[0, 0, 1, 2] += 0.5j
    with pytest.raises(ValueError) as info:
        load_published_fourier(pub.state_dict())
    message = str(info.value)
    assert "\n" not in message
    assert re.match(r"^L: the spatial kernel ifft\(L\) has an imaginary part of [\d.e-]+ ", message)
    assert "imaginary='drop'" in message and "exact on every mode our layer keeps" in message
    with pytest.raises(ValueError, match="imaginary must be"):
        load_published_fourier(pub.state_dict(), imaginary="keep")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "corrupt",
    [
        lambda mat, g, n: mat.conj(),  # the opposite sign convention
        lambda mat, g, n: torch.roll(mat, 1, dims=0),  # a shifted grid
        lambda mat, g, n: get_mat(g, n) * torch.exp(1j * torch.tensor(math.pi / n)),  # phase
        lambda mat, g, n: mat + 1e-4,  # beyond complex128 (and float32) round-off
    ],
)
def test_wrong_mat_rejected(corrupt):
    g, n = 12, 4
    pub = PublishedConv2d(1, 2, g, n)
    randomize(pub, torch.Generator().manual_seed(1))
    state = pub.state_dict()
    state["mat"] = corrupt(state["mat"], g, n).to(state["mat"].dtype)
    with pytest.raises(ValueError, match=r"^mat: differs from the published get_mat\(12, 4\)"):
        load_published_fourier(state)


def test_mat_of_wrong_width_rejected():
    pub = PublishedConv2d(1, 1, 12, 4)
    state = pub.state_dict()
    state["mat"] = get_mat(12, 5)
    with pytest.raises(ValueError, match=r"^mat: expected \(G, 4\)"):
        load_published_fourier(state)


@pytest.mark.parametrize(
    "key",
    ["bogus.weight", "L0.weight", "res_dict.1.weight", "NL0.norm.weight", "conv0.conv_r.bias"],
)
def test_unknown_key_rejected(key: str):
    pub = PublishedMist(channels=(2, 2, 2, 2), hidden=4)
    state = pub.state_dict()
    state[key] = torch.zeros(2)
    with pytest.raises(ValueError, match=rf"^{re.escape(key)}: "):
        load_published_fourier(state)


def test_skip_conv_i_rejected_by_default_and_dropped_on_request():
    skip = ComplexConv(3, 4)
    gen = torch.Generator().manual_seed(5)
    with torch.no_grad():
        skip.conv_r.weight.copy_(torch.randn(4, 3, 1, 1, generator=gen))
    # conv_i = 0: mapped, and conv_i reported as dropped
    result = load_published_fourier(skip.state_dict())
    assert torch.equal(result.state_dict["weight"], skip.conv_r.weight.detach()[:, :, 0, 0])
    assert result.dropped == ("conv_i.weight",)
    ours = SpectralSkip(3, 4)
    ours.load_state_dict(result.state_dict, strict=True)

    with torch.no_grad():
        skip.conv_i.weight.copy_(torch.randn(4, 3, 1, 1, generator=gen))
    with pytest.raises(ValueError, match=r"^conv_i\.weight: the skip W_r \+ i W_i has an imag"):
        load_published_fourier(skip.state_dict())
    dropped = load_published_fourier(skip.state_dict(), imaginary="drop")
    assert torch.equal(dropped.state_dict["weight"], skip.conv_r.weight.detach()[:, :, 0, 0])
    assert dropped.imaginary["conv_i.weight"] > 0.1

    # Re of the published skip's output map sees W_r alone, on every mode
    w_r, w_i = (c.weight.detach()[:, :, 0, 0].double() for c in (skip.conv_r, skip.conv_i))
    w = torch.complex(w_r, w_i)
    x_ft = torch.fft.fft2(torch.randn(2, 3, 9, 9, generator=gen, dtype=torch.float64))
    theirs = real_map_spectrum(torch.einsum("oi,bixy->boxy", w, x_ft), 2)
    ours.load_state_dict(dropped.state_dict)
    with torch.no_grad():
        assert float((ours.double()(x_ft) - theirs).abs().max()) < TOL


def test_kernel_too_wide_for_target_rejected():
    pub = PublishedConv2d(1, 1, 28, 5)
    with pytest.raises(ValueError, match=r"does not fit target 'blocks\.0\.convs\.0' with local"):
        load_published_fourier(
            {f"L0.{k}": v for k, v in pub.state_dict().items()}
            | {f"conv0.{k}": v for k, v in ComplexConv(1, 1).state_dict().items()},
            target=create_model("fourier_mnist", channels=(1,), local_modes=5),
        )


# --------------------------------------------------------------------------------------------
# whole published models onto ours


class PublishedMist(nn.Module):
    """FourierSeqMist's parameters: L0..L3, conv0..3, NL0..3 (norms 6..28), res_dict."""

    def __init__(self, channels: tuple[int, ...], hidden: int, dtype=torch.complex128) -> None:
        super().__init__()
        cin = 1
        for i, c in enumerate(channels):
            setattr(self, f"L{i}", PublishedConv2d(cin, c, 28, 5, dtype=dtype))
            setattr(self, f"conv{i}", ComplexConv(cin, c))
            setattr(self, f"NL{i}", PublishedNonlin(c, range(6, 29)))
            cin = c
        self.res_dict = published_head(cin * 4, hidden)


class PublishedStl(nn.Module):
    """FourierSeqStl's parameters (base 40, max 97, increment 8, G/n 64/7, 32/5, 16/5)."""

    def __init__(self, channels: tuple[int, int, int, int], hidden: int) -> None:
        super().__init__()
        c1, c2, c3, c4 = channels
        self.projector = ComplexConv(3, c1)
        self.PN = PublishedNonlin(c1, range(40, 105, 8))
        grids = [(64, 7, range(40, 105, 8)), (32, 5, range(20, 53, 4)), (16, 5, range(10, 27, 2))]
        cin = c1
        for i, (cout, (g, n, res)) in enumerate(zip((c2, c3, c4), grids, strict=True)):
            setattr(self, f"L{i}_1", PublishedConv2d(cin, cout, g, n))
            setattr(self, f"L{i}_2", PublishedConv2d(cout, cout, g, n))
            setattr(self, f"conv{i}", ComplexConv(cin, cout))
            setattr(self, f"NL{i}_1", PublishedNonlin(cout, res))
            setattr(self, f"NL{i}_2", PublishedNonlin(cout, res))
            cin = cout
        self.res_dict = published_head(c4 * 4, hidden)


def check_copies(result: PublishedFourier, pub: nn.Module, renames: dict[str, str]) -> None:
    """Every non-conv published tensor equals its mapped tensor exactly."""
    state = pub.state_dict()
    for key, value in state.items():
        if key.rsplit(".", 1)[-1] in ("L", "mat", "spectral_decay") or "conv_i" in key:
            continue
        root, _, leaf = key.partition(".")
        ours = f"{renames[root]}.{leaf.replace('norm.', 'norms.').replace('conv_r.', '')}"
        if ours not in result.state_dict:
            assert key in result.dropped
            continue
        mapped = result.state_dict[ours]
        assert torch.equal(mapped, value.reshape(mapped.shape)), key


def test_fourier_seq_mist_onto_fourier_mnist():
    channels, hidden = (3, 4, 5, 5), 8
    gen = torch.Generator().manual_seed(11)
    pub = PublishedMist(channels, hidden)
    randomize(pub, gen)
    target = create_model("fourier_mnist", channels=channels, hidden=hidden, local_modes=9)
    target = target.double()
    result = load_published_fourier(pub.state_dict(), target=target)
    target.load_state_dict(result.state_dict, strict=True)
    assert set(result.state_dict) == set(target.state_dict())

    renames = {f"L{i}": f"blocks.{i}.convs.0" for i in range(4)}
    renames |= {f"conv{i}": f"blocks.{i}.skip" for i in range(4)}
    renames |= {f"NL{i}": f"blocks.{i}.nl" for i in range(4)}
    renames["res_dict"] = "head.mlp"
    check_copies(result, pub, renames)

    # the unused published norms (even r, whose rings the next odd r overwrites) are dropped
    unused = {f"NL{i}.norm.{r}.{p}" for i in range(4) for r in range(8, 29, 2) for p in wb}
    assert unused <= set(result.dropped)
    assert not any(re.search(r"\.norm\.(6|\d*[13579])\.", k) for k in result.dropped)

    for i in range(4):
        conv = target.blocks[i].convs[0]
        s = spatial(getattr(pub, f"L{i}").L)
        assert float(s.imag.abs().max()) < 1e-14
        expected = torch.zeros_like(conv.spatial_kernel().detach())
        expected[..., :5, :5] = s.real.transpose(0, 1)
        assert float((conv.spatial_kernel().detach() - expected).abs().max()) < TOL
        assert result.local_modes[f"blocks.{i}.convs.0.weight"] == 9

    # rename only (no target): every published norm kept, kernels at n' = 9
    renamed = load_published_fourier(pub.state_dict())
    assert renamed.state_dict["blocks.0.convs.0.weight"].shape == (3, 1, 9, 9)
    assert "blocks.3.nl.norms.28.bias" in renamed.state_dict
    assert set(renamed.dropped) == {
        *(f"L{i}.{b}" for i in range(4) for b in ("mat", "spectral_decay")),
        *(f"conv{i}.conv_i.weight" for i in range(4)),
    }


def test_fourier_seq_stl_onto_fourier_stl():
    channels, hidden = (2, 3, 3, 4), 6
    pub = PublishedStl(channels, hidden)
    randomize(pub, torch.Generator().manual_seed(12))
    target = create_model(
        "fourier_stl", channels=channels, hidden=hidden, modes=((64, 13), (32, 9), (16, 9))
    ).double()
    result = load_published_fourier(pub.state_dict(), target=target)
    target.load_state_dict(result.state_dict, strict=True)

    renames = {"projector": "blocks.0.skip", "PN": "blocks.0.nl", "res_dict": "head.mlp"}
    for i in range(3):
        renames |= {
            f"L{i}_1": f"blocks.{i + 1}.convs.0",
            f"L{i}_2": f"blocks.{i + 1}.convs.1",
            f"conv{i}": f"blocks.{i + 1}.skip",
            f"NL{i}_1": f"blocks.{i + 1}.inner.0",
            f"NL{i}_2": f"blocks.{i + 1}.nl",
        }
    check_copies(result, pub, renames)
    # our inner nonlinearities stop at the first resolution with every ring the next conv reads
    assert "NL0_1.norm.72.weight" in result.dropped
    assert "NL0_2.norm.72.weight" not in result.dropped
    for name, ours in renames.items():
        if name.startswith("L"):
            layer = target.get_submodule(ours)
            g, n = getattr(pub, name).mat.shape
            s = spatial(getattr(pub, name).L).real.transpose(0, 1)
            ours = layer.spatial_kernel().detach()
            expected = torch.zeros_like(ours)
            expected[..., :n, :n] = s
            assert float((ours - expected).abs().max()) < TOL, name
            assert layer.global_modes == g


def test_target_mismatches_rejected():
    pub = PublishedMist((3, 4, 5, 5), 8)
    state = pub.state_dict()
    with pytest.raises(ValueError, match=r"^L1\.L: 3 -> 4 channels, target 'blocks\.1\.convs\.0'"):
        load_published_fourier(
            state, target=create_model("fourier_mnist", channels=(3, 5, 5, 5), local_modes=9)
        )
    with pytest.raises(ValueError, match=r"^res_dict\.2\.weight: shape \(8, 20\) maps onto"):
        load_published_fourier(
            state, target=create_model("fourier_mnist", channels=(3, 4, 5, 5), local_modes=9)
        )
    three_blocks = {k: v for k, v in state.items() if not k.startswith(("L3", "conv3", "NL3"))}
    with pytest.raises(ValueError, match="the checkpoint has nothing for target keys"):
        load_published_fourier(
            three_blocks,
            target=create_model("fourier_mnist", channels=(3, 4, 5, 5), hidden=8, local_modes=9),
        )


def test_lightning_checkpoint_is_unwrapped():
    pub = PublishedConv2d(1, 1, 8, 3)
    randomize(pub, torch.Generator().manual_seed(2))
    plain = load_published_fourier(pub.state_dict())
    wrapped = load_published_fourier({"state_dict": pub.state_dict(), "epoch": 3})
    assert torch.equal(plain.state_dict["weight"], wrapped.state_dict["weight"])


def test_norms_without_a_slot_in_the_target_rejected():
    pub = PublishedMist((3, 4, 5, 5), 8)
    target = create_model(
        "fourier_mnist", channels=(3, 4, 5, 5), hidden=8, local_modes=9, normalization=None
    )
    with pytest.raises(ValueError, match=r"^NL0\.norm\.6\.weight: maps onto blocks\.0\.nl\.norms"):
        load_published_fourier(pub.state_dict(), target=target)


def test_mat_upcast_from_complex64_accepted():
    """A complex64 layer cast to complex128 carries a float32-rounded mat: same convention."""
    pub = PublishedConv2d(2, 2, 28, 5, dtype=torch.complex64)
    randomize(pub, torch.Generator().manual_seed(4))
    state = {
        k: v.to(torch.complex128) if v.is_complex() else v for k, v in pub.state_dict().items()
    }
    result = load_published_fourier(state)
    assert result.state_dict["weight"].dtype == torch.float64


@pytest.mark.parametrize(
    ("state", "message"),
    [
        (
            {"norm.weight": torch.ones(2), "norm.bias": torch.zeros(2)},
            r"^norm\.weight: not a parameter of a published",
        ),
        (
            {
                "L": torch.zeros(1, 1, 3, 3, dtype=torch.cfloat),
                "conv_r.weight": torch.zeros(1, 1, 1, 1),
            },
            r"mix published layers",
        ),
    ],
)
def test_bare_layer_refusals(state: dict, message: str):
    """A single shared norm (scaleEqNonlin1d, batch norm) has no per-resolution slot; two bare
    layers in one dict would both map onto ``weight``."""
    with pytest.raises(ValueError, match=message):
        load_published_fourier(state, global_modes=8)
