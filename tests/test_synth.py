"""Tests of nk.synth: truth consistency, determinism, Beer-Lambert, annotation simulators, crops."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

import nucleikit as nk

S = nk.synth
KINDS = {"he": S.he_tile, "ki67": S.ki67_tile}
ALLOWED = {"he": S.HE_CLASS_REGIONS, "ki67": S.KI67_CLASS_REGIONS}


@pytest.mark.parametrize("kind", ["he", "ki67"])
@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_every_instance_has_one_centroid_inside_and_a_class(kind, seed):
    truth = KINDS[kind]((128, 160), rng=seed).truth
    n = truth.n
    assert n > 5
    assert truth.labels.dtype == np.int32
    assert truth.labels.shape == (128, 160)
    assert np.array_equal(np.unique(truth.labels), np.arange(n + 1))  # ids 1..N, all present
    assert truth.centroids_rc.shape == (n, 2)
    assert truth.classes.shape == (n,)
    rc = np.round(truth.centroids_rc).astype(int)
    assert np.array_equal(truth.labels[rc[:, 0], rc[:, 1]], np.arange(1, n + 1))
    assert truth.classes.min() >= 0
    assert truth.classes.max() < len(truth.class_names)


@pytest.mark.parametrize("kind", ["he", "ki67"])
def test_region_map_agrees_with_where_each_class_sits(kind):
    for seed in range(6):
        truth = KINDS[kind]((128, 128), rng=seed).truth
        rc = np.round(truth.centroids_rc).astype(int)
        at = truth.regions[rc[:, 0], rc[:, 1]]
        assert np.array_equal(at, truth.instance_regions)
        for region, cls in zip(at, truth.classes, strict=False):
            assert region in ALLOWED[kind][int(cls)], (
                seed,
                truth.region_names[region],
                truth.class_names[cls],
            )
        # every pixel of a nucleus carries its region
        inside = truth.labels > 0
        per_pixel = truth.instance_regions[truth.labels[inside] - 1]
        assert np.array_equal(truth.regions[inside], per_pixel)


def test_class_and_region_names():
    he, ki = S.he_tile((64, 64), rng=0).truth, S.ki67_tile((64, 64), rng=0).truth
    assert he.class_names == ("tumour", "lymphocyte", "fibroblast")
    assert ki.class_names == ("ki67_positive_tumour", "ki67_negative_tumour", "non_tumour")
    assert "tumour" in he.region_names
    assert "background" in he.region_names
    assert ki.region_names == ("background", "tumour", "non_tumour")
    assert he.tissue_type in S.TISSUE_TYPES
    assert len(S.TISSUE_TYPES) >= 4
    assert len([s for s in S.STYLES.values() if s.kind == "he"]) >= 4
    assert len([s for s in S.STYLES.values() if s.kind == "ihc"]) >= 2
    assert len(S.ORGANS) >= 2


@pytest.mark.parametrize("kind", ["he", "ki67"])
def test_same_rng_same_tile_and_different_rng_different_tile(kind):
    a, b, c = KINDS[kind]((96, 96), rng=7), KINDS[kind]((96, 96), rng=7), KINDS[kind]((96, 96), rng=8)
    assert np.array_equal(a.image, b.image)
    assert np.array_equal(a.truth.labels, b.truth.labels)
    np.testing.assert_array_equal(a.truth.concentrations, b.truth.concentrations)
    assert not np.array_equal(a.image, c.image)
    assert not np.array_equal(a.truth.labels, c.truth.labels)


@pytest.mark.parametrize("kind", ["he", "ki67"])
def test_stain_matrix_recovered_from_od_by_least_squares(kind):
    tile = KINDS[kind]((96, 96), difficulty="clean", rng=3)
    truth = tile.truth
    img = S.render(truth, difficulty="clean", as_float=True)
    od = -np.log(img.astype(np.float64) / truth.style.background)  # (H, W, 3)
    conc = truth.concentrations.reshape(-1, truth.concentrations.shape[-1]).astype(np.float64)
    fitted, *_ = np.linalg.lstsq(conc, od.reshape(-1, 3), rcond=None)  # (n, 3)
    np.testing.assert_allclose(fitted, truth.stain_matrix, atol=1e-6)
    np.testing.assert_allclose(np.linalg.norm(truth.stain_matrix, axis=1), 1.0, atol=1e-12)
    assert np.array_equal(truth.stain_matrix, truth.style.stains)
    # the uint8 image is the same rendering, quantised
    assert np.abs(tile.image.astype(float) - img * 255).max() <= 0.5 + 1e-3


def test_rerendered_other_style_has_same_labels_and_other_colours():
    tile = S.he_tile((96, 96), rng=5)
    before = tile.truth.concentrations.copy()
    other = S.render(tile.truth, "he_lab_d", rng=0)
    assert other.shape == tile.image.shape
    assert other.dtype == np.uint8
    assert np.abs(other.astype(int) - tile.image.astype(int)).mean() > 3
    np.testing.assert_array_equal(tile.truth.concentrations, before)  # no mutation
    same = S.render(tile.truth, tile.truth.style, difficulty="clean")
    again = S.render(tile.truth, difficulty="clean")
    assert np.array_equal(same, again)
    with pytest.raises(ValueError, match="ihc"):
        S.render(tile.truth, "ihc_lab_a")


def test_mpp_scales_nucleus_sizes():
    def median_area(mpp):
        areas = []
        for seed in range(3):
            t = S.he_tile((256, 256), mpp=mpp, tissue="lymphocyte", difficulty="easy", rng=seed).truth
            areas.append(np.bincount(t.labels.ravel())[1:][t.classes == 1])
        return np.median(np.concatenate(areas))

    ratio = median_area(1.0) / median_area(0.5)
    assert 0.18 < ratio < 0.33  # lengths halve -> areas quarter (pixelisation makes small ones rounder)


def test_ki67_index_is_the_expected_labelling_index():
    assert (S.ki67_tile((128, 128), ki67_index=0.0, tissue="tumour", rng=1).truth.classes != 0).all()
    assert (S.ki67_tile((128, 128), ki67_index=1.0, tissue="tumour", rng=1).truth.classes != 1).all()
    rng = np.random.default_rng(0)
    pos = neg = 0
    for _ in range(12):
        c = S.ki67_tile((256, 256), ki67_index=0.3, tissue="tumour", difficulty="easy", rng=rng).truth.classes
        pos, neg = pos + int((c == 0).sum()), neg + int((c == 1).sum())
    n = pos + neg
    assert n > 400
    assert abs(pos / n - 0.3) < 3 * np.sqrt(0.3 * 0.7 / n)  # binomial: 3 standard deviations


def test_partial_mask_fraction_and_ids():
    truth = S.he_tile((128, 128), rng=2).truth
    for fraction in (0.0, 0.3, 0.5, 1.0):
        lab, ids = S.partial_mask(truth, fraction, rng=1)
        assert len(ids) == round(fraction * truth.n)
        assert np.array_equal(np.unique(lab[lab > 0]), ids)
        np.testing.assert_array_equal(lab[lab > 0], truth.labels[lab > 0])  # ids as in the truth
        for i in ids:  # chosen nuclei are complete
            assert np.array_equal(lab == i, truth.labels == i)
    a, _ = S.partial_mask(truth, 0.5, rng=3)
    b, _ = S.partial_mask(truth, 0.5, rng=3)
    assert np.array_equal(a, b)


def test_dot_annotations_fraction_jitter_and_classes():
    truth = S.he_tile((128, 128), rng=4).truth
    pts, cls = S.dot_annotations(truth, rng=0)
    np.testing.assert_allclose(pts, truth.centroids_rc)
    np.testing.assert_array_equal(cls, truth.classes)
    pts, cls = S.dot_annotations(truth, fraction=0.25, jitter=2.0, rng=0)
    assert len(pts) == len(cls) == round(0.25 * truth.n)
    assert (pts >= 0).all()
    assert (pts[:, 0] <= 127).all()
    assert (pts[:, 1] <= 127).all()
    d = np.min(np.linalg.norm(pts[:, None] - truth.centroids_rc[None], axis=2), axis=1)
    assert 0.3 < np.median(d) < 5  # jittered, but near a centroid


def test_weak_regions_fraction():
    truth = S.he_tile((192, 192), rng=6).truth
    comp, n = S.connected_regions(truth.regions)
    assert n >= 3
    for fraction in (0.0, 0.5, 1.0):
        weak = S.weak_regions(truth, fraction, rng=2)
        labelled = np.unique(comp[weak >= 0])
        assert len(labelled) == round(fraction * n)
        np.testing.assert_array_equal(weak[weak >= 0], truth.regions[weak >= 0])
        for k in labelled:  # regions are labelled whole
            assert (weak[comp == k] >= 0).all()


@pytest.mark.parametrize("size", [27, 32])
def test_crops_are_centred_on_their_nucleus(size):
    tile = S.he_tile((160, 160), rng=9)
    truth = tile.truth
    # encode the instance id in the pixels, so the crop's centre pixel tells which nucleus it shows
    code = np.stack([truth.labels % 256, truth.labels // 256, np.zeros_like(truth.labels)], -1).astype(
        np.uint8
    )
    crops, classes = S.nucleus_crops(S.Tile(code, truth), size)
    assert crops.shape[1:] == (size, size, 3)
    assert len(crops) == len(classes) > 10
    centre = crops[:, size // 2, size // 2].astype(int)
    ids = centre[:, 0] + 256 * centre[:, 1]
    assert (ids > 0).all()
    np.testing.assert_array_equal(classes, truth.classes[ids - 1])
    # the skipped nuclei are exactly those too close to the border
    rc = np.round(truth.centroids_rc)
    h = size // 2
    inside = (rc[:, 0] >= h) & (rc[:, 0] + size - h <= 160) & (rc[:, 1] >= h) & (rc[:, 1] + size - h <= 160)
    assert len(crops) == inside.sum()
    real, _ = S.nucleus_crops([tile, tile], size, classes=[1])
    assert len(real) == 2 * (inside & (truth.classes == 1)).sum()


def test_jitter_style_and_styles():
    base = S.get_style("he_lab_a")
    a = S.jitter_style(base, 1.0, rng=0)
    b = S.jitter_style(base, 1.0, rng=0)
    assert np.array_equal(a.stains, b.stains)
    np.testing.assert_allclose(np.linalg.norm(a.stains, axis=1), 1.0)
    assert not np.allclose(a.stains, base.stains)
    assert S.jitter_style(base, 0.0, rng=0) is base
    with pytest.raises(ValueError, match="style"):
        S.get_style("he_lab_z")


def test_difficulty_knobs_change_the_tile():
    clean = S.he_tile((128, 128), difficulty="clean", rng=1)
    noisy = S.he_tile((128, 128), difficulty=S.DIFFICULTIES["clean"].replace(noise=0.05), rng=1)
    assert np.array_equal(clean.truth.labels, noisy.truth.labels)  # optics do not change the tissue
    assert np.abs(clean.image.astype(int) - noisy.image.astype(int)).mean() > 1
    with pytest.raises(ValueError, match="touching"):
        S.Difficulty(touching=1.5)
    assert dataclasses.is_dataclass(S.DEFAULT_DIFFICULTY)


@pytest.mark.parametrize(
    ("kwargs", "exc", "match"),
    [
        ({"shape": (64,)}, TypeError, "shape"),
        ({"shape": (8, 64)}, ValueError, "shape"),
        ({"mpp": -1.0}, ValueError, "mpp"),
        ({"style": "ihc_lab_a"}, ValueError, "H&E style"),
        ({"organ": "liver"}, ValueError, "organ"),
        ({"tissue": "fat"}, ValueError, "tissue"),
        ({"difficulty": "impossible"}, ValueError, "difficulty"),
    ],
)
def test_bad_input_raises(kwargs, exc, match):
    kwargs = {"shape": (64, 64), **kwargs}
    shape = kwargs.pop("shape")
    with pytest.raises(exc, match=match):
        S.he_tile(shape, rng=0, **kwargs)


def test_ki67_bad_index():
    with pytest.raises(ValueError, match="ki67_index"):
        S.ki67_tile((64, 64), ki67_index=1.5, rng=0)


def test_tile_steps_match_the_tile():
    tile, steps = S.tile_steps("he", (96, 96), rng=11)
    assert np.array_equal(tile.image, S.he_tile((96, 96), rng=11).image)
    assert len(steps) == 6
    assert np.array_equal(list(steps.values())[-1], tile.image)
