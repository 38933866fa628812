"""The command line as a user runs it: outputs, exit codes, one-line errors, no half files."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import h5py
import pytest
from conftest import debian_fashion_or_skip
from fake_idx import write_fake_mnist, write_idx_labels
from PIL import Image
from scale_datasets.cli.app import run

from scale_datasets.sources import mnist_like
from scale_datasets.storage.writer import StreamingWriter

SMALL_ARGS = ["--n-train", "120", "--n-val", "30", "--n-test", "250", "--workers", "1"]


def _build(out: Path, source_dir: Path, *extra: str) -> list[str]:
    return [
        "build",
        "mnist-scale",
        "--out",
        str(out),
        "--source-dir",
        str(source_dir),
        *SMALL_ARGS,
        *extra,
    ]


def _only_line(text: str) -> str:
    lines = [line for line in text.splitlines() if line.strip()]
    assert len(lines) == 1, text
    assert "Traceback" not in text
    return lines[0]


def _no_output(folder: Path, name: str) -> None:
    assert not (folder / name).exists()
    assert [p.name for p in folder.iterdir() if ".tmp-" in p.name] == []


def test_build_info_verify_preview_list(fake_source, tmp_path, capsys):
    out = tmp_path / "ms.h5"
    assert run(_build(out, fake_source, "--realisations", "2")) == 0
    line = _only_line(capsys.readouterr().out)
    assert line.startswith(str(out)) and "content_sha256=" in line

    assert run(["info", str(out), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["preset"] == "mnist-scale" and info["params"]["realisations"] == [0, 1]
    test = info["realisations"]["1"]["test"]
    assert test["size"] == 250 and test["image_shape"] == [28, 28]
    assert 0.3 <= test["scales"][0] < test["scales"][1] <= 1.0
    assert info["layout"] == "pixels" and info["render"]["op"] == "pil_affine_scale"
    assert info["source"]["name"] == "idx-dir"

    assert run(["info", str(out)]) == 0
    assert "realisation 1: train 120, val 30, test 250" in capsys.readouterr().out

    assert run(["verify", str(out)]) == 0
    assert capsys.readouterr().out.startswith(f"OK {out} content_sha256={info['content_sha256']}")

    grid = tmp_path / "grid.png"
    assert run(["preview", str(out), "--out", str(grid), "--count", "16", "--zoom", "2"]) == 0
    assert _only_line(capsys.readouterr().out) == str(grid)
    with Image.open(grid) as image:
        assert image.size == (8 * (56 + 2), 2 * (56 + 14 + 2))

    assert run(["list", "--json"]) == 0
    presets = {p["name"]: p for p in json.loads(capsys.readouterr().out)}
    assert set(presets) >= {"mnist-scale", "mnist-multires", "stl10-scale"}
    assert "fashion-mnist" in presets["mnist-scale"]["sources"]
    assert presets["stl10-scale"]["sources"] == ["stl10"]
    assert presets["mnist-multires"]["layout"] == "on-access"
    assert presets["mnist-scale"]["layout"] == "pixels"


def test_shards_and_merge(fake_source, tmp_path, capsys):
    shards = []
    for i in (1, 2, 3):
        shards.append(tmp_path / f"s{i}.h5")
        assert run(_build(shards[-1], fake_source, "--realisations", "1", "--shard", f"{i}/3")) == 0
    assert run(_build(tmp_path / "one.h5", fake_source, "--realisations", "1")) == 0
    assert run(["merge", *map(str, shards), "--out", str(tmp_path / "m.h5")]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[-1].split("content_sha256=")[1] == lines[-2].split("content_sha256=")[1].split()[0]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--min-scale", "0"], "min_scale: 0.0 is out of range (allowed: 0.01..100)"),
        (["--min-scale", "0.8", "--max-scale", "0.4"], "min_scale: must be <= max_scale"),
        (["--n-test", "100000"], "exceeds the source pool of 500 samples"),
        (["--realisations", "0"], "realisations: must be in 1..1000, got 0"),
        (["--shard", "3/2"], "shard: 3/2 is not a valid shard"),
        (["--shard", "two"], "is not of the form i/n"),
        (["--interpolation", "lanczos"], "interpolation: must be one of"),
    ],
)
def test_invalid_parameters_exit_2(fake_source, tmp_path, capsys, args, message):
    assert run(_build(tmp_path / "x.h5", fake_source, *args)) == 2
    assert message in _only_line(capsys.readouterr().err)
    _no_output(tmp_path, "x.h5")


def test_unknown_preset_and_option_exit_2(tmp_path, capsys):
    assert run(["build", "nope", "--out", str(tmp_path / "x.h5")]) == 2
    err = capsys.readouterr().err
    assert "No such command 'nope'" in err and "Traceback" not in err
    assert run(["build", "mnist-scale", "--frobnicate"]) == 2
    assert "No such option: --frobnicate" in capsys.readouterr().err
    # Another preset's option is not this preset's
    assert run(["build", "mnist-multires", "--min-scale", "0.5"]) == 2
    assert "No such option: --min-scale" in capsys.readouterr().err


def test_existing_output_exit_2(fake_source, tmp_path, capsys):
    out = tmp_path / "x.h5"
    out.write_bytes(b"keep me")
    assert run(_build(out, fake_source)) == 2
    assert "already exists; pass --overwrite" in _only_line(capsys.readouterr().err)
    assert out.read_bytes() == b"keep me"


def test_missing_source_exit_4_says_where_and_how(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(mnist_like.SYSTEM_DIRS, "fashion-mnist", (tmp_path / "nowhere",))
    out = tmp_path / "x.h5"
    code = run(
        [
            "build",
            "mnist-scale",
            "--source",
            "fashion-mnist",
            "--root",
            str(tmp_path),
            "--no-download",
            "--out",
            str(out),
        ]
    )
    assert code == 4
    line = _only_line(capsys.readouterr().err)
    assert str(tmp_path / "FashionMNIST" / "raw") in line and str(tmp_path / "nowhere") in line
    assert "--source-dir" in line and "dataset-fashion-mnist" in line
    _no_output(tmp_path, "x.h5")


def test_corrupt_sources_exit_4(tmp_path, capsys):
    truncated = tmp_path / "truncated"
    write_fake_mnist(truncated, n_train=50, n_test=20, gz=True)
    gz = truncated / "train-images-idx3-ubyte.gz"
    gz.write_bytes(gz.read_bytes()[:-200])
    mismatch = tmp_path / "mismatch"
    _, labels = write_fake_mnist(mismatch, n_train=50, n_test=20)
    write_idx_labels(mismatch / "t10k-labels-idx1-ubyte", labels[50:65])
    for folder, message in ((truncated, "train-images-idx3-ubyte.gz"), (mismatch, "15")):
        out = tmp_path / f"{folder.name}.h5"
        assert run(_build(out, folder)) == 4
        assert message in _only_line(capsys.readouterr().err)
        _no_output(tmp_path, out.name)


@pytest.mark.parametrize("parent", ["no-such-folder", "a-file"])
def test_an_output_folder_that_is_not_one_is_exit_2_before_any_work(
    fake_source, tmp_path, capsys, parent
):
    (tmp_path / "a-file").write_text("not a folder")
    assert run(_build(tmp_path / parent / "x.h5", fake_source)) == 2
    line = _only_line(capsys.readouterr().err)
    assert line == f"error: out: {tmp_path / parent} is not an existing folder"


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write anywhere")
def test_unwritable_output_folder_exit_1(fake_source, tmp_path, capsys):
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    assert run(_build(locked / "x.h5", fake_source)) == 1
    assert "Permission denied" in _only_line(capsys.readouterr().err)


def test_preview_of_a_realisation_the_file_lacks_names_the_realisation(
    small_build, tmp_path, capsys
):
    out = tmp_path / "p.png"
    assert run(["preview", str(small_build), "--realisation", "5", "--out", str(out)]) == 2
    line = _only_line(capsys.readouterr().err)
    assert line == f"error: realisation: 5 is not in {small_build} (it has [0, 1])"
    assert not out.exists()


def test_help_shows_bracketed_defaults(capsys):
    assert run(["build", "mnist-scale", "--help"]) == 0
    out = capsys.readouterr().out
    assert "Output file [default: ./<preset>-<source>.h5]." in out
    assert "Smallest scale factor. [default: 0.3; allowed: 0.01..100]" in " ".join(out.split())


def test_full_disk_exit_1_and_no_file(fake_source, tmp_path, capsys, monkeypatch):
    def no_space(self, name, start, rows, chunks=None):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(StreamingWriter, "write", no_space)
    assert run(_build(tmp_path / "x.h5", fake_source)) == 1
    assert "no space left on device while writing" in _only_line(capsys.readouterr().err)
    _no_output(tmp_path, "x.h5")


def test_verify_exit_3_for_a_file_that_is_not_ours(tmp_path, capsys):
    bogus = tmp_path / "bogus.h5"
    bogus.write_bytes(b"\x89HDF\r\n\x1a\n" + b"\x00" * 100)
    assert run(["verify", str(bogus)]) == 3
    assert "not a readable HDF5 file" in _only_line(capsys.readouterr().err)


@pytest.mark.parametrize(
    ("sig", "code", "group"),
    [(signal.SIGTERM, 143, False), (signal.SIGINT, 130, False), (signal.SIGTERM, 143, True)],
    ids=["sigterm", "sigint", "sigterm-to-process-group"],
)
def test_a_signal_during_build_removes_the_temp_file(tmp_path, sig, code, group):
    """Also when the signal goes to the whole process group (``timeout``, Slurm, systemd), so
    the render workers get it too."""
    source = debian_fashion_or_skip()
    out = tmp_path / "big.h5"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "scale_datasets.cli",
            "build",
            "mnist-scale",
            "--source-dir",
            str(source),
            "--realisations",
            "6",
            "--workers",
            "2",
            "--out",
            str(out),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=group,
    )
    deadline = time.monotonic() + 120
    while not any(".tmp-" in p.name for p in tmp_path.iterdir()):
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline
        time.sleep(0.05)
    time.sleep(0.5)
    if group:
        os.killpg(proc.pid, sig)
    else:
        proc.send_signal(sig)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == code, err
    assert "Traceback" not in err, err
    assert sorted(os.listdir(tmp_path)) == []


def test_a_signal_after_the_last_check_point_reports_success_with_a_note(monkeypatch, capsys):
    """SIGTERM noted while a command finishes, after its last check point (the one before each
    output is published): the work is complete, so the exit is 0, and a note says so."""
    from scale_datasets import presets

    real = presets.list_presets

    def list_and_get_terminated():
        os.kill(os.getpid(), signal.SIGTERM)
        return real()

    monkeypatch.setattr(presets, "list_presets", list_and_get_terminated)
    assert run(["list"]) == 0
    assert "its output is kept" in _only_line(capsys.readouterr().err)


def test_verify_exit_3_for_a_flipped_byte_and_a_missing_dataset(small_build, tmp_path, capsys):
    flipped = Path(shutil.copy(small_build, tmp_path / "flipped.h5"))
    with h5py.File(flipped, "r") as h5:
        info = h5["realisation_1/train/images"].id.get_chunk_info(0)
    with open(flipped, "r+b") as handle:
        handle.seek(info.byte_offset + 100)
        byte = handle.read(1)[0]
        handle.seek(info.byte_offset + 100)
        handle.write(bytes([byte ^ 0xFF]))
    assert run(["verify", str(flipped)]) == 3
    assert "realisation_1/train/images" in _only_line(capsys.readouterr().err)

    missing = Path(shutil.copy(small_build, tmp_path / "missing.h5"))
    with h5py.File(missing, "r+") as h5:
        del h5["realisation_0/test/labels"]
    assert run(["verify", str(missing)]) == 3
    assert "missing dataset realisation_0/test/labels" in _only_line(capsys.readouterr().err)


def test_version_and_python_m(capsys):
    assert run(["--version"]) == 0
    assert capsys.readouterr().out.startswith("scale-datasets ")
    proc = subprocess.run(
        [sys.executable, "-m", "scale_datasets", "--version"], capture_output=True, text=True
    )
    assert proc.returncode == 0 and proc.stdout.startswith("scale-datasets ")


@pytest.mark.parametrize("command", ["info", "verify", "preview"])
def test_a_missing_file_is_exit_2_no_such_file(tmp_path, capsys, command):
    missing = tmp_path / "absent.h5"
    extra = ["--out", str(tmp_path / "p.png")] if command == "preview" else []
    assert run([command, str(missing), *extra]) == 2
    assert _only_line(capsys.readouterr().err) == f"error: {missing}: no such file"
    assert run(["merge", str(missing), str(missing), "--out", str(tmp_path / "m.h5")]) == 2
    capsys.readouterr()
