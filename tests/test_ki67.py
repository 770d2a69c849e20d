"""Tests for nucleikit.ki67 (chapter 7's data, decoding, scores and training helpers) and its plots."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import nucleikit as nk
from nucleikit import ki67


@pytest.fixture(scope="module")
def small_set() -> ki67.Ki67Set:
    return ki67.make_ki67_set(4, (64, 64), mpp=1.0, d=5.0, nucleus_fraction=0.5, rng=3)


# ------------------------------------------------------------------------------------------------ labels
def test_roi_labels_maps_regions_and_keeps_unlabelled():
    weak = np.array([[-1, 0, 1], [2, 1, -1]])
    keep = weak.copy()
    out = ki67.roi_labels(weak)
    np.testing.assert_array_equal(out, [[-1, 0, 1], [0, 1, -1]])  # background counts as non-tumour
    assert out.dtype == np.int64
    np.testing.assert_array_equal(weak, keep)
    with pytest.raises(ValueError, match=r"values in -1\.\.2"):
        ki67.roi_labels(np.array([[3, 0]]))
    with pytest.raises(ValueError, match=r"shape \(H, W\)"):
        ki67.roi_labels(np.zeros(4, int))


def test_disk_labels_hand_case_nearest_dot_wins():
    pts = np.array([[2.0, 2.0], [2.0, 6.0]])
    out = ki67.disk_labels(pts, np.array([0, 2]), (5, 9), radius=2.5)
    assert out.shape == (5, 9)
    assert out.dtype == np.int64
    assert out[2, 2] == 1
    assert out[2, 6] == 3
    assert out[0, 2] == 1  # distance 2
    assert out[0, 0] == 0  # distance 2.83 > 2.5
    assert out[2, 4] == 1  # equidistant (2 and 2): the first dot's class, deterministic
    assert out[2, 5] == 3  # nearer the second dot
    assert not ki67.disk_labels(np.zeros((0, 2)), np.zeros(0, int), (3, 4), 2.0).any()
    with pytest.raises(ValueError, match="one per point"):
        ki67.disk_labels(pts, np.array([0]), (5, 9), 2.0)


# -------------------------------------------------------------------------------------------------- sets
def test_make_ki67_set_shapes_indicator_and_targets(small_set):
    s = small_set
    assert s.images.shape == (4, 64, 64, 3)
    assert s.images.dtype == np.uint8
    assert s.targets.shape == (4, 3, 64, 64)
    assert s.targets.dtype == np.float32
    assert s.roi.shape == (4, 64, 64)
    np.testing.assert_array_equal(s.has_nuclei, [True, True, False, False])
    assert set(np.unique(s.roi)) <= {-1, 0, 1}
    for i, t in enumerate(s.truths):
        if s.has_nuclei[i]:
            want = nk.detect.class_proximity_maps(t.centroids_rc, t.classes, (64, 64), 3, d=5.0)
            np.testing.assert_array_equal(s.targets[i], want)
            np.testing.assert_array_equal(
                s.pixel_classes[i], ki67.disk_labels(t.centroids_rc, t.classes, (64, 64), 2.5)
            )
        else:
            assert not s.targets[i].any()
            assert (s.pixel_classes[i] == -1).all()
    assert s.n_nuclei == sum(t.n for t in s.truths) > 0
    assert "seed=3" in s.key
    assert "4 images of 64x64" in s.describe()


def test_make_ki67_set_is_deterministic_and_keyed_only_for_int_seeds(small_set):
    again = ki67.make_ki67_set(4, (64, 64), mpp=1.0, d=5.0, nucleus_fraction=0.5, rng=3)
    np.testing.assert_array_equal(again.images, small_set.images)
    np.testing.assert_array_equal(again.roi, small_set.roi)
    assert again.key == small_set.key
    other = ki67.make_ki67_set(1, (32, 32), mpp=1.0, d=5.0, rng=np.random.default_rng(3))
    assert other.key == ""
    with pytest.raises(ValueError, match="low <= high"):
        ki67.make_ki67_set(1, (32, 32), ki67_range=(0.6, 0.1), rng=0)


def test_with_nucleus_fraction_drops_labels_without_touching_the_original(small_set):
    keep = small_set.targets.copy()
    one = small_set.with_nucleus_fraction(0.25)
    np.testing.assert_array_equal(one.has_nuclei, [True, False, False, False])
    assert not one.targets[1].any()
    assert (one.pixel_classes[1] == -1).all()
    np.testing.assert_array_equal(one.targets[0], small_set.targets[0])
    np.testing.assert_array_equal(one.roi, small_set.roi)
    np.testing.assert_array_equal(small_set.targets, keep)
    assert one.key.endswith("|labelled=0.25")
    # it cannot add labels the set does not have
    np.testing.assert_array_equal(small_set.with_nucleus_fraction(1.0).has_nuclei, small_set.has_nuclei)


def test_with_disk_radius_redraws_only_the_pixel_labels(small_set):
    small = small_set.with_disk_radius(1.5)
    t = small_set.truths[0]
    np.testing.assert_array_equal(
        small.pixel_classes[0], ki67.disk_labels(t.centroids_rc, t.classes, t.shape, 1.5)
    )
    assert (small.pixel_classes[2] == -1).all()  # still no labels where the set has none
    assert (small.pixel_classes[0] > 0).sum() < (small_set.pixel_classes[0] > 0).sum()
    np.testing.assert_array_equal(small.targets, small_set.targets)
    assert small.key.endswith("|disk=1.5")


# ----------------------------------------------------------------------------------------------- batches
def test_zscore_standardises_each_image_and_channel():
    g = torch.Generator().manual_seed(0)
    x = torch.rand(2, 3, 8, 9, generator=g) * 5 + 3
    z = ki67.zscore(x)
    torch.testing.assert_close(z.mean(dim=(-2, -1)), torch.zeros(2, 3), atol=1e-5, rtol=0)
    torch.testing.assert_close(z.std(dim=(-2, -1)), torch.ones(2, 3), atol=1e-4, rtol=0)
    with pytest.raises(ValueError, match=r"\(B, C, H, W\)"):
        ki67.zscore(torch.zeros(3, 4, 4))


def test_crop_batches_transform_all_arrays_together_and_repeat_with_the_seed():
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (3, 20, 24, 3), dtype=np.uint8)
    maps = images.transpose(0, 3, 1, 2).astype(np.float32)  # (N, 3, H, W): the images themselves
    labels = images[..., 1].astype(np.int64)  # (N, H, W)
    per_image = np.array([10, 11, 12])
    b = ki67.crop_batches([images, maps, labels, per_image], crop=8, batch_size=16)
    x, m, lab, v = b(0, torch.Generator().manual_seed(1))
    assert x.shape == (16, 3, 8, 8)
    assert x.dtype == torch.float32
    assert m.shape == (16, 3, 8, 8)
    assert lab.shape == (16, 8, 8)
    assert v.shape == (16,)
    # x is the same window of the whole z-scored image, rotated/flipped like the maps and labels
    whole = torch.from_numpy(maps) / 255.0  # (N, 3, H, W)
    mean, std = whole.mean(dim=(-2, -1)), whole.std(dim=(-2, -1))  # (N, 3)
    src = v - 10
    x_from_m = (m / 255.0 - mean[src][..., None, None]) / std[src][..., None, None]
    torch.testing.assert_close(x, x_from_m, atol=1e-4, rtol=0)
    torch.testing.assert_close(lab.float(), m[:, 1])
    # each crop comes from the image its per-image value names
    for k in range(16):
        i = int(v[k]) - 10
        window = np.lib.stride_tricks.sliding_window_view(images[i, ..., 0], (8, 8))
        crop = m[k, 0].numpy()
        variants = [np.rot90(c, r) for c in (crop, np.fliplr(crop)) for r in range(4)]
        assert any((window == var).all(axis=(-2, -1)).any() for var in variants)
    again = b(0, torch.Generator().manual_seed(1))
    torch.testing.assert_close(again[0], x)
    with pytest.raises(ValueError, match="at most 20"):
        ki67.crop_batches([images], crop=21, batch_size=2)
    with pytest.raises(ValueError, match=r"arrays\[1\]"):
        ki67.crop_batches([images, maps[:2]], crop=8, batch_size=2)


# ---------------------------------------------------------------------------------------------- decoding
def test_clean_targets_decode_to_the_truth(small_set):
    cands = ki67.maps_to_candidates(small_set.targets[:2], min_distance=2)
    rc, cls = small_set.points()
    res = ki67.evaluate(cands, rc[:2], cls[:2], radius=5.0)
    assert res["det_f1"] == 1.0
    assert res["cls_f1"] == 1.0
    assert res["tp_distance_px"] <= 0.75
    assert res["ki67_abs_error"] == 0.0
    assert res["cls_pr_auc"] > 0.95


def test_pixels_to_candidates_one_point_per_component():
    probs = np.zeros((4, 12, 20), np.float32)
    probs[0] = 1.0
    blobs = {(3, 3): 1, (8, 15): 3}  # centre -> channel (1 + class)
    for (r, c), ch in blobs.items():
        probs[0, r - 1 : r + 2, c - 1 : c + 2] = 0.1
        probs[ch, r - 1 : r + 2, c - 1 : c + 2] = 0.9
    probs[2, 8, 15] = 0.95  # one pixel of another class does not flip the component's class
    probs[3, 8, 15] = 0.0
    probs[0, 0, 19] = 0.4  # a single-pixel component, removed by min_size
    probs[1, 0, 19] = 0.6
    keep = probs.copy()
    (c,) = ki67.pixels_to_candidates(probs, min_size=2)
    order = np.argsort(c.points_rc[:, 0])
    np.testing.assert_allclose(c.points_rc[order], [[3, 3], [8, 15]])
    np.testing.assert_array_equal(c.classes[order], [0, 2])
    np.testing.assert_allclose(c.scores[order], [0.9, 0.9])
    np.testing.assert_array_equal(probs, keep)
    (all_,) = ki67.pixels_to_candidates(probs)
    assert len(all_.points_rc) == 3
    # touching disks merge into one component: one detection for two nuclei
    probs[1:, 5:7, 3:16] = 0.0
    probs[1, 3:9, 3:16] = 0.9
    probs[0, 3:9, 3:16] = 0.1
    (merged,) = ki67.pixels_to_candidates(probs, min_size=2)
    assert len(merged.points_rc) == 1
    with pytest.raises(ValueError, match=r"\(N, 1 \+ C, H, W\)"):
        ki67.pixels_to_candidates(np.zeros((1, 5, 5)))


def test_candidates_at_applies_the_relative_threshold():
    c = ki67.Candidates(np.arange(8.0).reshape(4, 2), np.array([0, 1, 2, 0]), np.array([1.0, 0.6, 0.5, 0.2]))
    pts, cls = c.at(0.5)
    np.testing.assert_array_equal(cls, [0, 1, 2])
    assert len(pts) == 3
    assert len(c.at(0.0)[0]) == 4
    assert len(c.at(1.0)[0]) == 1


# ------------------------------------------------------------------------------------------------ scores
def test_ki67_index_hand_values():
    assert ki67.ki67_index(np.array([0, 0, 1, 2, 2])) == pytest.approx(2 / 3)
    assert ki67.ki67_index([1, 1, 1, 1]) == 0.0
    assert math.isnan(ki67.ki67_index(np.array([2, 2])))
    assert math.isnan(ki67.ki67_index(np.zeros(0, int)))
    with pytest.raises(TypeError, match="integer class ids"):
        ki67.ki67_index(np.array([0.5]))


def test_evaluate_matches_the_metrics_module_and_sees_class_swaps():
    rng = np.random.default_rng(1)
    true_rc = [rng.uniform(0, 100, (40, 2)), rng.uniform(0, 100, (30, 2))]
    true_cls = [rng.integers(0, 3, 40), rng.integers(0, 3, 30)]
    cands = []
    for t, c in zip(true_rc, true_cls, strict=True):
        pts = np.concatenate([t[:-5] + rng.normal(0, 1, (len(t) - 5, 2)), rng.uniform(0, 100, (3, 2))])
        cls = np.concatenate([c[:-5], [0, 1, 2]])
        cls[:4] = (cls[:4] + 1) % 3  # four class errors
        cands.append(ki67.Candidates(pts, cls, rng.uniform(0.5, 1.0, len(pts))))
    res = ki67.evaluate(cands, true_rc, true_cls, radius=4.0, xi=0.0)
    det = nk.metrics.detection_scores(true_rc, [c.points_rc for c in cands], 4.0)
    cl = nk.metrics.classification_scores(
        true_rc, true_cls, [c.points_rc for c in cands], [c.classes for c in cands], 4.0, 3
    )
    assert res["det_f1"] == det["f1"]
    assert res["tp_distance_px"] == det["dist_mean"]
    assert res["cls_f1"] == cl["weighted_f1"]
    assert res["cls_f1"] < res["det_f1"]
    want = np.mean(
        [abs(ki67.ki67_index(t) - ki67.ki67_index(c.classes)) for t, c in zip(true_cls, cands, strict=True)]
    )
    assert res["ki67_abs_error"] == pytest.approx(want)
    assert 0 < res["cls_pr_auc"] <= res["det_pr_auc"] <= 1
    with pytest.raises(ValueError, match="one entry per image"):
        ki67.evaluate(cands[:1], true_rc, true_cls, radius=4.0)


# -------------------------------------------------------------------------------------------- inference
def test_predict_shapes_for_kinet_and_a_pixel_classifier(small_set):
    torch.manual_seed(0)
    kinet = nk.models.KiNet(base_width=2).eval()
    keep = small_set.images.copy()
    maps = ki67.predict(kinet, small_set.images[:3], batch_size=2)
    assert maps.shape == (3, 3, 64, 64)
    assert maps.dtype == np.float32
    single = ki67.predict(kinet, small_set.images[0])
    np.testing.assert_allclose(single, maps[0], atol=1e-5)
    unet = nk.models.UNet(3, 4, widths=(2, 4)).eval()
    probs = ki67.predict(unet, small_set.images[:2])
    assert probs.shape == (2, 4, 64, 64)
    np.testing.assert_allclose(probs.sum(1), 1.0, atol=1e-5)
    np.testing.assert_array_equal(small_set.images, keep)
    scores, cands = ki67.evaluate_model(unet, small_set, radius=5.0, decoder="components")
    assert len(cands) == 4
    assert set(scores) >= {"det_f1", "cls_f1", "cls_pr_auc", "ki67_abs_error"}
    with pytest.raises(ValueError, match="decoder"):
        ki67.evaluate_model(unet, small_set, radius=5.0, decoder="blobs")


# ------------------------------------------------------------------------------------------------ training
def _snapshot(model):
    return {k: v.detach().clone() for k, v in model.state_dict().items() if v.is_floating_point()}


def _changed(before, after, prefix):
    return any(
        not torch.equal(before[k], after[k]) for k in before if k.startswith(prefix) and "running" not in k
    )


def test_train_kinet_stagewise_updates_one_branch_per_stage(tmp_path, monkeypatch):
    monkeypatch.setenv("NUCLEIKIT_CHECKPOINTS", str(tmp_path))
    small_set = ki67.make_ki67_set(2, (48, 48), mpp=1.0, d=5.0, rng=4)  # every image has nucleus labels
    torch.manual_seed(0)
    model = nk.models.KiNet(base_width=2, dropout=0.0)
    snaps = [_snapshot(model)]
    cfg = nk.train.TrainConfig(steps=2, lr=1e-2, log_every=1)
    hist = ki67.train_kinet(
        model, small_set, cfg, name="t", crop=32, batch_size=2, schedule="stagewise",
        callback=lambda step, h: snaps.append(_snapshot(model)), progress=False,
    )  # fmt: skip
    assert len(snaps) == 3
    assert all(np.isfinite(hist.logs["loss"]))
    # stage 1 (step 0): ROI branch and encoder move, detection heads do not
    assert _changed(snaps[0], snaps[1], "roi_")
    assert _changed(snaps[0], snaps[1], "down.")
    assert not _changed(snaps[0], snaps[1], "head.")
    assert not _changed(snaps[0], snaps[1], "up.")
    # stage 2 (step 1): detection heads and encoder move, the ROI branch does not
    assert _changed(snaps[1], snaps[2], "head.")
    assert not _changed(snaps[1], snaps[2], "roi_")


def test_full_profile_optimiser_needs_its_gradient_clipping(tmp_path, monkeypatch):
    """The full profile's SGD (the paper's lr 0.01, momentum 0.9) diverges within a few steps on the full
    profile's network unless the gradient norm is clipped (``grad_clip``); with it the loss stays finite."""
    monkeypatch.setenv("NUCLEIKIT_CHECKPOINTS", str(tmp_path))
    full = nk.profiles.get("07_kinet", "full")
    assert full.grad_clip > 0
    assert nk.profiles.get("07_kinet", "quick").grad_clip == 0
    data = ki67.make_ki67_set(2, (96, 96), mpp=full.mpp, d=full.d_um / full.mpp, rng=0)
    losses = {}
    for clip in (None, full.grad_clip):
        torch.manual_seed(0)
        net = nk.models.KiNet(
            base_width=full.base_width, dropout=full.dropout, target_scale=full.target_scale
        )
        cfg = nk.train.TrainConfig(
            steps=8, lr=full.lr, optimizer=full.optimizer, momentum=full.momentum,
            weight_decay=full.weight_decay, grad_clip=clip, seed=0, log_every=1,
        )  # fmt: skip
        try:
            hist = ki67.train_kinet(net, data, cfg, name=f"clip{clip}", crop=64, batch_size=4, progress=False)
            losses[clip] = hist.logs["loss"]
        except FloatingPointError:
            losses[clip] = None
    assert losses[None] is None  # diverges (nan within 5 steps when measured)
    assert losses[full.grad_clip] is not None
    assert np.all(np.isfinite(losses[full.grad_clip]))
    assert max(losses[full.grad_clip]) < 5 * losses[full.grad_clip][0]


def test_fit_rejects_a_non_positive_grad_clip():
    net = torch.nn.Linear(2, 1)
    with pytest.raises(ValueError, match="grad_clip: expected a positive norm"):
        nk.train.fit(
            net, lambda m, b, s: (m(b).sum(), {}), lambda s, g: torch.ones(1, 2),
            nk.train.TrainConfig(steps=1, grad_clip=0.0), name="x", cache=False, progress=False,
        )  # fmt: skip


def test_train_kinet_cache_key_includes_the_loss_settings(small_set, tmp_path, monkeypatch):
    monkeypatch.setenv("NUCLEIKIT_CHECKPOINTS", str(tmp_path))
    cfg = nk.train.TrainConfig(steps=1, log_every=1)
    for gamma in (25.0, 5.0, 25.0):
        torch.manual_seed(0)
        net = nk.models.KiNet(base_width=2, roi_branch=False)
        hist = ki67.train_kinet(
            net, small_set, cfg, name="k", crop=32, batch_size=2, gamma=gamma, progress=False
        )
    assert len(list(tmp_path.glob("k-*.pt"))) == 2
    assert hist.from_cache  # the third run repeats the first
    with pytest.raises(ValueError, match="stagewise"):
        ki67.train_kinet(net, small_set, cfg, name="k", crop=32, batch_size=2, schedule="stagewise")
    with pytest.raises(ValueError, match="data_key"):
        ki67.train_kinet(
            net,
            ki67.make_ki67_set(1, (32, 32), rng=np.random.default_rng(0)),
            cfg,
            name="k",
            crop=32,
            batch_size=1,
        )


def test_target_scale_scales_the_fitted_targets_and_predict_undoes_it(small_set, tmp_path, monkeypatch):
    monkeypatch.setenv("NUCLEIKIT_CHECKPOINTS", str(tmp_path))
    torch.manual_seed(0)
    plain = nk.models.KiNet(base_width=2, roi_branch=False).eval()
    torch.manual_seed(0)
    scaled = nk.models.KiNet(base_width=2, roi_branch=False, target_scale=5.0).eval()
    assert "target_scale=5" in repr(scaled)
    np.testing.assert_allclose(
        ki67.predict(scaled, small_set.images[:1]), ki67.predict(plain, small_set.images[:1]) / 5.0, atol=1e-6
    )
    with pytest.raises(ValueError, match="target_scale"):
        nk.models.KiNet(base_width=2, target_scale=0.0)
    # the nucleus term of the first step is Eq. 2 on 5 x the targets: 125 x larger for predictions 5 x larger
    cfg = nk.train.TrainConfig(steps=1, log_every=1)
    losses = {}
    for k, net in (("plain", plain), ("scaled", scaled)):
        with torch.no_grad():
            for p_ in net.head.parameters():
                p_.zero_()  # both predict 0 everywhere: the loss is Eq. 2 of the targets alone
        hist = ki67.train_kinet(net.train(), small_set, cfg, name=k, crop=32, batch_size=2, progress=False)
        losses[k] = hist.logs["proximity"][0]
    assert losses["scaled"] == pytest.approx(125 * losses["plain"], rel=1e-4)


def test_choose_xi_picks_the_grid_value_with_the_best_training_f1(small_set):
    torch.manual_seed(0)
    net = nk.models.KiNet(base_width=2, roi_branch=False).eval()
    grid = (0.1, 0.5, 0.9)
    xi = ki67.choose_xi(net, small_set, radius=5.0, n_images=2, grid=grid)
    idx = np.flatnonzero(small_set.has_nuclei)[:2]
    cands = ki67.maps_to_candidates(ki67.predict(net, small_set.images[idx]), min_distance=2)
    rc = [small_set.truths[i].centroids_rc for i in idx]
    cl = [small_set.truths[i].classes for i in idx]
    f1 = [ki67.evaluate(cands, rc, cl, radius=5.0, xi=x)["det_f1"] for x in grid]
    assert xi == grid[int(np.argmax(f1))]
    with pytest.raises(ValueError, match="nucleus labels"):
        ki67.choose_xi(net, small_set.with_nucleus_fraction(0.0), radius=5.0)


def test_train_pixel_classifier_lowers_the_loss(small_set, tmp_path, monkeypatch):
    monkeypatch.setenv("NUCLEIKIT_CHECKPOINTS", str(tmp_path))
    torch.manual_seed(0)
    net = nk.models.UNet(3, 4, widths=(4, 8))
    cfg = nk.train.TrainConfig(steps=30, lr=1e-2, log_every=10)
    hist = ki67.train_pixel_classifier(net, small_set, cfg, name="u", crop=32, batch_size=4, progress=False)
    assert hist.logs["loss"][-1] < hist.logs["loss"][0]


# ----------------------------------------------------------------------------------------------- plots
def test_chapter7_plots_and_widget_smoke(small_set):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    t = small_set.truths[0]
    axes = nk.viz.show_proximity_maps(small_set.targets[0], names=t.class_names)
    assert len(axes) == 3
    ax = nk.viz.plot_detections(
        small_set.images[0], t.centroids_rc, t.classes, t.centroids_rc[:3], t.classes[:3]
    )
    assert ax.get_legend() is not None
    p, r = np.array([1.0, 0.8, np.nan]), np.array([0.2, 0.6, 0.7])
    ax = nk.viz.plot_pr_curves({"a": (p, r)}, points={"op": (0.6, 0.8)})
    assert len(ax.lines) == 2
    ax = nk.viz.plot_ki67_index(np.array([0.2, 0.5]), {"m": np.array([0.25, 0.4])})
    assert ax.get_xlim() == (0, 100)
    ax = nk.viz.plot_sweep([0.0, 5.0, 25.0], {"det": np.array([[0.1, 0.8, 0.9], [0.2, 0.7, 0.9]])}, logx=True)
    assert ax.get_xscale() == "symlog"
    ax = nk.viz.plot_sweep(["joint", "stage-wise"], {"f1": [0.8, 0.7]})
    assert [tk.get_text() for tk in ax.get_xticklabels()] == ["joint", "stage-wise"]
    hist = nk.train.History(
        steps=[0, 10, 20], logs={"loss": [2.0, 1.0, 0.5], "correlation": [0.0, 0.0, 3e-4]}
    )
    ax = nk.viz.plot_history(hist)  # log axis: the term switched off for the first steps leaves a gap
    corr = next(ln for ln in ax.lines if ln.get_label() == "correlation")
    assert np.isnan(corr.get_ydata()[:2]).all()
    assert corr.get_ydata()[2] == 3e-4
    assert hist.logs["correlation"] == [0.0, 0.0, 3e-4]  # the history itself is untouched
    ax = nk.viz.plot_history(hist, logy=False)
    lin = next(ln for ln in ax.lines if ln.get_label() == "correlation")
    assert list(lin.get_ydata()) == [0.0, 0.0, 3e-4]
    cands = ki67.maps_to_candidates(small_set.targets[:1], min_distance=2)
    rc, cls = small_set.points()
    w = nk.widgets.xi_widget(small_set.images[0], cands, rc[:1], cls[:1], radius=5.0, curve=(p, r))
    w.children[0].value = 0.9  # moving the slider redraws without error
    plt.close("all")


def test_plot_points_colours_line_markers_without_warnings():
    import warnings

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    pts, cls = np.array([[1.0, 2.0], [3.0, 4.0]]), np.array([0, 1])
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # matplotlib warns when an unfilled marker gets edge colours
        for marker in ("x", "+", "o"):
            ax = nk.viz.plot_points(pts, cls, marker=marker)
            nk.viz.plot_points(pts, marker=marker, ax=ax)
            want = matplotlib.colors.to_rgba(nk.viz.CLASS_COLORS[1])
            got = (
                ax.collections[1].get_edgecolor()[0]
                if marker == "o"
                else ax.collections[1].get_facecolor()[0]
            )
            assert tuple(got) == pytest.approx(want)
            plt.close("all")
