"""Exercise checks for chapter 3, segmentation from partial annotations.

- ``03.1`` ``distance_weights(mask, alpha, beta)``: trust of each pixel's background label from its distance
  to the nearest annotated pixel (``m`` of Sayin Mercadier et al.).
- ``03.2`` ``keep_patch(annotated, background, radius, min_foreground, min_background)``: the paper's rule
  for training patches.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from . import register


def _masks() -> list[np.ndarray]:
    """Small annotated masks: one pixel, a square, two blobs, a random field, and a mask with nothing."""
    one = np.zeros((15, 17), bool)
    one[7, 8] = True
    square = np.zeros((20, 20), bool)
    square[3:7, 10:15] = True
    blobs = np.zeros((30, 24), bool)
    rr, cc = np.mgrid[:30, :24]
    blobs[(rr - 6) ** 2 + (cc - 6) ** 2 <= 9] = True
    blobs[(rr - 22) ** 2 + (cc - 17) ** 2 <= 16] = True
    noise = np.random.default_rng(3).random((25, 25)) < 0.02
    return [one, square, blobs, noise, np.zeros((8, 9), bool)]


@register("03.1")
def check_distance_weights(func: Callable[..., Any]) -> None:
    """``distance_weights(mask, alpha, beta)`` must equal ``nk.losses.distance_weights`` on several masks."""
    from ..losses import distance_weights

    one = _masks()[0]
    got = np.asarray(func(one.copy(), 2.0, 0.5), dtype=float)
    assert got.shape == one.shape, f"expected one weight per pixel, shape {one.shape}, got {got.shape}"
    assert got[7, 8] == 1.0, "an annotated pixel has distance 0, so its weight is 1"
    assert abs(got[7, 10] - 1.0) < 1e-6, "a pixel 2 px from the annotation (d = alpha) still has weight 1"
    far = float(np.exp(-0.5 * (6 - 2)))
    if abs(got[7, 14] - np.exp(-0.5 * 6)) < 1e-6:
        raise AssertionError("the decay starts at alpha: use exp(-beta * (d - alpha)), not exp(-beta * d)")
    assert abs(got[7, 14] - far) < 1e-6, (
        f"a pixel 6 px from the annotation should weigh exp(-0.5 * (6 - 2)) = {far:.4f} (alpha 2, beta 0.5), "
        f"got {got[7, 14]:.4f}; d is the Euclidean distance to the nearest *annotated* pixel "
        "(scipy.ndimage.distance_transform_edt of the unannotated pixels)"
    )
    for k, mask in enumerate(_masks()):
        for alpha, beta in ((5.0, 0.1), (0.0, 1.0), (3.0, 0.0)):
            keep = mask.copy()
            got = np.asarray(func(mask, alpha, beta), dtype=float)
            want = distance_weights(mask, alpha=alpha, beta=beta)
            assert np.array_equal(mask, keep), "the input mask was modified; work on a copy"
            if not mask.any():
                assert np.allclose(got, 0), (
                    "with no annotated pixel nothing is near an annotation: return zeros everywhere"
                )
                continue
            assert np.allclose(got, want, atol=1e-6), (
                f"mask {k}, alpha={alpha}, beta={beta}: values differ from the formula (largest difference "
                f"{np.abs(got - want).max():.3g})"
            )


def _brute_keep(annotated, background, radius, min_fg, min_bg) -> bool:
    from scipy import ndimage as ndi
    from skimage.morphology import disk

    selem = disk(radius) if radius > 0 else np.ones((1, 1), bool)
    fg = ndi.binary_dilation(np.asarray(annotated) > 0, structure=selem).mean()
    bg = ndi.binary_dilation(np.asarray(background) > 0, structure=selem).mean()
    return bool(fg > min_fg and bg > min_bg)


@register("03.2")
def check_keep_patch(func: Callable[..., Any]) -> None:
    """``keep_patch`` must agree with ``nk.segment.select_patches`` on single patches."""
    from ..segment import select_patches

    fg = np.zeros((32, 32), np.uint8)
    fg[14:18, 14:18] = 1  # 16 px = 1.6 % of the patch; dilated by disk(3): 80 px = 7.8 %; by disk(4): 10.9 %
    bg = np.ones((32, 32), bool)
    got = func(fg, bg, 0, 0.10, 0.40)
    assert isinstance(got, (bool, np.bool_)), f"expected True or False, got {type(got).__name__}"
    assert not got, "without dilation the nucleus covers 1.6 % of the patch, less than 10 %: drop the patch"
    assert func(fg, bg, 4, 0.10, 0.40), (
        "dilated by a disk of radius 4 the nucleus covers 10.9 % of the patch, more than 10 %: keep it"
    )
    assert not func(fg, bg, 3, 0.10, 0.40), (
        "dilated by a disk of radius 3 the nucleus covers 7.8 % of the patch, less than 10 %: drop it "
        "(use skimage.morphology.disk(radius) as the structuring element)"
    )
    assert not func(fg, np.zeros_like(bg), 4, 0.10, 0.40), "a patch without trusted background is dropped"
    rng = np.random.default_rng(0)
    for trial in range(12):
        a = (rng.random((24, 24)) < rng.uniform(0.002, 0.03)).astype(np.uint8)
        b = rng.random((24, 24)) < rng.uniform(0.002, 0.03)
        r, f_min, b_min = int(rng.integers(0, 4)), float(rng.uniform(0, 0.5)), float(rng.uniform(0, 0.5))
        keep_a, keep_b = a.copy(), b.copy()
        got = bool(func(a, b, r, f_min, b_min))
        want = (
            len(
                select_patches(
                    a[None],
                    b[None],
                    size=24,
                    stride=24,
                    dilation_radius=r,
                    min_foreground=f_min,
                    min_background=b_min,
                )
            )
            == 1
        )
        assert want == _brute_keep(a, b, r, f_min, b_min)
        assert np.array_equal(a, keep_a), "the annotated mask was modified"
        assert np.array_equal(b, keep_b), "the background mask was modified"
        assert got == want, (
            f"random case {trial} (radius {r}, min_foreground {f_min:.2f}, min_background {b_min:.2f}): "
            f"expected {want}, got {got}; both coverages must be *strictly* above their minimum"
        )
