import json

import numpy as np
import pytest
import soundfile as sf

from mss_helpers import render
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


def test_every_instrument_sounds(tiny_root):
    for track in load_tracks(tiny_root, "test"):
        for name, x in track.other_stems().items():
            assert np.mean(x**2) > 1e-6, f"{track.name}/{name} is silent"


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
    monkeypatch.setattr(render, "FLUID_PATH", tmp_path / "absent.sf2")
    with pytest.warns(UserWarning, match="TimGM6mb"):
        path = render.find_soundfont()
    assert path.name == "TimGM6mb.sf2"


def test_render_notes_places_notes_in_time():
    sf2 = render.find_soundfont()
    rate = 16000
    x = render.render_notes([(0.5, 0.3, 69, 100)], 0, rate, rate, sf2)
    assert np.max(np.abs(x[: int(0.45 * rate)])) < 1e-4  # silence before the onset
    assert np.max(np.abs(x[int(0.5 * rate): int(0.8 * rate)])) > 1e-2
