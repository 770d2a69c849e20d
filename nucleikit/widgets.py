"""ipywidgets front-ends over :mod:`nucleikit.viz` and library calls; no algorithm logic lives here.

Widgets in an executed notebook are saved as static snapshots (their state renders in the book, but Python
callbacks cannot run there), so every chapter follows its widget with a static figure of the same idea.
"""

from __future__ import annotations

__all__: list[str] = []


# ------------------------------------------------------------------------- chapter 1: stain normalization
__all__ += ["stain_normalization_widget"]


def stain_normalization_widget(source, targets, *, io: float = 240.0, alpha: float = 1.0, beta: float = 0.15):
    """Macenko normalization of one image with sliders for ``alpha`` and ``beta`` and a target menu.

    Parameters
    ----------
    source : ndarray of shape (H, W, 3)
        The image to normalize.
    targets : dict of str to ndarray of shape (h, w, 3)
        Target images by name.
    io : float
        Glass intensity (0..255 scale) for every fit.
    alpha, beta : float
        Initial slider values (the paper's 1 and 0.15).

    Returns
    -------
    ipywidgets.VBox
        The controls and the figure (source, target, normalized, angle histogram) as an ``Image`` widget.
        An image whose stains cannot be estimated at the chosen settings shows the error message instead.

    Notes
    -----
    The figure is a PNG in an ``ipywidgets.Image``, not an ``Output`` widget: drawing into an ``Output``
    widget inside the cell that creates it hung headless execution (papermill / nbclient) once pyplot was
    imported, and the PNG is kept in the saved widget state, so the book's snapshot shows it.
    """
    import io as _io

    import ipywidgets as widgets
    import matplotlib.pyplot as plt
    import numpy as np

    from . import stain, viz

    names = list(targets)
    w_alpha = widgets.FloatSlider(value=alpha, min=0.1, max=10.0, step=0.1, description="alpha (%)")
    w_beta = widgets.FloatSlider(value=beta, min=0.0, max=0.6, step=0.01, description="beta (OD)")
    w_target = widgets.Dropdown(options=names, value=names[0], description="target")
    picture = widgets.Image(format="png")

    def draw(change=None):
        fig, axes = plt.subplots(1, 4, figsize=(13, 3.2))
        target = targets[w_target.value]
        viz.show_image(source, ax=axes[0], title="source")
        viz.show_image(target, ax=axes[1], title=f"target: {w_target.value}")
        try:
            norm = stain.MacenkoNormalizer(io=io, alpha=w_alpha.value, beta=w_beta.value).fit(target)
            viz.show_image(norm.transform(source), ax=axes[2], title="Macenko-normalized")
            est = norm.estimate(source)
            od = stain.rgb_to_od(source, io=io).reshape(-1, 3)
            od = od[(od >= w_beta.value).all(axis=1)]
            phi = np.arctan2(od @ est.stain_matrix[1], od @ est.stain_matrix[0])
            viz.plot_angle_histogram(phi, ax=axes[3], title="source tissue: angle to H vs E")
            axes[3].set_xlabel("atan2(OD·E, OD·H) (degrees)")
        except ValueError as exc:
            for ax in axes[2:]:
                ax.axis("off")
            axes[2].text(0, 0.5, "\n".join(str(exc)[i : i + 50] for i in range(0, 200, 50)), fontsize=8)
        fig.tight_layout()
        buf = _io.BytesIO()
        fig.savefig(buf, format="png", dpi=72)
        plt.close(fig)
        picture.value = buf.getvalue()

    for w in (w_alpha, w_beta, w_target):
        w.observe(draw, names="value")
    draw()
    return widgets.VBox([widgets.HBox([w_alpha, w_beta, w_target]), picture])


# ------------------------------------------------------------------------------- chapter 0: synthetic data
__all__ += ["synth_widget"]


def _figure_png(fig) -> bytes:
    """Render a matplotlib figure to PNG bytes and close it."""
    import io

    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=80)
    plt.close(fig)
    return buf.getvalue()


def synth_widget(*, kind: str = "he", seed: int = 0, shape: tuple[int, int] = (256, 256)):
    """Generate synthetic tiles interactively: stain style, density, organ and difficulty.

    The figure is an ``ipywidgets.Image`` (PNG bytes), not an ``Output`` widget: capturing ``display``
    calls in an ``Output`` widget can hang papermill's kernel client (seen in this project's CI runs).

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

    from . import synth, viz

    kinds = "he" if kind == "he" else "ihc"
    styles = [name for name, s in synth.STYLES.items() if s.kind == kinds]
    w_style = widgets.Dropdown(options=styles, value=styles[0], description="style")
    w_density = widgets.FloatSlider(value=1.0, min=0.2, max=2.0, step=0.1, description="density")
    w_organ = widgets.Dropdown(options=list(synth.ORGANS), value="breast", description="organ")
    w_diff = widgets.Dropdown(options=list(synth.DIFFICULTIES), value="default", description="difficulty")
    image = widgets.Image(format="png")

    def draw(*_):
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
        image.value = _figure_png(fig)

    for w in (w_style, w_density, w_organ, w_diff):
        w.observe(draw, names="value")
    draw()
    return widgets.VBox([widgets.HBox([w_style, w_density]), widgets.HBox([w_organ, w_diff]), image])


# ------------------------------------------------------------------------ chapter 3: segmentation
__all__ += ["weight_map_widget"]


def weight_map_widget(
    image,
    annotated,
    truth=None,
    *,
    alpha: float = 5.0,
    beta: float = 0.5,
    lam: float = 0.5,
    erosion_radius: int = 5,
    seed: int = 0,
):
    """Show the background weight map of Sayin Mercadier et al. with sliders for alpha, beta and lambda.

    The figure is an ``ipywidgets.Image`` (PNG bytes), not an ``Output`` widget, like the other widgets of
    this module (an ``Output`` widget can hang papermill's kernel client).

    Parameters
    ----------
    image : ndarray of shape (H, W, 3)
        The H&E image.
    annotated : ndarray of shape (H, W)
        Annotated nuclei (> 0).
    truth : ndarray of shape (H, W), optional
        All true nuclei (> 0): when given, the title reports the mean weight on the *unannotated* nuclei
        (what the loss wrongly calls background) and on true background.
    alpha, beta, lam : float
        Initial slider values (chapter 3's defaults: 5 px, 0.5 / px, 0.5).
    erosion_radius : int
        Radius of the disk eroding the k-means background (initial value of its slider).
    seed : int
        Seed of the k-means.

    Returns
    -------
    ipywidgets.VBox
        The controls and the figure (annotation, distance weights ``m``, eroded background, ``m_hat``).
    """
    import ipywidgets as widgets
    import matplotlib.pyplot as plt
    import numpy as np

    from . import losses, viz

    w_alpha = widgets.FloatSlider(value=alpha, min=0.0, max=20.0, step=0.5, description="alpha (px)")
    w_beta = widgets.FloatLogSlider(
        value=beta, base=10, min=-2.0, max=0.5, step=0.1, description="beta (1/px)"
    )
    w_lam = widgets.FloatSlider(value=lam, min=0.0, max=1.0, step=0.05, description="lambda")
    w_erosion = widgets.IntSlider(value=erosion_radius, min=0, max=12, step=1, description="erosion (px)")
    picture = widgets.Image(format="png")

    def draw(*_):
        m = losses.distance_weights(annotated, alpha=w_alpha.value, beta=w_beta.value)
        bg = losses.kmeans_background(image, erosion_radius=w_erosion.value, rng=seed)
        m_hat = losses.background_weight_map(
            annotated,
            image,
            alpha=w_alpha.value,
            beta=w_beta.value,
            lam=w_lam.value,
            erosion_radius=w_erosion.value,
            rng=seed,
        )
        fig, axes = plt.subplots(1, 4, figsize=(15, 3.6))
        viz.show_labels(image, annotated, ax=axes[0], title="annotated nuclei")
        viz.show_map(m, ax=axes[1], title="distance weights m")
        viz.show_map(bg.astype(float) * w_lam.value, ax=axes[2], title="lambda x eroded k-means background")
        title = "m_hat = max(m, lambda b)"
        if truth is not None:
            missed = (np.asarray(truth) > 0) & (np.asarray(annotated) == 0)
            background = np.asarray(truth) == 0
            title += (
                f"\nmean on unannotated nuclei {m_hat[missed].mean():.2f}, "
                f"on background {m_hat[background].mean():.2f}"
            )
        viz.show_map(m_hat, ax=axes[3], title=title)
        fig.tight_layout()
        picture.value = _figure_png(fig)

    for w in (w_alpha, w_beta, w_lam, w_erosion):
        w.observe(draw, names="value")
    draw()
    return widgets.VBox([widgets.HBox([w_alpha, w_beta]), widgets.HBox([w_lam, w_erosion]), picture])


# ---------------------------------------------------------------------------- chapter 2: stain transfer
__all__ += ["stain_strength_widget"]


def stain_strength_widget(truth, normalizers, *, style: str = "he_lab_c", target_style: str = "he_lab_a"):
    """Re-stain one synthetic tissue with more or less hematoxylin and eosin, and normalize it each time.

    Parameters
    ----------
    truth : nucleikit.synth.Truth
        The tissue (its stain concentrations).
    normalizers : dict of str to callable
        Method name -> ``normalize(image) -> image`` (uint8 RGB in and out).
    style : str
        Source lab whose stain vectors and glass are used; the sliders scale its stain amounts.
    target_style : str
        The style the normalizers aim at; the truth panel is the tissue rendered in it.

    Returns
    -------
    ipywidgets.VBox
        Two sliders (hematoxylin and eosin amount, times the source lab's) and the figure as an ``Image``
        widget: the source, each method's output with its mean colour distance to the truth, and the truth.
        A method that raises ``ValueError`` shows its message instead of an image.

    Notes
    -----
    Rendering is noise-free (``difficulty="clean"``), so only the stain amounts change between draws. The
    figure is a PNG in an ``ipywidgets.Image`` (like :func:`stain_normalization_widget`): an ``Output``
    widget hung headless execution.
    """
    import io as _io

    import ipywidgets as widgets
    import matplotlib.pyplot as plt
    import numpy as np

    from . import metrics, synth, viz

    base = synth.get_style(style)
    truth_img = synth.render(truth, target_style, difficulty="clean")
    w_h = widgets.FloatSlider(value=1.0, min=0.4, max=2.0, step=0.1, description="hematoxylin x")
    w_e = widgets.FloatSlider(value=1.0, min=0.4, max=2.0, step=0.1, description="eosin x")
    picture = widgets.Image(format="png")

    def draw(change=None):
        amounts = base.intensity * np.array([w_h.value, w_e.value])
        name = f"{style} x({w_h.value:.1f}, {w_e.value:.1f})"
        source = synth.render(
            truth, synth.StainStyle(name, base.stains, amounts, base.background), difficulty="clean"
        )
        panels = [(source, f"source ({style}, H x{w_h.value:.1f}, E x{w_e.value:.1f})")]
        for method, normalize in normalizers.items():
            try:
                img = normalize(source)
                dist = metrics.euclidean_distance(img, truth_img)
                panels.append((img, f"{method}\ndistance to truth {dist:.3f}"))
            except ValueError as exc:
                panels.append((np.full_like(source, 255), f"{method}: failed\n{str(exc)[:40]}"))
        panels.append((truth_img, f"truth ({target_style})"))
        fig, axes = plt.subplots(1, len(panels), figsize=(2.8 * len(panels), 3.2))
        for ax, (img, title) in zip(axes, panels, strict=True):
            viz.show_image(img, ax=ax, title=title)
        fig.tight_layout()
        buf = _io.BytesIO()
        fig.savefig(buf, format="png", dpi=72)
        plt.close(fig)
        picture.value = buf.getvalue()

    for w in (w_h, w_e):
        w.observe(draw, names="value")
    draw()
    return widgets.VBox([widgets.HBox([w_h, w_e]), picture])


# ------------------------------------------------------------------------------------- chapter 7: KiNet
__all__ += ["xi_widget"]


def xi_widget(
    image,
    candidates,
    true_rc,
    true_cls,
    *,
    radius: float,
    curve: tuple | None = None,
    image_index: int = 0,
    class_names=None,
    xi: float = 0.5,
):
    """Move KiNet's peak threshold ξ and watch the detections and the operating point on the PR curve.

    Parameters
    ----------
    image : ndarray of shape (H, W, 3)
        One test image, shown with its detections.
    candidates : sequence of nucleikit.ki67.Candidates
        Scored peaks of every test image at ξ = 0 (``nk.ki67.maps_to_candidates``).
    true_rc, true_cls : sequence of ndarray
        True centres and classes of every test image.
    radius : float
        Matching radius, pixels.
    curve : (precision, recall), optional
        The classification PR curve over the ξ sweep, drawn under the live point.
    image_index : int
        Which of the test images ``image`` is.
    class_names : sequence of str, optional
    xi : float
        Initial ξ (the paper's 0.5).

    Returns
    -------
    ipywidgets.VBox
        A slider and the figure (an ``ipywidgets.Image``, see :func:`synth_widget`): the image with truth
        and detections, and the PR plane with the live (recall, precision) of detection and of
        classification at the chosen ξ, pooled over the test images.
    """
    import ipywidgets as widgets
    import matplotlib.pyplot as plt

    from . import ki67, viz

    w_xi = widgets.FloatSlider(value=xi, min=0.0, max=1.0, step=0.05, description="ξ", readout_format=".2f")
    picture = widgets.Image(format="png")

    def draw(*_):
        res = ki67.evaluate(candidates, true_rc, true_cls, radius=radius, xi=w_xi.value)
        pts, cls = candidates[image_index].at(w_xi.value)
        fig, axes = plt.subplots(1, 2, figsize=(10, 4.6))
        viz.plot_detections(
            image,
            true_rc[image_index],
            true_cls[image_index],
            pts,
            cls,
            ax=axes[0],
            class_names=class_names,
            title=f"ξ = {w_xi.value:.2f}: {len(pts)} detections, {len(true_rc[image_index])} nuclei",
        )
        curves = {"classification (weighted)": curve} if curve is not None else {}
        points = {
            f"detection P {res['det_precision']:.2f} R {res['det_recall']:.2f}": (
                res["det_recall"],
                res["det_precision"],
            ),
            f"classification P {res['cls_precision']:.2f} R {res['cls_recall']:.2f}": (
                res["cls_recall"],
                res["cls_precision"],
            ),
        }
        viz.plot_pr_curves(curves, ax=axes[1], points=points, title="all test images")
        fig.tight_layout()
        picture.value = _figure_png(fig)

    w_xi.observe(draw, names="value")
    draw()
    return widgets.VBox([w_xi, picture])
