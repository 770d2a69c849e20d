"""Exercise checks for chapter 0, light, stains and data.

- ``00.1`` ``beer_lambert(concentrations, stain_matrix, background)``: render an image from concentrations.
- ``00.2`` ``count_hits(true_rc, pred_rc, radius)``: one-to-one matches within a radius (greedy).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from . import register


@register("00.1")
def check_beer_lambert(func: Callable[..., Any]) -> None:
    """``beer_lambert`` must equal the clean rendering of :func:`nucleikit.synth.render` (within 1 level)."""
    from .. import synth

    for kind, seed in (("he", 0), ("ki67", 1)):
        gen = synth.he_tile if kind == "he" else synth.ki67_tile
        truth = gen((40, 48), difficulty="clean", rng=seed).truth
        conc = truth.concentrations.copy()
        got = np.asarray(func(conc, truth.stain_matrix, truth.style.background))
        assert got.shape == (40, 48, 3), f"expected an image of shape (40, 48, 3), got {got.shape}"
        assert got.dtype == np.uint8, f"expected uint8 pixels, got {got.dtype} (round and convert at the end)"
        want = synth.render(truth, difficulty="clean")
        diff = np.abs(got.astype(int) - want.astype(int))
        if diff.max() > 1:
            white = np.asarray(
                func(np.zeros((2, 2, conc.shape[-1])), truth.stain_matrix, truth.style.background)
            )
            if np.all(white == 255):
                raise AssertionError(
                    "with no stain the pixel should be the glass colour 255 * background, "
                    "not pure white: multiply by background"
                )
            raise AssertionError(
                f"{kind}: pixels differ from 255 * background * exp(-C S) by up to {diff.max()} "
                "levels; did you use exp(-OD) (not exp(OD)) and the (n, 3) stain matrix as is?"
            )
        assert np.array_equal(conc, truth.concentrations), "the concentrations were modified in place"


@register("00.2")
def check_count_hits(func: Callable[..., Any]) -> None:
    """``count_hits`` on constructed cases with known answers, and against nk.metrics.match_points."""
    cases = [
        ([[0, 0]], [[0, 3]], 5.0, 1, "one point 3 px away, radius 5"),
        ([[0, 0]], [[0, 6]], 5.0, 0, "a prediction farther than the radius is no hit"),
        ([[0, 0]], [[0, 1], [1, 0]], 5.0, 1, "two predictions near one point count once"),
        ([[0, 0], [0, 2]], [[0, 1]], 5.0, 1, "one prediction cannot match two points"),
        ([[0, 0], [10, 10]], [[0, 1], [10, 12], [50, 50]], 3.0, 2, "two hits, one false positive"),
        ([], [[1, 1]], 3.0, 0, "no true points"),
        ([[1, 1]], np.zeros((0, 2)), 3.0, 0, "no predictions"),
    ]
    for true_rc, pred_rc, radius, want, what in cases:
        got = func(
            np.asarray(true_rc, float).reshape(-1, 2), np.asarray(pred_rc, float).reshape(-1, 2), radius
        )
        assert int(got) == want, f"{what}: expected {want} hits, got {got}"
    from ..metrics import match_points

    rng = np.random.default_rng(0)
    true_rc = rng.uniform(0, 100, (40, 2))
    pred_rc = true_rc[:30] + rng.normal(0, 1.0, (30, 2))
    got = int(func(true_rc, pred_rc, 6.0))
    want = match_points(true_rc, pred_rc, 6.0).tp
    assert got == want, f"well separated points: expected {want} hits (every close prediction), got {got}"
