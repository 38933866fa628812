"""Fourier models and the registry: exact equivariance of features and logits, gradients, sizes."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import scale_eq
from scale_datasets.ops.fourier import resample, resample_1d
from scale_eq import create_model, list_models, register_model, registry
from scale_eq.fourier.head import consistency_loss
from scale_eq.fourier.models import FourierClassifier, FourierOutput
from scale_eq.fourier.nonlinearity import ScaleEqNonlinearity, ScaleEqNonlinearity1d
from scale_eq.fourier.spectral_conv import SpectralConv2d
from scale_eq.metrics import equivariance_error, final_features

TOL = {torch.float64: 1e-10, torch.float32: 1e-5}


def _x(shape: tuple[int, ...], seed: int, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=dtype)


def _model(name: str, dtype: torch.dtype, **kw) -> FourierClassifier:
    torch.manual_seed(0)
    return create_model(name, **kw).to(dtype).eval()


def _check_logits(model: FourierClassifier, x: torch.Tensor, sizes, down, tol: float) -> None:
    """model(D_r x)'s logits == the full input's per-scale entry for r's feature size.

    Measured like the equivariance error: squared difference over squared norm, per sample.
    """
    with torch.no_grad():
        full = model(x, return_all=True)
        for r in sizes:
            small = model(down(x, r))
            ref = full.per_scale_logits[:, full.resolutions.index(model.feature_size(r))]
            err = (small - ref).square().sum(-1) / ref.square().sum(-1)
            assert err.max().item() <= tol, r


# ----------------------------------------------------------------------------- registry


def test_registry_lists_and_builds_models():
    names = list_models()
    assert {"fourier_mnist", "fourier_stl", "fourier_1d", "cnn_mnist", "sesn_toy"} <= set(names)
    assert {f"sesn_mnist_{k}" for k in ("scalar", "vector", "isr", "spacing", "direct")} <= set(
        names
    )
    assert names == sorted(names)
    model = create_model("fourier_mnist", width=0.25, num_classes=3)
    assert isinstance(model, nn.Module)
    assert model.blocks[0].spec.out_channels == 8 and model.head.num_classes == 3


def test_unknown_model_names_the_available_ones():
    with pytest.raises(ValueError, match="fourier_mnist"):
        create_model("no_such_model")


def test_register_model_rejects_a_second_owner_of_a_name():
    try:

        @register_model("test_only_tiny")
        def tiny(**kw) -> nn.Module:
            return nn.Linear(1, kw.get("out", 1))

        assert create_model("test_only_tiny", out=3).out_features == 3
        assert "test_only_tiny" in list_models()
        with pytest.raises(ValueError, match="already registered"):

            @register_model("test_only_tiny")
            def other() -> nn.Module:
                return nn.Linear(2, 2)

    finally:
        registry._REGISTRY.pop("test_only_tiny", None)


def test_package_exports_layers_lazily():
    assert scale_eq.SpectralConv2d is SpectralConv2d
    assert scale_eq.FourierClassifier is FourierClassifier
    assert callable(scale_eq.equivariance_error) and callable(scale_eq.consistency_loss)
    assert {"create_model", "list_models", "SpectralSkip"} <= set(scale_eq.__all__)
    with pytest.raises(AttributeError):
        _ = scale_eq.no_such_name


# ----------------------------------------------------------------------------- equivariance


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_fourier_mnist_features_and_logits_are_exact_at_every_resolution(dtype):
    model = _model("fourier_mnist", dtype, width=0.25)
    x = _x((3, 1, 28, 28), 1, dtype)
    sizes = range(8, 29)
    report = equivariance_error(final_features(model), x, sizes, output_spectrum=True)
    assert max(report.per_resolution.values()) <= TOL[dtype]
    assert report.per_sample[8].shape == (3,)
    _check_logits(model, x, sizes, resample, TOL[dtype])


def test_fourier_mnist_is_exact_from_an_odd_size_too():
    model = _model("fourier_mnist", torch.float64, width=0.125)
    x = _x((2, 1, 19, 19), 2)
    report = equivariance_error(final_features(model), x, range(8, 20), output_spectrum=True)
    assert max(report.per_resolution.values()) <= 1e-10


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_fourier_stl_is_exact_on_its_grid(dtype):
    """Reduced width; input 97 (the 96 x 96 image on a 97 grid), grid points 40..96 step 8."""
    model = _model("fourier_stl", dtype, width=0.0625)
    assert model.resolution_grid == (40, 48, 56, 64, 72, 80, 88, 96)
    assert model.feature_size(97) == 25 and model.feature_size(48) == 12
    x = _x((2, 3, 97, 97), 3, dtype)
    sizes = (40, 56, 72, 96) if dtype == torch.float64 else (48, 96)
    report = equivariance_error(
        final_features(model), x, sizes, output_spectrum=True, pool_window=4
    )
    assert max(report.per_resolution.values()) <= TOL[dtype]
    _check_logits(model, x, sizes, resample, TOL[dtype])


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_fourier_1d_is_exact_at_every_length(dtype):
    model = _model("fourier_1d", dtype, width=0.125)
    x = _x((3, 1, 128), 4, dtype)
    # every 6th length and the longest ones (each new length builds the nonlinearities' plans)
    sizes = [*range(16, 125, 6 if dtype == torch.float64 else 12), 127, 128]
    report = equivariance_error(final_features(model), x, sizes, output_spectrum=True, dims=1)
    assert max(report.per_resolution.values()) <= TOL[dtype]
    _check_logits(model, x, sizes, resample_1d, TOL[dtype])


# ----------------------------------------------------------------------------- outputs


def test_forward_outputs():
    model = _model("fourier_mnist", torch.float32, width=0.125)
    x = _x((2, 1, 20, 20), 5, torch.float32)
    with torch.no_grad():
        logits = model(x)
        out = model(x, return_all=True)
    assert isinstance(out, FourierOutput)
    assert logits.shape == (2, 10) and torch.equal(logits, out.logits)
    assert out.resolutions == tuple(range(8, 21))
    assert out.per_scale_logits.shape == (2, 13, 10)
    assert torch.equal(out.logits, out.per_scale_logits[:, -1])
    assert out.features.shape == (2, 12, 20, 20) and out.features.is_complex()
    assert out.feature_map.dtype == torch.float32
    expected = torch.fft.ifft2(out.features, norm="forward").real
    assert torch.allclose(out.feature_map, expected)
    # float64 inputs into a float32 model are cast, not rejected
    with torch.no_grad():
        assert torch.allclose(model(x.double()), logits)
    with pytest.raises(ValueError):
        model(_x((2, 3, 20, 20), 6, torch.float32))  # wrong channel count


def test_stl_output_sizes():
    model = _model("fourier_stl", torch.float32, width=0.0625)
    with torch.no_grad():
        out = model(_x((1, 3, 57, 57), 7, torch.float32), return_all=True)
    assert out.features.shape[-1] == 15 and out.resolutions == (10, 12, 14, 15)


# ----------------------------------------------------------------------------- training


def _unused_norms(model: nn.Module, n: int) -> set[str]:
    """Norm parameters of nonlinearity resolutions that bring no ring (no gradient by design).

    ``ScaleEqNonlinearity`` creates a norm for every grid resolution but, with increment 1,
    r = 2m + 2 adds no ring after 2m + 1, so its norm is never used. Inputs of every block
    are followed to know each nonlinearity's input size.
    """
    unused: set[str] = set()
    for name, module in model.named_modules():
        if isinstance(module, (ScaleEqNonlinearity, ScaleEqNonlinearity1d)) and module.norms:
            used = {s.res for s in module.schedule(module.max_res)}
            for r in module.norms:
                if int(r) not in used:
                    unused |= {f"{name}.norms.{r}.weight", f"{name}.norms.{r}.bias"}
    return unused


@pytest.mark.parametrize(
    ("name", "shape", "width"),
    [
        ("fourier_mnist", (4, 1, 28, 28), 0.125),
        ("fourier_stl", (2, 3, 97, 97), 0.0625),
        ("fourier_1d", (4, 1, 128), 0.125),
    ],
)
def test_gradient_reaches_every_parameter(name, shape, width):
    torch.manual_seed(8)
    model = create_model(name, width=width)
    out = model(_x(shape, 9, torch.float32), return_all=True)
    target = torch.arange(shape[0]) % 10
    consistency_loss(out.per_scale_logits, target).backward()
    dead = {n for n, p in model.named_parameters() if p.grad is None or not p.grad.any()}
    assert dead <= _unused_norms(model, shape[-1]), sorted(dead)
    for module in model.modules():
        if hasattr(module, "local_modes"):  # every tap of every spatial kernel is trained
            assert module.weight.grad.ne(0).all()


def test_no_nonlinearity_holds_unused_norms():
    for name in ("fourier_mnist", "fourier_1d"):
        assert not _unused_norms(create_model(name, width=0.125), 0)


def test_one_training_step_lowers_the_loss():
    torch.manual_seed(10)
    model = create_model("fourier_mnist", width=0.125, dropout_hidden=0.0)
    x, y = _x((8, 1, 16, 16), 11, torch.float32), torch.arange(8) % 10
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    losses = []
    for _ in range(3):
        opt.zero_grad()
        loss = consistency_loss(model(x, return_all=True).per_scale_logits, y)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0]


# ----------------------------------------------------------------------------- sizes


def _count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def test_parameter_counts():
    """Full-width counts (real parameters), as the README prints them; the published counts
    (619,114 and 14,192,138) are of complex entries."""
    counts = {name: _count(create_model(name)) for name in ("fourier_mnist", "fourier_stl")}
    counts["fourier_1d"] = _count(create_model("fourier_1d"))
    assert counts == {"fourier_mnist": 594_122, "fourier_stl": 14_015_146, "fourier_1d": 658_186}
    mnist = create_model("fourier_mnist")
    conv = sum(_count(b.convs) for b in mnist.blocks)
    assert conv == 25 * (1 * 32 + 32 * 64 + 64 * 100 + 100 * 100)  # 462,000 as published
    assert sum(_count(b.skip) for b in mnist.blocks) == 32 + 32 * 64 + 64 * 100 + 100 * 100
    assert _count(mnist.head) == 2 * 400 + 400 * 256 + 256 + 2 * 256 + 256 * 10 + 10


@pytest.mark.parametrize("pool_window", [1, 2])
def test_the_loop_implementation_equals_the_batched_layer(pool_window):
    from scale_eq.fourier.nonlinearity import ScaleEqNonlinearity

    torch.manual_seed(0)
    kw = dict(base_res=6, max_res=20, channels=3, normalization="instance", pool_window=pool_window)
    batched = ScaleEqNonlinearity(**kw).double()
    loop = ScaleEqNonlinearity(**kw, impl="loop").double()
    loop.load_state_dict(batched.state_dict())
    x = torch.fft.fft2(torch.randn(2, 3, 20, 20, dtype=torch.float64), norm="forward")
    torch.testing.assert_close(loop(x), batched(x), rtol=0, atol=1e-12)
    assert "impl='loop'" in repr(loop)
    with pytest.raises(ValueError, match="impl must be one of"):
        ScaleEqNonlinearity(**kw, impl="fast")


@pytest.mark.parametrize("name", ["fourier_mnist", "fourier_1d"])
def test_a_models_nonlinearity_can_be_swapped_through_the_seam(name):
    import functools

    from scale_eq.fourier.nonlinearity import ScaleEqNonlinearity, ScaleEqNonlinearity1d

    cls = ScaleEqNonlinearity1d if name == "fourier_1d" else ScaleEqNonlinearity
    made: list[nn.Module] = []

    def factory(**kw):
        layer = cls(**kw, impl="loop")
        made.append(layer)
        return layer

    torch.manual_seed(0)
    batched = create_model(name, width=0.125).double().eval()
    torch.manual_seed(0)
    looped = create_model(name, width=0.125, nonlinearity=factory).double().eval()
    nls = [m for m in batched.modules() if isinstance(m, cls)]
    assert len(made) == len(nls) > 0
    looped.load_state_dict(batched.state_dict())
    shape = (2, 1, 20) if name == "fourier_1d" else (2, 1, 20, 20)
    x = torch.randn(*shape, dtype=torch.float64)
    with torch.no_grad():
        torch.testing.assert_close(looped(x), batched(x), rtol=0, atol=1e-10)
    partial = functools.partial(cls, impl="loop")
    swapped = create_model(name, width=0.125, nonlinearity=partial)
    impls = {m.impl for m in swapped.modules() if isinstance(m, cls)}
    assert impls == {"loop"}  # every block's nonlinearity, inner ones too
