"""Tests for nucleikit.metrics.color: colour distances, histogram similarity, PSNR, SSIM."""

from __future__ import annotations

import numpy as np
import pytest

import nucleikit as nk
from nucleikit.metrics import color
from nucleikit.papers import paper_value


def _img(seed=0, size=32):
    return np.random.default_rng(seed).integers(0, 256, (size, size, 3), dtype=np.uint8)


def test_exported_through_nk_metrics():
    for name in color.__all__:
        assert getattr(nk.metrics, name) is getattr(color, name)


def test_euclidean_distance_by_hand():
    a = np.zeros((2, 2, 3), np.uint8)
    b = np.zeros((2, 2, 3), np.uint8)
    b[0, 0] = (255, 255, 255)  # distance sqrt(3) at one pixel of four
    b[1, 1] = (0, 255, 0)  # distance 1
    assert color.euclidean_distance(a, b) == pytest.approx((np.sqrt(3) + 1) / 4, rel=1e-6)
    assert color.euclidean_distance(a, a) == 0.0
    mask = np.zeros((2, 2), bool)
    mask[1, 1] = True
    assert color.euclidean_distance(a, b, mask=mask) == pytest.approx(1.0, rel=1e-6)


def test_euclidean_distance_mixed_dtypes_and_lab():
    a = _img(1)
    assert color.euclidean_distance(a, a.astype(np.float32) / 255) == pytest.approx(0.0, abs=1e-6)
    assert color.euclidean_distance(a, a.astype(np.uint16) * 257) == pytest.approx(0.0, abs=1e-6)
    black = np.zeros((4, 4, 3), np.uint8)
    white = np.full((4, 4, 3), 255, np.uint8)
    assert color.euclidean_distance(black, white, space="lab") == pytest.approx(100.0, abs=0.01)
    with pytest.raises(ValueError, match="space"):
        color.euclidean_distance(a, a, space="hsv")


def test_color_histogram_counts_by_hand():
    img = np.array([[[0, 0, 0], [255, 255, 255]], [[0, 0, 0], [16, 0, 0]]], np.uint8)
    h = color.color_histogram(img, bins=16)
    assert h.shape == (16, 16, 16)
    assert h.sum() == pytest.approx(1.0)
    assert h[0, 0, 0] == pytest.approx(0.5)
    assert h[15, 15, 15] == pytest.approx(0.25)
    assert h[1, 0, 0] == pytest.approx(0.25)  # 16 * 16 // 256 = 1
    hf = color.color_histogram(img.astype(np.float32) / 255, bins=16)
    np.testing.assert_allclose(hf, h)
    with pytest.raises(ValueError, match="bins"):
        color.color_histogram(img, bins=300)


def test_histogram_metrics_identical_and_disjoint():
    a = _img(2)
    assert color.histogram_correlation(a, a) == pytest.approx(1.0)
    assert color.hellinger_distance(a, a) == pytest.approx(0.0, abs=1e-7)
    red = np.zeros((8, 8, 3), np.uint8)
    red[..., 0] = 200
    blue = np.zeros((8, 8, 3), np.uint8)
    blue[..., 2] = 200
    assert color.hellinger_distance(red, blue) == pytest.approx(1.0)
    assert color.histogram_correlation(red, blue) < 0.0
    # the histogram metrics ignore where colours are: a shuffled image scores perfectly
    shuffled = np.random.default_rng(3).permutation(a.reshape(-1, 3)).reshape(a.shape)
    assert color.hellinger_distance(a, shuffled) == pytest.approx(0.0, abs=1e-7)
    assert color.euclidean_distance(a, shuffled) > 0.2


def test_hellinger_against_a_direct_formula():
    a, b = _img(4, 40), _img(5, 40) // 2
    p = color.color_histogram(a, bins=8).ravel()
    q = color.color_histogram(b, bins=8).ravel()
    ref = np.sqrt(1 - np.sum(np.sqrt(p * q)))
    assert color.hellinger_distance(a, b, bins=8) == pytest.approx(ref, rel=1e-9)
    assert color.histogram_correlation(a, b, bins=8) == pytest.approx(np.corrcoef(p, q)[0, 1], rel=1e-9)


def test_psnr_and_ssim_against_skimage():
    from skimage.metrics import peak_signal_noise_ratio, structural_similarity

    a = _img(6, 48)
    b = np.clip(a.astype(int) + np.random.default_rng(7).integers(-10, 11, a.shape), 0, 255).astype(np.uint8)
    assert color.psnr(b, a) == pytest.approx(peak_signal_noise_ratio(a, b, data_range=255), rel=1e-5)
    ref = structural_similarity(a / 255.0, b / 255.0, channel_axis=-1, data_range=1.0)
    assert color.ssim(b, a) == pytest.approx(ref, rel=1e-5)
    assert color.psnr(a, a) == float("inf")
    assert color.ssim(a, a) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="7x7"):
        color.ssim(a[:5, :5], a[:5, :5])


def test_normalization_metrics_keys_match_the_papers_table():
    a, b = _img(8), _img(9)
    m = color.normalization_metrics(a, b)
    assert set(m) == {"euclidean", "hist_corr", "hellinger", "psnr", "ssim"}
    for key in ("euclidean", "hist_corr", "hellinger"):
        assert paper_value("yuan2018", "SVD (Macenko)", key) is not None
    assert set(color.normalization_metrics(a, b[:20], aligned=False)) == {"hist_corr", "hellinger"}


def test_bad_inputs_and_no_mutation():
    a, b = _img(10), _img(11)
    ca, cb = a.copy(), b.copy()
    color.normalization_metrics(a, b)
    np.testing.assert_array_equal(a, ca)
    np.testing.assert_array_equal(b, cb)
    with pytest.raises(ValueError, match="same height and width"):
        color.euclidean_distance(a, b[:10])
    with pytest.raises(ValueError, match="RGBA"):
        color.hellinger_distance(np.zeros((4, 4, 4), np.uint8), a)
    with pytest.raises(ValueError, match="mask"):
        color.euclidean_distance(a, b, mask=np.zeros(a.shape[:2], bool))
    with pytest.raises(ValueError, match="NaN"):
        color.psnr(np.full((8, 8, 3), np.nan), np.zeros((8, 8, 3)))
