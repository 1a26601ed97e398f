"""MixIT's training data: mixtures of mixtures of "other", and the ceiling of its objective.

- :class:`MixtureOfMixtures`: pairs of "other" excerpts from two different
  training tracks, with random gains. It reads ``other.wav`` only (never
  ``other_stems/``, the instruments).
- :func:`loaders`: the training and validation loaders of the separator
  (:mod:`mss_helpers.separator`); the validation pairs are fixed.
- :func:`pairing_partners`: ``SeparatorConfig.pairing`` -- ``"any"`` (MixIT as
  published) or ``"disjoint"``, an ABLATION that pairs only tracks without an
  instrument name in common (metadata MixIT must not use; never the stems' audio).
- :func:`oracle_mixture_snr_db`: how well the ideal ratio mask re-builds the two
  mixtures of the validation pairs on the separator's STFT.
"""

from __future__ import annotations

import numpy as np
import torch

from .config import Config
from .errors import ConfigError

EPS = 1e-8


class MixtureOfMixtures(torch.utils.data.Dataset):
    """Pairs of "other" excerpts from two different tracks, with random gains.

    Items are float32 tensors ``(2, C, clip)``: the two mixtures; their sum is
    the network's input. Only the given audio arrays are used: the caller
    loads ``other.wav`` (never the instrument stems).

    Parameters
    ----------
    audio : list of (C, S) float32 arrays, one per track (at least two)
    clip : samples per excerpt
    n_items : items per epoch
    gain_db : each excerpt is scaled by a gain drawn uniformly from +-gain_db
    random : new pairs every epoch (training) or fixed pairs per index (validation)
    partners : optional list, per track, of the tracks it may be paired with (an ablation; ``None``:
        any other track). Tracks without a partner are never drawn.
    """

    def __init__(self, audio: list, clip: int, n_items: int, seed: int = 0, gain_db: float = 5.0,
                 random: bool = True, partners: list | None = None):
        if len(audio) < 2:
            raise ValueError("MixIT needs excerpts from at least two different tracks")
        short = [i for i, a in enumerate(audio) if a.shape[1] < clip]
        if short:
            raise ValueError(f"tracks {short} are shorter than one clip of {clip} samples")
        if partners is not None:
            partners = [np.asarray(p, dtype=int) for p in partners]
            if any(i in p for i, p in enumerate(partners)) or not any(len(p) for p in partners):
                raise ValueError("partners must name at least one pair of two different tracks")
        from .datasets import held

        # a user's decoded songs stay on disk, one excerpt read at a time (datasets.held)
        self.audio, self.clip, self.n_items = [held(a) for a in audio], int(clip), int(n_items)
        self.seed, self.gain_db, self.random, self._epoch = seed, gain_db, random, 0
        self.partners = partners

    def __len__(self) -> int:
        return self.n_items

    def set_epoch(self, epoch: int) -> None:
        self._epoch = epoch

    def _excerpt(self, rng, track: int) -> np.ndarray:
        a = self.audio[track]
        for _ in range(4):  # instruments rest for bars: redraw nearly silent excerpts
            start = int(rng.integers(0, a.shape[1] - self.clip + 1))
            x = a[:, start:start + self.clip]
            if float(np.mean(x ** 2)) > 1e-6:
                break
        return x * np.float32(10 ** (rng.uniform(-self.gain_db, self.gain_db) / 20))

    def __getitem__(self, index: int) -> torch.Tensor:
        rng = np.random.default_rng([self.seed, index] + ([self._epoch, 1] if self.random else []))
        if self.partners is None:
            i, j = rng.choice(len(self.audio), size=2, replace=False)  # two DIFFERENT tracks
        else:
            i = rng.choice([t for t, p in enumerate(self.partners) if len(p)])
            j = rng.choice(self.partners[i])
        pair = np.stack([self._excerpt(rng, int(i)), self._excerpt(rng, int(j))])
        return torch.from_numpy(np.ascontiguousarray(pair, dtype=np.float32))


def load_other(tracks, cfg: Config, channels: int | None = None) -> list:
    """The "other" stem (``other.wav``) of each track at the model's rate: what MixIT trains on.

    ``channels``: as stored in the file when 2 (the stereo image), else the model's channels.
    """
    return [t.load("other", rate=cfg.data.sample_rate, channels=channels or cfg.data.channels) for t in tracks]


def split_tracks(cfg: Config, root) -> tuple[list, list]:
    """The separator's training and validation tracks of the training split (``separator.train_tracks``:
    only the first N training tracks, the data curve; validation unchanged)."""
    from . import datasets

    s = cfg.separator
    tracks = datasets.load_tracks(root, "train")
    train_tracks, val_tracks = datasets.split_train_val(tracks, cfg.data.n_val_tracks, cfg.data.seed)
    if s.train_tracks is not None:
        if s.train_tracks < 2:
            raise ConfigError(f"separator.train_tracks must be at least 2 (MixIT pairs two tracks), "
                              f"got {s.train_tracks}")
        train_tracks = train_tracks[:s.train_tracks]
    return train_tracks, val_tracks


def loaders(cfg: Config, root):
    """Training and validation loaders of mixtures of mixtures: ``other.wav`` of the training split only."""
    from torch.utils.data import DataLoader

    s = cfg.separator
    train_tracks, val_tracks = split_tracks(cfg, root)
    if len(val_tracks) < 2:  # a pair needs two tracks: borrow one training track for validation pairs
        val_tracks = val_tracks + train_tracks[:1]
    clip = int(round(s.clip_s * cfg.data.sample_rate))
    train_ds = MixtureOfMixtures(load_other(train_tracks, cfg), clip, s.steps_per_epoch * s.batch_size,
                                 seed=s.seed, gain_db=s.gain_db, random=True,
                                 partners=pairing_partners(train_tracks, s.pairing))
    val_ds = MixtureOfMixtures(load_other(val_tracks, cfg), clip, s.val_clips, seed=s.seed + 1,
                               gain_db=s.gain_db, random=False)
    return (DataLoader(train_ds, batch_size=s.batch_size, shuffle=False, drop_last=True),
            DataLoader(val_ds, batch_size=s.batch_size, shuffle=False))


def pairing_partners(tracks, pairing: str):
    """Who may be paired with whom in training: ``None`` (``"any"``: any two tracks, MixIT as published)
    or, for ``"disjoint"`` (an ABLATION that uses metadata MixIT must not), per track the tracks whose
    instrument *names* (the file names in ``other_stems/``, never their audio) it shares none of."""
    if pairing == "any":
        return None
    if pairing != "disjoint":
        raise ConfigError(f"separator.pairing must be 'any' or 'disjoint', got {pairing!r}")
    names = [set(t.instruments) for t in tracks]
    if not all(names):
        raise ConfigError("separator.pairing 'disjoint' needs the instrument names of every training track "
                          "(other_stems/); this data set has none: use pairing 'any'")
    partners = [[j for j, b in enumerate(names) if j != i and not (a & b)] for i, a in enumerate(names)]
    if not any(partners):
        raise ConfigError("separator.pairing 'disjoint': no two training tracks have disjoint instrument "
                          "sets; use pairing 'any'")
    return partners


@torch.no_grad()
def oracle_mixture_snr_db(cfg: Config, root) -> float:
    """Mean SNR (dB) with which the ideal ratio mask re-builds each mixture of the validation pairs.

    The same fixed pairs as :func:`separator.mixture_snr_db`, the separator's own STFT: the mask
    ``|Y_j| / (|Y_1| + |Y_2|)`` on the mixture of mixtures, inverted. A ceiling of the MixIT objective
    for a mask network with this front end (it reads the two mixtures: an oracle).
    """
    s = cfg.separator
    _, val_loader = loaders(cfg, root)
    window = torch.hann_window(s.n_fft)
    snrs = []
    for batch in val_loader:  # (B, 2, C, L)
        B, _, C, L = batch.shape
        Y = torch.stft(batch.reshape(-1, L), s.n_fft, s.hop, window=window, center=True, return_complex=True)
        Y = Y.view(B, 2, C, *Y.shape[-2:])
        mag = Y.abs()
        est = (mag / (mag.sum(1, keepdim=True) + EPS)) * Y.sum(1, keepdim=True)
        est = torch.istft(est.reshape(-1, *Y.shape[-2:]), s.n_fft, s.hop, window=window, center=True,
                          length=L).view(B, 2, C, L)
        ref = batch.pow(2).flatten(2).sum(-1)
        snrs.append(10 * torch.log10(ref / ((batch - est).pow(2).flatten(2).sum(-1) + EPS)))
    return float(torch.cat(snrs).mean())


__all__ = ["MixtureOfMixtures", "load_other", "split_tracks", "loaders", "pairing_partners", "oracle_mixture_snr_db"]
