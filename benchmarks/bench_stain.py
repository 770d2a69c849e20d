"""Benchmark: Macenko and Reinhard, nucleikit vs torchstain (``python -m nucleikit bench stain``).

Run it under the shared CPU lock, one thread (both libraries get the same threads):

    OMP_NUM_THREADS=1 flock /tmp/nk-cpu.lock .venv/bin/python -m nucleikit bench stain

What is measured, in one run, on a real H&E image (``nk.data.sample("he_target")``, tiatoolbox's target
image; synthetic H&E when the sample is not available) mirror-tiled to 512, 1024 and 2048 px square:

- target: that image; source: the image rotated by 90 degrees and re-stained (Ruifrok deconvolution,
  re-mixed with H = [0.78, 0.60, 0.18] x 1.3 and E = [0.10, 0.80, 0.59] x 0.75), as in notes/stain-peers.md;
- Macenko, paper settings for everyone (Io = 240, alpha = 1, beta = 0.15, 99th percentile): nk (NumPy,
  statistics on its default 65,536-pixel grid subsample), nk with every pixel (``max_pixels=None``), nk's
  torch twin, torchstain numpy and torchstain torch (``normalize(..., stains=False)``);
- Reinhard: nk vs torchstain numpy;
- fit and transform time (median of repeats after one warm-up), megapixels per second, peak memory of one
  transform call (NumPy allocations traced, or RSS growth for torch; each case in a fresh process),
  agreement with torchstain numpy (cosine of the fitted H and E vectors, mean absolute output difference in
  uint8 levels), and error against the un-restained truth;
- ratios against torchstain's fastest Macenko backend at each size;
- an 8192 x 8192 image normalized tile by tile (``nk.stain.normalize_tiles``, 1024 px tiles), time and peak
  memory, beside torchstain torch fitted once and applied to the same 64 tiles.

torchstain is used here only; nucleikit never imports it.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from importlib import metadata

import numpy as np

SIZES = (512, 1024, 2048)
REPEATS = {512: 7, 1024: 5, 2048: 3}
IO, ALPHA, BETA = 240.0, 1.0, 0.15
RESTAIN_H = np.array([0.78, 0.60, 0.18])
RESTAIN_E = np.array([0.10, 0.80, 0.59])


# ------------------------------------------------------------------------------------------------ images
def base_image() -> tuple[np.ndarray, str]:
    """The real H&E target (or a synthetic stand-in) as uint8 RGB, and where it came from."""
    import nucleikit as nk

    try:
        return np.ascontiguousarray(nk.data.sample("he_target").image[..., :3]), "nk.data.sample('he_target')"
    except Exception as exc:  # data module or cache not available: say so, use synthetic tissue
        path = os.environ.get("NUCLEIKIT_BENCH_IMAGE")
        if path:
            from PIL import Image

            return np.ascontiguousarray(
                np.asarray(Image.open(path))[..., :3]
            ), f"{path} ($NUCLEIKIT_BENCH_IMAGE)"
        tile = nk.synth.he_tile((1024, 1024), style="he_lab_a", rng=np.random.default_rng(0))
        return tile.image, f"synthetic nk.synth.he_tile 1024 px (he_target unavailable: {type(exc).__name__})"


def mirror_to(image: np.ndarray, size: int) -> np.ndarray:
    """Mirror-tile (reflect) an image to at least size x size and crop the top-left square."""
    h, w = image.shape[:2]
    reps = (int(np.ceil(size / h)), int(np.ceil(size / w)))
    rows = [image if i % 2 == 0 else image[::-1] for i in range(reps[0])]
    tall = np.concatenate(rows, axis=0)
    cols = [tall if j % 2 == 0 else tall[:, ::-1] for j in range(reps[1])]
    return np.ascontiguousarray(np.concatenate(cols, axis=1)[:size, :size])


def restain(image: np.ndarray) -> np.ndarray:
    """Rotate by 90 degrees and re-stain: Ruifrok unmixing, re-mixing with other vectors and amounts."""
    import nucleikit as nk

    rot = np.ascontiguousarray(np.rot90(image))
    full = nk.stain.RUIFROK_HED
    conc = nk.stain.deconvolve(rot, full, io=256.0)  # (H, W, 3): H, E, residual
    new = np.vstack([RESTAIN_H / np.linalg.norm(RESTAIN_H), RESTAIN_E / np.linalg.norm(RESTAIN_E), full[2]])
    conc = conc * np.array([1.3, 0.75, 1.0], dtype=np.float32)
    return nk.stain.recombine(conc, new, io=256.0)


def images(size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    base, _ = base_image()
    target = mirror_to(base, size)
    truth = np.ascontiguousarray(np.rot90(target))
    return target, restain(target), truth


# ---------------------------------------------------------------------------------------- measurement
def reset_peak() -> int:
    """Reset the peak RSS (Linux) and return the current RSS in bytes (0 where unsupported)."""
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
        return _status("VmRSS")
    except OSError:
        return 0


def _status(key: str) -> int:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(key + ":"):
                return int(line.split()[1]) * 1024
    return 0


def peak_growth(fn) -> float:
    """Peak memory (MB) of one call of fn: the larger of NumPy's traced allocations and the RSS growth.

    ``tracemalloc`` sees every NumPy buffer, even one that reuses memory freed earlier (which RSS misses);
    RSS growth (peak reset through ``/proc/self/clear_refs``) sees torch's buffers, which tracemalloc misses.
    """
    import tracemalloc

    tracemalloc.start()
    base = reset_peak()
    fn()
    traced = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    rss = max(0, _status("VmHWM") - base) if base else 0
    return max(traced, rss) / 1e6


def median_time(fn, repeat: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return float(np.median(times))


# ------------------------------------------------------------------------------------------------ cases
def make_case(lib: str, size: int):
    """Return (fit, transform, stains) callables for one library at one size."""
    target, source, truth = images(size)
    if lib == "nk":
        import nucleikit as nk

        norm = nk.stain.MacenkoNormalizer(io=IO, alpha=ALPHA, beta=BETA)
        return (
            target,
            source,
            truth,
            (lambda: norm.fit(target)),
            (lambda: norm.transform(source)),
            (lambda: norm.stain_matrix_),
        )
    if lib == "nk-all-px":  # every pixel in the statistics, as the paper and torchstain do
        import nucleikit as nk

        norm = nk.stain.MacenkoNormalizer(io=IO, alpha=ALPHA, beta=BETA, max_pixels=None)
        return (
            target,
            source,
            truth,
            (lambda: norm.fit(target)),
            (lambda: norm.transform(source)),
            (lambda: norm.stain_matrix_),
        )
    if lib == "nk-torch":
        import torch

        import nucleikit as nk

        norm = nk.stain.torch.MacenkoNormalizer(io=IO, alpha=ALPHA, beta=BETA)
        tt = torch.from_numpy(target).permute(2, 0, 1)
        ts = torch.from_numpy(source).permute(2, 0, 1).unsqueeze(0)

        def tf():
            return norm.transform(ts)[0].permute(1, 2, 0).numpy()

        return target, source, truth, (lambda: norm.fit(tt)), tf, (lambda: norm.stain_matrix_)
    if lib == "ts-numpy":
        import torchstain

        norm = torchstain.normalizers.MacenkoNormalizer(backend="numpy")

        def tf():
            return norm.normalize(source, Io=IO, alpha=ALPHA, beta=BETA, stains=False)[0]

        return (
            target,
            source,
            truth,
            (lambda: norm.fit(target, Io=IO, alpha=ALPHA, beta=BETA)),
            tf,
            (lambda: np.asarray(norm.HERef).T),
        )
    if lib == "ts-torch":
        import torch
        import torchstain

        norm = torchstain.normalizers.MacenkoNormalizer(backend="torch")
        tt = torch.from_numpy(target).permute(2, 0, 1)
        ts = torch.from_numpy(source).permute(2, 0, 1)

        def tf():
            return norm.normalize(ts, Io=IO, alpha=ALPHA, beta=BETA, stains=False)[0].numpy().astype(np.uint8)

        return (
            target,
            source,
            truth,
            (lambda: norm.fit(tt, Io=IO, alpha=ALPHA, beta=BETA)),
            tf,
            (lambda: np.asarray(norm.HERef).T),
        )
    if lib == "nk-reinhard":
        import nucleikit as nk

        norm = nk.stain.ReinhardNormalizer(min_tissue_fraction=0.0)
        return target, source, truth, (lambda: norm.fit(target)), (lambda: norm.transform(source)), None
    if lib == "ts-reinhard":
        import torchstain

        norm = torchstain.normalizers.ReinhardNormalizer(backend="numpy")
        return target, source, truth, (lambda: norm.fit(target)), (lambda: norm.normalize(source)), None
    raise ValueError(lib)


def run_case(lib: str, size: int) -> dict:
    """Measure one case (called in a fresh process); returns a JSON-ready dict."""
    import torch

    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
    _, _, truth, fit, transform, stains = make_case(lib, size)
    repeat = REPEATS[size]
    fit_s = median_time(fit, repeat)
    fit()
    mem = peak_growth(transform)
    tr_s = median_time(transform, repeat)
    out = np.asarray(transform())
    np.save(f"/tmp/nk_bench_{lib}_{size}.npy", out)
    res = {
        "lib": lib,
        "size": size,
        "fit_s": fit_s,
        "transform_s": tr_s,
        "mp_s": size * size / 1e6 / tr_s,
        "peak_mb": mem,
        "image_f32_mb": size * size * 3 * 4 / 1e6,
        "mae_truth": float(np.abs(out.astype(np.int16) - truth.astype(np.int16)).mean()),
    }
    if stains is not None:
        res["stains"] = np.asarray(stains(), dtype=float).tolist()
    return res


def run_tiles() -> dict:
    """8192 x 8192, 1024 px tiles: nk.stain.normalize_tiles vs torchstain torch tile by tile."""
    import torch
    import torchstain

    import nucleikit as nk

    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
    base, _ = base_image()
    target = mirror_to(base, 1024)
    big = restain(mirror_to(base, 8192))
    norm = nk.stain.MacenkoNormalizer(io=IO, alpha=ALPHA, beta=BETA).fit(target)
    res = {"image_mb": big.nbytes / 1e6}
    base_rss = reset_peak()
    t0 = time.perf_counter()
    out, report = nk.stain.normalize_tiles(norm, big, tile_size=1024, progress=True)
    res["nk_s"] = time.perf_counter() - t0
    res["nk_peak_mb"] = (_status("VmHWM") - base_rss) / 1e6 if base_rss else float("nan")
    res["nk_extra_mb"] = res["nk_peak_mb"] - out.nbytes / 1e6
    res["n_tiles"] = report.n_tiles
    del out
    ts = torchstain.normalizers.MacenkoNormalizer(backend="torch")
    ts.fit(torch.from_numpy(target).permute(2, 0, 1), Io=IO, alpha=ALPHA, beta=BETA)
    base_rss = reset_peak()
    t0 = time.perf_counter()
    out = np.empty_like(big)
    for r in range(0, 8192, 1024):
        for c in range(0, 8192, 1024):
            tile = torch.from_numpy(np.ascontiguousarray(big[r : r + 1024, c : c + 1024])).permute(2, 0, 1)
            out[r : r + 1024, c : c + 1024] = ts.normalize(tile, Io=IO, alpha=ALPHA, beta=BETA, stains=False)[
                0
            ]
    res["ts_s"] = time.perf_counter() - t0
    res["ts_peak_mb"] = (_status("VmHWM") - base_rss) / 1e6 if base_rss else float("nan")
    return res


def child(args: list[str]) -> dict:
    cmd = [sys.executable, os.path.abspath(__file__), *args]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        return {"error": proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else "failed"}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def cosines(a: list | None, b: list | None) -> str:
    if a is None or b is None:
        return "-"
    a, b = np.asarray(a), np.asarray(b)
    a = a / np.linalg.norm(a, axis=1, keepdims=True)
    b = b / np.linalg.norm(b, axis=1, keepdims=True)
    return f"{a[0] @ b[0]:.4f}/{a[1] @ b[1]:.4f}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--case", nargs=2, metavar=("LIB", "SIZE"), help=argparse.SUPPRESS)
    parser.add_argument("--tiles-case", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--sizes", type=int, nargs="+", default=list(SIZES))
    parser.add_argument("--no-tiles", action="store_true", help="skip the 8192 px tile-by-tile case")
    args = parser.parse_args(argv)
    if args.case:
        print(json.dumps(run_case(args.case[0], int(args.case[1]))))
        return 0
    if args.tiles_case:
        print(json.dumps(run_tiles()))
        return 0

    import torch

    _, origin = base_image()
    threads = os.environ.get("OMP_NUM_THREADS", "unset")
    print(
        f"stain normalization benchmark: {platform.processor() or platform.machine()}, "
        f"{os.cpu_count()} CPUs, "
        f"OMP_NUM_THREADS={threads}, numpy {np.__version__}, torch {torch.__version__}, torchstain "
        f"{metadata.version('torchstain')}"
    )
    print(f"image: {origin}; Io={IO:g}, alpha={ALPHA:g}, beta={BETA:g}, 99th percentile for everyone")
    libs = ["nk", "nk-all-px", "nk-torch", "ts-numpy", "ts-torch", "nk-reinhard", "ts-reinhard"]
    rows = {}
    for size in args.sizes:
        for lib in libs:
            rows[lib, size] = child(["--case", lib, str(size)])
            r = rows[lib, size]
            if "error" in r:
                print(f"  {lib} {size}: error {r['error']}", file=sys.stderr)

    print("\n== Macenko: fit and transform (median of repeats), peak memory of one transform, agreement ==")
    head = (
        f"{'size':>5} {'library':<12} {'fit s':>7} {'transf s':>8} {'MP/s':>6} {'peak MB':>8} "
        f"{'/img f32':>8} "
        f"{'cos H/E vs ts':>15} {'MAE vs ts':>9} {'MAE truth':>9}"
    )
    print(head)
    for size in args.sizes:
        ref = rows.get(("ts-numpy", size), {})
        ref_out = f"/tmp/nk_bench_ts-numpy_{size}.npy"
        for lib in ("nk", "nk-all-px", "nk-torch", "ts-numpy", "ts-torch"):
            r = rows[lib, size]
            if "error" in r:
                continue
            mae = "-"
            if os.path.exists(ref_out) and lib != "ts-numpy":
                a = np.load(f"/tmp/nk_bench_{lib}_{size}.npy").astype(np.int16)
                mae = f"{np.abs(a - np.load(ref_out).astype(np.int16)).mean():.2f}"
            print(
                f"{size:>5} {lib:<12} {r['fit_s']:>7.3f} {r['transform_s']:>8.3f} {r['mp_s']:>6.1f} "
                f"{r['peak_mb']:>8.1f} {r['peak_mb'] / r['image_f32_mb']:>8.2f} "
                f"{cosines(r.get('stains'), ref.get('stains')):>15} {mae:>9} {r['mae_truth']:>9.2f}"
            )

    print("\n== ratios: torchstain's fastest Macenko backend / nk (higher = nk faster) ==")
    print(f"{'size':>5} {'fastest peer':<10} {'fit x':>7} {'transform x':>11} {'nk-torch transform x':>20}")
    for size in args.sizes:
        peers = [rows[p, size] for p in ("ts-numpy", "ts-torch") if "error" not in rows[p, size]]
        nk_r, nkt = rows["nk", size], rows["nk-torch", size]
        if not peers or "error" in nk_r:
            continue
        best = min(peers, key=lambda r: r["transform_s"])
        best_fit = min(r["fit_s"] for r in peers)
        nkt_x = f"{best['transform_s'] / nkt['transform_s']:.1f}" if "error" not in nkt else "-"
        print(
            f"{size:>5} {best['lib']:<10} {best_fit / nk_r['fit_s']:>7.1f} "
            f"{best['transform_s'] / nk_r['transform_s']:>11.1f} {nkt_x:>20}"
        )

    print("\n== Reinhard (Lab mean/std): nk vs torchstain numpy ==")
    print(
        f"{'size':>5} {'library':<12} {'fit s':>7} {'transf s':>8} {'MP/s':>6} {'peak MB':>8} "
        f"{'MAE vs ts':>9} "
        f"{'MAE truth':>9}"
    )
    for size in args.sizes:
        for lib in ("nk-reinhard", "ts-reinhard"):
            r = rows[lib, size]
            if "error" in r:
                continue
            mae = "-"
            if lib == "nk-reinhard" and os.path.exists(f"/tmp/nk_bench_ts-reinhard_{size}.npy"):
                a = np.load(f"/tmp/nk_bench_nk-reinhard_{size}.npy").astype(np.int16)
                b = np.load(f"/tmp/nk_bench_ts-reinhard_{size}.npy").astype(np.int16)
                mae = f"{np.abs(a - b).mean():.2f}"
            print(
                f"{size:>5} {lib:<12} {r['fit_s']:>7.3f} {r['transform_s']:>8.3f} {r['mp_s']:>6.1f} "
                f"{r['peak_mb']:>8.1f} {mae:>9} {r['mae_truth']:>9.2f}"
            )

    if not args.no_tiles:
        print("\n== 8192 x 8192 image, 1024 px tiles (64 tiles) ==")
        t = child(["--tiles-case"])
        if "error" in t:
            print(f"error: {t['error']}")
        else:
            print(
                f"nk.stain.normalize_tiles: {t['nk_s']:.2f} s ({8192 * 8192 / 1e6 / t['nk_s']:.1f} MP/s), "
                f"peak growth {t['nk_peak_mb']:.0f} MB of which output {t['image_mb']:.0f} MB "
                f"(working memory {t['nk_extra_mb']:.0f} MB), {t['n_tiles']} tiles"
            )
            print(
                f"torchstain torch, fitted once, tile by tile: {t['ts_s']:.2f} s "
                f"({8192 * 8192 / 1e6 / t['ts_s']:.1f} MP/s), peak growth {t['ts_peak_mb']:.0f} MB; "
                f"ratio {t['ts_s'] / t['nk_s']:.1f}x"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
