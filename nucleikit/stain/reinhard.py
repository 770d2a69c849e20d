"""Reinhard colour transfer in CIELAB, and fast float32 sRGB <-> CIELAB conversions (NumPy).

Reinhard et al. (2001) match each channel's mean and standard deviation in a decorrelated colour space
(lαβ in the paper). We use CIELAB (D65), as torchstain does; histomicstk keeps lαβ. The conversion below
follows ``skimage.color.rgb2lab`` / ``lab2rgb`` (sRGB, D65, 2°) in float32, with a lookup table for uint8.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

import numpy as np

from .._checks import check_positive, check_rgb, describe
from ._core import intensity_scale, od_lut
from .macenko import (
    Fallback,
    StainEstimationError,
    TransformInfo,
    _check_fallback,
    _passthrough,
    _read_state,
)

__all__ = ["ReinhardNormalizer", "lab_to_rgb", "rgb_to_lab"]

_XYZ_FROM_RGB = np.array(
    [[0.412453, 0.357580, 0.180423], [0.212671, 0.715160, 0.072169], [0.019334, 0.119193, 0.950227]]
)
_RGB_FROM_XYZ = np.linalg.inv(_XYZ_FROM_RGB)
_WHITE_D65 = np.array([0.95047, 1.0, 1.08883])
_CHUNK = 1 << 16


def _srgb_to_linear(x: np.ndarray) -> np.ndarray:
    """Undo the sRGB companding of float32 values in [0, 1] (a new array)."""
    low = x <= 0.04045
    lin = np.power((x + np.float32(0.055)) / np.float32(1.055), np.float32(2.4))
    lin[low] = x[low] / np.float32(12.92)
    return lin


def _linear_to_srgb(x: np.ndarray) -> np.ndarray:
    low = x <= 0.0031308
    pos = np.maximum(x, np.float32(0.0))
    out = np.float32(1.055) * np.power(pos, np.float32(1.0 / 2.4)) - np.float32(0.055)
    out[low] = x[low] * np.float32(12.92)
    return out


_U8_LINEAR = _srgb_to_linear(np.arange(256, dtype=np.float32) / np.float32(255.0))
# (3, 3) maps linear RGB rows to XYZ / white: xyz_w = rgb_lin @ _LIN_TO_XYZW
_LIN_TO_XYZW = (_XYZ_FROM_RGB / _WHITE_D65[:, None]).T.astype(np.float32)
_XYZW_TO_LIN = np.linalg.inv(_LIN_TO_XYZW.astype(np.float64)).astype(np.float32)


def _lab_from_pixels(pixels: np.ndarray) -> np.ndarray:
    """(N, 3) validated pixels -> (N, 3) float32 Lab."""
    if pixels.dtype == np.uint8:
        lin = _U8_LINEAR[pixels]
    else:
        x = pixels.astype(np.float32) * np.float32(intensity_scale(pixels) / 255.0)
        lin = _srgb_to_linear(x)
    t = lin @ _LIN_TO_XYZW  # (N, 3) XYZ over the white point
    small = t <= 0.008856
    f = np.cbrt(t)
    f[small] = np.float32(7.787) * t[small] + np.float32(16.0 / 116.0)
    lab = np.empty_like(f)
    lab[:, 0] = np.float32(116.0) * f[:, 1] - np.float32(16.0)
    lab[:, 1] = np.float32(500.0) * (f[:, 0] - f[:, 1])
    lab[:, 2] = np.float32(200.0) * (f[:, 1] - f[:, 2])
    return lab


def _rgb_from_lab(lab: np.ndarray) -> np.ndarray:
    """(N, 3) Lab -> (N, 3) float32 sRGB in [0, 1] (clipped)."""
    fy = (lab[:, 0] + np.float32(16.0)) / np.float32(116.0)
    f = np.empty_like(lab, dtype=np.float32)
    f[:, 1] = fy
    f[:, 0] = fy + lab[:, 1] / np.float32(500.0)
    f[:, 2] = fy - lab[:, 2] / np.float32(200.0)
    np.maximum(f[:, 2], 0.0, out=f[:, 2])  # skimage clips negative z
    big = f > 0.2068966
    t = np.where(big, f * f * f, (f - np.float32(16.0 / 116.0)) / np.float32(7.787))
    lin = t @ _XYZW_TO_LIN
    rgb = _linear_to_srgb(lin)
    np.clip(rgb, 0.0, 1.0, out=rgb)
    return rgb


def rgb_to_lab(image: Any) -> np.ndarray:
    """Convert an RGB image to CIELAB (D65, 2°), like ``skimage.color.rgb2lab`` in float32.

    Parameters
    ----------
    image : ndarray of shape (H, W, 3)
        uint8, uint16 or float in [0, 1]. Never modified.

    Returns
    -------
    ndarray of shape (H, W, 3) and dtype float32
        L in [0, 100], a and b roughly in [-128, 127].
    """
    image = check_rgb(image)
    h, w = image.shape[:2]
    return _lab_from_pixels(image.reshape(-1, 3)).reshape(h, w, 3)


def lab_to_rgb(lab: Any) -> np.ndarray:
    """Convert CIELAB (D65, 2°) to an RGB image, like ``skimage.color.lab2rgb``.

    Parameters
    ----------
    lab : ndarray of shape (H, W, 3)

    Returns
    -------
    ndarray of shape (H, W, 3) and dtype float32
        sRGB in [0, 1] (out-of-gamut colours clipped).
    """
    lab = np.asarray(lab)
    if lab.ndim != 3 or lab.shape[-1] != 3:
        raise ValueError(f"lab: expected an array of shape (H, W, 3), got {describe(lab)}")
    if lab.dtype.kind not in "iuf" or not np.isfinite(lab).all():
        raise ValueError(f"lab: expected finite numbers, got {describe(lab)}")
    h, w = lab.shape[:2]
    return _rgb_from_lab(lab.reshape(-1, 3).astype(np.float32)).reshape(h, w, 3)


def _tissue_fraction(image: np.ndarray, beta: float, io: float = 240.0, max_pixels: int = 2**16) -> float:
    from .macenko import _sample

    sample = _sample(image, max_pixels).reshape(-1, 3)
    od = od_lut(io)[sample] if sample.dtype == np.uint8 else None
    if od is None:
        from .macenko import _to_od

        od = _to_od(sample, io)
    lo = np.minimum(np.minimum(od[:, 0], od[:, 1]), od[:, 2])
    return float(np.count_nonzero(lo >= beta)) / max(lo.shape[0], 1)


def lab_stats(image: np.ndarray, max_pixels: int | None = 2**16) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel Lab mean and standard deviation of a validated image (grid subsample)."""
    from .macenko import _sample

    lab = _lab_from_pixels(_sample(image, max_pixels).reshape(-1, 3)).astype(np.float64)
    return lab.mean(axis=0), lab.std(axis=0)


class ReinhardNormalizer:
    """Reinhard colour transfer: match the per-channel Lab mean and standard deviation of a target.

    Parameters
    ----------
    min_tissue_fraction : float
        Images with less tissue than this (OD >= ``beta`` in every channel at Io 240) are blank: a plain
        Reinhard transfer would paint the white background with the target's mean colour. Such a source
        raises :class:`StainEstimationError` unless ``fallback`` is set; such a target always raises.
        0 turns the check off (the original method).
    beta : float
        OD threshold for tissue (as in Macenko).
    max_pixels : int or None
        Statistics on a regular grid subsample of at most this many pixels (None: every pixel).
    fallback : {None, "passthrough", "reference"}
        For blank sources: raise, return a copy of the input, or use the target's own statistics (which
        leaves the image unchanged up to rounding).

    Notes
    -----
    ``x' = (x - μ_src) σ_tgt / σ_src + μ_tgt`` per Lab channel. A channel without variation in the source
    (``σ_src < 1e-6``) is only shifted.

    References
    ----------
    E. Reinhard, M. Ashikhmin, B. Gooch and P. Shirley, "Color transfer between images", IEEE CG&A 2001.
    """

    def __init__(
        self,
        *,
        min_tissue_fraction: float = 0.05,
        beta: float = 0.15,
        max_pixels: int | None = 2**16,
        fallback: Fallback | None = None,
    ) -> None:
        self.min_tissue_fraction = float(
            check_positive(min_tissue_fraction, "min_tissue_fraction", allow_zero=True)
        )
        self.beta = float(check_positive(beta, "beta", allow_zero=True))
        self.max_pixels = max_pixels
        _check_fallback(fallback)
        self.fallback = fallback
        self.target_means_: np.ndarray | None = None
        self.target_stds_: np.ndarray | None = None

    def _stats(self, image: np.ndarray, name: str) -> tuple[np.ndarray, np.ndarray]:
        if self.min_tissue_fraction > 0:
            frac = _tissue_fraction(image, self.beta, max_pixels=self.max_pixels or 2**62)
            if frac < self.min_tissue_fraction:
                raise StainEstimationError(
                    f"{name}: too little tissue for colour statistics: {100 * frac:.1f} % of pixels "
                    f"have OD >= "
                    f"beta={self.beta:g} in every channel, below min_tissue_fraction="
                    f"{100 * self.min_tissue_fraction:.1f} % (a blank or background tile?)"
                )
        return lab_stats(image, self.max_pixels)

    def fit(self, target: Any) -> ReinhardNormalizer:
        """Measure the target's Lab means and standard deviations; return ``self``.

        Raises
        ------
        StainEstimationError
            For a blank target, or one without colour variation.
        """
        target = check_rgb(target, "target")
        means, stds = self._stats(target, "target")
        if not (stds > 1e-6).all():
            raise StainEstimationError(
                f"target: a Lab channel has no variation (standard deviations {np.round(stds, 6).tolist()}); "
                "a uniform image cannot serve as a target"
            )
        self.target_means_, self.target_stds_ = means, stds
        return self

    def _target(self) -> tuple[np.ndarray, np.ndarray]:
        if self.target_means_ is None or self.target_stds_ is None:
            raise RuntimeError("ReinhardNormalizer: call fit(target) (or load(path)) before transform")
        return self.target_means_, self.target_stds_

    def transform(
        self,
        image: Any,
        *,
        fallback: Fallback | Literal["default"] | None = "default",
        return_info: bool = False,
    ) -> np.ndarray | tuple[np.ndarray, TransformInfo]:
        """Map an image's Lab statistics onto the target's.

        Parameters
        ----------
        image : ndarray of shape (H, W, 3)
            uint8, uint16 or float in [0, 1]. Never modified.
        fallback : {None, "passthrough", "reference"}, optional
            Overrides the normalizer's ``fallback`` for this call.
        return_info : bool
            Also return a :class:`TransformInfo`.

        Returns
        -------
        ndarray of shape (H, W, 3)
            uint8 for uint8 input, uint16 for uint16, float32 in [0, 1] for float input.
        """
        mu_t, sd_t = self._target()
        image = check_rgb(image)
        fb = self.fallback if fallback == "default" else fallback
        _check_fallback(fb)
        info = TransformInfo(None)
        try:
            mu_s, sd_s = self._stats(image, "image")
        except StainEstimationError as exc:
            if fb is None:
                raise
            if fb == "passthrough":
                res = _passthrough(image)
                return (res, TransformInfo("passthrough", str(exc))) if return_info else res
            mu_s, sd_s = mu_t, sd_t
            info = TransformInfo("reference", str(exc))
        scale = (sd_t / np.where(sd_s > 1e-6, sd_s, sd_t)).astype(np.float32)
        shift = (mu_t - mu_s * scale).astype(np.float32)
        out = _map_lab(image, scale, shift)
        return (out, info) if return_info else out

    def state_dict(self) -> dict[str, Any]:
        """Return the settings and fitted state as plain JSON-ready values."""
        mu, sd = self._target()
        return {
            "kind": "ReinhardNormalizer",
            "version": 1,
            "params": {
                "min_tissue_fraction": self.min_tissue_fraction,
                "beta": self.beta,
                "max_pixels": self.max_pixels,
                "fallback": self.fallback,
            },
            "target": {"means": mu.tolist(), "stds": sd.tolist()},
        }

    def save(self, path: str | Path) -> Path:
        """Save the settings and fitted state as JSON; return the path."""
        from ..report import write_text_atomic

        path = Path(path)
        write_text_atomic(path, json.dumps(self.state_dict(), indent=2) + "\n")
        return path

    @classmethod
    def load(cls, path: str | Path) -> ReinhardNormalizer:
        """Load a normalizer saved with :meth:`save`."""
        state = _read_state(path, "ReinhardNormalizer")
        norm = cls(**state["params"])
        mu = np.asarray(state["target"]["means"], dtype=np.float64)
        sd = np.asarray(state["target"]["stds"], dtype=np.float64)
        if mu.shape != (3,) or sd.shape != (3,) or not np.all(sd > 0):
            raise ValueError(f"{path}: the saved target statistics have the wrong shape or zero deviations")
        norm.target_means_, norm.target_stds_ = mu, sd
        return norm

    def __repr__(self) -> str:
        fitted = "fitted" if self.target_means_ is not None else "not fitted"
        return f"ReinhardNormalizer(min_tissue_fraction={self.min_tissue_fraction:g}; {fitted})"


def _map_lab(image: np.ndarray, scale: np.ndarray, shift: np.ndarray) -> np.ndarray:
    """Apply ``lab * scale + shift`` per pixel, chunk by chunk, in the input's dtype family."""
    h, w = image.shape[:2]
    if image.dtype == np.uint16:
        out_dtype, out_scale = np.uint16, 65535.0
    elif image.dtype.kind == "f":
        out_dtype, out_scale = np.float32, 1.0
    else:
        out_dtype, out_scale = np.uint8, 255.0
    src = image if image.dtype.kind != "i" else image.astype(np.uint8)
    out = np.empty((h, w, 3), dtype=out_dtype)
    rows = max(1, _CHUNK // max(w, 1))
    for r0 in range(0, h, rows):
        lab = _lab_from_pixels(src[r0 : r0 + rows].reshape(-1, 3))
        lab *= scale
        lab += shift
        rgb = _rgb_from_lab(lab)
        if out_dtype == np.float32:
            out[r0 : r0 + rows] = rgb.reshape(-1, w, 3)
        else:
            rgb *= np.float32(out_scale)
            rgb += np.float32(0.5)
            out[r0 : r0 + rows] = rgb.reshape(-1, w, 3).astype(out_dtype)
    return out
