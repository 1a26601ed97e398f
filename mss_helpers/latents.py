"""Latent frames of whole tracks, their ground-truth labels, and a 2-d UMAP map.

How well labels group in a space (k-NN purity, silhouette) is scored in
:mod:`cluster_metrics` (``label_scores``), a floor above this one.

A latent frame covers ``hop`` samples (the product of the model's ratios), so
the ground truth of frame ``i`` is read from samples ``[i * hop, (i + 1) * hop)``
of each reference instrument (``Track.other_stems``).
"""

from __future__ import annotations

import numpy as np

from .frames import frame_labels


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


def collect_latents(model, tracks, cfg, active_db: float = -40.0, progress: bool = False) -> dict:
    """Encode every track of a split and label its frames.

    Parameters
    ----------
    model : SEANetVAE
    tracks : list of datasets.Track
    cfg : Config (data.sample_rate / channels / source choose the input)

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
    per_track = []
    for t in _maybe_progress(tracks, progress, "encoding"):
        audio = input_audio(t, cfg)
        frames = encode_track(model, audio)
        stems = t.other_stems(rate=rate, channels=channels)
        labels = frame_labels(stems, model.hop_length, len(frames), rate, active_db) if stems else None
        per_track.append((frames, labels))
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
    return {"X": np.concatenate(X).astype(np.float32), "dominant": np.concatenate(dom).astype(int),
            "n_active": np.concatenate(act).astype(int), "track_ids": np.concatenate(ids).astype(int),
            "track_names": [t.name for t in tracks], "names": names}


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
