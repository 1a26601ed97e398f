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
# # 07 · Separation learned without labels: MixIT on "other", its outputs grouped
#
# **Question.** Clustering latent *frames* cannot split "other": its instruments
# play together almost all the time, so separation has to happen in time *and*
# frequency, and it has to be learned without instrument labels. Does mixture
# invariant training (MixIT) do it on our data, and can its outputs be grouped
# into instruments without labels -- in the VAE's latent space or by plain
# spectral features?
#
# **In:** the preset (`MSS_PRESET`, default `cpu`), its training split's "other"
# stems (never the instruments inside them), the autoencoder of notebook 02
# (trained here if missing), the test split with its instruments for scoring.
# **Out:** the separator run `runs/separator_<preset>_<hash>` (trained here if
# missing), `results/separation_mixit_<preset>.csv|.md` (and `_clean`: the same
# models on the clean render), figures
# `07_mixture_of_mixtures.png`, `07_training.png`, `07_table.png`,
# `07_over_separation.png`, `07_one_track.png`, `07_data_curve.png` (from
# `results/mixit_curve_<preset>.csv`, written by `scripts/mixit_curve.py`); the
# teacher-student table is read from `results/mixit_student_<preset>.csv`
# (`scripts/mixit_student.py`).
#
# On a data root without the instruments inside "other" (MUSDB18), MixIT still
# trains and separates, and its outputs are still grouped (k = 2, 3, 4 and auto:
# there is no true count) and shown with the label-free columns (mixture MSE,
# energy shares, spectral entropy, sparsity) in place of SI-SDR; whatever is
# scored against the instruments, and the screening files measured on the
# embedded set, are skipped with one line each.

# %%
import json
import os

import numpy as np
import pandas as pd
import torch
from IPython.display import Markdown, display

from mss_helpers import cluster_metrics, datasets, evaluate, mixit_data, paths, plots, plots_mixit
from mss_helpers import separator as sep
from mss_helpers import separator_group as sg
from mss_helpers.audio import embed_audio
from mss_helpers.config import get_config, seed_everything
from mss_helpers.model import load_model
from mss_helpers.autoencoder import ensure_autoencoder
from mss_helpers.train import cap_note
from mss_helpers.verify import BAND_DB, gap_sentence

seed_everything(0)

# %%
cfg = get_config(os.environ.get("MSS_PRESET", "cpu"))
root = datasets.ensure_dataset(cfg)
rate, s = cfg.data.sample_rate, cfg.separator
print(f"preset {cfg.name}: data {root.name}; separator: {s.arch}, M = {s.n_outputs} outputs, "
      f"STFT {s.n_fft}/{s.hop}")
tracks = datasets.load_tracks(root, "test")
labelled = datasets.has_instruments(tracks)  # False on MUSDB18: nothing inside "other" to score against
user_root = paths.user_root() is not None  # the screening CSVs were measured on the embedded set only
no_labels = f"needs the instruments inside 'other', which {root.name} does not have"

# %% [markdown]
# ## The idea
# Take two excerpts of "other" from two *different* songs and add them: a
# mixture of mixtures. A network splits the sum into M outputs, and the loss
# only asks that the outputs can be partitioned into two groups, one re-summing
# to the first excerpt and the other to the second (the best of all 2^M
# partitions counts). No label says which instrument is which; what the network
# can exploit is that the two songs are independent, so the cheapest way to
# re-build both is to pull apart whatever sounds separately -- and instruments
# do. At test time a single "other" goes in and its M outputs come out.
#
# Nothing forces one output per instrument: the network may spread an
# instrument over several outputs (over-separation) as long as they all end up
# in the same group. So the outputs have to be grouped afterwards, without
# labels. We group them by their features -- the SEANet VAE's latent statistics
# of each output, MFCC statistics, or the correlation of their onset envelopes
# (one instrument split over two outputs starts its notes in both at the same
# time) -- and score the groups exactly like every
# other method of the report, next to an ORACLE grouping (each output to the
# instrument it matches best) that shows what the separator itself allows.

# %%
ae_run = ensure_autoencoder(cfg, root=root)  # notebook 02's run (trained here when missing)
sep_run = sep.ensure_separator(cfg, root=root)  # trained on mixtures of training "other" excerpts
model = sep.load_separator(cfg, sep_run)
vae, _ = load_model(ae_run)
print(f"autoencoder {ae_run.name}, separator {sep_run.name}")

# %% [markdown]
# ## A mixture of mixtures
# Two validation-style excerpts from two test tracks (the network never saw
# them), their sum, the M outputs, and the partition the MixIT loss picks.

# %%
clip = int(min(4.0, cfg.data.duration_s) * rate)
y1 = tracks[0].load("other", rate=rate, channels=cfg.data.channels)[:, :clip]
y2 = tracks[1].load("other", rate=rate, channels=cfg.data.channels)[:, :clip]
with torch.no_grad():
    outs = model(torch.from_numpy(y1 + y2)[None])  # (1, M, C, S)
    _, assign = sep.mixit_loss(outs, torch.from_numpy(np.stack([y1, y2]))[None], s.snr_max_db)
fig = plots_mixit.mixture_of_mixtures(y1, y2, outs[0].numpy(), assign[0].numpy(), rate)
plots.save_figure(fig, "07_mixture_of_mixtures");

# %% [markdown]
# ## Training
# The MixIT loss (negative SNR summed over the two mixtures, soft-capped at
# 30 dB each) on training and fixed validation pairs, and how many outputs carry
# more than 1% of the energy (a label-free gauge of over-separation).

# %%
history = json.loads((sep_run / "history.json").read_text())
fig = plots_mixit.training_curves(history, title=f"MixIT training ({cfg.name})")
plots.save_figure(fig, "07_training");
steps = history["epochs"][-1]["step"]
minutes = sum(e["seconds"] for e in history["epochs"]) / 60
print(f"{steps} of {s.epochs * s.steps_per_epoch} planned steps of {s.batch_size} pairs x {s.clip_s:.0f} s "
      f"in {minutes:.1f} min; best validation loss {history['best_val']:.2f} dB at epoch {history['best_epoch']}")
if note := cap_note(sep_run, f"python -m mss_helpers train-separator --preset {cfg.name} --resume"):
    display(Markdown(f"**{note}**"))

# %% [markdown]
# ## The table
# Every test track separated by MixIT and grouped at k = 2, 3, 4, n (the true
# count) and auto (outputs under an energy floor set aside, k by silhouette),
# next to the reference rows, all scored the same way (Hungarian matching on
# SI-SDR, medians over matched track x instrument pairs). The latent-frame
# clustering rows come from notebook 04's results when they exist.
#
# Without the instruments (MUSDB18) the same evaluation runs without the oracle
# rows and without k = n, and the table holds what needs no label, medians over
# the test tracks: the mixture MSE (does the sum of the estimates give the
# input back?), the spectral entropy and sparsity of the estimates, and their
# energy shares, largest first.

# %%
methods = ["mixture", "oracle_irm", "oracle_frames", "nmf", "mixit", "pan"]
if not labelled:  # the oracles need the instruments, and the mixture row is then only the input itself
    methods = ["nmf", "mixit", "pan"]
df = evaluate.run_evaluation(cfg, root=root, run_dir=ae_run, methods=methods,
                             ks=[2, 3, 4, "n"] if labelled else [2, 3, 4],
                             out_dir=paths.runs_dir() / f"evaluate_mixit_{cfg.name}",
                             write_results=False, progress=False)
summary = evaluate.summarize(df)
out = paths.results_dir()
out.mkdir(parents=True, exist_ok=True)
df.to_csv(out / f"separation_mixit_{cfg.name}.csv", index=False, float_format="%.4f")
if labelled:
    (out / f"separation_mixit_{cfg.name}.md").write_text(
        f"# MixIT on 'other' ({cfg.name}, test split, {df.track.nunique()} tracks)\n\n"
        "Medians over matched (track, instrument) pairs; dB.\n\n" + evaluate.markdown_table(summary))
    display(summary.round(2))
else:
    free = cluster_metrics.seed_table(df, methods=["nmf", "mixit", "pan"])  # the seed's columns
    (out / f"separation_mixit_{cfg.name}.md").write_text(
        f"# MixIT on 'other' ({cfg.name}, {root.name}, test split, {df.track.nunique()} tracks)\n\n"
        "No instruments inside 'other': label-free columns only, medians over tracks.\n\n"
        + evaluate.markdown_table(free, floatfmt="{:.3g}"))
    display(free.round(3))

# %%
med = summary.set_index(["method", "decoding", "k_label"])
frame_rows = None
frames_csv = out / f"separation_{cfg.name}.csv"
if labelled and frames_csv.is_file():
    frames = evaluate.summarize(pd.read_csv(frames_csv))
    frames = frames[frames.decoding.isin(["hard", "soft"]) & (frames.k_label == "n") & (frames.k_median > 1)]
    frame_rows = frames.loc[frames.si_sdri_db.idxmax()] if len(frames) else None


def _row(label, method, decoding, k_label="n"):
    r = med.loc[(method, decoding, k_label)] if (method, decoding, k_label) in med.index else None
    return {"row": label, "si_sdri_db": None if r is None else r.si_sdri_db,
            "si_sdr_db": None if r is None else r.si_sdr_db, "pairs": None if r is None else r.pairs}


rows = [_row("floor: mixture as estimate", "mixture", "-"),
        _row("ceiling: oracle frame assignment", "oracle_frames", "-"),
        _row("NMF + clustering, k = n", "nmf", "-")]
if frame_rows is not None:
    rows.append({"row": f"best latent-frame clustering, k = n ({frame_rows.method}/{frame_rows.decoding})",
                 "si_sdri_db": frame_rows.si_sdri_db, "si_sdr_db": frame_rows.si_sdr_db,
                 "pairs": frame_rows.pairs})
GROUPED = ("latent-grouped", "feature-grouped", "envelope-grouped")
rows += [_row(f"MixIT, {d}, k = n", "mixit", d) for d in GROUPED]
rows += [_row(f"MixIT, {d}, k = auto", "mixit", d, "auto") for d in GROUPED]
rows += [_row(f"MixIT, ungrouped (all {s.n_outputs} outputs)", "mixit", "ungrouped", str(s.n_outputs)),
         _row("ORACLE: MixIT, oracle-grouped, k = n", "mixit", "oracle-grouped"),
         _row("STEREO: pan clustering, k = n", "pan", "-"),
         _row("STEREO: pan clustering, k = auto", "pan", "-", "auto"),
         _row("ORACLE: ideal ratio mask", "oracle_irm", "-")]
table = pd.DataFrame(rows)
if labelled:
    display(table.round(2))
    fig = plots_mixit.row_bars(table, title=f"Separating 'other' ({cfg.name}, test split, median SI-SDRi)")
    plots.save_figure(fig, "07_table");
else:
    print(f"skipped: the SI-SDRi table and its figure (07_table.png): SI-SDR {no_labels}")

# %% [markdown]
# ## Over-separation
# How many outputs carry energy (within the energy floor of the loudest) on
# each test track, against the track's true number of instruments (without the
# instruments: only the count of active outputs, no figure).

# %%
counts = []
for t in tracks:
    x = datasets.input_audio(t, cfg)
    outputs = sep.separate_outputs(model, x, s.chunk_s, s.overlap_s, rate)
    n_refs = len(t.other_stems(rate=rate, channels=cfg.data.channels, min_db=evaluate.SILENT_REFERENCE_DB))
    counts.append({"track": t.name, "n_instruments": n_refs,
                   "n_active": int(sg.active_outputs(outputs, s.energy_floor_db).sum())})
counts = pd.DataFrame(counts)
if labelled:
    fig = plots_mixit.over_separation(counts, s.n_outputs, title=f"Over-separation ({cfg.name}, test split)")
    plots.save_figure(fig, "07_over_separation");
else:
    counts = counts.drop(columns="n_instruments")
    print(f"skipped: active outputs against the true count (07_over_separation.png): the count {no_labels}")
display(counts.describe().round(2))

# %% [markdown]
# ## One test track: outputs and groups
# The input, its true instruments, the M outputs, and the latent-grouped
# estimates at k = n, with players (levels kept: a quiet output sounds quiet).
# Without the instruments: no true stems and no true count, so every grouping
# (latent, feature, envelope) at k = auto, and this track's label-free columns
# from the table above (energy share in %, one row per estimate).

# %%
track = tracks[0]
x = datasets.input_audio(track, cfg)
refs = track.other_stems(rate=rate, channels=cfg.data.channels, min_db=evaluate.SILENT_REFERENCE_DB)
outputs = sep.separate_outputs(model, x, s.chunk_s, s.overlap_s, rate)
F = sg.output_features(outputs, "latent", cfg, vae)
groups = sg.group_outputs(F, sg.active_outputs(outputs, s.energy_floor_db), len(refs) if labelled else None,
                          tuple(s.k_range))  # None: k = auto, by silhouette
signals = {"input": x, **{f"true: {n}": r for n, r in refs.items()},
           **{f"output {i + 1} (group {groups[i] + 1})": o for i, o in enumerate(outputs)},
           **{f"latent group {g + 1}": e for g, e in enumerate(sg.grouped_estimates(outputs, groups))}}
if not labelled:
    for decoding, labels in sg.label_free_groups(outputs, cfg, groupings=("feature", "envelope")).items():
        signals.update({f"{decoding.split('-')[0]} group {g + 1}": e
                        for g, e in enumerate(sg.grouped_estimates(outputs, labels))})
    one = df[(df.track == track.name) & (df.method == "mixit")
             & ((df.k_label == "auto") | (df.decoding == "ungrouped"))]
    display(one[["decoding", "k", "estimate", "energy_share", "spectral_entropy", "sparsity", "mixture_mse"]]
            .round(4))
fig = plots.spectrogram_grid(signals, rate, ncols=3, title=track.name)
plots.save_figure(fig, "07_one_track");
for name, audio in signals.items():
    print(name)
    display(embed_audio(audio, rate))

# %% [markdown]
# ## More training audio, and what the separator actually learns
# `scripts/mixit_curve.py` trains the same separator on the first 8, 15, 30,
# 60 and all 120 training tracks (1.3 to 20 minutes of "other"), and on those
# plus 200 extra training tracks rendered from the training scores (53
# minutes; `render --extra-train 200`, the test split unchanged), each for the
# same 1000 steps, and scores each on the test split like the table above; it
# also keeps the separator's own objective on the fixed validation pairs: the
# mean SNR with which it re-builds each mixture of a mixture of mixtures. Other
# settings (shorter and longer excerpts, a finer STFT, learning rates, a TDCN, a
# wider BLSTM, 4 outputs) and one run of all the audio for 8000 steps are rows of
# the same file, listed after the curve. The file is written by that script
# (6-10 minutes per row of 1000 steps on one core), not by this notebook; the
# commands are in the README. Its rows, and those of the teacher-student table
# below, were measured on the **clean** render, before the realistic set existed
# (the `data` column names the set): they describe the separator's limits, not
# this run's numbers. On a user's data root the curve is skipped: it was
# measured on the embedded set, against its instruments.

# %%
curve_csv = out / f"mixit_curve_{cfg.name}.csv"
curve = pd.read_csv(curve_csv) if curve_csv.is_file() and not user_root else None
if user_root:
    print(f"skipped: the data curve (results/{curve_csv.name}) was measured on the embedded set, "
          f"not on {root.name}")
elif curve is None:
    print(f"no {curve_csv.name}: run `python scripts/mixit_curve.py --preset {cfg.name}` to draw the curve")
else:
    curve = curve.sort_values("train_minutes")
    display(curve.drop(columns=["data"]).round(2))
    fig = plots_mixit.data_curve(curve, title=f"MixIT against the amount of training audio ({cfg.name})")
    plots.save_figure(fig, "07_data_curve")

# %% [markdown]
# ## A teacher-student round
# The third lever against over-separation. The separator of this
# notebook is the *teacher*: it splits every training track's "other" into its
# 8 outputs, which are grouped without labels (k = auto by silhouette on the
# MFCC statistics, or the VAE's latent statistics, or always 4 groups) into
# pseudo-sources. A *student* (the same network with 4 outputs, started from the
# teacher's weights) then learns to split excerpts of the single, real "other"
# into those pseudo-sources, with a permutation-invariant loss
# (`mss_helpers.separator_student`). No label is used at any point. Each row of
# `results/mixit_student_<preset>.csv` (written by `scripts/mixit_student.py`,
# 6-9 minutes per row on one core, not by this notebook) is scored like the
# table, at k = n; `*_missed` counts the instruments a decoding left without an
# estimate (a student with two active outputs cannot give three instruments
# their own estimate). On a user's data root this table is skipped like the
# curve above.

# %%
student_csv = out / f"mixit_student_{cfg.name}.csv"
student = pd.read_csv(student_csv) if student_csv.is_file() and not user_root else None
if user_root:
    print(f"skipped: the teacher-student table (results/{student_csv.name}) was measured on the embedded "
          f"set, not on {root.name}")
elif student is None:
    print(f"no {student_csv.name}: run `python scripts/mixit_student.py --preset {cfg.name}` to fill it")
else:
    display(student.round(2))

# %% [markdown]
# ## The stereo image: a cue every other row throws away
# Every row above hears the mono downmix of "other" (the preset's
# `channels = 1`, as the autoencoder does). The files are stereo. The clean
# render pans each instrument as a point source to a position drawn from
# [-0.6, 0.6], with no reverb: in every time-frequency bin that one instrument
# dominates, the ratio of the two channels' magnitudes *is* that instrument's
# position. The realistic render places every instrument in a room picked up by
# two spaced microphones, as a recording would: reflections spread each
# instrument's level ratio over several dB (notebook 01's data card). The `pan`
# rows (`mss_helpers.spatial`, DUET-style) cluster the bins by that angle
# (weighted k-means; k = auto by silhouette) and mask the downmix around each
# centre: no label, no training, nothing learned. They are labelled STEREO in
# the table because they use information the other rows do not get; the
# comparison of the two renders at the end of this notebook says how much of
# their score was the clean render's dry pans.
#
# Can a *mono* network learn from it? The stereo image is a teacher that needs
# no label: pan clustering splits each training track's stereo "other" into
# pseudo-sources (k = auto), and a student hears only the downmix and learns, by
# a permutation-invariant loss, to give the same split (`StudentConfig.teacher
# = "pan"`; the teacher-student machinery of the section above, only
# `other.wav` read). Its rows are in the student table above (`pan_auto`,
# `pan_auto5`), next to an ABLATION that uses labels, `stems5`: the same network
# and budget trained on the true instruments, which says what the network
# could learn here if the targets were right.
#
# Without the instruments, the pan rows are in the label-free table above
# (their k = auto says how many positions the stereo image holds), and their
# SI-SDRi is skipped.

# %%
if labelled:
    pan_n, pan_auto = med.loc[("pan", "-", "n")], med.loc[("pan", "-", "auto")]
    print(f"pan clustering of the stereo image: k = n {pan_n.si_sdri_db:+.2f} dB SI-SDRi "
          f"({int(pan_n.pairs)} pairs), k = auto {pan_auto.si_sdri_db:+.2f} dB ({int(pan_auto.missed)} of "
          f"{int(pan_auto.pairs + pan_auto.missed)} instruments missed)")
else:
    print(f"skipped: the SI-SDRi of pan clustering {no_labels}")
if student is not None:
    display(student[student.config.str.startswith(("pan", "stems"))].round(2))

# %% [markdown]
# ## What the numbers say
# Computed from the tables above, so the sentences stay true on a rerun.

# %%
val_mom = sep.mixture_snr_db(history)  # the separator's own objective: needs no instrument
if labelled:
    t = table.set_index("row")["si_sdri_db"]
    best_unsup = max(GROUPED,
                     key=lambda d: -np.inf if pd.isna(t[f"MixIT, {d}, k = n"]) else t[f"MixIT, {d}, k = n"])
    bu, orc = t[f"MixIT, {best_unsup}, k = n"], t["ORACLE: MixIT, oracle-grouped, k = n"]
    print(f"- Best unsupervised MixIT row at k = n: {best_unsup}, median SI-SDRi {bu:+.2f} dB "
          f"(NMF + clustering {t['NMF + clustering, k = n']:+.2f} dB; floor 0 by definition).")
    for d in GROUPED:  # the ranking of the groupings, each against the reproduction band
        if d != best_unsup and not pd.isna(t[f"MixIT, {d}, k = n"]):
            print(f"  - {gap_sentence(best_unsup, bu, d, t[f'MixIT, {d}, k = n'])}.")
    print(f"- The oracle grouping of the same outputs reaches {orc:+.2f} dB: the grouping leaves "
          f"{orc - bu:.2f} dB on the table; the ideal ratio mask reaches "
          f"{t['ORACLE: ideal ratio mask']:+.2f} dB.")
    print(f"- Over-separation: a median of {counts.n_active.median():.0f} active outputs per track "
          f"for a median of "
          f"{counts.n_instruments.median():.0f} instruments (M = {s.n_outputs}).")
    print(f"- The separator's own task is not solved well either: it re-builds each mixture of a validation "
          f"mixture of mixtures at {val_mom:.1f} dB SNR on average, where the ideal ratio mask on the same STFT "
          f"re-builds them at {mixit_data.oracle_mixture_snr_db(cfg, root):.1f} dB. A small BLSTM trained for minutes on two CPU "
          f"cores separates little of anything; the instruments inside one song, which the loss never asks "
          f"to be pulled apart, even less.")
    if curve is not None:
        c = plots_mixit.audio_rows(curve)
        lo, hi = c.iloc[0], c.iloc[-1]
        print(f"- More training audio helps a little: from {lo.train_minutes:.0f} to {hi.train_minutes:.0f} min of "
              f"\"other\" (same {int(hi.steps)} steps), oracle-grouped {lo['oracle-grouped_si_sdri_db']:+.2f} -> "
              f"{hi['oracle-grouped_si_sdri_db']:+.2f} dB, feature-grouped {lo['feature-grouped_si_sdri_db']:+.2f} -> "
              f"{hi['feature-grouped_si_sdri_db']:+.2f} dB, the mixture of mixtures {lo.val_mom_snr_db:.1f} -> "
              f"{hi.val_mom_snr_db:.1f} dB; about {np.polyfit(np.log2(c.train_minutes), c['oracle-grouped_si_sdri_db'], 1)[0]:+.2f} dB "
              f"(oracle-grouped) per doubling of the audio, a slope fitted over {len(c)} runs.")
        other = curve[~curve.index.isin(c.index)]
        for _, r in other.iterrows():
            print(f"- Variant {r.config} ({r.changes}, {int(r.steps)} steps): oracle-grouped "
                  f"{r['oracle-grouped_si_sdri_db']:+.2f} dB, feature-grouped {r['feature-grouped_si_sdri_db']:+.2f} dB.")
    if student is not None and (student.config == "teacher").any():
        te = student[student.config == "teacher"].iloc[0]
        two = med.loc[("mixit", "feature-grouped", "2")] if ("mixit", "feature-grouped", "2") in med.index else None
        mixit_taught = (student.config != "teacher") & ~student.config.str.startswith(("pan", "stems"))
        for _, r in student[mixit_taught].iterrows():
            print(f"- Student {r.config} ({r.changes}; pseudo-sources per track {r.pseudo_sources_per_track}): "
                  f"feature-grouped at k = n {r['feature-grouped_si_sdri_db']:+.2f} dB with "
                  f"{int(r['feature-grouped_missed'])} of {int(r.pairs)} instruments missed, against its teacher's "
                  f"{te['feature-grouped_si_sdri_db']:+.2f} dB with {int(te['feature-grouped_missed'])} missed"
                  + ("" if two is None else f" (and {two.si_sdri_db:+.2f} dB with {int(two.missed)} missed at k = 2)")
                  + f"; oracle-grouped {r['oracle-grouped_si_sdri_db']:+.2f} dB (teacher "
                  f"{te['oracle-grouped_si_sdri_db']:+.2f}).")
    print(f"- The stereo image alone, clustered without labels or training: pan clustering {pan_n.si_sdri_db:+.2f} dB "
          f"at k = n, against {bu:+.2f} dB for the best unsupervised MixIT row and "
          f"{t['ORACLE: ideal ratio mask']:+.2f} dB for the ideal ratio mask "
          f"({'above' if pan_n.si_sdri_db > bu + BAND_DB else 'not above'} the best mono row by more than the "
          f"{BAND_DB:g} dB band).")
    if student is not None:
        for _, r in student[student.config.str.startswith(("pan", "stems"))].iterrows():
            print(f"- {'ABLATION (labels) ' if r.config.startswith('stems') else ''}student {r.config} "
                  f"({r.n_outputs} outputs, {r.steps} steps, pseudo-sources per track {r.pseudo_sources_per_track}): "
                  f"feature-grouped at k = n {r['feature-grouped_si_sdri_db']:+.2f} dB "
                  f"({int(r['feature-grouped_missed'])} of {int(r.pairs)} missed), oracle-grouped "
                  f"{r['oracle-grouped_si_sdri_db']:+.2f} dB, ungrouped {r['ungrouped_si_sdri_db']:+.2f} dB.")
    print(f"- Bar of issue 12 (best unsupervised >= +3 dB, oracle-grouped >= +6 dB): "
          f"{'met' if bu >= 3 and orc >= 6 else 'not met'} on this run ({steps} training steps).")
else:
    print(f"skipped: the SI-SDRi comparisons (the groupings, the oracle grouping, NMF, the ideal ratio mask, "
          f"pan clustering, the bar of issue 12) each {no_labels}")
    for line in sg.label_free_findings(free, s.n_outputs):
        print(f"- {line}.")
    print(f"- Over-separation: a median of {counts.n_active.median():.0f} of the {s.n_outputs} outputs per "
          f"track carry energy within {-s.energy_floor_db:g} dB of the loudest one.")
    print(f"- The separator's own task: it re-builds each mixture of a validation mixture of mixtures at "
          f"{val_mom:.1f} dB SNR on average; the ideal ratio mask on the same STFT re-builds them at "
          f"{mixit_data.oracle_mixture_snr_db(cfg, root):.1f} dB.")

# %% [markdown]
# ## The same models on the clean render: which findings were the render's?
# MixIT and pan clustering on the clean set's test split with the **same
# models** (trained on the realistic set), written to
# `results/separation_mixit_<preset>_clean.*`, and every key row of the report
# side by side for the two renders (the latent-frame rows from notebook 04's
# files). A row that moves by less than the reproduction band "holds on both".
# On a user's data root this section is skipped: it renders the embedded clean
# set, which is not the user's data.

# %%
if user_root:
    print(f"skipped: the same models on the clean render: it renders the embedded clean set, this run is on "
          f"{root.name}")
else:
    clean_root = datasets.ensure_dataset(cfg.replace(data={"style": "clean"}))
    df_clean = evaluate.run_evaluation(cfg, root=clean_root, run_dir=ae_run,
                                       methods=["mixture", "oracle_irm", "oracle_frames", "nmf", "mixit", "pan"],
                                       ks=[2, 3, 4, "n"], out_dir=paths.runs_dir() / f"evaluate_mixit_{cfg.name}_clean",
                                       write_results=False, progress=False)
    df_clean.to_csv(out / f"separation_mixit_{cfg.name}_clean.csv", index=False, float_format="%.4f")
    (out / f"separation_mixit_{cfg.name}_clean.md").write_text(
        f"# MixIT on the clean render's 'other' ({cfg.name}, test split, {df_clean.track.nunique()} tracks, models "
        "trained on the realistic set)\n\nMedians over matched (track, instrument) pairs; dB.\n\n"
        + evaluate.markdown_table(evaluate.summarize(df_clean)))
    both = {cfg.data.style: [summary], "clean": [evaluate.summarize(df_clean)]}
    for style, name in ((cfg.data.style, f"separation_{cfg.name}.csv"), ("clean", f"separation_{cfg.name}_clean.csv")):
        if (out / name).is_file():  # notebook 04's latent-frame rows
            both[style].append(evaluate.summarize(pd.read_csv(out / name)))
    side = evaluate.styles_side_by_side({k: pd.concat(v) for k, v in both.items()})
    display(side.round(2))
    for line in evaluate.style_findings(side, BAND_DB, a=cfg.data.style):
        print(f"- {line}")
