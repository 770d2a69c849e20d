"""Speed of nk.synth: ``python -m nucleikit bench synth [--repeat N]``.

Prints the median and best time of one tile (truth included) at 256 x 256 and 1024 x 1024 for the H&E
and Ki67 generators, of re-rendering a 1024 x 1024 tile in another style, and of cutting nucleus crops,
against the budgets of issue 3 (256^2 <= 25 ms, 1024^2 <= 300 ms on one core). Run it under the shared
CPU lock with ``OMP_NUM_THREADS=1``.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time

BUDGET_MS = {(256, 256): 25.0, (1024, 1024): 300.0}


def _time(fn, repeat: int) -> tuple[float, float]:
    fn(0)  # warm-up (imports, caches)
    times = []
    for i in range(repeat):
        t0 = time.perf_counter()
        fn(i + 1)
        times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times), min(times)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m nucleikit bench synth", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--repeat", type=int, default=0, help="tiles per case (default: 40 small, 8 large)")
    args = parser.parse_args(argv)
    import numpy as np

    import nucleikit as nk

    S = nk.synth
    print(
        f"nk.synth speed, one process, OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}, "
        f"{platform.processor() or platform.machine()}, numpy {np.__version__}"
    )
    print(f"{'case':<34}{'median ms':>10}{'best ms':>10}{'budget ms':>11}  verdict")
    ok = True
    for shape in ((256, 256), (1024, 1024)):
        repeat = args.repeat or (40 if shape[0] <= 256 else 8)
        for name, gen in (("he_tile", S.he_tile), ("ki67_tile", S.ki67_tile)):
            med, best = _time(lambda i, g=gen, s=shape: g(s, rng=i), repeat)
            budget = BUDGET_MS[shape]
            verdict = "ok" if med <= budget else "OVER BUDGET"
            ok &= med <= budget
            print(
                f"{name + f' {shape[0]}x{shape[1]}':<34}{med:>10.1f}{best:>10.1f}{budget:>11.0f}  {verdict}"
            )
    tile = S.he_tile((1024, 1024), rng=0)
    med, best = _time(lambda i: S.render(tile.truth, "he_lab_c", rng=i), 8)
    print(f"{'render 1024x1024 in another style':<34}{med:>10.1f}{best:>10.1f}{'-':>11}")
    tiles = [S.he_tile((256, 256), rng=i) for i in range(8)]
    med, best = _time(lambda i: S.nucleus_crops(tiles, 32), 10)
    n = len(S.nucleus_crops(tiles, 32)[1])
    print(f"{f'nucleus_crops, 8 tiles ({n} crops)':<34}{med:>10.1f}{best:>10.1f}{'-':>11}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
