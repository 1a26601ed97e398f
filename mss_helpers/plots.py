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


# --- Open-Unmix first stage (notebook 06) --------------------------------------------


def sdr_per_track(per_track: dict, metric: str = "SDR", ax=None, title: str = ""):
    """One line per track across methods (floor, model, ceiling), with the median as a black bar.

    ``per_track`` maps ``track -> {method -> {metric: dB}}``, as in the ``per_track``
    field of ``unmix.evaluate_unmix``; methods keep the order of the first track.
    """
    if not per_track:
        raise ValueError("no tracks to plot")
    methods = list(next(iter(per_track.values())))
    values = np.array([[per_track[t][m][metric] for m in methods] for t in per_track], dtype=float)
    fig, ax = _ax(ax, figsize=(max(4.5, 1.4 * len(methods) + 1.5), 3.6))
    x = np.arange(len(methods))
    for row in values:
        ax.plot(x, row, color="tab:blue", alpha=0.35, marker="o", ms=3, lw=0.8)
    med = np.median(values, axis=0)
    ax.hlines(med, x - 0.25, x + 0.25, color="black", lw=2.5, label="median over tracks")
    for xi, m in zip(x, med):
        ax.annotate(f"{m:.2f}", (xi + 0.28, m), va="center", fontsize=8)
    ax.set_xticks(x)
    ax.set_xticklabels(methods)
    ax.set_xlim(-0.5, len(methods) - 0.3)
    ax.set_ylabel(f"{metric} (dB)")
    ax.set_title(title)
    ax.legend(loc="best", fontsize=8)
    fig.tight_layout()
    return fig


# --- autoencoder training (notebook 02) ------------------------------------------------


def loss_curves(history: dict, fig=None, terms=("total", "mse", "stft", "kl", "mel"), title: str = ""):
    """Train and validation loss per epoch, one panel per term (``history.json`` of a run).

    Terms that are zero throughout (e.g. ``mel`` when disabled) are left out.
    The y axes are logarithmic: the terms span orders of magnitude.
    """
    epochs = history["epochs"]
    x = [e["epoch"] for e in epochs]
    shown = [t for t in terms if any(e["train"].get(t, 0) or e["val"].get(t, 0) for e in epochs)]
    if fig is None:
        fig = plt.figure(figsize=(3.2 * len(shown), 3.0))
    axes = fig.subplots(1, len(shown), squeeze=False)[0]
    for ax, term in zip(axes, shown):
        ax.plot(x, [e["train"][term] for e in epochs], "o-", label="train", color="tab:blue")
        ax.plot(x, [e["val"][term] for e in epochs], "s--", label="validation", color="tab:orange")
        if history.get("best_epoch") is not None and term == "total":
            ax.axvline(history["best_epoch"], color="grey", lw=0.8, ls=":", label="best")
        if all(e["train"][term] > 0 and e["val"][term] > 0 for e in epochs):
            ax.set_yscale("log")
        ax.set_title(term)
        ax.set_xlabel("epoch")
    axes[0].legend(fontsize=8)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def metric_bars(table: dict, metric: str, ax=None, title: str = ""):
    """Bars of one metric for named rows, ``{name: value}`` (e.g. the seed vs this project)."""
    fig, ax = _ax(ax, figsize=(5, 3))
    names = list(table)
    ax.bar(names, [table[n] for n in names], color=["tab:grey"] + ["tab:blue"] * (len(names) - 1))
    ax.set_ylabel(metric)
    ax.set_title(title or metric)
    ax.tick_params(axis="x", rotation=15)
    fig.tight_layout()
    return fig


# --- latents and separation (notebooks 03, 04) ----------------------------------------


def scatter_2d(emb, labels, names=None, ax=None, title: str = "", max_legend: int = 12, s: float = 3.0):
    """2-d points ``emb : (n, 2)`` coloured by integer ``labels : (n,)``.

    ``names[i]`` is the legend text of label ``i``; label -1 is drawn grey as
    "none" (silence / no ground truth). More than ``max_legend`` labels get a
    colour bar instead of a legend.
    """
    emb = np.asarray(emb, dtype=float)
    labels = np.asarray(labels)
    fig, ax = _ax(ax, figsize=(5.5, 4.5))
    none = labels == -1
    if none.any():
        ax.scatter(emb[none, 0], emb[none, 1], s=s, c="lightgrey", label="none", rasterized=True)
    values = np.unique(labels[~none])
    if len(values) <= max_legend:
        cmap = plt.get_cmap("tab10" if len(values) <= 10 else "tab20")
        for i, v in enumerate(values):
            m = labels == v
            name = names[int(v)] if names is not None and int(v) < len(names) else str(v)
            ax.scatter(emb[m, 0], emb[m, 1], s=s, color=cmap(i % cmap.N), label=name, rasterized=True)
        ax.legend(markerscale=4, fontsize=7, loc="best", frameon=False)
    else:
        sc = ax.scatter(emb[~none, 0], emb[~none, 1], s=s, c=labels[~none], cmap="viridis", rasterized=True)
        fig.colorbar(sc, ax=ax)
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_title(title)
    return fig


def umap_panels(emb, colourings: dict, fig=None, title: str = ""):
    """One :func:`scatter_2d` panel per colouring ``{panel title: (labels, names or None)}``."""
    n = len(colourings)
    if fig is None:
        fig = plt.figure(figsize=(5 * n, 4.5))
    axes = fig.subplots(1, n, squeeze=False)[0]
    for ax, (name, (labels, names)) in zip(axes, colourings.items()):
        scatter_2d(emb, labels, names, ax=ax, title=name)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def method_boxplot(df, metric: str = "si_sdri_db", ax=None, title: str = "", order=None):
    """Box plot of ``metric`` per separation setting (``method / decoding / k_label``) over matched pairs."""
    d = df[(df["instrument"] != "") & df["estimate"].notna()].copy()
    d[metric] = d[metric].astype(float)
    d["setting"] = d["method"] + " / " + d["decoding"] + " / k=" + d["k_label"].astype(str)
    order = order or list(dict.fromkeys(d["setting"]))
    data = [d.loc[d["setting"] == s, metric].dropna().to_numpy() for s in order]
    fig, ax = _ax(ax, figsize=(7, 0.3 * len(order) + 1.5))
    ax.boxplot(data, vert=False, showfliers=False)
    ax.set_yticks(range(1, len(order) + 1), order, fontsize=7)
    ax.axvline(0, color="grey", lw=0.8, ls="--")
    ax.invert_yaxis()
    ax.set_xlabel(metric.replace("_db", " (dB)").replace("_", " "))
    ax.set_title(title)
    fig.tight_layout()
    return fig
