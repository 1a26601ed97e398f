"""Training the small Open-Unmix "other" model on the data set's full mixtures.

Open-Unmix's own objective (MSE of "other" magnitude spectrograms) and its
incoherent remixing of stems, run by the project's generic loop ``train.fit``
(checkpoints, history, resume). :func:`first_stage` picks the configured first
stage: pretrained weights when a folder is given, else this small model.
The architecture and its files are in :mod:`mss_helpers.unmix`.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch

from . import datasets, paths
from .datasets import Difference, OnDisk, held
from .config import Config, config_to_dict
from .errors import ConfigError
from .unmix import (EXPORT_DIR, WEIGHTS_ENV, build_separator, export_complete, export_separator,
                    load_checkpoint, load_pretrained, load_unmix, spectrogram, unmix_rate)

WEIGHT_DECAY = 1e-5  # Open-Unmix's training default
GRAD_CLIP = 5.0  # a guard for the first steps only; Open-Unmix itself does not clip


class PairedClipDataset(torch.utils.data.Dataset):
    """Clips of (mixture, "other") pairs for training the first stage.

    Parameters
    ----------
    pairs : list of (other (C, S), rest (C, S)) float32, rest = mixture - other.
    clip_samples : length of each clip.
    n_clips : length of the dataset (clips per epoch).
    random : draw clips at random (training) or fixed clips from ``seed`` (validation).
    remix : with ``random``, add the "rest" of another random track with random
        gains (Open-Unmix's incoherent remixing), multiplying the few mixtures we have.

    Items are ``(mixture, other)``: two ``(C, clip_samples)`` float32 tensors.
    """

    def __init__(self, pairs, clip_samples: int, n_clips: int, seed: int = 0, random: bool = True,
                 remix: bool = True):
        if not pairs:
            raise ValueError("PairedClipDataset needs at least one (other, rest) pair")
        if clip_samples <= 0 or n_clips <= 0:
            raise ValueError(f"clip_samples and n_clips must be positive, got {clip_samples}, {n_clips}")
        # a user's decoded songs stay on disk (datasets.OnDisk, datasets.Difference), cut one clip at a time
        self.pairs = [tuple(a if isinstance(a, (OnDisk, Difference)) else np.asarray(a, np.float32) for a in pair)
                      for pair in pairs]
        self.clip = int(clip_samples)
        self.n_clips = int(n_clips)
        self.random = random
        self.remix = remix
        self.fixed = None
        if not random:
            rng = np.random.default_rng(seed)
            self.fixed = [(int(rng.integers(len(pairs))), float(rng.random())) for _ in range(n_clips)]

    def __len__(self) -> int:
        return self.n_clips

    def _cut(self, x: np.ndarray, where: float) -> np.ndarray:
        # where in [0, 1): position of the clip; short tracks are zero-padded.
        if x.shape[1] < self.clip:
            return np.pad(x[:, :], ((0, 0), (0, self.clip - x.shape[1])))
        start = int(where * (x.shape[1] - self.clip + 1))
        return x[:, start:start + self.clip]

    def __getitem__(self, idx: int):
        if self.random:
            # torch's generator: seeded by the training loop, so runs repeat.
            r = torch.rand(5).tolist()
            i = int(r[0] * len(self.pairs)) % len(self.pairs)
            other = self._cut(self.pairs[i][0], r[1])
            if self.remix:
                j = int(r[2] * len(self.pairs)) % len(self.pairs)
                rest = self._cut(self.pairs[j][1], r[3])
                other = other * (0.75 + 0.5 * r[4])
                rest = rest * (0.75 + 0.5 * float(torch.rand(1)))
            else:
                rest = self._cut(self.pairs[i][1], r[1])
        else:
            i, where = self.fixed[idx]
            other, rest = self._cut(self.pairs[i][0], where), self._cut(self.pairs[i][1], where)
        return torch.from_numpy(other + rest), torch.from_numpy(np.ascontiguousarray(other))


def load_pairs(tracks, cfg: Config) -> list[tuple[np.ndarray, np.ndarray]]:
    """``(other, rest)`` per track at the first stage's rate and channels; rest = mixture - other."""
    rate, ch = unmix_rate(cfg), cfg.data.channels
    pairs = []
    for t in tracks:
        mix = t.load("mixture", rate=rate, channels=ch)
        other = t.load("other", rate=rate, channels=ch)
        n = min(mix.shape[1], other.shape[1])
        kept_mix, kept_other = held(mix, n), held(other, n)
        if isinstance(kept_mix, OnDisk) and isinstance(kept_other, OnDisk):  # a user's songs stay on disk
            pairs.append((kept_other, Difference(kept_mix, kept_other, n)))
        else:
            pairs.append((other[:, :n], mix[:, :n] - other[:, :n]))
    return pairs


def _input_stats(separator, dataset, n: int = 64) -> tuple[np.ndarray, np.ndarray]:
    """Mean and std per frequency bin of mixture magnitudes, as Open-Unmix's training script computes."""
    frames = []
    for i in range(min(n, len(dataset))):
        mix, _ = dataset[i]
        X = spectrogram(separator, mix[None])  # (1, C', bins, frames)
        frames.append(X[0].permute(0, 2, 1).reshape(-1, X.shape[2]))  # (C' * frames, bins)
    X = torch.cat(frames).double()
    return X.mean(0).numpy(), np.maximum(X.std(0).numpy(), 1e-4)


def unmix_loss(model, batch, step):
    """MSE between estimated and true "other" magnitude spectrograms (Open-Unmix's objective)."""
    mix, other = batch
    X = spectrogram(model, mix)  # (B, C', bins, frames)
    Y = spectrogram(model, other)
    Y_hat = model.target_models["other"](X)
    loss = torch.nn.functional.mse_loss(Y_hat, Y)
    return loss, {"mse": float(loss.detach())}


def default_run_dir(cfg: Config, root=None) -> Path:
    """``runs_dir()/unmix_<preset>_<hash of data+unmix>``, plus :func:`datasets.data_key` of another root."""
    return paths.runs_dir() / f"unmix_{cfg.name}_{datasets.unmix_key(cfg)}{datasets.data_key(cfg, root)}"


def resolve_root(cfg: Config, root=None) -> Path:
    """``root`` as a Path, or the preset's data set (rendered first when missing)."""
    if root is not None:
        return Path(root)
    return datasets.ensure_dataset(cfg)


def train_unmix(cfg: Config, root=None, run_dir=None, force: bool = False, device=None,
                progress: bool = True) -> Path:
    """Train the small "other" model on the data set's full mixtures; cached by config.

    Uses the generic loop ``train.fit`` (checkpoints, history, resume). A finished
    run (``done.json``) is returned as is unless ``force``; an interrupted one resumes.
    The trained model is also exported in openunmix's own layout to
    ``<run_dir>/openunmix`` so ``openunmix.utils.load_separator`` reads it.

    Returns
    -------
    Path of the run folder.
    """
    from . import train

    run_dir = Path(run_dir) if run_dir else default_run_dir(cfg, root)
    if (run_dir / "done.json").is_file() and export_complete(run_dir) and not force:
        return run_dir
    resume = (run_dir / "last.pt").is_file() and not force
    u = cfg.unmix
    root = resolve_root(cfg, root)
    tracks = datasets.load_tracks(root, "train")
    if len(tracks) < 2:
        raise ConfigError(f"training the first stage needs at least 2 training tracks in {root}/train, found "
                          f"{len(tracks)}; add tracks there, or give a data set with more (--root DIR)")
    n_val = min(max(cfg.data.n_val_tracks, 1), len(tracks) - 1)
    train_tracks, val_tracks = datasets.split_train_val(tracks, n_val, cfg.data.seed)
    clip = int(u.clip_s * unmix_rate(cfg))
    train_set = PairedClipDataset(load_pairs(train_tracks, cfg), clip, u.steps_per_epoch * u.batch_size,
                                  seed=u.seed, random=True, remix=True)
    val_set = PairedClipDataset(load_pairs(val_tracks, cfg), clip, max(u.batch_size, 2 * len(val_tracks)),
                                seed=u.seed + 1, random=False)

    torch.manual_seed(u.seed)
    # Input normalisation from plain (not remixed) training clips; on resume the
    # checkpoint's values replace these.
    stats_set = PairedClipDataset(train_set.pairs, clip, 64, seed=u.seed, random=False)
    stats = _input_stats(build_separator(cfg), stats_set)
    separator = build_separator(cfg, input_mean=stats[0], input_scale=stats[1])
    loader = torch.utils.data.DataLoader(train_set, batch_size=u.batch_size, shuffle=False, drop_last=True)
    val_loader = torch.utils.data.DataLoader(val_set, batch_size=u.batch_size, shuffle=False)
    train.fit(separator, unmix_loss, loader, val_loader, run_dir, epochs=u.epochs,
              steps_per_epoch=u.steps_per_epoch, lr=u.lr, weight_decay=WEIGHT_DECAY, grad_clip=GRAD_CLIP,
              seed=u.seed, config={**config_to_dict(cfg), "stage": "unmix", "root": str(root)},
              resume=resume, max_minutes=None, device=device, progress=progress)
    load_checkpoint(separator, run_dir / "best.pt")
    export_separator(separator, run_dir / EXPORT_DIR, cfg)
    return run_dir


def first_stage(cfg: Config, root=None, device=None, progress: bool = True):
    """The configured first stage: pretrained weights when a folder is given, else the small model."""
    weights = cfg.unmix.weights_dir or os.environ.get(WEIGHTS_ENV)
    if weights:
        return load_pretrained(cfg.unmix.pretrained, weights, device=device or "cpu")
    return load_unmix(train_unmix(cfg, root=root, device=device, progress=progress), device=device or "cpu")
