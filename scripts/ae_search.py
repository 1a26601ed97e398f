"""Screen autoencoder configurations on the cpu data set with one short, equal budget each.

Every configuration in :data:`CONFIGS` is :data:`BASE` (the cpu preset of issue 3) with a few fields
changed. Each is trained for the same number of optimiser steps (``--steps``;
its learning-rate schedule is squeezed into those steps), then scored like the
real run: median SNR of whole test tracks (``autoencoder.evaluate_reconstruction``).
One row per configuration goes to ``results_dir()/ae_search_<preset>.csv``
(rows of other configurations already there are kept, so several processes can
screen different configurations side by side; a lock file in the runs folder serialises writes).

Timing columns: ``minutes`` is the training wall time (it depends on what else
ran on the machine); ``cpu_s_per_step`` is the process CPU time per step, which
does not, and is what predicts the idle-machine time (see ``--threads``).

Usage::

    python scripts/ae_search.py --list
    OMP_NUM_THREADS=1 python scripts/ae_search.py --steps 600 --threads 1 base lat32 lat32_cos
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import search_csv  # scripts/search_csv.py (this folder is on sys.path when run as a script)

from mss_helpers import autoencoder, paths
from mss_helpers.config import config_hash, get_config

# What every configuration below starts from: the cpu preset as issue 3 left it (so that a row keeps its
# meaning when the preset changes). Applied on top of the preset given by --preset.
BASE = {"model": {"n_filters": 8, "ratios": (4, 4, 4), "latent_dim": 16, "lstm": 0, "encoder_dim": 32,
                  "logvar_init": None, "n_residual_layers": 1},
        "data": {"clip_s": 1.0},
        "train": {"clip_s": None, "batch_size": 8, "lr": 4e-3, "lr_schedule": "constant",
                  "lr_warmup_steps": 0, "mse_weight": 1000.0, "stft_weight": 1.0, "snr_weight": 0.0, "kl_warmup_steps": 200}}

# name -> (section -> changed fields), relative to BASE; "preset" is the preset itself, unchanged.
# Keep the names stable: they are the keys of the CSV rows.
CONFIGS: dict[str, dict] = {
    "preset": {},
    "base": {},
    "lat32": {"model": {"latent_dim": 32}},
    "lat32_cos": {"model": {"latent_dim": 32}, "train": {"lr_schedule": "cosine", "lr_warmup_steps": 50}},
    "lat32_1cycle": {"model": {"latent_dim": 32}, "train": {"lr_schedule": "onecycle"}},
    "lat32_cos_stft0.1": {"model": {"latent_dim": 32},
                          "train": {"lr_schedule": "cosine", "lr_warmup_steps": 50, "stft_weight": 0.1}},
    "lat32_cos_stft3": {"model": {"latent_dim": 32},
                        "train": {"lr_schedule": "cosine", "lr_warmup_steps": 50, "stft_weight": 3.0}},
    "lat32_cos_b4": {"model": {"latent_dim": 32},
                     "train": {"lr_schedule": "cosine", "lr_warmup_steps": 50, "batch_size": 4}},
    "lat32_cos_lr8e-3": {"model": {"latent_dim": 32},
                         "train": {"lr_schedule": "cosine", "lr_warmup_steps": 50, "lr": 8e-3}},
    "lat32_cos_clip0.5": {"model": {"latent_dim": 32}, "data": {"clip_s": 0.5},
                          "train": {"lr_schedule": "cosine", "lr_warmup_steps": 50}},
    "lat32_cos_snr": {"model": {"latent_dim": 32},
                      "train": {"lr_schedule": "cosine", "lr_warmup_steps": 50, "mse_weight": 0.0,
                                "snr_weight": 1.0}},
    "base_lv": {"model": {"logvar_init": -10.0}},
    "lat32_cos_lv": {"model": {"latent_dim": 32, "logvar_init": -10.0},
                     "train": {"lr_schedule": "cosine", "lr_warmup_steps": 50}},
    "lat32_cos_snr_lv": {"model": {"latent_dim": 32, "logvar_init": -10.0},
                         "train": {"lr_schedule": "cosine", "lr_warmup_steps": 50, "mse_weight": 0.0,
                                   "snr_weight": 1.0}},
    "lat32_cos_lv_clip0.5": {"model": {"latent_dim": 32, "logvar_init": -10.0}, "data": {"clip_s": 0.5},
                             "train": {"lr_schedule": "cosine", "lr_warmup_steps": 50}},
    "lat32_cos_lv_clip0.5_stft0.1": {"model": {"latent_dim": 32, "logvar_init": -10.0},
                                     "data": {"clip_s": 0.5},
                                     "train": {"lr_schedule": "cosine", "lr_warmup_steps": 50,
                                               "stft_weight": 0.1}},
    "lat32_cos_lv_clip0.5_lr8e-3": {"model": {"latent_dim": 32, "logvar_init": -10.0},
                                    "data": {"clip_s": 0.5},
                                    "train": {"lr_schedule": "cosine", "lr_warmup_steps": 50, "lr": 8e-3}},
    "lat32_cos_lv_clip0.5_b4": {"model": {"latent_dim": 32, "logvar_init": -10.0}, "data": {"clip_s": 0.5},
                                "train": {"lr_schedule": "cosine", "lr_warmup_steps": 50, "batch_size": 4}},
    "lat32_cos_f12": {"model": {"latent_dim": 32, "n_filters": 12},
                      "train": {"lr_schedule": "cosine", "lr_warmup_steps": 50}},
    # Round 3 (capacity): a wider latent (still compressing), wider convolutions.
    "lat48_cos_lv_clip0.5": {"model": {"latent_dim": 48, "logvar_init": -10.0}, "data": {"clip_s": 0.5},
                             "train": {"lr_schedule": "cosine", "lr_warmup_steps": 50}},
    "lat32_cos_lv_clip0.5_f16": {"model": {"latent_dim": 32, "logvar_init": -10.0, "n_filters": 16},
                                 "data": {"clip_s": 0.5},
                                 "train": {"lr_schedule": "cosine", "lr_warmup_steps": 50}},
}


def _with(parent: str, **sections) -> dict:
    """``CONFIGS[parent]`` with the given fields of its sections changed (a new dict)."""
    changes = {section: dict(fields) for section, fields in CONFIGS[parent].items()}
    for section, fields in sections.items():
        changes.setdefault(section, {}).update(fields)
    return changes


# Round 4 (the SEANet itself, and the loss), from round 2's best: identity shortcuts in the residual blocks
# (skip), twice their hidden channels (c1), two down-sampling stages of 8 instead of three of 4 (r88), one
# stage of 64 (r64), four stages (r2244), no STFT term (stft0: the waveform MSE alone), no residual blocks
# at all (res0).
_R4 = "lat32_cos_lv_clip0.5"
CONFIGS[f"{_R4}_skip"] = _with(_R4, model={"true_skip": True})
CONFIGS[f"{_R4}_c1"] = _with(_R4, model={"compress": 1})
CONFIGS[f"{_R4}_skip_c1"] = _with(_R4, model={"true_skip": True, "compress": 1})
CONFIGS[f"{_R4}_c1_res2"] = _with(f"{_R4}_c1", model={"n_residual_layers": 2})
CONFIGS[f"{_R4}_skip_c1_snr"] = _with(f"{_R4}_skip_c1", train={"mse_weight": 0.0, "snr_weight": 1.0})
CONFIGS[f"{_R4}_skip_c1_mse3000"] = _with(f"{_R4}_skip_c1", train={"mse_weight": 3000.0})
for _ratios in ((8, 8), (2, 2, 4, 4), (64,)):
    _name = f"{_R4}_skip_c1_r{''.join(map(str, _ratios))}"
    CONFIGS[_name] = _with(f"{_R4}_skip_c1", model={"ratios": _ratios})
_R88 = f"{_R4}_skip_c1_r88"
CONFIGS[f"{_R88}_f16"] = _with(_R88, model={"n_filters": 16})
CONFIGS[f"{_R88}_lr8e-3"] = _with(_R88, train={"lr": 8e-3})
CONFIGS[f"{_R88}_lr2e-3"] = _with(_R88, train={"lr": 2e-3})
CONFIGS[f"{_R88}_stft0"] = _with(_R88, train={"stft_weight": 0.0})
CONFIGS[f"{_R88}_kl0"] = _with(_R88, train={"kl_weight": 0.0})
CONFIGS[f"{_R88}_snronly"] = _with(_R88, train={"stft_weight": 0.0, "mse_weight": 0.0, "snr_weight": 1.0})
CONFIGS[f"{_R4}_skip_c1_stft0"] = _with(f"{_R4}_skip_c1", train={"stft_weight": 0.0})
CONFIGS[f"{_R4}_skip_c1_r64_stft0"] = _with(f"{_R4}_skip_c1_r64", train={"stft_weight": 0.0})
CONFIGS[f"{_R88}_stft0_lr8e-3"] = _with(f"{_R88}_stft0", train={"lr": 8e-3})
CONFIGS[f"{_R88}_stft0_f16"] = _with(f"{_R88}_stft0", model={"n_filters": 16})
CONFIGS[f"{_R88}_stft0_b4"] = _with(f"{_R88}_stft0", train={"batch_size": 4})
# the cpu preset's network (true_skip and compress change nothing without residual blocks)
CONFIGS[f"{_R88}_stft0_res0"] = _with(f"{_R88}_stft0", model={"n_residual_layers": 0})
CONFIGS[f"{_R88}_stft0_res0_f16"] = _with(f"{_R88}_stft0_res0", model={"n_filters": 16})

FIELDS = ["config", "data", "changes", "latent_dim", "compression", "n_filters", "lr", "lr_schedule",
          "batch_size", "clip_s", "mse_weight", "stft_weight", "snr_weight", "steps", "threads", "minutes",
          "cpu_s_per_step", "best_val", "val_mse", "snr_db", "si_sdr_db", "cosine"]


def search_config(preset: str, name: str, steps: int, steps_per_epoch: int = 100):
    """:data:`BASE` (for ``"preset"``: the preset) with ``CONFIGS[name]`` applied, ``steps`` steps long."""
    base = get_config(preset)
    if name != "preset":
        base = base.replace(**BASE)
    changes = CONFIGS[name]
    cfg = base.replace(**{k: v for k, v in changes.items() if k != "train"})
    cfg = cfg.replace(name=f"{preset}_search_{name}",
                      train={**changes.get("train", {}), "epochs": math.ceil(steps / steps_per_epoch),
                             "steps_per_epoch": steps_per_epoch, "max_minutes": None})
    return cfg


def run_one(preset: str, name: str, steps: int, threads: int, root=None) -> dict:
    """Train configuration ``name`` (cached by its hash) and score it on the test split of ``root``."""
    from mss_helpers.model import describe

    cfg = search_config(preset, name, steps)
    run_dir = paths.runs_dir() / "ae_search" / f"{name}_{config_hash(cfg, 'data', 'model', 'train')}"
    autoencoder.train_autoencoder(cfg, root=root, run_dir=run_dir)
    history, timing = search_csv.training_run(run_dir)
    rec = autoencoder.evaluate_reconstruction(cfg, run_dir, root=root, write=False)
    epochs = history["epochs"]
    best = next(e for e in epochs if e["epoch"] == history["best_epoch"])
    n_steps = timing["steps"]
    cpu_s = sum(e.get("cpu_seconds", math.nan) for e in epochs)
    t, m = cfg.train, cfg.model
    data_root = json.loads((run_dir / "config.json").read_text())["config"]["data_root"]
    return {"config": name, "data": Path(data_root).name,
            "changes": json.dumps(CONFIGS[name], sort_keys=True), "latent_dim": m.latent_dim,
            "compression": round(describe(cfg)["compression"], 2), "n_filters": m.n_filters, "lr": t.lr,
            "lr_schedule": t.lr_schedule, "batch_size": t.batch_size, "clip_s": autoencoder.train_clip_s(cfg),
            "mse_weight": t.mse_weight, "stft_weight": t.stft_weight, "snr_weight": t.snr_weight,
            **timing, "threads": threads,
            "cpu_s_per_step": round(cpu_s / n_steps, 4), "best_val": round(history["best_val"], 5),
            "val_mse": best["val"]["mse"], "snr_db": round(rec["median"]["snr_db"], 3),
            "si_sdr_db": round(rec["median"]["si_sdr_db"], 3), "cosine": round(rec["median"]["cosine"], 4)}


def _data_of_run(name: str, steps) -> str:
    """The data set folder a finished search run of ``name`` with ``steps`` steps trained on."""
    for run_dir in sorted((paths.runs_dir() / "ae_search").glob(f"{name}_*")):
        done, cfg = run_dir / "done.json", run_dir / "config.json"
        if run_dir.name[len(name) + 1:].isalnum() and done.is_file() and cfg.is_file() \
                and str(json.loads(done.read_text())["step"]) == str(steps):
            return Path(json.loads(cfg.read_text())["config"]["data_root"]).name
    return "unrecorded"


def _fix_data(row: dict) -> None:
    """Rows written before the data column existed: read it from their run."""
    if row.get("data") in (None, "", "unrecorded"):
        row["data"] = _data_of_run(row["config"], row["steps"])


def write_row(path, row: dict) -> None:
    """Insert or replace ``row`` (keyed by config and steps) in the CSV at ``path``, under a lock."""
    search_csv.write_row(path, row, FIELDS, paths.runs_dir() / "ae_search", fix_row=_fix_data)


def main(argv=None) -> None:
    parser = search_csv.parser(__doc__.splitlines()[0], CONFIGS, 600)
    parser.add_argument("--root", default=None,
                        help="data set root (default: the preset's embedded set, rendered if missing)")
    args = parser.parse_args(argv)
    search_csv.run_configs(
        args, CONFIGS, paths.results_dir() / f"ae_search_{args.preset}.csv",
        lambda name: run_one(args.preset, name, args.steps, args.threads, args.root), write_row,
        lambda row: (f"SNR {row['snr_db']:.2f} dB after {row['steps']} steps, "
                     f"{row['cpu_s_per_step']:.3f} CPU s/step"))


if __name__ == "__main__":
    main()
