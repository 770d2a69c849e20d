"""Tissue layout, nucleus placement and rasterisation (private; see :mod:`nucleikit.synth`)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.spatial import cKDTree

from ._fields import CoarseGrid, block_rows, soft_step
from ._types import TISSUE_TYPES, Difficulty, NucleusType, Organ

# Region codes of the H&E layout (HE_REGIONS order).
BG, TUMOUR, STROMA, LYMPHOID = 0, 1, 2, 3
# Tissue type -> region code that dominates it.
_TISSUE_REGION = {"tumour": TUMOUR, "stroma": STROMA, "lymphocyte": LYMPHOID, "lumen": BG}


@dataclass
class Layout:
    """Where the tissue compartments are: hard regions, and soft memberships computed per row block.

    The full-resolution fields are kept as upsampled from the coarse grids; :meth:`maps` turns a block of
    rows of them into soft memberships, the collagen fibre pattern and the grain (elementwise, so a block
    equals the same rows of a whole-tile computation).
    """

    regions: np.ndarray  # (H, W) int8, codes BG/TUMOUR/STROMA/LYMPHOID
    grid: CoarseGrid
    f_nest: np.ndarray  # coarse tumour-nest field (for gland orientation)
    f_angle: np.ndarray  # coarse fibre angle (radians)
    tissue_type: str
    fields: dict[str, np.ndarray]  # (H, W) float32 upsampled fields: bg, nest, lymph, cos, sin, phase, grain
    thresholds: tuple[np.float32, np.float32, np.float32, np.float32]  # bg, lumen, nest, lymph
    wavenumber: np.float32  # collagen cleft wavenumber (radians per pixel)

    def maps(self, r0: int, r1: int) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray]:
        """Soft memberships ("bg", "tumour", "stroma", "lymphoid"), fibres and grain of rows r0:r1.

        Returns float32 arrays of shape (r1 - r0, W): memberships in [0, 1], the collagen fibre pattern
        (dense pink bundles split by thin, wavy, broken clefts along a slowly turning direction) and the
        medium-scale grain in [-1, 1].
        """
        f = {k: v[r0:r1] for k, v in self.fields.items()}
        t_bg, t_lumen, t_nest, t_lym = self.thresholds
        w = 0.12  # softness of compartment borders (in field units)
        s_bg = 1 - (1 - soft_step(f["bg"] - t_bg, w)) * (1 - soft_step(f["nest"] - t_lumen, w))
        s_nest = (1 - s_bg) * soft_step(f["nest"] - t_nest, w)
        s_lym = (1 - s_bg - s_nest) * soft_step(f["lymph"] - t_lym, w)
        s_str = np.clip(1 - s_bg - s_nest - s_lym, 0, 1)

        k = self.wavenumber  # one cleft every ~8 micrometres
        yy = np.arange(r0, r1, dtype=np.float32)[:, None] * k
        xx = np.arange(f["bg"].shape[1], dtype=np.float32)[None, :] * k
        # cos and sin of the slowly turning fibre angle come interpolated from the grid (cheaper than trig)
        phase = xx * f["cos"]
        phase += yy * f["sin"]
        phase += np.float32(2.2) * f["phase"]
        grain = np.clip(f["grain"] * np.float32(0.6), -1, 1)
        wave = np.cos(phase)
        cleft = np.clip((wave - np.float32(0.6)) * np.float32(1 / 0.4), 0, 1)  # thin pale clefts
        cleft *= np.clip(0.3 + 1.5 * grain, 0, 1)
        strand = np.clip((-wave - np.float32(0.75)) * np.float32(1 / 0.25), 0, 1)  # thin dense strands
        fibres = (1 - 0.6 * cleft + 0.25 * strand) * (0.85 + 0.15 * grain)
        soft = {"bg": s_bg, "tumour": s_nest, "stroma": s_str, "lymphoid": s_lym}
        return soft, fibres.astype(np.float32, copy=False), grain.astype(np.float32, copy=False)


def _fractions(tissue: str, organ: Organ, rng: np.random.Generator) -> tuple[float, float, float, float]:
    """Target area fractions (background, nest, lumen share of nests, lymphoid) for a tissue type."""
    u = rng.uniform
    lumen_share = organ.gland * u(0.22, 0.42)
    if tissue == "tumour":
        nest = u(0.55, 0.75) / (1 - 0.5 * lumen_share)
        return u(0.0, 0.06), min(nest, 0.9), lumen_share * 0.5, u(0.0, 0.06)
    if tissue == "stroma":
        return u(0.0, 0.08), u(0.0, 0.22), lumen_share, u(0.0, 0.08)
    if tissue == "lymphocyte":
        return u(0.0, 0.06), u(0.0, 0.2), lumen_share, u(0.5, 0.7)
    # lumen-rich
    return u(0.5, 0.65), u(0.1, 0.3), lumen_share, u(0.0, 0.06)


def make_layout(
    shape: tuple[int, int], mpp: float, organ: Organ, tissue: str | None, rng: np.random.Generator
) -> Layout:
    """Draw the tissue compartments of a tile (fractions follow the tissue type)."""
    H, W = shape
    if tissue is None:
        p = np.asarray(organ.class_mix, float)
        tissue = TISSUE_TYPES[int(rng.choice(len(TISSUE_TYPES), p=p / p.sum()))]
    q_bg, q_nest, lumen_share, q_lymph = _fractions(tissue, organ, rng)
    grid = CoarseGrid(shape, cell=max(2.0, 8.0 / mpp))  # one node every 8 micrometres
    nest_scale = 5.0 - 2.2 * organ.gland  # glandular organs: smaller, more numerous nests (in cells)
    f_bg = grid.noise(6.0, rng)
    f_nest = grid.noise(nest_scale, rng)
    f_lym = grid.noise(4.0, rng)
    f_angle = grid.noise(5.0, rng) * np.float32(0.9) + np.float32(rng.uniform(0, np.pi))
    f_phase = CoarseGrid(shape, cell=max(2.0, 3.0 / mpp))
    phase_noise = f_phase.noise(1.5, rng)
    grain_c = f_phase.noise(0.8, rng)

    # thresholds from quantiles on the coarse grid (background first, then nests, then lymphoid)
    t_bg = np.quantile(f_bg, 1 - q_bg) if q_bg > 0 else np.inf
    free = f_bg <= t_bg
    n_free = max(int(free.sum()), 1)
    nest_vals = f_nest[free]
    q_n = min(q_nest * f_bg.size / n_free, 1.0)
    t_nest = np.quantile(nest_vals, 1 - q_n) if q_n > 0 else np.inf
    in_nest = free & (f_nest > t_nest)
    t_lumen = np.quantile(f_nest[in_nest], 1 - lumen_share) if in_nest.any() and lumen_share > 0 else np.inf
    rest = free & ~in_nest
    q_l = min(q_lymph * f_bg.size / max(int(rest.sum()), 1), 1.0)
    t_lym = np.quantile(f_lym[rest], 1 - q_l) if rest.any() and q_l > 0 else np.inf

    fb, fn, fl = grid.upsample(f_bg), grid.upsample(f_nest), grid.upsample(f_lym)
    regions = np.full(shape, STROMA, dtype=np.int8)
    rows = block_rows(W)
    for r0 in range(0, H, rows):
        b, n, ly, reg = fb[r0 : r0 + rows], fn[r0 : r0 + rows], fl[r0 : r0 + rows], regions[r0 : r0 + rows]
        is_bg = (b > t_bg) | (n > t_lumen)
        is_nest = ~is_bg & (n > t_nest)
        is_lym = ~is_bg & ~is_nest & (ly > t_lym)
        reg[is_nest] = TUMOUR
        reg[is_lym] = LYMPHOID
        reg[is_bg] = BG
    fields = {
        "bg": fb,
        "nest": fn,
        "lymph": fl,
        "cos": grid.upsample(np.cos(f_angle)),
        "sin": grid.upsample(np.sin(f_angle)),
        "phase": f_phase.upsample(phase_noise),
        "grain": f_phase.upsample(grain_c),
    }
    thresholds = tuple(np.float32(min(t, 1e6)) for t in (t_bg, t_lumen, t_nest, t_lym))
    k = np.float32(2 * np.pi * mpp / 8.0)
    return Layout(regions, grid, f_nest, f_angle, tissue, fields, thresholds, k)


def dominant_tissue(regions: np.ndarray) -> str:
    """Tissue type of a tile from its H&E region map (the largest compartment)."""
    counts = np.bincount(regions.ravel().astype(np.int64), minlength=4)
    code = int(np.argmax(counts[[TUMOUR, STROMA, LYMPHOID, BG]]))
    return TISSUE_TYPES[code]


# ------------------------------------------------------------------------------------------- placement
def lattice(
    shape: tuple[int, int], spacing: float, rng: np.random.Generator, jitter: float = 0.45
) -> np.ndarray:
    """Jittered hexagonal lattice of points (row, col) covering the tile."""
    H, W = shape
    dy = spacing * np.sqrt(3) / 2
    nr, nc = int(H / dy) + 2, int(W / spacing) + 2
    i, j = np.mgrid[0:nr, 0:nc]
    r = i * dy + rng.uniform(-dy, 0)
    c = j * spacing + (i % 2) * spacing / 2 + rng.uniform(-spacing, 0)
    pts = np.stack([r.ravel(), c.ravel()], 1)
    pts += rng.uniform(-jitter, jitter, pts.shape) * spacing
    keep = (pts[:, 0] >= 0) & (pts[:, 0] <= H - 1) & (pts[:, 1] >= 0) & (pts[:, 1] <= W - 1)
    return pts[keep]


def resolve_conflicts(pts: np.ndarray, radius: np.ndarray, factor: float, priority: np.ndarray) -> np.ndarray:
    """Greedy removal so that centres are at least ``factor * (r_i + r_j)`` apart; returns a keep mask."""
    n = len(pts)
    keep = np.ones(n, bool)
    if n < 2:
        return keep
    pairs = cKDTree(pts).query_pairs(2 * factor * float(radius.max()), output_type="ndarray")
    if len(pairs) == 0:
        return keep
    d = np.linalg.norm(pts[pairs[:, 0]] - pts[pairs[:, 1]], axis=1)
    bad = pairs[d < factor * (radius[pairs[:, 0]] + radius[pairs[:, 1]])]
    if len(bad) == 0:
        return keep
    nbrs: dict[int, list[int]] = {}
    for a, b in bad.tolist():
        nbrs.setdefault(a, []).append(b)
        nbrs.setdefault(b, []).append(a)
    for i in sorted(nbrs, key=lambda k: -priority[k]):
        if not keep[i]:
            continue
        for j in nbrs[i]:
            if priority[j] < priority[i]:
                keep[j] = False
    return keep


@dataclass
class Blobs:
    """Parameters of nucleus-like blobs to rasterise (one row per blob, sizes in pixels)."""

    r: np.ndarray
    c: np.ndarray
    a: np.ndarray  # semi-axis along phi
    b: np.ndarray  # other semi-axis
    phi: np.ndarray
    coef: np.ndarray  # (N, 6): cos/sin amplitudes of harmonics 2, 3, 4 of the contour
    amount0: np.ndarray  # hematoxylin
    amount1: np.ndarray  # eosin (H&E) or DAB (IHC)
    rim: np.ndarray
    texture: np.ndarray
    edge: np.ndarray  # soft-edge width in pixels
    nucleolus: np.ndarray  # (N, 4): drow, dcol, sigma, amount (pixels / hematoxylin)
    ids: np.ndarray  # label id (0 = not a nucleus: debris)


def draw_types(
    types: list[NucleusType], n: int, rng: np.random.Generator, mpp: float, faint: float, oof: float
) -> dict[str, np.ndarray]:
    """Draw per-nucleus morphology for ``n`` nuclei, nucleus i drawn from ``types[i]``."""
    get = {
        f: np.array([getattr(t, f) for t in types], float)
        for f in (
            "radius_um",
            "radius_sd",
            "aspect",
            "aspect_sd",
            "irregularity",
            "hem",
            "hem_sd",
            "texture",
            "rim",
            "nucleolus",
        )
    }
    R = (
        np.clip(
            get["radius_um"] + get["radius_sd"] * rng.standard_normal(n),
            0.5 * get["radius_um"],
            1.8 * get["radius_um"],
        )
        / mpp
    )
    asp = np.maximum(1.0, get["aspect"] + get["aspect_sd"] * rng.standard_normal(n))
    a, b = R * np.sqrt(asp), R / np.sqrt(asp)
    coef = rng.standard_normal((n, 6)) * get["irregularity"][:, None] * np.array([1, 1, 0.6, 0.6, 0.4, 0.4])
    hem = np.maximum(0.25, get["hem"] + get["hem_sd"] * rng.standard_normal(n))
    tex = get["texture"] * rng.uniform(0.7, 1.3, n)
    rim = np.clip(get["rim"] * rng.uniform(0.6, 1.4, n), 0, 0.85)
    edge = np.full(n, 0.6)
    is_faint = rng.random(n) < faint
    hem[is_faint] *= rng.uniform(0.3, 0.55, int(is_faint.sum()))
    is_oof = rng.random(n) < oof
    edge[is_oof] = rng.uniform(1.0, 2.0, int(is_oof.sum())) / mpp
    hem[is_oof] *= 0.8
    tex[is_oof] *= 0.3
    nuc = np.zeros((n, 4))
    has = (rng.random(n) < get["nucleolus"]) & ~is_oof
    k = int(has.sum())
    if k:
        ang = rng.uniform(0, 2 * np.pi, k)
        rad = rng.uniform(0, 0.35, k) * b[has]
        nuc[has, 0], nuc[has, 1] = rad * np.sin(ang), rad * np.cos(ang)
        nuc[has, 2] = rng.uniform(0.35, 0.6, k) / mpp
        nuc[has, 3] = hem[has] * rng.uniform(0.8, 1.5, k)
    return {"a": a, "b": b, "coef": coef, "hem": hem, "tex": tex, "rim": rim, "edge": edge, "nucleolus": nuc}


#: Pixels per block in :func:`rasterize` (its temporaries then stay in the CPU cache).
_RASTER_BLOCK = 1 << 15
#: Angles at which the contour bound of :func:`_reach` is sampled.
_N_ANGLES = 128


def _stamp_boxes(blobs: Blobs) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Half-height, half-width of each blob's stamp and its group of similar stamps (same box in a group)."""
    th = np.linspace(0, 2 * np.pi, 24, endpoint=False)
    harm = np.stack([f(m * th) for m in (2, 3, 4) for f in (np.cos, np.sin)])  # (6, 24)
    cmax = 1 + np.max(blobs.coef @ harm, axis=1) + 0.02  # (n,) largest contour factor (approximate)
    k = cmax * (1 + blobs.edge / (0.5 * (blobs.a + blobs.b)))
    A, B = blobs.a * k, blobs.b * k
    sphi, cphi = np.sin(blobs.phi), np.cos(blobs.phi)
    hy = np.ceil(np.sqrt((A * sphi) ** 2 + (B * cphi) ** 2) + 1).astype(np.int64)
    hx = np.ceil(np.sqrt((A * cphi) ** 2 + (B * sphi) ** 2) + 1).astype(np.int64)
    q = max(2, int(np.ceil(max(hy.max(), hx.max()) / 6)))
    _, group = np.unique((hy + q - 1) // q * 1000 + (hx + q - 1) // q, return_inverse=True)
    group = group.reshape(-1)
    n_groups = int(group.max()) + 1
    hy_g = np.zeros(n_groups, np.int64)
    hx_g = np.zeros(n_groups, np.int64)
    np.maximum.at(hy_g, group, hy)
    np.maximum.at(hx_g, group, hx)
    return hy_g[group], hx_g[group], group


def _reach(blobs: Blobs) -> np.ndarray:
    """Radius, in units of the semi-axes, beyond which a blob's soft profile is exactly 0 (a safe bound).

    A pixel at normalised radius ``r = |(p, q)|`` has ``rho >= r / max(contour, 0.3)`` and its soft
    profile is 0 once ``rho >= 1 + edge / h`` (``h`` the mean semi-axis). The contour, a trigonometric
    polynomial of degree 4, is bounded by its maximum over ``_N_ANGLES`` angles plus its Lipschitz constant
    times half the angular step; relative margins of 1e-4 cover float32 rounding by a wide margin.
    """
    th = np.arange(_N_ANGLES) * (2 * np.pi / _N_ANGLES)
    harm = np.stack([f(m * th) for m in (2, 3, 4) for f in (np.cos, np.sin)])  # (6, n_angles)
    lipschitz = np.abs(blobs.coef) @ np.array([2.0, 2.0, 3.0, 3.0, 4.0, 4.0])
    bound = 1 + np.max(blobs.coef @ harm, axis=1) + lipschitz * (np.pi / _N_ANGLES) + 1e-4
    return (1 + blobs.edge / (0.5 * (blobs.a + blobs.b))) * np.maximum(bound, 0.3) * (1 + 1e-4) + 1e-4


def rasterize(
    blobs: Blobs,
    shape: tuple[int, int],
    tex: np.ndarray,
    tex2: np.ndarray,
    acc0: np.ndarray,
    acc1: np.ndarray,
    lab: np.ndarray,
    full_area: np.ndarray,
) -> None:
    """Add blobs' stain amounts into flat accumulators and paint their ids (highest id on top) into ``lab``.

    ``tex`` / ``tex2`` are flat texture fields in [-1, 1] (chromatin, DAB granules); ``full_area[id]``
    receives each nucleus's area before occlusion.

    Notes
    -----
    Blobs of similar size share a stamp box (``_stamp_boxes``) and are visited group by group, each blob
    row by row. Only the pixels of a box within a safe bound of the blob's reach (``_reach``, solved per
    row) are evaluated, as flat float32 arrays in cache-sized blocks; every pixel's arithmetic is the
    same, and the pixels with a non-zero profile reach the float64 ``bincount`` in the same order, as if
    each whole box had been evaluated and masked.
    """
    H, W = shape
    n = len(blobs.r)
    if n == 0:
        return
    f32 = np.float32
    hy, hx, group = _stamp_boxes(blobs)
    order = np.argsort(group, kind="stable")  # group by group, blobs in index order within a group

    def o32(x: np.ndarray) -> np.ndarray:
        return x[order].astype(f32)

    hy, hx = hy[order], hx[order]
    r_o, c_o = blobs.r[order], blobs.c[order]
    r0, c0 = np.round(r_o).astype(np.int64), np.round(c_o).astype(np.int64)
    fr, fc = r_o - np.round(r_o), c_o - np.round(c_o)
    cos64, sin64 = np.cos(blobs.phi)[order], np.sin(blobs.phi)[order]
    a64, b64 = blobs.a[order], blobs.b[order]
    reach = _reach(blobs)[order]

    # ---- rows: blob j spans dy in [-hy_j, hy_j] within the image; per row the columns within its reach
    lo_y = np.maximum(-hy, -r0)
    n_rows = np.maximum(np.minimum(hy, H - 1 - r0) - lo_y + 1, 0)
    rb = np.repeat(np.arange(n), n_rows)  # blob of each row
    first = np.cumsum(n_rows) - n_rows
    dy = lo_y[rb] + (np.arange(len(rb)) - first[rb])
    y = dy - fr[rb]
    cp, sp, ia2, ib2 = cos64[rb], sin64[rb], 1 / a64[rb] ** 2, 1 / b64[rb] ** 2
    alpha = cp * cp * ia2 + sp * sp * ib2  # (p^2 + q^2 <= reach^2) is alpha x^2 + beta x + gamma <= 0
    beta = 2 * y * cp * sp * (ia2 - ib2)
    gamma = y * y * (sp * sp * ia2 + cp * cp * ib2) - reach[rb] ** 2
    disc = beta * beta - 4 * alpha * gamma
    root = np.sqrt(np.maximum(disc, 0))
    lo_x = np.ceil((-beta - root) / (2 * alpha) + fc[rb] - 0.5).astype(np.int64)
    hi_x = np.floor((-beta + root) / (2 * alpha) + fc[rb] + 0.5).astype(np.int64)
    lo_x = np.maximum(lo_x, np.maximum(-hx[rb], -c0[rb]))
    hi_x = np.minimum(hi_x, np.minimum(hx[rb], W - 1 - c0[rb]))
    count = np.where(disc >= 0, np.maximum(hi_x - lo_x + 1, 0), 0)

    # per-blob and per-row float32 values, computed exactly as on a (n, Sy, Sx) stamp
    y32 = dy.astype(f32) - fr.astype(f32)[rb]
    cp32, sp32 = o32(np.cos(blobs.phi)), o32(np.sin(blobs.phi))
    ysp, ycp = y32 * sp32[rb], y32 * cp32[rb]
    shape_par = {  # what decides a pixel's profile (and whether it is kept)
        "a": o32(blobs.a),
        "b": o32(blobs.b),
        "h": o32(0.5 * (blobs.a + blobs.b)),
        "e2": 2 * o32(blobs.edge),
        **{f"co{j}": o32(blobs.coef[:, j]) for j in range(6)},
    }
    rim, amount0, texture = o32(blobs.rim), o32(blobs.amount0), o32(blobs.texture)
    amount1 = o32(blobs.amount1)
    ids_o = blobs.ids[order]
    nuc = blobs.nucleolus[order]
    has_nuc = nuc[:, 3] > 0
    nuc_dr, nuc_dc, nuc_amt = nuc[:, 0].astype(f32), nuc[:, 1].astype(f32), nuc[:, 3].astype(f32)
    nuc_s2 = (2 * nuc[:, 2] ** 2).astype(f32)
    base_idx = (r0[rb] + dy) * W + c0[rb]
    # per (blob, dx) float32 values: X = dx - fc and its products with cos / sin
    width = 2 * hx + 1
    t_off = np.cumsum(width) - width + hx  # table index of (blob j, dx) is t_off[j] + dx
    tb = np.repeat(np.arange(n), width)
    tdx = np.arange(len(tb)) - (t_off - hx)[tb] - hx[tb]
    x32 = tdx.astype(f32) - fc.astype(f32)[tb]
    xcp, xsp = x32 * cp32[tb], x32 * sp32[tb]

    # ---- pixels: (row, dx) in the order of a row-major scan of each blob's box, in blocks of whole blobs
    px_first = np.cumsum(count) - count
    total = int(count.sum())
    px_dx = np.arange(total) - np.repeat(px_first - lo_x, count)
    px_tab = np.repeat(t_off[rb], count) + px_dx  # index into the (blob, dx) tables
    row_first = np.concatenate([first, [len(rb)]])
    blob_px = np.bincount(rb, weights=count, minlength=n).astype(np.int64)  # pixels per blob (exact)
    blob_first = np.concatenate([[0], np.cumsum(blob_px)])
    cuts = np.searchsorted(blob_first[:-1], np.arange(_RASTER_BLOCK, total, _RASTER_BLOCK))
    bounds = np.unique(np.concatenate([[0], cuts, [n]]))
    has_second = bool(np.any(blobs.amount1 > 0))
    idx = np.empty(total, np.intp)  # pixel index and stain amounts of every pixel with a non-zero profile
    v0 = np.empty(total, np.float64)
    v1 = np.empty(total, np.float64) if has_second else v0
    all_lab, all_ids = [], []
    n_px = 0
    for ja, jb in zip(bounds[:-1].tolist(), bounds[1:].tolist(), strict=True):
        s, e = int(blob_first[ja]), int(blob_first[jb])
        if e == s:
            continue
        per_blob = blob_px[ja:jb]
        px = {k: np.repeat(v[ja:jb], per_blob) for k, v in shape_par.items()}  # one value per pixel
        ra, rb_ = int(row_first[ja]), int(row_first[jb])
        lr = np.repeat(np.arange(ra, rb_), count[ra:rb_])  # row of each pixel
        pt = px_tab[s:e]
        p = xcp[pt] + ysp[lr]
        p /= px["a"]
        q = ycp[lr] - xsp[pt]
        q /= px["b"]
        re = np.sqrt(p * p + q * q) + f32(1e-6)
        c1 = p / re
        s1 = q / re
        c2, s2 = 2 * c1 * c1 - 1, 2 * s1 * c1
        contour = 1 + px["co0"] * c2
        contour += px["co1"] * s2
        contour += px["co2"] * (c1 * (4 * c1 * c1 - 3))
        contour += px["co3"] * (s1 * (3 - 4 * s1 * s1))
        contour += px["co4"] * (2 * c2 * c2 - 1)
        contour += px["co5"] * (2 * s2 * c2)
        rho = re / np.maximum(contour, f32(0.3))
        soft = np.clip(0.5 + (1 - rho) * px["h"] / px["e2"], 0, 1)
        m = soft > 0
        lr, bl = lr[m], np.repeat(np.arange(ja, jb), per_blob)[m]  # row and blob of each kept pixel
        soft, rho, pt = soft[m], rho[m], pt[m]
        rho_c = np.minimum(rho, 1)
        prof = soft * (1 - rim[bl] * (1 - rho_c * rho_c))
        base0 = amount0[bl] * prof
        sel = np.flatnonzero(has_nuc[bl])
        if len(sel):
            bs = bl[sel]
            yy = y32[lr[sel]] - nuc_dr[bs]
            xx = x32[pt[sel]] - nuc_dc[bs]
            base0[sel] += nuc_amt[bs] * np.exp(-(yy * yy + xx * xx) / nuc_s2[bs])
        k = len(lr)
        ix = idx[n_px : n_px + k]
        np.add(base_idx[lr], px_dx[s:e][m], out=ix)
        v0[n_px : n_px + k] = base0 + texture[bl] * base0 * tex[ix]
        if has_second:
            v1[n_px : n_px + k] = amount1[bl] * prof * (1 + f32(0.6) * tex2[ix])
        inside = np.flatnonzero((rho < 1) & (ids_o[bl] > 0))
        all_lab.append(ix[inside])
        all_ids.append(ids_o[bl[inside]])
        n_px += k
    idx = idx[:n_px]
    acc0 += np.bincount(idx, weights=v0[:n_px], minlength=H * W).astype(f32)
    if has_second:
        acc1 += np.bincount(idx, weights=v1[:n_px], minlength=H * W).astype(f32)
    lab_idx = np.concatenate(all_lab) if all_lab else np.zeros(0, np.intp)
    ids = np.concatenate(all_ids) if all_ids else np.zeros(0, np.int64)
    np.maximum.at(lab, lab_idx, ids.astype(lab.dtype))
    full_area += np.bincount(ids, minlength=len(full_area))[: len(full_area)]


def debris(layout: Layout, mpp: float, per_100um: float, rng: np.random.Generator, ihc: bool) -> Blobs:
    """Unlabelled fragments: dark karyorrhectic debris and red blood cells."""
    H, W = layout.regions.shape
    n = int(rng.poisson(per_100um * H * W * mpp * mpp / 1e4))
    if n == 0:
        return empty_blobs()
    r = rng.uniform(0, H - 1, n)
    c = rng.uniform(0, W - 1, n)
    rbc = rng.random(n) < 0.35
    # fragments come in small clusters (karyorrhexis)
    R = np.where(rbc, rng.uniform(3.2, 3.8, n), rng.uniform(0.5, 1.7, n)) / mpp
    asp = np.where(rbc, rng.uniform(1.0, 1.25, n), rng.uniform(1.0, 2.2, n))
    a, b = R * np.sqrt(asp), R / np.sqrt(asp)
    coef = rng.standard_normal((n, 6)) * np.where(rbc, 0.02, 0.18)[:, None]
    h = np.where(rbc, 0.02, rng.uniform(1.0, 2.2, n))
    x = np.where(rbc, rng.uniform(0.8, 1.3, n), 0.0)
    if ihc:  # RBCs take a little DAB (endogenous peroxidase); some fragments are brown
        x = np.where(
            rbc, rng.uniform(0.15, 0.35, n), np.where(rng.random(n) < 0.4, rng.uniform(0.6, 1.3, n), 0.0)
        )
        h = np.where(rbc, 0.05, np.where(x > 0, 0.2, h))
    rim = np.where(rbc, 0.55, 0.1)
    return Blobs(
        r,
        c,
        a,
        b,
        rng.uniform(0, np.pi, n),
        coef,
        h,
        x,
        rim,
        np.full(n, 0.2),
        np.full(n, 0.6),
        np.zeros((n, 4)),
        np.zeros(n, np.int64),
    )


def empty_blobs() -> Blobs:
    """Blobs with no rows."""
    z = np.zeros(0)
    return Blobs(z, z, z, z, z, np.zeros((0, 6)), z, z, z, z, z, np.zeros((0, 4)), np.zeros(0, np.int64))


def concat_blobs(parts: list[Blobs]) -> Blobs:
    """Concatenate blob tables."""
    fields = Blobs.__dataclass_fields__
    return Blobs(**{f: np.concatenate([getattr(p, f) for p in parts]) for f in fields})


def fold_params(shape: tuple[int, int], mpp: float, rng: np.random.Generator) -> tuple[float, ...]:
    """Draw a tissue fold: (angle, row, col, width) of a band along a random line."""
    H, W = shape
    ang = rng.uniform(0, np.pi)
    r0, c0 = rng.uniform(0, H), rng.uniform(0, W)
    width = rng.uniform(12, 35) / mpp
    return ang, r0, c0, width


def fold_band(params: tuple[float, ...], rows: tuple[int, int], width_px: int, mpp: float) -> np.ndarray:
    """Soft band (values in [0, 1]) of a fold (see :func:`fold_params`) on rows ``rows[0]:rows[1]``."""
    ang, r0, c0, width = params
    yy = np.arange(rows[0], rows[1], dtype=np.float32)[:, None] - np.float32(r0)
    xx = np.arange(width_px, dtype=np.float32)[None, :] - np.float32(c0)
    dist = np.abs(xx * np.float32(np.sin(ang)) - yy * np.float32(np.cos(ang)))
    return soft_step(np.float32(width / 2) - dist, 2.0 / mpp)


def type_mixture(difficulty: Difficulty) -> tuple[float, float]:
    """(blend towards the class mean, probability of borrowing another class's look) for class_overlap."""
    return 0.45 * difficulty.class_overlap, 0.3 * difficulty.class_overlap
