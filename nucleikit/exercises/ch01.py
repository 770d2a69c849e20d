"""Exercise checks for chapter 1, stain normalization.

- ``01.1`` ``rgb_to_od(image, io)``: optical density with the ``+1`` offset.
- ``01.2`` ``macenko_vectors(od_tissue, alpha)``: the two stain vectors from tissue OD pixels.
- ``01.3`` ``reinhard_transfer(lab, source_mean, source_std, target_mean, target_std)``: match Lab statistics.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from . import register


def _image(seed: int, shape: tuple[int, int] = (24, 20)) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (*shape, 3), dtype=np.uint8)


def _angle_deg(u: np.ndarray, v: np.ndarray) -> float:
    cos = abs(float(np.dot(u, v))) / (np.linalg.norm(u) * np.linalg.norm(v))
    return float(np.degrees(np.arccos(min(1.0, cos))))


@register("01.1")
def check_rgb_to_od(func: Callable[..., Any]) -> None:
    """``rgb_to_od(image, io)`` must equal ``-ln((I + 1) / io)`` as float, and leave the image alone."""
    from ..stain import rgb_to_od

    img = _image(0)
    keep = img.copy()
    for io in (240.0, 256.0):
        got = np.asarray(func(img, io))
        assert got.shape == img.shape, f"expected shape {img.shape}, got {got.shape}"
        assert got.dtype.kind == "f", f"expected float optical densities, got dtype {got.dtype}"
        want = rgb_to_od(img, io=io)
        no_offset = -np.log(np.maximum(img.astype(float), 0.5) / io)  # the same without the +1
        if np.allclose(got, no_offset, atol=1e-3):
            raise AssertionError("add 1 to the intensity before dividing by io, so that black stays finite")
        assert np.allclose(got, want, atol=1e-5), (
            f"io={io}: values differ from -ln((I + 1) / io) (largest difference "
            f"{np.abs(got - want).max():.3g}); did you convert to float before adding 1 (uint8 255 + 1 = 0)?"
        )
    assert np.array_equal(img, keep), "the input image was modified; work on a float copy"


def _od_cloud(seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Tissue OD pixels (N, 3) of a two-stain Beer-Lambert mixture, and the true (2, 3) stain vectors."""
    rng = np.random.default_rng(seed)
    stains = np.array([[0.60, 0.74, 0.30], [0.13, 0.85, 0.51]])
    stains /= np.linalg.norm(stains, axis=1, keepdims=True)
    n = 4000
    conc = np.zeros((n, 2))
    kind = rng.integers(0, 3, n)
    conc[kind == 0, 0] = rng.uniform(0.3, 1.5, (kind == 0).sum())  # nuclei
    conc[kind == 1, 1] = rng.uniform(0.3, 1.2, (kind == 1).sum())  # stroma
    conc[kind == 2] = rng.uniform(0.2, 1.0, ((kind == 2).sum(), 2))  # mixtures
    od = conc @ stains + rng.normal(0, 0.004, (n, 3))
    return od, stains


@register("01.2")
def check_macenko_vectors(func: Callable[..., Any]) -> None:
    """``macenko_vectors(od_tissue, alpha)`` -> (2, 3) unit vectors, H (larger red OD) first."""
    for seed in (1, 2):
        od, truth = _od_cloud(seed)
        keep = od.copy()
        got = np.asarray(func(od, 1.0), dtype=float)
        assert got.shape == (2, 3), f"expected shape (2, 3) (rows H, E), got {got.shape}"
        norms = np.linalg.norm(got, axis=1)
        assert np.allclose(norms, 1.0, atol=1e-6), "each stain vector must have length 1"
        assert got[0, 0] > got[1, 0], "order the rows H then E: H is the vector with the larger red component"
        assert (got.sum(axis=1) > 0).all(), "the vectors point into negative OD: flip the eigenvector's sign"
        for k, name in enumerate("HE"):
            err = _angle_deg(got[k], truth[k])
            assert err < 3.0, (
                f"seed {seed}: the {name} vector is {err:.1f} degrees from the truth; did you take the "
                "eigenvectors of the two largest eigenvalues and the alpha / 100 - alpha angle percentiles?"
            )
        assert np.array_equal(od, keep), "the input OD pixels were modified"


@register("01.3")
def check_reinhard_transfer(func: Callable[..., Any]) -> None:
    """``reinhard_transfer(lab, source_mean, source_std, target_mean, target_std)`` per channel."""
    rng = np.random.default_rng(3)
    lab = rng.normal([60, 20, -10], [10, 5, 4], (30, 40, 3))
    keep = lab.copy()
    mu_s, sd_s = lab.reshape(-1, 3).mean(0), lab.reshape(-1, 3).std(0)
    mu_t, sd_t = np.array([70.0, 25.0, -5.0]), np.array([8.0, 6.0, 3.0])
    got = np.asarray(func(lab, mu_s, sd_s, mu_t, sd_t), dtype=float)
    assert got.shape == lab.shape, f"expected shape {lab.shape}, got {got.shape}"
    flat = got.reshape(-1, 3)
    assert np.allclose(flat.mean(0), mu_t, atol=1e-6), (
        f"the output's channel means {flat.mean(0).round(3)} should equal the target's {mu_t}"
    )
    assert np.allclose(flat.std(0), sd_t, rtol=1e-6), (
        f"the output's channel standard deviations {flat.std(0).round(3)} should equal the target's {sd_t}: "
        "scale by target_std / source_std after subtracting the source mean"
    )
    assert np.array_equal(lab, keep), "the input was modified"
