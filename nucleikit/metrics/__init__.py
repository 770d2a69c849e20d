"""Metrics: segmentation (pixel and object), detection (point matching, P/R/F1, PR curves) and colour.

All object metrics are built on one overlap-matrix helper (:func:`overlap_matrix`); all point metrics on
one gated Hungarian matching (:func:`match_points`).
"""

from __future__ import annotations

from .color import *  # noqa: F403
from .color import __all__ as _color_all
from .detection import *  # noqa: F403
from .detection import __all__ as _detection_all
from .segmentation import *  # noqa: F403
from .segmentation import __all__ as _segmentation_all

__all__ = [*_color_all, *_detection_all, *_segmentation_all]
