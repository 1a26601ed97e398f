"""The SEANet VAE's runs: training it, its reconstruction report, the KL ablation, the ``train`` command.

Training goes through the generic loop :func:`mss_helpers.train.fit`; this module
knows what the autoencoder needs: its run folder (``runs/ae_<preset>_<hash>``),
its loss, its clip loaders, the test-set reconstruction scores
(``results/autoencoder_<preset>.json``), the KL ablation
(``results/kl_ablation_<preset>.json``) and the ``ensure_*`` functions that let a
notebook opened on its own build what it needs.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from . import paths
from .config import Config, config_hash, config_to_dict, get_config, git_commit
from .train import add_run_arguments, finished_run, fit, interrupted, lr_factor, torch_threads, write_json


def ae_run_dir(cfg: Config, root=None) -> Path:
    """Default run folder, keyed by everything that shapes the trained model: the config and, for a
    root other than the preset's own set, that root's files (:func:`datasets.data_key`)."""
    from .datasets import data_key

    return paths.runs_dir() / f"ae_{cfg.name}_{config_hash(cfg, 'data', 'model', 'train')}{data_key(cfg, root)}"


def vae_loss_fn(cfg: Config):
    """``loss_fn(model, batch, step)`` for :func:`fit`: the VAE loss of a batch of clips.

    In eval mode (validation) the KL weight is the full, post-warm-up one, so
    validation losses of different epochs compare.
    """
    from .losses import vae_loss

    def loss_fn(model, batch, step):
        x = batch[0] if isinstance(batch, (list, tuple)) else batch  # (B, C, T)
        recon, mean, logvar = model(x)
        return vae_loss(recon, x, mean, logvar, step if model.training else None, cfg.train,
                        sample_rate=cfg.data.sample_rate)

    return loss_fn


def train_clip_s(cfg: Config) -> float:
    """Seconds per autoencoder training clip: ``TrainConfig.clip_s``, else ``DataConfig.clip_s``.

    The autoencoder's own field, so changing it does not touch the data section (whose hash keys
    the Open-Unmix and separator runs).
    """
    return float(cfg.train.clip_s or cfg.data.clip_s)


def _loaders(cfg: Config, root):
    from torch.utils.data import DataLoader

    from . import datasets
    from .clips import ClipDataset

    tracks = datasets.load_tracks(root, "train")
    train_tracks, val_tracks = datasets.split_train_val(tracks, cfg.data.n_val_tracks, cfg.data.seed)
    # stem="input" reads datasets.input_audio: the "other" stem, or Open-Unmix's estimate of it.
    common = dict(stem="input", clip_s=train_clip_s(cfg), rate=cfg.data.sample_rate,
                  channels=cfg.data.channels, cfg=cfg)
    train_ds = ClipDataset(train_tracks, n_clips=cfg.train.steps_per_epoch * cfg.train.batch_size,
                           seed=cfg.train.seed, random=True, **common)
    val_ds = ClipDataset(val_tracks, n_clips=cfg.train.val_clips, seed=cfg.train.seed + 1,
                         random=False, **common)
    loader = dict(batch_size=cfg.train.batch_size, num_workers=cfg.train.num_workers)
    return (DataLoader(train_ds, shuffle=False, drop_last=True, **loader),
            DataLoader(val_ds, shuffle=False, **loader))


def train_autoencoder(cfg: Config, root=None, run_dir=None, resume: bool = False, force: bool = False,
                      progress: bool = True) -> Path:
    """Train the SEANet VAE of ``cfg`` on the training split; return the run folder.

    A finished run (``done.json`` present) is reused as a cache unless ``force``;
    ``force`` deletes its checkpoints and trains again; ``resume`` continues an
    interrupted run, or one the safety net (``TrainConfig.max_minutes``) capped. ``root`` defaults to the
    preset's embedded data set (rendered if missing). ``cfg.data.n_val_tracks``
    training tracks are held out for validation; test tracks are never read.
    """
    from . import datasets
    from .model import SEANetVAE

    run_dir = Path(run_dir) if run_dir else ae_run_dir(cfg, root)
    if finished_run(run_dir, force, resume):
        return run_dir
    root = Path(root) if root else datasets.ensure_dataset(cfg)
    train_loader, val_loader = _loaders(cfg, root)
    model = SEANetVAE(cfg.model, cfg.data.channels, cfg.data.sample_rate)
    t = cfg.train
    total = t.epochs * t.steps_per_epoch

    def schedule(step):
        return lr_factor(step, total, t.lr_schedule, t.lr_warmup_steps)

    with torch_threads(t.torch_threads):
        fit(model, vae_loss_fn(cfg), train_loader, val_loader, run_dir, epochs=t.epochs,
            steps_per_epoch=t.steps_per_epoch, lr=t.lr, weight_decay=t.weight_decay, grad_clip=t.grad_clip,
            seed=t.seed, config={**config_to_dict(cfg), "data_root": str(root)}, resume=resume,
            max_minutes=t.max_minutes, progress=progress, lr_schedule=schedule)
    return run_dir


RECON_KEYS = ("mse", "snr_db", "spectral_mse", "cosine", "si_sdr_db")


def evaluate_reconstruction(cfg: Config, run_dir, root=None, split: str = "test",
                            write: bool = True, progress: bool = False) -> dict:
    """Reconstruction quality of the trained autoencoder on WHOLE tracks of ``split``.

    Each track's input (``datasets.input_audio``) is encoded and decoded in
    chunks and scored with ``metrics.reconstruction_metrics``. With ``write``
    the result goes to ``results_dir()/autoencoder_<preset>.json``.

    Returns
    -------
    dict ``{"preset", "commit", "run_dir", "split", "median": {5 metrics}, "per_track": [...]}``
    """
    from tqdm.auto import tqdm

    from . import datasets, metrics
    from .model import load_model, reconstruct

    model, _ = load_model(run_dir)
    root = Path(root) if root else datasets.ensure_dataset(cfg)
    tracks = datasets.load_tracks(root, split)
    if not tracks:
        raise ValueError(f"no {split} tracks under {root}")
    rows = []
    for track in tqdm(tracks, desc=f"reconstruct {split}", disable=not progress):
        ref = datasets.input_audio(track, cfg)
        est = reconstruct(model, ref)
        m = metrics.reconstruction_metrics(ref, est, cfg.data.sample_rate)
        rows.append({"track": track.name, **{k: float(m[k]) for k in RECON_KEYS}})
    result = {"preset": cfg.name, "commit": git_commit(), "run_dir": str(Path(run_dir)), "split": split,
              "median": {k: float(np.median([r[k] for r in rows])) for k in RECON_KEYS}, "per_track": rows}
    if write:
        write_json(paths.results_dir() / f"autoencoder_{cfg.name}.json", result)
    return result


def kl_ablation_configs(cfg: Config, epochs: int | None = None) -> dict[str, Config]:
    """The two arms of the KL ablation: ``kl_weight=0`` and the preset's weight, same budget.

    ``epochs`` (default: an eighth of the preset's, at least 1) keeps the
    ablation inside the reproduce budget; both arms get the same (each with its
    learning-rate schedule over its own, shorter run).
    """
    epochs = epochs or max(1, cfg.train.epochs // 8)
    return {"kl0": cfg.replace(train={"kl_weight": 0.0, "epochs": epochs}),
            "kl": cfg.replace(train={"epochs": epochs})}


def kl_ablation(cfg: Config, root=None, epochs: int | None = None, force: bool = False,
                progress: bool = True) -> dict:
    """Train (or reuse) both arms of the KL ablation and compare their reconstruction.

    Writes ``results_dir()/kl_ablation_<preset>.json`` =
    ``{"preset", "epochs", "arms": {"kl0"|"kl": {"kl_weight", "run_dir", "median": {...}}}}``.
    """
    arms = {}
    for key, arm_cfg in kl_ablation_configs(cfg, epochs).items():
        run_dir = train_autoencoder(arm_cfg, root=root, resume=interrupted(ae_run_dir(arm_cfg, root)), force=force,
                                    progress=progress)
        rec = evaluate_reconstruction(arm_cfg, run_dir, root=root, write=False)
        arms[key] = {"kl_weight": arm_cfg.train.kl_weight, "run_dir": str(run_dir), "median": rec["median"]}
    result = {"preset": cfg.name, "commit": git_commit(), "epochs": arm_cfg.train.epochs, "arms": arms}
    write_json(paths.results_dir() / f"kl_ablation_{cfg.name}.json", result)
    return result


# --- CLI -----------------------------------------------------------------------------------


def add_arguments(parser) -> None:
    """Arguments of ``python -m mss_helpers train``."""
    add_run_arguments(parser, "ae")
    parser.add_argument("--kl-weight", type=float, default=None, help="override TrainConfig.kl_weight")
    parser.add_argument("--no-eval", action="store_true", help="skip the test-set reconstruction report")


def run(args) -> int:
    """Train (or reuse) the autoencoder, then report test-set reconstruction."""
    cfg = get_config(args.preset)
    if args.kl_weight is not None:
        cfg = cfg.replace(train={"kl_weight": args.kl_weight})
    run_dir = train_autoencoder(cfg, root=args.root, run_dir=args.run_dir, resume=args.resume,
                                force=args.force)
    print(f"run: {run_dir}")
    if not args.no_eval:
        # an overridden KL weight, or another data set, is an experiment: print it, keep the report's file
        from .datasets import data_key

        own = not data_key(cfg, args.root) and args.run_dir is None
        result = evaluate_reconstruction(cfg, run_dir, root=args.root, write=args.kl_weight is None and own)
        print("test-set reconstruction (median over tracks): "
              + ", ".join(f"{k} {v:.4g}" for k, v in result["median"].items()))
    return 0


# --- what a notebook opened on its own needs -------------------------------------------------


def ensure_autoencoder(cfg: Config, root=None, progress: bool = True) -> Path:
    """The finished autoencoder run of ``cfg``: reused when cached, trained (or resumed) now otherwise.

    The cache key is :func:`ae_run_dir` (the config hash), so a changed preset trains a new
    run; an interrupted one (``last.pt`` without ``done.json``) continues where it stopped.
    """
    return train_autoencoder(cfg, root=root, resume=interrupted(ae_run_dir(cfg, root)), progress=progress)


def ensure_kl_ablation(cfg: Config, root=None, progress: bool = True) -> dict:
    """The KL ablation record: ``results_dir()/kl_ablation_<preset>.json`` when both of its runs
    are this config's finished runs, else :func:`kl_ablation` (reusing whichever arm is cached).

    A committed record alone is not enough: its runs may be absent (a fresh checkout) or
    belong to an older preset (another hash).
    """
    path = paths.results_dir() / f"kl_ablation_{cfg.name}.json"
    wanted = {arm: ae_run_dir(c) for arm, c in kl_ablation_configs(cfg).items()}
    record = json.loads(path.read_text()) if path.is_file() else {}
    arms = record.get("arms", {})
    here = set(arms) == set(wanted) and all(
        Path(arms[a]["run_dir"]).name == d.name and (d / "done.json").is_file() for a, d in wanted.items())
    if here:
        for arm, d in wanted.items():
            arms[arm]["run_dir"] = str(d)  # where the run is in this checkout
        return record
    return kl_ablation(cfg, root=root, progress=progress)


# --- a fixed CPU score, so a reader can compare timings between machines --------------------------


def cpu_score(steps: int = 100, seed: int = 0) -> dict:
    """Seconds for ``steps`` training steps of the cpu preset's autoencoder on fixed noise, one torch thread.

    The same work on every machine (batch 8 x 0.5 s at 16 kHz, after 5 warm-up steps), whatever the
    preset being reproduced; recorded in ``results/reproduce_<preset>.json`` beside the step times.
    """
    import time

    from .model import SEANetVAE

    cfg = get_config("cpu")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        gen = torch.Generator().manual_seed(seed)
        model = SEANetVAE(cfg.model, 1, cfg.data.sample_rate)
        opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
        x = 0.1 * torch.randn(cfg.train.batch_size, 1, int(cfg.data.sample_rate * train_clip_s(cfg)), generator=gen)
        loss_fn = vae_loss_fn(cfg)
        t0 = 0.0
        for i in range(steps + 5):
            if i == 5:
                t0 = time.perf_counter()
            loss, _ = loss_fn(model, x, i)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        seconds = time.perf_counter() - t0
    finally:
        torch.set_num_threads(threads)
    return {"what": f"{steps} training steps of the cpu autoencoder (batch {cfg.train.batch_size} x "
                    f"{train_clip_s(cfg):g} s, 1 torch thread)", "seconds": round(seconds, 2)}
