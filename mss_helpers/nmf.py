"""NMF of the input's spectrogram, and grouping its components into instruments.

Two methods of the table live here, both mixture-consistent (the estimates
sum to the input):

- :func:`nmf_cluster`, the classic unsupervised baseline: NMF components
  grouped by clustering their templates (MFCCs of each template by default);
- :func:`latent_nmf`, which groups the same components by the VAE's latent
  statistics of each component's audio (it splits simultaneous notes, which
  the latent-frame clusterings of :mod:`separate` cannot).

Long inputs (issue 10: a 3-minute input must separate in <= 30 s) are
factorised in two steps so the cost grows linearly with the length: the
templates are fit on an excerpt of ``fit_s`` seconds (evenly spaced blocks
across the input), then the activations of the whole input are solved with the
templates fixed, ``chunk_s`` seconds at a time (with fixed templates every
frame's activations are an independent problem, so the chunks need no
overlap). One set of templates means ONE grouping of components for the whole
input. Inputs no longer than ``fit_s`` are factorised whole, exactly as before.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np

from .frames import frame_energies
from .separate import BATCH_MAX_S, EPS, _check_input, istft, ratio_masks, stft

FIT_BLOCKS = 10  # the excerpt for fitting templates is this many blocks spread over the input


@dataclass
class Factorisation:
    """The NMF of one input (channels averaged), plus the excerpt its templates were fit on.

    Attributes
    ----------
    X : (channels, bins, frames) complex64, the input's STFT
    W : (bins, n_components) templates
    H : (n_components, frames) activations of the whole input
    excerpt : (channels, samples_fit) float32, the audio the templates were fit on
        (the input itself when it is no longer than ``fit_s``)
    X_fit : (channels, bins, frames_fit) its STFT
    H_fit : (n_components, frames_fit) its activations
    """

    X: np.ndarray
    W: np.ndarray
    H: np.ndarray
    excerpt: np.ndarray
    X_fit: np.ndarray
    H_fit: np.ndarray

    @property
    def chunked(self) -> bool:
        """True when the templates were fit on an excerpt, not on the whole input."""
        return self.X_fit is not self.X


def _solver(beta_loss) -> str:
    return "cd" if beta_loss in ("frobenius", 2) else "mu"


def nmf_decompose(x: np.ndarray, n_components: int, n_fft: int, hop: int, seed: int = 0,
                  beta_loss: str = "kullback-leibler", max_iter: int = 200):
    """NMF of the whole input's magnitude STFT (channels averaged).

    Returns
    -------
    X : (channels, bins, frames) complex, the input's STFT
    W : (bins, n_components) templates
    H : (n_components, frames) activations
    """
    from sklearn.decomposition import NMF
    from sklearn.exceptions import ConvergenceWarning

    x = _check_input(x)
    if n_components < 1:
        raise ValueError(f"n_components must be >= 1, got {n_components}")
    X = stft(x, n_fft, hop)
    V = np.abs(X).mean(axis=0).astype(np.float64)  # (bins, frames)
    if V.max() <= EPS:
        raise ValueError("the input is silent: NMF has nothing to factorise")
    nmf = NMF(n_components=n_components, beta_loss=beta_loss, solver=_solver(beta_loss), init="nndsvda",
              max_iter=max_iter, random_state=seed, tol=1e-4)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # max_iter is the budget we chose
        W = nmf.fit_transform(V + EPS)  # (bins, R)
    H = nmf.components_  # (R, frames)
    return X, W, H


def fit_excerpt(x: np.ndarray, fit_samples: int, n_blocks: int = FIT_BLOCKS) -> np.ndarray:
    """``n_blocks`` evenly spaced blocks of ``x``, ``fit_samples`` in all, joined end to end.

    Returns ``x`` itself when it is no longer than ``fit_samples``. Blocks
    spread over the whole input so the templates see every section of a piece.
    """
    x = np.asarray(x, dtype=np.float32)
    n = x.shape[1]
    if n <= fit_samples:
        return x
    block = max(fit_samples // n_blocks, 1)
    starts = np.linspace(0, n - block, n_blocks).round().astype(int)  # (n_blocks,)
    return np.concatenate([x[:, s:s + block] for s in starts], axis=1)


def solve_activations(V: np.ndarray, W: np.ndarray, beta_loss: str = "kullback-leibler",
                      max_iter: int = 200, chunk_frames: int | None = None) -> np.ndarray:
    """Activations of ``V ~ W H`` with the templates ``W`` fixed, ``chunk_frames`` frames at a time.

    Parameters
    ----------
    V : (bins, frames) non-negative magnitudes
    W : (bins, n_components) fixed templates
    chunk_frames : frames per sklearn call (default: all); with ``W`` fixed each
        frame's activations are solved independently, so chunking only bounds memory.

    Returns
    -------
    H : (n_components, frames) float64
    """
    from sklearn.decomposition import non_negative_factorization
    from sklearn.exceptions import ConvergenceWarning

    V = np.asarray(V, dtype=np.float64)
    W = np.asarray(W, dtype=np.float64)
    step = V.shape[1] if not chunk_frames else int(chunk_frames)
    H = np.empty((W.shape[1], V.shape[1]))
    for s in range(0, V.shape[1], step):
        # sklearn solves X (samples, features) ~ A B for A with B fixed: samples = frames, B = W^T.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            A, _, _ = non_negative_factorization(V[:, s:s + step].T + EPS, H=np.ascontiguousarray(W.T),
                                                 n_components=W.shape[1], update_H=False,
                                                 beta_loss=beta_loss, solver=_solver(beta_loss),
                                                 max_iter=max_iter, tol=1e-4)
        H[:, s:s + step] = A.T  # (R, chunk)
    return H


def factorise(x: np.ndarray, n_components: int, n_fft: int, hop: int, seed: int = 0,
              beta_loss: str = "kullback-leibler", fit_s: float | None = None, chunk_s: float = 30.0,
              rate: int = 16000) -> Factorisation:
    """NMF of ``x`` whose cost grows linearly with its length.

    Inputs no longer than ``fit_s`` seconds (or any input when ``fit_s`` is
    None) are factorised whole (:func:`nmf_decompose`). Longer inputs: the
    templates are fit on :func:`fit_excerpt` (``fit_s`` seconds), then the
    activations of the whole input are solved with them fixed
    (:func:`solve_activations`, ``chunk_s`` seconds per call).

    Parameters
    ----------
    x : (channels, samples) float32
    n_components, n_fft, hop, seed, beta_loss : as :func:`nmf_decompose`
    fit_s, chunk_s : seconds; rate : Hz of ``x``
    """
    x = _check_input(x)
    fit_samples = None if fit_s is None else int(round(fit_s * rate))
    if fit_samples is None or x.shape[1] <= fit_samples:
        X, W, H = nmf_decompose(x, n_components, n_fft, hop, seed=seed, beta_loss=beta_loss)
        return Factorisation(X, W, H, x, X, H)
    excerpt = fit_excerpt(x, fit_samples)
    X_fit, W, H_fit = nmf_decompose(excerpt, n_components, n_fft, hop, seed=seed, beta_loss=beta_loss)
    X = stft(x, n_fft, hop)  # (channels, bins, frames)
    V = np.abs(X).mean(axis=0)  # (bins, frames)
    H = solve_activations(V, W, beta_loss, chunk_frames=max(int(chunk_s * rate / hop), 1))
    return Factorisation(X, W, H, excerpt, X_fit, H_fit)


def cached_nmf(x: np.ndarray, n_components: int, n_fft: int, hop: int, seed: int = 0,
               beta_loss: str = "kullback-leibler", cache: dict | None = None, fit_s: float | None = None,
               chunk_s: float = 30.0, rate: int = 16000) -> Factorisation:
    """:func:`factorise`, remembered in ``cache`` (one dict per input) across k and methods."""
    key = ("nmf", n_components, n_fft, hop, seed, beta_loss, fit_s, chunk_s, rate)
    if cache is None:
        return factorise(x, n_components, n_fft, hop, seed, beta_loss, fit_s, chunk_s, rate)
    if key not in cache:
        cache[key] = factorise(x, n_components, n_fft, hop, seed, beta_loss, fit_s, chunk_s, rate)
    return cache[key]


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
                      hop: int, length: int, power: float = 1.0, chunk_frames: int = 4096) -> list:
    """Masks ``(W_g H_g)^p / sum_j (W_j H_j)^p`` per group, applied to ``X`` and inverted.

    The masks are built ``chunk_frames`` frames at a time (each frame's mask
    depends on that frame only), so memory holds the k masked STFTs, never k
    float64 mask arrays of the whole input.

    Returns
    -------
    list of k (channels, length) float32, summing to the input.
    """
    Y = [np.empty_like(X) for _ in range(k)]  # k x (channels, bins, frames)
    for s in range(0, X.shape[-1], chunk_frames):
        mags = [W[:, groups == g] @ H[groups == g, s:s + chunk_frames] for g in range(k)]  # (bins, chunk)
        for y, m in zip(Y, ratio_masks(mags, power)):
            y[..., s:s + chunk_frames] = X[..., s:s + chunk_frames] * m
    out = []
    while Y:  # invert and free one masked STFT at a time
        out.append(istft(Y.pop(0), hop, length))
    return out


def nmf_cluster(x: np.ndarray, k: int, n_components: int, n_fft: int, hop: int, seed: int = 0, *,
                beta_loss: str = "kullback-leibler", features: str = "mfcc", power: float = 1.0,
                rate: int = 16000, cache: dict | None = None, fit_s: float | None = None,
                chunk_s: float = 30.0) -> list:
    """NMF + component clustering (the classic unsupervised baseline).

    The input's magnitude STFT is factorised into ``n_components`` templates
    and activations (:func:`factorise`); components are grouped into ``k``
    instruments by K-Means on :func:`template_features`, and each group's
    reconstruction defines a soft mask on the input's STFT (the estimates sum
    to the input).

    Parameters
    ----------
    x : (channels, samples) float32
    k : instruments to separate
    n_components : NMF rank (>= k)
    n_fft, hop : STFT size and hop in samples
    beta_loss : "kullback-leibler" (default) or "frobenius"
    features : see :func:`template_features`
    power : mask exponent (1: ratio of magnitudes, 2: Wiener)
    rate : Hz of ``x`` (mel scale of the MFCC features, seconds of ``fit_s``)
    cache : optional dict reused across calls on the same ``x`` (the NMF is computed once)
    fit_s, chunk_s : seconds, see :func:`factorise` (``fit_s=None``: always whole-input NMF)

    Returns
    -------
    list of k (channels, samples) float32.
    """
    if k > n_components:
        raise ValueError(f"k={k} groups need at least as many NMF components, got {n_components}")
    f = cached_nmf(x, n_components, n_fft, hop, seed, beta_loss, cache, fit_s, chunk_s, rate)
    groups = group_components(template_features(f.W, f.H, features, rate), k, seed)
    return grouped_estimates(f.X, f.W, f.H, groups, k, hop, np.asarray(x).shape[1], power)


# --- latent space of the VAE, beyond time frames --------------------------------------


def component_latents(model, X: np.ndarray, W: np.ndarray, H: np.ndarray, hop: int, length: int,
                      chunk_s: float = 10.0) -> np.ndarray:
    """Latent statistics of each NMF component's audio.

    Each component r is Wiener-filtered out of the input (``X * W_r H_r / W H``),
    encoded by the VAE, and summarised by the energy-weighted mean and standard
    deviation of its latent frames (silent frames would otherwise dominate).

    Parameters
    ----------
    X : (channels, bins, frames) STFT; W : (bins, R); H : (R, frames)
    length : samples of the audio ``X`` came from

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
               *, beta_loss: str = "kullback-leibler", power: float = 1.0, cache: dict | None = None,
               fit_s: float | None = None, chunk_s: float = 30.0) -> list:
    """Separate simultaneous notes with the VAE's latent space.

    NMF components of the input (which can sound at the same time) are each
    turned into audio, encoded by the VAE and grouped by K-Means on their
    latent statistics (:func:`component_latents`); each group's NMF
    reconstruction gives a soft mask on the input's STFT (estimates sum to the
    input). Unlike the time-frame methods, this is not capped by
    :func:`separate.oracle_frames`. For a long input the latent statistics are
    taken on the excerpt the templates were fit on (:func:`factorise`), so
    their cost does not grow with the length.

    Parameters
    ----------
    model : SEANetVAE (its ``sample_rate`` is the rate of ``x``)
    x : (channels, samples) float32
    k, n_components, n_fft, hop, seed, beta_loss, power, fit_s, chunk_s : as :func:`nmf_cluster`
    cache : optional dict reused across calls on the same ``x`` (different k):
        holds the NMF and the component latents so they are computed once.

    Returns
    -------
    list of k (channels, samples) float32.
    """
    if k > n_components:
        raise ValueError(f"k={k} groups need at least as many NMF components, got {n_components}")
    x = _check_input(x)
    rate = int(model.sample_rate)
    cache = {} if cache is None else cache
    f = cached_nmf(x, n_components, n_fft, hop, seed, beta_loss, cache, fit_s, chunk_s, rate)
    key = ("latent_nmf", n_components, n_fft, hop, seed, beta_loss, fit_s, chunk_s, rate)
    if key not in cache:
        cache[key] = component_latents(model, f.X_fit, f.W, f.H_fit, hop, f.excerpt.shape[1])
    groups = group_components(cache[key], k, seed)
    return grouped_estimates(f.X, f.W, f.H, groups, k, hop, x.shape[1], power)
