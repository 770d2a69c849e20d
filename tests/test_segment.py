"""Tests for nucleikit.segment: partial sets, patch rule, batches, the training step, prediction, scores."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from scipy import ndimage as ndi
from skimage.morphology import disk

import nucleikit as nk
from nucleikit import segment
from nucleikit.data import patch_corners


@pytest.fixture(scope="module")
def small_set() -> segment.PartialSet:
    return segment.make_partial_set(2, shape=(96, 96), fraction=0.3, seed=3)


# ------------------------------------------------------------------------------------------ partial set
def test_partial_set_shapes_and_dtypes(small_set):
    ds = small_set
    assert len(ds) == 2
    assert ds.images.shape == (2, 96, 96, 3)
    assert ds.images.dtype == np.uint8
    assert ds.annotated.shape == (2, 96, 96)
    assert ds.annotated.dtype == np.uint8
    assert ds.weights.shape == (2, 96, 96)
    assert ds.weights.dtype == np.float32
    assert ds.background.dtype == np.bool_
    assert ds.full_mask.shape == (2, 96, 96)
    assert ds.labels.dtype == np.int32
    assert "2 tiles of 96x96 px" in ds.describe()


def test_partial_set_annotates_the_fraction_and_matches_the_weight_map_formula(small_set):
    ds = small_set
    for i, truth in enumerate(ds.truths):
        annotated_ids = np.unique(truth.labels[ds.annotated[i] > 0])
        assert len(annotated_ids) == round(0.3 * truth.n)
        # an annotated nucleus is annotated whole; unannotated nuclei not at all
        for k in annotated_ids:
            assert ds.annotated[i][truth.labels == k].all()
        assert not ds.annotated[i][truth.labels == 0].any()
        m = nk.losses.distance_weights(ds.annotated[i], alpha=5.0, beta=0.1)
        want = np.maximum(m, 0.5 * ds.background[i].astype(np.float32))
        np.testing.assert_allclose(ds.weights[i], want, rtol=0, atol=1e-7)
        assert (ds.weights[i][ds.annotated[i] > 0] == 1).all()
        assert ds.weights[i].min() >= 0
        assert ds.weights[i].max() <= 1


def test_partial_set_is_reproducible_and_seed_dependent(small_set):
    again = segment.make_partial_set(2, shape=(96, 96), fraction=0.3, seed=3)
    np.testing.assert_array_equal(again.images, small_set.images)
    np.testing.assert_array_equal(again.annotated, small_set.annotated)
    np.testing.assert_array_equal(again.weights, small_set.weights)
    other = segment.make_partial_set(1, shape=(96, 96), fraction=0.3, seed=4)
    assert not np.array_equal(other.images[0], small_set.images[0])


def test_partial_set_bad_input():
    with pytest.raises(ValueError, match="fraction"):
        segment.make_partial_set(1, shape=(64, 64), fraction=1.5)
    with pytest.raises(TypeError, match="n: expected an integer"):
        segment.make_partial_set(1.5, shape=(64, 64))


def test_variant_targets(small_set):
    ds = small_set
    y, w = segment.variant_targets(ds, "naive")
    np.testing.assert_array_equal(y, ds.annotated)
    assert (w == 1).all()
    assert w.dtype == np.float32
    y, w = segment.variant_targets(ds, "weighted")
    np.testing.assert_array_equal(y, ds.annotated)
    np.testing.assert_array_equal(w, ds.weights)
    w[:] = 0  # a copy: the set is untouched
    assert ds.weights.max() == 1
    y, w = segment.variant_targets(ds, "full")
    np.testing.assert_array_equal(y, np.stack([t.labels > 0 for t in ds.truths]).astype(np.uint8))
    assert (w == 1).all()
    assert y.sum() > ds.annotated.sum()
    with pytest.raises(ValueError, match="variant: expected one of naive, weighted, full"):
        segment.variant_targets(ds, "partial")
    with pytest.raises(TypeError, match="PartialSet"):
        segment.variant_targets({"images": ds.images}, "naive")


# ------------------------------------------------------------------------------------------- patch rule
def _brute_force_patches(fg, bg, size, stride, r, min_fg, min_bg):
    kept = []
    for i, (f, b) in enumerate(zip(fg, bg, strict=True)):
        fd = ndi.binary_dilation(f > 0, structure=disk(r))
        bd = ndi.binary_dilation(b > 0, structure=disk(r))
        for r0, c0 in patch_corners(f.shape, size, stride):
            sl = (slice(r0, r0 + size), slice(c0, c0 + size))
            if fd[sl].mean() > min_fg and bd[sl].mean() > min_bg:
                kept.append((i, r0, c0))
    return np.array(kept, dtype=np.int64).reshape(-1, 3)


def test_select_patches_hand_made_case():
    fg = np.zeros((64, 64), np.uint8)
    fg[4:12, 4:12] = 1  # 8x8 nucleus, dilated by 2 -> 12x12 = 144 px (+ rounded corners)
    bg = np.zeros((64, 64), bool)
    bg[:, 40:] = True  # right strip only
    got = segment.select_patches(
        fg[None], bg[None], size=32, stride=32, dilation_radius=0, min_foreground=0.05, min_background=0.0
    )
    # only the top-left patch holds 64 / 1024 = 6 % foreground (> 5 %), but it has no background (> 0 needed)
    np.testing.assert_array_equal(got, np.zeros((0, 3), np.int64))
    got = segment.select_patches(
        fg[None], bg[None], size=32, stride=32, dilation_radius=0, min_foreground=0.0, min_background=0.5
    )
    # background > 50 % only in the right column of patches (24 of 32 columns), where no foreground lies
    assert len(got) == 0
    got = segment.select_patches(  # background on the left instead: the top-left patch has both
        fg[None], ~bg[None], size=32, stride=32, dilation_radius=0, min_foreground=0.05, min_background=0.5
    )
    np.testing.assert_array_equal(got, [[0, 0, 0]])


@pytest.mark.parametrize("seed", [0, 1])
def test_select_patches_equals_brute_force(seed):
    rng = np.random.default_rng(seed)
    ramp = np.linspace(0, 1, 96)[None, :]  # nuclei get denser to the right, background to the left
    fg = [(rng.random((80, 96)) < 0.004 + 0.01 * ramp).astype(np.uint8) for _ in range(2)]
    bg = [rng.random((80, 96)) < 0.004 + 0.01 * (1 - ramp) for _ in range(2)]
    keep_fg = [f.copy() for f in fg]
    got = segment.select_patches(
        fg, bg, size=40, stride=20, dilation_radius=3, min_foreground=0.15, min_background=0.15
    )
    want = _brute_force_patches(fg, bg, 40, 20, 3, 0.15, 0.15)
    assert 0 < len(want) < 2 * len(patch_corners((80, 96), 40, 20))  # the case keeps some, not all
    np.testing.assert_array_equal(got, want)
    for f, k in zip(fg, keep_fg, strict=True):
        np.testing.assert_array_equal(f, k)


def test_select_patches_bad_input():
    m = np.zeros((2, 32, 32), np.uint8)
    with pytest.raises(ValueError, match="same number of images"):
        segment.select_patches(m, m[:1], size=16)
    with pytest.raises(ValueError, match="min_foreground"):
        segment.select_patches(m, m, size=16, min_foreground=10)
    with pytest.raises(ValueError, match="3 dimensions"):
        segment.select_patches(np.zeros((2, 2, 32, 32)), m, size=16)


# ---------------------------------------------------------------------------------------------- batches
def _aligned_data(n=2, h=48, w=56, seed=0):
    """Images whose red channel encodes y and whose green channel encodes the weights (to check alignment)."""
    rng = np.random.default_rng(seed)
    y = (rng.random((n, h, w)) < 0.3).astype(np.uint8)
    wts = rng.integers(0, 5, (n, h, w)).astype(np.float32) / 4
    img = np.zeros((n, h, w, 3), np.uint8)
    img[..., 0] = y * 255
    img[..., 1] = (wts * 4).astype(np.uint8) * 60
    img[..., 2] = rng.integers(0, 256, (n, h, w))
    return img, y, wts


def test_patch_batches_shapes_alignment_and_reproducibility():
    img, y, w = _aligned_data()
    keep = img.copy()
    corners = np.array([[0, 0, 0], [1, 16, 24], [0, 16, 8]])
    batches = segment.patch_batches(img, y, w, corners, size=32, batch_size=6)
    x, yb, wb = batches(0, torch.Generator().manual_seed(0))
    assert x.shape == (6, 3, 32, 32)
    assert x.dtype == torch.float32
    assert yb.shape == (6, 32, 32)
    assert wb.shape == (6, 32, 32)
    assert float(x.min()) >= 0
    assert float(x.max()) <= 1
    torch.testing.assert_close(yb, (x[:, 0] > 0.5).float())  # rotations/flips move all three together
    torch.testing.assert_close(wb, torch.round(x[:, 1] * 255 / 60) / 4)
    x2, _, _ = batches(0, torch.Generator().manual_seed(0))
    torch.testing.assert_close(x, x2, rtol=0, atol=0)
    x3, _, _ = batches(0, torch.Generator().manual_seed(1))
    assert not torch.equal(x, x3)
    np.testing.assert_array_equal(img, keep)


def test_patch_batches_without_augmentation_cuts_the_exact_patch():
    img, y, w = _aligned_data()
    batches = segment.patch_batches(img, y, w, np.array([[1, 16, 24]]), size=32, batch_size=2, augment=False)
    x, yb, wb = batches(0, torch.Generator().manual_seed(0))
    want = nk.data.to_tensor(img[1, 16:48, 24:56])
    torch.testing.assert_close(x[0], want, rtol=0, atol=0)
    np.testing.assert_array_equal(yb[1].numpy(), y[1, 16:48, 24:56])
    np.testing.assert_array_equal(wb[1].numpy(), w[1, 16:48, 24:56])


def test_patch_batches_bad_input():
    img, y, w = _aligned_data()
    with pytest.raises(ValueError, match="leaves the 48x56 image"):
        segment.patch_batches(img, y, w, np.array([[0, 20, 0]]), size=32)
    with pytest.raises(ValueError, match="refers to no image"):
        segment.patch_batches(img, y, w, np.array([[5, 0, 0]]), size=32)
    with pytest.raises(ValueError, match="at least one patch"):
        segment.patch_batches(img, y, w, np.zeros((0, 3)), size=32)
    with pytest.raises(ValueError, match="same"):
        segment.patch_batches(img, y[:, :40], w, np.array([[0, 0, 0]]), size=32)


# ---------------------------------------------------------------------------------------- training step
class _Conv(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.conv = torch.nn.Conv2d(3, 2, 3, padding=1)

    def forward(self, x):
        return self.conv(x)


def test_segmentation_step_naive_equals_cross_entropy_and_weighted_equals_formula():
    g = torch.Generator().manual_seed(0)
    x = torch.rand(2, 3, 16, 16, generator=g)
    y = (torch.rand(2, 16, 16, generator=g) < 0.3).float()
    w = torch.rand(2, 16, 16, generator=g)
    net = _Conv()
    loss, logs = segment.segmentation_step(net, (x, y, torch.ones_like(y)), 0, gamma=0.0)
    torch.testing.assert_close(loss, F.cross_entropy(net(x), y.long()))
    assert logs["l2"] == 0
    loss, logs = segment.segmentation_step(net, (x, y, w), 0, gamma=1e-3)
    logp = torch.log_softmax(net(x), 1)
    nll = -(y * logp[:, 1] + w * (1 - y) * logp[:, 0]).mean()
    l2 = 1e-3 * net.conv.weight.pow(2).sum()
    torch.testing.assert_close(loss, nll + l2)
    assert logs["nll"] == pytest.approx(float(nll.detach()), rel=1e-6)
    assert logs["l2"] == pytest.approx(float(l2.detach()), rel=1e-6)
    loss.backward()
    assert net.conv.weight.grad is not None


def _squares(n=4, size=48, seed=0):
    """Dark squares (nuclei) on a light background: a task a tiny U-Net learns in a few dozen steps."""
    rng = np.random.default_rng(seed)
    img = np.full((n, size, size, 3), 220, np.uint8)
    y = np.zeros((n, size, size), np.uint8)
    for i in range(n):
        for _ in range(6):
            r, c = rng.integers(0, size - 8, 2)
            img[i, r : r + 8, c : c + 8] = (80, 40, 140)
            y[i, r : r + 8, c : c + 8] = 1
    return img, y


def test_train_unet_learns_caches_and_keys_on_the_data(tmp_path, monkeypatch):
    monkeypatch.setenv("NUCLEIKIT_CHECKPOINTS", str(tmp_path))
    img, y = _squares()
    kwargs = {"widths": (4, 8), "patch": 32, "batch_size": 4, "steps": 80, "lr": 1e-2, "name": "t"}
    model, hist = segment.train_unet(img, y, **kwargs)
    assert not hist.from_cache
    assert np.mean(hist.logs["nll"][-3:]) < 0.5 * hist.logs["nll"][0]
    prob = segment.predict_proba(model, img[0], window=32, stride=16)
    assert segment.evaluate(prob, y[0])["f1"] > 0.8
    again, hist2 = segment.train_unet(img, y, **kwargs)
    assert hist2.from_cache
    for a, b in zip(model.state_dict().values(), again.state_dict().values(), strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    other = img.copy()
    other[0, 0, 0] = 0  # one pixel differs: another data hash, so no cached model is reused
    _, hist3 = segment.train_unet(other, y, **{**kwargs, "steps": 2})
    _, hist4 = segment.train_unet(img, y, **{**kwargs, "steps": 2})
    assert not hist3.from_cache
    assert not hist4.from_cache
    _, hist5 = segment.train_unet(img, y, **{**kwargs, "steps": 2, "model": model})  # fine-tuning start
    assert not hist5.from_cache


# ------------------------------------------------------------------------------------------- prediction
def test_predict_proba_equals_whole_image_softmax_for_a_pointwise_model():
    torch.manual_seed(0)
    net = torch.nn.Conv2d(3, 2, 1).eval()  # 1x1 conv: no context, so windows and the whole image agree
    img = np.random.default_rng(0).integers(0, 256, (70, 90, 3), dtype=np.uint8)
    keep = img.copy()
    with torch.no_grad():
        want = net(nk.data.to_tensor(img)[None]).softmax(1)[0, 1].numpy()
    for naive in (False, True):
        got = segment.predict_proba(net, img, window=32, stride=16, naive_tiling=naive)
        assert got.shape == (70, 90)
        assert got.dtype == np.float32
        np.testing.assert_allclose(got, want, atol=1e-6)
    np.testing.assert_array_equal(img, keep)
    with pytest.raises(ValueError, match=r"\(H, W, 3\)"):
        segment.predict_proba(net, img[..., 0])


# ----------------------------------------------------------------------------------------------- scores
def _two_disks():
    truth = np.zeros((40, 40), np.int32)
    rr, cc = np.mgrid[:40, :40]
    truth[(rr - 10) ** 2 + (cc - 10) ** 2 <= 25] = 1
    truth[(rr - 28) ** 2 + (cc - 28) ** 2 <= 36] = 2
    return truth


def test_evaluate_perfect_and_half_found():
    truth = _two_disks()
    perfect = segment.evaluate((truth > 0).astype(np.float32), truth)
    for k in segment.METRICS:
        assert perfect[k] == pytest.approx(1.0), k
    prob = np.where(truth == 1, 0.9, 0.1).astype(np.float32)  # only the first disk above 0.5
    got = segment.evaluate(prob, truth)
    a1, a2 = int((truth == 1).sum()), int((truth == 2).sum())
    assert got["recall"] == pytest.approx(a1 / (a1 + a2))
    assert got["precision"] == pytest.approx(1.0)
    assert got["accuracy"] == pytest.approx(1 - a2 / truth.size)
    assert got["aji"] == pytest.approx(a1 / (a1 + a2))  # Kumar: the missed nucleus adds |G| to the union
    assert got["pq"] == pytest.approx((1 / (1 + 0.5)) * 1.0)  # DQ = 1 / (1 + FN/2), SQ = 1
    low = segment.evaluate(prob, truth, threshold=0.05)  # everything is a nucleus
    assert low["recall"] == 1
    assert low["precision"] == pytest.approx((a1 + a2) / truth.size)
    as_mask = segment.evaluate(truth == 1, truth)
    assert as_mask == got


def test_evaluate_watershed_splits_touching_nuclei():
    truth = np.zeros((40, 60), np.int32)
    rr, cc = np.mgrid[:40, :60]
    truth[(rr - 20) ** 2 + (cc - 20) ** 2 <= 100] = 1
    truth[((rr - 20) ** 2 + (cc - 38) ** 2 <= 100) & (truth == 0)] = 2
    cc_scores = segment.evaluate(truth > 0, truth)
    ws_scores = segment.evaluate(truth > 0, truth, watershed=True)
    assert cc_scores["recall"] == ws_scores["recall"] == 1
    assert cc_scores["pq"] < 0.5 < ws_scores["pq"]


def test_evaluate_bad_input():
    truth = _two_disks()
    with pytest.raises(ValueError, match="same shape"):
        segment.evaluate(np.zeros((4, 4), np.float32), truth)
    with pytest.raises(TypeError, match="float probabilities or a binary mask"):
        segment.evaluate(np.zeros((40, 40), np.complex64), truth)
    with pytest.raises(ValueError, match="threshold"):
        segment.evaluate(np.zeros((40, 40), np.float32), truth, threshold=2.0)


def test_evaluate_set_averages_and_skips_nan():
    truth = _two_disks()
    empty = np.zeros_like(truth, dtype=np.float32)
    good = (truth > 0).astype(np.float32)
    got = segment.evaluate_set([good, empty], [truth, truth])
    assert got["recall"] == pytest.approx(0.5)
    assert got["precision"] == pytest.approx(1.0)  # the empty prediction's precision is NaN, skipped
    with pytest.raises(ValueError, match="same non-zero number"):
        segment.evaluate_set([good], [truth, truth])


def test_threshold_sweep_equals_pooled_pixel_scores():
    rng = np.random.default_rng(0)
    truths = [_two_disks(), np.roll(_two_disks(), 5, axis=1)]
    probs = [np.clip((t > 0) * 0.4 + rng.random(t.shape) * 0.6, 0, 1).astype(np.float32) for t in truths]
    th = [0.0, 0.2, 0.45, 0.7, 0.99, 1.0]
    got = segment.threshold_sweep(probs, truths, th)
    for k, t in enumerate(th):
        tp = sum(int(((p > t) & (g > 0)).sum()) for p, g in zip(probs, truths, strict=True))
        fp = sum(int(((p > t) & (g == 0)).sum()) for p, g in zip(probs, truths, strict=True))
        fn = sum(int(((p <= t) & (g > 0)).sum()) for p, g in zip(probs, truths, strict=True))
        assert got["recall"][k] == pytest.approx(tp / (tp + fn))
        if tp + fp:
            assert got["precision"][k] == pytest.approx(tp / (tp + fp))
        else:
            assert np.isnan(got["precision"][k])
        assert got["f1"][k] == pytest.approx(2 * tp / (2 * tp + fp + fn))
    assert np.all(np.diff(got["recall"]) <= 0)


def test_threshold_sweep_counts_only_values_above_the_threshold():
    truth = np.array([[1, 1, 0, 0]])
    prob = np.array([[0.5, 0.7, 0.5, 0.2]], np.float32)
    got = segment.threshold_sweep([prob], [truth], [0.5])
    assert got["recall"][0] == pytest.approx(0.5)  # 0.5 is not above 0.5
    assert got["precision"][0] == pytest.approx(1.0)


def test_mean_probability_by_hand():
    truth = np.array([[0, 1], [2, 0]])
    prob = np.array([[0.1, 0.3], [0.5, 0.3]], np.float32)
    got = segment.mean_probability([prob], [truth])
    assert got["nuclei"] == pytest.approx(0.4)
    assert got["background"] == pytest.approx(0.2)
    got = segment.mean_probability([prob, np.ones((2, 2), np.float32)], [truth, np.zeros((2, 2), int)])
    assert got["nuclei"] == pytest.approx(0.4)
    assert got["background"] == pytest.approx((0.4 + 4) / 6)


def test_train_options_picks_the_training_fields():
    cfg = nk.profiles.get("03", "quick", steps=7)
    opts = segment.train_options(cfg)
    assert opts["steps"] == 7
    assert opts["widths"] == cfg.widths
    assert set(opts) == {
        "widths",
        "patch",
        "batch_size",
        "steps",
        "lr",
        "lr_decay",
        "lr_decay_every",
        "lr_min",
        "gamma",
        "seed",
    }
    assert segment.train_options({"steps": 3, "alpha": 5.0}) == {"steps": 3}
    with pytest.raises(TypeError, match="settings dataclass or a mapping, got int"):
        segment.train_options(3)


# ------------------------------------------------------------------------- chapter 3 plots and widget
def test_chapter3_plots_draw_without_touching_their_inputs():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    truth = _two_disks()
    prob = np.where(truth == 1, 0.9, 0.1).astype(np.float32)
    image = np.full((*truth.shape, 3), 200, np.uint8)
    keep = (prob.copy(), image.copy())
    ax = nk.viz.show_map(prob, title="p", label="probability")
    assert ax.get_title() == "p"
    ax = nk.viz.show_error_overlay(image, prob > 0.5, truth > 0, title="errors")
    overlay = ax.get_images()[-1].get_array()  # (H, W, 4): the outcome colours
    assert overlay.shape == (*truth.shape, 4)
    assert overlay[10, 10, 3] > 0  # a true positive pixel is coloured
    assert overlay[28, 28, 3] > 0  # a missed pixel too
    assert overlay[0, 0, 3] == 0  # background left alone
    sweep = segment.threshold_sweep([prob], [truth], [0.05, 0.5, 0.95])
    ax = nk.viz.plot_threshold_sweep({"model": sweep}, "recall")
    np.testing.assert_allclose(ax.get_lines()[0].get_ydata(), sweep["recall"])
    np.testing.assert_array_equal(prob, keep[0])
    np.testing.assert_array_equal(image, keep[1])
    plt.close("all")


def test_weight_map_widget_builds_its_controls():
    pytest.importorskip("ipywidgets")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    tile = nk.synth.he_tile((64, 64), rng=0)
    part, _ = nk.synth.partial_mask(tile.truth, 0.5, rng=0)
    box = nk.widgets.weight_map_widget(tile.image, part, tile.truth.labels, seed=0)
    sliders = [w for row in box.children[:2] for w in row.children]
    assert [s.description for s in sliders] == ["alpha (px)", "beta (1/px)", "lambda", "erosion (px)"]
    png = box.children[2].value
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    sliders[2].value = 0.25  # the callback redraws
    assert box.children[2].value != png
    plt.close("all")
