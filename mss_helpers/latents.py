"""Latent frames of whole tracks, their ground-truth labels, and a 2-d UMAP map.

How well labels group in a space (k-NN purity, silhouette) is scored in
:mod:`cluster_metrics` (``label_scores``), a floor above this one.

A latent frame covers ``hop`` samples (the product of the model's ratios), so
the ground truth of frame ``i`` is read from samples ``[i * hop, (i + 1) * hop)``
of each reference instrument (``Track.other_stems``).
"""

from __future__ import annotations

import numpy as np

from .frames import frame_energies, frame_labels


def encode_track(model, audio: np.ndarray, chunk_s: float = 10.0) -> np.ndarray:
    """Latent frames of one track.

    Parameters
    ----------
    model : SEANetVAE
    audio : (channels, samples) float32 at the model's rate and channels
    chunk_s : seconds per encoder chunk (memory stays bounded on long tracks)

    Returns
    -------
    frames : (n_frames, latent_dim) float32, n_frames = ceil(samples / hop)
    """
    from .model import encode_audio

    return encode_audio(model, audio, chunk_s=chunk_s)


def collect_latents(model, tracks, cfg, active_db: float = -40.0, progress: bool = False,
                    features: bool = False) -> dict:
    """Encode every track of a split and label its frames.

    Parameters
    ----------
    model : SEANetVAE
    tracks : list of datasets.Track
    cfg : Config (data.sample_rate / channels / source choose the input)
    features : also describe each frame by the audio it encodes (:func:`frame_features`):
        ``rms_db`` and ``centroid_hz``, (n,) float each; what a root without
        instrument labels can colour frames by

    Returns
    -------
    dict with ``X`` (n, latent_dim) float32 latent frames of all tracks,
    ``dominant`` (n,) int index into ``names`` (-1: silent or no ground truth),
    ``n_active`` (n,) int (-1 where there is no ground truth), ``track_ids``
    (n,) int index into ``tracks``, ``track_names`` list[str] and ``names``
    (all instruments of the split, sorted).
    """
    from .datasets import input_audio

    if not tracks:
        raise ValueError("no tracks to encode")
    rate, channels = cfg.data.sample_rate, cfg.data.channels
    per_track, feats = [], []
    for t in _maybe_progress(tracks, progress, "encoding"):
        audio = input_audio(t, cfg)
        frames = encode_track(model, audio)
        stems = t.other_stems(rate=rate, channels=channels)
        labels = frame_labels(stems, model.hop_length, len(frames), rate, active_db) if stems else None
        per_track.append((frames, labels))
        if features:
            feats.append(frame_features(audio, model.hop_length, len(frames), rate))
    names = sorted({n for _, lab in per_track if lab for n in lab["names"]})
    index = {n: i for i, n in enumerate(names)}
    X, dom, act, ids = [], [], [], []
    for i, (frames, lab) in enumerate(per_track):
        X.append(frames)
        ids.append(np.full(len(frames), i))
        if lab is None:
            dom.append(np.full(len(frames), -1))
            act.append(np.full(len(frames), -1))
        else:
            lut = np.array([index[n] for n in lab["names"]])
            dom.append(np.where(lab["dominant"] >= 0, lut[np.maximum(lab["dominant"], 0)], -1))
            act.append(lab["n_active"])
    out = {"X": np.concatenate(X).astype(np.float32), "dominant": np.concatenate(dom).astype(int),
           "n_active": np.concatenate(act).astype(int), "track_ids": np.concatenate(ids).astype(int),
           "track_names": [t.name for t in tracks], "names": names}
    for key in ("rms_db", "centroid_hz") if features else ():
        out[key] = np.concatenate([f[key] for f in feats])
    return out


def frame_features(audio: np.ndarray, hop: int, n_frames: int, rate: int, n_fft: int = 1024,
                   floor_db: float = -100.0, chunk: int = 4096) -> dict:
    """Loudness and brightness of each latent frame, from the audio it encodes (no labels needed).

    Frame ``i`` covers samples ``[i * hop, (i + 1) * hop)`` (zero-padded past
    the end), as for :func:`frames.frame_labels`.

    Parameters
    ----------
    audio : (channels, samples) float
    hop : samples per latent frame
    n_frames : frames to describe
    rate : Hz
    n_fft : window (samples, Hann) of the spectral centroid, centred on the frame: a
        latent frame is too short (``hop``) for a spectrum of its own
    floor_db : loudness given to silent frames

    Returns
    -------
    dict with ``rms_db`` (n_frames,) float64, RMS over channels and the frame's
    samples in dB full scale (at least ``floor_db``), and ``centroid_hz``
    (n_frames,) float64, the power-weighted mean frequency of the window
    (channels averaged); NaN where the window is silent.
    """
    audio = np.asarray(audio, dtype=np.float64)
    if audio.ndim != 2 or hop < 1 or n_frames < 1 or n_fft < 2:
        raise ValueError(f"need audio (channels, samples), hop, n_frames and n_fft >= 1, got {audio.shape}, "
                         f"{hop}, {n_frames}, {n_fft}")
    mean_square = frame_energies(audio, hop, n_frames) / (audio.shape[0] * hop)
    rms_db = 10.0 * np.log10(np.maximum(mean_square, 10.0 ** (floor_db / 10.0)))
    # Zero-pad so that window i starts at sample i * hop + hop // 2 - n_fft // 2 of the audio (its centre
    # is the frame's centre) and the last window ends inside the padded signal.
    start = n_fft // 2 - hop // 2
    padded = np.zeros((audio.shape[0], start + n_frames * hop + n_fft))
    m = min(audio.shape[1], n_frames * hop)
    padded[:, start:start + m] = audio[:, :m]
    window = np.hanning(n_fft + 2)[1:-1]  # no zero end points
    freqs = np.fft.rfftfreq(n_fft, 1.0 / rate)
    centroid = np.empty(n_frames)
    for a in range(0, n_frames, chunk):  # bounded memory on long tracks: (channels, chunk, n_fft)
        b = min(a + chunk, n_frames)
        seg = np.lib.stride_tricks.sliding_window_view(padded[:, a * hop:(b - 1) * hop + n_fft], n_fft,
                                                       axis=1)[:, ::hop]
        power = (np.abs(np.fft.rfft(seg * window, axis=-1)) ** 2).mean(axis=0)  # (frames, bins)
        total = power.sum(axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            centroid[a:b] = np.where(total > 0, power @ freqs / total, np.nan)
    return {"rms_db": rms_db, "centroid_hz": centroid}


def subsample(n: int, max_points: int, seed: int = 0) -> np.ndarray:
    """Sorted indices of at most ``max_points`` of ``n`` items, drawn without replacement (seeded)."""
    if n <= max_points:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).choice(n, size=max_points, replace=False))


def umap_project(X: np.ndarray, cfg, seed: int = 0, max_fit: int | None = None) -> np.ndarray:
    """2-d UMAP map of latent frames.

    UMAP is fitted on at most ``max_fit`` frames (default
    ``cfg.cluster.max_fit_frames``) drawn with ``seed``; the other frames are
    placed with ``transform``, so big sets stay affordable.

    Parameters
    ----------
    X : (n, latent_dim) float
    cfg : Config (cluster.umap_neighbors, cluster.umap_min_dist)

    Returns
    -------
    (n, 2) float32
    """
    import warnings

    import umap

    X = np.asarray(X, dtype=np.float32)
    if X.ndim != 2 or X.shape[0] < 3:
        raise ValueError(f"UMAP needs X of shape (n >= 3, dim), got {X.shape}")
    max_fit = cfg.cluster.max_fit_frames if max_fit is None else max_fit
    fit_idx = subsample(len(X), max_fit, seed)
    neighbors = int(min(cfg.cluster.umap_neighbors, len(fit_idx) - 1))
    reducer = umap.UMAP(n_neighbors=max(neighbors, 2), min_dist=cfg.cluster.umap_min_dist,
                        n_components=2, random_state=seed, n_jobs=1,
                        # Below 4096 points umap-learn uses exact distances and its transform()
                        # then computes pairwise distances through a Python callable: hours for
                        # 50k frames. The nearest-neighbour index keeps transform() fast.
                        force_approximation_algorithm=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # UMAP warns that a seed disables parallelism: that is the point
        emb = reducer.fit_transform(X[fit_idx])
        out = np.empty((len(X), 2), dtype=np.float32)
        out[fit_idx] = emb
        rest = np.setdiff1d(np.arange(len(X)), fit_idx)
        if len(rest):
            out[rest] = reducer.transform(X[rest])
    return out


def _maybe_progress(items, progress: bool, desc: str):
    if not progress:
        return items
    from tqdm.auto import tqdm

    return tqdm(items, desc=desc)
