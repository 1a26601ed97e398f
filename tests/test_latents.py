"""Latent frames, their ground-truth labels and the UMAP map."""

import numpy as np
import pytest
import torch

from mss_helpers import latents


def stems_with_known_frames(hop=10, n_frames=6):
    """Frame 0: only a; 1: only b; 2: both, b louder; 3: silent; 4: a loud, b faint; 5: a."""
    a = np.zeros((1, hop * n_frames), np.float32)
    b = np.zeros_like(a)
    for f, (va, vb) in enumerate([(1.0, 0), (0, 1.0), (0.5, 0.9), (0, 0), (1.0, 1e-3), (0.8, 0)]):
        a[:, f * hop:(f + 1) * hop] = va
        b[:, f * hop:(f + 1) * hop] = vb
    return {"a": a, "b": b}


def test_frame_labels_dominant_and_active_counts():
    lab = latents.frame_labels(stems_with_known_frames(), hop=10, n_frames=7, rate=1000, active_db=-40)
    assert lab["names"] == ["a", "b"]
    # frame 6 lies past the audio: silent
    np.testing.assert_array_equal(lab["dominant"], [0, 1, 1, -1, 0, 0, -1])
    # b at 1e-3 amplitude is -60 dB: not active at -40 dB, active at -80 dB
    np.testing.assert_array_equal(lab["n_active"], [1, 1, 2, 0, 1, 1, 0])
    lab = latents.frame_labels(stems_with_known_frames(), hop=10, n_frames=6, rate=1000, active_db=-80)
    assert lab["n_active"][4] == 2


def test_frame_labels_rejects_bad_input():
    with pytest.raises(ValueError, match="empty"):
        latents.frame_labels({}, 10, 5, 1000)
    with pytest.raises(ValueError, match="silent"):
        latents.frame_labels({"a": np.zeros((1, 50))}, 10, 5, 1000)
    with pytest.raises(ValueError, match="negative"):
        latents.frame_labels(stems_with_known_frames(), 10, 5, 1000, active_db=3)


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
