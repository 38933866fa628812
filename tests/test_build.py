"""Whole builds on a fake source: determinism, shards, pixels, atomicity, the card."""

from __future__ import annotations

import errno
from pathlib import Path

import h5py
import numpy as np
import pytest
from conftest import SMALL

from scale_datasets.build import build, merge
from scale_datasets.errors import InvalidParameterError, OutputExistsError
from scale_datasets.ops.scaling import pil_scale_about_centre
from scale_datasets.parallel import ordered_map
from scale_datasets.sources import load_mnist_like
from scale_datasets.storage.reader import read_info
from scale_datasets.storage.verify import verify_file
from scale_datasets.storage.writer import StreamingWriter


def _arrays(path: Path) -> dict[str, np.ndarray]:
    out: dict[str, np.ndarray] = {}

    def visit(name: str, obj: object) -> None:
        if isinstance(obj, h5py.Dataset):
            out[name] = obj[()]

    with h5py.File(path, "r") as h5:
        h5.visititems(visit)
    return out


def _small(out: Path, source: Path, **options: object) -> Path:
    """An mnist-scale build of ``source`` at the SMALL split sizes."""
    return build("mnist-scale", out, source_dir=source, **SMALL, **options)


def test_legacy_centre_renders_about_torchvisions_old_centre(fake_source, tmp_path):
    path = _small(tmp_path / "legacy.h5", fake_source, realisations=1, centre="legacy")
    source = load_mnist_like(source_dir=fake_source)
    with h5py.File(path, "r") as h5:
        g = h5["realisation_0/val"]
        images, scales, index = g["images"][:], g["scales"][:], g["source_index"][:]
    differs = 0
    for image, scale, i in zip(images, scales, index, strict=True):
        expected = pil_scale_about_centre(source.images[i], float(scale), centre="legacy")
        assert np.array_equal(image, expected)
        differs += not np.array_equal(image, pil_scale_about_centre(source.images[i], float(scale)))
    assert differs == len(images)


def _negate(_state: None, values: np.ndarray) -> np.ndarray:
    return -values


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if ".tmp-" in p.name)


def test_layout_and_columns(small_build: Path, fake_source: Path):
    source = load_mnist_like(source_dir=fake_source)
    with h5py.File(small_build, "r") as h5:
        assert h5.attrs["format"] == "scale-datasets" and h5.attrs["format_version"] == 2
        assert sorted(h5) == ["realisation_0", "realisation_1"]
        for k in (0, 1):
            assert h5[f"realisation_{k}"].attrs["realisation"] == k
            for split, n in (("train", 120), ("val", 30), ("test", 250)):
                g = h5[f"realisation_{k}/{split}"]
                assert g["images"].shape == (n, 28, 28) and g["images"].dtype == np.uint8
                assert g["scales"].dtype == np.float32 and g["source_index"].dtype == np.int32
                assert np.array_equal(g["labels"][:], source.labels[g["source_index"][:]])
                assert g["images"].compression == "gzip" and g["images"].fletcher32


def test_pixels_equal_pil_for_every_stored_sample(small_build: Path, fake_source: Path):
    source = load_mnist_like(source_dir=fake_source)
    with h5py.File(small_build, "r") as h5:
        g = h5["realisation_1/val"]
        for image, scale, index in zip(
            g["images"][:], g["scales"][:], g["source_index"][:], strict=True
        ):
            expected = pil_scale_about_centre(source.images[index], float(scale))
            assert np.array_equal(image, expected)


def test_same_params_same_hash_across_runs_and_worker_counts(small_build, fake_source, tmp_path):
    again = _small(tmp_path / "a.h5", fake_source, realisations=2, workers=2)
    assert read_info(again).content_sha256 == read_info(small_build).content_sha256
    first, second = _arrays(small_build), _arrays(again)
    assert first.keys() == second.keys()
    assert all(np.array_equal(first[k], second[k]) for k in first)


def test_three_shards_merged_equal_one_build(small_build, fake_source, tmp_path):
    shards = [
        _small(tmp_path / f"s{i}.h5", fake_source, realisations=2, workers=1, shard=f"{i}/3")
        for i in (3, 1, 2)
    ]
    assert read_info(shards[1]).shard == {"index": 1, "count": 3}
    for shard in shards:
        verify_file(shard)
    merged = merge(shards, tmp_path / "merged.h5")
    assert read_info(merged).content_sha256 == read_info(small_build).content_sha256
    assert verify_file(merged).content_sha256 == read_info(small_build).content_sha256
    assert read_info(merged).shard is None


def test_merge_refuses_incomplete_or_foreign_shards(fake_source, tmp_path):
    one = _small(tmp_path / "s1.h5", fake_source, realisations=1, workers=1, shard="1/2")
    other = _small(tmp_path / "o2.h5", fake_source, realisations=1, workers=1, shard="2/2", seed=5)
    with pytest.raises(Exception, match=r"need shards 1/2 \.\. 2/2"):
        merge([one], tmp_path / "m.h5")
    with pytest.raises(Exception, match="differ in params"):
        merge([one, other], tmp_path / "m.h5")
    assert not (tmp_path / "m.h5").exists()


def test_one_realisation_alone_equals_it_among_others(small_build, fake_source, tmp_path):
    alone = _small(tmp_path / "r1.h5", fake_source, realisation_ids=(1,), workers=1)
    with h5py.File(alone, "r") as a, h5py.File(small_build, "r") as b:
        assert (
            a["realisation_1"].attrs["content_sha256"] == b["realisation_1"].attrs["content_sha256"]
        )
        for split in ("train", "val", "test"):
            for column in ("images", "labels", "scales", "source_index"):
                assert np.array_equal(
                    a[f"realisation_1/{split}/{column}"][:], b[f"realisation_1/{split}/{column}"][:]
                )


def test_an_unknown_option_is_a_parameter_error(fake_source, tmp_path):
    """Named, with the options the preset does have; nothing is read or written."""
    with pytest.raises(InvalidParameterError) as info:
        build("mnist-scale", tmp_path / "x.h5", source_dir=fake_source, colour="red")
    message = str(info.value)
    assert message.startswith("mnist-scale: no option colour; options: ")
    assert "min_scale" in message and "realisations" in message
    assert not any(tmp_path.iterdir())


def test_card_is_written_next_to_the_file(small_build: Path):
    card = small_build.with_name("small.card.md").read_text()
    assert read_info(small_build).content_sha256 in card
    assert "MNISTScale(" in card and "| 1 | test | 250 | 28 x 28, scales 0.30..1.00 |" in card


def test_existing_output_is_kept_without_overwrite(small_build, fake_source):
    before = small_build.stat().st_mtime_ns
    with pytest.raises(OutputExistsError, match="--overwrite"):
        _small(small_build, fake_source, realisations=2)
    assert small_build.stat().st_mtime_ns == before


def test_overwrite_replaces(fake_source, tmp_path):
    out = tmp_path / "o.h5"
    _small(out, fake_source, realisations=1, workers=1)
    first = read_info(out).content_sha256
    _small(out, fake_source, realisations=1, workers=1, seed=3, overwrite=True)
    assert read_info(out).content_sha256 != first
    assert _leftovers(tmp_path) == []


def test_a_full_disk_leaves_no_file(fake_source, tmp_path, monkeypatch):
    calls = {"n": 0}
    original = StreamingWriter.write

    def failing_write(self, name, start, rows, chunks=None):
        calls["n"] += 1
        if calls["n"] > 5:
            raise OSError(errno.ENOSPC, "No space left on device")
        return original(self, name, start, rows, chunks)

    monkeypatch.setattr(StreamingWriter, "write", failing_write)
    with pytest.raises(OSError, match="no space left on device while writing"):
        _small(tmp_path / "full.h5", fake_source, realisations=1, workers=1)
    assert not (tmp_path / "full.h5").exists()
    assert _leftovers(tmp_path) == []


@pytest.mark.parametrize("workers", [1, 2])
def test_many_chunks_per_block_and_a_padded_last_chunk(fake_source, tmp_path, monkeypatch, workers):
    """Chunks of 7 images and render blocks of 3 chunks, so splits of 120 / 30 / 250 images span
    many blocks, end in a part-filled (zero-padded) chunk, and the workers' encoded chunks go
    through write_direct_chunk at every alignment: the file verifies and holds the same images
    as a build with the default (one chunk per split) layout."""
    from scale_datasets import build as build_module
    from scale_datasets.storage import format as storage_format

    plain = _small(tmp_path / "plain.h5", fake_source, realisations=1, workers=1)
    monkeypatch.setattr(storage_format, "TARGET_CHUNK_BYTES", 784 * 7)
    monkeypatch.setattr(build_module, "BLOCK_BYTES", 784 * 7 * 3)
    small = _small(tmp_path / "small.h5", fake_source, realisations=1, workers=workers)
    verify_file(small)
    assert read_info(small).content_sha256 == read_info(plain).content_sha256
    with h5py.File(plain, "r") as a, h5py.File(small, "r") as b:
        for split in ("train", "val", "test"):
            images = b[f"realisation_0/{split}/images"]
            assert images.chunks[0] == 7 and images.shape[0] % 7 != 0
            np.testing.assert_array_equal(images[:], a[f"realisation_0/{split}/images"][:])


def test_big_tasks_and_big_results_do_not_deadlock_the_workers():
    """Tasks and results both larger than a pipe's buffer (a small canvas makes long index
    arrays per block): each side used to block in send, forever."""
    big = np.arange(1_000_000, dtype=np.float32)
    out = list(ordered_map([(_negate, (big + k,)) for k in range(8)], None, 2))
    assert len(out) == 8
    for k, result in enumerate(out):
        np.testing.assert_array_equal(result, -(big + k))


def test_realisation_order_does_not_change_the_file(fake_source, tmp_path):
    a = _small(tmp_path / "a.h5", fake_source, workers=1, realisation_ids=(1, 0))
    b = _small(tmp_path / "b.h5", fake_source, workers=1, realisation_ids=(0, 1))
    assert read_info(a).content_sha256 == read_info(b).content_sha256
    assert read_info(a).params["realisations"] == [0, 1]


def test_workers_must_be_positive(fake_source, tmp_path):
    with pytest.raises(InvalidParameterError, match=r"^workers: must be >= 1, got 0"):
        _small(tmp_path / "w.h5", fake_source, workers=0)
    assert not (tmp_path / "w.h5").exists()


@pytest.mark.parametrize("preset", ["mnist-scale", "dynamic-mnist"])
def test_materialise_is_refused_before_any_work(preset, tmp_path):
    """Pixels files hold their renders already; value-wise on-access renders are not grouped.
    The refusal comes before the (here missing) source is even looked for."""
    with pytest.raises(InvalidParameterError, match=r"^materialise: "):
        build(preset, tmp_path / "m.h5", source_dir=tmp_path / "missing", materialise=True)
