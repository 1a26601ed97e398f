import subprocess
import sys

import numpy as np
import pytest

from mss_helpers import audio


def test_encodec_and_openunmix_import_without_torchaudio():
    # A fresh interpreter where torchaudio cannot be imported at all.
    code = (
        "import sys, importlib.abc\n"
        "class Block(importlib.abc.MetaPathFinder):\n"
        "    def find_spec(self, name, path, target=None):\n"
        "        if name == 'torchaudio' or name.startswith('torchaudio.'):\n"
        "            raise ImportError('blocked for the test')\n"
        "sys.meta_path.insert(0, Block())\n"
        "from mss_helpers import compat\n"
        "enc = compat.seanet().SEANetEncoder(channels=1, dimension=8, n_filters=4, ratios=[2, 2], lstm=0)\n"
        "m = compat.openunmix_model().OpenUnmix(nb_bins=16, nb_channels=1, hidden_size=8)\n"
        "assert compat.torchaudio_is_placeholder()\n"
        "import torchaudio\n"
        "try:\n"
        "    torchaudio.load('x.wav')\n"
        "except RuntimeError as e:\n"
        "    assert 'not usable here' in str(e)\n"
        "else:\n"
        "    raise SystemExit('placeholder did not raise')\n"
        "print('ok')\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().endswith("ok")


def test_write_read_roundtrip(tmp_path):
    x = (np.random.default_rng(0).standard_normal((2, 1600)) * 0.1).astype(np.float32)
    audio.write_audio(tmp_path / "a.wav", x, 16000, subtype="FLOAT")
    y, rate = audio.read_audio(tmp_path / "a.wav")
    assert rate == 16000 and y.shape == (2, 1600)
    np.testing.assert_allclose(x, y, atol=1e-7)
    mono, rate = audio.read_audio(tmp_path / "a.wav", rate=8000, channels=1)
    assert mono.shape == (1, 800) and rate == 8000


def test_resample_keeps_a_sine():
    t = np.arange(16000) / 16000
    x = np.sin(2 * np.pi * 440 * t)[None].astype(np.float32)
    y = audio.resample(x, 16000, 8000)
    ref = np.sin(2 * np.pi * 440 * np.arange(8000) / 8000)
    assert np.max(np.abs(y[0, 200:-200] - ref[200:-200])) < 1e-2


@pytest.mark.parametrize("kwargs, x, match", [
    ({"expected_rate": 44100}, np.ones((1, 100)) * 0.1, "sample rate"),
    ({"expected_channels": 2}, np.ones((1, 100)) * 0.1, "channel"),
    ({"min_seconds": 1.0}, np.ones((1, 100)) * 0.1, "long"),
    ({}, np.zeros((1, 100)), "silent"),
    ({}, np.full((1, 100), np.nan), "NaN"),
])
def test_check_audio_errors(kwargs, x, match):
    with pytest.raises(audio.AudioError, match=match):
        audio.check_audio(x, 16000, **kwargs)


def test_chunked_processing_matches_whole():
    x = np.random.default_rng(1).standard_normal((2, 10007)).astype(np.float32)
    bounds = audio.chunk_bounds(x.shape[1], 3000, 500)
    assert bounds[0][0] == 0 and bounds[-1][1] == x.shape[1]
    y = audio.overlap_add([x[:, a:b] * 2 for a, b in bounds], bounds, x.shape[1])
    np.testing.assert_allclose(y, 2 * x, atol=1e-5)
    with pytest.raises(ValueError):
        audio.chunk_bounds(100, 10, 10)


def test_channel_conversion():
    st = np.stack([np.ones(10), -np.ones(10)]).astype(np.float32)
    assert np.allclose(audio.to_channels(st, 1), 0)
    assert audio.to_channels(st[:1], 2).shape == (2, 10)
    with pytest.raises(audio.AudioError):
        audio.to_channels(np.ones((3, 10)), 2)


def test_embed_audio_is_compact_ogg():
    x = np.random.default_rng(0).standard_normal((1, 16000)).astype(np.float32) * 0.1
    player = audio.embed_audio(x, 44100)
    assert player.mimetype == "audio/ogg"
    assert player.data[:4] == b"OggS"


def test_read_audio_names_the_file_it_cannot_use(tmp_path):
    import soundfile as sf

    junk = tmp_path / "junk.wav"
    junk.write_bytes(b"not audio" * 100)
    with pytest.raises(audio.AudioError, match="junk.wav: not a readable audio file"):
        audio.read_audio(junk)
    with pytest.raises(audio.AudioError, match="junk.wav: not a readable audio file"):
        audio.audio_info(junk)
    nan = tmp_path / "nan.wav"
    x = np.zeros((100, 1), np.float32)
    x[10] = np.nan
    sf.write(nan, x, 16000, subtype="FLOAT")
    with pytest.raises(audio.AudioError, match=r"track 't' \(.*nan.wav\): 1 of 100 samples are NaN"):
        audio.read_audio(nan, name="track 't'")
    with pytest.raises(audio.AudioError, match="missing.wav: audio file not found"):
        audio.read_audio(tmp_path / "missing.wav")
    assert audio.audio_info(nan) == (16000, 1, 100)
