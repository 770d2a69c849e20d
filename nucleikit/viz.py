"""Plotting only: every function takes ``ax=None`` (a new figure when None) and returns the Axes.

Chapter-specific plots are added in sections below the shared helpers; they call these helpers rather
than re-implementing image grids, overlays or loss curves.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import matplotlib.pyplot as plt
import numpy as np

__all__ = ["LiveLoss", "image_grid", "plot_history", "plot_points", "show_image", "show_labels"]

#: Colours used for classes across the book (colour-blind friendly, Okabe-Ito).
CLASS_COLORS = ("#E69F00", "#56B4E9", "#009E73", "#F0E442", "#0072B2", "#D55E00", "#CC79A7", "#000000")


def _ax(ax: Any = None, figsize: tuple[float, float] = (4, 4)):
    if ax is None:
        _, ax = plt.subplots(figsize=figsize)
    return ax


def show_image(image: np.ndarray, ax: Any = None, title: str | None = None, **kwargs: Any):
    """Show an image without axes ticks; extra keyword arguments go to ``imshow``."""
    ax = _ax(ax)
    ax.imshow(image, **kwargs)
    ax.set_xticks([])
    ax.set_yticks([])
    if title:
        ax.set_title(title, fontsize=9)
    return ax


def image_grid(
    images: Sequence[np.ndarray],
    titles: Sequence[str] | None = None,
    ncols: int | None = None,
    size: float = 2.6,
    suptitle: str | None = None,
    **kwargs: Any,
):
    """Show images in a grid and return the array of Axes (shape (nrows, ncols))."""
    n = len(images)
    ncols = ncols or min(n, 4)
    nrows = int(np.ceil(n / ncols))
    fig, axes = plt.subplots(nrows, ncols, figsize=(size * ncols, size * nrows), squeeze=False)
    for i, ax in enumerate(axes.flat):
        if i < n:
            show_image(images[i], ax=ax, title=titles[i] if titles else None, **kwargs)
        else:
            ax.axis("off")
    if suptitle:
        fig.suptitle(suptitle)
    fig.tight_layout()
    return axes


def show_labels(
    image: np.ndarray,
    labels: np.ndarray,
    ax: Any = None,
    title: str | None = None,
    color: str = "#00FF66",
    linewidth: float = 0.8,
):
    """Show an image with the outlines of a label image's instances."""
    ax = show_image(image, ax=ax, title=title)
    labels = np.asarray(labels)
    if labels.max() > 0:
        from skimage.segmentation import find_boundaries

        edges = find_boundaries(labels, mode="inner")
        overlay = np.zeros((*labels.shape, 4), dtype=np.float32)
        rgb = np.array(plt.matplotlib.colors.to_rgb(color), dtype=np.float32)
        overlay[edges] = (*rgb, min(1.0, linewidth))
        ax.imshow(overlay, interpolation="nearest")
    return ax


def plot_points(
    points_rc: np.ndarray,
    classes: np.ndarray | None = None,
    ax: Any = None,
    class_names: Sequence[str] | None = None,
    marker: str = "o",
    size: float = 14,
    facecolor: str | None = "none",
    label: str | None = None,
):
    """Scatter (row, col) points on an image's Axes, coloured by class."""
    ax = _ax(ax)
    pts = np.asarray(points_rc, dtype=float).reshape(-1, 2)
    filled = plt.matplotlib.markers.MarkerStyle(marker).is_filled()

    def colors(col: str) -> dict[str, Any]:
        # a line marker ("x", "+") has no face: give it one colour (edge colours would be ignored, noisily)
        return {"edgecolors": col, "facecolors": facecolor or col} if filled else {"color": col}

    if classes is None:
        ax.scatter(
            pts[:, 1],
            pts[:, 0],
            s=size,
            marker=marker,
            linewidths=1.0,
            label=label,
            **colors(CLASS_COLORS[0]),
        )
        return ax
    classes = np.asarray(classes)
    for k in np.unique(classes):
        sel = classes == k
        col = CLASS_COLORS[int(k) % len(CLASS_COLORS)]
        name = class_names[int(k)] if class_names is not None else str(k)
        ax.scatter(pts[sel, 1], pts[sel, 0], s=size, marker=marker, linewidths=1.0, label=name, **colors(col))
    return ax


def plot_history(
    history: Any,
    keys: Sequence[str] | None = None,
    ax: Any = None,
    logy: bool = True,
    title: str | None = None,
):
    """Plot logged training curves of a :class:`nucleikit.train.History` (or several, as a dict).

    On a log axis (``logy``) values that are not positive, such as a loss term that is switched off for
    the first steps, are left out (gaps) rather than drawn down to the frame.
    """
    ax = _ax(ax, figsize=(5, 3))
    runs = history if isinstance(history, dict) else {"": history}
    for run_name, hist in runs.items():
        for key in keys or [k for k in hist.logs if k != "lr"]:
            label = f"{run_name} {key}".strip()
            y = np.asarray(hist.logs[key], dtype=float)
            if logy:
                y = np.where(y > 0, y, np.nan)
            ax.plot(hist.steps, y, label=label)
    ax.set_xlabel("step")
    ax.set_ylabel("loss" if not keys or len(keys) > 1 else keys[0])
    if logy:
        ax.set_yscale("log")
    ax.legend(fontsize=8)
    if title:
        ax.set_title(title, fontsize=10)
    return ax


class LiveLoss:
    """A live loss plot for :func:`nucleikit.train.fit`'s ``callback``: redraws one figure in place.

    In a notebook the figure updates during training; in an executed notebook (papermill, the book) the
    last state stays. A run loaded from the checkpoint cache draws its stored curve once.

    Parameters
    ----------
    keys : sequence of str, optional
        Logged values to draw (default: every value except the learning rate).
    every : int
        Redraw after this many callbacks.
    title : str, optional
        Figure title.
    """

    def __init__(self, keys: Sequence[str] | None = None, every: int = 5, title: str | None = None) -> None:
        self.keys, self.every, self.title = keys, every, title
        self._calls = 0
        self._handle = None

    def __call__(self, step: int, history: Any) -> None:
        """Redraw every ``every`` calls (at once for a run loaded from the cache)."""
        self._calls += 1
        done = history.from_cache or (self._calls % self.every == 0)
        if not done:
            return
        self.draw(history)

    def draw(self, history: Any) -> None:
        """Draw (or redraw) the figure now."""
        from IPython.display import display

        fig, ax = plt.subplots(figsize=(5, 3))
        plot_history(history, keys=self.keys, ax=ax, title=self.title)
        fig.tight_layout()
        if self._handle is None:
            self._handle = display(fig, display_id=True)
        else:
            self._handle.update(fig)
        plt.close(fig)


# ------------------------------------------------------------------------- chapter 1: stain normalization
__all__ += ["plot_angle_histogram", "plot_od_cloud", "show_concentrations", "show_stain_vectors"]


def plot_od_cloud(
    od: np.ndarray,
    colors: np.ndarray | None = None,
    ax: Any = None,
    stains: np.ndarray | None = None,
    stain_labels: Sequence[str] = ("H", "E"),
    max_points: int = 4000,
    title: str | None = None,
    plane: np.ndarray | None = None,
):
    """Scatter optical-density pixels in 3-D (axes OD red, green, blue), optionally with stain vectors.

    Parameters
    ----------
    od : ndarray of shape (N, 3) or (H, W, 3)
        Optical densities.
    colors : ndarray of the same leading shape and 3 channels, optional
        The pixels' RGB (uint8 or float in [0, 1]) to colour the points.
    ax : Axes3D, optional
        A 3-D Axes (``projection="3d"``); a new figure when None.
    stains : ndarray of shape (n, 3), optional
        Stain vectors drawn as arrows from the origin.
    stain_labels : sequence of str
        Names of the stain vectors.
    max_points : int
        At most this many points are drawn (a regular subsample, deterministic).
    title : str, optional
        Axes title.
    plane : ndarray of shape (2, 3), optional
        Two orthonormal vectors spanning a plane through the origin, drawn as a translucent square.

    Returns
    -------
    Axes3D
    """
    if ax is None:
        fig = plt.figure(figsize=(4.5, 4.2))
        ax = fig.add_subplot(projection="3d")
    pts = np.asarray(od, dtype=np.float32).reshape(-1, 3)
    step = max(1, int(np.ceil(len(pts) / max_points)))
    pts = pts[::step]
    col = None
    if colors is not None:
        col = np.asarray(colors).reshape(-1, 3)[::step]
        col = col / 255.0 if col.dtype == np.uint8 else np.clip(col.astype(np.float32), 0, 1)
    ax.scatter(pts[:, 0], pts[:, 1], pts[:, 2], c=col, s=2, alpha=0.6, depthshade=False, linewidths=0)
    top = float(np.percentile(np.abs(pts), 99.5)) * 1.15 if len(pts) else 1.0
    if plane is not None:
        u, v = np.asarray(plane, dtype=float)
        s = np.linspace(-0.2, 1.0, 2) * top
        a, b = np.meshgrid(s, np.linspace(-0.6, 0.6, 2) * top)
        grid = a[..., None] * u + b[..., None] * v  # (2, 2, 3)
        ax.plot_surface(grid[..., 0], grid[..., 1], grid[..., 2], alpha=0.15, color="grey")
    if stains is not None:
        for k, vec in enumerate(np.asarray(stains, dtype=float)):
            vec = vec / np.linalg.norm(vec) * top
            colour = CLASS_COLORS[(4, 5, 2)[k % 3]]
            ax.quiver(0, 0, 0, *vec, color=colour, linewidth=2, arrow_length_ratio=0.08)
            label = stain_labels[k] if k < len(stain_labels) else str(k)
            ax.text(*(vec * 1.08), label, color=colour, fontsize=10, fontweight="bold")
    ax.set_xlabel("OD red")
    ax.set_ylabel("OD green")
    ax.set_zlabel("OD blue")
    if title:
        ax.set_title(title, fontsize=10)
    return ax


def plot_angle_histogram(
    phi: np.ndarray,
    lo: float | None = None,
    hi: float | None = None,
    ax: Any = None,
    bins: int = 120,
    alpha: float | None = None,
    title: str | None = None,
):
    """Histogram of the tissue pixels' angles in the stain plane, with Macenko's percentile cut-offs.

    Parameters
    ----------
    phi : ndarray of shape (N,)
        Angles in radians.
    lo, hi : float, optional
        The ``alpha`` and ``100 - alpha`` percentiles, drawn as vertical lines.
    ax : Axes, optional
    bins : int
    alpha : float, optional
        The percentile, for the legend.
    title : str, optional

    Returns
    -------
    Axes
    """
    ax = _ax(ax, figsize=(5, 3))
    ax.hist(np.degrees(np.asarray(phi)), bins=bins, color="#999999")
    for value, name, colour in ((lo, "min", CLASS_COLORS[4]), (hi, "max", CLASS_COLORS[5])):
        if value is not None:
            pct = "" if alpha is None else (f" ({alpha:g} %)" if name == "min" else f" ({100 - alpha:g} %)")
            ax.axvline(np.degrees(value), color=colour, linewidth=2, label=f"φ {name}{pct}")
    ax.set_xlabel("angle in the stain plane (degrees)")
    ax.set_ylabel("tissue pixels")
    if lo is not None or hi is not None:
        ax.legend(fontsize=8)
    if title:
        ax.set_title(title, fontsize=10)
    return ax


def show_stain_vectors(
    stains: np.ndarray,
    ax: Any = None,
    labels: Sequence[str] = ("H", "E"),
    io: float = 255.0,
    amounts: Sequence[float] = (0.25, 0.5, 1.0, 1.5, 2.0),
    title: str | None = None,
):
    """Show each stain vector as a strip of colour swatches at increasing concentration (Beer-Lambert).

    Parameters
    ----------
    stains : ndarray of shape (n, 3)
        Unit OD vectors (rows).
    ax : Axes, optional
    labels : sequence of str
        Stain names, one per row.
    io : float
        Glass intensity for the rendering (0..255 scale).
    amounts : sequence of float
        Concentrations of the swatches.
    title : str, optional

    Returns
    -------
    Axes
    """
    stains = np.asarray(stains, dtype=float)
    ax = _ax(ax, figsize=(0.6 * len(amounts) + 1, 0.6 * len(stains) + 0.4))
    conc = np.asarray(amounts, dtype=float)
    sw = io * np.exp(-conc[None, :, None] * stains[:, None, :])  # (n, k, 3)
    ax.imshow(np.clip(sw / 255.0, 0, 1), aspect="equal")
    ax.set_yticks(range(len(stains)))
    ax.set_yticklabels(
        [
            f"{labels[i] if i < len(labels) else i}  {np.round(stains[i], 2).tolist()}"
            for i in range(len(stains))
        ],
        fontsize=8,
    )
    ax.set_xticks(range(len(conc)))
    ax.set_xticklabels([f"{c:g}" for c in conc], fontsize=8)
    ax.set_xlabel("concentration")
    if title:
        ax.set_title(title, fontsize=9)
    return ax


def show_concentrations(
    concentrations: np.ndarray,
    names: Sequence[str] = ("H", "E"),
    axes: Any = None,
    vmax: float | None = None,
    cmap: str = "magma",
):
    """Show stain concentration maps side by side with colour bars; returns the array of Axes.

    Parameters
    ----------
    concentrations : ndarray of shape (H, W, n)
    names : sequence of str
        Stain names for the titles.
    axes : sequence of Axes, optional
        One per stain; a new figure when None.
    vmax : float, optional
        Upper end of the colour scale (default: each map's 99.5th percentile).
    cmap : str
    """
    conc = np.asarray(concentrations)
    n = conc.shape[-1]
    if axes is None:
        _, axes = plt.subplots(1, n, figsize=(3.2 * n, 3))
    axes = np.atleast_1d(axes)
    for k, ax in enumerate(axes[:n]):
        top = vmax if vmax is not None else float(np.percentile(conc[..., k], 99.5)) or 1.0
        im = ax.imshow(conc[..., k], cmap=cmap, vmin=0, vmax=top)
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_title(f"{names[k] if k < len(names) else k} concentration", fontsize=9)
        plt.colorbar(im, ax=ax, fraction=0.046, pad=0.04)
    return axes


# ------------------------------------------------------------------------------- chapter 0: synthetic data
__all__ += ["show_regions", "show_stain_swatches", "show_truth"]


def show_truth(tile: Any, ax: Any = None, title: str | None = None, outlines: bool = True, size: float = 16):
    """Show a synthetic tile with its nuclei outlined and their centroids coloured by class.

    Parameters
    ----------
    tile : nucleikit.synth.Tile
        The tile (``tile.image`` and ``tile.truth``).
    ax : Axes, optional
        Where to draw (a new figure when None).
    title : str, optional
        Axes title.
    outlines : bool
        Draw the instance outlines.
    size : float
        Marker size of the centroids.
    """
    truth = tile.truth
    if outlines:
        ax = show_labels(tile.image, truth.labels, ax=ax, title=title, color="#FFFFFF", linewidth=0.6)
    else:
        ax = show_image(tile.image, ax=ax, title=title)
    plot_points(
        truth.centroids_rc, truth.classes, ax=ax, class_names=truth.class_names, size=size, facecolor=None
    )
    ax.legend(fontsize=7, loc="lower right", framealpha=0.8, markerscale=1.2)
    return ax


def show_regions(regions: np.ndarray, region_names: Sequence[str], ax: Any = None, title: str | None = None):
    """Show a region map with one colour per region and a legend; -1 (unlabelled) is drawn white."""
    from matplotlib.colors import ListedColormap
    from matplotlib.patches import Patch

    ax = _ax(ax)
    palette = ["#F2F2F2", "#D55E00", "#CC79A7", "#0072B2", "#009E73", "#E69F00", "#56B4E9", "#F0E442"]
    n = len(region_names)
    cmap = ListedColormap(["#FFFFFF", *palette[:n]])
    shown = np.asarray(regions) + 1  # -1 (unlabelled) -> 0 (white)
    show_image(shown, ax=ax, title=title, cmap=cmap, vmin=0, vmax=n, interpolation="nearest")
    handles = [Patch(color=palette[k], label=name) for k, name in enumerate(region_names)]
    if np.any(np.asarray(regions) < 0):
        handles.append(Patch(facecolor="#FFFFFF", edgecolor="0.5", label="unlabelled"))
    ax.legend(handles=handles, fontsize=7, loc="lower right", framealpha=0.8)
    return ax


def show_stain_swatches(
    styles: Sequence[Any],
    concentrations: Sequence[float] = (0.25, 0.5, 1.0, 2.0),
    ax: Any = None,
    title: str | None = None,
):
    """Show the colour of each stain of each style at a few concentrations (Beer-Lambert, no optics).

    Parameters
    ----------
    styles : sequence of nucleikit.synth.StainStyle
        Styles; one row per stain of each style.
    concentrations : sequence of float
        Concentrations (OD units along the unit stain vector) of the columns.
    """
    ax = _ax(ax, figsize=(1.2 * len(concentrations) + 2, 0.45 * sum(len(s.stains) for s in styles) + 0.6))
    rows, names = [], []
    for style in styles:
        stain_names = ("H", "E") if style.kind == "he" else ("H", "DAB")
        for k, vec in enumerate(style.stains):
            c = np.asarray(concentrations, float)[:, None] * style.intensity[k]
            rows.append(np.exp(-c * vec[None, :]) * style.background[None, :])  # (n_conc, 3)
            names.append(f"{style.name} {stain_names[k]}")
    ax.imshow(np.clip(np.stack(rows), 0, 1), aspect="auto", interpolation="nearest")
    ax.set_yticks(range(len(names)), names, fontsize=8)
    ax.set_xticks(range(len(concentrations)), [f"C={c:g}" for c in concentrations], fontsize=8)
    if title:
        ax.set_title(title, fontsize=9)
    return ax


# ------------------------------------------------------------------------ chapter 3: segmentation
__all__ += ["plot_threshold_sweep", "show_error_overlay", "show_map"]

#: Colours of correct, spurious and missed nucleus pixels in :func:`show_error_overlay` (Okabe-Ito).
ERROR_COLORS = {"true positive": "#009E73", "false positive": "#D55E00", "false negative": "#56B4E9"}


def show_map(
    values: np.ndarray,
    ax: Any = None,
    title: str | None = None,
    cmap: str = "viridis",
    vmin: float | None = 0.0,
    vmax: float | None = 1.0,
    label: str | None = None,
):
    """Show a scalar map (weights, probabilities, distances) with a colour bar.

    Parameters
    ----------
    values : ndarray of shape (H, W)
        The map.
    ax : Axes, optional
        Where to draw (a new figure when None).
    title : str, optional
        Axes title.
    cmap : str
        Colour map.
    vmin, vmax : float or None
        Ends of the colour scale (None: the map's minimum / maximum).
    label : str, optional
        Colour-bar label.

    Returns
    -------
    Axes
    """
    ax = _ax(ax)
    im = ax.imshow(np.asarray(values), cmap=cmap, vmin=vmin, vmax=vmax, interpolation="nearest")
    ax.set_xticks([])
    ax.set_yticks([])
    if title:
        ax.set_title(title, fontsize=9)
    bar = plt.colorbar(im, ax=ax, fraction=0.046, pad=0.03)
    if label:
        bar.set_label(label, fontsize=8)
    bar.ax.tick_params(labelsize=7)
    return ax


def show_error_overlay(
    image: np.ndarray,
    pred_mask: np.ndarray,
    true_mask: np.ndarray,
    ax: Any = None,
    title: str | None = None,
    alpha: float = 0.6,
    legend: bool = True,
):
    """Colour the pixels of a binary segmentation by outcome: correct, spurious or missed nucleus.

    Parameters
    ----------
    image : ndarray of shape (H, W, 3) or (H, W)
        The image underneath.
    pred_mask, true_mask : ndarray of shape (H, W)
        Predicted and true nucleus pixels (> 0).
    ax : Axes, optional
        Where to draw.
    title : str, optional
        Axes title.
    alpha : float
        Opacity of the colours.
    legend : bool
        Add a legend (:data:`ERROR_COLORS`).

    Returns
    -------
    Axes
    """
    from matplotlib.colors import to_rgb
    from matplotlib.patches import Patch

    ax = show_image(image, ax=ax, title=title, cmap="gray" if np.asarray(image).ndim == 2 else None)
    pred, true = np.asarray(pred_mask) > 0, np.asarray(true_mask) > 0
    overlay = np.zeros((*pred.shape, 4), dtype=np.float32)
    outcomes = (pred & true, pred & ~true, ~pred & true)  # the order of ERROR_COLORS
    for colour, sel in zip(ERROR_COLORS.values(), outcomes, strict=True):
        overlay[sel] = (*to_rgb(colour), alpha)
    ax.imshow(overlay, interpolation="nearest")
    if legend:
        handles = [Patch(color=c, label=n) for n, c in ERROR_COLORS.items()]
        ax.legend(handles=handles, fontsize=7, loc="lower right", framealpha=0.8)
    return ax


def plot_threshold_sweep(
    sweeps: dict[str, dict[str, np.ndarray]],
    metric: str = "recall",
    ax: Any = None,
    mark: float | None = 0.5,
    title: str | None = None,
):
    """Plot a pixel score against the probability threshold, one line per model.

    Parameters
    ----------
    sweeps : dict of str to dict
        Model name -> the result of :func:`nucleikit.segment.threshold_sweep` (``threshold`` and the
        scores).
    metric : str
        Which score to draw (``"recall"``, ``"precision"`` or ``"f1"``).
    ax : Axes, optional
        Where to draw.
    mark : float, optional
        Draw a vertical line at this threshold (the usual 0.5).
    title : str, optional
        Axes title.

    Returns
    -------
    Axes
    """
    ax = _ax(ax, figsize=(5, 3.2))
    for k, (name, sweep) in enumerate(sweeps.items()):
        ax.plot(sweep["threshold"], sweep[metric], marker="o", ms=3, color=CLASS_COLORS[k], label=name)
    if mark is not None:
        ax.axvline(mark, color="0.5", linestyle="--", linewidth=1)
    ax.set_xlabel("probability threshold")
    ax.set_ylabel(f"pixel {metric}")
    ax.set_ylim(-0.02, 1.02)
    ax.legend(fontsize=8)
    if title:
        ax.set_title(title, fontsize=10)
    return ax


# ------------------------------------------------------------------------------------- chapter 7: KiNet
__all__ += ["plot_detections", "plot_ki67_index", "plot_pr_curves", "plot_sweep", "show_proximity_maps"]


def show_proximity_maps(
    maps: np.ndarray,
    names: Sequence[str] | None = None,
    axes: Any = None,
    vmax: float | None = 1.0,
    cmap: str = "viridis",
    suptitle: str | None = None,
):
    """Show one proximity map per class side by side, each with a colour bar; returns the Axes.

    Parameters
    ----------
    maps : ndarray of shape (C, H, W)
        Proximity maps (targets in [0, 1], or a network's outputs).
    names : sequence of str, optional
        Class names for the titles.
    axes : sequence of Axes, optional
        One per map; a new figure when None.
    vmax : float or None
        Top of the colour scale (1 for targets; None: each map's maximum). The bottom is
        ``min(0, map minimum)``, so negative outputs show.
    cmap : str
        Colour map.
    suptitle : str, optional
        Figure title.
    """
    maps = np.asarray(maps)
    n = maps.shape[0]
    if axes is None:
        _, axes = plt.subplots(1, n, figsize=(3.1 * n, 3))
    axes = np.atleast_1d(axes)
    for k, ax in enumerate(axes[:n]):
        top = float(maps[k].max()) if vmax is None else vmax
        im = ax.imshow(maps[k], cmap=cmap, vmin=min(0.0, float(maps[k].min())), vmax=max(top, 1e-6))
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_title(names[k] if names is not None else f"class {k}", fontsize=9)
        plt.colorbar(im, ax=ax, fraction=0.046, pad=0.04)
    if suptitle:
        axes[0].figure.suptitle(suptitle, fontsize=10)
    return axes


def plot_detections(
    image: np.ndarray,
    true_rc: np.ndarray,
    true_cls: np.ndarray | None,
    pred_rc: np.ndarray,
    pred_cls: np.ndarray | None,
    ax: Any = None,
    class_names: Sequence[str] | None = None,
    title: str | None = None,
    size: float = 30,
):
    """Show an image with true nuclei (open circles) and detections (crosses), coloured by class.

    Parameters
    ----------
    image : ndarray of shape (H, W, 3)
    true_rc, pred_rc : ndarray of shape (N, 2) / (M, 2)
        True and predicted centres (row, col).
    true_cls, pred_cls : ndarray of shape (N,) / (M,), optional
        Classes (None: one colour).
    ax : Axes, optional
    class_names : sequence of str, optional
        For the legend.
    title : str, optional
    size : float
        Marker size.
    """
    ax = show_image(image, ax=ax, title=title)
    plot_points(true_rc, true_cls, ax=ax, class_names=class_names, size=size, facecolor="none")
    pts = np.asarray(pred_rc, dtype=float).reshape(-1, 2)
    cls = np.zeros(len(pts), int) if pred_cls is None else np.asarray(pred_cls)
    for k in np.unique(cls):
        sel = cls == k
        ax.scatter(
            pts[sel, 1], pts[sel, 0], s=size * 0.6, marker="x", c=CLASS_COLORS[int(k) % 8], linewidths=1.2
        )
    from matplotlib.lines import Line2D

    handles, _ = ax.get_legend_handles_labels()
    handles += [
        Line2D([], [], marker="o", ls="", mfc="none", mec="0.3", label="truth"),
        Line2D([], [], marker="x", ls="", color="0.3", label="detection"),
    ]
    ax.legend(handles=handles, fontsize=7, loc="lower right", framealpha=0.8)
    return ax


def plot_pr_curves(
    curves: dict[str, tuple[np.ndarray, np.ndarray]],
    ax: Any = None,
    points: dict[str, tuple[float, float]] | None = None,
    title: str | None = None,
):
    """Plot precision-recall curves (recall on x), with optional highlighted operating points.

    Parameters
    ----------
    curves : dict of str to (precision, recall)
        One curve per name (arrays of the same length; NaN precision points are skipped).
    ax : Axes, optional
    points : dict of str to (recall, precision), optional
        Operating points drawn as large dots, labelled in the legend.
    title : str, optional
    """
    ax = _ax(ax, figsize=(4.5, 4))
    for k, (name, (p, r)) in enumerate(curves.items()):
        p, r = np.asarray(p, float), np.asarray(r, float)
        ok = ~np.isnan(p)
        order = np.argsort(r[ok], kind="stable")
        ax.plot(
            r[ok][order], p[ok][order], "-", color=CLASS_COLORS[(k + 4) % 8], label=name, marker=".", ms=4
        )
    for k, (name, (r, p)) in enumerate((points or {}).items()):
        ax.plot([r], [p], "o", ms=9, color=CLASS_COLORS[(k + 5) % 8], mec="k", label=name)
    ax.set_xlim(0, 1.02)
    ax.set_ylim(0, 1.02)
    ax.set_xlabel("recall")
    ax.set_ylabel("precision")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower left")
    if title:
        ax.set_title(title, fontsize=10)
    return ax


def plot_ki67_index(
    true_index: np.ndarray,
    pred_index: dict[str, np.ndarray] | np.ndarray,
    ax: Any = None,
    tolerance: float = 0.05,
    title: str | None = None,
):
    """Scatter the predicted Ki67 labelling index of each image against the true one.

    Parameters
    ----------
    true_index : ndarray of shape (N,)
        True index per image, in [0, 1].
    pred_index : ndarray of shape (N,) or dict of str to ndarray
        Predicted index per image (several methods as a dict).
    ax : Axes, optional
    tolerance : float
        Half-width of the shaded band around the diagonal (0.05 = 5 percentage points).
    title : str, optional
    """
    ax = _ax(ax, figsize=(4, 4))
    runs = pred_index if isinstance(pred_index, dict) else {"predicted": pred_index}
    t = 100 * np.asarray(true_index, float)
    line = np.array([0, 100])
    ax.fill_between(
        line, line - 100 * tolerance, line + 100 * tolerance, color="0.9", label=f"±{100 * tolerance:g} pp"
    )
    ax.plot(line, line, "k--", lw=0.8)
    for k, (name, p) in enumerate(runs.items()):
        ax.scatter(t, 100 * np.asarray(p, float), s=28, color=CLASS_COLORS[(k + 4) % 8], label=name, zorder=3)
    ax.set_xlim(0, 100)
    ax.set_ylim(0, 100)
    ax.set_xlabel("true Ki67 index (%)")
    ax.set_ylabel("predicted Ki67 index (%)")
    ax.legend(fontsize=8, loc="upper left")
    if title:
        ax.set_title(title, fontsize=10)
    return ax


def plot_sweep(
    x: Sequence[Any],
    values: dict[str, np.ndarray],
    ax: Any = None,
    xlabel: str = "",
    ylabel: str = "",
    title: str | None = None,
    logx: bool = False,
):
    """Plot a metric against a swept setting, one line per variant; several seeds as mean and range.

    Parameters
    ----------
    x : sequence
        The setting's values (numbers, or labels for a categorical axis).
    values : dict of str to ndarray of shape (len(x),) or (n_seeds, len(x))
        The metric per variant; with seeds, the line is the mean and the bar the min-max range.
    ax : Axes, optional
    xlabel, ylabel, title : str
    logx : bool
        Logarithmic x axis (numeric x only).
    """
    ax = _ax(ax, figsize=(4.5, 3.2))
    numeric = all(isinstance(v, (int, float, np.integer, np.floating)) for v in x)
    pos = np.asarray(x, float) if numeric else np.arange(len(x))
    for k, (name, v) in enumerate(values.items()):
        v = np.atleast_2d(np.asarray(v, float))
        mean = np.nanmean(v, axis=0)
        col = CLASS_COLORS[(k + 4) % 8]
        if v.shape[0] > 1:
            lo, hi = np.nanmin(v, axis=0), np.nanmax(v, axis=0)
            ax.errorbar(pos, mean, yerr=[mean - lo, hi - mean], color=col, marker="o", capsize=3, label=name)
        else:
            ax.plot(pos, mean, marker="o", color=col, label=name)
    if not numeric:
        ax.set_xticks(pos, [str(v) for v in x])
    if logx and numeric:
        ax.set_xscale("symlog", linthresh=max(float(np.min(pos[pos > 0])) if np.any(pos > 0) else 1.0, 1e-3))
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    if title:
        ax.set_title(title, fontsize=10)
    return ax


# ---------------------------------------------------------------------------- chapter 2: stain transfer
__all__ += ["plot_method_scores", "show_feature_maps", "show_lab_channels"]


def show_lab_channels(image: np.ndarray, axes: Any = None, title: str | None = None):
    """Show an RGB image beside its CIELAB lightness L and chroma a*, b*, each with a colour bar.

    Parameters
    ----------
    image : ndarray of shape (H, W, 3)
        RGB, uint8 or float in [0, 1].
    axes : sequence of 4 Axes, optional
        Where to draw (a new 1 x 4 figure when None).
    title : str, optional
        Title of the first panel.

    Returns
    -------
    ndarray of Axes, shape (4,)
    """
    from skimage.color import rgb2lab

    if axes is None:
        _, axes = plt.subplots(1, 4, figsize=(13, 3.0))
    axes = np.asarray(axes).ravel()
    lab = rgb2lab(np.asarray(image))
    show_image(image, ax=axes[0], title=title or "RGB")
    panels = (
        ("L (lightness): the structure", lab[..., 0], "gray", 0.0, 100.0),
        ("a* (green - / red +)", lab[..., 1], "PiYG_r", -50.0, 50.0),
        ("b* (blue - / yellow +)", lab[..., 2], "PuOr_r", -50.0, 50.0),
    )
    for ax, (name, values, cmap, lo, hi) in zip(axes[1:], panels, strict=True):
        im = ax.imshow(values, cmap=cmap, vmin=lo, vmax=hi, interpolation="nearest")
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_title(name, fontsize=9)
        plt.colorbar(im, ax=ax, fraction=0.046, pad=0.03).ax.tick_params(labelsize=7)
    return axes


def show_feature_maps(features: Any, n: int = 8, axes: Any = None, title: str | None = None):
    """Show the first ``n`` channels of a feature map in a row, each scaled to its own range.

    Parameters
    ----------
    features : ndarray or Tensor of shape (C, h, w) or (1, C, h, w)
        Activations of one image.
    n : int
        Channels to show (at most C).
    axes : sequence of Axes, optional
        Where to draw (a new 1 x n figure when None).
    title : str, optional
        Label on the left of the row (the shape is added).

    Returns
    -------
    ndarray of Axes
    """
    x = features.detach().cpu().numpy() if hasattr(features, "detach") else np.asarray(features)
    if x.ndim == 4 and x.shape[0] == 1:
        x = x[0]
    if x.ndim != 3:
        raise ValueError(f"features: expected shape (C, h, w) or (1, C, h, w), got {x.shape}")
    n = min(int(n), x.shape[0])
    if axes is None:
        _, axes = plt.subplots(1, n, figsize=(1.6 * n, 1.9))
    axes = np.atleast_1d(np.asarray(axes)).ravel()
    for k, ax in enumerate(axes[:n]):
        show_image(x[k], ax=ax, cmap="magma", title=f"channel {k}")
    if title:
        axes[0].set_ylabel(f"{title}\n{tuple(x.shape)}", fontsize=8)
    return axes


def plot_method_scores(
    scores: dict[str, Any],
    metrics: Sequence[str] = ("euclidean", "hist_corr", "hellinger"),
    axes: Any = None,
    by: str = "style",
    title: str | None = None,
):
    """Compare normalizers: one panel per metric, a bar per method (mean over tiles), a dot per group.

    Parameters
    ----------
    scores : dict of str to pandas.DataFrame
        Method name -> the result of :func:`nucleikit.transfer.score_normalizer` (one row per tile).
    metrics : sequence of str
        Columns to draw, one panel each.
    axes : sequence of Axes, optional
        Where to draw (a new 1 x len(metrics) figure when None).
    by : str
        Column whose groups are drawn as dots over each bar (the source style); "" for none.
    title : str, optional
        Figure title.

    Returns
    -------
    ndarray of Axes
    """
    names = list(scores)
    if axes is None:
        _, axes = plt.subplots(1, len(metrics), figsize=(3.6 * len(metrics), 3.4))
    axes = np.atleast_1d(np.asarray(axes)).ravel()
    better = {
        "euclidean": "lower",
        "hellinger": "lower",
        "hist_corr": "higher",
        "psnr": "higher",
        "ssim": "higher",
    }
    pos = np.arange(len(names))
    for ax, metric in zip(axes, metrics, strict=False):
        means = [float(np.nanmean(scores[m][metric])) for m in names]
        ax.bar(pos, means, color=[CLASS_COLORS[k % len(CLASS_COLORS)] for k in range(len(names))], alpha=0.8)
        if by:
            groups = sorted(set().union(*(set(scores[m][by]) for m in names)))
            markers = "os^vDP*X"
            for g, group in enumerate(groups):
                vals = [float(np.nanmean(scores[m].loc[scores[m][by] == group, metric])) for m in names]
                ax.scatter(
                    pos, vals, color="k", s=14, marker=markers[g % len(markers)], label=group, zorder=3
                )
        ax.set_xticks(pos, names, rotation=30, ha="right", fontsize=8)
        note = f" ({better[metric]} is better)" if metric in better else ""
        ax.set_title(f"{metric}{note}", fontsize=9)
        ax.grid(axis="y", alpha=0.3)
    if by:
        axes[0].legend(fontsize=7, title=by, title_fontsize=7)
    if title:
        axes[0].figure.suptitle(title, fontsize=10)
    axes[0].figure.tight_layout()
    return axes
