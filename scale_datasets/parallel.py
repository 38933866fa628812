"""Ordered, bounded parallel rendering in worker processes.

Each worker is a process of its own with one pipe: task k goes to worker k mod W and results
are read back in task order, so the output is the same whatever the number of workers, at most
two tasks per worker are in flight (memory stays bounded), and the parent has no shared queue,
lock or helper thread that could deadlock when a build is interrupted: on any error the workers
are simply killed. (Inside a worker, one thread reads tasks while another sends results, so
large messages in both directions cannot block each other.)

Workers start with an explicit method ("spawn": safe with threads, the same on every OS) and get
the big read-only state (the source pool) once: an array goes through a memory-mapped .npy file,
so start-up is quick and all workers share the same pages. A task `(fn, args)` runs as
`fn(state, *args)`: the state is an explicit argument, never a process-global that tasks reach.
"""

from __future__ import annotations

import collections
import contextlib
import multiprocessing
import os
import queue
import shutil
import signal
import sys
import tempfile
import threading
import types
from collections.abc import Callable, Iterable, Iterator
from multiprocessing import resource_tracker
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import numpy as np

START_METHOD = "spawn"
TASKS_IN_FLIGHT_PER_WORKER = 2
# Scratch folders are named <prefix><pid>-<random>, so a later build can remove a dead one's.
SCRATCH_PREFIX = "scale-datasets-"

Task = tuple[Callable[..., Any], tuple[Any, ...]]


class _ArrayFile:
    """A picklable pointer to an array saved as .npy; workers memory-map it."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def load(self) -> np.ndarray:
        return np.load(self.path, mmap_mode="r")


_PARENT_SIGNALS = (signal.SIGINT, signal.SIGTERM)


def _worker_main(conn: Connection, state: Any) -> None:
    # Ctrl-C and SIGTERM (also sent to the whole process group by `timeout`, Slurm or
    # systemd) are handled once, by the parent, which then stops the workers.
    for sig in _PARENT_SIGNALS:
        signal.signal(sig, signal.SIG_IGN)
    if hasattr(signal, "pthread_sigmask"):  # born with them blocked (see _process_map)
        signal.pthread_sigmask(signal.SIG_UNBLOCK, _PARENT_SIGNALS)
    if isinstance(state, _ArrayFile):
        state = state.load()
    # A reader thread takes tasks off the pipe while this thread computes and sends results:
    # otherwise a big task (small canvases make long index arrays) and a big result could fill
    # both directions of the pipe, each side blocked in send (the parent keeps at most
    # TASKS_IN_FLIGHT_PER_WORKER tasks in flight, so the queue stays that short).
    tasks: queue.SimpleQueue[Task | None] = queue.SimpleQueue()
    threading.Thread(target=_read_tasks, args=(conn, tasks), daemon=True).start()
    while (task := tasks.get()) is not None:
        fn, args = task
        try:
            result = (True, fn(state, *args))
        except Exception as exc:
            result = (False, exc)
        try:
            conn.send(result)
        except OSError:  # the parent is gone (killed): exit quietly, no BrokenPipe traceback
            return


def _read_tasks(conn: Connection, tasks: queue.SimpleQueue) -> None:
    while True:
        try:
            task = conn.recv()
        except (EOFError, OSError):  # the parent is gone
            task = None
        tasks.put(task)
        if task is None:
            return


def default_workers() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def ordered_map(tasks: Iterable[Task], state: Any, workers: int) -> Iterator[Any]:
    """Run each task as `fn(state, *args)`, yielding results in task order; workers <= 1 runs
    them in this process."""
    if workers <= 1:
        for fn, args in tasks:
            yield fn(state, *args)
        return
    _sweep_stale_scratch()
    with tempfile.TemporaryDirectory(prefix=f"{SCRATCH_PREFIX}{os.getpid()}-") as scratch:
        if isinstance(state, np.ndarray):
            np.save(Path(scratch) / "state.npy", state)
            state = _ArrayFile(Path(scratch) / "state.npy")
        yield from _process_map(tasks, state, workers)


def _sweep_stale_scratch() -> None:
    """Remove the scratch folders (``scale-datasets-<pid>-*``, the pool shared with workers)
    of builds whose process is gone: a SIGKILL leaves them behind."""
    from .storage.atomic import left_by_dead_processes

    scratch = Path(tempfile.gettempdir())
    for folder in left_by_dead_processes(scratch, SCRATCH_PREFIX, tagged=True):
        if folder.is_dir():
            shutil.rmtree(folder, ignore_errors=True)


def _receive(conn: Connection, worker: int) -> Any:
    try:
        ok, value = conn.recv()
    except (EOFError, ConnectionError):
        raise RuntimeError(f"render worker {worker} died (out of memory or killed?)") from None
    if not ok:
        raise value
    return value


@contextlib.contextmanager
def _main_module_hidden() -> Iterator[None]:
    """While workers start, ``__main__`` is a bare module, so "spawn" does not import the
    caller's script again in each worker: the workers run only our functions, need nothing from
    it, and would otherwise pay for its imports (torchvision, say) and re-run a script that has
    no ``if __name__ == "__main__":`` guard."""
    saved = sys.modules["__main__"]
    stub = types.ModuleType("__main__")
    stub.__spec__ = None
    sys.modules["__main__"] = stub
    try:
        yield
    finally:
        sys.modules["__main__"] = saved


def _process_map(tasks: Iterable[Task], state: Any, workers: int) -> Iterator[Any]:
    context = multiprocessing.get_context(START_METHOD)
    processes: list[Any] = []
    conns: list[Connection] = []
    # Children are born with Ctrl-C and SIGTERM blocked (the mask survives fork and exec) and
    # ignore them from their first line on, so a signal to the process group while they start
    # prints no tracebacks; the parent blocks them only meanwhile (milliseconds), so one that
    # arrives then is delivered to it afterwards, never lost.
    blocking = hasattr(signal, "pthread_sigmask")
    if blocking:
        # Spawning the first worker would also start multiprocessing's resource tracker, which
        # then SIG_UNBLOCKs these very signals in this thread (bpo-33613's guard for its own
        # child), so the workers would be born unprotected: start it before blocking them.
        resource_tracker.ensure_running()
    mask = signal.pthread_sigmask(signal.SIG_BLOCK, _PARENT_SIGNALS) if blocking else None
    try:
        with _main_module_hidden():
            for i in range(workers):
                parent_end, child_end = context.Pipe()
                process = context.Process(
                    target=_worker_main,
                    args=(child_end, state),
                    name=f"scale-datasets-worker-{i}",
                    daemon=True,
                )
                process.start()
                child_end.close()
                processes.append(process)
                conns.append(parent_end)
    finally:
        if blocking:
            signal.pthread_sigmask(signal.SIG_SETMASK, mask)
    try:
        in_flight: collections.deque[int] = collections.deque()
        for k, task in enumerate(tasks):
            worker = k % workers
            conns[worker].send(task)
            in_flight.append(worker)
            if len(in_flight) >= TASKS_IN_FLIGHT_PER_WORKER * workers:
                oldest = in_flight.popleft()
                yield _receive(conns[oldest], oldest)
        while in_flight:
            oldest = in_flight.popleft()
            yield _receive(conns[oldest], oldest)
        for conn in conns:
            conn.send(None)
        for process in processes:
            process.join(timeout=10)
    finally:
        for process in processes:
            if process.is_alive():
                process.kill()
            process.join()
        for conn in conns:
            conn.close()
