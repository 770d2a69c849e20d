"""Colour metrics for stain normalization: distance to a reference, colour-histogram similarity, PSNR, SSIM.

Yuan & Suh (2018) score stain normalizers by the Euclidean distance, the colour-histogram correlation and
the Hellinger distance between a normalized image and the target. The report does not define the colour
scale, the histogram bins or how values are averaged, so our definitions are stated below and our numbers
are **not** on the paper's scale; compare methods with each other, not with the paper's table.

==============================  ==========================================================  ===========
function                        definition                                                  best value
==============================  ==========================================================  ===========
:func:`euclidean_distance`      mean over pixels of ``‖a - b‖₂``, RGB in [0, 1] (or Lab)     0
:func:`histogram_correlation`   Pearson correlation of the joint RGB histograms             1
:func:`hellinger_distance`      ``sqrt(1 - Σ sqrt(p q))`` of the normalized histograms      0
:func:`psnr` / :func:`ssim`     ``skimage.metrics`` on float RGB in [0, 1]                  ∞ / 1
==============================  ==========================================================  ===========

The histogram metrics compare colour distributions only (two images of different tissue can score well);
the Euclidean distance, PSNR and SSIM need a pixel-aligned reference, which synthetic tissue re-rendered in
the target style provides (``nk.synth.render(truth, style)``).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .._checks import check_positive, check_rgb, check_same_hw, rgb_to_float

__all__ = [
    "color_histogram",
    "euclidean_distance",
    "hellinger_distance",
    "histogram_correlation",
    "normalization_metrics",
    "psnr",
    "ssim",
]


def _pair(image: Any, reference: Any) -> tuple[np.ndarray, np.ndarray]:
    a = check_rgb(image, "image")
    b = check_rgb(reference, "reference")
    check_same_hw(a, b, ("image", "reference"))
    return a, b


def _check_mask(mask: Any, shape: tuple[int, ...]) -> np.ndarray | None:
    if mask is None:
        return None
    m = np.asarray(mask)
    if m.shape != shape[:2] or m.dtype != np.bool_:
        raise ValueError(
            f"mask: expected a boolean array of shape {shape[:2]}, got shape {m.shape} and dtype {m.dtype}"
        )
    if not m.any():
        raise ValueError("mask: expected at least one True pixel, got none")
    return m


def euclidean_distance(image: Any, reference: Any, *, space: str = "rgb", mask: Any = None) -> float:
    """Return the mean per-pixel Euclidean colour distance between two aligned images.

    Parameters
    ----------
    image, reference : ndarray of shape (H, W, 3)
        uint8, uint16 or float in [0, 1]; the dtypes may differ. Never modified.
    space : {"rgb", "lab"}
        ``"rgb"``: RGB scaled to [0, 1] (distances in [0, √3]); ``"lab"``: CIELAB (ΔE 1976).
    mask : ndarray of shape (H, W) and dtype bool, optional
        Average over these pixels only (e.g. tissue).

    Returns
    -------
    float
        0 for identical images.

    Raises
    ------
    ValueError
        Shapes that differ, bad images, an unknown space or an empty mask.
    """
    a, b = _pair(image, reference)
    m = _check_mask(mask, a.shape)
    if space == "rgb":
        fa, fb = rgb_to_float(a), rgb_to_float(b)
    elif space == "lab":
        from ..stain.reinhard import rgb_to_lab

        fa, fb = rgb_to_lab(a), rgb_to_lab(b)
    else:
        raise ValueError(f"space: expected 'rgb' or 'lab', got {space!r}")
    fa -= fb
    d = np.sqrt(np.einsum("hwc,hwc->hw", fa, fa, dtype=np.float64))  # (H, W)
    return float(d[m].mean() if m is not None else d.mean())


def color_histogram(image: Any, *, bins: int = 16, mask: Any = None) -> np.ndarray:
    """Return the joint RGB histogram of an image, normalized to sum 1.

    Parameters
    ----------
    image : ndarray of shape (H, W, 3)
        uint8, uint16 or float in [0, 1].
    bins : int
        Bins per channel (1..256); the histogram has ``bins**3`` cells over equal intervals of [0, 1].
    mask : ndarray of shape (H, W) and dtype bool, optional
        Count these pixels only.

    Returns
    -------
    ndarray of shape (bins, bins, bins) and dtype float64
        Indexed by (R, G, B) bin.
    """
    img = check_rgb(image)
    bins = int(check_positive(bins, "bins", integer=True))
    if bins > 256:
        raise ValueError(f"bins: expected at most 256 bins per channel, got {bins}")
    m = _check_mask(mask, img.shape)
    if img.dtype == np.uint8:
        q = (img.astype(np.int64) * bins) >> 8  # floor(v * bins / 256)
    else:
        q = np.minimum((rgb_to_float(img) * bins).astype(np.int64), bins - 1)
    idx = (q[..., 0] * bins + q[..., 1]) * bins + q[..., 2]  # (H, W)
    if m is not None:
        idx = idx[m]
    hist = np.bincount(idx.ravel(), minlength=bins**3).astype(np.float64)
    return (hist / max(hist.sum(), 1.0)).reshape(bins, bins, bins)


def histogram_correlation(image: Any, reference: Any, *, bins: int = 16, mask: Any = None) -> float:
    """Return the Pearson correlation of two images' joint RGB histograms (OpenCV's ``HISTCMP_CORREL``).

    Parameters
    ----------
    image, reference : ndarray of shape (H, W, 3)
        Need not be aligned, nor the same size (``mask`` then requires equal sizes).
    bins : int
        Bins per channel.
    mask : ndarray of shape (H, W) and dtype bool, optional
        Count these pixels only, in both images.

    Returns
    -------
    float
        In [-1, 1]; 1 for identical colour distributions.
    """
    a = check_rgb(image, "image")
    b = check_rgb(reference, "reference")
    if mask is not None:
        check_same_hw(a, b, ("image", "reference"))
    p = color_histogram(a, bins=bins, mask=mask).ravel()
    q = color_histogram(b, bins=bins, mask=mask).ravel()
    p = p - p.mean()
    q = q - q.mean()
    den = float(np.sqrt((p @ p) * (q @ q)))
    return float(p @ q) / den if den > 0 else 0.0


def hellinger_distance(image: Any, reference: Any, *, bins: int = 16, mask: Any = None) -> float:
    """Return the Hellinger distance between two images' joint RGB histograms.

    ``H(p, q) = sqrt(1 - Σ sqrt(p q))`` for histograms normalized to sum 1 (OpenCV's ``HISTCMP_HELLINGER``).

    Parameters
    ----------
    image, reference : ndarray of shape (H, W, 3)
    bins : int
        Bins per channel.
    mask : ndarray of shape (H, W) and dtype bool, optional

    Returns
    -------
    float
        In [0, 1]; 0 for identical colour distributions, 1 for disjoint ones.
    """
    a = check_rgb(image, "image")
    b = check_rgb(reference, "reference")
    if mask is not None:
        check_same_hw(a, b, ("image", "reference"))
    p = color_histogram(a, bins=bins, mask=mask)
    q = color_histogram(b, bins=bins, mask=mask)
    bc = float(np.sqrt(p * q).sum())
    return float(np.sqrt(max(0.0, 1.0 - bc)))


def psnr(image: Any, reference: Any) -> float:
    """Return the peak signal-to-noise ratio in dB between two aligned RGB images (scaled to [0, 1]).

    Returns ``inf`` for identical images.
    """
    from skimage.metrics import peak_signal_noise_ratio

    a, b = _pair(image, reference)
    fa, fb = rgb_to_float(a), rgb_to_float(b)
    if np.array_equal(fa, fb):
        return float("inf")
    return float(peak_signal_noise_ratio(fb, fa, data_range=1.0))


def ssim(image: Any, reference: Any, **kwargs: Any) -> float:
    """Return the mean structural similarity of two aligned RGB images (scaled to [0, 1]).

    Extra keyword arguments go to ``skimage.metrics.structural_similarity`` (e.g. ``gaussian_weights``).
    Images smaller than 7x7 raise ``ValueError`` (the default window).
    """
    from skimage.metrics import structural_similarity

    a, b = _pair(image, reference)
    if min(a.shape[:2]) < 7 and "win_size" not in kwargs:
        raise ValueError(f"image: expected at least 7x7 pixels for SSIM's default window, got {a.shape[:2]}")
    return float(
        structural_similarity(rgb_to_float(a), rgb_to_float(b), channel_axis=-1, data_range=1.0, **kwargs)
    )


def normalization_metrics(
    image: Any, reference: Any, *, bins: int = 16, aligned: bool = True
) -> dict[str, float]:
    """Return the stain-normalization metrics of chapters 1 and 2 as a dict.

    Keys ``euclidean``, ``hist_corr`` and ``hellinger`` (the names of :data:`nucleikit.papers.PAPERS`),
    plus ``psnr`` and ``ssim`` when ``aligned`` (the reference shows the same tissue, pixel for pixel).
    Without alignment only the histogram metrics are computed.
    """
    out = {}
    if aligned:
        out["euclidean"] = euclidean_distance(image, reference)
    out["hist_corr"] = histogram_correlation(image, reference, bins=bins)
    out["hellinger"] = hellinger_distance(image, reference, bins=bins)
    if aligned:
        out["psnr"] = psnr(image, reference)
        out["ssim"] = ssim(image, reference)
    return out
