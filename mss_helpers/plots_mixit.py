"""Figures of the learned separators (notebooks 07 and 08): MixIT's idea, training, over-separation,
the tables; VAE-BSS and deep clustering's training and active sources (08).

Same conventions as :mod:`plots`: functions draw and return the figure, never
``plt.show()``; save with ``plots.save_figure``. A leaf: nothing in the package
imports it.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns

from .plots import spectrogram

GROUP_COLOURS = ("tab:blue", "tab:orange", "tab:green", "tab:red", "tab:purple", "tab:brown", "tab:pink",
                 "tab:olive", "tab:cyan", "tab:grey")


def mixture_of_mixtures(y1, y2, outputs, assignment, rate: int, title: str = ""):
    """The MixIT idea as a figure: two mixtures, their sum, the M outputs and the best partition.

    Parameters
    ----------
    y1, y2 : (C, S) the two excerpts of "other" (different tracks)
    outputs : (M, C, S) the separator's outputs for ``y1 + y2``
    assignment : (M,) 0/1, 1 = output re-sums to mixture 1 (the loss's best partition)
    """
    M = len(outputs)
    ncols = max(3, int(np.ceil(M / 2)))
    fig = plt.figure(figsize=(2.6 * ncols, 7.2))
    grid = fig.add_gridspec(3, ncols, height_ratios=[1.1, 1, 1])
    top = [("mixture 1 (track A)", y1, "tab:blue"), ("mixture 2 (track B)", y2, "tab:orange"),
           ("input: mixture 1 + mixture 2", y1 + y2, "black")]
    for j, (name, sig, colour) in enumerate(top):
        ax = fig.add_subplot(grid[0, j])
        spectrogram(sig, rate, ax=ax, title=name)
        ax.title.set_color(colour)
        ax.set_xlabel("")
    for i in range(M):
        ax = fig.add_subplot(grid[1 + i // ncols, i % ncols])
        to_first = bool(assignment[i])
        spectrogram(outputs[i], rate, ax=ax, title=f"output {i + 1} -> mixture {1 if to_first else 2}")
        colour = "tab:blue" if to_first else "tab:orange"
        ax.title.set_color(colour)
        for side in ax.spines.values():
            side.set_edgecolor(colour)
            side.set_linewidth(2.5)
        ax.label_outer()
    fig.suptitle(title or "MixIT: the outputs of a mixture of mixtures, partitioned to re-build each mixture")
    fig.tight_layout()
    return fig


def training_curves(history: dict, title: str = ""):
    """MixIT loss (negative SNR, dB) and the number of active outputs per epoch, train and validation."""
    rows = [{"step": e["step"], "split": split, "neg_snr": e[split].get("neg_snr", e[split]["total"]),
             "active": e[split].get("active", np.nan)}
            for e in history["epochs"] for split in ("train", "val")]
    df = pd.DataFrame(rows)
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.4))
    sns.lineplot(data=df, x="step", y="neg_snr", hue="split", marker="o", ax=axes[0])
    axes[0].set_ylabel("MixIT loss: -SNR summed over both mixtures (dB)")
    sns.lineplot(data=df, x="step", y="active", hue="split", marker="o", ax=axes[1])
    axes[1].set_ylabel("outputs with > 1% of the energy")
    for ax in axes:
        ax.set_xlabel("optimiser step")
    fig.suptitle(title or "MixIT training")
    fig.tight_layout()
    return fig


def over_separation(counts: pd.DataFrame, n_outputs: int, ax=None, title: str = ""):
    """Active outputs per track against the track's true number of instruments.

    ``counts`` has columns ``n_instruments`` and ``n_active`` (one row per track).
    """
    if ax is None:
        fig, ax = plt.subplots(figsize=(5.5, 4))
    fig = ax.figure
    jitter = np.random.default_rng(0).uniform(-0.12, 0.12, size=(2, len(counts)))
    ax.scatter(counts["n_instruments"] + jitter[0], counts["n_active"] + jitter[1], alpha=0.7)
    lo, hi = 1, max(n_outputs, int(counts["n_instruments"].max()))
    ax.plot([lo, hi], [lo, hi], color="grey", ls="--", label="as many outputs as instruments")
    ax.axhline(n_outputs, color="tab:red", ls=":", label=f"all {n_outputs} outputs")
    ax.set_xlabel("instruments in the track (true count)")
    ax.set_ylabel("active outputs (above the energy floor)")
    ax.legend(loc="lower right", fontsize=8)
    ax.set_title(title or "Over-separation per test track")
    return fig


def row_bars(table: pd.DataFrame, metric: str = "si_sdri_db", ax=None, title: str = ""):
    """Horizontal bars of a summary table's ``metric``, one bar per labelled row (column ``row``)."""
    if ax is None:
        fig, ax = plt.subplots(figsize=(7, 0.35 * len(table) + 1.2))
    fig = ax.figure
    t = table.dropna(subset=[metric])
    reference = [any(w in r.lower() for w in ("oracle", "ceiling", "floor")) for r in t["row"]]
    ax.barh(t["row"], t[metric], color=["tab:grey" if ref else "tab:blue" for ref in reference])
    from matplotlib.patches import Patch

    ax.legend(handles=[Patch(color="tab:blue", label="without labels"),
                       Patch(color="tab:grey", label="floor / ceilings (use ground truth)")],
              loc="lower right", fontsize=8)
    ax.axvline(0, color="black", lw=0.8)
    ax.invert_yaxis()
    ax.set_xlabel("median SI-SDRi (dB)" if metric == "si_sdri_db" else metric)
    ax.set_title(title)
    return fig


def audio_rows(curve: pd.DataFrame) -> pd.DataFrame:
    """The rows of a ``mixit_curve`` CSV that differ from the preset only by the amount of training
    audio (fewer training tracks, or extra ones rendered), sorted by minutes of audio; of those, only
    the rows trained for the most common number of steps (a longer run of the same data is a variant,
    not a point of the curve)."""
    keep = curve["changes"].str.contains("train_tracks|extra_train") | (curve["changes"] == "{}")
    rows = curve[keep]
    if rows.empty:
        return rows
    return rows[rows["steps"] == rows["steps"].mode().max()].sort_values("train_minutes")


def data_curve(curve: pd.DataFrame, title: str = ""):
    """SI-SDRi of the instruments and the separator's own objective against minutes of training audio.

    ``curve`` is ``results/mixit_curve_<preset>.csv`` (scripts/mixit_curve.py): one row per configuration
    with ``train_minutes``, ``val_mom_snr_db`` and ``<decoding>_si_sdri_db`` columns; only the
    :func:`audio_rows` are drawn.
    """
    rows = audio_rows(curve)
    decodings = [c[:-len("_si_sdri_db")] for c in rows.columns if c.endswith("_si_sdri_db")]
    long = rows.melt(id_vars=["train_minutes"], value_vars=[f"{d}_si_sdri_db" for d in decodings],
                     var_name="decoding", value_name="si_sdri_db")
    long["decoding"] = long["decoding"].str[:-len("_si_sdri_db")]
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.6))
    sns.lineplot(data=long, x="train_minutes", y="si_sdri_db", hue="decoding", marker="o", ax=axes[0])
    axes[0].axhline(0, color="black", lw=0.8)
    axes[0].set_ylabel("instruments: median SI-SDRi, k = n (dB)")
    axes[0].set_title("test split: separating instruments")
    sns.lineplot(data=rows, x="train_minutes", y="val_mom_snr_db", marker="o", color="black", ax=axes[1])
    axes[1].set_ylabel("SNR re-building each mixture (dB)")
    axes[1].set_title("validation: splitting a mixture of two mixtures")
    sns.move_legend(axes[0], "lower right", fontsize=8, title_fontsize=8)
    minutes = sorted(rows["train_minutes"].unique())
    for ax in axes:
        ax.set_xscale("log", base=2)
        ax.set_xticks(minutes, [f"{m:.3g}" for m in minutes])
        ax.minorticks_off()
        ax.set_xlabel("minutes of training audio ('other' stems), log scale")
    fig.suptitle(title or "MixIT against the amount of training audio")
    fig.tight_layout()
    return fig


def sources_training(vaebss_history: dict, dc_history: dict | None = None, title: str = ""):
    """VAE-BSS's negative ELBO and active sources, and deep clustering's affinity loss, per epoch.

    Parameters
    ----------
    vaebss_history : ``history.json`` of a VAE-BSS run (epochs with ``train``/``val`` terms ``total``,
        ``l1``, ``active``)
    dc_history : ``history.json`` of a deep-clustering run (terms ``affinity``), or None (not trained:
        the data has no instruments), drawn as a note
    """
    def frame(history, terms):
        return pd.DataFrame([{"step": e["step"], "split": split,
                              **{t: e[split].get(t, np.nan) for t in terms}}
                             for e in history["epochs"] for split in ("train", "val")])

    vae = frame(vaebss_history, ("total", "active"))
    fig, axes = plt.subplots(1, 3, figsize=(14, 3.4))
    sns.lineplot(data=vae, x="step", y="total", hue="split", marker="o", ax=axes[0])
    axes[0].set(title="VAE-BSS (no labels)", ylabel="-ELBO per bin: L1 + beta KL")
    sns.lineplot(data=vae, x="step", y="active", hue="split", marker="o", ax=axes[1])
    axes[1].set(title="VAE-BSS", ylabel="sources with > 1% of the energy")
    if dc_history is None:
        axes[2].text(0.5, 0.5, "deep clustering not trained:\nno instruments to learn from", ha="center",
                     va="center", transform=axes[2].transAxes)
        axes[2].set(title="deep clustering (LABELLED)", xticks=[], yticks=[])
    else:
        sns.lineplot(data=frame(dc_history, ("affinity",)), x="step", y="affinity", hue="split", marker="o",
                     ax=axes[2])
        axes[2].set(title="deep clustering (LABELLED)", ylabel="affinity loss ||VV' - YY'||^2 / N^2")
    for ax in axes:
        ax.set_xlabel("optimiser step")
    fig.suptitle(title or "Training: a VAE made of sources, and deep clustering")
    fig.tight_layout()
    return fig


def active_sources(counts: pd.DataFrame, n_sources: int, ax=None, title: str = ""):
    """How many of the ``K`` latent sources carry sound per track, against the true number of instruments.

    ``counts`` has one row per track and the column ``n_active``, and ``n_instruments`` when the data has
    instruments. With it: one disc per (instruments, active) pair, its area and label the number of
    tracks (every pair visible, none drawn over another); without it: the tracks per active count.
    """
    if ax is None:
        fig, ax = plt.subplots(figsize=(5.5, 4))
    fig = ax.figure
    if "n_instruments" in counts:
        cells = counts.groupby(["n_instruments", "n_active"]).size().rename("tracks").reset_index()
        ax.scatter(cells["n_instruments"], cells["n_active"], alpha=0.5, color="tab:blue",
                   s=120 + 600 * cells["tracks"] / cells["tracks"].max())
        for _, c in cells.iterrows():
            ax.annotate(str(c["tracks"]), (c["n_instruments"], c["n_active"]), ha="center", va="center",
                        fontsize=9)
        hi = max(n_sources, int(counts["n_instruments"].max()))
        ax.plot([1, hi], [1, hi], color="grey", ls="--", label="as many sources as instruments")
        ax.axhline(n_sources, color="tab:red", ls=":", label=f"all K = {n_sources} sources")
        ax.set(xlabel="instruments in the track (true count)", ylabel="active sources (above the energy floor)",
               xticks=range(1, int(counts["n_instruments"].max()) + 1), yticks=range(1, n_sources + 1),
               ylim=(0.5, n_sources + 0.5))
        ax.legend(loc="lower right", fontsize=8)
    else:
        tally = counts["n_active"].value_counts().reindex(range(1, n_sources + 1), fill_value=0)
        ax.bar(tally.index, tally.values, color="tab:blue")
        ax.set(xlabel=f"active sources (above the energy floor), of K = {n_sources}", ylabel="test tracks",
               xticks=range(1, n_sources + 1))
        ax.yaxis.get_major_locator().set_params(integer=True)
    ax.set_title(title or "Active latent sources per test track")
    return fig


KIND_COLOURS = {"without labels": "tab:blue", "LABELLED reference": "tab:orange",
                "floor / ceilings (ground truth)": "tab:grey"}


def kind_bars(table: pd.DataFrame, metric: str = "si_sdri_db", ax=None, title: str = ""):
    """Horizontal bars of ``metric``, one per row (column ``row``), coloured by the column ``kind``:
    one of :data:`KIND_COLOURS` (what the row was allowed to use)."""
    if ax is None:
        fig, ax = plt.subplots(figsize=(7.5, 0.35 * len(table) + 1.2))
    fig = ax.figure
    t = table.dropna(subset=[metric])
    ax.barh(t["row"], t[metric], color=[KIND_COLOURS[k] for k in t["kind"]])
    from matplotlib.patches import Patch

    ax.legend(handles=[Patch(color=c, label=k) for k, c in KIND_COLOURS.items() if k in set(t["kind"])],
              loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8)  # outside: never over a bar
    ax.axvline(0, color="black", lw=0.8)
    ax.invert_yaxis()
    ax.set_xlabel("median SI-SDRi (dB)" if metric == "si_sdri_db" else metric)
    ax.set_title(title)
    return fig


__all__ = [
    "KIND_COLOURS",
    "active_sources",
    "audio_rows",
    "data_curve",
    "kind_bars",
    "mixture_of_mixtures",
    "over_separation",
    "row_bars",
    "sources_training",
    "training_curves",
]
