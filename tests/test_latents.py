"""Latent frames, their ground-truth labels and the UMAP map."""

import numpy as np
import torch

from mss_helpers import latents


def test_collect_latents_on_the_tiny_set(tiny_cfg, tiny_root):
    from mss_helpers import datasets
    from mss_helpers.model import SEANetVAE

    torch.manual_seed(0)
    model = SEANetVAE(tiny_cfg.model, tiny_cfg.data.channels, tiny_cfg.data.sample_rate).eval()
    tracks = datasets.load_tracks(tiny_root, "test")
    out = latents.collect_latents(model, tracks, tiny_cfg)
    n_per_track = int(np.ceil(tiny_cfg.data.duration_s * tiny_cfg.data.sample_rate / model.hop_length))
    assert out["X"].shape == (n_per_track * len(tracks), tiny_cfg.model.latent_dim)
    assert len(out["dominant"]) == len(out["n_active"]) == len(out["track_ids"]) == len(out["X"])
    np.testing.assert_array_equal(np.bincount(out["track_ids"]), [n_per_track] * len(tracks))
    assert out["names"] == sorted({n for t in tracks for n in t.instruments})
    assert out["dominant"].max() < len(out["names"]) and (out["dominant"] >= 0).mean() > 0.5
    assert out["n_active"].max() <= max(len(t.instruments) for t in tracks)


def test_umap_project_separates_two_blobs(tiny_cfg):
    from sklearn.datasets import make_blobs

    X, y = make_blobs(n_samples=120, centers=2, n_features=8, cluster_std=0.5, random_state=0)
    emb = latents.umap_project(X, tiny_cfg, seed=0, max_fit=80)  # 40 points placed by transform
    assert emb.shape == (120, 2) and np.all(np.isfinite(emb))
    c0, c1 = emb[y == 0].mean(axis=0), emb[y == 1].mean(axis=0)
    spread = max(emb[y == 0].std(axis=0).max(), emb[y == 1].std(axis=0).max())
    assert np.linalg.norm(c0 - c1) > 3 * spread
    np.testing.assert_allclose(latents.umap_project(X, tiny_cfg, seed=0, max_fit=80), emb)
