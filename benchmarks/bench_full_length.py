"""Full-length songs in a MUSDB18 layout: peak memory of the training data, and time per 4-minute song.

A stand-in set of MUSDB18-layout songs (``.stem.mp4``, 44.1 kHz stereo AAC) is
written from the preset's embedded test tracks, each tiled to ``--minutes``
(default 4), with :mod:`mss_helpers.standin`. Each step runs in a fresh process
so its peak RSS (VmHWM) is its own:

- ``data N``: decodes N songs once (the cache of :meth:`datasets.Track.load`)
  and draws a training epoch of clips from them with ``clips.ClipDataset``,
  as the autoencoder's training does. Run for two song counts: if memory grew
  with the number of songs, 150 songs would not fit; the difference per song is
  what a full MUSDB18 would add.
- ``methods``: one 4-minute test song ("other" at the preset's rate), separated
  by every method of the table (k = 3; MixIT when the preset's separator run
  exists), plus Open-Unmix's first stage on the 4-minute stereo mixture; wall
  time and peak memory per method.

The models are the preset's embedded-set runs (trained first when missing),
applied on purpose for timing: their estimates on this set are not scored.

    python benchmarks/bench_full_length.py [preset] [--minutes 4] [--songs 2 6]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from mss_helpers import paths

_DATA = r"""
import json, sys, time
from mss_helpers import datasets
from mss_helpers.clips import ClipDataset
from mss_helpers.config import get_config
cfg = get_config(sys.argv[1]); root = sys.argv[2]; n = int(sys.argv[3])
tracks = datasets.load_tracks(root, "train", split_scheme="folders")[:n]
t = time.perf_counter()
ds = ClipDataset(tracks, stem="input", clip_s=cfg.data.clip_s, rate=cfg.data.sample_rate,
                          channels=cfg.data.channels, n_clips=cfg.train.steps_per_epoch * cfg.train.batch_size,
                          seed=0, cfg=cfg)
prepare = time.perf_counter() - t
t = time.perf_counter()
for i in range(len(ds)):
    ds[i]
epoch = time.perf_counter() - t
hwm = [l for l in open("/proc/self/status") if l.startswith("VmHWM")][0].split()[1]
print(json.dumps({"songs": n, "clips": len(ds), "decode_and_check_s": round(prepare, 1),
                  "epoch_of_clips_s": round(epoch, 1), "peak_mb": round(int(hwm) / 1024, 1)}))
"""

_METHODS = r"""
import json, sys, time
import numpy as np
from mss_helpers import autoencoder, datasets, evaluate, model as model_mod
from mss_helpers.config import get_config
from mss_helpers.evaluate_track import needs_model
cfg = get_config(sys.argv[1]); root = sys.argv[2]; method = sys.argv[3]
track = datasets.load_tracks(root, "test", split_scheme="folders")[0]
def peak():
    return round(int([l for l in open("/proc/self/status") if l.startswith("VmHWM")][0].split()[1]) / 1024, 1)
if method == "openunmix":
    from mss_helpers import unmix, unmix_train
    sep = unmix_train.first_stage(cfg, progress=False)
    rate = unmix.unmix_rate(cfg)
    mix = track.load("mixture", rate=rate, channels=2)
    t = time.perf_counter()
    unmix.separate_other(sep, np.asarray(mix), rate)
    wall, settings, seconds = time.perf_counter() - t, 1, mix.shape[1] / rate
else:
    x = datasets.input_audio(track, cfg)
    model = None
    if needs_model([method]):
        model = model_mod.load_model(autoencoder.ensure_autoencoder(cfg, progress=False))[0]
    stereo = np.asarray(track.load("other", rate=cfg.data.sample_rate, channels=2)) if method == "pan" else None
    t = time.perf_counter()
    out = list(evaluate.separate_track(np.asarray(x), {}, [method], [3], cfg, model=model, stereo=stereo))
    wall, settings, seconds = time.perf_counter() - t, len(out), x.shape[1] / cfg.data.sample_rate
print(json.dumps({"method": method, "seconds_of_audio": round(seconds, 1), "wall_s": round(wall, 1),
                  "wall_s_per_180_s": round(wall * 180 / seconds, 1), "settings": settings, "peak_mb": peak()}))
"""


def standin_root(preset: str, minutes: float, n_songs: int) -> Path:
    """``data_dir()/bench_full_length_<preset>_<minutes>min_<n>``: n train songs + 1 test song, written once."""
    from mss_helpers import datasets, standin
    from mss_helpers.config import get_config

    cfg = get_config(preset)
    root = paths.data_dir() / f"bench_full_length_{preset}_{minutes:g}min_{n_songs}"
    if (root / "test").is_dir() and len(list((root / "train").glob("*.stem.mp4"))) == n_songs:
        return root
    source = datasets.load_tracks(datasets.ensure_dataset(cfg, progress=False), "test", split_scheme="folders")
    repeat = round(minutes * 60 / cfg.data.duration_s)
    songs = [source[i % len(source)] for i in range(n_songs + 1)]
    print(f"writing {n_songs + 1} songs of {minutes:g} min under {root} ...", flush=True)
    return standin.write_standin(root, {"train": songs[:n_songs], "test": songs[n_songs:]}, repeat=repeat)


def _run(script: str, *args, env=None) -> dict:
    proc = subprocess.run([sys.executable, "-c", script, *map(str, args)], capture_output=True, text=True, check=False,
                          timeout=3600, env=env)
    if proc.returncode != 0:
        raise RuntimeError(f"{args} failed:\n{proc.stderr[-2000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main(preset: str = "cpu", minutes: float = 4.0, songs=(2, 6)) -> dict:
    from mss_helpers.cluster import METHODS
    from mss_helpers.config import get_config

    root = standin_root(preset, minutes, max(songs))
    data_rows = []
    with tempfile.TemporaryDirectory() as cache:  # a fresh decode cache: the first read decodes
        env = dict(os.environ, MSS_DATA_DIR=cache)
        for n in songs:
            data_rows.append(_run(_DATA, preset, root, n, env=env))
    per_song = ((data_rows[-1]["peak_mb"] - data_rows[0]["peak_mb"]) / (songs[-1] - songs[0])
                if len(songs) > 1 else None)
    from mss_helpers.methods import trained_run_dir

    cfg = get_config(preset)
    methods = ["nmf", *METHODS, "latent_nmf", "pan"]
    # the learned separators whose cpu runs exist (make reproduce trains them)
    methods += [m for m, name in (("mixit", "separator"), ("vaebss", "vaebss"), ("deep_clustering", "deep_clustering"))
                if (trained_run_dir(name, cfg) / "done.json").is_file()]
    methods.append("openunmix")
    method_rows = [_run(_METHODS, preset, root, m) for m in methods]
    print("| songs | clips | decode + check s | epoch of clips s | peak MB |\n|---|---|---|---|---|")
    for r in data_rows:
        print(f"| {r['songs']} | {r['clips']} | {r['decode_and_check_s']} | {r['epoch_of_clips_s']} | {r['peak_mb']} |")
    if per_song is not None:
        print(f"memory per added {minutes:g}-minute song: {per_song:.1f} MB; 150 songs: "
              f"{data_rows[0]['peak_mb'] + per_song * (150 - songs[0]):.0f} MB (budget 6144 MB)")
    print("\n| method (k=3) | input s | wall s | per 3 min s | peak MB |\n|---|---|---|---|---|")
    for r in method_rows:
        print(f"| {r['method']} | {r['seconds_of_audio']:.0f} | {r['wall_s']} | {r['wall_s_per_180_s']} "
              f"| {r['peak_mb']} |")
    record = {"preset": preset, "cpu_count": os.cpu_count(), "minutes_per_song": minutes,
              "load_avg_1min_at_start": round(os.getloadavg()[0], 1),
              "budget": {"peak_mb_150_songs": 6144, "wall_s_per_180_s": 30},
              "data": data_rows, "mb_per_added_song": None if per_song is None else round(per_song, 1),
              "methods": method_rows}
    out = paths.results_dir()
    out.mkdir(parents=True, exist_ok=True)
    paths.atomic_write(out / "bench_full_length.json", lambda p: Path(p).write_text(json.dumps(record, indent=1)))
    return record


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("preset", nargs="?", default="cpu")
    ap.add_argument("--minutes", type=float, default=4.0)
    ap.add_argument("--songs", type=int, nargs="+", default=[2, 6])
    a = ap.parse_args()
    main(a.preset, a.minutes, tuple(a.songs))
