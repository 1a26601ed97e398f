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
# # 05 Listening tests: do the separated instruments sound like instruments?
#
# **Question.** SI-SDR and SDR say how close an estimate is to the true
# instrument, but not how it sounds. Here we listen: first freely, track by
# track, then blind, rating each method's estimate against the true instrument
# in a MUSHRA-style test.
#
# **Inputs.** The listening examples written by the evaluation (notebook 04)
# in `runs/examples_<preset>_<config hash>/` (input "other" stem, reference instruments,
# each method's estimates and their matched SI-SDR); written here for two test
# tracks when missing. Ratings collected so far in
# `results/listening_ratings.csv`.
#
# On a root without the instruments inside "other" (MUSDB18) there are no
# references: the browser plays input and estimates, and the blind test rates
# how well each estimate isolates one instrument of the input (below).
#
# **Outputs.** An interactive track browser, the rating form, and, once real
# ratings exist, `results/05_listening_summary.csv` and
# `figures/05_listening_ratings.png`.

# %%
import os
import tempfile
from pathlib import Path

from mss_helpers import datasets, evaluate, listen, mushra, paths, plots
from mss_helpers.config import get_config, seed_everything
from mss_helpers.examples import list_tracks

seed_everything(0)

# %%
cfg = get_config(os.environ.get("MSS_PRESET", "cpu"))
examples_dir = evaluate.ensure_examples(cfg)  # reused when present, else written now (see below)
ratings_csv = paths.results_dir() / "listening_ratings.csv"
test_tracks = datasets.load_tracks(datasets.ensure_dataset(cfg), "test")
labelled = datasets.has_instruments(test_tracks)  # False on MUSDB18: no instruments inside "other"
print(cfg.name, examples_dir, ratings_csv, sep="\n")

# %% [markdown]
# ## The examples
#
# The evaluation of notebook 04 writes them, in a folder named by the
# preset and its config hash. If this configuration has none yet, the set-up
# cell above ran the evaluation here on the first two test tracks (training
# the autoencoder first when notebook 02 has not), without touching the result
# tables of notebook 04.

# %%
print("tracks:", list_tracks(examples_dir))

# %% [markdown]
# ## Browse: input, estimates and references side by side
#
# Pick a track, a clustering method, the decoding (`hard` time masks as in the
# original, or `soft` masks) and k. Each estimate shows the instrument it was
# matched to (Hungarian matching on SI-SDR) and its SI-SDR; unmatched
# estimates say so. Players hold compact OGG audio at no more than 16 kHz and
# are **not normalised**: levels stay comparable between players, so a quiet
# estimate sounds quiet, as it is. Without references, each estimate shows its
# share of the estimates' energy (the seed's cluster energy) instead.

# %%
browser = listen.TrackBrowser(examples_dir, spectrogram=plots.spectrogram)
for label, path in browser.current_players():
    print(f"{label:60s} {path.relative_to(examples_dir)}")
browser.widget

# %% [markdown]
# ## Blind rating test (MUSHRA style)
#
# Each trial shows one instrument of one track. The true instrument plays
# openly as **Reference**; below it, under neutral letters in a seeded random
# order, the listener rates from 0 to 100 how close each sound is to it:
#
# - a hidden copy of the reference (a careful listener rates it near 100),
# - a low anchor: the separation input low-passed at 3.5 kHz (the MUSHRA
#   anchor: clearly degraded and still holding the other instruments),
# - the plain input ("other" stem), the estimate of doing nothing,
# - the matched estimate of each method under test: the seed's method (k-means,
#   hard time masks) where it was exported, plus the three methods with the best
#   median SI-SDR on these examples.
#
# "Save & next" appends the trial's ratings to the CSV at once, so a session
# can stop halfway without losing anything, and earlier sessions are never
# rewritten. Set `MSS_LISTENER` to your name before you start. Headless runs
# build the form without clicking it.
#
# Without references (MUSDB18) each trial is one (track, method): the input
# plays openly as **Reference**, and the listener rates how well each sound
# isolates one instrument of it (0: as mixed as the input, 100: one instrument
# alone, clean). The conditions are a hidden copy of the input (it isolates
# nothing: a careful listener rates it near 0), the low anchor and each of the
# method's estimates. Nothing ranks methods without references, so the seed's
# three (k-means, agglomerative, DBSCAN with hard time masks) are rated.

# %%
if labelled:
    seed_key = [k for k in browser.examples[list_tracks(examples_dir)[0]]["methods"]
                if k.startswith("kmeans__hard__")][:1]
    methods = mushra.pick_methods(examples_dir, n=3, include=tuple(seed_key))
    trials = mushra.build_trials(examples_dir, methods=methods)  # every (track, instrument) exported
    print(f"{len(trials)} trials, conditions per trial: {[c.name for c in trials[0].conditions]}")
else:
    methods = mushra.pick_open_methods(examples_dir)
    trials = mushra.build_open_trials(examples_dir, methods=methods)  # every (track, method) exported
    print(f"{len(trials)} trials, one per (track, method) of {methods}; conditions per trial: the hidden "
          f"input, the anchor and the method's estimates, e.g. {[c.name for c in trials[0].conditions]}")
rating_test = listen.MushraTest(trials, ratings_csv, listener_id=os.environ.get("MSS_LISTENER", "anonymous"),
                                seed=int(os.environ.get("MSS_LISTEN_SEED", "0")))
rating_test.widget

# %% [markdown]
# ## Ratings
#
# Listeners who rate the hidden reference below 90 in more than 15 % of their
# trials are dropped first (MUSHRA post-screening): they could not tell the
# reference apart, so their other ratings say little. Then, per condition: the
# median, the mean and its 95 % t-interval, and the number of ratings.
# Without references the rule is mirrored (the hidden input rated above 10 in
# more than 15 % of trials), and a method's rating in a trial is the mean over
# its estimates (a cluster's number means nothing from one track to the next).
#
# When nobody has rated yet, the table and figure below come from **synthetic
# ratings generated here (example data, not results)**: they only show what
# the analysis will print.

# %%
real = ratings_csv.is_file() and len(mushra.read_ratings(ratings_csv)) > 0
if real:
    ratings = mushra.read_ratings(ratings_csv)
    title = f"listening test: {ratings['listener'].nunique()} listener(s)"
else:
    example_csv = Path(tempfile.mkdtemp()) / "example_ratings.csv"
    conditions = list(dict.fromkeys(c.name for t in trials for c in t.conditions))  # every trial's
    mushra.append_ratings(example_csv, mushra.simulate_ratings(conditions, seed=0).to_dict("records"))
    ratings = mushra.read_ratings(example_csv)
    title = "EXAMPLE DATA, NOT RESULTS (synthetic ratings)"
screened = mushra.post_screen(ratings) if labelled else mushra.per_method(mushra.post_screen_open(ratings))
summary = mushra.summarize_ratings(screened)
print(title)
print("dropped by post-screening:", screened.attrs["dropped_listeners"] or "nobody")
print(summary.round(1).to_string())

# %%
fig = plots.ratings_boxplot(screened, title=title)
if real:
    plots.save_figure(fig, "05_listening_ratings")
    paths.results_dir().mkdir(parents=True, exist_ok=True)
    summary.round(2).to_csv(paths.results_dir() / "05_listening_summary.csv")

# %% [markdown]
# ## What we conclude
#
# The sentence below is computed from the table above. It compares each
# method with the plain input: a method that listeners do not rate above the
# unprocessed "other" stem has not separated anything audible, whatever its
# SI-SDR. With synthetic ratings it describes nothing but the example.
# Without references, "above the input" means heard as isolating more of one
# instrument than the input itself.

# %%
method_rows = summary.drop(index=[mushra.HIDDEN_REFERENCE, mushra.ANCHOR, mushra.MIXTURE], errors="ignore")
best = method_rows["median"].idxmax()
floor = summary.loc[mushra.MIXTURE, "median"] if mushra.MIXTURE in summary.index else float("nan")
above = [c for c in method_rows.index if method_rows.loc[c, "ci95_low"] > floor]
print(("[example data] " if not real else "")
      + f"Best rated method: {best} (median {method_rows.loc[best, 'median']:.0f} of 100, "
      f"n = {method_rows.loc[best, 'n']}); the plain input has median {floor:.0f}. "
      f"{len(above)} of {len(method_rows)} methods are rated above the input's median "
      "with the lower end of their 95 % interval"
      + (f" ({', '.join(above)})." if above else "."))
