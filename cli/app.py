"""`scale-datasets`: build, inspect, verify, preview and merge dataset files.

Exit codes: 0 ok, 1 unexpected failure (including an unwritable or full output folder),
2 usage or invalid parameter, 3 integrity mismatch, 4 source data missing or unreadable,
130 interrupted (Ctrl-C), 143 terminated (SIGTERM). Errors are one line on stderr.
"""

from __future__ import annotations

import json
import logging
import signal
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.logging import RichHandler

from scale_datasets.errors import ScaleDatasetsError

from .progress import progress_bar as _progress_bar


def progress_bar(console: Console, label: str) -> Any:
    return _progress_bar(console, label, on_update=_raise_if_signalled)


app = typer.Typer(
    name="scale-datasets",
    help="Regenerate scale-equivariance benchmarks into verified HDF5 files.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,  # help texts show "[default: ...]" literally, not as markup
)
out_console = Console(highlight=False, soft_wrap=True)
err_console = Console(stderr=True, highlight=False, soft_wrap=True)

EXIT_UNEXPECTED = 1
EXIT_INTERRUPTED = 130
EXIT_TERMINATED = 143


@app.callback()
def _root(
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log progress details.")] = False,
) -> None:
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(message)s",
        handlers=[RichHandler(console=err_console, show_path=False, show_time=False)],
        force=True,
    )


@app.command()
def build(
    preset: Annotated[str, typer.Argument(help="Preset to build, e.g. mnist-scale.")],
    out: Annotated[
        Path | None,
        typer.Option("--out", "-o", help="Output file [default: ./<preset>-<source>.h5]."),
    ] = None,
    realisations: Annotated[
        int | None, typer.Option(help="Build realisations 0..N-1 [default: 6].")
    ] = None,
    realisation: Annotated[
        list[int] | None,
        typer.Option("--realisation", help="Build only this realisation id (repeatable)."),
    ] = None,
    source: Annotated[str, typer.Option(help="mnist, fashion-mnist or kmnist.")] = "mnist",
    source_dir: Annotated[
        Path | None,
        typer.Option(help="A folder with the four MNIST-format IDX files (.gz or not)."),
    ] = None,
    root: Annotated[
        Path | None,
        typer.Option(
            help="Where sources live [default: $SCALE_DATASETS_HOME or ~/.cache/scale-datasets]."
        ),
    ] = None,
    download: Annotated[
        bool, typer.Option(help="Download a missing source with torchvision.")
    ] = True,
    min_scale: Annotated[float | None, typer.Option(help="Smallest factor [0.3].")] = None,
    max_scale: Annotated[float | None, typer.Option(help="Largest factor [1.0].")] = None,
    interpolation: Annotated[
        str | None, typer.Option(help="bicubic (default), bilinear or nearest.")
    ] = None,
    canvas: Annotated[int | None, typer.Option(help="Output canvas side in pixels [28].")] = None,
    n_train: Annotated[int | None, typer.Option(help="Train samples [10000].")] = None,
    n_val: Annotated[int | None, typer.Option(help="Validation samples [2000].")] = None,
    n_test: Annotated[int | None, typer.Option(help="Test samples [50000].")] = None,
    seed: Annotated[int | None, typer.Option(help="Root seed [0].")] = None,
    workers: Annotated[int | None, typer.Option(help="Render processes [all cores].")] = None,
    shard: Annotated[str | None, typer.Option(help="Build only shard i/n, e.g. 1/3.")] = None,
    overwrite: Annotated[bool, typer.Option(help="Replace an existing output file.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Build a preset into one HDF5 file with a dataset card next to it."""
    from scale_datasets.build import build as run_build
    from scale_datasets.storage.reader import read_info

    given = dict(
        realisations=realisations,
        min_scale=min_scale,
        max_scale=max_scale,
        interpolation=interpolation,
        canvas=canvas,
        n_train=n_train,
        n_val=n_val,
        n_test=n_test,
        seed=seed,
    )
    options: dict[str, Any] = {k: v for k, v in given.items() if v is not None}
    if realisation:
        options["realisation_ids"] = tuple(realisation)
    with progress_bar(err_console, "rendering") as update:
        path = run_build(
            preset,
            out,
            source=source,
            source_dir=source_dir,
            root=root,
            download=download,
            workers=workers,
            shard=shard,
            overwrite=overwrite,
            progress=lambda _stage, done, total: update(done, total),
            **options,
        )
    info = read_info(path)
    if as_json:
        out_console.print_json(json.dumps(info.to_json()))
    else:
        out_console.print(
            f"{path}  content_sha256={info.content_sha256}  "
            f"{info.file_bytes / 1e6:.1f} MB  source={info.source['name']}"
        )


@app.command("list")
def list_cmd(
    as_json: Annotated[bool, typer.Option("--json", help="Print as JSON.")] = False,
) -> None:
    """List the presets that can be built."""
    from scale_datasets.presets import list_presets
    from scale_datasets.sources import MNIST_LIKE_SOURCES

    rows = [
        {
            "name": p.name,
            "version": p.version,
            "summary": p.summary,
            "sources": list(MNIST_LIKE_SOURCES),
        }
        for p in list_presets()
    ]
    if as_json:
        out_console.print_json(json.dumps(rows))
        return
    for row in rows:
        out_console.print(f"{row['name']} (v{row['version']}): {row['summary']}")


@app.command()
def info(
    file: Annotated[Path, typer.Argument(help="A file made by `build` or `merge`.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print as JSON.")] = False,
) -> None:
    """Show what a file holds and how it was made (no pixels are read)."""
    from scale_datasets.storage.reader import read_info

    details = read_info(file)
    if as_json:
        out_console.print_json(json.dumps(details.to_json()))
        return
    out_console.print(
        f"{file}: {details.preset} v{details.preset_version}, {details.file_bytes / 1e6:.1f} MB"
    )
    out_console.print(
        f"  source: {details.source.get('name')} "
        f"(images sha256 {details.source.get('sha256', {}).get('images', '?')})"
    )
    out_console.print(f"  params: {json.dumps(details.params, sort_keys=True)}")
    if details.shard:
        out_console.print(f"  shard: {details.shard['index']}/{details.shard['count']}")
    for k, splits in details.realisations.items():
        sizes = ", ".join(f"{s.name} {s.size}" for s in splits)
        out_console.print(f"  realisation {k}: {sizes}")
    out_console.print(f"  content_sha256: {details.content_sha256}")


@app.command()
def verify(
    file: Annotated[Path, typer.Argument(help="A file made by `build` or `merge`.")],
) -> None:
    """Recompute every digest and check every chunk; exit 3 on any mismatch."""
    from scale_datasets.storage.verify import verify_file

    with progress_bar(err_console, "verifying") as update:
        report = verify_file(file, progress=update)
    out_console.print(
        f"OK {file} content_sha256={report.content_sha256} "
        f"({report.datasets} datasets, {report.bytes_checked / 1e6:.1f} MB checked)"
    )


@app.command()
def preview(
    file: Annotated[Path, typer.Argument(help="A file made by `build` or `merge`.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="PNG to write.")],
    split: Annotated[str, typer.Option(help="train, val or test.")] = "train",
    realisation: Annotated[int, typer.Option(help="Realisation id.")] = 0,
    count: Annotated[int, typer.Option(help="How many samples.")] = 64,
    zoom: Annotated[int, typer.Option(help="Pixel magnification.")] = 3,
) -> None:
    """Write a PNG grid of samples (smallest scale first) captioned with label and scale."""
    from scale_datasets.preview import preview_grid
    from scale_datasets.storage.atomic import atomic_output

    grid = preview_grid(file, split=split, realisation=realisation, count=count, zoom=zoom)
    with atomic_output(out, overwrite=True) as tmp:
        grid.save(tmp, format="PNG")
    out_console.print(str(out))


@app.command()
def merge(
    shards: Annotated[list[Path], typer.Argument(help="Every shard of one build.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="The merged file.")],
    overwrite: Annotated[bool, typer.Option(help="Replace an existing output file.")] = False,
) -> None:
    """Join the shards of one build into the file a single build would have written."""
    from scale_datasets.build import merge as run_merge
    from scale_datasets.storage.reader import read_info

    with progress_bar(err_console, "merging") as update:
        path = run_merge(shards, out, overwrite=overwrite, progress=update)
    out_console.print(f"{path}  content_sha256={read_info(path).content_sha256}")


# The exit code owed to a Ctrl-C (130) or SIGTERM (143) that arrived, or None.
_signalled: int | None = None
_EXIT_FOR_SIGNAL = {signal.SIGINT: EXIT_INTERRUPTED, signal.SIGTERM: EXIT_TERMINATED}


def _on_signal(signum: int, _frame: Any) -> None:
    # The first signal is only noted: an exception raised in a handler can land in code that
    # swallows it (a weakref callback, say), and then the build would finish as if nothing had
    # happened. The progress callback raises SystemExit at the next block (a fraction of a
    # second), which unwinds like Ctrl-C, so temp files are removed on the way out. A second
    # signal (say, Ctrl-C pressed again during a long download) raises at once.
    global _signalled
    if _signalled is not None:
        raise SystemExit(_signalled)
    _signalled = _EXIT_FOR_SIGNAL[signal.Signals(signum)]


def _raise_if_signalled() -> None:
    if _signalled is not None:
        raise SystemExit(_signalled)


def _fail(message: str, code: int) -> int:
    err_console.print(f"error: {message}", markup=False)
    return code


def run(argv: list[str] | None = None) -> int:
    """Run the CLI and return its exit code (errors become one line on stderr)."""
    global _signalled
    _signalled = None
    previous = {sig: signal.signal(sig, _on_signal) for sig in _EXIT_FOR_SIGNAL}
    try:
        # Standalone mode always ends in SystemExit (Typer turns usage errors into exit 2).
        app(args=argv, prog_name="scale-datasets", standalone_mode=True)
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except ScaleDatasetsError as exc:
        return _fail(str(exc), exc.exit_code)
    except OSError as exc:
        where = f": {exc.filename}" if exc.filename else ""
        return _fail(f"{exc.strerror or exc}{where}", EXIT_UNEXPECTED)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if code == 0 and _signalled is not None:  # a signal noted after the last check point
        code = _signalled
    if code == EXIT_TERMINATED:
        return _fail("terminated", EXIT_TERMINATED)
    if code == EXIT_INTERRUPTED:
        return _fail("interrupted", EXIT_INTERRUPTED)
    return code


def main() -> None:
    sys.exit(run())
