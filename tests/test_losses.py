"""Tests for nucleikit.losses: weight maps (Sayin Mercadier), KiNet losses, stain-transfer loss."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from nucleikit import losses

gradcheck = torch.autograd.gradcheck


# ------------------------------------------------------------------------------------ weight maps
def test_distance_weights_on_a_row_by_hand():
    mask = np.zeros((1, 20), bool)
    mask[0, 0] = True
    m = losses.distance_weights(mask, alpha=5.0, beta=0.1)
    expected = [1.0] * 6 + [math.exp(-0.1 * (d - 5)) for d in range(6, 20)]
    np.testing.assert_allclose(m[0], expected, rtol=1e-6)
    assert m.dtype == np.float32
    assert m.shape == (1, 20)


def test_distance_weights_euclidean_on_a_small_mask():
    mask = np.zeros((9, 12), np.uint8)
    mask[0, 0] = 1
    mask[8, 11] = 1
    m = losses.distance_weights(mask, alpha=2.0, beta=0.5)
    assert m[0, 0] == 1.0
    assert m[8, 11] == 1.0
    assert m[1, 1] == 1.0  # d = sqrt(2) <= alpha
    np.testing.assert_allclose(m[3, 4], math.exp(-0.5 * (5.0 - 2.0)), rtol=1e-6)  # 3-4-5 triangle
    np.testing.assert_allclose(m[8, 5], math.exp(-0.5 * (6.0 - 2.0)), rtol=1e-6)  # nearest is (8, 11)
    np.testing.assert_allclose(m[0, 2], 1.0)  # d = 2 = alpha: still fully trusted


def test_distance_weights_accepts_labels_and_handles_empty_masks():
    labels = np.zeros((5, 5), np.int64)
    labels[2, 2] = 7
    np.testing.assert_array_equal(losses.distance_weights(labels), losses.distance_weights(labels > 0))
    np.testing.assert_array_equal(losses.distance_weights(np.zeros((4, 6))), np.zeros((4, 6)))


def test_distance_weights_rejects_bad_input_and_keeps_its_input():
    with pytest.raises(ValueError, match=r"\(H, W\)"):
        losses.distance_weights(np.zeros((4, 4, 3)))
    with pytest.raises(ValueError, match="beta"):
        losses.distance_weights(np.zeros((4, 4)), beta=-1.0)
    mask = np.zeros((6, 6), bool)
    mask[1, 1] = True
    mask0 = mask.copy()
    losses.distance_weights(mask)
    np.testing.assert_array_equal(mask, mask0)


def _he_like(rng, shape=(80, 90)):
    """Pale pink background with a few dark purple nuclei (disks) of known position."""
    from nucleikit import stain

    rr, cc = np.mgrid[: shape[0], : shape[1]]
    nuclei = np.zeros(shape, bool)
    for r, c in [(20, 20), (20, 60), (55, 35), (60, 75)]:
        nuclei |= (rr - r) ** 2 + (cc - c) ** 2 <= 7**2
    conc = np.zeros((*shape, 2), np.float32)
    conc[..., 1] = 0.25 + 0.03 * rng.standard_normal(shape)  # eosin everywhere
    conc[..., 0] = np.where(nuclei, 1.2, 0.05) + 0.03 * rng.standard_normal(shape)
    image = stain.recombine(np.clip(conc, 0, None), stain.RUIFROK_HE)
    return image, nuclei


def test_kmeans_background_finds_the_background_and_erodes_it():
    pytest.importorskip("nucleikit.stain")
    rng = np.random.default_rng(0)
    image, nuclei = _he_like(rng)
    image0 = image.copy()
    raw = losses.kmeans_background(image, erosion_radius=0, rng=1)
    assert raw.dtype == np.bool_
    assert raw.shape == nuclei.shape
    np.testing.assert_array_equal(raw, ~nuclei)  # larger cluster = background, exactly the non-nuclei
    eroded = losses.kmeans_background(image, erosion_radius=3, rng=1)
    from scipy import ndimage
    from skimage.morphology import disk

    np.testing.assert_array_equal(eroded, ndimage.binary_erosion(~nuclei, disk(3), border_value=1))
    assert eroded.sum() < raw.sum()
    # seeded and deterministic; the input is untouched
    np.testing.assert_array_equal(
        losses.kmeans_background(image, rng=5), losses.kmeans_background(image, rng=5)
    )
    np.testing.assert_array_equal(image, image0)


def test_kmeans_background_subsamples_large_images_consistently():
    pytest.importorskip("nucleikit.stain")
    rng = np.random.default_rng(0)
    image, nuclei = _he_like(rng)
    sub = losses.kmeans_background(image, erosion_radius=0, max_samples=500, rng=2)
    np.testing.assert_array_equal(sub, ~nuclei)


def test_background_weight_map_is_the_max_of_both_parts():
    pytest.importorskip("nucleikit.stain")
    rng = np.random.default_rng(0)
    image, nuclei = _he_like(rng)
    annotated = np.zeros_like(nuclei)
    annotated[:40, :40] = nuclei[:40, :40]  # only the top-left nucleus is annotated
    w = losses.background_weight_map(annotated, image, alpha=5.0, beta=0.1, lam=0.5, erosion_radius=2, rng=3)
    m = losses.distance_weights(annotated, alpha=5.0, beta=0.1)
    b = losses.kmeans_background(image, erosion_radius=2, rng=3)
    np.testing.assert_allclose(w, np.maximum(m, 0.5 * b))
    assert w.dtype == np.float32
    # an unlabelled nucleus far from the annotation gets a low weight: it is not trusted as background
    assert w[60, 75] < 0.05
    # background far away gets lambda
    assert w[75, 5] == pytest.approx(0.5)
    with pytest.raises(ValueError, match="same height and width"):
        losses.background_weight_map(annotated[:10], image)


# --------------------------------------------------------------------- weighted background loss
def test_weighted_background_loss_by_hand():
    logits = torch.zeros(1, 2, 2, 2)
    y = torch.tensor([[[1.0, 0.0], [0.0, 0.0]]])
    m = torch.tensor([[[0.3, 0.5], [1.0, 0.0]]])
    # log p = log 1/2 everywhere: loss = log 2 * mean(y + m (1 - y)) = log 2 * (1 + .5 + 1 + 0) / 4
    loss = losses.weighted_background_loss(logits, y, m)
    assert loss.ndim == 0
    assert float(loss) == pytest.approx(math.log(2) * 2.5 / 4, rel=1e-6)


def test_weighted_background_loss_with_unit_weights_is_cross_entropy():
    torch.manual_seed(0)
    logits = torch.randn(3, 2, 5, 4)
    y = (torch.rand(3, 5, 4) > 0.5).long()
    loss = losses.weighted_background_loss(logits, y[:, None], torch.ones(3, 1, 5, 4))
    torch.testing.assert_close(loss, F.cross_entropy(logits, y))


def test_weighted_background_loss_accepts_instance_labels():
    torch.manual_seed(0)
    logits = torch.randn(1, 2, 4, 4)
    labels = torch.zeros(1, 4, 4, dtype=torch.long)
    labels[0, 1, 1], labels[0, 2, 3] = 3, 7
    w = torch.rand(1, 4, 4)
    torch.testing.assert_close(
        losses.weighted_background_loss(logits, labels, w),
        losses.weighted_background_loss(logits, (labels > 0).float(), w),
    )


def test_weighted_background_loss_ignores_zero_weight_background():
    torch.manual_seed(0)
    logits = torch.randn(1, 2, 4, 4)
    y = torch.zeros(1, 4, 4)
    m = torch.ones(1, 4, 4)
    m[0, 0, 0] = 0.0
    changed = logits.clone()
    changed[0, :, 0, 0] = torch.tensor([-5.0, 5.0])  # predict nucleus on an untrusted pixel
    torch.testing.assert_close(
        losses.weighted_background_loss(logits, y, m), losses.weighted_background_loss(changed, y, m)
    )


def test_weighted_background_loss_gradcheck_and_no_mutation():
    torch.manual_seed(0)
    logits = torch.randn(2, 2, 3, 3, dtype=torch.float64, requires_grad=True)
    y = (torch.rand(2, 3, 3) > 0.5).double()
    m = torch.rand(2, 3, 3, dtype=torch.float64)
    y0, m0 = y.clone(), m.clone()
    assert gradcheck(lambda z: losses.weighted_background_loss(z, y, m), (logits,))
    torch.testing.assert_close(y, y0, rtol=0, atol=0)
    torch.testing.assert_close(m, m0, rtol=0, atol=0)


def test_weighted_background_loss_rejects_bad_shapes():
    with pytest.raises(ValueError, match=r"\(B, 2, H, W\)"):
        losses.weighted_background_loss(torch.zeros(1, 3, 4, 4), torch.zeros(1, 4, 4), torch.ones(1, 4, 4))
    with pytest.raises(ValueError, match="weights"):
        losses.weighted_background_loss(torch.zeros(1, 2, 4, 4), torch.zeros(1, 4, 4), torch.ones(1, 4, 5))
    with pytest.raises(TypeError, match="torch tensor"):
        losses.weighted_background_loss(np.zeros((1, 2, 4, 4)), torch.zeros(1, 4, 4), torch.ones(1, 4, 4))


def test_l2_penalty_counts_conv_weights_only():
    torch.manual_seed(0)
    net = torch.nn.Sequential(
        torch.nn.Conv2d(1, 2, 3),
        torch.nn.BatchNorm2d(2),
        torch.nn.ConvTranspose2d(2, 2, 2, stride=2),
        torch.nn.Flatten(),
        torch.nn.LazyLinear(3),
    )
    expected = 1e-3 * (net[0].weight.pow(2).sum() + net[2].weight.pow(2).sum())
    torch.testing.assert_close(losses.l2_penalty(net, gamma=1e-3), expected)
    assert losses.l2_penalty(net).item() == pytest.approx(expected.item() / 100, rel=1e-6)
    with pytest.raises(ValueError, match="convolution"):
        losses.l2_penalty(torch.nn.Linear(2, 2))


# ----------------------------------------------------------------------------------- KiNet losses
def _proximity_mse_loops(pred, target, lam):
    b, s, h, w = pred.shape
    out = []
    for i in range(b):
        total = 0.0
        for k in range(s):
            mean = target[i, k].mean()
            for r in range(h):
                for c in range(w):
                    y = target[i, k, r, c]
                    total += 0.5 * (y + lam * mean) * (pred[i, k, r, c] - y) ** 2
        out.append(total / (h * w))
    return np.array(out)


def test_proximity_mse_matches_the_formula():
    rng = np.random.default_rng(0)
    pred = rng.standard_normal((2, 3, 4, 5))
    target = rng.random((2, 3, 4, 5)) ** 3
    got = losses.proximity_mse(torch.from_numpy(pred), torch.from_numpy(target), lam=5.0, reduction="none")
    ref = _proximity_mse_loops(pred, target, 5.0)
    np.testing.assert_allclose(got.numpy(), ref, rtol=1e-12)
    mean = losses.proximity_mse(torch.from_numpy(pred), torch.from_numpy(target), lam=5.0)
    assert float(mean) == pytest.approx(ref.mean(), rel=1e-12)


def test_proximity_mse_with_lambda_zero_ignores_background():
    # lambda = 0: pixels where the target is 0 weigh nothing, so a constant prediction pays nothing there
    target = torch.zeros(1, 1, 4, 4)
    target[0, 0, 1, 1] = 1.0
    pred = torch.ones(1, 1, 4, 4)
    assert float(losses.proximity_mse(pred, target, lam=0.0)) == 0.0
    assert float(losses.proximity_mse(pred, target, lam=5.0)) > 0.0


def test_proximity_mse_gradcheck():
    torch.manual_seed(0)
    pred = torch.randn(2, 3, 4, 4, dtype=torch.float64, requires_grad=True)
    target = torch.rand(2, 3, 4, 4, dtype=torch.float64)
    assert gradcheck(lambda p: losses.proximity_mse(p, target, lam=5.0), (pred,))


def test_class_correlation_penalty_by_hand():
    h = torch.zeros(1, 3, 1, 2)
    h[0, :, 0, 0] = torch.tensor([1.0, 2.0, 3.0])  # pairs: 1*2 + 1*3 + 2*3 = 11
    h[0, :, 0, 1] = torch.tensor([0.5, -4.0, 1.0])  # negative maps are clamped at 0: 0.5 * 1 = 0.5
    got = losses.class_correlation_penalty(h)
    assert float(got) == pytest.approx((11.0 + 0.5) / 2)
    one_class = torch.rand(2, 1, 3, 3)
    assert float(losses.class_correlation_penalty(one_class)) == 0.0


def test_class_correlation_penalty_gradcheck():
    torch.manual_seed(0)
    h = (torch.rand(2, 3, 3, 3, dtype=torch.float64) + 0.1).requires_grad_()
    assert gradcheck(losses.class_correlation_penalty, (h,))


def test_roi_cross_entropy_uses_labelled_pixels_only():
    torch.manual_seed(0)
    logits = torch.randn(2, 2, 4, 4)
    labels = torch.randint(0, 2, (2, 4, 4))
    labels[0, :2] = -1
    labels[1] = -1
    got = losses.roi_cross_entropy(logits, labels)
    keep = labels >= 0
    ref = F.cross_entropy(logits.permute(0, 2, 3, 1)[keep], labels[keep])
    torch.testing.assert_close(got, ref)
    changed = logits.clone()
    changed[1] += 10 * torch.randn(2, 4, 4)  # image 1 is unlabelled: no effect
    torch.testing.assert_close(losses.roi_cross_entropy(changed, labels), got)
    per_image = losses.roi_cross_entropy(logits, labels, reduction="none")
    assert per_image.shape == (2,)
    assert float(per_image[1]) == 0.0
    torch.testing.assert_close(per_image[0], ref)  # image 0 holds every labelled pixel
    # normalised by all pixels: the sum over labelled pixels / (H W) per image, then the batch mean
    ce_sum = F.cross_entropy(logits.permute(0, 2, 3, 1)[keep], labels[keep], reduction="sum")
    torch.testing.assert_close(losses.roi_cross_entropy(logits, labels, normalize="all"), ce_sum / (2 * 16))
    with pytest.raises(ValueError, match="normalize"):
        losses.roi_cross_entropy(logits, labels, normalize="some")


def test_roi_cross_entropy_without_labels_is_zero_and_differentiable():
    logits = torch.randn(1, 2, 3, 3, requires_grad=True)
    loss = losses.roi_cross_entropy(logits, -torch.ones(1, 3, 3, dtype=torch.long))
    assert loss.item() == 0.0
    loss.backward()
    assert torch.all(logits.grad == 0)


def test_roi_cross_entropy_gradcheck_and_bad_labels():
    torch.manual_seed(0)
    logits = torch.randn(2, 2, 3, 3, dtype=torch.float64, requires_grad=True)
    labels = torch.randint(-1, 2, (2, 3, 3))
    assert gradcheck(lambda z: losses.roi_cross_entropy(z, labels), (logits,))
    with pytest.raises(ValueError, match="-1"):
        losses.roi_cross_entropy(logits, torch.full((2, 3, 3), 2))


def _kinet_batch(dtype=torch.float32, b=4):
    torch.manual_seed(0)
    prox = torch.rand(b, 3, 6, 6, dtype=dtype)
    roi = torch.randn(b, 2, 6, 6, dtype=dtype)
    target = torch.rand(b, 3, 6, 6, dtype=dtype) ** 3
    roi_labels = torch.randint(-1, 2, (b, 6, 6))
    return prox, roi, target, roi_labels


def test_kinet_loss_indicator_drops_the_nucleus_term():
    prox, roi, target, roi_labels = _kinet_batch()
    has = torch.tensor([True, False, True, False])
    out = {"proximity": prox, "roi": roi}
    loss = losses.kinet_loss(out, target, roi_labels, has)
    # whatever the prediction or the target of region-only images, the loss does not change
    prox2, target2 = prox.clone(), target.clone()
    prox2[[1, 3]] += 3.0
    target2[[1, 3]] = 0.0
    torch.testing.assert_close(
        losses.kinet_loss({"proximity": prox2, "roi": roi}, target2, roi_labels, has), loss
    )
    # region-only batch: the ROI term alone
    none = torch.zeros(4, dtype=torch.bool)
    roi_term = losses.roi_cross_entropy(roi, roi_labels, normalize="all")
    torch.testing.assert_close(losses.kinet_loss(out, target, roi_labels, none), roi_term)
    # and the formula: gamma * mean_b(1_b (mse_b + eta corr_b)) + roi
    mse = losses.proximity_mse(prox, target, reduction="none")
    corr = losses.class_correlation_penalty(prox, reduction="none")
    ind = has.float()
    expected = 25.0 * (ind * (mse + 1e-6 * corr)).mean() + roi_term
    torch.testing.assert_close(loss, expected)


def test_kinet_loss_options():
    prox, roi, target, roi_labels = _kinet_batch()
    has = torch.ones(4, dtype=torch.bool)
    out = (prox, roi)
    base = losses.kinet_loss(out, target, roi_labels, has, eta=1.0, use_correlation=False)
    with_corr = losses.kinet_loss(out, target, roi_labels, has, eta=1.0)
    assert float(with_corr) > float(base)
    no_roi = losses.kinet_loss((prox, None), target, None, has, eta=1.0, use_correlation=False)
    torch.testing.assert_close(base - no_roi, losses.roi_cross_entropy(roi, roi_labels, normalize="all"))
    g10 = losses.kinet_loss((prox, None), target, None, has, gamma=10.0, use_correlation=False)
    g20 = losses.kinet_loss((prox, None), target, None, has, gamma=20.0, use_correlation=False)
    torch.testing.assert_close(g20, 2 * g10)
    _total, terms = losses.kinet_loss(out, target, roi_labels, has, return_terms=True)
    assert set(terms) == {"proximity", "correlation", "roi"}
    torch.testing.assert_close(terms["proximity"], losses.proximity_mse(prox, target))
    with pytest.raises(ValueError, match="has_nuclei"):
        losses.kinet_loss(out, target, roi_labels, torch.ones(3, dtype=torch.bool))


def test_kinet_loss_gradcheck_and_no_mutation():
    prox, roi, target, roi_labels = _kinet_batch(torch.float64, b=2)
    prox = (prox + 0.1).requires_grad_()
    roi = roi.requires_grad_()
    has = torch.tensor([True, False])
    saved = [t.detach().clone() for t in (prox, roi, target, roi_labels, has)]
    assert gradcheck(lambda p, r: losses.kinet_loss((p, r), target, roi_labels, has, eta=0.1), (prox, roi))
    for t, t0 in zip((prox, roi, target, roi_labels, has), saved, strict=True):
        torch.testing.assert_close(t.detach(), t0, rtol=0, atol=0)


# ---------------------------------------------------------------------------------- stain transfer
def test_stain_transfer_loss_formula_and_gradcheck():
    torch.manual_seed(0)
    pred = torch.rand(3, 2, 4, 4, dtype=torch.float64, requires_grad=True)
    target = torch.rand(3, 2, 4, 4, dtype=torch.float64)
    logits = torch.randn(3, 4, dtype=torch.float64, requires_grad=True)
    labels = torch.tensor([0, 3, 1])
    got = losses.stain_transfer_loss(pred, target, logits, labels, class_weight=0.1)
    expected = ((pred - target) ** 2).mean() + 0.1 * F.cross_entropy(logits, labels)
    torch.testing.assert_close(got, expected)
    mse_only = losses.stain_transfer_loss(pred, target, logits, labels, class_weight=0.0)
    torch.testing.assert_close(mse_only, ((pred - target) ** 2).mean())
    assert gradcheck(lambda p, z: losses.stain_transfer_loss(p, target, z, labels), (pred, logits))
    with pytest.raises(ValueError, match="class_logits"):
        losses.stain_transfer_loss(pred, target, logits[:2], labels)
    with pytest.raises(ValueError, match="class_weight"):
        losses.stain_transfer_loss(pred, target, logits, labels, class_weight=-1.0)


@pytest.mark.gpu
def test_losses_follow_the_input_device():
    dev = torch.device("cuda")
    prox, roi, target, roi_labels = (t.to(dev) for t in _kinet_batch())
    loss = losses.kinet_loss((prox, roi), target, roi_labels, torch.ones(4, dtype=torch.bool, device=dev))
    assert loss.device.type == "cuda"
    logits = torch.randn(2, 2, 5, 5, device=dev)
    y = torch.zeros(2, 5, 5, device=dev)
    assert losses.weighted_background_loss(logits, y, np.ones((2, 5, 5), np.float32)).device.type == "cuda"
