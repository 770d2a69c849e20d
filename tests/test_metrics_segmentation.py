"""Tests for nucleikit.metrics.segmentation: overlap helper, pixel scores, AJI, AJI+, PQ, instances."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.optimize import linear_sum_assignment

from nucleikit.metrics import (
    Overlap,
    aji,
    aji_plus,
    dice,
    ensemble_dice,
    instances_from_binary,
    iou,
    overlap_matrix,
    panoptic_quality,
    pixel_scores,
)


# ------------------------------------------------------------------------------ brute-force references
def _masks(labels):
    ids = [i for i in np.unique(labels) if i > 0]
    return ids, {i: labels == i for i in ids}


def ref_pairwise(t, p):
    """Dense intersection and union matrices by explicit mask operations, one pair at a time."""
    tids, tm = _masks(t)
    pids, pm = _masks(p)
    inter = np.zeros((len(tids), len(pids)))
    union = np.zeros((len(tids), len(pids)))
    for a, i in enumerate(tids):
        for b, j in enumerate(pids):
            inter[a, b] = np.logical_and(tm[i], pm[j]).sum()
            union[a, b] = np.logical_or(tm[i], pm[j]).sum()
    return tids, tm, pids, pm, inter, union


def ref_aji(t, p):
    """Kumar's AJI, written as in the paper's pseudo-code (loops over instances)."""
    tids, tm, pids, pm, inter, union = ref_pairwise(t, p)
    c = u = 0.0
    used = set()
    for a, i in enumerate(tids):
        if len(pids) == 0 or inter[a].max() == 0:
            u += tm[i].sum()
            continue
        b = int(np.argmax(inter[a] / union[a]))  # first max IoU
        c += inter[a, b]
        u += union[a, b]
        used.add(b)
    for b, j in enumerate(pids):
        if b not in used:
            u += pm[j].sum()
    return c / u if u else np.nan


def ref_aji_plus(t, p):
    tids, tm, pids, pm, inter, union = ref_pairwise(t, p)
    c = u = 0.0
    pt, pp = set(), set()
    if len(tids) and len(pids):
        a_idx, b_idx = linear_sum_assignment(inter / np.maximum(union, 1), maximize=True)
        for a, b in zip(a_idx, b_idx, strict=True):
            if inter[a, b] > 0:
                c += inter[a, b]
                u += union[a, b]
                pt.add(a)
                pp.add(b)
    u += sum(tm[i].sum() for a, i in enumerate(tids) if a not in pt)
    u += sum(pm[j].sum() for b, j in enumerate(pids) if b not in pp)
    return c / u if u else np.nan


def ref_pq(t, p):
    tids, _, pids, _, inter, union = ref_pairwise(t, p)
    ious = []
    for a in range(len(tids)):
        for b in range(len(pids)):
            if union[a, b] and inter[a, b] / union[a, b] > 0.5:
                ious.append(inter[a, b] / union[a, b])
    tp = len(ious)
    fp, fn = len(pids) - tp, len(tids) - tp
    den = tp + fp / 2 + fn / 2
    if den == 0:
        return {"pq": np.nan, "dq": np.nan, "sq": np.nan, "tp": 0, "fp": 0, "fn": 0}
    dq = tp / den
    sq = sum(ious) / tp if tp else 0.0
    return {"pq": dq * sq, "dq": dq, "sq": sq, "tp": tp, "fp": fp, "fn": fn}


def ref_dice(t, p):
    a, b = t > 0, p > 0
    s = a.sum() + b.sum()
    return 2 * np.logical_and(a, b).sum() / s if s else np.nan


def ref_ensemble_dice(t, p):
    tids, tm, pids, pm, inter, _ = ref_pairwise(t, p)
    num = den = 0.0
    for a, i in enumerate(tids):
        for b, j in enumerate(pids):
            if inter[a, b] > 0:
                num += 2 * inter[a, b]
                den += tm[i].sum() + pm[j].sum()
    return num / den if den else np.nan


def random_labels(rng, shape=(32, 32), n_max=8, id_scale=1):
    """Random overlapping disks and boxes painted in random order (ids need not be contiguous)."""
    lab = np.zeros(shape, dtype=np.int64)
    rr, cc = np.mgrid[: shape[0], : shape[1]]
    for k in range(1, int(rng.integers(0, n_max + 1)) + 1):
        r0, c0 = rng.uniform(0, shape[0]), rng.uniform(0, shape[1])
        s = rng.uniform(2, 8)
        if rng.random() < 0.5:
            m = (rr - r0) ** 2 + (cc - c0) ** 2 <= s**2
        else:
            m = (np.abs(rr - r0) <= s) & (np.abs(cc - c0) <= rng.uniform(1, 6))
        lab[m] = k * id_scale + (3 if id_scale > 1 else 0)
    return lab


def assert_close_or_nan(a, b, tol=1e-12):
    if np.isnan(b):
        assert np.isnan(a)
    else:
        assert a == pytest.approx(b, abs=tol)


# ------------------------------------------------------------------------------ hand cases
T_HAND = np.array([[1, 1, 0], [0, 2, 2]])
P_HAND = np.array([[5, 5, 5], [0, 0, 7]])


def test_overlap_matrix_hand_case():
    ov = overlap_matrix(T_HAND, P_HAND)
    assert isinstance(ov, Overlap)
    assert ov.shape == (2, 2)
    np.testing.assert_array_equal(ov.true_ids, [1, 2])
    np.testing.assert_array_equal(ov.pred_ids, [5, 7])
    np.testing.assert_array_equal(ov.true_areas, [2, 2])
    np.testing.assert_array_equal(ov.pred_areas, [3, 1])
    np.testing.assert_array_equal(ov.to_dense(), [[2, 0], [0, 1]])
    np.testing.assert_array_equal(ov.union, [3, 2])
    np.testing.assert_allclose(ov.iou, [2 / 3, 1 / 2])
    np.testing.assert_array_equal(ov.to_sparse().toarray(), ov.to_dense())
    for arr in (ov.rows, ov.cols, ov.intersection, ov.true_areas, ov.pred_areas):
        assert arr.dtype == np.int64


def test_aji_hand_case():
    # G1 -> S5 (2 / 3), G2 -> S7 (1 / 2): (2 + 1) / (3 + 2)
    assert aji(T_HAND, P_HAND) == pytest.approx(0.6)


def test_one_prediction_covering_two_nuclei():
    t = np.zeros((4, 4), int)
    t[:2, :2] = 1
    t[2:, :2] = 2
    p = np.zeros((4, 4), int)
    p[:, :2] = 9  # one blob over both nuclei: one-to-many
    # AJI: both G take S (IoU 1/2 each), S counted in both unions: (4 + 4) / (8 + 8)
    assert aji(t, p) == pytest.approx(0.5)
    # AJI+: one pair (4 / 8), the other nucleus adds 4 to the union: 4 / 12
    assert aji_plus(t, p) == pytest.approx(1 / 3)
    # PQ: IoU = 0.5 is not > 0.5, so no match
    q = panoptic_quality(t, p)
    assert (q["tp"], q["fp"], q["fn"]) == (0, 1, 2)
    assert q["pq"] == 0.0
    assert q["sq"] == 0.0
    assert q["dq"] == 0.0


def test_two_predictions_splitting_one_nucleus():
    t = np.zeros((4, 4), int)
    t[:, :3] = 1  # 12 px
    p = np.zeros((4, 4), int)
    p[:, :2] = 1  # 8 px, IoU 8/12
    p[:, 2:] = 2  # 8 px, 4 inside the nucleus: IoU 4/16
    # many-to-one: G takes S1; S2 is unused and adds its 8 px
    assert aji(t, p) == pytest.approx(8 / (12 + 8))
    assert aji_plus(t, p) == pytest.approx(8 / (12 + 8))
    q = panoptic_quality(t, p)
    assert (q["tp"], q["fp"], q["fn"]) == (1, 1, 0)
    assert q["sq"] == pytest.approx(8 / 12)
    assert q["dq"] == pytest.approx(1 / 1.5)
    assert q["pq"] == pytest.approx(8 / 12 / 1.5)


def test_aji_tie_goes_to_lowest_prediction_id():
    t = np.zeros((2, 4), int)
    t[:, 1:3] = 1
    p = np.zeros((2, 4), int)
    p[:, :2] = 4  # IoU 2 / 6 each
    p[:, 2:] = 3
    # tie: label 3 is chosen, label 4 unused -> (2) / (6 + 4)
    assert aji(t, p) == pytest.approx(2 / 10)


def test_pixel_scores_hand_case():
    t = np.array([[1, 1, 0, 0], [1, 0, 0, 0]], bool)
    p = np.array([[1, 0, 1, 0], [1, 0, 0, 0]], bool)
    s = pixel_scores(t, p)  # TP 2, FP 1, FN 1, TN 4
    assert s["recall"] == pytest.approx(2 / 3)
    assert s["precision"] == pytest.approx(2 / 3)
    assert s["f1"] == pytest.approx(2 / 3)
    assert s["accuracy"] == pytest.approx(6 / 8)
    assert s["iou"] == pytest.approx(2 / 4)
    assert s["dice"] == pytest.approx(4 / 6)
    assert s["specificity"] == pytest.approx(4 / 5)
    assert dice(t, p) == pytest.approx(4 / 6)
    assert iou(t, p) == pytest.approx(0.5)
    # labels count as foreground where > 0
    assert dice(t.astype(int) * 7, p) == pytest.approx(4 / 6)


def test_empty_conventions():
    z = np.zeros((5, 5), int)
    one = z.copy()
    one[1:3, 1:3] = 1
    # both empty: undefined
    assert np.isnan(dice(z, z))
    assert np.isnan(iou(z, z))
    assert np.isnan(aji(z, z))
    assert np.isnan(aji_plus(z, z))
    assert np.isnan(panoptic_quality(z, z)["pq"])
    assert np.isnan(pixel_scores(z, z)["recall"])
    assert pixel_scores(z, z)["accuracy"] == 1.0
    # empty prediction
    assert dice(one, z) == 0.0
    assert aji(one, z) == 0.0
    assert aji_plus(one, z) == 0.0
    q = panoptic_quality(one, z)
    assert (q["pq"], q["tp"], q["fp"], q["fn"]) == (0.0, 0, 0, 1)
    assert np.isnan(pixel_scores(one, z)["precision"])
    # empty truth
    assert dice(z, one) == 0.0
    assert aji(z, one) == 0.0
    assert panoptic_quality(z, one)["fp"] == 1
    assert np.isnan(ensemble_dice(one, z))


# ------------------------------------------------------------------------------ brute force on random maps
@pytest.mark.parametrize("id_scale", [1, 7])
def test_metrics_equal_brute_force_on_random_label_maps(id_scale):
    rng = np.random.default_rng(10 + id_scale)
    for _ in range(60):
        t = random_labels(rng, id_scale=id_scale)
        p = random_labels(rng)
        assert_close_or_nan(aji(t, p), ref_aji(t, p))
        assert_close_or_nan(aji_plus(t, p), ref_aji_plus(t, p))
        assert_close_or_nan(dice(t, p), ref_dice(t, p))
        assert_close_or_nan(ensemble_dice(t, p), ref_ensemble_dice(t, p))
        q, r = panoptic_quality(t, p), ref_pq(t, p)
        for key in ("pq", "dq", "sq"):
            assert_close_or_nan(q[key], r[key])
        assert (q["tp"], q["fp"], q["fn"]) == (r["tp"], r["fp"], r["fn"])
        ov = overlap_matrix(t, p)
        _, _, _, _, inter, _ = ref_pairwise(t, p)
        np.testing.assert_array_equal(ov.to_dense(), inter)


def test_noise_label_maps_and_perfect_prediction():
    rng = np.random.default_rng(20)
    t = rng.integers(0, 12, (20, 20))  # every instance scattered: many overlaps per pair
    p = rng.integers(0, 12, (20, 20))
    assert aji(t, p) == pytest.approx(ref_aji(t, p), abs=1e-12)
    assert aji_plus(t, p) == pytest.approx(ref_aji_plus(t, p), abs=1e-12)
    assert aji(t, t) == 1.0
    assert aji_plus(t, t) == 1.0
    assert panoptic_quality(t, t)["pq"] == 1.0


def test_overlap_matrix_huge_ids_use_the_sort_path():
    t = np.array([[0, 10**12], [10**12, 5]], dtype=np.int64)
    p = np.array([[1, 1], [2, 2]])
    ov = overlap_matrix(t, p)
    np.testing.assert_array_equal(ov.true_ids, [5, 10**12])
    np.testing.assert_array_equal(ov.to_dense(), [[0, 1], [1, 1]])


def test_overlap_matrix_many_small_instances_use_the_sparse_count():
    # 900 one-pixel instances on each side: n_true * n_pred is far above the pixel count
    rng = np.random.default_rng(22)
    t = np.arange(1, 901).reshape(30, 30)
    p = rng.permutation(t.ravel()).reshape(30, 30)
    ov = overlap_matrix(t, p)
    assert ov.shape == (900, 900)
    assert ov.intersection.size == 900
    np.testing.assert_array_equal(ov.pred_ids[ov.cols], p.ravel()[ov.rows])
    np.testing.assert_array_equal(ov.intersection, 1)
    assert aji(t, p) == 1.0


def test_inputs_not_mutated():
    rng = np.random.default_rng(21)
    t = random_labels(rng)
    p = random_labels(rng)
    t0, p0 = t.copy(), p.copy()
    for f in (aji, aji_plus, dice, iou, pixel_scores, panoptic_quality, overlap_matrix, ensemble_dice):
        f(t, p)
    instances_from_binary(t > 0, watershed=True, min_size=3)
    np.testing.assert_array_equal(t, t0)
    np.testing.assert_array_equal(p, p0)


def test_bad_input():
    with pytest.raises(
        ValueError, match=r"expected label images of the same shape, got \(2, 3\) and \(3, 2\)"
    ):
        aji(np.zeros((2, 3), int), np.zeros((3, 2), int))
    with pytest.raises(ValueError, match=r"true_labels: expected a label image of shape \(H, W\)"):
        overlap_matrix(np.zeros((2, 3, 3), int), np.zeros((2, 3), int))
    with pytest.raises(TypeError, match="pred_mask: expected integer labels"):
        dice(np.zeros((2, 2), int), np.full((2, 2), 0.4))
    with pytest.raises(ValueError, match="expected labels >= 0"):
        panoptic_quality(np.zeros((2, 2), int), -np.ones((2, 2), int))


# ------------------------------------------------------------------------------ instances_from_binary
def _disk(shape, center, radius):
    rr, cc = np.mgrid[: shape[0], : shape[1]]
    return (rr - center[0]) ** 2 + (cc - center[1]) ** 2 <= radius**2


def test_instances_connected_components_and_min_size():
    m = np.zeros((12, 12), bool)
    m[1:4, 1:4] = True  # 9 px
    m[6:11, 6:11] = True  # 25 px
    m[0, 11] = True  # 1 px
    m[4, 4] = True  # diagonal neighbour of the first square: 8-connected
    lab = instances_from_binary(m)
    assert lab.dtype == np.int32
    assert lab.shape == m.shape
    assert lab.max() == 3
    # numbered in raster order of the first pixel: (0, 11), then (1, 1), then (6, 6)
    assert lab[0, 11] == 1
    assert lab[1, 1] == 2
    assert lab[4, 4] == 2
    assert lab[8, 8] == 3
    lab = instances_from_binary(m, min_size=5)
    np.testing.assert_array_equal(np.unique(lab), [0, 1, 2])
    assert lab[0, 11] == 0
    assert lab[1, 1] == 1
    assert lab[8, 8] == 2


def test_instances_watershed_splits_touching_disks():
    m = _disk((40, 60), (20, 20), 10) | _disk((40, 60), (20, 37), 10)
    assert instances_from_binary(m).max() == 1
    lab = instances_from_binary(m, watershed=True, min_distance=5)
    assert lab.max() == 2
    assert lab[20, 15] != lab[20, 42]
    np.testing.assert_array_equal(lab > 0, m)  # nothing lost
    truth = np.zeros(m.shape, int)
    truth[_disk(m.shape, (20, 20), 10)] = 1
    truth[_disk(m.shape, (20, 37), 10) & (truth == 0)] = 2
    assert aji(truth, lab) > 0.9


def test_instances_watershed_on_synthetic_ki67_truth():
    import nucleikit as nk

    lab = nk.synth.ki67_tile((256, 256), rng=np.random.default_rng(1)).truth.labels
    binary = lab > 0
    cc = instances_from_binary(binary)
    ws = instances_from_binary(binary, watershed=True)
    raw = instances_from_binary(binary, watershed=True, sigma=0)
    # touching nuclei merge without the watershed; the smoothed distance avoids over-splitting
    assert aji(lab, cc) < 0.6
    assert aji(lab, ws) > 0.85
    assert aji(lab, ws) > aji(lab, raw) + 0.05
    assert abs(int(ws.max()) - int(lab.max())) <= 0.1 * lab.max()


def test_instances_watershed_keeps_tiny_components():
    m = np.zeros((20, 20), bool)
    m[2, 2] = True
    m[10:18, 10:18] = True
    lab = instances_from_binary(m, watershed=True, min_distance=3)
    assert lab[2, 2] > 0
    assert lab.max() >= 2


def test_instances_watershed_marker_fallback(monkeypatch):
    import skimage.feature

    # if the peak finder gives no marker, every component still gets one at its distance maximum
    monkeypatch.setattr(skimage.feature, "peak_local_max", lambda *a, **k: np.zeros((0, 2), dtype=int))
    m = np.zeros((20, 20), bool)
    m[2:5, 2:5] = True
    m[10:18, 10:18] = True
    lab = instances_from_binary(m, watershed=True)
    assert lab.max() == 2
    np.testing.assert_array_equal(lab > 0, m)


def test_instances_bad_input():
    with pytest.raises(ValueError, match=r"mask: expected a label image of shape \(H, W\)"):
        instances_from_binary(np.zeros((2, 2, 2), bool))
    with pytest.raises(ValueError, match="min_size: expected a finite value >= 0"):
        instances_from_binary(np.zeros((2, 2), bool), min_size=-1)
    with pytest.raises(ValueError, match="sigma: expected a finite value >= 0"):
        instances_from_binary(np.zeros((2, 2), bool), watershed=True, sigma=-1.0)
    with pytest.raises(TypeError, match="min_distance: expected an integer"):
        instances_from_binary(np.zeros((2, 2), bool), watershed=True, min_distance=2.5)
