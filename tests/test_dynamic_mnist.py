"""Dynamic Scale MNIST: stored draws follow the chosen law, pixels equal PIL on the padded canvas,
per-epoch redraws, the per-scale evaluation grid, bins, train statistics and bad specs."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import PRESET_FIXTURES, debian_fashion_or_skip
from PIL import Image
from scale_datasets.cli.app import run
from scipy import stats
from torch.utils.data import DataLoader

from scale_datasets import ScaleDataset
from scale_datasets.build import build
from scale_datasets.distributions import parse_distribution
from scale_datasets.errors import InvalidParameterError
from scale_datasets.ops.pil_affine import affine_coefficients
from scale_datasets.presets.dynamic_mnist import PRESET, DynamicMNISTParams
from scale_datasets.sources import load_mnist_like

OPTIONS = PRESET_FIXTURES["dynamic-mnist"][1]


def pil_on_padded_canvas(digit: np.ndarray, scale: float, canvas: int) -> np.ndarray:
    """The protocol's reference: pad the digit onto the canvas, PIL affine BICUBIC about the
    canvas centre (torchvision's F.affine(scale=s) on the PIL image)."""
    padded = np.zeros((canvas, canvas), np.uint8)
    top = (canvas - digit.shape[0]) // 2
    left = (canvas - digit.shape[1]) // 2
    padded[top : top + digit.shape[0], left : left + digit.shape[1]] = digit
    coefficients = affine_coefficients(scale, (canvas, canvas), (canvas, canvas))
    image = Image.fromarray(padded).transform(
        (canvas, canvas), Image.Transform.AFFINE, coefficients, Image.Resampling.BICUBIC
    )
    return np.asarray(image)


@pytest.fixture(scope="module")
def built(fake_source: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("dynamic") / "dyn.h5"
    return build("dynamic-mnist", out, source_dir=fake_source, workers=1, **OPTIONS)


class Pool:
    """A stand-in source: MNIST's size and label mix, blank digits (cheap statistics)."""

    def __init__(self, n: int = 70_000) -> None:
        rng = np.random.default_rng(0)
        self.labels = rng.choice(10, n, p=np.linspace(0.8, 1.2, 10) / 10)
        self.images = np.zeros((n, 28, 28), np.uint8)


LAWS = [
    "uniform(1, 4)",
    "loguniform(1, 8)",
    "truncnorm(3, 1.5, 1, 8)",
    "trunclognorm(0.7, 0.4, 1, 8)",
    "cauchy(2, 0.5, 1, 8)",
    "mixture(0.3 * uniform(1, 2), 0.7 * trunclognorm(0.7, 0.4, 1, 8))",
]


@pytest.mark.parametrize("law", LAWS)
def test_stored_draws_follow_the_law(law: str):
    params = DynamicMNISTParams(
        realisations=(0,), n_train=50, n_val=0, n_test=50_000, test_distribution=law
    )
    plan = PRESET.plan(params, Pool())
    test = next(s for s in plan.splits if s.group.endswith("/test"))
    scales = test.columns["scales"]
    assert len(scales) == 50_000 and scales.dtype == np.float32  # as files store them
    assert stats.kstest(scales.astype(np.float64), parse_distribution(law).cdf).pvalue > 1e-3


def test_a_discrete_law_gives_equal_counts():
    params = DynamicMNISTParams(
        realisations=(0,),
        n_train=50,
        n_val=0,
        n_test=50_001,
        test_distribution="discrete(1, 2, 4, 8)",
    )
    test = next(s for s in PRESET.plan(params, Pool()).splits if s.group.endswith("/test"))
    values, counts = np.unique(test.columns["scales"], return_counts=True)
    assert values.tolist() == [1, 2, 4, 8] and counts.max() - counts.min() <= 1


def test_items_equal_pil_on_the_padded_canvas(built: Path, fake_source: Path):
    source = load_mnist_like(source_dir=fake_source)
    canvas = OPTIONS["canvas"]
    ds = ScaleDataset(built, "test", return_scale=True)
    for i in range(0, len(ds), 7):
        image, label, scale = ds[i]
        assert image.shape == (1, canvas, canvas) and label == ds.labels[i]
        expected = pil_on_padded_canvas(source.images[ds.source_index[i]], scale, canvas)
        got = np.rint(image[0].numpy() * 255).astype(np.int16)
        assert np.abs(got - expected).max() <= 1


def test_the_evaluation_grid_is_scale_major_and_crops_large_digits(built: Path, fake_source):
    source = load_mnist_like(source_dir=fake_source)
    grid = np.logspace(-1, 3.5, 45, base=2)  # 0.5 .. 11.31, as Basting et al. evaluate
    ds = ScaleDataset(built, "val", scales=grid, return_scale=True)
    n = len(ScaleDataset(built, "val"))
    assert len(ds) == 45 * n
    for j in (0, n - 1, 7 * n + 3, 44 * n + 5):
        image, label, scale = ds[j]
        assert scale == pytest.approx(grid[j // n]) and label == ds.labels[j % n]
        digit = source.images[ds.source_index[j % n]]
        expected = pil_on_padded_canvas(digit, float(np.float32(grid[j // n])), 56)
        assert np.abs(np.rint(image[0].numpy() * 255) - expected).max() <= 1
    # scale 11.3 on a 56 canvas: the digit overflows the canvas and is cropped, not shrunk
    assert ds[44 * n][0].shape == (1, 56, 56)


def test_per_epoch_redraws_are_shared_by_workers_and_follow_the_law(built: Path):
    fixed = ScaleDataset(built, "train", return_scale=True)
    ds = ScaleDataset(built, "train", redraw="per-epoch", return_scale=True)
    assert np.array_equal(ds.scales, fixed.scales)  # epoch 0 is the stored draw
    ds.set_epoch(1)
    first = ds.scales.copy()
    ds.set_epoch(2)
    assert not np.array_equal(first, ds.scales)
    again = ScaleDataset(built, "train", redraw="per-epoch", in_memory=False, return_scale=True)
    again.set_epoch(2)
    assert np.array_equal(again.scales, ds.scales)
    assert parse_distribution(OPTIONS["distribution"]).support[0] <= ds.scales.min()
    seen = {}
    for workers, method in ((0, None), (2, "spawn")):
        extra = {"multiprocessing_context": method} if method else {}
        loader = DataLoader(again, batch_size=16, num_workers=workers, **extra)
        seen[workers] = torch.cat([batch[2] for batch in loader])
    assert torch.equal(seen[0], seen[2]) and np.allclose(seen[0].numpy(), ds.scales)


def test_per_epoch_redraws_follow_the_law_in_distribution():
    params = DynamicMNISTParams(realisations=(0,), distribution="loguniform(1, 8)")
    draws = PRESET.redraw(json.loads(params.to_json()), 0, "train", 3, 50_000).astype(np.float64)
    assert stats.kstest(draws, parse_distribution("loguniform(1, 8)").cdf).pvalue > 1e-3


def test_bins_and_train_statistics(built: Path, fake_source: Path):
    ds = ScaleDataset(built, "train", return_scale=True, return_scale_bin=True)
    _, _, scale, scale_bin = ds[3]
    assert scale_bin == round(28 * scale) - 28  # floor(28 * 1): the law's lower bound is 1
    rendered = np.stack([np.rint(ds[i][0][0].numpy() * 255) for i in range(len(ds))]) / 255
    assert ds.mean == pytest.approx(rendered.mean(), abs=1e-6)
    assert ds.std == pytest.approx(rendered.std(), abs=1e-6)
    assert ScaleDataset(built, "test").mean == ds.mean  # every split uses the train statistics


def test_bad_specs_exit_2_with_one_line(built, fake_source, tmp_path, capsys):
    for spec, problem in (
        ("foo(1, 2)", "unknown law 'foo'"),
        ("uniform(2, 1)", "lo must be < hi"),
        ("uniform(0, 1)", "lo must be > 0"),
        ("truncnorm(2, 0, 1, 4)", "sd must be > 0"),
        ("mixture(0.5 * uniform(1, 2), 0.4 * uniform(2, 3))", "weights must sum to 1"),
    ):
        args = ["build", "dynamic-mnist", "--source-dir", str(fake_source), "--out"]
        assert run([*args, str(tmp_path / "x.h5"), "--distribution", spec]) == 2
        err = capsys.readouterr().err.strip()
        assert problem in err and spec in err and "\n" not in err, err
    with pytest.raises(InvalidParameterError, match="redraw: must be one of"):
        ScaleDataset(built, redraw="sometimes")


def test_real_fashion_mnist_three_realisations_of_loguniform(tmp_path):
    debian_fashion_or_skip()
    path = build(
        "dynamic-mnist",
        tmp_path / "dyn.h5",
        source="fashion-mnist",
        download=False,
        distribution="loguniform(1, 8)",
    )
    source = load_mnist_like("fashion-mnist", download=False)
    law = parse_distribution("loguniform(1, 8)")
    for k in (0, 1, 2):
        sizes = {
            s: len(ScaleDataset(path, s, k, in_memory=False)) for s in ("train", "val", "test")
        }
        assert sizes == {"train": 10_000, "val": 5_000, "test": 50_000}
    test = ScaleDataset(path, "test", 2, return_scale=True)
    assert stats.kstest(test.scales.astype(np.float64), law.cdf).pvalue > 1e-3
    for i in np.random.default_rng(0).choice(len(test), 40, replace=False):
        image, _, scale = test[int(i)]
        expected = pil_on_padded_canvas(source.images[test.source_index[i]], scale, 168)
        assert np.abs(np.rint(image[0].numpy() * 255) - expected).max() <= 1


def test_render_on_device_hands_over_digits_that_render_batch_renders(built: Path):
    rendered = ScaleDataset(built, "test", return_scale=True)
    handed = ScaleDataset(built, "test", render_on="device", in_memory=False)
    digits, labels, scales = next(iter(DataLoader(handed, batch_size=9)))
    assert digits.dtype == torch.uint8 and digits.shape == (9, 28, 28)
    images = handed.render_batch(digits, scales)  # on the digits' device (the CPU here)
    expected = torch.stack([rendered[i][0] for i in range(9)])
    assert images.shape == (9, 1, 56, 56) and torch.equal(images, expected)
    assert labels.tolist() == rendered.labels[:9].tolist()
    with pytest.raises(InvalidParameterError, match="render_on: 'device'"):
        ScaleDataset(built, "test", render_on="device", transform=lambda x: x)


def test_the_torch_renderer_behind_a_device_matches_within_one_grey_level(built: Path):
    """What render_batch does on a GPU (the op's torch renderer), run on the CPU."""
    from scale_datasets.ops.render import get_render_op

    ds = ScaleDataset(built, "test", return_scale=True)
    op = get_render_op("pil_affine_canvas")
    handed = ScaleDataset(built, "test", render_on="device")
    digits = torch.stack([handed[i][0] for i in range(16)])
    scales = torch.from_numpy(ds.scales[:16])
    on_device = op.torch_fn(digits, scales, canvas=56, interpolation="bicubic")
    expected = torch.stack([torch.round(ds[i][0][0] * 255) for i in range(16)])
    assert (on_device.float() - expected).abs().max().item() <= 1


@pytest.mark.parametrize("method", ["fork", "spawn"])
def test_persistent_workers_follow_set_epoch(built: Path, method: str):
    reference = ScaleDataset(built, "train", redraw="per-epoch")
    ds = ScaleDataset(built, "train", redraw="per-epoch", return_scale=True)
    loader = DataLoader(
        ds, batch_size=32, num_workers=2, persistent_workers=True, multiprocessing_context=method
    )
    for epoch in (0, 1, 2):
        ds.set_epoch(epoch)
        reference.set_epoch(epoch)
        seen = torch.cat([batch[2] for batch in loader]).numpy()
        np.testing.assert_array_equal(seen.astype(np.float32), reference.scales)


def test_a_test_law_equal_to_the_train_law_is_the_default():
    same = DynamicMNISTParams(distribution="loguniform(1, 8)", test_distribution="loguniform(1,8)")
    assert same == DynamicMNISTParams(distribution="loguniform(1, 8)")


def test_other_presets_fall_back_to_their_normalisation_constants(small_build):
    ds = ScaleDataset(small_build, "train")
    assert (ds.mean, ds.std) == (0.0607, 0.2161)


def test_the_evaluation_metric_refuses_unrendered_digits(built: Path):
    import scale_eq

    handed = ScaleDataset(built, "test", render_on="device")
    with pytest.raises(InvalidParameterError, match="render_on='device'"):
        scale_eq.accuracy_per_scale(torch.nn.Flatten(), handed)


USER_LAW = """
import numpy as np
import scale_datasets as sd

@sd.register_distribution("twopt")
class TwoPoint:
    def __init__(self, a, b):
        self.a, self.b = a, b
    def sample(self, rng, n):
        return np.where(rng.random(n) < 0.5, self.a, self.b)
    support = (1.0, 8.0)
"""


def test_a_file_built_with_a_user_law_loads_and_merges_anywhere(fake_source, tmp_path):
    """Built where the law is registered; read, merged and redrawn in fresh processes."""
    import subprocess
    import sys

    options = dict(OPTIONS, realisations=1, distribution="twopt(1.5, 3)")
    script = USER_LAW + (
        "from scale_datasets.build import build\n"
        "if __name__ == '__main__':\n"
        + "".join(
            f"    build('dynamic-mnist', {str(tmp_path / name)!r}, source_dir={str(fake_source)!r},"
            f" workers=1, shard={shard!r}, **{options!r})\n"
            for name, shard in (("one.h5", None), ("s1.h5", "1/2"), ("s2.h5", "2/2"))
        )
    )
    (tmp_path / "make.py").write_text(script)
    subprocess.run([sys.executable, str(tmp_path / "make.py")], check=True, cwd=tmp_path)
    merged = subprocess.run(
        [sys.executable, "-m", "scale_datasets.cli", "merge", "s1.h5", "s2.h5", "--out", "m.h5"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    assert merged.returncode == 0, merged.stderr
    assert "scale law of train and val: twopt(1.5, 3.0)" in (tmp_path / "m.card.md").read_text()
    fresh = (
        "from scale_datasets import ScaleDataset\n"
        f"ds = ScaleDataset({str(tmp_path / 'm.h5')!r}, 'train', redraw='per-epoch')\n"
        "print(sorted(set(ds.scales.tolist())))\n"
        "ds.set_epoch(1)\n"
    )
    run_fresh = subprocess.run([sys.executable, "-c", fresh], capture_output=True, text=True)
    assert run_fresh.stdout.strip() == "[1.5, 3.0]"
    assert "register it with scale_datasets.register_distribution" in run_fresh.stderr
