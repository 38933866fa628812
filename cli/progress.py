"""Rich progress bars on stderr for the long steps (hidden when stderr is not a terminal)."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn


@contextlib.contextmanager
def progress_bar(
    console: Console, label: str, on_update: Callable[[], None] = lambda: None
) -> Iterator[Callable[[int, int], None]]:
    """Yield update(done, total); renders only on a terminal so logs and pipes stay clean.

    `on_update` runs at every update: the CLI uses it to stop promptly once signalled.
    """
    if not console.is_terminal:

        def quiet(done: int, total: int) -> None:
            on_update()

        yield quiet
        return
    columns = (TextColumn(label), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with Progress(*columns, console=console, transient=True) as bar:
        task = bar.add_task(label, total=None)

        def update(done: int, total: int) -> None:
            on_update()
            bar.update(task, completed=done, total=total)

        yield update
