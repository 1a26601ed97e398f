"""2-d maps of latent frames (UMAP), drawn so that every class stays visible.

A scatter of tens of thousands of frames drawn class by class shows only the
class drawn last. Here each panel draws the same number of frames of every class
(:func:`balanced_sample`), in one shuffled order, small and translucent, on a
light-grey cloud of all frames, so overlap and separation are both visible.
``plots`` re-exports these functions: notebooks call ``plots.umap_panels`` etc.
Only notebooks and the other plot modules import this module.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import seaborn as sns
from matplotlib.lines import Line2D

NONE_NAME = "none (silent)"
NONE_COLOUR = (0.3, 0.3, 0.3)
CLOUD_COLOUR = (0.86, 0.86, 0.86)


def balanced_sample(labels, max_points: int = 6000, seed: int = 0) -> np.ndarray:
    """Indices of at most ``max_points // n_classes`` frames of every class, in shuffled order.

    Parameters
    ----------
    labels : (n,) int, one class per frame (-1 is a class of its own, e.g. silence)
    max_points : total budget; each class gets the same cap ``max_points // n_classes``
        (at least 1), a smaller class all of its frames
    seed : draws the frames and the drawing order

    Returns
    -------
    (m,) int indices into ``labels``; the order is the drawing order, shuffled
    across classes so that no class is drawn on top of the others.
    """
    labels = np.asarray(labels)
    if labels.ndim != 1 or len(labels) == 0:
        raise ValueError(f"labels must be a non-empty 1-d array, got shape {labels.shape}")
    rng = np.random.default_rng(seed)
    classes = np.unique(labels)
    cap = max(1, max_points // len(classes))
    picked = [rng.permutation(np.flatnonzero(labels == c))[:cap] for c in classes]
    return rng.permutation(np.concatenate(picked))


def class_colours(n: int) -> list:
    """``n`` distinguishable colours (seaborn ``tab10`` up to 10, ``husl`` beyond)."""
    return sns.color_palette("tab10" if n <= 10 else "husl", n)


def _cloud(ax, emb, max_points: int, seed: int) -> None:
    # A uniform subsample of every frame in light grey: the shape of the whole map.
    idx = np.random.default_rng(seed + 1).permutation(len(emb))[:max_points]
    ax.scatter(emb[idx, 0], emb[idx, 1], s=2, color=CLOUD_COLOUR, linewidths=0, rasterized=True)


def _frame(ax, title: str) -> None:
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_title(title, fontsize=10)
    sns.despine(ax=ax, left=True, bottom=True)


def scatter_2d(emb, labels, names=None, ax=None, title: str = "", max_points: int = 6000,
               seed: int = 0, s: float = 5.0, alpha: float = 0.4, max_legend: int = 12):
    """2-d points ``emb : (n, 2)`` coloured by integer ``labels : (n,)``, every class equally drawn.

    At most ``max_points // n_classes`` frames per class (:func:`balanced_sample`)
    are drawn in one shuffled scatter (the second collection of ``ax``; the first
    is the grey cloud of all frames). ``names[i]`` is the legend text of label
    ``i``; label -1 is "none (silent)". More than ``max_legend`` classes get no
    legend (one colour each, named in the title). Returns the figure.
    """
    emb, labels = np.asarray(emb, dtype=float), np.asarray(labels)
    if emb.ndim != 2 or emb.shape[1] != 2 or len(emb) != len(labels):
        raise ValueError(f"emb must be (n, 2) with one label per row, got {emb.shape} and {labels.shape}")
    if ax is None:
        _, ax = plt.subplots(figsize=(5.5, 4.5))
    classes = np.unique(labels)
    real = [c for c in classes if c != -1]
    # With names, label i keeps colour i whichever labels a panel holds (same as umap_by_instrument).
    colour = (dict(enumerate(class_colours(len(names)))) if names is not None
              else dict(zip(real, class_colours(len(real)))))
    colour[-1] = NONE_COLOUR
    _cloud(ax, emb, 4 * max_points, seed)
    idx = balanced_sample(labels, max_points, seed)
    lut = np.array([colour[c] for c in classes])  # (n_classes, 3), rows in np.unique order
    ax.scatter(emb[idx, 0], emb[idx, 1], s=s, c=lut[np.searchsorted(classes, labels[idx])], alpha=alpha,
               linewidths=0, rasterized=True)
    per_class = max(1, max_points // len(classes))
    if len(classes) <= max_legend:
        def name(c):
            return NONE_NAME if c == -1 else (names[int(c)] if names is not None else str(c))
        handles = [Line2D([], [], ls="", marker="o", ms=6, color=colour[c], label=name(c)) for c in classes]
        ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.0, 1.0), frameon=False, fontsize=8)
        _frame(ax, f"{title}\n(at most {per_class} frames per class)" if title else "")
    else:
        _frame(ax, f"{title}\n({len(classes)} classes, one colour each, at most {per_class} frames per class)")
    return ax.figure


def scatter_values(emb, values, ax=None, title: str = "", unit: str = "", max_points: int = 6000,
                   seed: int = 0, s: float = 5.0, alpha: float = 0.6):
    """2-d points ``emb : (n, 2)`` coloured by a continuous value ``values : (n,)`` (e.g. loudness in dB).

    A uniform seeded subsample of at most ``max_points`` points with a finite
    value is drawn on the grey cloud of all points (the second collection of
    ``ax``); the colour scale spans the 2nd to 98th percentile so that a few
    outliers do not flatten it, and a colour bar labelled ``unit`` reads it.
    Returns the figure.
    """
    emb, values = np.asarray(emb, dtype=float), np.asarray(values, dtype=float)
    if emb.ndim != 2 or emb.shape[1] != 2 or values.shape != (len(emb),):
        raise ValueError(f"emb must be (n, 2) with one value per row, got {emb.shape} and {values.shape}")
    finite = np.flatnonzero(np.isfinite(values))
    if len(finite) == 0:
        raise ValueError("values has no finite entry to colour by")
    if ax is None:
        _, ax = plt.subplots(figsize=(5.5, 4.5))
    _cloud(ax, emb, 4 * max_points, seed)
    idx = np.random.default_rng(seed).permutation(finite)[:max_points]
    lo, hi = np.percentile(values[finite], [2, 98])
    points = ax.scatter(emb[idx, 0], emb[idx, 1], s=s, c=values[idx], cmap="viridis", vmin=lo,
                        vmax=max(hi, lo + 1e-9), alpha=alpha, linewidths=0, rasterized=True)
    ax.figure.colorbar(points, ax=ax, label=unit, fraction=0.046, pad=0.02)
    _frame(ax, f"{title}\n({len(idx)} of {len(finite)} frames)" if title else "")
    return ax.figure


def umap_panels(emb, colourings: dict, fig=None, title: str = "", max_points: int = 6000, seed: int = 0):
    """One panel per colouring ``{panel title: (labels, names or None)}``.

    Integer labels are classes (:func:`scatter_2d`); float values (loudness,
    spectral centroid) are drawn on a colour scale (:func:`scatter_values`),
    their second item then the colour bar's label (the unit).
    """
    n = len(colourings)
    if fig is None:
        fig = plt.figure(figsize=(6.2 * n, 4.8))
    axes = fig.subplots(1, n, squeeze=False)[0]
    for ax, (name, (labels, names)) in zip(axes, colourings.items()):
        if np.issubdtype(np.asarray(labels).dtype, np.floating):
            scatter_values(emb, labels, ax=ax, title=name, unit=names or "", max_points=max_points, seed=seed)
        else:
            scatter_2d(emb, labels, names, ax=ax, title=name, max_points=max_points, seed=seed)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def umap_by_instrument(emb, labels, names, fig=None, ncols: int = 4, max_per_panel: int = 1500,
                       seed: int = 0, title: str = ""):
    """One panel per instrument: the frames it dominates, highlighted on the grey cloud of all frames.

    Parameters
    ----------
    emb : (n, 2) map coordinates
    labels : (n,) int, index into ``names`` of each frame's dominant instrument (-1: none)
    names : instrument names
    max_per_panel : every panel draws at most this many of its frames, so the
        panels compare where an instrument lies, not how many frames it has
        (the title gives the count and share)
    """
    emb, labels = np.asarray(emb, dtype=float), np.asarray(labels)
    n = len(names)
    nrows = int(np.ceil(n / ncols))
    if fig is None:
        fig = plt.figure(figsize=(3.4 * ncols, 3.2 * nrows))
    axes = fig.subplots(nrows, ncols, squeeze=False, sharex=True, sharey=True)
    rng = np.random.default_rng(seed)
    for i, (ax, name, colour) in enumerate(zip(axes.flat, names, class_colours(n))):
        _cloud(ax, emb, 20000, seed)
        mine = np.flatnonzero(labels == i)
        shown = rng.permutation(mine)[:max_per_panel]
        ax.scatter(emb[shown, 0], emb[shown, 1], s=4, color=colour, alpha=0.5, linewidths=0, rasterized=True)
        _frame(ax, f"{name}: {len(mine)} frames ({len(mine) / max(len(labels), 1):.0%})")
    for ax in list(axes.flat)[n:]:
        ax.axis("off")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig
