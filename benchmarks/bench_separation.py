"""Separating a 3-minute "other" stem: wall time and peak memory per method (budget: <= 30 s, <= 2 GB).

The input is a test track's "other" stem repeated to 3 minutes at the preset's
rate. Each method runs in a fresh process, so its peak RSS (VmHWM) is its own.
The latent methods use the preset's trained autoencoder (trained first if missing).
"""

from __future__ import annotations

import json
import subprocess
import sys

from mss_helpers import paths

METHODS = ("nmf", "kmeans", "latent_nmf")
_SCRIPT = r"""
import json, sys, time
import numpy as np
from mss_helpers.config import get_config
from mss_helpers import datasets, evaluate, model as model_mod, train
cfg = get_config(sys.argv[1]); method = sys.argv[2]; seconds = float(sys.argv[3])
root = datasets.ensure_dataset(cfg, progress=False)
x = datasets.input_audio(datasets.load_tracks(root, "test")[0], cfg)
reps = int(np.ceil(seconds * cfg.data.sample_rate / x.shape[1]))
x = np.tile(x, (1, reps))[:, : int(seconds * cfg.data.sample_rate)]
model = None
if method != "nmf":
    model, _ = model_mod.load_model(train.train_autoencoder(cfg, root=root, progress=False))
t = time.perf_counter()
out = list(evaluate.separate_track(x, {}, [method], [3], cfg, model=model))
wall = time.perf_counter() - t
hwm = [l for l in open("/proc/self/status") if l.startswith("VmHWM")][0].split()[1]
print(json.dumps({"method": method, "wall_s": round(wall, 1), "peak_mb": round(int(hwm) / 1024, 1),
                  "settings": len(out)}))
"""


def main(preset: str = "cpu", seconds: float = 180.0) -> list:
    rows = []
    for method in METHODS:
        proc = subprocess.run([sys.executable, "-c", _SCRIPT, preset, method, str(seconds)],
                              capture_output=True, text=True, timeout=1800)
        if proc.returncode != 0:
            raise RuntimeError(f"{method} failed:\n{proc.stderr[-2000:]}")
        rows.append(json.loads(proc.stdout.strip().splitlines()[-1]))
    print(f"| method (k=3, {seconds:.0f} s input) | wall s | peak MB |\n|---|---|---|")
    for r in rows:
        print(f"| {r['method']} | {r['wall_s']} | {r['peak_mb']} |")
    out = paths.results_dir()
    out.mkdir(parents=True, exist_ok=True)
    (out / "bench_separation.json").write_text(json.dumps({"preset": preset, "seconds_of_audio": seconds,
                                                          "budget": {"wall_s": 30, "peak_mb": 2048},
                                                          "rows": rows}, indent=1))
    return rows


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "cpu")
