import json

import numpy as np
import pytest
import soundfile as sf

from mss_helpers import render, scores, synth
from mss_helpers.audio import rms_db
from mss_helpers.config import DataConfig
from mss_helpers.datasets import load_tracks


def _read(path):
    return sf.read(str(path), dtype="float32")[0]


def test_stems_sum_exactly(tiny_root):
    tracks = list((tiny_root / "train").iterdir()) + list((tiny_root / "test").iterdir())
    assert len(tracks) == 6
    for folder in tracks:
        parts = sum(_read(folder / f"{s}.wav") for s in ("vocals", "drums", "bass", "other"))
        np.testing.assert_allclose(_read(folder / "mixture.wav"), parts, atol=1e-6)
        inst = list((tiny_root / "other_stems" / folder.parent.name / folder.name).glob("*.wav"))
        meta = json.loads((folder / "meta.json").read_text())
        assert sorted(p.stem for p in inst) == sorted(meta["instruments"])
        assert 2 <= len(inst) <= 3
        np.testing.assert_allclose(_read(folder / "other.wav"), sum(_read(p) for p in inst), atol=1e-6)
        assert np.max(np.abs(_read(folder / "mixture.wav"))) <= 0.91


def test_no_instrument_is_silent(tiny_root):
    """The bar of issue 11: every instrument of "other" is above -60 dBFS over its excerpt (mono, as evaluated)."""
    for split in ("train", "test"):
        for track in load_tracks(tiny_root, split):
            for name, x in track.other_stems(channels=1).items():
                assert rms_db(x) >= render.SILENT_DB, f"{track.name}/{name} is silent"
                assert track.meta["levels"][name]["sounding_share"] >= 0.2, f"{track.name}/{name} nearly silent"
    assert json.loads((tiny_root / "manifest.json").read_text())["silent_instruments"] == 0


def test_coverage_counts_overlapping_notes_once_and_skips_rest_bars():
    notes = [(0.0, 2.0, 60), (1.0, 2.0, 64), (6.0, 1.0, 67)]  # 0-3 held, bar 1 (4-8) holds 6-7
    assert scores.coverage(notes, 8.0, 4.0) == pytest.approx(4.0 / 8.0)
    assert scores.coverage(notes, 8.0, 4.0, rest_bars={1}) == pytest.approx(3.0 / 8.0)
    assert scores.coverage([(7.0, 4.0, 60)], 8.0, 4.0) == pytest.approx(1.0 / 8.0)  # clipped at the end
    assert scores.coverage([], 8.0, 4.0) == 0.0


def test_draw_parts_redraws_a_part_with_no_notes():
    full = [(float(t), 1.0, 60) for t in range(8)]  # sounds throughout 8 quarter notes
    first_bar = [(float(t), 1.0, 60) for t in range(4)]  # sounds in bar 0 only
    parts = [[], full, first_bar]
    assert scores.draw_parts(parts, [(1,), (0,)], set(), 4.0, 8.0, 0.3) == ((1,), frozenset(), "drawn")
    # the drawn part has no notes in the window: the next candidate plays instead
    assert scores.draw_parts(parts, [(0,), (1,)], {0}, 4.0, 8.0, 0.3) == ((1,), frozenset({0}), "other part")
    # resting in its only sounding bar would silence it: the rests go, the part stays
    assert scores.draw_parts(parts, [(2,), (0,)], {0}, 4.0, 8.0, 0.3) == ((2,), frozenset(), "no rests")
    assert scores.draw_parts(parts, [(0,)], set(), 4.0, 8.0, 0.3) is None


def test_arrange_never_leaves_an_instrument_without_notes():
    """A score where most parts rest through most bars: every drawn instrument still covers the minimum share."""
    bars = 16
    busy = tuple((float(t), 1.0, 60 + t % 5) for t in range(4 * bars))  # one part plays throughout
    late = tuple((float(t), 1.0, 50) for t in range(4 * (bars - 1), 4 * bars))  # the others: the last bar only
    score = scores.Score("test__sparse", (busy, late, late, late), 4.0, 4.0 * bars)
    dcfg = DataConfig(duration_s=4.0, min_other=5, max_other=5, rest_prob=0.2, min_sounding_share=0.3,
                      style="clean")
    for seed in range(10):
        arr = scores.arrange(score, dcfg, np.random.default_rng(seed))
        assert len(arr.instruments) == 5
        for name in arr.instruments:
            assert arr.coverage[name] >= 0.3, (seed, name, arr.coverage[name])
            assert arr.events["other/" + name], (seed, name)
        assert arr == scores.arrange(score, dcfg, np.random.default_rng(seed))  # deterministic


def test_arrange_fails_clearly_when_no_window_can_sound():
    late = tuple((float(t), 1.0, 50) for t in range(60, 64))  # every part rests but for the last bar of 16
    score = scores.Score("test__silent", (late,) * 4, 4.0, 64.0)
    dcfg = DataConfig(duration_s=4.0, min_other=2, max_other=2, min_sounding_share=0.9, style="clean")
    with pytest.raises(RuntimeError, match="no window of test__silent"):
        scores.arrange(score, dcfg, np.random.default_rng(0))


def test_instrument_levels_on_known_signals():
    rate = 1000
    t = np.arange(4 * rate) / rate
    sine = (0.1 * np.sin(2 * np.pi * 50 * t)).astype(np.float32)
    half = np.where(t < 2, 0.5 * sine, 0.0).astype(np.float32)  # 6 dB quieter, first half only
    levels = render.instrument_levels({"a": sine[None], "b": half[None], "c": np.zeros((1, len(t)))}, rate)
    assert levels["a"]["sounding_share"] == pytest.approx(1.0)
    assert levels["b"]["sounding_share"] == pytest.approx(0.5)
    assert levels["a"]["median_db"] == pytest.approx(20 * np.log10(0.1 / np.sqrt(2)), abs=0.05)
    assert levels["a"]["median_db"] - levels["b"]["median_db"] == pytest.approx(6.02, abs=0.05)
    assert levels["a"]["dominant_share"] == pytest.approx(1.0)
    assert levels["c"] == {"rms_db": pytest.approx(-100.0), "silent": True, "sounding_share": 0.0,
                           "median_db": None, "dominant_share": 0.0}
    assert not levels["b"]["silent"]


def test_instrument_summary_counts_silent_and_needs_levels(tiny_root):
    metas = [t.meta for t in load_tracks(tiny_root, "train") + load_tracks(tiny_root, "test")]
    table = render.instrument_summary(metas)
    assert table["tracks"].sum() == sum(len(m["instruments"]) for m in metas)
    assert table["silent"].sum() == 0
    assert table["sounding_share"].between(0, 1).all()
    # relative_db: against the mean of the track's sounding instruments (c never plays)
    lv = {"silent": False, "sounding_share": 1.0, "dominant_share": 0.5, "rms_db": -20.0}
    metas = [{"levels": {"a": {**lv, "median_db": -20.0}, "b": {**lv, "median_db": -26.0},
                         "c": {**lv, "silent": True, "median_db": None}}},
             {"levels": {"a": {**lv, "median_db": -40.0}, "b": {**lv, "median_db": -42.0}}}]
    table = render.instrument_summary(metas)
    assert table.loc["a", "relative_db"] == pytest.approx(2.0)  # median of +3 and +1
    assert table.loc["b", "relative_db"] == pytest.approx(-2.0)
    assert table.loc["c", "silent"] == 1 and table.loc["a", "tracks"] == 2
    with pytest.raises(ValueError, match="render the data set again"):
        render.instrument_summary([{"piece": "x", "instruments": ["piano"]}])


def test_same_seed_same_audio_different_seed_different(tiny_cfg, tmp_path):
    cfg = tiny_cfg.replace(data={"n_tracks": 2, "n_test": 1, "duration_s": 2.0})
    a = render.render_dataset(cfg, root=tmp_path / "a", progress=False, workers=1)
    b = render.render_dataset(cfg, root=tmp_path / "b", progress=False, workers=1)
    c = render.render_dataset(cfg.replace(data={"seed": 1}), root=tmp_path / "c", progress=False, workers=1)
    name = sorted(p.name for p in (a / "test").iterdir())[0]
    np.testing.assert_array_equal(_read(a / "test" / name / "mixture.wav"), _read(b / "test" / name / "mixture.wav"))
    names_c = sorted(p.name for p in (c / "test").iterdir())
    mix_c = _read(c / "test" / names_c[0] / "mixture.wav")
    assert names_c[0] != name or not np.array_equal(mix_c, _read(a / "test" / name / "mixture.wav"))


def test_extra_training_tracks_leave_the_test_split_unchanged(tiny_cfg, tmp_path):
    cfg = tiny_cfg.replace(data={"n_tracks": 3, "n_test": 1, "duration_s": 2.0})
    extra = cfg.replace(data={"extra_train": 2})
    assert extra.data.signature() != cfg.data.signature() and extra.data.signature().startswith("5t_")
    assert cfg.replace(data={"extra_train": 0}).data.signature() == cfg.data.signature()
    a = render.render_dataset(cfg, root=tmp_path / "a", progress=False, workers=1)
    b = render.render_dataset(extra, root=tmp_path / "b", progress=False, workers=1)
    assert len(list((a / "train").iterdir())) == 2 and len(list((b / "train").iterdir())) == 4
    (name,) = [p.name for p in (a / "test").iterdir()]
    assert [p.name for p in (b / "test").iterdir()] == [name]
    np.testing.assert_array_equal(_read(a / "test" / name / "mixture.wav"), _read(b / "test" / name / "mixture.wav"))
    manifest = json.loads((b / "manifest.json").read_text())
    train_pieces = {json.loads((p / "meta.json").read_text())["piece"] for p in (b / "train").iterdir()}
    assert train_pieces <= set(manifest["scores"]["train"])  # extra tracks never use a test score


def test_test_scores_are_held_out(tiny_root):
    manifest = json.loads((tiny_root / "manifest.json").read_text())
    assert not set(manifest["scores"]["train"]) & set(manifest["scores"]["test"])


def test_musdb_reads_the_rendered_set(tiny_root):
    import musdb

    db = musdb.DB(root=str(tiny_root), is_wav=True, subsets=["train", "test"])
    assert len(db.tracks) == 6
    track = db.tracks[0]
    assert track.audio.shape[1] == 2
    np.testing.assert_allclose(track.audio, sum(track.sources[s].audio for s in track.sources), atol=1e-6)


def test_missing_soundfont_is_a_clear_error(monkeypatch, tmp_path):
    monkeypatch.setenv("MSS_SOUNDFONT", str(tmp_path / "nope.sf2"))
    with pytest.raises(render.SoundfontError, match="does not exist"):
        render.find_soundfont()


def test_fallback_soundfont_warns(monkeypatch, tmp_path):
    monkeypatch.delenv("MSS_SOUNDFONT", raising=False)
    monkeypatch.setattr(synth, "FLUID_PATH", tmp_path / "absent.sf2")
    with pytest.warns(UserWarning, match="TimGM6mb"):
        path = render.find_soundfont()
    assert path.name == "TimGM6mb.sf2"


def test_render_notes_places_notes_in_time():
    sf2 = render.find_soundfont()
    rate = 16000
    x = synth.render_notes([(0.5, 0.3, 69, 100)], 0, rate, rate, sf2)
    assert np.max(np.abs(x[: int(0.45 * rate)])) < 1e-4  # silence before the onset
    assert np.max(np.abs(x[int(0.5 * rate): int(0.8 * rate)])) > 1e-2


def test_tracks_of_an_older_renderer_are_rendered_again(tiny_cfg, tmp_path):
    cfg = tiny_cfg.replace(data={"n_tracks": 2, "n_test": 1, "duration_s": 2.0})
    root = render.render_dataset(cfg, root=tmp_path / "set", progress=False, workers=1)
    meta_path = next((root / "test").glob("*/meta.json"))
    stale = json.loads(meta_path.read_text())
    stale["render_version"] = cfg.data.render_version - 1
    meta_path.write_text(json.dumps(stale))
    render.render_dataset(cfg, root=root, progress=False, workers=1)
    assert json.loads(meta_path.read_text())["render_version"] == cfg.data.render_version
    assert len(list(root.glob("*/*/meta.json"))) == 2


# --- the realistic style ----------------------------------------------------------------------------


def _chorale(bars: int = 16) -> scores.Score:
    """Four parts on a I-IV-V-I progression in C, one chord per beat, and its chordify-like harmony."""
    progression = [(48, 60, 64, 67), (53, 60, 65, 69), (55, 59, 62, 67), (48, 60, 64, 72)]
    chords = tuple((float(b), 1.0, progression[b % 4]) for b in range(4 * bars))
    parts = tuple(tuple((float(b), 1.0, progression[b % 4][3 - v]) for b in range(4 * bars)) for v in range(4))
    return scores.Score("test__chorale", parts, 4.0, 4.0 * bars, chords)


def test_realistic_arrangement_plays_chords_and_every_instrument_sounds():
    from mss_helpers import textures

    dcfg = DataConfig(duration_s=4.0, min_other=5, max_other=5, min_sounding_share=0.3)
    assert dcfg.style == "realistic"
    seen_polyphonic = 0
    for seed in range(6):
        arr = scores.arrange(_chorale(), dcfg, np.random.default_rng(seed))
        assert len(arr.instruments) == 5
        for name in arr.instruments:
            assert arr.coverage[name] >= 0.3, (seed, name, arr.coverage[name])
            assert arr.programs["other/" + name] in textures.FAMILIES[name][0]
            assert arr.textures[name] in textures.FAMILIES[name][1] + ("pad",)
            if name in ("piano", "guitar", "synth_pad"):
                assert arr.textures[name] in textures.POLYPHONIC
        poly = max(textures.polyphony(arr.events["other/" + n], dcfg.duration_s) for n in arr.instruments)
        seen_polyphonic += poly >= 0.5
        assert arr == scores.arrange(_chorale(), dcfg, np.random.default_rng(seed))  # deterministic
    assert seen_polyphonic == 6


def test_strums_spread_their_strings_in_both_directions():
    from mss_helpers import textures

    notes = textures.chord_texture("strum", _chorale().chords, 16.0, 4.0, (40, 71), np.random.default_rng(0))
    by_onset = {}
    for onset, _, pitch, _, delay in notes:
        by_onset.setdefault(onset, []).append((delay, pitch))
    directions = set()
    for strum in by_onset.values():
        delays = sorted(strum)
        assert len(strum) >= 3 and 0.004 <= delays[1][0] - delays[0][0] <= 0.04  # 5-30 ms apart, +-30 %
        directions.add(delays[0][1] < delays[-1][1])  # down: low string first
    assert directions == {True, False}


def test_realistic_track_is_wet_levelled_and_exact(tmp_path):
    from mss_helpers.room import ild_iqr_db
    from mss_helpers.synth import find_soundfonts

    dcfg = DataConfig(duration_s=3.0, render_rate=8000, min_other=3, max_other=3)
    stems, meta = render.render_track(_chorale(), dcfg, (0, 1), find_soundfonts())
    names = meta["instruments"]
    assert np.array_equal(stems["other"], sum(stems["other/" + n] for n in names))
    assert np.array_equal(stems["mixture"], stems["vocals"] + stems["drums"] + stems["bass"] + stems["other"])
    assert meta["style"] == "realistic" and 0.1 < meta["room"]["rt60_s"] < 2.0
    for n in names:
        info = meta["other"][n]
        assert {"soundfont", "program", "texture", "polyphony", "loudness_lufs"} <= set(info)
        assert 0.0 <= info["polyphony"] <= 1.0
    # not dry point sources: each instrument's left/right level ratio spreads over several dB
    assert np.median([ild_iqr_db(stems["other/" + n], 8000) for n in names]) >= 3.0
    folder = render.write_track(tmp_path, "test", "000_x", stems, meta)
    assert (folder / "meta.json").is_file()


def test_the_clean_style_keeps_its_root_names():
    from mss_helpers.config import get_config

    cpu = get_config("cpu")
    assert cpu.data.style == "realistic"
    assert cpu.replace(data={"style": "clean"}).data.signature() == "150t_16000hz_4e02135f"  # the first report's
    assert cpu.data.signature() != cpu.replace(data={"style": "clean"}).data.signature()


def test_soundfonts_from_the_environment(tmp_path, monkeypatch):
    import os

    from mss_helpers.errors import SoundfontError
    from mss_helpers.synth import find_soundfonts

    a, b = tmp_path / "a.sf2", tmp_path / "b.sf2"
    a.write_bytes(b"x")
    b.write_bytes(b"x")
    monkeypatch.setenv("MSS_SOUNDFONT", f"{a}{os.pathsep}{b}")
    assert find_soundfonts() == [a, b]
    monkeypatch.setenv("MSS_SOUNDFONT", str(tmp_path / "missing.sf2"))
    with pytest.raises(SoundfontError, match="does not exist"):
        find_soundfonts()
