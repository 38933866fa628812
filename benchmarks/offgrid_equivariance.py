"""Off-grid equivariance of the Fourier nonlinearity: ours against the published layer's rule.

The published pooled nonlinearity (``scaleEqNonlinMaxp``, increment > 1) is re-implemented
below from its published definition (a loop over the grid up to the first point >= N, each
resolution reading ``down_sample_keepsize`` of the input, sigma, anti-alias and max-pool, the
new rings copied), so both run side by side on the same inputs and weights. Two testers, as in
issue 14: the published package's own (its input ``resample(complex=False)``, feature crops
with ``skip_nyq``, sum over the smaller sizes divided by the number of sizes) and an
independent ideal operator (our D_r: ||D_(r/p) f(x) - f(D_r x)||^2 / ||D_(r/p) f(x)||^2,
averaged). Setups: the published README's conv 3 -> 32 (G 28, n 7) + pooled sigmoid (base 32,
max 128, increment 32, pool 2), and the pooled sigmoid alone; inputs 8 white-noise samples at
112, down-scaled to 80 and 48 (112 and 80 are off the grid 32, 64, 96, 128). float64, CPU.
A third column runs the published rule with every ring taken wholly from the step that keeps
it (the published code takes the row -m of a step's first ring m from the previous pooled
grid's Nyquist row, which the smaller inputs share exactly). Last, the pooled sigmoid on the
grid (inputs at 128, down-scaled to 96 and 64).

    python benchmarks/offgrid_equivariance.py
"""

import math

import torch
import torch.nn.functional as F

from scale_datasets.ops.fourier import resample_spectrum
from scale_eq.fourier.nonlinearity import ScaleEqNonlinearity
from scale_eq.fourier.spectral_conv import SpectralConv2d

F64 = torch.float64


def pub_resample_real(x, num):
    X = torch.fft.rfft2(x, norm="forward")
    Y = X.new_zeros(*X.shape[:-2], num, num // 2 + 1)
    en = min(num // 2, x.shape[-1] // 2)
    if num % 2 == 0:
        Y[..., :en, : en + 1] = X[..., :en, : en + 1]
    else:
        Y[..., : en + 1, : en + 1] = X[..., : en + 1, : en + 1]
    Y[..., -en:, : en + 1] = X[..., -en:, : en + 1]
    return torch.fft.irfft2(Y, s=(num, num), norm="forward")


def pub_keepsize(X, num, keep, isfreq=True):
    if not isfreq:
        X = torch.fft.fft2(X, norm="forward")
    Y = X.new_zeros(*X.shape[:-2], keep, keep // 2 + 1)
    en = min(num // 2, X.shape[-2] // 2)
    if num % 2 == 0:
        Y[..., :en, : en + 1] = X[..., :en, : en + 1]
    else:
        Y[..., : en + 1, : en + 1] = X[..., : en + 1, : en + 1]
    Y[..., -en:, : en + 1] = X[..., -en:, : en + 1]
    return torch.fft.irfft2(Y, s=(keep, keep), norm="forward")


def pub_pooled_nl(x_ft, act, base, inc, p, nyquist_halves=True):
    """The published pooled nonlinearity. With ``nyquist_halves=False`` (an ablation, not the
    published code) the row -m of each step's first ring m is taken from the step that keeps
    ring m, not from the previous (pooled) grid's Nyquist row: every ring wholly from the
    step that keeps it, as in our definition."""
    x = torch.fft.ifft2(x_ft, norm="forward").real
    N = x.shape[-1]
    out_res = math.ceil(N / p)
    out = torch.zeros(*x.shape[:-2], out_res, out_res // 2 + 1, dtype=x_ft.dtype)
    xb = act(pub_resample_real(x, base))
    q = math.ceil(base / p)
    xb = F.max_pool2d(pub_keepsize(xb, q, base, isfreq=False), p, ceil_mode=True)
    res = xb.shape[-1]
    z = torch.fft.rfft2(xb, norm="forward")
    low = res // 2 if nyquist_halves else res // 2 - 1  # negative rows the base grid gives
    out[..., : res // 2, : res // 2 + 1] = z[..., : res // 2, : res // 2 + 1]
    out[..., -low:, : res // 2 + 1] = z[..., -low:, : res // 2 + 1]
    X = torch.fft.rfft2(x, norm="forward")
    prev = res // 2 + 1
    for r in range(base + inc, N + inc, inc):
        y = act(pub_keepsize(X, r - 1, r))
        y = F.max_pool2d(pub_keepsize(y, math.ceil(r / p), r, isfreq=False), p, ceil_mode=True)
        c = y.shape[-1]
        z = torch.fft.rfft2(y, norm="forward")
        t = min(out_res, c)
        stop = -(prev - 1) if nyquist_halves else -(prev - 2)  # negative rows end
        out[..., prev - 1 : t // 2, : t // 2 + 1] = z[..., prev - 1 : t // 2, : t // 2 + 1]
        out[..., -(t // 2) : stop, : t // 2 + 1] = z[..., -(t // 2) : stop, : t // 2 + 1]
        out[..., : t // 2, prev - 1 : t // 2 + 1] = z[..., : t // 2, prev - 1 : t // 2 + 1]
        out[..., -(t // 2) :, prev - 1 : t // 2 + 1] = z[..., -(t // 2) :, prev - 1 : t // 2 + 1]
        prev = t // 2 + 1
    return torch.fft.fft2(
        torch.fft.irfft2(out, s=(out_res, out_res), norm="forward"), norm="forward"
    )


def pub_complex_crop_skipnyq(f, num):  # published resample(complex=True, skip_nyq=True), real part
    X = torch.fft.fft2(f, norm="forward")
    Y = X.new_zeros(*X.shape[:-2], num, num)
    en = min(num // 2, f.shape[-1] // 2)
    Y[..., :en, :en] = X[..., :en, :en]
    Y[..., -en:, :en] = X[..., -en:, :en]
    Y[..., :en, -en:] = X[..., :en, -en:]
    Y[..., -en:, -en:] = X[..., -en:, -en:]
    Y[..., -en, :] = 0
    Y[..., :, -en] = 0
    return torch.fft.ifft2(Y, norm="forward")


def feature(f, img):
    return torch.fft.ifft2(f(torch.fft.fft2(img, norm="forward")), norm="forward").real


def published_tester(f, img, sizes):
    sizes = sorted(sizes, reverse=True)
    fh = feature(f, img)
    tot = 0
    for r in sizes[1:]:
        fl = feature(f, pub_resample_real(img, r))
        m = fl.shape[-1]
        a, b = pub_complex_crop_skipnyq(fh, m), pub_complex_crop_skipnyq(fl, m)
        e = (a - b).abs().square().sum((-1, -2)) / (a.abs().square().sum((-1, -2)) + 1e-6)
        tot = tot + e.mean(1)
    return (tot / len(sizes)).mean().item()


def independent(f, img, sizes, p):
    sizes = sorted(sizes, reverse=True)
    s = torch.fft.fft2(img, norm="forward")
    full = f(s)
    errs = []
    for r in sizes[1:]:
        q = math.ceil(r / p)
        a = resample_spectrum(full, q)
        b = f(resample_spectrum(s, r))
        errs.append(
            ((a - b).abs().square().sum((-1, -2)) / a.abs().square().sum((-1, -2))).mean().item()
        )
    return sum(errs) / len(errs)


def main() -> None:
    torch.manual_seed(0)
    sizes = [112, 80, 48]
    ours_nl = ScaleEqNonlinearity(
        torch.sigmoid, base_res=32, max_res=128, increment=32, pool_window=2
    ).double()

    def pub_nl(s):
        return pub_pooled_nl(s, torch.sigmoid, 32, 32, 2)

    def pub_nl_own_rings(s):
        return pub_pooled_nl(s, torch.sigmoid, 32, 32, 2, nyquist_halves=False)

    conv = SpectralConv2d(3, 32, 28, 7, dtype=F64)
    img3 = torch.randn(8, 3, 112, 112, dtype=F64)
    img32 = torch.randn(8, 32, 112, 112, dtype=F64)
    with torch.no_grad():
        for name, f_ours, f_pub, f_own, img in [
            (
                "README setup (conv 3->32, pooled sigmoid)",
                lambda s: ours_nl(conv(s)),
                lambda s: pub_nl(conv(s)),
                lambda s: pub_nl_own_rings(conv(s)),
                img3,
            ),
            ("pooled sigmoid alone", ours_nl, pub_nl, pub_nl_own_rings, img32),
        ]:
            print(name)
            for tester, fn in (
                ("published tester", lambda f, x: published_tester(f, x, sizes)),
                ("independent D_r", lambda f, x: independent(f, x, sizes, 2)),
            ):
                ours, pub, own = fn(f_ours, img), fn(f_pub, img), fn(f_own, img)
                print(
                    f"  {tester:17s} ours {ours:.2e}  published rule {pub:.2e}  "
                    f"published, rings wholly from their step {own:.2e}"
                )
        # on the grid: 128 down-scaled to 96 and 64
        on_grid = [128, 96, 64]
        img = torch.randn(8, 32, 128, 128, dtype=F64)
        print("pooled sigmoid alone, on the grid (128 / 96 / 64)")
        for tester, fn in (
            ("published tester", lambda f, x: published_tester(f, x, on_grid)),
            ("independent D_r", lambda f, x: independent(f, x, on_grid, 2)),
        ):
            ours, pub = fn(ours_nl, img), fn(pub_nl, img)
            print(f"  {tester:17s} ours {ours:.2e}  published rule {pub:.2e}")


if __name__ == "__main__":
    main()
