"""Detection metrics: one-to-one point matching within a radius, P/R/F1, per-class scores, PR curves.

Every point metric here is built on :func:`match_points`, a gated optimal (Hungarian-type) assignment:

1. **Gate first.** Only pairs closer than the radius ``r`` (``d <= r``) are candidate matches; they are
   found with a KD-tree, so the cost of the search grows with the number of close pairs, not ``N * M``.
2. **Then assign.** Among all one-to-one matchings that use only candidate pairs, take one with the largest
   number of matches and, among those, the smallest total distance.

Code that runs the Hungarian algorithm on the full distance matrix first and drops pairs beyond ``r``
afterwards (hover_net, FRCN) under-counts true positives: minimising the *total* distance can pair a
point with a far partner (later dropped) to save distance elsewhere, and so lose a pair that was within
``r``. In the 3-vs-3 example of the tests, match-then-gate finds 1 true positive and gate-then-match 2.

Inputs for a single image are point arrays of shape ``(N, 2)`` in (row, col); a list of such arrays (one
per image) pools the counts over images, as the papers report them.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np
import scipy.sparse as sp
from scipy.sparse.csgraph import (
    connected_components,
    maximum_bipartite_matching,
    min_weight_full_bipartite_matching,
)
from scipy.spatial import cKDTree

from .._checks import check_points, check_positive, describe

__all__ = [
    "Matching",
    "aupr",
    "classification_scores",
    "detection_scores",
    "match_points",
    "pr_curve",
]


class Matching(NamedTuple):
    """Result of :func:`match_points`.

    Attributes
    ----------
    pairs : ndarray of shape (K, 2) and dtype int64
        ``pairs[k] = (i, j)``: true point ``i`` is matched with predicted point ``j``; sorted by ``i``.
    distances : ndarray of shape (K,) and dtype float64
        Euclidean distance of each matched pair, in pixels (all ``<= radius``).
    tp : int
        Number of matched pairs (K).
    fp : int
        Predicted points left unmatched (``n_pred - K``).
    fn : int
        True points left unmatched (``n_true - K``).
    """

    pairs: np.ndarray
    distances: np.ndarray
    tp: int
    fp: int
    fn: int


# ----------------------------------------------------------------------------------------- helpers
def _ratio(num: float, den: float) -> float:
    """``num / den``, NaN when ``den == 0`` (an undefined score, never a silent 0 or 1)."""
    return float(num) / float(den) if den else float("nan")


def _is_batch(x: Any) -> bool:
    """Tell a list/tuple of per-image arrays (each 2-D, or empty) from one image's points."""
    if not isinstance(x, (list, tuple)) or len(x) == 0:
        return False
    return all(hasattr(e, "shape") and (np.ndim(e) == 2 or np.size(e) == 0) for e in x)


def _as_list(x: Any, name: str, batch: bool) -> list:
    if not batch:
        return [x]
    if not isinstance(x, (list, tuple)):
        raise TypeError(f"{name}: expected a list with one entry per image (like true_rc), got {describe(x)}")
    return list(x)


def _check_radius(radius: Any) -> float:
    return float(check_positive(radius, "radius"))


def _check_classes(classes: Any, n: int, n_classes: int, name: str) -> np.ndarray:
    cls = np.asarray(classes)
    if cls.size == 0 and n == 0:
        return np.zeros(0, dtype=np.int64)
    if cls.ndim != 1 or cls.shape[0] != n:
        raise ValueError(f"{name}: expected class ids of shape ({n},) (one per point), got {describe(cls)}")
    if cls.dtype.kind not in "iu":
        raise TypeError(f"{name}: expected integer class ids in 0..{n_classes - 1}, got {describe(cls)}")
    if cls.size and (cls.min() < 0 or cls.max() >= n_classes):
        raise ValueError(
            f"{name}: expected class ids in 0..{n_classes - 1} (n_classes={n_classes}), "
            f"got values in [{cls.min()}, {cls.max()}]"
        )
    return cls.astype(np.int64, copy=False)


def _candidate_pairs(
    true_rc: np.ndarray, pred_rc: np.ndarray, radius: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """All pairs (i, j) with ``||true_i - pred_j|| <= radius``, sorted by (i, j), and their distances."""
    tree_t, tree_p = cKDTree(true_rc), cKDTree(pred_rc)
    # query slightly wider, then apply the exact test below with the same formula as scipy's cdist
    found = tree_t.sparse_distance_matrix(tree_p, radius * (1 + 1e-9) + 1e-12, output_type="ndarray")
    i = found["i"].astype(np.int64)
    j = found["j"].astype(np.int64)
    diff = true_rc[i] - pred_rc[j]  # (E, 2)
    dist = np.sqrt(np.sum(diff * diff, axis=1))
    keep = dist <= radius
    i, j, dist = i[keep], j[keep], dist[keep]
    order = np.lexsort((j, i))
    return i[order], j[order], dist[order]


def _solve_doubled(
    li: np.ndarray,
    lj: np.ndarray,
    dist: np.ndarray,
    nt: int,
    npj: int,
    h_true: np.ndarray,
    h_pred: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Min-cost perfect matching of the doubled graph (LAPJVsp); returns (left, right) node indices.

    Left nodes: true points (nt), then one dummy per predicted point (npj). Right nodes: predicted points
    (npj), then one dummy per true point (nt). Edges: the candidate pairs (cost d); their mirror between
    the dummies (cost 0, so that matched points' dummies pair up); each point with its own dummy (cost H,
    "unmatched"). A matching with K real pairs costs sum(d) + H (number of unmatched points). Every weight
    is shifted by +1 so that none is zero (LAPJVsp would read an explicit zero as a missing edge).
    """
    e = len(li)
    rows = np.concatenate([li, nt + lj, np.arange(nt), nt + np.arange(npj)])
    cols = np.concatenate([lj, npj + li, npj + np.arange(nt), np.arange(npj)])
    weights = np.concatenate([dist + 1.0, np.ones(e), 1.0 + h_true, 1.0 + h_pred])
    doubled = sp.csr_array((weights, (rows, cols)), shape=(nt + npj, nt + npj))
    return min_weight_full_bipartite_matching(doubled)


# ----------------------------------------------------------------------------------------- matching
def match_points(true_rc: Any, pred_rc: Any, radius: float) -> Matching:
    """Match true and predicted points one-to-one within a radius (gate, then optimal assignment).

    Parameters
    ----------
    true_rc : array_like of shape (N, 2)
        Ground-truth points in (row, col), pixels.
    pred_rc : array_like of shape (M, 2)
        Predicted points in (row, col), pixels.
    radius : float
        Largest distance of a match, in pixels (inclusive: ``d <= radius`` may match). The papers use
        6 px (CRCHisto, prostate) and 16 px (KiNet).

    Returns
    -------
    Matching
        ``pairs`` (K, 2), ``distances`` (K,), ``tp``, ``fp``, ``fn``.

    Raises
    ------
    ValueError
        For points not of shape (N, 2), non-finite coordinates, or a radius that is not > 0.
    TypeError
        For a non-numeric radius or coordinates.

    Notes
    -----
    The radius is applied **before** the assignment: pairs with ``d > r`` are not edges of the candidate
    graph, so they can never be chosen. The matching maximises the number of matched pairs first and,
    among all maximum matchings, minimises the total distance. This is the optimum that a dense Hungarian
    solver reaches on the full matrix with cost ``d`` for ``d <= r`` and a huge cost beyond ``r`` (then
    dropping the huge-cost pairs); the tests check exactly that.

    Implementation (sparse, no dense ``N x M`` matrix):

    1. The candidate pairs come from a KD-tree; the candidate graph is split into connected components,
       and the largest number of matches of each component, ``k*_c``, is found by Hopcroft-Karp
       (:func:`scipy.sparse.csgraph.maximum_bipartite_matching`).
    2. The assignment is a min-cost perfect matching of the usual doubled graph, where each point may
       instead pair with its own "unmatched" dummy at a penalty ``H_c``: cost ``sum(d) + H_c x (number
       of unmatched points)``. It is solved by LAPJVsp
       (:func:`scipy.sparse.csgraph.min_weight_full_bipartite_matching`); the graph is block-diagonal,
       so each component is solved independently, without a Python loop over components.
    3. If a component's solution has ``k*_c`` matches it is the answer for that component (it has the
       least total distance among all matchings with ``k*_c`` pairs). Otherwise its ``H_c`` is raised
       16-fold and the solve repeated. ``H_c`` starts at ``16 r + 1`` and is capped at
       ``r (min(n_c, m_c) + 1) + 1``, which provably yields a maximum matching (an augmenting path adds
       at most ``min(n_c, m_c)`` pairs of length ``<= r``). Starting small matters: the shortest-path
       searches of LAPJVsp explore everything cheaper than ``H_c``, so a huge penalty costs 20x time.

    The number of matches is exact; the total distance is minimal up to floating-point rounding. Ties
    (several optimal matchings) are broken deterministically by the order of the points. 10,000 points
    per image take well under a second (see ``python -m nucleikit bench detect``).

    References
    ----------
    .. [1] F. Xing et al., "Pixel-to-pixel learning with weak supervision for single-stage nucleus
       recognition in Ki67 images", IEEE TBME 2019 (Hungarian matching within 16 px).

    Examples
    --------
    >>> m = match_points([[0, 0], [10, 10]], [[1, 0], [30, 30]], radius=6)
    >>> m.pairs.tolist(), m.tp, m.fp, m.fn
    ([[0, 0]], 1, 1, 1)
    """
    radius = _check_radius(radius)
    t = check_points(true_rc, "true_rc")
    p = check_points(pred_rc, "pred_rc")
    n, m = len(t), len(p)
    empty = Matching(np.zeros((0, 2), dtype=np.int64), np.zeros(0, dtype=np.float64), 0, m, n)
    if n == 0 or m == 0:
        return empty
    i, j, dist = _candidate_pairs(t, p, radius)
    n_edges = len(i)
    if n_edges == 0:
        return empty

    # nodes that have at least one candidate; the others are unmatched for sure
    ti, li = np.unique(i, return_inverse=True)  # li: local index of each edge's true point
    pj, lj = np.unique(j, return_inverse=True)
    nt, npj = len(ti), len(pj)

    # connected components of the candidate graph (true nodes 0..nt-1, pred nodes nt..nt+npj-1)
    graph = sp.coo_array((np.ones(n_edges), (li, nt + lj)), shape=(nt + npj, nt + npj))
    _, comp = connected_components(graph, directed=False)
    comp_t, comp_p = comp[:nt], comp[nt:]
    n_comp = int(comp.max()) + 1
    # the largest number of matches per component (Hopcroft-Karp): the target of the assignment
    mate = maximum_bipartite_matching(sp.csr_array((np.ones(n_edges), (li, lj)), shape=(nt, npj)), "column")
    k_best = np.bincount(comp_t[mate >= 0], minlength=n_comp)
    # a penalty H_c per unmatched point; H_c > r min(n_c, m_c) / 2 always gives a maximum matching
    n_small = np.minimum(np.bincount(comp_t, minlength=n_comp), np.bincount(comp_p, minlength=n_comp))
    safe = radius * (n_small + 1.0) + 1.0
    penalty = np.minimum(safe, 16.0 * radius + 1.0)
    for _ in range(16):
        left, right = _solve_doubled(li, lj, dist, nt, npj, penalty[comp_t], penalty[comp_p])
        real = (left < nt) & (right < npj)
        short = np.bincount(comp_t[left[real]], minlength=n_comp) < k_best
        if not short.any() or np.all(penalty[short] >= safe[short]):
            break
        penalty[short] = np.minimum(safe[short], penalty[short] * 16.0)
    a = ti[left[real]]
    b = pj[right[real]]
    order = np.argsort(a, kind="stable")
    a, b = a[order], b[order]
    diff = t[a] - p[b]  # (K, 2)
    d = np.sqrt(np.sum(diff * diff, axis=1))
    k = len(a)
    return Matching(np.stack([a, b], axis=1).astype(np.int64), d, k, m - k, n - k)


# ----------------------------------------------------------------------------------------- scores
def detection_scores(true_rc: Any, pred_rc: Any, radius: float) -> dict[str, float]:
    """Precision, recall, F1 and the distance of true positives, for one image or pooled over images.

    Parameters
    ----------
    true_rc : array_like of shape (N, 2), or list of them
        Ground-truth points in (row, col). A list of arrays (one per image) pools the counts.
    pred_rc : array_like of shape (M, 2), or list of them
        Predicted points, like ``true_rc`` (a list of the same length when ``true_rc`` is one).
    radius : float
        Largest distance of a match, in pixels (see :func:`match_points`).

    Returns
    -------
    dict
        ``precision = tp / (tp + fp)``, ``recall = tp / (tp + fn)``,
        ``f1 = 2 tp / (2 tp + fp + fn)``, the counts ``tp``, ``fp``, ``fn`` (int), and ``dist_mean``,
        ``dist_std`` of the matched pairs' distances (population std, ``ddof=0``, pooled over all
        pairs of all images).

    Raises
    ------
    ValueError
        For bad points or radius, or lists of different lengths.

    Notes
    -----
    An undefined ratio (``0 / 0``: no prediction for precision, no truth for recall, neither for F1,
    no true positive for the distances) is NaN, not 0 or 1. F1 is computed from the counts, so it is 0
    (not NaN) when there are points but no match.
    """
    batch = _is_batch(true_rc)
    trues = _as_list(true_rc, "true_rc", batch)
    preds = _as_list(pred_rc, "pred_rc", batch)
    if len(trues) != len(preds):
        raise ValueError(
            f"true_rc and pred_rc: expected lists with one entry per image of the same length, "
            f"got {len(trues)} and {len(preds)}"
        )
    tp = fp = fn = 0
    dists = []
    for t, p in zip(trues, preds, strict=True):
        m = match_points(t, p, radius)
        tp, fp, fn = tp + m.tp, fp + m.fp, fn + m.fn
        dists.append(m.distances)
    d = np.concatenate(dists) if dists else np.zeros(0)
    return {
        "precision": _ratio(tp, tp + fp),
        "recall": _ratio(tp, tp + fn),
        "f1": _ratio(2 * tp, 2 * tp + fp + fn),
        "tp": int(tp),
        "fp": int(fp),
        "fn": int(fn),
        "dist_mean": float(d.mean()) if d.size else float("nan"),
        "dist_std": float(d.std()) if d.size else float("nan"),
    }


def classification_scores(
    true_rc: Any,
    true_cls: Any,
    pred_rc: Any,
    pred_cls: Any,
    radius: float,
    n_classes: int,
) -> dict[str, Any]:
    """Per-class precision, recall and F1 of detected-and-classified points, and their weighted average.

    Parameters
    ----------
    true_rc : array_like of shape (N, 2), or list of them
        Ground-truth points in (row, col); a list (one array per image) pools the counts.
    true_cls : array_like of shape (N,) and integer dtype, or list of them
        Class of each true point, in ``0 .. n_classes - 1``.
    pred_rc : array_like of shape (M, 2), or list of them
        Predicted points.
    pred_cls : array_like of shape (M,) and integer dtype, or list of them
        Predicted class of each point.
    radius : float
        Largest distance of a match, in pixels.
    n_classes : int
        Number of classes C.

    Returns
    -------
    dict
        ``precision``, ``recall``, ``f1``, ``tp``, ``fp``, ``fn``, ``support`` : ndarray of shape (C,)
            Per class; ``support`` is the number of true points of each class.
        ``weighted_precision``, ``weighted_recall``, ``weighted_f1`` : float
            Averages with weights ``support / support.sum()`` (the class shares in the truth).
        ``macro_f1`` : float
            Unweighted mean of ``f1`` over the classes present in the truth.
        ``accuracy`` : float
            Share of matched pairs whose predicted class is right (classification among detected nuclei).
        ``confusion`` : ndarray of shape (C + 1, C + 1) and dtype int64
            Rows = true class, columns = predicted class; row ``C`` counts unmatched predictions (by
            predicted class), column ``C`` unmatched true points (by true class).

    Raises
    ------
    ValueError
        For bad points, classes outside ``0 .. n_classes - 1`` or of the wrong length.
    TypeError
        For non-integer classes.

    Notes
    -----
    The points are matched once, class-agnostically, by :func:`match_points`. Then for each class c:

    - TP_c: matched pairs whose true **and** predicted class are c;
    - FP_c: predictions of class c that are unmatched, or matched to a true point of another class;
    - FN_c: true points of class c that are unmatched, or matched to a prediction of another class.

    So a nucleus found at the right place with the wrong class counts twice: as an FN of its true class
    and as an FP of the predicted class. Per class, ``precision = TP/(TP+FP)`` (NaN when class c is
    never predicted), ``recall = TP/(TP+FN)`` (NaN when absent from the truth), ``f1 = 2TP/(2TP+FP+FN)``.
    In the weighted averages a NaN of a class with non-zero weight counts as 0 (a class present in the
    truth but never predicted has precision 0 there); classes with zero weight do not contribute.
    """
    n_classes = int(check_positive(n_classes, "n_classes", integer=True))
    batch = _is_batch(true_rc)
    lists = [
        _as_list(x, name, batch)
        for x, name in (
            (true_rc, "true_rc"),
            (true_cls, "true_cls"),
            (pred_rc, "pred_rc"),
            (pred_cls, "pred_cls"),
        )
    ]
    if len({len(x) for x in lists}) != 1:
        raise ValueError(
            "true_rc, true_cls, pred_rc, pred_cls: expected lists with one entry per image of the same "
            f"length, got lengths {[len(x) for x in lists]}"
        )
    conf = np.zeros((n_classes + 1, n_classes + 1), dtype=np.int64)
    for t, tc, p, pc in zip(*lists, strict=True):
        t = check_points(t, "true_rc")
        p = check_points(p, "pred_rc")
        tc = _check_classes(tc, len(t), n_classes, "true_cls")
        pc = _check_classes(pc, len(p), n_classes, "pred_cls")
        m = match_points(t, p, radius)
        a, b = m.pairs[:, 0], m.pairs[:, 1]
        np.add.at(conf, (tc[a], pc[b]), 1)
        missed = np.ones(len(t), dtype=bool)
        missed[a] = False
        spurious = np.ones(len(p), dtype=bool)
        spurious[b] = False
        conf[:n_classes, n_classes] += np.bincount(tc[missed], minlength=n_classes)
        conf[n_classes, :n_classes] += np.bincount(pc[spurious], minlength=n_classes)
    tp = np.diag(conf)[:n_classes].copy()
    fp = conf[:, :n_classes].sum(axis=0) - tp
    fn = conf[:n_classes, :].sum(axis=1) - tp
    support = conf[:n_classes, :].sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        precision = np.where(tp + fp > 0, tp / np.maximum(tp + fp, 1), np.nan)
        recall = np.where(support > 0, tp / np.maximum(support, 1), np.nan)
        f1 = np.where(2 * tp + fp + fn > 0, 2 * tp / np.maximum(2 * tp + fp + fn, 1), np.nan)
    total = support.sum()
    weights = support / total if total else np.zeros(n_classes)

    def weighted(x: np.ndarray) -> float:
        return float(np.sum(weights * np.nan_to_num(x, nan=0.0))) if total else float("nan")

    n_matched = conf[:n_classes, :n_classes].sum()
    present = support > 0
    return {
        "precision": precision,
        "recall": recall,
        "f1": f1,
        "tp": tp,
        "fp": fp,
        "fn": fn,
        "support": support,
        "weighted_precision": weighted(precision),
        "weighted_recall": weighted(recall),
        "weighted_f1": weighted(f1),
        "macro_f1": float(np.mean(np.nan_to_num(f1[present], nan=0.0))) if present.any() else float("nan"),
        "accuracy": _ratio(tp.sum(), n_matched),
        "confusion": conf,
    }


# ----------------------------------------------------------------------------------------- PR curves
def _default_thresholds() -> np.ndarray:
    return np.round(np.arange(21) * 0.05, 2)  # 0, 0.05, ..., 1 (Xing et al.)


def pr_curve(
    true_rc: Any,
    pred_rc: Any,
    scores: Any,
    radius: float,
    *,
    thresholds: Any = None,
    score_max: Any = None,
    true_cls: Any = None,
    pred_cls: Any = None,
    n_classes: int | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Precision-recall curve of scored point candidates by sweeping the relative threshold ξ.

    At each ξ, the candidates with ``score >= ξ * score_max`` are kept (per image) and matched with the
    truth; this is the paper's peak-finding rule (suppress values below ξ times the map maximum), applied
    to candidates found once at ξ = 0 (``nk.detect.find_peaks(maps, xi=0)``): the peaks that survive at ξ
    are exactly the ξ = 0 peaks whose height is at least ξ times the maximum.

    Parameters
    ----------
    true_rc : array_like of shape (N, 2), or list of them
        Ground-truth points; a list (one array per image) pools the counts at each ξ.
    pred_rc : array_like of shape (M, 2), or list of them
        Candidate points (e.g. all peaks at ξ = 0).
    scores : array_like of shape (M,), or list of them
        Height of each candidate (map value at the peak).
    radius : float
        Largest distance of a match, in pixels.
    thresholds : array_like of shape (T,), optional
        Values of ξ in [0, 1]. Default ``0, 0.05, ..., 1`` (Xing et al.).
    score_max : float or list of float, optional
        The per-image maximum that ξ multiplies. Default: the largest score of each image, which is the
        map maximum for peaks from ``find_peaks`` (the global maximum is always a peak unless borders are
        excluded).
    true_cls, pred_cls : array_like of shape (N,) / (M,), or lists of them, optional
        Classes; when given (with ``n_classes``) the curve uses the weighted classification precision and
        recall of :func:`classification_scores` instead of detection ones.
    n_classes : int, optional
        Number of classes, with ``true_cls`` and ``pred_cls``.

    Returns
    -------
    precision : ndarray of shape (T,)
        NaN where no candidate survives.
    recall : ndarray of shape (T,)
    thresholds : ndarray of shape (T,)
        The ξ values, as given (sorted ascending).

    Raises
    ------
    ValueError
        For thresholds outside [0, 1], scores of the wrong length, or bad points.
    """
    xi = _default_thresholds() if thresholds is None else np.sort(np.asarray(thresholds, dtype=np.float64))
    if xi.ndim != 1 or xi.size == 0 or not np.all(np.isfinite(xi)) or xi.min() < 0 or xi.max() > 1:
        raise ValueError(f"thresholds: expected a 1-D array of ξ values in [0, 1], got {describe(xi)}")
    classify = true_cls is not None or pred_cls is not None
    if classify and (true_cls is None or pred_cls is None or n_classes is None):
        raise ValueError(
            "pr_curve: expected true_cls, pred_cls and n_classes together, got only some of them"
        )
    batch = _is_batch(true_rc)
    trues = _as_list(true_rc, "true_rc", batch)
    preds = [check_points(p, "pred_rc") for p in _as_list(pred_rc, "pred_rc", batch)]
    score_list = _as_list(scores, "scores", batch)
    n_img = len(trues)
    if score_max is None:
        maxes = [None] * n_img
    elif batch:
        maxes = list(score_max) if isinstance(score_max, (list, tuple, np.ndarray)) else [score_max] * n_img
    else:
        maxes = [score_max]
    tcls = _as_list(true_cls, "true_cls", batch) if classify else [None] * n_img
    pcls = _as_list(pred_cls, "pred_cls", batch) if classify else [None] * n_img
    if len({n_img, len(preds), len(score_list), len(maxes), len(tcls), len(pcls)}) != 1:
        raise ValueError("pr_curve: expected the same number of images in every list argument")
    cutoffs = []
    for p, s, smax in zip(preds, score_list, maxes, strict=True):
        s = np.asarray(s, dtype=np.float64)
        if s.shape != (len(p),):
            raise ValueError(f"scores: expected shape ({len(p)},) (one per candidate), got {describe(s)}")
        top = (float(s.max()) if s.size else 0.0) if smax is None else float(smax)
        cutoffs.append((s, top))
    precision = np.empty(len(xi))
    recall = np.empty(len(xi))
    for k, x in enumerate(xi):
        keeps = [s >= x * top for s, top in cutoffs]
        sub_p = [p[keep] for p, keep in zip(preds, keeps, strict=True)]
        if classify:
            sub_c = [np.asarray(c)[keep] for c, keep in zip(pcls, keeps, strict=True)]
            res = classification_scores(trues, tcls, sub_p, sub_c, radius, n_classes)
            n_pred = sum(len(q) for q in sub_p)
            precision[k] = res["weighted_precision"] if n_pred else np.nan
            recall[k] = res["weighted_recall"]
        else:
            res = detection_scores(trues, sub_p, radius)
            precision[k], recall[k] = res["precision"], res["recall"]
    return precision, recall, xi


def aupr(precision: Any, recall: Any) -> float:
    """Area under a precision-recall curve by the trapezoid rule, anchored at (R = 0, P = 1).

    Parameters
    ----------
    precision : array_like of shape (T,)
        Precision at each point of the sweep (NaN points, where nothing was predicted, are dropped).
    recall : array_like of shape (T,)
        Recall at each point.

    Returns
    -------
    float
        The area, in [0, 1]; it cannot exceed the largest recall reached.

    Raises
    ------
    ValueError
        For arrays of different shapes or values outside [0, 1].

    Notes
    -----
    Method: **trapezoid rule** over recall (not the step sum of ``average_precision_score``). The points
    are sorted by recall ascending and, at equal recall, by precision descending (the order of a ξ sweep
    from high to low threshold); the point (R = 0, P = 1) is added at the start. The curve ends at the
    sweep's largest recall (ξ = 0, all candidates kept) with the precision measured there; there is no
    extrapolation to R = 1. The trapezoid interpolates linearly between the measured points, which can be
    slightly optimistic compared with a step sum (see papers.md, section M).
    """
    p = np.asarray(precision, dtype=np.float64)
    r = np.asarray(recall, dtype=np.float64)
    if p.shape != r.shape or p.ndim != 1:
        raise ValueError(
            "precision and recall: expected 1-D arrays of the same shape, "
            f"got {describe(p)} and {describe(r)}"
        )
    if np.isnan(r).any():
        raise ValueError("recall: expected values in [0, 1], got NaN (no true points?)")
    keep = ~np.isnan(p)
    p, r = p[keep], r[keep]
    if p.size and (p.min() < 0 or p.max() > 1 or r.min() < 0 or r.max() > 1):
        raise ValueError("precision and recall: expected values in [0, 1]")
    order = np.lexsort((-p, r))
    r = np.concatenate([[0.0], r[order]])
    p = np.concatenate([[1.0], p[order]])
    return float(np.sum(np.diff(r) * (p[1:] + p[:-1]) / 2.0))
