"""Training: device choice, seeding, and ``fit`` with checkpoints keyed by settings and code.

``fit`` trains a model for a fixed number of steps (never "for N minutes": the result must not depend
on the machine's speed, so a rerun and the nbval pass reproduce it). When a checkpoint with the same key
exists, ``fit`` loads it instead of training: the key is a hash of the training config, the model's
architecture, the data description, the device type and the nucleikit source code. CI's nbval pass thus
re-checks evaluation without retraining, and any code or setting change retrains.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import multiprocessing
import os
import random
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from ._paths import checkpoint_dir

__all__ = [
    "History",
    "TrainConfig",
    "array_digest",
    "can_fork",
    "code_hash",
    "fit",
    "get_device",
    "make_optimizer",
    "map_runs",
    "seed_everything",
    "set_threads",
    "step_flops",
]


def get_device(prefer: str = "auto") -> torch.device:
    """Return the device to use: ``"auto"`` picks cuda, then mps, then cpu.

    This is the only place in nucleikit that picks a device; library code follows its inputs' device.
    """
    if prefer not in ("auto", "cpu", "cuda", "mps"):
        raise ValueError(f"device: expected 'auto', 'cpu', 'cuda' or 'mps', got {prefer!r}")
    if prefer == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if prefer == "cuda" and not torch.cuda.is_available():
        raise ValueError("device: 'cuda' was asked for but torch.cuda.is_available() is False")
    return torch.device(prefer)


def set_threads(num_threads: int) -> None:
    """Set torch's intra-op threads (0 keeps torch's default)."""
    if num_threads > 0:
        torch.set_num_threads(int(num_threads))


def seed_everything(seed: int) -> torch.Generator:
    """Seed Python, NumPy and torch, and return a torch CPU generator seeded with ``seed``."""
    random.seed(seed)
    np.random.seed(seed % 2**32)  # noqa: NPY002 - legacy global state, for third-party code only
    torch.manual_seed(seed)
    return torch.Generator().manual_seed(seed)


@dataclass(frozen=True)
class TrainConfig:
    """How to train: optimiser, schedule and length in steps.

    Attributes
    ----------
    steps : int
        Number of optimiser steps.
    lr : float
        Initial learning rate.
    optimizer : str
        ``"adam"``, ``"sgd"``, ``"nesterov"`` (SGD with Nesterov momentum) or ``"adadelta"``.
    momentum : float
        Momentum for SGD; rho for Adadelta.
    betas : tuple of float
        Adam's betas.
    weight_decay : float
        L2 penalty added by the optimiser.
    lr_decay : float
        Multiply the learning rate by this every ``lr_decay_every`` steps (1.0 = constant).
    lr_decay_every : int
        Steps between decays.
    lr_min : float
        Floor of the decayed learning rate.
    grad_clip : float or None
        Clip the gradient norm to this value.
    seed : int
        Seed for the model's initialisation and the batches.
    log_every : int
        Steps between history entries.
    channels_last : bool
        Keep the model's weights in the channels-last memory format (``fit`` converts the model, also when
        it loads it from the cache). On CPU, oneDNN's convolutions are faster with it: 13 to 21 % per
        step for chapter 7's networks at the quick profile's sizes (``python -m nucleikit bench
        train``). The arithmetic is the same; results differ at most by float rounding.
    """

    steps: int
    lr: float = 1e-3
    optimizer: str = "adam"
    momentum: float = 0.9
    betas: tuple[float, float] = (0.9, 0.999)
    weight_decay: float = 0.0
    lr_decay: float = 1.0
    lr_decay_every: int = 1000
    lr_min: float = 0.0
    grad_clip: float | None = None
    seed: int = 0
    log_every: int = 10
    channels_last: bool = False


@dataclass
class History:
    """Logged values during training: ``logs[name][i]`` was measured at ``steps[i]``."""

    steps: list[int] = field(default_factory=list)
    logs: dict[str, list[float]] = field(default_factory=dict)
    wall_time_s: float = 0.0
    from_cache: bool = False
    key: str = ""

    def append(self, step: int, values: dict[str, float]) -> None:
        """Add one entry."""
        self.steps.append(int(step))
        for name, value in values.items():
            self.logs.setdefault(name, []).append(float(value))

    def last(self, name: str = "loss") -> float:
        """Return the last logged value of ``name``."""
        return self.logs[name][-1]


def make_optimizer(params, config: TrainConfig) -> torch.optim.Optimizer:
    """Build the optimiser named in ``config``."""
    if config.optimizer == "adam":
        return torch.optim.Adam(params, lr=config.lr, betas=config.betas, weight_decay=config.weight_decay)
    if config.optimizer in ("sgd", "nesterov"):
        return torch.optim.SGD(
            params,
            lr=config.lr,
            momentum=config.momentum,
            nesterov=config.optimizer == "nesterov",
            weight_decay=config.weight_decay,
        )
    if config.optimizer == "adadelta":
        return torch.optim.Adadelta(
            params, lr=config.lr, rho=config.momentum, eps=1e-6, weight_decay=config.weight_decay
        )
    raise ValueError(f"optimizer: expected 'adam', 'sgd', 'nesterov' or 'adadelta', got {config.optimizer!r}")


_CODE_HASH: str | None = None


def code_hash() -> str:
    """Return a short hash of the nucleikit source files (any code change invalidates checkpoints)."""
    global _CODE_HASH
    if _CODE_HASH is None:
        h = hashlib.sha256()
        root = Path(__file__).resolve().parent
        for path in sorted(root.rglob("*.py")):
            h.update(path.relative_to(root).as_posix().encode())
            h.update(path.read_bytes())
        _CODE_HASH = h.hexdigest()[:16]
    return _CODE_HASH


def array_digest(*arrays: Any) -> str:
    """Return a short hash of arrays (shape, dtype and bytes): a data key for :func:`fit`'s cache.

    Parameters
    ----------
    *arrays : array_like, or list/tuple of array_like
        The data a training run sees; a list or tuple is hashed item by item (images of different sizes).

    Returns
    -------
    str
        16 hexadecimal digits of a SHA-256.
    """
    h = hashlib.sha256()
    for a in arrays:
        for part in list(a) if isinstance(a, (list, tuple)) else [a]:
            arr = np.ascontiguousarray(np.asarray(part))
            h.update(f"{arr.shape}{arr.dtype}".encode())
            h.update(arr.tobytes())
    return h.hexdigest()[:16]


def _cache_key(
    name: str, model: torch.nn.Module, config: TrainConfig, data_key: str, device: torch.device
) -> str:
    payload = json.dumps(
        {
            "name": name,
            "config": dataclasses.asdict(config),
            "model": repr(model),
            "data": data_key,
            "device": device.type,
            "code": code_hash(),
            "torch": torch.__version__.split("+")[0],
        },
        sort_keys=True,
        default=str,
    )
    return hashlib.sha256(payload.encode()).hexdigest()[:20]


def _save_atomic(obj: Any, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        buf = io.BytesIO()
        torch.save(obj, buf)
        Path(tmp).write_bytes(buf.getvalue())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


StepFn = Callable[[torch.nn.Module, Any, int], "tuple[torch.Tensor, dict[str, float]]"]


def fit(
    model: torch.nn.Module,
    step_fn: StepFn,
    batches: Callable[[int, torch.Generator], Any],
    config: TrainConfig,
    *,
    name: str,
    data_key: str = "",
    device: torch.device | str | None = None,
    cache: bool = True,
    callback: Callable[[int, History], None] | None = None,
    extra_params: list[torch.nn.Parameter] | None = None,
    progress: bool = True,
) -> History:
    """Train ``model`` for ``config.steps`` steps, or load the identical run from the checkpoint cache.

    Parameters
    ----------
    model : torch.nn.Module
        The model; it is moved to ``device`` and left in ``eval()`` mode on return.
    step_fn : callable
        ``step_fn(model, batch, step) -> (loss, logs)``: the loss tensor to minimise and a dict of floats to
        log. It runs in ``train()`` mode with gradients on.
    batches : callable
        ``batches(step, generator) -> batch``, already on ``device``; ``generator`` is a torch CPU generator
        seeded from ``config.seed``, so the batch sequence is reproducible.
    config : TrainConfig
        Optimiser, schedule and number of steps.
    name : str
        Name of the run (part of the cache key and the checkpoint's file name).
    data_key : str
        Description of the training data (sizes, seeds, annotation fraction...); part of the cache key.
    device : torch.device or str, optional
        Device to train on (default: :func:`get_device`).
    cache : bool
        Reuse and write checkpoints in :func:`nucleikit._paths.checkpoint_dir`.
    callback : callable, optional
        ``callback(step, history)`` after every logged step (e.g. a live loss plot).
    extra_params : list of Parameter, optional
        Parameters outside ``model`` to optimise too (e.g. a learned loss weight).
    progress : bool
        Show a tqdm progress bar.

    Returns
    -------
    History
        Logged values; ``from_cache`` tells whether the model was loaded instead of trained.
    """
    if config.steps < 0:
        raise ValueError(f"config.steps: expected >= 0, got {config.steps}")
    if config.grad_clip is not None and not config.grad_clip > 0:
        raise ValueError(f"config.grad_clip: expected a positive norm or None, got {config.grad_clip}")
    device = torch.device(device) if device is not None else get_device()
    model.to(device)
    if config.channels_last:
        model.to(memory_format=torch.channels_last)
    key = _cache_key(name, model, config, data_key, device)
    path = checkpoint_dir() / f"{name}-{key}.pt"
    if cache and path.is_file():
        state = torch.load(path, map_location=device, weights_only=False)
        model.load_state_dict(state["model"])
        hist = History(**state["history"])
        hist.from_cache = True
        if callback is not None and hist.steps:
            callback(hist.steps[-1], hist)
        model.eval()
        return hist

    torch.manual_seed(config.seed)
    generator = torch.Generator().manual_seed(config.seed)
    params = [p for p in model.parameters() if p.requires_grad] + list(extra_params or [])
    optimizer = make_optimizer(params, config)
    hist = History(key=key)
    start = time.perf_counter()
    running: dict[str, float] = {}
    count = 0
    model.train()
    bar = tqdm(range(config.steps), desc=name, disable=not progress, leave=False, mininterval=1.0)
    for step in bar:
        lr = max(config.lr * config.lr_decay ** (step // max(config.lr_decay_every, 1)), config.lr_min)
        for group in optimizer.param_groups:
            group["lr"] = lr
        batch = batches(step, generator)
        loss, logs = step_fn(model, batch, step)
        if not torch.isfinite(loss):
            raise FloatingPointError(f"{name}: the loss became {loss.item()} at step {step}")
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if config.grad_clip is not None:
            torch.nn.utils.clip_grad_norm_(params, config.grad_clip)
        optimizer.step()
        logs = {"loss": float(loss.detach()), **{k: float(v) for k, v in logs.items()}}
        for k, v in logs.items():
            running[k] = running.get(k, 0.0) + v
        count += 1
        if (step + 1) % config.log_every == 0 or step + 1 == config.steps:
            hist.append(step + 1, {k: v / count for k, v in running.items()} | {"lr": lr})
            running, count = {}, 0
            bar.set_postfix(loss=f"{hist.last():.4g}", refresh=False)
            if callback is not None:
                callback(step + 1, hist)
    hist.wall_time_s = time.perf_counter() - start
    model.eval()
    if cache:
        _save_atomic(
            {
                "model": model.state_dict(),
                "history": dataclasses.asdict(hist),
                "config": dataclasses.asdict(config),
                "name": name,
                "data_key": data_key,
            },
            path,
        )
    return hist


# ============================================================================================= compute
def _output_tensors(out: Any) -> list[torch.Tensor]:
    if isinstance(out, torch.Tensor):
        return [out]
    if isinstance(out, dict):
        out = list(out.values())
    if isinstance(out, (tuple, list)):
        return [t for o in out for t in _output_tensors(o)]
    return []


def step_flops(build: Callable[[], torch.nn.Module], input_shape: Sequence[int]) -> int:
    """Floating-point operations of one training step (forward and backward) of a model, without running it.

    The model is built on PyTorch's ``meta`` device (shapes only: no memory for weights or activations,
    no arithmetic) and ``torch.utils.flop_counter.FlopCounterMode`` counts the operations of a forward
    pass on a batch of ``input_shape`` and of the backward pass of the sum of its outputs' means. Only
    the operations the counter knows are counted: convolutions, transposed convolutions and matrix
    products, which dominate a CNN; normalisation, activations and the optimiser update are not.

    Parameters
    ----------
    build : callable
        Returns a new ``torch.nn.Module``; called once, under ``torch.device("meta")``.
    input_shape : sequence of int
        Shape of the input batch, e.g. ``(batch, channels, height, width)``.

    Returns
    -------
    int
        FLOPs of the step (a multiply-add counts as 2).

    Examples
    --------
    >>> step_flops(lambda: torch.nn.Conv2d(3, 8, 3, padding=1), (2, 3, 16, 16))  # forward + weight grad
    442368
    """
    from torch.utils.flop_counter import FlopCounterMode

    if isinstance(build, torch.nn.Module) or not callable(build):
        raise TypeError(
            "build: expected a function that returns a new torch.nn.Module (it is built on the meta "
            f"device), got {type(build).__name__}"
        )
    shape = tuple(input_shape) if isinstance(input_shape, (tuple, list)) else None
    if not shape or not all(isinstance(n, int) and not isinstance(n, bool) and n > 0 for n in shape):
        raise ValueError(f"input_shape: expected a sequence of positive integers, got {input_shape!r}")
    with torch.device("meta"):
        model = build()
        if not isinstance(model, torch.nn.Module):
            raise TypeError(f"build: expected it to return a torch.nn.Module, got {type(model).__name__}")
        x = torch.empty(shape)
    model.train()
    with FlopCounterMode(display=False) as counter:
        outs = [t for t in _output_tensors(model(x)) if t.is_floating_point()]
        if not outs:
            raise ValueError("build: the model's output holds no floating-point tensor to differentiate")
        loss = sum(t.float().mean() for t in outs)
        if loss.requires_grad:
            loss.backward()
    return int(counter.get_total_flops())


# ========================================================================================= parallel runs
_JOBS: tuple[Callable[..., Any], list[dict[str, Any]], int] | None = None


def _run_job(index: int) -> Any:
    fn, jobs, threads = _JOBS  # type: ignore[misc]  # inherited from the parent by fork
    torch.set_num_threads(threads)  # before any parallel region in the child (libgomp and fork)
    return fn(**jobs[index])


def can_fork() -> bool:
    """Whether :func:`map_runs` can use worker processes here (Linux, fork available, CUDA not started)."""
    return (
        sys.platform.startswith("linux")
        and "fork" in multiprocessing.get_all_start_methods()
        and not torch.cuda.is_initialized()
    )


def map_runs(
    fn: Callable[..., Any], jobs: Sequence[dict[str, Any]], *, workers: int = 1, threads: int = 1
) -> list[Any]:
    """Return ``[fn(**job) for job in jobs]``, computed ``workers`` at a time in worker processes.

    A chapter that trains many independent small networks on a CPU with several cores finishes sooner
    with one single-threaded run per core than with one run at a time on all cores (small convolutions
    scale poorly across threads: two threads make a quick KiNet step only about 1.2x faster, two
    processes give about 1.9x the throughput; ``python -m nucleikit bench train``).

    Parameters
    ----------
    fn : callable
        Called as ``fn(**job)``; it may be defined in a notebook. Its return value must be picklable
        (models, arrays, dicts, :class:`History`): it comes back from the worker by pickle.
    jobs : sequence of dict
        Keyword arguments, one dict per call. Jobs start in this order (put the longest first).
    workers : int
        Processes working at once. 1 (or a single job, or a platform where :func:`can_fork` is False,
        e.g. once CUDA is in use) calls ``fn`` in this process, one job after the other.
    threads : int
        Torch threads in each worker process.

    Returns
    -------
    list
        The results, in the order of ``jobs``.

    Raises
    ------
    ValueError
        For ``workers`` or ``threads`` below 1 or a job that is not a dict.
    Exception
        The first exception a job raised, re-raised here; the other runs are stopped.
    concurrent.futures.process.BrokenProcessPool
        When a worker process died (e.g. killed for memory) instead of hanging.

    Notes
    -----
    Workers are forked, so ``fn`` and the jobs' arguments (data sets, closures, notebook globals) reach
    them without pickling; each worker sets its thread count before doing anything else, as PyTorch's
    data-loader workers do. Nothing a worker prints or draws reaches the notebook: return what to show.
    Runs that :func:`fit` has cached are loaded in the workers too, so a rerun is fast either way.
    """
    global _JOBS
    if not isinstance(workers, int) or isinstance(workers, bool) or workers < 1:
        raise ValueError(f"workers: expected an integer >= 1, got {workers!r}")
    if not isinstance(threads, int) or isinstance(threads, bool) or threads < 1:
        raise ValueError(f"threads: expected an integer >= 1, got {threads!r}")
    jobs = list(jobs)
    for i, job in enumerate(jobs):
        if not isinstance(job, dict):
            raise ValueError(f"jobs[{i}]: expected a dict of keyword arguments, got {type(job).__name__}")
    if workers == 1 or len(jobs) <= 1 or not can_fork():
        return [fn(**job) for job in jobs]
    _JOBS = (fn, jobs, threads)
    pool = ProcessPoolExecutor(min(workers, len(jobs)), mp_context=multiprocessing.get_context("fork"))
    try:
        futures = [pool.submit(_run_job, i) for i in range(len(jobs))]
        results = [f.result() for f in futures]
    except BaseException:  # a job failed, a worker died, or the user interrupted: stop the other runs
        processes = list((getattr(pool, "_processes", None) or {}).values())
        pool.shutdown(wait=False, cancel_futures=True)
        for process in processes:
            process.terminate()
        raise
    finally:
        _JOBS = None
    pool.shutdown()
    return results
