"""Pan clustering: separation by where each instrument sits in the stereo image (DUET-style).

In an amplitude-panned stereo mix an instrument at pan angle ``theta`` reaches
the channels as ``(cos theta, sin theta)`` times its signal, so in every
time-frequency bin that one instrument dominates, ``arctan2(|R|, |L|)`` is
that instrument's angle. Clustering the bins by that angle (weighted by their
energy) and masking the mixture around each cluster's centre separates
instruments that sit at different places, with no label and no training
(Yilmaz & Rickard 2004, "Blind separation of speech mixtures via
time-frequency masking", for the amplitude-only case).

It is a different cue from everything else in the report: the other methods
see the mono downmix, this one the stereo image. The embedded set pans every
instrument of "other" as a point source at a position drawn uniformly from
[-0.6, 0.6] (constant-power, no reverb), which is the easiest case there is;
in real mixes (stereo samples, reverb, instruments spread across the image)
the cue is far weaker. The report uses it in two ways: as a reference row
(``pan``) and as a label-free teacher for a mono network
(:mod:`separator_student` with ``StudentConfig.teacher = "pan"``).

- :func:`pan_angles`: the angle and energy of every bin, and the mono STFT.
- :func:`pan_masks`: ``k`` mixture-consistent soft masks around the centres of
  a weighted k-means of the angles (``k = None``: chosen by silhouette).
- :func:`separate_pan`: stereo ``(2, S)`` in, ``k`` estimates of the downmix out (long inputs in
  chunks: one set of centres for the whole input, each chunk masked with it).
"""

from __future__ import annotations

import numpy as np

from .errors import AudioError

# bins this far below the loudest bin carry no reliable angle and are left out of the clustering
FLOOR_DB = -50.0
# the silhouette (k = auto) and the k-means fit use at most this many bins, drawn by energy
MAX_POINTS = 4000
# inputs longer than this (samples; 30 s at 16 kHz) are done in chunks that overlap by OVERLAP
CHUNK = 480_000
OVERLAP = 16_000


def _stft(x: np.ndarray, n_fft: int, hop: int) -> np.ndarray:
    """``(C, S)`` -> complex ``(C, F, T)`` (Hann window, centred frames)."""
    import torch

    win = torch.hann_window(n_fft, dtype=torch.float64)
    return torch.stft(torch.from_numpy(np.asarray(x, dtype=np.float64)), n_fft, hop, window=win,
                      center=True, return_complex=True).numpy()


def _istft(X: np.ndarray, n_fft: int, hop: int, length: int) -> np.ndarray:
    """Complex ``(..., F, T)`` -> ``(..., length)`` float32."""
    import torch

    win = torch.hann_window(n_fft, dtype=torch.float64)
    lead = X.shape[:-2]
    y = torch.istft(torch.from_numpy(X.reshape((-1,) + X.shape[-2:])), n_fft, hop, window=win, center=True,
                    length=length).numpy()
    return y.reshape(lead + (length,)).astype(np.float32)


def pan_angles(x: np.ndarray, n_fft: int, hop: int, name: str = "audio"):
    """The pan angle and energy of every time-frequency bin of a stereo signal.

    Parameters
    ----------
    x : (2, samples) float, left and right
    name : what ``x`` is, for the error message

    Returns
    -------
    theta : (F, T) angle ``arctan2(|R|, |L|)`` in [0, pi/2] (pi/4 = centre)
    weight : (F, T) energy ``|L|^2 + |R|^2``
    X : (2, F, T) complex STFT of the two channels

    Raises
    ------
    AudioError
        When the two channels are the same (a mono file read as stereo): there is no image to use.
    """
    _check_stereo(x, name)
    return _angles(np.asarray(x), n_fft, hop)


def _check_stereo(x: np.ndarray, name: str) -> None:
    x = np.asarray(x)
    if x.ndim != 2 or x.shape[0] != 2:
        raise ValueError(f"pan clustering needs stereo audio of shape (2, samples), got {x.shape}")
    if np.allclose(x[0], x[1], rtol=0.0, atol=1e-6):
        raise AudioError(f"{name}: has no stereo image (its two channels are the same: mono), so it cannot "
                         "be split by pan; give a stereo mix, or leave out the pan methods")


def _angles(x: np.ndarray, n_fft: int, hop: int):
    """:func:`pan_angles` without the checks (a chunk of a checked input may be centred or silent)."""
    X = _stft(x, n_fft, hop)
    mag = np.abs(X)
    return np.arctan2(mag[1], mag[0]), mag[0] ** 2 + mag[1] ** 2, X


def _points(theta: np.ndarray, weight: np.ndarray, seed: int, represent: bool = False):
    """The bins above the energy floor, subsampled to :data:`MAX_POINTS` with probability ~ energy.

    Drawn points count once each; with ``represent`` each stands for an equal share of the energy of
    the bins it was drawn from (so the points of several chunks weigh as their chunks' energies).
    """
    keep = weight > weight.max() * 10 ** (FLOOR_DB / 10)
    t, w = theta[keep], weight[keep]
    if len(t) > MAX_POINTS:
        idx = np.random.default_rng(seed).choice(len(t), MAX_POINTS, replace=False, p=w / w.sum())
        return t[idx], np.full(MAX_POINTS, w.sum() / MAX_POINTS if represent else 1.0)
    return t, w


def pan_centres(theta: np.ndarray, weight: np.ndarray, k: int | None, k_range=(2, 5), seed: int = 0):
    """Sorted centres of the pan angles' clusters and the k used.

    ``k = None`` picks k in ``k_range`` by the silhouette of the energy-drawn bins;
    k is capped by the number of distinct angles.

    Returns
    -------
    centres : (k,) float, ascending (left to right)
    scores : dict k -> silhouette (empty when k was given)
    """
    from sklearn.cluster import KMeans
    from sklearn.metrics import silhouette_score

    t, w = _points(theta, weight, seed)
    if len(t) == 0:
        raise ValueError("the input is silent: no time-frequency bin to cluster by pan")
    distinct = len(np.unique(np.round(t, 4)))

    fits: dict = {}  # k -> fitted KMeans: the chosen k is not fitted twice

    def fit(kk):
        if kk not in fits:
            fits[kk] = KMeans(kk, n_init=4, random_state=seed).fit(t[:, None], sample_weight=w)
        return fits[kk]

    scores = {}
    if k is None:
        lo, hi = k_range[0], min(k_range[1], distinct - 1, len(t) - 1)
        for kk in range(lo, hi + 1):
            labels = fit(kk).labels_
            scores[kk] = float(silhouette_score(t[:, None], labels)) if len(set(labels)) > 1 else -1.0
        k = max(scores, key=lambda kk: (scores[kk], -kk)) if scores else 1
    k = max(1, min(int(k), distinct))
    return np.sort(fit(k).cluster_centers_[:, 0]), scores


def pan_masks(theta: np.ndarray, centres: np.ndarray, width: float) -> np.ndarray:
    """Soft masks ``(k, F, T)`` that sum to one in every bin: a Gaussian of ``width`` (radians)
    around each centre, normalised over the centres (``width = 0``: hard, nearest centre)."""
    d = theta[None] - np.asarray(centres)[:, None, None]  # (k, F, T)
    if width <= 0:
        m = np.zeros_like(d)
        np.put_along_axis(m, np.abs(d).argmin(0)[None], 1.0, axis=0)
        return m
    logit = -(d ** 2) / (2 * width ** 2)
    m = np.exp(logit - logit.max(0, keepdims=True))
    return m / m.sum(0, keepdims=True)


def separate_pan(x: np.ndarray, k: int | None, n_fft: int = 1024, hop: int = 256, width: float = 0.03,
                 k_range=(2, 5), out_channels: int = 1, seed: int = 0, name: str = "audio",
                 chunk: int = CHUNK, overlap: int = OVERLAP):
    """Split a stereo signal into ``k`` parts by pan angle.

    Parameters
    ----------
    x : (2, samples) float, the stereo input
    k : number of parts, or None (silhouette over ``k_range``)
    width : mask width, radians of pan angle (0: hard masks)
    out_channels : 1 -> the estimates are of the mono downmix ``(L + R) / 2``; 2 -> of each channel
    chunk, overlap : samples; a longer input is done in chunks (memory stays bounded): the centres come
        from the bins of every chunk (energy-drawn, each standing for its share of the energy), then each
        chunk is masked and the chunks are joined by cross-fades

    Returns
    -------
    estimates : (k, out_channels, samples) float32; they sum to the (downmixed) input
    info : dict with ``centres`` (radians) and ``k_scores`` (silhouette per k, k = auto only)
    """
    from .audio import chunk_bounds, overlap_add

    if out_channels not in (1, 2):
        raise ValueError(f"out_channels must be 1 or 2, got {out_channels}")
    x = np.asarray(x, dtype=np.float32)
    bounds = chunk_bounds(x.shape[1], chunk, overlap)
    if len(bounds) == 1:
        theta, weight, X = pan_angles(x, n_fft, hop, name)
        centres, scores = pan_centres(theta, weight, k, k_range, seed)
        return _masked(X, theta, centres, width, out_channels, n_fft, hop, x.shape[1]), \
            {"centres": centres, "k_scores": scores}
    _check_stereo(x, name)
    # Two passes over the chunks (the STFT computed twice) keep memory bounded by one chunk's STFT.
    points = [_points(*_angles(x[:, a:b], n_fft, hop)[:2], seed + i, represent=True)
              for i, (a, b) in enumerate(bounds) if np.any(x[:, a:b])]
    if not points:
        raise ValueError("the input is silent: no time-frequency bin to cluster by pan")
    t, w = (np.concatenate(a) for a in zip(*points))
    centres, scores = pan_centres(t, w, k, k_range, seed)
    parts = []
    for a, b in bounds:
        theta, _, X = _angles(x[:, a:b], n_fft, hop)
        parts.append(_masked(X, theta, centres, width, out_channels, n_fft, hop, b - a).reshape(-1, b - a))
    est = overlap_add(parts, bounds, x.shape[1]).astype(np.float32)
    return est.reshape(len(centres), out_channels, -1), {"centres": centres, "k_scores": scores}


def _masked(X, theta, centres, width, out_channels, n_fft, hop, length) -> np.ndarray:
    """The ``(k, out_channels, length)`` parts: masks around ``centres`` on the downmix or on each channel."""
    m = pan_masks(theta, centres, width)  # (k, F, T)
    Y = m[:, None] * (X.mean(0, keepdims=True) if out_channels == 1 else X)[None]  # (k, C, F, T)
    return _istft(Y, n_fft, hop, length)


__all__ = ["CHUNK", "FLOOR_DB", "MAX_POINTS", "OVERLAP", "pan_angles", "pan_centres", "pan_masks", "separate_pan"]
