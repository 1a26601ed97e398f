"""Clustering latent frames: every method behind one function, and choosing k.

:func:`cluster_frames` takes ``(n_frames, dim)`` features (latent frames, or
their UMAP projection) and returns a :class:`ClusterResult` in which every
frame has a cluster. The steps, all deterministic given ``seed``:

1. **Standardise** each feature dimension to zero mean and unit variance
   (``sklearn.preprocessing.StandardScaler``; constant dimensions are left at
   0), so no latent channel dominates the distances by its scale alone.
2. **Subsample** when there are more than ``cfg.max_fit_frames`` frames: the
   method is fitted on a seeded random subsample and the other frames are
   assigned afterwards -- by the fitted model's ``predict`` (nearest centroid
   for K-Means, most probable component for the GMM) when clustering raw
   features, otherwise by a 5-nearest-neighbour classifier trained on the
   subsample's standardised features and labels. Agglomerative, spectral,
   DBSCAN and HDBSCAN cost O(n^2) memory or time, so 100k+ frames could not
   be clustered otherwise.
3. **Embed** (optional, ``embedding="spectral"``): map the (sub)sample with
   ``sklearn.manifold.SpectralEmbedding`` (k-nearest-neighbour graph) as the
   original project did, with ``k - 1`` components (``k_range[1] - 1`` when k
   is chosen, each candidate k then using the first ``k - 1``), and cluster
   in that space.
4. **Cluster** with one of :data:`METHODS`. When ``k`` is None it is chosen
   by the silhouette score over ``cfg.k_range`` (for kmeans, agglomerative,
   gmm and spectral); DBSCAN and HDBSCAN find their own number of clusters.
   Their noise points are then given to the cluster of the nearest non-noise
   point, and the noise fraction is kept in ``info``.
5. **Relabel** clusters 0..k-1 by decreasing size.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .config import ClusterConfig
from .errors import UserError

METHODS = ("kmeans", "agglomerative", "dbscan", "gmm", "spectral", "hdbscan")
EMBEDDINGS = ("raw", "spectral")
DENSITY_METHODS = ("dbscan", "hdbscan")  # choose their own number of clusters

DBSCAN_EPS_PERCENTILE = 90.0  # eps = this percentile of the distance to the min_samples-th neighbour
ASSIGN_NEIGHBOURS = 5  # k of the k-NN classifier that assigns frames left out of the fit


class ClusterError(UserError, ValueError):
    """Frames that cannot be clustered as asked (too few, NaN, k too large, all noise)."""


@dataclass
class ClusterResult:
    """The outcome of :func:`cluster_frames`.

    Attributes
    ----------
    labels : (n_frames,) int64
        Cluster of every frame, 0..k-1, cluster 0 the largest. No frame is
        left unassigned (noise points of DBSCAN/HDBSCAN included).
    k : int
        Number of clusters found (1 is possible and not an error).
    method : str
        One of :data:`METHODS`.
    embedding : str
        ``"raw"`` or ``"spectral"``.
    info : dict
        How the result was reached: ``n_frames``, ``fitted_on`` (frames the
        method saw), ``assigned_by`` (``"predict"``, ``"knn"`` or ``None``),
        ``k_chosen_by`` (``"given"``, ``"silhouette"`` or ``"density"``),
        ``k_scores`` (silhouette per k, when chosen), and for DBSCAN/HDBSCAN
        ``eps``/``min_samples``/``min_cluster_size``, ``noise_fraction`` and
        ``note`` when a single cluster was found.
    """

    labels: np.ndarray
    k: int
    method: str
    embedding: str = "raw"
    info: dict = field(default_factory=dict)


# --------------------------------------------------------------------------- helpers


def _check_frames(X) -> np.ndarray:
    X = np.asarray(X, dtype=np.float64)
    if X.ndim != 2:
        raise ClusterError(f"frames must be a (n_frames, dim) array, got shape {X.shape}")
    if X.shape[0] < 2:
        raise ClusterError(f"need at least 2 frames to cluster, got {X.shape[0]}")
    if X.shape[1] < 1:
        raise ClusterError("frames have 0 feature dimensions")
    if not np.all(np.isfinite(X)):
        bad = int(np.sum(~np.all(np.isfinite(X), axis=1)))
        raise ClusterError(f"frames contain NaN or infinite features ({bad} of {X.shape[0]} frames)")
    return X


def _standardise(X: np.ndarray) -> np.ndarray:
    from sklearn.preprocessing import StandardScaler

    return StandardScaler().fit_transform(X)


def _relabel_by_size(labels: np.ndarray) -> np.ndarray:
    """Map labels to 0..k-1 with 0 the largest cluster (ties: first-seen first)."""
    uniq, first, counts = np.unique(labels, return_index=True, return_counts=True)
    order = sorted(range(len(uniq)), key=lambda i: (-counts[i], first[i]))
    mapping = {uniq[i]: new for new, i in enumerate(order)}
    return np.array([mapping[v] for v in labels], dtype=np.int64)


def _k_bounds(k_range, n: int) -> tuple[int, int]:
    lo, hi = int(k_range[0]), int(k_range[1])
    if lo < 2 or hi < lo:
        raise ClusterError(f"k_range must be (lo, hi) with 2 <= lo <= hi, got {tuple(k_range)}")
    hi = min(hi, n - 1)  # the silhouette needs at most n - 1 clusters
    if hi < lo:
        raise ClusterError(f"too few frames ({n}) to choose k in {tuple(k_range)}")
    return lo, hi


def _fit_predict(X: np.ndarray, method: str, k: int, seed: int):
    """Fit one k-based method on X; return (labels, fitted model)."""
    from sklearn import cluster, mixture

    if method == "kmeans":
        model = cluster.KMeans(n_clusters=k, n_init=10, random_state=seed)
    elif method == "agglomerative":
        model = cluster.AgglomerativeClustering(n_clusters=k, linkage="ward")
    elif method == "gmm":
        model = mixture.GaussianMixture(n_components=k, covariance_type="full", n_init=2,
                                        random_state=seed)
    elif method == "spectral":
        model = cluster.SpectralClustering(n_clusters=k, affinity="nearest_neighbors",
                                           n_neighbors=min(10, X.shape[0] - 1), random_state=seed,
                                           assign_labels="kmeans")
    else:
        raise ValueError(f"{method!r} does not take a number of clusters")
    return np.asarray(model.fit_predict(X)), model


# --------------------------------------------------------------------------- choosing k


def choose_k_silhouette(X, k_range=(2, 6), seed: int = 0, method: str = "kmeans",
                        max_n: int = 2000, nested: bool = False) -> tuple[int, dict[int, float]]:
    """The k in ``k_range`` (inclusive) whose clustering has the best silhouette.

    Parameters
    ----------
    X : (n, dim) float
        Features, used as given (standardise first if wanted).
    k_range : (lo, hi)
        Inclusive; ``hi`` is clipped to ``n - 1``.
    method : str
        The k-based method whose labels are scored (kmeans, agglomerative,
        gmm, spectral).
    max_n : int
        The silhouette is computed on a seeded subsample of this many points.
    nested : bool
        X holds spectral-embedding coordinates ordered by eigenvalue: each k
        is fitted and scored on the first ``k - 1`` columns only.

    Returns
    -------
    (k, scores)
        The best k (the smallest on ties) and ``{k: silhouette}`` for every k tried.
    """
    from sklearn.metrics import silhouette_score

    X = _check_frames(X)
    lo, hi = _k_bounds(k_range, X.shape[0])
    scores = {}
    if nested and X.shape[1] < hi - 1:
        raise ClusterError(f"nested k choice needs {hi - 1} embedding columns, got {X.shape[1]}")
    for k in range(lo, hi + 1):
        Xk = X[:, :k - 1] if nested else X
        labels, _ = _fit_predict(Xk, method, k, seed)
        if len(np.unique(labels)) < 2:
            scores[k] = -1.0  # degenerate fit: one cluster has no silhouette, rank it last
            continue
        sample = min(max_n, X.shape[0]) if X.shape[0] > max_n else None
        scores[k] = float(silhouette_score(Xk, labels, sample_size=sample, random_state=seed))
    best = max(scores, key=lambda k: (scores[k], -k))
    return best, scores


def choose_k_eigengap(X, k_range=(2, 6), n_neighbors: int = 10, max_n: int = 2000,
                      seed: int = 0) -> tuple[int, np.ndarray]:
    """The k in ``k_range`` after which the graph Laplacian's eigenvalues jump most.

    Builds a symmetric k-nearest-neighbour graph (``n_neighbors``), takes the
    smallest eigenvalues ``l_1 <= l_2 <= ...`` of its normalised Laplacian and
    returns the k maximising ``l_{k+1} - l_k``: k well-separated groups give k
    near-zero eigenvalues, then a gap. When the graph falls apart into c
    connected components (exactly c eigenvalues below 1e-8) with c in
    ``k_range``, c is returned: later gaps between the components' own
    eigenvalues can be larger and would otherwise win.

    Returns
    -------
    (k, eigenvalues)
        The chosen k and the ``hi + 1`` smallest eigenvalues.
    """
    from scipy.linalg import eigh
    from scipy.sparse.csgraph import laplacian
    from sklearn.neighbors import kneighbors_graph

    X = _check_frames(X)
    if X.shape[0] > max_n:
        X = X[np.sort(np.random.default_rng(seed).choice(X.shape[0], size=max_n, replace=False))]
    lo, hi = _k_bounds(k_range, X.shape[0])
    graph = kneighbors_graph(X, n_neighbors=min(n_neighbors, X.shape[0] - 1), include_self=False)
    graph = 0.5 * (graph + graph.T)  # symmetric affinity
    lap = laplacian(graph, normed=True).toarray()
    n_eig = min(hi + 1, X.shape[0])
    eig = eigh(lap, eigvals_only=True, subset_by_index=[0, n_eig - 1])
    ks = [k for k in range(lo, hi + 1) if k < len(eig)]
    if not ks:
        raise ClusterError(f"too few frames ({X.shape[0]}) for an eigengap over {tuple(k_range)}")
    n_components = int(np.sum(eig < 1e-8))
    if lo <= n_components <= hi:
        return n_components, eig
    gaps = {k: eig[k] - eig[k - 1] for k in ks}  # eig[k] is l_{k+1} (0-based)
    return max(gaps, key=lambda k: (gaps[k], -k)), eig


# --------------------------------------------------------------------------- density methods


def _density_cluster(X: np.ndarray, method: str, eps: float | None, min_samples: int | None):
    """DBSCAN/HDBSCAN on X; returns (labels with -1 for noise, info)."""
    from sklearn.cluster import DBSCAN, HDBSCAN
    from sklearn.neighbors import NearestNeighbors

    n, dim = X.shape
    info: dict = {}
    if method == "dbscan":
        # min_samples = 2 x dim (Sander et al. 1998's rule of thumb), kept within [4, 50]
        # and below n so small inputs still work.
        ms = int(min_samples) if min_samples else max(4, min(2 * dim, 50))
        ms = min(ms, n - 1) if n > 1 else 1
        if eps is None:
            # eps: the 90th percentile of each point's distance to its ms-th neighbour,
            # so 90 % of the points are core points of a dense region.
            dist, _ = NearestNeighbors(n_neighbors=ms + 1).fit(X).kneighbors(X)
            eps = float(np.percentile(dist[:, ms], DBSCAN_EPS_PERCENTILE))
            info["eps_rule"] = f"{DBSCAN_EPS_PERCENTILE:g}th percentile of the {ms}-th neighbour distance"
            if eps <= 0:
                raise ClusterError("DBSCAN's eps rule gave 0: more than 10 % of the frames are "
                                   "duplicates; pass eps explicitly")
        info.update(eps=float(eps), min_samples=ms)
        labels = DBSCAN(eps=eps, min_samples=ms).fit_predict(X)
    else:
        # a cluster must hold at least 1 % of the frames (and 5), or HDBSCAN splits
        # a long recording into hundreds of tiny groups. sklearn's default
        # allow_single_cluster=False is kept: HDBSCAN reports 2+ clusters or all
        # noise, never one (on one blob it splits off dense cores; use DBSCAN
        # to test for a single cluster).
        mcs = max(5, n // 100)
        mcs = min(mcs, n)
        ms = int(min_samples) if min_samples else None
        info.update(min_cluster_size=mcs, min_samples=ms)
        labels = HDBSCAN(min_cluster_size=mcs, min_samples=ms, copy=True).fit_predict(X)  # X is not ours to change
    labels = np.asarray(labels)
    noise = labels < 0
    info["noise_fraction"] = float(noise.mean())
    if noise.all():
        hint = (f"; eps was {info['eps']:.4g}: pass a larger eps" if method == "dbscan"
                else "; try fewer frames per cluster (min_samples) or DBSCAN with a given eps")
        raise ClusterError(f"{method} labelled every frame as noise{hint}")
    if noise.any():
        # give each noise point the cluster of its nearest non-noise point
        from sklearn.neighbors import KNeighborsClassifier

        knn = KNeighborsClassifier(n_neighbors=1).fit(X[~noise], labels[~noise])
        labels = labels.copy()
        labels[noise] = knn.predict(X[noise])
    return labels, info


# --------------------------------------------------------------------------- main entry


def cluster_frames(X, method: str, k: int | None = None, *, embedding: str = "raw",
                   cfg: ClusterConfig | None = None, seed: int = 0,
                   eps: float | None = None, min_samples: int | None = None) -> ClusterResult:
    """Cluster frames with one method; every frame gets a cluster.

    Parameters
    ----------
    X : (n_frames, dim) float
        Latent frames (or any per-frame features).
    method : str
        One of :data:`METHODS`.
    k : int, optional
        Number of clusters for kmeans/agglomerative/gmm/spectral; None chooses
        it by silhouette over ``cfg.k_range``. DBSCAN and HDBSCAN find their
        own number; a k given to them is ignored (noted in ``info``).
    embedding : {"raw", "spectral"}
        Cluster the standardised frames, or their spectral embedding.
    cfg : ClusterConfig, optional
        Uses ``k_range`` and ``max_fit_frames``; default ``ClusterConfig()``.
    seed : int
        Seeds subsampling, embedding and every method.
    eps, min_samples : optional
        DBSCAN/HDBSCAN overrides of the documented defaults (see the module
        docstring and :class:`ClusterResult` ``info``).

    Returns
    -------
    ClusterResult

    Raises
    ------
    ClusterError
        Fewer than 2 frames, NaN features, ``k`` larger than the number of
        frames, or DBSCAN/HDBSCAN finding only noise.
    """
    cfg = cfg or ClusterConfig()
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; choose one of {METHODS}")
    if embedding not in EMBEDDINGS:
        raise ValueError(f"unknown embedding {embedding!r}; choose one of {EMBEDDINGS}")
    X = _check_frames(X)
    n = X.shape[0]
    info: dict = {"n_frames": n, "standardised": True}
    if method in DENSITY_METHODS:
        if k is not None:
            info["k_ignored"] = int(k)
        k = None
    elif k is not None:
        k = int(k)
        if k < 1:
            raise ClusterError(f"k must be >= 1, got {k}")
        if k > n:
            raise ClusterError(f"k={k} clusters asked for only {n} frames")

    Z = _standardise(X)
    if k == 1:  # nothing to fit: one cluster holds everything
        info.update(fitted_on=0, assigned_by=None, k_chosen_by="given")
        return ClusterResult(np.zeros(n, dtype=np.int64), 1, method, embedding, info)

    # fit on a seeded subsample of large inputs; assign the rest afterwards
    max_fit = int(cfg.max_fit_frames)
    if n > max_fit:
        fit_idx = np.sort(np.random.default_rng(seed).choice(n, size=max_fit, replace=False))
    else:
        fit_idx = np.arange(n)
    Z_fit = Z[fit_idx]
    info["fitted_on"] = int(len(fit_idx))
    if k is not None and k > len(fit_idx):
        raise ClusterError(f"k={k} clusters asked for a fit on {len(fit_idx)} frames; "
                           "raise max_fit_frames")

    if embedding == "spectral":
        from sklearn.manifold import SpectralEmbedding

        # k - 1 components: SpectralEmbedding drops the constant eigenvector, and
        # k - 1 more span the indicators of k well-separated groups; more
        # components add within-group variation that misleads the clustering.
        n_components = max((k or int(cfg.k_range[1])) - 1, 1)
        if n_components >= len(fit_idx) - 1:
            raise ClusterError(f"too few frames ({len(fit_idx)}) for a {n_components}-d spectral embedding")
        F = SpectralEmbedding(n_components=n_components, affinity="nearest_neighbors",
                              n_neighbors=min(10, len(fit_idx) - 1),
                              random_state=seed).fit_transform(Z_fit)
        info["embedding_components"] = n_components
    else:
        F = Z_fit

    model = None
    if method in DENSITY_METHODS:
        fit_labels, dens_info = _density_cluster(F, method, eps, min_samples)
        info.update(dens_info, k_chosen_by="density")
    else:
        if k is None:
            k, scores = choose_k_silhouette(F, cfg.k_range, seed=seed, method=method,
                                            nested=embedding == "spectral")
            if embedding == "spectral":
                F = F[:, :k - 1]
            info.update(k_chosen_by="silhouette", k_scores=scores)
        else:
            info["k_chosen_by"] = "given"
        fit_labels, model = _fit_predict(F, method, k, seed)

    if len(fit_idx) == n:
        labels = fit_labels
        info["assigned_by"] = None
    elif embedding == "raw" and method in ("kmeans", "gmm"):
        labels = np.asarray(model.predict(Z))
        labels[fit_idx] = fit_labels  # identical for K-Means; keeps the fitted labels for the GMM
        info["assigned_by"] = "predict"
    else:
        from sklearn.neighbors import KNeighborsClassifier

        knn = KNeighborsClassifier(n_neighbors=min(ASSIGN_NEIGHBOURS, len(fit_idx)))
        labels = knn.fit(Z_fit, fit_labels).predict(Z)
        labels[fit_idx] = fit_labels
        info["assigned_by"] = "knn"

    labels = _relabel_by_size(np.asarray(labels))
    k_found = int(labels.max()) + 1
    if k_found == 1:
        info["note"] = f"{method} found a single cluster"
    return ClusterResult(labels, k_found, method, embedding, info)
