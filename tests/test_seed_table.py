"""The seed's clustering table and what notebook 03 shows on a root without instrument labels."""

import io

import numpy as np
import pandas as pd
import pytest

from mss_helpers import cluster_metrics, latents
from mss_helpers.evaluate_track import COLUMNS


def _rows(setting: dict, shares: list, track: str, mse: float = 0.01, entropy: float = 1.0,
          spectral=None, instruments=None) -> list:
    """Rows of one track and setting as run_evaluation writes them (energy_share in percent)."""
    spectral = spectral or [4.0] * len(shares)
    out = []
    for j, share in enumerate(shares):
        out.append({**{c: None for c in COLUMNS}, **setting, "track": track, "k": len(shares),
                    "instrument": (instruments or [""] * len(shares))[j], "estimate": j, "mixture_mse": mse,
                    "assignment_entropy": entropy, "spectral_entropy": spectral[j], "sparsity": 0.5,
                    "energy_share": share, "note": ""})
    return out


KM = {"method": "kmeans", "decoding": "soft", "k_label": "2"}


def test_seed_table_medians_over_tracks_per_rank():
    rows = pd.DataFrame(_rows(KM, [30.0, 70.0], "a", mse=0.01, entropy=0.9, spectral=[2.0, 4.0])
                        + _rows(KM, [50.0, 50.0], "b", mse=0.03, entropy=1.0, spectral=[6.0, 8.0])
                        + _rows({"method": "mixture", "decoding": "-", "k_label": "n"}, [100.0], "a"))
    table = cluster_metrics.seed_table(rows)
    assert list(table.method) == ["kmeans"]  # reference rows are not clusterings
    r = table.iloc[0]
    assert r.energy_shares == "0.60 / 0.40"  # largest first per track: (0.7, 0.3) and (0.5, 0.5)
    assert r.top_share == pytest.approx(0.6)
    assert r.mixture_mse == pytest.approx(0.02) and r.assignment_entropy == pytest.approx(0.95)
    assert r.spectral_entropy == pytest.approx(5.0)  # median over the four decoded clusters
    assert (r.tracks, r.failed, r.k) == (2, 0, 2)


def test_seed_table_without_supervised_scores_orders_settings_and_counts_failures():
    dbscan = {"method": "dbscan", "decoding": "hard", "k_label": "auto"}
    failed = {**{c: None for c in COLUMNS}, **dbscan, "track": "b", "k": 0, "instrument": "",
              "note": "dbscan labelled every frame as noise"}
    rows = (_rows({**KM, "k_label": "3"}, [20.0, 30.0, 50.0], "a") + _rows(KM, [10.0, 90.0], "a")
            + _rows(dbscan, [40.0, 40.0, 20.0], "a") + [failed])
    df = pd.DataFrame(rows)
    assert df[["si_sdr_db", "si_sdri_db", "sdr_db"]].isna().all().all()
    table = cluster_metrics.seed_table(df)
    assert [tuple(r) for r in table[["method", "k_label"]].itertuples(index=False)] == [
        ("kmeans", "2"), ("kmeans", "3"), ("dbscan", "auto")]
    db = table.iloc[2]
    assert (db.tracks, db.failed, db.k) == (1, 1, 3) and db.energy_shares == "0.40 / 0.40 / 0.20"
    # The same rows through the CSV that run_evaluation writes: k_label read back as numbers where it can be.
    back = pd.read_csv(io.StringIO(df.to_csv(index=False)))
    pd.testing.assert_frame_equal(cluster_metrics.seed_table(back), table)


def test_seed_table_pads_missing_ranks_with_zero_and_counts_matched_estimates_once():
    auto = {"method": "hdbscan", "decoding": "soft", "k_label": "auto"}
    rows = _rows(auto, [60.0, 40.0], "a", instruments=["piano", ""]) + _rows(auto, [50.0, 30.0, 20.0], "b")
    missed = {**rows[0], "instrument": "organ", "estimate": None, "energy_share": None}  # no estimate
    table = cluster_metrics.seed_table(pd.DataFrame(rows + [missed]), max_ranks=2)
    r = table.iloc[0]
    assert r.energy_shares == "0.55 / 0.35 / +1 more"  # rank 3: median(0, 0.2) = 0.1, not shown
    assert r.k == 2.5 and r.tracks == 2


def test_knn_agreement_high_for_a_smooth_value_and_low_for_noise():
    rng = np.random.default_rng(0)
    X = rng.uniform(0, 10, size=(400, 2))
    assert cluster_metrics.knn_agreement(X, X[:, 0], k=5) > 0.95
    assert abs(cluster_metrics.knn_agreement(X, rng.normal(size=400), k=5)) < 0.3
    values = X[:, 0].copy()
    values[:10] = np.nan  # left out, not an error
    assert cluster_metrics.knn_agreement(X, values, k=5) > 0.95
    with pytest.raises(ValueError, match="equal"):
        cluster_metrics.knn_agreement(X, np.ones(400), k=5)


def test_frame_scores_by_track_and_feature():
    from sklearn.datasets import make_blobs

    X, tracks = make_blobs(n_samples=200, centers=2, n_features=4, cluster_std=0.5, random_state=0)
    s = cluster_metrics.frame_scores(X, tracks, {"loudness": X[:, 0]}, k=5)
    assert s["track_knn_purity"] > 0.95 and s["track_knn_chance"] == pytest.approx(0.5)
    assert s["loudness_knn_r"] > 0.5
    one = cluster_metrics.frame_scores(X, np.zeros(200, int), {"loudness": X[:, 0]}, k=5)
    assert set(one) == {"loudness_knn_r"}  # one track: nothing to say about tracks


def test_frame_features_loudness_and_centroid_of_known_signals():
    rate, hop = 16000, 64
    t = np.arange(rate) / rate
    tone = 0.5 * np.sin(2 * np.pi * 1000 * t)
    audio = np.stack([np.concatenate([tone, np.zeros(rate)])] * 2)  # 1 s of 1 kHz at RMS 0.354, 1 s silence
    f = latents.frame_features(audio, hop, 2 * rate // hop, rate, n_fft=512)
    n = rate // hop
    np.testing.assert_allclose(f["rms_db"][10:n - 10], 20 * np.log10(0.5 / np.sqrt(2)), atol=0.1)
    assert np.all(f["rms_db"][n + 10:] == -100.0)  # the floor
    np.testing.assert_allclose(f["centroid_hz"][10:n - 10], 1000.0, atol=20.0)
    assert np.all(np.isnan(f["centroid_hz"][n + 10:]))  # silent window: no centroid
    high = 0.5 * np.sin(2 * np.pi * 3000 * np.arange(2 * rate) / rate)[None]  # mono, 2 s of 3 kHz
    brighter = latents.frame_features(high, hop, 2 * rate // hop, rate, n_fft=512)
    assert np.nanmedian(brighter["centroid_hz"]) == pytest.approx(3000.0, abs=20.0)


def test_umap_panels_draw_float_values_on_a_colour_scale():
    import matplotlib

    matplotlib.use("Agg")
    from mss_helpers import plots_umap

    rng = np.random.default_rng(0)
    emb = rng.normal(size=(300, 2))
    loud = emb[:, 0] * 10 - 30.0
    loud[:5] = np.nan
    fig = plots_umap.umap_panels(emb, {"track": (np.arange(300) % 2, ["a", "b"]), "loudness": (loud, "dB")},
                                 max_points=100)
    ax = fig.axes[1]
    points = ax.collections[1]
    assert len(points.get_offsets()) == 100 and points.get_array() is not None
    assert np.all(np.isfinite(points.get_array()))  # NaN values are not drawn
    assert any(a.get_ylabel() == "dB" for a in fig.axes)  # the colour bar
