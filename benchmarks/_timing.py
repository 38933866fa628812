"""What the model benchmarks share: their common options and interleaved step timing."""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import torch


def bench_parser(doc: str, *, repeats: int, quick: str) -> argparse.ArgumentParser:
    """--device, --quick, --threads, --batch, --repeats, --no-memory, --json; the description
    is the first line of ``doc``, ``quick`` the help of --quick."""
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
        torch.cuda.synchronize()


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
