"""Stain separation and normalization: optical density, Ruifrok deconvolution, Macenko, Reinhard.

NumPy functions on ``(H, W, 3)`` images (uint8, uint16 or float in [0, 1]); the torch twin
:mod:`nucleikit.stain.torch` has the same names for batches ``(B, 3, H, W)`` on any device and gives the
same results. Inputs are never modified; bad input raises ``ValueError`` / ``TypeError``; images whose stains
cannot be estimated (blank, one colour, one stain, noise) raise :class:`StainEstimationError`, a
``ValueError``, unless a normalizer's ``fallback`` says otherwise.

=========================================  ==================================================================
``rgb_to_od`` / ``od_to_rgb``              ``OD = -ln((I + 1) / io)`` on the 0..255 scale and its inverse
``deconvolve`` / ``recombine``             Ruifrok & Johnston unmixing with a fixed stain matrix, and back
``RUIFROK_HE`` / ``RUIFROK_HDAB``          standard unit OD vectors (rows H, E / H, DAB)
``macenko_stain_matrix``                   Macenko's SVD estimate of the (2, 3) stain matrix
``estimate_stains``                        the same, with maximum concentrations and diagnostics
``MacenkoNormalizer``                      ``fit(target)`` / ``transform(image)`` / ``save`` / ``load``
``ReinhardNormalizer``                     Lab mean/std transfer with the same interface
``normalize_tiles``                        a large image tile by tile, bounded memory, progress bar
=========================================  ==================================================================

The Io convention is explained in :mod:`nucleikit.stain._core`: 256 for the generic functions (white has
OD 0, exact round trip), the paper's 240 for Macenko.

What happens with inputs that break other libraries (each case is a test in ``tests/test_stain.py``):

==========================================  ===============================================================
input                                       result
==========================================  ===============================================================
white / near-white tile, < 5 % tissue       ``StainEstimationError`` (a ``ValueError``) naming the tissue
                                            fraction; ``fallback="passthrough"`` returns a copy,
                                            ``"reference"`` maps it with the target's own stains;
                                            ``return_info=True`` / ``TileReport`` say which tiles did
all-black, uniform grey or pink, noise      ``StainEstimationError`` (no tissue / one colour / OD cloud not
                                            a plane)
single-stain tile                           noise-free: ``StainEstimationError`` (vectors < 3 degrees
                                            apart); with noise it can pass for two stains: use the slide's
                                            stains (``source=``, ``normalize_tiles``) or
                                            ``check_source=True``, which raises
black pixels in the reference               left out of every statistic (OD above ``max_od``)
98 % white background in the reference      ``StainEstimationError`` suggesting ``scale_pixels="tissue"``
                                            with a smaller ``min_tissue_fraction``, which then fits the
                                            tissue correctly
1x1 and tiny images                         fit: ``StainEstimationError`` (fewer than 64 tissue pixels);
                                            transform with a given ``source`` and deconvolution: any size
float [0, 1], uint8, uint16                 the same result (output in the input's dtype family);
                                            floats outside [0, 1] raise ``ValueError``
NaN or inf                                  ``ValueError``
RGBA, 2-D grey, channels first              ``ValueError`` with a hint
the caller's array                          never written (read-only inputs work)
==========================================  ===============================================================
"""

from __future__ import annotations

import importlib
from typing import Any

from ._core import (
    RUIFROK_HDAB,
    RUIFROK_HE,
    RUIFROK_HED,
    complete_stain_matrix,
    deconvolve,
    od_to_rgb,
    recombine,
    rgb_to_od,
)
from .macenko import (
    MacenkoNormalizer,
    StainEstimate,
    StainEstimationError,
    TransformInfo,
    estimate_stains,
    macenko_stain_matrix,
)
from .reinhard import ReinhardNormalizer, lab_to_rgb, rgb_to_lab
from .tiles import TileReport, normalize_tiles

__all__ = [
    "RUIFROK_HDAB",
    "RUIFROK_HE",
    "RUIFROK_HED",
    "MacenkoNormalizer",
    "ReinhardNormalizer",
    "StainEstimate",
    "StainEstimationError",
    "TileReport",
    "TransformInfo",
    "complete_stain_matrix",
    "deconvolve",
    "estimate_stains",
    "lab_to_rgb",
    "load_normalizer",
    "macenko_stain_matrix",
    "normalize_tiles",
    "od_to_rgb",
    "recombine",
    "rgb_to_lab",
    "rgb_to_od",
]


def load_normalizer(path: Any) -> MacenkoNormalizer | ReinhardNormalizer:
    """Load a normalizer saved with ``save(path)``, whichever kind it is."""
    import json
    from pathlib import Path

    try:
        kind = json.loads(Path(path).read_text(encoding="utf-8")).get("kind")
    except (json.JSONDecodeError, AttributeError):
        kind = None
    classes = {"MacenkoNormalizer": MacenkoNormalizer, "ReinhardNormalizer": ReinhardNormalizer}
    if kind not in classes:
        raise ValueError(f"{path}: expected a saved MacenkoNormalizer or ReinhardNormalizer, got {kind!r}")
    return classes[kind].load(path)


def __getattr__(name: str) -> Any:
    if name == "torch":  # the torch twin is imported on first use (import torch costs a second)
        return importlib.import_module(".torch", __name__)
    raise AttributeError(f"module 'nucleikit.stain' has no attribute {name!r}")
