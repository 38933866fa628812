"""The leaderboard runner as a user drives it: `bench run`, resume, re-runs, torchrun shares,
a user's own model and every bad input rejected before training."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from scale_datasets.cli.app import run

from scale_datasets.build import build
from scale_eq.leaderboard.recipes import get_recipe
from scale_eq.leaderboard.records import SCHEMA_VERSION, read_records

REPO = Path(__file__).resolve().parents[1]


def _only_line(text: str) -> str:
    lines = [line for line in text.splitlines() if line.strip()]
    assert len(lines) == 1, text
    assert "Traceback" not in text
    return lines[0]


def _metrics_without_timing(record: dict) -> dict:
    """What a run computed (timings, memory, placement and environment aside)."""
    history = [{k: v for k, v in h.items() if k != "seconds"} for h in record["history"]]
    return {"metrics": record["metrics"], "history": history, "run_id": record["run_id"]}


def test_smoke_run_writes_records_and_report_renders_them(small_build, tmp_path, capsys):
    out = tmp_path / "runs"
    assert run(["bench", "run", "smoke", "--data", str(small_build), "--out", str(out)]) == 0
    line = _only_line(capsys.readouterr().out)
    assert line.startswith("2 run(s) trained, 0 already finished, of 2")
    records = read_records(out)
    recipe = get_recipe("smoke")
    assert sorted(r["model"] for r in records) == sorted(recipe.models)
    for r in records:
        assert r["schema_version"] == SCHEMA_VERSION
        assert r["preset"] == "mnist-scale" and r["realisation"] == 0 and r["seed"] == 0
        assert r["config"]["recipe"] == recipe.to_json()
        m = r["metrics"]
        # the small build's test split has 250 images: all scored (the smoke limit is 2,000)
        assert m["test_images"] == 250
        assert 0.0 <= m["test_error"] <= 1.0
        assert sum(b["n"] for b in m["per_scale"]) == 250
        assert m["consistency"] is None  # defined for multi-resolution recipes
        assert m["equivariance_error"]["value"] >= 0
        assert len(r["history"]) == recipe.epochs
        assert 1 <= m["best_val_epoch"] <= recipe.epochs
        assert m["scored_epoch"] == m["best_val_epoch"]  # the best-val checkpoint is scored
        assert r["parameters"] > 0 and r["seconds_per_epoch"] > 0
        assert r["environment"]["torch"] and r["environment"]["command"]
        ckpts = out / "checkpoints" / r["run_id"]
        assert (ckpts / "last.pt").is_file() and (ckpts / "best.pt").is_file()
    # a second run over the finished grid does nothing
    assert run(["bench", "run", "smoke", "--data", str(small_build), "--out", str(out)]) == 0
    assert _only_line(capsys.readouterr().out).startswith("0 run(s) trained, 2 already finished")
    assert len(read_records(out)) == 2
    board = tmp_path / "board"
    assert run(["bench", "report", str(out), "--out", str(board)]) == 0
    text = (board / "LEADERBOARD.md").read_text()
    for model in recipe.models:
        assert f"| {model} |" in text
    assert capsys.readouterr().out.startswith("# Leaderboard")
    rows = json.loads((board / "leaderboard.json").read_text())
    by_model = {r["model"]: r for r in rows}
    for r in records:
        assert by_model[r["model"]]["mean"] == pytest.approx(100 * r["metrics"]["test_error"])


_KILLER = textwrap.dedent(
    """
    import os, signal, sys, dataclasses
    from pathlib import Path
    import torch
    torch.set_num_threads(1)
    from scale_eq.leaderboard import data, runner
    from scale_eq.leaderboard.recipes import get_recipe

    kill_epoch = int(sys.argv[3])
    original = data.SplitData.batches

    def batches(self, epoch, model_input="native"):
        for n, batch in enumerate(original(self, epoch, model_input)):
            if self.train and epoch == kill_epoch and n == 1:
                os.kill(os.getpid(), signal.SIGKILL)  # mid-epoch, after one optimiser step
            yield batch

    data.SplitData.batches = batches
    recipe = dataclasses.replace(get_recipe("smoke"), batch_size=32, models=("cnn_mnist",))
    runner.run_grid(recipe, Path(sys.argv[1]), Path(sys.argv[2]))
    """
)


def _python(script: str, *args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", script, *args],
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, **(env or {})},
    )


def test_sigkilled_run_resumes_to_the_same_record(small_build, tmp_path):
    killed, clean = tmp_path / "killed", tmp_path / "clean"
    first = _python(_KILLER, str(small_build), str(killed), "1")
    assert first.returncode == -9, first.stderr  # SIGKILL in epoch 1 (the second epoch)
    assert not (killed / "records.jsonl").exists()
    (ckpt,) = (killed / "checkpoints").iterdir()
    assert (ckpt / "last.pt").is_file()  # epoch 0 finished and was saved
    resumed = _python(_KILLER, str(small_build), str(killed), "-1")  # no kill this time
    assert resumed.returncode == 0, resumed.stderr
    fresh = _python(_KILLER, str(small_build), str(clean), "-1")
    assert fresh.returncode == 0, fresh.stderr
    (a,) = read_records(killed)
    (b,) = read_records(clean)
    assert _metrics_without_timing(a) == _metrics_without_timing(b)


def test_torchrun_ranks_split_the_grid_disjointly_and_match_one_process(small_build, tmp_path):
    torchrun = shutil.which("torchrun", path=str(Path(sys.executable).parent))
    if torchrun is None:
        pytest.skip("torchrun is not installed next to this python")
    args = [
        "bench", "run", "smoke", "--data", str(small_build), "--seeds", "0,1", "--realisations",
        "0-1", "--models", "cnn_mnist",
    ]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    multi = tmp_path / "multi"
    proc = subprocess.run(
        [torchrun, "--standalone", "--nproc-per-node", "2", "-m", "scale_datasets.cli", *args,
         "--out", str(multi)],
        capture_output=True, text=True, timeout=600, env=env,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    records = read_records(multi)
    ids = [r["run_id"] for r in records]
    assert len(ids) == 4 and len(set(ids)) == 4  # no duplicates, no gaps
    ranks = {r["run_id"]: r["placement"]["rank"] for r in records}
    assert sorted(ranks.values()) == [0, 0, 1, 1]
    assert {r["placement"]["world_size"] for r in records} == {2}
    single = tmp_path / "single"
    proc = subprocess.run(
        [sys.executable, "-m", "scale_datasets.cli", *args, "--out", str(single)],
        capture_output=True, text=True, timeout=600, env=env,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    one = {r["run_id"]: _metrics_without_timing(r) for r in read_records(single)}
    assert one == {r["run_id"]: _metrics_without_timing(r) for r in records}


def test_ddp_trains_one_run_over_two_ranks_and_scores_every_test_image_once(small_build, tmp_path):
    torchrun = shutil.which("torchrun", path=str(Path(sys.executable).parent))
    if torchrun is None:
        pytest.skip("torchrun is not installed next to this python")
    out = tmp_path / "ddp"
    proc = subprocess.run(
        [torchrun, "--standalone", "--nproc-per-node", "2", "-m", "scale_datasets.cli", "bench",
         "run", "smoke", "--data", str(small_build), "--models", "cnn_mnist", "--ddp",
         "--out", str(out)],
        capture_output=True, text=True, timeout=600, env={**os.environ, "OMP_NUM_THREADS": "1"},
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    (record,) = read_records(out)  # one run, one record, written by rank 0
    assert record["config"]["replicas"] == 2 and record["placement"]["rank"] == 0
    m = record["metrics"]
    assert m["test_images"] == 250  # gathered from both ranks, no padded duplicates
    assert sum(b["n"] for b in m["per_scale"]) == 250
    assert len(record["history"]) == get_recipe("smoke").epochs
    assert all(h["train_loss"] > 0 for h in record["history"])  # both ranks trained


def test_shards_cover_the_grid_once(small_build, tmp_path, capsys):
    out = tmp_path / "runs"
    base = ["bench", "run", "smoke", "--data", str(small_build), "--out", str(out)]
    for i in (1, 2, 3):
        assert run([*base, "--shard", f"{i}/3", "--models", "cnn_mnist", "--seeds", "0-1"]) == 0
    capsys.readouterr()
    ids = [r["run_id"] for r in read_records(out)]
    assert len(ids) == 2 and len(set(ids)) == 2  # 2 runs over 3 shards: one shard is empty


_USER_NETS = """
import torch
from torch import nn

def make_net():
    return nn.Sequential(nn.Flatten(), nn.Linear(28 * 28, 10))

def wrong_classes():
    return nn.Sequential(nn.Flatten(), nn.Linear(28 * 28, 5))

def not_a_module():
    return 3
"""


@pytest.fixture
def user_nets(tmp_path, monkeypatch) -> str:
    folder = tmp_path / "mods"
    folder.mkdir()
    (folder / "mynets.py").write_text(_USER_NETS)
    monkeypatch.syspath_prepend(str(folder))
    return "mynets"


def test_a_users_model_trains(small_build, tmp_path, user_nets, capsys):
    out = tmp_path / "runs"
    args = ["bench", "run", "smoke", "--data", str(small_build), "--out", str(out)]
    assert run([*args, "--model", f"{user_nets}:make_net"]) == 0
    capsys.readouterr()
    (record,) = read_records(out)
    assert record["model"] == "mynets:make_net"
    assert record["parameters"] == 28 * 28 * 10 + 10
    assert record["metrics"]["equivariance_error"]["value"] is None  # no template to probe


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--models", "resnet9000"], "model: unknown model 'resnet9000'"),
        (["--model", "mynets:wrong_classes"], "the recipe needs logits of shape (2, 10)"),
        (["--model", "mynets:not_a_module"], "not a torch.nn.Module"),
        (["--model", "nosuchmodule:f"], "model: cannot load 'nosuchmodule:f'"),
        (["--realisations", "0-2"], "holds realisations [0, 1], not [2]"),
        (["--realisations", "x"], "realisations: 'x' is not a list of ids"),
        (["--precision", "fp8"], "precision: must be one of fp32, bf16"),
        (["--shard", "4/3"], "shard: 4/3 is not a valid shard"),
    ],
)
def test_bad_input_exits_2_with_one_line_before_training(
    small_build, tmp_path, user_nets, capsys, extra, message
):
    out = tmp_path / "runs"
    code = run(["bench", "run", "smoke", "--data", str(small_build), "--out", str(out), *extra])
    assert code == 2
    line = _only_line(capsys.readouterr().err)
    assert line.startswith("error: ") and message in line, line
    assert not (out / "checkpoints").exists() and not (out / "records.jsonl").exists()


def test_bench_list_prints_every_recipe_in_full(capsys):
    assert run(["bench", "list", "--json"]) == 0
    recipes = json.loads(capsys.readouterr().out)
    by_name = {r["name"]: r for r in recipes}
    assert set(by_name) >= {
        "mnist-scale", "mnist-scale-plus", "mnist-multires", "stl10-scale", "dynamic-mnist",
        "smoke",
    }  # fmt: skip
    ms = by_name["mnist-scale"]
    assert (ms["optimiser"], ms["lr"], ms["batch_size"], ms["epochs"]) == ("adam", 0.01, 128, 60)
    assert ms["milestones"] == [20, 40] and ms["gamma"] == 0.1 and ms["select"] == "best-val"
    assert ms["realisations"] == [0, 1, 2, 3, 4, 5]
    assert ms["models"] == [
        "cnn_mnist",
        "sesn_mnist_scalar",
        "sesn_mnist_vector",
        "sesn_mnist_isr",
        "sesn_mnist_isr_basting",
    ]
    assert {p["model"]: p["test_error"] for p in ms["published"]} == {
        "cnn_mnist": 2.02,
        "sesn_mnist_scalar": 1.68,
        "sesn_mnist_isr_basting": 1.72,
    }
    assert ms["model_scale_lr"] == {"sesn_mnist_isr_basting": 0.005}
    assert by_name["mnist-scale-plus"]["augment"] == "random-scale"
    assert len(by_name["dynamic-mnist"]["grid"]) == 45
    assert run(["bench", "list"]) == 0
    assert "mnist-multires (preset mnist-multires)" in capsys.readouterr().out


@pytest.mark.slow
def test_smoke_recipe_on_real_fashion_mnist_as_the_readme_runs_it(tmp_path, capsys):
    from conftest import debian_fashion_or_skip

    debian_fashion_or_skip()
    data = tmp_path / "ms.h5"
    build("mnist-scale", data, source="fashion-mnist", download=False, realisations=1)
    out, board = tmp_path / "runs", tmp_path / "board"
    assert run(["bench", "run", "smoke", "--data", str(data), "--out", str(out)]) == 0
    assert run(["bench", "report", str(out), "--out", str(board)]) == 0
    capsys.readouterr()
    records = {r["model"]: r for r in read_records(out)}
    assert set(records) == {"cnn_mnist", "sesn_mnist_scalar"}
    for r in records.values():
        assert r["metrics"]["test_images"] == 2000
        assert r["metrics"]["test_error"] < 0.5  # 3 epochs on 2,000 real digits do learn


def test_the_installed_script_finds_a_users_module_in_the_current_folder(small_build, tmp_path):
    script = Path(sys.executable).parent / "scale-datasets"
    if not script.exists():
        pytest.skip("the scale-datasets script is not installed next to this python")
    (tmp_path / "mypkg").mkdir()
    (tmp_path / "mypkg" / "__init__.py").write_text("")
    (tmp_path / "mypkg" / "nets.py").write_text(_USER_NETS)
    proc = subprocess.run(
        [str(script), "bench", "run", "smoke", "--data", str(small_build), "--model",
         "mypkg.nets:make_net", "--out", "runs"],
        capture_output=True, text=True, timeout=300, cwd=tmp_path,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    (record,) = read_records(tmp_path / "runs")
    assert record["model"] == "mypkg.nets:make_net"
