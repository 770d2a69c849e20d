"""Tests for nucleikit.stain (NumPy): OD, Ruifrok, Macenko, Reinhard, robustness, persistence, tiles."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

import nucleikit as nk
from nucleikit.stain import StainEstimationError

# Three "labs": unit OD vectors (rows H, E), unlike each other and unlike Ruifrok's.
LAB_A = np.array([[0.527, 0.753, 0.394], [0.151, 0.833, 0.532]])  # Macenko fit of a real scan
LAB_B = np.array([[0.78, 0.60, 0.18], [0.10, 0.80, 0.59]])  # the re-stain of notes/stain-peers.md
LAB_C = np.array([[0.60, 0.76, 0.25], [0.18, 0.86, 0.47]])  # purple hematoxylin
LAB_A = LAB_A / np.linalg.norm(LAB_A, axis=1, keepdims=True)
LAB_B = LAB_B / np.linalg.norm(LAB_B, axis=1, keepdims=True)
LAB_C = LAB_C / np.linalg.norm(LAB_C, axis=1, keepdims=True)


def mixture_concentrations(rng: np.random.Generator, size: int = 128, background: float = 0.2) -> np.ndarray:
    """Concentrations (size, size, 2) of a toy tissue: H blobs (nuclei) on an E texture, white holes."""
    h = np.zeros((size, size))
    n = max(4, size * size // 250)
    rr, cc = rng.integers(0, size, n), rng.integers(0, size, n)
    h[rr, cc] = 1.0
    h = ndimage.gaussian_filter(ndimage.binary_dilation(h > 0, iterations=3).astype(float), 1.0)
    nucleus = np.clip(h / h.max(), 0, 1)
    h = h * rng.uniform(0.8, 1.2, size=(size, size)) * 1.6
    e = ndimage.gaussian_filter(rng.random((size, size)), 3.0)
    e = (e - e.min()) / (np.ptp(e) + 1e-12) * 1.2 + 0.4
    e *= 1.0 - 0.95 * nucleus
    hole = ndimage.gaussian_filter(rng.random((size, size)), 6.0)
    white = hole > np.quantile(hole, 1 - background) if background > 0 else np.zeros_like(hole, bool)
    c = np.stack([h, e], axis=-1)
    c[white] = 0.0
    return c


def render(conc: np.ndarray, stains: np.ndarray, *, io: float = 255.0, rng=None, noise: float = 0.0):
    """Beer-Lambert: uint8 image I = io * exp(-C S) (+ optional Gaussian noise in intensity)."""
    inten = io * np.exp(-(conc @ stains))
    if rng is not None and noise > 0:
        inten = inten + rng.normal(0, noise, inten.shape)
    return np.clip(np.round(inten), 0, 255).astype(np.uint8)


def angle_deg(u: np.ndarray, v: np.ndarray) -> float:
    u, v = np.asarray(u, float), np.asarray(v, float)
    cos = abs(u @ v) / (np.linalg.norm(u) * np.linalg.norm(v))
    return float(np.degrees(np.arccos(min(1.0, cos))))


def he_image(seed: int = 0, size: int = 128, stains: np.ndarray = LAB_A, background: float = 0.2, noise=1.0):
    rng = np.random.default_rng(seed)
    return render(mixture_concentrations(rng, size, background), stains, rng=rng, noise=noise)


# --------------------------------------------------------------------------------------------- constants
def test_ruifrok_constants_are_unit_rows_h_first():
    for m in (nk.stain.RUIFROK_HE, nk.stain.RUIFROK_HDAB, nk.stain.RUIFROK_HED):
        np.testing.assert_allclose(np.linalg.norm(m, axis=1), 1.0, atol=1e-12)
        assert not m.flags.writeable
    assert nk.stain.RUIFROK_HE.shape == (2, 3)
    assert nk.stain.RUIFROK_HDAB.shape == (2, 3)
    np.testing.assert_allclose(nk.stain.RUIFROK_HE[0], [0.651, 0.701, 0.290], atol=1e-3)
    np.testing.assert_allclose(nk.stain.RUIFROK_HDAB[1], [0.269, 0.568, 0.777], atol=1e-3)


# ------------------------------------------------------------------------------------------------ OD
def test_rgb_to_od_values_by_hand():
    img = np.array([[[255, 0, 127]]], dtype=np.uint8)
    od = nk.stain.rgb_to_od(img)
    assert od.shape == (1, 1, 3)
    assert od.dtype == np.float32
    np.testing.assert_allclose(od[0, 0], [0.0, np.log(256.0), np.log(2.0)], rtol=1e-6, atol=1e-7)
    od240 = nk.stain.rgb_to_od(img, io=240)
    np.testing.assert_allclose(od240[0, 0], -np.log((np.array([255, 0, 127]) + 1.0) / 240.0), rtol=1e-6)


def test_od_round_trip_every_uint8_value():
    values = np.arange(256, dtype=np.uint8)
    img = np.stack([*np.meshgrid(values, values[::-1], indexing="ij"), np.full((256, 256), 7, np.uint8)], -1)
    for io in (256.0, 240.0, 300.0):
        back = nk.stain.od_to_rgb(nk.stain.rgb_to_od(img, io=io), io=io)
        assert back.dtype == np.uint8
        np.testing.assert_array_equal(back, img)


def test_od_same_for_uint8_uint16_float():
    img = he_image(1, 32)
    od8 = nk.stain.rgb_to_od(img)
    od16 = nk.stain.rgb_to_od(img.astype(np.uint16) * 257)
    odf = nk.stain.rgb_to_od(img.astype(np.float32) / 255)
    np.testing.assert_allclose(od16, od8, atol=1e-5)
    np.testing.assert_allclose(odf, od8, atol=1e-5)


def test_od_to_rgb_clips_and_rejects_nan():
    od = np.array([[[-5.0, np.inf, 0.0]]])
    np.testing.assert_array_equal(nk.stain.od_to_rgb(od)[0, 0], [255, 0, 255])
    with pytest.raises(ValueError, match="NaN"):
        nk.stain.od_to_rgb(np.full((2, 2, 3), np.nan))
    with pytest.raises(ValueError, match=r"\(H, W, 3\)"):
        nk.stain.od_to_rgb(np.zeros((2, 2)))


@pytest.mark.parametrize("io", [0.5, 1.0, -3, float("nan"), 1e9])
def test_bad_io_raises(io):
    with pytest.raises(ValueError, match="io"):
        nk.stain.rgb_to_od(np.zeros((2, 2, 3), np.uint8), io=io)


# ------------------------------------------------------------------------------------------- Ruifrok
def test_deconvolve_equals_skimage_on_the_same_matrix():
    from skimage.color import separate_stains

    rng = np.random.default_rng(3)
    img = rng.integers(0, 256, (24, 24, 3), dtype=np.uint8)
    m = nk.stain.RUIFROK_HED
    ours = nk.stain.deconvolve(img, m)
    # skimage: -ln(max(x, 1e-6)) / -ln(1e-6) @ inv(M) on x in [0, 1]; ours: x = (I + 1) / 256
    ref = separate_stains((img.astype(np.float64) + 1) / 256.0, np.linalg.inv(m)) * -np.log(1e-6)
    np.testing.assert_allclose(np.maximum(ours, 0), ref, atol=2e-5)


def test_deconvolve_recombine_round_trip_full_matrix():
    img = he_image(2, 48)
    m = nk.stain.complete_stain_matrix(LAB_B)
    conc = nk.stain.deconvolve(img, m)
    assert conc.shape == (48, 48, 3)
    assert conc.dtype == np.float32
    np.testing.assert_array_equal(nk.stain.recombine(conc, m), img)


def test_deconvolve_recovers_known_concentrations():
    rng = np.random.default_rng(4)
    conc = mixture_concentrations(rng, 64)
    img = render(conc, LAB_B, io=255.0)
    est = nk.stain.deconvolve(img, LAB_B, io=256.0)
    # the rendering rounds to uint8; OD error per channel ~ 0.5 / I
    np.testing.assert_allclose(est, conc, atol=0.03)


def test_deconvolve_rejects_bad_stain_matrices():
    img = np.zeros((4, 4, 3), np.uint8)
    with pytest.raises(ValueError, match="linearly dependent"):
        nk.stain.deconvolve(img, [[1, 0, 0], [2, 0, 0]])
    with pytest.raises(ValueError, match=r"\(n_stains, 3\)"):
        nk.stain.deconvolve(img, np.eye(3)[:, :2])
    with pytest.raises(ValueError, match="finite"):
        nk.stain.deconvolve(img, [[np.nan, 0, 1], [0, 1, 0]])
    with pytest.raises(ValueError, match="shape"):
        nk.stain.recombine(np.zeros((4, 4, 3)), nk.stain.RUIFROK_HE)


# ------------------------------------------------------------------------------------------- Macenko
@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("stains", [LAB_A, LAB_B, LAB_C], ids=["A", "B", "C"])
def test_macenko_recovers_synthetic_stain_vectors(seed, stains):
    img = he_image(seed, 160, stains)
    est = nk.stain.macenko_stain_matrix(img, io=255.0)
    assert est.shape == (2, 3)
    assert angle_deg(est[0], stains[0]) < 3.0
    assert angle_deg(est[1], stains[1]) < 3.0
    np.testing.assert_allclose(np.linalg.norm(est, axis=1), 1.0, atol=1e-9)


def test_macenko_normalizer_maps_lab_c_onto_lab_a_truth():
    rng = np.random.default_rng(5)
    conc_t = mixture_concentrations(rng, 160)
    conc_s = mixture_concentrations(rng, 160)
    target = render(conc_t, LAB_A)
    source = render(conc_s * [1.3, 0.75], LAB_C)
    truth = render(conc_s, LAB_A)
    norm = nk.stain.MacenkoNormalizer(io=255.0).fit(target)
    out = norm.transform(source)
    assert out.shape == source.shape
    assert out.dtype == np.uint8
    before = np.abs(source.astype(int) - truth).mean()
    after = np.abs(out.astype(int) - truth).mean()
    assert after < 0.3 * before
    assert after < 6.0


def test_no_input_mutated_and_read_only_inputs_work():
    img = he_image(6, 64)
    target = he_image(7, 64, LAB_B)
    img.setflags(write=False)
    target.setflags(write=False)
    copy_img, copy_t = img.copy(), target.copy()
    nk.stain.rgb_to_od(img)
    nk.stain.deconvolve(img)
    nk.stain.macenko_stain_matrix(img)
    norm = nk.stain.MacenkoNormalizer().fit(target)
    norm.transform(img)
    nk.stain.ReinhardNormalizer().fit(target).transform(img)
    np.testing.assert_array_equal(img, copy_img)
    np.testing.assert_array_equal(target, copy_t)


def test_save_load_round_trip(tmp_path):
    target = he_image(8, 96, LAB_B)
    img = he_image(9, 96)
    norm = nk.stain.MacenkoNormalizer(alpha=2.0, fallback="passthrough").fit(target)
    path = norm.save(tmp_path / "macenko.json")
    back = nk.stain.MacenkoNormalizer.load(path)
    np.testing.assert_array_equal(back.stain_matrix_, norm.stain_matrix_)
    np.testing.assert_array_equal(back.max_concentrations_, norm.max_concentrations_)
    assert back.alpha == 2.0
    assert back.fallback == "passthrough"
    np.testing.assert_array_equal(back.transform(img), norm.transform(img))
    rein = nk.stain.ReinhardNormalizer().fit(target)
    back_r = nk.stain.load_normalizer(rein.save(tmp_path / "reinhard.json"))
    assert isinstance(back_r, nk.stain.ReinhardNormalizer)
    np.testing.assert_array_equal(back_r.transform(img), rein.transform(img))
    with pytest.raises(ValueError, match="expected a saved MacenkoNormalizer"):
        nk.stain.MacenkoNormalizer.load(tmp_path / "reinhard.json")


# ---------------------------------------------------------------------------------------- robustness
@pytest.fixture
def fitted():
    return nk.stain.MacenkoNormalizer().fit(he_image(11, 128))


def _blank(value=(245, 244, 246), size=64):
    return np.broadcast_to(np.array(value, np.uint8), (size, size, 3)).copy()


@pytest.mark.parametrize(
    "image",
    [
        _blank((255, 255, 255)),
        _blank((241, 238, 240)),
        np.zeros((64, 64, 3), np.uint8),
        _blank((128, 128, 128)),
        _blank((230, 150, 200)),
    ],
    ids=["white", "near-white", "black", "grey", "pink"],
)
def test_degenerate_tiles_raise_stain_estimation_error(image, fitted):
    with pytest.raises(StainEstimationError):
        nk.stain.macenko_stain_matrix(image)
    with pytest.raises(ValueError, match="image"):
        fitted.transform(image)
    with pytest.raises(ValueError, match="target"):
        nk.stain.MacenkoNormalizer().fit(image)
