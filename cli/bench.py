"""`scale-datasets bench`: the leaderboard's recipes, runs and reports."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

bench_app = typer.Typer(
    help="Train and score reference models (and yours) with the published recipes.",
    no_args_is_help=True,
    rich_markup_mode=None,
)
out_console = Console(highlight=False, soft_wrap=True)


@bench_app.command("list")
def list_cmd(
    as_json: Annotated[bool, typer.Option("--json", help="Print as JSON.")] = False,
) -> None:
    """Every recipe in full: preset, models, optimiser, schedule, epochs, metrics."""
    from scale_eq.leaderboard import list_recipes

    recipes = [r.to_json() for r in list_recipes()]
    if as_json:
        out_console.print_json(json.dumps(recipes))
        return
    for r in recipes:
        out_console.print(f"{r['name']} (preset {r['preset']}): {r['summary']}", markup=False)
        for key, value in r.items():
            if key in ("name", "preset", "summary"):
                continue
            if key == "grid" and value:
                value = f"{len(value)} scales {value[0]:.3f}..{value[-1]:.3f}"
            if key == "published":
                value = (
                    "; ".join(
                        f"{p['model']} {p['test_error']}"
                        + (f" +- {p['sd']}" if p["sd"] is not None else "")
                        + (f" [{p['condition']}]" if p["condition"] else "")
                        for p in value
                    )
                    or "none"
                )
            out_console.print(f"  {key}: {value}", markup=False)


def _ids(text: str | None, name: str) -> tuple[int, ...] | None:
    from scale_eq.leaderboard.grid import parse_ids

    return None if text is None else parse_ids(text, name)


@bench_app.command("run")
def run_cmd(
    recipe: Annotated[str, typer.Argument(help="A recipe of `bench list`.")],
    data: Annotated[Path, typer.Option(help="The data file, built with the recipe's preset.")],
    out: Annotated[Path, typer.Option(help="Runs folder: records.jsonl and checkpoints/.")] = Path(
        "runs"
    ),
    models: Annotated[
        str | None, typer.Option(help="Comma-separated models [default: the recipe's].")
    ] = None,
    model: Annotated[
        list[str] | None,
        typer.Option(help="A model name or your own factory module:function (repeatable)."),
    ] = None,
    realisations: Annotated[
        str | None, typer.Option(help="e.g. 0-2 or 0,3 [default: the recipe's].")
    ] = None,
    seeds: Annotated[str | None, typer.Option(help="e.g. 0,1 [default: the recipe's].")] = None,
    device: Annotated[
        str, typer.Option(help="cpu, cuda (cuda:LOCAL_RANK under torchrun) or cuda:N.")
    ] = "cpu",
    shard: Annotated[
        str | None, typer.Option(help="Run only share i/n of the grid (Slurm arrays).")
    ] = None,
    precision: Annotated[str, typer.Option(help="fp32, or bf16 autocast.")] = "fp32",
    deterministic: Annotated[
        bool, typer.Option(help="Deterministic kernels (bitwise repeatable on a GPU).")
    ] = False,
    ddp: Annotated[
        bool,
        typer.Option(help="Under torchrun: the ranks train each run together, data-parallel."),
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as JSON.")] = False,
) -> None:
    """Run this process's share of a recipe's grid; finished runs are skipped, interrupted
    ones resume from their last checkpoint."""
    from scale_eq.leaderboard.runner import run_grid

    chosen = [m.strip() for m in models.split(",") if m.strip()] if models else []
    chosen += list(model or [])
    result = run_grid(
        recipe,
        data,
        out,
        models=tuple(chosen) or None,
        realisations=_ids(realisations, "realisations"),
        seeds=_ids(seeds, "seeds"),
        device=device,
        shard=shard,
        precision=precision,
        deterministic=deterministic,
        ddp=ddp,
    )
    summary = {
        "grid": result.grid,
        "this_process": result.mine,
        "skipped": result.skipped,
        "trained": result.trained,
        "records": str(out / "records.jsonl"),
    }
    if as_json:
        out_console.print_json(json.dumps(summary))
        return
    out_console.print(
        f"{len(result.trained)} run(s) trained, {result.skipped} already finished, of "
        f"{result.mine} in this process's share of {result.grid}; records: "
        f"{summary['records']}",
        markup=False,
    )


@bench_app.command("report")
def report_cmd(
    runs: Annotated[Path, typer.Argument(help="A runs folder (or a records .jsonl file).")],
    out: Annotated[
        Path, typer.Option(help="Folder for LEADERBOARD.md, .csv, .json, plots.")
    ] = Path("board"),
) -> None:
    """Aggregate the records: mean +- sd per model, published numbers, paired comparisons."""
    from scale_eq.leaderboard.report import write_report

    written = write_report(runs, out)
    out_console.print(written["markdown"].read_text(), markup=False)
    out_console.print(f"written: {', '.join(str(p) for p in written.values())}", markup=False)
