"""The frame grid: energy per frame and per-frame ground-truth labels (known answers)."""

import numpy as np
import pytest

from mss_helpers import frames


def test_frame_energies_pads_the_last_frame_and_sums_channels():
    x = np.ones((2, 25), np.float32)  # two channels of ones: energy 2 per sample
    np.testing.assert_allclose(frames.frame_energies(x, 10), [20.0, 20.0, 10.0])
    np.testing.assert_allclose(frames.frame_energies(x[0], 10, n_frames=4), [10.0, 10.0, 5.0, 0.0])
    with pytest.raises(ValueError, match="hop"):
        frames.frame_energies(x, 0)


def stems_with_known_frames(hop=10, n_frames=6):
    """Frame 0: only a; 1: only b; 2: both, b louder; 3: silent; 4: a loud, b faint; 5: a."""
    a = np.zeros((1, hop * n_frames), np.float32)
    b = np.zeros_like(a)
    for f, (va, vb) in enumerate([(1.0, 0), (0, 1.0), (0.5, 0.9), (0, 0), (1.0, 1e-3), (0.8, 0)]):
        a[:, f * hop:(f + 1) * hop] = va
        b[:, f * hop:(f + 1) * hop] = vb
    return {"a": a, "b": b}


def test_frame_labels_dominant_and_active_counts():
    lab = frames.frame_labels(stems_with_known_frames(), hop=10, n_frames=7, rate=1000, active_db=-40)
    assert lab["names"] == ["a", "b"]
    # frame 6 lies past the audio: silent
    np.testing.assert_array_equal(lab["dominant"], [0, 1, 1, -1, 0, 0, -1])
    # b at 1e-3 amplitude is -60 dB: not active at -40 dB, active at -80 dB
    np.testing.assert_array_equal(lab["n_active"], [1, 1, 2, 0, 1, 1, 0])
    lab = frames.frame_labels(stems_with_known_frames(), hop=10, n_frames=6, rate=1000, active_db=-80)
    assert lab["n_active"][4] == 2


def test_frame_labels_rejects_bad_input():
    with pytest.raises(ValueError, match="empty"):
        frames.frame_labels({}, 10, 5, 1000)
    with pytest.raises(ValueError, match="silent"):
        frames.frame_labels({"a": np.zeros((1, 50))}, 10, 5, 1000)
    with pytest.raises(ValueError, match="negative"):
        frames.frame_labels(stems_with_known_frames(), 10, 5, 1000, active_db=3)
