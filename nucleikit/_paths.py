"""Where nucleikit writes things: results, checkpoints, the data cache.

Every location can be moved with an environment variable, so papermill reruns, nbval and the book
build agree without relying on the kernel's working directory.

========================  =====================================  ======================================
variable                  meaning                                default
========================  =====================================  ======================================
``NUCLEIKIT_BUILD``       build folder                           ``<checkout>/_build`` or the user cache
``NUCLEIKIT_RESULTS``     metrics written by :mod:`nk.report`    ``<build>/results``
``NUCLEIKIT_CHECKPOINTS`` trained weights reused by reruns       ``<build>/checkpoints``
``NUCLEIKIT_DATA``        sample images and downloaded datasets  ``<user cache>/nucleikit/data``
========================  =====================================  ======================================
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

__all__ = ["build_dir", "checkpoint_dir", "data_dir", "project_root", "results_dir", "user_cache_dir"]


def project_root() -> Path | None:
    """Return the source checkout holding this package, or None for an installed wheel."""
    here = Path(__file__).resolve().parent.parent
    if (here / "pyproject.toml").is_file() and (here / "_toc.yml").is_file():
        return here
    return None


def user_cache_dir() -> Path:
    """Return the per-user cache folder for nucleikit (XDG on Linux, Library/Caches on macOS)."""
    if sys.platform == "darwin":
        base = Path.home() / "Library" / "Caches"
    elif os.name == "nt":
        base = Path(os.environ.get("LOCALAPPDATA", Path.home() / "AppData" / "Local"))
    else:
        base = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
    return base / "nucleikit"


def _env_path(name: str) -> Path | None:
    value = os.environ.get(name, "").strip()
    return Path(value).expanduser() if value else None


def build_dir() -> Path:
    """Return the build folder (``$NUCLEIKIT_BUILD``, else ``<checkout>/_build``, else the user cache)."""
    env = _env_path("NUCLEIKIT_BUILD")
    if env is not None:
        return env
    root = project_root()
    return root / "_build" if root is not None else user_cache_dir() / "build"


def results_dir() -> Path:
    """Return the folder where chapters record their metrics (one JSON file per chapter)."""
    return _env_path("NUCLEIKIT_RESULTS") or build_dir() / "results"


def checkpoint_dir() -> Path:
    """Return the folder of cached trained models, keyed by a hash of settings and code."""
    return _env_path("NUCLEIKIT_CHECKPOINTS") or build_dir() / "checkpoints"


def data_dir() -> Path:
    """Return the data cache (``$NUCLEIKIT_DATA``, else ``<user cache>/nucleikit/data``)."""
    return _env_path("NUCLEIKIT_DATA") or user_cache_dir() / "data"
