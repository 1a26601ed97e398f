"""Metrics on synthetic signals with known answers."""

import math

import numpy as np
import pytest

from mss_helpers import cluster_metrics, metrics, separation_metrics

RATE = 8000


def _noise(shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape)


def _sine(freq=440.0, seconds=1.0, rate=RATE, channels=1):
    t = np.arange(int(seconds * rate)) / rate
    return np.tile(np.sin(2 * np.pi * freq * t), (channels, 1))


# --------------------------------------------------------------------------- reconstruction


def test_mse_known_value():
    ref = np.zeros((2, 100))
    est = np.full((2, 100), 0.5)
    assert metrics.mse(ref, est) == pytest.approx(0.25)


@pytest.mark.parametrize("noise_db", [0.0, 10.0, 20.0])
def test_snr_of_known_noise_level(noise_db):
    ref = _noise((2, 4000), seed=1)
    noise = _noise((2, 4000), seed=2)
    # scale the noise so |ref|^2 / |noise|^2 is exactly noise_db
    noise *= np.sqrt(np.sum(ref ** 2) / np.sum(noise ** 2) / 10 ** (noise_db / 10))
    assert metrics.snr_db(ref, ref + noise) == pytest.approx(noise_db, abs=1e-9)


def test_snr_identical_is_capped():
    ref = _noise((1, 500))
    assert metrics.snr_db(ref, ref) == 100.0
    assert metrics.snr_db(ref, ref, cap_db=60.0) == 60.0


def test_cosine_identical_and_opposite():
    ref = _noise((2, 300))
    assert metrics.cosine(ref, ref) == pytest.approx(1.0)
    assert metrics.cosine(ref, -3 * ref) == pytest.approx(-1.0)


def test_si_sdr_scaled_copy_is_capped_and_orthogonal_floor():
    ref = _noise((1, 1000))
    assert metrics.si_sdr(ref, 0.3 * ref) == 100.0
    assert metrics.si_sdr(ref, np.zeros_like(ref)) == -100.0
    # a sine and a cosine of the same frequency over whole periods are orthogonal
    t = np.arange(RATE) / RATE
    s, c = np.sin(2 * np.pi * 10 * t)[None], np.cos(2 * np.pi * 10 * t)[None]
    assert metrics.si_sdr(s, c) == -100.0


def test_si_sdr_of_known_noise():
    # noise made orthogonal to the reference: SI-SDR equals the energy ratio exactly
    ref = _noise((1, 4000), seed=3)
    noise = _noise((1, 4000), seed=4)
    noise -= np.sum(noise * ref) / np.sum(ref ** 2) * ref
    noise *= np.sqrt(np.sum(ref ** 2) / np.sum(noise ** 2) / 10.0)  # 10 dB
    assert metrics.si_sdr(ref, 2.0 * (ref + noise)) == pytest.approx(10.0, abs=1e-9)


def test_si_sdr_matches_fast_bss_eval():
    fast_bss_eval = pytest.importorskip("fast_bss_eval")
    ref = _noise((1, 3000), seed=5)
    for seed, level in [(6, 0.1), (7, 1.0), (8, 3.0)]:
        est = 0.7 * ref + level * _noise((1, 3000), seed=seed)
        expected = float(fast_bss_eval.si_sdr(ref, est, zero_mean=False)[0])
        assert metrics.si_sdr(ref, est) == pytest.approx(expected, abs=0.01)


def test_spectral_mse_zero_for_identical_and_grows_with_gain():
    ref = _sine(channels=2)
    assert metrics.spectral_mse(ref, ref) == pytest.approx(0.0, abs=1e-12)
    # a gain g shifts every non-floor log-magnitude by ln(g): error close to ln(2)^2
    value = metrics.spectral_mse(_noise((1, RATE)), 2.0 * _noise((1, RATE)))
    assert value == pytest.approx(math.log(2.0) ** 2, rel=1e-3)


def test_reconstruction_metrics_keys_and_values():
    ref = _noise((1, RATE), seed=9)
    out = metrics.reconstruction_metrics(ref, ref, RATE)
    assert set(out) == {"mse", "snr_db", "spectral_mse", "cosine", "si_sdr_db"}
    assert out["mse"] == 0.0 and out["snr_db"] == 100.0 and out["cosine"] == pytest.approx(1.0)


@pytest.mark.parametrize("func", [metrics.snr_db, metrics.si_sdr, metrics.cosine, metrics.mse,
                                  metrics.spectral_mse])
def test_length_mismatch_raises(func):
    with pytest.raises(ValueError, match="differ in shape"):
        func(np.ones((1, 2000)), np.ones((1, 1999)))


@pytest.mark.parametrize("func", [metrics.snr_db, metrics.si_sdr, metrics.cosine])
def test_silent_reference_raises(func):
    with pytest.raises(ValueError, match="ref is silent"):
        func(np.zeros((1, 100)), np.ones((1, 100)))


def test_nan_input_raises():
    est = np.ones((1, 100))
    est[0, 5] = np.nan
    with pytest.raises(ValueError, match="est contains NaN"):
        metrics.snr_db(np.ones((1, 100)), est)


# --------------------------------------------------------------------------- separation


def test_si_sdr_matrix_shape_and_diagonal():
    refs = _noise((3, 1, 2000), seed=10)
    ests = refs[[2, 0]] * 0.5  # K=2 estimates
    m = separation_metrics.si_sdr_matrix(refs, ests)
    assert m.shape == (3, 2)
    assert m[2, 0] == 100.0 and m[0, 1] == 100.0
    assert m[1, 0] < 0 and m[1, 1] < 0


def test_match_estimates_recovers_permutation():
    rng = np.random.default_rng(11)
    names = ["piano", "guitar", "flute"]
    refs = {n: rng.standard_normal((1, 4000)) for n in names}
    mixture = sum(refs.values())
    perm = [2, 0, 1]  # estimate j holds instrument names[perm[j]] plus a little noise
    estimates = [refs[names[p]] + 0.1 * rng.standard_normal((1, 4000)) for p in perm]
    rows = separation_metrics.match_estimates(refs, estimates, mixture)
    assert [r["instrument"] for r in rows] == names
    assert [r["estimate"] for r in rows] == [perm.index(i) for i in range(3)]
    for r in rows:
        floor = metrics.si_sdr(refs[r["instrument"]], mixture)
        assert r["si_sdr_db"] == pytest.approx(20.0, abs=1.0)
        assert r["si_sdri_db"] == pytest.approx(r["si_sdr_db"] - floor)
    assert separation_metrics.count_unmatched(rows) == (0, 0)


def test_match_estimates_more_instruments_than_estimates():
    rng = np.random.default_rng(12)
    refs = {n: rng.standard_normal((1, 2000)) for n in ("a", "b", "c")}
    rows = separation_metrics.match_estimates(refs, [refs["b"]], sum(refs.values()))
    by_name = {r["instrument"]: r for r in rows}
    assert by_name["b"]["estimate"] == 0
    assert by_name["a"]["estimate"] is None and by_name["a"]["si_sdr_db"] is None
    assert separation_metrics.count_unmatched(rows) == (2, 0)


def test_match_estimates_more_estimates_than_instruments():
    rng = np.random.default_rng(13)
    refs = {"a": rng.standard_normal((1, 2000))}
    junk = rng.standard_normal((1, 2000))
    rows = separation_metrics.match_estimates(refs, [junk, refs["a"]], refs["a"] + junk)
    assert rows[0] == {"instrument": "a", "estimate": 1, "si_sdr_db": 100.0,
                       "si_sdri_db": pytest.approx(100.0 - metrics.si_sdr(refs["a"], refs["a"] + junk))}
    assert rows[1] == {"instrument": "", "estimate": 0, "si_sdr_db": None, "si_sdri_db": None}
    assert separation_metrics.count_unmatched(rows) == (0, 1)


def _bss_case(channels):
    rng = np.random.default_rng(14)
    n_samples = 3 * RATE + 500  # a trailing partial window, dropped by both backends
    refs = rng.standard_normal((2, channels, n_samples))
    ests = 0.8 * refs + 0.3 * refs[::-1] + 0.2 * rng.standard_normal(refs.shape)
    refs[1, :, RATE:2 * RATE] = 0.0  # one silent window: skipped for both sources
    return refs, ests


@pytest.mark.parametrize("channels", [1, 2])
def test_bss_sdr_backends_agree(channels):
    pytest.importorskip("museval")
    refs, ests = _bss_case(channels)
    fast = separation_metrics.bss_sdr(refs, ests, RATE, backend="fast")
    slow = separation_metrics.bss_sdr(refs, ests, RATE, backend="museval")
    assert fast.shape == (2,)
    np.testing.assert_allclose(fast, slow, atol=0.1)


def test_bss_sdr_known_value():
    # each window: |s|^2 / |s_hat - s|^2 with s_hat - s = 0.1 s -> 20 dB
    refs, _ = _bss_case(1)
    assert separation_metrics.bss_sdr(refs, 1.1 * refs, RATE) == pytest.approx([20.0, 20.0])


def test_bss_sdr_all_windows_silent_raises():
    refs = _noise((2, 1, 2 * RATE))
    refs[0] = 0.0
    with pytest.raises(ValueError, match="no 1 s window counts"):
        separation_metrics.bss_sdr(refs, refs + 0.1, RATE)


# --------------------------------------------------------------------------- unsupervised


def test_mixture_mse_zero_for_consistent_split():
    mix = _noise((2, 1000))
    parts = [0.25 * mix, 0.75 * mix]
    assert cluster_metrics.mixture_mse(mix, parts) == pytest.approx(0.0, abs=1e-20)
    assert cluster_metrics.mixture_mse(mix, [0.5 * mix]) == pytest.approx(np.mean((0.5 * mix) ** 2))


def test_assignment_entropy_known_values():
    assert cluster_metrics.assignment_entropy([0, 0, 0]) == 0.0
    assert cluster_metrics.assignment_entropy([0, 1, 2, 3]) == pytest.approx(2.0)
    assert cluster_metrics.assignment_entropy([0, 0, 1, 1], k=3) == pytest.approx(1.0)
    with pytest.raises(ValueError, match=">= 0"):
        cluster_metrics.assignment_entropy([-1, 0])
    with pytest.raises(ValueError, match="k=2"):
        cluster_metrics.assignment_entropy([0, 2], k=2)


def test_spectral_entropy_noise_above_sine():
    white = cluster_metrics.spectral_entropy(_noise((1, RATE)))
    tone = cluster_metrics.spectral_entropy(_sine(1000.0))
    assert white > tone + 4.0
    assert white <= math.log2(513) + 1e-9
    with pytest.raises(ValueError, match="audio is silent"):
        cluster_metrics.spectral_entropy(np.zeros((1, RATE)))


def test_sparsity_tone_sparser_than_noise():
    assert cluster_metrics.sparsity(_sine(1000.0)) > cluster_metrics.sparsity(_noise((1, RATE))) + 0.3
    assert 0.0 <= cluster_metrics.sparsity(_noise((1, RATE))) <= 1.0


def test_energy_shares_sum_to_100():
    x = _noise((1, 1000))
    shares = cluster_metrics.energy_shares([x, 2 * x, np.zeros_like(x)])
    assert sum(shares) == pytest.approx(100.0)
    assert shares == pytest.approx([20.0, 80.0, 0.0])
    with pytest.raises(ValueError, match="all silent"):
        cluster_metrics.energy_shares([np.zeros((1, 10))])


# --------------------------------------------------------------------------- latent space


def test_knn_purity_and_silhouette_separate_vs_mixed():
    from sklearn.datasets import make_blobs

    X, y = make_blobs(n_samples=300, centers=3, cluster_std=0.3, random_state=0)
    assert cluster_metrics.knn_purity(X, y, k=5) == pytest.approx(1.0)
    assert cluster_metrics.silhouette(X, y) > 0.7
    shuffled = np.random.default_rng(0).permutation(y)
    assert cluster_metrics.knn_purity(X, shuffled, k=5) < 0.5
    assert cluster_metrics.silhouette(X, shuffled) < 0.1
    # the subsample path gives a value in range and is deterministic
    sub = cluster_metrics.knn_purity(X, y, k=5, max_n=100, seed=1)
    assert sub == cluster_metrics.knn_purity(X, y, k=5, max_n=100, seed=1) and sub > 0.9


def test_silhouette_needs_two_labels():
    with pytest.raises(ValueError, match="distinct labels"):
        cluster_metrics.silhouette(np.zeros((10, 2)) + np.arange(10)[:, None], np.zeros(10))


def test_label_scores_skip_unlabelled_points_and_give_the_chance_level():
    from sklearn.datasets import make_blobs

    X, y = make_blobs(n_samples=200, centers=2, cluster_std=0.3, random_state=0)
    y = np.where(np.arange(200) % 10 == 0, -1, y)  # every tenth point unlabelled (silence)
    s = cluster_metrics.label_scores(X, y, k=5)
    assert s["n_points"] == 180
    assert s["knn_purity"] == pytest.approx(1.0) and s["silhouette"] > 0.7
    p = np.bincount(y[y >= 0]) / 180
    assert s["knn_chance"] == pytest.approx(float(np.sum(p**2)))
    with pytest.raises(ValueError, match="two distinct labels"):
        cluster_metrics.label_scores(X, np.zeros(200, int), k=5)
