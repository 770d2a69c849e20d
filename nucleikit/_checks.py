"""Input validation shared by the public entry points.

Each checker returns a validated *view or copy* and never writes into the caller's array. Errors name what
was expected and what came, e.g. ``ValueError: image: expected an RGB array of shape (H, W, 3), got an
array of shape (64, 64, 4) and dtype uint8 (RGBA? drop the alpha channel with image[..., :3])``.
"""

from __future__ import annotations

import numbers
from typing import Any

import numpy as np

__all__ = [
    "check_labels",
    "check_points",
    "check_positive",
    "check_probability",
    "check_rgb",
    "check_same_hw",
    "describe",
    "rgb_to_float",
]


def describe(x: Any) -> str:
    """Describe a value for an error message: type, shape and dtype where it has them."""
    if isinstance(x, np.ndarray):
        return f"an array of shape {x.shape} and dtype {x.dtype}"
    if hasattr(x, "shape") and hasattr(x, "dtype"):
        return f"a {type(x).__name__} of shape {tuple(x.shape)} and dtype {x.dtype}"
    return f"{type(x).__name__} {x!r}" if not isinstance(x, (list, tuple)) else f"a {type(x).__name__}"


def check_rgb(image: Any, name: str = "image", *, min_size: int = 1) -> np.ndarray:
    """Validate an RGB image of shape ``(H, W, 3)``.

    Parameters
    ----------
    image : array_like of shape (H, W, 3)
        uint8, uint16 or float in [0, 1].
    name : str
        Name used in error messages.
    min_size : int
        Smallest allowed height and width.

    Returns
    -------
    ndarray of shape (H, W, 3)
        The input as an ndarray (not copied when it already is one).

    Raises
    ------
    TypeError
        For a non-numeric dtype.
    ValueError
        For a wrong shape, NaN or infinite values, or floats outside [0, 1].
    """
    if not isinstance(image, np.ndarray):
        if hasattr(image, "detach") and hasattr(image, "cpu"):
            raise TypeError(
                f"{name}: expected a NumPy array of shape (H, W, 3), got {describe(image)}; "
                "use nk.data.to_image(tensor) to convert a torch tensor"
            )
        image = np.asarray(image)
    if image.ndim == 2:
        raise ValueError(
            f"{name}: expected an RGB array of shape (H, W, 3), got {describe(image)} "
            "(a greyscale image? stack it with np.dstack([g, g, g]) if you mean grey RGB)"
        )
    if image.ndim != 3 or image.shape[-1] != 3:
        hint = ""
        if image.ndim == 3 and image.shape[-1] == 4:
            hint = " (RGBA? drop the alpha channel with image[..., :3])"
        elif image.ndim == 3 and image.shape[0] == 3:
            hint = " (channels first? use image.transpose(1, 2, 0))"
        raise ValueError(f"{name}: expected an RGB array of shape (H, W, 3), got {describe(image)}{hint}")
    if image.dtype.kind not in "uif" or image.dtype == np.bool_:
        raise TypeError(f"{name}: expected uint8, uint16 or float pixels, got {describe(image)}")
    if image.shape[0] < min_size or image.shape[1] < min_size:
        raise ValueError(f"{name}: expected at least {min_size}x{min_size} pixels, got {describe(image)}")
    if image.dtype.kind == "f":
        if not np.isfinite(image).all():
            raise ValueError(f"{name}: expected finite pixel values, got NaN or inf in {describe(image)}")
        lo, hi = (float(image.min()), float(image.max())) if image.size else (0.0, 0.0)
        if lo < 0.0 or hi > 1.0:
            raise ValueError(
                f"{name}: expected float pixels in [0, 1], got values in [{lo:g}, {hi:g}] "
                "(a 0..255 image stored as float? convert with image.astype(np.uint8))"
            )
    elif image.dtype.kind == "i" and image.size and (image.min() < 0 or image.max() > 255):
        raise ValueError(
            f"{name}: expected integer pixels in 0..255, got values in [{image.min()}, {image.max()}]"
        )
    return image


def rgb_to_float(image: np.ndarray) -> np.ndarray:
    """Convert a validated RGB image to float32 in [0, 1] (uint8 / 255, uint16 / 65535), as a new array."""
    if image.dtype == np.uint8:
        return image.astype(np.float32) / np.float32(255.0)
    if image.dtype == np.uint16:
        return image.astype(np.float32) / np.float32(65535.0)
    if image.dtype.kind in "iu":
        return image.astype(np.float32) / np.float32(255.0)
    return image.astype(np.float32, copy=True)


def check_labels(labels: Any, name: str = "labels") -> np.ndarray:
    """Validate a label image of shape ``(H, W)``: integers >= 0, 0 = background.

    Returns
    -------
    ndarray of shape (H, W) and dtype int64 (bool input becomes 0/1)
    """
    labels = np.asarray(labels)
    if labels.ndim != 2:
        raise ValueError(f"{name}: expected a label image of shape (H, W), got {describe(labels)}")
    if labels.dtype == np.bool_:
        return labels.astype(np.int64)
    if labels.dtype.kind not in "iu":
        if labels.dtype.kind == "f" and labels.size and np.all(np.mod(labels, 1) == 0):
            labels = labels.astype(np.int64)
        else:
            raise TypeError(f"{name}: expected integer labels, got {describe(labels)}")
    if labels.size and labels.min() < 0:
        raise ValueError(f"{name}: expected labels >= 0 (0 = background), got minimum {labels.min()}")
    return labels.astype(np.int64, copy=False)


def check_points(points_rc: Any, name: str = "points_rc") -> np.ndarray:
    """Validate points of shape ``(N, 2)`` in (row, col) order; an empty list gives shape (0, 2).

    Returns
    -------
    ndarray of shape (N, 2) and dtype float64
    """
    pts = np.asarray(points_rc, dtype=np.float64) if not isinstance(points_rc, np.ndarray) else points_rc
    if pts.size == 0:
        return np.zeros((0, 2), dtype=np.float64)
    if pts.ndim != 2 or pts.shape[1] != 2:
        raise ValueError(f"{name}: expected points of shape (N, 2) in (row, col), got {describe(pts)}")
    if pts.dtype.kind not in "iuf":
        raise TypeError(f"{name}: expected numeric coordinates, got {describe(pts)}")
    pts = pts.astype(np.float64, copy=False)
    if not np.isfinite(pts).all():
        raise ValueError(f"{name}: expected finite coordinates, got NaN or inf")
    return pts


def check_same_hw(a: np.ndarray, b: np.ndarray, names: tuple[str, str] = ("a", "b")) -> None:
    """Raise ``ValueError`` unless two arrays share height and width."""
    if a.shape[:2] != b.shape[:2]:
        raise ValueError(
            f"{names[0]} and {names[1]}: expected the same height and width, "
            f"got {a.shape[:2]} and {b.shape[:2]}"
        )


def check_positive(value: Any, name: str, *, integer: bool = False, allow_zero: bool = False) -> Any:
    """Validate a positive (or non-negative) scalar and return it."""
    kind = numbers.Integral if integer else numbers.Real
    if isinstance(value, bool) or not isinstance(value, kind):
        what = "an integer" if integer else "a number"
        raise TypeError(f"{name}: expected {what}, got {describe(value)}")
    if not np.isfinite(value) or value < 0 or (value == 0 and not allow_zero):
        bound = ">= 0" if allow_zero else "> 0"
        raise ValueError(f"{name}: expected a finite value {bound}, got {value!r}")
    return value


def check_probability(value: Any, name: str) -> float:
    """Validate a number in [0, 1] and return it as float."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name}: expected a number in [0, 1], got {describe(value)}")
    if not 0.0 <= float(value) <= 1.0:
        raise ValueError(f"{name}: expected a number in [0, 1], got {value!r}")
    return float(value)
