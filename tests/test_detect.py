"""Tests for nucleikit.detect: proximity maps (Eq. 1 of KiNet), their torch twins, peak finding."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy import ndimage as ndi
from skimage.feature import peak_local_max

from nucleikit.detect import (
    class_proximity_maps,
    class_proximity_maps_torch,
    find_peaks,
    points_to_proximity_map,
    points_to_proximity_map_torch,
)


def eq1(dist, d, alpha):
    """Eq. 1 of Xing et al. written out directly."""
    y = 1 - dist / d if alpha == 0 else (np.exp(alpha * (1 - dist / d)) - 1) / (np.exp(alpha) - 1)
    return np.where(dist <= d, y, 0.0)


def dense_reference(points, shape, d, alpha):
    """Max over points of Eq. 1 evaluated at every pixel (O(N H W) broadcasting)."""
    rr, cc = np.mgrid[: shape[0], : shape[1]]
    out = np.zeros(shape)
    for r, c in np.asarray(points, dtype=float).reshape(-1, 2):
        out = np.maximum(out, eq1(np.hypot(rr - r, cc - c), d, alpha))
    return out


# ------------------------------------------------------------------------------ proximity maps
def test_proximity_map_hand_values():
    d, alpha = 15.0, 3.0
    y = points_to_proximity_map([[20, 30]], (41, 61), d=d, alpha=alpha)
    assert y.shape == (41, 61)
    assert y.dtype == np.float32
    assert y[20, 30] == 1.0
    e3 = math.exp(3.0)
    assert y[20, 31] == pytest.approx((math.exp(3 * (1 - 1 / 15)) - 1) / (e3 - 1), rel=1e-6)
    assert y[21, 31] == pytest.approx((math.exp(3 * (1 - math.sqrt(2) / 15)) - 1) / (e3 - 1), rel=1e-6)
    assert y[20, 40] == pytest.approx((math.e - 1) / (e3 - 1), rel=1e-6)  # D = 10: alpha (1 - D/d) = 1
    assert y[20, 45] == 0.0  # D = d: exp(0) - 1 = 0
    assert y[20, 46] == 0.0
    assert y[0, 0] == 0.0
    assert y[29, 42] == 0.0  # D = sqrt(9^2 + 12^2) = 15 = d


def test_proximity_map_takes_the_max_over_points():
    d, alpha = 4.0, 3.0
    y = points_to_proximity_map([[5, 2], [5, 6]], (11, 11), d=d, alpha=alpha)
    # pixel (5, 5) is 3 px from the first point and 1 px from the second: the nearer one wins
    assert y[5, 5] == pytest.approx(eq1(np.array(1.0), d, alpha), rel=1e-6)
    assert y[5, 4] == pytest.approx(eq1(np.array(2.0), d, alpha), rel=1e-6)  # equidistant


def test_proximity_map_equals_dense_reference_random():
    rng = np.random.default_rng(0)
    for d, alpha in [(6.0, 3.0), (7.3, 1.0), (3.5, 0.0)]:
        pts = rng.uniform(-5, 45, (25, 2))  # some outside the image: they still light it up
        y = points_to_proximity_map(pts, (40, 35), d=d, alpha=alpha)
        np.testing.assert_allclose(y, dense_reference(pts, (40, 35), d, alpha), rtol=0, atol=1e-6)


def test_proximity_map_empty_and_no_mutation():
    y = points_to_proximity_map(np.zeros((0, 2)), (4, 5))
    assert y.shape == (4, 5)
    assert not y.any()
    pts = np.array([[1.5, 2.25]])
    pts0 = pts.copy()
    points_to_proximity_map(pts, (6, 6), d=2.0)
    np.testing.assert_array_equal(pts, pts0)


def test_proximity_map_bad_input():
    with pytest.raises(ValueError, match=r"points_rc: expected points of shape \(N, 2\)"):
        points_to_proximity_map(np.zeros((3, 3)), (5, 5))
    with pytest.raises(ValueError, match=r"shape: expected \(H, W\)"):
        points_to_proximity_map([[1, 1]], (5, 0))
    with pytest.raises(ValueError, match=r"shape: expected \(H, W\)"):
        points_to_proximity_map([[1, 1]], (5, 5, 3))
    with pytest.raises(ValueError, match="d: expected a finite value > 0"):
        points_to_proximity_map([[1, 1]], (5, 5), d=0)
    with pytest.raises(ValueError, match="alpha: expected a finite value >= 0"):
        points_to_proximity_map([[1, 1]], (5, 5), alpha=-1)


def test_class_proximity_maps():
    pts = np.array([[3.0, 3.0], [10.0, 12.0], [15.0, 4.0]])
    cls = np.array([2, 0, 2])
    m = class_proximity_maps(pts, cls, (20, 16), 4, d=5.0)
    assert m.shape == (4, 20, 16)
    assert m.dtype == np.float32
    np.testing.assert_array_equal(m[0], points_to_proximity_map(pts[1:2], (20, 16), d=5.0))
    np.testing.assert_array_equal(m[2], points_to_proximity_map(pts[[0, 2]], (20, 16), d=5.0))
    assert not m[1].any()
    assert not m[3].any()
    with pytest.raises(ValueError, match=r"classes: expected ids in 0..3"):
        class_proximity_maps(pts, [0, 4, 1], (20, 16), 4)
    with pytest.raises(ValueError, match=r"classes: expected class ids of shape \(3,\)"):
        class_proximity_maps(pts, [0, 1], (20, 16), 4)
    with pytest.raises(TypeError, match="classes: expected integer class ids"):
        class_proximity_maps(pts, [0.0, 1.0, 1.0], (20, 16), 4)


# ------------------------------------------------------------------------------ torch twins
def test_torch_twin_equals_numpy():
    rng = np.random.default_rng(1)
    pts = rng.uniform(-3, 50, (30, 2))
    y_np = points_to_proximity_map(pts, (48, 50), d=6.5, alpha=3.0)
    y_t = points_to_proximity_map_torch(torch.from_numpy(pts), (48, 50), d=6.5, alpha=3.0)
    assert isinstance(y_t, torch.Tensor)
    assert y_t.dtype == torch.float32
    assert y_t.shape == (48, 50)
    np.testing.assert_allclose(y_t.numpy(), y_np, rtol=0, atol=1e-6)
    cls = rng.integers(0, 3, 30)
    m_np = class_proximity_maps(pts, cls, (48, 50), 3, d=6.5)
    m_t = class_proximity_maps_torch(torch.from_numpy(pts).float(), torch.from_numpy(cls), (48, 50), 3, d=6.5)
    assert m_t.shape == (3, 48, 50)
    np.testing.assert_allclose(m_t.numpy(), m_np, rtol=0, atol=1e-5)  # float32 input points
    empty = class_proximity_maps_torch(torch.zeros(0, 2), torch.zeros(0, dtype=torch.long), (4, 4), 2)
    assert empty.shape == (2, 4, 4)
    assert not empty.any()


def test_torch_twin_bad_input():
    with pytest.raises(TypeError, match=r"points_rc: expected a torch.Tensor of shape \(N, 2\)"):
        points_to_proximity_map_torch(np.zeros((1, 2)), (4, 4))
    with pytest.raises(ValueError, match=r"points_rc: expected points of shape \(N, 2\)"):
        points_to_proximity_map_torch(torch.zeros(2, 3), (4, 4))


@pytest.mark.gpu
def test_torch_twin_follows_the_device():
    pts = torch.tensor([[3.0, 4.0], [10.0, 2.0]], device="cuda")
    y = points_to_proximity_map_torch(pts, (16, 16), d=4.0)
    assert y.device.type == "cuda"
    np.testing.assert_allclose(
        y.cpu().numpy(), points_to_proximity_map(pts.cpu().numpy(), (16, 16), d=4.0), atol=1e-6
    )
    m = class_proximity_maps_torch(pts, torch.tensor([1, 0], device="cuda"), (16, 16), 2, d=4.0)
    assert m.device.type == "cuda"


# ------------------------------------------------------------------------------ peaks
def well_separated_points(rng, n, shape, min_sep):
    pts = []
    while len(pts) < n:
        q = rng.integers(0, shape, 2)
        if all(np.max(np.abs(q - p)) > min_sep for p in pts):
            pts.append(q)
    return np.array(pts, dtype=float)


def as_set(points):
    return {tuple(int(v) for v in p) for p in points}


def test_peaks_recover_exact_points_from_clean_maps():
    rng = np.random.default_rng(2)
    pts = well_separated_points(rng, 30, (96, 96), 8)
    y = points_to_proximity_map(pts, (96, 96), d=6.0)
    found, cls, scores = find_peaks(y, xi=0.5, min_distance=3)
    assert found.shape == (30, 2)
    assert found.dtype == np.float64
    assert cls.dtype == np.int64
    assert not cls.any()
    assert as_set(found) == as_set(pts)  # border points included (exclude_border=False)
    np.testing.assert_allclose(scores, 1.0)


def test_peaks_recover_classes_from_class_maps():
    rng = np.random.default_rng(3)
    pts = well_separated_points(rng, 24, (80, 80), 8)
    cls = rng.integers(0, 3, 24)
    maps = class_proximity_maps(pts, cls, (80, 80), 3, d=6.0)
    found, found_cls, _ = find_peaks(maps, min_distance=3)
    truth = {tuple(int(v) for v in p): int(c) for p, c in zip(pts, cls, strict=True)}
    got = {tuple(int(v) for v in p): int(c) for p, c in zip(found, found_cls, strict=True)}
    assert got == truth


def test_peaks_threshold_is_relative_to_the_max():
    pts = np.array([[10.0, 10.0], [10.0, 30.0], [30.0, 10.0]])
    y = points_to_proximity_map(pts, (40, 40), d=5.0)
    y[:, 20:] *= 0.6  # second nucleus at 0.6
    y[25:, :20] *= 0.4  # third at 0.4
    f, _, s = find_peaks(y, xi=0.5, min_distance=3)
    assert as_set(f) == {(10, 10), (10, 30)}
    np.testing.assert_allclose(s, [1.0, 0.6], rtol=1e-6)  # sorted by score
    f, _, _ = find_peaks(y, xi=0.0, min_distance=3)
    assert len(f) == 3
    f, _, _ = find_peaks(y, xi=0.6, min_distance=3)  # >= xi * max keeps the 0.6 peak
    assert len(f) == 2


def test_peaks_equal_peak_local_max_on_random_smooth_maps():
    rng = np.random.default_rng(4)
    for md in (1, 3, 5):
        img = ndi.gaussian_filter(rng.random((70, 90)), 2.0)
        thr = 0.5 * img.max()
        f, _, s = find_peaks(img, xi=0.5, min_distance=md)
        ref = peak_local_max(img, min_distance=md, threshold_abs=thr, exclude_border=False)
        assert as_set(f) == as_set(ref)
        np.testing.assert_allclose(s, img[f[:, 0].astype(int), f[:, 1].astype(int)])
        f, _, _ = find_peaks(img, xi=0.5, min_distance=md, exclude_border=True)
        ref = peak_local_max(img, min_distance=md, threshold_abs=thr, exclude_border=True)
        assert as_set(f) == as_set(ref)


def test_peaks_at_xi_are_the_xi0_peaks_above_threshold():
    rng = np.random.default_rng(5)
    maps = np.stack([ndi.gaussian_filter(rng.random((60, 60)), 1.5) for _ in range(3)])
    all_f, all_c, all_s = find_peaks(maps, xi=0.0, min_distance=2)
    for xi in (0.3, 0.7, 0.95):
        f, c, _s = find_peaks(maps, xi=xi, min_distance=2)
        keep = all_s >= xi * maps.max()
        np.testing.assert_array_equal(f, all_f[keep])
        np.testing.assert_array_equal(c, all_c[keep])


def test_peaks_plateau_gives_one_peak_and_spacing_holds():
    y = np.zeros((20, 20))
    y[5:8, 5:9] = 1.0  # flat top
    y[15, 15] = 0.7
    f, _, _ = find_peaks(y, xi=0.1, min_distance=2)
    assert as_set(f) == {(5, 5), (15, 15)}
    rng = np.random.default_rng(6)
    noisy = np.round(ndi.gaussian_filter(rng.random((50, 50)), 1.0), 2)  # many ties
    f, _, _ = find_peaks(noisy, xi=0.0, min_distance=3)
    cheb = np.max(np.abs(f[:, None] - f[None]), axis=-1) + 100 * np.eye(len(f))
    assert cheb.min() > 3


def test_peaks_zero_background_and_empty_maps():
    f, c, s = find_peaks(np.zeros((10, 10)), xi=0.0)
    assert f.shape == (0, 2)
    assert c.shape == (0,)
    assert s.shape == (0,)
    y = np.zeros((10, 10))
    y[4, 4] = 0.5
    f, _, _ = find_peaks(y, xi=0.0, min_distance=1)
    assert as_set(f) == {(4, 4)}  # the flat zero background is not a peak at xi = 0


def test_peaks_no_mutation():
    rng = np.random.default_rng(7)
    maps = rng.random((2, 20, 20)).astype(np.float32)
    m0 = maps.copy()
    find_peaks(maps, xi=0.2, exclude_border=True)
    np.testing.assert_array_equal(maps, m0)


def test_peaks_bad_input():
    with pytest.raises(
        ValueError, match=r"maps: expected a non-empty array of shape \(H, W\) or \(C, H, W\)"
    ):
        find_peaks(np.zeros((1, 2, 3, 4)))
    with pytest.raises(ValueError, match="maps: expected finite values"):
        find_peaks(np.full((3, 3), np.nan))
    with pytest.raises(ValueError, match=r"xi: expected a number in \[0, 1\]"):
        find_peaks(np.zeros((3, 3)), xi=1.5)
    with pytest.raises(ValueError, match="min_distance: expected a finite value > 0"):
        find_peaks(np.zeros((3, 3)), min_distance=0)
    with pytest.raises(TypeError, match=r"maps: expected a NumPy array .* maps.detach\(\).cpu\(\).numpy\(\)"):
        find_peaks(torch.zeros(3, 3))
