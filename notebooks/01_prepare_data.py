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
# with a General MIDI soundfont, keeping every instrument as its own stem.
#
# **In:** the preset (`MSS_PRESET`, default `cpu`). **Out:** the data set on disk
# (rendered if missing), `results/dataset_<preset>.json`, figures `01_*.png`.

# %%
import json
import os

from IPython.display import display

from mss_helpers import paths, plots
from mss_helpers.audio import embed_audio
from mss_helpers.config import get_config, seed_everything
from mss_helpers.datasets import ensure_dataset, load_tracks, track_table

seed_everything(0)

# %%
cfg = get_config(os.environ.get("MSS_PRESET", "cpu"))
root = ensure_dataset(cfg)
print(f"preset {cfg.name}: {root}")

# %% [markdown]
# ## What is in it
# One row per track. `overlap` is the share of sounding 50 ms frames in which two
# or more instruments of "other" play at once: the frames a pure time-slicing
# method (the seed's hard time masks) cannot split.

# %%
train, test = load_tracks(root, "train"), load_tracks(root, "test")
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
}
print(json.dumps(summary, indent=1))

# %%
fig = plots.bar_counts(summary["instrument_counts"], title="Tracks containing each instrument",
                       xlabel="tracks")
plots.save_figure(fig, "01_instrument_counts")

# %%
fig = plots.histogram(table.overlap, bins=15, title="Share of sounding frames with 2+ instruments",
                      xlabel="overlap share")
plots.save_figure(fig, "01_overlap")

# %% [markdown]
# The instruments overlap most of the time: in the median track, two or more of
# them sound together in the share of frames printed above as `median_overlap`.
# That caps any method that gives each time frame wholly to one cluster, which is
# what notebook 04 measures with the *oracle frame assignment* row.

# %% [markdown]
# ## One test track: the mixture, its stems, and the instruments inside "other"

# %%
track = test[0]
rate = track.rate
signals = {"mixture": track.load("mixture"), "other": track.load("other")}
signals.update({f"other / {k}": v for k, v in track.other_stems().items()})
fig = plots.spectrogram_grid(signals, rate, ncols=2, title=f"{track.name} ({track.meta['piece']})")
plots.save_figure(fig, "01_stems_spectrograms")
print(json.dumps({k: track.meta[k] for k in ("piece", "instruments", "tempo_bpm", "start_bar")}))

# %% [markdown]
# Listen: the full mixture, the "other" stem, then each instrument inside it
# (levels as rendered, not normalised, so quiet parts stay quiet).

# %%
for name, x in signals.items():
    print(name)
    display(embed_audio(x, rate))

# %%
out = paths.results_dir()
out.mkdir(parents=True, exist_ok=True)
(out / f"dataset_{cfg.name}.json").write_text(json.dumps(summary, indent=1))
table.to_csv(out / f"dataset_{cfg.name}.csv", index=False)
