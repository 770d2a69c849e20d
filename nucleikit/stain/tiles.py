"""Normalize large images tile by tile, with bounded working memory and a progress bar."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from .._checks import check_positive, describe
from .macenko import MacenkoNormalizer, StainEstimate, StainEstimationError, _sample

__all__ = ["TileReport", "normalize_tiles"]


@dataclass
class TileReport:
    """What happened to each tile of :func:`normalize_tiles`.

    Attributes
    ----------
    source : StainEstimate or None
        The stains used for every tile (``source="global"``), else None.
    fallbacks : list of (row, col, kind, reason)
        Tiles (top-left pixel) for which the image's stains could not be estimated and the fallback
        ``kind`` (``"passthrough"`` or ``"reference"``) was taken.
    n_tiles : int
        Number of tiles processed.
    """

    source: StainEstimate | None = None
    fallbacks: list[tuple[int, int, str, str]] = field(default_factory=list)
    n_tiles: int = 0


def normalize_tiles(
    normalizer: Any,
    image: Any,
    *,
    tile_size: int = 1024,
    source: Literal["global", "tile"] | StainEstimate = "global",
    out: np.ndarray | None = None,
    progress: bool = True,
    fallback: Any = "default",
) -> tuple[np.ndarray, TileReport]:
    """Normalize a large image tile by tile.

    Parameters
    ----------
    normalizer : MacenkoNormalizer or ReinhardNormalizer
        A fitted normalizer.
    image : array_like of shape (H, W, 3)
        Anything sliceable like an array (an ndarray, ``np.memmap``, a ``tifffile`` memory map); read one
        tile at a time and never modified.
    tile_size : int
        Tile height and width in pixels.
    source : {"global", "tile"} or StainEstimate
        Macenko only. ``"global"`` (default) estimates the image's stains once, on a regular grid subsample
        of the whole image, and applies the same map to every tile: no seams, and blank tiles are simply
        mapped. ``"tile"`` estimates every tile on its own (the fallback then decides for blank tiles).
        A :class:`StainEstimate` is used as given.
    out : ndarray of shape (H, W, 3), optional
        Where to write (e.g. a ``np.memmap``); by default a new array of the input's dtype family.
    progress : bool
        Show a ``tqdm.auto`` progress bar.
    fallback : {None, "passthrough", "reference"}, optional
        Passed to ``transform`` for per-tile estimation.

    Returns
    -------
    ndarray of shape (H, W, 3)
        The normalized image (``out`` when given).
    TileReport
        The source stains used and the tiles that took a fallback.

    Notes
    -----
    Working memory beyond ``image`` and ``out`` is a few tiles' worth (the grid subsample for
    ``source="global"`` is at most ``normalizer.max_pixels`` pixels).
    """
    from tqdm.auto import tqdm

    if not hasattr(image, "shape") or len(image.shape) != 3 or image.shape[-1] != 3:
        raise ValueError(f"image: expected an array of shape (H, W, 3), got {describe(image)}")
    tile_size = int(check_positive(tile_size, "tile_size", integer=True))
    h, w = int(image.shape[0]), int(image.shape[1])
    report = TileReport()
    est: StainEstimate | None = None
    is_macenko = isinstance(normalizer, MacenkoNormalizer)
    if is_macenko:
        if isinstance(source, StainEstimate):
            est = source
        elif source == "global":
            sample = np.asarray(_sample(image, normalizer.max_pixels))
            try:
                est = normalizer.estimate(sample)
            except StainEstimationError:
                fb = normalizer.fallback if fallback == "default" else fallback
                if fb != "reference":
                    raise
                est = normalizer.target_
        elif source != "tile":
            raise ValueError(f"source: expected 'global', 'tile' or a StainEstimate, got {source!r}")
    report.source = est
    starts = [(r, c) for r in range(0, h, tile_size) for c in range(0, w, tile_size)]
    for r, c in tqdm(starts, disable=not progress, desc="normalizing tiles", unit="tile"):
        tile = np.asarray(image[r : r + tile_size, c : c + tile_size])
        if is_macenko:
            res, info = normalizer.transform(tile, source=est, fallback=fallback, return_info=True)
        else:
            res, info = normalizer.transform(tile, fallback=fallback, return_info=True)
        if out is None:
            out = np.empty((h, w, 3), dtype=res.dtype)
        out[r : r + tile_size, c : c + tile_size] = res
        if info.fallback is not None:
            report.fallbacks.append((r, c, info.fallback, info.reason))
        report.n_tiles += 1
    if out is None:
        out = np.empty((h, w, 3), dtype=np.asarray(image[:1, :1]).dtype)
    return out, report
