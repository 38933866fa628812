"""What the data benchmarks share: where outputs go and how figures are printed and saved.

No torch here: build() starts "spawn" workers that re-import the benchmark script.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any


def run_and_report(
    args: argparse.Namespace,
    prefix: str,
    run: Callable[[argparse.Namespace, Path], dict[str, Any]],
    report: Callable[[dict[str, Any]], None],
) -> None:
    """run(args, work) in `--keep DIR` or a temporary folder, print its report, and write the
    figures to `--json PATH` when asked."""
    if args.keep is not None:
        args.keep.mkdir(parents=True, exist_ok=True)
        result = run(args, args.keep)
    else:
        with tempfile.TemporaryDirectory(prefix=prefix) as tmp:
            result = run(args, Path(tmp))
    report(result)
    if args.json is not None:
        args.json.write_text(json.dumps(result, indent=2, sort_keys=True) + "\n")
        print(f"figures written to {args.json}")
