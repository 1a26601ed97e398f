"""What a reproduction records about itself: the machine it ran on and the runs a safety net capped.

:func:`machine_record` (CPU model, cores, torch threads, a fixed CPU score) and :func:`capped_runs` go into
``results/reproduce_<preset>.json``; :func:`report_runs` names the training runs of the report that a
wall-clock safety net can stop (``reproduce --resume`` continues them).
"""

from __future__ import annotations

import os
from pathlib import Path


def report_runs(cfg) -> list[Path]:
    """The run folders of the report that a safety net can cap: the autoencoder, its KL-ablation arms and
    the MixIT separator (Open-Unmix's small model has no time limit)."""
    from .autoencoder import ae_run_dir, kl_ablation_configs
    from .separator import separator_run_dir

    return [ae_run_dir(cfg), *(ae_run_dir(c) for c in kl_ablation_configs(cfg).values()), separator_run_dir(cfg)]


def capped_runs(cfg) -> list[dict]:
    """``[{"run", "max_minutes", "step", "planned_steps"}]`` for each report run its safety net stopped."""
    from .train import capped

    return [{"run": d.name, **cap} for d in report_runs(cfg) if (cap := capped(d))]


def machine_record(score: bool = True) -> dict:
    """The machine a reproduction ran on: CPU model, cores, torch threads and a short fixed CPU score."""
    import platform

    import torch

    model = platform.processor() or platform.machine()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        names = [ln.split(":", 1)[1].strip() for ln in cpuinfo.read_text().splitlines() if ln.startswith("model name")]
        model = names[0] if names else model
    record = {"cpu_model": model, "cpu_count": os.cpu_count(), "torch_threads": torch.get_num_threads(),
              "torch": torch.__version__, "python": platform.python_version()}
    if score:
        from .autoencoder import cpu_score

        record["cpu_score"] = cpu_score()
    return record
