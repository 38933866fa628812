"""The leaderboard report: records aggregated per (recipe, model), beside the published numbers.

Per row: the number of runs n, the test error in percent as mean +- sample standard deviation
(ddof 1; none for n = 1) over realisations and seeds, the published number and the difference,
a paired comparison with the recipe's baseline model (the mean and sd of the per-(realisation,
seed) differences, and on how many pairs the model was better), both consistency rates, the
equivariance error, parameters, seconds per epoch, and the (realisation, seed) pairs of the
recipe's grid that have no record. Written as LEADERBOARD.md, leaderboard.csv and
leaderboard.json; with matplotlib (the ``[plot]`` extra) also three plots.
"""

from __future__ import annotations

import csv
import json
import logging
import math
from collections import defaultdict
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from scale_datasets.distributions import parse_distribution

from .records import read_records

__all__ = ["Row", "aggregate", "write_report"]

log = logging.getLogger(__name__)

PLOTS = ("test_error.png", "accuracy_by_scale.png", "equivariance_vs_error.png")


@dataclass
class Row:
    recipe: str
    model: str
    condition: str  # the data's scale law where the recipe is published per law, else ""
    n: int
    mean: float  # test error, %
    sd: float | None
    runs: list[dict[str, Any]]  # realisation, seed, test error % of each run
    parameters: int | None
    published: float | None = None
    published_sd: float | None = None
    published_source: str | None = None
    published_consistency: float | None = None
    difference: float | None = None  # mean - published, percentage points
    paired: dict[str, Any] | None = None
    consistency_correct: float | None = None
    consistency_same: float | None = None
    consistency_images: int | None = None
    equivariance_error: float | None = None
    equivariance_what: str | None = None
    seconds_per_epoch: float | None = None
    missing: list[str] = field(default_factory=list)
    curve: dict[str, Any] | None = None  # mean accuracy per scale bin or resolution


def _mean(values: list[float]) -> float | None:
    values = [v for v in values if v is not None and not math.isnan(v)]
    return float(np.mean(values)) if values else None


def _mean_sd(values: list[float]) -> tuple[float, float | None]:
    arr = np.asarray(values, dtype=np.float64)
    return float(arr.mean()), (float(arr.std(ddof=1)) if len(arr) > 1 else None)


def _condition(record: dict[str, Any]) -> str:
    return str(record.get("data", {}).get("params", {}).get("distribution", ""))


def _same_law(published: str, condition: str) -> bool:
    """Whether a published condition names the data's scale law (files hold canonical laws:
    "loguniform(1, 8)" is stored as "loguniform(1.0, 8.0)")."""
    if published in ("", condition):
        return True
    try:
        return parse_distribution(published).canonical == parse_distribution(condition).canonical
    except ValueError:  # not a law this version knows
        return False


def _curve(records: list[dict[str, Any]]) -> dict[str, Any] | None:
    """Mean accuracy per scale bin (or per resolution) over the runs; the scale grid, where the
    runs have one, instead of the bins."""
    keyed: dict[str, list[float]] = defaultdict(list)
    grid: dict[str, list[float]] = defaultdict(list)
    kind = None
    for r in records:
        m = r["metrics"]
        if m.get("per_resolution"):
            kind = "resolution"
            for row in m["per_resolution"]:
                keyed[str(row["resolution"])].append(row["accuracy"])
        elif m.get("per_scale"):
            kind = "scale"
            for row in m["per_scale"]:
                if row["accuracy"] is not None:
                    keyed[f"{row['lo']}-{row['hi']}"].append(row["accuracy"])
        if m.get("scale_grid"):
            for row in m["scale_grid"]["per_scale"]:
                if row["accuracy"] is not None:
                    grid[f"{row['scale']:.4f}"].append(row["accuracy"])
    if grid:
        kind, keyed = "scale_grid", grid
    if kind is None:
        return None
    return {"kind": kind, "x": list(keyed), "accuracy": [float(np.mean(v)) for v in keyed.values()]}


def aggregate(records: list[dict[str, Any]]) -> list[Row]:
    """One row per (recipe, model, condition); duplicate run ids count once."""
    seen: set[str] = set()
    groups: dict[tuple[str, str, str], list[dict[str, Any]]] = defaultdict(list)
    for r in records:
        if r["run_id"] in seen:
            continue
        seen.add(r["run_id"])
        groups[(r["recipe"], r["model"], _condition(r))].append(r)
    rows = []
    for (recipe_name, model, condition), group in sorted(groups.items()):
        errors = [100 * r["metrics"]["test_error"] for r in group]
        mean, sd = _mean_sd(errors)
        row = Row(
            recipe=recipe_name,
            model=model,
            condition=condition,
            n=len(group),
            mean=mean,
            sd=sd,
            runs=[
                {"realisation": r["realisation"], "seed": r["seed"], "test_error": e}
                for r, e in zip(group, errors, strict=True)
            ],
            parameters=group[0].get("parameters"),
            seconds_per_epoch=_mean([r.get("seconds_per_epoch") for r in group]),
            curve=_curve(group),
        )
        cons = [r["metrics"].get("consistency") for r in group]
        if all(cons):
            row.consistency_correct = _mean([c["correct_at_every_resolution"] for c in cons])
            row.consistency_same = _mean([c["same_class_at_every_resolution"] for c in cons])
            row.consistency_images = cons[0]["images"]
        eq = [r["metrics"].get("equivariance_error") or {} for r in group]
        row.equivariance_error = _mean([e.get("value") for e in eq])
        row.equivariance_what = eq[0].get("what")
        recipe_json = group[0]["config"]["recipe"]
        for pub in recipe_json.get("published", []):
            if pub["model"] == model and _same_law(pub.get("condition", ""), condition):
                row.published, row.published_sd = pub["test_error"], pub["sd"]
                row.published_source = pub["source"]
                row.published_consistency = pub.get("consistency")
                row.difference = mean - pub["test_error"]
        grid = {(r, s) for r in recipe_json["realisations"] for s in recipe_json["seeds"]}
        have = {(r["realisation"], r["seed"]) for r in group}
        row.missing = [f"r{r} s{s}" for r, s in sorted(grid - have)]
        rows.append(row)
    _pair(rows, groups)
    return rows


def _pair(rows: list[Row], groups: dict[tuple[str, str, str], list[dict[str, Any]]]) -> None:
    """Each row against its recipe's baseline model, per (realisation, seed) present in both."""
    for row in rows:
        # the recipe as the runs recorded it (a recipe this version lacks pairs the same way)
        recorded = groups[(row.recipe, row.model, row.condition)][0]["config"]["recipe"]
        baseline = recorded.get("baseline")
        if baseline is None or baseline == row.model:
            continue
        base = {
            (r["realisation"], r["seed"]): 100 * r["metrics"]["test_error"]
            for r in groups.get((row.recipe, baseline, row.condition), [])
        }
        diffs = [
            run["test_error"] - base[(run["realisation"], run["seed"])]
            for run in row.runs
            if (run["realisation"], run["seed"]) in base
        ]
        if diffs:
            mean, sd = _mean_sd(diffs)
            better = sum(d < 0 for d in diffs)
            row.paired = {
                "baseline": baseline,
                "pairs": len(diffs),
                "mean": mean,
                "sd": sd,
                "better": better,
            }


def _pm(mean: float | None, sd: float | None, digits: int = 2) -> str:
    if mean is None:
        return "-"
    return f"{mean:.{digits}f}" + (f" +- {sd:.{digits}f}" if sd is not None else "")


def _markdown(rows: list[Row], source: str, plots: bool) -> str:
    lines = [
        "# Leaderboard",
        "",
        f"From {source}. Test error in %: mean +- sample sd over the n runs (realisations x "
        "seeds). Published: the paper's number; diff = ours - published (points). Paired: "
        "mean +- sd of (model - baseline) over the (realisation, seed) pairs both have, and on "
        "how many the model was better. Consistency: fraction correct at every resolution / "
        "with the same class at every resolution (multi-resolution recipes). Missing: grid "
        "cells of the recipe without a record.",
    ]
    for recipe in sorted({r.recipe for r in rows}):
        lines += [
            "",
            f"## {recipe}",
            "",
            "| model | condition | params | n | test error % | published | diff | paired vs "
            "baseline | consistency | eq. error | s/epoch | missing |",
            "|---|---|---:|---:|---|---|---:|---|---|---:|---:|---|",
        ]
        for r in (x for x in rows if x.recipe == recipe):
            paired = "-"
            if r.paired:
                p = r.paired
                paired = (
                    f"{_pm(p['mean'], p['sd'])} vs {p['baseline']} "
                    f"({p['better']}/{p['pairs']} better)"
                )
            cons = "-"
            if r.consistency_correct is not None:
                cons = (
                    f"{r.consistency_correct:.4f} / {r.consistency_same:.4f} "
                    f"(of {r.consistency_images})"
                )
                if r.published_consistency is not None:
                    cons += f"; published {r.published_consistency:.4f}"

            lines.append(
                f"| {r.model} | {r.condition or '-'} | "
                f"{'-' if r.parameters is None else f'{r.parameters:,}'} | {r.n} | "
                f"{_pm(r.mean, r.sd)} | {_pm(r.published, r.published_sd)} | "
                f"{'-' if r.difference is None else f'{r.difference:+.2f}'} | {paired} | {cons} | "
                f"{'-' if r.equivariance_error is None else f'{r.equivariance_error:.3g}'} | "
                f"{'-' if r.seconds_per_epoch is None else f'{r.seconds_per_epoch:.1f}'} | "
                f"{', '.join(r.missing) or 'none'} |"
            )
    lines += [
        "",
        "Plots: "
        + (
            ", ".join(PLOTS)
            if plots
            else "not drawn (matplotlib missing: pip install 'scale-datasets[plot]')"
        ),
    ]
    return "\n".join(lines) + "\n"


def _save(plt: Any, fig: Any, path: Path, legend: Any = None) -> None:
    """Write and close a figure, with ``legend``'s (an axes) legend when it has labels (none
    when no run has the plotted metric)."""
    if legend is not None and legend.get_legend_handles_labels()[0]:
        legend.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def _plots(rows: list[Row], out: Path) -> bool:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        log.warning("matplotlib is not installed: no plots (pip install 'scale-datasets[plot]')")
        return False
    labels = [f"{r.recipe}\n{r.model}" for r in rows]
    fig, ax = plt.subplots(figsize=(max(4, 1.2 * len(rows)), 4))
    for i, r in enumerate(rows):
        ax.errorbar(i, r.mean, yerr=r.sd or 0, fmt="o", capsize=4, color="C0")
        ax.scatter([i] * r.n, [run["test_error"] for run in r.runs], s=10, color="C1", zorder=3)
        if r.published is not None:
            ax.scatter(i, r.published, marker="x", color="C3", zorder=4)
    ax.set_xticks(range(len(rows)), labels, fontsize=7)
    ax.set_ylabel("test error (%)")
    ax.set_title("mean +- sd (runs: dots; published: x)")
    _save(plt, fig, out / PLOTS[0])
    fig, ax = plt.subplots(figsize=(6, 4))
    for r in rows:
        if r.curve:
            ax.plot(
                range(len(r.curve["x"])),
                r.curve["accuracy"],
                marker=".",
                label=f"{r.recipe} {r.model}",
            )
    ax.set_xlabel("scale bin / resolution / grid scale (see leaderboard.json)")
    ax.set_ylabel("test accuracy")
    _save(plt, fig, out / PLOTS[1], legend=ax)
    fig, ax = plt.subplots(figsize=(5, 4))
    for r in rows:
        if r.equivariance_error is not None:
            ax.scatter(r.mean, r.equivariance_error, label=f"{r.recipe} {r.model}")
    ax.set_xlabel("test error (%)")
    ax.set_ylabel("equivariance error")
    _save(plt, fig, out / PLOTS[2], legend=ax)
    return True


CSV_COLUMNS = (
    "recipe",
    "model",
    "condition",
    "parameters",
    "n",
    "mean",
    "sd",
    "published",
    "published_sd",
    "difference",
    "consistency_correct",
    "consistency_same",
    "consistency_images",
    "equivariance_error",
    "seconds_per_epoch",
    "missing",
)


def write_report(runs: Path, out: Path) -> dict[str, Path]:
    """Aggregate ``runs`` (a folder or a records file) into ``out``; returns what was written."""
    rows = aggregate(read_records(runs))
    out.mkdir(parents=True, exist_ok=True)
    written = {
        "json": out / "leaderboard.json",
        "csv": out / "leaderboard.csv",
        "markdown": out / "LEADERBOARD.md",
    }
    written["json"].write_text(json.dumps([asdict(r) for r in rows], indent=1) + "\n")
    with written["csv"].open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(CSV_COLUMNS)
        for r in rows:
            d = asdict(r)
            d["missing"] = " ".join(r.missing)
            writer.writerow(["" if d[c] is None else d[c] for c in CSV_COLUMNS])
    plots = _plots(rows, out) if rows else False
    written["markdown"].write_text(_markdown(rows, str(runs), plots))
    if plots:
        written.update({p: out / p for p in PLOTS})
    return written
