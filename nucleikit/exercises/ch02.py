"""Exercise checks for chapter 2, CNN stain transfer.

- ``02.1`` ``lab_split(image)``: the network's input and target, ``L / 50 - 1`` and ``(a*, b*) / 128``.
- ``02.2`` ``fuse(features, global_vector)``: tile the global vector over the feature map and concatenate.
- ``02.3`` ``hellinger(image, reference, bins)``: the Hellinger distance of two joint RGB histograms.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from . import register


def _image(seed: int, shape: tuple[int, int] = (20, 24)) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (*shape, 3), dtype=np.uint8)


@register("02.1")
def check_lab_split(func: Callable[..., Any]) -> None:
    """``lab_split(image)``: ``L / 50 - 1`` of shape (H, W) and ``(a*, b*) / 128`` of shape (H, W, 2)."""
    from skimage.color import rgb2lab

    for seed, shape in ((0, (20, 24)), (1, (7, 5))):
        img = _image(seed, shape)
        keep = img.copy()
        result = func(img)
        assert isinstance(result, tuple), f"return a tuple (l_in, ab), got {type(result).__name__}"
        assert len(result) == 2, f"return a tuple (l_in, ab), got {len(result)} values"
        l_in, ab = (np.asarray(x) for x in result)
        assert l_in.shape == shape, (
            f"l_in: expected shape {shape} (one channel, no channel axis), got {l_in.shape}"
        )
        assert ab.shape == (*shape, 2), f"ab: expected shape {(*shape, 2)}, got {ab.shape}"
        lab = rgb2lab(img)
        if np.allclose(l_in, lab[..., 0], atol=1e-3):
            raise AssertionError("scale the lightness: L in [0, 100] -> L / 50 - 1 in [-1, 1]")
        if np.abs(l_in).max() > 1 + 1e-6:
            raise AssertionError(
                "l_in leaves [-1, 1]: give rgb2lab floats in [0, 1] (img / 255), not 0..255 floats"
            )
        err = np.abs(l_in - (lab[..., 0] / 50 - 1)).max()
        assert err < 1e-4, f"l_in differs from L / 50 - 1 (largest difference {err:.3g})"
        if np.allclose(ab, lab[..., 1:] / 100, atol=1e-4):
            raise AssertionError("divide a* and b* by 128 (their range is about +-128), not 100")
        err = np.abs(ab - lab[..., 1:] / 128).max()
        assert err < 1e-4, f"ab differs from (a*, b*) / 128 (largest difference {err:.3g})"
        assert np.array_equal(img, keep), "the input image was modified"


@register("02.2")
def check_fuse(func: Callable[..., Any]) -> None:
    """``fuse(features, global_vector)``: (B, C, h, w) and (B, D) -> (B, C + D, h, w), features first."""
    import torch

    gen = torch.Generator().manual_seed(0)
    for b, c, d, h, w in ((2, 3, 4, 5, 6), (1, 8, 2, 3, 3)):
        feats = torch.randn(b, c, h, w, generator=gen)
        vec = torch.randn(b, d, generator=gen)
        out = func(feats, vec)
        assert isinstance(out, torch.Tensor), f"return a torch tensor, got {type(out).__name__}"
        assert tuple(out.shape) == (b, c + d, h, w), (
            f"expected shape {(b, c + d, h, w)} (features, then the tiled vector, on the channel axis), "
            f"got {tuple(out.shape)}"
        )
        if torch.allclose(out[:, :d], vec[:, :, None, None].expand(-1, -1, h, w)) and not torch.allclose(
            out[:, :c], feats
        ):
            raise AssertionError("put the features first and the tiled global vector after them (dim=1)")
        assert torch.equal(out[:, :c], feats), "the first C channels must be the features, unchanged"
        for i in range(h):
            for j in range(w):
                assert torch.equal(out[:, c:, i, j], vec), (
                    f"pixel ({i}, {j}): the last D channels must be the global vector, the same everywhere"
                )


@register("02.3")
def check_hellinger(func: Callable[..., Any]) -> None:
    """``hellinger(image, reference, bins)`` must equal :func:`nucleikit.metrics.hellinger_distance`."""
    from ..metrics import hellinger_distance

    a, b = _image(3), _image(4)
    pale = (a // 4 + 180).astype(np.uint8)
    for x, y, bins in ((a, b, 8), (a, pale, 16), (a, a, 4), (pale, b, 2)):
        got = float(func(x, y, bins))
        want = hellinger_distance(x, y, bins=bins)
        assert abs(got - want) < 1e-9, (
            f"bins={bins}: expected {want:.6f}, got {got:.6f}. Bin each channel with (v * bins) // 256, "
            "make one joint histogram of bins**3 cells per image, normalize each to sum 1, "
            "then take sqrt(1 - sum sqrt(p q))"
        )
    assert abs(float(func(a, a, 8))) < 1e-9, "an image is at distance 0 from itself"
