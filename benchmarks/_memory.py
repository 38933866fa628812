"""Peak memory of one call, measured in a fresh process (shared by the model benchmarks).

CPU: the peak resident size during the call minus the size before it (Linux: reset with
``/proc/self/clear_refs`` and read ``VmHWM``), so it counts the outputs, the saved activations
and the gradients. Without /proc it falls back to ``ru_maxrss``, a high-water mark that cannot be
reset: then the figure is only what the call adds above the process's earlier peak (imports).
CUDA: ``torch.cuda.max_memory_allocated`` over the call, minus what was allocated before.

A fresh process holds no freed memory the call could reuse unseen. ``warm`` runs first (library
set-up, FFT plans, thread pools, cached matrices): it is not counted.
"""

from __future__ import annotations

import multiprocessing as mp
import resource
from collections.abc import Callable

import torch


def _status_kib(field: str) -> int:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise KeyError(field)


def _rss_reset() -> int:
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
        return _status_kib("VmRSS")
    except OSError:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def _rss_peak() -> int:
    try:
        return _status_kib("VmHWM")
    except OSError:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def peak_mib(run: Callable[[], None], warm: Callable[[], None], device: str) -> float:
    """MiB that ``run()`` needs at its peak, after ``warm()``; call inside the fresh process."""
    warm()
    if device == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
        run()
        torch.cuda.synchronize()
        return (torch.cuda.max_memory_allocated() - base) / 2**20
    base = _rss_reset()
    run()
    return (_rss_peak() - base) / 1024


def _child(target: Callable[..., float], args: tuple, queue: mp.Queue) -> None:
    queue.put(target(*args))


def in_fresh_process(target: Callable[..., float], *args: object) -> float:
    """``target(*args)`` (a module-level function returning a figure) in a spawned process."""
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=_child, args=(target, args, queue))
    proc.start()
    value = queue.get()
    proc.join()
    return value
