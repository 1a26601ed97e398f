"""Clustering on sklearn blobs with known labels."""

import numpy as np
import pytest
from sklearn.datasets import make_blobs
from sklearn.metrics import adjusted_rand_score

from mss_helpers.cluster import (METHODS, ClusterError, ClusterResult, choose_k_eigengap,
                                 choose_k_silhouette, cluster_frames)
from mss_helpers.config import ClusterConfig

CFG = ClusterConfig(k_range=(2, 5), max_fit_frames=1000)


@pytest.fixture(scope="module")
def blobs():
    # three well-separated groups in 6 dimensions with different scales per axis
    X, y = make_blobs(n_samples=450, n_features=6, centers=3, cluster_std=0.6, random_state=0)
    return X * np.array([1, 10, 0.1, 1, 5, 1]), y


@pytest.mark.parametrize("method", METHODS)
def test_each_method_recovers_blobs(blobs, method):
    X, y = blobs
    k = None if method in ("dbscan", "hdbscan") else 3
    res = cluster_frames(X, method, k, cfg=CFG, seed=0)
    assert isinstance(res, ClusterResult)
    assert res.labels.shape == (len(X),) and res.labels.min() >= 0
    assert res.k == 3
    assert adjusted_rand_score(y, res.labels) > 0.9


@pytest.mark.parametrize("method", ["kmeans", "agglomerative", "gmm"])
def test_k_chosen_by_silhouette(blobs, method):
    X, y = blobs
    res = cluster_frames(X, method, None, cfg=CFG)
    assert res.k == 3 and res.info["k_chosen_by"] == "silhouette"
    assert set(res.info["k_scores"]) == {2, 3, 4, 5}
    assert adjusted_rand_score(y, res.labels) > 0.9


@pytest.mark.parametrize("k", [3, None])
def test_spectral_embedding_then_kmeans(blobs, k):
    X, y = blobs
    res = cluster_frames(X, "kmeans", k, embedding="spectral", cfg=CFG)
    assert res.embedding == "spectral" and res.k == 3
    assert adjusted_rand_score(y, res.labels) > 0.9


def test_choose_k_helpers(blobs):
    X, _ = blobs
    k, scores = choose_k_silhouette(X, (2, 6), seed=0)
    assert k == 3 and max(scores, key=scores.get) == 3
    k_gap, eig = choose_k_eigengap(X, (2, 6))  # a disconnected graph: 3 zero eigenvalues
    assert k_gap == 3 and eig[0] == pytest.approx(0.0, abs=1e-8)
    # overlapping blobs keep the graph connected: the largest eigengap decides
    X2, _ = make_blobs(n_samples=450, n_features=6, centers=3, cluster_std=1.5, random_state=0)
    assert choose_k_eigengap(X2, (2, 6))[0] == 3


@pytest.mark.parametrize("method", ["kmeans", "agglomerative", "dbscan"])
def test_subsample_then_assign_on_20k_points(method):
    X, y = make_blobs(n_samples=20000, n_features=4, centers=4, cluster_std=0.5, random_state=1)
    res = cluster_frames(X, method, None if method == "dbscan" else 4, cfg=CFG, seed=0)
    assert res.info["fitted_on"] == CFG.max_fit_frames
    assert res.info["assigned_by"] == ("predict" if method == "kmeans" else "knn")
    assert res.labels.shape == (20000,)
    assert adjusted_rand_score(y, res.labels) > 0.9


def test_deterministic_given_seed(blobs):
    X, _ = blobs
    a = cluster_frames(X, "gmm", 3, cfg=CFG, seed=3)
    b = cluster_frames(X, "gmm", 3, cfg=CFG, seed=3)
    np.testing.assert_array_equal(a.labels, b.labels)


def test_labels_ordered_by_size():
    X, _ = make_blobs(n_samples=[50, 200, 100], n_features=2, cluster_std=0.3, random_state=2)
    res = cluster_frames(X, "kmeans", 3, cfg=CFG)
    assert np.bincount(res.labels).tolist() == [200, 100, 50]


def test_k_larger_than_frames_raises():
    with pytest.raises(ClusterError, match="k=5 clusters asked for only 4 frames"):
        cluster_frames(np.random.default_rng(0).standard_normal((4, 3)), "kmeans", 5)


def test_too_few_frames_and_nan_raise():
    with pytest.raises(ClusterError, match="at least 2 frames"):
        cluster_frames(np.ones((1, 3)), "kmeans", 1)
    X = np.random.default_rng(0).standard_normal((10, 3))
    X[4, 1] = np.nan
    with pytest.raises(ClusterError, match="NaN"):
        cluster_frames(X, "agglomerative", 2)


def test_all_noise_dbscan_raises(blobs):
    X, _ = blobs
    with pytest.raises(ClusterError, match="every frame as noise.*larger eps"):
        cluster_frames(X, "dbscan", eps=1e-6, cfg=CFG)


def test_one_blob_gives_one_cluster_for_dbscan():
    X, _ = make_blobs(n_samples=300, n_features=3, centers=1, random_state=3)
    res = cluster_frames(X, "dbscan", cfg=CFG)
    assert res.k == 1 and (res.labels == 0).all()
    assert "single cluster" in res.info["note"]
    assert 0.0 <= res.info["noise_fraction"] < 1.0


def test_density_noise_points_are_assigned(blobs):
    X, y = blobs
    res = cluster_frames(X, "dbscan", cfg=CFG)
    assert res.info["noise_fraction"] > 0  # the 90th-percentile eps leaves some noise...
    assert res.labels.min() == 0  # ...and every frame still has a cluster


def test_unknown_method_raises(blobs):
    with pytest.raises(ValueError, match="unknown method"):
        cluster_frames(blobs[0], "optics", 3)
