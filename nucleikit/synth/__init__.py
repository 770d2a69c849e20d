r"""Synthetic H&E and Ki67-IHC tissue with full ground truth, rendered from optical physics.

No installable package ships annotated H&E or Ki67 tiles, and tests can download nothing, so the
quantitative chapters run on tissue generated here, where every truth is known::

    import nucleikit as nk
    tile = nk.synth.he_tile((256, 256), organ="breast", rng=0)
    tile.image                    # (256, 256, 3) uint8
    tile.truth.labels             # (256, 256) instances 1..N
    tile.truth.centroids_rc       # (N, 2) (row, col), centroid i inside instance i + 1
    tile.truth.classes            # (N,) into tile.truth.class_names
    other = nk.synth.render(tile.truth, "he_lab_c")   # the same tissue stained by another lab

How a tile is made
------------------
1. **Layout**: smooth random fields, thresholded at quantiles, split the tile into background/lumen,
   tumour (nests or glands), stroma and lymphoid aggregates; the tissue type sets their area fractions.
2. **Nuclei**: per class, a jittered lattice of sites accepted by compartment, spaced apart greedily
   (``Difficulty.touching`` lets them touch and overlap). Each nucleus is a perturbed ellipse with
   chromatin texture, a vesicular rim and maybe a nucleolus; its look is partly borrowed from other
   classes (``Difficulty.class_overlap``), so the compartment it sits in carries information its look lacks.
3. **Stains**: concentrations per pixel, hematoxylin from nuclei and tissue, eosin from cytoplasm,
   fibres and red cells (or DAB from Ki67-positive nuclei), plus debris and folds.
4. **Optics**: Beer-Lambert, :math:`I = I_0 \\exp(-C S)`, then blur, illumination, noise, quantisation and
   JPEG (:func:`render`).

Everything is NumPy, deterministic under ``rng``, and never prints.
"""

from __future__ import annotations

from ._annotate import connected_regions, dot_annotations, nucleus_crops, partial_mask, weak_regions
from ._tiles import he_tile, ki67_tile, render, tile_steps
from ._types import (
    DEFAULT_DIFFICULTY,
    DEFAULT_HE_STYLE,
    DEFAULT_IHC_STYLE,
    DIFFICULTIES,
    HE_CLASSES,
    HE_REGIONS,
    KI67_CLASSES,
    KI67_REGIONS,
    ORGANS,
    STYLES,
    TISSUE_TYPES,
    Difficulty,
    NucleusType,
    Organ,
    StainStyle,
    Tile,
    Truth,
    get_difficulty,
    get_organ,
    get_style,
    jitter_style,
)

#: Regions where each H&E class may sit (class index -> region indices of ``HE_REGIONS``).
HE_CLASS_REGIONS: dict[int, tuple[int, ...]] = {0: (1,), 1: (1, 2, 3), 2: (2,)}
#: Regions where each Ki67 class may sit (class index -> region indices of ``KI67_REGIONS``).
KI67_CLASS_REGIONS: dict[int, tuple[int, ...]] = {0: (1,), 1: (1,), 2: (1, 2)}

__all__ = [
    "DEFAULT_DIFFICULTY",
    "DEFAULT_HE_STYLE",
    "DEFAULT_IHC_STYLE",
    "DIFFICULTIES",
    "HE_CLASSES",
    "HE_CLASS_REGIONS",
    "HE_REGIONS",
    "KI67_CLASSES",
    "KI67_CLASS_REGIONS",
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
    "connected_regions",
    "dot_annotations",
    "get_difficulty",
    "get_organ",
    "get_style",
    "he_tile",
    "jitter_style",
    "ki67_tile",
    "nucleus_crops",
    "partial_mask",
    "render",
    "tile_steps",
    "weak_regions",
]
