"""From clusters (or references) to audio: every separation method of the report.

Every function returns a list of K estimates, each ``(channels, samples)``
float32, for an input ``x : (channels, samples)`` float32 (the "other" stem, or
its Open-Unmix estimate).

Clusters -> audio
    :func:`hard_time_masks` decodes the latent with the frames of the other
    clusters zeroed (the seed's binary time masks); :func:`soft_masks` turns
    those decodes into time-frequency ratio masks on the input's STFT, so the
    estimates sum to the input (mixture-consistent).

Reference rows
    :func:`mixture_estimate` (floor), :func:`oracle_irm` (ceiling),
    :func:`oracle_frames` (the ceiling of any method that gives whole time
    frames to one source).

NMF and its component groupings (``nmf``, ``latent_nmf``) live in :mod:`nmf`,
which builds on the STFT and mask helpers here.
"""

from __future__ import annotations

import numpy as np

from .frames import frame_energies  # the frame grid is shared with datasets and latents

EPS = 1e-10
BATCH_MAX_S = 12.0  # inputs up to this long are decoded/encoded in one batch, longer ones in chunks

# Method names used in the evaluation table, and the decodings each one has.
REFERENCE_METHODS = ("mixture", "oracle_irm", "oracle_frames", "nmf")
LATENT_TF_METHODS = ("latent_nmf",)


# --- STFT helpers ---------------------------------------------------------------------


def _check_input(x, name: str = "x") -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    if x.ndim != 2 or x.shape[1] == 0:
        raise ValueError(f"{name} must have shape (channels, samples) with samples > 0, got {x.shape}")
    if not np.all(np.isfinite(x)):
        raise ValueError(f"{name} contains NaN or infinite samples")
    return x


def stft(x: np.ndarray, n_fft: int, hop: int) -> np.ndarray:
    """Complex STFT of ``(channels, samples)`` audio -> ``(channels, bins, frames)`` (Hann, centred)."""
    import librosa

    return librosa.stft(np.asarray(x, dtype=np.float32), n_fft=n_fft, hop_length=hop, window="hann",
                        center=True)


def istft(X: np.ndarray, hop: int, length: int) -> np.ndarray:
    """Inverse of :func:`stft`: ``(channels, bins, frames)`` -> ``(channels, length)`` float32."""
    import librosa

    n_fft = 2 * (X.shape[-2] - 1)
    y = librosa.istft(X, hop_length=hop, n_fft=n_fft, window="hann", center=True, length=length)
    return np.asarray(y, dtype=np.float32)


def apply_masks(x: np.ndarray, masks: list, n_fft: int, hop: int, X: np.ndarray | None = None) -> list:
    """Multiply the input's STFT by each mask and invert.

    Parameters
    ----------
    x : (channels, samples) float32
    masks : list of (bins, frames) or (channels, bins, frames) real arrays
    X : optional precomputed ``stft(x, n_fft, hop)``

    Returns
    -------
    list of (channels, samples) float32, one per mask.
    """
    X = stft(x, n_fft, hop) if X is None else X
    return [istft(X * m, hop, x.shape[1]) for m in masks]


def ratio_masks(mags: list, power: float = 1.0) -> list:
    """Masks ``m_i = A_i^p / sum_j A_j^p`` that sum to one in every bin.

    Bins where every magnitude is zero are split equally, so the masked
    estimates still sum to the input there.
    """
    if len(mags) == 0:
        raise ValueError("ratio_masks needs at least one magnitude array")
    P = np.stack([np.asarray(m, dtype=np.float64) ** power for m in mags])  # (K, ..., bins, frames)
    total = P.sum(axis=0)
    empty = total <= EPS
    masks = np.where(empty[None], 1.0 / len(mags), P / np.maximum(total, EPS)[None])
    return [m.astype(np.float32) for m in masks]


# --- clusters -> audio ----------------------------------------------------------------


def cluster_ids(labels) -> np.ndarray:
    """Sorted distinct cluster labels (noise label -1 of DBSCAN/HDBSCAN counts as one group)."""
    labels = np.asarray(labels)
    if labels.ndim != 1 or labels.size == 0:
        raise ValueError(f"labels must be a non-empty 1-d array, got shape {labels.shape}")
    return np.unique(labels)


def silence_code(model) -> np.ndarray:
    """The latent frame ``(latent_dim,)`` the encoder gives to digital silence (median over frames)."""
    from .model import encode_audio

    channels = int(getattr(model, "channels", 1))
    n = int(model.hop_length) * 32
    return np.median(encode_audio(model, np.zeros((channels, n), dtype=np.float32)), axis=0).astype(np.float32)


def hard_time_masks(model, frames: np.ndarray, labels, length: int) -> list:
    """The seed's binary time masks: decode the latent once per cluster, other frames zeroed.

    Parameters
    ----------
    model : SEANetVAE (anything ``model.decode_frames`` accepts)
    frames : (n_frames, latent_dim) float32, the encoded input
    labels : (n_frames,) int, the cluster of each frame
    length : samples of the output

    Returns
    -------
    list of (channels, length) float32, one per distinct label (sorted).

    Notes
    -----
    The frames of the other clusters are replaced by the code the encoder gives
    to silence (:func:`silence_code`), not by zeros: in a VAE the zero vector is
    the prior's mean, which decodes to sound, so zeroed frames would fill every
    estimate with that sound wherever its cluster is absent. The decoder's
    convolutions still spread each frame over its neighbours, so the decodes do
    not sum exactly to the decode of the full latent; ``mixture_mse`` in the
    evaluation measures how far they are.
    """
    from .model import decode_frames

    frames = np.asarray(frames, dtype=np.float32)
    labels = np.asarray(labels)
    if frames.ndim != 2 or labels.shape != (frames.shape[0],):
        raise ValueError(f"frames (n_frames, latent_dim) and labels (n_frames,) disagree: "
                         f"{frames.shape} vs {labels.shape}")
    silence = silence_code(model)
    zs = [np.where((labels == c)[:, None], frames, silence[None]).astype(np.float32) for c in cluster_ids(labels)]
    if len(frames) <= BATCH_MAX_S * model.frame_rate:
        # Short inputs: one batched call (the decoder's LSTM costs about the same for K as for 1).
        import torch

        with torch.no_grad():
            z = torch.from_numpy(np.stack(zs).transpose(0, 2, 1).copy())  # (K, latent_dim, n_frames)
            y = model.eval().decode(z.to(next(model.parameters()).device), length).cpu().numpy()
        return [np.ascontiguousarray(yi, dtype=np.float32) for yi in y]  # K x (channels, length)
    return [np.asarray(decode_frames(model, z, length), dtype=np.float32) for z in zs]


def soft_masks(x: np.ndarray, decoded: list, n_fft: int, hop: int, power: float = 2.0) -> list:
    """Mixture-consistent estimates from decoded clusters.

    The magnitudes of the decoded clusters define ratio masks
    ``|D_i|^p / sum_j |D_j|^p`` (``power=2``: Wiener-like) that are applied to the
    input's STFT; the estimates therefore sum to the input.

    Parameters
    ----------
    x : (channels, samples) float32, the input
    decoded : list of (channels, samples) float32, e.g. from :func:`hard_time_masks`
    n_fft, hop : STFT size and hop in samples

    Returns
    -------
    list of (channels, samples) float32, one per decoded cluster.
    """
    x = _check_input(x)
    if len(decoded) == 0:
        raise ValueError("soft_masks needs at least one decoded cluster")
    mags = []
    for d in decoded:
        d = np.asarray(d, dtype=np.float32)
        if d.shape[0] != x.shape[0]:
            raise ValueError(f"decoded cluster has {d.shape[0]} channel(s), the input {x.shape[0]}")
        d = fit_length(d, x.shape[1])
        mags.append(np.abs(stft(d, n_fft, hop)))
    return apply_masks(x, ratio_masks(mags, power), n_fft, hop)


def fit_length(a: np.ndarray, n: int) -> np.ndarray:
    """``a`` : (channels, samples) cut or zero-padded to ``n`` samples."""
    if a.shape[1] >= n:
        return a[:, :n]
    return np.pad(a, ((0, 0), (0, n - a.shape[1])))


# --- reference rows -------------------------------------------------------------------


def _reference_list(references, x: np.ndarray) -> list:
    refs = list(references.values()) if isinstance(references, dict) else list(references)
    if not refs:
        raise ValueError("references are empty: this method needs the ground-truth stems")
    out = []
    for r in refs:
        r = np.asarray(r, dtype=np.float32)
        if r.shape != x.shape:
            raise ValueError(f"reference shape {r.shape} differs from the input's {x.shape}")
        out.append(r)
    return out


def mixture_estimate(x: np.ndarray, n: int = 1) -> list:
    """The floor: the input itself as the estimate of each of ``n`` instruments."""
    x = _check_input(x)
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    return [x.copy() for _ in range(n)]


def oracle_irm(x: np.ndarray, references, n_fft: int, hop: int, power: float = 1.0) -> list:
    """The ceiling: ideal ratio masks from the true stems, applied to the input.

    ``power=1`` is the magnitude ratio ``|S_i| / sum_j |S_j|`` (IRM1 of the
    SiSEC tables); ``power=2`` the power ratio (IRM2).

    Parameters
    ----------
    x : (channels, samples) float32
    references : dict name -> (channels, samples), or a list; estimates keep this order
    """
    x = _check_input(x)
    refs = _reference_list(references, x)
    mags = [np.abs(stft(r, n_fft, hop)) for r in refs]
    return apply_masks(x, ratio_masks(mags, power), n_fft, hop)


def oracle_frames(x: np.ndarray, references, hop: int) -> list:
    """Each ``hop``-sample frame of the input wholly to the instrument loudest in it.

    The best any method can do that assigns whole time frames to one source
    (the seed's hard time masks). Estimates keep the order of ``references``
    and sum to the input.
    """
    x = _check_input(x)
    refs = _reference_list(references, x)
    n_frames = int(np.ceil(x.shape[1] / hop))
    energy = np.stack([frame_energies(r, hop, n_frames) for r in refs])  # (n_refs, n_frames)
    owner = np.argmax(energy, axis=0)  # (n_frames,)
    sample_owner = np.repeat(owner, hop)[: x.shape[1]]  # (samples,)
    return [np.where(sample_owner[None] == i, x, 0.0).astype(np.float32) for i in range(len(refs))]
