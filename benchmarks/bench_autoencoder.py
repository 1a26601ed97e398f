"""SEANet VAE speed and memory: training step time, encode+decode real-time factor, peak memory.

For each preset (random weights; speed does not depend on them):

- ``train_step_s``: one AdamW step (forward, VAE loss, backward) on a batch of
  clips (the preset's ``batch_size`` x ``clip_s``; ``paper`` uses a batch of 2
  on a CPU and reports it), median of a few steps after a warm-up step;
  ``train_step_s_1thread`` the same with one torch thread;
- ``rtf``: wall time of ``model.reconstruct`` (chunked encode + decode) divided
  by the audio duration (below 1 = faster than real time).

First the peak resident memory of reconstructing a 3-minute track at ``preset``
(default ``cpu``), measured in a fresh subprocess so nothing else inflates it
(budget: <= 2 GB). Writes ``results_dir()/bench_autoencoder.json``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import numpy as np
import torch

from mss_helpers import paths
from mss_helpers.config import get_config
from mss_helpers.losses import vae_loss
from mss_helpers.model import SEANetVAE, describe, reconstruct
from mss_helpers.autoencoder import train_clip_s

PRESETS = ("tiny", "cpu", "paper")

# Peak RSS is read from /proc/self/status (VmHWM, reset by exec); ru_maxrss would also count the
# parent's peak, which a forked child inherits on Linux.
_MEMORY_SCRIPT = """
import resource, sys, time
def peak_mib():
    try:
        for line in open("/proc/self/status"):
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
import numpy as np, torch
from mss_helpers.config import get_config
from mss_helpers.model import SEANetVAE, reconstruct
cfg = get_config(sys.argv[1]); seconds = float(sys.argv[2])
model = SEANetVAE(cfg.model, cfg.data.channels, cfg.data.sample_rate).eval()
audio = (0.1 * np.random.default_rng(0).standard_normal(
    (cfg.data.channels, int(seconds * cfg.data.sample_rate)))).astype(np.float32)
before = peak_mib()
t = time.perf_counter(); out = reconstruct(model, audio); wall = time.perf_counter() - t
assert out.shape == audio.shape
print(before, peak_mib(), wall)
"""


def _train_step_s(cfg, batch: int, repeats: int = 3, threads: int | None = None) -> float:
    before = torch.get_num_threads()
    if threads:
        torch.set_num_threads(threads)
    try:
        return _train_step_s_now(cfg, batch, repeats)
    finally:
        torch.set_num_threads(before)


def _train_step_s_now(cfg, batch: int, repeats: int) -> float:
    model = SEANetVAE(cfg.model, cfg.data.channels, cfg.data.sample_rate)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.train.lr)
    x = 0.1 * torch.randn(batch, cfg.data.channels, int(train_clip_s(cfg) * cfg.data.sample_rate))
    times = []
    for step in range(repeats + 1):  # the first step warms up allocators and is dropped
        t = time.perf_counter()
        recon, mean, logvar = model(x)
        loss, _ = vae_loss(recon, x, mean, logvar, step, cfg.train, sample_rate=cfg.data.sample_rate)
        opt.zero_grad()
        loss.backward()
        opt.step()
        times.append(time.perf_counter() - t)
    return float(np.median(times[1:]))


def _rtf(cfg, seconds: float) -> float:
    model = SEANetVAE(cfg.model, cfg.data.channels, cfg.data.sample_rate).eval()
    audio = (0.1 * np.random.default_rng(0).standard_normal(
        (cfg.data.channels, int(seconds * cfg.data.sample_rate)))).astype(np.float32)
    t = time.perf_counter()
    reconstruct(model, audio)
    return (time.perf_counter() - t) / seconds


def peak_memory_mb(preset: str = "cpu", seconds: float = 180.0) -> dict:
    """Peak RSS (MiB) of reconstructing ``seconds`` of noise at ``preset``, in a fresh process."""
    out = subprocess.run([sys.executable, "-c", _MEMORY_SCRIPT, preset, str(seconds)], capture_output=True,
                         text=True, check=True, env={**os.environ, "PYTHONWARNINGS": "ignore"})
    before, peak, wall = (float(v) for v in out.stdout.split()[-3:])
    return {"preset": preset, "seconds_of_audio": seconds, "rss_before_mb": round(before, 1),
            "peak_rss_mb": round(peak, 1), "wall_s": round(wall, 2), "budget_mb": 2048}


def main(preset: str = "cpu") -> dict:
    memory = peak_memory_mb(preset)  # first, before this process grows
    rows = []
    for name in PRESETS:
        cfg = get_config(name)
        batch = 2 if name == "paper" else cfg.train.batch_size
        info = describe(cfg)
        rows.append({**info, "batch": batch, "clip_s": train_clip_s(cfg),
                     "train_step_s": round(_train_step_s(cfg, batch), 3),
                     # one thread: what scripts/ae_search.py's cpu_s_per_step measures; the ratio to the
                     # line above is what a second core buys (predicting notebook 02 from CPU seconds)
                     "train_step_s_1thread": (None if name == "paper"  # slow, and not a CPU preset
                                              else round(_train_step_s(cfg, batch, threads=1), 3)),
                     "rtf": round(_rtf(cfg, 5.0 if name == "paper" else 20.0), 4)})
    print("| preset | params | hop | frames/s | compression | batch x clip | train step s | encode+decode RTF |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['preset']} | {r['params']:,} | {r['hop']} | {r['frame_rate']:.1f} | {r['compression']:.2f} "
              f"| {r['batch']} x {r['clip_s']} s | {r['train_step_s']:.3f} | {r['rtf']:.4f} |")
    print(f"3-minute track at {preset}: peak RSS {memory['peak_rss_mb']:.0f} MiB "
          f"(process before: {memory['rss_before_mb']:.0f} MiB), {memory['wall_s']:.1f} s")
    result = {"torch_threads": torch.get_num_threads(), "rows": rows, "memory_3min": memory}
    out = paths.results_dir()
    out.mkdir(parents=True, exist_ok=True)
    (out / "bench_autoencoder.json").write_text(json.dumps(result, indent=1))
    return result


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="cpu", help="preset of the 3-minute memory measurement")
    main(parser.parse_args().preset)
