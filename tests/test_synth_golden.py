"""Golden-output regression test of nk.synth: every output is bit-identical to the stored hashes.

Four chapters calibrated their results (and their ``# NBVAL_CHECK_OUTPUT`` cells) on the current
generator, so any change to ``nucleikit/synth`` (a speed-up, a refactor) must leave every output array,
byte for byte, and the consumption of the random stream exactly as it was. This test hashes (sha256 of
dtype, shape and raw bytes; floats exactly, not rounded) every output of a set of cases and compares them
with ``tests/data/synth_golden.json``.

The hashes depend on the numerical environment (NumPy's SIMD ``exp``, Pillow's libjpeg), so the test is
skipped, with the reason, where NumPy / SciPy / Pillow versions or the CPU's SIMD level differ from the
ones the file was made with. Regenerate the file ONLY for a deliberate change of the generator's output
(and say so in the commit)::

    .venv/bin/python -m tests.test_synth_golden --write
"""

from __future__ import annotations

import hashlib
import json
import platform
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import nucleikit as nk

S = nk.synth
GOLDEN = Path(__file__).parent / "data" / "synth_golden.json"

# A case: (kind, shape, keyword arguments of he_tile / ki67_tile (rng is a seed for a Generator), extras).
# Extras add outputs computed from the tile: "render" (other styles and difficulties), "annotate"
# (partial_mask, dot_annotations, weak_regions, connected_regions), "crops" (nucleus_crops).
_D = S.DEFAULT_DIFFICULTY
CASES: dict[str, tuple[str, tuple[int, int], dict[str, Any], tuple[str, ...]]] = {
    # ---- H&E
    "he_64_s0": ("he", (64, 64), {"rng": 0}, ("render", "annotate")),
    "he_64_s5_colon": ("he", (64, 64), {"rng": 5, "organ": "colon"}, ()),
    "he_100x37_s1": ("he", (100, 37), {"rng": 1}, ("render", "annotate", "crops")),
    "he_37x100_s2_hard": ("he", (37, 100), {"rng": 2, "difficulty": "hard"}, ()),
    "he_256_s0": ("he", (256, 256), {"rng": 0}, ("render", "annotate", "crops")),
    "he_256_s1": ("he", (256, 256), {"rng": 1}, ()),
    "he_256_s2_colon": ("he", (256, 256), {"rng": 2, "organ": "colon"}, ("annotate",)),
    "he_256_s3_prostate": ("he", (256, 256), {"rng": 3, "organ": "prostate"}, ("crops",)),
    "he_256_s4_lab_b": ("he", (256, 256), {"rng": 4, "style": "he_lab_b"}, ("render",)),
    "he_256_s5_lab_c_tumour": ("he", (256, 256), {"rng": 5, "style": "he_lab_c", "tissue": "tumour"}, ()),
    "he_256_s6_lab_d_lymph": ("he", (256, 256), {"rng": 6, "style": "he_lab_d", "tissue": "lymphocyte"}, ()),
    "he_256_s7_stroma": ("he", (256, 256), {"rng": 7, "tissue": "stroma"}, ("annotate",)),
    "he_256_s8_lumen_colon": ("he", (256, 256), {"rng": 8, "tissue": "lumen", "organ": "colon"}, ()),
    "he_256_s9_hard": ("he", (256, 256), {"rng": 9, "difficulty": "hard"}, ("render", "crops")),
    "he_256_s10_clean": ("he", (256, 256), {"rng": 10, "difficulty": "clean"}, ("render", "annotate")),
    "he_256_s11_easy": ("he", (256, 256), {"rng": 11, "difficulty": "easy"}, ()),
    "he_256_s12_mpp1": ("he", (256, 256), {"rng": 12, "mpp": 1.0}, ("render", "crops")),
    "he_256_s13_mpp1_hard_colon": (
        "he",
        (256, 256),
        {"rng": 13, "mpp": 1.0, "difficulty": "hard", "organ": "colon"},
        (),
    ),
    "he_256_s14_mpp025": ("he", (256, 256), {"rng": 14, "mpp": 0.25}, ()),
    "he_256_s15_dense_fold": (
        "he",
        (256, 256),
        {"rng": 15, "density": 1.6, "difficulty": _D.replace(fold=1.0)},
        ("annotate",),
    ),
    "he_256_s16_nojpeg": ("he", (256, 256), {"rng": 16, "difficulty": _D.replace(jpeg_quality=0)}, ()),
    "he_128_s17_empty": ("he", (128, 128), {"rng": 17, "density": 0.0}, ("render", "annotate", "crops")),
    "he_96_s18_empty_clean": ("he", (96, 96), {"rng": 18, "density": 0.0, "difficulty": "clean"}, ()),
    "he_1024_s0": ("he", (1024, 1024), {"rng": 0}, ("render", "annotate", "crops")),
    # ---- Ki67
    "ki67_64_s0": ("ki67", (64, 64), {"rng": 0}, ("render", "annotate")),
    "ki67_100x37_s1": ("ki67", (100, 37), {"rng": 1}, ("render", "crops")),
    "ki67_256_s0": ("ki67", (256, 256), {"rng": 0}, ("render", "annotate", "crops")),
    "ki67_256_s1": ("ki67", (256, 256), {"rng": 1}, ()),
    "ki67_256_s2_index06_lab_b": (
        "ki67",
        (256, 256),
        {"rng": 2, "ki67_index": 0.6, "style": "ihc_lab_b"},
        (),
    ),
    "ki67_256_s3_colon_tumour": ("ki67", (256, 256), {"rng": 3, "organ": "colon", "tissue": "tumour"}, ()),
    "ki67_256_s4_hard": ("ki67", (256, 256), {"rng": 4, "difficulty": "hard"}, ("render",)),
    "ki67_256_s5_clean": ("ki67", (256, 256), {"rng": 5, "difficulty": "clean"}, ("annotate",)),
    "ki67_256_s6_mpp1_prostate": (
        "ki67",
        (256, 256),
        {"rng": 6, "mpp": 1.0, "organ": "prostate"},
        ("crops",),
    ),
    "ki67_256_s7_mpp1_hard": ("ki67", (256, 256), {"rng": 7, "mpp": 1.0, "difficulty": "hard"}, ()),
    "ki67_128_s8_index0": ("ki67", (128, 128), {"rng": 8, "ki67_index": 0.0, "tissue": "lymphocyte"}, ()),
    "ki67_128_s9_index1_dense": ("ki67", (128, 128), {"rng": 9, "ki67_index": 1.0, "density": 1.6}, ()),
}
#: tile_steps cases: (kind, shape, keyword arguments).
STEP_CASES: dict[str, tuple[str, tuple[int, int], dict[str, Any]]] = {
    "steps_he_96_s11": ("he", (96, 96), {"rng": 11}),
    "steps_ki67_80x120_s12_hard": ("ki67", (80, 120), {"rng": 12, "difficulty": "hard", "ki67_index": 0.5}),
}


def _hash(x: Any) -> str:
    """sha256 (first 32 hex digits) of an array's dtype, shape and exact bytes, or of a value's repr."""
    h = hashlib.sha256()
    if isinstance(x, np.ndarray):
        h.update(f"{x.dtype.str}|{x.shape}|".encode())
        h.update(np.ascontiguousarray(x).tobytes())
    else:
        h.update(repr(x).encode())
    return h.hexdigest()[:32]


def _truth_outputs(prefix: str, tile: S.Tile) -> dict[str, str]:
    t = tile.truth
    out = {"image": tile.image}
    for f in (
        "labels",
        "centroids_rc",
        "classes",
        "regions",
        "concentrations",
        "stain_matrix",
        "instance_regions",
        "dab_positive",
    ):
        out[f] = getattr(t, f)
    out["style.intensity"] = t.style.intensity
    out["style.background"] = t.style.background
    out["meta"] = (t.class_names, t.region_names, t.tissue_type, t.style.name, t.mpp, t.organ, t.n)
    return {f"{prefix}{k}": _hash(v) for k, v in out.items()}


def _next_draw(gen: np.random.Generator) -> str:
    """Where the random stream stands after a call (its consumption, in order and amount)."""
    return _hash(gen.integers(0, 2**63, 4))


def compute_case(name: str) -> dict[str, str]:
    """Hash every output of one golden case."""
    if name in STEP_CASES:
        kind, shape, kw = STEP_CASES[name]
        gen = np.random.default_rng(kw["rng"])
        tile, steps = S.tile_steps(kind, shape, **{**kw, "rng": gen})
        out = _truth_outputs("", tile)
        out["rng_after"] = _next_draw(gen)
        out["steps.names"] = _hash(tuple(steps))
        for k, v in steps.items():
            out[f"steps[{k}]"] = _hash(v)
        return out
    kind, shape, kw, extras = CASES[name]
    gen = np.random.default_rng(kw["rng"])
    make: Callable[..., S.Tile] = S.he_tile if kind == "he" else S.ki67_tile
    tile = make(shape, **{**kw, "rng": gen})
    out = _truth_outputs("", tile)
    out["rng_after"] = _next_draw(gen)
    truth = tile.truth
    if "render" in extras:
        others = ("he_lab_c", "he_lab_d") if kind == "he" else ("ihc_lab_b",)
        for style in others:
            out[f"render[{style}]"] = _hash(S.render(truth, style, rng=7))
        out["render[clean]"] = _hash(S.render(truth, difficulty="clean"))
        out["render[hard]"] = _hash(S.render(truth, difficulty="hard", rng=np.random.default_rng(3)))
        out["render[float]"] = _hash(S.render(truth, others[0], rng=4, as_float=True))
        g = np.random.default_rng(5)
        out["render[default,gen]"] = _hash(S.render(truth, rng=g))
        out["render[default,gen].rng_after"] = _next_draw(g)
    if "annotate" in extras:
        for frac in (0.0, 0.3, 1.0):
            labels, ids = S.partial_mask(truth, frac, rng=1)
            out[f"partial_mask[{frac}]"] = _hash(labels)
            out[f"partial_mask[{frac}].ids"] = _hash(ids)
        for frac, jitter in ((1.0, 0.0), (0.5, 1.5)):
            pts, cls = S.dot_annotations(truth, fraction=frac, jitter=jitter, rng=2)
            out[f"dot_annotations[{frac},{jitter}]"] = _hash(pts)
            out[f"dot_annotations[{frac},{jitter}].classes"] = _hash(cls)
        for frac in (0.3, 0.7):
            out[f"weak_regions[{frac}]"] = _hash(S.weak_regions(tile, frac, rng=3))
        comp, n = S.connected_regions(truth.regions)
        out["connected_regions"] = _hash(comp)
        out["connected_regions.n"] = _hash(n)
    if "crops" in extras:
        for size, classes, seed in ((27, None, None), (32, None, 0), (40, [1], None), (32, [0, 2], 1)):
            X, y = S.nucleus_crops([tile, tile], size, classes=classes, rng=seed)
            out[f"crops[{size},{classes},{seed}]"] = _hash(X)
            out[f"crops[{size},{classes},{seed}].labels"] = _hash(y)
    return out


def environment() -> dict[str, Any]:
    """The numerical environment the hashes depend on."""
    import PIL
    import scipy

    try:
        from numpy._core._multiarray_umath import __cpu_features__ as feats
    except ImportError:  # pragma: no cover
        feats = {}
    simd = [f for f in ("AVX512_SKX", "AVX512F", "AVX2", "FMA3", "ASIMD", "NEON") if feats.get(f)]
    return {
        "numpy": np.__version__,
        "scipy": scipy.__version__,
        "pillow": PIL.__version__,
        "machine": platform.machine(),
        "numpy_simd": simd,
    }


def _load() -> dict[str, Any]:
    return json.loads(GOLDEN.read_text())


ALL_CASES = [*CASES, *STEP_CASES]


def test_golden_file_covers_every_case():
    stored = _load()
    assert sorted(stored["cases"]) == sorted(ALL_CASES)
    assert all(len(v) >= 13 for v in stored["cases"].values())  # every Truth field + rng_after


@pytest.mark.parametrize("name", ALL_CASES)
def test_outputs_bit_identical_to_golden(name):
    stored = _load()
    env = environment()
    if stored["environment"] != env:
        pytest.skip(f"golden hashes made in {stored['environment']}, this is {env}")
    want = stored["cases"][name]
    got = compute_case(name)
    assert sorted(got) == sorted(want), "the set of outputs of this case changed"
    differ = [k for k in want if got[k] != want[k]]
    assert not differ, f"{name}: outputs differ from the golden ones: {differ}"


def _write() -> None:
    data = {"environment": environment(), "cases": {name: compute_case(name) for name in ALL_CASES}}
    GOLDEN.parent.mkdir(parents=True, exist_ok=True)
    GOLDEN.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n")
    print(f"wrote {len(data['cases'])} cases to {GOLDEN}")


if __name__ == "__main__":
    if sys.argv[1:] != ["--write"]:
        sys.exit("usage: python -m tests.test_synth_golden --write  (regenerates the golden hashes)")
    _write()
