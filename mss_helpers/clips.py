"""Training clips: random (or fixed) excerpts of one stem of a set of tracks, as a torch ``Dataset``.

The autoencoder trains on these. A user's full-length songs are not held in
memory: :meth:`datasets.Track.load` decodes each once to a cache file, and the
dataset keeps the file (:func:`datasets.held`) and maps one clip at a time.
"""

from __future__ import annotations

import numpy as np

from .config import Config
from .datasets import AudioError, held, input_audio


class ClipDataset:
    """Random (or fixed) clips of one stem, as a torch ``Dataset``.

    Items are float32 tensors ``(channels, clip_samples)``. Every track is read
    once, at the model's rate and channel count, and kept in memory (the embedded
    set) or as its decoded cache file (a user's songs). Clips that are nearly
    silent are redrawn a few times (instruments rest for bars).

    Parameters
    ----------
    tracks : list of Track
    stem : "other" (default) or any stem; "input" reads ``input_audio(track, cfg)``
    random : True draws new clips every epoch; False gives the same clip per index (validation)
    """

    def __init__(self, tracks, stem: str = "other", clip_s: float = 1.0, rate: int = 16000,
                 channels: int = 1, n_clips: int = 1000, seed: int = 0, random: bool = True,
                 cfg: Config | None = None):
        if not tracks:
            raise ValueError("ClipDataset needs at least one track")
        self.clip = int(round(clip_s * rate))
        self.n_clips, self.seed, self.random = int(n_clips), seed, random
        if stem == "input":
            if cfg is None:
                raise ValueError("stem='input' needs cfg")
            audio = (input_audio(t, cfg) for t in tracks)
        else:
            audio = (t.load(stem, rate=rate, channels=channels) for t in tracks)
        self.audio = [held(a) for a in audio]  # a user's decoded songs stay on disk (datasets.held)
        self.lengths = [a.shape[1] for a in self.audio]
        short = [t.name for t, n in zip(tracks, self.lengths) if n < self.clip]
        if short:
            raise AudioError(f"tracks shorter than one {clip_s} s clip: {short}; remove them or lower clip_s")
        self._epoch = 0

    def __len__(self) -> int:
        return self.n_clips

    def set_epoch(self, epoch: int) -> None:
        """Random clips differ between epochs but are reproducible."""
        self._epoch = epoch

    def __getitem__(self, index: int):
        import torch

        seed = [self.seed, index] + ([self._epoch, 1] if self.random else [])
        rng = np.random.default_rng(seed)
        for _ in range(4):
            i = int(rng.integers(len(self.audio)))
            start = int(rng.integers(0, self.lengths[i] - self.clip + 1))
            x = self.audio[i][:, start:start + self.clip]
            if float(np.mean(x**2)) > 1e-6:
                break
        return torch.from_numpy(np.ascontiguousarray(x))
