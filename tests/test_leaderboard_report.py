"""The leaderboard's report, run records and grid, on hand-made records (no training)."""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import json
import logging
import multiprocessing
import os
import statistics
import sys
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scale_datasets.errors import InvalidParameterError
from scale_eq.leaderboard.grid import RunSpec, expand_grid, parse_ids, placement, share
from scale_eq.leaderboard.recipes import get_recipe
from scale_eq.leaderboard.records import (
    RECORDS_FILE,
    SCHEMA_VERSION,
    append_record,
    finished_runs,
    read_records,
)
from scale_eq.leaderboard.report import aggregate, write_report


def make_record(
    model: str = "cnn_mnist",
    recipe: str = "mnist-scale",
    realisation: int = 0,
    seed: int = 0,
    test_error: float = 0.02,
    *,
    run_id: str | None = None,
    distribution: str | None = None,
    consistency: tuple[float, float, int] | None = None,
    eq: float | None = 0.1,
    parameters: int | None = 1000,
    seconds: float | None = 2.0,
    per_scale: list[float | None] | None = None,
    per_resolution: list[tuple[int, float]] | None = None,
    scale_grid: list[tuple[float, float]] | None = None,
) -> dict[str, Any]:
    """A record shaped like the runner's (only the fields the report reads, plus a few)."""
    params: dict[str, Any] = {"seed": 0}
    if distribution is not None:
        params["distribution"] = distribution
    metrics: dict[str, Any] = {
        "test_error": test_error,
        "consistency": None
        if consistency is None
        else {
            "resolutions": [16, 28],
            "correct_at_every_resolution": consistency[0],
            "same_class_at_every_resolution": consistency[1],
            "images": consistency[2],
        },
        "equivariance_error": {"value": eq, "what": "final features, ideal D_r"},
    }
    if per_scale is not None:
        edges = get_recipe(recipe).scale_bins
        metrics["per_scale"] = [
            {"lo": lo, "hi": hi, "n": 10, "accuracy": acc}
            for lo, hi, acc in zip(edges, edges[1:], per_scale, strict=False)
        ]
    if per_resolution is not None:
        metrics["per_resolution"] = [
            {"resolution": res, "n": 10, "accuracy": acc} for res, acc in per_resolution
        ]
    if scale_grid is not None:
        metrics["scale_grid"] = {
            "images": 10,
            "per_scale": [{"scale": s, "n": 10, "accuracy": a} for s, a in scale_grid],
        }
    return {
        "schema_version": SCHEMA_VERSION,
        "run_id": run_id or f"{recipe}.{model}.r{realisation}.s{seed}.{distribution or ''}",
        "recipe": recipe,
        "model": model,
        "realisation": realisation,
        "seed": seed,
        "parameters": parameters,
        "data": {"params": params},
        "config": {"recipe": get_recipe(recipe).to_json()},
        "metrics": metrics,
        "seconds_per_epoch": seconds,
    }


def as_json(record: dict[str, Any]) -> dict[str, Any]:
    """A record as it reads back from its JSON line (tuples become lists)."""
    return json.loads(json.dumps(record))


def rows_by_model(records: list[dict[str, Any]]) -> dict[tuple[str, str], Any]:
    return {(r.model, r.condition): r for r in aggregate(records)}


# ----------------------------------------------------------------------------- report


def test_mean_sample_sd_published_difference_and_missing_cells():
    errors = [0.020, 0.021, 0.023]
    records = [make_record(realisation=i, test_error=e) for i, e in enumerate(errors)]
    (row,) = aggregate(records)
    percent = [2.0, 2.1, 2.3]
    assert (row.recipe, row.model, row.condition) == ("mnist-scale", "cnn_mnist", "")
    assert row.n == 3
    assert row.mean == pytest.approx(statistics.mean(percent), abs=1e-12)
    assert row.mean == pytest.approx(2.1333333333, abs=1e-9)
    assert row.sd == pytest.approx(statistics.stdev(percent), abs=1e-12)  # ddof 1, not 0
    assert row.sd != pytest.approx(statistics.pstdev(percent), abs=1e-6)
    assert (row.published, row.published_sd) == (2.02, 0.07)
    assert "SESN" in row.published_source
    assert row.difference == pytest.approx(statistics.mean(percent) - 2.02, abs=1e-12)
    # The recipe's grid is realisations 0-5 x seed 0.
    assert row.missing == ["r3 s0", "r4 s0", "r5 s0"]
    assert [(r["realisation"], r["seed"]) for r in row.runs] == [(0, 0), (1, 0), (2, 0)]
    assert [r["test_error"] for r in row.runs] == pytest.approx(percent, abs=1e-12)
    assert row.parameters == 1000
    assert row.seconds_per_epoch == 2.0
    assert row.equivariance_error == pytest.approx(0.1)
    assert row.equivariance_what == "final features, ideal D_r"


def test_one_run_has_no_sd_and_an_unpublished_model_no_difference():
    rows = rows_by_model(
        [
            make_record(realisation=4, test_error=0.025),
            make_record("sesn_mnist_vector", realisation=4, test_error=0.018),
        ]
    )
    cnn = rows["cnn_mnist", ""]
    assert (cnn.n, cnn.sd) == (1, None)
    assert cnn.mean == pytest.approx(2.5)
    assert cnn.difference == pytest.approx(0.48)
    assert cnn.missing == ["r0 s0", "r1 s0", "r2 s0", "r3 s0", "r5 s0"]
    vector = rows["sesn_mnist_vector", ""]
    assert (vector.published, vector.difference) == (None, None)


def test_paired_comparison_uses_only_pairs_both_models_have():
    base = {0: 0.030, 1: 0.020, 2: 0.025, 3: 0.022}
    model = {1: 0.018, 2: 0.026, 3: 0.019, 4: 0.010}  # r4 has no baseline, r0 no model run
    records = [make_record(realisation=r, test_error=e) for r, e in base.items()]
    records += [
        make_record("sesn_mnist_scalar", realisation=r, test_error=e) for r, e in model.items()
    ]
    rows = rows_by_model(records)
    assert rows["cnn_mnist", ""].paired is None  # the baseline is not paired with itself
    paired = rows["sesn_mnist_scalar", ""].paired
    diffs = [100 * (model[r] - base[r]) for r in (1, 2, 3)]  # -0.2, +0.1, -0.3 points
    assert paired["baseline"] == "cnn_mnist"
    assert paired["pairs"] == 3
    assert paired["better"] == 2
    assert paired["mean"] == pytest.approx(statistics.mean(diffs), abs=1e-12)
    assert paired["sd"] == pytest.approx(statistics.stdev(diffs), abs=1e-12)
    # The unpaired mean still covers every run of the model, r4 included.
    assert rows["sesn_mnist_scalar", ""].n == 4


def test_recipe_without_baseline_has_no_paired_column():
    (row,) = aggregate([make_record("fourier_stl", "stl10-scale", test_error=0.3)])
    assert row.paired is None
    assert row.difference == pytest.approx(30 - 26.68)


def test_duplicate_run_ids_count_once():
    records = [
        make_record(realisation=0, test_error=0.020),
        make_record(realisation=1, test_error=0.030),
        make_record(realisation=1, test_error=0.030),  # the same run appended twice
        make_record(realisation=0, test_error=0.020),
    ]
    (row,) = aggregate(records)
    assert row.n == 2
    assert row.mean == pytest.approx(2.5)
    assert row.sd == pytest.approx(statistics.stdev([2.0, 3.0]))


@pytest.mark.parametrize(
    ("distribution", "published", "sd"),
    [
        ("loguniform(1, 8)", 2.87, 0.07),
        ("loguniform(1, 2.83)", 2.29, 0.07),
        ("loguniform(1, 4.76)", 2.51, 0.08),
        # What a real file holds: the build stores the law in canonical form.
        ("loguniform(1.0, 8.0)", 2.87, 0.07),
        ("loguniform(1.0, 4.76)", 2.51, 0.08),
    ],
)
def test_dynamic_mnist_published_number_is_matched_by_the_scale_law(distribution, published, sd):
    records = [
        make_record("sesn_toy", "dynamic-mnist", r, test_error=0.03, distribution=distribution)
        for r in (0, 1)
    ]
    (row,) = aggregate(records)
    assert row.condition == distribution
    assert (row.published, row.published_sd) == (published, sd)
    assert row.difference == pytest.approx(3.0 - published)
    assert row.missing == ["r2 s0"]  # dynamic-mnist: realisations 0-2 x seed 0


def test_dynamic_mnist_laws_are_separate_rows_and_an_unpublished_law_has_none():
    records = [
        make_record(
            "sesn_toy", "dynamic-mnist", 0, test_error=0.03, distribution="loguniform(1, 8)"
        ),
        make_record("sesn_toy", "dynamic-mnist", 0, test_error=0.02, distribution="uniform(1, 2)"),
    ]
    rows = rows_by_model(records)
    assert set(rows) == {("sesn_toy", "loguniform(1, 8)"), ("sesn_toy", "uniform(1, 2)")}
    assert rows["sesn_toy", "loguniform(1, 8)"].published == 2.87
    other = rows["sesn_toy", "uniform(1, 2)"]
    assert (other.n, other.published, other.difference) == (1, None, None)


def test_consistency_rates_and_equivariance_are_averaged():
    records = [
        make_record(
            "fourier_mnist", "mnist-multires", 0, test_error=0.011, consistency=(0.96, 0.97, 500)
        ),
        make_record(
            "fourier_mnist",
            "mnist-multires",
            0,
            test_error=0.013,
            seed=1,
            consistency=(0.98, 0.99, 500),
            eq=0.3,
        ),
    ]
    (row,) = aggregate(records)
    assert row.consistency_correct == pytest.approx(0.97)
    assert row.consistency_same == pytest.approx(0.98)
    assert row.consistency_images == 500
    assert row.published_consistency == 0.9716
    assert row.equivariance_error == pytest.approx(0.2)
    assert row.published == 1.11
    # mnist-multires: realisation 0 x seed 0 only, so seed 1 is an extra run, nothing missing.
    assert row.missing == []


def test_consistency_is_not_reported_when_a_run_lacks_it():
    records = [
        make_record(
            "fourier_mnist", "mnist-multires", 0, test_error=0.011, consistency=(0.96, 0.97, 500)
        ),
        make_record(
            "fourier_mnist", "mnist-multires", 0, test_error=0.013, seed=1, consistency=None
        ),
    ]
    (row,) = aggregate(records)
    assert (row.consistency_correct, row.consistency_same, row.consistency_images) == (None,) * 3


def test_unmeasured_equivariance_and_seconds_are_none_not_nan():
    (row,) = aggregate([make_record(eq=None, seconds=None)])
    assert row.equivariance_error is None
    assert row.seconds_per_epoch is None


def test_curve_is_the_mean_accuracy_per_bin_and_per_resolution():
    (row,) = aggregate(
        [
            make_record(realisation=0, per_scale=[0.9, 0.8, None]),
            make_record(realisation=1, per_scale=[0.7, 0.6, 0.5]),
        ]
    )
    assert row.curve["kind"] == "scale"
    assert row.curve["x"] == ["0.3-0.4", "0.4-0.5", "0.5-0.6"]
    assert row.curve["accuracy"] == pytest.approx([0.8, 0.7, 0.5])  # None bins are skipped
    (row,) = aggregate(
        [
            make_record(
                "fourier_mnist", "mnist-multires", 0, per_resolution=[(16, 0.9), (28, 1.0)]
            ),
            make_record(
                "fourier_mnist", "mnist-multires", 1, per_resolution=[(16, 0.7), (28, 0.9)]
            ),
        ]
    )
    assert row.curve == {
        "kind": "resolution",
        "x": ["16", "28"],
        "accuracy": pytest.approx([0.8, 0.95]),
    }


def test_scale_grid_curve_averages_every_run_not_only_the_last():
    records = [
        make_record(
            "sesn_toy",
            "dynamic-mnist",
            r,
            distribution="loguniform(1, 8)",
            per_scale=[0.5],
            scale_grid=[(0.5, acc), (1.0, acc + 0.1)],
        )
        for r, acc in ((0, 0.6), (1, 0.8))
    ]
    (row,) = aggregate(records)
    assert row.curve["kind"] == "scale_grid"
    assert row.curve["x"] == ["0.5000", "1.0000"]
    assert row.curve["accuracy"] == pytest.approx([0.7, 0.8])


# ----------------------------------------------------------------------------- written report


def _no_matplotlib():
    """matplotlib made unimportable whether it is installed or not."""
    return mock.patch.dict(sys.modules, {"matplotlib": None, "matplotlib.pyplot": None})


def test_write_report_writes_markdown_csv_and_json_with_the_same_numbers(tmp_path):
    runs = tmp_path / "runs"
    for i, e in enumerate([0.020, 0.021, 0.023]):
        append_record(runs, make_record(realisation=i, test_error=e, parameters=1_234_567))
    append_record(runs, make_record("sesn_mnist_scalar", realisation=1, test_error=0.017))
    with _no_matplotlib():
        written = write_report(runs, tmp_path / "board")

    assert {k: p.name for k, p in written.items()} == {
        "json": "leaderboard.json",
        "csv": "leaderboard.csv",
        "markdown": "LEADERBOARD.md",
    }
    assert all(p.is_file() for p in written.values())
    assert not list((tmp_path / "board").glob("*.png"))
    rows = {r.model: r for r in aggregate(read_records(runs))}

    with written["csv"].open(newline="") as fh:
        table = list(csv.DictReader(fh))
    assert [r["model"] for r in table] == ["cnn_mnist", "sesn_mnist_scalar"]
    cnn, scalar = table
    assert cnn["recipe"] == "mnist-scale"
    assert int(cnn["n"]) == 3
    assert float(cnn["mean"]) == rows["cnn_mnist"].mean
    assert float(cnn["mean"]) == pytest.approx(2.1333333333, abs=1e-9)
    assert float(cnn["sd"]) == pytest.approx(statistics.stdev([2.0, 2.1, 2.3]), abs=1e-12)
    assert float(cnn["published"]) == 2.02
    assert float(cnn["difference"]) == pytest.approx(2.1333333333 - 2.02, abs=1e-9)
    assert int(cnn["parameters"]) == 1_234_567
    assert cnn["missing"] == "r3 s0 r4 s0 r5 s0"
    assert cnn["consistency_correct"] == ""  # None is an empty cell
    assert (int(scalar["n"]), scalar["sd"]) == (1, "")
    assert float(scalar["mean"]) == pytest.approx(1.7)
    assert float(scalar["difference"]) == pytest.approx(1.7 - 1.68)
    assert scalar["missing"] == "r0 s0 r2 s0 r3 s0 r4 s0 r5 s0"

    data = json.loads(written["json"].read_text())
    assert [d["model"] for d in data] == ["cnn_mnist", "sesn_mnist_scalar"]
    assert data[0]["mean"] == rows["cnn_mnist"].mean
    assert data[0]["sd"] == rows["cnn_mnist"].sd
    assert data[0]["missing"] == ["r3 s0", "r4 s0", "r5 s0"]
    assert data[1]["paired"] == {
        "baseline": "cnn_mnist",
        "pairs": 1,
        "mean": pytest.approx(1.7 - 2.1),
        "sd": None,
        "better": 1,
    }

    md = written["markdown"].read_text()
    assert "## mnist-scale" in md
    cnn_line = next(line for line in md.splitlines() if line.startswith("| cnn_mnist |"))
    assert "| 1,234,567 | 3 | 2.13 +- 0.15 | 2.02 +- 0.07 | +0.11 |" in cnn_line
    assert cnn_line.endswith("| r3 s0, r4 s0, r5 s0 |")
    scalar_line = next(line for line in md.splitlines() if line.startswith("| sesn_mnist_scalar |"))
    assert "| 1 | 1.70 | 1.68 +- 0.06 | +0.02 | -0.40 vs cnn_mnist (1/1 better) |" in scalar_line
    assert scalar_line.endswith("| r0 s0, r2 s0, r3 s0, r4 s0, r5 s0 |")
    assert "pip install 'scale-datasets[plot]'" in md


def test_write_report_without_a_parameter_count_or_with_a_full_grid(tmp_path):
    runs = tmp_path / "runs"
    append_record(
        runs, make_record("fourier_mnist", "mnist-multires", test_error=0.011, parameters=None)
    )
    with _no_matplotlib():
        written = write_report(runs / RECORDS_FILE, tmp_path / "board")  # a file works too
    line = next(
        line
        for line in written["markdown"].read_text().splitlines()
        if line.startswith("| fourier_mnist |")
    )
    assert line.startswith("| fourier_mnist | - | - | 1 | 1.10 | 1.11 | -0.01 |")
    assert line.endswith("| none |")  # the grid is complete
    (row,) = csv.DictReader(written["csv"].open(newline=""))
    assert (row["parameters"], row["missing"]) == ("", "")


def test_write_report_of_a_folder_without_records_is_a_one_line_error(tmp_path):
    with pytest.raises(InvalidParameterError, match="runs: no records"):
        write_report(tmp_path, tmp_path / "board")


# ----------------------------------------------------------------------------- records


_PADDING = "x" * 20_000  # lines far longer than a pipe buffer: interleaving would show


def _append_many(out: str, worker: int) -> None:
    for i in range(25):
        append_record(Path(out), {**make_record(run_id=f"w{worker}-{i}"), "pad": _PADDING})


def test_concurrent_appends_give_whole_lines(tmp_path):
    ctx = multiprocessing.get_context("fork")
    procs = [ctx.Process(target=_append_many, args=(str(tmp_path), w)) for w in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=60)
    assert [p.exitcode for p in procs] == [0, 0, 0, 0]
    lines = (tmp_path / RECORDS_FILE).read_bytes().split(b"\n")
    assert lines[-1] == b""
    parsed = [json.loads(line) for line in lines[:-1]]
    assert len(parsed) == 100
    assert all(r["pad"] == _PADDING for r in parsed)
    expected = {f"w{w}-{i}" for w in range(4) for i in range(25)}
    assert sorted(r["run_id"] for r in parsed) == sorted(expected)
    assert finished_runs(tmp_path) == expected
    # Each worker's own records stay in the order it wrote them.
    for w in range(4):
        mine = [r["run_id"] for r in parsed if r["run_id"].startswith(f"w{w}-")]
        assert mine == [f"w{w}-{i}" for i in range(25)]


def _write_torn_line(out: Path, record: dict[str, Any]) -> None:
    line = json.dumps(record, sort_keys=True)
    with (out / RECORDS_FILE).open("a") as fh:
        fh.write(line[: len(line) // 2])  # a writer killed mid-line: no newline


def test_read_records_skips_a_torn_last_line_with_a_warning(tmp_path, caplog):
    append_record(tmp_path, make_record(run_id="a"))
    append_record(tmp_path, make_record(run_id="b"))
    _write_torn_line(tmp_path, make_record(run_id="c"))
    with caplog.at_level(logging.WARNING, logger="scale_eq.leaderboard.records"):
        records = read_records(tmp_path)
    assert [r["run_id"] for r in records] == ["a", "b"]
    assert records[0] == as_json(make_record(run_id="a"))
    assert len(caplog.records) == 1
    assert "line 3" in caplog.text
    assert "not a complete record" in caplog.text
    assert finished_runs(tmp_path) == {"a", "b"}


def test_a_record_appended_after_a_torn_line_is_kept(tmp_path, caplog):
    """Resuming after a writer was killed mid-line must not lose the next record."""
    append_record(tmp_path, make_record(run_id="a"))
    _write_torn_line(tmp_path, make_record(run_id="b"))
    append_record(tmp_path, make_record(run_id="b"))
    append_record(tmp_path, make_record(run_id="c"))
    with caplog.at_level(logging.WARNING):
        assert [r["run_id"] for r in read_records(tmp_path)] == ["a", "b", "c"]
    assert "line 2" in caplog.text
    assert finished_runs(tmp_path) == {"a", "b", "c"}


def test_read_records_skips_other_schema_versions(tmp_path, caplog):
    append_record(tmp_path, make_record(run_id="old") | {"schema_version": SCHEMA_VERSION - 1})
    append_record(tmp_path, make_record(run_id="new"))
    append_record(tmp_path, make_record(run_id="future") | {"schema_version": SCHEMA_VERSION + 1})
    with (tmp_path / RECORDS_FILE).open("a") as fh:
        fh.write("\n[1, 2]\n")  # a blank line is ignored; a JSON list is not a record
    with caplog.at_level(logging.WARNING, logger="scale_eq.leaderboard.records"):
        records = read_records(tmp_path / RECORDS_FILE)
    assert [r["run_id"] for r in records] == ["new"]
    assert len(caplog.records) == 3
    assert f"not a schema-{SCHEMA_VERSION} record" in caplog.text
    assert all(f"line {n}" in caplog.text for n in (1, 3, 5))


def test_finished_runs_of_an_empty_folder_and_missing_records(tmp_path):
    assert finished_runs(tmp_path) == set()
    assert finished_runs(tmp_path / "not-yet") == set()
    with pytest.raises(InvalidParameterError, match="no records"):
        read_records(tmp_path)


def test_append_record_creates_the_folder_and_returns_the_file(tmp_path):
    path = append_record(tmp_path / "a" / "b", make_record(run_id="x"))
    assert path == tmp_path / "a" / "b" / RECORDS_FILE
    assert path.read_text().count("\n") == 1
    assert read_records(path) == [as_json(make_record(run_id="x"))]


# ----------------------------------------------------------------------------- grid


@pytest.mark.parametrize(
    ("text", "ids"),
    [
        ("0-2,5", (0, 1, 2, 5)),
        ("5, 0-2, 2", (0, 1, 2, 5)),
        ("3", (3,)),
        ("4-4", (4,)),
        ("0,3,5", (0, 3, 5)),
    ],
)
def test_parse_ids(text, ids):
    assert parse_ids(text, "realisations") == ids


@pytest.mark.parametrize("text", ["2-1", "a", "1-", "", "0,,1", "-1", "1.5", "0-2;5", "²"])
def test_parse_ids_rejects_bad_specs_naming_the_option(text):
    with pytest.raises(InvalidParameterError, match=r"^seeds: ") as info:
        parse_ids(text, "seeds")
    assert "\n" not in str(info.value)


def test_parse_ids_empty_range_says_so():
    with pytest.raises(InvalidParameterError, match=r"seeds: range '2-1' is empty"):
        parse_ids("2-1", "seeds")


@contextlib.contextmanager
def _torchrun(rank: int | None, world: int | None, local: int | None = None):
    env = {"RANK": rank, "WORLD_SIZE": world, "LOCAL_RANK": local}
    patch = {k: str(v) for k, v in env.items() if v is not None}
    with mock.patch.dict(os.environ, patch):
        for k, v in env.items():
            if v is None:
                os.environ.pop(k, None)
        yield


def _grid(n: int) -> list[RunSpec]:
    return expand_grid(get_recipe("smoke"), ("cnn_mnist",), tuple(range(n)), (0,), "sha")


def test_placement_outside_torchrun_is_the_whole_grid(monkeypatch):
    for name in ("RANK", "WORLD_SIZE", "LOCAL_RANK"):
        monkeypatch.delenv(name, raising=False)
    where = placement(None)
    assert (where.index, where.count, where.rank, where.world_size, where.local_rank) == (
        0,
        1,
        0,
        1,
        0,
    )
    grid = _grid(10)
    assert share(grid, where) == grid


def test_placement_reads_torchrun_environment_inside_a_shard(monkeypatch):
    monkeypatch.setenv("RANK", "1")
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("LOCAL_RANK", "1")
    where = placement("2/3")
    assert (where.index, where.count, where.rank, where.world_size, where.local_rank) == (
        3,
        6,
        1,
        2,
        1,
    )
    assert [s.realisation for s in share(_grid(10), where)] == [3, 9]


def test_ranks_and_shards_split_a_ten_run_grid(monkeypatch):
    grid = _grid(10)
    seen: list[int] = []
    for shard in (1, 2, 3):
        for rank in (0, 1):
            monkeypatch.setenv("RANK", str(rank))
            monkeypatch.setenv("WORLD_SIZE", "2")
            seen += [s.realisation for s in share(grid, placement(f"{shard}/3"))]
    assert sorted(seen) == list(range(10))  # disjoint (no repeats) and covering


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"RANK": "2", "WORLD_SIZE": "2"}, "need 0 <= RANK < WORLD_SIZE, got 2/2"),
        ({"RANK": "0", "WORLD_SIZE": "0"}, "got 0/0"),
        ({"RANK": "-1", "WORLD_SIZE": "2"}, "got -1/2"),
        ({"RANK": "one", "WORLD_SIZE": "2"}, "RANK: must be an integer, got 'one'"),
        ({"RANK": "0", "WORLD_SIZE": "2", "LOCAL_RANK": "x"}, "LOCAL_RANK: must be an integer"),
    ],
)
def test_placement_rejects_a_bad_environment(monkeypatch, env, message):
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(InvalidParameterError, match=message.replace("(", r"\(")):
        placement(None)


@pytest.mark.parametrize("spec", ["0/2", "3/2", "1/0", "1-2", "x"])
def test_placement_rejects_a_bad_shard(monkeypatch, spec):
    monkeypatch.delenv("RANK", raising=False)
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    with pytest.raises(InvalidParameterError, match="shard"):
        placement(spec)


@settings(max_examples=60, deadline=None)
@given(
    world=st.integers(1, 4),
    shards=st.integers(1, 4),
    n=st.integers(0, 30),
)
def test_shares_are_disjoint_and_cover_the_grid(world, shards, n):
    grid = _grid(n)
    taken: list[int] = []
    indices = set()
    for shard in range(1, shards + 1):
        for rank in range(world):
            with _torchrun(rank, world, rank % 2):
                where = placement(f"{shard}/{shards}")
            assert where.count == world * shards
            assert (where.rank, where.world_size, where.local_rank) == (rank, world, rank % 2)
            indices.add(where.index)
            mine = share(grid, where)
            assert len(mine) in (n // where.count, -(-n // where.count))  # balanced
            taken += [s.realisation for s in mine]
    assert indices == set(range(world * shards))
    assert sorted(taken) == list(range(n))


def test_run_ids_are_stable_and_name_the_run():
    recipe = get_recipe("mnist-scale")
    a = RunSpec(recipe, "cnn_mnist", 2, 1, "abc")
    b = RunSpec(get_recipe("mnist-scale"), "cnn_mnist", 2, 1, "abc")
    assert a.run_id == a.run_id == b.run_id
    prefix, digest = a.run_id.rsplit(".", 1)
    assert prefix == "mnist-scale.cnn_mnist.r2.s1"
    assert len(digest) == 10 and int(digest, 16) >= 0
    assert digest == a.config_sha256[:10]
    user = RunSpec(recipe, "my.models:build net", 0, 0, "abc")
    assert user.run_id.startswith("mnist-scale.my.models_build_net.r0.s0.")


def test_run_ids_differ_when_any_config_field_differs():
    recipe = get_recipe("mnist-scale")
    base = RunSpec(recipe, "cnn_mnist", 0, 0, "abc")
    variants = [
        dataclasses.replace(base, recipe=dataclasses.replace(recipe, lr=0.02)),
        dataclasses.replace(base, recipe=dataclasses.replace(recipe, epochs=59)),
        dataclasses.replace(base, recipe=dataclasses.replace(recipe, augment="random-scale")),
        dataclasses.replace(
            base,
            recipe=dataclasses.replace(
                recipe, model_options=(("cnn_mnist", (("channels", (8,)),)),)
            ),
        ),
        dataclasses.replace(base, data_sha256="abd"),
        dataclasses.replace(base, precision="bf16"),
        dataclasses.replace(base, model="sesn_mnist_scalar"),
        dataclasses.replace(base, realisation=1),
        dataclasses.replace(base, seed=1),
    ]
    ids = [base.run_id] + [v.run_id for v in variants]
    assert len(set(ids)) == len(ids)
    # Recipe, data and precision changes keep the readable prefix: only the digest tells them
    # apart, so records of different configurations never share a run id.
    for v in variants[:6]:
        assert v.run_id.rsplit(".", 1)[0] == "mnist-scale.cnn_mnist.r0.s0"


def test_expand_grid_is_model_major_in_a_fixed_order():
    recipe = get_recipe("smoke")
    grid = expand_grid(recipe, ("cnn_mnist", "sesn_mnist_scalar"), (0, 1), (0, 5), "sha", "bf16")
    assert [(s.model, s.realisation, s.seed) for s in grid] == [
        ("cnn_mnist", 0, 0),
        ("cnn_mnist", 0, 5),
        ("cnn_mnist", 1, 0),
        ("cnn_mnist", 1, 5),
        ("sesn_mnist_scalar", 0, 0),
        ("sesn_mnist_scalar", 0, 5),
        ("sesn_mnist_scalar", 1, 0),
        ("sesn_mnist_scalar", 1, 5),
    ]
    assert {(s.data_sha256, s.precision) for s in grid} == {("sha", "bf16")}
    assert grid[4].config()["model_options"] == {"channels": (8, 16, 24)}
    again = expand_grid(recipe, ("cnn_mnist", "sesn_mnist_scalar"), (0, 1), (0, 5), "sha", "bf16")
    assert [s.run_id for s in again] == [s.run_id for s in grid]
    assert len({s.run_id for s in grid}) == 8


def test_write_report_draws_the_three_plots_with_matplotlib(tmp_path):
    pytest.importorskip("matplotlib")
    from PIL import Image

    runs = tmp_path / "runs"
    for i, e in enumerate([0.020, 0.021, 0.023]):
        append_record(runs, make_record(realisation=i, test_error=e))
        append_record(runs, make_record("sesn_mnist_scalar", realisation=i, test_error=e - 0.003))
    written = write_report(runs, tmp_path / "board")
    plots = ["test_error.png", "accuracy_by_scale.png", "equivariance_vs_error.png"]
    assert [written[name].name for name in plots] == plots
    for name in plots:
        with Image.open(written[name]) as image:
            assert image.format == "PNG" and image.width > 100 and image.height > 100
    md = written["markdown"].read_text()
    assert "Plots: test_error.png, accuracy_by_scale.png, equivariance_vs_error.png" in md
