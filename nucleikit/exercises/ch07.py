"""Exercise checks for chapter 7, KiNet.

- ``07.1`` ``weighted_mse(pred, target, lam)``: Eq. 2 of Xing et al., the loss of the proximity maps.
- ``07.2`` ``labelling_index(classes)``: the Ki67 labelling index of a set of classified nuclei.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

from . import register


def _maps(seed: int, shape: tuple[int, int, int] = (3, 12, 15)) -> tuple[np.ndarray, np.ndarray]:
    """Make a target (sparse bumps in [0, 1]) and a prediction near it, both (S, H, W) float32."""
    rng = np.random.default_rng(seed)
    target = np.clip(rng.normal(0, 1, shape), 0, None).astype(np.float32)
    target[target < 1.0] = 0  # most pixels are 0, as in a proximity map
    target = np.minimum(target / 3, 1).astype(np.float32)
    pred = (target + rng.normal(0, 0.2, shape)).astype(np.float32)
    return pred, target


def _reference(pred: np.ndarray, target: np.ndarray, lam: float) -> float:
    import torch

    from ..losses import proximity_mse

    return float(proximity_mse(torch.from_numpy(pred[None]), torch.from_numpy(target[None]), lam=lam))


@register("07.1")
def check_weighted_mse(func: Callable[..., Any]) -> None:
    """``weighted_mse(pred, target, lam)`` on (S, H, W) maps must equal Eq. 2 averaged over pixels."""
    for seed, lam in ((0, 5.0), (1, 0.5), (2, 0.0)):
        pred, target = _maps(seed)
        keep = (pred.copy(), target.copy())
        got = float(func(pred, target, lam))
        want = _reference(pred, target, lam)
        plain = float(0.5 * ((pred - target) ** 2).sum(0).mean())
        if lam > 0 and abs(got - plain) < 1e-6 * max(1.0, plain):
            raise AssertionError("that is the unweighted MSE; weight each pixel by y + lam * mean(y_s)")
        no_half = 2 * want
        if abs(got - no_half) < 1e-5 * max(1.0, no_half) and abs(got - want) > 1e-5 * max(1.0, want):
            raise AssertionError("off by a factor of 2: Eq. 2 has a 1/2 in front of the sum")
        assert abs(got - want) < 1e-5 * max(1.0, abs(want)), (
            f"seed {seed}, lam={lam}: expected {want:.6f}, got {got:.6f}. Per class s, the weight is "
            "target[s] + lam * target[s].mean() (the mean of that class's map); sum over the classes, "
            "then average over the H * W pixels"
        )
        assert np.array_equal(pred, keep[0]), "pred was modified in place"
        assert np.array_equal(target, keep[1]), "target was modified in place"
    # lam = 0 and an all-zero target: nothing to learn, the loss is exactly 0 whatever the prediction
    pred, _ = _maps(3)
    zero = float(func(pred, np.zeros_like(pred), 0.0))
    assert abs(zero) < 1e-12, (
        f"with lam = 0 and an all-zero target every weight is 0, so the loss is 0; got {zero}"
    )


@register("07.2")
def check_labelling_index(func: Callable[..., Any]) -> None:
    """``labelling_index(classes)``: positive tumour / (positive + negative tumour); NaN without tumour."""
    cases = [
        (np.array([0, 0, 1, 2, 2, 2]), 2 / 3),
        (np.array([1, 1, 1, 0]), 1 / 4),
        (np.array([0, 2, 2, 2, 2, 2, 2, 2, 2, 2]), 1.0),
    ]
    for classes, want in cases:
        keep = classes.copy()
        got = float(func(classes))
        if abs(got - np.mean(classes == 0)) < 1e-9 and abs(got - want) > 1e-9:
            raise AssertionError(
                f"classes {classes.tolist()}: got {got:.3f} = positive / all nuclei; the index ignores "
                "non-tumour nuclei (class 2): positive / (positive + negative tumour)"
            )
        assert abs(got - want) < 1e-9, f"classes {classes.tolist()}: expected {want:.4f}, got {got:.4f}"
        assert np.array_equal(classes, keep), "the classes were modified in place"
    for classes in (np.array([2, 2, 2]), np.zeros(0, dtype=np.int64)):
        got = float(func(classes))
        assert math.isnan(got), (
            f"classes {classes.tolist()}: no tumour nucleus, so the index is undefined; return float('nan'), "
            f"got {got}"
        )
