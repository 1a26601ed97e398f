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
    frames to one source), :func:`nmf_cluster` (the classic unsupervised
    baseline: NMF components grouped by clustering their templates).

Beyond time frames
    :func:`latent_nmf` splits simultaneous notes: NMF components of the input
    are Wiener-filtered to audio, encoded by the VAE, and grouped by their
    latent statistics; each group becomes a soft mask.
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
        d = _fit_length(d, x.shape[1])
        mags.append(np.abs(stft(d, n_fft, hop)))
    return apply_masks(x, ratio_masks(mags, power), n_fft, hop)


def _fit_length(a: np.ndarray, n: int) -> np.ndarray:
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


# --- NMF + component clustering -------------------------------------------------------


def nmf_decompose(x: np.ndarray, n_components: int, n_fft: int, hop: int, seed: int = 0,
                  beta_loss: str = "kullback-leibler", max_iter: int = 200):
    """NMF of the input's magnitude STFT (channels averaged).

    Returns
    -------
    X : (channels, bins, frames) complex, the input's STFT
    W : (bins, n_components) templates
    H : (n_components, frames) activations
    """
    from sklearn.decomposition import NMF

    x = _check_input(x)
    if n_components < 1:
        raise ValueError(f"n_components must be >= 1, got {n_components}")
    X = stft(x, n_fft, hop)
    V = np.abs(X).mean(axis=0).astype(np.float64)  # (bins, frames)
    if V.max() <= EPS:
        raise ValueError("the input is silent: NMF has nothing to factorise")
    solver = "cd" if beta_loss in ("frobenius", 2) else "mu"
    nmf = NMF(n_components=n_components, beta_loss=beta_loss, solver=solver, init="nndsvda",
              max_iter=max_iter, random_state=seed, tol=1e-4)
    import warnings

    from sklearn.exceptions import ConvergenceWarning

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # max_iter is the budget we chose
        W = nmf.fit_transform(V + EPS)  # (bins, R)
    H = nmf.components_  # (R, frames)
    return X, W, H


def template_features(W: np.ndarray, H: np.ndarray, features: str = "log_templates",
                      rate: int = 16000) -> np.ndarray:
    """Features per NMF component for grouping them into instruments.

    ``log_templates``: log template, each standardised (timbre + pitch);
    ``mfcc``: MFCCs 1-12 of each template's mel spectrum (timbre, pitch-blind,
    as Spiertz & Gnann); ``mfcc_act``: MFCCs plus the correlation of the
    activations (components that play together tend to share an instrument).

    Returns ``(n_components, n_features)`` float64.
    """
    W = np.asarray(W, dtype=np.float64)
    if features == "log_templates":
        L = np.log(W + 1e-6 * W.max()).T  # (R, bins)
        return (L - L.mean(axis=1, keepdims=True)) / (L.std(axis=1, keepdims=True) + EPS)
    if features in ("mfcc", "mfcc_act"):
        import librosa
        import scipy.fft

        n_fft = 2 * (W.shape[0] - 1)
        mel = librosa.filters.mel(sr=rate, n_fft=n_fft, n_mels=40)  # (40, bins)
        M = np.log(mel @ W + 1e-6 * W.max()).T  # (R, 40)
        C = scipy.fft.dct(M, type=2, norm="ortho", axis=1)[:, 1:13]  # drop c0: loudness
        C = (C - C.mean(axis=0)) / (C.std(axis=0) + EPS)
        if features == "mfcc":
            return C
        A = np.corrcoef(np.asarray(H, dtype=np.float64) + EPS)  # (R, R)
        A = np.nan_to_num(A)
        return np.hstack([C, A * np.sqrt(C.shape[1] / max(A.shape[1], 1))])
    raise ValueError(f"unknown features {features!r}; choose log_templates, mfcc or mfcc_act")


def group_components(F: np.ndarray, k: int, seed: int = 0) -> np.ndarray:
    """K-Means over component features -> ``(n_components,)`` group index in ``[0, k)``."""
    from sklearn.cluster import KMeans

    F = np.asarray(F, dtype=np.float64)
    if k < 1 or k > F.shape[0]:
        raise ValueError(f"k={k} groups need 1 <= k <= n_components={F.shape[0]}")
    if k == 1:
        return np.zeros(F.shape[0], dtype=int)
    return KMeans(n_clusters=k, n_init=10, random_state=seed).fit_predict(F)


def grouped_estimates(X: np.ndarray, W: np.ndarray, H: np.ndarray, groups: np.ndarray, k: int,
                      hop: int, length: int, power: float = 1.0) -> list:
    """Wiener-style masks ``(W_g H_g)^p / sum_j (W_j H_j)^p`` per group, applied to ``X``."""
    mags = [W[:, groups == g] @ H[groups == g] for g in range(k)]  # each (bins, frames)
    masks = ratio_masks(mags, power)
    return [istft(X * m, hop, length) for m in masks]


def cached_nmf(x: np.ndarray, n_components: int, n_fft: int, hop: int, seed: int = 0,
               beta_loss: str = "kullback-leibler", cache: dict | None = None):
    """:func:`nmf_decompose`, remembered in ``cache`` (one dict per input) across k and methods."""
    key = ("nmf", n_components, n_fft, hop, seed, beta_loss)
    if cache is None:
        return nmf_decompose(x, n_components, n_fft, hop, seed=seed, beta_loss=beta_loss)
    if key not in cache:
        cache[key] = nmf_decompose(x, n_components, n_fft, hop, seed=seed, beta_loss=beta_loss)
    return cache[key]


def nmf_cluster(x: np.ndarray, k: int, n_components: int, n_fft: int, hop: int, seed: int = 0, *,
                beta_loss: str = "kullback-leibler", features: str = "mfcc", power: float = 1.0,
                rate: int = 16000, cache: dict | None = None) -> list:
    """NMF + component clustering (the classic unsupervised baseline).

    The input's magnitude STFT is factorised into ``n_components`` templates
    and activations; components are grouped into ``k`` instruments by K-Means
    on :func:`template_features`, and each group's reconstruction defines a
    soft mask on the input's STFT (the estimates sum to the input).

    Parameters
    ----------
    x : (channels, samples) float32
    k : instruments to separate
    n_components : NMF rank (>= k)
    n_fft, hop : STFT size and hop in samples
    beta_loss : "kullback-leibler" (default) or "frobenius"
    features : see :func:`template_features`
    power : mask exponent (1: ratio of magnitudes, 2: Wiener)
    rate : Hz, for the mel scale of the MFCC features
    cache : optional dict reused across calls on the same ``x`` (the NMF is computed once)

    Returns
    -------
    list of k (channels, samples) float32.
    """
    if k > n_components:
        raise ValueError(f"k={k} groups need at least as many NMF components, got {n_components}")
    X, W, H = cached_nmf(x, n_components, n_fft, hop, seed, beta_loss, cache)
    groups = group_components(template_features(W, H, features, rate), k, seed)
    return grouped_estimates(X, W, H, groups, k, hop, np.asarray(x).shape[1], power)


# --- latent space of the VAE, beyond time frames --------------------------------------


def component_latents(model, X: np.ndarray, W: np.ndarray, H: np.ndarray, hop: int, length: int,
                      chunk_s: float = 10.0) -> np.ndarray:
    """Latent statistics of each NMF component's audio.

    Each component r is Wiener-filtered out of the input (``X * W_r H_r / W H``),
    encoded by the VAE, and summarised by the energy-weighted mean and standard
    deviation of its latent frames (silent frames would otherwise dominate).

    Returns ``(n_components, 2 * latent_dim)`` float64.
    """
    from .model import encode_audio

    V = W @ H + EPS  # (bins, frames)
    ys = [istft(X * (np.outer(W[:, r], H[r]) / V), hop, length) for r in range(W.shape[1])]  # (C, S) each
    if length <= BATCH_MAX_S * model.sample_rate:
        import torch

        with torch.no_grad():  # one batched call for all components of a short input
            zb = model.eval().encode(torch.from_numpy(np.stack(ys)).to(next(model.parameters()).device))
        zs = [zi.T.astype(np.float64) for zi in zb.cpu().numpy()]  # each (n_frames, D)
    else:
        zs = [np.asarray(encode_audio(model, y, chunk_s=chunk_s), dtype=np.float64) for y in ys]
    feats = []
    for y, z in zip(ys, zs):
        e = frame_energies(y, int(model.hop_length), z.shape[0]) + EPS  # weight frames by loudness
        w = e / e.sum()
        mean = (w[:, None] * z).sum(axis=0)
        std = np.sqrt((w[:, None] * (z - mean) ** 2).sum(axis=0))
        feats.append(np.concatenate([mean, std]))
    F = np.stack(feats)
    return (F - F.mean(axis=0)) / (F.std(axis=0) + EPS)


def latent_nmf(model, x: np.ndarray, k: int, n_components: int, n_fft: int, hop: int, seed: int = 0,
               *, beta_loss: str = "kullback-leibler", power: float = 1.0, cache: dict | None = None) -> list:
    """Separate simultaneous notes with the VAE's latent space.

    NMF components of the input (which can sound at the same time) are each
    turned into audio, encoded by the VAE and grouped by K-Means on their
    latent statistics (:func:`component_latents`); each group's NMF
    reconstruction gives a soft mask on the input's STFT (estimates sum to the
    input). Unlike the time-frame methods, this is not capped by
    :func:`oracle_frames`.

    Parameters
    ----------
    model : SEANetVAE
    x : (channels, samples) float32
    k, n_components, n_fft, hop, seed, beta_loss, power : as :func:`nmf_cluster`
    cache : optional dict reused across calls on the same ``x`` (different k):
        holds the NMF and the component latents so they are computed once.

    Returns
    -------
    list of k (channels, samples) float32.
    """
    if k > n_components:
        raise ValueError(f"k={k} groups need at least as many NMF components, got {n_components}")
    x = _check_input(x)
    cache = {} if cache is None else cache
    X, W, H = cached_nmf(x, n_components, n_fft, hop, seed, beta_loss, cache)
    key = ("latent_nmf", n_components, n_fft, hop, seed, beta_loss)
    if key not in cache:
        cache[key] = component_latents(model, X, W, H, hop, x.shape[1])
    F = cache[key]
    groups = group_components(F, k, seed)
    return grouped_estimates(X, W, H, groups, k, hop, x.shape[1], power)
