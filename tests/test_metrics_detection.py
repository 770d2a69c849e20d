"""Tests for nucleikit.metrics.detection: gated matching, detection/classification scores, PR curves."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from scipy.optimize import linear_sum_assignment
from scipy.spatial.distance import cdist

import nucleikit as nk
from nucleikit.metrics import (
    Matching,
    aupr,
    classification_scores,
    detection_scores,
    match_points,
    pr_curve,
)

# The 3-vs-3 case of papers.md (section M): at r = 6 the full-matrix Hungarian pairs t1 and t2 with far
# predictions to minimise the total distance, and only 1 pair survives the gate; gating first gives 2.
T33 = np.array([[0.0, 0.0], [0.0, 4.0], [0.0, 12.0]])
P33 = np.array([[8.0, 0.0], [4.0, 4.0], [4.0, 0.0]])


# ------------------------------------------------------------------------------ references
def dense_gated(t, p, r):
    """Reference: dense Hungarian with a huge cost beyond r, then keep pairs within r."""
    if len(t) == 0 or len(p) == 0:
        return 0, 0.0
    dist = cdist(t, p)
    a, b = linear_sum_assignment(np.where(dist <= r, dist, 1e6))
    ok = dist[a, b] <= r
    return int(ok.sum()), float(dist[a, b][ok].sum())


def brute_force(t, p, r):
    """Reference: enumerate all one-to-one matchings within r; best = most pairs, then least distance."""
    dist = cdist(t, p) if len(t) and len(p) else np.zeros((len(t), len(p)))
    best = (0, 0.0)
    for choice in itertools.product(range(-1, len(p)), repeat=len(t)):
        used = [j for j in choice if j >= 0]
        if len(used) != len(set(used)):
            continue
        if any(j >= 0 and dist[i, j] > r for i, j in enumerate(choice)):
            continue
        k = len(used)
        total = sum(dist[i, j] for i, j in enumerate(choice) if j >= 0)
        if k > best[0] or (k == best[0] and total < best[1] - 1e-12):
            best = (k, total)
    return best


def check_valid(m: Matching, t, p, r):
    assert isinstance(m, Matching)
    assert m.pairs.shape == (m.tp, 2)
    assert m.pairs.dtype == np.int64
    assert m.distances.shape == (m.tp,)
    assert m.distances.dtype == np.float64
    assert m.tp + m.fn == len(t)
    assert m.tp + m.fp == len(p)
    if m.tp:
        assert len(np.unique(m.pairs[:, 0])) == m.tp  # one-to-one
        assert len(np.unique(m.pairs[:, 1])) == m.tp
        assert np.all(np.diff(m.pairs[:, 0]) > 0)  # sorted by true index
        d = np.hypot(*(np.asarray(t)[m.pairs[:, 0]] - np.asarray(p)[m.pairs[:, 1]]).T)
        np.testing.assert_allclose(m.distances, d, rtol=0, atol=1e-12)
        assert np.all(m.distances <= r)


# ------------------------------------------------------------------------------ match_points
def test_three_vs_three_gate_then_match_beats_match_then_gate():
    dist = cdist(T33, P33)
    a, b = linear_sum_assignment(dist)  # match first, on the full matrix ...
    assert int((dist[a, b] <= 6).sum()) == 1  # ... then gate: 1 TP
    m = match_points(T33, P33, 6)
    assert m.tp == 2
    assert m.pairs.tolist() == [[0, 2], [1, 1]]
    np.testing.assert_allclose(m.distances, [4.0, 4.0], atol=1e-12)
    assert (m.fp, m.fn) == (1, 1)


def test_match_hand_case():
    m = match_points([[0, 0], [10, 10]], [[1, 0], [30, 30]], radius=6)
    assert m.pairs.tolist() == [[0, 0]]
    assert (m.tp, m.fp, m.fn) == (1, 1, 1)
    np.testing.assert_allclose(m.distances, [1.0])


def test_match_prefers_more_pairs_over_shorter_distance():
    # t0 is 1 px from p0 but taking it would leave t1 (5 px from p0 only) unmatched
    t = np.array([[0.0, 0.0], [0.0, 6.0]])
    p = np.array([[0.0, 1.0], [0.0, -4.0]])
    m = match_points(t, p, 5.0)
    assert m.tp == 2
    assert m.pairs.tolist() == [[0, 1], [1, 0]]


@pytest.mark.parametrize("eps", [0.0, 1e-9])
def test_radius_inclusive_just_inside(eps):
    r = 6.0
    m = match_points([[3.0, 7.0]], [[3.0 + r - eps, 7.0]], r)
    assert m.tp == 1


def test_radius_just_outside():
    r = 6.0
    m = match_points([[3.0, 7.0]], [[3.0 + r + 1e-9, 7.0]], r)
    assert (m.tp, m.fp, m.fn) == (0, 1, 1)
    diag = r / np.sqrt(2)
    assert match_points([[0.0, 0.0]], [[diag * (1 - 1e-9), diag * (1 - 1e-9)]], r).tp == 1
    assert match_points([[0.0, 0.0]], [[diag * (1 + 1e-9), diag * (1 + 1e-9)]], r).tp == 0


@pytest.mark.parametrize(("n", "m"), [(0, 0), (0, 3), (4, 0)])
def test_match_empty_sets(n, m):
    rng = np.random.default_rng(0)
    t = rng.uniform(0, 10, (n, 2)) if n else []
    p = rng.uniform(0, 10, (m, 2)) if m else np.zeros((0, 2))
    res = match_points(t, p, 5)
    assert res.pairs.shape == (0, 2)
    assert res.distances.shape == (0,)
    assert (res.tp, res.fp, res.fn) == (0, m, n)


def test_match_no_pair_within_radius():
    res = match_points([[0, 0], [0, 50]], [[20, 20]], 5)
    assert (res.tp, res.fp, res.fn) == (0, 1, 2)


def test_match_equals_brute_force_enumeration_with_ties():
    rng = np.random.default_rng(1)
    for _ in range(150):
        n, m = rng.integers(0, 5, size=2)
        # a coarse integer grid makes equal distances (ties) and exact-radius pairs common
        t = rng.integers(0, 6, (n, 2)).astype(float)
        p = rng.integers(0, 6, (m, 2)).astype(float)
        r = float(rng.choice([1.0, 2.0, np.sqrt(2), np.sqrt(5), 3.0]))
        res = match_points(t, p, r)
        check_valid(res, t, p, r)
        k, total = brute_force(t, p, r)
        assert res.tp == k
        assert res.distances.sum() == pytest.approx(total, abs=1e-9)


def test_match_equals_dense_gated_hungarian_random():
    rng = np.random.default_rng(2)
    for _ in range(100):
        n, m = rng.integers(0, 12, size=2)
        t = rng.uniform(0, 30, (n, 2))
        p = rng.uniform(0, 30, (m, 2))
        r = float(rng.uniform(2, 10))
        res = match_points(t, p, r)
        check_valid(res, t, p, r)
        k, total = dense_gated(t, p, r)
        assert res.tp == k
        assert res.distances.sum() == pytest.approx(total, abs=1e-9)


def test_match_equals_dense_on_crowded_scene_with_large_components():
    rng = np.random.default_rng(3)
    t = rng.uniform(0, 150, (600, 2))  # ~ one point per 37 px^2: the candidate graph percolates at r = 8
    p = np.concatenate([t[:500] + rng.normal(0, 3, (500, 2)), rng.uniform(0, 150, (80, 2))])
    res = match_points(t, p, 8.0)
    check_valid(res, t, p, 8.0)
    k, total = dense_gated(t, p, 8.0)
    assert res.tp == k
    assert res.distances.sum() == pytest.approx(total, rel=1e-9)


def test_match_long_augmenting_path_needs_the_full_penalty():
    # t_k = 20 k, q_k = 20 k + 1 (1 px from t_k, 19 px from t_(k+1)), q' = -18 (18 px from t_0), r = 19.
    # Pairing each t_k with q_k (total 99 px) leaves one point unmatched; the maximum matching shifts
    # the whole chain (t_0-q', t_(k+1)-q_k: total 18 + 19 * 99 px). Only a penalty above 9 x 100 px per
    # unmatched point prefers it, so the escalation of the penalty must kick in (it starts at 16 r + 1).
    k = 100
    t = np.stack([np.zeros(k), 20.0 * np.arange(k)], axis=1)
    p = np.concatenate([np.stack([np.zeros(k - 1), 20.0 * np.arange(k - 1) + 1], axis=1), [[0.0, -18.0]]])
    res = match_points(t, p, 19.0)
    check_valid(res, t, p, 19.0)
    assert res.tp == k
    assert res.distances.sum() == pytest.approx(18 + 19 * (k - 1))
    assert dense_gated(t, p, 19.0) == (k, pytest.approx(18 + 19 * (k - 1)))


def test_match_no_mutation_and_deterministic():
    rng = np.random.default_rng(4)
    t = rng.uniform(0, 50, (40, 2))
    p = rng.uniform(0, 50, (45, 2))
    t0, p0 = t.copy(), p.copy()
    a = match_points(t, p, 6)
    b = match_points(t, p, 6)
    np.testing.assert_array_equal(t, t0)
    np.testing.assert_array_equal(p, p0)
    np.testing.assert_array_equal(a.pairs, b.pairs)


def test_match_accepts_integer_points_and_lists():
    a = match_points(np.array([[0, 0]], dtype=np.int32), [[0, 3]], 3)
    assert a.tp == 1


def test_match_bad_input():
    with pytest.raises(ValueError, match=r"true_rc: expected points of shape \(N, 2\)"):
        match_points(np.zeros((3, 3)), np.zeros((2, 2)), 5)
    with pytest.raises(ValueError, match="pred_rc: expected finite"):
        match_points(np.zeros((1, 2)), [[np.nan, 0]], 5)
    with pytest.raises(ValueError, match="radius: expected a finite value > 0"):
        match_points(np.zeros((1, 2)), np.zeros((1, 2)), 0)
    with pytest.raises(TypeError, match="radius: expected a number"):
        match_points(np.zeros((1, 2)), np.zeros((1, 2)), "6")


# ------------------------------------------------------------------------------ detection_scores
def test_detection_scores_hand_case():
    s = detection_scores(T33, P33, 6)
    assert (s["tp"], s["fp"], s["fn"]) == (2, 1, 1)
    assert s["precision"] == pytest.approx(2 / 3)
    assert s["recall"] == pytest.approx(2 / 3)
    assert s["f1"] == pytest.approx(2 / 3)
    assert s["dist_mean"] == pytest.approx(4.0)
    assert s["dist_std"] == pytest.approx(0.0, abs=1e-12)
    s = detection_scores([[0, 0], [0, 20], [0, 40]], [[0, 1], [0, 23], [9, 9]], 5)
    assert (s["tp"], s["fp"], s["fn"]) == (2, 1, 1)
    assert s["dist_mean"] == pytest.approx(2.0)
    assert s["dist_std"] == pytest.approx(1.0)  # population std of (1, 3)


def test_detection_scores_pooled_over_images():
    rng = np.random.default_rng(5)
    trues = [rng.uniform(0, 40, (k, 2)) for k in (10, 0, 7)]
    preds = [rng.uniform(0, 40, (k, 2)) for k in (8, 3, 0)]
    pooled = detection_scores(trues, preds, 6)
    parts = [match_points(t, p, 6) for t, p in zip(trues, preds, strict=True)]
    tp = sum(m.tp for m in parts)
    fp = sum(m.fp for m in parts)
    fn = sum(m.fn for m in parts)
    assert (pooled["tp"], pooled["fp"], pooled["fn"]) == (tp, fp, fn)
    assert pooled["f1"] == pytest.approx(2 * tp / (2 * tp + fp + fn))
    d = np.concatenate([m.distances for m in parts])
    assert pooled["dist_mean"] == pytest.approx(d.mean())


def test_detection_scores_undefined_ratios_are_nan():
    s = detection_scores(np.zeros((0, 2)), np.zeros((0, 2)), 5)
    assert np.isnan(s["precision"])
    assert np.isnan(s["recall"])
    assert np.isnan(s["f1"])
    s = detection_scores([[0, 0]], np.zeros((0, 2)), 5)
    assert np.isnan(s["precision"])
    assert s["recall"] == 0.0
    assert s["f1"] == 0.0
    assert np.isnan(s["dist_mean"])
    assert np.isnan(s["dist_std"])


def test_detection_scores_list_length_mismatch():
    with pytest.raises(ValueError, match="same length"):
        detection_scores([np.zeros((1, 2)), np.zeros((1, 2))], [np.zeros((1, 2))], 5)


# ------------------------------------------------------------------------------ classification
def test_classification_scores_hand_case():
    t = [[0, 0], [0, 20], [0, 40], [0, 60]]
    tc = np.array([0, 0, 1, 1])
    p = [[0, 1], [0, 21], [0, 41], [30, 30]]
    pc = np.array([0, 1, 1, 1])  # t1 found but called class 1; p3 spurious; t3 missed
    s = classification_scores(t, tc, p, pc, 5, n_classes=2)
    # class 0: TP 1 (t0), FP 0, FN 1 (t1 misclassified)
    # class 1: TP 1 (t2), FP 2 (p1 misclassified, p3 spurious), FN 1 (t3 missed)
    np.testing.assert_array_equal(s["tp"], [1, 1])
    np.testing.assert_array_equal(s["fp"], [0, 2])
    np.testing.assert_array_equal(s["fn"], [1, 1])
    np.testing.assert_array_equal(s["support"], [2, 2])
    np.testing.assert_allclose(s["precision"], [1.0, 1 / 3])
    np.testing.assert_allclose(s["recall"], [0.5, 0.5])
    np.testing.assert_allclose(s["f1"], [2 / 3, 0.4])
    assert s["weighted_f1"] == pytest.approx(0.5 * 2 / 3 + 0.5 * 0.4)
    assert s["weighted_precision"] == pytest.approx(0.5 * 1 + 0.5 / 3)
    assert s["macro_f1"] == pytest.approx((2 / 3 + 0.4) / 2)
    assert s["accuracy"] == pytest.approx(2 / 3)
    np.testing.assert_array_equal(s["confusion"], [[1, 1, 0], [0, 1, 1], [0, 1, 0]])


def test_classification_weights_are_class_shares_and_unpredicted_class_counts_zero():
    t = [[0, 0], [0, 20], [0, 40], [0, 60]]
    tc = np.array([0, 0, 0, 2])
    s = classification_scores(t, tc, t, np.array([0, 0, 0, 0]), 3, n_classes=3)
    # class 2 present (weight 1/4) but never predicted: precision NaN per class, 0 in the average
    assert np.isnan(s["precision"][2])
    assert np.isnan(s["recall"][1])
    assert np.isnan(s["f1"][1])
    assert s["weighted_precision"] == pytest.approx(0.75 * 0.75 + 0.25 * 0.0)
    assert s["weighted_recall"] == pytest.approx(0.75 * 1.0)


def test_classification_equals_detection_with_one_class():
    rng = np.random.default_rng(6)
    t = rng.uniform(0, 60, (30, 2))
    p = rng.uniform(0, 60, (25, 2))
    det = detection_scores(t, p, 6)
    cls = classification_scores(t, np.zeros(30, int), p, np.zeros(25, int), 6, 1)
    assert cls["weighted_f1"] == pytest.approx(det["f1"])
    assert cls["weighted_precision"] == pytest.approx(det["precision"])


def test_classification_bad_classes():
    t = np.zeros((2, 2))
    with pytest.raises(ValueError, match=r"true_cls: expected class ids of shape \(2,\)"):
        classification_scores(t, [0], t, [0, 0], 5, 2)
    with pytest.raises(ValueError, match=r"pred_cls: expected class ids in 0..1"):
        classification_scores(t, [0, 1], t, [0, 2], 5, 2)
    with pytest.raises(TypeError, match="true_cls: expected integer class ids"):
        classification_scores(t, [0.5, 1.0], t, [0, 1], 5, 2)


# ------------------------------------------------------------------------------ PR curve and area
def test_aupr_hand_case():
    p = np.array([1.0, 0.8, 0.5])
    r = np.array([0.2, 0.6, 0.8])
    # (0, 1) added: 0.2 * 1 + 0.4 * 0.9 + 0.2 * 0.65
    assert aupr(p, r) == pytest.approx(0.69, abs=1e-12)
    assert aupr(p[::-1], r[::-1]) == pytest.approx(0.69, abs=1e-12)  # order of the sweep does not matter
    assert aupr([1.0, 1.0], [0.5, 1.0]) == pytest.approx(1.0)
    assert aupr([np.nan, 1.0, 0.5], [0.0, 0.5, 0.5]) == pytest.approx(0.5)  # NaN point dropped


def test_aupr_bad_input():
    with pytest.raises(ValueError, match="same shape"):
        aupr([1.0, 0.5], [0.1])
    with pytest.raises(ValueError, match=r"values in \[0, 1\]"):
        aupr([1.5], [0.5])


def test_pr_curve_hand_case():
    t = np.array([[0.0, 0.0], [0.0, 20.0], [0.0, 40.0]])
    p = np.array([[0.0, 1.0], [0.0, 21.0], [30.0, 30.0], [0.0, 39.0]])
    scores = np.array([1.0, 0.8, 0.6, 0.2])
    prec, rec, xi = pr_curve(t, p, scores, 5, thresholds=[0.0, 0.5, 0.7, 0.9])
    np.testing.assert_allclose(xi, [0.0, 0.5, 0.7, 0.9])
    np.testing.assert_allclose(rec, [1.0, 2 / 3, 2 / 3, 1 / 3])
    np.testing.assert_allclose(prec, [0.75, 2 / 3, 1.0, 1.0])
    # area: (0,1) -> (1/3,1) -> (2/3,1) -> (2/3, 2/3) -> (1, 0.75)
    assert aupr(prec, rec) == pytest.approx(2 / 3 + (1 / 3) * (2 / 3 + 0.75) / 2)


def test_pr_curve_default_thresholds_and_pooling():
    rng = np.random.default_rng(7)
    trues = [rng.uniform(0, 50, (12, 2)) for _ in range(2)]
    preds = [t + rng.normal(0, 1, t.shape) for t in trues]
    scores = [rng.uniform(0.1, 1, 12) for _ in range(2)]
    prec, rec, xi = pr_curve(trues, preds, scores, 6)
    assert xi.shape == (21,)
    assert xi[0] == 0.0
    assert xi[-1] == 1.0
    for k in (0, 7, 15):
        keep = [s >= xi[k] * s.max() for s in scores]
        ref = detection_scores(trues, [p[m] for p, m in zip(preds, keep, strict=True)], 6)
        assert rec[k] == pytest.approx(ref["recall"])
        assert prec[k] == pytest.approx(ref["precision"])
    assert np.all(np.diff(rec) <= 1e-12)  # recall never grows with the threshold


def test_pr_curve_with_classes_uses_weighted_scores():
    t = np.array([[0.0, 0.0], [0.0, 20.0]])
    p = np.array([[0.0, 1.0], [0.0, 21.0]])
    prec, rec, _ = pr_curve(
        t, p, [1.0, 0.4], 5, thresholds=[0.0, 0.5], true_cls=[0, 1], pred_cls=[0, 0], n_classes=2
    )
    # xi = 0: class 0 P 1/2 R 1, class 1 P NaN->0 R 0 -> weighted P 0.25, R 0.5
    np.testing.assert_allclose(prec, [0.25, 0.5])
    np.testing.assert_allclose(rec, [0.5, 0.5])


def test_pr_curve_from_find_peaks_equals_peaks_at_each_xi():
    rng = np.random.default_rng(8)
    t = rng.uniform(5, 95, (25, 2))
    pts = t + rng.normal(0, 1.5, t.shape)
    maps = nk.detect.points_to_proximity_map(pts, (100, 100), d=6.0) * rng.uniform(0.3, 1.0)
    maps = maps + 0.05 * nk.detect.points_to_proximity_map(rng.uniform(0, 100, (15, 2)), (100, 100), d=6.0)
    cand, _, scores = nk.detect.find_peaks(maps, xi=0.0, min_distance=3)
    prec, rec, xi = pr_curve(t, cand, scores, 6)
    for k, x in enumerate(xi):
        found, _, _ = nk.detect.find_peaks(maps, xi=float(x), min_distance=3)
        ref = detection_scores(t, found, 6)
        assert rec[k] == pytest.approx(ref["recall"])
        if np.isnan(ref["precision"]):
            assert np.isnan(prec[k])
        else:
            assert prec[k] == pytest.approx(ref["precision"])


def test_pr_curve_bad_input():
    t = np.zeros((1, 2))
    with pytest.raises(ValueError, match=r"thresholds: expected a 1-D array of ξ values in \[0, 1\]"):
        pr_curve(t, t, [1.0], 5, thresholds=[0.0, 1.5])
    with pytest.raises(ValueError, match=r"scores: expected shape \(1,\)"):
        pr_curve(t, t, [1.0, 2.0], 5)
    with pytest.raises(ValueError, match="together"):
        pr_curve(t, t, [1.0], 5, true_cls=[0])
