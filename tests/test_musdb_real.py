"""Real MUSDB18 as it ships: one ``<artist> - <title>.stem.mp4`` per track (AAC streams, 44.1 kHz stereo).

A two-track set (one train, one test track) is written with stempeg and ffmpeg, in
MUSDB18's stream order (mixture, drums, bass, other, vocals), then read by
``datasets.load_tracks`` and scored by ``python -m mss_helpers evaluate``. MUSDB18 has
no instruments inside "other", so only the unsupervised columns can hold numbers.
"""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from mss_helpers import datasets
from mss_helpers.evaluate import SCORES, UNSUPERVISED

RATE = 44100
SECONDS = 2.0


def _stems(seed: int) -> dict[str, np.ndarray]:
    """Five ``(samples, 2)`` float32 stems, each with its own sound; mixture = their sum."""
    t = np.arange(int(SECONDS * RATE)) / RATE
    mono = {
        "drums": 0.3 * np.sin(2 * np.pi * 80 * t) * np.exp(-20 * (t % 0.5)),  # a kick every 0.5 s
        "bass": 0.2 * np.sin(2 * np.pi * (55 + 5 * seed) * t),
        # two notes, the second entering halfway: something for NMF to split
        "other": 0.15 * np.sin(2 * np.pi * 440 * t) + 0.15 * np.sin(2 * np.pi * 660 * t) * (t > SECONDS / 2),
        "vocals": 0.1 * np.sin(2 * np.pi * 330 * t + 3 * np.sin(2 * np.pi * 5 * t)),
    }
    stems = {k: np.stack([v, 0.8 * v], axis=1).astype(np.float32) for k, v in mono.items()}
    stems["mixture"] = sum(stems.values())
    return stems


@pytest.fixture(scope="module")
def musdb_root(tmp_path_factory):
    import stempeg

    root = tmp_path_factory.mktemp("musdb18")
    for i, split in enumerate(("train", "test")):
        (root / split).mkdir()
        s = _stems(i)
        stempeg.write_stems(str(root / split / f"Artist {i} - Song {split}.stem.mp4"),
                            np.stack([s[k] for k in ("mixture", "drums", "bass", "other", "vocals")]),
                            sample_rate=RATE)
    return root


def test_load_tracks_reads_stem_mp4(musdb_root):
    assert datasets.detect_format(musdb_root) is False  # .stem.mp4, not wav folders
    for i, split in enumerate(("train", "test")):
        (track,) = datasets.load_tracks(musdb_root, split)
        assert track.name == f"Artist {i} - Song {split}" and track.subset == split
        assert track.path == musdb_root / split / f"{track.name}.stem.mp4"
        assert track.rate == RATE and track.meta == {}
        assert track.instruments == [] and track.other_stems() == {}  # MUSDB18 has no stems inside "other"
        truth = _stems(i)
        for stem in ("mixture", "other", "vocals"):
            x = track.load(stem)
            assert x.dtype == np.float32 and x.shape[0] == 2
            # AAC pads the start and end by a few ms; the audio in between is the stem that was written
            n = truth[stem].shape[0]
            assert n <= x.shape[1] <= n + RATE // 10, (stem, x.shape)
            lag = int(np.argmax(np.correlate(x[0, :4096], truth[stem][:2048, 0], mode="valid")))
            corr = np.corrcoef(x[0, lag:lag + n // 2], truth[stem][: n // 2, 0])[0, 1]
            assert corr > 0.95, (stem, lag, corr)
        y = track.load("other", rate=16000, channels=1)
        assert y.shape[0] == 1 and abs(y.shape[1] - x.shape[1] * 16000 / RATE) <= 1


def test_evaluate_on_stem_mp4_fills_only_unsupervised_columns(musdb_root, tmp_path):
    env = dict(os.environ, MSS_PRESET="tiny", MSS_DATA_DIR=str(tmp_path / "data"),
               MSS_RUNS_DIR=str(tmp_path / "runs"), MSS_RESULTS_DIR=str(tmp_path / "results"),
               MSS_FIGURES_DIR=str(tmp_path / "figures"))
    out = tmp_path / "out"
    proc = subprocess.run([sys.executable, "-m", "mss_helpers", "evaluate", "--root", str(musdb_root),
                           "--methods", "mixture,nmf", "--k", "2", "--out", str(out)],
                          env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert "Traceback" not in proc.stderr
    df = pd.read_csv(out / "separation.csv")
    assert set(df.track) == {"Artist 1 - Song test"}
    assert (df.method == "mixture").sum() == 1 and (df.method == "nmf").sum() == 2  # k = 2 estimates
    assert df.instrument.isna().all()
    assert df[list(SCORES)].isna().all().all()  # nothing to score against
    for col in ("mixture_mse", "spectral_entropy", "sparsity", "energy_share"):
        assert np.isfinite(df[col]).all(), col
    assert df[df.method == "nmf"].energy_share.sum() == pytest.approx(100, abs=1)
    assert set(UNSUPERVISED) <= set(df.columns)
    # A user's own root is not the preset's data set: the report's result tables are left alone.
    assert not (tmp_path / "results").exists() or not any((tmp_path / "results").iterdir())
