"""Benchmark: point matching and peak finding (``python -m nucleikit bench detect``).

Run it under the shared CPU lock, one thread:

    OMP_NUM_THREADS=1 flock /tmp/nk-cpu.lock .venv/bin/python -m nucleikit bench detect

1. ``nk.metrics.match_points`` (KD-tree gate + sparse assignment) against the dense full-matrix Hungarian
   (``scipy.optimize.linear_sum_assignment`` on the gated ``N x M`` distance matrix), on nucleus-like
   scenes of 1,000 and 10,000 true points; both must find the same number of matches and total distance.
2. ``nk.detect.find_peaks`` against ``skimage.feature.peak_local_max`` (same window, threshold, borders)
   on a 2048 x 2048 proximity map; both must find the same peaks. Throughput in megapixels per second.
3. ``nk.detect.points_to_proximity_map`` (targets) for reference.
"""

from __future__ import annotations

import argparse
import os
import platform
import time

import numpy as np
import scipy
import scipy.sparse as sp
from scipy.optimize import linear_sum_assignment
from scipy.sparse.csgraph import connected_components
from scipy.spatial import cKDTree
from scipy.spatial.distance import cdist
from skimage.feature import peak_local_max

import nucleikit as nk


def best_of(fn, repeat):
    times = []
    out = None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return min(times), out


def scene(n, rng, spacing=15.0):
    """Nucleus-like points: a jittered lattice (spacing px), 10 % missed, 10 % false positives, sigma 2 px."""
    g = int(np.ceil(np.sqrt(n)))
    rr, cc = np.meshgrid(np.arange(g), np.arange(g), indexing="ij")
    true = np.c_[rr.ravel(), cc.ravel()][:n] * spacing + rng.uniform(-spacing / 3, spacing / 3, (n, 2))
    found = rng.random(n) > 0.1
    pred = true[found] + rng.normal(0, 2.0, (int(found.sum()), 2))
    pred = np.concatenate([pred, rng.uniform(0, g * spacing, (n // 10, 2))])
    return true, rng.permutation(pred)


def dense_hungarian(true, pred, radius):
    dist = cdist(true, pred)
    a, b = linear_sum_assignment(np.where(dist <= radius, dist, 1e6))
    ok = dist[a, b] <= radius
    return int(ok.sum()), float(dist[a, b][ok].sum())


def component_sizes(true, pred, radius):
    pairs = cKDTree(true).query_ball_tree(cKDTree(pred), radius)
    rows = np.repeat(np.arange(len(true)), [len(p) for p in pairs])
    cols = np.concatenate([np.asarray(p, dtype=np.int64) for p in pairs]) + len(true)
    n = len(true) + len(pred)
    g = sp.coo_array((np.ones(len(rows)), (rows, cols)), shape=(n, n))
    _, lab = connected_components(g, directed=False)
    return np.bincount(lab)


def bench_matching(args, rng):
    print("\n== point matching: gate (KD-tree) + sparse assignment vs dense full-matrix Hungarian ==")
    print(
        f"scene: jittered lattice, spacing {args.spacing:g} px, 10 % missed, 10 % false positives, radius "
        f"{args.radius:g} px"
    )
    print(
        f"{'points':>8} {'preds':>7} {'largest comp':>12} {'TP':>6} {'nk (s)':>9} {'dense (s)':>10} "
        f"{'dense / nk':>10}"
    )
    for n in (1000, 10000):
        true, pred = scene(n, rng, args.spacing)
        sizes = component_sizes(true, pred, args.radius)
        t_nk, m = best_of(lambda t=true, p=pred: nk.metrics.match_points(t, p, args.radius), args.repeat)
        if n > 1000 and args.skip_dense_10k:
            print(f"{n:>8} {len(pred):>7} {sizes.max():>12} {m.tp:>6} {t_nk:>9.4f} {'skipped':>10} {'-':>10}")
            continue
        t_dense, (k, total) = best_of(
            lambda t=true, p=pred: dense_hungarian(t, p, args.radius), 1 if n > 1000 else args.repeat
        )
        assert k == m.tp, f"match count differs: nk {m.tp}, dense {k}"
        assert abs(total - m.distances.sum()) <= 1e-6 * max(total, 1.0), "total distance differs"
        print(
            f"{n:>8} {len(pred):>7} {sizes.max():>12} {m.tp:>6} {t_nk:>9.4f} {t_dense:>10.3f} "
            f"{t_dense / t_nk:>9.1f}x"
        )
    # a crowded scene where the candidate graph percolates into one giant component
    true = rng.uniform(0, 1000, (10000, 2))
    pred = true + rng.normal(0, 3.0, true.shape)
    sizes = component_sizes(true, pred, args.radius)
    t_nk, m = best_of(lambda: nk.metrics.match_points(true, pred, args.radius), args.repeat)
    print(
        f"crowded: 10000 uniform points in 1000x1000 px, radius {args.radius:g}: largest component "
        f"{sizes.max()} points, nk {t_nk:.4f} s ({m.tp} TP)"
    )


def bench_peaks(args, rng):
    size = args.map_size
    spacing = args.spacing
    n = int((size / spacing) ** 2)
    pts = rng.uniform(0, size, (n, 2))
    t_map, y = best_of(lambda: nk.detect.points_to_proximity_map(pts, (size, size), d=6.0), args.repeat)
    mp = size * size / 1e6
    print(
        f"\n== proximity map (targets): {n} points, d = 6 px, {size}x{size}: {t_map:.3f} s "
        f"({mp / t_map:.1f} MP/s)"
    )
    cls = rng.integers(0, 3, n)
    maps = nk.detect.class_proximity_maps(pts, cls, (size, size), 3, d=6.0)
    noisy = (y + 0.05 * rng.random(y.shape)).astype(np.float32)  # noise: many weak local maxima
    print(f"\n== peak finding on a {size}x{size} map (xi = 0.5, min_distance = 5, borders kept) ==")
    print(
        f"{'map':>22} {'peaks':>7} {'nk (s)':>8} {'nk MP/s':>8} {'skimage (s)':>11} {'skimage MP/s':>12} "
        f"{'ratio':>6}"
    )
    for name, img in (
        ("clean proximity map", y),
        ("noisy proximity map", noisy),
        ("3 class maps (max)", maps),
    ):
        t_nk, (f, _, _) = best_of(
            lambda im=img: nk.detect.find_peaks(im, xi=0.5, min_distance=5), args.repeat
        )
        flat = img if img.ndim == 2 else img.max(axis=0)
        t_sk, ref = best_of(
            lambda im=flat: peak_local_max(im, min_distance=5, threshold_rel=0.5, exclude_border=False),
            args.repeat,
        )
        if img.ndim == 3:
            t_sk += best_of(lambda im=img: im.max(axis=0), args.repeat)[0]  # the peer needs the max map too
        same = {tuple(p) for p in f.astype(int)} == {tuple(p) for p in ref}
        print(
            f"{name:>22} {len(f):>7} {t_nk:>8.3f} {mp / t_nk:>8.1f} "
            f"{t_sk:>11.3f} {mp / t_sk:>12.1f} {t_sk / t_nk:>5.1f}x"
            + ("" if same else "  (peak sets differ!)")
        )


def main(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeat", type=int, default=3, help="best of this many runs (default 3)")
    parser.add_argument("--radius", type=float, default=16.0, help="matching radius in px (KiNet: 16)")
    parser.add_argument("--spacing", type=float, default=15.0, help="nucleus spacing in px (default 15)")
    parser.add_argument("--map-size", type=int, default=2048, help="peak-finding map size (default 2048)")
    parser.add_argument("--skip-dense-10k", action="store_true", help="skip the slow dense peer at 10,000")
    args = parser.parse_args(argv)
    print(
        f"nucleikit {nk.__version__}, numpy {np.__version__}, scipy {scipy.__version__}, "
        f"python {platform.python_version()}, OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}"
    )
    rng = np.random.default_rng(0)
    bench_matching(args, rng)
    bench_peaks(args, rng)


if __name__ == "__main__":
    main()
