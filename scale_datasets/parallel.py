"""Ordered, bounded parallel rendering in worker processes.

Workers are started with an explicit method ("spawn": safe with threads, the same on every OS)
and get the big read-only state (e.g. the source pool) once: an array state goes through a
memory-mapped .npy file, so start-up is quick and every worker shares the same pages. Tasks are
small and results come back in submission order, with a few blocks in flight, so the output is
the same whatever the number of workers and memory stays bounded.
"""

from __future__ import annotations

import collections
import multiprocessing
import os
import signal
import tempfile
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

START_METHOD = "spawn"
STARTUP_TIMEOUT_S = 60.0

_STATE: Any = None


class _ArrayFile:
    """A picklable pointer to an array saved as .npy; workers memory-map it."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def load(self) -> np.ndarray:
        return np.load(self.path, mmap_mode="r")


def _init_worker(state: Any, ready: Any) -> None:
    global _STATE
    _STATE = state.load() if isinstance(state, _ArrayFile) else state
    ready.release()


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
    with tempfile.TemporaryDirectory(prefix="scale-datasets-") as scratch:
        if isinstance(state, np.ndarray):
            np.save(Path(scratch) / "state.npy", state)
            state = _ArrayFile(Path(scratch) / "state.npy")
        yield from _pool_map(tasks, state, workers)


def _pool_map(tasks: Iterable[Any], state: Any, workers: int) -> Iterator[np.ndarray]:
    context = multiprocessing.get_context(START_METHOD)
    ready = context.Semaphore(0)
    # Children are born ignoring Ctrl-C (an ignored signal stays ignored across exec): the
    # parent alone handles it and terminates them, and none prints a traceback on the way.
    # Starting them takes milliseconds, as the state they receive is small.
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        pool = context.Pool(workers, initializer=_init_worker, initargs=(state, ready))
    finally:
        signal.signal(signal.SIGINT, previous)
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
        # A worker still starting when the pool's semaphores go away would die with a
        # traceback: let each finish starting before terminating them.
        for _ in range(workers):
            if not ready.acquire(timeout=STARTUP_TIMEOUT_S):
                break
        pool.terminate()
        pool.join()
