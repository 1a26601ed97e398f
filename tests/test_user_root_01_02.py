"""Notebooks 01 and 02 on a root without instruments inside "other" (MUSDB18's layout).

A three-song ``.stem.mp4`` root is written with known stems: sines of known amplitude,
so each stem's level and the share of "other" in the mixture are known in advance, and
a silent drum stem (a song without drums). Notebook 01 runs on it as a script: it
describes the stems, skips what needs the instruments with one printed line each, and
writes a summary without NaN.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from mss_helpers import datacard, datasets, plots, standin

ROOT = Path(__file__).resolve().parents[1]
RATE = standin.MUSDB_RATE
SECONDS = 3.0
# amplitude and frequency of each stem's sine: distinct frequencies, so their energies add in the mixture
SINES = {"vocals": (0.1, 330.0), "drums": (0.0, 80.0), "bass": (0.2, 55.0), "other": (0.2, 440.0)}


def _power_db(amplitude: float) -> float:
    return 10 * np.log10(amplitude**2 / 2)  # a sine's mean square is a^2 / 2


@pytest.fixture(scope="module")
def sine_root(tmp_path_factory):
    """``train/`` with two songs and ``test/`` with one, each the stems of :data:`SINES` (stereo)."""
    root = tmp_path_factory.mktemp("sines") / "sine_musdb"
    t = np.arange(int(SECONDS * RATE)) / RATE
    stems = {k: np.stack([a * np.sin(2 * np.pi * f * t)] * 2).astype(np.float32) for k, (a, f) in SINES.items()}
    for split, n in (("train", 2), ("test", 1)):
        for i in range(n):
            standin.write_song(root / split / f"Artist {i} - Sines {split}.stem.mp4", stems)
    return root


def test_stem_table_measures_known_levels_and_the_share_of_other(sine_root):
    tracks = datasets.load_tracks(sine_root, "train") + datasets.load_tracks(sine_root, "test")
    assert not datasets.has_instruments(tracks)
    table = datacard.stem_table(tracks)
    assert list(table.split) == ["train", "train", "test"]
    assert table.duration_s.between(SECONDS, SECONDS + 0.1).all()  # AAC pads a few ms
    for stem in ("vocals", "bass", "other"):
        assert table[f"{stem}_db"].to_numpy() == pytest.approx(_power_db(SINES[stem][0]), abs=0.3), stem
    assert (table.drums_db < -90).all()  # silence, a finite floor rather than -inf
    mixture = sum(a**2 / 2 for a, _ in SINES.values())
    assert table.mixture_db.to_numpy() == pytest.approx(10 * np.log10(mixture), abs=0.3)
    assert table.other_share.to_numpy() == pytest.approx(SINES["other"][0] ** 2 / 2 / mixture, abs=0.03)

    summary = datacard.stem_summary(table)
    json.dumps(summary, allow_nan=False)  # what results/dataset_<preset>.json keeps: no NaN, no inf
    assert summary["median_db"]["other"] == pytest.approx(_power_db(0.2), abs=0.3)
    assert summary["hours_of_other_train"] == pytest.approx(2 * SECONDS / 3600, rel=0.05)


class _Song:
    """A track-like object: ``load(stem)`` gives a ramp, so a cut's position is readable from its values."""

    rate = 100

    def __init__(self, seconds: float):
        self.n = int(seconds * self.rate)

    def load(self, stem):
        return np.arange(self.n, dtype=np.float32)[None]


def test_song_stems_cut_the_middle_of_a_long_song_and_keep_a_short_one():
    cut = datacard.song_stems(_Song(100.0), seconds=30.0)
    assert set(cut) == set(datacard.STEMS)
    assert cut["other"].shape == (1, 3000) and cut["other"][0, 0] == 3500  # (10000 - 3000) // 2
    whole = datacard.song_stems(_Song(2.0), seconds=30.0)
    assert whole["mixture"].shape == (1, 200) and whole["mixture"][0, 0] == 0


def test_stem_levels_draws_a_box_per_stem_and_the_share_histogram(sine_root):
    table = datacard.stem_table(datasets.load_tracks(sine_root, "train"))
    fig = plots.stem_levels(table, title="sines")
    left, right = fig.axes
    assert [t.get_text() for t in left.get_xticklabels()] == list(datacard.STEMS)
    assert sum(p.get_height() for p in right.patches) == len(table)  # one count per track
    plots.save_figure(fig, "01_stem_levels")


def test_notebook_01_describes_a_root_without_instruments(sine_root, tmp_path):
    keep = ("MSS_SOUNDFONT",)
    env = {k: v for k, v in os.environ.items() if not k.startswith("MSS_") or k in keep}
    env.update(MSS_PRESET="tiny", MSS_DATA_ROOT=str(sine_root), MPLBACKEND="Agg",
               **{f"MSS_{d.upper()}_DIR": str(tmp_path / d) for d in ("data", "runs", "results", "figures")})
    proc = subprocess.run([sys.executable, "notebooks/01_prepare_data.py"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    out = proc.stdout
    skipped = [line for line in out.splitlines() if line.startswith("skipped: ")]
    assert len(skipped) == 4 and all("sine_musdb does not have" in line for line in skipped), skipped
    assert "nan" not in out.lower() and "k = 0" not in out
    summary = json.loads((tmp_path / "results" / "dataset_tiny.json").read_text())
    assert summary["tracks"] == {"train": 2, "test": 1} and summary["split_scheme"] == "folders"
    assert "instrument_counts" not in summary and "styles" not in summary
    assert sorted(p.name for p in (tmp_path / "figures").iterdir()) == ["01_stem_levels.png",
                                                                       "01_stems_spectrograms.png"]
    assert not list((tmp_path / "data").glob("embedded_*"))  # nothing rendered: a user's root is only read
