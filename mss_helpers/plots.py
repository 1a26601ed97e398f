"""Every figure of the report.

Plot functions take ``ax=None`` (or ``fig=None`` for multi-panel figures), draw,
and return the figure; they never call ``plt.show()``. ``save_figure(fig,
"NN_name")`` writes ``figures/NN_name.png`` so a rerun overwrites, never
duplicates. This module is a leaf: nothing else in the package imports it.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np

from . import paths


def _ax(ax=None, figsize=(7, 3.5)):
    if ax is None:
        fig, ax = plt.subplots(figsize=figsize)
    return ax.figure, ax


def save_figure(fig, name: str, dpi: int = 110):
    """Save ``fig`` as ``<figures_dir>/<name>.png`` (stable name) and return the path."""
    out = paths.figures_dir()
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{name}.png"
    fig.savefig(path, dpi=dpi, bbox_inches="tight")
    return path


def spectrogram(audio, rate: int, ax=None, title: str | None = None, n_fft: int = 1024,
                hop: int = 256, vmin_db: float = -80.0):
    """Log-magnitude spectrogram of ``(channels, samples)`` or ``(samples,)`` audio (mono mix)."""
    import librosa

    x = np.asarray(audio, dtype=np.float32)
    x = x.mean(axis=0) if x.ndim == 2 else x
    fig, ax = _ax(ax)
    S = np.abs(librosa.stft(x, n_fft=n_fft, hop_length=hop))
    S_db = librosa.amplitude_to_db(S, ref=max(float(S.max()), 1e-8), top_db=-vmin_db)
    img = librosa.display.specshow(S_db, sr=rate, hop_length=hop, x_axis="time", y_axis="hz", ax=ax,
                                   vmin=vmin_db, vmax=0, cmap="magma")
    if title:
        ax.set_title(title)
    ax._mss_image = img  # lets callers add one shared colorbar
    return fig


def spectrogram_grid(signals: dict, rate: int, ncols: int = 2, title: str | None = None,
                     width: float = 12.0, row_height: float = 2.4):
    """One spectrogram per named signal, in a grid; returns the figure."""
    import librosa.display  # noqa: F401  (registers specshow)

    names = list(signals)
    nrows = int(np.ceil(len(names) / ncols))
    fig, axes = plt.subplots(nrows, ncols, figsize=(width, row_height * nrows), squeeze=False,
                             sharex=True, sharey=True)
    for ax, name in zip(axes.flat, names):
        spectrogram(signals[name], rate, ax=ax, title=name)
        ax.label_outer()
    for ax in list(axes.flat)[len(names):]:
        ax.axis("off")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


# --- data set overview (notebook 01) -------------------------------------------------


def bar_counts(counts: dict, ax=None, title: str = "", xlabel: str = "count"):
    """Horizontal bar chart of ``{label: number}``."""
    fig, ax = _ax(ax, figsize=(6, 0.35 * max(len(counts), 4) + 1))
    labels = list(counts)
    ax.barh(labels, [counts[k] for k in labels], color="tab:blue")
    ax.set_xlabel(xlabel)
    ax.set_title(title)
    ax.invert_yaxis()
    fig.tight_layout()
    return fig


def histogram(values, ax=None, bins=20, title: str = "", xlabel: str = ""):
    """Histogram of a 1-d array."""
    fig, ax = _ax(ax, figsize=(5, 3))
    ax.hist(np.asarray(values, dtype=float), bins=bins, color="tab:green", alpha=0.8)
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("tracks")
    fig.tight_layout()
    return fig


# --- listening test (notebook 05) ----------------------------------------------------


def ratings_boxplot(df, ax=None, title: str = ""):
    """Box per condition (best median first) with every individual rating as a jittered point.

    ``df`` has columns ``condition`` and ``rating`` (0-100), as from ``listen.read_ratings``.
    """
    if len(df) == 0:
        raise ValueError("no ratings to plot")
    medians = df.groupby("condition")["rating"].median().sort_values(ascending=False)
    names = list(medians.index)
    fig, ax = _ax(ax, figsize=(max(5.0, 1.1 * len(names) + 1), 3.8))
    data = [df.loc[df["condition"] == c, "rating"].to_numpy(dtype=float) for c in names]
    ax.boxplot(data, showfliers=False, widths=0.6)
    rng = np.random.default_rng(0)  # fixed jitter: reruns draw the same figure
    for i, values in enumerate(data, start=1):
        ax.scatter(i + rng.uniform(-0.15, 0.15, len(values)), values, s=10, alpha=0.5, color="tab:blue")
    ax.set_xticks(range(1, len(names) + 1))
    ax.set_xticklabels(names, rotation=30, ha="right")
    ax.set_ylim(-2, 102)
    ax.set_ylabel("rating (0-100)")
    ax.set_title(title)
    fig.tight_layout()
    return fig
