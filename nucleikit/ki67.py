r"""KiNet's data and evaluation pipeline: Ki67 training sets, batches, decoding and scores (chapter 7).

The chapter trains many small models (KiNet, its ablations, a U-Net baseline) on the same data and scores
them the same way; this module holds those shared steps so that every run calls one tested routine:

====================================  ====================================================================
function                              what
====================================  ====================================================================
:func:`make_ki67_set`                 synthetic Ki67 tiles with the paper's kind of annotation: nucleus dots
                                      on some images, weak region labels on all; proximity-map targets
:func:`roi_labels`                    weak region annotation -> ROI labels (1 tumour, 0 non-tumour, -1 none)
:func:`disk_labels`                   dots -> pixel classes for the U-Net baseline (disks around the dots)
:func:`crop_batches`                  random crops with the 8 flips/rotations, as ``nk.train.fit`` batches
:func:`zscore`                        per-image, per-channel standardisation (the paper's input)
:func:`predict`                       run a model on whole images, return NumPy maps
:func:`maps_to_candidates`            peaks of KiNet's maps at ξ = 0 (threshold later, for PR sweeps)
:func:`pixels_to_candidates`          U-Net pixel classes -> points (connected components)
:func:`ki67_index`                    positive tumour / all tumour nuclei
:func:`evaluate`                      detection and classification scores, PR area, Ki67 index per image
:func:`choose_xi`                     the operating threshold ξ that scores best on *training* images
====================================  ====================================================================

Conventions: images (H, W, 3) uint8; maps (C, H, W) float32; points (N, 2) (row, col); distances in
pixels. Class ids follow :data:`nucleikit.synth.KI67_CLASSES`: 0 Ki67-positive tumour, 1 Ki67-negative
tumour, 2 non-tumour.

References
----------
.. [1] F. Xing et al., "Pixel-to-pixel learning with weak supervision for single-stage nucleus recognition
   in Ki67 images", IEEE TBME 66(11), 2019.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from scipy import ndimage as ndi

from . import detect, metrics, synth
from ._checks import check_points, check_positive, check_probability, describe
from .data import to_tensor

__all__ = [
    "N_CLASSES",
    "Candidates",
    "Ki67Set",
    "choose_xi",
    "crop_batches",
    "disk_labels",
    "evaluate",
    "evaluate_model",
    "ki67_index",
    "make_ki67_set",
    "maps_to_candidates",
    "pixels_to_candidates",
    "predict",
    "roi_labels",
    "train_kinet",
    "train_pixel_classifier",
    "zscore",
]

#: Number of nucleus classes (Ki67+ tumour, Ki67- tumour, non-tumour).
N_CLASSES = 3
POSITIVE, NEGATIVE, NON_TUMOUR = 0, 1, 2


# ================================================================================================= data
@dataclass(frozen=True)
class Ki67Set:
    """Synthetic Ki67 images with the annotation a KiNet training set has.

    Attributes
    ----------
    images : ndarray of shape (N, H, W, 3), uint8
        The tiles.
    targets : ndarray of shape (N, 3, H, W), float32
        Proximity maps (Eq. 1) of each class; all zeros for images without nucleus labels.
    roi : ndarray of shape (N, H, W), int64
        Weak region labels: 1 tumour, 0 non-tumour, -1 unlabelled.
    has_nuclei : ndarray of shape (N,), bool
        The indicator of Eq. 5: True for images whose nuclei are annotated.
    pixel_classes : ndarray of shape (N, H, W), int64
        Labels for a pixel classifier (:func:`disk_labels`): 0 background, 1 + class inside a disk around
        each dot; -1 (ignored) on images without nucleus labels.
    truths : list of nucleikit.synth.Truth
        Full truth of each tile (for evaluation only; training reads the arrays above).
    mpp : float
        Microns per pixel.
    d : float
        Radius of the proximity bumps, pixels.
    key : str
        Description of how the set was made (for :func:`nucleikit.train.fit`'s ``data_key``); empty when
        the set was generated from a random source that cannot be written down (a Generator).
    """

    images: np.ndarray
    targets: np.ndarray
    roi: np.ndarray
    has_nuclei: np.ndarray
    pixel_classes: np.ndarray
    truths: list = field(repr=False)
    mpp: float = 0.5
    d: float = 15.0
    key: str = ""

    def __len__(self) -> int:
        return len(self.images)

    @property
    def n_nuclei(self) -> int:
        """Total number of nuclei in the truth."""
        return int(sum(t.n for t in self.truths))

    def points(self) -> tuple[list[np.ndarray], list[np.ndarray]]:
        """Return the true centres and classes of every image (two lists)."""
        return [t.centroids_rc for t in self.truths], [t.classes for t in self.truths]

    def with_nucleus_fraction(self, fraction: float) -> Ki67Set:
        """Return the same images with nucleus labels kept on only the first ``round(fraction * N)`` of them.

        The other images keep their region labels and lose their targets (zeros) and pixel classes (-1),
        as if they had never been annotated; used for the label-fraction ablation (Xing et al., Fig. 6).
        """
        fraction = check_probability(fraction, "fraction")
        keep = np.arange(len(self)) < round(fraction * len(self))
        keep &= self.has_nuclei
        targets = np.where(keep[:, None, None, None], self.targets, np.float32(0))
        pixel_classes = np.where(keep[:, None, None], self.pixel_classes, -1)
        key = f"{self.key}|labelled={fraction:g}" if self.key else ""
        return dataclasses.replace(
            self, targets=targets, has_nuclei=keep, pixel_classes=pixel_classes, key=key
        )

    def with_disk_radius(self, radius: float) -> Ki67Set:
        """Return the same set with the pixel-classifier labels redrawn with disks of another radius."""
        check_positive(radius, "radius")
        pix = np.stack(
            [
                disk_labels(t.centroids_rc, t.classes, t.shape, radius) if has else np.full(t.shape, -1)
                for t, has in zip(self.truths, self.has_nuclei, strict=True)
            ]
        ).astype(np.int64)
        key = f"{self.key}|disk={radius:g}" if self.key else ""
        return dataclasses.replace(self, pixel_classes=pix, key=key)

    def describe(self) -> str:
        """One line: images, size, nuclei, labelled images, labelled region pixels."""
        n, h, w = self.images.shape[:3]
        lab = float((self.roi >= 0).mean())
        return (
            f"{n} images of {h}x{w} px at {self.mpp:g} um/px, {self.n_nuclei} nuclei, "
            f"{int(self.has_nuclei.sum())} with nucleus labels, {lab:.0%} of pixels with region labels"
        )


def roi_labels(weak_regions: np.ndarray) -> np.ndarray:
    """Turn a weak region annotation into ROI labels for KiNet's region branch.

    Parameters
    ----------
    weak_regions : ndarray of shape (H, W), int
        Output of :func:`nucleikit.synth.weak_regions`: indices into ``KI67_REGIONS``
        (0 background, 1 tumour, 2 non-tumour) where labelled, -1 elsewhere.

    Returns
    -------
    ndarray of shape (H, W), int64
        1 tumour, 0 non-tumour (tissue background counts as non-tumour), -1 unlabelled.
    """
    w = np.asarray(weak_regions)
    if w.ndim != 2 or w.dtype.kind not in "iu":
        raise ValueError(f"weak_regions: expected an integer map of shape (H, W), got {describe(w)}")
    if w.size and (w.min() < -1 or w.max() > 2):
        raise ValueError(f"weak_regions: expected values in -1..2, got [{w.min()}, {w.max()}]")
    return np.where(w < 0, -1, (w == 1).astype(np.int64)).astype(np.int64)


def disk_labels(points_rc: Any, classes: Any, shape: tuple[int, int], radius: float) -> np.ndarray:
    """Pixel classes for a pixel classifier trained from dots: a disk of class ``1 + c`` around each dot.

    Parameters
    ----------
    points_rc : array_like of shape (N, 2)
        Dots (row, col).
    classes : array_like of shape (N,), int
        Class of each dot, in ``0 .. 2``.
    shape : tuple of int
        (H, W).
    radius : float
        Disk radius in pixels; a pixel within ``radius`` of several dots takes the nearest one's class.

    Returns
    -------
    ndarray of shape (H, W), int64
        0 background, ``1 + class`` inside the disks.
    """
    pts = check_points(points_rc)
    cls = np.asarray(classes, dtype=np.int64).reshape(-1)
    if len(cls) != len(pts):
        raise ValueError(f"classes: expected {len(pts)} class ids (one per point), got {describe(cls)}")
    check_positive(radius, "radius")
    h, w = int(shape[0]), int(shape[1])
    if len(pts) == 0:
        return np.zeros((h, w), np.int64)
    seeds = np.zeros((h, w), np.int64)
    rc = np.clip(np.rint(pts).astype(np.int64), 0, [h - 1, w - 1])
    seeds[rc[:, 0], rc[:, 1]] = np.arange(1, len(pts) + 1)
    dist, (ir, ic) = ndi.distance_transform_edt(seeds == 0, return_indices=True)
    nearest = seeds[ir, ic]  # (H, W) id of the nearest dot, 1..N
    lut = np.concatenate([[0], cls + 1])
    return np.where(dist <= radius, lut[nearest], 0).astype(np.int64)


def make_ki67_set(
    n_images: int,
    shape: tuple[int, int] = (256, 256),
    *,
    mpp: float = 1.0,
    d: float = 5.0,
    alpha: float = 3.0,
    nucleus_fraction: float = 1.0,
    region_fraction: float = 0.5,
    ki67_range: tuple[float, float] = (0.1, 0.6),
    disk_radius: float | None = None,
    organ: str = "breast",
    difficulty: Any = None,
    rng: Any,
) -> Ki67Set:
    """Generate synthetic Ki67 tiles annotated the way KiNet's training set is.

    Parameters
    ----------
    n_images : int
        Number of tiles.
    shape : tuple of int
        Tile size (H, W).
    mpp : float
        Microns per pixel of the tiles (the paper: 0.34).
    d : float
        Radius of the proximity bumps (Eq. 1), pixels; the paper's 15 px at 0.34 um/px is 5.1 um.
    alpha : float
        Decay of Eq. 1 (the paper: 3).
    nucleus_fraction : float
        Fraction of images whose nuclei are annotated (dots with classes): the first
        ``round(nucleus_fraction * n_images)`` images. The others carry region labels only.
    region_fraction : float
        Fraction of each image's connected tissue regions that are weakly labelled
        (:func:`nucleikit.synth.weak_regions`).
    ki67_range : tuple of float
        Each tile's Ki67 index is drawn uniformly from this range.
    disk_radius : float, optional
        Radius of :func:`disk_labels` for the pixel-classifier baseline (default ``d / 2``).
    organ : str
        Organ of :func:`nucleikit.synth.ki67_tile`.
    difficulty : str or Difficulty, optional
        Default None: the calibrated default of :mod:`nucleikit.synth`.
    rng : int, Generator or None
        Random source; the same seed gives the same set.

    Returns
    -------
    Ki67Set
    """
    check_positive(n_images, "n_images", integer=True)
    nucleus_fraction = check_probability(nucleus_fraction, "nucleus_fraction")
    region_fraction = check_probability(region_fraction, "region_fraction")
    lo, hi = (check_probability(v, "ki67_range") for v in ki67_range)
    if lo > hi:
        raise ValueError(f"ki67_range: expected (low, high) with low <= high, got {ki67_range!r}")
    disk_radius = d / 2 if disk_radius is None else float(disk_radius)
    key = ""
    if rng is not None and isinstance(rng, (int, np.integer)):
        diff = synth.get_difficulty(difficulty)
        key = (
            f"ki67set n={n_images} shape={tuple(shape)} mpp={mpp:g} d={d:g} alpha={alpha:g} "
            f"nuclei={nucleus_fraction:g} regions={region_fraction:g} ki67={lo:g}-{hi:g} "
            f"disk={disk_radius:g} organ={organ} difficulty={diff!r} seed={int(rng)}"
        )
    rng = np.random.default_rng(rng)
    n_lab = round(nucleus_fraction * n_images)
    h, w = int(shape[0]), int(shape[1])
    images = np.zeros((n_images, h, w, 3), np.uint8)
    targets = np.zeros((n_images, N_CLASSES, h, w), np.float32)
    roi = np.zeros((n_images, h, w), np.int64)
    pix = np.full((n_images, h, w), -1, np.int64)
    truths = []
    for i in range(n_images):
        tile = synth.ki67_tile(
            (h, w),
            ki67_index=float(rng.uniform(lo, hi)),
            organ=organ,
            mpp=mpp,
            difficulty=difficulty,
            rng=rng,
        )
        t = tile.truth
        images[i] = tile.image
        roi[i] = roi_labels(synth.weak_regions(t, region_fraction, rng=rng))
        if i < n_lab:
            targets[i] = detect.class_proximity_maps(
                t.centroids_rc, t.classes, (h, w), N_CLASSES, d=d, alpha=alpha
            )
            pix[i] = disk_labels(t.centroids_rc, t.classes, (h, w), disk_radius)
        truths.append(t)
    has = np.arange(n_images) < n_lab
    return Ki67Set(images, targets, roi, has, pix, truths, float(mpp), float(d), key)


# ============================================================================================== batches
def zscore(x: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """Standardise each image and channel to zero mean and unit variance (Xing et al.'s input).

    Parameters
    ----------
    x : Tensor of shape (B, C, H, W)

    Returns
    -------
    Tensor of shape (B, C, H, W)
        A new tensor, on ``x``'s device.
    """
    if not isinstance(x, torch.Tensor) or x.ndim != 4:
        raise ValueError(f"x: expected a tensor of shape (B, C, H, W), got {describe(x)}")
    mean = x.mean(dim=(-2, -1), keepdim=True)
    std = x.std(dim=(-2, -1), keepdim=True)
    return (x - mean) / (std + eps)


def crop_batches(
    arrays: Sequence[np.ndarray],
    *,
    crop: int,
    batch_size: int,
    augment: bool = True,
    device: torch.device | str | None = None,
) -> Callable[[int, torch.Generator], list[torch.Tensor]]:
    """Make a ``batches(step, generator)`` function for :func:`nucleikit.train.fit`: random crops.

    Parameters
    ----------
    arrays : sequence of ndarray
        Aligned per-image arrays with the images first: ``images (N, H, W, 3)`` uint8 (converted by
        :func:`nucleikit.data.to_tensor` and standardised by :func:`zscore` as whole images, before
        cropping, like :func:`predict` does at test time), then any of ``(N, C, H, W)`` maps,
        ``(N, H, W)`` label images or ``(N,)`` per-image values.
    crop : int
        Side of the square crops.
    batch_size : int
        Crops per batch (each from a random image, at a random position).
    augment : bool
        Apply one of the 8 rotations/flips at random to each crop (the same to all its arrays).
    device : torch.device or str, optional
        Where the batch goes (default CPU).

    Returns
    -------
    callable
        ``batches(step, generator) -> [x, *others]`` with ``x`` of shape (B, 3, crop, crop) float32 and the
        other arrays cropped alike (per-image values gathered). Deterministic given the generator.
    """
    if len(arrays) == 0:
        raise ValueError("arrays: expected at least the images")
    images = np.asarray(arrays[0])
    if images.ndim != 4 or images.shape[-1] != 3:
        raise ValueError(f"arrays[0]: expected images of shape (N, H, W, 3), got {describe(images)}")
    n, h, w = images.shape[:3]
    check_positive(crop, "crop", integer=True)
    check_positive(batch_size, "batch_size", integer=True)
    if crop > min(h, w):
        raise ValueError(f"crop: expected at most {min(h, w)} (the image size), got {crop}")
    tensors = [zscore(to_tensor(images))]  # (N, 3, H, W), each whole image standardised once
    for k, a in enumerate(arrays[1:], start=1):
        a = np.asarray(a)
        if a.shape[0] != n or (a.ndim >= 3 and a.shape[-2:] != (h, w)):
            raise ValueError(f"arrays[{k}]: expected {n} images of {h}x{w}, got {describe(a)}")
        tensors.append(torch.from_numpy(np.ascontiguousarray(a)))
    device = torch.device(device) if device is not None else torch.device("cpu")

    def batches(step: int, generator: torch.Generator) -> list[torch.Tensor]:
        idx = torch.randint(0, n, (batch_size,), generator=generator)
        r0 = torch.randint(0, h - crop + 1, (batch_size,), generator=generator).tolist()
        c0 = torch.randint(0, w - crop + 1, (batch_size,), generator=generator).tolist()
        rot = torch.randint(0, 4, (batch_size,), generator=generator).tolist()
        flip = torch.randint(0, 2, (batch_size,), generator=generator).tolist()
        out = []
        for t in tensors:
            if t.ndim == 1:
                out.append(t[idx].to(device))
                continue
            crops = []
            for b, i in enumerate(idx.tolist()):
                c = t[i, ..., r0[b] : r0[b] + crop, c0[b] : c0[b] + crop]
                if augment:
                    c = torch.rot90(c.flip(-1) if flip[b] else c, rot[b], dims=(-2, -1))
                crops.append(c)
            out.append(torch.stack(crops).to(device))
        return out

    return batches


# ============================================================================================ inference
@torch.no_grad()
def predict(model: torch.nn.Module, images: np.ndarray, *, batch_size: int = 4) -> np.ndarray:
    """Run a model on whole images (standardised by :func:`zscore`) and return its maps as NumPy.

    Parameters
    ----------
    model : torch.nn.Module
        A fully convolutional model returning a tensor ``(B, K, H, W)`` or an object with a ``proximity``
        attribute (:class:`nucleikit.models.KiNetOutput`); run in its current mode on its parameters'
        device (call ``model.eval()`` first).
    images : ndarray of shape (N, H, W, 3) or (H, W, 3), uint8
        Images.
    batch_size : int
        Images per forward pass.

    Returns
    -------
    ndarray of shape (N, K, H, W) or (K, H, W), float32
        KiNet: the proximity maps, divided by the model's ``target_scale`` (so on the targets' scale);
        a pixel classifier: its softmax probabilities.
    """
    images = np.asarray(images)
    single = images.ndim == 3
    batch = images[None] if single else images
    device = next(model.parameters()).device
    scale = float(getattr(model, "target_scale", 1.0))
    out = []
    for s in range(0, len(batch), batch_size):
        x = zscore(to_tensor(batch[s : s + batch_size]).to(device))
        y = model(x)
        y = y.proximity / scale if hasattr(y, "proximity") else y.softmax(dim=1)
        out.append(y.float().cpu().numpy())
    maps = np.concatenate(out)
    return maps[0] if single else maps


# ============================================================================================= decoding
@dataclass(frozen=True)
class Candidates:
    """Scored, classified point candidates of one image (all peaks at ξ = 0, strongest first).

    Attributes
    ----------
    points_rc : ndarray of shape (K, 2)
    classes : ndarray of shape (K,), int64
    scores : ndarray of shape (K,)
    """

    points_rc: np.ndarray
    classes: np.ndarray
    scores: np.ndarray

    def at(self, xi: float) -> tuple[np.ndarray, np.ndarray]:
        """Keep candidates with ``score >= xi * max(score)`` (the paper's rule); return points, classes."""
        if len(self.scores) == 0:
            return self.points_rc, self.classes
        keep = self.scores >= xi * self.scores.max()
        return self.points_rc[keep], self.classes[keep]


def maps_to_candidates(maps: np.ndarray, *, min_distance: int) -> list[Candidates]:
    """Find every peak of KiNet's class maps (:func:`nucleikit.detect.find_peaks` at ξ = 0).

    Parameters
    ----------
    maps : ndarray of shape (N, C, H, W) or (C, H, W)
        Proximity maps.
    min_distance : int
        Non-maximum suppression window half-width, pixels.

    Returns
    -------
    list of Candidates
        One per image; threshold them with :meth:`Candidates.at`.
    """
    maps = np.asarray(maps)
    if maps.ndim == 3:
        maps = maps[None]
    if maps.ndim != 4:
        raise ValueError(f"maps: expected (N, C, H, W) or (C, H, W), got {describe(maps)}")
    return [Candidates(*detect.find_peaks(m, xi=0.0, min_distance=min_distance)) for m in maps]


def pixels_to_candidates(probs: np.ndarray, *, min_size: int = 1) -> list[Candidates]:
    """Turn a pixel classifier's output into nucleus candidates: one per connected foreground component.

    Parameters
    ----------
    probs : ndarray of shape (N, 1 + C, H, W) or (1 + C, H, W)
        Softmax probabilities; channel 0 is background, channel ``1 + c`` class ``c``.
    min_size : int
        Components smaller than this (pixels) are dropped.

    Returns
    -------
    list of Candidates
        Per image: the centroid of each connected component (8-connectivity) of the pixels whose arg-max
        is not background, its class (the arg-max of the class probabilities summed over the component),
        and its score (the component's largest foreground probability ``1 - p_background``).

    Notes
    -----
    This is the plain reading of a pixel classifier as a detector: touching nuclei whose disks merge
    become one component and so one detection, which is what costs the U-Net its recall in Xing et al.
    """
    probs = np.asarray(probs)
    if probs.ndim == 3:
        probs = probs[None]
    if probs.ndim != 4 or probs.shape[1] < 2:
        raise ValueError(f"probs: expected (N, 1 + C, H, W) with C >= 1, got {describe(probs)}")
    check_positive(min_size, "min_size", integer=True)
    out = []
    structure = np.ones((3, 3), bool)
    for p in probs:
        fg = p.argmax(0) > 0
        lab, n = ndi.label(fg, structure=structure)
        if n:
            sizes = np.bincount(lab.ravel(), minlength=n + 1)[1:]
            ids = np.flatnonzero(sizes >= min_size) + 1
        else:
            ids = np.zeros(0, np.int64)
        if len(ids) == 0:
            out.append(Candidates(np.zeros((0, 2)), np.zeros(0, np.int64), np.zeros(0)))
            continue
        cen = np.asarray(ndi.center_of_mass(fg, lab, ids), dtype=np.float64).reshape(-1, 2)
        sums = np.stack([ndi.sum_labels(p[1 + c], lab, ids) for c in range(p.shape[0] - 1)], 1)  # (K, C)
        score = np.asarray(ndi.maximum(1.0 - p[0], lab, ids), dtype=np.float64)
        order = np.argsort(-score, kind="stable")
        out.append(Candidates(cen[order], sums.argmax(1)[order].astype(np.int64), score[order]))
    return out


# ============================================================================================== scores
def ki67_index(classes: Any) -> float:
    """Ki67 labelling index: positive tumour nuclei / all tumour nuclei (non-tumour nuclei ignored).

    Parameters
    ----------
    classes : array_like of shape (N,), int
        Class ids (0 Ki67+ tumour, 1 Ki67- tumour, 2 non-tumour).

    Returns
    -------
    float
        In [0, 1]; NaN when there is no tumour nucleus.
    """
    c = np.asarray(classes).reshape(-1)
    if c.size and c.dtype.kind not in "iu":
        raise TypeError(f"classes: expected integer class ids, got {describe(c)}")
    pos, neg = int(np.sum(c == POSITIVE)), int(np.sum(c == NEGATIVE))
    return pos / (pos + neg) if pos + neg else float("nan")


def evaluate(
    candidates: Sequence[Candidates],
    true_rc: Sequence[np.ndarray],
    true_cls: Sequence[np.ndarray],
    *,
    radius: float,
    xi: float = 0.5,
) -> dict[str, Any]:
    """Score candidates against the truth, pooled over images: the columns of the paper's Table I.

    Parameters
    ----------
    candidates : sequence of Candidates
        One per image (from :func:`maps_to_candidates` or :func:`pixels_to_candidates`).
    true_rc, true_cls : sequence of ndarray
        True centres (N_i, 2) and classes (N_i,) of each image.
    radius : float
        Matching radius, pixels (the paper: 16 px at 0.34 um/px).
    xi : float
        Relative threshold for the operating point.

    Returns
    -------
    dict
        ``det_precision``, ``det_recall``, ``det_f1``, ``tp_distance_px`` (mean) and ``tp_distance_std``;
        ``cls_precision``, ``cls_recall``, ``cls_f1`` (weighted by the class shares of the truth);
        ``cls_pr_auc`` (trapezoid area of the weighted classification PR curve over ξ = 0, 0.05, ..., 1)
        and ``det_pr_auc`` (the same for detection); ``per_class_f1`` (C,); ``confusion``;
        ``ki67_true`` and ``ki67_pred`` (per image) and ``ki67_abs_error`` (their mean absolute
        difference over images with tumour nuclei in both).
    """
    if not (len(candidates) == len(true_rc) == len(true_cls)):
        raise ValueError(
            f"candidates, true_rc, true_cls: expected one entry per image each, got "
            f"{len(candidates)}, {len(true_rc)}, {len(true_cls)}"
        )
    xi = check_probability(xi, "xi")
    picked = [c.at(xi) for c in candidates]
    pred_rc = [p for p, _ in picked]
    pred_cls = [k for _, k in picked]
    det = metrics.detection_scores(list(true_rc), pred_rc, radius)
    cls = metrics.classification_scores(list(true_rc), list(true_cls), pred_rc, pred_cls, radius, N_CLASSES)
    cand_rc = [c.points_rc for c in candidates]
    cand_s = [c.scores for c in candidates]
    p, r, _ = metrics.pr_curve(
        list(true_rc),
        cand_rc,
        cand_s,
        radius,
        true_cls=list(true_cls),
        pred_cls=[c.classes for c in candidates],
        n_classes=N_CLASSES,
    )
    pd_, rd_, _ = metrics.pr_curve(list(true_rc), cand_rc, cand_s, radius)
    ki_true = np.array([ki67_index(c) for c in true_cls])
    ki_pred = np.array([ki67_index(c) for c in pred_cls])
    ok = ~np.isnan(ki_true) & ~np.isnan(ki_pred)
    return {
        "det_precision": det["precision"],
        "det_recall": det["recall"],
        "det_f1": det["f1"],
        "tp_distance_px": det["dist_mean"],
        "tp_distance_std": det["dist_std"],
        "cls_precision": cls["weighted_precision"],
        "cls_recall": cls["weighted_recall"],
        "cls_f1": cls["weighted_f1"],
        "cls_pr_auc": metrics.aupr(p, r),
        "det_pr_auc": metrics.aupr(pd_, rd_),
        "per_class_f1": cls["f1"],
        "confusion": cls["confusion"],
        "ki67_true": ki_true,
        "ki67_pred": ki_pred,
        "ki67_abs_error": float(np.mean(np.abs(ki_true[ok] - ki_pred[ok]))) if ok.any() else float("nan"),
    }


def evaluate_model(
    model: torch.nn.Module,
    data: Ki67Set,
    *,
    radius: float,
    xi: float = 0.5,
    min_distance: int = 2,
    decoder: str = "peaks",
) -> tuple[dict[str, Any], list[Candidates]]:
    """Predict on every image of ``data``, decode points and score them (:func:`evaluate`).

    Parameters
    ----------
    model : torch.nn.Module
        KiNet (``decoder="peaks"``) or a pixel classifier with background in channel 0
        (``decoder="components"``); put it in ``eval()`` mode first.
    data : Ki67Set
        Test images and their truth.
    radius, xi : float
        Matching radius (pixels) and operating threshold, as in :func:`evaluate`.
    min_distance : int
        Non-maximum suppression half-width for ``"peaks"``.
    decoder : {"peaks", "components"}
        :func:`maps_to_candidates` or :func:`pixels_to_candidates`.

    Returns
    -------
    scores : dict
        As :func:`evaluate`.
    candidates : list of Candidates
        Per image, for plots and threshold sweeps.
    """
    if decoder not in ("peaks", "components"):
        raise ValueError(f"decoder: expected 'peaks' or 'components', got {decoder!r}")
    maps = predict(model, data.images)
    if decoder == "peaks":
        cands = maps_to_candidates(maps, min_distance=min_distance)
    else:
        cands = pixels_to_candidates(maps)
    true_rc, true_cls = data.points()
    return evaluate(cands, true_rc, true_cls, radius=radius, xi=xi), cands


def choose_xi(
    model: torch.nn.Module,
    data: Ki67Set,
    *,
    radius: float,
    min_distance: int = 2,
    decoder: str = "peaks",
    n_images: int = 8,
    grid: Sequence[float] | None = None,
) -> float:
    """Choose the operating threshold ξ on training images: the grid value with the best detection F1.

    Parameters
    ----------
    model : torch.nn.Module
        A trained model in ``eval()`` mode (as in :func:`evaluate_model`).
    data : Ki67Set
        The *training* set; only its first ``n_images`` images with nucleus labels are used, so no test
        image influences the threshold.
    radius, min_distance, decoder
        As in :func:`evaluate_model`.
    n_images : int
        Number of labelled training images to score.
    grid : sequence of float, optional
        Candidate values (default 0.05, 0.10, ..., 0.95).

    Returns
    -------
    float
        The ξ with the highest detection F1, pooled over the images (the smallest one on ties).

    Notes
    -----
    Xing et al. fix ξ = 0.5. The peak heights of a network's maps depend on how far it has been trained
    (short runs undershoot their targets, the more so for the classes they are least sure of), so a fixed
    ξ can cut away whole classes; choosing ξ on training images is the usual fix and keeps the test set
    untouched. The F1 at every ξ comes from one :func:`nucleikit.metrics.pr_curve` sweep, which keeps
    candidates exactly as :meth:`Candidates.at` does.
    """
    check_positive(n_images, "n_images", integer=True)
    idx = np.flatnonzero(data.has_nuclei)[:n_images]
    if len(idx) == 0:
        raise ValueError("data: expected at least one image with nucleus labels")
    grid = np.round(np.arange(0.05, 0.951, 0.05), 2) if grid is None else np.asarray(grid, dtype=float)
    if decoder not in ("peaks", "components"):
        raise ValueError(f"decoder: expected 'peaks' or 'components', got {decoder!r}")
    maps = predict(model, data.images[idx])
    if decoder == "peaks":
        cands = maps_to_candidates(maps, min_distance=min_distance)
    else:
        cands = pixels_to_candidates(maps)
    true_rc = [data.truths[i].centroids_rc for i in idx]
    p, r, _ = metrics.pr_curve(
        true_rc, [c.points_rc for c in cands], [c.scores for c in cands], radius, thresholds=grid
    )
    with np.errstate(invalid="ignore", divide="ignore"):
        f1 = np.nan_to_num(2 * p * r / (p + r), nan=-1.0)
    return float(grid[int(np.argmax(f1))])


# ============================================================================================= training
def _loss_key(**kwargs: Any) -> str:
    return " ".join(f"{k}={v!r}" for k, v in sorted(kwargs.items()))


def train_kinet(
    model: torch.nn.Module,
    data: Ki67Set,
    config: Any,
    *,
    name: str,
    crop: int,
    batch_size: int,
    gamma: float = 25.0,
    lam: float = 5.0,
    eta: float = 1e-6,
    warmup: float = 0.1,
    schedule: str = "joint",
    data_key: str | None = None,
    device: torch.device | str | None = None,
    callback: Callable | None = None,
    progress: bool = True,
):
    """Train KiNet on a :class:`Ki67Set` with the joint loss of Eq. 5, through :func:`nucleikit.train.fit`.

    Parameters
    ----------
    model : KiNet
        The network (with or without its ROI branch; without it the ROI term is left out).
    data : Ki67Set
        Training set: images, targets, ROI labels and the nucleus-label indicator.
    config : nucleikit.train.TrainConfig
        Optimiser and number of steps.
    name : str
        Name of the run (checkpoint cache).
    crop, batch_size : int
        Random crops per step (see :func:`crop_batches`).
    gamma, lam, eta : float
        Eq. 5's weight of the nucleus term, Eq. 2's lambda, Eq. 3's eta.
    warmup : float
        Fraction of the steps before the correlation term (Eq. 3) is switched on (the paper: 1e4 of 1e5).
    schedule : {"joint", "stagewise"}
        ``"joint"``: Eq. 5 at every step. ``"stagewise"`` (the paper's Fig. 7 comparison): the first half
        of the steps minimise the ROI term only (encoder + ROI branch), the second half the nucleus term
        only (encoder + detection decoder); parameters a stage does not use get no gradient and are not
        updated by the optimiser.
    data_key : str, optional
        Description of the data for the cache key (default ``data.key``); the loss settings are appended.
    device, callback, progress
        As in :func:`nucleikit.train.fit`.

    Returns
    -------
    nucleikit.train.History
        Logged ``loss``, ``proximity``, ``correlation`` and ``roi`` terms (``proximity`` and
        ``correlation`` on the scale of the fitted targets).

    Notes
    -----
    The proximity maps are fitted to ``model.target_scale`` times the targets (1 unless the model was
    built with another ``target_scale``; the authors' code uses 5), so Eq. 2 grows by ``target_scale**3``
    (weights and squared error both scale) against the ROI term.
    """
    from .losses import kinet_loss, roi_cross_entropy
    from .train import fit

    if schedule not in ("joint", "stagewise"):
        raise ValueError(f"schedule: expected 'joint' or 'stagewise', got {schedule!r}")
    has_roi = bool(getattr(model, "has_roi", True))
    if schedule == "stagewise" and not has_roi:
        raise ValueError("schedule='stagewise' needs a model with the ROI branch (roi_branch=True)")
    key = data.key if data_key is None else data_key
    if not key:
        raise ValueError("data_key: the set has no key (made from a Generator); pass data_key= describing it")
    dev = torch.device(device) if device is not None else None
    batches = crop_batches(
        [data.images, data.targets, data.roi, data.has_nuclei], crop=crop, batch_size=batch_size, device=dev
    )
    start_corr = round(warmup * config.steps)
    half = config.steps // 2
    scale = float(getattr(model, "target_scale", 1.0))

    def step_fn(m, batch, step):
        x, targets, roi, has = batch
        out = m(x)
        if schedule == "stagewise" and step < half:  # stage 1: the region branch alone
            loss = roi_cross_entropy(out.roi, roi, normalize="all")  # the detection decoder gets no gradient
            zero = torch.zeros((), device=loss.device)
            return loss, {"proximity": zero, "correlation": zero, "roi": loss.detach()}
        use_roi = roi if has_roi and schedule == "joint" else None  # stage 2: the nucleus term alone
        return kinet_loss(
            out,
            targets * scale if scale != 1.0 else targets,
            use_roi,
            has,
            lam=lam,
            gamma=gamma,
            eta=eta,
            use_correlation=step >= start_corr,
            return_terms=True,
        )

    loss_key = _loss_key(
        gamma=gamma,
        lam=lam,
        eta=eta,
        warmup=warmup,
        schedule=schedule,
        crop=crop,
        batch=batch_size,
        target_scale=scale,
    )
    return fit(
        model,
        step_fn,
        batches,
        config,
        name=name,
        data_key=f"{key}|kinet {loss_key}",
        device=device,
        callback=callback,
        progress=progress,
    )


def train_pixel_classifier(
    model: torch.nn.Module,
    data: Ki67Set,
    config: Any,
    *,
    name: str,
    crop: int,
    batch_size: int,
    data_key: str | None = None,
    device: torch.device | str | None = None,
    callback: Callable | None = None,
    progress: bool = True,
):
    """Train a pixel classifier (the paper's U-Net baseline) on the disk labels of a :class:`Ki67Set`.

    The loss is the pixel-wise cross-entropy over background and the three classes
    (``data.pixel_classes``), ignoring images without nucleus labels (-1). Same crops, batches and
    optimiser as :func:`train_kinet`, so both get the same budget.

    Returns
    -------
    nucleikit.train.History
    """
    from .train import fit

    key = data.key if data_key is None else data_key
    if not key:
        raise ValueError("data_key: the set has no key (made from a Generator); pass data_key= describing it")
    dev = torch.device(device) if device is not None else None
    batches = crop_batches([data.images, data.pixel_classes], crop=crop, batch_size=batch_size, device=dev)

    def step_fn(m, batch, step):
        x, labels = batch
        if not (labels >= 0).any():
            return m(x).sum() * 0.0, {}
        return torch.nn.functional.cross_entropy(m(x), labels, ignore_index=-1), {}

    return fit(
        model,
        step_fn,
        batches,
        config,
        name=name,
        data_key=f"{key}|pixel-classifier crop={crop} batch={batch_size}",
        device=device,
        callback=callback,
        progress=progress,
    )
