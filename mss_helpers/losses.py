"""Losses of the SEANet VAE: waveform MSE, multi-resolution STFT, KL, optional mel and SNR.

The weights are FIXED for the whole run (``TrainConfig.mse_weight``,
``stft_weight``, ``mel_weight``, ``snr_weight``, ``kl_weight``), unlike the original project
whose weights drifted every epoch. The one schedule is a documented linear KL
warm-up: the KL weight grows from 0 to ``kl_weight`` over ``kl_warmup_steps``
optimiser steps and then stays put, so every loss after the warm-up -- and every
validation loss, which always uses the full weight -- is comparable across epochs.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import torch

_EPS = 1e-7


def _flat(x: torch.Tensor) -> torch.Tensor:
    # (batch, channels, samples) -> (batch * channels, samples)
    return x.reshape(-1, x.shape[-1])


def _check_pair(recon: torch.Tensor, x: torch.Tensor) -> None:
    if recon.shape != x.shape:
        raise ValueError(f"reconstruction {tuple(recon.shape)} and target {tuple(x.shape)} differ in shape")


def waveform_mse(recon: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Mean squared error between waveforms ``(batch, channels, samples)``."""
    _check_pair(recon, x)
    return torch.mean((recon - x) ** 2)


def neg_snr_db(recon: torch.Tensor, x: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """Minus the signal-to-noise ratio in dB, averaged over clips ``(batch, channels, samples)``.

    ``10 log10((||x - recon||^2 + eps) / (||x||^2 + eps))`` per clip and channel:
    the reconstruction SNR the report scores, with its sign flipped so lower is
    better. Unlike the MSE it weighs a quiet clip as much as a loud one (each
    clip's error is measured against its own energy), as the median SNR over
    tracks does. 0 for ``recon = 0``, very negative for ``recon ~= x``.
    """
    _check_pair(recon, x)
    err = torch.sum(_flat(recon - x) ** 2, dim=-1)
    energy = torch.sum(_flat(x) ** 2, dim=-1)
    return torch.mean(10.0 * torch.log10((err + eps) / (energy + eps)))


def _magnitude(x: torch.Tensor, n_fft: int) -> torch.Tensor:
    window = torch.hann_window(n_fft, device=x.device, dtype=x.dtype)
    spec = torch.stft(_flat(x), n_fft=n_fft, hop_length=n_fft // 4, window=window, return_complex=True)
    return spec.abs().clamp_min(_EPS)  # (batch * channels, n_fft // 2 + 1, frames)


def stft_loss(recon: torch.Tensor, x: torch.Tensor, fft_sizes=(256, 512, 1024)) -> torch.Tensor:
    """Multi-resolution STFT loss, averaged over FFT sizes (hop = n_fft / 4, Hann).

    For each size: spectral convergence ``||S_x - S_r||_F / ||S_x||_F`` plus the
    mean absolute difference of log magnitudes. Zero for identical signals.
    """
    _check_pair(recon, x)
    if len(fft_sizes) == 0:
        raise ValueError("stft_loss needs at least one FFT size")
    if x.shape[-1] < max(fft_sizes) // 2 + 1:
        raise ValueError(f"signals of {x.shape[-1]} samples are too short for an FFT of {max(fft_sizes)}")
    total = x.new_zeros(())
    for n_fft in fft_sizes:
        mag_x, mag_r = _magnitude(x, n_fft), _magnitude(recon, n_fft)
        convergence = torch.linalg.norm(mag_x - mag_r) / (torch.linalg.norm(mag_x) + _EPS)
        log_l1 = torch.mean(torch.abs(torch.log(mag_x) - torch.log(mag_r)))
        total = total + convergence + log_l1
    return total / len(fft_sizes)


def kl_divergence(mean: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(mean, exp(logvar)) || N(0, 1)), averaged over every latent value (nats per value).

    ``0.5 * (mean^2 + exp(logvar) - 1 - logvar)``; exactly 0 for mean 0 and logvar 0.
    """
    if mean.shape != logvar.shape:
        raise ValueError(f"mean {tuple(mean.shape)} and logvar {tuple(logvar.shape)} differ in shape")
    return torch.mean(0.5 * (mean**2 + torch.exp(logvar) - 1.0 - logvar))


@lru_cache(maxsize=8)
def _mel_basis(sample_rate: int, n_fft: int, n_mels: int) -> np.ndarray:
    import librosa

    return librosa.filters.mel(sr=sample_rate, n_fft=n_fft, n_mels=n_mels).astype(np.float32)


def mel_loss(recon: torch.Tensor, x: torch.Tensor, sample_rate: int, n_fft: int = 1024,
             n_mels: int = 64) -> torch.Tensor:
    """L1 distance of log mel spectrograms (librosa's mel filterbank as a fixed matrix)."""
    _check_pair(recon, x)
    basis = torch.from_numpy(_mel_basis(int(sample_rate), n_fft, n_mels)).to(x.device, x.dtype)  # (n_mels, bins)
    mel_x = torch.matmul(basis, _magnitude(x, n_fft)).clamp_min(_EPS)  # (batch * channels, n_mels, frames)
    mel_r = torch.matmul(basis, _magnitude(recon, n_fft)).clamp_min(_EPS)
    return torch.mean(torch.abs(torch.log(mel_x) - torch.log(mel_r)))


def kl_weight_at(step: int | None, tcfg) -> float:
    """KL weight at optimiser ``step``: linear warm-up from 0 to ``tcfg.kl_weight``.

    ``step=None`` means "after the warm-up" (used for validation).
    """
    if step is None or tcfg.kl_warmup_steps <= 0:
        return float(tcfg.kl_weight)
    return float(tcfg.kl_weight) * min(1.0, max(0, step) / tcfg.kl_warmup_steps)


def vae_loss(recon: torch.Tensor, x: torch.Tensor, mean: torch.Tensor, logvar: torch.Tensor,
             step: int | None, tcfg, sample_rate: int | None = None) -> tuple[torch.Tensor, dict]:
    """Total VAE loss and its (unweighted) terms.

    ``total = mse_weight * mse + stft_weight * stft + mel_weight * mel + snr_weight * neg_snr_db
    + kl_weight_at(step) * kl``

    Parameters
    ----------
    recon, x : (batch, channels, samples)
    mean, logvar : (batch, latent_dim, frames)
    step : optimiser step for the KL warm-up; None for the full weight (validation).
    tcfg : TrainConfig
    sample_rate : Hz, needed only when ``tcfg.mel_weight > 0``.

    Returns
    -------
    total : scalar tensor
    terms : {"mse", "stft", "kl", "mel", "kl_weight"} floats (mel is 0.0 when disabled), plus
        "neg_snr_db" when ``tcfg.snr_weight > 0``
    """
    mse = waveform_mse(recon, x)
    if tcfg.stft_weight > 0:
        stft = stft_loss(recon, x, tcfg.stft_sizes)
    else:  # still reported, but no backward pass through six STFTs for a term that weighs nothing
        with torch.no_grad():
            stft = stft_loss(recon, x, tcfg.stft_sizes)
    kl = kl_divergence(mean, logvar)
    beta = kl_weight_at(step, tcfg)
    total = tcfg.mse_weight * mse + tcfg.stft_weight * stft + beta * kl
    mel_value = 0.0
    if tcfg.mel_weight > 0:
        if not sample_rate:
            raise ValueError("mel_weight > 0 needs the sample_rate of the audio")
        mel = mel_loss(recon, x, sample_rate, n_fft=max(tcfg.stft_sizes))
        total = total + tcfg.mel_weight * mel
        mel_value = float(mel.detach())
    terms = {"mse": float(mse.detach()), "stft": float(stft.detach()), "kl": float(kl.detach()),
             "mel": mel_value, "kl_weight": beta}
    if getattr(tcfg, "snr_weight", 0.0) > 0:
        snr = neg_snr_db(recon, x)
        total = total + tcfg.snr_weight * snr
        terms["neg_snr_db"] = float(snr.detach())
    return total, terms
