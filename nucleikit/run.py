"""Rerun chapters with papermill: ``python -m nucleikit run [CHAPTER ...] --profile NAME [-p key=value ...]``.

Each chapter runs in its own process (papermill, one kernel), so a failing chapter cannot take the others
down and its peak memory can be measured. The command writes, under ``--out`` (default
``_build/runs/<profile>``):

- ``executed/<chapter>.ipynb``: the executed notebooks (CI's nbval pass and the book read these);
- ``results/<chapter>.json``: the metrics each chapter recorded through :mod:`nucleikit.report`;
- ``logs/<chapter>.log``: papermill's output;
- ``manifest.json``: git commit, package versions, device, parameters, wall time and peak memory per chapter;
- ``summary.md`` / ``summary.csv``: every recorded metric beside the paper's number.

A chapter that fails gives a non-zero exit naming the chapter and the cell; the other chapters still run
and their results are kept.
"""

from __future__ import annotations

import argparse
import ast
import dataclasses
import datetime as _dt
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

from ._paths import build_dir, project_root
from .profiles import CHAPTERS, PROFILES, Chapter, find_chapter, get, knob_names
from .report import summarize, write_summary, write_text_atomic

__all__ = ["ChapterRun", "main", "parse_knobs", "run_chapters"]

_PACKAGES = (
    "nucleikit",
    "numpy",
    "scipy",
    "scikit-image",
    "scikit-learn",
    "torch",
    "matplotlib",
    "papermill",
    "nbval",
    "jupyter-book",
    "pandas",
    "ipywidgets",
)


@dataclass
class ChapterRun:
    """What happened to one chapter."""

    key: str
    parameters: dict[str, Any]
    notebook: str
    status: str = "pending"
    wall_time_s: float = 0.0
    peak_rss_mb: float = 0.0
    error: str = ""
    failed_cell: int | None = None
    log: str = ""
    _proc: Any = field(default=None, repr=False)
    _start: float = field(default=0.0, repr=False)


def _parse_value(text: str) -> Any:
    """Parse a knob value: Python literal (int, float, bool, None, tuple...) else a string."""
    lowered = text.strip().lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    if lowered in ("none", "null"):
        return None
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def parse_knobs(items: list[str], chapters: list[Chapter], profile: str) -> dict[str, dict[str, Any]]:
    """Turn ``-p key=value`` items into validated per-chapter parameters.

    ``key=value`` goes to every selected chapter that has the knob; ``03.key=value`` (number or name before
    the dot) to one chapter. A knob that no selected chapter has is an error listing the valid names.
    """
    per_chapter: dict[str, dict[str, Any]] = {c.key: {} for c in chapters}
    for item in items:
        if "=" not in item:
            raise ValueError(f"-p {item!r}: expected key=value (e.g. -p steps=200 or -p 03.steps=200)")
        name, value = item.split("=", 1)
        name, parsed = name.strip(), _parse_value(value)
        targets = chapters
        if "." in name:
            prefix, name = name.split(".", 1)
            target = find_chapter(prefix)
            if target.key not in per_chapter:
                raise ValueError(f"-p {item!r}: chapter {target.key} is not among the chapters being run")
            targets = [target]
        takers = [c for c in targets if name in knob_names(c.key)]
        if not takers:
            valid = sorted({k for c in targets for k in knob_names(c.key)})
            where = ", ".join(c.key for c in targets)
            raise ValueError(
                f"unknown parameter {name!r} for {where}; valid parameters: profile, {', '.join(valid)}"
            )
        for c in takers:
            per_chapter[c.key][name] = parsed
    for c in chapters:  # type check now, before any kernel starts
        get(c.key, profile, **per_chapter[c.key])
    return per_chapter


def _git_commit(root: Path | None) -> tuple[str, bool]:
    if root is None or shutil.which("git") is None:
        return "unknown", False
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = bool(
            subprocess.run(
                ["git", "status", "--porcelain", "--untracked-files=no"],
                cwd=root,
                capture_output=True,
                text=True,
                check=True,
            ).stdout.strip()
        )
        return commit, dirty
    except (subprocess.CalledProcessError, OSError):
        return "unknown", False


def _versions() -> dict[str, str]:
    out = {}
    for name in _PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out


def _device_info() -> dict[str, Any]:
    info: dict[str, Any] = {
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
    }
    try:
        import torch

        info["torch_threads"] = torch.get_num_threads()
        info["cuda"] = torch.cuda.is_available()
        if info["cuda"]:
            info["gpu"] = torch.cuda.get_device_name(0)
    except ImportError:  # pragma: no cover
        info["cuda"] = False
    return info


def _count_completed(path: Path) -> int:
    try:
        return path.read_text(encoding="utf-8", errors="ignore").count('"status": "completed"')
    except OSError:
        return 0


def _failure(path: Path) -> tuple[int | None, str]:
    """Find the failing cell of an executed notebook: (code cell number, 'In [n] `first line`: error')."""
    try:
        nb = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None, "the executed notebook could not be read"
    code_cells = [
        c
        for c in nb.get("cells", [])
        if c.get("cell_type") == "code"
        and "papermill-error-cell-tag" not in c.get("metadata", {}).get("tags", [])
    ]
    for number, cell in enumerate(code_cells, start=1):
        for out in cell.get("outputs", []):
            if out.get("output_type") == "error":
                src = "".join(cell.get("source", "")).strip().splitlines()
                first = next((line for line in src if line.strip() and not line.startswith("#")), "")
                return number, (
                    f"In [{cell.get('execution_count')}] `{first[:80]}`: "
                    f"{out.get('ename')}: {out.get('evalue', '')[:300]}"
                )
    return None, "no error output found (kernel died or timed out?)"


def _start(run: ChapterRun, root: Path, out: Path, env: dict[str, str], cell_timeout: int | None) -> None:
    executed = out / "executed" / Path(run.notebook).name
    executed.parent.mkdir(parents=True, exist_ok=True)
    executed.unlink(missing_ok=True)
    params_file = out / "logs" / f"{run.key}.params.json"
    params_file.parent.mkdir(parents=True, exist_ok=True)
    params_file.write_text(json.dumps(run.parameters), encoding="utf-8")
    cmd = [
        sys.executable,
        "-m",
        "papermill",
        str(root / run.notebook),
        str(executed),
        "-k",
        "python3",
        "--cwd",
        str(root / "notebooks"),
        "--no-progress-bar",
        "-f",
        str(params_file),
    ]
    if cell_timeout:
        cmd += ["--execution-timeout", str(cell_timeout)]
    log_path = out / "logs" / f"{run.key}.log"
    run.log = str(log_path)
    log = open(log_path, "w", encoding="utf-8")  # noqa: SIM115 - closed when the process ends
    run._proc = (
        subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=root),
        log,
        executed,
    )
    run._start = time.perf_counter()
    run.status = "running"


def _reap(run: ChapterRun) -> bool:
    """Return True when the chapter's process has ended (and record its time, memory and status)."""
    proc, log, executed = run._proc
    pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
    if pid == 0:
        return False
    proc.returncode = os.waitstatus_to_exitcode(status)
    log.close()
    run.wall_time_s = time.perf_counter() - run._start
    scale = 1 / 1024 if sys.platform != "darwin" else 1 / 1024**2  # ru_maxrss: KiB on Linux, bytes on macOS
    run.peak_rss_mb = round(usage.ru_maxrss * scale, 1)
    if proc.returncode == 0:
        run.status = "ok"
    else:
        run.status = "failed"
        run.failed_cell, run.error = (
            _failure(executed) if executed.is_file() else (None, "no notebook written")
        )
    run._proc = None
    return True


def run_chapters(
    chapters: list[Chapter],
    profile: str,
    knobs: dict[str, dict[str, Any]],
    out: Path,
    *,
    jobs: int = 1,
    cell_timeout: int | None = None,
    progress: bool = True,
    root: Path | None = None,
) -> list[ChapterRun]:
    """Execute chapters with papermill, ``jobs`` at a time; write manifest and summary into ``out``.

    ``root`` is the checkout holding ``notebooks/`` (default: the one this package lives in).
    """
    from tqdm.auto import tqdm

    root = root or project_root()
    if root is None:
        raise RuntimeError(
            "the chapter notebooks ship with the source checkout: "
            "git clone the nucleikit repository and run from there"
        )
    missing = [c.key for c in chapters if not c.exists(root)]
    if missing:
        raise ValueError(f"chapter(s) {', '.join(missing)} are not written yet (no notebook in notebooks/)")
    out.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ)
    env["NUCLEIKIT_RESULTS"] = str((out / "results").resolve())
    env.setdefault("NUCLEIKIT_BUILD", str(build_dir().resolve()))
    env.pop("MPLBACKEND", None)  # the inline backend must stay in charge, or figures are not saved
    env.setdefault("PYTHONHASHSEED", "0")
    for c in chapters:  # stale results of a chapter must not survive a failed rerun
        (out / "results" / f"{c.key}.json").unlink(missing_ok=True)

    runs = [ChapterRun(c.key, {"profile": profile, **knobs.get(c.key, {})}, c.notebook) for c in chapters]
    n_cells = {}
    for c in chapters:
        nb = json.loads((root / c.notebook).read_text(encoding="utf-8"))
        n_cells[c.key] = len(nb["cells"]) + 1  # + papermill's injected-parameters cell
    started = time.perf_counter()
    # longest expected first, so that with several jobs the long chapters do not start last
    expected = {c.key: c.minutes.get(profile, 0.0) for c in chapters}
    pending = sorted(runs, key=lambda r: -expected[r.key])
    active: list[ChapterRun] = []
    bars: dict[str, Any] = {}
    position = 0
    while pending or active:
        while pending and len(active) < max(jobs, 1):
            run = pending.pop(0)
            _start(run, root, out, env, cell_timeout)
            active.append(run)
            bars[run.key] = tqdm(
                total=n_cells[run.key],
                desc=f"{run.key:<28}",
                unit="cell",
                position=position,
                disable=not progress,
                leave=True,
                dynamic_ncols=True,
            )
            position += 1
        time.sleep(0.5)
        for run in list(active):
            bar = bars[run.key]
            executed = run._proc[2]
            done = _count_completed(executed)
            if done > bar.n:
                bar.update(done - bar.n)
            if _reap(run):
                active.remove(run)
                bar.set_postfix_str(f"{run.status} in {run.wall_time_s:.0f} s, peak {run.peak_rss_mb:.0f} MB")
                bar.close()
                if not progress:
                    line = f"{run.key:<28} {run.status:<7} {run.wall_time_s:7.1f} s"
                    print(f"{line}  peak {run.peak_rss_mb:6.0f} MB", flush=True)
                if run.status == "failed":
                    tqdm.write(f"FAILED {run.key}: cell {run.failed_cell} {run.error}", file=sys.stderr)
    total = time.perf_counter() - started

    commit, dirty = _git_commit(root)
    manifest = {
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "command": " ".join(sys.argv),
        "git_commit": commit,
        "git_dirty": dirty,
        "profile": profile,
        "jobs": jobs,
        "python": sys.version.split()[0],
        "packages": _versions(),
        "device": _device_info(),
        "wall_time_s": round(total, 2),
        "chapters": [{k: v for k, v in dataclasses.asdict(r).items() if not k.startswith("_")} for r in runs],
    }
    write_text_atomic(out / "manifest.json", json.dumps(manifest, indent=2) + "\n")
    df = summarize(out / "results", chapters=[r.key for r in runs])
    write_summary(df, out)
    return runs


def _list_chapters(root: Path | None) -> str:
    lines = [
        f"{'chapter':<26} {'status':<12} " + " ".join(f"{p + ' (min)':>12}" for p in PROFILES) + "  knobs"
    ]
    for c in CHAPTERS.values():
        status = "ready" if root is not None and c.exists(root) else "not written"
        times = " ".join(f"{c.minutes[p]:>12.1f}" if p in c.minutes else f"{'-':>12}" for p in PROFILES)
        lines.append(f"{c.key:<26} {status:<12} {times}  {', '.join(knob_names(c.key))}")
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    """Build the argument parser of ``python -m nucleikit run``."""
    p = argparse.ArgumentParser(
        prog="python -m nucleikit run",
        description="Execute chapter notebooks with papermill and collect their results.",
        epilog="Examples: run --profile quick | run 3 kinet --profile full -p seed=1 | run 7 -p 07.seed=2",
    )
    p.add_argument("chapters", nargs="*", help="chapter numbers or names (default: every written chapter)")
    p.add_argument("--profile", default="quick", help=f"one of {', '.join(PROFILES)} (default quick)")
    p.add_argument(
        "-p",
        "--param",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override one setting (repeatable); CHAPTER.KEY=VALUE targets one chapter",
    )
    p.add_argument("--out", type=Path, default=None, help="output folder (default _build/runs/<profile>)")
    p.add_argument("--jobs", type=int, default=1, help="chapters run at the same time (default 1)")
    p.add_argument("--cell-timeout", type=int, default=None, help="seconds allowed per cell")
    p.add_argument("--list", action="store_true", help="list the chapters, their profiles and expected times")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    return p


def main(argv: list[str] | None = None, *, root: Path | None = None) -> int:
    """Entry point of ``python -m nucleikit run``; returns the exit code."""
    args = build_parser().parse_args(argv)
    root = root or project_root()
    if args.list:
        print(_list_chapters(root))
        return 0
    try:
        if args.profile not in PROFILES:
            raise ValueError(f"unknown profile {args.profile!r}; valid profiles: {', '.join(PROFILES)}")
        if args.chapters:
            chapters = list({ch.key: ch for ch in map(find_chapter, args.chapters)}.values())
        else:
            chapters = [c for c in CHAPTERS.values() if root is not None and c.exists(root)]
        knobs = parse_knobs(args.param, chapters, args.profile)
        out = args.out or build_dir() / "runs" / args.profile
        progress = not args.no_progress and sys.stderr.isatty()
        runs = run_chapters(
            chapters,
            args.profile,
            knobs,
            out,
            jobs=args.jobs,
            cell_timeout=args.cell_timeout,
            progress=progress,
            root=root,
        )
    except (ValueError, TypeError, RuntimeError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    failed = [r for r in runs if r.status != "ok"]
    print(f"\n{len(runs) - len(failed)} of {len(runs)} chapter(s) ran; outputs in {out}")
    for r in runs:
        print(f"  {r.key:<28} {r.status:<7} {r.wall_time_s:7.1f} s  peak {r.peak_rss_mb:7.0f} MB")
    print(f"  summary: {out / 'summary.md'}")
    if failed:
        for r in failed:
            print(
                f"error: chapter {r.key} failed at code cell {r.failed_cell}: {r.error} (log: {r.log})",
                file=sys.stderr,
            )
        return 1
    return 0
