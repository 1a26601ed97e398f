"""Every figure of the report.

Plot functions take ``ax=None`` (or ``fig=None`` for multi-panel figures), draw,
and return the figure; they never call ``plt.show()``. ``save_figure(fig,
"NN_name")`` writes ``figures/NN_name.png`` so a rerun overwrites, never
duplicates. Statistical figures (distributions over tracks or pairs) use
seaborn; the latent maps live in :mod:`plots_umap` and are re-exported here, so
notebooks need only ``plots``. This module is a leaf: only notebooks and the
other plot modules import it.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns

from . import paths
from .plots_umap import balanced_sample, scatter_2d, umap_by_instrument, umap_panels  # noqa: F401


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

    ``df`` has columns ``condition`` and ``rating`` (0-100), as from ``mushra.read_ratings``.
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
    field of ``unmix_eval.evaluate_unmix``; methods keep the order of the first track.
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


def _label(metric: str) -> str:
    for short, long in [("si_sdri", "SI-SDR improvement"), ("si_sdr", "SI-SDR"), ("sdr", "SDR"), ("snr", "SNR"),
                        ("_db", " (dB)"), ("_", " ")]:
        metric = metric.replace(short, long)
    return metric


def ablation_bars(arms: dict, fig=None, title: str = "",
                  recon=("snr_db", "si_sdr_db"), purity=("knn_purity", "knn_chance")):
    """The KL ablation: reconstruction (dB) per arm and, where given, k-NN purity against chance.

    ``arms`` maps an arm label (e.g. ``"kl_weight=0"``) to ``{metric: value}``;
    metrics of ``recon`` found there are drawn as grouped bars (hue = arm). If
    the arms also hold ``purity[0]``, a second panel draws it with the chance
    level ``purity[1]`` as a dashed line. Every bar is labelled with its value.
    """
    rows = [{"arm": a, "metric": m, "value": float(v[m])} for a, v in arms.items() for m in recon if m in v]
    if not rows:
        raise ValueError(f"the arms hold none of {recon}")
    has_purity = all(purity[0] in v for v in arms.values())
    if fig is None:
        fig = plt.figure(figsize=(9.5 if has_purity else 5.5, 3.6))
    axes = fig.subplots(1, 2 if has_purity else 1, squeeze=False,
                        gridspec_kw={"width_ratios": [2, 1]} if has_purity else None)[0]
    palette = dict(zip(arms, sns.color_palette("Set2", len(arms))))
    sns.barplot(pd.DataFrame(rows), x="metric", y="value", hue="arm", palette=palette, ax=axes[0])
    axes[0].set_xticks(axes[0].get_xticks(), [_label(t.get_text()) for t in axes[0].get_xticklabels()])
    axes[0].set(xlabel="", ylabel="dB", title="reconstruction (test median)")
    axes[0].legend(fontsize=8, loc="upper right")
    if has_purity:
        p = pd.DataFrame({"arm": list(arms), "value": [float(v[purity[0]]) for v in arms.values()]})
        sns.barplot(p, x="arm", y="value", hue="arm", palette=palette, legend=False, ax=axes[1])
        chance = [float(v[purity[1]]) for v in arms.values() if purity[1] in v]
        if chance:
            axes[1].axhline(chance[0], color="grey", ls="--", lw=1, label=f"chance ({chance[0]:.2f})")
            axes[1].legend(fontsize=8, loc="upper right")
        axes[1].set(xlabel="", ylabel="k-NN purity (10 neighbours)", title="dominant instrument (latent)")
    for ax in axes:
        for bars in ax.containers:
            ax.bar_label(bars, fmt="%.2f", fontsize=7)
        ax.margins(y=0.3)  # headroom for the value labels and the legend
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


# --- separation (notebook 04) ---------------------------------------------------------

REFERENCES = {"mixture": ("floor: the input itself", "grey", "--"),
              "oracle_frames": ("ceiling: best latent-frame assignment", "tab:orange", "-."),
              "oracle_irm": ("ceiling: oracle ratio mask", "tab:green", ":")}
DECODING_NAMES = {"hard": "hard (time masks)", "soft": "soft (mixture-consistent masks)", "-": "method's own masks"}


def _matched_pairs(df, metric: str):
    """Rows of matched (track, instrument) pairs with a numeric ``metric`` and a ``decoding name`` column."""
    d = df[(df["instrument"] != "") & df["estimate"].notna()].copy()
    d[metric] = pd.to_numeric(d[metric], errors="coerce")
    d["k_label"] = d["k_label"].astype(str)
    d["decoding name"] = d["decoding"].map(lambda v: DECODING_NAMES.get(v, v))
    return d.dropna(subset=[metric])


def method_comparison(df, metric: str = "si_sdri_db", fig=None, title: str = ""):
    """Each method's ``metric`` over matched pairs: one row per method, hue = decoding.

    Left panel: k = n (each track's true number of instruments; ``auto`` where
    the method chooses k). Right panel: each (method, decoding) at its best fixed
    k (highest median; the chosen k is in the row label). The floor (``mixture``)
    and the ceilings (``oracle_irm``, ``oracle_frames``) are vertical lines at
    their medians over the same pairs. ``df`` is ``evaluate.run_evaluation``'s
    table (one row per track x setting x instrument). Returns the figure.
    """
    d = _matched_pairs(df, metric)
    refs = {m: float(d.loc[(d.method == m) & (d.k_label == "n"), metric].median())
            for m in REFERENCES if ((d.method == m) & (d.k_label == "n")).any()}
    d = d[~d.method.isin(list(REFERENCES))]
    if d.empty:
        raise ValueError("no separation method besides the reference rows to plot")
    # Methods that never produced a matched estimate (e.g. HDBSCAN labelling every frame noise) keep a row.
    methods = [m for m in dict.fromkeys(df["method"]) if m not in REFERENCES]
    unscored = {m: f"{m} (no matched pair)" for m in methods if m not in set(d.method)}
    hues = [DECODING_NAMES.get(k, k) for k in dict.fromkeys(d.decoding)]
    at_n = d[d.k_label.isin(["n", "auto"])]
    fixed = d[~d.k_label.isin(["n", "auto"])]
    medians = fixed.groupby(["method", "decoding", "k_label"])[metric].median().reset_index()
    best = medians.loc[medians.groupby(["method", "decoding"])[metric].idxmax()]
    best_fixed = fixed.merge(best[["method", "decoding", "k_label"]], on=["method", "decoding", "k_label"])
    best_k = {m: ", ".join(f"{r.decoding} k={r.k_label}" if r.decoding != "-" else f"k={r.k_label}"
                           for r in best[best.method == m].itertuples()) for m in methods}
    if fig is None:
        fig = plt.figure(figsize=(12, 0.55 * len(methods) * max(len(hues), 2) / 2 + 2.2))
    axes = fig.subplots(1, 2, sharex=True)
    panels = [(axes[0], at_n, "k = n (the true number; auto where the method chooses)",
               [unscored.get(m) or (f"{m} (auto)" if (at_n[at_n.method == m].k_label == "auto").any() else m)
                for m in methods]),
              (axes[1], best_fixed, "best fixed k per method and decoding (by median)",
               [unscored.get(m) or (f"{m}\n({best_k[m]})" if best_k[m] else f"{m}\n(no fixed k)")
                for m in methods])]
    palette = dict(zip(hues, sns.color_palette("Set2", len(hues))))
    for ax, data, panel_title, ticklabels in panels:
        sns.boxplot(data=data, x=metric, y="method", hue="decoding name", order=methods, hue_order=hues,
                    palette=palette, fliersize=1.5, linewidth=0.8, ax=ax)
        for m, (text, colour, ls) in REFERENCES.items():
            if m in refs:
                ax.axvline(refs[m], color=colour, ls=ls, lw=1.6, label=f"{text} ({refs[m]:+.1f})")
        ax.set_yticks(range(len(methods)), ticklabels, fontsize=8)
        ax.set_ylabel("")
        ax.set_xlabel(_label(metric))
        ax.set_title(panel_title, fontsize=10)
        ax.grid(axis="x", alpha=0.3)
        ax.get_legend().remove()
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=3, fontsize=8, frameon=False,
               title="decoding (boxes: matched track x instrument pairs) and reference medians")
    if title:
        fig.suptitle(title)
    fig.tight_layout(rect=(0, min(0.3, 0.85 / fig.get_figheight()), 1, 1))  # ~0.85 inch for the legend
    return fig


def instrument_results(df, metric: str = "si_sdri_db", k_label: str = "n", ax=None, title: str = ""):
    """Heat map of the median ``metric`` per instrument (rows) and setting (columns) at ``k_label``.

    Columns are ``method / decoding`` in the table's order (methods that choose
    k join with their ``auto`` rows); each cell is annotated with its median over
    the instrument's matched pairs, the row label gives the number of pairs.
    """
    d = _matched_pairs(df, metric)
    d = d[d.k_label.isin([k_label, "auto"])]
    if d.empty:
        raise ValueError(f"no matched pairs at k_label={k_label!r}")
    d["setting"] = (d.method + np.where(d.decoding == "-", "", " / " + d.decoding)
                    + np.where(d.k_label == "auto", " (auto k)", ""))
    table = d.pivot_table(index="instrument", columns="setting", values=metric, aggfunc="median")
    table = table[list(dict.fromkeys(d.setting))]
    pairs = d[d.method == d.method.iloc[0]].groupby("instrument").size()
    table.index = [f"{i} ({pairs.get(i, 0)} pairs)" for i in table.index]
    if ax is None:
        _, ax = plt.subplots(figsize=(0.75 * table.shape[1] + 3, 0.45 * table.shape[0] + 2))
    lim = float(np.nanmax(np.abs(table.to_numpy()))) if np.isfinite(table.to_numpy()).any() else 1.0
    sns.heatmap(table, annot=True, fmt=".1f", cmap="RdBu", center=0, vmin=-lim, vmax=lim, linewidths=0.5,
                annot_kws={"fontsize": 7}, cbar_kws={"label": f"median {_label(metric)}"}, ax=ax)
    ax.set_xlabel("")
    ax.set_ylabel("")
    ax.tick_params(axis="x", rotation=40, labelsize=8)
    plt.setp(ax.get_xticklabels(), ha="right")
    ax.set_title(title)
    ax.figure.tight_layout()
    return ax.figure


def style_card(instruments, fig=None, title: str = ""):
    """The data card of two render styles: per instrument of "other", the spread of its inter-channel level
    ratio and its polyphony, one box per style (``instruments``: :func:`mss_helpers.datacard.instrument_card`
    of both sets)."""
    fig = fig or plt.figure(figsize=(10, 3.6))
    axes = fig.subplots(1, 2)
    order = sorted(instruments["style"].unique())
    palette = dict(zip(order, sns.color_palette("Set2", len(order))))
    for ax, (col, label) in zip(axes, (("ild_iqr_db", "inter-channel level ratio IQR (dB)"),
                                       ("polyphony", "share of sounding frames with 2+ notes"))):
        data = instruments.dropna(subset=[col])
        sns.boxplot(data=data, x=col, y="instrument", hue="style", hue_order=order, palette=palette,
                    fliersize=2, ax=ax)
        ax.set_xlabel(label)
        ax.set_ylabel("")
    if axes[1].get_legend() is not None:  # one legend for both panels
        axes[1].get_legend().remove()
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def stem_levels(table, fig=None, title: str = "", stems=None):
    """A root's stems without the instruments inside "other" (MUSDB18): left, the level of each stem, one box
    per stem with every track as a point (dBFS); right, the share of the mixture's energy in "other", one
    count per track. ``table``: :func:`mss_helpers.datacard.stem_table`; ``stems``: its stems, in order
    (default :data:`mss_helpers.datacard.STEMS`)."""
    from .datacard import STEMS

    stems = list(stems or STEMS)
    fig = fig or plt.figure(figsize=(10, 3.4))
    left, right = fig.subplots(1, 2, gridspec_kw={"width_ratios": [3, 2]})
    data = [table[f"{s}_db"].to_numpy(dtype=float) for s in stems]
    left.boxplot(data, showfliers=False, widths=0.6)
    rng = np.random.default_rng(0)  # fixed jitter: reruns draw the same figure
    for i, values in enumerate(data, start=1):
        left.scatter(i + rng.uniform(-0.15, 0.15, len(values)), values, s=10, alpha=0.6, color="tab:blue")
    left.set_xticks(range(1, len(stems) + 1))
    left.set_xticklabels(stems)
    left.set_ylabel("RMS level (dBFS)")
    right.hist(table["other_share"].to_numpy(dtype=float), bins=15, color="tab:green", alpha=0.8)
    right.set_xlabel("share of the mixture's energy in 'other'")
    right.set_ylabel("tracks")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig
