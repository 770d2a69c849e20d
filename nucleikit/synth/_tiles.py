"""Tile generators and the Beer-Lambert renderer (see :mod:`nucleikit.synth`)."""

from __future__ import annotations

import io
import numbers
from typing import Any

import numpy as np

from .._checks import check_positive, check_probability, describe
from . import _tissue as T
from ._fields import block_rows, blur
from ._types import (
    DEFAULT_HE_STYLE,
    DEFAULT_IHC_STYLE,
    HE_CLASSES,
    HE_REGIONS,
    KI67_CLASSES,
    KI67_REGIONS,
    TISSUE_TYPES,
    Difficulty,
    NucleusType,
    StainStyle,
    Tile,
    Truth,
    get_difficulty,
    get_organ,
    get_style,
    jitter_style,
)

__all__ = ["he_tile", "ki67_tile", "render", "tile_steps"]

# H&E class codes
_TUM, _LYM, _FIB = 0, 1, 2
# non-tumour Ki67 positives: proliferating lymphocytes and stromal cells
_NON_TUMOUR_POSITIVE = 0.08


def _check_shape(shape: Any) -> tuple[int, int]:
    if (
        not isinstance(shape, (tuple, list))
        or len(shape) != 2
        or not all(isinstance(s, numbers.Integral) and not isinstance(s, bool) for s in shape)
    ):
        raise TypeError(f"shape: expected a tuple (H, W) of two integers, got {describe(shape)}")
    if min(shape) < 16:
        raise ValueError(f"shape: expected H and W >= 16 pixels, got {tuple(shape)}")
    return int(shape[0]), int(shape[1])


# --------------------------------------------------------------------------------------------- render
def _illumination(H: int, W: int, angle: float, strength: float) -> np.ndarray:
    """Uneven illumination (a gradient along ``angle`` and a vignette), float32 (H, W), in row blocks."""
    f32 = np.float32
    yy = np.linspace(-1, 1, H, dtype=f32)[:, None]
    xx = np.linspace(-1, 1, W, dtype=f32)[None, :]
    xc, ys, s = xx * f32(np.cos(angle)), yy * f32(np.sin(angle)), f32(strength)
    xx2 = xx * xx
    illum = np.empty((H, W), f32)
    rows = block_rows(W)
    for r0 in range(0, H, rows):
        r1 = min(r0 + rows, H)
        ramp = 0.5 + 0.5 * (xc + ys[r0:r1]) / f32(1.42)
        vign = (xx2 + yy[r0:r1] * yy[r0:r1]) * f32(0.5)
        illum[r0:r1] = 1 - s * (0.6 * ramp + 0.4 * vign)
    return illum


def _render(
    planes: list[np.ndarray],
    stains: np.ndarray,
    background: np.ndarray,
    difficulty: Difficulty,
    mpp: float,
    rng: np.random.Generator,
    as_float: bool,
) -> np.ndarray:
    """Render concentration planes (each (H, W) float32, C-contiguous; not modified) to an RGB image."""
    H, W = planes[0].shape
    n = len(planes)
    f32 = np.float32
    sigma = difficulty.blur_um / mpp
    if sigma > 0.05:
        planes = [blur(pl, sigma) for pl in planes]
    illum = None
    if difficulty.illumination > 0:
        illum = _illumination(H, W, rng.uniform(0, 2 * np.pi), difficulty.illumination)
    out = np.empty((H, W, 3), f32 if as_float else np.uint8)
    rows = block_rows(W)
    amp = f32(difficulty.noise * np.sqrt(12.0))
    # one colour plane at a time (the noise of plane ch is drawn after all of plane ch - 1), in row blocks:
    # OD = sum_k c_k S_k,ch, I = I0 exp(-OD)
    for ch in range(3):
        for r0 in range(0, H, rows):
            r1 = min(r0 + rows, H)
            od = planes[0][r0:r1] * f32(-stains[0, ch])
            for k in range(1, n):
                od -= planes[k][r0:r1] * f32(stains[k, ch])
            img = np.exp(od, out=od)
            img *= f32(background[ch])
            if illum is not None:
                img *= illum[r0:r1]
            if difficulty.noise > 0:
                # shot-like noise: standard deviation noise * sqrt(I) (uniform, variance-matched)
                u = rng.random((r1 - r0, W), dtype=f32)
                u -= f32(0.5)
                u *= np.sqrt(img)
                u *= amp
                img += u
            np.clip(img, 0, 1, out=img)
            if not as_float:
                img *= f32(255)
                img += f32(0.5)
            out[r0:r1, :, ch] = img  # float32 -> uint8 truncates, like astype
    if as_float or difficulty.jpeg_quality <= 0:
        return out
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(out).save(buf, format="JPEG", quality=int(difficulty.jpeg_quality))
    buf.seek(0)
    decoded = Image.open(buf)
    if decoded.mode != "RGB":
        decoded = decoded.convert("RGB")
    return np.array(decoded)


def render(
    truth: Truth,
    style: str | StainStyle | None = None,
    *,
    difficulty: str | Difficulty | None = None,
    rng: Any = None,
    as_float: bool = False,
) -> np.ndarray:
    r"""Render a tile's tissue (its stain concentrations) by Beer-Lambert mixing, in any stain style.

    The same tissue rendered in two styles has identical labels, so one can serve as the true target
    for stain normalization of the other.

    Parameters
    ----------
    truth : Truth
        The tissue (``truth.concentrations`` in ``truth.style``'s stain amounts).
    style : str or StainStyle, optional
        Style to render in; default ``truth.style``. Must be of the same kind (H&E or H-DAB).
    difficulty : Difficulty or str, optional
        Optics (blur, noise, illumination, JPEG) to apply; default ``DEFAULT_DIFFICULTY``. Use
        ``"clean"`` for an exact Beer-Lambert image.
    rng : int, Generator or None
        Random source for noise and illumination.
    as_float : bool
        Return float32 in [0, 1] before quantisation (and without JPEG) instead of uint8.

    Returns
    -------
    ndarray of shape (H, W, 3)
        uint8 RGB (or float32 with ``as_float``).

    Notes
    -----
    With concentrations :math:`C` (H, W, n) in the target style's amounts,
    :math:`C' = C \\cdot s_{new} / s_{old}` (per stain), and

    .. math:: I = I_0 \\, \\exp(-C' S)

    with :math:`S` the (n, 3) stain matrix and :math:`I_0` the background transmission, followed by
    optical blur (on :math:`C'`), illumination, sensor noise, quantisation and JPEG.
    """
    if not isinstance(truth, Truth):
        raise TypeError(f"truth: expected a nucleikit.synth.Truth, got {describe(truth)}")
    style = truth.style if style is None else get_style(style)
    n = truth.concentrations.shape[-1]
    if style.stains.shape[0] != n or style.kind != truth.style.kind:
        raise ValueError(
            f"style: expected a {truth.style.kind} style with {n} stains like the tile's "
            f"({truth.style.name}), got {style.name} ({style.kind}, {style.stains.shape[0]} stains)"
        )
    scale = (style.intensity / truth.style.intensity).astype(np.float32)
    planes = [truth.concentrations[..., k] * scale[k] for k in range(n)]  # = (concentrations * scale)[..., k]
    return _render(
        planes,
        style.stains,
        style.background,
        get_difficulty(difficulty),
        truth.mpp,
        np.random.default_rng(rng),
        as_float,
    )


# ---------------------------------------------------------------------------------------------- build
def _mean_type(types: tuple[NucleusType, ...]) -> NucleusType:
    out = types[0]
    for i, t in enumerate(types[1:], start=2):
        out = out.blend(t, 1 / i)
    return out


def _build(
    kind: str,
    shape: Any,
    style: Any,
    organ: Any,
    tissue: str | None,
    density: float,
    mpp: float,
    difficulty: Any,
    rng: Any,
    ki67_index: float = 0.3,
    steps: bool = False,
):
    shape = _check_shape(shape)
    H, W = shape
    check_positive(density, "density", allow_zero=True)
    check_positive(mpp, "mpp")
    if not 0.1 <= mpp <= 4:
        raise ValueError(f"mpp: expected microns per pixel in [0.1, 4], got {mpp!r}")
    if tissue is not None and tissue not in TISSUE_TYPES:
        raise ValueError(f"tissue: expected None or one of {', '.join(TISSUE_TYPES)}, got {tissue!r}")
    diff = get_difficulty(difficulty)
    organ = get_organ(organ)
    style = get_style(style)
    ihc = kind == "ki67"
    if style.kind != ("ihc" if ihc else "he"):
        want = "an IHC (H-DAB) style such as 'ihc_lab_a'" if ihc else "an H&E style such as 'he_lab_a'"
        raise ValueError(f"style: expected {want}, got {style.name!r} ({style.kind})")
    rng = np.random.default_rng(rng)
    if diff.stain_jitter > 0:
        style = jitter_style(style, diff.stain_jitter, rng=rng)
    layout = T.make_layout(shape, mpp, organ, tissue, rng)
    reg = layout.regions

    # ---- nucleus sites: lattices per class, accepted by region, then spaced apart
    sp = 1.3 - 0.35 * diff.touching
    types = organ.he_types
    sites, cls, site_reg = [], [], []
    for c, spacing, fills in (
        (_TUM, 2 * types[_TUM].radius_um * (sp - 0.12), {T.TUMOUR: organ.tumour_fill}),
        (
            _LYM,
            2 * types[_LYM].radius_um * sp * 1.05,
            {T.LYMPHOID: organ.lymph_fill, T.STROMA: organ.stroma_lymph, T.TUMOUR: organ.tumour_lymph},
        ),
        (_FIB, 2 * types[_FIB].radius_um * 1.7, {T.STROMA: organ.stroma_fibro}),
    ):
        pts = T.lattice(shape, spacing / mpp, rng)
        r_at = reg[np.round(pts[:, 0]).astype(int), np.round(pts[:, 1]).astype(int)]
        p = np.zeros(len(pts))
        for code, fill in fills.items():
            p[r_at == code] = fill
        keep = rng.random(len(pts)) < np.clip(p * density, 0, 1)
        sites.append(pts[keep])
        cls.append(np.full(int(keep.sum()), c))
        site_reg.append(r_at[keep])
    pts = np.concatenate(sites)
    cls = np.concatenate(cls)
    inst_region = np.concatenate(site_reg).astype(np.int64)
    n = len(pts)

    # ---- appearance: own type, blended towards the mean; some borrow another class's look
    blend, borrow = T.type_mixture(diff)
    mean = _mean_type(types)
    look = cls.copy()
    swap = rng.random(n) < borrow
    look[swap] = (cls[swap] + rng.integers(1, 3, int(swap.sum()))) % 3
    is_mac = (cls == _LYM) & (look == _LYM) & (rng.random(n) < organ.macrophage_fraction)
    # the 4 possible blended looks
    cache = {k: types[k].blend(mean, blend) for k in range(3)}
    cache[3] = organ.macrophage.blend(mean, blend)
    tlist = [cache[3] if is_mac[i] else cache[int(look[i])] for i in range(n)]
    m = T.draw_types(tlist, n, rng, mpp, diff.faint, diff.out_of_focus) if n else None

    # orientation: columnar tumour nuclei perpendicular to the gland border, spindles along the fibres
    phi = rng.uniform(0, np.pi, n)
    if n:
        tum = cls == _TUM
        if organ.gland > 0.5 and tum.any():
            gy, gx = np.gradient(layout.f_nest)
            ang = np.arctan2(
                layout.grid.sample(gy, pts[tum, 0], pts[tum, 1]),
                layout.grid.sample(gx, pts[tum, 0], pts[tum, 1]),
            )
            phi[tum] = ang + rng.normal(0, 0.25, int(tum.sum()))
        fib = cls == _FIB
        if fib.any():
            th = layout.grid.sample(layout.f_angle, pts[fib, 0], pts[fib, 1])
            phi[fib] = th + np.pi / 2 + rng.normal(0, 0.15, int(fib.sum()))
        radius = np.sqrt(m["a"] * m["b"])
        keep = T.resolve_conflicts(pts, radius, 0.95 - 0.25 * diff.touching, rng.random(n))
    else:
        keep = np.zeros(0, bool)
    pts, cls, phi, inst_region = pts[keep], cls[keep], phi[keep], inst_region[keep]
    if n:
        m = {k: v[keep] for k, v in m.items()}
    n = len(pts)

    # ---- stain amounts per nucleus
    positive = np.zeros(n, bool)
    amount1 = np.zeros(n)
    hem = m["hem"] if n else np.zeros(0)
    if ihc and n:
        tum = cls == _TUM
        positive = np.where(tum, rng.random(n) < ki67_index, rng.random(n) < _NON_TUMOUR_POSITIVE)
        k = int(positive.sum())
        weak = rng.random(k) < 0.2
        amount1[positive] = np.where(weak, rng.uniform(0.3, 0.55, k), rng.uniform(0.65, 1.4, k))
        hem = hem * 0.75
        hem[positive] *= 0.45
    ids = rng.permutation(n) + 1  # z-order: higher ids are drawn on top
    nuclei = T.Blobs(
        pts[:, 0],
        pts[:, 1],
        m["a"] if n else np.zeros(0),
        m["b"] if n else np.zeros(0),
        phi,
        m["coef"] if n else np.zeros((0, 6)),
        hem,
        amount1,
        m["rim"] if n else np.zeros(0),
        m["tex"] if n else np.zeros(0),
        m["edge"] if n else np.zeros(0),
        m["nucleolus"] if n else np.zeros((0, 4)),
        ids.astype(np.int64),
    )
    junk = T.debris(layout, mpp, diff.debris, rng, ihc)

    # ---- rasterise
    half = rng.random(((H + 1) // 2, (W + 1) // 2), dtype=np.float32) * 2 - 1
    clump = np.float32(1.1) * half  # 2 x 2 chromatin clumps: pixel (i, j) gets clump[i // 2, j // 2]
    tex = rng.random((H, W), dtype=np.float32)
    tex *= np.float32(0.9)
    tex -= np.float32(0.45)
    for di in (0, 1):
        for dj in (0, 1):
            tex[di::2, dj::2] += clump[: (H - di + 1) // 2, : (W - dj + 1) // 2]
    tex = tex.ravel()
    tex2 = np.roll(tex, 7919) if ihc else tex  # DAB granules (the H&E second stain only paints red cells)
    acc0 = np.zeros(H * W, np.float32)
    acc1 = np.zeros(H * W, np.float32)
    lab = np.zeros(H * W, np.int32)
    full_area = np.zeros(n + 1, np.int64)
    T.rasterize(T.concat_blobs([junk, nuclei]), shape, tex, tex2, acc0, acc1, lab, full_area)

    # ---- tissue background stains, plus the nuclei, in row blocks
    fold = T.fold_params(shape, mpp, rng) if diff.fold > 0 and rng.random() < diff.fold else None
    f32 = np.float32
    intensity = (f32(style.intensity[0]), f32(style.intensity[1]))
    planes = [np.empty(shape, f32), np.empty(shape, f32)]  # concentrations in the style's stain amounts
    conc = np.empty((H, W, 2), f32)
    acc = (acc0.reshape(shape), acc1.reshape(shape))
    rows = block_rows(W)
    for r0 in range(0, H, rows):
        r1 = min(r0 + rows, H)
        s, fib_map, grain = layout.maps(r0, r1)
        if ihc:
            h_bg = (
                s["tumour"] * (0.2 * (1 + 0.3 * grain))
                + s["stroma"] * (0.22 * fib_map)
                + s["lymphoid"] * 0.15
            )
            x_bg = (s["tumour"] + 0.5 * s["stroma"]) * (0.03 * (1 + 0.5 * grain))
        else:
            h_bg = s["tumour"] * (0.26 * (1 + 0.3 * grain)) + s["stroma"] * (0.05 * fib_map)
            h_bg += s["lymphoid"] * 0.12
            x_bg = (
                s["tumour"] * (organ.cytoplasm * (0.85 + 0.3 * grain))
                + s["stroma"] * (organ.stroma * fib_map)
                + s["lymphoid"] * 0.2
                + s["bg"] * (0.04 * (1 + grain))
            )
        c = [h_bg + acc[0][r0:r1], x_bg + acc[1][r0:r1]]
        if fold is not None:  # a fold doubles the section
            band = 1 + f32(0.8) * T.fold_band(fold, (r0, r1), W, mpp) * (1 - s["bg"])
            c = [c[0] * band, c[1] * band]
        for k in range(2):
            np.multiply(c[k], intensity[k], out=planes[k][r0:r1])
            conc[r0:r1, :, k] = planes[k][r0:r1]

    # ---- instances: drop nuclei hidden behind others, relabel 1..N, centroids inside
    nz = np.flatnonzero(lab)  # nucleus pixels, in raster order
    lv = lab[nz]
    counts = np.bincount(lv, minlength=n + 1)
    ok = (counts[1:] >= 3) & (counts[1:] >= 0.3 * np.maximum(full_area[1:], 1))
    lut = np.zeros(n + 1, np.int32)
    lut[1:][ok] = np.arange(1, int(ok.sum()) + 1, dtype=np.int32)
    lv = lut[lv]
    lab[nz] = lv
    nz, lv = nz[lv > 0], lv[lv > 0]
    order_of_id = np.argsort(ids)  # nucleus index of id 1, 2, ...
    kept_idx = order_of_id[ok]  # nucleus index of new label 1..N
    N = len(kept_idx)
    labels = lab.reshape(shape)
    cen = np.zeros((N, 2))
    if N:
        rr, cc = np.divmod(nz, W)
        cnt = np.bincount(lv, minlength=N + 1)[1:].astype(np.float64)
        cen[:, 0] = np.bincount(lv, weights=rr, minlength=N + 1)[1:] / cnt
        cen[:, 1] = np.bincount(lv, weights=cc, minlength=N + 1)[1:] / cnt
        ri = np.clip(np.round(cen[:, 0]).astype(int), 0, H - 1)
        ci = np.clip(np.round(cen[:, 1]).astype(int), 0, W - 1)
        for i in np.flatnonzero(labels[ri, ci] != np.arange(1, N + 1)):
            rr, cc = np.divmod(nz[lv == i + 1], W)  # the pixels of label i + 1, in raster order
            j = np.argmin((rr - cen[i, 0]) ** 2 + (cc - cen[i, 1]) ** 2)
            cen[i] = rr[j], cc[j]
    classes = cls[kept_idx].astype(np.int64)
    inst_region = inst_region[kept_idx]
    positive = positive[kept_idx]

    if ihc:
        regions = np.array([0, 1, 2, 2], np.int64)[reg]
        inst_region = np.array([0, 1, 2, 2], np.int64)[inst_region]
        classes = np.where(classes == _TUM, np.where(positive, 0, 1), 2).astype(np.int64)
        class_names, region_names = KI67_CLASSES, KI67_REGIONS
    else:
        regions = reg.astype(np.int64)
        class_names, region_names = HE_CLASSES, HE_REGIONS
    # a nucleus's pixels carry the region it belongs to
    regions.reshape(-1)[nz] = np.concatenate([[0], inst_region])[lv]
    truth = Truth(
        labels=labels,
        centroids_rc=cen,
        classes=classes,
        class_names=class_names,
        regions=regions,
        region_names=region_names,
        tissue_type=layout.tissue_type,
        stain_matrix=style.stains.copy(),
        concentrations=conc,
        style=style,
        mpp=float(mpp),
        instance_regions=inst_region,
        dab_positive=positive,
        organ=organ.name,
    )
    image = _render(planes, style.stains, style.background, diff, mpp, rng, as_float=False)
    tile = Tile(image=image, truth=truth)
    if not steps:
        return tile
    clean = _render(planes, style.stains, style.background, get_difficulty("clean"), mpp, rng, as_float=False)
    names = ("hematoxylin", "DAB") if ihc else ("hematoxylin", "eosin")
    return tile, {
        "regions": regions,
        "nuclei": labels,
        f"{names[1]} (tissue)": planes[1].copy(),
        f"{names[0]} (nuclei + tissue)": planes[0].copy(),
        "Beer-Lambert, no optics": clean,
        "with optics (final)": image,
    }


# -------------------------------------------------------------------------------------------- public
def he_tile(
    shape: tuple[int, int] = (256, 256),
    *,
    style: str | StainStyle = DEFAULT_HE_STYLE,
    organ: str = "breast",
    tissue: str | None = None,
    density: float = 1.0,
    mpp: float = 0.5,
    difficulty: str | Difficulty | None = None,
    rng: Any = None,
) -> Tile:
    """Generate a synthetic H&E tile with full ground truth.

    Parameters
    ----------
    shape : tuple of int
        (H, W) in pixels, each >= 16.
    style : str or StainStyle
        Stain style (see ``STYLES``); jittered per tile by ``difficulty.stain_jitter``.
    organ : str or Organ
        ``"breast"``, ``"colon"`` or ``"prostate"`` (see ``ORGANS``): class mix, sizes, textures.
    tissue : str, optional
        Dominant tissue, one of ``TISSUE_TYPES``; None draws it from the organ's mix.
    density : float
        Multiplies the probability of a nucleus at each site (1 = the organ's nominal density).
    mpp : float
        Microns per pixel (0.5 ~ 20x, 0.25 ~ 40x). Every length in micrometres scales with it.
    difficulty : Difficulty or str, optional
        Default ``DEFAULT_DIFFICULTY`` (the calibrated one); presets ``"clean"``, ``"easy"``, ``"hard"``.
    rng : int, Generator or None
        Random source; the same seed gives the same tile.

    Returns
    -------
    Tile
        ``tile.image`` (H, W, 3) uint8 and ``tile.truth`` (:class:`Truth`), with class names
        ``("tumour", "lymphocyte", "fibroblast")`` and regions ``("background", "tumour", "stroma",
        "lymphoid")``.

    Notes
    -----
    Tissue compartments come from thresholded smooth random fields (their area fractions follow the
    tissue type); nuclei sit on jittered lattices accepted by compartment, are spaced apart greedily
    (closer with ``difficulty.touching``), drawn as perturbed ellipses with chromatin texture, rims and
    nucleoli, and rendered with the tissue's stains by Beer-Lambert (see :func:`render`).
    """
    return _build("he", shape, style, organ, tissue, density, mpp, difficulty, rng)


def ki67_tile(
    shape: tuple[int, int] = (256, 256),
    *,
    ki67_index: float = 0.3,
    style: str | StainStyle = DEFAULT_IHC_STYLE,
    organ: str = "breast",
    tissue: str | None = None,
    density: float = 1.0,
    mpp: float = 0.5,
    difficulty: str | Difficulty | None = None,
    rng: Any = None,
) -> Tile:
    """Generate a synthetic Ki67 IHC tile (hematoxylin + DAB) with full ground truth.

    Tumour regions hold Ki67-positive (brown) and Ki67-negative (blue) tumour nuclei; non-tumour regions
    hold lymphocytes and stromal nuclei, mostly blue and about 8 % brown (proliferating), so a nucleus's
    colour alone does not tell its class: the region does.

    Parameters
    ----------
    shape : tuple of int
        (H, W) in pixels.
    ki67_index : float
        Probability that a tumour nucleus is positive: the expected labelling index
        positive / (positive + negative tumour) equals it exactly.
    style : str or StainStyle
        An IHC style (``"ihc_lab_a"``, ``"ihc_lab_b"``).
    organ, tissue, density, mpp, difficulty, rng
        As in :func:`he_tile`.

    Returns
    -------
    Tile
        Class names ``("ki67_positive_tumour", "ki67_negative_tumour", "non_tumour")``, regions
        ``("background", "tumour", "non_tumour")``; ``truth.dab_positive`` flags brown nuclei.
    """
    ki67_index = check_probability(ki67_index, "ki67_index")
    return _build("ki67", shape, style, organ, tissue, density, mpp, difficulty, rng, ki67_index=ki67_index)


def tile_steps(kind: str = "he", shape: tuple[int, int] = (256, 256), **kwargs: Any) -> tuple[Tile, dict]:
    """Build a tile and return the intermediate pictures of the generator (for teaching).

    Parameters
    ----------
    kind : {"he", "ki67"}
        Which generator.
    shape : tuple of int
        (H, W).
    **kwargs
        Keyword arguments of :func:`he_tile` / :func:`ki67_tile` (the same seed gives the same tile).

    Returns
    -------
    tile : Tile
        The tile, identical to ``he_tile(shape, **kwargs)`` for the same arguments.
    steps : dict of str to ndarray
        In order: region map, instance labels, the second stain's tissue concentration, the hematoxylin
        concentration, the Beer-Lambert rendering without optics, and the final image.
    """
    if kind not in ("he", "ki67"):
        raise ValueError(f"kind: expected 'he' or 'ki67', got {kind!r}")
    defaults = {
        "style": DEFAULT_HE_STYLE if kind == "he" else DEFAULT_IHC_STYLE,
        "organ": "breast",
        "tissue": None,
        "density": 1.0,
        "mpp": 0.5,
        "difficulty": None,
        "rng": None,
    }
    unknown = set(kwargs) - set(defaults) - {"ki67_index"}
    if unknown:
        raise TypeError(f"tile_steps: unexpected keyword(s) {sorted(unknown)}")
    a = {**defaults, **kwargs}
    ki = check_probability(a.pop("ki67_index", 0.3), "ki67_index")
    return _build(
        kind,
        shape,
        a["style"],
        a["organ"],
        a["tissue"],
        a["density"],
        a["mpp"],
        a["difficulty"],
        a["rng"],
        ki67_index=ki,
        steps=True,
    )
