"""The simulated room (mss_helpers.room): geometry, RIRs, RT60, placing, loudness, effects, ILD spread."""

import json

import numpy as np
import pytest

from mss_helpers import room

RATE = 16000
NAMES = ["bass", "drums", "piano", "guitar"]


def _noise(seconds=1.0, seed=0):
    return (0.1 * np.random.default_rng(seed).standard_normal(int(seconds * RATE))).astype(np.float32)


def test_draw_room_is_deterministic_and_keeps_its_distances():
    a = room.draw_room(NAMES, np.random.default_rng(1))
    assert a == room.draw_room(NAMES, np.random.default_rng(1))
    assert a != room.draw_room(NAMES, np.random.default_rng(2))
    for seed in range(20):
        r = room.draw_room(NAMES, np.random.default_rng(seed), mic_spacing_m=0.3, max_order_cap=20)
        dims, mics = np.array(r.dims_m), np.array(r.mics_m)
        assert np.linalg.norm(mics[0] - mics[1]) == pytest.approx(0.3)
        assert mics[0][1] > mics[1][1]  # left is +y, the pair faces +x
        assert r.max_order <= 20 and 0 < r.absorption <= 1
        assert list(r.sources_m) == NAMES
        azimuths = []
        for p in map(np.array, r.sources_m.values()):
            assert np.all(p >= 0.5 - 1e-9) and np.all(dims - p >= 0.5 - 1e-9)
            assert np.linalg.norm(mics - p, axis=1).min() >= 1.0
            assert p[0] > mics[0][0]  # in front of the pair
            azimuths.append(np.arctan2(p[1] - mics.mean(0)[1], p[0] - mics.mean(0)[0]))
        assert np.min(np.diff(np.sort(azimuths))) > 0


def test_impulse_responses_shapes_and_the_direct_path_reaches_the_closer_mic_first():
    r = room.Room(dims_m=(8.0, 6.0, 3.2), rt60_target_s=0.4, absorption=0.3, max_order=10,
                  mics_m=((3.0, 3.1, 1.5), (3.0, 2.9, 1.5)),
                  sources_m={"left": (4.5, 5.0, 1.5), "right": (4.5, 1.0, 1.5), "centre": (5.0, 3.0, 1.2)})
    irs = room.impulse_responses(r, RATE)
    assert list(irs) == ["left", "right", "centre"]
    assert {h.shape for h in irs.values()} == {irs["left"].shape} and irs["left"].shape[0] == 2
    assert all(h.dtype == np.float32 for h in irs.values())
    mics = np.array(r.mics_m)

    def direct(h):  # the direct path is the first strong arrival (a later floor + ceiling pair can be louder)
        return np.argmax(np.abs(h) >= 0.3 * np.abs(h).max(axis=-1, keepdims=True), axis=-1)

    for name, h in irs.items():
        d = np.linalg.norm(mics - np.array(r.sources_m[name]), axis=1)
        # the arrival-time difference is the path difference, within a sample
        assert np.diff(direct(h))[0] == pytest.approx((d[1] - d[0]) / 343.0 * RATE, abs=1.0)
    assert direct(irs["left"][0]) < direct(irs["left"][1])
    assert direct(irs["right"][1]) < direct(irs["right"][0])


def test_a_longer_target_rt60_measures_longer():
    short, long = (room.draw_room(NAMES, np.random.default_rng(5), rt60_range_s=(t, t)) for t in (0.2, 0.8))
    assert short.dims_m == long.dims_m and short.sources_m == long.sources_m
    measured = [np.median([room.measured_rt60_s(h[0], RATE) for h in irs.values()])
                for irs in (room.impulse_responses(r, RATE) for r in (short, long))]
    assert measured[1] > 2 * measured[0]
    assert 0.1 < measured[0] < 0.4 and 0.5 < measured[1] < 1.2
    with pytest.raises(ValueError):
        room.measured_rt60_s(np.zeros(1000), RATE)


def test_place_keeps_the_length_and_is_linear():
    rir = room.impulse_responses(room.draw_room(NAMES, np.random.default_rng(0)), RATE)["piano"]
    a, b = _noise(1.0, 1), _noise(1.0, 2)
    wet = room.place(a, rir)
    assert wet.shape == (2, len(a)) and wet.dtype == np.float32
    np.testing.assert_allclose(room.place(a + b, rir), wet + room.place(b, rir), atol=1e-5)
    # a unit impulse gives back the RIR, cut at the input's length
    impulse = np.zeros(len(a), np.float32)
    impulse[0] = 1
    np.testing.assert_allclose(room.place(impulse[:1000], rir), rir[:, :1000], atol=1e-6)


def test_ild_spread_tells_a_pan_from_a_room():
    x = _noise(1.0)
    assert room.ild_iqr_db(np.stack([0.8 * x, 0.6 * x]), RATE) < 0.5
    r = room.draw_room(["x"], np.random.default_rng(3), rt60_range_s=(0.5, 0.5))
    assert room.ild_iqr_db(room.place(x, room.impulse_responses(r, RATE)["x"]), RATE) >= 3.0
    for bad in (np.zeros((2, RATE)), np.zeros((2, 0)), x):
        with pytest.raises(ValueError):
            room.ild_iqr_db(bad, RATE)


def test_level_to_reaches_the_target_and_leaves_silence_alone():
    stereo = np.stack([_noise(2.0, 1), 0.5 * _noise(2.0, 2)])
    scaled, gain_db = room.level_to(stereo, RATE, -23.0)
    assert room.loudness_lufs(scaled, RATE) == pytest.approx(-23.0, abs=0.1)
    assert gain_db == pytest.approx(-23.0 - room.loudness_lufs(stereo, RATE), abs=1e-6)
    assert scaled.dtype == np.float32 and scaled.shape == stereo.shape
    silent = np.zeros(RATE, np.float32)
    assert room.loudness_lufs(silent, RATE) is None
    assert room.loudness_lufs(_noise(0.2), RATE) is None  # shorter than one 0.4 s block
    out, gain_db = room.level_to(silent, RATE, -23.0)
    assert gain_db == 0.0 and np.array_equal(out, silent)


def test_effects_are_json_ready_deterministic_and_keep_the_length():
    chains = [room.draw_effects(np.random.default_rng(s), p=0.7) for s in range(12)]
    assert chains == [room.draw_effects(np.random.default_rng(s), p=0.7) for s in range(12)]
    assert json.loads(json.dumps(chains)) == chains
    assert any(len(c) == 2 for c in chains) and any(len(c) < 2 for c in chains)
    assert room.draw_effects(np.random.default_rng(0), p=0.0) == []
    x = 5 * _noise(1.0)  # loud enough (-6 dBFS RMS) for every drawn compressor threshold
    for chain in chains:
        y = room.apply_effects(x, RATE, chain)
        assert y.shape == x.shape and y.dtype == np.float32 and np.all(np.isfinite(y))
        if chain:
            assert not np.allclose(y, x)
    assert np.array_equal(room.apply_effects(x, RATE, []), x)
    with pytest.raises(ValueError):
        room.apply_effects(x, RATE, [{"type": "Reverb"}])
