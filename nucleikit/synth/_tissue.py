"""Tissue layout, nucleus placement and rasterisation (private; see :mod:`nucleikit.synth`)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.spatial import cKDTree

from ._fields import CoarseGrid, soft_step
from ._types import TISSUE_TYPES, Difficulty, NucleusType, Organ

# Region codes of the H&E layout (HE_REGIONS order).
BG, TUMOUR, STROMA, LYMPHOID = 0, 1, 2, 3
# Tissue type -> region code that dominates it.
_TISSUE_REGION = {"tumour": TUMOUR, "stroma": STROMA, "lymphocyte": LYMPHOID, "lumen": BG}


@dataclass
class Layout:
    """Where the tissue compartments are, as hard regions and soft memberships."""

    regions: np.ndarray  # (H, W) int8, codes BG/TUMOUR/STROMA/LYMPHOID
    soft: dict[str, np.ndarray]  # "bg", "tumour", "stroma", "lymphoid": (H, W) float32 memberships
    fibres: np.ndarray  # (H, W) float32 in [0, 1], collagen fibre pattern
    grain: np.ndarray  # (H, W) float32 medium-scale texture in [-1, 1]
    grid: CoarseGrid
    f_nest: np.ndarray  # coarse tumour-nest field (for gland orientation)
    f_angle: np.ndarray  # coarse fibre angle (radians)
    tissue_type: str


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
    is_bg = (fb > t_bg) | (fn > t_lumen)
    is_nest = ~is_bg & (fn > t_nest)
    is_lym = ~is_bg & ~is_nest & (fl > t_lym)
    regions = np.full(shape, STROMA, dtype=np.int8)
    regions[is_nest] = TUMOUR
    regions[is_lym] = LYMPHOID
    regions[is_bg] = BG

    w = 0.12  # softness of compartment borders (in field units)
    s_bg = 1 - (1 - soft_step(fb - np.float32(min(t_bg, 1e6)), w)) * (
        1 - soft_step(fn - np.float32(min(t_lumen, 1e6)), w)
    )
    s_nest = (1 - s_bg) * soft_step(fn - np.float32(min(t_nest, 1e6)), w)
    s_lym = (1 - s_bg - s_nest) * soft_step(fl - np.float32(min(t_lym, 1e6)), w)
    s_str = np.clip(1 - s_bg - s_nest - s_lym, 0, 1)

    # collagen: dense pink bundles split by thin, wavy, broken clefts along a slowly turning direction
    k = np.float32(2 * np.pi * mpp / 8.0)  # one cleft every ~8 micrometres
    yy = np.arange(H, dtype=np.float32)[:, None] * k
    xx = np.arange(W, dtype=np.float32)[None, :] * k
    # cos and sin of the slowly turning fibre angle, interpolated from the grid (cheaper than full-res trig)
    phase = xx * grid.upsample(np.cos(f_angle))
    phase += yy * grid.upsample(np.sin(f_angle))
    phase += np.float32(2.2) * f_phase.upsample(phase_noise)
    grain = np.clip(f_phase.upsample(grain_c) * np.float32(0.6), -1, 1)
    wave = np.cos(phase)
    cleft = np.clip((wave - np.float32(0.6)) * np.float32(1 / 0.4), 0, 1)  # thin pale clefts
    cleft *= np.clip(0.3 + 1.5 * grain, 0, 1)
    strand = np.clip((-wave - np.float32(0.75)) * np.float32(1 / 0.25), 0, 1)  # thin dense strands
    fibres = (1 - 0.6 * cleft + 0.25 * strand) * (0.85 + 0.15 * grain)
    return Layout(
        regions,
        {"bg": s_bg, "tumour": s_nest, "stroma": s_str, "lymphoid": s_lym},
        fibres.astype(np.float32),
        grain.astype(np.float32),
        grid,
        f_nest,
        f_angle,
        tissue,
    )


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
    """
    H, W = shape
    n = len(blobs.r)
    if n == 0:
        return
    f32 = np.float32
    # largest contour factor of each blob, from its harmonics sampled at 24 angles
    th = np.linspace(0, 2 * np.pi, 24, endpoint=False)
    harm = np.stack([f(m * th) for m in (2, 3, 4) for f in (np.cos, np.sin)])  # (6, 24)
    cmax = 1 + np.max(blobs.coef @ harm, axis=1) + 0.02  # (n,)
    k = cmax * (1 + blobs.edge / (0.5 * (blobs.a + blobs.b)))
    A, B = blobs.a * k, blobs.b * k
    sphi, cphi = np.sin(blobs.phi), np.cos(blobs.phi)
    hy = np.ceil(np.sqrt((A * sphi) ** 2 + (B * cphi) ** 2) + 1).astype(np.int64)
    hx = np.ceil(np.sqrt((A * cphi) ** 2 + (B * sphi) ** 2) + 1).astype(np.int64)
    q = max(2, int(np.ceil(max(hy.max(), hx.max()) / 6)))
    _, group = np.unique((hy + q - 1) // q * 1000 + (hx + q - 1) // q, return_inverse=True)
    has_second = bool(np.any(blobs.amount1 > 0))
    all_idx, all_v0, all_v1, all_lab, all_ids = [], [], [], [], []

    def col(x: np.ndarray, sel: np.ndarray) -> np.ndarray:
        return x[sel].astype(f32)[:, None, None]

    # stamps of similar bounding boxes are processed together: every per-pixel quantity is computed on the
    # (n, Sy, Sx) stamps by broadcasting per-blob parameters, then compressed to the non-zero pixels once
    for g in range(int(group.max()) + 1):
        chunk = np.flatnonzero(group == g)
        if len(chunk) == 0:
            continue
        hyc, hxc = int(hy[chunk].max()), int(hx[chunk].max())
        dy, dx = np.arange(-hyc, hyc + 1), np.arange(-hxc, hxc + 1)
        r0 = np.round(blobs.r[chunk]).astype(np.int64)
        c0 = np.round(blobs.c[chunk]).astype(np.int64)
        Y = dy.astype(f32)[None, :, None] - col(blobs.r - np.round(blobs.r), chunk)  # (n, Sy, 1)
        X = dx.astype(f32)[None, None, :] - col(blobs.c - np.round(blobs.c), chunk)  # (n, 1, Sx)
        cp, sp = col(np.cos(blobs.phi), chunk), col(np.sin(blobs.phi), chunk)
        p = (X * cp + Y * sp) / col(blobs.a, chunk)  # (n, S, S) along the long axis, in units of a
        q = (Y * cp - X * sp) / col(blobs.b, chunk)
        re = np.sqrt(p * p + q * q) + f32(1e-6)
        c1 = p / re
        s1 = q / re
        c2, s2 = 2 * c1 * c1 - 1, 2 * s1 * c1
        co = [col(blobs.coef[:, j], chunk) for j in range(6)]
        contour = (
            1
            + co[0] * c2
            + co[1] * s2
            + co[2] * (c1 * (4 * c1 * c1 - 3))
            + co[3] * (s1 * (3 - 4 * s1 * s1))
            + co[4] * (2 * c2 * c2 - 1)
            + co[5] * (2 * s2 * c2)
        )
        rho = re / np.maximum(contour, f32(0.3))
        edge2 = 2 * col(blobs.edge, chunk)
        soft = np.clip(0.5 + (1 - rho) * col(0.5 * (blobs.a + blobs.b), chunk) / edge2, 0, 1)
        rho_c = np.minimum(rho, 1)
        prof = soft * (1 - col(blobs.rim, chunk) * (1 - rho_c * rho_c))
        base0 = col(blobs.amount0, chunk) * prof
        nuc = blobs.nucleolus[chunk]
        has = np.flatnonzero(nuc[:, 3] > 0)
        if len(has):
            yy = Y[has] - nuc[has, 0].astype(f32)[:, None, None]
            xx = X[has] - nuc[has, 1].astype(f32)[:, None, None]
            s2n = (2 * nuc[has, 2] ** 2).astype(f32)[:, None, None]
            base0[has] += nuc[has, 3].astype(f32)[:, None, None] * np.exp(-(yy * yy + xx * xx) / s2n)
        rows = r0[:, None, None] + dy[None, :, None]
        cols = c0[:, None, None] + dx[None, None, :]
        m = (soft > 0) & (rows >= 0) & (rows < H) & (cols >= 0) & (cols < W)
        idx = (rows * W + cols)[m]
        t = tex[idx]
        tex_amp = col(blobs.texture, chunk) * base0
        all_idx.append(idx)
        all_v0.append(base0[m] + tex_amp[m] * t)
        if has_second:
            b1 = col(blobs.amount1, chunk) * prof
            all_v1.append(b1[m] * (1 + f32(0.6) * tex2[idx]))
        ids = blobs.ids[chunk]
        if ids.max() > 0:
            inside = (rho < 1) & m & (ids > 0)[:, None, None]
            all_lab.append((rows * W + cols)[inside])
            all_ids.append(np.broadcast_to(ids[:, None, None], inside.shape)[inside])
    idx = np.concatenate(all_idx)
    acc0 += np.bincount(idx, weights=np.concatenate(all_v0), minlength=H * W).astype(f32)
    if has_second:
        acc1 += np.bincount(idx, weights=np.concatenate(all_v1), minlength=H * W).astype(f32)
    if all_ids:
        lab_idx, ids = np.concatenate(all_lab), np.concatenate(all_ids)
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


def fold_band(shape: tuple[int, int], mpp: float, rng: np.random.Generator) -> np.ndarray:
    """Return a soft band (values in [0, 1]) along a random line, where a tissue fold doubles the section."""
    H, W = shape
    ang = rng.uniform(0, np.pi)
    r0, c0 = rng.uniform(0, H), rng.uniform(0, W)
    width = rng.uniform(12, 35) / mpp
    yy = np.arange(H, dtype=np.float32)[:, None] - np.float32(r0)
    xx = np.arange(W, dtype=np.float32)[None, :] - np.float32(c0)
    dist = np.abs(xx * np.float32(np.sin(ang)) - yy * np.float32(np.cos(ang)))
    return soft_step(np.float32(width / 2) - dist, 2.0 / mpp)


def type_mixture(difficulty: Difficulty) -> tuple[float, float]:
    """(blend towards the class mean, probability of borrowing another class's look) for class_overlap."""
    return 0.45 * difficulty.class_overlap, 0.3 * difficulty.class_overlap
