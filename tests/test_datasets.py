import numpy as np
import pytest

from mss_helpers import datasets
from mss_helpers.clips import ClipDataset
from mss_helpers.datasets import DataRootError, load_tracks, split_train_val


def test_tracks_and_stems(tiny_root, tiny_cfg):
    train, test = load_tracks(tiny_root, "train"), load_tracks(tiny_root, "test")
    assert (len(train), len(test)) == (4, 2)
    track = test[0]
    assert track.rate == 16000 and track.instruments
    other = track.load("other", channels=1)
    stems = track.other_stems(channels=1)
    assert set(stems) == set(track.instruments)
    np.testing.assert_allclose(sum(stems.values()), other, atol=1e-5)
    x = datasets.input_audio(track, tiny_cfg)
    assert x.shape == (tiny_cfg.data.channels, int(tiny_cfg.data.duration_s * tiny_cfg.data.sample_rate))


def test_resampled_load(tiny_root):
    track = load_tracks(tiny_root, "test")[0]
    x = track.load("mixture", rate=8000)
    assert x.shape == (2, 4 * 8000)


def test_split_train_val(tiny_root):
    tracks = load_tracks(tiny_root, "train")
    tr, va = split_train_val(tracks, 1, seed=0)
    assert len(tr) == 3 and len(va) == 1 and not {t.name for t in tr} & {t.name for t in va}
    with pytest.raises(ValueError):
        split_train_val(tracks, 4)


def test_clip_dataset(tiny_root):
    ds = ClipDataset(load_tracks(tiny_root, "train"), clip_s=0.5, rate=16000, channels=1, n_clips=8,
                     random=False)
    a, b = ds[3], ds[3]
    assert tuple(a.shape) == (1, 8000) and a.dtype.is_floating_point
    assert np.array_equal(a.numpy(), b.numpy())
    rnd = ClipDataset(load_tracks(tiny_root, "train"), clip_s=0.5, n_clips=8, random=True)
    first = rnd[0].numpy()
    rnd.set_epoch(1)
    assert not np.array_equal(first, rnd[0].numpy())
    with pytest.raises(ValueError, match="shorter"):
        ClipDataset(load_tracks(tiny_root, "train"), clip_s=10.0)


@pytest.mark.parametrize("make, message", [
    (lambda p: p / "missing", "does not exist"),
    (lambda p: p, "is empty"),
    (lambda p: (p / "x.txt").write_text("x") and p, "no train/ or test/"),
    (lambda p: ((p / "train" / "song").mkdir(parents=True), p)[1], "no tracks found"),
])
def test_bad_roots_say_what_was_expected(tmp_path, make, message):
    root = make(tmp_path)
    with pytest.raises(DataRootError, match=message) as err:
        load_tracks(root, "train")
    assert "mixture.wav" in str(err.value)


def test_missing_split_folder(tiny_root, tmp_path):
    import shutil

    shutil.copytree(tiny_root / "train", tmp_path / "train")
    with pytest.raises(DataRootError, match="no test/ folder"):
        load_tracks(tmp_path, "test")


def test_other_stems_can_drop_silent_instruments(tiny_root, tmp_path):
    import shutil

    import soundfile as sf

    shutil.copytree(tiny_root, tmp_path / "set")
    track = load_tracks(tmp_path / "set", "test")[0]
    silent = track.instruments[0]
    path = track.other_stems_dir / f"{silent}.wav"
    x, rate = sf.read(str(path))
    sf.write(str(path), x * 0, rate, subtype="PCM_16")
    assert silent in track.other_stems()
    assert silent not in track.other_stems(min_db=-60.0)
    assert set(track.other_stems(min_db=-60.0)) == set(track.instruments) - {silent}


def test_an_unreadable_mixture_raises_or_is_listed_and_left_out(tiny_root, tmp_path):
    import shutil

    from mss_helpers.errors import AudioError

    shutil.copytree(tiny_root / "test", tmp_path / "test")
    good = load_tracks(tiny_root, "test")
    bad_name = good[0].name
    (tmp_path / "test" / bad_name / "mixture.wav").write_bytes(b"this is not audio")
    with pytest.raises(AudioError, match="mixture.wav: not a readable audio file"):
        load_tracks(tmp_path, "test")  # a direct caller gets the clear error
    unreadable = []
    kept = load_tracks(tmp_path, "test", unreadable=unreadable)
    assert [u["track"] for u in unreadable] == [bad_name] and bad_name in unreadable[0]["reason"]
    # the readable tracks are built as musdb.DB builds them: same names, rates, stems and audio
    assert [t.name for t in kept] == [t.name for t in good[1:]]
    for a, b in zip(kept, good[1:]):
        assert a.rate == b.rate and list(a.mtrack.sources) == list(b.mtrack.sources)
        np.testing.assert_array_equal(a.load("mixture"), b.load("mixture"))
        np.testing.assert_array_equal(a.mtrack.targets["accompaniment"].audio,
                                      b.mtrack.targets["accompaniment"].audio)
