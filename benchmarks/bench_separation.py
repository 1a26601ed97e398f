"""Separating a long "other" stem: wall time, CPU time and peak memory per method (budget for 3 minutes:
<= 30 s, <= 2 GB on 2 cores).

The input is a test track's "other" stem repeated to 3 and to 10 minutes at the
preset's rate (k = 3). Each (method, length) runs in a fresh process, so its
peak RSS (VmHWM) is its own. NMF-based methods fit their templates on an
excerpt (``cluster.nmf_fit_s``) and solve the activations chunk by chunk, so
their time should grow about linearly with the length. The latent methods use
the preset's trained autoencoder (trained first if missing); ``--untrained``
times them with a randomly initialised model of the same size instead (same
cost, meaningless estimates). The load average at the start is recorded: on a
shared machine wall time is inflated by other work, CPU time much less so.

``--quality`` instead checks that chunking keeps the separation: NMF on
inputs made of consecutive test tracks joined end to end (``--join`` tracks
each), whole-input vs chunked, median SI-SDRi over (input, instrument) pairs.

    python benchmarks/bench_separation.py [preset] [--root DIR] [--untrained] [--quality]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

from mss_helpers import paths

RUNS = (("nmf", 180.0), ("kmeans", 180.0), ("latent_nmf", 180.0), ("nmf", 600.0), ("latent_nmf", 600.0))
_SCRIPT = r"""
import json, resource, sys, time
import numpy as np
from mss_helpers.config import get_config
from mss_helpers import autoencoder, datasets, evaluate, model as model_mod
cfg = get_config(sys.argv[1]); method = sys.argv[2]; seconds = float(sys.argv[3])
root = sys.argv[4] if sys.argv[4] != "-" else datasets.ensure_dataset(cfg, progress=False)
untrained = sys.argv[5] == "1"
x = datasets.input_audio(datasets.load_tracks(root, "test")[0], cfg)
reps = int(np.ceil(seconds * cfg.data.sample_rate / x.shape[1]))
x = np.tile(x, (1, reps))[:, : int(seconds * cfg.data.sample_rate)]
model = None
if method != "nmf":
    if untrained:
        model = model_mod.SEANetVAE(cfg.model, cfg.data.channels, cfg.data.sample_rate).eval()
    else:
        model, _ = model_mod.load_model(autoencoder.train_autoencoder(cfg, root=root, progress=False))
t, c = time.perf_counter(), time.process_time()
out = list(evaluate.separate_track(x, {}, [method], [3], cfg, model=model))
wall, cpu = time.perf_counter() - t, time.process_time() - c
hwm = [l for l in open("/proc/self/status") if l.startswith("VmHWM")][0].split()[1]
print(json.dumps({"method": method, "seconds_of_audio": seconds, "wall_s": round(wall, 1), "cpu_s": round(cpu, 1),
                  "peak_mb": round(int(hwm) / 1024, 1), "settings": len(out)}))
"""


def main(preset: str = "cpu", root: str | None = None, untrained: bool = False) -> list:
    rows = []
    for method, seconds in RUNS:
        load = os.getloadavg()[0]
        proc = subprocess.run([sys.executable, "-c", _SCRIPT, preset, method, str(seconds), root or "-",
                               "1" if untrained else "0"], capture_output=True, text=True, timeout=1800)
        if proc.returncode != 0:
            raise RuntimeError(f"{method} failed:\n{proc.stderr[-2000:]}")
        rows.append({**json.loads(proc.stdout.strip().splitlines()[-1]), "load_avg_1min": round(load, 1)})
    print("| method (k=3) | input s | wall s | cpu s | peak MB | load avg |\n|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['method']} | {r['seconds_of_audio']:.0f} | {r['wall_s']} | {r['cpu_s']} | {r['peak_mb']} "
              f"| {r['load_avg_1min']} |")
    out = paths.results_dir()
    out.mkdir(parents=True, exist_ok=True)
    record = {"preset": preset, "cpu_count": os.cpu_count(), "model": "untrained (timing only)" if untrained
              else "trained", "budget": {"seconds_of_audio": 180, "wall_s": 30, "peak_mb": 2048}, "rows": rows}
    paths.atomic_write(out / "bench_separation.json", lambda p: open(p, "w").write(json.dumps(record, indent=1)))
    return rows


def quality(preset: str = "cpu", root: str | None = None, join: int = 6) -> dict:
    """Median SI-SDRi of ``nmf`` (k = 2 and k = n) on joined test tracks: whole-input vs chunked NMF."""
    import numpy as np
    import pandas as pd

    from mss_helpers import datasets, evaluate
    from mss_helpers.config import get_config

    cfg = get_config(preset)
    tracks = datasets.load_tracks(root or datasets.ensure_dataset(cfg, progress=False), "test")
    rate, rows = cfg.data.sample_rate, []
    for start in range(0, len(tracks) - join + 1, join):
        group = tracks[start:start + join]
        xs = [datasets.input_audio(t, cfg) for t in group]
        refs_per = [t.other_stems(rate=rate, channels=cfg.data.channels) for t in group]
        names = sorted({n for r in refs_per for n in r})
        x = np.concatenate(xs, axis=1)
        refs = {n: np.concatenate([r.get(n, np.zeros_like(xi)) for r, xi in zip(refs_per, xs)], axis=1)
                for n in names}
        for label, fit_s in (("whole", None), ("chunked", cfg.cluster.nmf_fit_s)):
            c = cfg.replace(cluster={"nmf_fit_s": fit_s})
            for s in evaluate.separate_track(x, refs, ["nmf"], [2, "n"], c, seed=cfg.cluster.seed):
                for r in evaluate.score_setting(x, refs, s, rate):
                    rows.append({**r, "input": start // join, "nmf": label})
    df = pd.DataFrame(rows)
    df = df[(df.instrument != "") & df.estimate.notna()]
    med = df.groupby(["nmf", "k_label"]).si_sdri_db.median().unstack()
    print(f"median SI-SDRi (dB) of nmf on {df['input'].nunique()} inputs of {join} joined test tracks "
          f"({join * cfg.data.duration_s:.0f} s each):\n{med.round(2)}")
    return {f"{a}_k{k}": float(med.loc[a, k]) for a in med.index for k in med.columns}


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("preset", nargs="?", default="cpu")
    ap.add_argument("--root", default=None)
    ap.add_argument("--untrained", action="store_true")
    ap.add_argument("--quality", action="store_true")
    ap.add_argument("--join", type=int, default=6)
    a = ap.parse_args()
    if a.quality:
        quality(a.preset, a.root, a.join)
    else:
        main(a.preset, a.root, a.untrained)
