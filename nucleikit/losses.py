"""Losses shared by the chapters, and the weight maps they need.

======================================  ==================================================  =========
function                                what                                                chapter
======================================  ==================================================  =========
:func:`distance_weights`                trust near annotated nuclei (Sayin Mercadier)       3
:func:`kmeans_background`               k-means background of the deconvolved image         3
:func:`background_weight_map`           ``max(m, lambda * eroded background)``              3
:func:`weighted_background_loss`        Eq. 5 without the L2 term                           3
:func:`l2_penalty`                      ``gamma * sum ||w||^2`` over conv weights           3
:func:`proximity_mse`                   KiNet Eq. 2, weighted MSE of proximity maps         7
:func:`class_correlation_penalty`       KiNet Eq. 3, overlap of different classes' maps     7
:func:`roi_cross_entropy`               KiNet Eq. 4, on weakly annotated pixels only        7
:func:`kinet_loss`                      KiNet Eq. 5, with the nucleus-label indicator       7
:func:`stain_transfer_loss`             chroma MSE + w * tissue-class cross-entropy         2
======================================  ==================================================  =========

The weight-map functions take NumPy arrays and return float32 arrays; the losses take torch tensors,
return a scalar tensor on the input's device and are differentiable.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from scipy import ndimage as ndi
from torch import nn

from ._checks import check_positive, check_rgb, describe

__all__ = [
    "background_weight_map",
    "class_correlation_penalty",
    "distance_weights",
    "kinet_loss",
    "kmeans_background",
    "l2_penalty",
    "proximity_mse",
    "roi_cross_entropy",
    "stain_transfer_loss",
    "weighted_background_loss",
]


# ============================================================ Sayin Mercadier et al.: partial annotations
def _check_mask(mask: Any, name: str) -> np.ndarray:
    mask = np.asarray(mask)
    if mask.ndim != 2:
        raise ValueError(f"{name}: expected a mask or label image of shape (H, W), got {describe(mask)}")
    if mask.dtype.kind not in "biuf":
        raise TypeError(f"{name}: expected a boolean or integer mask, got {describe(mask)}")
    return mask > 0


def distance_weights(annotated_mask: np.ndarray, *, alpha: float = 5.0, beta: float = 0.1) -> np.ndarray:
    """Trust of each pixel's label from its distance to the nearest annotated pixel.

    Parameters
    ----------
    annotated_mask : ndarray of shape (H, W)
        Annotated nuclei: bool, 0/1, or a label image (any value > 0 is annotated).
    alpha : float
        Distance in pixels up to which an unlabelled pixel is fully trusted as background.
    beta : float
        Decay rate per pixel beyond ``alpha``.

    Returns
    -------
    ndarray of shape (H, W) and dtype float32
        ``m = 1`` where ``d <= alpha`` and ``exp(-beta (d - alpha))`` beyond, with ``d`` the Euclidean
        distance (:func:`scipy.ndimage.distance_transform_edt`) to the nearest annotated pixel (0 on
        annotated pixels). An image with no annotated pixel has ``d = inf`` everywhere, so ``m = 0``.

    Notes
    -----
    Sayin Mercadier et al. (ISBI 2019), Sec. 2.2: in a partially annotated image, an unlabelled pixel
    close to an annotated nucleus is probably background (annotators label every nucleus in the region
    they work on), while far away it may be an unlabelled nucleus. The paper gives no values; alpha = 5 px
    and beta = 0.1 / px are our defaults.
    """
    mask = _check_mask(annotated_mask, "annotated_mask")
    check_positive(alpha, "alpha", allow_zero=True)
    check_positive(beta, "beta", allow_zero=True)
    if not mask.any():
        return np.zeros(mask.shape, dtype=np.float32)
    d = ndi.distance_transform_edt(~mask)  # distance to the nearest annotated (True) pixel
    return np.where(d <= alpha, 1.0, np.exp(-beta * (d - alpha))).astype(np.float32)


def kmeans_background(
    image: np.ndarray,
    *,
    stain_matrix: np.ndarray | None = None,
    erosion_radius: int = 5,
    max_samples: int = 100_000,
    rng: np.random.Generator | int | None = None,
) -> np.ndarray:
    """Background mask of an H&E image: the larger of two k-means clusters on its H and E channels, eroded.

    Parameters
    ----------
    image : ndarray of shape (H, W, 3)
        RGB image, uint8 or float in [0, 1].
    stain_matrix : ndarray of shape (2, 3), optional
        Stain vectors (rows H, E) for :func:`nucleikit.stain.deconvolve`; default
        :data:`nucleikit.stain.RUIFROK_HE`.
    erosion_radius : int
        Radius of the disk that erodes the background cluster (0: no erosion). Erosion removes the
        cluster's border, where unlabelled nuclei and their halos are mixed in.
    max_samples : int
        k-means is fitted on at most this many randomly chosen pixels, then every pixel is assigned to
        the nearest centre (the fit on a 2000x2000 image would otherwise take seconds).
    rng : numpy.random.Generator or int, optional
        Seeds the subsampling and k-means; the same seed gives the same mask.

    Returns
    -------
    ndarray of shape (H, W) and dtype bool
        True on trusted background.

    Notes
    -----
    Sayin Mercadier et al. (ISBI 2019), Sec. 2.2: colour deconvolution, k-means with k = 2 on the
    hematoxylin and eosin concentrations, the larger cluster taken as background, eroded by a disk.
    Erosion is computed with zeros beyond the image border treated as background (``border_value=1``),
    so the image border itself is not eroded.
    """
    from sklearn.cluster import KMeans

    from . import stain

    image = check_rgb(image)
    check_positive(erosion_radius, "erosion_radius", integer=True, allow_zero=True)
    check_positive(max_samples, "max_samples", integer=True)
    rng = np.random.default_rng(rng)
    conc = stain.deconvolve(image, stain.RUIFROK_HE if stain_matrix is None else stain_matrix)
    feats = np.asarray(conc, dtype=np.float64).reshape(-1, conc.shape[-1])  # (H*W, 2)
    n = feats.shape[0]
    sample = feats if n <= max_samples else feats[rng.choice(n, size=max_samples, replace=False)]
    km = KMeans(n_clusters=2, n_init=3, random_state=int(rng.integers(2**31 - 1)))
    km.fit(sample)
    labels = km.predict(feats)
    counts = np.bincount(labels, minlength=2)
    background = (labels == int(np.argmax(counts))).reshape(image.shape[:2])
    if erosion_radius > 0:
        from skimage.morphology import disk

        background = ndi.binary_erosion(background, structure=disk(erosion_radius), border_value=1)
    return background


def background_weight_map(
    annotated_mask: np.ndarray,
    image: np.ndarray,
    *,
    alpha: float = 5.0,
    beta: float = 0.1,
    lam: float = 0.5,
    erosion_radius: int = 5,
    stain_matrix: np.ndarray | None = None,
    rng: np.random.Generator | int | None = None,
) -> np.ndarray:
    """Weight of each unlabelled pixel's background label: ``m_hat = max(m, lam * eroded background)``.

    Parameters
    ----------
    annotated_mask : ndarray of shape (H, W)
        Annotated nuclei (bool, 0/1 or labels).
    image : ndarray of shape (H, W, 3)
        The RGB image, for :func:`kmeans_background`.
    alpha, beta : float
        See :func:`distance_weights`.
    lam : float
        Weight given to the k-means background far from annotations (0.5 in the paper's Fig. 2).
    erosion_radius : int
        See :func:`kmeans_background`.
    stain_matrix : ndarray of shape (2, 3), optional
        See :func:`kmeans_background`.
    rng : numpy.random.Generator or int, optional
        Seeds the k-means.

    Returns
    -------
    ndarray of shape (H, W) and dtype float32
        ``max(m, lam * b_eroded)`` in [0, 1]. On annotated pixels ``m = 1`` (the loss uses weight 1 for
        nuclei anyway).

    Notes
    -----
    The paper writes ``m_hat = m (+) lambda (b (-) c)`` with (-) the erosion by the disk ``c``; we read
    (+) as the pixel-wise maximum.
    """
    mask = _check_mask(annotated_mask, "annotated_mask")
    image = check_rgb(image)
    if image.shape[:2] != mask.shape:
        raise ValueError(
            f"annotated_mask and image: expected the same height and width, got {mask.shape} and "
            f"{image.shape[:2]}"
        )
    lam = float(check_positive(lam, "lam", allow_zero=True))
    m = distance_weights(mask, alpha=alpha, beta=beta)
    bg = kmeans_background(image, stain_matrix=stain_matrix, erosion_radius=erosion_radius, rng=rng)
    return np.maximum(m, np.float32(lam) * bg.astype(np.float32))


def _check_logits(logits: Any, name: str, channels: int | None = None) -> torch.Tensor:
    if not isinstance(logits, torch.Tensor):
        raise TypeError(f"{name}: expected a torch tensor of shape (B, C, H, W), got {describe(logits)}")
    if logits.ndim != 4 or (channels is not None and logits.shape[1] != channels):
        want = f"(B, {channels}, H, W)" if channels is not None else "(B, C, H, W)"
        raise ValueError(f"{name}: expected a tensor of shape {want}, got shape {tuple(logits.shape)}")
    if not logits.is_floating_point():
        raise TypeError(f"{name}: expected a floating-point tensor, got dtype {logits.dtype}")
    return logits


def _as_bhw(x: Any, ref: torch.Tensor, name: str, dtype: torch.dtype | None = None) -> torch.Tensor:
    """Return a (B, H, W) tensor on ``ref``'s device from a tensor or array (B, H, W) or (B, 1, H, W)."""
    t = torch.as_tensor(x, device=ref.device)
    if t.ndim == 4 and t.shape[1] == 1:
        t = t[:, 0]
    want = (ref.shape[0], *ref.shape[2:])
    if tuple(t.shape) != want:
        raise ValueError(f"{name}: expected shape {want} (or with a channel of 1), got {tuple(t.shape)}")
    return t.to(dtype) if dtype is not None else t


def weighted_background_loss(
    logits: torch.Tensor, annotated_mask: torch.Tensor, weights: torch.Tensor
) -> torch.Tensor:
    """Negative log-likelihood of Sayin Mercadier et al.'s Eq. 5 (without the L2 term).

    Parameters
    ----------
    logits : Tensor of shape (B, 2, H, W)
        Network output; channel 0 = background, channel 1 = foreground (as :class:`nucleikit.models.UNet`).
    annotated_mask : Tensor or ndarray of shape (B, H, W) or (B, 1, H, W)
        ``y``: annotated nuclei, bool, 0/1 or instance labels (any value > 0 counts as 1).
    weights : Tensor or ndarray of shape (B, H, W) or (B, 1, H, W)
        ``m_hat`` from :func:`background_weight_map` (all ones gives the naive loss that treats every
        unlabelled pixel as background).

    Returns
    -------
    Tensor of shape ()
        ``-(1 / (B H W)) sum_b sum_ij [ y log p_fg + m_hat (1 - y) log p_bg ]``.

    Notes
    -----
    Eq. 5: ``L = sum y log y_hat_fg + m_hat (1 - y) log y_hat_bg + gamma ||w||^2``, written as a
    log-likelihood; we minimise its negative. The sum is normalised per pixel (divided by H W, and
    averaged over the batch) so that the learning rate does not depend on the tile size; the L2 term is
    :func:`l2_penalty`, added by the caller.
    """
    logits = _check_logits(logits, "logits", channels=2)
    y = (_as_bhw(annotated_mask, logits, "annotated_mask") > 0).to(logits.dtype)  # labels -> 0/1
    m = _as_bhw(weights, logits, "weights", logits.dtype)
    logp = F.log_softmax(logits, dim=1)  # (B, 2, H, W)
    ll = y * logp[:, 1] + m * (1.0 - y) * logp[:, 0]
    return -ll.mean()


def l2_penalty(model: nn.Module, gamma: float = 1e-5) -> torch.Tensor:
    """``gamma * sum ||w||^2`` over the weights of every (transposed) convolution in ``model``.

    Biases, batch-norm parameters and linear layers are left out. Returns a scalar on the model's device.
    """
    check_positive(gamma, "gamma", allow_zero=True)
    convs = [m.weight for m in model.modules() if isinstance(m, nn.modules.conv._ConvNd)]
    if not convs:
        raise ValueError(f"model: expected at least one convolution, got {type(model).__name__} without any")
    return gamma * sum(w.pow(2).sum() for w in convs)


# ============================================================================================= KiNet
def proximity_mse(
    pred: torch.Tensor, target: torch.Tensor, *, lam: float = 5.0, reduction: str = "mean"
) -> torch.Tensor:
    """Weighted MSE of proximity maps (Xing et al., Eq. 2).

    Parameters
    ----------
    pred, target : Tensor of shape (B, S, H, W)
        Predicted and target proximity maps, one channel per class ``s``.
    lam : float
        ``lambda``: weight of the map's mean, which keeps the loss from ignoring the (few) non-zero pixels.
    reduction : {"mean", "none"}
        ``"none"`` returns one value per image, shape ``(B,)``.

    Returns
    -------
    Tensor of shape () or (B,)
        ``(1 / (H W)) * 1/2 sum_s sum_ij (y + lam * mean(y_s)) (y_hat - y)^2`` per image, averaged over the
        batch for ``"mean"``. ``mean(y_s)`` is the mean of class ``s``'s target map in that image.

    Notes
    -----
    Eq. 2 writes a sum over pixels. With a sum the loss grows with the tile area (40,000 terms at 200 px),
    and in the joint loss (Eq. 5) ``gamma = 25`` would make the ROI term (a per-pixel mean) vanish. We
    divide by the number of pixels ``H W`` (the sum over classes stays), as the authors' code also does
    (their code takes the mean of ``w (y_hat - y)^2``, without the 1/2).
    With ``lam = 0`` the weights are 0 wherever ``y = 0``, so a network predicting a constant 1 pays
    almost nothing; the paper's Fig. 9 shows training then fails.
    """
    pred = _check_logits(pred, "pred")
    if not isinstance(target, torch.Tensor) or target.shape != pred.shape:
        raise ValueError(f"target: expected a tensor of shape {tuple(pred.shape)}, got {describe(target)}")
    check_positive(lam, "lam", allow_zero=True)
    if reduction not in ("mean", "none"):
        raise ValueError(f"reduction: expected 'mean' or 'none', got {reduction!r}")
    target = target.to(pred.dtype)
    w = target + lam * target.mean(dim=(-2, -1), keepdim=True)  # (B, S, H, W)
    per_image = 0.5 * (w * (pred - target) ** 2).sum(dim=1).mean(dim=(-2, -1))  # (B,)
    return per_image.mean() if reduction == "mean" else per_image


def class_correlation_penalty(pred: torch.Tensor, *, reduction: str = "mean") -> torch.Tensor:
    """Overlap between the proximity maps of different classes (Xing et al., Eq. 3).

    Parameters
    ----------
    pred : Tensor of shape (B, S, H, W)
        Predicted proximity maps.
    reduction : {"mean", "none"}
        ``"none"`` returns one value per image, shape ``(B,)``.

    Returns
    -------
    Tensor of shape () or (B,)
        ``(1 / (H W)) sum_{s < t} <h_s+, h_t+>`` per image (averaged over the batch for ``"mean"``), where
        ``h+ = max(h, 0)`` and ``<., .>`` is the sum over pixels of the product.

    Notes
    -----
    A nucleus belongs to one class, so the maps of two classes should not both be high at a pixel. The
    penalty is normalised by ``H W`` like :func:`proximity_mse`, so that ``eta`` relates the two terms as in
    the paper. We clamp the maps at 0: our maps are linear, and without the clamp the product could be made
    arbitrarily negative (one map positive, the other negative), an unbounded "reward". Each unordered pair
    of classes counts once.
    """
    pred = _check_logits(pred, "pred")
    if reduction not in ("mean", "none"):
        raise ValueError(f"reduction: expected 'mean' or 'none', got {reduction!r}")
    h = pred.clamp(min=0.0)
    s = h.sum(dim=1)  # (B, H, W)
    # sum_{s<t} h_s h_t = ((sum_s h_s)^2 - sum_s h_s^2) / 2
    pairs = 0.5 * (s**2 - (h**2).sum(dim=1))
    per_image = pairs.mean(dim=(-2, -1))  # (B,)
    return per_image.mean() if reduction == "mean" else per_image


def roi_cross_entropy(
    logits: torch.Tensor, roi_labels: torch.Tensor, *, reduction: str = "mean", normalize: str = "labelled"
) -> torch.Tensor:
    """Cross-entropy of the ROI branch on weakly annotated pixels only (Xing et al., Eq. 4).

    Parameters
    ----------
    logits : Tensor of shape (B, 2, H, W)
        ROI logits; channel 0 = non-tumour, 1 = tumour.
    roi_labels : Tensor of shape (B, H, W)
        Integer labels: 0 non-tumour, 1 tumour, -1 unlabelled (ignored).
    reduction : {"mean", "none"}
        ``"mean"``: one value for the batch; ``"none"``: one value per image.
    normalize : {"labelled", "all"}
        Divide the sum of the cross-entropy over labelled pixels by the number of *labelled* pixels (the
        mean over labelled pixels, pooled over the batch for ``"mean"``), or by the number of *all* pixels
        ``H W`` per image (the paper's sum, per pixel; :func:`kinet_loss` uses this so that ``gamma``
        weighs two sums divided by the same number).

    Returns
    -------
    Tensor of shape () or (B,)
        0 (still connected to the graph) where no pixel is labelled.
    """
    logits = _check_logits(logits, "logits", channels=2)
    labels = _as_bhw(roi_labels, logits, "roi_labels").long()
    if labels.numel() and (labels.min() < -1 or labels.max() > 1):
        raise ValueError(
            f"roi_labels: expected values in {{-1, 0, 1}} (-1 = unlabelled), got range "
            f"[{int(labels.min())}, {int(labels.max())}]"
        )
    if reduction not in ("mean", "none"):
        raise ValueError(f"reduction: expected 'mean' or 'none', got {reduction!r}")
    if normalize not in ("labelled", "all"):
        raise ValueError(f"normalize: expected 'labelled' or 'all', got {normalize!r}")
    ce = F.cross_entropy(logits, labels, ignore_index=-1, reduction="none")  # (B, H, W), 0 where ignored
    if normalize == "all":
        per_image = ce.mean(dim=(-2, -1))  # (B,)
        return per_image.mean() if reduction == "mean" else per_image
    valid = (labels >= 0).to(logits.dtype)
    if reduction == "mean":
        return ce.sum() / valid.sum().clamp(min=1.0)
    return ce.sum(dim=(-2, -1)) / valid.sum(dim=(-2, -1)).clamp(min=1.0)


def _get(out: Any, name: str, index: int) -> Any:
    if isinstance(out, Mapping):
        return out.get(name)
    if hasattr(out, name):
        return getattr(out, name)
    if isinstance(out, (tuple, list)):
        return out[index] if index < len(out) else None
    if index == 0 and isinstance(out, torch.Tensor):
        return out
    return None


def kinet_loss(
    out: Any,
    target_maps: torch.Tensor,
    roi_labels: torch.Tensor | None,
    has_nuclei: torch.Tensor,
    *,
    lam: float = 5.0,
    gamma: float = 25.0,
    eta: float = 1e-6,
    use_correlation: bool = True,
    return_terms: bool = False,
) -> torch.Tensor | tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Compute the joint KiNet loss (Xing et al., Eq. 5) with the indicator for region-only images.

    Parameters
    ----------
    out : KiNetOutput, dict or tuple
        ``proximity (B, S, H, W)`` and ``roi (B, 2, H, W)`` (``roi`` None: no ROI term). A bare tensor is
        taken as the proximity maps.
    target_maps : Tensor of shape (B, S, H, W)
        Target proximity maps (anything, e.g. zeros, for images without nucleus labels).
    roi_labels : Tensor of shape (B, H, W) or None
        0 non-tumour, 1 tumour, -1 unlabelled; None skips the ROI term.
    has_nuclei : Tensor of shape (B,)
        The indicator: True for images with nucleus labels. Images without them contribute only the ROI
        term.
    lam : float
        ``lambda`` of :func:`proximity_mse` (5).
    gamma : float
        Weight of the nucleus term against the ROI term (25).
    eta : float
        Weight of :func:`class_correlation_penalty` (1e-6).
    use_correlation : bool
        Include the correlation term; the paper switches it on only after the first 10,000 iterations,
        so a training loop passes ``use_correlation=step >= warmup``.
    return_terms : bool
        Also return the detached terms ``{"proximity", "correlation", "roi"}`` (batch means) for logging.

    Returns
    -------
    loss : Tensor of shape ()
        ``(1/B) sum_b [ 1_b * gamma * (L_mse,b + eta * L_corr,b) + L_roi,b ]``.
    terms : dict of str to Tensor, optional
        When ``return_terms``.

    Notes
    -----
    Eq. 5: ``L = sum_n [ 1(n has nucleus labels) gamma L_n ] + L_roi`` with ``L_n`` = Eq. 2 + eta Eq. 3.
    Eq. 2, 3 and 4 are sums over pixels; every term here is that sum divided by the number of pixels
    ``H W`` of the image (:func:`proximity_mse`, :func:`class_correlation_penalty`, and
    :func:`roi_cross_entropy` with ``normalize="all"``: the cross-entropy summed over the labelled pixels,
    divided by all pixels), so ``gamma`` and ``eta`` weigh the terms exactly as in the paper. Per-image
    terms are averaged over the *whole* batch (divided by B, not by the number of labelled images), so an
    image without nucleus labels contributes exactly 0 to the nucleus term, as the indicator says.

    Magnitudes: the proximity term is small (weights ``y + lam * mean(y)`` are mostly ~0.1), about 1e-3 per
    pixel after a few hundred steps, while the ROI term starts at ``log 2`` times the labelled fraction.
    The public code multiplies the targets by 5, which multiplies the MSE by 25.
    """
    proximity = _get(out, "proximity", 0)
    roi = _get(out, "roi", 1)
    proximity = _check_logits(proximity, "out.proximity")
    ind = torch.as_tensor(has_nuclei, device=proximity.device)
    if ind.shape != (proximity.shape[0],):
        raise ValueError(f"has_nuclei: expected shape ({proximity.shape[0]},), got {tuple(ind.shape)}")
    ind = ind.to(proximity.dtype)
    mse = proximity_mse(proximity, target_maps, lam=lam, reduction="none")  # (B,)
    per_image = mse
    corr = torch.zeros_like(mse)
    if use_correlation and eta != 0:
        corr = class_correlation_penalty(proximity, reduction="none")
        per_image = mse + eta * corr
    nucleus = gamma * (ind * per_image).mean()
    roi_term = proximity.new_zeros(())
    if roi is not None and roi_labels is not None:
        roi_term = roi_cross_entropy(roi, roi_labels, normalize="all")
    total = nucleus + roi_term
    if not return_terms:
        return total
    n = ind.sum().clamp(min=1.0)
    terms = {
        "proximity": ((ind * mse).sum() / n).detach(),
        "correlation": ((ind * corr).sum() / n).detach(),
        "roi": roi_term.detach(),
    }
    return total, terms


# ============================================================================== stain transfer (chapter 2)
def stain_transfer_loss(
    pred_ab: torch.Tensor,
    target_ab: torch.Tensor,
    class_logits: torch.Tensor,
    class_labels: torch.Tensor,
    *,
    class_weight: float = 1.0 / 300.0,
) -> torch.Tensor:
    """Pixel MSE on the chroma plus a weighted tissue-class cross-entropy (Yuan & Suh; Iizuka et al.).

    Parameters
    ----------
    pred_ab, target_ab : Tensor of shape (B, 2, H, W)
        Predicted and target ``(a*, b*) / 128`` (see :func:`nucleikit.models.split_lab`).
    class_logits : Tensor of shape (B, n_classes)
        Output of the global branch's class head.
    class_labels : Tensor of shape (B,)
        Tissue class indices.
    class_weight : float
        ``w``; the paper uses 1/300 to 1/30 (Iizuka: 1/300). 0 gives the "MSE only" network.

    Returns
    -------
    Tensor of shape ()
        ``mean((pred_ab - target_ab)^2) + w * CE(class_logits, class_labels)``.
    """
    pred_ab = _check_logits(pred_ab, "pred_ab", channels=2)
    if not isinstance(target_ab, torch.Tensor) or target_ab.shape != pred_ab.shape:
        raise ValueError(
            f"target_ab: expected a tensor of shape {tuple(pred_ab.shape)}, got {describe(target_ab)}"
        )
    if (
        not isinstance(class_logits, torch.Tensor)
        or class_logits.ndim != 2
        or class_logits.shape[0] != pred_ab.shape[0]
    ):
        raise ValueError(
            f"class_logits: expected a tensor of shape ({pred_ab.shape[0]}, n_classes), "
            f"got {describe(class_logits)}"
        )
    check_positive(class_weight, "class_weight", allow_zero=True)
    labels = torch.as_tensor(class_labels, device=class_logits.device).long()
    mse = F.mse_loss(pred_ab, target_ab.to(pred_ab.dtype))
    if class_weight == 0:
        return mse
    return mse + class_weight * F.cross_entropy(class_logits, labels)
