"""Rendering the embedded data set: wall time and disk size (budget: <= 3 min, <= 1 GB for the cpu preset)."""

from __future__ import annotations

import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

from mss_helpers import paths
from mss_helpers.config import get_config
from mss_helpers.render import render_dataset


def main(preset: str = "cpu") -> dict:
    cfg = get_config(preset)
    tmp = Path(tempfile.mkdtemp(prefix="bench_render_"))
    try:
        t = time.time()
        root = render_dataset(cfg, root=tmp / "set", progress=False)
        seconds = time.time() - t
        size = sum(p.stat().st_size for p in root.rglob("*") if p.is_file())
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    result = {"preset": preset, "tracks": cfg.data.n_tracks, "seconds": round(seconds, 1),
              "disk_mb": round(size / 2**20, 1), "budget": {"seconds": 180, "disk_mb": 1024}}
    print(f"| preset | tracks | seconds | disk MB |\n|---|---|---|---|\n"
          f"| {preset} | {cfg.data.n_tracks} | {result['seconds']} | {result['disk_mb']} |")
    out = paths.results_dir()
    out.mkdir(parents=True, exist_ok=True)
    (out / "bench_render.json").write_text(json.dumps(result, indent=1))
    return result


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "cpu")
