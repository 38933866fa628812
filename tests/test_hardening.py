"""Faults from the adversarial run (issue 13): each gives one line and its documented exit code,
never a traceback, and tampering that readers rely on is caught."""

from __future__ import annotations

import re
import shutil
from collections.abc import Callable
from pathlib import Path

import h5py
import pytest
from scale_datasets.cli.app import run

SIZES = ["--n-train", "120", "--n-val", "30", "--n-test", "250"]
SMALL_ARGS = [*SIZES, "--workers", "1"]


def _build_args(source: Path, out: Path) -> list[str]:
    return ["build", "mnist-scale", "--source-dir", str(source), "--out", str(out)]


def _one_line(text: str) -> str:
    lines = [line for line in text.splitlines() if line.strip()]
    assert len(lines) == 1, text
    assert "Traceback" not in text
    return lines[0]


def _set(key: str, value: object) -> Callable[[h5py.File], None]:
    def edit(h5: h5py.File) -> None:
        h5.attrs[key] = value

    return edit


def _delete(name: str) -> Callable[[h5py.File], None]:
    def edit(h5: h5py.File) -> None:
        del h5[name]

    return edit


def _add_group(name: str) -> Callable[[h5py.File], None]:
    def edit(h5: h5py.File) -> None:
        h5.create_group(name)

    return edit


@pytest.mark.parametrize(
    ("edit", "commands", "message"),
    [
        (_set("dataset_names", 5), ["verify"], "required attribute missing or malformed"),
        (_set("dataset_names", "abc"), ["verify"], "required attribute missing or malformed"),
        (_set("dataset_names", '"a string"'), ["verify"], "dataset_names is not a list"),
        (_set("format_version", "one"), ["verify", "info"], "format version one"),
        (_delete("realisation_0/train/images"), ["info"], "malformed file"),
        (_delete("realisation_0/train/images"), ["verify"], "missing dataset"),
        (_add_group("realisation_9/train"), ["info"], "malformed file"),
        (_add_group("realisation_9/train"), ["verify"], "unexpected group realisation_9"),
        (_add_group("extra"), ["verify"], "unexpected group extra"),
    ],
)
def test_crafted_files_give_one_line_and_exit_3(
    small_build, tmp_path, capsys, edit, commands, message
):
    path = Path(shutil.copy(small_build, tmp_path / "crafted.h5"))
    with h5py.File(path, "r+") as h5:
        edit(h5)
    for command in commands:
        assert run([command, str(path)]) == 3
        line = _one_line(capsys.readouterr().err)
        assert line.startswith(f"error: {path}") and message in line, line


@pytest.mark.parametrize(
    ("option", "message"),
    [
        (["--realisations", "99999999999999999999999"], "realisations: must be in 1..1000"),
        (["--realisations", "1001"], "realisations: must be in 1..1000"),
        (["--realisation", "99999999999999999999"], "realisations: 99999999999999999999 is out"),
    ],
)
def test_huge_realisation_counts_and_ids_exit_2(fake_source, tmp_path, capsys, option, message):
    out = tmp_path / "x.h5"
    args = _build_args(fake_source, out)
    assert run([*args, *SMALL_ARGS, *option]) == 2
    line = _one_line(capsys.readouterr().err)
    assert message in line, line
    assert not out.exists()


def test_a_250_character_output_name_builds(fake_source, tmp_path, capsys):
    out = tmp_path / ("m" * 247 + ".h5")
    args = _build_args(fake_source, out)
    assert run([*args, *SMALL_ARGS, "--realisations", "1"]) == 0
    assert out.is_file() and len(out.name) == 250
    assert [p.name for p in tmp_path.iterdir() if ".tmp-" in p.name] == []
    capsys.readouterr()


@pytest.mark.parametrize("value", ["garbage", '{"index": "x", "count": 2}', "[1, 2]", 7])
def test_merge_of_a_shard_with_a_malformed_shard_attribute_exits_3(
    fake_source, tmp_path, capsys, value
):
    shards = []
    for i in (1, 2):
        out = tmp_path / f"s{i}.h5"
        args = _build_args(fake_source, out)
        assert run([*args, *SMALL_ARGS, "--realisations", "1", "--shard", f"{i}/2"]) == 0
        shards.append(out)
    capsys.readouterr()
    with h5py.File(shards[1], "r+") as h5:
        h5.attrs["shard"] = value
    merged = tmp_path / "m.h5"
    assert run(["merge", *map(str, shards), "--out", str(merged)]) == 3
    line = _one_line(capsys.readouterr().err)
    assert f"{shards[1]}: malformed shard attribute" in line, line
    assert not merged.exists()


def _idx_header(dims: tuple[int, ...]) -> bytes:
    import struct

    return struct.pack(">I", 0x0800 | len(dims)) + struct.pack(f">{len(dims)}I", *dims)


def test_a_gzip_bomb_stops_at_the_declared_size(tmp_path):
    import gzip
    import tracemalloc

    from scale_datasets.errors import SourceCorruptError
    from scale_datasets.sources.idx import read_idx_images

    # declares 10 images of 28 x 28, then 256 MiB of zeros (about 250 kB gzipped)
    payload = gzip.compress(_idx_header((10, 28, 28)) + bytes(256 * 2**20), compresslevel=9)
    path = tmp_path / "bomb-images-idx3-ubyte.gz"
    path.write_bytes(payload)
    tracemalloc.start()
    with pytest.raises(
        SourceCorruptError, match=re.escape(f"{path}: oversized IDX images payload")
    ):
        read_idx_images(path)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 16 * 2**20  # the stream was never decompressed past the declared size


@pytest.mark.parametrize(
    ("dims", "message"),
    [((10, 0, 0), "empty samples"), ((2**20, 2**12, 2**12), "refused before decoding")],
)
def test_crafted_idx_headers_are_refused_naming_the_file(tmp_path, dims, message):
    from scale_datasets.errors import SourceCorruptError
    from scale_datasets.sources.idx import read_idx_images

    path = tmp_path / "images-idx3-ubyte"
    path.write_bytes(_idx_header(dims) + bytes(100))
    with pytest.raises(
        SourceCorruptError, match=re.escape(f"{path}: IDX images ") + f".*{message}"
    ) as info:
        read_idx_images(path)
    assert info.value.exit_code == 4


def test_workers_beyond_the_cores_are_capped_with_a_note(fake_source, tmp_path, capsys):
    from scale_datasets.parallel import default_workers

    out = tmp_path / "w.h5"
    args = _build_args(fake_source, out)
    assert run([*args, *SIZES, "--realisations", "1", "--workers", "1000"]) == 0
    err = capsys.readouterr().err
    assert f"workers: 1000 asked, capped at the {default_workers()} usable core(s)" in err
    assert "Traceback" not in err and out.is_file()


def test_a_failed_download_leaves_no_empty_folders_and_names_the_offline_way(tmp_path):
    from scale_datasets.errors import SourceNotFoundError
    from scale_datasets.sources.common import download_with_torchvision
    from scale_datasets.sources.mnist_like import _fix_hint

    into = tmp_path / "cache" / "MNIST" / "raw"

    def fetch(_datasets: object) -> None:
        into.mkdir(parents=True)  # as torchvision does before it downloads
        raise RuntimeError("Error downloading train-images-idx3-ubyte.gz: no network")

    fix = _fix_hint("mnist", offer_download=False, first="check the network")
    with pytest.raises(SourceNotFoundError, match="use --source fashion-mnist") as info:
        download_with_torchvision("mnist", into, "nowhere", fix, fetch)
    assert "\n" not in str(info.value)
    assert list(tmp_path.iterdir()) == []  # cache/, MNIST/ and raw/ were ours and empty


def test_verbose_log_lines_are_not_wrapped_in_a_pipe(fake_source, tmp_path):
    import subprocess
    import sys

    out = tmp_path / ("a-long-output-name-" * 4 + ".h5")
    proc = subprocess.run(
        [sys.executable, "-m", "scale_datasets", "-v", *_build_args(fake_source, out),
         *SMALL_ARGS, "--realisations", "1"],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    wrote = [line for line in proc.stderr.splitlines() if line.startswith("INFO wrote ")]
    assert len(wrote) == 1 and str(out) in wrote[0] and "content_sha256" in wrote[0]


def test_build_from_a_script_without_main_guard_runs_it_once(fake_source, tmp_path):
    import subprocess
    import sys

    marker = tmp_path / "imports.log"
    script = tmp_path / "script.py"
    script.write_text(
        "import os\n"
        f"open({str(marker)!r}, 'a').write(f'{{os.getpid()}}\\n')\n"
        "from scale_datasets import build\n"
        f"build('mnist-scale', {str(tmp_path / 'x.h5')!r}, source_dir={str(fake_source)!r},\n"
        "      realisations=1, n_train=120, n_val=30, n_test=250, workers=2)\n"
        "print('built')\n"
    )
    proc = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                          timeout=300, cwd=tmp_path)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "built" and "Traceback" not in proc.stderr
    assert len(marker.read_text().splitlines()) == 1  # the workers never re-ran the script


DEAD_PID = 4_999_999  # above Linux's largest pid_max (2^22): never a live process


def test_a_build_sweeps_stale_temps_and_scratch_of_dead_processes(fake_source, tmp_path, capsys):
    import os
    import tempfile

    out = tmp_path / "s.h5"
    stale = tmp_path / f"s.h5.tmp-{DEAD_PID}"
    stale.write_bytes(b"half a file")
    live = tmp_path / f"s.h5.tmp-{os.getppid()}"  # a live process's: kept
    other = tmp_path / f"other.h5.tmp-{DEAD_PID}"  # another output's: not ours to judge
    for p in (live, other):
        p.write_bytes(b"x")
    scratch = Path(tempfile.gettempdir()) / f"scale-datasets-{DEAD_PID}-abcd"
    scratch.mkdir(exist_ok=True)
    (scratch / "state.npy").write_bytes(b"pool")
    args = _build_args(fake_source, out)
    assert run([*args, *SIZES, "--realisations", "1", "--workers", "2"]) == 0
    capsys.readouterr()
    assert out.is_file() and not stale.exists() and other.exists()
    assert not scratch.exists() and live.exists()


def test_sigkill_mid_build_leaves_quiet_workers_and_the_next_build_cleans_up(
    fake_source, tmp_path, capsys
):
    import os
    import signal
    import subprocess
    import sys
    import tempfile
    import time

    out = tmp_path / "k.h5"
    args = [*_build_args(fake_source, out), *SIZES]
    proc = subprocess.Popen(
        [sys.executable, "-m", "scale_datasets", *args, "--realisations", "200", "--workers", "2"],
        stderr=subprocess.PIPE, text=True, start_new_session=True,
    )  # fmt: skip

    def scratch() -> list[Path]:
        return list(Path(tempfile.gettempdir()).glob(f"scale-datasets-{proc.pid}-*"))

    deadline = time.monotonic() + 120
    while not (scratch() and any(".tmp-" in p.name for p in tmp_path.iterdir())):
        assert proc.poll() is None and time.monotonic() < deadline, "the build ended early"
        time.sleep(0.05)
    time.sleep(0.5)  # well into rendering
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    time.sleep(2)  # the orphaned workers notice and exit
    err = proc.stderr.read()
    assert "Traceback" not in err and "BrokenPipe" not in err, err
    temps, scratches = [p for p in tmp_path.iterdir() if ".tmp-" in p.name], scratch()
    assert temps and scratches  # what a SIGKILL leaves: the next build cleans it
    assert run([*args, "--realisations", "1", "--overwrite"]) == 0
    capsys.readouterr()
    assert not any(p.exists() for p in temps + scratches)


def test_a_signal_before_the_rename_aborts_and_one_after_it_succeeds(fake_source, tmp_path, capsys):
    import os
    import signal

    from scale_datasets.storage import atomic

    args = ["build", "mnist-scale", "--source-dir", str(fake_source), *SMALL_ARGS,
            "--realisations", "1"]  # fmt: skip
    real_replace = os.replace

    def signal_then_replace(when: str):
        def replace(src, dst):
            if when == "before" and str(dst).endswith(".h5"):
                os.kill(os.getpid(), signal.SIGINT)  # noted by the CLI's handler
                for check in atomic.BEFORE_PUBLISH:
                    check()
            real_replace(src, dst)
            if when == "after" and str(dst).endswith(".h5"):
                os.kill(os.getpid(), signal.SIGTERM)

        return replace

    before, after = tmp_path / "before.h5", tmp_path / "after.h5"
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(atomic.os, "replace", signal_then_replace("before"))
        assert run([*args, "--out", str(before)]) == 130
    assert _one_line(capsys.readouterr().err) == "error: interrupted"
    assert not before.exists() and not [p for p in tmp_path.iterdir() if ".tmp-" in p.name]
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(atomic.os, "replace", signal_then_replace("after"))
        assert run([*args, "--out", str(after)]) == 0
    assert "its output is kept" in capsys.readouterr().err
    assert after.is_file() and run(["verify", str(after)]) == 0
    capsys.readouterr()


def test_a_card_that_cannot_be_written_is_a_warning(fake_source, tmp_path, capsys):
    out = tmp_path / "c.h5"
    (tmp_path / "c.card.md").mkdir()  # a folder where the card goes
    args = _build_args(fake_source, out)
    assert run([*args, *SMALL_ARGS, "--realisations", "1"]) == 0
    err = capsys.readouterr().err
    assert "dataset card not written" in err and "Traceback" not in err
    assert out.is_file() and run(["verify", str(out)]) == 0
    capsys.readouterr()


def _edit_source_n_train(h5: h5py.File) -> None:
    import json

    source = json.loads(h5.attrs["source"])
    source["n_train"] = 1
    h5.attrs["source"] = json.dumps(source)


def _edit_group_attr(h5: h5py.File) -> None:
    h5["realisation_1"].attrs["seed_material"] = "{}"


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda h5: h5["realisation_0"].attrs.__setitem__("realisation", 3), "realisation 3"),
        (_set("preset", "mnist-multires"), "attrs_sha256"),
        (_edit_source_n_train, "attrs_sha256"),
        (_edit_group_attr, "attrs_sha256"),
        (lambda h5: h5["realisation_1"].attrs.__delitem__("content_sha256"), "lost its content"),
        (_set("an_extra_attribute", 1), "attrs_sha256"),
    ],
)
def test_verify_catches_tampered_metadata(small_build, tmp_path, capsys, edit, message):
    path = Path(shutil.copy(small_build, tmp_path / "t.h5"))
    with h5py.File(path, "r+") as h5:
        edit(h5)
    assert run(["verify", str(path)]) == 3
    line = _one_line(capsys.readouterr().err)
    assert line.startswith(f"error: {path}") and message in line, line


def test_created_with_is_informational_and_not_covered(small_build, tmp_path, capsys):
    path = Path(shutil.copy(small_build, tmp_path / "t.h5"))
    with h5py.File(path, "r+") as h5:
        h5.attrs["created_with"] = "{}"
    assert run(["verify", str(path)]) == 0
    capsys.readouterr()


def _huge_images(h5: h5py.File) -> None:
    del h5["realisation_0/train/images"]
    h5.create_dataset(
        "realisation_0/train/images", shape=(10**9, 28, 28), dtype="u1", chunks=(256, 28, 28)
    )


def _short_labels(h5: h5py.File) -> None:
    labels = h5["realisation_0/train/labels"][:10]
    del h5["realisation_0/train/labels"]
    h5["realisation_0/train/labels"] = labels


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (_huge_images, "images declares shape (1000000000, 28, 28) (3906250 chunks) but stores 0"),
        (_short_labels, "realisation_0/train: datasets disagree on rows (images 120, labels 10"),
    ],
)
def test_crafted_huge_shapes_are_refused_before_reading(
    small_build, tmp_path, capsys, edit, message
):
    from scale_datasets import ScaleDataset
    from scale_datasets.errors import IntegrityError

    path = Path(shutil.copy(small_build, tmp_path / "huge.h5"))
    with h5py.File(path, "r+") as h5:
        edit(h5)
    for command in (["verify"], ["info"], ["preview", "--out", str(tmp_path / "p.png")]):
        assert run([command[0], str(path), *command[1:]]) == 3
        line = _one_line(capsys.readouterr().err)
        assert message in line, line
    with pytest.raises(IntegrityError, match=re.escape(message)):
        ScaleDataset(path, "train")


def test_a_full_disk_is_one_line_naming_the_output(fake_source, tmp_path, capsys, monkeypatch):
    from scale_datasets import build as build_module

    def full(self):
        raise OSError(
            "Can't close file (file write failed: time = Tue Dec  1 17:44:31 2026\n, filename = "
            "'x.h5.tmp-1', file descriptor = 3, errno = 28, error message = 'No space left on "
            "device', buf = 0x5599eee8f910, total write size = 2048)"
        )

    monkeypatch.setattr(build_module.StreamingWriter, "finish", full)
    out = tmp_path / "full.h5"
    args = _build_args(fake_source, out)
    assert run([*args, *SMALL_ARGS, "--realisations", "1"]) == 1
    line = _one_line(capsys.readouterr().err)
    assert line == f"error: no space left on device while writing: {out}"
    assert not out.exists() and [p for p in tmp_path.iterdir() if ".tmp-" in p.name] == []


@pytest.mark.parametrize("kind", ["directory", "symlink loop"])
def test_a_source_file_that_is_not_a_file_is_named_as_such(fake_source, tmp_path, capsys, kind):
    folder = Path(shutil.copytree(fake_source, tmp_path / "src"))
    target = folder / "train-images-idx3-ubyte.gz"
    target.unlink()
    if kind == "directory":
        target.mkdir()
        words = "has train-images-idx3-ubyte.gz as a directory, not a file"
    else:
        (folder / "a").symlink_to(folder / "b")
        (folder / "b").symlink_to(folder / "a")
        target.symlink_to(folder / "a")
        words = "has train-images-idx3-ubyte.gz as a broken or looping symlink"
    assert run(_build_args(folder, tmp_path / "o.h5")) == 4
    assert words in _one_line(capsys.readouterr().err)


def test_a_build_that_cannot_fit_is_refused_with_the_estimate(
    fake_source, tmp_path, capsys, monkeypatch
):
    import collections

    from scale_datasets import build as build_module

    usage = collections.namedtuple("usage", "total used free")
    monkeypatch.setattr(build_module.shutil, "disk_usage", lambda _p: usage(10**9, 0, 10**8))
    out = tmp_path / "big.h5"
    args = _build_args(fake_source, out)
    assert run([*args, *SMALL_ARGS, "--realisations", "1", "--canvas", "4096"]) == 2
    line = _one_line(capsys.readouterr().err)
    # 400 samples of 4096 x 4096 uint8: 6.7 GB raw, about 1.7 GB gzipped, 0.1 GB free
    assert "would write about 6.7 GB before compression (about 1.7 GB gzipped)" in line, line
    assert "0.1 GB free" in line and not out.exists()


def test_a_sigterm_while_workers_start_is_not_lost(fake_source, tmp_path, capsys, monkeypatch):
    import contextlib
    import os
    import signal

    from scale_datasets import parallel

    real = parallel._main_module_hidden

    @contextlib.contextmanager
    def terminated_meanwhile():
        os.kill(os.getpid(), signal.SIGTERM)  # arrives while the workers are being started
        with real():
            yield

    monkeypatch.setattr(parallel, "_main_module_hidden", terminated_meanwhile)
    out = tmp_path / "t.h5"
    args = _build_args(fake_source, out)
    assert run([*args, *SIZES, "--realisations", "1", "--workers", "2"]) == 143
    assert _one_line(capsys.readouterr().err) == "error: terminated"
    assert not out.exists() and not [p for p in tmp_path.iterdir() if ".tmp-" in p.name]


def test_the_first_workers_of_a_process_survive_a_sigterm_to_the_group(tmp_path):
    """Spawning the first workers of a process also starts multiprocessing's resource tracker,
    which unblocks SIGTERM as it does: the workers must still be born with it blocked."""
    import subprocess
    import sys

    script = tmp_path / "group.py"
    script.write_text(
        "import contextlib, os, signal\n"
        "import numpy as np\n"
        "from scale_datasets import parallel\n"
        "noted = []\n"
        "signal.signal(signal.SIGTERM, lambda *_: noted.append(1))\n"
        "real = parallel._main_module_hidden\n"
        "@contextlib.contextmanager\n"
        "def starting():\n"
        "    with real():\n"
        "        yield\n"
        "    os.killpg(0, signal.SIGTERM)  # the workers are still importing\n"
        "parallel._main_module_hidden = starting\n"
        "out = list(parallel.ordered_map([(np.add, (k,)) for k in range(4)], np.zeros(3), 2))\n"
        "print(len(out), len(noted))\n"
    )
    proc = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                          timeout=300, start_new_session=True)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["4", "1"] and "Traceback" not in proc.stderr


def test_an_out_of_range_float_is_one_line_without_warnings(fake_source, tmp_path, capsys):
    assert run([*_build_args(fake_source, tmp_path / "x.h5"), "--max-scale", "1e308"]) == 2
    err = capsys.readouterr().err
    assert _one_line(err).startswith("error: max_scale: 1e+308 is out of range")
    assert "Warning" not in err


def test_a_flipped_byte_read_lazily_names_the_file_and_dataset(small_build, tmp_path):
    from conftest import flip_a_byte

    from scale_datasets import ScaleDataset
    from scale_datasets.errors import IntegrityError

    path = Path(shutil.copy(small_build, tmp_path / "f.h5"))
    flip_a_byte(path, "realisation_0/train/images", chunk=0)
    ds = ScaleDataset(path, "train", in_memory=False)
    with pytest.raises(
        IntegrityError, match=re.escape(f"{path}: dataset realisation_0/train/images")
    ):
        ds[0]
