# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 08 · Sources in the latent space: a VAE made of sources, and deep clustering as the labelled reference
#
# **Question.** Clustering the VAE's latent *frames* (notebooks 03-04) gives
# each frame to one cluster, so it cannot split instruments that sound at the
# same time -- and in "other" they almost always do. The seed's own references
# put the separation into the embedding instead. Does a latent space made of
# sources separate "other" better than clustering latent frames? And how far is
# it from clustering in an embedding trained *with* labels for exactly this?
#
# **VAE-BSS** (Neri, Badeau & Depalle 2021). An inference network maps the
# mixture's spectrogram to K latent *sources*, each with its own Gaussian
# posterior and an N(0, I) prior; ONE shared decoder turns each latent source
# into a magnitude spectrogram, and the K decoded sources must add up to the
# mixture (a Laplace likelihood, i.e. an L1 distance, plus beta times the KL
# terms). It trains on mixtures only -- here the training split's "other" stems,
# never the instruments inside them -- so it needs no label. K may exceed the
# true count: the KL term pushes the sources it does not need towards the prior,
# and they go silent. We report its masked variant: the decoded sources become
# ratio masks on the mixture's STFT, so the estimates sum exactly to the input
# (mixture-consistent). Its K sources are merged into k groups by spectral
# correlation for the table; k = auto keeps the sources above the energy floor.
#
# **Deep clustering** (Hershey, Chen, Le Roux & Watanabe 2016). A BLSTM embeds
# every time-frequency *bin*, trained so that bins dominated by the same
# instrument lie close together (the affinity loss against the ideal binary
# masks of the training instruments: labels); at test time k-means on a track's
# bin embeddings gives binary masks (the `hard` rows; the `soft` rows weight each
# bin by its distances to the centroids instead). It is the reference for "clustering, when
# the embedding is trained for it", next to the oracle rows -- not a competitor
# of the unsupervised methods.
#
# **In:** the preset (`MSS_PRESET`, default `cpu`); the training split's "other"
# stems (VAE-BSS) and their instruments (deep clustering); the test split with
# its instruments for scoring; the autoencoder of notebook 02 (its oracle frame
# row); the rows of notebooks 04 and 07 (`results/separation_<preset>.csv`,
# `separation_mixit_<preset>.csv`; computed here the same way when missing);
# Open-Unmix's first stage of notebook 06. Everything trained here when missing.
# **Out:** the runs `runs/vaebss_<preset>_<hash>`, `runs/deep_clustering_<preset>_<hash>`;
# `results/separation_sources_<preset>.csv|.md|.json` (and `_clean`: the same
# models on the clean render), `results/separation_sources_unmix_<preset>.csv|.md`;
# figures `08_training.png`, `08_active_sources.png`, `08_table.png`, `08_one_track.png`.
#
# On a root without the instruments inside "other" (MUSDB18) VAE-BSS still
# trains and separates (it needs no label); its sources, their active counts,
# players and the seed's label-free table are shown. Deep clustering (trained on
# labels), every SI-SDR row, the clean render and the Open-Unmix comparison are
# skipped with one line each.

# %%
import json
import os

import numpy as np
import pandas as pd
from IPython.display import Markdown, display

from mss_helpers import (cluster_metrics, datasets, evaluate, paths, plots, plots_mixit, unmix, unmix_eval,
                         unmix_train, vaebss)
from mss_helpers import deep_clustering as dc
from mss_helpers import separator as sep
from mss_helpers.audio import embed_audio
from mss_helpers.autoencoder import ensure_autoencoder
from mss_helpers.config import get_config, seed_everything
from mss_helpers.train import cap_note
from mss_helpers.verify import BAND_DB, gap_sentence

seed_everything(0)

# %%
cfg = get_config(os.environ.get("MSS_PRESET", "cpu"))
root = datasets.ensure_dataset(cfg)
rate, v, K = cfg.data.sample_rate, cfg.vaebss, cfg.vaebss.n_sources
tracks = datasets.load_tracks(root, "test")
labelled = datasets.has_instruments(tracks)  # False on MUSDB18: nothing inside "other" to score against
user_root = paths.user_root() is not None  # the clean render is the embedded set's, never a user's
no_labels = f"needs the instruments inside 'other', which {root.name} does not have"
print(f"preset {cfg.name}: data {root.name}; VAE-BSS with K = {K} latent sources, STFT {v.n_fft}/{v.hop}")

# %% [markdown]
# ## Training
# Both models are cached runs (trained here when missing). VAE-BSS: the
# negative ELBO per bin on training and fixed validation clips (the KL weight
# ramps up over the first steps, so early training losses are lower than the
# validation's, which always uses the full weight), and how many of the K
# sources carry more than 1% of the energy. Deep clustering: the affinity loss.

# %%
vae_run = vaebss.ensure_vaebss(cfg, root=root)  # reads the training split's other.wav only
vae_model = vaebss.load_vaebss(cfg, vae_run)
runs = {"VAE-BSS": (vae_run, v, "train-vaebss")}
if labelled:
    dc_run = dc.ensure_deep_clustering(cfg, root=root)  # the LABELLED reference: the instruments' masks
    dc_model = dc.load_deep_clustering(cfg, dc_run)
    runs["deep clustering"] = (dc_run, cfg.deep_clustering, "train-deepclustering")
    ae_run = ensure_autoencoder(cfg, root=root)  # notebook 02's run: the oracle frame row needs its frames
else:
    print(f"skipped: deep clustering (the LABELLED reference) {no_labels}")
history = {name: json.loads((run / "history.json").read_text()) for name, (run, _, _) in runs.items()}
fig = plots_mixit.sources_training(history["VAE-BSS"], history.get("deep clustering"), title=f"Training "
                                   f"({cfg.name}): VAE-BSS on 'other' only, deep clustering on labels")
plots.save_figure(fig, "08_training");
for name, (run, c, command) in runs.items():
    h = history[name]
    minutes = sum(e["seconds"] for e in h["epochs"]) / 60
    print(f"{name} ({run.name}): {h['epochs'][-1]['step']} of {c.epochs * c.steps_per_epoch} planned steps of "
          f"{c.batch_size} clips x {c.clip_s:g} s in {minutes:.1f} min; best validation loss "
          f"{h['best_val']:.3f} at epoch {h['best_epoch']}")
    if note := cap_note(run, f"python -m mss_helpers {command} --preset {cfg.name} --resume"):
        display(Markdown(f"**{note}**"))

# %% [markdown]
# ## How many latent sources stay active?
# Every test track through VAE-BSS: the sources within the energy floor
# (`vaebss.energy_floor_db`) of the loudest count as active, against the track's
# true number of instruments (one disc per pair, labelled with its number of
# tracks; without instruments: the active counts alone).
# The median share of the energy per source, loudest first, shows whether the
# surplus sources really go silent.

# %%
counts, shares = [], []
for track in tracks:
    sources = vaebss.separate_vaebss(vae_model, datasets.input_audio(track, cfg), cfg)  # (K, C, S)
    e = vaebss.source_energies(sources)
    shares.append(np.sort(e / e.sum())[::-1])
    row = {"track": track.name, "n_active": int(vaebss.active_sources(sources, v.energy_floor_db).sum())}
    if labelled:
        row["n_instruments"] = len(track.other_stems(rate=rate, channels=cfg.data.channels,
                                                 min_db=evaluate.SILENT_REFERENCE_DB))
    counts.append(row)
counts = pd.DataFrame(counts)
display(pd.crosstab(counts.n_instruments, counts.n_active) if labelled else counts.n_active.value_counts())
print("median energy share per source, loudest first: "
      + " / ".join(f"{100 * s:.1f}%" for s in np.median(shares, axis=0)))
fig = plots_mixit.active_sources(counts, K, title=f"VAE-BSS: active sources per test track ({cfg.name})")
plots.save_figure(fig, "08_active_sources");

# %% [markdown]
# ## The table
# Every test track separated by VAE-BSS (its K sources ungrouped, grouped at
# k = 2, 3, 4, n and auto) and by deep clustering (k-means at the same k, auto
# by silhouette), next to the mixture (floor) and the oracle rows, all scored
# the same way as notebooks 04 and 07 (Hungarian matching on SI-SDR, medians
# over matched track x instrument pairs). Without the instruments: VAE-BSS
# alone at k = 2, 3, 4 and auto, and the seed's label-free columns, medians over
# the test tracks.

# %%
methods = ["mixture", "oracle_irm", "oracle_frames", "vaebss", "deep_clustering"] if labelled else ["vaebss"]
df = evaluate.run_evaluation(cfg, root=root, run_dir=ae_run if labelled else None, methods=methods,
                             ks=[2, 3, 4, "n"] if labelled else [2, 3, 4],
                             out_dir=paths.runs_dir() / f"evaluate_sources_{cfg.name}", write_results=labelled,
                             results_name=f"separation_sources_{cfg.name}", progress=False)
summary = evaluate.summarize(df)
out = paths.results_dir()
if labelled:
    display(summary.round(2))
else:
    free = cluster_metrics.seed_table(df, methods=["vaebss"])  # the seed's columns
    out.mkdir(parents=True, exist_ok=True)
    df.to_csv(out / f"separation_sources_{cfg.name}.csv", index=False, float_format="%.4f")
    (out / f"separation_sources_{cfg.name}.md").write_text(
        f"# VAE-BSS on 'other' ({cfg.name}, {root.name}, test split, {df.track.nunique()} tracks)\n\n"
        "No instruments inside 'other': label-free columns only, medians over tracks.\n\n"
        + evaluate.markdown_table(free, floatfmt="{:.3g}"))
    display(free.round(3))

# %% [markdown]
# Beside it, at k = n, the key rows of notebooks 04 and 07: the best clustering
# of latent frames, NMF + clustering, the best unsupervised MixIT grouping and
# MixIT's oracle grouping. They are read from those notebooks' results files;
# when a file is missing (this notebook run first) the same evaluation is run
# here, into the same per-track cache, without writing the other notebook's file.

# %%
MISSING = pd.Series({"from": "not run", "si_sdri_db": np.nan, "si_sdr_db": np.nan, "pairs": 0})


def _at(s, method, decoding, k_label="n"):
    """One setting's medians out of a summary (``MISSING`` where it was not run)."""
    hit = s[(s.method == method) & (s.decoding == decoding) & (s.k_label.astype(str) == str(k_label))]
    return hit.iloc[0] if len(hit) else MISSING


if labelled:
    frames_csv, mixit_csv = out / f"separation_{cfg.name}.csv", out / f"separation_mixit_{cfg.name}.csv"
    frames = (pd.read_csv(frames_csv) if frames_csv.is_file() else  # notebook 04's call
              evaluate.run_evaluation(cfg, root=root, run_dir=ae_run, examples_dir=evaluate.examples_dir(cfg),
                                      write_results=False, progress=False))
    if not mixit_csv.is_file():
        sep.ensure_separator(cfg, root=root)  # notebook 07's MixIT separator (trained here when missing)
    mixit = (pd.read_csv(mixit_csv) if mixit_csv.is_file() else  # notebook 07's call
             evaluate.run_evaluation(cfg, root=root, run_dir=ae_run,
                                     methods=["mixture", "oracle_irm", "oracle_frames", "nmf", "mixit", "pan"],
                                     ks=[2, 3, 4, "n"], out_dir=paths.runs_dir() / f"evaluate_mixit_{cfg.name}",
                                     write_results=False, progress=False))
    s07 = evaluate.summarize(mixit)
    k04, k07 = evaluate.key_rows(evaluate.summarize(frames)), evaluate.key_rows(s07)
    FREE, LAB, REF = "without labels", "LABELLED reference", "floor / ceilings (ground truth)"
    rows = {  # key: (row label, kind, medians)
        "mixture": ("floor: mixture as estimate", REF, _at(summary, "mixture", "-")),
        "vaebss": ("VAE-BSS, grouped, k = n", FREE, _at(summary, "vaebss", "grouped")),
        "vaebss_auto": ("VAE-BSS, grouped, k = auto (its active sources)", FREE,
                        _at(summary, "vaebss", "grouped", "auto")),
        "frames": (f"best latent-frame clustering ({k04.at['best latent-frame clustering', 'from']}, 04)", FREE,
                   k04.loc["best latent-frame clustering"]),
        "nmf": ("NMF + clustering (04)", FREE, k04.loc["NMF + clustering"]),
        "mixit": (f"best MixIT grouping ({k07.at['best MixIT grouping', 'from']}, 07)", FREE,
                  k07.loc["best MixIT grouping"]),
        "mixit_oracle": ("ORACLE: MixIT, oracle-grouped (07)", REF, _at(s07, "mixit", "oracle-grouped")),
        "dc": ("LABELLED: deep clustering, binary masks (the paper's), k = n", LAB,
               _at(summary, "deep_clustering", "hard")),
        "dc_soft": ("LABELLED: deep clustering, soft masks, k = n", LAB, _at(summary, "deep_clustering", "soft")),
        "dc_auto": ("LABELLED: deep clustering, binary masks, k = auto", LAB,
                    _at(summary, "deep_clustering", "hard", "auto")),
        "oracle_frames": ("ceiling: oracle frame assignment", REF, _at(summary, "oracle_frames", "-")),
        "oracle_irm": ("ceiling: ideal ratio mask", REF, _at(summary, "oracle_irm", "-")),
    }
    table = pd.DataFrame([{"row": label, "kind": kind, "si_sdri_db": r.si_sdri_db, "si_sdr_db": r.si_sdr_db,
                           "pairs": int(r.pairs)} for label, kind, r in rows.values()], index=list(rows))
    display(table.set_index("row").round(2))
    fig = plots_mixit.kind_bars(table, title=f"Separating 'other' ({cfg.name}, test split, median SI-SDRi)")
    plots.save_figure(fig, "08_table");
else:
    print(f"skipped: the SI-SDRi table beside notebooks 04 and 07 (08_table.png): SI-SDR {no_labels}")

# %% [markdown]
# ## Two renders, and Open-Unmix's "other" as the input
# The same models (trained on the realistic render) on the clean render's test
# split (monophonic lines, dry pans, one soundfont), written to
# `results/separation_sources_<preset>_clean.*`; a row that moves by less than
# the reproduction band "holds on both". Then the input the seed actually had:
# Open-Unmix's estimate of "other" from the full mixture (notebook 06's first
# stage), scored at k = n against the true instruments with SI-SDR (SI-SDRi is
# relative to each row's own input, so it would hide the first stage's errors),
# written to `results/separation_sources_unmix_<preset>.csv|.md`.

# %%
AT_N = {"mixture (floor)": ("mixture", "-"), "oracle IRM (ceiling)": ("oracle_irm", "-"),
        "VAE-BSS grouped": ("vaebss", "grouped"), "deep clustering (LABELLED)": ("deep_clustering", "hard"),
        "deep clustering, soft (LABELLED)": ("deep_clustering", "soft")}
if not labelled or user_root:
    print("skipped: the clean render: " + (no_labels if not labelled else
                                           f"it is the embedded set's, this run is on {root.name}"))
else:
    clean_root = datasets.ensure_dataset(cfg.replace(data={"style": "clean"}))
    df_clean = evaluate.run_evaluation(cfg, root=clean_root, run_dir=ae_run, methods=methods, ks=[2, 3, 4, "n"],
                                       out_dir=paths.runs_dir() / f"evaluate_sources_{cfg.name}_clean",
                                       write_results=True, results_name=f"separation_sources_{cfg.name}_clean",
                                       progress=False)
    side = pd.DataFrame({f"{style} SI-SDRi": {row: _at(s, *m).si_sdri_db for row, m in AT_N.items()}
                         for style, s in ((cfg.data.style, summary), ("clean", evaluate.summarize(df_clean)))})
    display(side.round(2))
    for line in evaluate.style_findings(side, BAND_DB, a=cfg.data.style):
        print(f"- {line}")

# %%
if not labelled:
    print(f"skipped: VAE-BSS and deep clustering on Open-Unmix's 'other': the scoring {no_labels}")
else:
    weights = cfg.unmix.weights_dir or os.environ.get(unmix.WEIGHTS_ENV)
    cfg_unmix = cfg.replace(data={"source": "unmix"}, unmix={"weights_dir": weights or None})  # names the cache
    first = unmix_train.first_stage(cfg, root=root, progress=False)  # notebook 06's (trained here when missing)
    unmix_eval.write_estimates(cfg_unmix, root=root, separator=first, splits=("test",))
    on_unmix = evaluate.summarize(evaluate.run_evaluation(
        cfg_unmix, root=root, run_dir=ae_run, methods=["mixture", "oracle_irm", "vaebss", "deep_clustering"],
        ks=["n"], out_dir=paths.runs_dir() / f"evaluate_sources_unmix_{cfg.name}", write_results=False,
        progress=False))
    cost = pd.DataFrame({"true other": {row: _at(summary, *m).si_sdr_db for row, m in AT_N.items()},
                         "Open-Unmix other": {row: _at(on_unmix, *m).si_sdr_db for row, m in AT_N.items()}})
    cost["cost dB"] = cost["Open-Unmix other"] - cost["true other"]
    cost = cost.round(2).rename_axis("row (k = n, median SI-SDR dB)")
    display(cost)
    out.mkdir(parents=True, exist_ok=True)
    cost.to_csv(out / f"separation_sources_unmix_{cfg.name}.csv")
    (out / f"separation_sources_unmix_{cfg.name}.md").write_text(
        f"# VAE-BSS and deep clustering on Open-Unmix's 'other' ({cfg.name}, test split)\n\nMedian SI-SDR (dB) "
        "against the true instruments at k = n, with the true 'other' and with Open-Unmix's estimate as input.\n\n"
        + evaluate.markdown_table(cost.reset_index()))

# %% [markdown]
# ## One test track
# The input, its true instruments, VAE-BSS's K sources (each with its share of
# the energy; "inactive" below the floor), those sources grouped at k = n, and
# deep clustering at k = n, with players (levels kept: a quiet source sounds
# quiet). Without instruments: no true stems and no deep clustering, and the
# sources grouped at k = auto, the number of active sources (no groups where
# k is K or more: they would be the sources again).

# %%
track = tracks[0]
x = datasets.input_audio(track, cfg)
sources = vaebss.separate_vaebss(vae_model, x, cfg)  # (K, C, S)
active = vaebss.active_sources(sources, v.energy_floor_db)
share = vaebss.source_energies(sources) / vaebss.source_energies(sources).sum()
refs = (track.other_stems(rate=rate, channels=cfg.data.channels, min_db=evaluate.SILENT_REFERENCE_DB)
        if labelled else {})
k, k_label = (len(refs), "n") if labelled else (max(1, int(active.sum())), "auto")
signals = {"input": x, **{f"true: {n}": r for n, r in refs.items()},
           **{f"VAE-BSS source {i + 1} ({100 * e:.0f}% of the energy{'' if a else ', inactive'})": s
              for i, (s, e, a) in enumerate(zip(sources, share, active))}}
if k < K:  # k >= K groups are the sources themselves
    signals.update({f"VAE-BSS group {g + 1} (k = {k_label} = {k})": s
                    for g, s in enumerate(vaebss.group_sources(sources, k, v.n_fft, v.hop))})
if labelled:
    signals.update({f"LABELLED deep clustering {j + 1} (k = n = {k})": s
                    for j, s in enumerate(dc.separate_dc(dc_model, x, k, cfg, seed=cfg.cluster.seed))})
fig = plots.spectrogram_grid(signals, rate, ncols=3, title=track.name)
plots.save_figure(fig, "08_one_track");
for name, audio in signals.items():
    print(name)
    display(embed_audio(audio, rate))

# %% [markdown]
# ## What the numbers say
# Computed from the tables above, so the sentences stay true on a rerun. The
# issue's criterion: VAE-BSS at k = n at least 3 dB of SI-SDRi above the best
# clustering of latent frames would be a clear yes.

# %%
if labelled:
    t, steps = table.si_sdri_db, history["VAE-BSS"]["epochs"][-1]["step"]
    gap = t["vaebss"] - t["frames"]
    verdict = ("yes, clearly: by the issue's 3 dB or more" if gap >= 3 else
               "better, but by less than the issue's 3 dB" if gap >= BAND_DB else
               "no: it separates worse" if gap <= -BAND_DB else "not by more than this run can resolve")
    print(f"- Does a latent space made of sources separate 'other' better than clustering latent frames "
          f"(VAE-BSS after {steps} training steps)? {verdict}. "
          + gap_sentence("VAE-BSS grouped at k = n", t["vaebss"], table.at["frames", "row"], t["frames"]) + ".")
    print(f"- Against MixIT (the other label-free learned separator): "
          f"{gap_sentence('VAE-BSS', t['vaebss'], table.at['mixit', 'row'], t['mixit'])}; "
          f"NMF + clustering gives {t['nmf']:+.2f} dB.")
    dc_best = "dc" if t["dc"] >= t["dc_soft"] else "dc_soft"
    print("- The price of having no labels: " + gap_sentence(table.at[dc_best, "row"], t[dc_best], "VAE-BSS",
                                                             t["vaebss"])
          + f"; the ideal ratio mask reaches {t['oracle_irm']:+.2f} dB, MixIT's oracle grouping "
          f"{t['mixit_oracle']:+.2f} dB.")
    print(f"- Without the true count: VAE-BSS at k = auto {t['vaebss_auto']:+.2f} dB, deep clustering at k = auto "
          f"{t['dc_auto']:+.2f} dB.")
    diff = counts.n_active - counts.n_instruments
    print(f"- Active sources: a median of {counts.n_active.median():g} of the K = {K} per track for a median of "
          f"{counts.n_instruments.median():g} instruments; as many as the instruments on {(diff == 0).sum()} of "
          f"{len(counts)} tracks, more on {(diff > 0).sum()}, fewer on {(diff < 0).sum()}.")
    print(f"- Open-Unmix's 'other' as the input instead of the true one moves the SI-SDR of VAE-BSS by "
          f"{cost.at['VAE-BSS grouped', 'cost dB']:+.2f} dB and of deep clustering by "
          f"{cost.at['deep clustering (LABELLED)', 'cost dB']:+.2f} dB (the mixture row: "
          f"{cost.at['mixture (floor)', 'cost dB']:+.2f} dB).")
else:
    print(f"skipped: the SI-SDRi comparisons (latent frames, MixIT, deep clustering, the issue's 3 dB criterion) "
          f"each {no_labels}")
    auto = free[(free.decoding == "grouped") & (free.k_label == "auto")].iloc[0]
    print(f"- Active sources: a median of {counts.n_active.median():g} of the K = {K} per track carry energy "
          f"within {-v.energy_floor_db:g} dB of the loudest one (from {counts.n_active.min()} to "
          f"{counts.n_active.max()}); "
          f"grouped at k = auto the loudest holds {100 * auto.top_share:.0f}% of the energy "
          f"(median energy fraction by rank {auto.energy_shares}).")
    print(f"- Mixture consistency: the input against the sum of the estimates, median mixture MSE "
          f"{auto.mixture_mse:.2g} (masks that sum to one give the input back).")
