"""Stain styles, organs, difficulty settings and the truth/tile dataclasses of :mod:`nucleikit.synth`."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .._checks import check_positive, describe

__all__ = [
    "DEFAULT_DIFFICULTY",
    "DIFFICULTIES",
    "HE_CLASSES",
    "HE_REGIONS",
    "KI67_CLASSES",
    "KI67_REGIONS",
    "ORGANS",
    "STYLES",
    "TISSUE_TYPES",
    "Difficulty",
    "NucleusType",
    "Organ",
    "StainStyle",
    "Tile",
    "Truth",
    "get_difficulty",
    "get_organ",
    "get_style",
    "jitter_style",
]

HE_CLASSES: tuple[str, ...] = ("tumour", "lymphocyte", "fibroblast")
KI67_CLASSES: tuple[str, ...] = ("ki67_positive_tumour", "ki67_negative_tumour", "non_tumour")
HE_REGIONS: tuple[str, ...] = ("background", "tumour", "stroma", "lymphoid")
KI67_REGIONS: tuple[str, ...] = ("background", "tumour", "non_tumour")
#: Tile-level tissue labels (the dominant region of a tile), for the stain-transfer network's class loss.
TISSUE_TYPES: tuple[str, ...] = ("tumour", "stroma", "lymphocyte", "lumen")

#: Ruifrok & Johnston (2001) optical-density vectors (unit length after normalisation).
_RUIFROK_H = (0.65, 0.70, 0.29)
_RUIFROK_E = (0.07, 0.99, 0.11)
_RUIFROK_DAB = (0.27, 0.57, 0.78)


def _unit_rows(m: Any) -> np.ndarray:
    m = np.asarray(m, dtype=np.float64)
    return m / np.linalg.norm(m, axis=1, keepdims=True)


# ------------------------------------------------------------------------------------------- stain styles
@dataclass(frozen=True)
class StainStyle:
    """A staining "lab" or scanner: stain colours, stain amounts and the colour of the glass.

    Attributes
    ----------
    name : str
        Name of the style (``"he_lab_a"``...).
    stains : ndarray of shape (n_stains, 3)
        Unit optical-density vectors, hematoxylin first: (H, E) or (H, DAB).
    intensity : ndarray of shape (n_stains,)
        Concentration scale of each stain (1 = the organ's nominal amount).
    background : ndarray of shape (3,)
        RGB transmission of glass and background in (0, 1] (its tint).
    """

    name: str
    stains: np.ndarray
    intensity: np.ndarray
    background: np.ndarray

    def __post_init__(self) -> None:
        stains = _unit_rows(self.stains)
        if stains.ndim != 2 or stains.shape[1] != 3 or stains.shape[0] < 1 or np.any(stains < 0):
            raise ValueError(
                f"StainStyle.stains: expected non-negative rows of shape (n_stains, 3), "
                f"got {describe(np.asarray(self.stains))}"
            )
        intensity = np.asarray(self.intensity, dtype=np.float64).reshape(-1)
        if intensity.shape != (stains.shape[0],) or np.any(intensity <= 0):
            raise ValueError(
                f"StainStyle.intensity: expected {stains.shape[0]} positive values, got {describe(intensity)}"
            )
        background = np.asarray(self.background, dtype=np.float64).reshape(-1)
        if background.shape != (3,) or np.any(background <= 0) or np.any(background > 1):
            raise ValueError(f"StainStyle.background: expected 3 values in (0, 1], got {background!r}")
        for name, value in (("stains", stains), ("intensity", intensity), ("background", background)):
            value.setflags(write=False)
            object.__setattr__(self, name, value)

    @property
    def kind(self) -> str:
        """``"he"`` or ``"ihc"`` (H-DAB), judged from the second stain vector (eosin is green-absorbing)."""
        second = self.stains[1] if self.stains.shape[0] > 1 else self.stains[0]
        return "he" if second[1] > max(second[0], second[2]) + 0.2 else "ihc"


def _style(name: str, h: Any, second: Any, intensity: Any, background: Any) -> StainStyle:
    return StainStyle(
        name, _unit_rows([h, second]), np.asarray(intensity, float), np.asarray(background, float)
    )


#: Named stain styles: four H&E "labs" and two IHC (H-DAB) ones.
STYLES: dict[str, StainStyle] = {
    s.name: s
    for s in (
        # Vectors fitted by Macenko on a well-stained real H&E scan (see notes/stain-peers.md): the default.
        _style("he_lab_a", (0.527, 0.753, 0.394), (0.151, 0.833, 0.532), (1.0, 1.0), (0.96, 0.95, 0.96)),
        # Textbook Ruifrok vectors: magenta eosin, neutral glass.
        _style("he_lab_b", _RUIFROK_H, _RUIFROK_E, (1.0, 0.9), (0.97, 0.97, 0.97)),
        # Over-stained, purple hematoxylin, blue-grey scanner.
        _style("he_lab_c", (0.60, 0.76, 0.25), (0.18, 0.86, 0.47), (1.35, 0.85), (0.92, 0.93, 0.97)),
        # Pale, pink eosin-heavy stain on a warm (yellowish) scanner.
        _style("he_lab_d", (0.47, 0.78, 0.42), (0.05, 0.90, 0.43), (0.75, 1.35), (0.98, 0.95, 0.88)),
        # IHC: Ruifrok hematoxylin + DAB.
        _style("ihc_lab_a", _RUIFROK_H, _RUIFROK_DAB, (1.0, 1.0), (0.96, 0.96, 0.95)),
        # IHC: bluer counterstain, darker, redder DAB, warmer glass.
        _style("ihc_lab_b", (0.55, 0.73, 0.41), (0.33, 0.59, 0.74), (1.2, 1.25), (0.95, 0.93, 0.88)),
    )
}
DEFAULT_HE_STYLE = "he_lab_a"
DEFAULT_IHC_STYLE = "ihc_lab_a"


def get_style(name_or_style: str | StainStyle) -> StainStyle:
    """Return a stain style by name (see ``STYLES``), or the given style itself.

    Raises
    ------
    ValueError
        For an unknown name (the message lists the names).
    TypeError
        For anything that is neither a name nor a :class:`StainStyle`.
    """
    if isinstance(name_or_style, StainStyle):
        return name_or_style
    if isinstance(name_or_style, str):
        if name_or_style not in STYLES:
            raise ValueError(f"style: expected one of {', '.join(STYLES)}, got {name_or_style!r}")
        return STYLES[name_or_style]
    raise TypeError(f"style: expected a style name or a StainStyle, got {describe(name_or_style)}")


def jitter_style(style: str | StainStyle, amount: float = 1.0, *, rng: Any) -> StainStyle:
    """Return a randomly perturbed copy of a stain style (stain variation between slides).

    Parameters
    ----------
    style : str or StainStyle
        The style to perturb.
    amount : float
        0 returns the style unchanged; 1 is a typical slide-to-slide variation (stain vectors turned by
        about 3-5 degrees, stain amounts scaled by about +-15 %, background tint by about 1 %).
    rng : int, Generator or None
        Random source.

    Returns
    -------
    StainStyle
        A new style named ``"<name>+jitter"``.
    """
    style = get_style(style)
    check_positive(amount, "amount", allow_zero=True)
    rng = np.random.default_rng(rng)
    if amount == 0:
        return style
    stains = np.abs(style.stains + rng.normal(0.0, 0.06 * amount, style.stains.shape))
    intensity = style.intensity * np.exp(rng.normal(0.0, 0.15 * amount, style.intensity.shape))
    background = np.clip(style.background * (1 - np.abs(rng.normal(0.0, 0.012 * amount, 3))), 0.5, 1.0)
    return StainStyle(f"{style.name}+jitter", _unit_rows(stains), intensity, background)


# ------------------------------------------------------------------------------------------------ organs
@dataclass(frozen=True)
class NucleusType:
    """Morphology and chromatin of one kind of nucleus (sizes in micrometres).

    Attributes
    ----------
    radius_um, radius_sd : float
        Mean and standard deviation of the equivalent radius.
    aspect, aspect_sd : float
        Ratio of the long to the short axis (1 = round).
    irregularity : float
        Amplitude of the contour's low harmonics (0 = a perfect ellipse).
    hem, hem_sd : float
        Hematoxylin concentration (OD units along the stain vector).
    texture : float
        Relative amplitude of the chromatin texture.
    rim : float
        Vesicular pattern: how much paler the centre is than the nuclear membrane (0..1).
    nucleolus : float
        Probability of a visible nucleolus.
    """

    radius_um: float
    radius_sd: float
    aspect: float
    aspect_sd: float
    irregularity: float
    hem: float
    hem_sd: float
    texture: float
    rim: float
    nucleolus: float

    def blend(self, other: NucleusType, t: float) -> NucleusType:
        """Interpolate every attribute towards ``other`` (t = 0: self, t = 1: other)."""
        vals = {
            f.name: (1 - t) * getattr(self, f.name) + t * getattr(other, f.name)
            for f in dataclasses.fields(self)
        }
        return NucleusType(**vals)


@dataclass(frozen=True)
class Organ:
    """An "organ": its nucleus types, how tissue is arranged and how crowded it is.

    Attributes
    ----------
    name : str
        Organ name.
    tumour, lymphocyte, fibroblast : NucleusType
        Appearance of the three nucleus classes of H&E tiles.
    macrophage : NucleusType
        Appearance of inflammatory cells that are not lymphocytes (shown in class "lymphocyte").
    macrophage_fraction : float
        Fraction of inflammatory ("lymphocyte" class) nuclei that look like macrophages. High in colon,
        where inflammatory cells are mainly macrophages with visible nucleoli (the transfer pitfall of
        the "budget" paper), low in prostate and breast.
    gland : float
        0 = solid sheets and nests of tumour cells, 1 = glands lining a lumen.
    tumour_fill : float
        Probability that a site on the tumour lattice holds a nucleus.
    lymph_fill : float
        Same for lymphoid aggregates.
    stroma_lymph, stroma_fibro, tumour_lymph : float
        Per-site probabilities of scattered lymphocytes in stroma, fibroblasts in stroma, and
        tumour-infiltrating lymphocytes.
    cytoplasm : float
        Eosin concentration of tumour-cell cytoplasm.
    stroma : float
        Eosin concentration of collagen fibres.
    class_mix : tuple of float
        Weights of the tile compositions (tumour-, stroma-, lymphocyte-, lumen-rich) when a tile's
        tissue type is drawn at random.
    """

    name: str
    tumour: NucleusType
    lymphocyte: NucleusType
    fibroblast: NucleusType
    macrophage: NucleusType
    macrophage_fraction: float = 0.1
    gland: float = 0.5
    tumour_fill: float = 0.8
    lymph_fill: float = 0.75
    stroma_lymph: float = 0.05
    stroma_fibro: float = 0.25
    tumour_lymph: float = 0.03
    cytoplasm: float = 0.45
    stroma: float = 0.6
    class_mix: tuple[float, ...] = (0.35, 0.3, 0.2, 0.15)

    @property
    def he_types(self) -> tuple[NucleusType, NucleusType, NucleusType]:
        """The nucleus types in the order of the H&E class names."""
        return (self.tumour, self.lymphocyte, self.fibroblast)


_LYMPHOCYTE = NucleusType(3.4, 0.45, 1.12, 0.08, 0.05, 1.55, 0.25, 0.3, 0.05, 0.0)
_FIBROBLAST = NucleusType(3.6, 0.6, 3.2, 0.8, 0.08, 1.15, 0.25, 0.3, 0.05, 0.05)
_MACROPHAGE = NucleusType(5.0, 0.8, 1.35, 0.2, 0.14, 0.85, 0.2, 0.35, 0.35, 0.5)

ORGANS: dict[str, Organ] = {
    o.name: o
    for o in (
        # Breast carcinoma: solid nests, large pleomorphic vesicular nuclei, lymphocyte-rich stroma.
        Organ(
            "breast",
            tumour=NucleusType(5.6, 1.1, 1.3, 0.2, 0.16, 0.9, 0.25, 0.6, 0.5, 0.5),
            lymphocyte=_LYMPHOCYTE,
            fibroblast=_FIBROBLAST,
            macrophage=_MACROPHAGE,
            macrophage_fraction=0.08,
            gland=0.25,
            tumour_fill=0.85,
            lymph_fill=0.8,
            stroma_lymph=0.07,
            stroma_fibro=0.25,
            tumour_lymph=0.04,
            cytoplasm=0.32,
            stroma=0.62,
        ),
        # Colon adenocarcinoma: glands with lumens, elongated (columnar) nuclei; macrophage-rich inflammation.
        Organ(
            "colon",
            tumour=NucleusType(4.8, 0.8, 1.9, 0.35, 0.1, 1.05, 0.25, 0.5, 0.3, 0.3),
            lymphocyte=_LYMPHOCYTE,
            fibroblast=_FIBROBLAST,
            macrophage=_MACROPHAGE,
            macrophage_fraction=0.45,
            gland=0.85,
            tumour_fill=0.9,
            lymph_fill=0.7,
            stroma_lymph=0.1,
            stroma_fibro=0.2,
            tumour_lymph=0.03,
            cytoplasm=0.4,
            stroma=0.55,
        ),
        # Prostate adenocarcinoma: small glands, smaller round nuclei with prominent nucleoli.
        Organ(
            "prostate",
            tumour=NucleusType(4.3, 0.6, 1.2, 0.12, 0.08, 0.95, 0.2, 0.5, 0.4, 0.75),
            lymphocyte=_LYMPHOCYTE,
            fibroblast=_FIBROBLAST,
            macrophage=_MACROPHAGE,
            macrophage_fraction=0.1,
            gland=0.65,
            tumour_fill=0.85,
            lymph_fill=0.7,
            stroma_lymph=0.05,
            stroma_fibro=0.3,
            tumour_lymph=0.02,
            cytoplasm=0.3,
            stroma=0.7,
        ),
    )
}


def get_organ(name_or_organ: str | Organ) -> Organ:
    """Return an organ by name (see ``ORGANS``), or the given organ itself."""
    if isinstance(name_or_organ, Organ):
        return name_or_organ
    if isinstance(name_or_organ, str):
        if name_or_organ not in ORGANS:
            raise ValueError(f"organ: expected one of {', '.join(ORGANS)}, got {name_or_organ!r}")
        return ORGANS[name_or_organ]
    raise TypeError(f"organ: expected an organ name or an Organ, got {describe(name_or_organ)}")


# -------------------------------------------------------------------------------------------- difficulty
@dataclass(frozen=True)
class Difficulty:
    """How hard a tile is: crowding, ambiguity, artefacts and optics.

    Tissue knobs change the tissue (and so the truth); optics knobs only change how it is imaged
    (:func:`nucleikit.synth.render` applies them).

    Attributes
    ----------
    touching : float
        0 = nuclei well apart, 1 = crowded sheets with many touching and overlapping nuclei.
    class_overlap : float
        0 = each class has its own look; 1 = a nucleus's look says little about its class (only the
        region it sits in does).
    faint : float
        Fraction of faintly stained nuclei.
    out_of_focus : float
        Fraction of nuclei out of the focal plane (soft, blurred edges).
    debris : float
        Debris fragments and red blood cells per 100 x 100 micrometres.
    fold : float
        Probability that a tile has a tissue fold (a darker band of doubled tissue).
    blur_um : float
        Optical blur (Gaussian sigma, micrometres).
    noise : float
        Sensor noise: standard deviation on a white pixel, as a fraction of full scale.
    illumination : float
        Strength of the uneven illumination (vignetting and a gradient), 0 = flat.
    jpeg_quality : int
        JPEG compression quality, 0 = no compression.
    stain_jitter : float
        Stain variation between tiles (see :func:`nucleikit.synth.jitter_style`), 0 = none.
    """

    touching: float = 0.85
    class_overlap: float = 0.15
    faint: float = 0.2
    out_of_focus: float = 0.15
    debris: float = 8.0
    fold: float = 0.1
    blur_um: float = 0.4
    noise: float = 0.025
    illumination: float = 0.06
    jpeg_quality: int = 85
    stain_jitter: float = 0.5

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            check_positive(value, f"Difficulty.{f.name}", integer=f.name == "jpeg_quality", allow_zero=True)
        for name in ("touching", "class_overlap", "faint", "out_of_focus", "fold"):
            if getattr(self, name) > 1:
                raise ValueError(
                    f"Difficulty.{name}: expected a value in [0, 1], got {getattr(self, name)!r}"
                )
        if self.jpeg_quality > 100:
            raise ValueError(f"Difficulty.jpeg_quality: expected 0 (off) or 1..100, got {self.jpeg_quality}")

    def replace(self, **changes: Any) -> Difficulty:
        """Return a copy with some knobs changed (``DEFAULT_DIFFICULTY.replace(noise=0)``)."""
        return dataclasses.replace(self, **changes)

    @property
    def optics_off(self) -> bool:
        """True when rendering adds no blur, noise, illumination or JPEG artefacts."""
        return self.blur_um == 0 and self.noise == 0 and self.illumination == 0 and self.jpeg_quality == 0


#: The calibrated default of every chapter (see chapter 0 for how it was calibrated).
DEFAULT_DIFFICULTY = Difficulty()

#: Named presets: ``"clean"`` (no artefacts, no optics, no ambiguity), ``"easy"``, ``"default"``, ``"hard"``.
DIFFICULTIES: dict[str, Difficulty] = {
    "clean": Difficulty(
        touching=0.0,
        class_overlap=0.0,
        faint=0.0,
        out_of_focus=0.0,
        debris=0.0,
        fold=0.0,
        blur_um=0.0,
        noise=0.0,
        illumination=0.0,
        jpeg_quality=0,
        stain_jitter=0.0,
    ),
    "easy": Difficulty(
        touching=0.2,
        class_overlap=0.0,
        faint=0.0,
        out_of_focus=0.0,
        debris=0.0,
        fold=0.0,
        blur_um=0.25,
        noise=0.01,
        illumination=0.0,
        jpeg_quality=0,
        stain_jitter=0.0,
    ),
    "default": DEFAULT_DIFFICULTY,
    "hard": Difficulty(
        touching=0.9,
        class_overlap=0.8,
        faint=0.25,
        out_of_focus=0.2,
        debris=8.0,
        fold=0.3,
        blur_um=0.5,
        noise=0.035,
        illumination=0.12,
        jpeg_quality=70,
        stain_jitter=1.0,
    ),
}


def get_difficulty(difficulty: str | Difficulty | None) -> Difficulty:
    """Return a difficulty by preset name, the given one, or ``DEFAULT_DIFFICULTY`` for None."""
    if difficulty is None:
        return DEFAULT_DIFFICULTY
    if isinstance(difficulty, Difficulty):
        return difficulty
    if isinstance(difficulty, str) and difficulty in DIFFICULTIES:
        return DIFFICULTIES[difficulty]
    raise ValueError(
        f"difficulty: expected a Difficulty, None or one of {', '.join(DIFFICULTIES)}, got {difficulty!r}"
    )


# ---------------------------------------------------------------------------------------------- truth
@dataclass
class Truth:
    """Everything known about a synthetic tile.

    Attributes
    ----------
    labels : ndarray of shape (H, W) and dtype int32
        Instance labels 1..N, 0 = no nucleus.
    centroids_rc : ndarray of shape (N, 2)
        Centroid (row, col) of each instance's visible pixels; centroid i lies inside instance i + 1.
    classes : ndarray of shape (N,) and dtype int64
        Class of each instance, an index into ``class_names``.
    class_names : tuple of str
        H&E: ``("tumour", "lymphocyte", "fibroblast")``; Ki67:
        ``("ki67_positive_tumour", "ki67_negative_tumour", "non_tumour")``.
    regions : ndarray of shape (H, W) and dtype int64
        Region map, an index into ``region_names``. The pixels of a nucleus carry the region it
        belongs to.
    region_names : tuple of str
        H&E: ``("background", "tumour", "stroma", "lymphoid")``; Ki67: ``("background", "tumour",
        "non_tumour")``.
    tissue_type : str
        Tile label, one of ``TISSUE_TYPES`` (the dominant tissue).
    stain_matrix : ndarray of shape (n_stains, 3)
        Unit OD vectors used for this tile (after stain jitter).
    concentrations : ndarray of shape (H, W, n_stains) and dtype float32
        Stain concentrations before optics and noise: the tile's optical density is
        ``concentrations @ stain_matrix``.
    style : StainStyle
        Style used (after stain jitter); ``style.stains == stain_matrix``.
    mpp : float
        Microns per pixel.
    instance_regions : ndarray of shape (N,) and dtype int64
        Region of each instance.
    dab_positive : ndarray of shape (N,) and dtype bool
        Whether each nucleus is DAB-positive (Ki67 tiles; all False for H&E).
    organ : str
        Organ name.
    """

    labels: np.ndarray
    centroids_rc: np.ndarray
    classes: np.ndarray
    class_names: tuple[str, ...]
    regions: np.ndarray
    region_names: tuple[str, ...]
    tissue_type: str
    stain_matrix: np.ndarray
    concentrations: np.ndarray
    style: StainStyle
    mpp: float
    instance_regions: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    dab_positive: np.ndarray = field(default_factory=lambda: np.zeros(0, bool))
    organ: str = ""

    @property
    def n(self) -> int:
        """Number of nuclei."""
        return int(self.classes.shape[0])

    @property
    def shape(self) -> tuple[int, int]:
        """(H, W) of the tile."""
        return (int(self.labels.shape[0]), int(self.labels.shape[1]))


@dataclass
class Tile:
    """A synthetic tile: the image and its truth.

    Attributes
    ----------
    image : ndarray of shape (H, W, 3) and dtype uint8
        The rendered RGB image.
    truth : Truth
        Everything known about the tissue in it.
    """

    image: np.ndarray
    truth: Truth
