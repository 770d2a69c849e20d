"""Segmentation metrics: pixel scores (Dice, IoU, ...) and object scores (AJI, AJI+, PQ, ensemble Dice).

Every object metric is computed from one helper, :func:`overlap_matrix`, which counts in one pass over
the pixels how many pixels each (true instance, predicted instance) pair shares, and the instance areas.
The metrics then only combine these counts; none of them loops over pixels or masks.

Conventions: label images are ``(H, W)`` integers, 0 = background, any positive id is an instance (ids
need not be contiguous); binary masks may be bool or 0/1 (any label image counts as foreground where
> 0). An undefined ratio (``0 / 0``, e.g. Dice of two empty masks) is NaN, never a silent 0 or 1.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.sparse as sp
from scipy import ndimage as ndi
from scipy.optimize import linear_sum_assignment
from scipy.sparse.csgraph import connected_components

from .._checks import check_labels, check_positive

__all__ = [
    "Overlap",
    "aji",
    "aji_plus",
    "dice",
    "ensemble_dice",
    "instances_from_binary",
    "iou",
    "overlap_matrix",
    "panoptic_quality",
    "pixel_scores",
]


def _ratio(num: float, den: float) -> float:
    return float(num) / float(den) if den else float("nan")


def _check_pair(true_labels: Any, pred_labels: Any, names: tuple[str, str]) -> tuple[np.ndarray, np.ndarray]:
    t = check_labels(true_labels, names[0])
    p = check_labels(pred_labels, names[1])
    if t.shape != p.shape:
        raise ValueError(
            f"{names[0]} and {names[1]}: expected label images of the same shape, got {t.shape} and {p.shape}"
        )
    return t, p


# ------------------------------------------------------------------------------------------ overlap
@dataclass(frozen=True)
class Overlap:
    """Pixel counts shared by true and predicted instances (the result of :func:`overlap_matrix`).

    Instances are indexed ``0 .. n - 1`` in the order of their sorted label ids. Only overlapping pairs
    are stored (coordinate format), so the size grows with the number of touching pairs, not ``n * m``.

    Attributes
    ----------
    true_ids : ndarray of shape (n_true,) and dtype int64
        Label id of each true instance (sorted, background excluded).
    pred_ids : ndarray of shape (n_pred,) and dtype int64
        Label id of each predicted instance.
    true_areas : ndarray of shape (n_true,) and dtype int64
        Pixel count |G_i| of each true instance.
    pred_areas : ndarray of shape (n_pred,) and dtype int64
        Pixel count |S_j| of each predicted instance.
    rows : ndarray of shape (K,) and dtype int64
        True-instance index of each overlapping pair, sorted by (rows, cols).
    cols : ndarray of shape (K,) and dtype int64
        Predicted-instance index of each overlapping pair.
    intersection : ndarray of shape (K,) and dtype int64
        |G_i ∩ S_j| > 0 of each pair.
    """

    true_ids: np.ndarray
    pred_ids: np.ndarray
    true_areas: np.ndarray
    pred_areas: np.ndarray
    rows: np.ndarray
    cols: np.ndarray
    intersection: np.ndarray

    @property
    def shape(self) -> tuple[int, int]:
        """``(n_true, n_pred)``."""
        return len(self.true_ids), len(self.pred_ids)

    @property
    def union(self) -> np.ndarray:
        """|G_i ∪ S_j| of each overlapping pair, ndarray of shape (K,) and dtype int64."""
        return self.true_areas[self.rows] + self.pred_areas[self.cols] - self.intersection

    @property
    def iou(self) -> np.ndarray:
        """Intersection over union of each overlapping pair, ndarray of shape (K,) and dtype float64."""
        return self.intersection / self.union

    def to_sparse(self, values: np.ndarray | None = None) -> sp.csr_array:
        """Return a sparse ``(n_true, n_pred)`` matrix of the intersections (or of ``values``, shape (K,))."""
        data = self.intersection if values is None else np.asarray(values)
        return sp.csr_array((data, (self.rows, self.cols)), shape=self.shape)

    def to_dense(self, values: np.ndarray | None = None) -> np.ndarray:
        """Return a dense ``(n_true, n_pred)`` array of the intersections (or of ``values``); 0 elsewhere."""
        data = self.intersection if values is None else np.asarray(values)
        out = np.zeros(self.shape, dtype=data.dtype)
        out[self.rows, self.cols] = data
        return out


def _compact(labels: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Return (ids, areas, index image) with index = -1 on background and 0..n-1 on instances."""
    flat = labels.ravel()
    top = int(flat.max()) if flat.size else 0
    if top <= 4 * flat.size + 1024:  # bincount is O(pixels + top): use it unless ids are huge
        counts = np.bincount(flat, minlength=top + 1)
        counts[0] = 0
        ids = np.flatnonzero(counts)
        lut = np.full(top + 1, -1, dtype=np.int64)
        lut[ids] = np.arange(len(ids))
        return ids.astype(np.int64), counts[ids].astype(np.int64), lut[flat]
    ids, inverse, counts = np.unique(flat, return_inverse=True, return_counts=True)
    index = inverse.astype(np.int64).ravel()
    if ids[0] == 0:
        ids, counts, index = ids[1:], counts[1:], index - 1
    return ids.astype(np.int64), counts.astype(np.int64), index


def overlap_matrix(true_labels: Any, pred_labels: Any) -> Overlap:
    """Count the pixels shared by every overlapping pair of true and predicted instances.

    Parameters
    ----------
    true_labels : array_like of shape (H, W) and integer dtype
        Ground-truth instances, 0 = background, any positive ids.
    pred_labels : array_like of shape (H, W) and integer dtype
        Predicted instances.

    Returns
    -------
    Overlap
        ``intersection`` of each overlapping pair (coordinate format ``rows``, ``cols``), the ``union`` and
        ``iou`` of those pairs, the areas and label ids of all instances; ``to_sparse()`` / ``to_dense()``
        give the ``(n_true, n_pred)`` matrix.

    Raises
    ------
    ValueError
        For images that are not 2-D, differ in shape, or hold negative labels.
    TypeError
        For non-integer labels.

    Notes
    -----
    One pass: each foreground pixel of both images contributes to the key ``i * n_pred + j``; the keys are
    counted with a bincount (or a sort when ``n_true * n_pred`` is much larger than the image). The cost is
    O(H W), independent of the number of instances.

    Examples
    --------
    >>> t = np.array([[1, 1, 0], [0, 2, 2]])
    >>> p = np.array([[5, 5, 5], [0, 0, 7]])
    >>> ov = overlap_matrix(t, p)
    >>> ov.to_dense().tolist(), ov.true_areas.tolist(), ov.pred_areas.tolist()
    ([[2, 0], [0, 1]], [2, 2], [3, 1])
    """
    t, p = _check_pair(true_labels, pred_labels, ("true_labels", "pred_labels"))
    t_ids, t_areas, ti = _compact(t)
    p_ids, p_areas, pi = _compact(p)
    both = (ti >= 0) & (pi >= 0)
    n_t, n_p = len(t_ids), len(p_ids)
    keys = ti[both] * n_p + pi[both]  # (n_fg,) pair key of each shared pixel
    if n_t * n_p <= 4 * keys.size + 1024:
        counts = np.bincount(keys, minlength=n_t * n_p)
        uniq = np.flatnonzero(counts)
        inter = counts[uniq]
    else:
        uniq, inter = np.unique(keys, return_counts=True)
    return Overlap(
        true_ids=t_ids,
        pred_ids=p_ids,
        true_areas=t_areas,
        pred_areas=p_areas,
        rows=(uniq // max(n_p, 1)).astype(np.int64),
        cols=(uniq % max(n_p, 1)).astype(np.int64),
        intersection=inter.astype(np.int64),
    )


# ------------------------------------------------------------------------------------------ pixels
def _confusion(true_mask: Any, pred_mask: Any) -> tuple[int, int, int, int]:
    t, p = _check_pair(true_mask, pred_mask, ("true_mask", "pred_mask"))
    t, p = t > 0, p > 0
    tp = int(np.count_nonzero(t & p))
    fp = int(np.count_nonzero(p)) - tp
    fn = int(np.count_nonzero(t)) - tp
    tn = t.size - tp - fp - fn
    return tp, fp, fn, tn


def pixel_scores(true_mask: Any, pred_mask: Any) -> dict[str, float]:
    """Compute pixel scores of a binary segmentation: recall, precision, F1, accuracy, IoU, Dice, specificity.

    Parameters
    ----------
    true_mask : array_like of shape (H, W)
        Ground truth: bool, 0/1, or a label image (foreground = label > 0).
    pred_mask : array_like of shape (H, W)
        Prediction, like ``true_mask``. Threshold probabilities first (float values other than whole
        numbers raise ``TypeError``).

    Returns
    -------
    dict
        With TP, FP, FN, TN the pixel counts: ``recall = TP/(TP+FN)``, ``precision = TP/(TP+FP)``,
        ``f1 = 2TP/(2TP+FP+FN)``, ``accuracy = (TP+TN)/(H W)``, ``iou = TP/(TP+FP+FN)`` (Jaccard),
        ``dice = 2TP/(2TP+FP+FN)`` (equal to ``f1`` for pixels), ``specificity = TN/(TN+FP)``.
        Each is NaN when its denominator is 0 (e.g. ``dice`` and ``iou`` of two empty masks).

    Raises
    ------
    ValueError
        For masks that are not 2-D or differ in shape.
    TypeError
        For non-integer, non-bool masks.
    """
    tp, fp, fn, tn = _confusion(true_mask, pred_mask)
    return {
        "recall": _ratio(tp, tp + fn),
        "precision": _ratio(tp, tp + fp),
        "f1": _ratio(2 * tp, 2 * tp + fp + fn),
        "accuracy": _ratio(tp + tn, tp + fp + fn + tn),
        "iou": _ratio(tp, tp + fp + fn),
        "dice": _ratio(2 * tp, 2 * tp + fp + fn),
        "specificity": _ratio(tn, tn + fp),
    }


def dice(true_mask: Any, pred_mask: Any) -> float:
    """Compute the Dice coefficient ("Dice-1") of two binary masks, ``2 |A ∩ B| / (|A| + |B|)``.

    Parameters
    ----------
    true_mask, pred_mask : array_like of shape (H, W)
        Bool, 0/1 or label images (foreground = label > 0).

    Returns
    -------
    float
        NaN when both masks are empty.

    Raises
    ------
    ValueError
        For masks that are not 2-D or differ in shape.
    """
    tp, fp, fn, _ = _confusion(true_mask, pred_mask)
    return _ratio(2 * tp, 2 * tp + fp + fn)


def iou(true_mask: Any, pred_mask: Any) -> float:
    """Compute the intersection over union (Jaccard index) of two binary masks (NaN if both empty).

    Parameters
    ----------
    true_mask, pred_mask : array_like of shape (H, W)
        Bool, 0/1 or label images (foreground = label > 0).

    Returns
    -------
    float
        ``|A ∩ B| / |A ∪ B|``; NaN when both masks are empty.

    Raises
    ------
    ValueError
        For masks that are not 2-D or differ in shape.
    """
    tp, fp, fn, _ = _confusion(true_mask, pred_mask)
    return _ratio(tp, tp + fp + fn)


# ------------------------------------------------------------------------------------------ objects
def aji(true_labels: Any, pred_labels: Any) -> float:
    r"""Compute the Aggregated Jaccard Index of Kumar et al. 2017 (each true nucleus takes its best match).

    Parameters
    ----------
    true_labels : array_like of shape (H, W) and integer dtype
        Ground-truth instances (0 = background).
    pred_labels : array_like of shape (H, W) and integer dtype
        Predicted instances.

    Returns
    -------
    float
        AJI in [0, 1]; NaN when both images are empty.

    Raises
    ------
    ValueError
        For images that are not 2-D or differ in shape, or negative labels.

    Notes
    -----
    For each true instance G_i, take the prediction S_j with the largest IoU among those that overlap it
    (ties: the lowest predicted id). Then

    .. math::

        \mathrm{AJI} = \frac{\sum_i |G_i \cap S_{j(i)}|}{\sum_i |G_i \cup S_{j(i)}| + \sum_{S \in U} |S|}

    where U holds the predictions chosen by no true instance. A prediction may be chosen by several true
    instances (its pixels are then counted in each of their unions); a true instance that overlaps no
    prediction adds |G_i| to the denominator. This is Kumar's algorithm as in hover_net's ``get_fast_aji``.
    Published "AJI" values much higher than about 0.6-0.7 usually come from a different variant (see
    :func:`aji_plus` and papers.md, section B).

    References
    ----------
    .. [1] N. Kumar et al., "A dataset and a technique for generalized nuclear segmentation for
       computational pathology", IEEE TMI 36(7), 2017.
    """
    ov = overlap_matrix(true_labels, pred_labels)
    n_t, n_p = ov.shape
    iou_k = ov.iou
    # best prediction per true instance: sort pairs by (row, -iou, col) and take the first of each row
    order = np.lexsort((ov.cols, -iou_k, ov.rows))
    rows_sorted = ov.rows[order]
    first = order[np.r_[True, rows_sorted[1:] != rows_sorted[:-1]]] if order.size else order
    inter = int(ov.intersection[first].sum())
    union = int(ov.union[first].sum())
    matched_true = np.zeros(n_t, dtype=bool)
    matched_true[ov.rows[first]] = True
    used_pred = np.zeros(n_p, dtype=bool)
    used_pred[ov.cols[first]] = True
    union += int(ov.true_areas[~matched_true].sum()) + int(ov.pred_areas[~used_pred].sum())
    return _ratio(inter, union)


def _max_weight_assignment(ov: Overlap, weights: np.ndarray) -> np.ndarray:
    """One-to-one pairs of overlapping instances maximising the summed ``weights`` (K,), per component.

    The overlap graph falls into small connected components (a nucleus touches a few predictions); each
    is solved by a dense Hungarian algorithm on its own small matrix. Returns indices into the pairs.
    """
    n_t, n_p = ov.shape
    if ov.rows.size == 0:
        return np.zeros(0, dtype=np.int64)
    graph = sp.coo_array((np.ones(ov.rows.size), (ov.rows, n_t + ov.cols)), shape=(n_t + n_p, n_t + n_p))
    _, comp = connected_components(graph, directed=False)
    edge_comp = comp[ov.rows]
    order = np.argsort(edge_comp, kind="stable")
    bounds = np.flatnonzero(np.r_[True, edge_comp[order][1:] != edge_comp[order][:-1], True])
    chosen = []
    for start, stop in itertools.pairwise(bounds):
        e = order[start:stop]  # pair indices of one component
        if e.size == 1:
            chosen.append(e)
            continue
        r_u, r_loc = np.unique(ov.rows[e], return_inverse=True)
        c_u, c_loc = np.unique(ov.cols[e], return_inverse=True)
        w = np.zeros((r_u.size, c_u.size))
        idx = np.full((r_u.size, c_u.size), -1, dtype=np.int64)
        w[r_loc, c_loc] = weights[e]
        idx[r_loc, c_loc] = e
        a, b = linear_sum_assignment(w, maximize=True)
        sel = idx[a, b]
        chosen.append(sel[sel >= 0])
    return np.sort(np.concatenate(chosen))


def aji_plus(true_labels: Any, pred_labels: Any) -> float:
    """Compute AJI+, the Aggregated Jaccard Index with a one-to-one pairing of true and predicted instances.

    Parameters
    ----------
    true_labels : array_like of shape (H, W) and integer dtype
        Ground-truth instances (0 = background).
    pred_labels : array_like of shape (H, W) and integer dtype
        Predicted instances.

    Returns
    -------
    float
        AJI+ in [0, 1]; NaN when both images are empty.

    Raises
    ------
    ValueError
        For images that are not 2-D or differ in shape, or negative labels.

    Notes
    -----
    The pairs are the one-to-one assignment of overlapping instances with the largest total IoU (Hungarian
    algorithm, solved per connected component of the overlap graph); pairs with IoU 0 are not allowed.
    Paired instances add |G ∩ S| to the numerator and |G ∪ S| to the denominator; every unpaired true or
    predicted instance adds its area to the denominator, so no prediction is counted twice (the
    over-penalisation of :func:`aji` when one prediction covers several nuclei). As hover_net's
    ``get_fast_aji_plus`` (Graham et al. 2019).

    References
    ----------
    .. [1] S. Graham et al., "HoVer-Net: simultaneous segmentation and classification of nuclei in
       multi-tissue histology images", Medical Image Analysis 58, 2019.
    """
    ov = overlap_matrix(true_labels, pred_labels)
    n_t, n_p = ov.shape
    sel = _max_weight_assignment(ov, ov.iou)
    inter = int(ov.intersection[sel].sum())
    union = int(ov.union[sel].sum())
    paired_t = np.zeros(n_t, dtype=bool)
    paired_t[ov.rows[sel]] = True
    paired_p = np.zeros(n_p, dtype=bool)
    paired_p[ov.cols[sel]] = True
    union += int(ov.true_areas[~paired_t].sum()) + int(ov.pred_areas[~paired_p].sum())
    return _ratio(inter, union)


def panoptic_quality(true_labels: Any, pred_labels: Any) -> dict[str, float]:
    r"""Compute the panoptic quality (PQ = DQ x SQ) of instance segmentation, matching at IoU > 0.5.

    Parameters
    ----------
    true_labels : array_like of shape (H, W) and integer dtype
        Ground-truth instances (0 = background).
    pred_labels : array_like of shape (H, W) and integer dtype
        Predicted instances.

    Returns
    -------
    dict
        ``pq``, ``dq``, ``sq`` (float) and ``tp``, ``fp``, ``fn`` (int).

    Raises
    ------
    ValueError
        For images that are not 2-D or differ in shape, or negative labels.

    Notes
    -----
    A true and a predicted instance match when their IoU is strictly above 0.5; such matches are unique
    (two predictions cannot both cover more than half of a nucleus), so no assignment is needed.

    .. math::

        \mathrm{DQ} = \frac{TP}{TP + \frac12 FP + \frac12 FN}, \quad
        \mathrm{SQ} = \frac{\sum_{TP} \mathrm{IoU}}{TP}, \quad
        \mathrm{PQ} = \mathrm{DQ}\,\mathrm{SQ}

    As in the reference code (panopticapi), SQ is 0 when there is no TP (then PQ = DQ = 0); all three
    are NaN when both images are empty.

    References
    ----------
    .. [1] A. Kirillov et al., "Panoptic segmentation", CVPR 2019.
    """
    ov = overlap_matrix(true_labels, pred_labels)
    n_t, n_p = ov.shape
    iou_k = ov.iou
    match = iou_k > 0.5
    tp = int(match.sum())
    fp, fn = n_p - tp, n_t - tp
    den = tp + 0.5 * fp + 0.5 * fn
    if den == 0:
        nan = float("nan")
        return {"pq": nan, "dq": nan, "sq": nan, "tp": 0, "fp": 0, "fn": 0}
    dq = tp / den
    sq = float(iou_k[match].sum() / tp) if tp else 0.0
    return {"pq": dq * sq, "dq": dq, "sq": sq, "tp": tp, "fp": fp, "fn": fn}


def ensemble_dice(true_labels: Any, pred_labels: Any) -> float:
    """Compute the ensemble Dice ("Dice-2") over overlapping instance pairs.

    Parameters
    ----------
    true_labels : array_like of shape (H, W) and integer dtype
        Ground-truth instances (0 = background).
    pred_labels : array_like of shape (H, W) and integer dtype
        Predicted instances.

    Returns
    -------
    float
        ``2 Σ |G ∩ S| / Σ (|G| + |S|)``, both sums over all overlapping pairs (G, S); NaN when no pair
        overlaps.

    Raises
    ------
    ValueError
        For images that are not 2-D or differ in shape, or negative labels.

    Notes
    -----
    The definition of hover_net's ``get_dice_2`` (a ratio of sums, not a mean of per-pair ratios).
    Instances that overlap nothing do not enter the score, so it does not penalise missed or spurious
    nuclei; report it next to :func:`dice` (Dice-1) or :func:`aji`.
    """
    ov = overlap_matrix(true_labels, pred_labels)
    marked = int((ov.true_areas[ov.rows] + ov.pred_areas[ov.cols]).sum())
    return _ratio(2 * int(ov.intersection.sum()), marked)


# ------------------------------------------------------------------------------------------ instances
def instances_from_binary(
    mask: Any,
    *,
    min_size: int = 0,
    watershed: bool = False,
    min_distance: int = 5,
    sigma: float = 1.0,
) -> np.ndarray:
    """Turn a binary segmentation into labelled instances (connected components, optional watershed).

    Parameters
    ----------
    mask : array_like of shape (H, W)
        Foreground mask: bool, 0/1, or labels (foreground = label > 0).
    min_size : int, optional
        Instances with fewer pixels are removed (after splitting). Default 0 keeps all.
    watershed : bool, optional
        Split touching nuclei by a watershed on the distance transform (default False: connected
        components only).
    min_distance : int, optional
        With ``watershed``: smallest distance in pixels between two markers (maxima of the distance
        transform, ``skimage.feature.peak_local_max``); about the smallest nucleus radius. Default 5.
    sigma : float, optional
        With ``watershed``: Gaussian smoothing (pixels) of the distance transform before the markers are
        found; it removes the spurious maxima of irregular outlines. 0 turns it off. Default 1.

    Returns
    -------
    ndarray of shape (H, W) and dtype int32
        Instances labelled 1..N in raster order of their first pixel, 0 = background.

    Raises
    ------
    ValueError
        For a mask that is not 2-D, or a negative ``min_size`` / non-positive ``min_distance``.
    TypeError
        For a non-integer, non-bool mask.

    Notes
    -----
    Connected components use 8-connectivity (diagonal neighbours join, like ``skimage.measure.label``).
    The watershed: Euclidean distance transform of the mask, smoothed by ``sigma``; markers = its local
    maxima at least ``min_distance`` apart within each component (a component without one gets a marker
    at its distance maximum, so no component is lost); flood ``-distance`` from the markers inside the
    mask. Touching round nuclei are split along the neck between them; elongated or irregular ones may
    be over-split (on ``nk.synth.ki67_tile`` truth masks at 0.5 µm/px, 3 seeds: 62-82 pieces for 60-78
    nuclei with the defaults, AJI 0.80-0.91 against 0.22-0.54 for connected components alone).
    """
    m = check_labels(mask, "mask") > 0
    min_size = int(check_positive(min_size, "min_size", integer=True, allow_zero=True))
    min_distance = int(check_positive(min_distance, "min_distance", integer=True))
    sigma = float(check_positive(sigma, "sigma", allow_zero=True))
    structure = np.ones((3, 3), dtype=bool)
    labels, n = ndi.label(m, structure=structure)
    if watershed and n:
        from skimage.feature import peak_local_max
        from skimage.segmentation import watershed as _watershed

        dist = ndi.distance_transform_edt(m)
        if sigma > 0:
            dist = np.where(m, ndi.gaussian_filter(dist, sigma), 0.0)
        peaks = peak_local_max(dist, min_distance=min_distance, labels=labels, exclude_border=False)
        markers = np.zeros(m.shape, dtype=np.int32)
        markers[tuple(peaks.T)] = 1
        has_marker = np.zeros(n + 1, dtype=bool)
        has_marker[labels[markers > 0]] = True
        missing = np.flatnonzero(~has_marker[1:]) + 1
        if missing.size:
            pos = ndi.maximum_position(dist, labels, missing)
            markers[tuple(np.array(pos, dtype=np.int64).reshape(-1, 2).T)] = 1
        markers, _ = ndi.label(markers, structure=structure)
        labels = _watershed(-dist, markers, mask=m)
    if min_size > 0 and labels.max() > 0:
        sizes = np.bincount(labels.ravel())
        small = sizes < min_size
        small[0] = False
        labels = np.where(small[labels], 0, labels)
    return _relabel_raster(labels)


def _relabel_raster(labels: np.ndarray) -> np.ndarray:
    """Relabel to 1..N in raster order of each instance's first pixel (a new int32 array)."""
    flat = labels.ravel()
    ids, first = np.unique(flat, return_index=True)
    keep = ids > 0
    ids, first = ids[keep], first[keep]
    ids = ids[np.argsort(first, kind="stable")]
    lut = np.zeros(int(flat.max()) + 1 if flat.size else 1, dtype=np.int32)
    lut[ids] = np.arange(1, ids.size + 1, dtype=np.int32)
    return lut[labels].astype(np.int32, copy=False)
