"""Macenko stain-matrix estimation and the Macenko normalizer (NumPy).

The method (Macenko et al., ISBI 2009), with the paper's defaults:

1. ``OD = -ln((I + 1) / io)`` with ``io = 240``.
2. Tissue: pixels whose OD is at least ``beta = 0.15`` in every channel.
3. The plane of the two largest eigenvectors of the tissue OD covariance.
4. The angle of every tissue pixel in that plane; the ``alpha`` and ``100 - alpha`` percentiles (1 and 99)
   give the two extreme stain vectors. Hematoxylin is the one with the larger red OD.
5. Concentrations by least squares, ``C = OD S⁺``.
6. Normalization: scale each stain's concentrations so that their 99th percentile matches the target's,
   and recompose with the target's stain vectors, ``I = io exp(-C' S_target) - 1``.

Deliberate additions (each a keyword argument, documented where it acts):

- Pixels saturated dark in any channel (OD above ``max_od``, e.g. black pen marks, dust, scanner borders) are
  left out of every statistic: Beer-Lambert does not hold there and a few of them would move the fit.
- Degenerate inputs raise :class:`StainEstimationError` (a ``ValueError``) instead of returning meaningless
  vectors: too little tissue, one uniform colour, a single stain, or an OD cloud that is not a plane (noise).
- Statistics are computed on a regular grid subsample of at most ``max_pixels`` pixels (``image[::k, ::k]``,
  65,536 by default), deterministic, which makes the estimate's time and memory independent of the image
  size. ``max_pixels=None`` uses every pixel, as the paper does; on the real H&E of the benchmark the two
  give stain vectors with cosine > 0.99999 and outputs within 0.1 grey level on average.
- Output is ``io exp(-OD) - 1``, rounded: the exact inverse of step 1 (torchstain drops the ``- 1`` and
  truncates; the two differ by about half a grey level).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from .._checks import check_positive, check_rgb, describe
from ._core import check_io, check_stain_matrix, intensity_scale, od_lut

__all__ = [
    "MacenkoNormalizer",
    "StainEstimate",
    "StainEstimationError",
    "TransformInfo",
    "estimate_stains",
    "macenko_stain_matrix",
]

#: torchstain's / Macenko's built-in reference (one fit of one image; columns H, E in the original).
_PAPER_STAINS = np.array([[0.5626, 0.7201, 0.4062], [0.2159, 0.8012, 0.5581]])
_PAPER_MAX_C = np.array([1.9705, 1.0308])

Fallback = Literal["passthrough", "reference"]


class StainEstimationError(ValueError):
    """Stains cannot be estimated from this image (too little tissue, one colour, one stain, noise).

    A subclass of ``ValueError``; the normalizers' ``fallback`` option catches only this error.
    """


@dataclass(frozen=True)
class StainEstimate:
    """What Macenko's method measured on one image.

    Attributes
    ----------
    stain_matrix : ndarray of shape (2, 3)
        Unit OD vectors, rows H then E (or H then DAB), columns R, G, B.
    max_concentrations : ndarray of shape (2,)
        The ``percentile``-th percentile of each stain's concentration.
    tissue_fraction : float
        Fraction of the (sub)sampled pixels that count as tissue (OD >= beta in every channel).
    n_pixels : int
        Number of pixels the statistics were computed on (after subsampling).
    eigenvalues : ndarray of shape (3,)
        Eigenvalues of the tissue OD covariance, largest first.
    """

    stain_matrix: np.ndarray
    max_concentrations: np.ndarray
    tissue_fraction: float
    n_pixels: int
    eigenvalues: np.ndarray = field(default_factory=lambda: np.zeros(3))


@dataclass(frozen=True)
class TransformInfo:
    """How one image was normalized (returned by ``transform(..., return_info=True)``).

    Attributes
    ----------
    fallback : str or None
        None when the image's own stains were used; ``"passthrough"`` or ``"reference"`` when estimation
        failed and the fallback was taken.
    reason : str
        The estimation error's message when a fallback was taken, else ``""``.
    source : StainEstimate or None
        The source stains that were used (None for ``"passthrough"``).
    """

    fallback: str | None
    reason: str = ""
    source: StainEstimate | None = None


# -------------------------------------------------------------------------------------------- helpers
def _percentiles(values: np.ndarray, qs: tuple[float, ...]) -> np.ndarray:
    """Linear-interpolation percentiles (``np.percentile``'s default) via one ``np.partition``."""
    n = values.shape[0]
    pos = [(n - 1) * q / 100.0 for q in qs]
    kth = sorted({math.floor(p) for p in pos} | {min(math.floor(p) + 1, n - 1) for p in pos})
    part = np.partition(values, kth)
    out = []
    for p in pos:
        lo = math.floor(p)
        hi = min(lo + 1, n - 1)
        frac = p - lo
        out.append(float(part[lo]) * (1.0 - frac) + float(part[hi]) * frac)
    return np.array(out)


def _check_params(io: Any, alpha: Any, beta: Any, percentile: Any, max_od: Any) -> tuple[float, ...]:
    io = check_io(io)
    alpha = float(check_positive(alpha, "alpha"))
    if not alpha < 50.0:
        raise ValueError(f"alpha: expected a percentile in (0, 50), got {alpha!r}")
    beta = float(check_positive(beta, "beta", allow_zero=True))
    percentile = float(check_positive(percentile, "percentile"))
    if percentile > 100.0:
        raise ValueError(f"percentile: expected a percentile in (0, 100], got {percentile!r}")
    max_od = float(check_positive(max_od, "max_od"))
    if max_od <= beta:
        raise ValueError(f"max_od: expected a value above beta={beta}, got {max_od!r}")
    return io, alpha, beta, percentile, max_od


def _grid_step(h: int, w: int, max_pixels: int | None) -> int:
    """Return the smallest step ``k`` such that ``image[::k, ::k]`` has at most ``max_pixels`` pixels."""
    if max_pixels is None or h * w <= max_pixels:
        return 1
    k = math.ceil(math.sqrt(h * w / max_pixels))
    while math.ceil(h / k) * math.ceil(w / k) > max_pixels:
        k += 1
    return k


def _sample(image: Any, max_pixels: int | None) -> Any:
    """Return a regular grid subsample ``image[::k, ::k]`` with at most ``max_pixels`` pixels (a view)."""
    k = _grid_step(int(image.shape[0]), int(image.shape[1]), max_pixels)
    return image if k == 1 else image[::k, ::k]


def _sample_chw(image: Any, max_pixels: int | None) -> Any:
    """:func:`_sample` for a channels-first ``(3, H, W)`` image (the same pixels)."""
    k = _grid_step(int(image.shape[1]), int(image.shape[2]), max_pixels)
    return image if k == 1 else image[:, ::k, ::k]


def _planar_od(image: np.ndarray, io: float) -> np.ndarray:
    """(H, W, 3) validated image -> (3, H * W) float32 OD (channel rows, contiguous)."""
    h, w = image.shape[:2]
    planar = np.empty((3, h * w), dtype=image.dtype if image.dtype.kind != "i" else np.uint8)
    for c in range(3):
        planar[c] = image[:, :, c].reshape(h * w)
    if planar.dtype == np.uint8:
        return np.take(od_lut(io), planar)
    return _to_od(planar, io)


def _to_od(pixels: np.ndarray, io: float) -> np.ndarray:
    """(N, 3) OD float32 from (N, 3) validated pixels of any dtype."""
    if pixels.dtype == np.uint8:
        return od_lut(io)[pixels]
    x = pixels.astype(np.float32)
    scale = intensity_scale(pixels)
    if scale != 1.0:
        x *= np.float32(scale)
    x += np.float32(1.0)
    x *= np.float32(1.0 / io)
    np.log(x, out=x)
    np.negative(x, out=x)
    return x


def estimate_stains(
    image: Any,
    *,
    io: float = 240.0,
    alpha: float = 1.0,
    beta: float = 0.15,
    percentile: float = 99.0,
    max_od: float = 3.0,
    scale_pixels: Literal["all", "tissue"] = "all",
    min_tissue_fraction: float = 0.0,
    min_tissue_pixels: int = 64,
    min_angle_deg: float = 3.0,
    max_residual: float = 0.1,
    tissue_rule: Literal["every", "norm"] = "every",
    max_pixels: int | None = 2**16,
    reference: Any = None,
    name: str = "image",
) -> StainEstimate:
    """Estimate an image's stain vectors and maximum concentrations with Macenko's method.

    Parameters
    ----------
    image : ndarray of shape (H, W, 3)
        uint8, uint16 or float in [0, 1]. Never modified.
    io : float
        Glass intensity on the 0..255 scale (paper: 240).
    alpha : float
        Angle percentiles, in percent: ``alpha`` and ``100 - alpha`` (paper: 1).
    beta : float
        OD threshold: a pixel is tissue when its OD is at least ``beta`` in every channel (paper: 0.15).
    percentile : float
        Percentile of each stain's concentration used as its maximum (paper: 99).
    max_od : float
        Pixels with OD above this in any channel (about intensity 10 at ``io=240``) are saturated dark and
        left out of every statistic.
    scale_pixels : {"all", "tissue"}
        Pixels whose concentration percentile is taken: ``"all"`` non-saturated pixels (the paper; the
        result then depends on how much background there is) or ``"tissue"`` pixels only.
    min_tissue_fraction : float
        Raise when tissue covers less than this fraction of the pixels.
    min_tissue_pixels : int
        Raise when fewer tissue pixels are found (counted after subsampling).
    min_angle_deg : float
        Raise when the two stain vectors are closer than this (a single stain).
    max_residual : float
        Raise when the smallest eigenvalue of the tissue OD covariance exceeds this fraction of the
        largest (the OD cloud is not a plane: noise, or more than two stains).
    tissue_rule : {"every", "norm"}
        ``"every"`` (the paper): a pixel is tissue when its OD is at least ``beta`` in every channel.
        ``"norm"``: when the length of its OD vector is at least ``beta`` and no channel is brighter than
        the glass (OD >= 0 in every channel: with ``io`` below the real glass, pale pixels get a negative
        red OD that would turn the E vector). The paper's rule drops pale
        eosin, whose red and blue OD stay below 0.15 (eosin absorbs mostly green), so the E vector is then
        estimated from H-E mixtures only and leans towards H; ``"norm"`` keeps those pixels.
    max_pixels : int or None
        Statistics on a regular grid subsample of at most this many pixels; None uses all pixels.
    reference : ndarray of shape (2, 3), optional
        Stain vectors the estimate must be consistent with (a normalizer passes its target's): each
        estimated vector must be closer to its own reference row than to the other. A single-stain image
        fails this (both estimates land near the one stain present), even when noise spreads its OD cloud
        enough to pass the eigenvalue and angle checks.
    name : str
        Name of the image in error messages.

    Returns
    -------
    StainEstimate

    Raises
    ------
    StainEstimationError
        Too little tissue, a uniform colour, a single stain, a non-planar OD cloud or no stain at all.
    ValueError, TypeError
        Bad image or parameters.
    """
    image = check_rgb(image, name)
    io, alpha, beta, percentile, max_od = _check_params(io, alpha, beta, percentile, max_od)
    if scale_pixels not in ("all", "tissue"):
        raise ValueError(f"scale_pixels: expected 'all' or 'tissue', got {scale_pixels!r}")
    if tissue_rule not in ("every", "norm"):
        raise ValueError(f"tissue_rule: expected 'every' or 'norm', got {tissue_rule!r}")
    max_residual = float(check_positive(max_residual, "max_residual"))
    min_angle_deg = float(check_positive(min_angle_deg, "min_angle_deg", allow_zero=True))
    min_tissue_fraction = float(check_positive(min_tissue_fraction, "min_tissue_fraction", allow_zero=True))
    min_tissue_pixels = int(check_positive(min_tissue_pixels, "min_tissue_pixels", integer=True))
    min_tissue_pixels = max(min_tissue_pixels, 3)
    if max_pixels is not None:
        max_pixels = int(check_positive(max_pixels, "max_pixels", integer=True))

    od = _planar_od(_sample(image, max_pixels), io)  # (3, N) float32, a new array
    n = od.shape[1]
    lo = np.minimum(np.minimum(od[0], od[1]), od[2])
    hi = np.maximum(np.maximum(od[0], od[1]), od[2])
    usable = hi <= max_od
    if tissue_rule == "every":
        tissue = usable & (lo >= beta)
    else:
        tissue = usable & (lo >= 0) & (np.einsum("cn,cn->n", od, od) >= np.float32(beta * beta))
    n_tissue = int(np.count_nonzero(tissue))
    fraction = n_tissue / n
    if n_tissue < min_tissue_pixels or fraction < min_tissue_fraction:
        raise StainEstimationError(
            f"{name}: too little tissue to estimate stains: {n_tissue} of {n} pixels "
            f"({100 * fraction:.1f} %) "
            f"have OD >= beta={beta:g} in every channel (and <= max_od={max_od:g}); need at least "
            f"{min_tissue_pixels} pixels and {100 * min_tissue_fraction:.1f} % (a blank or background tile? "
            "For an image that is mostly background, pass scale_pixels='tissue' and a smaller "
            "min_tissue_fraction)"
        )
    x = od[:, tissue]  # (3, n_tissue)
    centred = x - x.mean(axis=1, dtype=np.float64).astype(np.float32)[:, None]
    cov = (centred @ centred.T).astype(np.float64) / max(n_tissue - 1, 1)  # (3, 3)
    evals, evecs = np.linalg.eigh(cov)  # ascending
    evals = np.clip(evals[::-1], 0.0, None)  # largest first
    if evals[0] <= 1e-8:
        raise StainEstimationError(
            f"{name}: the tissue pixels have a single colour (OD variance {evals[0]:.2g}); "
            "stain vectors cannot be estimated from a uniform image"
        )
    if evals[2] > max_residual * evals[0]:
        raise StainEstimationError(
            f"{name}: the tissue OD is not a two-stain plane (eigenvalues {np.round(evals, 5).tolist()}: the "
            f"smallest is {evals[2] / evals[0]:.2f} of the largest, above max_residual={max_residual:g}); "
            "noise, or not a two-stain image"
        )
    e1 = evecs[:, 2]
    e2 = evecs[:, 1]
    if e1.sum() < 0:  # point into positive OD, or the angles wrap around +-pi
        e1 = -e1
    plane = np.stack([e1, e2]).astype(np.float32)  # (2, 3)
    proj = plane @ x  # (2, n_tissue)
    phi = np.arctan2(proj[1], proj[0])
    phi_min, phi_max = _percentiles(phi, (alpha, 100.0 - alpha))
    v_min = math.cos(phi_min) * e1 + math.sin(phi_min) * e2
    v_max = math.cos(phi_max) * e1 + math.sin(phi_max) * e2
    stains = np.stack([v_min, v_max] if v_min[0] > v_max[0] else [v_max, v_min])  # rows H, E
    stains /= np.linalg.norm(stains, axis=1, keepdims=True)
    angle = math.degrees(math.acos(min(1.0, abs(float(stains[0] @ stains[1])))))
    if angle < min_angle_deg:
        raise StainEstimationError(
            f"{name}: the two stain vectors are only {angle:.2f} degrees apart (min_angle_deg="
            f"{min_angle_deg:g}): a single-stain image"
        )
    if reference is not None:
        ref = np.asarray(reference, dtype=np.float64)
        ref = ref / np.linalg.norm(ref, axis=1, keepdims=True)
        cos = stains @ ref.T  # (2 estimated, 2 reference)
        if not (cos[0, 0] > cos[0, 1] and cos[1, 1] > cos[1, 0]):
            deg = np.degrees(np.arccos(np.clip(cos, -1.0, 1.0))).round(1).tolist()
            raise StainEstimationError(
                f"{name}: the estimated stain vectors do not match the reference's two stains (angles to "
                f"the reference rows, degrees: {deg}); a single-stain image, or a stain the reference lacks"
            )
    keep = tissue if scale_pixels == "tissue" else usable
    pixels = od if keep.all() else od[:, keep]  # (3, n)
    conc = np.linalg.pinv(stains).T.astype(np.float32) @ pixels  # (2, 3) @ (3, n)
    max_c = np.array([_percentiles(conc[i], (percentile,))[0] for i in range(2)])
    if not (max_c > 1e-3).all():
        raise StainEstimationError(
            f"{name}: a stain is absent: its {percentile:g}th-percentile concentration is {max_c.min():.2g} "
            "(a single-stain or blank image)"
        )
    stains.setflags(write=False)
    max_c.setflags(write=False)
    evals.setflags(write=False)
    return StainEstimate(stains, max_c, fraction, n, evals)


def macenko_stain_matrix(
    image: Any,
    *,
    io: float = 240.0,
    alpha: float = 1.0,
    beta: float = 0.15,
    max_od: float = 3.0,
    min_tissue_pixels: int = 64,
    max_pixels: int | None = 2**16,
    tissue_rule: Literal["every", "norm"] = "every",
) -> np.ndarray:
    """Estimate an image's two stain vectors with Macenko's SVD method.

    Parameters
    ----------
    image : ndarray of shape (H, W, 3)
        uint8, uint16 or float in [0, 1]. Never modified.
    io : float
        Glass intensity on the 0..255 scale (paper: 240).
    alpha : float
        Angle percentiles in percent, ``alpha`` and ``100 - alpha`` (paper: 1).
    beta : float
        Tissue threshold: OD at least ``beta`` in every channel (paper: 0.15).
    max_od : float
        Pixels with OD above this in any channel are saturated dark and ignored.
    min_tissue_pixels : int
        Fewest tissue pixels accepted.
    max_pixels : int or None
        Statistics on a regular grid subsample of at most this many pixels; None uses every pixel.
    tissue_rule : {"every", "norm"}
        Tissue mask: OD >= ``beta`` in every channel (paper) or OD vector length >= ``beta``.

    Returns
    -------
    ndarray of shape (2, 3)
        Unit OD vectors, rows H then E (H = the larger red component).

    Raises
    ------
    StainEstimationError
        (a ``ValueError``) Too little tissue, one colour, one stain, or noise; see :func:`estimate_stains`.

    References
    ----------
    M. Macenko et al., "A method for normalizing histology slides for quantitative analysis", ISBI 2009.
    """
    est = estimate_stains(
        image,
        io=io,
        alpha=alpha,
        beta=beta,
        max_od=max_od,
        min_tissue_pixels=min_tissue_pixels,
        max_pixels=max_pixels,
        tissue_rule=tissue_rule,
    )
    return np.array(est.stain_matrix)


# ------------------------------------------------------------------------------------------ the mapping
def od_map(source: StainEstimate, target_stains: np.ndarray, target_max_c: np.ndarray) -> np.ndarray:
    """Return the (3, 3) matrix ``M`` with ``OD_out = OD_in @ M`` (unmix, rescale, remix)."""
    unmix = np.linalg.pinv(source.stain_matrix)  # (3, 2)
    scale = np.asarray(target_max_c, dtype=np.float64) / source.max_concentrations  # (2,)
    return (unmix * scale) @ np.asarray(target_stains, dtype=np.float64)  # (3, 2) @ (2, 3)


_CHUNK = 1 << 15  # pixels per chunk: the (3, chunk) float32 buffers stay in cache


def apply_od_map(image: np.ndarray, m: np.ndarray, io: float, out: np.ndarray | None = None) -> np.ndarray:
    """Apply ``OD -> OD @ m`` to every pixel of a validated image, chunk by chunk.

    The output has the input's dtype family: uint8 for uint8 (and other integer) images, uint16 for uint16,
    float32 in [0, 1] for floats. Memory: the output plus three float32 buffers of ``_CHUNK`` pixels.

    Notes
    -----
    With ``OD_c = ln io - L_c`` and ``L_c = ln(I_c + 1)``, the output intensity is
    ``I'_k + 1 = io^(1 - Σ_c m_ck) · exp(Σ_c m_ck L_c)``: one (3, 3) @ (3, n) product, one ``exp`` and one
    scale per channel, computed on planar (3, n) chunks so every loop runs over contiguous memory.
    """
    h, w = image.shape[:2]
    if image.dtype == np.uint16:
        out_dtype, in_scale, out_scale = np.uint16, 255.0 / 65535.0, 65535.0 / 255.0
    elif image.dtype.kind == "f":
        out_dtype, in_scale, out_scale = np.float32, 255.0, 1.0 / 255.0
    else:
        out_dtype, in_scale, out_scale = np.uint8, 1.0, 1.0
    if out is None:
        out = np.empty((h, w, 3), dtype=out_dtype)
    elif out.shape != (h, w, 3) or out.dtype != out_dtype:
        raise ValueError(
            f"out: expected an array of shape {(h, w, 3)} and dtype {np.dtype(out_dtype)}, "
            f"got {describe(out)}"
        )
    src = image if image.dtype.kind != "i" else image.astype(np.uint8)
    m64 = np.asarray(m, dtype=np.float64)
    mt = np.ascontiguousarray(m64.T, dtype=np.float32)  # (3 out, 3 in)
    gain = (io ** (1.0 - m64.sum(axis=0)) * out_scale).astype(np.float32)[:, None]  # (3, 1)
    one = np.float32(out_scale)  # the "- 1" of the +1 offset, in output units
    top = np.float32(255.0 * out_scale)
    rows = max(1, _CHUNK // max(w, 1))
    buf = np.empty((3, rows * w), dtype=np.float32)
    res = np.empty((3, rows * w), dtype=np.float32)
    for r0 in range(0, h, rows):
        block = src[r0 : r0 + rows]
        nr = block.shape[0]
        n = nr * w
        lv, y = buf[:, :n], res[:, :n]
        for c in range(3):
            lv[c] = block[:, :, c].reshape(n)  # planar float32 copy
        if in_scale != 1.0:
            lv *= np.float32(in_scale)
        lv += np.float32(1.0)
        np.log(lv, out=lv)
        np.matmul(mt, lv, out=y)  # (3, 3) @ (3, n)
        np.exp(y, out=y)
        y *= gain
        y -= one if out_dtype == np.float32 else one - np.float32(0.5)  # +0.5: truncation rounds
        np.clip(y, 0.0, top, out=y)
        dest = out[r0 : r0 + nr]
        for k in range(3):
            dest[:, :, k] = y[k].reshape(nr, w)  # cast (truncation after +0.5: rounding)
    return out


# ---------------------------------------------------------------------------------------- the normalizer
class MacenkoNormalizer:
    """Macenko stain normalization: fit to a target image, transform any image to its stains.

    Parameters
    ----------
    io : float
        Glass intensity on the 0..255 scale (paper: 240; 256 keeps white exactly white).
    alpha : float
        Angle percentiles in percent (paper: 1).
    beta : float
        Tissue OD threshold (paper: 0.15).
    percentile : float
        Percentile of concentrations matched between source and target (paper: 99).
    max_od : float
        Saturated-dark threshold: pixels with OD above it in any channel are left out of the statistics.
    scale_pixels : {"all", "tissue"}
        Pixels the concentration percentile is taken over (paper: ``"all"``).
    min_tissue_fraction : float
        Fewest tissue fraction accepted in an image whose stains are estimated (default 5 %).
    min_tissue_pixels : int
        Fewest tissue pixels accepted (after subsampling).
    max_pixels : int or None
        Statistics on a grid subsample of at most this many pixels (None: every pixel).
    tissue_rule : {"every", "norm"}
        Tissue mask: OD >= ``beta`` in every channel (paper) or OD vector length >= ``beta`` (keeps pale
        eosin; see :func:`estimate_stains`).
    check_source : bool
        Require a source's estimated stains to match the target's in order (estimated H closer to the
        target's H, E closer to its E). Catches single-stain tiles that noise makes look like two stains,
        but also rejects strongly re-stained images whose E estimate leans towards H; off by default. For
        tiles of one slide, estimate the slide's stains once instead (``transform(tile, source=...)``,
        :func:`~nucleikit.stain.normalize_tiles`).
    fallback : {None, "passthrough", "reference"}
        What :meth:`transform` does when the image's own stains cannot be estimated (blank, single stain,
        uniform, noise): None raises :class:`StainEstimationError`; ``"passthrough"`` returns a copy of the
        input; ``"reference"`` assumes the image is already in the target's stains (a projection onto the
        target's stain plane). ``transform(..., return_info=True)`` says which was taken.

    Attributes
    ----------
    target_ : StainEstimate
        The target's stains after :meth:`fit`.
    stain_matrix_ : ndarray of shape (2, 3)
        The target's stain vectors (rows H, E).
    max_concentrations_ : ndarray of shape (2,)
        The target's maximum concentrations.

    Notes
    -----
    The fitted transform is a per-pixel linear map in OD space, ``OD_out = OD_in S_src⁺ diag(c_tgt /
    c_src) S_tgt``; only the source's estimation depends on the whole image.

    References
    ----------
    M. Macenko et al., "A method for normalizing histology slides for quantitative analysis", ISBI 2009.
    """

    def __init__(
        self,
        io: float = 240.0,
        alpha: float = 1.0,
        beta: float = 0.15,
        percentile: float = 99.0,
        *,
        max_od: float = 3.0,
        scale_pixels: Literal["all", "tissue"] = "all",
        min_tissue_fraction: float = 0.05,
        min_tissue_pixels: int = 64,
        max_pixels: int | None = 2**16,
        tissue_rule: Literal["every", "norm"] = "every",
        check_source: bool = False,
        fallback: Fallback | None = None,
    ) -> None:
        self.io, self.alpha, self.beta, self.percentile, self.max_od = _check_params(
            io, alpha, beta, percentile, max_od
        )
        if scale_pixels not in ("all", "tissue"):
            raise ValueError(f"scale_pixels: expected 'all' or 'tissue', got {scale_pixels!r}")
        self.scale_pixels = scale_pixels
        if tissue_rule not in ("every", "norm"):
            raise ValueError(f"tissue_rule: expected 'every' or 'norm', got {tissue_rule!r}")
        self.tissue_rule = tissue_rule
        self.check_source = bool(check_source)
        self.min_tissue_fraction = float(min_tissue_fraction)
        self.min_tissue_pixels = int(min_tissue_pixels)
        self.max_pixels = max_pixels
        _check_fallback(fallback)
        self.fallback = fallback
        self.target_: StainEstimate | None = None

    # -- parameters shared by fit and transform
    def _params(self) -> dict[str, Any]:
        return {
            "io": self.io,
            "alpha": self.alpha,
            "beta": self.beta,
            "percentile": self.percentile,
            "max_od": self.max_od,
            "scale_pixels": self.scale_pixels,
            "min_tissue_fraction": self.min_tissue_fraction,
            "min_tissue_pixels": self.min_tissue_pixels,
            "max_pixels": self.max_pixels,
            "tissue_rule": self.tissue_rule,
        }

    def _settings(self) -> dict[str, Any]:
        return {**self._params(), "check_source": self.check_source, "fallback": self.fallback}

    def estimate(self, image: Any, *, name: str = "image") -> StainEstimate:
        """Estimate an image's stains with this normalizer's settings (see :func:`estimate_stains`).

        With ``check_source=True`` and once fitted, the estimate must also be consistent with the target's
        stains (``reference=`` of :func:`estimate_stains`).
        """
        check = self.check_source and self.target_ is not None and name != "target"
        ref = self.target_.stain_matrix if check else None
        return estimate_stains(image, name=name, reference=ref, **self._params())

    def fit(self, target: Any) -> MacenkoNormalizer:
        """Estimate the target's stain vectors and maximum concentrations; return ``self``.

        Raises
        ------
        StainEstimationError
            When the target's stains cannot be estimated (always raised: no fallback for a target).
        """
        self.target_ = self.estimate(target, name="target")
        return self

    @classmethod
    def from_stains(
        cls, stain_matrix: Any, max_concentrations: Any = _PAPER_MAX_C, **kwargs: Any
    ) -> MacenkoNormalizer:
        """Build a fitted normalizer from known target stains (default concentrations: the paper's)."""
        norm = cls(**kwargs)
        m = check_stain_matrix(stain_matrix)
        if m.shape[0] != 2:
            raise ValueError(f"stain_matrix: expected shape (2, 3), got {m.shape}")
        c = np.asarray(max_concentrations, dtype=np.float64).reshape(-1)
        if c.shape != (2,) or not np.all(np.isfinite(c)) or not np.all(c > 0):
            raise ValueError(f"max_concentrations: expected 2 positive numbers, got {c.tolist()}")
        norm.target_ = StainEstimate(m / np.linalg.norm(m, axis=1, keepdims=True), c, 1.0, 0)
        return norm

    @property
    def stain_matrix_(self) -> np.ndarray:
        """The fitted target stain matrix, shape (2, 3)."""
        return np.array(self._target().stain_matrix)

    @property
    def max_concentrations_(self) -> np.ndarray:
        """The fitted target maximum concentrations, shape (2,)."""
        return np.array(self._target().max_concentrations)

    def _target(self) -> StainEstimate:
        if self.target_ is None:
            raise RuntimeError("MacenkoNormalizer: call fit(target) (or load(path)) before transform")
        return self.target_

    def transform(
        self,
        image: Any,
        *,
        source: StainEstimate | None = None,
        fallback: Fallback | Literal["default"] | None = "default",
        return_info: bool = False,
        out: np.ndarray | None = None,
    ) -> np.ndarray | tuple[np.ndarray, TransformInfo]:
        """Normalize an image to the target's stains.

        Parameters
        ----------
        image : ndarray of shape (H, W, 3)
            uint8, uint16 or float in [0, 1]. Never modified.
        source : StainEstimate, optional
            The image's stains, estimated beforehand (e.g. once for a whole slide with :meth:`estimate`,
            then used for every tile). Default: estimated from ``image``.
        fallback : {None, "passthrough", "reference"}, optional
            Overrides the normalizer's ``fallback`` for this call.
        return_info : bool
            Also return a :class:`TransformInfo` saying whether a fallback was taken.
        out : ndarray of shape (H, W, 3), optional
            Where to write the result (e.g. a memory map); must have the output dtype.

        Returns
        -------
        ndarray of shape (H, W, 3)
            uint8 for uint8 input, uint16 for uint16, float32 in [0, 1] for float input.
        TransformInfo
            Only with ``return_info=True``.

        Raises
        ------
        StainEstimationError
            When the image's stains cannot be estimated and no fallback is set.
        """
        target = self._target()
        image = check_rgb(image)
        fb = self.fallback if fallback == "default" else fallback
        _check_fallback(fb)
        info = TransformInfo(None, "", source)
        if source is None:
            try:
                source = self.estimate(image)
                info = TransformInfo(None, "", source)
            except StainEstimationError as exc:
                if fb is None:
                    raise
                if fb == "passthrough":
                    result = _passthrough(image) if out is None else _copy_into(image, out)
                    return (result, TransformInfo("passthrough", str(exc), None)) if return_info else result
                source = target
                info = TransformInfo("reference", str(exc), target)
        m = od_map(source, target.stain_matrix, target.max_concentrations)
        result = apply_od_map(image, m, self.io, out=out)
        return (result, info) if return_info else result

    def fit_transform(self, target: Any, image: Any) -> np.ndarray:
        """``fit(target)`` then ``transform(image)``."""
        return self.fit(target).transform(image)

    # -- persistence
    def state_dict(self) -> dict[str, Any]:
        """Return the settings and fitted state as plain JSON-ready values."""
        t = self._target()
        return {
            "kind": "MacenkoNormalizer",
            "version": 1,
            "params": self._settings(),
            "target": {
                "stain_matrix": t.stain_matrix.tolist(),
                "max_concentrations": t.max_concentrations.tolist(),
                "tissue_fraction": t.tissue_fraction,
                "n_pixels": t.n_pixels,
                "eigenvalues": np.asarray(t.eigenvalues).tolist(),
            },
        }

    def save(self, path: str | Path) -> Path:
        """Save the settings and fitted state as JSON; return the path."""
        from ..report import write_text_atomic

        path = Path(path)
        write_text_atomic(path, json.dumps(self.state_dict(), indent=2) + "\n")
        return path

    @classmethod
    def load(cls, path: str | Path) -> MacenkoNormalizer:
        """Load a normalizer saved with :meth:`save`."""
        state = _read_state(path, "MacenkoNormalizer")
        norm = cls(**state["params"])
        t = state["target"]
        stains = check_stain_matrix(t["stain_matrix"], "stain_matrix (in the saved file)")
        max_c = np.asarray(t["max_concentrations"], dtype=np.float64)
        if stains.shape != (2, 3) or max_c.shape != (2,) or not np.all(max_c > 0):
            raise ValueError(f"{path}: the saved target has the wrong shape or non-positive concentrations")
        norm.target_ = StainEstimate(
            stains,
            max_c,
            float(t["tissue_fraction"]),
            int(t["n_pixels"]),
            np.asarray(t.get("eigenvalues", [0, 0, 0]), dtype=np.float64),
        )
        return norm

    def __repr__(self) -> str:
        fitted = "fitted" if self.target_ is not None else "not fitted"
        return (
            f"MacenkoNormalizer(io={self.io:g}, alpha={self.alpha:g}, beta={self.beta:g}, "
            f"percentile={self.percentile:g}, fallback={self.fallback!r}; {fitted})"
        )


def _check_fallback(fallback: Any) -> None:
    if fallback not in (None, "passthrough", "reference"):
        raise ValueError(f"fallback: expected None, 'passthrough' or 'reference', got {fallback!r}")


def _passthrough(image: np.ndarray) -> np.ndarray:
    """Return a copy of the input in the output dtype family (float images become float32)."""
    return image.astype(np.float32) if image.dtype.kind == "f" else np.array(image, copy=True)


def _copy_into(image: np.ndarray, out: np.ndarray) -> np.ndarray:
    res = _passthrough(image)
    if out.shape != res.shape or out.dtype != res.dtype:
        raise ValueError(f"out: expected shape {res.shape} and dtype {res.dtype}, got {describe(out)}")
    out[...] = res
    return out


def _read_state(path: str | Path, kind: str) -> dict[str, Any]:
    path = Path(path)
    try:
        state = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path}: not a saved normalizer (invalid JSON: {exc})") from None
    if not isinstance(state, dict) or state.get("kind") != kind:
        got = state.get("kind") if isinstance(state, dict) else type(state).__name__
        raise ValueError(f"{path}: expected a saved {kind}, got {got!r}")
    return state
