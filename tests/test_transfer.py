"""Tests for nucleikit.transfer: training pairs, training with the cache, the held-out test set, scoring."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from skimage import color

import nucleikit as nk
from nucleikit import transfer as tr

TINY = {"widths": (4, 8, 8), "global_dim": 8, "hidden_dim": 8}


@pytest.fixture(scope="module")
def pool():
    return tr.make_training_pool(8, shape=(64, 64), seed=3)


@pytest.fixture(scope="module")
def clean_set():
    return tr.make_test_set(
        3, styles=("he_lab_a", "he_lab_c"), shape=(48, 48), jitter=0.0, difficulty="clean", seed=1
    )


# ----------------------------------------------------------------------------------------- tissue labels
def test_tissue_label_hand_made_maps():
    # regions: 0 background, 1 tumour, 2 stroma, 3 lymphoid
    # tissue: 0 tumour, 1 stroma, 2 lymphocyte, 3 lumen
    r = np.zeros((4, 5), np.int64)
    assert tr.tissue_label(r) == 3  # all glass: lumen
    r[:, :3] = 2
    assert tr.tissue_label(r) == 1  # 12 stroma pixels against 8 background
    r[:, :] = 3
    r[0, :] = 1
    assert tr.tissue_label(r) == 2
    tie = np.array([[1, 1, 2, 2]])
    assert tr.tissue_label(tie) == 0  # ties go to the lower tissue index, like synth's dominant tissue


def test_tissue_label_equals_the_synthetic_tile_label():
    for i, kind in enumerate(nk.synth.TISSUE_TYPES):
        tile = nk.synth.he_tile((64, 64), tissue=kind, rng=i)
        got = tr.tissue_label(tile.truth.regions)
        assert nk.synth.TISSUE_TYPES[got] == tile.truth.tissue_type


def test_tissue_label_torch_twin_matches():
    rng = np.random.default_rng(0)
    maps = rng.integers(0, 4, (20, 6, 7))
    maps[3] = 1
    maps[4, :, :] = np.array([1, 2] * 21).reshape(6, 7)  # a tie between tumour and stroma
    got = tr._tissue_labels_torch(torch.from_numpy(maps)).numpy()
    np.testing.assert_array_equal(got, [tr.tissue_label(m) for m in maps])


def test_tissue_label_rejects_bad_input():
    with pytest.raises(ValueError, match=r"\(H, W\)"):
        tr.tissue_label(np.zeros((2, 2, 2), int))
    with pytest.raises(TypeError, match="integer"):
        tr.tissue_label(np.zeros((2, 2)))
    with pytest.raises(ValueError, match="HE_REGIONS"):
        tr.tissue_label(np.full((2, 2), 4))


# ----------------------------------------------------------------------------------------- training pool
def test_training_pool_is_balanced_deterministic_and_labelled(pool):
    assert pool.images.shape == (8, 64, 64, 3)
    assert pool.images.dtype == np.uint8
    assert pool.regions.shape == (8, 64, 64)
    # tile i was asked for tissue type i % 4; on 64 px tiles the largest compartment can differ
    asked = [nk.synth.TISSUE_TYPES.index(t.tissue_type) for t in pool.truths]
    assert asked == [0, 1, 2, 3] * 2
    np.testing.assert_array_equal(pool.tissue, [tr.tissue_label(t.regions) for t in pool.truths])
    assert (pool.tissue == asked).mean() >= 0.75
    assert pool.labels.shape == (8, 64, 64)
    assert pool.style == "he_lab_a"
    again = tr.make_training_pool(8, shape=(64, 64), seed=3)
    np.testing.assert_array_equal(again.images, pool.images)
    other = tr.make_training_pool(8, shape=(64, 64), seed=4)
    assert not np.array_equal(other.images, pool.images)
    assert pool.describe().startswith("8 tiles of 64x64 px in style he_lab_a (tumour ")


def test_training_pool_rejects_tissue_and_bad_n():
    with pytest.raises(TypeError, match="balanced"):
        tr.make_training_pool(2, shape=(32, 32), tissue="lumen")
    with pytest.raises(ValueError, match="n"):
        tr.make_training_pool(0)


def test_test_set_never_shares_tissue_with_the_pool():
    pool = tr.make_training_pool(4, shape=(48, 48), seed=0, balanced=False)
    test = tr.make_test_set(4, styles=("he_lab_b",), shape=(48, 48), seed=0)
    for a in pool.truths:
        for b in test.truths:
            assert not np.array_equal(a.labels, b.labels)


# -------------------------------------------------------------------------------------------- batches
def test_pair_batches_shapes_range_and_reproducibility(pool):
    batches = tr.pair_batches(pool, crop=32, batch_size=5, lightness_jitter=0.3)
    b1 = batches(0, torch.Generator().manual_seed(7))
    b2 = batches(0, torch.Generator().manual_seed(7))
    assert b1["l"].shape == (5, 1, 32, 32)
    assert b1["ab"].shape == (5, 2, 32, 32)
    assert b1["tissue"].shape == (5,)
    assert b1["tissue"].dtype == torch.int64
    assert b1["l"].min() >= -1
    assert b1["l"].max() <= 1
    assert b1["ab"].abs().max() <= 1
    for k in b1:
        torch.testing.assert_close(b1[k], b2[k], rtol=0, atol=0)
    b3 = batches(0, torch.Generator().manual_seed(8))
    assert not torch.equal(b3["l"], b1["l"])


def test_pair_batches_without_augmentation_are_lab_crops(pool):
    batches = tr.pair_batches(pool, crop=64, batch_size=3, augment=False)  # crop = tile: no offset
    gen = torch.Generator().manual_seed(0)
    pick = torch.randint(0, len(pool), (3,), generator=torch.Generator().manual_seed(0))
    batch = batches(0, gen)
    for b, i in enumerate(pick.tolist()):
        lab = color.rgb2lab(pool.images[i])
        np.testing.assert_allclose(batch["l"][b, 0].numpy(), lab[..., 0] / 50 - 1, atol=1e-4)
        np.testing.assert_allclose(batch["ab"][b].permute(1, 2, 0).numpy(), lab[..., 1:] / 128, atol=1e-4)
        assert int(batch["tissue"][b]) == pool.tissue[i]


def test_augmented_crops_keep_input_target_and_label_aligned(pool):
    # replay the batch's random draws: every item must be one crop of one tile, its L, a*b* and regions
    # rotated and flipped together
    crop, n = 40, 12
    batch = tr.pair_batches(pool, crop=crop, batch_size=n)(0, torch.Generator().manual_seed(5))
    gen = torch.Generator().manual_seed(5)
    pick = torch.randint(0, len(pool), (n,), generator=gen)
    rows = torch.randint(0, 64 - crop + 1, (n,), generator=gen)
    cols = torch.randint(0, 64 - crop + 1, (n,), generator=gen)
    rot = torch.randint(0, 4, (n,), generator=gen)
    flip = torch.randint(0, 2, (n,), generator=gen)
    assert len(set(zip(rot.tolist(), flip.tolist(), strict=True))) > 3  # several transforms are exercised
    for b in range(n):
        i, r, c = int(pick[b]), int(rows[b]), int(cols[b])
        lab = color.rgb2lab(pool.images[i][r : r + crop, c : c + crop])
        reg = pool.regions[i][r : r + crop, c : c + crop]

        def t(a, b=b):
            a = np.rot90(a, int(rot[b]), axes=(0, 1))
            return np.flip(a, 1) if int(flip[b]) else a

        np.testing.assert_allclose(batch["l"][b, 0].numpy(), t(lab[..., 0]) / 50 - 1, atol=1e-4)
        np.testing.assert_allclose(batch["ab"][b].permute(1, 2, 0).numpy(), t(lab[..., 1:]) / 128, atol=1e-4)
        assert int(batch["tissue"][b]) == tr.tissue_label(t(reg))


def test_lightness_jitter_changes_only_the_input_and_keeps_white(pool):
    plain = tr.pair_batches(pool, crop=48, batch_size=6, lightness_jitter=0.0)
    jittered = tr.pair_batches(pool, crop=48, batch_size=6, lightness_jitter=0.4)
    a = plain(0, torch.Generator().manual_seed(1))
    b = jittered(0, torch.Generator().manual_seed(1))
    torch.testing.assert_close(a["ab"], b["ab"], rtol=0, atol=0)
    np.testing.assert_array_equal(a["tissue"].numpy(), b["tissue"].numpy())
    assert (a["l"] - b["l"]).abs().max() > 0.02
    # a power of L/100 keeps its order, 0 and 1: the brightest pixel of each crop stays the brightest
    for k in range(6):
        assert int(a["l"][k].argmax()) == int(b["l"][k].argmax())
    white = torch.ones(1, 1, 2, 2)
    assert torch.equal(((white + 1) / 2) ** 1.3 * 2 - 1, white)


def test_pair_batches_reject_bad_arguments(pool):
    with pytest.raises(ValueError, match="crop"):
        tr.pair_batches(pool, crop=65)
    with pytest.raises(TypeError, match="TransferPool"):
        tr.pair_batches(pool.images, crop=32)
    with pytest.raises(ValueError, match="lightness_jitter"):
        tr.pair_batches(pool, crop=32, lightness_jitter=-0.1)


# ------------------------------------------------------------------------------------------- training
def test_transfer_step_loss_is_mse_plus_weighted_ce(pool):
    torch.manual_seed(0)
    net = nk.models.StainTransferNet(**TINY)
    batch = tr.pair_batches(pool, crop=32, batch_size=4)(0, torch.Generator().manual_seed(0))
    net.eval()  # same batch-norm statistics in both calls
    loss0, logs0 = tr.transfer_step(net, batch, 0, class_weight=0.0)
    loss1, logs1 = tr.transfer_step(net, batch, 0, class_weight=0.5)
    assert float(loss0.detach()) == pytest.approx(logs0["mse"], rel=1e-6)
    assert float(loss1.detach()) == pytest.approx(logs1["mse"] + 0.5 * logs1["ce"], rel=1e-6)
    assert logs1["ce"] > 0.5  # an untrained 4-class head: about ln 4
    assert 0.0 <= logs1["accuracy"] <= 1.0


def test_train_stain_transfer_learns_and_uses_the_cache(pool, tmp_path, monkeypatch):
    monkeypatch.setenv("NUCLEIKIT_CHECKPOINTS", str(tmp_path))
    opts = {**TINY, "crop": 32, "batch_size": 8, "steps": 60, "optimizer": "adam", "lr": 3e-3, "seed": 0}
    net, hist = tr.train_stain_transfer(pool, class_weight=1 / 30, name="t", **opts)
    assert not hist.from_cache
    assert not net.training
    mse = hist.logs["mse"]
    assert np.mean(mse[-2:]) < 0.5 * mse[0]  # the colouring is being learned
    assert len(list(tmp_path.glob("t-*.pt"))) == 1
    again, hist2 = tr.train_stain_transfer(pool, class_weight=1 / 30, name="t", **opts)
    assert hist2.from_cache
    for p, q in zip(net.parameters(), again.parameters(), strict=True):
        torch.testing.assert_close(p, q, rtol=0, atol=0)
    # the class weight is part of the key: MSE only is another run
    _, hist3 = tr.train_stain_transfer(pool, class_weight=0.0, name="t", **opts)
    assert not hist3.from_cache
    assert len(list(tmp_path.glob("t-*.pt"))) == 2


def test_train_options_picks_the_training_fields():
    cfg = nk.profiles.get("02_stain_transfer", "quick")
    opts = tr.train_options(cfg)
    assert opts["widths"] == cfg.widths
    assert opts["class_weight"] == cfg.class_weight
    assert "tile" not in opts
    assert "n_test" not in opts
    full = tr.train_options(nk.profiles.get("02_stain_transfer", "full"))
    assert full["optimizer"] == "adadelta"
    assert full["lr"] == 1.0
    assert full["rho"] == 0.9
    assert full["batch_size"] == 64
    assert full["crop"] == 224
    assert full["widths"] == (64, 128, 256)
    with pytest.raises(TypeError, match="settings"):
        tr.train_options([1, 2])


# ------------------------------------------------------------------------------------------- test set
def test_test_set_renders_the_same_tissue_in_every_style(clean_set):
    s = clean_set
    assert s.styles == ("he_lab_a", "he_lab_c")
    assert s.targets.shape == (3, 48, 48, 3)
    assert s.labels.shape == (3, 48, 48)
    for i, truth in enumerate(s.truths):
        # clean optics and no jitter: every rendering is exactly Beer-Lambert of the same concentrations
        np.testing.assert_array_equal(s.targets[i], nk.synth.render(truth, "he_lab_a", difficulty="clean"))
        np.testing.assert_array_equal(s.sources["he_lab_a"][i], s.targets[i])
        np.testing.assert_array_equal(
            s.sources["he_lab_c"][i], nk.synth.render(truth, "he_lab_c", difficulty="clean")
        )
        assert not np.array_equal(s.sources["he_lab_c"][i], s.targets[i])


def test_test_set_rejects_ihc_styles_and_empty_styles():
    with pytest.raises(ValueError, match="H&E"):
        tr.make_test_set(1, styles=("ihc_lab_a",), shape=(32, 32))
    with pytest.raises(ValueError, match="at least one"):
        tr.make_test_set(1, styles=(), shape=(32, 32))


def test_glass_mask_covers_lumen_not_nuclei():
    tile = nk.synth.he_tile((96, 96), tissue="lumen", rng=0)
    m = tr.glass_mask(tile.truth)
    assert m.dtype == np.bool_
    assert m.shape == (96, 96)
    assert 0.1 < m.mean() < 0.95
    assert not m[tile.truth.labels > 0].any()
    assert tr.glass_mask(tile.truth, erode=0).sum() > m.sum()
    with pytest.raises(TypeError, match="Truth"):
        tr.glass_mask(tile)


# ----------------------------------------------------------------------------------------------- scoring
def test_score_normalizer_identity_on_the_target_style_is_perfect(clean_set):
    df = tr.score_normalizer(lambda im: im, clean_set, styles=["he_lab_a"], glass=True)
    assert len(df) == 3
    assert (df["style"] == "he_lab_a").all()
    np.testing.assert_allclose(df["euclidean"], 0.0, atol=0)
    np.testing.assert_allclose(df["hist_corr"], 1.0, atol=1e-12)
    np.testing.assert_allclose(df["hellinger"], 0.0, atol=1e-6)
    assert np.isinf(df["psnr"]).all()


def test_score_normalizer_ranks_a_worse_normalizer_lower(clean_set):
    ident = tr.score_normalizer(lambda im: im, clean_set)
    assert len(ident) == 6
    # every source tile replaced by the true target: perfect on both styles
    lookup = {
        src.tobytes(): tgt
        for s in clean_set.styles
        for src, tgt in zip(clean_set.sources[s], clean_set.targets, strict=True)
    }
    oracle = tr.score_normalizer(lambda im: lookup[im.tobytes()], clean_set)
    np.testing.assert_allclose(oracle["euclidean"], 0.0, atol=0)
    c = ident["style"] == "he_lab_c"
    assert (ident.loc[c, "euclidean"] > 0.02).all()
    # a darker copy is further from the truth than the image itself
    dark = tr.score_normalizer(lambda im: (im * 0.7).astype(np.uint8), clean_set, styles=["he_lab_c"])
    assert (dark["euclidean"].to_numpy() > ident.loc[c, "euclidean"].to_numpy()).all()


def test_score_normalizer_glass_columns_use_each_tiles_own_glass():
    lumen = tr.make_test_set(3, styles=("he_lab_c",), shape=(64, 64), tissue="lumen", seed=2)
    df = tr.score_normalizer(lambda im: im, lumen, glass=True)
    masks = [tr.glass_mask(t) for t in lumen.truths]
    assert all(m.any() for m in masks)
    assert len({m.sum() for m in masks}) == 3  # different tiles, different glass
    for i, m in enumerate(masks):
        src, tgt = lumen.sources["he_lab_c"][i], lumen.targets[i]
        assert df.loc[i, "glass_euclidean"] == pytest.approx(nk.metrics.euclidean_distance(src, tgt, mask=m))
        want = nk.metrics.euclidean_distance(src, tgt, space="lab", mask=m)
        assert df.loc[i, "glass_delta_e"] == pytest.approx(want)
        assert df.loc[i, "glass_euclidean"] != pytest.approx(df.loc[i, "euclidean"])


def test_score_normalizer_checks_its_inputs(clean_set):
    with pytest.raises(ValueError, match="shape"):
        tr.score_normalizer(lambda im: im[:10], clean_set)
    with pytest.raises(ValueError, match="styles"):
        tr.score_normalizer(lambda im: im, clean_set, styles=["he_lab_d"])
    with pytest.raises(TypeError, match="TransferTestSet"):
        tr.score_normalizer(lambda im: im, clean_set.targets)
    before = clean_set.sources["he_lab_c"].copy()
    tr.score_normalizer(lambda im: 255 - im, clean_set, styles=["he_lab_c"])
    np.testing.assert_array_equal(clean_set.sources["he_lab_c"], before)


# ------------------------------------------------------------------------ chapter 2 figures and widget
def test_chapter2_figures_draw_what_they_are_given(clean_set):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    axes = nk.viz.show_lab_channels(clean_set.targets[0], title="t")
    assert len(axes) == 4
    assert axes[1].images[0].get_array().max() <= 100  # L
    plt.close("all")
    scores = {
        "identity": tr.score_normalizer(lambda im: im, clean_set),
        "dark": tr.score_normalizer(lambda im: (im * 0.7).astype(np.uint8), clean_set),
    }
    axes = nk.viz.plot_method_scores(scores, metrics=("euclidean", "ssim"))
    heights = [p.get_height() for p in axes[0].patches]
    np.testing.assert_allclose(
        heights, [scores["identity"]["euclidean"].mean(), scores["dark"]["euclidean"].mean()]
    )
    assert axes[1].get_title().startswith("ssim (higher")
    plt.close("all")
    axes = nk.viz.show_feature_maps(torch.rand(1, 5, 8, 8), n=3)
    assert len(axes) == 3
    plt.close("all")
    with pytest.raises(ValueError, match="C, h, w"):
        nk.viz.show_feature_maps(np.zeros((8, 8)))


def test_stain_strength_widget_redraws_on_the_sliders(clean_set):
    import matplotlib

    matplotlib.use("Agg")
    calls = []

    def identity(im):
        calls.append(im.copy())
        return im

    def broken(im):
        raise ValueError("no stains here")

    box = nk.widgets.stain_strength_widget(clean_set.truths[0], {"identity": identity, "broken": broken})
    picture = box.children[1]
    first = picture.value
    assert first[:4] == b"\x89PNG"
    assert len(calls) == 1
    box.children[0].children[0].value = 1.6  # more hematoxylin
    assert len(calls) == 2
    assert calls[1].mean() < calls[0].mean()  # the source got darker
    assert picture.value != first
