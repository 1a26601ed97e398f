"""The report on a user's data root (MUSDB18's layout): one switch, outputs under reports/ only.

The stand-in root is the tiny embedded set written as MUSDB18 ships (``.stem.mp4``,
44.1 kHz stereo AAC, no instruments inside "other", no ``meta.json``), so the
whole report runs on a root of a layout it has never rendered itself.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from mss_helpers import datasets, paths, standin
from mss_helpers.config import get_config

ROOT = Path(__file__).resolve().parents[1]


def _clean_env(**extra) -> dict:
    """The caller's environment without any MSS_ setting (the soundfont may stay), plus ``extra``."""
    keep = ("MSS_SOUNDFONT",)
    env = {k: v for k, v in os.environ.items() if not k.startswith("MSS_") or k in keep}
    env.update(MPLBACKEND="Agg", **extra)
    return env


@pytest.fixture(scope="module")
def standin_root(tiny_root, tmp_path_factory):
    """4 train + 2 test songs of the tiny set as ``.stem.mp4`` files."""
    root = tmp_path_factory.mktemp("musdb_standin") / "musdb18_standin"
    tracks = {s: datasets.load_tracks(tiny_root, s, split_scheme="folders") for s in ("train", "test")}
    return standin.write_standin(root, tracks)


def test_standin_is_musdb18_without_instruments(standin_root):
    assert datasets.detect_format(standin_root) is False  # .stem.mp4 files
    test = datasets.load_tracks(standin_root, "test")
    assert len(test) == 2 and not datasets.has_instruments(test)
    assert all(t.meta == {} and t.rate == standin.MUSDB_RATE for t in test)
    other = test[0].load("other")
    assert other.shape[0] == 2 and float(np.abs(other).max()) > 0.01


def test_user_root_moves_every_default_folder_under_reports(tmp_path, monkeypatch):
    for name in ("MSS_DATA_DIR", "MSS_RUNS_DIR", "MSS_FIGURES_DIR", "MSS_RESULTS_DIR", "MSS_REPORTS_DIR"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv("MSS_DATA_ROOT", raising=False)
    assert paths.user_root() is None and paths.report_dir() is None
    assert paths.results_dir() == paths.PROJ_ROOT / "results"
    assert get_config("tiny").data.root is None
    monkeypatch.setenv("MSS_DATA_ROOT", str(tmp_path / "my_musdb"))
    monkeypatch.setenv("MSS_PRESET", "tiny")
    report = paths.PROJ_ROOT / "reports" / "my_musdb_tiny"
    assert paths.report_dir() == report
    for name in ("data", "runs", "figures", "results", "notebooks", "html"):
        assert getattr(paths, f"{name}_dir" if name not in ("notebooks",) else "notebooks_out_dir")() == report / name
    assert get_config("tiny").data.root == str(tmp_path / "my_musdb")
    monkeypatch.setenv("MSS_RESULTS_DIR", str(tmp_path / "elsewhere"))  # an explicit folder still wins
    assert paths.results_dir() == tmp_path / "elsewhere"


def _fake_root(tmp_path, n_train: int, n_test: int) -> Path:
    root = tmp_path / f"root_{n_train}_{n_test}"
    for split, n in (("train", n_train), ("test", n_test)):
        (root / split).mkdir(parents=True)
        for i in range(n):
            (root / split / f"A{i:03d} - Song.stem.mp4").write_bytes(b"")
    return root


def test_split_scheme_is_the_seeds_on_musdb18s_own_folders(tmp_path, monkeypatch):
    from mss_helpers.errors import ConfigError

    monkeypatch.delenv("MSS_SPLIT_SCHEME", raising=False)
    musdb = _fake_root(tmp_path, 100, 50)
    other = _fake_root(tmp_path, 4, 2)
    assert datasets.resolve_split_scheme(musdb) == "seed"
    assert datasets.resolve_split_scheme(other) == "folders"
    assert datasets.resolve_split_scheme(musdb, "folders") == "folders"
    monkeypatch.setenv("MSS_SPLIT_SCHEME", "seed")
    assert datasets.resolve_split_scheme(other) == "seed"
    with pytest.raises(ConfigError, match="split scheme"):
        datasets.resolve_split_scheme(other, "random")


def test_a_runs_data_key_names_its_split(tmp_path, monkeypatch):
    cfg = get_config("tiny")
    root = _fake_root(tmp_path, 4, 2)
    monkeypatch.setenv("MSS_SPLIT_SCHEME", "folders")
    folders = datasets.data_key(cfg, root)
    monkeypatch.setenv("MSS_SPLIT_SCHEME", "seed")
    assert datasets.data_key(cfg, root) != folders


def test_songs_are_decoded_once_and_mapped(standin_root, tmp_path, monkeypatch):
    """A .stem.mp4 stem is decoded and resampled once to a cache; later reads map the file, same samples."""
    monkeypatch.setenv("MSS_DATA_DIR", str(tmp_path / "data"))
    track = datasets.load_tracks(standin_root, "train")[0]
    direct = track._decode("other", 16000, 1)
    first = track.load("other", rate=16000, channels=1)
    cached = list((tmp_path / "data" / "decoded").rglob("other_16000hz_1ch.npy"))
    assert len(cached) == 1
    second = track.load("other", rate=16000, channels=1)
    assert isinstance(second, np.memmap) and second.shape == direct.shape == (1, first.shape[1])
    np.testing.assert_array_equal(np.asarray(second), direct)
    second *= 0.5  # copy-on-write: a caller's in-place change never reaches the cache
    np.testing.assert_array_equal(np.asarray(track.load("other", rate=16000, channels=1)), direct)


def test_reproduce_on_a_bad_root_is_one_line(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "mss_helpers", "reproduce", "--preset", "tiny",
                           "--root", str(tmp_path / "nowhere")], cwd=ROOT, capture_output=True, text=True,
                          env=_clean_env(MSS_REPORTS_DIR=str(tmp_path / "reports")), timeout=120)
    assert proc.returncode == 1
    assert proc.stderr.startswith("error: data root") and "does not exist" in proc.stderr
    assert "Traceback" not in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "reports").exists()


def _committed_state() -> str:
    out = subprocess.run(["git", "status", "--porcelain", "--", "notebooks", "figures", "results", "README.md"],
                         cwd=ROOT, capture_output=True, text=True)
    return out.stdout


def test_the_whole_report_runs_on_a_musdb18_root(standin_root, tmp_path):
    """``reproduce --root``: every notebook runs, outputs land under reports/ only, the seed's table is written."""
    before = _committed_state()
    reports = tmp_path / "reports"
    proc = subprocess.run([sys.executable, "-m", "mss_helpers", "reproduce", "--preset", "tiny",
                           "--root", str(standin_root)], cwd=ROOT, capture_output=True, text=True,
                          env=_clean_env(MSS_REPORTS_DIR=str(reports)), timeout=1200)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-6000:]
    report = reports / "musdb18_standin_tiny"
    assert "the committed report is unchanged" in proc.stdout and str(report) in proc.stdout
    assert _committed_state() == before, "a run on a user's root changed the committed report"
    notebooks = sorted((report / "notebooks").glob("*.ipynb"))
    assert [p.stem for p in notebooks] == [p.stem for p in sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.py"))]
    for nb in notebooks:
        outputs = [o for cell in json.loads(nb.read_text())["cells"] for o in cell.get("outputs", [])]
        text = json.dumps(outputs)
        assert '"output_type": "error"' not in text and "Traceback" not in text, nb.name
        assert "nan dB" not in text and "k = 0" not in text, nb.name
    record = json.loads((report / "results" / "reproduce_tiny.json").read_text())
    assert record["data_root"] == str(standin_root) and record["split_scheme"] == "folders"
    table = (report / "results" / "seed_clustering_tiny.csv").read_text()
    for method in ("kmeans", "agglomerative", "dbscan"):
        assert method in table
    assert any((report / "figures").glob("*.png"))
    assert any((report / "runs").iterdir())


def test_training_clips_of_a_users_songs_are_read_from_the_map(standin_root, tmp_path, monkeypatch):
    """ClipDataset keeps a user's decoded songs on disk and gives the same clips as in memory."""
    import torch

    from mss_helpers.clips import ClipDataset

    monkeypatch.setenv("MSS_DATA_DIR", str(tmp_path / "data"))
    cfg = get_config("tiny")
    tracks = datasets.load_tracks(standin_root, "train")
    kw = dict(clip_s=0.5, rate=cfg.data.sample_rate, channels=1, n_clips=6, cfg=cfg)
    mapped = ClipDataset(tracks, stem="input", **kw)
    assert all(isinstance(a, datasets.OnDisk) and a.path.endswith(".npy") for a in mapped.audio)
    in_memory = ClipDataset(tracks, stem="input", **kw)
    in_memory.audio = [np.load(a.path) for a in in_memory.audio]
    for i in range(len(mapped)):
        assert torch.equal(mapped[i], in_memory[i])


def test_reproduce_names_a_song_that_cannot_be_decoded(standin_root, tmp_path):
    import shutil

    root = tmp_path / "broken_musdb"
    shutil.copytree(standin_root, root)
    bad = next((root / "test").glob("*.stem.mp4"))
    bad.write_bytes(b"not an mp4 file")
    proc = subprocess.run([sys.executable, "-m", "mss_helpers", "reproduce", "--preset", "tiny", "--root", str(root)],
                          cwd=ROOT, capture_output=True, text=True,
                          env=_clean_env(MSS_REPORTS_DIR=str(tmp_path / "reports")), timeout=300)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert proc.stderr.startswith("error: ") and bad.name in proc.stderr, proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


def test_open_unmix_pairs_of_a_users_songs_stay_on_disk(standin_root, tmp_path, monkeypatch):
    """The first stage's (other, rest) pairs: on disk for a user's songs, the same clips as in memory."""
    from mss_helpers import unmix_train

    monkeypatch.setenv("MSS_DATA_DIR", str(tmp_path / "data"))
    cfg = get_config("tiny")
    tracks = datasets.load_tracks(standin_root, "train")
    pairs = unmix_train.load_pairs(tracks, cfg)
    assert all(isinstance(o, datasets.OnDisk) and isinstance(r, datasets.Difference) for o, r in pairs)
    in_memory = [(o[:, :], r[:, :]) for o, r in pairs]
    other = np.load(pairs[0][0].path)
    np.testing.assert_array_equal(in_memory[0][0], other[:, :pairs[0][0].shape[1]])
    a = unmix_train.PairedClipDataset(pairs, 300, 4, seed=3, random=False)
    b = unmix_train.PairedClipDataset(in_memory, 300, 4, seed=3, random=False)
    long = unmix_train.PairedClipDataset(pairs, 10 ** 7, 1, seed=3, random=False)[0]  # longer than a song: padded
    assert long[0].shape[-1] == 10 ** 7
    for i in range(4):
        for x, y in zip(a[i], b[i]):
            np.testing.assert_array_equal(x.numpy(), y.numpy())
