"""Train and score the runs of a recipe's grid; one record per finished run.

A run trains with the recipe's optimiser and schedule, scores the validation split after every
epoch, keeps the best-val and the last checkpoint (``<out>/checkpoints/<run id>/{best,last}.pt``,
written atomically), then scores the selected checkpoint on the test split and appends its
record. An interrupted run resumes from its last checkpoint: every epoch's batch order,
augmentation and torch seed are keyed by (seed, realisation, epoch), so the resumed run
ends where an uninterrupted one would. A run that already has a record is skipped.

Everything a user can get wrong (a data file of another preset, an unknown model, a model
whose output is not ``(B, classes)`` logits, realisations the file lacks) is checked for every
run of the grid before any training starts.
"""

from __future__ import annotations

import contextlib
import importlib
import logging
import os
import platform
import resource
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from scale_datasets.errors import InvalidParameterError
from scale_datasets.storage.atomic import atomic_output
from scale_datasets.storage.reader import FileInfo, read_info
from scale_datasets.storage.writer import package_versions

from ..fourier.head import consistency_loss
from ..fourier.models import FourierClassifier
from ..metrics import _logits
from ..registry import create_model, list_models
from ..sesn.scales import parameter_groups
from .data import SplitData, open_split, torch_seed
from .evaluation import evaluate_test, learned_scales, split_error
from .grid import Placement, RunSpec, expand_grid, placement, share
from .recipes import Recipe, get_recipe
from .records import SCHEMA_VERSION, append_record, finished_runs

__all__ = ["GridResult", "build_model", "run_grid", "train_epoch", "train_run"]

log = logging.getLogger(__name__)

PRECISIONS = ("fp32", "bf16")


def build_model(name: str, options: dict[str, Any]) -> nn.Module:
    """A registered model by name, or a user's factory ``module:function`` (called with no
    arguments, it must return an ``nn.Module``)."""
    if ":" in name:
        module_name, _, attr = name.partition(":")
        # As `python -m` would: a module beside the user (mypkg/nets.py in the current folder)
        # is found even when the installed `scale-datasets` script runs.
        if os.getcwd() not in sys.path:
            sys.path.insert(0, os.getcwd())
        try:
            factory = getattr(importlib.import_module(module_name), attr)
        except (ImportError, AttributeError) as exc:
            raise InvalidParameterError(
                f"model: cannot load {name!r}: {exc} (the module must be importable: in the "
                "current folder or on PYTHONPATH)"
            ) from None
        model = factory(**options)
        if not isinstance(model, nn.Module):
            raise InvalidParameterError(
                f"model: {name} returned {type(model).__name__}, not a torch.nn.Module"
            )
        return model
    if name not in list_models():
        raise InvalidParameterError(
            f"model: unknown model {name!r}; known: {', '.join(list_models())} "
            "(or module:function for your own)"
        )
    return create_model(name, **options)


def _autocast(
    device: torch.device, precision: str
) -> Callable[[], contextlib.AbstractContextManager]:
    if precision == "bf16":
        return lambda: torch.autocast(device_type=device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext


def _save_atomic(obj: Any, path: Path) -> None:
    # complete or absent; a temp file left by a killed run is swept on the next save
    with atomic_output(path, overwrite=True, checked=False) as tmp:
        torch.save(obj, tmp)


def _optimiser(recipe: Recipe, name: str, model: nn.Module) -> torch.optim.Optimizer:
    scale_lr = recipe.scale_lr_for(name)
    groups = parameter_groups(model, recipe.lr, scale_lr=scale_lr, weight_decay=0.0)
    cls = torch.optim.AdamW if recipe.optimiser == "adamw" else torch.optim.Adam
    return cls(groups, lr=recipe.lr, weight_decay=recipe.weight_decay)


def _loss(recipe: Recipe, model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    if recipe.loss == "consistency" and isinstance(model, FourierClassifier):
        return consistency_loss(model(x, return_all=True).per_scale_logits, y)
    return F.cross_entropy(_logits(model(x)), y)


def train_epoch(
    model: nn.Module,
    optimiser: torch.optim.Optimizer,
    train: SplitData,
    epoch: int,
    model_input: str = "native",
    autocast: Callable[[], contextlib.AbstractContextManager] = contextlib.nullcontext,
) -> tuple[float, int]:
    """One epoch of the recipe's training on ``train`` (its batches for ``epoch``): returns
    the summed loss and the number of samples trained on."""
    model.train()
    total = torch.zeros((), device=train.device)
    seen = 0
    # BatchNorm cannot train on one sample; a batch of one is skipped only for such models
    # (signals of many lengths can leave single samples at some lengths).
    batch_norm = any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in model.modules())
    for batch in train.batches(epoch, model_input):
        if batch_norm and len(batch.y) < 2:
            continue
        optimiser.zero_grad(set_to_none=True)
        with autocast():
            loss = _loss(train.recipe, model, batch.x, batch.y)
        loss.backward()
        optimiser.step()
        total += loss.detach() * len(batch.y)  # no device sync per batch
        seen += len(batch.y)
    return float(total), seen


def _peak_memory_mib(device: torch.device) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # the process's peak


def _environment(device: torch.device, deterministic: bool) -> dict[str, Any]:
    return {
        "device": str(device),
        "device_name": torch.cuda.get_device_name(device)
        if device.type == "cuda"
        else platform.processor() or platform.machine(),
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "scale_datasets": package_versions()["scale-datasets"],
        "python": platform.python_version(),
        "host": platform.node(),
        "torch_threads": torch.get_num_threads(),
        "command": sys.argv,
        "deterministic": deterministic,
        # CPU runs with the same thread count repeat bit for bit; GPU runs only with
        # --deterministic (cuDNN and scatter kernels otherwise pick non-deterministic paths).
        "bitwise_reproducible": device.type == "cpu" or deterministic,
    }


@dataclass
class _State:
    model: nn.Module
    optimiser: torch.optim.Optimizer
    schedule: torch.optim.lr_scheduler.MultiStepLR
    epoch: int = 0
    best_val: float = float("inf")
    best_epoch: int = -1
    history: list[dict[str, Any]] = field(default_factory=list)


def model_options(spec: RunSpec, train: SplitData) -> dict[str, Any]:
    """The recipe's options for the model, plus those it fits to the data (`Recipe.fit_model`):
    channels, classes and the range of lengths of a signals file, say. A user's factory
    (``module:function``) gets none."""
    if ":" in spec.model:
        return {}
    options = spec.recipe.options_for(spec.model)
    sizes = np.array(train.protocol_sizes) if train.multires else None
    fitted = {
        "in_channels": int(train.ds.base_shape[0]),
        "num_classes": int(np.max(train.ds.labels)) + 1,
        "max_res": int(sizes.max()) if sizes is not None else None,
        "global_modes": int(sizes.max()) if sizes is not None else None,
        "min_length": int(sizes.min()) if sizes is not None else None,
    }
    for key in spec.recipe.fit_model:
        if fitted.get(key) is None:
            raise InvalidParameterError(f"recipe {spec.recipe.name}: cannot fit {key} to the data")
        options[key] = fitted[key]
    return options


def _new_state(spec: RunSpec, device: torch.device, options: dict[str, Any]) -> _State:
    torch.manual_seed(torch_seed(spec.seed, spec.realisation, 0))
    model = build_model(spec.model, options).to(device)
    optimiser = _optimiser(spec.recipe, spec.model, model)
    schedule = torch.optim.lr_scheduler.MultiStepLR(
        optimiser, list(spec.recipe.milestones), gamma=spec.recipe.gamma
    )
    return _State(model, optimiser, schedule)


def _resume(state: _State, last: Path, device: torch.device) -> None:
    ckpt = torch.load(last, map_location=device, weights_only=False)
    state.model.load_state_dict(ckpt["model"])
    state.optimiser.load_state_dict(ckpt["optimiser"])
    state.schedule.load_state_dict(ckpt["schedule"])
    state.epoch = ckpt["epoch"]
    state.best_val = ckpt["best_val"]
    state.best_epoch = ckpt["best_epoch"]
    state.history = ckpt["history"]
    log.info("resuming %s at epoch %d", last.parent.name, state.epoch)


def train_run(
    spec: RunSpec,
    data_path: Path,
    out: Path,
    device: torch.device,
    deterministic: bool = False,
    where: Placement | None = None,
) -> dict[str, Any]:
    """Train (or resume) one run, score it, append its record and return it."""
    recipe = spec.recipe
    folder = out / "checkpoints" / spec.run_id
    folder.mkdir(parents=True, exist_ok=True)
    last, best = folder / "last.pt", folder / "best.pt"
    autocast = _autocast(device, spec.precision)
    model_input = recipe.model_input(spec.model)
    rank = where.rank if where is not None and spec.replicas > 1 else 0
    lead = rank == 0  # the rank that writes checkpoints and the record
    train = open_split(data_path, "train", spec.realisation, recipe, device, spec.seed)
    val = open_split(data_path, "val", spec.realisation, recipe, device, spec.seed)
    test = open_split(data_path, "test", spec.realisation, recipe, device, spec.seed)
    for split in (train, val, test):
        split.replicas = (spec.replicas, rank)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    options = model_options(spec, train)  # the recipe's and those fitted to the data
    state = _new_state(spec, device, options)
    if last.exists():
        _resume(state, last, device)
    trained = _data_parallel(state.model, device) if spec.replicas > 1 else state.model
    while state.epoch < recipe.epochs:
        epoch = state.epoch
        torch.manual_seed(torch_seed(spec.seed, spec.realisation, epoch, rank))
        started = time.perf_counter()
        total, seen = train_epoch(trained, state.optimiser, train, epoch, model_input, autocast)
        val_error = split_error(state.model, val, model_input, autocast)
        seconds = time.perf_counter() - started
        state.schedule.step()
        state.epoch = epoch + 1
        state.history.append(
            {
                "epoch": state.epoch,
                "train_loss": total / seen if seen else None,
                "val_error": val_error,
                "seconds": seconds,
            }
        )
        log.info(
            "%s epoch %d/%d: loss %.4f, val error %.4f (%.1f s)",
            spec.run_id,
            state.epoch,
            recipe.epochs,
            total / max(seen, 1),
            val_error,
            seconds,
        )
        if val_error < state.best_val:
            state.best_val, state.best_epoch = val_error, state.epoch
            if lead:
                _save_atomic({"model": state.model.state_dict(), "epoch": state.epoch}, best)
        if lead:
            _save_atomic(
                {
                    "model": state.model.state_dict(),
                    "optimiser": state.optimiser.state_dict(),
                    "schedule": state.schedule.state_dict(),
                    "epoch": state.epoch,
                    "best_val": state.best_val,
                    "best_epoch": state.best_epoch,
                    "history": state.history,
                    "config": spec.config(),
                },
                last,
            )
        _barrier(spec)  # the other ranks read best.pt only once it is written
    scored_epoch = state.epoch
    if recipe.select == "best-val" and best.exists():
        ckpt = torch.load(best, map_location=device, weights_only=False)
        state.model.load_state_dict(ckpt["model"])
        scored_epoch = ckpt["epoch"]
    metrics = evaluate_test(state.model, test, recipe, model_input, autocast, lead)
    if not lead:
        _barrier(spec)
        return {}
    metrics["best_val_epoch"] = state.best_epoch
    metrics["best_val_error"] = state.best_val
    metrics["scored_epoch"] = scored_epoch
    metrics["learned_scales"] = learned_scales(state.model)
    info = read_info(data_path)
    seconds = [h["seconds"] for h in state.history]
    record = {
        "schema_version": SCHEMA_VERSION,
        "run_id": spec.run_id,
        "config_sha256": spec.config_sha256,
        "recipe": recipe.name,
        "model": spec.model,
        "parameters": sum(p.numel() for p in state.model.parameters()),
        "model_options": options,
        "preset": info.preset,
        "data": {
            "path": str(data_path),
            "content_sha256": info.content_sha256,
            "params": info.params,
        },
        "realisation": spec.realisation,
        "seed": spec.seed,
        "precision": spec.precision,
        "config": spec.config(),
        "metrics": metrics,
        "history": state.history,
        "seconds_per_epoch": float(np.mean(seconds)) if seconds else None,
        "peak_memory_mib": _peak_memory_mib(device),
        "environment": _environment(device, deterministic),
        "placement": None if where is None else vars(where),
        "finished_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    append_record(out, record)
    _barrier(spec)
    return record


def _data_parallel(model: nn.Module, device: torch.device) -> nn.Module:
    from torch.nn.parallel import DistributedDataParallel

    ids = [device.index] if device.type == "cuda" else None
    return DistributedDataParallel(model, device_ids=ids)


def _barrier(spec: RunSpec) -> None:
    if spec.replicas > 1:
        import torch.distributed as dist

        dist.barrier()


def _check_grid(grid: list[RunSpec], data_path: Path, info: FileInfo, device: torch.device) -> None:
    """Every user error of the grid, before any training (one-line InvalidParameterError)."""
    if not grid:
        return
    recipe = grid[0].recipe
    if info.preset != recipe.preset:
        raise InvalidParameterError(
            f"data: {data_path} is a {info.preset} file; recipe {recipe.name} needs a "
            f"{recipe.preset} file (scale-datasets build {recipe.preset})"
        )
    available = sorted(info.realisations)
    missing = sorted({s.realisation for s in grid} - set(available))
    if missing:
        raise InvalidParameterError(
            f"realisations: {data_path} holds realisations {available}, not {missing}"
        )
    first = grid[0]  # one split to probe every model with
    probe = open_split(data_path, "train", first.realisation, first.recipe, device, first.seed)
    classes = int(np.max(probe.ds.labels)) + 1
    two = probe.batch_indices(0)[0][:2]
    checked: set[str] = set()
    for spec in grid:
        if spec.model in checked:
            continue
        checked.add(spec.model)
        model = build_model(spec.model, model_options(spec, probe)).to(device)
        batch = probe.load(two, spec.recipe.model_input(spec.model))
        model.eval()
        with torch.no_grad():
            try:
                out = model(batch.x)
            except Exception as exc:  # a user's model failing on the recipe's inputs
                raise InvalidParameterError(
                    f"model: {spec.model} fails on inputs of shape {tuple(batch.x.shape)}: {exc}"
                ) from None
        logits = _logits(out)
        want = (len(batch.y), classes)
        if not isinstance(logits, torch.Tensor) or tuple(logits.shape) != want:
            got = tuple(logits.shape) if isinstance(logits, torch.Tensor) else type(logits).__name__
            raise InvalidParameterError(
                f"model: {spec.model} returns {got} for inputs {tuple(batch.x.shape)}; the "
                f"recipe needs logits of shape {want}"
            )


@dataclass(frozen=True)
class GridResult:
    grid: int  # runs in the whole grid
    mine: int  # runs in this process's share
    skipped: int  # already finished
    trained: list[str]  # run ids finished now


def run_grid(
    recipe_name: str | Recipe,
    data_path: Path,
    out: Path,
    *,
    models: tuple[str, ...] | None = None,
    realisations: tuple[int, ...] | None = None,
    seeds: tuple[int, ...] | None = None,
    device: str = "cpu",
    shard: str | None = None,
    precision: str = "fp32",
    deterministic: bool = False,
    ddp: bool = False,
) -> GridResult:
    """Run this process's share of a recipe's grid (torchrun ranks and ``--shard i/N``); with
    ``ddp`` the torchrun ranks train each run of the share together, data-parallel."""
    recipe = recipe_name if isinstance(recipe_name, Recipe) else get_recipe(recipe_name)
    if precision not in PRECISIONS:
        raise InvalidParameterError(f"precision: must be one of {', '.join(PRECISIONS)}")
    if not data_path.is_file():
        raise InvalidParameterError(f"data: no such file {data_path}")
    where = placement(shard, ddp)
    dev = torch.device(device)
    if dev.type == "cuda" and dev.index is None:
        dev = torch.device("cuda", where.local_rank)
    if deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True, warn_only=True)
        torch.backends.cudnn.benchmark = False
    info = read_info(data_path)
    grid = expand_grid(
        recipe,
        models or recipe.models,
        realisations if realisations is not None else recipe.realisations,
        seeds if seeds is not None else recipe.seeds,
        info.content_sha256,
        precision,
        where.world_size if ddp else 1,
    )
    _check_grid(grid, data_path, info, dev)
    mine = share(grid, where)
    done = finished_runs(out)
    todo = [s for s in mine if s.run_id not in done]
    log.info(
        "grid %d runs; this process (%d of %d) has %d, %d already finished",
        len(grid),
        where.index,
        where.count,
        len(mine),
        len(mine) - len(todo),
    )
    trained = []
    with _process_group(where, dev):
        for spec in todo:
            train_run(spec, data_path, out, dev, deterministic, where)
            trained.append(spec.run_id)
    return GridResult(len(grid), len(mine), len(mine) - len(todo), trained)


@contextlib.contextmanager
def _process_group(where: Placement, device: torch.device) -> Iterator[None]:
    """Under torchrun (WORLD_SIZE > 1): a process group (nccl on GPUs, else gloo) whose
    final barrier makes every rank return when the whole grid share of the job is done."""
    import torch.distributed as dist

    if where.world_size == 1 or not dist.is_available() or dist.is_initialized():
        yield
        return
    if device.type == "cuda":
        torch.cuda.set_device(device)  # NCCL collectives run on the current device
    dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    try:
        yield
        dist.barrier()
    finally:
        dist.destroy_process_group()
