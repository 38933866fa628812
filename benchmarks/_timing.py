"""What the benchmarks share to time their work: the model benchmarks' common options and
interleaved step timing; the data benchmarks' timed blocks, loader epochs and their summary.

torch is imported inside the functions that use it: the data benchmarks import this module at
the top, and build() starts "spawn" workers that re-import the benchmark script.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from typing import Any


def bench_parser(doc: str, *, repeats: int, quick: str) -> argparse.ArgumentParser:
    """--device, --quick, --threads, --batch, --repeats, --no-memory, --json; the description
    is the first line of ``doc``, ``quick`` the help of --quick."""
    import torch

    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--quick", action="store_true", help=quick)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=repeats)
    parser.add_argument("--no-memory", action="store_true", help="skip the memory subprocesses")
    parser.add_argument("--json", help="also write the figures here")
    return parser


def sync(device: str) -> None:
    if device == "cuda":
        import torch

        torch.cuda.synchronize()


def torch_threads(requested: int) -> int:
    """torch on ``requested`` threads (0 or less keeps torch's default); the count in use."""
    import torch

    if requested > 0:
        torch.set_num_threads(requested)
    return torch.get_num_threads()


def time_steps(fns: dict[str, Callable[[], object]], repeats: int, device: str) -> dict:
    """``{name: [seconds per step]}``: one warm-up call each (plans, caches, allocator,
    optimiser state), then ``repeats`` rounds with the methods interleaved, so a noisy
    neighbour hits them alike (CUDA steps are synchronised)."""
    for fn in fns.values():
        fn()
    times: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            sync(device)
            t0 = time.perf_counter()
            fn()
            sync(device)
            times[name].append(time.perf_counter() - t0)
    return times


@dataclass
class Timing:
    """Wall-clock and CPU seconds (user + system)."""

    wall_s: float = 0.0
    cpu_s: float = 0.0


def cpu_seconds() -> float:
    """User + system seconds of this process and its reaped children (build or DataLoader
    workers)."""
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


@contextmanager
def timed() -> Iterator[Timing]:
    """Fill in a Timing for the body of the ``with`` block (CPU: ``cpu_seconds``)."""
    result = Timing()
    t0, c0 = time.perf_counter(), cpu_seconds()
    try:
        yield result
    finally:
        result.wall_s = time.perf_counter() - t0
        result.cpu_s = cpu_seconds() - c0


def loader_epoch(dataset: Any, batches: list[list[int]]) -> tuple[Timing, int]:
    """One epoch through ``DataLoader(num_workers=0, batch_sampler=batches)``: its Timing (CPU:
    this process alone, ``time.process_time``, fine enough for epochs of milliseconds) and the
    images it gave."""
    from torch.utils.data import DataLoader

    loader = DataLoader(dataset, batch_sampler=batches, num_workers=0)
    t0, c0 = time.perf_counter(), time.process_time()
    images = 0
    for x, _ in loader:
        images += len(x)
    return Timing(time.perf_counter() - t0, time.process_time() - c0), images


def rate_summary(images: int, runs: list[Timing]) -> dict[str, Any]:
    """Repeated runs over ``images`` images each: the images, every run, the median and best
    seconds, the median CPU seconds, and images/s at the median and the best."""
    median_s = statistics.median(t.wall_s for t in runs)
    best_s = min(t.wall_s for t in runs)
    return {
        "images": images,
        "runs": [asdict(t) for t in runs],
        "median_s": median_s,
        "best_s": best_s,
        "median_cpu_s": statistics.median(t.cpu_s for t in runs),
        "images_per_s_median": images / median_s,
        "images_per_s_best": images / best_s,
    }
