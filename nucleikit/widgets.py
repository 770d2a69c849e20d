"""ipywidgets front-ends over :mod:`nucleikit.viz` and library calls; no algorithm logic lives here.

Widgets in an executed notebook are saved as static snapshots (their state renders in the book, but Python
callbacks cannot run there), so every chapter follows its widget with a static figure of the same idea.
"""

from __future__ import annotations

__all__: list[str] = []


# ------------------------------------------------------------------------------- chapter 0: synthetic data
__all__ += ["synth_widget"]


def synth_widget(*, kind: str = "he", seed: int = 0, shape: tuple[int, int] = (256, 256)):
    """Generate synthetic tiles interactively: stain style, density, organ and difficulty.

    Parameters
    ----------
    kind : {"he", "ki67"}
        Which generator.
    seed : int
        Seed of the tissue (the same seed keeps the layout while the sliders change).
    shape : tuple of int
        Tile size.

    Returns
    -------
    ipywidgets.VBox
        The controls and the figure (the tile, and its truth overlay).
    """
    import ipywidgets as widgets
    import matplotlib.pyplot as plt
    from IPython.display import display

    from . import synth, viz

    kinds = "he" if kind == "he" else "ihc"
    styles = [name for name, s in synth.STYLES.items() if s.kind == kinds]
    w_style = widgets.Dropdown(options=styles, value=styles[0], description="style")
    w_density = widgets.FloatSlider(value=1.0, min=0.2, max=2.0, step=0.1, description="density")
    w_organ = widgets.Dropdown(options=list(synth.ORGANS), value="breast", description="organ")
    w_diff = widgets.Dropdown(options=list(synth.DIFFICULTIES), value="default", description="difficulty")
    out = widgets.Output()

    def draw(*_):
        with out:
            out.clear_output(wait=True)
            gen = synth.he_tile if kind == "he" else synth.ki67_tile
            tile = gen(
                shape,
                style=w_style.value,
                density=w_density.value,
                organ=w_organ.value,
                difficulty=w_diff.value,
                rng=seed,
            )
            fig, axes = plt.subplots(1, 2, figsize=(9, 4.4))
            viz.show_image(tile.image, ax=axes[0], title=f"{w_style.value}, {tile.truth.n} nuclei")
            viz.show_truth(tile, ax=axes[1], title="truth: outlines and classes")
            fig.tight_layout()
            display(fig)
            plt.close(fig)

    for w in (w_style, w_density, w_organ, w_diff):
        w.observe(draw, names="value")
    draw()
    return widgets.VBox([widgets.HBox([w_style, w_density]), widgets.HBox([w_organ, w_diff]), out])
