"""Cluster metrics: what can be measured without ground truth, and how well labels group in a space.

Without ground truth (any data set, real MUSDB18 included): :func:`mixture_mse`
(do the estimates sum to the input?), :func:`assignment_entropy`,
:func:`spectral_entropy`, :func:`sparsity`, :func:`energy_shares`.
Latent space against labels: :func:`knn_purity`, :func:`silhouette` and
:func:`label_scores` (both, with the chance level); without instrument labels:
:func:`knn_agreement` (continuous values such as loudness) and
:func:`frame_scores`. The seed's clustering table, from the evaluation's rows:
:func:`seed_table`. Conventions are those of :mod:`mss_helpers.metrics`.
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


def knn_agreement(X, values, k: int = 10, max_n: int = 5000, seed: int = 0) -> float:
    """Pearson correlation between each point's value and the mean value of its k nearest neighbours.

    The counterpart of :func:`knn_purity` for a continuous value (a frame's
    loudness, its spectral centroid): near 1 when neighbours in ``X`` share the
    value, near 0 when the value has nothing to do with where a point lies.
    Points whose value is not finite are left out; seeded subsample of ``max_n``.

    Parameters
    ----------
    X : (n, dim) float
    values : (n,) float

    Raises
    ------
    ValueError
        At most ``k`` points with a finite value, or values (or their neighbour means) all equal.
    """
    from sklearn.neighbors import NearestNeighbors

    v = np.asarray(values, dtype=np.float64)
    keep = np.isfinite(v)
    X, v = _points_labels(np.asarray(X)[keep], v[keep], max_n, seed)
    if k < 1 or X.shape[0] <= k:
        raise ValueError(f"knn_agreement needs more than k={k} points with a finite value, got {X.shape[0]}")
    _, idx = NearestNeighbors(n_neighbors=k + 1).fit(X).kneighbors(X)
    around = v[idx[:, 1:]].mean(axis=1)  # (n,) mean value of the k neighbours, the point itself left out
    if np.ptp(v) == 0 or np.ptp(around) == 0:
        raise ValueError("knn_agreement is undefined when the values (or their neighbour means) are equal")
    return float(np.corrcoef(v, around)[0, 1])


def frame_scores(X, track_ids, features: dict, seed: int = 0, k: int = 10) -> dict:
    """How points group without instrument labels: by track, and by each continuous feature.

    Returns ``track_knn_purity``, ``track_knn_chance`` and ``track_silhouette``
    (:func:`label_scores` of the track ids; left out with fewer than two tracks)
    and ``<name>_knn_r`` (:func:`knn_agreement`) for each ``{name: (n,) values}``.
    """
    out = {}
    if len(np.unique(track_ids)) >= 2:
        scores = label_scores(X, track_ids, seed=seed, k=k)
        out.update({f"track_{key}": scores[key] for key in ("knn_purity", "knn_chance", "silhouette")})
    for name, values in features.items():
        out[f"{name}_knn_r"] = knn_agreement(X, values, k=k, seed=seed)
    return out


# --------------------------------------------------------------------------- the seed's table


def seed_table(rows, methods=None, max_ranks: int = 6):
    """The seed's clustering table out of the evaluation's rows: no ground truth needed.

    Parameters
    ----------
    rows : DataFrame of ``evaluate.run_evaluation`` (or its CSV): ``track``,
        ``method``, ``decoding``, ``k``, ``k_label``, ``estimate``, ``note`` and
        the unsupervised columns (``energy_share`` in percent); the supervised
        columns are not read.
    methods : methods to show (default: the latent-frame clusterings of
        ``cluster.METHODS`` found in ``rows``)
    max_ranks : energy shares shown per row; further ranks are counted ("+3 more")

    Returns
    -------
    DataFrame, one row per method x decoding x k_label (methods in the rows'
    order): ``tracks`` (with estimates), ``failed`` (tracks where the method
    gave no clusters), ``k`` (median number of clusters), ``mixture_mse`` and
    ``assignment_entropy`` (bits; medians over tracks), ``spectral_entropy``
    (bits) and ``sparsity`` (medians over every decoded cluster of every track),
    ``top_share`` (median over tracks of the largest cluster's energy fraction)
    and ``energy_shares``: per rank, largest first, the median over tracks of
    the energy fraction, e.g. ``"0.62 / 0.25 / 0.13"`` (a track with fewer
    clusters counts 0 at the ranks it lacks).
    """
    import pandas as pd

    from .cluster import METHODS

    rows = rows.assign(k_label=rows["k_label"].astype(str), note=rows["note"].fillna("").astype(str))
    if methods is None:
        methods = [m for m in dict.fromkeys(rows["method"]) if m in METHODS]
    rows = rows[rows["method"].isin(methods)]
    num = {c: pd.to_numeric(rows[c], errors="coerce") for c in ("estimate", "k", "energy_share")}
    rows = rows.assign(**num)

    def rank(label: str):  # fixed ks in numeric order, then auto and n
        return (0, int(label), "") if label.isdigit() else (1, 0, label)

    keys = sorted({tuple(r) for r in rows[["method", "decoding", "k_label"]].itertuples(index=False)},
                  key=lambda key: (list(methods).index(key[0]), key[1], rank(key[2])))
    out = []
    for method, decoding, k_label in keys:
        g = rows[(rows.method == method) & (rows.decoding == decoding) & (rows.k_label == k_label)]
        est = g[g["estimate"].notna()].drop_duplicates(["track", "estimate"])
        per_track = est.drop_duplicates("track")
        shares = [np.sort(t["energy_share"].to_numpy(float) / 100.0)[::-1] for _, t in est.groupby("track")]
        width = max((len(s) for s in shares), default=0)
        med = np.median([np.pad(s, (0, width - len(s))) for s in shares], axis=0) if shares else []
        text = " / ".join(f"{v:.2f}" for v in med[:max_ranks])
        out.append({"method": method, "decoding": decoding, "k_label": k_label, "tracks": len(per_track),
                    "failed": int(g.loc[g["note"] != "", "track"].nunique()),
                    "k": float(per_track["k"].median()) if len(per_track) else None,
                    **{c: _median(per_track[c]) for c in ("mixture_mse", "assignment_entropy")},
                    **{c: _median(est[c]) for c in ("spectral_entropy", "sparsity")},
                    "top_share": float(med[0]) if len(med) else None,
                    "energy_shares": text + (f" / +{width - max_ranks} more" if width > max_ranks else "")})
    return pd.DataFrame(out, columns=["method", "decoding", "k_label", "tracks", "failed", "k", "mixture_mse",
                                      "assignment_entropy", "spectral_entropy", "sparsity", "top_share",
                                      "energy_shares"])


def _median(values):
    import pandas as pd

    v = pd.to_numeric(values, errors="coerce").dropna()
    return float(v.median()) if len(v) else None
