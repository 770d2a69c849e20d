"""Run profiles: typed per-chapter settings for ``quick`` (CPU, minutes) and ``full`` (GPU, paper scale).

Every chapter notebook starts with a papermill ``parameters`` cell holding ``profile = "quick"``, and the
next cell resolves it::

    cfg = nk.profiles.resolve("03_segmentation", profile, globals())

Any field of the chapter's settings class is a *knob*: define it in the parameters cell, or pass it to a
rerun (``python -m nucleikit run 3 -p steps=200``), and it overrides that single setting. An unknown profile
or an unknown knob stops the chapter at once with an error listing the valid names.

The settings classes below are the one place where a chapter's sizes, budgets and paper hyperparameters
live; notebooks read them, never re-type them.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = [
    "CHAPTERS",
    "PROFILES",
    "Chapter",
    "Settings",
    "find_chapter",
    "get",
    "knob_names",
    "pick",
    "resolve",
]

PROFILES: tuple[str, ...] = ("quick", "full")


# --------------------------------------------------------------------------------------------- settings
@dataclass(frozen=True)
class Settings:
    """Settings shared by every chapter.

    Attributes
    ----------
    seed : int
        Seed for every random number generator the chapter creates.
    num_threads : int
        Torch / BLAS threads (1 in CI: OpenMP spin-waits when both cores are busy).
    device : str
        ``"auto"`` (cuda -> mps -> cpu), ``"cpu"``, ``"cuda"`` or ``"mps"``.
    """

    seed: int = 0
    num_threads: int = 1
    device: str = "auto"


@dataclass(frozen=True)
class DataSettings(Settings):
    """Chapter 0: light, stains and data.

    Attributes
    ----------
    tile : int
        Side of the synthetic tiles in pixels (at ``mpp`` = 0.5).
    n_val : int
        Tiles on which the LoG threshold is chosen (full: 8).
    n_test : int
        Tiles on which the LoG baseline and the crop classifier are scored (full: 32).
    n_crop_tiles : int
        Tiles whose nucleus crops train the appearance-only classifier (full: 200).
    crop_size : int
        Side of the nucleus crops in pixels.
    crop_steps : int
        Training steps of the crop classifier, batch 64 (full: 2000).
    match_radius : float
        Largest distance (pixels) between a detection and a true centre to count as a hit (3 um at 0.5 um/px).
    """

    tile: int = 256
    n_val: int = 4
    n_test: int = 8
    n_crop_tiles: int = 40
    crop_size: int = 32
    crop_steps: int = 300
    match_radius: float = 6.0


@dataclass(frozen=True)
class StainSettings(Settings):
    """Chapter 1: colour deconvolution, Macenko and Reinhard.

    Attributes
    ----------
    tile : int
        Side of the synthetic H&E tiles in pixels (full: 1024).
    n_tiles : int
        Synthetic tiles per stain style ("lab") in the metrics table (full: 8).
    io : float
        Macenko's glass intensity on the 0..255 scale (paper: 240).
    alpha : float
        Macenko's angle percentiles, in percent (paper: 1).
    beta : float
        Macenko's tissue OD threshold (paper: 0.15).
    percentile : float
        Concentration percentile matched to the target (paper: 99).
    """

    tile: int = 384
    n_tiles: int = 2
    io: float = 240.0
    alpha: float = 1.0
    beta: float = 0.15
    percentile: float = 99.0


@dataclass(frozen=True)
class StainTransferSettings(Settings):
    """Chapter 2: CNN stain transfer (Yuan & Suh 2018, after Iizuka et al. 2016).

    Attributes
    ----------
    target_style : str
        The lab whose style the network learns (a name of ``nk.synth.STYLES``).
    test_styles : tuple of str
        The other labs whose tiles are normalized to it in the evaluation.
    tile : int
        Side of the synthetic training tiles (crops are cut from them).
    n_train : int
        Training tiles in the target style, balanced over the four tissue types.
    crop : int
        Side of the training crops (the paper: 224).
    widths : tuple of int
        Channels of the encoder at scales 1/2, 1/4, 1/8 (the paper: 64, 128, 256).
    global_dim : int
        Length of the global feature vector (the paper: 256).
    hidden_dim : int
        Fully connected layer before the global vector (OUR DEFAULT at paper scale: 512).
    class_weight : float
        Weight w of the tissue-class cross-entropy (the paper: 1/300 to 1/30).
    batch_size : int
        Crops per step (the paper: 64).
    steps : int
        Optimiser steps of each of the two networks (MSE only; MSE + class).
    optimizer, lr, rho : str, float, float
        The paper: Adadelta, lr 1.0, rho 0.9 (eps 1e-6). Quick: Adam, which needs fewer steps.
    lightness_jitter : float
        Random power applied to the input lightness per crop, ``exp(U(-j, j))`` (0 = off; see
        :func:`nucleikit.transfer.pair_batches`).
    test_tile : int
        Side of the held-out test tiles.
    n_test : int
        Held-out tissue tiles, each rendered in every test style and in the target style.
    n_lumen : int
        Lumen-rich held-out tiles for the white-background comparison.
    norm_tile, norm_overlap : int
        Tile and overlap of ``nk.models.normalize_image`` on images larger than a tile.
    seg_widths : tuple of int
        U-Net channels of the downstream segmentation (chapter 3's pipeline).
    seg_patch, seg_batch, seg_steps : int
        Its training patches, batch and Adam steps.
    seg_lr : float
        Its learning rate.
    """

    target_style: str = "he_lab_a"
    test_styles: tuple[str, ...] = ("he_lab_b", "he_lab_c", "he_lab_d")
    tile: int = 160
    n_train: int = 48
    crop: int = 96
    widths: tuple[int, ...] = (16, 32, 64)
    global_dim: int = 64
    hidden_dim: int = 64
    class_weight: float = 1.0 / 30.0
    batch_size: int = 16
    steps: int = 300
    optimizer: str = "adam"
    lr: float = 2e-3
    rho: float = 0.9
    lightness_jitter: float = 0.0
    test_tile: int = 192
    n_test: int = 6
    n_lumen: int = 4
    norm_tile: int = 512
    norm_overlap: int = 128
    seg_widths: tuple[int, ...] = (8, 16, 32, 64)
    seg_patch: int = 96
    seg_batch: int = 8
    seg_steps: int = 150
    seg_lr: float = 3e-3


@dataclass(frozen=True)
class SegmentationSettings(Settings):
    """Chapter 3: segmentation from partial annotations (Sayin Mercadier et al., ISBI 2019).

    Attributes
    ----------
    tile : int
        Side of the synthetic H&E tiles in pixels, at 0.5 um/px (the paper: 2000 px images at 40x).
    n_train : int
        Training tiles (the paper: 121 images).
    n_test : int
        Test tiles (the paper: 15 images).
    fraction : float
        Fraction of the nuclei annotated in every tile.
    alpha : float
        Distance (pixels) up to which an unlabelled pixel is fully trusted as background (OUR DEFAULT: 5).
    beta : float
        Decay of that trust per pixel beyond ``alpha``. OUR DEFAULT 0.5 / px, not the first guess 0.1: the
        synthetic annotation picks nuclei at random, so only an annotation's immediate surroundings are
        reliable background; with 0.1 the unannotated nuclei keep a mean weight of about 0.42 and the
        model's calibrated nucleus probability sits at 0.5 (chapter 3, section 3.4).
    lam : float
        Weight of the eroded k-means background far from annotations (the paper's Fig. 2: 0.5).
    erosion_radius : int
        Radius of the disk eroding the k-means background (OUR DEFAULT: 5).
    dilation_radius : int
        Radius of the disk dilating foreground and background in the patch rule (OUR DEFAULT: 5).
    min_foreground, min_background : float
        A patch is kept when the dilated foreground covers more than ``min_foreground`` of it and the
        dilated background more than ``min_background`` (the paper: 10 % and 40 %).
    patch : int
        Training patch side (the paper: 256).
    patch_stride : int
        Step between candidate patches (the paper: 128).
    widths : tuple of int
        U-Net channels per level (the paper's scale, our reading: 32-64-128-256-512).
    batch_size : int
        Patches per step (the paper: 6).
    steps : int
        Adam steps of *each* of the three trainings (the paper: 100k).
    lr : float
        Initial learning rate (the paper: 1e-3).
    lr_decay, lr_decay_every, lr_min : float, int, float
        The rate is multiplied by ``lr_decay`` every ``lr_decay_every`` steps, down to ``lr_min`` (the
        paper: 0.95 per 1k steps, floor 1e-5; quick: 0.7 per 60 steps, so a short run still anneals).
    gamma : float
        L2 weight on the convolution weights (the paper: 1e-5).
    window, stride : int
        Sliding-window inference: window side and step; each window's central ``stride`` px are kept (the
        paper: 256 and 128).
    threshold : float
        Probability above which a pixel is a nucleus (the paper: argmax of two classes, i.e. 0.5).
    big_image : int
        Side of the image on which whole-image inference is timed (the paper: 2000).
    fluo_steps : int
        Fine-tuning steps on half of the fluorescent nuclei sample (the extension).
    """

    tile: int = 256
    n_train: int = 16
    n_test: int = 4
    fraction: float = 0.3
    alpha: float = 5.0
    beta: float = 0.5
    lam: float = 0.5
    erosion_radius: int = 5
    dilation_radius: int = 5
    min_foreground: float = 0.10
    min_background: float = 0.40
    patch: int = 128
    patch_stride: int = 64
    widths: tuple[int, ...] = (8, 16, 32, 64, 128)
    batch_size: int = 8
    steps: int = 240
    lr: float = 2e-3
    lr_decay: float = 0.7
    lr_decay_every: int = 60
    lr_min: float = 1e-5
    gamma: float = 1e-5
    window: int = 256
    stride: int = 128
    threshold: float = 0.5
    big_image: int = 2000
    fluo_steps: int = 60


@dataclass(frozen=True)
class KiNetSettings(Settings):
    """Chapter 7: KiNet (Xing et al. 2019), single-stage Ki67 nucleus detection and classification.

    Lengths in micrometres end in ``_um``; the chapter converts them to pixels with ``mpp``, so the paper's
    15 px bump radius and 16 px matching radius at 0.34 um/px keep their physical size at any scale.

    Attributes
    ----------
    mpp : float
        Microns per pixel of the synthetic tiles (paper: 0.34; quick: coarser, so that small tiles hold
        many nuclei).
    tile : int
        Side of the training tiles (random crops of ``crop`` px are cut from them).
    test_tile : int
        Side of the held-out test tiles (whole tiles are predicted).
    n_train, n_test : int
        Numbers of training and test tiles. Quick tests on 12 tiles (3,890 nuclei, 1,318 of them
        tumour): the Ki67 index error is a mean over *images*, and over 6 tiles it moved by 0.02 against
        24 tiles of the same model.
    nucleus_fraction : float
        Fraction of training tiles with nucleus (dot) labels; all tiles carry weak region labels.
    region_fraction : float
        Fraction of each tile's connected tissue regions that are weakly labelled.
    d_um : float
        Radius d of the proximity bumps (Eq. 1); paper 15 px x 0.34 um/px.
    match_um : float
        Matching radius r of the evaluation; paper 16 px x 0.34 um/px.
    nms_um : float
        Non-maximum suppression half-width; the authors' code uses ``min_distance=5`` px at 0.34 um/px.
    alpha : float
        Decay of Eq. 1 (paper: 3).
    xi : float
        Relative peak threshold at the operating point (paper: 0.5); used when ``xi_tiles`` is 0.
    xi_tiles : int
        Choose each model's ξ on this many labelled *training* tiles (``nk.ki67.choose_xi``, best
        detection F1), instead of fixing ``xi``; 0 fixes ``xi`` (the paper). Quick: 8, because short runs
        undershoot their targets and a fixed 0.5 drops the faint peaks (mostly Ki67-negative nuclei).
    base_width : int
        KiNet's channels at full resolution (the authors' code: 32).
    dropout : float
        Dropout in the last two contraction blocks (paper: 0.5).
    target_scale : float
        KiNet regresses ``target_scale`` times the proximity targets (``nk.models.KiNet(target_scale=)``);
        paper: 1 (targets in [0, 1]); the authors' code: 5. Quick: 5, because with 1 the nucleus term is
        too weak against the ROI term and the maps stay far below their targets after a few hundred steps.
    unet_widths : tuple of int
        Channels of the U-Net pixel-classifier baseline, finest level first.
    disk_um : float
        Radius of the disks around each dot that the U-Net learns to label, micrometres: by default
        ``d_um``, the support of KiNet's targets (about a nucleus radius), so both learn from the same area.
    small_disk_um : float
        Disk radius of a second U-Net baseline with small disks (0: skip it), micrometres.
    crop, batch_size : int
        Training crops (paper: 200 px, batch 4). Quick: 96 px, batch 4 (64 px x 8 costs the same but
        gives less region context and a worse tumour / non-tumour separation).
    steps : int
        Optimiser steps of every run (main runs and ablations).
    optimizer, lr, momentum, weight_decay : str, float
        Paper: SGD with Nesterov momentum 0.9, lr 0.01, weight decay 1e-6.
    lr_decay, lr_decay_every : float, int
        Step decay of the learning rate (1.0 = constant).
    grad_clip : float
        Clip the gradient norm of every step to this (0: off; ``TrainConfig.grad_clip``). Quick: off
        (Adam). Full: 1.0, a deviation from the paper: with our losses (per-pixel means, gamma 25) SGD at
        the paper's lr 0.01 and momentum 0.9 diverges in the first 5 steps of the full profile's network
        (the head's gradient norm is about 26 at the start, so one step changes the maps by several
        units), and so does the authors' code's lr 1e-3 with momentum 0.99 (in 14 steps); with the norm
        clipped to 1 it fell from 1.28 to 0.63 over the first 60 steps (on CPU; longer runs unmeasured).
    gamma, lam, eta : float
        Loss weights of Eqs. 5, 2 and 3 (paper: 25, 5, 1e-6).
    warmup : float
        Fraction of the steps before the eta term starts (paper: 1e4 of 1e5 iterations).
    seeds : tuple of int
        Seeds of the main comparison (KiNet, KiNet without ROI branch, U-Net).
    workers : int
        Independent runs trained at once, each in its own single-threaded process
        (``nk.train.map_runs``). Quick: 2, one per core of a 2-core machine (about 1.9x the throughput of
        one run at a time); full: 1 (one GPU, runs one after the other).
    fig6_fractions : tuple of float
        Nucleus-label fractions of the ROI ablation (Fig. 6); ``nucleus_fraction`` reuses the main runs.
    fig8_gammas : tuple of float
        Values of gamma (Fig. 8); ``gamma`` reuses the main run.
    fig9_lambdas : tuple of float
        Values of lambda (Fig. 9); ``lam`` reuses the main run.
    stagewise : bool
        Train the stage-wise variant of Fig. 7.
    guard_det_f1, guard_cls_f1, guard_ki67_error : float
        Regression guards the chapter asserts for KiNet on every seed (a margin below what the profile
        measured on its seeds 0 and 1); the project's targets (0.85, 0.75, 0.05) are reported beside
        them. The index error varies most between seeds: quick seeds 2 and 3, trained outside the
        chapter, gave 0.067 and 0.167 (detection and classification F1 within the guards).
    assert_quality : bool
        Fail the chapter when KiNet misses its guards (off for smoke runs with tiny budgets, and for
        studies over other seeds, which can miss the index guard).
    """

    mpp: float = 1.0
    tile: int = 256
    test_tile: int = 256
    n_train: int = 48
    n_test: int = 12
    nucleus_fraction: float = 1.0
    region_fraction: float = 0.5
    d_um: float = 5.1
    match_um: float = 5.44
    nms_um: float = 1.7
    alpha: float = 3.0
    xi: float = 0.5
    xi_tiles: int = 8
    base_width: int = 8
    dropout: float = 0.5
    target_scale: float = 5.0
    unet_widths: tuple[int, ...] = (8, 16, 32, 64, 128)
    disk_um: float = 5.1
    small_disk_um: float = 2.5
    crop: int = 96
    batch_size: int = 4
    steps: int = 300
    optimizer: str = "adam"
    lr: float = 1e-3
    momentum: float = 0.9
    weight_decay: float = 0.0
    lr_decay: float = 1.0
    lr_decay_every: int = 100
    grad_clip: float = 0.0
    gamma: float = 25.0
    lam: float = 5.0
    eta: float = 1e-6
    warmup: float = 0.1
    seeds: tuple[int, ...] = (0, 1)
    workers: int = 2
    fig6_fractions: tuple[float, ...] = (0.25, 1.0)
    fig8_gammas: tuple[float, ...] = (5.0, 25.0)
    fig9_lambdas: tuple[float, ...] = (0.0, 5.0)
    stagewise: bool = True
    # quick measured (seeds 0 / 1, 12 test tiles): det F1 0.915 / 0.918, cls F1 0.817 / 0.826,
    # Ki67 error 0.066 / 0.057
    guard_det_f1: float = 0.88
    guard_cls_f1: float = 0.78
    guard_ki67_error: float = 0.08
    assert_quality: bool = True


# ---------------------------------------------------------------------------------------------- chapters
@dataclass(frozen=True)
class Chapter:
    """A chapter of the book: its key, title, settings class and expected run time per profile."""

    number: int
    name: str
    title: str
    settings: type[Settings] = Settings
    minutes: Mapping[str, float] = field(default_factory=dict)
    requires: tuple[int, ...] = ()
    paper: str = ""

    @property
    def key(self) -> str:
        """``"03_segmentation"``: the notebook's file stem and the results file's name."""
        return f"{self.number:02d}_{self.name}"

    @property
    def notebook(self) -> str:
        """Path of the chapter notebook, relative to the repository root."""
        return f"notebooks/{self.key}.ipynb"

    def exists(self, root: Path) -> bool:
        """Return True when the chapter's notebook is present under ``root``."""
        return (root / self.notebook).is_file()


CHAPTERS: dict[str, Chapter] = {
    c.key: c
    for c in (
        Chapter(0, "data", "Light, stains and data", DataSettings, {"quick": 1.0, "full": 2.0}),
        Chapter(
            1,
            "stain_normalization",
            "Stain normalization",
            StainSettings,
            {"quick": 1.5, "full": 3.0},
            requires=(0,),
            paper="Macenko 2009, Reinhard 2001",
        ),
        Chapter(
            2,
            "stain_transfer",
            "CNN stain transfer",
            StainTransferSettings,
            {"quick": 4.0, "full": 60.0},
            requires=(1, 3),
            paper="yuan2018",
        ),
        Chapter(
            3,
            "segmentation",
            "Segmentation from partial annotations",
            SegmentationSettings,
            {"quick": 4.5, "full": 120.0},
            requires=(0, 1),
            paper="sayin2019",
        ),
        Chapter(
            4,
            "sparse_autoencoder",
            "Crosswise sparse autoencoder",
            Settings,
            {},
            requires=(0, 7),
            paper="hou2019",
        ),
        Chapter(5, "detection_budget", "Detection on a budget", Settings, {}, requires=(0, 7)),
        Chapter(6, "infogan", "InfoGAN nucleus clustering", Settings, {}, requires=(0,), paper="yuan2018"),
        Chapter(
            7,
            "kinet",
            "KiNet: Ki67 detection and classification",
            KiNetSettings,
            # full: an estimate, not a measurement (no GPU was lent): chapter 7 counts the full grid's
            # training at 1.25e18 FLOP (30 runs x 100,000 steps), 3.5 h at 100 TFLOP/s, 14 h at 25
            {"quick": 4.5, "full": 600.0},
            requires=(0, 3),
            paper="xing2019",
        ),
        Chapter(8, "capstone", "Capstone", Settings, {}, requires=(2, 4, 5, 6, 7)),
    )
}

# Per-profile values: only the fields that differ from the class defaults (the defaults are ``quick``).
_PROFILE_VALUES: dict[str, dict[str, dict[str, Any]]] = {
    "quick": {},
    "full": {key: {"num_threads": 0} for key in CHAPTERS},
}
_PROFILE_VALUES["full"]["01_stain_normalization"].update(tile=1024, n_tiles=8)
# Stain transfer at paper scale: 224 px crops, widths 64-128-256, 256-d global vector, Adadelta lr 1.0
# rho 0.9 eps 1e-6, batch 64 (the step count and set sizes are ours: the paper gives neither).
_PROFILE_VALUES["full"]["02_stain_transfer"].update(
    tile=448,
    n_train=512,
    crop=224,
    widths=(64, 128, 256),
    global_dim=256,
    hidden_dim=512,
    class_weight=1.0 / 300.0,
    batch_size=64,
    steps=20_000,
    optimizer="adadelta",
    lr=1.0,
    rho=0.9,
    test_tile=512,
    n_test=32,
    n_lumen=16,
    seg_widths=(32, 64, 128, 256, 512),
    seg_patch=256,
    seg_batch=6,
    seg_steps=20_000,
    seg_lr=1e-3,
)
_PROFILE_VALUES["full"]["03_segmentation"].update(
    tile=1024,
    n_train=64,
    n_test=16,
    patch=256,
    patch_stride=128,
    widths=(32, 64, 128, 256, 512),
    batch_size=6,
    steps=100_000,
    lr=1e-3,
    lr_decay=0.95,
    lr_decay_every=1000,
    fluo_steps=2000,
)
# KiNet at paper scale: 0.34 um/px, 500 px images (19 + 19 cases x 3 images), 200 px crops, batch 4,
# base width 32, SGD-Nesterov lr 0.01 momentum 0.9 weight decay 1e-6, 1e5 iterations, whole ablation grids.
_PROFILE_VALUES["full"]["07_kinet"].update(
    mpp=0.34,
    tile=500,
    test_tile=500,
    n_train=57,
    n_test=57,
    base_width=32,
    target_scale=1.0,
    xi_tiles=0,
    unet_widths=(32, 64, 128, 256, 512),
    crop=200,
    batch_size=4,
    steps=100_000,
    optimizer="nesterov",
    lr=0.01,
    momentum=0.9,
    weight_decay=1e-6,
    lr_decay=1.0,
    grad_clip=1.0,
    seeds=(0, 1, 2),
    workers=1,
    fig6_fractions=(0.05, 0.1, 0.25, 0.5, 1.0),
    fig8_gammas=(1.0, 5.0, 10.0, 25.0, 50.0, 100.0),
    fig9_lambdas=(0.0, 1.0, 5.0, 10.0, 50.0),
)
_PROFILE_VALUES["full"]["00_data"].update(n_val=8, n_test=32, n_crop_tiles=200, crop_steps=2000)


def find_chapter(name: str | int) -> Chapter:
    """Find a chapter by number (``3``, ``"03"``), name (``"segmentation"``) or key (``"03_segmentation"``).

    Raises
    ------
    ValueError
        When nothing matches; the message lists the chapters.
    """
    text = str(name).strip().lower().replace("-", "_")
    for chapter in CHAPTERS.values():
        if text.isdigit() and int(text) == chapter.number:
            return chapter
        if text in (chapter.key, chapter.name):
            return chapter
    valid = ", ".join(f"{c.number:02d} ({c.name})" for c in CHAPTERS.values())
    raise ValueError(f"unknown chapter {name!r}; valid chapters: {valid}")


def pick(settings: Any, names: typing.Iterable[str]) -> dict[str, Any]:
    """Return the values of ``names`` that a settings object holds (e.g. a training function's options).

    Parameters
    ----------
    settings : Settings instance (any dataclass instance) or mapping
        Where to read the values.
    names : iterable of str
        Wanted names; those the settings lack are left out.

    Returns
    -------
    dict
        ``{name: value}`` in the order of ``names``.

    Raises
    ------
    TypeError
        For anything but a dataclass instance or a mapping.
    """
    if dataclasses.is_dataclass(settings) and not isinstance(settings, type):
        values = dataclasses.asdict(settings)
    elif isinstance(settings, Mapping):
        values = dict(settings)
    else:
        raise TypeError(
            f"settings: expected a settings dataclass or a mapping, got {type(settings).__name__}"
        )
    return {k: values[k] for k in names if k in values}


def _check_profile(profile: str) -> str:
    if profile not in PROFILES:
        raise ValueError(f"unknown profile {profile!r}; valid profiles: {', '.join(PROFILES)}")
    return profile


def knob_names(chapter: str | int) -> list[str]:
    """Return the names of the knobs (settings fields) of a chapter."""
    return [f.name for f in dataclasses.fields(find_chapter(chapter).settings)]


def _coerce(cls: type[Settings], name: str, value: Any) -> Any:
    """Check ``value`` against the annotated type of field ``name`` (int -> float allowed)."""
    hint = typing.get_type_hints(cls)[name]
    origin = typing.get_origin(hint)
    allowed = typing.get_args(hint) if origin in (typing.Union, types.UnionType) else (hint,)
    for typ in allowed:
        base = typing.get_origin(typ) or typ
        if typ is type(None) and value is None:
            return None
        if base is bool and isinstance(value, bool):
            return value
        if base is int and isinstance(value, int) and not isinstance(value, bool):
            return value
        if base is float and isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if base is str and isinstance(value, str):
            return value
        if base is tuple and isinstance(value, (list, tuple)):
            return tuple(value)
    names = " or ".join(getattr(t, "__name__", str(t)) for t in allowed)
    raise TypeError(f"knob {name!r}: expected {names}, got {type(value).__name__} {value!r}")


def get(chapter: str | int, profile: str = "quick", **overrides: Any) -> Settings:
    """Return a chapter's settings for a profile, with single settings overridden.

    Parameters
    ----------
    chapter : str or int
        Chapter number, name or key.
    profile : str
        ``"quick"`` or ``"full"``.
    **overrides
        Knobs; ``None`` keeps the profile's value.

    Raises
    ------
    ValueError
        Unknown profile or knob (the message lists the valid names).
    TypeError
        A knob of the wrong type.
    """
    ch = find_chapter(chapter)
    _check_profile(profile)
    fields = {f.name for f in dataclasses.fields(ch.settings)}
    unknown = sorted(set(overrides) - fields)
    if unknown:
        raise ValueError(
            f"unknown parameter(s) {', '.join(map(repr, unknown))} for chapter {ch.key}; "
            f"valid parameters: profile, {', '.join(sorted(fields))}"
        )
    values = dict(_PROFILE_VALUES[profile].get(ch.key, {}))
    values.update({k: v for k, v in overrides.items() if v is not None})
    values = {k: _coerce(ch.settings, k, v) for k, v in values.items() if k in fields}
    return ch.settings(**values)


_NOTEBOOK_NAMES = frozenset({"In", "Out", "get_ipython", "exit", "quit", "open", "profile"})
_KNOB_TYPES = (bool, int, float, str, list, tuple, type(None))


def resolve(
    chapter: str | int, profile: str = "quick", namespace: Mapping[str, Any] | None = None
) -> Settings:
    """Resolve a chapter's settings from a notebook's parameters.

    Call it in the cell right after the ``parameters`` cell with ``globals()``: every plain value defined
    there (or injected by papermill) is a knob; modules, functions and names starting with ``_`` are ignored.

    Parameters
    ----------
    chapter : str or int
        Chapter number, name or key.
    profile : str
        ``"quick"`` or ``"full"``.
    namespace : mapping, optional
        The notebook's ``globals()``.

    Returns
    -------
    Settings
        The chapter's settings dataclass (frozen).
    """
    overrides = {}
    for name, value in (namespace or {}).items():
        if name.startswith("_") or name in _NOTEBOOK_NAMES or not isinstance(value, _KNOB_TYPES):
            continue
        overrides[name] = value
    return get(chapter, profile, **overrides)
