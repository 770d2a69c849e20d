"""Benchmark: training-step cost of the quick networks, and ways to spend two CPU cores on them.

``python -m nucleikit bench train`` (run it alone: it uses both cores in its last part)

1. One training step (forward, backward, Adam) of chapter 7's quick networks (KiNet with and without the
   ROI branch, the U-Net pixel classifier; 96 px crops, batch 4), one thread, weights in the default
   (contiguous) memory format against channels-last (``TrainConfig(channels_last=True)``).
2. The same step with two threads: how much a second core helps one run.
3. ``nk.train.map_runs``: the same number of short runs one after the other (one thread) against two
   worker processes (one thread each): the throughput two cores give to many independent runs.

Every ratio compares runs measured in this process, on this machine, in this run.
"""

from __future__ import annotations

import argparse
import os
import platform
import time

import torch

import nucleikit as nk


def make(kind: str) -> torch.nn.Module:
    if kind == "KiNet":
        return nk.models.KiNet(base_width=8, roi_branch=True, target_scale=5)
    if kind == "KiNet w/o ROI":
        return nk.models.KiNet(base_width=8, roi_branch=False, target_scale=5)
    return nk.models.UNet(3, 4, widths=(8, 16, 32, 64, 128))


def step_time(kind: str, *, channels_last: bool, threads: int, steps: int, crop: int = 96) -> float:
    """Median seconds per training step after 3 warm-up steps."""
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    net = make(kind).train()
    if channels_last:
        net = net.to(memory_format=torch.channels_last)
    opt = torch.optim.Adam(net.parameters(), 1e-3)
    x = torch.randn(4, 3, crop, crop)
    times = []
    for i in range(steps + 3):
        t0 = time.perf_counter()
        out = net(x)
        if isinstance(out, torch.Tensor):
            loss = out.square().mean()
        else:
            loss = out.proximity.square().mean() + (out.roi.square().mean() if out.roi is not None else 0)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if i >= 3:
            times.append(time.perf_counter() - t0)
    return sorted(times)[len(times) // 2]


def short_run(kind: str, steps: int, seed: int) -> float:
    """A short training run (the unit of work of the map_runs comparison); returns its last loss."""
    torch.manual_seed(seed)
    net = make(kind).train().to(memory_format=torch.channels_last)
    opt = torch.optim.Adam(net.parameters(), 1e-3)
    g = torch.Generator().manual_seed(seed)
    loss = torch.zeros(())
    for _ in range(steps):
        x = torch.randn(4, 3, 96, 96, generator=g)
        out = net(x)
        loss = out.square().mean() if isinstance(out, torch.Tensor) else out.proximity.square().mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return float(loss.detach())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20, help="timed steps per configuration")
    parser.add_argument("--runs", type=int, default=6, help="short runs in the map_runs comparison")
    parser.add_argument("--run-steps", type=int, default=40, help="steps of each short run")
    args = parser.parse_args()
    print(f"torch {torch.__version__}, {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs")
    print(f"\n1-2. one training step, 96 px crops, batch 4 (median of {args.steps} steps)")
    head = ("network", "default 1t", "ch-last 1t", "speed-up", "ch-last 2t", "2t gain")
    print(f"{head[0]:<15} {head[1]:>11} {head[2]:>11} {head[3]:>9} {head[4]:>11} {head[5]:>8}")
    for kind in ("KiNet", "KiNet w/o ROI", "U-Net"):
        base = step_time(kind, channels_last=False, threads=1, steps=args.steps)
        cl = step_time(kind, channels_last=True, threads=1, steps=args.steps)
        cl2 = step_time(kind, channels_last=True, threads=2, steps=args.steps)
        print(
            f"{kind:<15} {1e3 * base:>9.1f}ms {1e3 * cl:>9.1f}ms {base / cl:>8.2f}x {1e3 * cl2:>9.1f}ms "
            f"{cl / cl2:>7.2f}x"
        )
    torch.set_num_threads(1)
    jobs = [{"kind": "KiNet w/o ROI", "steps": args.run_steps, "seed": s} for s in range(args.runs)]
    t0 = time.perf_counter()
    seq = nk.train.map_runs(short_run, jobs, workers=1)
    t_seq = time.perf_counter() - t0
    t0 = time.perf_counter()
    par = nk.train.map_runs(short_run, jobs, workers=2)
    t_par = time.perf_counter() - t0
    same = seq == par
    print(f"\n3. {args.runs} runs of {args.run_steps} KiNet (w/o ROI) steps, one thread per run")
    print(f"one after the other {t_seq:6.1f} s")
    print(
        f"2 worker processes  {t_par:6.1f} s  -> {t_seq / t_par:.2f}x throughput, results identical: {same}"
    )
    if not nk.train.can_fork():
        print("(this platform cannot fork workers: map_runs ran the jobs one after the other)")


if __name__ == "__main__":
    main()
