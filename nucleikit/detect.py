r"""Nucleus detection helpers: points -> proximity maps (targets) and maps -> points (peak finding).

A proximity map is 1 at a nucleus centre and decays to 0 at distance ``d`` (Xing et al. 2019, Eq. 1):

.. math::

    y(p) = \max_{q \in Q}
    \begin{cases}
        \dfrac{e^{\alpha (1 - D(p, q) / d)} - 1}{e^{\alpha} - 1} & D(p, q) \le d \\
        0 & \text{otherwise}
    \end{cases}

where Q are the annotated centres and D the Euclidean distance in pixels. Pixel (i, j) has its centre
at (row, col) = (i, j), as in scikit-image, so a point at (10, 20) gives y = 1 at pixel [10, 20].

Peak finding reverses this: keep values of at least ``xi`` times the map maximum, keep the pixels that are
the maximum of their ``(2 min_distance + 1)^2`` window (non-maximum suppression), and read the class of
each peak as the arg-max across the class maps.

The NumPy functions are the reference; the ``*_torch`` twins build the same targets on the device of
their input, for training loops that make targets on the fly.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from scipy import ndimage as ndi
from scipy.spatial import cKDTree

from ._checks import check_points, check_positive, check_probability, describe

__all__ = [
    "class_proximity_maps",
    "class_proximity_maps_torch",
    "find_peaks",
    "points_to_proximity_map",
    "points_to_proximity_map_torch",
]

_CHUNK = 2048  # points per vectorized block (bounds the temporary memory to ~ _CHUNK * (2d + 3)^2 values)


# ------------------------------------------------------------------------------------------ checks
def _check_shape(shape: Any) -> tuple[int, int]:
    try:
        h, w = (int(s) for s in shape)
    except (TypeError, ValueError):
        raise ValueError(f"shape: expected (H, W), two positive integers, got {shape!r}") from None
    if h <= 0 or w <= 0 or (h, w) != tuple(shape):
        raise ValueError(f"shape: expected (H, W), two positive integers, got {shape!r}")
    return h, w


def _check_d_alpha(d: Any, alpha: Any) -> tuple[float, float]:
    return float(check_positive(d, "d")), float(check_positive(alpha, "alpha", allow_zero=True))


def _check_classes(classes: Any, n: int, n_classes: Any) -> tuple[np.ndarray, int]:
    n_classes = int(check_positive(n_classes, "n_classes", integer=True))
    cls = np.asarray(classes)
    if cls.size == 0 and n == 0:
        return np.zeros(0, dtype=np.int64), n_classes
    if cls.ndim != 1 or cls.shape[0] != n:
        raise ValueError(f"classes: expected class ids of shape ({n},) (one per point), got {describe(cls)}")
    if cls.dtype.kind not in "iu":
        raise TypeError(f"classes: expected integer class ids in 0..{n_classes - 1}, got {describe(cls)}")
    if cls.min() < 0 or cls.max() >= n_classes:
        raise ValueError(
            f"classes: expected ids in 0..{n_classes - 1} (n_classes={n_classes}), "
            f"got values in [{cls.min()}, {cls.max()}]"
        )
    return cls.astype(np.int64, copy=False), n_classes


def _profile(dist: np.ndarray, d: float, alpha: float) -> np.ndarray:
    """Eq. 1 of one point as a function of the distance (NumPy, any shape), for ``dist <= d``."""
    x = 1.0 - dist / d
    return x if alpha == 0 else np.expm1(alpha * x) / math.expm1(alpha)  # alpha -> 0: the linear cone


# ------------------------------------------------------------------------------------------ targets
def points_to_proximity_map(
    points_rc: Any, shape: tuple[int, int], *, d: float = 15.0, alpha: float = 3.0
) -> np.ndarray:
    """Build the proximity map of Xing et al. (KiNet, Eq. 1) from nucleus centres.

    Parameters
    ----------
    points_rc : array_like of shape (N, 2)
        Nucleus centres in (row, col), pixels. Points outside the image are allowed (they still light up
        the pixels within ``d``), so crops keep the targets of nuclei cut by the border.
    shape : tuple of int
        ``(H, W)`` of the map.
    d : float, optional
        Radius of the bump in pixels (15 at the paper's 40x scale; scale it to the nucleus size).
    alpha : float, optional
        Decay: larger values make the bump sharper; 0 gives the linear cone ``1 - D/d``. Default 3.

    Returns
    -------
    ndarray of shape (H, W) and dtype float32
        Values in [0, 1]; 1 exactly at pixels that coincide with a point, 0 farther than ``d`` from all.

    Raises
    ------
    ValueError
        For points not of shape (N, 2), a bad shape, ``d <= 0`` or ``alpha < 0``.

    Notes
    -----
    Eq. 1 takes the maximum over the points; since the profile decreases with the distance, this is the
    profile of the distance to the nearest point. The map is built by scattering each point's
    ``(2 ceil(d) + 3)^2`` window with ``np.maximum.at`` (vectorized over points, no loop over pixels);
    cost O(N d^2), independent of the image size.

    References
    ----------
    .. [1] F. Xing et al., "Pixel-to-pixel learning with weak supervision for single-stage nucleus
       recognition in Ki67 images", IEEE TBME 66(11), 2019, Eq. 1.

    Examples
    --------
    >>> y = points_to_proximity_map([[2, 2]], (5, 5), d=2.0)
    >>> float(y[2, 2]), float(y[2, 4]), float(y[0, 0])
    (1.0, 0.0, 0.0)
    """
    pts = check_points(points_rc)
    h, w = _check_shape(shape)
    d, alpha = _check_d_alpha(d, alpha)
    out = np.zeros(h * w, dtype=np.float64)
    k = math.ceil(d) + 1
    off = np.arange(-k, k + 1)
    dr, dc = np.meshgrid(off, off, indexing="ij")
    dr, dc = dr.ravel(), dc.ravel()  # (P,) window offsets
    for start in range(0, len(pts), _CHUNK):
        chunk = pts[start : start + _CHUNK]
        base = np.rint(chunk).astype(np.int64)  # (n, 2)
        rows = base[:, :1] + dr  # (n, P)
        cols = base[:, 1:] + dc
        dist = np.hypot(rows - chunk[:, :1], cols - chunk[:, 1:])
        inside = (rows >= 0) & (rows < h) & (cols >= 0) & (cols < w) & (dist <= d)
        np.maximum.at(out, rows[inside] * w + cols[inside], _profile(dist[inside], d, alpha))
    return out.reshape(h, w).astype(np.float32)


def class_proximity_maps(
    points_rc: Any,
    classes: Any,
    shape: tuple[int, int],
    n_classes: int,
    *,
    d: float = 15.0,
    alpha: float = 3.0,
) -> np.ndarray:
    """Build one proximity map per class (KiNet's regression targets).

    Parameters
    ----------
    points_rc : array_like of shape (N, 2)
        Nucleus centres in (row, col).
    classes : array_like of shape (N,) and integer dtype
        Class of each point, in ``0 .. n_classes - 1``.
    shape : tuple of int
        ``(H, W)``.
    n_classes : int
        Number of maps C.
    d, alpha : float, optional
        As in :func:`points_to_proximity_map`.

    Returns
    -------
    ndarray of shape (C, H, W) and dtype float32
        Map c holds Eq. 1 for the points of class c only (all zeros for a class without points).

    Raises
    ------
    ValueError
        For points/classes of mismatched length, classes out of range, or bad ``shape``, ``d``, ``alpha``.
    TypeError
        For non-integer classes.
    """
    pts = check_points(points_rc)
    cls, n_classes = _check_classes(classes, len(pts), n_classes)
    h, w = _check_shape(shape)
    return np.stack(
        [points_to_proximity_map(pts[cls == c], (h, w), d=d, alpha=alpha) for c in range(n_classes)]
    )


# ------------------------------------------------------------------------------------------ torch
def _torch_points(points_rc: Any):
    import torch

    if not isinstance(points_rc, torch.Tensor):
        raise TypeError(
            f"points_rc: expected a torch.Tensor of shape (N, 2) (its device sets the output's), "
            f"got {describe(points_rc)}; use points_to_proximity_map for NumPy arrays"
        )
    # float64 for the distances, except on Apple's MPS, which has no float64
    dtype = torch.float32 if points_rc.device.type == "mps" else torch.float64
    if points_rc.numel() == 0:
        return points_rc.reshape(0, 2).to(dtype)
    if points_rc.ndim != 2 or points_rc.shape[1] != 2:
        raise ValueError(
            f"points_rc: expected points of shape (N, 2) in (row, col), got {describe(points_rc)}"
        )
    pts = points_rc.detach().to(dtype)
    if not torch.isfinite(pts).all():
        raise ValueError("points_rc: expected finite coordinates, got NaN or inf")
    return pts


def points_to_proximity_map_torch(
    points_rc: Any, shape: tuple[int, int], *, d: float = 15.0, alpha: float = 3.0
):
    """Torch twin of :func:`points_to_proximity_map`, built on the device of ``points_rc``.

    Parameters
    ----------
    points_rc : torch.Tensor of shape (N, 2)
        Nucleus centres in (row, col); any float or integer dtype; any device.
    shape : tuple of int
        ``(H, W)``.
    d, alpha : float, optional
        As in :func:`points_to_proximity_map`.

    Returns
    -------
    torch.Tensor of shape (H, W) and dtype float32
        On ``points_rc.device``; equal to the NumPy version up to float32 rounding (the distances are
        computed in float64, float32 on MPS). Not differentiable with respect to the points (targets
        need no gradient).

    Raises
    ------
    TypeError
        When ``points_rc`` is not a tensor.
    ValueError
        For bad shapes or parameters, as the NumPy version.
    """
    import torch

    pts = _torch_points(points_rc)
    h, w = _check_shape(shape)
    d, alpha = _check_d_alpha(d, alpha)
    device = pts.device
    out = torch.zeros(h * w, dtype=pts.dtype, device=device)
    k = math.ceil(d) + 1
    off = torch.arange(-k, k + 1, device=device)
    dr, dc = torch.meshgrid(off, off, indexing="ij")
    dr, dc = dr.reshape(-1), dc.reshape(-1)  # (P,)
    for start in range(0, pts.shape[0], _CHUNK):
        chunk = pts[start : start + _CHUNK]
        base = torch.round(chunk).to(torch.int64)  # (n, 2); round half to even, like np.rint
        rows = base[:, :1] + dr  # (n, P)
        cols = base[:, 1:] + dc
        dist = torch.hypot(rows - chunk[:, :1], cols - chunk[:, 1:])
        inside = (rows >= 0) & (rows < h) & (cols >= 0) & (cols < w) & (dist <= d)
        x = 1.0 - dist[inside] / d
        y = x if alpha == 0 else torch.expm1(alpha * x) / math.expm1(alpha)
        out.scatter_reduce_(0, rows[inside] * w + cols[inside], y, reduce="amax", include_self=True)
    return out.reshape(h, w).to(torch.float32)


def class_proximity_maps_torch(
    points_rc: Any,
    classes: Any,
    shape: tuple[int, int],
    n_classes: int,
    *,
    d: float = 15.0,
    alpha: float = 3.0,
):
    """Torch twin of :func:`class_proximity_maps`, built on the device of ``points_rc``.

    Parameters
    ----------
    points_rc : torch.Tensor of shape (N, 2)
        Nucleus centres in (row, col).
    classes : torch.Tensor or array_like of shape (N,) and integer dtype
        Class of each point, in ``0 .. n_classes - 1``.
    shape : tuple of int
        ``(H, W)``.
    n_classes : int
        Number of maps C.
    d, alpha : float, optional
        As in :func:`points_to_proximity_map`.

    Returns
    -------
    torch.Tensor of shape (C, H, W) and dtype float32
        On ``points_rc.device``.

    Raises
    ------
    TypeError
        When ``points_rc`` is not a tensor, or for non-integer classes.
    ValueError
        For mismatched lengths, classes out of range or bad parameters.
    """
    import torch

    pts = _torch_points(points_rc)
    cls_np = classes.detach().cpu().numpy() if isinstance(classes, torch.Tensor) else np.asarray(classes)
    cls_np, n_classes = _check_classes(cls_np, pts.shape[0], n_classes)
    cls = torch.as_tensor(cls_np, device=pts.device)
    h, w = _check_shape(shape)
    if pts.shape[0] == 0:
        _check_d_alpha(d, alpha)
        return torch.zeros((n_classes, h, w), dtype=torch.float32, device=pts.device)
    return torch.stack(
        [points_to_proximity_map_torch(pts[cls == c], (h, w), d=d, alpha=alpha) for c in range(n_classes)]
    )


# ------------------------------------------------------------------------------------------ peaks
def find_peaks(
    maps: Any,
    *,
    xi: float = 0.5,
    min_distance: int = 5,
    exclude_border: bool | int = False,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Find nuclei as local maxima of a proximity map, or of class maps with a class per peak.

    Parameters
    ----------
    maps : array_like of shape (H, W) or (C, H, W)
        One map, or one map per class (e.g. KiNet's output moved to NumPy).
    xi : float, optional
        Relative threshold ξ in [0, 1]: values below ``xi * max`` are suppressed, where ``max`` is the
        maximum over the whole (combined) map. Default 0.5 (Xing et al.).
    min_distance : int, optional
        Non-maximum suppression window: a peak is the largest value of the square
        ``(2 min_distance + 1) x (2 min_distance + 1)`` window centred on it, so two peaks are always more
        than ``min_distance`` pixels apart in both row and column (Chebyshev distance). Default 5 (the
        KiNet code).
    exclude_border : bool or int, optional
        False (default): peaks on the border are kept. True: drop peaks within ``min_distance`` pixels of
        the border (``peak_local_max``'s default); an int gives that width instead.

    Returns
    -------
    points_rc : ndarray of shape (K, 2) and dtype float64
        Peak positions (row, col), whole pixels.
    classes : ndarray of shape (K,) and dtype int64
        Arg-max across the C maps at each peak (ties: the lowest class); zeros for a single map.
    scores : ndarray of shape (K,) and dtype float64
        Value of the combined map at each peak. Sorted from highest to lowest (ties in raster order).

    Raises
    ------
    ValueError
        For maps that are not 2-D or 3-D, empty or non-finite; ``xi`` outside [0, 1];
        ``min_distance < 1``.
    TypeError
        For a torch tensor (convert with ``.detach().cpu().numpy()``) or non-numeric maps.

    Notes
    -----
    Class maps are combined by their maximum across classes; peaks are found on that map, and the class
    is read at the peak (so each nucleus is found once, not once per class). A pixel is a peak when

    1. its value is ``>= xi * max`` and ``> 0`` (so flat zero background never makes peaks, even at ξ = 0),
    2. it equals the maximum of its window (``scipy.ndimage.maximum_filter``, vectorized), and
    3. no earlier pixel in raster order with the same value lies in its window (this only matters on
       plateaus: a flat top gives one peak, its first pixel).

    Because step 1 only removes values below the threshold, the peaks at ξ are exactly the peaks at
    ξ = 0 whose value is ``>= xi * max``: a precision-recall sweep can find the candidates once
    (``xi=0``) and threshold their scores (:func:`nucleikit.metrics.pr_curve`). On maps without exact
    ties, the result equals ``skimage.feature.peak_local_max(combined, min_distance=min_distance,
    threshold_abs=xi * max, exclude_border=exclude_border)`` (which keeps values ``> threshold`` rather
    than ``>=``).

    References
    ----------
    .. [1] F. Xing et al., "Pixel-to-pixel learning with weak supervision for single-stage nucleus
       recognition in Ki67 images", IEEE TBME 66(11), 2019.
    """
    if hasattr(maps, "detach") and hasattr(maps, "cpu"):
        raise TypeError(
            f"maps: expected a NumPy array of shape (H, W) or (C, H, W), got {describe(maps)}; "
            "convert with maps.detach().cpu().numpy()"
        )
    a = np.asarray(maps)
    if a.ndim not in (2, 3) or a.size == 0:
        raise ValueError(f"maps: expected a non-empty array of shape (H, W) or (C, H, W), got {describe(a)}")
    if a.dtype.kind not in "iuf" or a.dtype == np.bool_:
        raise TypeError(f"maps: expected real-valued maps, got {describe(a)}")
    if not np.isfinite(a).all():
        raise ValueError("maps: expected finite values, got NaN or inf")
    xi = check_probability(xi, "xi")
    min_distance = int(check_positive(min_distance, "min_distance", integer=True))
    if isinstance(exclude_border, bool):
        border = min_distance if exclude_border else 0
    else:
        border = int(check_positive(exclude_border, "exclude_border", integer=True, allow_zero=True))
    combined = a if a.ndim == 2 else a.max(axis=0)  # (H, W)
    empty = (np.zeros((0, 2)), np.zeros(0, dtype=np.int64), np.zeros(0))
    top = float(combined.max())
    if top <= 0:
        return empty
    local_max = ndi.maximum_filter(combined, size=2 * min_distance + 1, mode="nearest")
    cand = (combined == local_max) & (combined >= xi * top) & (combined > 0)
    if border:
        cand[:border] = cand[-border:] = False
        cand[:, :border] = cand[:, -border:] = False
    rc = np.argwhere(cand)  # (K, 2), raster order
    if len(rc) > 1:
        # candidates within each other's window hold equal values (each is the other's window max):
        # keep the first in raster order
        pairs = cKDTree(rc).query_pairs(min_distance, p=np.inf, output_type="ndarray")  # (P, 2), i < j
        keep = np.ones(len(rc), dtype=bool)
        keep[pairs[:, 1]] = False
        rc = rc[keep]
    if len(rc) == 0:
        return empty
    scores = combined[rc[:, 0], rc[:, 1]].astype(np.float64)
    classes = (
        np.zeros(len(rc), dtype=np.int64)
        if a.ndim == 2
        else np.argmax(a[:, rc[:, 0], rc[:, 1]], axis=0).astype(np.int64)
    )
    order = np.argsort(-scores, kind="stable")
    return rc[order].astype(np.float64), classes[order], scores[order]
