"""Ordered, bounded parallel rendering in worker processes.

Workers are started with an explicit method ("spawn" by default: safe with threads, the same on
every OS) and get the big read-only state (e.g. the source pool) once, at start-up. Tasks are
small and results come back in submission order, with at most a few blocks in flight, so the
output is the same whatever the number of workers and memory stays bounded.
"""

from __future__ import annotations

import collections
import multiprocessing
import os
import signal
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import numpy as np

START_METHOD = "spawn"

_STATE: Any = None


def _init_worker(state: Any) -> None:
    global _STATE
    _STATE = state
    # Ctrl-C is handled once, by the parent, which then terminates the pool.
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def worker_state() -> Any:
    """The state handed to `ordered_map`, in whichever process runs a task."""
    return _STATE


def _run(task: tuple[Callable[..., np.ndarray], tuple[Any, ...]]) -> np.ndarray:
    fn, args = task
    return fn(*args)


def default_workers() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def ordered_map(
    tasks: Iterable[tuple[Callable[..., np.ndarray], tuple[Any, ...]]],
    state: Any,
    workers: int,
) -> Iterator[np.ndarray]:
    """Run tasks, yielding results in task order; workers <= 1 runs them in this process."""
    global _STATE
    if workers <= 1:
        previous, _STATE = _STATE, state
        try:
            for task in tasks:
                yield _run(task)
        finally:
            _STATE = previous
        return
    context = multiprocessing.get_context(START_METHOD)
    pool = context.Pool(workers, initializer=_init_worker, initargs=(state,))
    try:
        pending: collections.deque = collections.deque()
        for task in tasks:
            pending.append(pool.apply_async(_run, (task,)))
            if len(pending) >= 2 * workers:
                yield pending.popleft().get()
        while pending:
            yield pending.popleft().get()
        pool.close()
    finally:
        pool.terminate()
        pool.join()
