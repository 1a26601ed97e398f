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
# # 01 · Prepare the data: the embedded multi-instrument set
#
# **Question.** What do we separate, and how hard is it? MUSDB18 has no stems
# inside its "other" stem, so the seed report could not score a split of "other"
# into instruments. We render our own songs from real scores (music21's corpus)
# with General MIDI soundfonts, keeping every instrument as its own stem.
#
# Two render styles. **realistic** (the report's set): piano, guitar and pads play
# *chords* from the piece's harmony (comping, strums, sustained pads; arpeggios
# and single lines beside them), with a drifting tempo and humanised timing,
# programs and two soundfonts drawn per track, and every stem of a track placed
# in one simulated room picked up by two microphones; the reference instruments
# are the *wet* stems. **clean** (the report's first set, kept for comparison):
# one monophonic part per instrument, one soundfont, dry point-source pans.
#
# **In:** the preset (`MSS_PRESET`, default `cpu`). **Out:** both data sets on
# disk (rendered if missing), `results/dataset_<preset>.json`, figures `01_*.png`.
#
# With `MSS_DATA_ROOT` set, the notebook describes that root instead (nothing is
# rendered). On a root without the instruments inside "other" (MUSDB18) it shows
# what the root has: songs per split, durations, the level of each stem and the
# share of "other" in the mixture; what needs the instruments is skipped with one
# printed line.

# %%
import json
import os

from IPython.display import display

import pandas as pd

from mss_helpers import datacard, paths, plots
from mss_helpers.audio import embed_audio
from mss_helpers.config import get_config, seed_everything
from mss_helpers.datasets import (ensure_dataset, has_instruments, load_tracks, resolve_split_scheme,
                                  track_table)
from mss_helpers.render import ACTIVE_DB, SILENT_DB, instrument_summary

seed_everything(0)

# %%
cfg = get_config(os.environ.get("MSS_PRESET", "cpu"))
root = ensure_dataset(cfg)
embedded = paths.user_root() is None  # False: a user's root (MSS_DATA_ROOT), which has no render styles
if embedded:
    clean_cfg = cfg.replace(data={"style": "clean"})
    clean_root = ensure_dataset(clean_cfg)
    print(f"preset {cfg.name}: {cfg.data.style} set {root.name}\nclean set for comparison: {clean_root.name}")
else:
    print(f"preset {cfg.name}: the data root {root} (split scheme {resolve_split_scheme(root)!r})")

# %% [markdown]
# ## What is in it
# One row per track. `overlap` is the share of sounding 50 ms frames in which two
# or more instruments of "other" play at once: the frames a pure time-slicing
# method (the seed's hard time masks) cannot split. On a root without those
# instruments (MUSDB18) the table has, per song, its duration, the level of each
# stem (`<stem>_db`, dBFS) and `other_share`, the mixture's energy that "other"
# alone holds.

# %%
train, test = load_tracks(root, "train"), load_tracks(root, "test")
labelled = has_instruments(train + test)  # False on MUSDB18: no instruments inside "other"
if labelled:
    table = track_table(train + test)
    display(table.head(8))
    summary = {
        "preset": cfg.name, "root": root.name, "tracks": {"train": len(train), "test": len(test)},
        "duration_s_per_track": float(table.duration_s.median()),
        "hours_of_other_train": float(table[table.split == "train"].duration_s.sum() / 3600),
        "composers": table.composer.value_counts().to_dict(),
        "instruments_per_track": table.n_instruments.value_counts().sort_index().to_dict(),
        "instrument_counts": table.instruments.str.split(",").explode().value_counts().to_dict(),
        "median_overlap": float(table.overlap.median()),
        "median_mean_active": float(table.mean_active.median()),
        "instruments_per_track_median": float(table.n_instruments.median()),
    }
else:
    table = datacard.stem_table(train + test)
    display(table.round(3).head(8))
    summary = {"preset": cfg.name, "root": root.name, "split_scheme": resolve_split_scheme(root),
               "tracks": {"train": len(train), "test": len(test)}, **datacard.stem_summary(table)}
print(json.dumps(summary, indent=1))

# %%
if labelled:
    fig = plots.bar_counts(summary["instrument_counts"], title="Tracks containing each instrument",
                           xlabel="tracks")
    plots.save_figure(fig, "01_instrument_counts");
else:
    fig = plots.stem_levels(table, title=f"The stems of {root.name}: level per song, and the share of 'other'")
    plots.save_figure(fig, "01_stem_levels");

# %%
if labelled:
    fig = plots.histogram(table.overlap, bins=15, title="Share of sounding frames with 2+ instruments",
                          xlabel="overlap share")
    plots.save_figure(fig, "01_overlap");
else:
    print(f"skipped: the instrument counts and their overlap need the instruments inside 'other', "
          f"which {root.name} does not have")

# %% [markdown]
# The instruments overlap most of the time: in the median track, two or more of
# them sound together in the share of frames printed above as `median_overlap`.
# That caps any method that gives each time frame wholly to one cluster, which is
# what notebook 04 measures with the *oracle frame assignment* row.

# %% [markdown]
# ## Does one instrument dominate?
# An instrument that rests through its whole excerpt cannot be separated or
# scored, and an instrument that is louder, or sounds longer, than the others
# takes more of the frames that notebook 03 colours by their loudest instrument.
# The renderer therefore gives an instrument whose notes would cover less than
# `min_sounding_share` of its excerpt another part of the score (or drops its
# rests), and levels every stem by its median level *while it plays* to a target
# drawn from the same range for every instrument. Per instrument, over all
# tracks (medians over the tracks that contain it): `silent` counts excerpts
# below `SILENT_DB` dBFS; `sounding_share` is the share of 50 ms frames in which
# it sounds (within `ACTIVE_DB` dB of the track's loudest instrument frame, the
# definition notebook 03 labels frames with); `median_db` its median frame level
# over those frames (dBFS); `relative_db` that level minus the mean of the
# track's instruments (louder or quieter than its company, whatever the track's
# overall level); `dominant_share` the share of sounding frames in which it is
# the loudest instrument.

# %%
if labelled:
    levels = instrument_summary([t.meta for t in train + test])
    display(levels.round(3))
    summary["min_sounding_share"] = cfg.data.min_sounding_share
    summary["silent_instruments"] = int(levels.silent.sum())
    summary["instrument_excerpts"] = int(levels.tracks.sum())
    summary["instruments"] = {name: {k: (int(v) if k in ("tracks", "silent") else round(float(v), 4))
                                     for k, v in row.items()} for name, row in levels.iterrows()}
    loud, quiet = levels.relative_db.idxmax(), levels.relative_db.idxmin()
    longest, top = levels.sounding_share.idxmax(), levels.dominant_share.idxmax()
    print(f"{summary['silent_instruments']} of {summary['instrument_excerpts']} instrument excerpts are silent "
          f"(below {SILENT_DB:.0f} dBFS over the whole excerpt).\n"
          f"While they play, the loudest instrument against the others in its tracks is {loud} "
          f"({levels.relative_db[loud]:+.1f} dB in the median track) and the quietest {quiet} "
          f"({levels.relative_db[quiet]:+.1f} dB): a spread of "
          f"{levels.relative_db[loud] - levels.relative_db[quiet]:.1f} dB.\n"
          f"{longest} sounds longest (in {levels.sounding_share[longest]:.0%} of the frames of the median track, "
          f"active = within {-ACTIVE_DB:.0f} dB of the loudest); {top} is most often the loudest "
          f"({levels.dominant_share[top]:.0%} of sounding frames in the median track; "
          f"{1 / len(levels):.0%} would be an equal share among {len(levels)} instruments, "
          f"{1 / summary['instruments_per_track_median']:.0%} among the median track's instruments).")
else:
    print(f"skipped: whether one instrument dominates needs the instruments inside 'other', "
          f"which {root.name} does not have")

# %% [markdown]
# The printout above is the answer for this data set: the count of silent
# excerpts, and whether one instrument dominates, read from the spread of
# `relative_db` (how much louder than its company it is while it plays) and of
# `sounding_share` (how much longer it plays). Because each track holds several instruments, `dominant_share` should
# be compared with one over the number of instruments in a track, not with one
# over seven.

# %% [markdown]
# ## The data card: the two styles side by side
# Per instrument of "other": its **polyphony** (share of its sounding frames
# with two or more of its notes at once), and the **spread of its inter-channel
# level ratio** (inter-quartile range over time-frequency bins of
# 20 log10 |L| / |R|): 0 dB for a dry point source panned by two gains, which is
# what made pan clustering so strong on the clean set; several dB once the
# instrument sounds in a room. Per track: the room's RT60 (measured on its
# impulse responses), the loudness spread of its instruments (BS.1770), and how
# much their registers overlap (shared semitones over the narrower range,
# averaged over pairs). It compares the embedded set's two renders, so on a
# user's root it is skipped.

# %%
compare_styles = labelled and embedded  # the clean render exists only beside the embedded set
if compare_styles:
    clean_tracks = load_tracks(clean_root, "train") + load_tracks(clean_root, "test")
    inst = {cfg.data.style: datacard.instrument_card(train + test), "clean": datacard.instrument_card(clean_tracks)}
    per_track = {cfg.data.style: datacard.track_card(train + test, inst[cfg.data.style]),
                 "clean": datacard.track_card(clean_tracks, inst["clean"])}
    card = {style: datacard.card_summary(inst[style], per_track[style]) for style in inst}
    clean_table = track_table(clean_tracks)
    for style, t in ((cfg.data.style, table), ("clean", clean_table)):
        card[style]["median_overlap"] = round(float(t.overlap.median()), 4)
    display(pd.DataFrame(card))
    summary["styles"] = card
elif not labelled:
    print(f"skipped: the data card of the two render styles needs the instruments inside 'other', "
          f"which {root.name} does not have")
else:
    print(f"skipped: the data card compares the embedded set's two render styles; {root.name} is a user's root")

# %%
if compare_styles:
    fig = plots.style_card(pd.concat(inst.values()), title="Instruments of 'other' in the two render styles")
    plots.save_figure(fig, "01_style_card");

# %%
if compare_styles:
    r, c = card[cfg.data.style], card["clean"]
    print(f"- Inter-channel level spread, median over instruments: {c['median_ild_iqr_db']:.1f} dB clean, "
          f"{r['median_ild_iqr_db']:.1f} dB {cfg.data.style}"
          + (" (each clean instrument is one fixed gain pair: its position is a perfect label)."
             if c["median_ild_iqr_db"] < 1 else "."))
    print(f"- Polyphony, median over instruments: {c['median_polyphony']:.2f} clean, {r['median_polyphony']:.2f} "
          f"{cfg.data.style}; tracks with an instrument playing 2+ notes in at least half its sounding frames: "
          f"{c['tracks_with_a_polyphonic_instrument']:.0%} clean, {r['tracks_with_a_polyphonic_instrument']:.0%} "
          f"{cfg.data.style}.")
    print(f"- Register overlap between instruments, median track: {c['median_register_overlap']:.2f} clean, "
          f"{r['median_register_overlap']:.2f} {cfg.data.style}; RT60 {r['median_rt60_s']:.2f} s "
          f"({cfg.data.style}; the clean set is dry); soundfonts {', '.join(r['soundfonts'])} "
          f"({r['programs']} programs) against {', '.join(c['soundfonts'])} ({c['programs']} programs).")

# %% [markdown]
# The same test track's "other" in both styles, one above the other (the clean
# set's test track with the same index; the pieces can differ, since the
# styles draw their arrangements differently). Listen to the clean one first.

# %%
if compare_styles:
    pair = {"clean: other": load_tracks(clean_root, "test")[0], f"{cfg.data.style}: other": test[0]}
    signals = {f"{k} ({t.meta['piece']})": t.load("other") for k, t in pair.items()}
    fig = plots.spectrogram_grid(signals, test[0].rate, ncols=1, title="'other' in the two render styles")
    plots.save_figure(fig, "01_styles_spectrograms");
    for name, x in signals.items():
        print(name)
        display(embed_audio(x, test[0].rate))

# %% [markdown]
# ## One test track: the mixture, its stems, and the instruments inside "other"

# %%
track = test[0]
rate = track.rate
if labelled:
    signals = {"mixture": track.load("mixture"), "other": track.load("other")}
    signals.update({f"other / {k}": v for k, v in track.other_stems().items()})
    fig = plots.spectrogram_grid(signals, rate, ncols=2, title=f"{track.name} ({track.meta['piece']})")
    plots.save_figure(fig, "01_stems_spectrograms");
    print(json.dumps({k: track.meta[k] for k in ("piece", "instruments", "tempo_bpm", "start_bar")}))
else:
    signals = datacard.song_stems(track, seconds=30.0)  # the middle 30 s: a whole song makes a huge notebook
    fig = plots.spectrogram_grid(signals, rate, ncols=2, title=f"{track.name} (at most its middle 30 s)")
    plots.save_figure(fig, "01_stems_spectrograms");
    print(f"skipped: the spectrograms and players of the instruments inside 'other', which {root.name} does not have")

# %% [markdown]
# Listen: the full mixture, the "other" stem, then each instrument inside it
# (levels as rendered, not normalised, so quiet parts stay quiet). On a root
# without instruments: the mixture and its four stems, the song's middle 30 s.

# %%
for name, x in signals.items():
    print(name)
    display(embed_audio(x, rate))

# %%
out = paths.results_dir()
out.mkdir(parents=True, exist_ok=True)
(out / f"dataset_{cfg.name}.json").write_text(json.dumps(summary, indent=1))
table.to_csv(out / f"dataset_{cfg.name}.csv", index=False)
