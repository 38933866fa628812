"""`scale-datasets`: build, inspect, verify, preview and merge dataset files.

Exit codes: 0 ok, 1 unexpected failure (including an unwritable or full output folder),
2 usage or invalid parameter, 3 integrity mismatch, 4 source data missing or unreadable,
130 interrupted (Ctrl-C), 143 terminated (SIGTERM). Errors are one line on stderr.
"""

from __future__ import annotations

import inspect
import json
import logging
import signal
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.logging import RichHandler

from scale_datasets.errors import ScaleDatasetsError
from scale_datasets.presets import list_presets
from scale_datasets.presets.params import fields_of
from scale_datasets.storage.atomic import BEFORE_PUBLISH

from .bench import bench_app
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


def _print_version(value: bool) -> None:
    if value:
        from scale_datasets.storage.writer import package_versions

        out_console.print(f"scale-datasets {package_versions()['scale-datasets']}")
        raise typer.Exit()


@app.callback()
def _root(
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log progress details.")] = False,
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_print_version, is_eager=True, help="Print the version and exit."
        ),
    ] = False,
) -> None:
    # On a terminal, rich's handler; in a pipe or a log file, one plain line per record (rich
    # would wrap them at 80 columns mid-sentence).
    if err_console.is_terminal:
        handler: logging.Handler = RichHandler(
            console=err_console, show_path=False, show_time=False
        )
        fmt = "%(message)s"
    else:
        handler = logging.StreamHandler(sys.stderr)
        fmt = "%(levelname)s %(message)s"
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format=fmt,
        handlers=[handler],
        force=True,
    )


build_app = typer.Typer(
    help="Build a preset into one HDF5 file with a dataset card next to it.",
    no_args_is_help=True,
    rich_markup_mode=None,
)
app.add_typer(build_app, name="build")
app.add_typer(bench_app, name="bench")


def _option(
    name: str, annotation: Any, default: Any, *decls: str, **kwargs: Any
) -> inspect.Parameter:
    return inspect.Parameter(
        name,
        inspect.Parameter.KEYWORD_ONLY,
        annotation=Annotated[annotation, typer.Option(*decls, **kwargs)],
        default=default,
    )


def _field_option(info: Any) -> inspect.Parameter:
    """A `build <preset>` option from one params field: its help, default and range."""
    allowed = info.describe_range()
    default = ",".join(map(str, info.default)) if info.kind is tuple else info.default
    default = "empty" if default == "" else default
    text = f"{info.help} [default: {default}" + (f"; allowed: {allowed}]" if allowed else "]")
    if info.kind is tuple:  # a list of ints: the option is repeated
        return _option(info.name, list[int] | None, None, help=f"{text} (repeatable)")
    return _option(info.name, info.kind | None, None, help=text, show_default=False)


def _common_options(preset: Any) -> list[inspect.Parameter]:
    sources = ", ".join(preset.sources)
    options = [
        _option(
            "out",
            Path | None,
            None,
            "--out",
            "-o",
            help="Output file [default: ./<preset>-<source>.h5].",
        ),
        _option(
            "realisations",
            int | None,
            None,
            help=f"Build realisations 0..N-1 [default: {len(preset.params_type().realisations)}].",
        ),
        _option(
            "realisation",
            list[int] | None,
            None,
            "--realisation",
            metavar="K",
            help="Build only this realisation id (repeatable).",
        ),
        _option(
            "source",
            str,
            preset.default_source,
            help=f"Named source: {sources} [default: {preset.default_source}].",
            show_default=False,
        ),
        _option(
            "source_dir", Path | None, None, help=f"A folder holding {preset.source_dir_help}."
        ),
        _option(
            "root",
            Path | None,
            None,
            help="Where sources live [default: $SCALE_DATASETS_HOME or ~/.cache/scale-datasets].",
        ),
        _option("download", bool, True, help="Download a missing source with torchvision."),
        _option("workers", int | None, None, help="Render processes [default: all cores]."),
        _option("shard", str | None, None, help="Build only shard i/n, e.g. 1/3."),
        _option("overwrite", bool, False, help="Replace an existing output file."),
        _option("as_json", bool, False, "--json", help="Print the result as JSON."),
    ]
    if preset.layout == "on-access":
        options.append(
            _option(
                "materialise",
                bool,
                False,
                help="Also store the rendered samples (float32, grouped by resolution).",
            )
        )
    return options


def _build_command(preset: Any) -> Callable[..., None]:
    """The `build <preset>` command: common options, then one per params field."""
    fields = [f for f in fields_of(preset.params_type) if f.name != "realisations"]
    parameters = _common_options(preset) + [_field_option(f) for f in fields]
    field_names = {f.name for f in fields}

    def command(**kwargs: Any) -> None:
        options = {k: kwargs.pop(k) for k in list(kwargs) if k in field_names}
        _run_build(preset.name, options, **kwargs)

    command.__signature__ = inspect.Signature(parameters)  # type: ignore[attr-defined]
    command.__annotations__ = {p.name: p.annotation for p in parameters}
    command.__doc__ = f"{preset.summary}."
    return command


def _run_build(
    preset: str,
    options: dict[str, Any],
    *,
    realisations: int | None,
    realisation: list[int] | None,
    as_json: bool,
    **common: Any,
) -> None:
    from scale_datasets.build import build as run_build
    from scale_datasets.storage.reader import read_info

    options = {k: v for k, v in options.items() if v is not None}
    if realisations is not None:
        options["realisations"] = realisations
    if realisation:
        options["realisation_ids"] = tuple(realisation)
    with progress_bar(err_console, "rendering") as update:
        path = run_build(
            preset,
            progress=lambda _stage, done, total: update(done, total),
            **common,
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


for _preset in list_presets():
    build_app.command(_preset.name)(_build_command(_preset))


@app.command("list")
def list_cmd(
    as_json: Annotated[bool, typer.Option("--json", help="Print as JSON.")] = False,
) -> None:
    """List the presets that can be built."""
    from scale_datasets import presets

    rows = [
        {
            "name": p.name,
            "version": p.version,
            "summary": p.summary,
            "sources": list(p.sources),
            "layout": p.layout,
        }
        for p in presets.list_presets()
    ]
    if as_json:
        out_console.print_json(json.dumps(rows))
        return
    for row in rows:
        out_console.print(f"{row['name']} (v{row['version']}, {row['layout']}): {row['summary']}")
        out_console.print(f"  sources: {', '.join(row['sources'])}")


@app.command("distributions")
def distributions_cmd(
    as_json: Annotated[bool, typer.Option("--json", help="Print as JSON.")] = False,
) -> None:
    """List the scale laws a --distribution spec can name: parameters, formula, support."""
    from scale_datasets.distributions import list_distributions

    rows = list_distributions()
    if as_json:
        out_console.print_json(json.dumps(rows))
        return
    for row in rows:
        origin = "built in" if row["builtin"] else "registered"
        # markup=False: formulas and supports hold brackets ("[lo, hi]") that rich would eat.
        out_console.print(f"{row['name']}({', '.join(row['parameters'])}) ({origin})", markup=False)
        out_console.print(f"  formula: {row['formula']}", markup=False)
        out_console.print(f"  support: {row['support']}", markup=False)


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
    digests = details.source.get("sha256", {})
    first = "images" if "images" in digests else next(iter(digests), "images")
    out_console.print(
        f"  source: {details.source.get('name')} ({first} sha256 {digests.get(first, '?')})"
    )
    out_console.print(f"  params: {json.dumps(details.params, sort_keys=True)}")
    render = details.render
    out_console.print(
        f"  layout: {details.layout}; render: {render['op']} over {render['column']}"
        + (" (materialised)" if details.materialised else "")
    )
    if details.base_shape:
        out_console.print(
            f"  base: {' x '.join(map(str, details.base_shape))} {details.base_dtype}"
        )
    if details.shard:
        out_console.print(f"  shard: {details.shard['index']}/{details.shard['count']}")
    for note in _preset_notes(details.preset, details.params):
        out_console.print(f"  {note}", markup=False)
    for k, splits in details.realisations.items():
        sizes = ", ".join(f"{s.name} {s.size}" for s in splits)
        out_console.print(f"  realisation {k}: {sizes}")
        for s in splits:
            out_console.print(f"    {s.name}: {s.describe(details.rendered_shape)}", markup=False)
    out_console.print(f"  content_sha256: {details.content_sha256}")


def _preset_notes(preset: str, params: dict[str, Any]) -> list[str]:
    """What the file's preset says about its params; nothing for presets this version lacks."""
    from scale_datasets.presets import find_preset

    chosen = find_preset(preset)
    return chosen.describe(params) if chosen is not None else []


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
    """Write a PNG grid of samples (smallest scale or resolution first), captioned."""
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


@app.command()
def export(
    file: Annotated[Path, typer.Argument(help="A file made by `build`.")],
    format: Annotated[str, typer.Option("--format", help="The layout: mnist-large-scale.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder for the exported files.")],
    realisation: Annotated[int, typer.Option(help="The realisation to export.")] = 0,
    test_scales: Annotated[
        bool, typer.Option(help="Also write one test-only file per test scale.")
    ] = True,
    overwrite: Annotated[bool, typer.Option(help="Replace existing files.")] = False,
) -> None:
    """Write a built file in another project's layout (file names and fields), so code written
    for the original files runs unchanged."""
    from scale_datasets.export import export as run_export

    with progress_bar(err_console, "exporting") as update:
        paths = run_export(
            file,
            out,
            format,
            realisation=realisation,
            test_scales=test_scales,
            overwrite=overwrite,
            progress=lambda _stage, done, total: update(done, total),
        )
    for path in paths:
        out_console.print(str(path), markup=False)


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
    BEFORE_PUBLISH.append(_raise_if_signalled)
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
        BEFORE_PUBLISH.remove(_raise_if_signalled)
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if code == 0 and _signalled is not None:
        # The signal came after the last check point, the one right before each output is
        # renamed into place: whatever the command wrote is complete, so it succeeded.
        err_console.print(
            "note: a signal arrived after the command's work was complete; its output is kept",
            markup=False,
        )
        return 0
    if code == EXIT_TERMINATED:
        return _fail("terminated", EXIT_TERMINATED)
    if code == EXIT_INTERRUPTED:
        return _fail("interrupted", EXIT_INTERRUPTED)
    return code


def main() -> None:
    sys.exit(run())
