"""The published package's API (scale_eq.layers.*) runs its README example unmodified."""

from __future__ import annotations

import math

import pytest
import torch

from scale_datasets.ops.fourier import resample, resample_spectrum
from scale_eq.fourier.nonlinearity import ScaleEqNonlinearity
from scale_eq.fourier.spectral_conv import SpectralConv2d
from scale_eq.layers.scalq_eq_nonlin import scaleEqNonlin, scaleEqNonlin1d, scaleEqNonlinMaxp
from scale_eq.layers.spectral_conv import SpectralConv2dLocalized, SpectralConvLocalized1d

# The "Getting Started" code of the published README, verbatim (its four blocks in order).
README_EXAMPLE = """
from scale_eq.layers.spectral_conv import SpectralConv2dLocalized
from scale_eq.layers.scalq_eq_nonlin import scaleEqNonlinMaxp
import torch

seq_conv = SpectralConv2dLocalized(
    in_channel=3,          # Input image has 3 channels (e.g., RGB)
    out_channel=32,        # Output has 32 channels
    global_modes=28,       # Captures global patterns (~ half of input size for speed)
    local_modes=7          # Captures fine-scale features
)

seq_nonlin = scaleEqNonlinMaxp(
    torch.nn.functional.sigmoid,  # Non-linearity to apply (can be ReLU, GELU, etc.)
    base_res=32,                  # Minimum resolution (lowest scale)
    normalization=None,           # Optional: apply normalization
    max_res=128,                  # Maximum resolution (highest scale)
    increment=32,                 # Controls scale skipping (1 = full equivariance, >1 = faster)
    channels=32,                  # Number of feature channels
    pool_window=2                 # Window size for max pooling
)

random_input = torch.randn(1, 3, 128, 128).to(torch.float)

with torch.no_grad():
    # Step 1: Forward FFT for frequency domain processing
    conv_out = seq_conv(torch.fft.fft2(random_input, norm='forward'))

    # Step 2: Apply scale-equivariant nonlinearity + pooling
    nonlin_out = seq_nonlin(conv_out)

    # Step 3: Inverse FFT to bring back to spatial domain
    real_output = torch.fft.ifft2(nonlin_out, norm='forward').real

    print("Input Shape: ", random_input.shape)
    print("Convolved Output Shape: ", real_output.shape)
"""


def _run_readme() -> dict:
    namespace: dict = {}
    exec(compile(README_EXAMPLE, "README.md", "exec"), namespace)
    return namespace


def test_readme_example_runs_unmodified(capsys):
    ns = _run_readme()
    assert ns["real_output"].shape == (1, 32, 64, 64)
    assert ns["real_output"].dtype == torch.float32
    assert "Convolved Output Shape:  torch.Size([1, 32, 64, 64])" in capsys.readouterr().out
    assert isinstance(ns["seq_conv"], SpectralConv2d)
    assert isinstance(ns["seq_nonlin"], ScaleEqNonlinearity)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_readme_example_is_equivariant_on_its_grid(dtype, capsys):
    """conv -> pooled NL is exact at the grid 32, 64, 96 (base 32, increment 32) of 128."""
    ns = _run_readme()
    conv, nonlin = ns["seq_conv"].to(dtype), ns["seq_nonlin"]
    x = ns["random_input"].to(dtype)

    def layer(t: torch.Tensor) -> torch.Tensor:
        return nonlin(conv(torch.fft.fft2(t, norm="forward")))

    with torch.no_grad():
        full = layer(x)
        for r in (32, 64, 96):
            small = layer(resample(x, r))
            assert small.shape[-1] == math.ceil(r / 2)
            ref = resample_spectrum(full, small.shape[-1])
            err = (ref - resample_spectrum(small, small.shape[-1])).abs().square().sum()
            tol = 1e-5 if dtype == torch.float32 else 1e-10
            assert (err / ref.abs().square().sum()).item() <= tol, r


def test_published_argument_forms():
    conv = SpectralConv2dLocalized(2, 4, 16, 5)
    assert conv.weight.dtype == torch.float32 and conv.weight.shape == (4, 2, 5, 5)
    assert SpectralConv2dLocalized(2, 4, 16, 5, dtype=torch.cdouble).weight.dtype == torch.float64
    x = torch.randn(1, 2, 20, 20)
    with torch.no_grad():
        assert conv(torch.fft.fft2(x, norm="forward"), pool=True).shape == (1, 4, 16, 16)
        assert conv.get_feature(x).shape == (1, 4, 20, 20)
    conv1 = SpectralConvLocalized1d(1, 3, 28, 7)
    with torch.no_grad():
        assert conv1(torch.fft.fft(torch.randn(2, 1, 40), norm="forward")).shape == (2, 3, 40)

    nl = scaleEqNonlin(torch.relu, 6, "instance", 4)  # published positional order
    assert nl.base_res == 6 and nl.max_res == 28 and nl.norms is not None
    pooled = scaleEqNonlinMaxp(activation=torch.relu, base_res=8, channels=4, max_res=20)
    assert pooled.pool_window == 2
    with torch.no_grad():
        spec = torch.fft.fft2(torch.randn(1, 4, 20, 20), norm="forward")
        assert nl(spec).shape == (1, 4, 20, 20)
        assert pooled(spec).shape == (1, 4, 10, 10)
        assert pooled.get_feature(torch.randn(1, 4, 20, 20)).shape == (1, 4, 10, 10)
    nl1 = scaleEqNonlin1d(torch.tanh, 8, None, None, max_res=40)
    with torch.no_grad():
        assert nl1.get_feature(torch.randn(2, 3, 40)).shape == (2, 3, 40)
    with pytest.raises(TypeError):
        scaleEqNonlin(torch.relu, 6, activation=torch.tanh)
