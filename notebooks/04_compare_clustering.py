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
# # 04 · Compare the clusterings: which separates the instruments of "other"?
#
# **Question.** Clustering the VAE's latent frames (K-Means, Agglomerative,
# DBSCAN, GMM, spectral, HDBSCAN) and decoding each cluster -- with the seed's
# hard time masks or with soft, mixture-consistent masks -- how close does it
# get to the true instruments, compared with doing nothing (the input as every
# estimate), the oracle masks, the best possible assignment of whole time
# frames, and NMF + component clustering? And does a method that uses the latent
# space but splits simultaneous notes (`latent_nmf`) do better?
#
# **In:** the preset (`MSS_PRESET`, default `cpu`), its test split (never seen
# in training), the trained autoencoder of notebook 02 (trained here if missing).
# **Out:** `results/separation_<preset>.csv|.md` (one row per track x method x
# decoding x k x instrument; the summary of medians), listening examples in
# `runs/examples_<preset>_<config hash>/`, figures `04_si_sdri_by_method.png`,
# `04_si_sdri_by_instrument.png`, `04_clusters_one_track.png`; the seed's
# clustering table `results/seed_clustering_<preset>.csv|.md`.
#
# Scoring: per track the K estimates are matched to the N instruments
# (Hungarian on SI-SDR). SI-SDRi is the gain over the input itself; SDR is
# BSS-eval v4 (1 s windows, median). `k_label` `n` means k = the track's true
# number of instruments; `auto` means the method chose k.
#
# On a root without the instruments inside "other" (MUSDB18) nothing can be
# matched: the SI-SDR table, its figures, its conclusions and the clean-set
# comparison print one "skipped" line each, and the seed's clustering table
# (measured without ground truth) is what the notebook shows.

# %%
import os

from IPython.display import display

from mss_helpers import cluster_metrics, datasets, evaluate, paths, plots
from mss_helpers.config import get_config, seed_everything
from mss_helpers.evaluate import run_evaluation, separate_track, summarize
from mss_helpers.model import load_model
from mss_helpers.autoencoder import ensure_autoencoder
from mss_helpers.verify import BAND_DB, gap_sentence

seed_everything(0)

# %%
cfg = get_config(os.environ.get("MSS_PRESET", "cpu"))
root = datasets.ensure_dataset(cfg)
run_dir = ensure_autoencoder(cfg, root=root)  # notebook 02's run, reused (or trained now when missing)
test_tracks = datasets.load_tracks(root, "test")
labelled = datasets.has_instruments(test_tracks)  # the embedded set: yes; MUSDB18: no
NO_LABELS = f"needs the instruments inside 'other', which {root.name} does not have"
print(f"preset {cfg.name}: {root.name}, model {run_dir.name}")

# %% [markdown]
# ## The comparison, every test track
# Each track's latent is clustered on its own (k instruments per track), every
# (method, k) decoded once and shared by the hard and soft decodings.

# %%
df = run_evaluation(cfg, root=root, run_dir=run_dir, examples_dir=evaluate.examples_dir(cfg))
summary = summarize(df)
if labelled:
    display(summary.round(2))
else:
    print(f"skipped: the SI-SDR table {NO_LABELS} (the seed's table below needs none)")

# %% [markdown]
# One row per method, one box per decoding (over matched track x instrument
# pairs), at k = n and at each method's best fixed k; the vertical lines are the
# medians of the floor (the input itself) and of the two ceilings.

# %%
if labelled:
    fig = plots.method_comparison(df, "si_sdri_db",
                                  title=f"SI-SDR improvement over the input ({cfg.name}, test)")
    plots.save_figure(fig, "04_si_sdri_by_method");
else:
    print(f"skipped: SI-SDR improvement per method {NO_LABELS}")

# %% [markdown]
# ## Which instruments are separated best?
# Median SI-SDR improvement per instrument (rows) and setting at k = n (columns;
# `auto` where the method chooses k). The row labels count each instrument's pairs.

# %%
if labelled:
    fig = plots.instrument_results(df, "si_sdri_db",
                                   title=f"Median SI-SDR improvement per instrument, k = n ({cfg.name}, test)")
    plots.save_figure(fig, "04_si_sdri_by_instrument");
else:
    print(f"skipped: SI-SDR improvement per instrument {NO_LABELS}")

# %% [markdown]
# ## The seed's clustering table (no ground truth needed)
# What the seed measured, for every latent-frame clustering, decoding and k
# over the test tracks: mixture MSE (the input against the sum of the decoded
# clusters; median over tracks), frame-assignment entropy (bits; 0 = every
# frame in one cluster), spectral entropy of the decoded clusters (bits; the
# seed's "cluster entropy") and their sparsity (medians over all clusters), and
# each cluster's share of the energy, largest first (median over tracks per
# rank). `failed` counts tracks where the method found no clusters.

# %%
seed = cluster_metrics.seed_table(df)
seed_out = paths.results_dir() / f"seed_clustering_{cfg.name}"
seed_out.parent.mkdir(parents=True, exist_ok=True)
seed.to_csv(seed_out.with_suffix(".csv"), index=False, float_format="%.6g")
seed_out.with_suffix(".md").write_text(f"# The seed's clustering table ({cfg.name}, {root.name}, test split, "
                                       f"{df.track.nunique()} tracks)\n\n" + evaluate.markdown_table(seed, "{:.3g}"))
display(seed.round(4))
several = seed[(seed.tracks > 0) & (seed.k > 1)]  # one cluster holds all the energy by definition
if len(several):
    top, even = several.loc[several.top_share.idxmax()], several.loc[several.top_share.idxmin()]
    print(f"- Of the settings with more than one cluster, {top.method} / {top.decoding} / k={top.k_label} "
          f"puts most energy into one cluster (shares by rank, medians over tracks: {top.energy_shares}), "
          f"{even.method} / {even.decoding} / k={even.k_label} the least (its largest of {even.k:g} "
          f"clusters holds {even.top_share:.2f}).")
else:
    print("- Every setting found a single cluster on the median track: its estimate is the input.")

# %% [markdown]
# ## What the clusters sound like, one track
# Spectrograms of the input, the true instruments, and the estimates of
# K-Means (soft decoding, k = number of instruments) and of `latent_nmf`.
# Without instruments: the input and the estimates at the preset's smallest
# fixed k (2, the seed's number of clusters).

# %%
track = test_tracks[0]
model, _ = load_model(run_dir)
x = datasets.input_audio(track, cfg)
refs = track.other_stems(rate=cfg.data.sample_rate, channels=cfg.data.channels,
                         min_db=evaluate.SILENT_REFERENCE_DB)
signals = {"input": x, **{f"true: {n}": r for n, r in refs.items()}}
k_shown = ["n"] if labelled else [min(cfg.cluster.ks)]
for s in separate_track(x, refs, ["kmeans", "latent_nmf"], k_shown, cfg, model=model, seed=cfg.cluster.seed):
    if s["decoding"] == "soft":
        signals.update({f"{s['method']} cluster {j}": e for j, e in enumerate(s["estimates"])})
fig = plots.spectrogram_grid(signals, cfg.data.sample_rate, ncols=2, title=f"{track.name}")
plots.save_figure(fig, "04_clusters_one_track");

# %% [markdown]
# ## What the numbers say
# Computed from the summary above (medians of SI-SDRi over matched
# track x instrument pairs), so the sentences stay true on a rerun.

# %%
if labelled:
    med = summary.set_index(["method", "decoding", "k_label"])["si_sdri_db"]
    frame_methods = summary[summary.decoding.isin(["hard", "soft"]) & (summary.method != "latent_nmf")]
    # A setting that found a single cluster (DBSCAN, typically) returns the input itself: not a separation.
    single = frame_methods[frame_methods.k_median <= 1]
    frame_methods = frame_methods[frame_methods.k_median > 1]
    for _, r in single.iterrows():
        if r.failed:
            print(f"- {r.method} / {r.decoding} failed on {r.failed} tracks (every frame labelled noise).")
        else:
            print(f"- {r.method} / {r.decoding} found a single cluster on the median track: its estimate is the input.")
    best_frame = frame_methods.loc[frame_methods.si_sdri_db.idxmax()]
    nmf = summary[summary.method == "nmf"].si_sdri_db.max()
    lnmf = summary[summary.method == "latent_nmf"].si_sdri_db.max()
    ceiling_frames = med.get(("oracle_frames", "-", "n"))
    ceiling_irm = med.get(("oracle_irm", "-", "n"))
    hard = frame_methods[frame_methods.decoding == "hard"].si_sdri_db.max()
    soft = frame_methods[frame_methods.decoding == "soft"].si_sdri_db.max()
    print(f"- Ceilings: the oracle ratio mask gains {ceiling_irm:+.1f} dB; the best possible assignment of "
          f"whole latent frames only {ceiling_frames:+.1f} dB.")
    print(f"- Best latent-frame clustering: {best_frame.method} / {best_frame.decoding} / k={best_frame.k_label} "
          f"at {best_frame.si_sdri_db:+.1f} dB (best hard decoding {hard:+.1f} dB, best soft {soft:+.1f} dB).")
    print(f"- NMF + component clustering (best k): {nmf:+.1f} dB; latent_nmf (best k): {lnmf:+.1f} dB.")
    winner = "latent_nmf" if lnmf > max(nmf, best_frame.si_sdri_db) else (
        "NMF + clustering" if nmf > best_frame.si_sdri_db else f"{best_frame.method} on latent frames")
    best_latent = max(lnmf, best_frame.si_sdri_db)
    print(f"- Of the unsupervised methods, {winner} gains most; "
          + gap_sentence("the best latent method", best_latent, "the NMF baseline", nmf)
          + f"; every one stays {ceiling_irm - max(lnmf, nmf, best_frame.si_sdri_db):.1f} dB below the oracle mask.")
else:
    print(f"skipped: what the numbers say about SI-SDR improvement {NO_LABELS}")

# %% [markdown]
# ## The same models on the clean set
# The table above is measured on the realistic set (chords, rooms, several
# soundfonts). The report's first data set, the clean render (monophonic lines,
# dry point-source pans, one soundfont), is scored here with the **same models**
# (trained on the realistic training split), so that each row's change says what
# the render, not the model, did to the method. The full table goes to
# `results/separation_<preset>_clean.*`. On a root without instruments this
# comparison of two embedded renders is skipped.

# %%
if labelled:
    clean_root = datasets.ensure_dataset(cfg.replace(data={"style": "clean"}))
    df_clean = run_evaluation(cfg, root=clean_root, run_dir=run_dir, write_results=True,
                              results_name=f"separation_{cfg.name}_clean",
                              out_dir=paths.runs_dir() / f"evaluate_{cfg.name}_test_clean", progress=False)
    side = evaluate.styles_side_by_side({cfg.data.style: summary, "clean": summarize(df_clean)})
    display(side.round(2))
    for line in evaluate.style_findings(side, BAND_DB, a=cfg.data.style):
        print(f"- {line}")
else:
    print(f"skipped: the clean render's comparison scores the embedded clean set, not {root.name}")
