r"""CNN stain transfer (Yuan & Suh 2018), chapter 2: training pairs, training, and a held-out test set.

The network (:class:`nucleikit.models.StainTransferNet`) learns one lab's style: it sees the lightness L of
a tile and predicts the chroma a*b* the target lab gives that structure. This module holds the steps the
chapter (and anyone normalizing to a new style) repeats:

====================================  ====================================================================
function                              what
====================================  ====================================================================
:func:`tissue_label`                  the tissue class of a region map (the class loss's label)
:func:`make_training_pool`            synthetic tiles in the target style, balanced over tissue types
:func:`pair_batches`                  random crops (L in, a*b* and tissue class out), augmented, for ``fit``
:func:`transfer_step`                 one step of the loss ``MSE(a*b*) + w CE(tissue)``
:func:`train_stain_transfer`          train (or load from the checkpoint cache) one network per style
:func:`train_options`                 the keyword arguments of :func:`train_stain_transfer` in settings
:func:`make_test_set`                 held-out tissue in other labs' styles, and its truth in the target's
:func:`glass_mask`                    the pixels without stain (lumen, glass) of a synthetic tile
:func:`score_normalizer`              colour metrics of a normalizer on a test set, one row per tile and style
====================================  ====================================================================

Conventions: images (H, W, 3) uint8 RGB; tissue classes index :data:`nucleikit.synth.TISSUE_TYPES`
(``tumour, stroma, lymphocyte, lumen``); a region map indexes :data:`nucleikit.synth.HE_REGIONS`.

References
----------
.. [1] E. Yuan, J. Suh, "Neural stain normalization and unsupervised classification of cell nuclei in
   histopathological breast cancer images", CS231n report, Stanford, 2018.
.. [2] S. Iizuka, E. Simo-Serra, H. Ishikawa, "Let there be color!", ACM TOG 35(4), 2016.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from . import losses, metrics, profiles, synth
from ._checks import check_positive, check_rgb, describe
from .models import StainTransferNet, rgb_to_lab_tensor, split_lab
from .train import History, TrainConfig, array_digest, fit

__all__ = [
    "TransferPool",
    "TransferTestSet",
    "glass_mask",
    "make_test_set",
    "make_training_pool",
    "pair_batches",
    "score_normalizer",
    "tissue_label",
    "train_options",
    "train_stain_transfer",
    "transfer_step",
]

#: For each tissue class (``synth.TISSUE_TYPES`` order), the region of ``synth.HE_REGIONS`` it stands for.
_TISSUE_REGION: tuple[int, ...] = tuple(
    synth.HE_REGIONS.index(r) for r in ("tumour", "stroma", "lymphoid", "background")
)
assert tuple(synth.TISSUE_TYPES) == ("tumour", "stroma", "lymphocyte", "lumen")  # the order above


# ================================================================================================ labels
def tissue_label(regions: np.ndarray) -> int:
    """Return the tissue class of a tile or crop: its largest compartment.

    Parameters
    ----------
    regions : ndarray of shape (H, W), int
        Region map, indices into :data:`nucleikit.synth.HE_REGIONS` (background, tumour, stroma,
        lymphoid).

    Returns
    -------
    int
        Index into :data:`nucleikit.synth.TISSUE_TYPES`: tumour 0, stroma 1, lymphocyte 2, lumen 3 (the
        background/glass compartment). Ties go to the lower index, as for ``truth.tissue_type``, so a whole
        tile's label equals ``TISSUE_TYPES.index(truth.tissue_type)``.
    """
    regions = np.asarray(regions)
    if regions.ndim != 2 or regions.size == 0:
        raise ValueError(f"regions: expected a non-empty region map of shape (H, W), got {describe(regions)}")
    if regions.dtype.kind not in "iu":
        raise TypeError(f"regions: expected integer region indices, got {describe(regions)}")
    if regions.min() < 0 or regions.max() >= len(synth.HE_REGIONS):
        raise ValueError(
            f"regions: expected indices into HE_REGIONS (0..{len(synth.HE_REGIONS) - 1}), "
            f"got values in [{regions.min()}, {regions.max()}]"
        )
    counts = np.bincount(regions.ravel().astype(np.int64), minlength=len(synth.HE_REGIONS))
    return int(np.argmax(counts[list(_TISSUE_REGION)]))


def _tissue_labels_torch(regions: torch.Tensor) -> torch.Tensor:
    """:func:`tissue_label` of a batch of region maps ``(B, h, w)`` -> ``(B,)`` int64."""
    n = len(synth.HE_REGIONS)
    counts = torch.nn.functional.one_hot(regions.flatten(1), n).sum(1)  # (B, n_regions)
    return counts[:, list(_TISSUE_REGION)].argmax(1)  # first maximum on ties, like np.argmax


# ========================================================================================= training data
@dataclass(frozen=True)
class TransferPool:
    """Synthetic tiles in the target style: what one stain-transfer network is trained on.

    Attributes
    ----------
    images : ndarray of shape (N, H, W, 3), uint8
        The tiles, each rendered in the target style with its own slide-to-slide stain jitter.
    regions : ndarray of shape (N, H, W), int8
        Region maps (indices into :data:`nucleikit.synth.HE_REGIONS`), for the crops' tissue labels.
    tissue : ndarray of shape (N,), int64
        Tile labels, indices into :data:`nucleikit.synth.TISSUE_TYPES`: each tile's largest compartment
        (:func:`tissue_label`), which on small tiles can differ from the type the generator was asked for.
    truths : list of nucleikit.synth.Truth
        Full truth of every tile (chapter 2 trains its downstream U-Net on the nuclei).
    style : str
        Name of the target style.
    params : dict
        How the pool was made (for the checkpoint key).
    """

    images: np.ndarray
    regions: np.ndarray
    tissue: np.ndarray
    truths: list = field(repr=False)
    style: str = synth.DEFAULT_HE_STYLE
    params: dict = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.images)

    @property
    def labels(self) -> np.ndarray:
        """True nucleus instances, ndarray of shape (N, H, W), int32."""
        return np.stack([t.labels.astype(np.int32) for t in self.truths])

    def describe(self) -> str:
        """One line: tiles, size, style, tiles per tissue type."""
        n, h, w = self.images.shape[:3]
        counts = np.bincount(self.tissue, minlength=len(synth.TISSUE_TYPES))
        mix = ", ".join(f"{name} {c}" for name, c in zip(synth.TISSUE_TYPES, counts, strict=True))
        return f"{n} tiles of {h}x{w} px in style {self.style} ({mix})"


def make_training_pool(
    n: int,
    *,
    style: str | synth.StainStyle = synth.DEFAULT_HE_STYLE,
    shape: tuple[int, int] = (192, 192),
    balanced: bool = True,
    seed: int = 0,
    **tile_kwargs: Any,
) -> TransferPool:
    """Generate the training tiles of a stain-transfer network: synthetic H&E in the target style.

    Parameters
    ----------
    n : int
        Number of tiles.
    style : str or StainStyle
        The target lab's style. Each tile gets the slide-to-slide stain jitter of its difficulty
        (``Difficulty.stain_jitter``): the network learns the lab, not one slide.
    shape : tuple of int
        Tile size (H, W); training crops are cut from the tiles.
    balanced : bool
        Cycle the dominant tissue over :data:`nucleikit.synth.TISSUE_TYPES` (tile ``i`` gets type
        ``i % 4``), so the class loss sees every class equally often; False draws it from the organ's mix.
    seed : int
        Tile ``i`` is made with ``np.random.default_rng([seed, 1, i])``; the test set
        (:func:`make_test_set`) uses ``[seed, 2, i]``, so the two never share tissue.
    **tile_kwargs
        Passed to :func:`nucleikit.synth.he_tile` (``organ``, ``difficulty``, ``mpp``, ``density``).

    Returns
    -------
    TransferPool
    """
    check_positive(n, "n", integer=True)
    if "tissue" in tile_kwargs:
        raise TypeError("make_training_pool: choose the tissue mix with balanced=, not tissue=")
    style_obj = synth.get_style(style)
    images, regions, tissue, truths = [], [], [], []
    for i in range(n):
        kind = synth.TISSUE_TYPES[i % len(synth.TISSUE_TYPES)] if balanced else None
        tile = synth.he_tile(
            tuple(shape), style=style_obj, tissue=kind, rng=np.random.default_rng([seed, 1, i]), **tile_kwargs
        )
        images.append(tile.image)
        regions.append(tile.truth.regions.astype(np.int8))
        tissue.append(tissue_label(tile.truth.regions))
        truths.append(tile.truth)
    params = {
        "n": n,
        "style": repr(style_obj) if isinstance(style, synth.StainStyle) else style,
        "shape": tuple(int(s) for s in shape),
        "balanced": balanced,
        "seed": seed,
        "tile_kwargs": {k: repr(v) for k, v in sorted(tile_kwargs.items())},
        "difficulty": repr(synth.get_difficulty(tile_kwargs.get("difficulty"))),
    }
    return TransferPool(
        images=np.stack(images),
        regions=np.stack(regions),
        tissue=np.asarray(tissue, dtype=np.int64),
        truths=truths,
        style=style_obj.name,
        params=params,
    )


def _dihedral(x: torch.Tensor, k: int, flip: bool) -> torch.Tensor:
    x = torch.rot90(x, k, (-2, -1))
    return torch.flip(x, (-1,)) if flip else x


def pair_batches(
    pool: TransferPool,
    *,
    crop: int = 224,
    batch_size: int = 64,
    lightness_jitter: float = 0.0,
    augment: bool = True,
    device: torch.device | str = "cpu",
) -> Callable[[int, torch.Generator], dict[str, torch.Tensor]]:
    """Make the ``batches(step, generator)`` function of :func:`nucleikit.train.fit` for stain transfer.

    Parameters
    ----------
    pool : TransferPool
        Tiles in the target style.
    crop : int
        Side of the random crops (the paper: 224); at most the tiles' side.
    batch_size : int
        Crops per batch (the paper: 64), drawn uniformly with replacement.
    lightness_jitter : float
        ``j``: the input lightness is raised to a random power ``g = exp(u)``, ``u ~ U(-j, j)``, per crop
        (``L' = 100 (L / 100) ** g``); the target chroma is left as it is. White stays white, tissue gets
        darker or lighter, as with more or less stain. 0 = off.
    augment : bool
        Apply one of the 8 rotations/flips (the dihedral group) to each crop.
    device : torch.device or str
        Where the batches go.

    Returns
    -------
    callable
        ``batches(step, generator) -> {"l": (B, 1, crop, crop), "ab": (B, 2, crop, crop), "tissue": (B,)}``:
        the scaled lightness (input, :func:`nucleikit.models.split_lab`), the scaled target chroma and
        each crop's tissue class (:func:`tissue_label` of the crop). The draw depends only on the
        generator.

    Notes
    -----
    Input and target come from the same image, as in the paper: the network learns which colour the
    target lab gives each structure. Converting to Lab happens once, here, not at every step.
    """
    if not isinstance(pool, TransferPool):
        raise TypeError(f"pool: expected a TransferPool (make_training_pool), got {describe(pool)}")
    check_positive(crop, "crop", integer=True)
    check_positive(batch_size, "batch_size", integer=True)
    check_positive(lightness_jitter, "lightness_jitter", allow_zero=True)
    n, h, w = pool.images.shape[:3]
    if crop > min(h, w):
        raise ValueError(f"crop: expected at most the tile side {min(h, w)}, got {crop}")
    device = torch.device(device)
    rgb = torch.from_numpy(pool.images).permute(0, 3, 1, 2).float() / 255.0  # (N, 3, H, W)
    l_all, ab_all = split_lab(rgb_to_lab_tensor(rgb))  # (N, 1, H, W), (N, 2, H, W)
    reg_all = torch.from_numpy(pool.regions.astype(np.int64))  # (N, H, W)

    def batches(step: int, generator: torch.Generator) -> dict[str, torch.Tensor]:
        pick = torch.randint(0, n, (batch_size,), generator=generator)
        rows = torch.randint(0, h - crop + 1, (batch_size,), generator=generator)
        cols = torch.randint(0, w - crop + 1, (batch_size,), generator=generator)
        rot = torch.randint(0, 4, (batch_size,), generator=generator)
        flip = torch.randint(0, 2, (batch_size,), generator=generator)
        gamma = torch.exp((torch.rand(batch_size, generator=generator) * 2 - 1) * lightness_jitter)
        ls, abs_, regs = [], [], []
        for b in range(batch_size):
            i, r, c = int(pick[b]), int(rows[b]), int(cols[b])
            sl = (slice(r, r + crop), slice(c, c + crop))
            lb, ab, rg = l_all[i][(slice(None), *sl)], ab_all[i][(slice(None), *sl)], reg_all[i][sl]
            if augment:
                k, f = int(rot[b]), bool(flip[b])
                lb, ab, rg = _dihedral(lb, k, f), _dihedral(ab, k, f), _dihedral(rg, k, f)
            if lightness_jitter > 0:
                lb = ((lb + 1.0) / 2.0).clamp(0.0, 1.0) ** gamma[b] * 2.0 - 1.0  # L/100 -> (L/100)**g
            ls.append(lb)
            abs_.append(ab)
            regs.append(rg)
        regions = torch.stack(regs)
        return {
            "l": torch.stack(ls).contiguous().to(device),
            "ab": torch.stack(abs_).contiguous().to(device),
            "tissue": _tissue_labels_torch(regions).to(device),
        }

    return batches


# ============================================================================================= training
def transfer_step(
    model: StainTransferNet, batch: dict[str, torch.Tensor], step: int, *, class_weight: float = 1.0 / 300.0
) -> tuple[torch.Tensor, dict[str, float]]:
    """One training step of the stain-transfer loss (the ``step_fn`` of :func:`nucleikit.train.fit`).

    Parameters
    ----------
    model : StainTransferNet
        The network.
    batch : dict
        ``l``, ``ab`` and ``tissue`` as :func:`pair_batches` makes them.
    step : int
        Step number (unused; part of the ``step_fn`` signature).
    class_weight : float
        ``w`` of :func:`nucleikit.losses.stain_transfer_loss` (0: the "MSE only" network).

    Returns
    -------
    loss : Tensor of shape ()
        ``MSE(a*b*) + w CE(tissue)``.
    logs : dict
        ``mse`` and ``ce`` (the cross-entropy is logged even when ``w = 0``) and ``accuracy`` of the
        tissue head on the batch.
    """
    out = model(batch["l"])
    loss = losses.stain_transfer_loss(
        out.ab, batch["ab"], out.class_logits, batch["tissue"], class_weight=class_weight
    )
    with torch.no_grad():
        mse = torch.nn.functional.mse_loss(out.ab, batch["ab"])
        ce = torch.nn.functional.cross_entropy(out.class_logits, batch["tissue"])
        acc = (out.class_logits.argmax(1) == batch["tissue"]).float().mean()
    return loss, {"mse": float(mse), "ce": float(ce), "accuracy": float(acc)}


def train_stain_transfer(
    pool: TransferPool,
    *,
    widths: Sequence[int] = (64, 128, 256),
    global_dim: int = 256,
    hidden_dim: int = 512,
    class_weight: float = 1.0 / 300.0,
    crop: int = 224,
    batch_size: int = 64,
    steps: int = 1000,
    optimizer: str = "adadelta",
    lr: float = 1.0,
    rho: float = 0.9,
    lightness_jitter: float = 0.0,
    seed: int = 0,
    name: str = "stain_transfer",
    device: torch.device | str = "cpu",
    cache: bool = True,
    callback: Callable[[int, History], None] | None = None,
    progress: bool = False,
) -> tuple[StainTransferNet, History]:
    """Train one stain-transfer network for a target style, or load the identical run from the cache.

    Parameters
    ----------
    pool : TransferPool
        Tiles in the target style (:func:`make_training_pool`).
    widths, global_dim, hidden_dim
        :class:`nucleikit.models.StainTransferNet` sizes (the paper: widths 64, 128, 256 and a 256-d
        global vector; the hidden layer of 512 is our default).
    class_weight : float
        ``w`` of the tissue-class cross-entropy (the paper: 1/300 to 1/30; 0 = MSE only).
    crop, batch_size, lightness_jitter
        The batches (:func:`pair_batches`; the paper: 224 px, batch 64).
    steps : int
        Optimiser steps (fixed: the result does not depend on the machine's speed).
    optimizer, lr, rho
        The paper: Adadelta, lr 1.0, rho 0.9 (eps 1e-6, :func:`nucleikit.train.make_optimizer`).
        ``"adam"`` with lr ~1e-3 converges in fewer steps (the quick profile). ``rho`` is also SGD's
        momentum.
    seed : int
        Seeds the initialisation and the batches.
    name : str
        Run name (checkpoint file name and part of its key).
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
    model : StainTransferNet
        The trained network, in ``eval()`` mode on ``device``.
    history : nucleikit.train.History
        Logged ``loss``, ``mse``, ``ce``, ``accuracy`` and ``lr``.
    """
    if not isinstance(pool, TransferPool):
        raise TypeError(f"pool: expected a TransferPool (make_training_pool), got {describe(pool)}")
    check_positive(steps, "steps", integer=True, allow_zero=True)
    check_positive(class_weight, "class_weight", allow_zero=True)
    batches = pair_batches(
        pool, crop=crop, batch_size=batch_size, lightness_jitter=lightness_jitter, device=device
    )
    torch.manual_seed(seed)
    model = StainTransferNet(
        widths=widths, global_dim=global_dim, hidden_dim=hidden_dim, n_classes=len(synth.TISSUE_TYPES)
    )
    config = TrainConfig(
        steps=steps,
        lr=lr,
        optimizer=optimizer,
        momentum=rho,
        seed=seed,
        log_every=max(1, min(10, steps // 20 or 1)),
    )
    key = (
        f"pool {pool.params} | data {array_digest(pool.images, pool.regions)} | crop {crop} "
        f"batch {batch_size} class_weight {class_weight!r} lightness_jitter {lightness_jitter!r}"
    )

    def step_fn(m: torch.nn.Module, batch: Any, step: int) -> tuple[torch.Tensor, dict[str, float]]:
        return transfer_step(m, batch, step, class_weight=class_weight)

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
    "global_dim",
    "hidden_dim",
    "class_weight",
    "crop",
    "batch_size",
    "steps",
    "optimizer",
    "lr",
    "rho",
    "lightness_jitter",
    "seed",
)


def train_options(settings: Any) -> dict[str, Any]:
    """Return the keyword arguments of :func:`train_stain_transfer` that a settings object holds.

    Parameters
    ----------
    settings : dataclass instance or mapping
        E.g. :class:`nucleikit.profiles.StainTransferSettings`; fields named like parameters of
        :func:`train_stain_transfer` are taken, the others ignored.

    Returns
    -------
    dict
        ``train_stain_transfer(pool, **train_options(cfg))``.
    """
    return profiles.pick(settings, _TRAIN_OPTIONS)


# ============================================================================================ test set
@dataclass(frozen=True)
class TransferTestSet:
    """Held-out tissue, each tile rendered in several source styles and, as the truth, in the target style.

    Attributes
    ----------
    sources : dict of str to ndarray of shape (N, H, W, 3), uint8
        For each source style, the N tiles in that style (each with its own stain jitter).
    targets : ndarray of shape (N, H, W, 3), uint8
        The same tissue rendered in the target style: what a perfect normalizer would return.
    truths : list of nucleikit.synth.Truth
        Full truth of every tile (nuclei for the downstream segmentation, stains for :func:`glass_mask`).
    target_style : str
        Name of the target style.
    params : dict
        How the set was made.
    """

    sources: dict
    targets: np.ndarray
    truths: list = field(repr=False)
    target_style: str = synth.DEFAULT_HE_STYLE
    params: dict = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.targets)

    @property
    def styles(self) -> tuple[str, ...]:
        """The source styles."""
        return tuple(self.sources)

    @property
    def labels(self) -> np.ndarray:
        """True nucleus instances, ndarray of shape (N, H, W), int32."""
        return np.stack([t.labels.astype(np.int32) for t in self.truths])

    def describe(self) -> str:
        """One line: tiles, size, styles."""
        n, h, w = self.targets.shape[:3]
        kinds = ", ".join(sorted({t.tissue_type for t in self.truths}))
        return (
            f"{n} tiles of {h}x{w} px ({kinds}), each in {len(self.sources)} source styles "
            f"({', '.join(self.sources)}) and in the target style {self.target_style}"
        )


def make_test_set(
    n: int,
    *,
    styles: Sequence[str] = ("he_lab_b", "he_lab_c", "he_lab_d"),
    target_style: str = synth.DEFAULT_HE_STYLE,
    shape: tuple[int, int] = (256, 256),
    jitter: float = 1.0,
    tissue: str | None = None,
    seed: int = 0,
    **tile_kwargs: Any,
) -> TransferTestSet:
    """Generate held-out tissue rendered in other labs' styles plus its true rendering in the target style.

    Parameters
    ----------
    n : int
        Number of tissue tiles.
    styles : sequence of str
        Source styles (names of :data:`nucleikit.synth.STYLES`); each tile is rendered once in each, with
        its own stain jitter.
    target_style : str
        The style a normalizer should reach; ``targets`` is the same tissue rendered in it (without
        jitter: the lab's canonical look).
    shape : tuple of int
        Tile size (H, W).
    jitter : float
        Slide-to-slide stain variation of the source renderings (:func:`nucleikit.synth.jitter_style`).
    tissue : str, optional
        Dominant tissue of every tile (``"lumen"`` for the white-background test); None draws it from
        the organ's mix.
    seed : int
        Tile ``i`` uses ``np.random.default_rng([seed, 2, i])`` (never the training pool's tissue).
    **tile_kwargs
        Passed to :func:`nucleikit.synth.he_tile` (``organ``, ``difficulty``, ``mpp``, ``density``).

    Returns
    -------
    TransferTestSet
    """
    check_positive(n, "n", integer=True)
    check_positive(jitter, "jitter", allow_zero=True)
    styles = tuple(styles)
    if not styles:
        raise ValueError("styles: expected at least one source style, got none")
    for s in (*styles, target_style):
        if synth.get_style(s).kind != "he":
            raise ValueError(f"styles: expected H&E styles, got {s!r} ({synth.get_style(s).kind})")
    sources: dict[str, list[np.ndarray]] = {s: [] for s in styles}
    targets, truths = [], []
    for i in range(n):
        rng = np.random.default_rng([seed, 2, i])
        tile = synth.he_tile(tuple(shape), style=target_style, tissue=tissue, rng=rng, **tile_kwargs)
        difficulty = tile_kwargs.get("difficulty")
        targets.append(synth.render(tile.truth, target_style, difficulty=difficulty, rng=rng))
        for s in styles:
            sources[s].append(
                synth.render(
                    tile.truth, synth.jitter_style(s, jitter, rng=rng), difficulty=difficulty, rng=rng
                )
            )
        truths.append(tile.truth)
    params = {
        "n": n,
        "styles": styles,
        "target_style": target_style,
        "shape": tuple(int(s) for s in shape),
        "jitter": jitter,
        "tissue": tissue,
        "seed": seed,
        "tile_kwargs": {k: repr(v) for k, v in sorted(tile_kwargs.items())},
    }
    return TransferTestSet(
        sources={s: np.stack(v) for s, v in sources.items()},
        targets=np.stack(targets),
        truths=truths,
        target_style=target_style,
        params=params,
    )


# ============================================================================================ evaluation
def glass_mask(truth: synth.Truth, *, max_concentration: float = 0.05, erode: int = 2) -> np.ndarray:
    """Return the unstained pixels of a synthetic tile: lumen and glass, where a normalizer must keep white.

    Parameters
    ----------
    truth : nucleikit.synth.Truth
        The tile's truth.
    max_concentration : float
        A pixel is unstained when the sum of its stain concentrations is below this.
    erode : int
        Erode the mask by this many pixels (drops the blurred rims of tissue).

    Returns
    -------
    ndarray of shape (H, W), bool
    """
    if not isinstance(truth, synth.Truth):
        raise TypeError(f"truth: expected a nucleikit.synth.Truth, got {describe(truth)}")
    check_positive(max_concentration, "max_concentration")
    check_positive(erode, "erode", integer=True, allow_zero=True)
    mask = truth.concentrations.sum(-1) < max_concentration
    if erode:
        from scipy import ndimage as ndi

        mask = ndi.binary_erosion(mask, iterations=erode)
    return mask


def score_normalizer(
    normalize: Callable[[np.ndarray], np.ndarray],
    test_set: TransferTestSet,
    *,
    styles: Sequence[str] | None = None,
    bins: int = 16,
    glass: bool = False,
):
    """Score a normalizer on a test set: every source tile normalized and compared with its true rendering.

    Parameters
    ----------
    normalize : callable
        ``normalize(image) -> image``, (H, W, 3) uint8 in and out (e.g. ``norm.transform``, or
        ``lambda im: nk.models.normalize_image(net, im)``; the identity for "no normalization").
    test_set : TransferTestSet
        Held-out tiles (:func:`make_test_set`).
    styles : sequence of str, optional
        Source styles to score (default: all of the set's).
    bins : int
        Histogram bins per channel of the histogram metrics.
    glass : bool
        Also score the unstained pixels (:func:`glass_mask`): ``glass_euclidean`` (RGB distance to the
        truth there) and ``glass_delta_e`` (CIELAB distance), NaN for a tile without such pixels.

    Returns
    -------
    pandas.DataFrame
        One row per (style, tile): ``style``, ``tile``, ``euclidean``, ``hist_corr``, ``hellinger``,
        ``psnr``, ``ssim`` (:func:`nucleikit.metrics.normalization_metrics` against the true rendering,
        pixel-aligned), and the glass columns if asked.
    """
    import pandas as pd

    if not isinstance(test_set, TransferTestSet):
        raise TypeError(f"test_set: expected a TransferTestSet (make_test_set), got {describe(test_set)}")
    styles = test_set.styles if styles is None else tuple(styles)
    unknown = [s for s in styles if s not in test_set.sources]
    if unknown:
        raise ValueError(f"styles: {unknown} are not in the test set's styles {test_set.styles}")
    rows = []
    for s in styles:
        for i, (src, target) in enumerate(zip(test_set.sources[s], test_set.targets, strict=True)):
            out = check_rgb(normalize(src), "normalize(image)")
            if out.shape != src.shape:
                raise ValueError(f"normalize: expected an image of shape {src.shape}, got {out.shape}")
            row = {"style": s, "tile": i, **metrics.normalization_metrics(out, target, bins=bins)}
            if glass:
                m = glass_mask(test_set.truths[i])
                row["glass_euclidean"] = (
                    metrics.euclidean_distance(out, target, mask=m) if m.any() else np.nan
                )
                row["glass_delta_e"] = (
                    metrics.euclidean_distance(out, target, space="lab", mask=m) if m.any() else np.nan
                )
            rows.append(row)
    return pd.DataFrame(rows)
