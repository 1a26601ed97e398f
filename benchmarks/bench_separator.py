"""Separating a 3-minute "other" with the trained MixIT separator (budget: <= 30 s, <= 2 GB).

The input is a test track's "other" stem repeated to 3 minutes at the preset's
rate, separated in chunks (``SeparatorConfig.chunk_s``, overlap-add) into the M
outputs, then grouped into k = 3 estimates by the non-learned (MFCC) features.
It runs in a fresh process so its peak RSS (VmHWM) is its own. The preset's
separator is trained first if missing (``separator.ensure_separator``).
"""

from __future__ import annotations

import json
import subprocess
import sys

from mss_helpers import paths

_SCRIPT = r"""
import json, sys, time
import numpy as np
from mss_helpers.config import get_config
from mss_helpers import datasets, separator as sep, separator_group as sg
cfg = get_config(sys.argv[1]); seconds = float(sys.argv[2]); s = cfg.separator
root = datasets.ensure_dataset(cfg, progress=False)
model = sep.load_separator(cfg, sep.ensure_separator(cfg, root=root, progress=False))
x = datasets.input_audio(datasets.load_tracks(root, "test")[0], cfg)
n = int(seconds * cfg.data.sample_rate)
x = np.tile(x, (1, int(np.ceil(n / x.shape[1]))))[:, :n]
t = time.perf_counter()
outputs = sep.separate_outputs(model, x, s.chunk_s, s.overlap_s, cfg.data.sample_rate)
t_sep = time.perf_counter() - t
F = sg.output_features(outputs, "feature", cfg)
est = sg.grouped_estimates(outputs, sg.group_outputs(F, sg.active_outputs(outputs, s.energy_floor_db), 3))
wall = time.perf_counter() - t
hwm = [l for l in open("/proc/self/status") if l.startswith("VmHWM")][0].split()[1]
print(json.dumps({"method": f"mixit (M={s.n_outputs}) + feature grouping, k=3", "separate_s": round(t_sep, 1),
                  "wall_s": round(wall, 1), "peak_mb": round(int(hwm) / 1024, 1), "estimates": len(est)}))
"""


def main(preset: str = "cpu", seconds: float = 180.0) -> dict:
    proc = subprocess.run([sys.executable, "-c", _SCRIPT, preset, str(seconds)], capture_output=True, text=True,
                          timeout=3600)
    if proc.returncode != 0:
        raise RuntimeError(f"bench_separator failed:\n{proc.stderr[-2000:]}")
    row = json.loads(proc.stdout.strip().splitlines()[-1])
    print(f"| {seconds:.0f} s input | separate s | separate + group s | peak MB |\n|---|---|---|---|")
    print(f"| {row['method']} | {row['separate_s']} | {row['wall_s']} | {row['peak_mb']} |")
    out = paths.results_dir()
    out.mkdir(parents=True, exist_ok=True)
    (out / "bench_separator.json").write_text(json.dumps(
        {"preset": preset, "seconds_of_audio": seconds, "budget": {"wall_s": 30, "peak_mb": 2048}, "row": row},
        indent=1))
    return row


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "cpu")
