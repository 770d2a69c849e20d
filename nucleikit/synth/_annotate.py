"""Annotation simulators and nucleus crop sets (see :mod:`nucleikit.synth`)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from scipy import ndimage as ndi

from .._checks import check_positive, check_probability, describe
from ._types import Tile, Truth

__all__ = ["dot_annotations", "nucleus_crops", "partial_mask", "weak_regions"]


def _truth(x: Any) -> Truth:
    if isinstance(x, Tile):
        return x.truth
    if isinstance(x, Truth):
        return x
    raise TypeError(f"truth: expected a nucleikit.synth.Truth or Tile, got {describe(x)}")


def _choose(n: int, fraction: float, rng: np.random.Generator) -> np.ndarray:
    k = round(fraction * n)
    return np.sort(rng.choice(n, size=k, replace=False)) if k else np.zeros(0, np.int64)


def partial_mask(truth: Truth | Tile, fraction: float, *, rng: Any) -> tuple[np.ndarray, np.ndarray]:
    """Simulate partial annotation: only a random subset of the nuclei is outlined.

    Parameters
    ----------
    truth : Truth or Tile
        The tile's truth.
    fraction : float
        Fraction of nuclei annotated; exactly ``round(fraction * N)`` are chosen.
    rng : int, Generator or None
        Random source.

    Returns
    -------
    labels : ndarray of shape (H, W) and dtype int32
        Instance labels of the annotated nuclei only (their ids as in ``truth.labels``), 0 elsewhere:
        0 means "not annotated", not "background".
    ids : ndarray of shape (K,) and dtype int64
        Sorted ids (1..N) of the annotated nuclei.
    """
    truth = _truth(truth)
    fraction = check_probability(fraction, "fraction")
    rng = np.random.default_rng(rng)
    ids = _choose(truth.n, fraction, rng) + 1
    keep = np.zeros(truth.n + 1, bool)
    keep[ids] = True
    out = np.where(keep[truth.labels], truth.labels, 0).astype(np.int32)
    return out, ids.astype(np.int64)


def dot_annotations(
    truth: Truth | Tile, *, fraction: float = 1.0, jitter: float = 0.0, rng: Any
) -> tuple[np.ndarray, np.ndarray]:
    """Simulate dot annotation: one click per (chosen) nucleus, near its centroid.

    Parameters
    ----------
    truth : Truth or Tile
        The tile's truth.
    fraction : float
        Fraction of nuclei clicked (exactly ``round(fraction * N)``).
    jitter : float
        Standard deviation (pixels) of the click's offset from the centroid; clicks stay in the image.
    rng : int, Generator or None
        Random source.

    Returns
    -------
    points_rc : ndarray of shape (K, 2) and dtype float64
        Clicks (row, col), in the order of the nuclei ids.
    classes : ndarray of shape (K,) and dtype int64
        Class of each clicked nucleus.
    """
    truth = _truth(truth)
    fraction = check_probability(fraction, "fraction")
    check_positive(jitter, "jitter", allow_zero=True)
    rng = np.random.default_rng(rng)
    idx = _choose(truth.n, fraction, rng)
    pts = truth.centroids_rc[idx].astype(np.float64)
    if jitter > 0 and len(pts):
        pts = pts + rng.normal(0.0, jitter, pts.shape)
        H, W = truth.shape
        pts[:, 0] = np.clip(pts[:, 0], 0, H - 1)
        pts[:, 1] = np.clip(pts[:, 1], 0, W - 1)
    return pts, truth.classes[idx].astype(np.int64)


def weak_regions(truth: Truth | Tile, fraction: float, *, rng: Any) -> np.ndarray:
    """Simulate weak region (ROI) annotation: a random subset of the tissue regions is labelled.

    The region map is cut into connected regions (one per connected area of one region value); the
    annotator labels ``round(fraction * n_regions)`` of them, each as a whole.

    Parameters
    ----------
    truth : Truth or Tile
        The tile's truth.
    fraction : float
        Fraction of connected regions labelled.
    rng : int, Generator or None
        Random source.

    Returns
    -------
    ndarray of shape (H, W) and dtype int64
        Region index (into ``truth.region_names``) where labelled, -1 where unlabelled.
    """
    truth = _truth(truth)
    fraction = check_probability(fraction, "fraction")
    rng = np.random.default_rng(rng)
    comp, n = connected_regions(truth.regions)
    chosen = _choose(n, fraction, rng) + 1
    keep = np.zeros(n + 1, bool)
    keep[chosen] = True
    return np.where(keep[comp], truth.regions, -1).astype(np.int64)


def connected_regions(regions: np.ndarray) -> tuple[np.ndarray, int]:
    """Label the connected areas of each region value: (component map 1..n, n)."""
    comp = np.zeros(regions.shape, np.int64)
    n = 0
    for value in np.unique(regions):
        lab, k = ndi.label(regions == value)
        comp[lab > 0] = lab[lab > 0] + n
        n += k
    return comp, n


def nucleus_crops(
    tiles: Tile | Sequence[Tile], size: int = 32, *, classes: Sequence[int] | None = None, rng: Any = None
) -> tuple[np.ndarray, np.ndarray]:
    """Cut square crops centred on nuclei (for the nucleus-classification chapters).

    Parameters
    ----------
    tiles : Tile or sequence of Tile
        Source tiles.
    size : int
        Crop side in pixels (e.g. 27, 32, 40). The nucleus centroid (rounded) is at pixel
        ``(size // 2, size // 2)`` of its crop.
    classes : sequence of int, optional
        Keep only nuclei of these classes.
    rng : int, Generator or None
        When given, the crops are returned in random order; otherwise in tile and id order.

    Returns
    -------
    crops : ndarray of shape (K, size, size, 3) and dtype uint8
        Crops; nuclei closer than ``size // 2`` to a tile border are skipped.
    labels : ndarray of shape (K,) and dtype int64
        Class of each crop's nucleus.
    """
    if isinstance(tiles, Tile):
        tiles = [tiles]
    check_positive(size, "size", integer=True)
    crops, labels = [], []
    h = size // 2
    for t in tiles:
        if not isinstance(t, Tile):
            raise TypeError(f"tiles: expected Tile objects, got {describe(t)}")
        H, W = t.truth.shape
        rc = np.round(t.truth.centroids_rc).astype(np.int64)
        ok = (rc[:, 0] >= h) & (rc[:, 0] + size - h <= H) & (rc[:, 1] >= h) & (rc[:, 1] + size - h <= W)
        if classes is not None:
            ok &= np.isin(t.truth.classes, np.asarray(classes))
        idx = np.flatnonzero(ok)
        if len(idx) == 0:
            continue
        d = np.arange(size) - h
        rows = rc[idx, 0][:, None, None] + d[None, :, None]
        cols = rc[idx, 1][:, None, None] + d[None, None, :]
        crops.append(t.image[rows, cols])  # (k, size, size, 3)
        labels.append(t.truth.classes[idx])
    if not crops:
        return np.zeros((0, size, size, 3), np.uint8), np.zeros(0, np.int64)
    X, y = np.concatenate(crops), np.concatenate(labels).astype(np.int64)
    if rng is not None:
        perm = np.random.default_rng(rng).permutation(len(y))
        X, y = X[perm], y[perm]
    return X, y
