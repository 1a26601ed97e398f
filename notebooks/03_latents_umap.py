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
# # 03 · Look at the latent space: do instruments form groups?
#
# **Question.** Are the SEANet VAE's latent frames of unseen "other" stems
# grouped by instrument -- the premise of clustering them -- or by something
# else (how many instruments sound, which song)? And does the KL term of the
# VAE change that?
#
# **In:** the preset (`MSS_PRESET`, default `cpu`), its data set (test split)
# and the trained autoencoder of notebook 02 (trained here if missing), plus the
# two runs of the KL ablation (`results/kl_ablation_<preset>.json`; both
# trained and scored here when that record's runs are missing or out of date).
# **Out:** figures `03_umap.png`, `03_umap_by_instrument.png`, `03_kl_ablation.png`,
# `03_umap_kl.png`; `results/latents_<preset>.json`.
#
# Each latent frame is labelled with the ground truth of the same samples: its
# *dominant* instrument (most energy; "none" when all are 40 dB below the
# track's loudest frame) and the *number of active* instruments.
#
# On a root without the instruments inside "other" (MUSDB18) there are no such
# labels: the frames are coloured and scored by what exists instead -- their
# track, their loudness (RMS dB) and their spectral centroid, both measured on
# the audio each frame encodes; what needs the labels prints one "skipped" line,
# and `03_umap_by_instrument.png` is not drawn.

# %%
import json
import os

import matplotlib.pyplot as plt
import pandas as pd
from IPython.display import display
from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score

from mss_helpers import datasets, paths, plots
from mss_helpers.cluster import cluster_frames
from mss_helpers.cluster_metrics import frame_scores, label_scores
from mss_helpers.config import get_config, git_commit, seed_everything
from mss_helpers.latents import collect_latents, umap_project
from mss_helpers.model import load_model
from mss_helpers.autoencoder import ensure_autoencoder, ensure_kl_ablation

seed_everything(0)

# %%
cfg = get_config(os.environ.get("MSS_PRESET", "cpu"))
root = datasets.ensure_dataset(cfg)
test_tracks = datasets.load_tracks(root, "test")
# Notebook 02's runs, reused when cached (keyed by the config hash), else trained now.
run_dir = ensure_autoencoder(cfg, root=root)
ablation = ensure_kl_ablation(cfg, root=root)
print(f"preset {cfg.name}: {len(test_tracks)} test tracks from {root.name}; model {run_dir.name}")
# Whether the frames have instrument labels: the embedded set has them, MUSDB18 does not.
labelled = datasets.has_instruments(test_tracks)
NO_LABELS = f"needs the instruments inside 'other', which {root.name} does not have"

# %% [markdown]
# ## Encode every test track
# One latent frame per `hop` samples; all test tracks together.

# %%
model, _ = load_model(run_dir)
lat = collect_latents(model, test_tracks, cfg, features=not labelled)
X, names = lat["X"], lat["names"]
if labelled:
    print(f"{len(X)} frames of {X.shape[1]} dims, {model.frame_rate:.0f} frames/s; instruments: {names}")
    share = pd.Series(lat["n_active"]).value_counts(normalize=True).sort_index()
    print("share of frames by number of active instruments:", share.round(3).to_dict())
else:
    print(f"{len(X)} frames of {X.shape[1]} dims, {model.frame_rate:.0f} frames/s")
    print(f"skipped: labelling frames by instrument {NO_LABELS}")

# %% [markdown]
# ## UMAP of the latent frames, three colourings
# The same 2-d map coloured by dominant instrument, by number of active
# instruments and by track. If instruments formed the groups, the first panel
# would show clean colour islands; if songs did, the third would. Each panel
# draws the same number of frames of every class, in shuffled order and
# translucent, on the grey cloud of all frames, so a class with many frames
# cannot hide the others. Without instrument labels the panels are the track,
# the loudness and the spectral centroid of each frame.

# %%
emb = umap_project(X, cfg, seed=0)
if labelled:
    colourings = {"dominant instrument": (lat["dominant"], names),
                  "active instruments": (lat["n_active"], None),
                  "track": (lat["track_ids"], lat["track_names"])}
else:
    colourings = {"track": (lat["track_ids"], lat["track_names"]),
                  "loudness (frame RMS)": (lat["rms_db"], "dB full scale"),
                  "spectral centroid": (lat["centroid_hz"], "Hz")}
fig = plots.umap_panels(emb, colourings, title=f"UMAP of the latent frames ({cfg.name}, test split)")
plots.save_figure(fig, "03_umap");

# %% [markdown]
# Where does each instrument lie? One panel per instrument: the frames it
# dominates, highlighted on the grey cloud (at most 1500 per panel; the title
# gives how many frames it dominates). Overlapping highlights mean the latent
# space does not separate those instruments.

# %%
if labelled:
    fig = plots.umap_by_instrument(emb, lat["dominant"], names,
                                   title=f"Frames each instrument dominates ({cfg.name}, test split)")
    plots.save_figure(fig, "03_umap_by_instrument");
else:
    print(f"skipped: where each instrument lies {NO_LABELS}")

# %% [markdown]
# ## How well do the labels group, in numbers?
# k-NN purity (share of each frame's 10 nearest neighbours with the same label;
# chance = the sum of squared label frequencies) and silhouette, in the latent
# space and in the UMAP map, for the dominant instrument and the track. Then a
# whole-test-set K-Means (k = number of instruments; fitted on a subsample,
# the rest assigned) compared with the dominant-instrument labels (ARI, NMI).
#
# Without instrument labels: the track's k-NN purity and silhouette, and for
# loudness and spectral centroid the correlation between a frame's value and
# the mean of its 10 nearest neighbours' (`_knn_r`: 1 = neighbours share it,
# 0 = unrelated to where a frame lies).

# %%
rows = {}
if labelled:
    for space, Z in [("latent", X), ("umap", emb)]:
        rows[f"{space} / dominant instrument"] = label_scores(Z, lat["dominant"])
        rows[f"{space} / track"] = label_scores(Z, lat["track_ids"])
else:
    features = {"loudness": lat["rms_db"], "centroid": lat["centroid_hz"]}
    for space, Z in [("latent", X), ("umap", emb)]:
        rows[space] = frame_scores(Z, lat["track_ids"], features)
scores = pd.DataFrame(rows).T
display(scores.round(3))

if labelled:
    has_label = lat["dominant"] >= 0
    km = cluster_frames(X, "kmeans", k=len(names), cfg=cfg.cluster, seed=0)
    agreement = {"ari": adjusted_rand_score(lat["dominant"][has_label], km.labels[has_label]),
                 "nmi": normalized_mutual_info_score(lat["dominant"][has_label], km.labels[has_label]),
                 "nmi_track": normalized_mutual_info_score(lat["track_ids"], km.labels)}
    print({k: round(v, 3) for k, v in agreement.items()})
else:
    print(f"skipped: scoring frames (k-NN purity, silhouette, K-Means) by instrument {NO_LABELS}")

# %% [markdown]
# ## KL weight 0 (a plain autoencoder) vs the chosen KL weight
# The two arms of the ablation were trained with the same budget (notebook 02);
# both encode the same test tracks and are scored the same way. Without
# instrument labels they are compared on what exists: reconstruction, how
# frames group by track, loudness and centroid; the maps are coloured by track.

# %%
kl_rows, kl_embs = {}, {}
for arm, info in ablation["arms"].items():
    arm_model, _ = load_model(info["run_dir"])
    arm_lat = collect_latents(arm_model, test_tracks, cfg)
    label = f"kl_weight={info['kl_weight']:g}"
    if labelled:
        kl_rows[label] = {**label_scores(arm_lat["X"], arm_lat["dominant"]),
                          "recon_snr_db": info["median"].get("snr_db")}
        kl_embs[label] = (umap_project(arm_lat["X"], cfg, seed=0), arm_lat["dominant"])
    else:  # same audio and hop as the main model: the frames' loudness and centroid are those of `lat`
        kl_rows[label] = {**frame_scores(arm_lat["X"], arm_lat["track_ids"], features),
                          "recon_snr_db": info["median"]["snr_db"]}
        kl_embs[label] = (umap_project(arm_lat["X"], cfg, seed=0), arm_lat["track_ids"])
kl_table = pd.DataFrame(kl_rows).T
display(kl_table.round(3))
fig = plots.ablation_bars(kl_rows, recon=("recon_snr_db",), title=f"KL ablation ({cfg.name}, test split)")
plots.save_figure(fig, "03_kl_ablation");
fig = plt.figure(figsize=(12.5, 4.8))
for ax, (label, (e, colour)) in zip(fig.subplots(1, len(kl_embs)), kl_embs.items()):
    plots.scatter_2d(e, colour, names if labelled else lat["track_names"], ax=ax,
                     title=f"{label}: {'dominant instrument' if labelled else 'track'}")
fig.tight_layout()
plots.save_figure(fig, "03_umap_kl");

# %%
if labelled:
    result = {"preset": cfg.name, "commit": git_commit(), "run_dir": str(run_dir), "n_frames": int(len(X)),
              "instruments": names, "active_share": {int(k): float(v) for k, v in share.items()},
              "scores": scores.to_dict(orient="index"), "kmeans_vs_dominant": agreement,
              "kl_ablation": kl_table.to_dict(orient="index")}
else:  # what exists; from the dicts, not the tables, so that no missing value turns into NaN
    result = {"preset": cfg.name, "commit": git_commit(), "root": root.name, "run_dir": str(run_dir),
              "n_frames": len(X), "instruments": [], "scores": rows, "kl_ablation": kl_rows}
out = paths.results_dir() / f"latents_{cfg.name}.json"
out.parent.mkdir(parents=True, exist_ok=True)
out.write_text(json.dumps(result, indent=1, default=float, allow_nan=labelled))
print(f"wrote {out.name}")

# %% [markdown]
# ## What the numbers say
# The sentences below are computed from the numbers above, so they stay true
# on a rerun (on a root without instrument labels, from the track, loudness and
# centroid scores).

# %%
if labelled:
    lat_dom, lat_trk = scores.loc["latent / dominant instrument"], scores.loc["latent / track"]
    lift_dom = lat_dom["knn_purity"] / lat_dom["knn_chance"]
    lift_trk = lat_trk["knn_purity"] / lat_trk["knn_chance"]
    print(f"- In the latent space a frame's neighbours share its dominant instrument {lat_dom['knn_purity']:.0%} "
          f"of the time (chance {lat_dom['knn_chance']:.0%}, x{lift_dom:.1f}) and its track "
          f"{lat_trk['knn_purity']:.0%} of the time (chance {lat_trk['knn_chance']:.0%}, x{lift_trk:.1f}): "
          f"frames group {'more by song than by instrument' if lift_trk > lift_dom else 'more by instrument than by song'}.")
    print(f"- A whole-test-set K-Means agrees with the dominant instrument at ARI {agreement['ari']:.2f} "
          f"(NMI {agreement['nmi']:.2f}; NMI with the track {agreement['nmi_track']:.2f}).")
    multi = float(share[share.index >= 2].sum())
    print(f"- {multi:.0%} of the frames have two or more instruments sounding at once: a cluster of whole "
          "frames cannot hold one instrument there (see notebook 04).")
    kl_vals = kl_table["knn_purity"]
    print(f"- KL ablation: dominant-instrument k-NN purity {', '.join(f'{k}: {v:.2f}' for k, v in kl_vals.items())}.")
else:
    lat_s = scores.loc["latent"]
    if "track_knn_purity" in lat_s:
        print(f"- In the latent space a frame's 10 nearest neighbours come from its own track "
              f"{lat_s['track_knn_purity']:.0%} of the time (chance {lat_s['track_knn_chance']:.0%}, "
              f"x{lat_s['track_knn_purity'] / lat_s['track_knn_chance']:.1f}).")
    order = ("more by loudness than by brightness" if lat_s["loudness_knn_r"] > lat_s["centroid_knn_r"]
             else "more by brightness than by loudness")
    print(f"- A frame's loudness correlates with its neighbours' at r = {lat_s['loudness_knn_r']:.2f}, its "
          f"spectral centroid at r = {lat_s['centroid_knn_r']:.2f}: the latent space orders frames {order}.")
    for what, col, fmt in [("reconstruction SNR", "recon_snr_db", "{:+.1f} dB"),
                           ("loudness r", "loudness_knn_r", "{:.2f}"),
                           ("centroid r", "centroid_knn_r", "{:.2f}")]:
        arms = ", ".join(f"{a}: {fmt.format(v[col])}" for a, v in kl_rows.items())
        print(f"- KL ablation, {what}: {arms}.")
