"""Rendering the embedded data set: wall time, disk size and silent instruments.

Budget for the cpu preset (architecture.md): <= 3 min, <= 2 GB on disk; and no
instrument of "other" below -60 dBFS over its excerpt (the manifest's count).
"""

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
        silent = json.loads((root / "manifest.json").read_text())["silent_instruments"]
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    result = {"preset": preset, "tracks": cfg.data.n_tracks, "seconds": round(seconds, 1),
              "disk_mb": round(size / 2**20, 1), "silent_instruments": silent,
              "budget": {"seconds": 180, "disk_mb": 2048, "silent_instruments": 0}}
    print(f"| preset | tracks | seconds | disk MB | silent instruments |\n|---|---|---|---|---|\n"
          f"| {preset} | {cfg.data.n_tracks} | {result['seconds']} | {result['disk_mb']} | {silent} |")
    out = paths.results_dir()
    out.mkdir(parents=True, exist_ok=True)
    (out / "bench_render.json").write_text(json.dumps(result, indent=1))
    return result


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "cpu")
