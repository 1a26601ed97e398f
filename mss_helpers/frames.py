"""Frames of audio and their ground truth: energy per ``hop``-sample frame and per-frame instrument labels.

A low floor (numpy only) because three stages need the same facts: the data
set's overlap table (:mod:`datasets`), the latent frames' labels
(:mod:`latents`, one frame per ``hop`` samples of the model) and the oracle
frame assignment (:mod:`separate`).
"""

from __future__ import annotations

import numpy as np


def frame_energies(audio: np.ndarray, hop: int, n_frames: int | None = None) -> np.ndarray:
    """Energy (sum of squares over channels and samples) of consecutive ``hop``-sample frames.

    Returns ``(n_frames,)`` float64; the default ``n_frames`` is ``ceil(samples / hop)``
    (the last frame is zero-padded); extra frames beyond the audio have energy 0.
    """
    audio = np.asarray(audio, dtype=np.float64)
    if audio.ndim == 1:
        audio = audio[None]
    if hop < 1:
        raise ValueError(f"hop must be >= 1 sample, got {hop}")
    n = audio.shape[1]
    n_frames = int(np.ceil(n / hop)) if n_frames is None else int(n_frames)
    padded = np.zeros((audio.shape[0], n_frames * hop))
    m = min(n, n_frames * hop)
    padded[:, :m] = audio[:, :m]
    return (padded.reshape(audio.shape[0], n_frames, hop) ** 2).sum(axis=(0, 2))


def frame_labels(other_stems: dict, hop: int, n_frames: int, rate: int, active_db: float = -40.0) -> dict:
    """Per-latent-frame ground truth from the reference instruments.

    An instrument is *active* in a frame when its frame energy is within
    ``active_db`` dB of the loudest frame of any instrument in the track
    (relative, so the labels do not depend on the track's level). The
    *dominant* instrument is the one with most energy in the frame, or -1
    when none is active (silence).

    Parameters
    ----------
    other_stems : dict name -> (channels, samples) float32, the instruments inside "other"
    hop : samples per latent frame
    n_frames : frames to label (frames past the audio count as silent)
    rate : Hz of the stems (only checked; ``hop`` is in samples)
    active_db : threshold in dB relative to the loudest frame, negative

    Returns
    -------
    dict with ``dominant`` (n_frames,) int index into ``names`` (-1: silent),
    ``n_active`` (n_frames,) int, ``names`` list[str], ``energy`` (n_names, n_frames).
    """
    if not other_stems:
        raise ValueError("other_stems is empty: frame labels need the instruments inside 'other'")
    if hop < 1 or n_frames < 1 or rate < 1:
        raise ValueError(f"hop, n_frames and rate must be positive, got {hop}, {n_frames}, {rate}")
    if active_db >= 0:
        raise ValueError(f"active_db is relative to the loudest frame and must be negative, got {active_db}")
    names = list(other_stems)
    energy = np.stack([frame_energies(other_stems[n], hop, n_frames) for n in names])  # (N, n_frames)
    peak = energy.max()
    if peak <= 0:
        raise ValueError("every reference instrument is silent: nothing to label")
    active = energy > peak * 10 ** (active_db / 10)  # (N, n_frames)
    dominant = np.where(active.any(axis=0), energy.argmax(axis=0), -1)
    return {"dominant": dominant.astype(int), "n_active": active.sum(axis=0).astype(int),
            "names": names, "energy": energy}
