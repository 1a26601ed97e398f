"""The MixIT separator against the amount of training audio (and a few other settings), one row each.

Every configuration in :data:`CONFIGS` is the preset's separator with a few fields changed, most of them
``train_tracks`` (train on only the first N training tracks: the curve of SI-SDRi against minutes of
training audio that issue 12 asks for). Each is trained for the same number of optimiser steps
(``--steps``), then scored on the test split exactly like the table (Hungarian SI-SDRi,
:func:`mss_helpers.evaluate_track.score_setting`) at k = n: feature-grouped, oracle-grouped and the
ungrouped outputs. The row also keeps the separator's own objective on the fixed validation pairs
(``val_mom_snr_db``: the mean SNR with which it re-builds each of the two mixtures of a mixture of
mixtures, at the end of training), so a reader can see whether the two move together.

The base of every row is the preset's data set *without* extra tracks (``extra_train = 0``); the
``extra*`` rows render the extra training tracks (the test split stays the same tracks; their
validation tracks are drawn from the larger training set, so ``val_mom_snr_db`` compares loosely).

One row per configuration goes to ``results_dir()/mixit_curve_<preset>.csv`` (rows of other
configurations already there are kept; a lock serialises writes, so two processes can run side by side).

Usage::

    python scripts/mixit_curve.py --list
    OMP_NUM_THREADS=1 python scripts/mixit_curve.py --steps 1000 tracks15 tracks30
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import search_csv  # scripts/search_csv.py (this folder is on sys.path when run as a script)

from mss_helpers import datasets, paths, separate
from mss_helpers.config import config_hash, get_config
from mss_helpers.evaluate_track import SILENT_REFERENCE_DB, score_setting
from mss_helpers.separator import load_separator, mixture_snr_db, train_separator
from mss_helpers.separator_group import mixit_settings

# name -> SeparatorConfig fields changed from the preset (``extra_train`` is a DataConfig field: extra
# training tracks rendered from the training scores, the test split unchanged). Keep the names stable:
# they key the CSV rows.
DATA_FIELDS = ("extra_train",)
CONFIGS: dict[str, dict] = {
    "tracks8": {"train_tracks": 8},
    "tracks15": {"train_tracks": 15},
    "tracks30": {"train_tracks": 30},
    "tracks60": {"train_tracks": 60},
    "all": {},
    "extra200": {"extra_train": 200},
    # Shorter excerpts: less musical context for telling the two songs of a mixture of mixtures apart.
    "clip0.5": {"clip_s": 0.5, "batch_size": 32},
    # Finer frequency resolution (the ideal ratio mask of the table uses 1024 / 256) at half the frames.
    "fft1024": {"n_fft": 1024, "hop": 256},
    "lr3e-3": {"lr": 3e-3},
    "lr3e-3_cos": {"lr": 3e-3, "lr_schedule": "cosine"},  # the same, decayed to 0 by a cosine
    # Longer excerpts: more musical context per example (the same audio per step: half the batch).
    "clip4": {"clip_s": 4.0, "batch_size": 4},
    # The architecture: dilated conv blocks (dilations 1..32, twice: ~2 s of context each side) 256 wide
    # instead of the BLSTM.
    "tdcn6_256": {"arch": "tdcn", "layers": 6, "hidden": 256},
    "hidden256": {"hidden": 256},  # a BLSTM twice as wide
    # Against over-separation: fewer outputs (2^4 partitions instead of 2^8).
    "outputs4": {"n_outputs": 4},
    # ABLATION (uses metadata MixIT must not): pair only training tracks with no instrument in common, so
    # re-building the two mixtures always means splitting instruments apart.
    "disjoint": {"pairing": "disjoint"},
}

DECODINGS = ("feature-grouped", "oracle-grouped", "ungrouped")
FIELDS = ["config", "data", "changes", "train_tracks", "train_minutes", "n_outputs", "clip_s", "steps",
          "minutes", "val_mom_snr_db"] + [f"{d}_si_sdri_db" for d in DECODINGS] + ["oracle_missed", "pairs"]


def curve_config(preset: str, name: str, steps: int, steps_per_epoch: int = 100):
    """The preset with ``CONFIGS[name]`` applied to its separator, ``steps`` steps long, no time cap."""
    cfg = get_config(preset)
    data = {k: v for k, v in CONFIGS[name].items() if k in DATA_FIELDS}
    separator = {k: v for k, v in CONFIGS[name].items() if k not in DATA_FIELDS}
    # The curve's base is the preset's rendered set without extra tracks, whatever the preset says, so a
    # row keeps its meaning when the preset changes.
    return cfg.replace(name=f"{preset}_curve_{name}", data={"extra_train": 0, **data},
                       separator={**separator, "epochs": math.ceil(steps / steps_per_epoch),
                                  "steps_per_epoch": steps_per_epoch, "max_minutes": None})


def training_minutes(cfg, root) -> tuple[int, float]:
    """How many training tracks the separator of ``cfg`` reads, and their minutes of audio."""
    tracks = datasets.load_tracks(root, "train")
    train, _ = datasets.split_train_val(tracks, cfg.data.n_val_tracks, cfg.data.seed)
    if cfg.separator.train_tracks is not None:
        train = train[:cfg.separator.train_tracks]
    rate = cfg.data.sample_rate
    seconds = sum(t.load("other", rate=rate, channels=cfg.data.channels).shape[1] / rate for t in train)
    return len(train), seconds / 60


def score_test(cfg, sep, root) -> dict:
    """Median SI-SDRi (dB) at k = n of each decoding of :data:`DECODINGS` of the separator ``sep`` (a
    :class:`~mss_helpers.separator.MixITSeparator`, any number of outputs) on the test split, and how
    many instruments each decoding left without an estimate (``<decoding>_missed``; ``pairs``: the
    instruments scored)."""
    rate = cfg.data.sample_rate
    values: dict = {d: [] for d in DECODINGS}
    missed = dict.fromkeys(DECODINGS, 0)
    pairs = 0
    for track in datasets.load_tracks(root, "test"):
        x = datasets.input_audio(track, cfg)
        refs = track.other_stems(rate=rate, channels=cfg.data.channels, min_db=SILENT_REFERENCE_DB)
        refs = {n: separate.fit_length(r, x.shape[1]) for n, r in refs.items()}
        pairs += len(refs)
        for setting in mixit_settings(x, refs, ["n"], cfg, sep):
            if setting["decoding"] not in DECODINGS or setting["k_label"] == "auto":
                continue
            rows = [r for r in score_setting(x, refs, setting, rate) if r["instrument"]]
            got = [r["si_sdri_db"] for r in rows if r["si_sdri_db"] is not None]
            values[setting["decoding"]] += got
            missed[setting["decoding"]] += len(rows) - len(got)
    return {**{f"{d}_si_sdri_db": round(float(np.median(v)), 3) for d, v in values.items()},
            **{f"{d}_missed": m for d, m in missed.items()}, "pairs": pairs}


def run_one(preset: str, name: str, steps: int) -> dict:
    cfg = curve_config(preset, name, steps)
    root = datasets.ensure_dataset(cfg)
    run_dir = paths.runs_dir() / "mixit_curve" / f"{name}_{config_hash(cfg, 'data', 'separator')}"
    train_separator(cfg, root=root, run_dir=run_dir)
    history, timing = search_csv.training_run(run_dir)
    n_tracks, minutes = training_minutes(cfg, root)
    s = cfg.separator
    scores = score_test(cfg, load_separator(cfg, run_dir=run_dir), root)
    return {"config": name, "data": Path(root).name, "changes": json.dumps(CONFIGS[name], sort_keys=True),
            "train_tracks": n_tracks, "train_minutes": round(minutes, 2), "n_outputs": s.n_outputs,
            "clip_s": s.clip_s, **timing, "val_mom_snr_db": round(mixture_snr_db(history), 3),
            **scores, "oracle_missed": scores["oracle-grouped_missed"]}


def write_row(path: Path, row: dict) -> None:
    """Insert or replace ``row`` (keyed by config and steps) in the CSV at ``path``, under a lock."""
    search_csv.write_row(path, row, FIELDS, paths.runs_dir() / "mixit_curve")


def main(argv=None) -> None:
    args = search_csv.parser(__doc__.splitlines()[0], CONFIGS, 1000).parse_args(argv)
    search_csv.run_configs(
        args, CONFIGS, paths.results_dir() / f"mixit_curve_{args.preset}.csv",
        lambda name: run_one(args.preset, name, args.steps), write_row,
        lambda row: (f"{row['train_minutes']} min of audio, feature-grouped "
                     f"{row['feature-grouped_si_sdri_db']:+.2f} dB, oracle-grouped "
                     f"{row['oracle-grouped_si_sdri_db']:+.2f} dB"))


if __name__ == "__main__":
    main()
