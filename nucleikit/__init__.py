"""nucleikit: an executable teaching kit for computational pathology (cell nuclei in histology images).

Conventions, enforced at every public entry point:

- NumPy images are ``(H, W, 3)`` uint8 RGB; float images are float32 in [0, 1].
- Torch tensors are ``(B, C, H, W)`` float32.
- Label images are ``(H, W)`` int, 0 = background, instances 1..N.
- Points are ``(N, 2)`` float in **(row, col)** order; such arrays are named ``*_rc``.
- Stain matrices are ``(n_stains, 3)``; rows are unit optical-density vectors ordered H, E (or H, DAB).
- Percentiles are in percent; distances in pixels unless a name ends in ``_um``.
- Functions never modify their inputs; bad input raises ``ValueError`` / ``TypeError`` naming what was
  expected and what came.
- Anything random takes a keyword-only ``rng`` (NumPy) or ``generator`` (torch).

Submodules are imported on first use (``nk.synth``, ``nk.stain``, ...), so ``import nucleikit`` stays fast.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

__version__ = "0.1.0"

_SUBMODULES = (
    "data",
    "detect",
    "exercises",
    "inference",
    "losses",
    "metrics",
    "models",
    "profiles",
    "report",
    "segment",
    "stain",
    "synth",
    "train",
    "transfer",
    "viz",
    "widgets",
)

__all__ = ["__version__", *_SUBMODULES]

if TYPE_CHECKING:  # pragma: no cover
    from . import (  # noqa: F401
        data,
        detect,
        exercises,
        inference,
        losses,
        metrics,
        models,
        profiles,
        report,
        segment,
        stain,
        synth,
        train,
        transfer,
        viz,
        widgets,
    )


def __getattr__(name: str):
    if name in _SUBMODULES:
        return importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module 'nucleikit' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
