"""Draw the chapter map of the landing page from nucleikit's chapter registry.

Run ``python book/chapter_map.py`` (``make figures``) to regenerate ``book/images/chapter_map.svg``; the
output is deterministic, and a test checks that the committed file is up to date.
"""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch

from nucleikit.profiles import CHAPTERS

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "book" / "images" / "chapter_map.svg"

# Column = method family, row = position in it.
LAYOUT = {
    0: (0.0, 1.4),
    1: (1.0, 2.3),
    3: (1.0, 1.0),
    2: (2.0, 2.3),
    7: (2.0, 1.0),
    6: (2.0, -0.2),
    4: (3.0, 1.55),
    5: (3.0, 0.45),
    8: (4.0, 1.0),
}
SHORT = {
    7: "KiNet: Ki67 detection + classification",
    3: "Segmentation from partial labels",
    4: "Crosswise sparse autoencoder",
    6: "InfoGAN clustering",
}
W, H = 0.43, 0.3
# Arrows that would cross a box are drawn as arcs.
CURVES = {(2, 8): -0.35, (6, 8): 0.35, (3, 8): 0.0}
FAMILY_COLOURS = {
    0: "#e8e8e8",
    1: "#f6d7e6",
    2: "#f6d7e6",
    3: "#d9e8f6",
    4: "#dff1dc",
    5: "#dff1dc",
    6: "#fdebd0",
    7: "#dff1dc",
    8: "#e8e8e8",
}


def _anchor(
    src: tuple[float, float], dst: tuple[float, float]
) -> tuple[tuple[float, float], tuple[float, float]]:
    (x0, y0), (x1, y1) = src, dst
    if abs(x1 - x0) < 1e-6:  # same column: bottom/top edges
        sign = 1 if y1 < y0 else -1
        return (x0, y0 - sign * H), (x1, y1 + sign * H)
    return (x0 + W, y0), (x1 - W, y1)


def draw(out: Path = OUT, root: Path = ROOT) -> Path:
    """Draw the map into ``out`` (SVG) and return the path."""
    plt.rcParams["svg.hashsalt"] = "nucleikit"
    plt.rcParams["svg.fonttype"] = "none"
    fig, ax = plt.subplots(figsize=(10, 4.4))
    for ch in CHAPTERS.values():
        x, y = LAYOUT[ch.number]
        box = FancyBboxPatch(
            (x - W, y - H),
            2 * W,
            2 * H,
            boxstyle="round,pad=0.02,rounding_size=0.06",
            facecolor=FAMILY_COLOURS[ch.number],
            edgecolor="#333333",
            linestyle="-" if ch.exists(root) else "--",
            linewidth=1.2,
        )
        ax.add_patch(box)
        ax.text(x, y + 0.13, f"{ch.number:02d}", ha="center", va="center", fontsize=11, weight="bold")
        ax.text(
            x,
            y - 0.1,
            textwrap.fill(SHORT.get(ch.number, ch.title), 20),
            ha="center",
            va="center",
            fontsize=7.5,
            linespacing=1.1,
        )
    for ch in CHAPTERS.values():
        for req in ch.requires:
            if req == 0:
                continue  # every chapter uses chapter 0's data; drawn once in the legend instead
            a, b = _anchor(LAYOUT[req], LAYOUT[ch.number])
            rad = CURVES.get((req, ch.number), 0.0)
            ax.add_patch(
                FancyArrowPatch(
                    a,
                    b,
                    arrowstyle="-|>",
                    mutation_scale=10,
                    color="#666666",
                    linewidth=0.8,
                    shrinkA=1,
                    shrinkB=1,
                    connectionstyle=f"arc3,rad={rad}",
                )
            )
    ax.text(
        -0.45,
        -0.8,
        "Solid box: in this edition; dashed: planned. Arrow: builds on. "
        "Every chapter uses chapter 00's synthetic tissue and samples.",
        fontsize=7.5,
        color="#444444",
    )
    for x, label in (
        (0.0, "data"),
        (1.0, "stain and segmentation"),
        (2.0, "weak labels, transfer"),
        (3.0, "detection"),
        (4.0, "capstone"),
    ):
        ax.text(x, 3.0, label, ha="center", fontsize=8, color="#555555", style="italic")
    ax.set_xlim(-0.55, 4.55)
    ax.set_ylim(-0.9, 3.15)
    ax.axis("off")
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, format="svg", bbox_inches="tight", metadata={"Date": None, "Creator": None})
    plt.close(fig)
    return out


if __name__ == "__main__":
    print(draw(Path(sys.argv[1]) if len(sys.argv) > 1 else OUT))
