"""Cluster metrics: what can be measured without ground truth, and how well labels group in a space.

Without ground truth (any data set, real MUSDB18 included): :func:`mixture_mse`
(do the estimates sum to the input?), :func:`assignment_entropy`,
:func:`spectral_entropy`, :func:`sparsity`, :func:`energy_shares`.
Latent space against labels: :func:`knn_purity`, :func:`silhouette` and
:func:`label_scores` (both, with the chance level). Conventions are those of
:mod:`mss_helpers.metrics`.
"""

from __future__ import annotations

import math

import numpy as np

from .metrics import as_audio, estimate_stack, require_sound, stft_mag


# --------------------------------------------------------------------------- unsupervised


def mixture_mse(mixture, estimates) -> float:
    """MSE between the input and the sum of the estimates (consistency, no ground truth).

    Parameters
    ----------
    mixture : (channels, samples) float
    estimates : sequence of (channels, samples) float, or (K, channels, samples)
    """
    est = estimate_stack(estimates)
    mix = as_audio(mixture, "mixture")
    if mix.shape != est.shape[1:]:
        raise ValueError(f"mixture {mix.shape} and estimates {est.shape[1:]} differ in shape")
    return float(np.mean((mix - est.sum(axis=0)) ** 2))


def assignment_entropy(labels, k: int | None = None) -> float:
    """Shannon entropy (bits) of how many frames each cluster got.

    0 when every frame is in one cluster; ``log2(k)`` when the k clusters are
    equally used.

    Parameters
    ----------
    labels : (n_frames,) int
        Cluster index of each frame, 0..k-1.
    k : int, optional
        Number of clusters (counts empty clusters as zero-probability; they add
        nothing). Default: ``max(labels) + 1``.
    """
    lab = np.asarray(labels)
    if lab.ndim != 1 or lab.size == 0:
        raise ValueError(f"labels must be a non-empty 1-D array, got shape {lab.shape}")
    if not np.issubdtype(lab.dtype, np.integer):
        if not np.all(np.isfinite(lab)) or np.any(lab != np.round(lab)):
            raise ValueError("labels must be integers")
        lab = lab.astype(np.int64)
    if lab.min() < 0:
        raise ValueError("labels must be >= 0 (assign noise points before computing the entropy)")
    if k is not None and k <= lab.max():
        raise ValueError(f"k={k} but labels go up to {int(lab.max())}")
    counts = np.bincount(lab, minlength=k or 0)
    p = counts[counts > 0] / lab.size
    return float(max(0.0, -np.sum(p * np.log2(p))))


def spectral_entropy(audio, n_fft: int = 1024) -> float:
    """Shannon entropy (bits) of the time-averaged, normalised power spectrum.

    The power STFT (Hann, hop ``n_fft // 4``) is averaged over channels and
    frames and normalised to sum to 1 over the ``n_fft // 2 + 1`` bins. White
    noise approaches ``log2(n_fft // 2 + 1)``; a pure tone is near 0-2 bits.
    This is what the seed called "cluster entropy".

    Parameters
    ----------
    audio : (channels, samples) float

    Raises
    ------
    ValueError
        Silent or non-finite audio, or shorter than half an STFT window.
    """
    a = as_audio(audio, "audio")
    require_sound(a, "audio")
    power = (stft_mag(a, n_fft, n_fft // 4) ** 2).mean(axis=(0, 2))  # (bins,)
    p = power / power.sum()
    p = p[p > 0]
    return float(-np.sum(p * np.log2(p)))


def sparsity(audio, n_fft: int = 1024) -> float:
    """Hoyer sparsity of the STFT magnitude, in [0, 1].

    ``(sqrt(n) - |x|_1 / |x|_2) / (sqrt(n) - 1)`` over all ``n`` magnitude
    values (channels x bins x frames; Hann, hop ``n_fft // 4``): 0 when all are
    equal, 1 when one value holds all the energy.

    Parameters
    ----------
    audio : (channels, samples) float
    """
    a = as_audio(audio, "audio")
    require_sound(a, "audio")
    mag = stft_mag(a, n_fft, n_fft // 4).ravel()
    n = mag.size
    if n < 2:
        raise ValueError("audio gives fewer than 2 STFT values; sparsity is undefined")
    ratio = mag.sum() / np.linalg.norm(mag)
    return float(np.clip((math.sqrt(n) - ratio) / (math.sqrt(n) - 1.0), 0.0, 1.0))


def energy_shares(estimates) -> list[float]:
    """Percent of the total energy in each estimate (sums to 100).

    Parameters
    ----------
    estimates : sequence of (channels, samples) float, or (K, channels, samples)
    """
    est = estimate_stack(estimates)
    energies = np.sum(est ** 2, axis=(1, 2))
    total = energies.sum()
    if total <= 0:
        raise ValueError("estimates are all silent: energy shares are undefined")
    return [float(100.0 * e / total) for e in energies]


# --------------------------------------------------------------------------- latent space


def _points_labels(X, labels, max_n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    X = np.asarray(X, dtype=np.float64)
    y = np.asarray(labels)
    if X.ndim != 2:
        raise ValueError(f"X must be (n, dim), got shape {X.shape}")
    if y.shape != (X.shape[0],):
        raise ValueError(f"labels must be ({X.shape[0]},) to match X, got shape {y.shape}")
    if not np.all(np.isfinite(X)):
        raise ValueError("X contains NaN or infinite values")
    if X.shape[0] > max_n:
        idx = np.sort(np.random.default_rng(seed).choice(X.shape[0], size=max_n, replace=False))
        X, y = X[idx], y[idx]
    return X, y


def knn_purity(X, labels, k: int = 10, max_n: int = 5000, seed: int = 0) -> float:
    """Mean fraction of each point's k nearest neighbours that share its label.

    1 when labels form separate neighbourhoods; about ``sum(p_c^2)`` (the chance
    level, ``p_c`` the label frequencies) when they are mixed. Computed on a
    seeded subsample of ``max_n`` points; the point itself is not its own
    neighbour.

    Parameters
    ----------
    X : (n, dim) float
        Points, e.g. latent frames or their UMAP projection.
    labels : (n,)
        Ground-truth label per point (e.g. dominant instrument).
    """
    from sklearn.neighbors import NearestNeighbors

    X, y = _points_labels(X, labels, max_n, seed)
    if k < 1 or X.shape[0] <= k:
        raise ValueError(f"k must be between 1 and n - 1 = {X.shape[0] - 1}, got {k}")
    _, idx = NearestNeighbors(n_neighbors=k + 1).fit(X).kneighbors(X)
    neighbours = idx[:, 1:]  # drop the point itself (first at distance 0)
    return float(np.mean(y[neighbours] == y[:, None]))


def silhouette(X, labels, max_n: int = 5000, seed: int = 0) -> float:
    """Silhouette score (Euclidean) of ``labels`` on ``X``, on a seeded subsample.

    In [-1, 1]; higher means the labelled groups are compact and apart.

    Raises
    ------
    ValueError
        Fewer than 2 distinct labels, or as many labels as points.
    """
    from sklearn.metrics import silhouette_score

    X, y = _points_labels(X, labels, max_n, seed)
    n_labels = len(np.unique(y))
    if not 2 <= n_labels <= X.shape[0] - 1:
        raise ValueError(f"silhouette needs 2 to n - 1 distinct labels; got {n_labels} labels "
                         f"for {X.shape[0]} points")
    return float(silhouette_score(X, y))


def label_scores(X: np.ndarray, labels, seed: int = 0, k: int = 10) -> dict:
    """How well ground-truth labels group in a space, on the labelled points (label >= 0).

    Returns ``{"n_points", "knn_purity", "knn_chance", "silhouette"}``:
    k-NN purity and its chance level ``sum(p_c^2)`` (label frequencies), and the
    silhouette of the labels (:func:`knn_purity` / :func:`silhouette`).
    """
    X, labels = np.asarray(X), np.asarray(labels)
    keep = labels >= 0
    if keep.sum() <= k or len(np.unique(labels[keep])) < 2:
        raise ValueError("label_scores needs more than k labelled points and at least two distinct labels")
    p = np.bincount(labels[keep]) / keep.sum()
    return {"n_points": int(keep.sum()), "knn_purity": knn_purity(X[keep], labels[keep], k=k, seed=seed),
            "knn_chance": float(np.sum(p**2)), "silhouette": silhouette(X[keep], labels[keep], seed=seed)}
