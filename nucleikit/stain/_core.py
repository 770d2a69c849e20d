r"""Optical density, Ruifrok colour deconvolution and recombination (NumPy).

Intensity scale. Every image is read on the 0..255 scale, whatever its dtype: uint8 as is, uint16 / 257,
float in [0, 1] times 255. Optical density (OD) is then

.. math:: \mathrm{OD} = -\ln\frac{I + 1}{I_o},

with natural logarithms and the ``+1`` offset of Macenko et al. (so that black is finite). ``io`` is the
intensity of bright, unstained glass on that scale.

The Io choice. The generic functions here default to ``io=256``: then white (255) has OD exactly 0, black
has OD ln 256 = 5.55, every uint8 value maps to a finite OD and :func:`od_to_rgb` inverts :func:`rgb_to_od`
exactly. Macenko's paper (and torchstain) use ``io=240``, which assumes the glass is a little darker than
full scale: pixels brighter than 239 then get a (small) negative OD and a reconstructed white comes out
at about 239. :mod:`nucleikit.stain.macenko` keeps the paper's 240 as its default; pass ``io=256`` there
for a white background that stays white.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .._checks import check_rgb, describe

__all__ = [
    "RUIFROK_HDAB",
    "RUIFROK_HE",
    "RUIFROK_HED",
    "complete_stain_matrix",
    "deconvolve",
    "od_to_rgb",
    "recombine",
    "rgb_to_od",
]

DEFAULT_IO = 256.0

#: Maximum intensity on the common 0..255 scale.
_FULL = 255.0


def _unit_rows(m: Any) -> np.ndarray:
    m = np.asarray(m, dtype=np.float64)
    out = m / np.linalg.norm(m, axis=1, keepdims=True)
    out.setflags(write=False)
    return out


#: Hematoxylin and eosin unit OD vectors (rows H, E; columns R, G, B), Ruifrok & Johnston 2001.
RUIFROK_HE: np.ndarray = _unit_rows([[0.65, 0.70, 0.29], [0.07, 0.99, 0.11]])
#: Hematoxylin and DAB unit OD vectors (rows H, DAB), Ruifrok & Johnston 2001.
RUIFROK_HDAB: np.ndarray = _unit_rows([[0.65, 0.70, 0.29], [0.27, 0.57, 0.78]])
#: Hematoxylin, eosin and DAB (rows H, E, DAB): skimage's ``rgb_from_hed`` with unit rows.
RUIFROK_HED: np.ndarray = _unit_rows([[0.65, 0.70, 0.29], [0.07, 0.99, 0.11], [0.27, 0.57, 0.78]])


# ------------------------------------------------------------------------------------------- validation
def check_io(io: Any) -> float:
    """Validate the glass intensity ``io`` (on the 0..255 scale, > 1) and return it as float."""
    if isinstance(io, bool) or not isinstance(io, (int, float, np.integer, np.floating)):
        raise TypeError(f"io: expected a number (glass intensity on the 0..255 scale), got {describe(io)}")
    io = float(io)
    if not np.isfinite(io) or io <= 1.0 or io > 1e4:
        raise ValueError(f"io: expected a glass intensity in (1, 10000] on the 0..255 scale, got {io!r}")
    return io


def check_stain_matrix(stain_matrix: Any, name: str = "stain_matrix") -> np.ndarray:
    """Validate a stain matrix of shape ``(n_stains, 3)``, ``n_stains`` in 1..3, of full row rank.

    Returns a float64 copy; rows are used as given (not normalized).
    """
    if hasattr(stain_matrix, "detach") and hasattr(stain_matrix, "cpu"):
        stain_matrix = stain_matrix.detach().cpu().numpy()
    m = np.array(stain_matrix, dtype=np.float64, copy=True) if _is_numeric(stain_matrix) else None
    if m is None:
        raise TypeError(f"{name}: expected a numeric (n_stains, 3) array, got {describe(stain_matrix)}")
    if m.ndim != 2 or m.shape[1] != 3 or not 1 <= m.shape[0] <= 3:
        hint = " (columns are stains? pass stain_matrix.T)" if m.ndim == 2 and m.shape[0] == 3 else ""
        raise ValueError(
            f"{name}: expected a stain matrix of shape (n_stains, 3) with 1 to 3 rows (one unit OD "
            f"vector per stain, columns R, G, B), got shape {m.shape}{hint}"
        )
    if not np.isfinite(m).all():
        raise ValueError(f"{name}: expected finite values, got NaN or inf")
    s = np.linalg.svd(m, compute_uv=False)
    if s[-1] <= 1e-6 * max(s[0], 1e-300):
        raise ValueError(
            f"{name}: the stain vectors are linearly dependent (singular values {np.round(s, 6).tolist()}); "
            "each stain needs its own colour"
        )
    return m


def _is_numeric(x: Any) -> bool:
    try:
        a = np.asarray(x)
    except Exception:  # pragma: no cover - exotic objects
        return False
    return a.dtype.kind in "iuf" and a.dtype != np.bool_


def intensity_scale(image: np.ndarray) -> float:
    """Return the factor that maps a validated image's values onto the 0..255 scale."""
    if image.dtype == np.uint16:
        return _FULL / 65535.0
    if image.dtype.kind == "f":
        return _FULL
    return 1.0


# ---------------------------------------------------------------------------------------- OD conversion
def od_lut(io: float) -> np.ndarray:
    """Return the 256-entry float32 table ``OD[v] = -ln((v + 1) / io)`` for uint8 values ``v``."""
    return (-np.log((np.arange(256, dtype=np.float64) + 1.0) / io)).astype(np.float32)


def _od_chunk(pixels: np.ndarray, io: float, lut: np.ndarray | None) -> np.ndarray:
    """OD (float32) of validated pixels of any supported dtype; always a new array."""
    if pixels.dtype == np.uint8 and lut is not None:
        return lut[pixels]
    scale = intensity_scale(pixels)
    x = pixels.astype(np.float32)
    if scale != 1.0:
        x *= np.float32(scale)
    x += np.float32(1.0)
    x *= np.float32(1.0 / io)
    np.log(x, out=x)
    np.negative(x, out=x)
    return x


def rgb_to_od(image: Any, *, io: float = DEFAULT_IO) -> np.ndarray:
    """Convert an RGB image to optical density, ``OD = -ln((I + 1) / io)`` on the 0..255 intensity scale.

    Parameters
    ----------
    image : ndarray of shape (H, W, 3)
        uint8, uint16 or float in [0, 1]. Never modified.
    io : float
        Intensity of unstained glass on the 0..255 scale (> 1). The default 256 maps white (255) to OD 0
        and makes :func:`od_to_rgb` an exact inverse; Macenko's paper uses 240 (see the module notes).

    Returns
    -------
    ndarray of shape (H, W, 3) and dtype float32
        Optical density per channel; negative where ``I + 1 > io``.

    Raises
    ------
    ValueError
        Wrong shape (2-D grey, RGBA), NaN, floats outside [0, 1], or a bad ``io``.
    TypeError
        Non-numeric pixels.

    Notes
    -----
    Beer-Lambert: transmitted light falls exponentially with the amount of absorbing stain, so OD is
    linear in the stain concentrations, ``OD = C S`` for a stain matrix ``S`` of shape (n_stains, 3).
    uint8 images go through a 256-entry lookup table.
    """
    image = check_rgb(image)
    io = check_io(io)
    return _od_chunk(image, io, od_lut(io) if image.dtype == np.uint8 else None)


def _check_od(od: Any, name: str = "od") -> np.ndarray:
    if hasattr(od, "detach") and hasattr(od, "cpu"):
        raise TypeError(f"{name}: expected a NumPy array of shape (H, W, 3), got {describe(od)}")
    od = np.asarray(od)
    if od.ndim != 3 or od.shape[-1] != 3:
        raise ValueError(f"{name}: expected optical densities of shape (H, W, 3), got {describe(od)}")
    if od.dtype.kind not in "iuf" or od.dtype == np.bool_:
        raise TypeError(f"{name}: expected float optical densities, got {describe(od)}")
    if np.isnan(od).any():
        raise ValueError(f"{name}: expected optical densities without NaN, got NaN in {describe(od)}")
    return od


def _od_to_intensity_u8(od: np.ndarray, io: float) -> np.ndarray:
    """``round(clip(io * exp(-od) - 1, 0, 255))`` as uint8; ``od`` float32 scratch may be overwritten."""
    np.negative(od, out=od)
    np.exp(od, out=od)
    od *= np.float32(io)
    od -= np.float32(0.5)  # -1 (inverse of the +1 offset), then +0.5 so that truncation rounds
    np.clip(od, 0.0, 255.0, out=od)
    return od.astype(np.uint8)


def od_to_rgb(od: Any, *, io: float = DEFAULT_IO) -> np.ndarray:
    """Convert optical density back to an RGB image, ``I = io * exp(-OD) - 1``, rounded and clipped.

    Parameters
    ----------
    od : ndarray of shape (H, W, 3)
        Optical density (any float; ``+inf`` gives black). Never modified.
    io : float
        Glass intensity on the 0..255 scale; use the value given to :func:`rgb_to_od`.

    Returns
    -------
    ndarray of shape (H, W, 3) and dtype uint8

    Raises
    ------
    ValueError
        Wrong shape or NaN.
    """
    od = _check_od(od)
    io = check_io(io)
    return _od_to_intensity_u8(od.astype(np.float32, copy=True), io)


def complete_stain_matrix(stain_matrix: Any) -> np.ndarray:
    """Complete a (2, 3) stain matrix with a unit residual row orthogonal to both stains.

    Parameters
    ----------
    stain_matrix : ndarray of shape (2, 3)

    Returns
    -------
    ndarray of shape (3, 3)
        Rows: the two stains as given, then their normalized cross product (sign chosen with a positive
        sum). With it :func:`deconvolve` / :func:`recombine` round-trip exactly.
    """
    m = check_stain_matrix(stain_matrix)
    if m.shape[0] != 2:
        raise ValueError(f"stain_matrix: expected shape (2, 3), got {m.shape}")
    r = np.cross(m[0], m[1])
    r /= np.linalg.norm(r)
    if r.sum() < 0:
        r = -r
    return np.vstack([m, r])


def unmixing_matrix(stain_matrix: np.ndarray) -> np.ndarray:
    """Return the (3, n_stains) matrix ``P`` with ``C = OD @ P`` (least squares; the inverse for n = 3)."""
    return np.linalg.pinv(stain_matrix)


def deconvolve(image: Any, stain_matrix: Any = RUIFROK_HE, *, io: float = DEFAULT_IO) -> np.ndarray:
    """Unmix an RGB image into stain concentrations (Ruifrok & Johnston colour deconvolution).

    Parameters
    ----------
    image : ndarray of shape (H, W, 3)
        uint8, uint16 or float in [0, 1]. Never modified.
    stain_matrix : ndarray of shape (n_stains, 3)
        Rows are stain OD vectors (unit length by convention), ``n_stains`` in 1..3. Default
        :data:`RUIFROK_HE`.
    io : float
        Glass intensity (see :func:`rgb_to_od`).

    Returns
    -------
    ndarray of shape (H, W, n_stains) and dtype float32
        Concentrations ``C`` with ``OD ≈ C @ stain_matrix``, in OD units (natural log) per unit stain
        vector. Not clipped at 0 (unlike ``skimage.color.separate_stains``), so :func:`recombine`
        inverts it exactly for a full (3, 3) matrix.

    Raises
    ------
    ValueError
        Bad image, or a stain matrix of the wrong shape or with linearly dependent rows.

    Notes
    -----
    ``OD = C S``  →  ``C = OD S⁺`` (the pseudo-inverse; the inverse for 3 stains). With two stains this is
    the least-squares fit, and the residual (what neither stain explains) is dropped.

    References
    ----------
    A. C. Ruifrok and D. A. Johnston, "Quantification of histochemical staining by color deconvolution",
    Anal. Quant. Cytol. Histol. 23(4), 2001.
    """
    image = check_rgb(image)
    m = check_stain_matrix(stain_matrix)
    io = check_io(io)
    od = _od_chunk(image, io, od_lut(io) if image.dtype == np.uint8 else None)
    p = unmixing_matrix(m).astype(np.float32)
    return od @ p  # (H, W, 3) @ (3, n) -> (H, W, n)


def recombine(concentrations: Any, stain_matrix: Any, *, io: float = DEFAULT_IO) -> np.ndarray:
    """Mix stain concentrations back into an RGB image, ``I = io * exp(-C S) - 1`` (Beer-Lambert).

    Parameters
    ----------
    concentrations : ndarray of shape (H, W, n_stains)
        Stain concentrations, e.g. from :func:`deconvolve` (zero a channel to see one stain alone).
    stain_matrix : ndarray of shape (n_stains, 3)
        Stain OD vectors (rows).
    io : float
        Glass intensity (see :func:`rgb_to_od`).

    Returns
    -------
    ndarray of shape (H, W, 3) and dtype uint8

    Raises
    ------
    ValueError
        Shapes that do not match, NaN, or a bad stain matrix.
    """
    m = check_stain_matrix(stain_matrix)
    if hasattr(concentrations, "detach"):
        raise TypeError(f"concentrations: expected a NumPy array, got {describe(concentrations)}")
    c = np.asarray(concentrations)
    if c.ndim != 3 or c.shape[-1] != m.shape[0]:
        raise ValueError(
            f"concentrations: expected shape (H, W, {m.shape[0]}) to match a stain matrix of shape "
            f"{m.shape}, got {describe(c)}"
        )
    if c.dtype.kind not in "iuf" or c.dtype == np.bool_:
        raise TypeError(f"concentrations: expected float values, got {describe(c)}")
    if np.isnan(c).any():
        raise ValueError("concentrations: expected values without NaN")
    io = check_io(io)
    od = c.astype(np.float32, copy=False) @ m.astype(np.float32)  # (H, W, n) @ (n, 3) -> (H, W, 3), new
    return _od_to_intensity_u8(od, io)
