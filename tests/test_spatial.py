"""Pan clustering (mss_helpers.spatial): panned tones with known positions, masks, k = auto, mono input."""

import numpy as np
import pytest

from mss_helpers import spatial
from mss_helpers.errors import AudioError
from mss_helpers.metrics import si_sdr
from mss_helpers.synth import pan

RATE = 8000


def _tone(freq, seconds=1.0, seed=0):
    t = np.arange(int(seconds * RATE)) / RATE
    rng = np.random.default_rng(seed)
    # a few harmonics with an envelope: a note-like signal, not a pure sine
    x = sum(np.sin(2 * np.pi * freq * h * t + rng.uniform(0, 6)) / h for h in (1, 2, 3))
    return (x * (0.6 + 0.4 * np.sin(2 * np.pi * 1.5 * t))).astype(np.float32) * 0.2


def _mix(positions, freqs=(220.0, 347.0, 523.0)):
    mono = [_tone(f, seed=i) for i, f in enumerate(freqs[:len(positions)])]
    stems = [pan(m, p) for m, p in zip(mono, positions)]  # (2, S) each
    return np.sum(stems, axis=0), stems


def test_pan_angles_of_a_single_panned_source_are_its_position():
    x, _ = _mix([0.5])
    theta, weight, X = spatial.pan_angles(x, 256, 64)
    loud = weight > weight.max() * 1e-3
    # constant-power pan at p: angle (p + 1) * pi / 4
    assert np.allclose(theta[loud], (0.5 + 1) * np.pi / 4, atol=1e-3)
    assert X.shape[0] == 2 and theta.shape == weight.shape == X.shape[1:]


@pytest.mark.parametrize("width", [0.0, 0.03])
def test_separate_pan_splits_two_sources_at_different_positions(width):
    x, stems = _mix([-0.5, 0.4])
    est, info = spatial.separate_pan(x, 2, n_fft=256, hop=64, width=width)
    assert est.shape == (2, 1, x.shape[1])
    assert info["centres"][0] < info["centres"][1]  # sorted left to right
    refs = [s.mean(0) for s in stems]  # the mono downmix of each source
    mix = x.mean(0)
    for ref, e in zip(refs, est):  # the left source is the first estimate
        assert si_sdr(ref, e[0]) > si_sdr(ref, mix) + 10
    # mixture-consistent: the parts sum to the downmix (up to the STFT round trip)
    assert np.allclose(est.sum(0)[0], mix, atol=1e-4)


def test_separate_pan_keeps_both_channels_when_asked():
    x, _ = _mix([-0.5, 0.4])
    est, _ = spatial.separate_pan(x, 2, n_fft=256, hop=64, out_channels=2)
    assert est.shape == (2, 2, x.shape[1])
    assert np.allclose(est.sum(0), x, atol=1e-4)


def test_k_auto_finds_the_number_of_positions():
    x, _ = _mix([-0.6, -0.1, 0.5])
    # a frequency resolution at which the three tones' harmonics rarely share a bin
    est, info = spatial.separate_pan(x, None, n_fft=512, hop=128, k_range=(2, 5))
    assert len(est) == 3
    assert set(info["k_scores"]) == {2, 3, 4, 5}
    assert max(info["k_scores"], key=info["k_scores"].get) == 3


def test_hard_masks_are_one_hot_and_soft_masks_sum_to_one():
    theta = np.random.default_rng(0).uniform(0, np.pi / 2, (5, 7))
    hard = spatial.pan_masks(theta, np.array([0.3, 1.2]), 0.0)
    assert set(np.unique(hard)) == {0.0, 1.0} and np.allclose(hard.sum(0), 1)
    soft = spatial.pan_masks(theta, np.array([0.3, 1.2]), 0.05)
    assert np.allclose(soft.sum(0), 1) and (soft > 0).all()


def test_mono_audio_read_as_stereo_is_a_clear_error():
    mono = _tone(220.0)
    with pytest.raises(AudioError, match="no stereo image"):
        spatial.separate_pan(np.stack([mono, mono]), 2, n_fft=256, hop=64, name="track 'x'")
    with pytest.raises(ValueError, match=r"\(2, samples\)"):
        spatial.pan_angles(mono[None], 256, 64)


def test_one_distinct_angle_gives_one_part_not_a_degenerate_kmeans():
    x = np.zeros((2, RATE), dtype=np.float32)
    x[0, 10] = 1e-3  # not identical channels, but nothing above the floor except one click
    est, _ = spatial.separate_pan(x, 2, n_fft=256, hop=64)
    assert len(est) == 1  # one distinct angle: k is capped, not a degenerate k-means
    with pytest.raises(ValueError, match="silent"):
        spatial.pan_centres(np.zeros((4, 4)), np.zeros((4, 4)), 2)


def test_a_long_input_in_chunks_gives_what_the_whole_input_gives():
    x, stems = _mix([-0.5, 0.4])
    x = np.tile(x, (1, 3))  # 3 s
    whole, info_w = spatial.separate_pan(x, 2, n_fft=512, hop=128)
    parts, info_c = spatial.separate_pan(x, 2, n_fft=512, hop=128, chunk=RATE, overlap=RATE // 8)
    assert parts.shape == whole.shape == (2, 1, x.shape[1])
    assert np.allclose(info_c["centres"], info_w["centres"], atol=0.02)
    assert np.allclose(parts.sum(0), x.mean(0, keepdims=True), atol=1e-4)  # still re-sums to the input
    for w, p in zip(whole, parts):
        assert si_sdr(w[0], p[0]) > 20  # the chunks change the estimates only at their seams


def test_a_long_mono_input_fails_before_any_work():
    mono = np.tile(_tone(220.0), 3)
    with pytest.raises(AudioError, match="no stereo image"):
        spatial.separate_pan(np.stack([mono, mono]), 2, n_fft=256, hop=64, chunk=RATE, overlap=RATE // 8)
