r"""Segmentation from partial annotations (Sayin Mercadier et al., ISBI 2019): data, training, evaluation.

Chapter 3 trains the same U-Net three times on the same images with the same budget, changing only what
the loss is told; chapter 2 trains it on differently normalised images. This module holds the steps they
share, so every run goes through one tested routine:

====================================  ====================================================================
function                              what
====================================  ====================================================================
:func:`make_partial_set`              synthetic H&E tiles, 30 % of the nuclei annotated, weight maps
:func:`variant_targets`               what each training variant learns from: naive, weighted, full
:func:`select_patches`                the paper's patch rule: enough dilated foreground and background
:func:`patch_batches`                 random patches with the 8 flips/rotations, as ``nk.train.fit`` batches
:func:`segmentation_step`             one step of Eq. 5: weighted log-likelihood + L2 on the conv weights
:func:`train_unet`                    train (or load from the checkpoint cache) a U-Net on given images
:func:`train_options`                 the keyword arguments of :func:`train_unet` held by a settings object
:func:`predict_proba`                 nucleus probability of a whole image (sliding windows or naive tiles)
:func:`evaluate`                      pixel scores, AJI, AJI+, PQ of one image
:func:`evaluate_set`                  the same, averaged over images
:func:`threshold_sweep`               pooled pixel recall / precision / F1 against the threshold
:func:`mean_probability`              mean nucleus probability on true nucleus and background pixels
====================================  ====================================================================

The three variants differ only in the targets ``(y, m_hat)`` of the loss
``L = -(1/HW) sum [ y log p_fg + m_hat (1 - y) log p_bg ] + gamma ||w||^2``
(:func:`nucleikit.losses.weighted_background_loss` and :func:`nucleikit.losses.l2_penalty`):

- ``"naive"``: ``y`` = the partial mask, ``m_hat = 1``: every unlabelled pixel is background;
- ``"weighted"``: ``y`` = the partial mask, ``m_hat`` = :func:`nucleikit.losses.background_weight_map`;
- ``"full"``: ``y`` = every true nucleus, ``m_hat = 1``: the upper bound, with labels no one has.

Conventions: images (H, W, 3) uint8; masks (H, W) with foreground > 0; weight maps (H, W) float32 in
[0, 1]; probabilities (H, W) float32; corners (K, 3) int64 rows ``(image index, row, col)``.

References
----------
.. [1] D. Sayin Mercadier, B. Besbinar, P. Frossard, "Automatic segmentation of nuclei in histopathology
   images using encoding-decoding convolutional neural networks", ISBI 2019.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from scipy import ndimage as ndi

from . import losses, metrics, profiles, synth
from ._checks import check_labels, check_positive, check_probability, check_rgb, describe
from .data import to_tensor
from .inference import sliding_window_predict, tile_predict
from .models import UNet
from .train import History, TrainConfig, array_digest, fit

__all__ = [
    "METRICS",
    "VARIANTS",
    "PartialSet",
    "evaluate",
    "evaluate_set",
    "make_partial_set",
    "mean_probability",
    "patch_batches",
    "predict_proba",
    "segmentation_step",
    "select_patches",
    "threshold_sweep",
    "train_options",
    "train_unet",
    "variant_targets",
]

#: The three trainings of chapter 3, in the order of the results table.
VARIANTS: tuple[str, ...] = ("naive", "weighted", "full")


# ================================================================================================= data
@dataclass(frozen=True)
class PartialSet:
    """Synthetic H&E tiles with a partial annotation and its weight map (and the truth, for scoring).

    Attributes
    ----------
    images : ndarray of shape (N, H, W, 3), uint8
        The tiles.
    annotated : ndarray of shape (N, H, W), uint8
        ``y``: 1 on the pixels of the annotated nuclei, 0 elsewhere (0 means "not annotated").
    weights : ndarray of shape (N, H, W), float32
        ``m_hat = max(m, lam * eroded k-means background)``: how much each pixel's background label is
        trusted (:func:`nucleikit.losses.background_weight_map`).
    background : ndarray of shape (N, H, W), bool
        The eroded k-means background cluster (:func:`nucleikit.losses.kmeans_background`).
    truths : list of nucleikit.synth.Truth
        Full truth of every tile (training reads only the arrays above, except the ``"full"`` variant).
    fraction : float
        Fraction of the nuclei that are annotated.
    params : dict
        How the set was made (seed, tile size, weight-map parameters), for the checkpoint key.
    """

    images: np.ndarray
    annotated: np.ndarray
    weights: np.ndarray
    background: np.ndarray
    truths: list = field(repr=False)
    fraction: float = 0.3
    params: dict = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.images)

    @property
    def full_mask(self) -> np.ndarray:
        """Every true nucleus: ndarray of shape (N, H, W), uint8 (what the ``"full"`` variant learns)."""
        return np.stack([(t.labels > 0).astype(np.uint8) for t in self.truths])

    @property
    def labels(self) -> np.ndarray:
        """True instance labels, ndarray of shape (N, H, W), int32."""
        return np.stack([t.labels.astype(np.int32) for t in self.truths])

    def describe(self) -> str:
        """One line: tiles, size, nuclei, annotated nuclei, pixels trusted as background."""
        n, h, w = self.images.shape[:3]
        total = sum(t.n for t in self.truths)
        annotated = sum(len(np.unique(self.annotated[i] * t.labels)) - 1 for i, t in enumerate(self.truths))
        return (
            f"{n} tiles of {h}x{w} px, {total} nuclei, {annotated} annotated "
            f"({annotated / max(total, 1):.0%}); "
            f"mean weight of unlabelled pixels {float(self.weights[self.annotated == 0].mean()):.2f}"
        )


def make_partial_set(
    n: int,
    *,
    shape: tuple[int, int] = (256, 256),
    fraction: float = 0.3,
    alpha: float = 5.0,
    beta: float = 0.1,
    lam: float = 0.5,
    erosion_radius: int = 5,
    seed: int = 0,
    **tile_kwargs: Any,
) -> PartialSet:
    """Generate partially annotated synthetic H&E tiles and their background weight maps.

    Parameters
    ----------
    n : int
        Number of tiles.
    shape : tuple of int
        Tile size (H, W).
    fraction : float
        Fraction of the nuclei of each tile that are annotated (:func:`nucleikit.synth.partial_mask`).
    alpha, beta, lam, erosion_radius
        Weight-map parameters (:func:`nucleikit.losses.background_weight_map`).
    seed : int
        Tile ``i`` is ``he_tile(rng=default_rng([seed, i]))``; its annotation and k-means use
        ``[seed, i, 1]`` and ``[seed, i, 2]``: the same seed gives the same set on any machine.
    **tile_kwargs
        Passed to :func:`nucleikit.synth.he_tile` (``organ``, ``style``, ``difficulty``, ``density``...).
        The difficulty defaults to the calibrated ``nucleikit.synth.DEFAULT_DIFFICULTY``.

    Returns
    -------
    PartialSet
    """
    check_positive(n, "n", integer=True)
    fraction = check_probability(fraction, "fraction")
    images, annotated, weights, background, truths = [], [], [], [], []
    for i in range(n):
        tile = synth.he_tile(tuple(shape), rng=np.random.default_rng([seed, i]), **tile_kwargs)
        part, _ = synth.partial_mask(tile.truth, fraction, rng=np.random.default_rng([seed, i, 1]))
        bg = losses.kmeans_background(
            tile.image, erosion_radius=erosion_radius, rng=np.random.default_rng([seed, i, 2])
        )
        m = losses.distance_weights(part, alpha=alpha, beta=beta)
        images.append(tile.image)
        annotated.append((part > 0).astype(np.uint8))
        weights.append(np.maximum(m, np.float32(lam) * bg.astype(np.float32)))
        background.append(bg)
        truths.append(tile.truth)
    params = {
        "n": n,
        "shape": tuple(int(s) for s in shape),
        "fraction": fraction,
        "alpha": alpha,
        "beta": beta,
        "lam": lam,
        "erosion_radius": erosion_radius,
        "seed": seed,
        "tile_kwargs": {k: repr(v) for k, v in sorted(tile_kwargs.items())},
        "difficulty": repr(synth.get_difficulty(tile_kwargs.get("difficulty"))),
    }
    return PartialSet(
        images=np.stack(images),
        annotated=np.stack(annotated),
        weights=np.stack(weights).astype(np.float32),
        background=np.stack(background),
        truths=truths,
        fraction=fraction,
        params=params,
    )


def variant_targets(data: PartialSet, variant: str) -> tuple[np.ndarray, np.ndarray]:
    """Return what a training variant learns from: the nucleus mask ``y`` and the background weights.

    Parameters
    ----------
    data : PartialSet
        The training tiles.
    variant : {"naive", "weighted", "full"}
        See the module docstring.

    Returns
    -------
    annotated : ndarray of shape (N, H, W), uint8
        ``y`` (the partial mask, or every true nucleus for ``"full"``).
    weights : ndarray of shape (N, H, W), float32
        ``m_hat`` for ``"weighted"``, ones otherwise.
    """
    if not isinstance(data, PartialSet):
        raise TypeError(f"data: expected a PartialSet (make_partial_set), got {describe(data)}")
    if variant not in VARIANTS:
        raise ValueError(f"variant: expected one of {', '.join(VARIANTS)}, got {variant!r}")
    if variant == "full":
        return data.full_mask, np.ones(data.annotated.shape, np.float32)
    if variant == "naive":
        return data.annotated.copy(), np.ones(data.annotated.shape, np.float32)
    return data.annotated.copy(), data.weights.copy()


# ============================================================================================== patches
def _as_stack(arrays: Any, name: str, ndim: int) -> list[np.ndarray]:
    """Accept an (N, ...) array or a sequence of arrays; return a list of N arrays with ``ndim`` dims."""
    if isinstance(arrays, np.ndarray):
        if arrays.ndim == ndim:
            return [arrays]
        if arrays.ndim != ndim + 1:
            raise ValueError(
                f"{name}: expected an array with {ndim + 1} dimensions (N, ...), got {describe(arrays)}"
            )
        return list(arrays)
    out = [np.asarray(a) for a in arrays]
    if not out:
        raise ValueError(f"{name}: expected at least one image, got none")
    for a in out:
        if a.ndim != ndim:
            raise ValueError(f"{name}: expected arrays with {ndim} dimensions, got {describe(a)}")
    return out


def select_patches(
    annotated: Any,
    background: Any,
    *,
    size: int = 128,
    stride: int = 64,
    dilation_radius: int = 5,
    min_foreground: float = 0.10,
    min_background: float = 0.40,
) -> np.ndarray:
    """Keep the patches with enough dilated foreground and dilated background (the paper's rule).

    Parameters
    ----------
    annotated : ndarray of shape (N, H, W) or sequence of (H_i, W_i)
        Annotated nuclei (> 0) of each image.
    background : ndarray of shape (N, H, W) or sequence of (H_i, W_i)
        Trusted background (> 0) of each image, e.g. :attr:`PartialSet.background`.
    size : int
        Patch side in pixels (the paper: 256).
    stride : int
        Step between candidate patches (the paper: 128); the last row and column are flush with the border.
    dilation_radius : int
        Radius of the disk that dilates both masks before measuring them.
    min_foreground, min_background : float
        A patch is kept when the dilated foreground covers *more* than ``min_foreground`` of it and the
        dilated background more than ``min_background``.

    Returns
    -------
    ndarray of shape (K, 3), int64
        ``(image index, row, col)`` of each kept patch's top-left corner.

    Notes
    -----
    Sayin Mercadier et al. keep 256 px patches (stride 128) "when the dilated foreground covers more than
    10 % and the dilated background more than 40 %". Which background is dilated is not said; we take the
    trusted background of the weight map (the eroded k-means cluster), so a kept patch has annotated nuclei
    to learn from *and* background that the loss trusts (OUR DEFAULT, with a dilation radius of 5 px).
    """
    fg = _as_stack(annotated, "annotated", 2)
    bg = _as_stack(background, "background", 2)
    if len(fg) != len(bg):
        raise ValueError(
            f"annotated and background: expected the same number of images, got {len(fg)} and {len(bg)}"
        )
    check_positive(size, "size", integer=True)
    check_positive(stride, "stride", integer=True)
    check_positive(dilation_radius, "dilation_radius", integer=True, allow_zero=True)
    min_foreground = check_probability(min_foreground, "min_foreground")
    min_background = check_probability(min_background, "min_background")
    from skimage.morphology import disk

    from .data import patch_corners

    selem = disk(dilation_radius) if dilation_radius > 0 else np.ones((1, 1), bool)
    kept = []
    for i, (f, b) in enumerate(zip(fg, bg, strict=True)):
        if f.shape != b.shape:
            raise ValueError(f"image {i}: annotated and background differ in shape, {f.shape} and {b.shape}")
        if f.shape[0] < size or f.shape[1] < size:
            continue
        # integral images of the dilated masks give every patch's coverage in O(1)
        sums = []
        for mask in (f > 0, b > 0):
            dil = ndi.binary_dilation(mask, structure=selem).astype(np.int64)
            sums.append(np.pad(dil.cumsum(0).cumsum(1), ((1, 0), (1, 0))))  # (H+1, W+1)
        corners = patch_corners(f.shape, size, stride)
        r, c = corners[:, 0], corners[:, 1]
        area = float(size * size)
        cover = [(s[r + size, c + size] - s[r, c + size] - s[r + size, c] + s[r, c]) / area for s in sums]
        ok = (cover[0] > min_foreground) & (cover[1] > min_background)
        kept.append(np.column_stack([np.full(int(ok.sum()), i), corners[ok]]))
    if not kept:
        return np.zeros((0, 3), np.int64)
    return np.concatenate(kept).astype(np.int64)


def _dihedral(x: torch.Tensor, k: int, flip: bool) -> torch.Tensor:
    x = torch.rot90(x, k, (-2, -1))
    return torch.flip(x, (-1,)) if flip else x


def patch_batches(
    images: Any,
    annotated: Any,
    weights: Any,
    corners: np.ndarray,
    *,
    size: int = 128,
    batch_size: int = 8,
    augment: bool = True,
    device: torch.device | str = "cpu",
) -> Callable[[int, torch.Generator], tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
    """Make the ``batches(step, generator)`` function of :func:`nucleikit.train.fit` from patch corners.

    Parameters
    ----------
    images : ndarray of shape (N, H, W, 3) or sequence of (H_i, W_i, 3), uint8
        The training images.
    annotated : ndarray of shape (N, H, W) or sequence of (H_i, W_i)
        ``y`` (> 0 = nucleus).
    weights : ndarray of shape (N, H, W) or sequence of (H_i, W_i), float
        Background weights ``m_hat``.
    corners : ndarray of shape (K, 3), int
        ``(image index, row, col)`` of the patches to draw from (:func:`select_patches`).
    size : int
        Patch side.
    batch_size : int
        Patches per batch, drawn uniformly with replacement.
    augment : bool
        Apply one of the 8 rotations/flips (the dihedral group) to each patch.
    device : torch.device or str
        Where the batches go.

    Returns
    -------
    callable
        ``batches(step, generator) -> (x, y, w)`` with ``x`` of shape (B, 3, size, size) float32 in
        [0, 1], ``y`` and ``w`` of shape (B, size, size) float32. The draw depends only on the generator.
    """
    imgs = [check_rgb(a, f"images[{i}]") for i, a in enumerate(_as_stack(images, "images", 3))]
    ys = _as_stack(annotated, "annotated", 2)
    ws = _as_stack(weights, "weights", 2)
    if not len(imgs) == len(ys) == len(ws):
        raise ValueError(
            "images, annotated, weights: expected the same number of images, "
            f"got {len(imgs)}, {len(ys)}, {len(ws)}"
        )
    for i, (a, y, w) in enumerate(zip(imgs, ys, ws, strict=True)):
        if not a.shape[:2] == y.shape == w.shape:
            raise ValueError(
                f"image {i}: expected the same (H, W), got {a.shape[:2]}, {y.shape} and {w.shape}"
            )
    corners = np.asarray(corners, dtype=np.int64).reshape(-1, 3)
    if len(corners) == 0:
        raise ValueError("corners: expected at least one patch, got none (loosen the patch rule?)")
    for idx, r, c in corners:
        if not (0 <= idx < len(imgs)) or r < 0 or c < 0:
            raise ValueError(f"corners: patch ({idx}, {r}, {c}) refers to no image")
        h, w = imgs[idx].shape[:2]
        if r + size > h or c + size > w:
            raise ValueError(
                f"corners: patch ({idx}, {r}, {c}) of size {size} leaves the {h}x{w} image {idx}"
            )
    check_positive(batch_size, "batch_size", integer=True)
    device = torch.device(device)
    x_all = [to_tensor(a) for a in imgs]  # (3, H, W) each
    y_all = [torch.from_numpy((np.asarray(y) > 0).astype(np.float32)) for y in ys]
    w_all = [torch.from_numpy(np.asarray(w, dtype=np.float32).copy()) for w in ws]
    corners_t = torch.from_numpy(corners)

    def batches(step: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        pick = torch.randint(0, len(corners_t), (batch_size,), generator=generator)
        rot = torch.randint(0, 4, (batch_size,), generator=generator)
        flip = torch.randint(0, 2, (batch_size,), generator=generator)
        xs, ys_, ws_ = [], [], []
        for b in range(batch_size):
            i, r, c = (int(v) for v in corners_t[pick[b]])
            sl = (slice(r, r + size), slice(c, c + size))
            x, y, w = x_all[i][(slice(None), *sl)], y_all[i][sl], w_all[i][sl]
            if augment:
                k, f = int(rot[b]), bool(flip[b])
                x, y, w = _dihedral(x, k, f), _dihedral(y, k, f), _dihedral(w, k, f)
            xs.append(x)
            ys_.append(y)
            ws_.append(w)
        return torch.stack(xs).to(device), torch.stack(ys_).to(device), torch.stack(ws_).to(device)

    return batches


# ============================================================================================= training
def segmentation_step(
    model: torch.nn.Module,
    batch: tuple[torch.Tensor, torch.Tensor, torch.Tensor],
    step: int,
    *,
    gamma: float = 1e-5,
) -> tuple[torch.Tensor, dict[str, float]]:
    """One training step of Eq. 5: the loss of a batch ``(x, y, m_hat)`` (the ``step_fn`` of ``fit``).

    Parameters
    ----------
    model : torch.nn.Module
        Maps (B, 3, H, W) to logits (B, 2, H, W), channel 1 = nucleus (:class:`nucleikit.models.UNet`).
    batch : tuple of Tensor
        ``x`` (B, 3, H, W), ``y`` (B, H, W) and ``m_hat`` (B, H, W), as :func:`patch_batches` makes them.
    step : int
        Step number (unused; part of the ``step_fn`` signature).
    gamma : float
        Weight of the L2 penalty on the convolution weights (the paper: 1e-5).

    Returns
    -------
    loss : Tensor of shape ()
        :func:`nucleikit.losses.weighted_background_loss` + :func:`nucleikit.losses.l2_penalty`.
    logs : dict
        ``nll`` (the log-likelihood term) and ``l2``.

    Notes
    -----
    The three variants of chapter 3 share this step; they differ only in the ``(y, m_hat)`` of their
    batches (:func:`variant_targets`).
    """
    x, y, w = batch
    nll = losses.weighted_background_loss(model(x), y, w)
    l2 = losses.l2_penalty(model, gamma) if gamma > 0 else nll.new_zeros(())
    return nll + l2, {"nll": float(nll.detach()), "l2": float(l2.detach())}


def train_unet(
    images: Any,
    annotated: Any,
    weights: Any = None,
    *,
    corners: np.ndarray | None = None,
    widths: Sequence[int] = (8, 16, 32, 64, 128),
    patch: int = 128,
    batch_size: int = 8,
    steps: int = 300,
    lr: float = 1e-3,
    lr_decay: float = 0.95,
    lr_decay_every: int = 1000,
    lr_min: float = 1e-5,
    gamma: float = 1e-5,
    seed: int = 0,
    model: torch.nn.Module | None = None,
    name: str = "unet",
    data_key: str = "",
    device: torch.device | str = "cpu",
    cache: bool = True,
    callback: Callable[[int, History], None] | None = None,
    progress: bool = False,
) -> tuple[torch.nn.Module, History]:
    """Train a U-Net on the given images and targets for a fixed number of steps (or load it from the cache).

    Parameters
    ----------
    images : ndarray of shape (N, H, W, 3) or sequence of (H_i, W_i, 3), uint8
        The images to train on (chapter 2 passes un-normalised or normalised versions of the same tiles).
    annotated : ndarray of shape (N, H, W) or sequence of (H_i, W_i)
        ``y``: nucleus pixels (> 0).
    weights : ndarray of shape (N, H, W) or sequence, optional
        ``m_hat`` (:func:`nucleikit.losses.background_weight_map`); None gives all ones (every unlabelled
        pixel is background: the naive and the full variant).
    corners : ndarray of shape (K, 3), optional
        Patches to draw from (:func:`select_patches`); default every patch at stride ``patch // 2``.
    widths : sequence of int
        U-Net widths, finest first (the paper's scale: 32-64-128-256-512).
    patch, batch_size, steps, lr, lr_decay, lr_decay_every, lr_min
        Patch side, batch, number of Adam steps, learning rate decayed by ``lr_decay`` every
        ``lr_decay_every`` steps down to ``lr_min`` (the paper: 256, 6, 100k, 1e-3, 0.95, 1000, 1e-5).
    gamma : float
        L2 weight of Eq. 5.
    seed : int
        Seeds the initialisation and the batches.
    model : torch.nn.Module, optional
        Start from this model (fine-tuning); it is trained in place and returned. Default: a new
        ``UNet(widths=widths)``.
    name : str
        Run name (checkpoint file name and part of its key).
    data_key : str
        Extra description of the data for the cache key. The key already holds a hash of ``images``,
        ``annotated``, ``weights``, ``corners`` and of the starting model's weights, so different data can
        never load another run's checkpoint.
    device : torch.device or str
        Where to train.
    cache : bool
        Reuse / write checkpoints (:func:`nucleikit.train.fit`).
    callback : callable, optional
        ``callback(step, history)``, e.g. :class:`nucleikit.viz.LiveLoss`.
    progress : bool
        Show a tqdm bar.

    Returns
    -------
    model : torch.nn.Module
        The trained model, in ``eval()`` mode on ``device``.
    history : nucleikit.train.History
        Logged ``loss``, ``nll``, ``l2`` and ``lr``; ``history.from_cache`` says whether it was loaded.
    """
    imgs = _as_stack(images, "images", 3)
    ys = _as_stack(annotated, "annotated", 2)
    ws = [np.ones(y.shape, np.float32) for y in ys] if weights is None else _as_stack(weights, "weights", 2)
    check_positive(steps, "steps", integer=True, allow_zero=True)
    check_positive(patch, "patch", integer=True)
    if corners is None:
        from .data import patch_corners

        corners = np.concatenate(
            [
                np.column_stack([np.full(len(c), i), c])
                for i, a in enumerate(imgs)
                if min(a.shape[:2]) >= patch
                for c in [patch_corners(a.shape[:2], patch, max(patch // 2, 1))]
            ]
        )
    corners = np.asarray(corners, np.int64).reshape(-1, 3)
    batches = patch_batches(imgs, ys, ws, corners, size=patch, batch_size=batch_size, device=device)
    if model is None:
        torch.manual_seed(seed)
        model = UNet(widths=widths)
        start = "new"
    else:
        start = array_digest([p.detach().cpu().numpy() for p in model.state_dict().values()])
    config = TrainConfig(
        steps=steps,
        lr=lr,
        lr_decay=lr_decay,
        lr_decay_every=lr_decay_every,
        lr_min=lr_min,
        seed=seed,
        log_every=max(1, min(10, steps // 20 or 1)),
    )
    key = (
        f"{data_key} | data {array_digest(imgs, ys, ws, corners)} | start {start} | patch {patch} "
        f"batch {batch_size} gamma {gamma}"
    )

    def step_fn(m: torch.nn.Module, batch: Any, step: int) -> tuple[torch.Tensor, dict[str, float]]:
        return segmentation_step(m, batch, step, gamma=gamma)

    history = fit(
        model,
        step_fn,
        batches,
        config,
        name=name,
        data_key=key,
        device=device,
        cache=cache,
        callback=callback,
        progress=progress,
    )
    return model, history


_TRAIN_OPTIONS = (
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
)


def train_options(settings: Any) -> dict[str, Any]:
    """Return the keyword arguments of :func:`train_unet` that a settings object holds.

    Parameters
    ----------
    settings : dataclass instance or mapping
        E.g. the chapter's :class:`nucleikit.profiles.SegmentationSettings`; the fields named like
        parameters of :func:`train_unet` (``widths``, ``patch``, ``batch_size``, ``steps``, ``lr``,
        ``lr_decay``, ``lr_decay_every``, ``lr_min``, ``gamma``, ``seed``) are taken, the others ignored.

    Returns
    -------
    dict
        ``train_unet(images, y, w, **train_options(cfg))``.
    """
    return profiles.pick(settings, _TRAIN_OPTIONS)


# ============================================================================================ inference
@torch.no_grad()
def predict_proba(
    model: torch.nn.Module,
    image: np.ndarray,
    *,
    window: int = 256,
    stride: int = 128,
    batch_size: int = 8,
    naive_tiling: bool = False,
) -> np.ndarray:
    """Nucleus probability of a whole image of any size.

    Parameters
    ----------
    model : torch.nn.Module
        Maps (B, 3, h, w) to logits (B, 2, h, w), channel 1 = nucleus; evaluated on its parameters' device
        in its current mode (call ``model.eval()`` first).
    image : ndarray of shape (H, W, 3)
        RGB, uint8 or float in [0, 1].
    window, stride : int
        Sliding windows (the paper: 256 at stride 128, each window's central ``stride`` px kept;
        :func:`nucleikit.inference.sliding_window_predict`).
    batch_size : int
        Windows per forward pass.
    naive_tiling : bool
        Use non-overlapping ``window`` tiles instead, everything kept (shows seams;
        :func:`nucleikit.inference.tile_predict`).

    Returns
    -------
    ndarray of shape (H, W), float32
        ``softmax(logits)[1]`` in [0, 1].
    """
    image = check_rgb(image)
    x = to_tensor(image)  # (3, H, W)
    if naive_tiling:
        logits = tile_predict(model, x, tile=window, batch_size=batch_size)
    else:
        logits = sliding_window_predict(model, x, window=window, stride=stride, batch_size=batch_size)
    return logits.softmax(0)[UNet.FOREGROUND].cpu().numpy().astype(np.float32)


# =========================================================================================== evaluation
#: The metrics :func:`evaluate` returns, in the order of the chapter's table.
METRICS: tuple[str, ...] = ("recall", "precision", "f1", "accuracy", "iou", "dice", "aji", "aji_plus", "pq")


def evaluate(
    prob: np.ndarray,
    true_labels: np.ndarray,
    *,
    threshold: float = 0.5,
    watershed: bool = False,
    min_size: int = 0,
) -> dict[str, float]:
    """Score one predicted probability map (or binary mask) against the true instances.

    Parameters
    ----------
    prob : ndarray of shape (H, W)
        Nucleus probability (float in [0, 1]) or a binary mask (bool / 0-1 integers).
    true_labels : ndarray of shape (H, W), int
        True instances 1..N.
    threshold : float
        A pixel is a nucleus where ``prob > threshold`` (float input only).
    watershed : bool
        Split touching nuclei of the binary mask with the distance-transform watershed
        (:func:`nucleikit.metrics.instances_from_binary`) before the object metrics; default connected
        components, as the paper (no post-processing).
    min_size : int
        Predicted instances smaller than this are dropped (object metrics only).

    Returns
    -------
    dict of str to float
        Pixel ``recall``, ``precision``, ``f1``, ``accuracy``, ``iou``, ``dice``
        (:func:`nucleikit.metrics.pixel_scores`); object ``aji`` (Kumar et al. 2017), ``aji_plus`` and
        ``pq`` on the instances of the binary mask.
    """
    truth = check_labels(true_labels, "true_labels")
    prob = np.asarray(prob)
    if prob.shape != truth.shape:
        raise ValueError(f"prob and true_labels: expected the same shape, got {prob.shape} and {truth.shape}")
    if prob.dtype.kind == "f":
        threshold = check_probability(threshold, "threshold")
        mask = prob > threshold
    elif prob.dtype == np.bool_ or prob.dtype.kind in "iu":
        mask = prob > 0
    else:
        raise TypeError(f"prob: expected float probabilities or a binary mask, got {describe(prob)}")
    px = metrics.pixel_scores(truth > 0, mask)
    pred = metrics.instances_from_binary(mask, min_size=min_size, watershed=watershed)
    out = {k: px[k] for k in ("recall", "precision", "f1", "accuracy", "iou", "dice")}
    out["aji"] = metrics.aji(truth, pred)
    out["aji_plus"] = metrics.aji_plus(truth, pred)
    out["pq"] = metrics.panoptic_quality(truth, pred)["pq"]
    return out


def _check_lists(probs: Any, true_labels: Any) -> tuple[list, list]:
    probs, true_labels = list(probs), list(true_labels)
    if len(probs) != len(true_labels) or not probs:
        raise ValueError(
            "probs and true_labels: expected the same non-zero number of images, "
            f"got {len(probs)} and {len(true_labels)}"
        )
    return probs, true_labels


def evaluate_set(
    probs: Sequence[np.ndarray], true_labels: Sequence[np.ndarray], **kwargs: Any
) -> dict[str, float]:
    """Average :func:`evaluate` over images (NaNs, e.g. the precision of an empty prediction, skipped).

    Parameters
    ----------
    probs : sequence of ndarray of shape (H_i, W_i)
        Probabilities or masks, one per image.
    true_labels : sequence of ndarray of shape (H_i, W_i)
        True instances.
    **kwargs
        ``threshold``, ``watershed``, ``min_size`` (see :func:`evaluate`).

    Returns
    -------
    dict of str to float
        The mean of each metric over the images (NaN when every image gives NaN).
    """
    probs, true_labels = _check_lists(probs, true_labels)
    scores = [evaluate(p, t, **kwargs) for p, t in zip(probs, true_labels, strict=True)]
    out = {}
    for k in scores[0]:
        vals = np.array([s[k] for s in scores], dtype=float)
        out[k] = float(np.nanmean(vals)) if np.isfinite(vals).any() else math.nan
    return out


def threshold_sweep(
    probs: Sequence[np.ndarray], true_labels: Sequence[np.ndarray], thresholds: Sequence[float]
) -> dict[str, np.ndarray]:
    """Pooled pixel recall, precision and F1 of probability maps at several thresholds.

    Parameters
    ----------
    probs : sequence of ndarray of shape (H_i, W_i), float
        Nucleus probabilities.
    true_labels : sequence of ndarray of shape (H_i, W_i)
        True instances (or masks; > 0 = nucleus).
    thresholds : sequence of float
        A pixel is a nucleus where ``prob > threshold``.

    Returns
    -------
    dict of str to ndarray of shape (T,)
        ``threshold``, ``recall``, ``precision``, ``f1`` with the pixel counts pooled over the images
        (precision is NaN where nothing is predicted).
    """
    probs, true_labels = _check_lists(probs, true_labels)
    th = np.asarray(thresholds, dtype=float).reshape(-1)
    tp = np.zeros(len(th))
    fp = np.zeros(len(th))
    fn = np.zeros(len(th))
    for p, t in zip(probs, true_labels, strict=True):
        p = np.asarray(p, dtype=np.float32)
        truth = check_labels(t, "true_labels") > 0
        if p.shape != truth.shape:
            raise ValueError(
                f"probs and true_labels: expected the same shape, got {p.shape} and {truth.shape}"
            )
        pos, neg = np.sort(p[truth]), np.sort(p[~truth])
        above_pos = len(pos) - np.searchsorted(pos, th, side="right")  # count of prob > th
        above_neg = len(neg) - np.searchsorted(neg, th, side="right")
        tp += above_pos
        fn += len(pos) - above_pos
        fp += above_neg
    with np.errstate(invalid="ignore", divide="ignore"):
        recall = np.where(tp + fn > 0, tp / (tp + fn), np.nan)
        precision = np.where(tp + fp > 0, tp / (tp + fp), np.nan)
        f1 = np.where(2 * tp + fp + fn > 0, 2 * tp / (2 * tp + fp + fn), np.nan)
    return {"threshold": th, "recall": recall, "precision": precision, "f1": f1}


def mean_probability(probs: Sequence[np.ndarray], true_labels: Sequence[np.ndarray]) -> dict[str, float]:
    """Mean predicted nucleus probability on true nucleus pixels and on true background pixels (pooled).

    A model trained with every unlabelled nucleus called background learns that a nucleus pixel is a
    nucleus only about ``fraction`` of the time: its probability there sits near the annotated fraction
    (0.3), below the 0.5 threshold, even when it ranks nuclei above background perfectly.

    Returns
    -------
    dict
        ``nuclei`` and ``background``: the mean probabilities (NaN for an empty class).
    """
    probs, true_labels = _check_lists(probs, true_labels)
    s_fg = n_fg = s_bg = n_bg = 0.0
    for p, t in zip(probs, true_labels, strict=True):
        p = np.asarray(p, dtype=np.float64)
        truth = check_labels(t, "true_labels") > 0
        if p.shape != truth.shape:
            raise ValueError(
                f"probs and true_labels: expected the same shape, got {p.shape} and {truth.shape}"
            )
        s_fg, n_fg = s_fg + p[truth].sum(), n_fg + truth.sum()
        s_bg, n_bg = s_bg + p[~truth].sum(), n_bg + (~truth).sum()
    return {
        "nuclei": float(s_fg / n_fg) if n_fg else math.nan,
        "background": float(s_bg / n_bg) if n_bg else math.nan,
    }
