"""One reader for the embedded set, MUSDB18-HQ (wav folders) and MUSDB18 (.stem.mp4).

All three go through the ``musdb`` package. The embedded set adds what MUSDB18
lacks: the instruments inside "other", under ``<root>/other_stems/<split>/<track>/``
(see :mod:`mss_helpers.render`); where that tree is absent, ``Track.instruments``
is empty and only unsupervised metrics apply.

Splits: the embedded set and MUSDB18 both have ``train`` and ``test`` folders.
``split_scheme="seed"`` pools real MUSDB18's 150 songs and holds out the last
20 by name, the seed report's 130/20 split. It is the default on a root laid out
as MUSDB18's own 100/50 folders (:func:`resolve_split_scheme`); ``MSS_SPLIT_SCHEME``
(``reproduce --split-scheme``) chooses for every reader of a run.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from . import audio as audio_io
from . import paths
from .config import Config, config_hash
from .frames import frame_labels

STEMS = ("mixture", "vocals", "drums", "bass", "other")


from .errors import AudioError, ConfigError, DataRootError, RunNotFoundError  # noqa: E402,F401  (re-exported)


def _layout_hint(root: Path) -> str:
    return (f"expected {root}/train/<track>/ and {root}/test/<track>/ holding mixture.wav, vocals.wav, "
            "drums.wav, bass.wav, other.wav (MUSDB18-HQ or the embedded set; build it with "
            "`python -m mss_helpers render`) or <track>.stem.mp4 files (MUSDB18)")


def detect_format(root) -> bool:
    """Check ``root`` and return ``is_wav`` (True: wav folders, False: .stem.mp4 files)."""
    root = Path(root).expanduser()
    if not root.exists():
        raise DataRootError(f"data root {root} does not exist; {_layout_hint(root)}")
    if not root.is_dir():
        raise DataRootError(f"data root {root} is a file, not a folder; {_layout_hint(root)}")
    splits = [root / s for s in ("train", "test") if (root / s).is_dir()]
    if not splits:
        if not any(root.iterdir()):
            raise DataRootError(f"data root {root} is empty; {_layout_hint(root)}")
        raise DataRootError(f"data root {root} has no train/ or test/ folder; {_layout_hint(root)}")
    if any(next(split.glob("*/mixture.wav"), None) for split in splits):
        return True
    if any(next(split.glob("*.stem.mp4"), None) for split in splits):
        return False
    raise DataRootError(f"no tracks found under {root}/train or {root}/test; {_layout_hint(root)}")


SPLIT_SCHEMES = ("folders", "seed")
MUSDB18_FOLDERS = {"train": 100, "test": 50}  # MUSDB18's own split of its 150 songs


def _count_tracks(folder: Path) -> int:
    return sum(1 for _ in folder.glob("*/mixture.wav")) + sum(1 for _ in folder.glob("*.stem.mp4"))


def resolve_split_scheme(root, scheme: str | None = None) -> str:
    """The split scheme used on ``root``: ``scheme``, else ``$MSS_SPLIT_SCHEME``, else
    ``"seed"`` where the root has MUSDB18's own 100/50 folders and ``"folders"`` elsewhere."""
    import os

    scheme = scheme or os.environ.get("MSS_SPLIT_SCHEME", "").strip() or None
    if scheme is not None:
        if scheme not in SPLIT_SCHEMES:
            raise ConfigError(f"split scheme must be one of {', '.join(SPLIT_SCHEMES)}, got {scheme!r} "
                              "(--split-scheme or MSS_SPLIT_SCHEME)")
        return scheme
    root = Path(root).expanduser()
    counts = {s: _count_tracks(root / s) for s in MUSDB18_FOLDERS}
    return "seed" if counts == MUSDB18_FOLDERS else "folders"


def has_instruments(tracks) -> bool:
    """Whether the tracks have the instruments inside "other" (the embedded set) or not (MUSDB18)."""
    return any(t.instruments for t in tracks)


@dataclass
class Track:
    """One song. Audio is loaded on demand as float32 ``(channels, samples)``."""

    name: str
    subset: str
    root: Path
    mtrack: object = field(repr=False)  # musdb.MultiTrack
    meta: dict = field(default_factory=dict, repr=False)

    @property
    def path(self) -> Path:
        """The track's folder (wav layouts) or its .stem.mp4 file."""
        p = Path(self.mtrack.path)
        return p.parent if p.name == "mixture.wav" else p

    @property
    def rate(self) -> int:
        return int(self.mtrack.rate)

    @property
    def other_stems_dir(self) -> Path:
        return self.root / "other_stems" / self.subset / self.name

    @property
    def instruments(self) -> list[str]:
        """Names of the instruments inside "other" ([] where the data set has none)."""
        folder = self.other_stems_dir
        if not folder.is_dir():
            folder = self.path / "other_stems"  # the nested layout of the architecture draft
        return sorted(p.stem for p in folder.glob("*.wav")) if folder.is_dir() else []

    def load(self, stem: str = "other", rate: int | None = None, channels: int | None = None) -> np.ndarray:
        """One stem (``mixture``, ``vocals``, ``drums``, ``bass``, ``other``) as ``(C, S)`` float32."""
        if stem not in STEMS:
            raise ValueError(f"unknown stem {stem!r}; choose one of {STEMS}")
        cache = self._cache_path(stem, rate, channels)
        if cache is not None and cache.is_file():
            return np.load(cache, mmap_mode="c")  # copy-on-write: a caller may scale its copy in place
        x = self._decode(stem, rate, channels)
        if cache is None:
            return x
        paths.atomic_write(cache, lambda tmp: np.save(tmp, x))
        return np.load(cache, mmap_mode="c")

    def _decode(self, stem: str, rate: int | None, channels: int | None) -> np.ndarray:
        wav = self.path / f"{stem}.wav"
        if wav.is_file():
            # musdb would run ffprobe for every read of a wav file; soundfile reads it directly,
            # at the file's own rate (a stem at another rate than the mixture is still right).
            return audio_io.read_audio(wav, rate=rate, channels=channels,
                                       name=f"track {self.name!r}, stem {stem!r}")[0]
        x = self.mtrack.audio if stem == "mixture" else self.mtrack.sources[stem].audio
        x = np.ascontiguousarray(np.asarray(x, dtype=np.float32).T)  # musdb: (samples, channels)
        if channels is not None:
            x = audio_io.to_channels(x, channels)
        if rate is not None and rate != self.rate:
            x = audio_io.resample(x, self.rate, rate)
        return x

    def _cache_path(self, stem: str, rate: int | None, channels: int | None) -> Path | None:
        """Where a decoded stem is kept (``.npy``, memory-mapped on read), or None: read it directly.

        Songs of a user's root (MUSDB18's AAC streams, or wav files at another rate than the models')
        are decoded and resampled once, then every reader maps the file instead of holding all
        songs in memory. The embedded set (instruments inside "other", already at the models' rate)
        is read directly, as it always was.
        """
        source = self.path if self.path.suffix == ".mp4" else self.path / f"{stem}.wav"
        if source.suffix != ".mp4" and (self.instruments or rate is None or rate == self.rate):
            return None
        st = source.stat()
        key = hashlib.sha1(f"{source.resolve()}|{st.st_size}|{st.st_mtime_ns}".encode()).hexdigest()[:12]
        return paths.data_dir() / "decoded" / key / f"{stem}_{rate or self.rate}hz_{channels or 'all'}ch.npy"

    def other_stems(self, rate: int | None = None, channels: int | None = None,
                    min_db: float | None = None) -> dict[str, np.ndarray]:
        """The instruments inside "other": ``{name: (C, S)}``; ``{}`` when the set has none.

        ``min_db`` drops instruments whose level is below it (dBFS): an instrument
        that rests for a whole excerpt has no signal to be scored against.
        """
        out = {}
        for name in self.instruments:
            path = self.other_stems_dir / f"{name}.wav"
            if not path.is_file():
                path = self.path / "other_stems" / f"{name}.wav"
            x, _ = audio_io.read_audio(path, rate=rate, channels=channels,
                                       name=f"track {self.name!r}, instrument {name!r} of 'other'")
            if min_db is None or audio_io.rms_db(x) >= min_db:
                out[name] = x
        return out


def load_tracks(root, split: str = "train", is_wav: bool | None = None,
                split_scheme: str | None = None, unreadable: list | None = None) -> list[Track]:
    """All tracks of ``split`` ("train" or "test") under ``root``, sorted by name.

    ``split_scheme="folders"`` uses the root's train/test folders;
    ``"seed"`` pools both and holds out the last 20 names as test (the seed
    report's 130/20 split of MUSDB18's 150 songs); None: :func:`resolve_split_scheme`.

    A wav track whose ``mixture.wav`` cannot be read raises :class:`AudioError`
    naming the file, unless ``unreadable`` is a list: then the track is left
    out and ``{"track", "reason"}`` appended to it (the evaluation scores the
    others and reports it).
    """
    import ffmpeg  # ffmpeg-python, which musdb reads .stem.mp4 files with
    import musdb

    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    root = Path(root).expanduser().resolve()
    detected = detect_format(root)
    split_scheme = resolve_split_scheme(root, split_scheme)
    is_wav = detected if is_wav is None else is_wav
    subsets = [split] if split_scheme == "folders" else ["train", "test"]
    subsets = [s for s in subsets if (root / s).is_dir()]
    if not subsets:
        raise DataRootError(f"data root {root} has no {split}/ folder; {_layout_hint(root)}")
    bad = {}  # track folder -> reason
    if is_wav:  # musdb probes each mixture with ffprobe, whose error names no file: soundfile first
        for mixture in sorted(p for s in subsets for p in (root / s).glob("*/mixture.wav")):
            try:
                audio_io.audio_info(mixture)
            except AudioError as exc:
                if unreadable is None:
                    raise
                bad[mixture.parent] = " ".join(str(exc).split())
    if bad:  # musdb.DB would probe them again and fail: build the readable ones the way it does
        unreadable += [{"track": folder.name, "reason": reason} for folder, reason in bad.items()]
        mtracks = _wav_mtracks(root, subsets, skip=set(bad))
    else:
        try:
            mtracks = musdb.DB(root=str(root), is_wav=is_wav, subsets=subsets).tracks
        except ffmpeg.Error:  # a .stem.mp4 ffprobe cannot read; its error names no file: find the file
            for path in sorted(p for s in subsets for p in (root / s).glob("*.stem.mp4")):
                audio_io.audio_info(path)
            raise
    tracks = []
    for mt in mtracks:
        if is_wav and not (Path(mt.path).parent / "mixture.wav").is_file():
            continue  # a sub-folder musdb walked into (e.g. a nested other_stems/): not a track
        folder = Path(mt.path).parent
        meta_path = folder / "meta.json"
        meta = json.loads(meta_path.read_text()) if is_wav and meta_path.is_file() else {}
        tracks.append(Track(name=mt.name, subset=mt.subset, root=root, mtrack=mt, meta=meta))
    tracks.sort(key=lambda t: t.name)
    if split_scheme == "seed":
        tracks = tracks[:-20] if split == "train" else tracks[-20:]
    if not tracks and not bad:  # every mixture unreadable: the caller has them in ``unreadable``
        raise DataRootError(f"no {split} tracks under {root}; {_layout_hint(root)}")
    return tracks


def _wav_mtracks(root: Path, subsets, skip: set) -> list:
    """musdb tracks of the wav folders ``root/<subset>/<track>/`` except those in ``skip``.

    Built as ``musdb.DB.load_mus_tracks`` builds them (same setup: stem files and ids), for a
    root where some mixtures cannot be read and ``musdb.DB`` itself would stop at the first.
    """
    import musdb

    db = musdb.DB(root=str(root), is_wav=True, subsets=[])  # its setup, no tracks
    out = []
    for subset in subsets:
        for folder in sorted(p.parent for p in (root / subset).glob(f"*/{db.setup['mixture']}")):
            if folder in skip:
                continue
            mt = musdb.MultiTrack(name=folder.name, path=str(folder / db.setup["mixture"]), subset=subset,
                                  is_wav=True, stem_id=db.setup["stem_ids"]["mixture"],
                                  sample_rate=db.sample_rate)
            mt.sources = {src: musdb.Source(mt, name=src, path=str(folder / file),
                                            stem_id=db.setup["stem_ids"][src], sample_rate=db.sample_rate)
                          for src, file in db.setup["sources"].items() if (folder / file).exists()}
            mt.targets = db.create_targets(mt)
            out.append(mt)
    return out


def split_train_val(tracks: list[Track], n_val: int, seed: int = 0) -> tuple[list[Track], list[Track]]:
    """Hold ``n_val`` training tracks out for validation (seeded, deterministic)."""
    if not 0 < n_val < len(tracks):
        raise ConfigError(f"holding out n_val={n_val} validation tracks needs 0 < n_val < the number of "
                          f"training tracks ({len(tracks)}); add training tracks or change DataConfig.n_val_tracks")
    order = np.random.default_rng(seed).permutation(len(tracks))
    val = sorted(order[:n_val])
    train = sorted(order[n_val:])
    return [tracks[i] for i in train], [tracks[i] for i in val]


DATA_SUFFIXES = (".wav", ".flac", ".mp4", ".json")


def data_key(cfg: Config, root=None) -> str:
    """What names a run's data in its folder name: ``""`` for the preset's own embedded set (its render
    signature is already in the config hash), else ``"_data<hash>"`` of ``root``'s resolved path and
    every audio and ``meta.json`` file under it (relative path, size, mtime), and the split scheme.

    A model trained on one root is never found under another root's name, and a root whose files
    changed gets a new name; a user-given ``DataConfig.root`` is keyed the same way.
    """
    if root is None and not cfg.data.root:
        return ""
    root = Path(root if root is not None else cfg.data.root).expanduser().resolve()
    if not cfg.data.root and root == cfg.data.resolved_root():
        return ""
    h = hashlib.sha1(str(root).encode())
    if root.exists():
        h.update(f"split:{resolve_split_scheme(root)}\n".encode())
        for p in sorted(root.rglob("*")):
            if p.suffix in DATA_SUFFIXES and p.is_file():
                st = p.stat()
                h.update(f"{p.relative_to(root).as_posix()}:{st.st_size}:{st.st_mtime_ns}\n".encode())
    return f"_data{h.hexdigest()[:8]}"


def unmix_key(cfg: Config) -> str:
    """Hash of the settings that define the Open-Unmix first stage (``data`` and ``unmix``).

    Names both the stage's training run (``unmix_train.default_run_dir``) and its
    cached estimates (:func:`estimates_root`); a weights folder named only by
    ``$MSS_UNMIX_WEIGHTS`` counts as set. Which stage feeds the autoencoder
    (``data.source``) does not change the first stage itself, so it is left out.
    """
    import os

    # pretrained weights given by $MSS_UNMIX_WEIGHTS (unmix.WEIGHTS_ENV) are a different first stage too
    weights = cfg.unmix.weights_dir or os.environ.get("MSS_UNMIX_WEIGHTS") or None
    return config_hash(cfg.replace(data={"source": "other"}, unmix={"weights_dir": weights}), "data", "unmix")


def estimates_root(cfg: Config) -> Path:
    """``data_dir()/unmix_estimates_<data signature>_<unmix_key>``: the first stage's "other" estimates."""
    return paths.data_dir() / f"unmix_estimates_{cfg.data.signature()}_{unmix_key(cfg)}"


def estimate_path(cfg: Config, track, must_exist: bool = False) -> Path:
    """Where the first stage's "other" estimate of ``track`` is (``<root>/<subset>/<name>/other.wav``).

    The file holds ``(channels, samples)`` audio at ``cfg.data.sample_rate``,
    written by ``unmix_eval.write_estimates``. Raises FileNotFoundError (saying
    how to make it) when ``must_exist`` and absent.
    """
    path = estimates_root(cfg) / str(track.subset) / str(track.name) / "other.wav"
    if must_exist and not path.is_file():
        raise RunNotFoundError(f"no Open-Unmix estimate for track {track.name!r} at {path}; "
                               "run mss_helpers.unmix_eval.write_estimates(cfg, ...) first")
    return path


def _usable(x: np.ndarray, track: Track, cfg: Config) -> np.ndarray:
    """``x`` if it can be separated; :class:`AudioError` naming the track if it is silent or too short."""
    # An STFT frame and two latent frames at least: less cannot be split into anything.
    min_samples = max(cfg.cluster.stft_n_fft, 2 * int(np.prod(cfg.model.ratios)))
    return audio_io.check_audio(x, cfg.data.sample_rate, min_seconds=min_samples / cfg.data.sample_rate,
                                name=f"track {track.name!r}, stem 'other'")


def input_audio(track: Track, cfg: Config, channels: int | None = None) -> np.ndarray:
    """What the autoencoder and the separation see for ``track``: ``(C, S)`` at the model's rate.

    The true "other" stem, or Open-Unmix's estimate of it when
    ``cfg.data.source == "unmix"`` (written beforehand by ``unmix_eval.write_estimates``).
    ``channels`` overrides the model's (2: the stereo input of the pan methods).
    """
    rate, channels = cfg.data.sample_rate, channels or cfg.data.channels
    if cfg.data.source == "other":
        return _usable(track.load("other", rate=rate, channels=channels), track, cfg)
    if cfg.data.source == "unmix":
        path = estimate_path(cfg, track)
        if not path.is_file():
            raise RunNotFoundError(f"no Open-Unmix estimate for {track.name} at {path}; run "
                                   "`python -m mss_helpers unmix --train --split all` (or "
                                   "unmix_eval.write_estimates) first")
        x, _ = audio_io.read_audio(path, rate=rate, channels=channels,
                                   name=f"Open-Unmix estimate of {track.name!r}")
        return _usable(x, track, cfg)
    raise ValueError(f"cfg.data.source must be 'other' or 'unmix', got {cfg.data.source!r}")


def ensure_dataset(cfg: Config, progress: bool = True) -> Path:
    """The preset's data root, rendered first if it is missing or incomplete."""
    root = cfg.data.resolved_root()
    if cfg.data.root:  # a user-given root (e.g. real MUSDB18) is never rendered into
        detect_format(root)
        return root
    n_done = sum(1 for _ in root.glob("*/*/meta.json")) if root.is_dir() else 0
    if n_done < cfg.data.n_tracks + cfg.data.extra_train:
        from .render import render_dataset

        render_dataset(cfg, root=root, progress=progress)
    return root


class OnDisk:
    """A user's decoded song kept as its cache file: ``shape`` and slicing like a ``(C, S)`` array (the
    first ``n`` samples when given); each slice is read from the map and copied, so the pages it touched
    are let go and memory does not grow with the number of songs."""

    def __init__(self, path, n: int | None = None):
        self.path = str(path)
        channels, samples = np.load(self.path, mmap_mode="r").shape
        self.shape = (channels, samples if n is None else min(int(n), samples))

    def __getitem__(self, index) -> np.ndarray:
        channels, samples = index
        return np.array(np.load(self.path, mmap_mode="r")[channels, :self.shape[1]][:, samples])


class Difference:
    """``a - b`` of two :class:`OnDisk` songs (their first ``n`` samples), computed for the slice asked for."""

    def __init__(self, a: OnDisk, b: OnDisk, n: int):
        self.a, self.b = OnDisk(a.path, n), OnDisk(b.path, n)
        self.shape = (a.shape[0], min(self.a.shape[1], self.b.shape[1]))

    def __getitem__(self, index) -> np.ndarray:
        return self.a[index] - self.b[index]


def held(a, n: int | None = None):
    """What a training set keeps of one song: an :class:`OnDisk` (its first ``n`` samples) when ``a`` maps
    a user's decoded song whole (:meth:`Track.load`), else ``a`` itself (the embedded set, in memory)."""
    if isinstance(a, np.memmap) and a.filename and a.shape == np.load(a.filename, mmap_mode="r").shape:
        return OnDisk(a.filename, n)
    return a


def track_table(tracks: list[Track], rate: int | None = None, hop_s: float = 0.05,
                active_db: float = -40.0):
    """One row per track: piece, instruments, tempo, levels, and how often instruments overlap.

    Overlap uses :func:`mss_helpers.frames.frame_labels` on ``hop_s`` frames:
    ``overlap`` is the share of sounding frames where two or more instruments
    of "other" are active, ``mean_active`` the mean count over sounding frames.
    """
    import pandas as pd

    rows = []
    for t in tracks:
        other = t.load("other", rate=rate, channels=1)
        r = rate or t.rate
        row = {"track": t.name, "split": t.subset, "piece": t.meta.get("piece", ""),
               "composer": t.meta.get("piece", "").split("__")[0], "n_instruments": len(t.instruments),
               "instruments": ",".join(t.instruments), "tempo_bpm": t.meta.get("tempo_bpm"),
               "duration_s": other.shape[1] / r, "other_db": audio_io.rms_db(other),
               "mixture_db": audio_io.rms_db(t.load("mixture", rate=rate, channels=1))}
        stems = t.other_stems(rate=rate, channels=1)
        if stems:
            hop = int(round(hop_s * r))
            lab = frame_labels(stems, hop, other.shape[1] // hop, r, active_db)
            sounding = lab["n_active"] > 0
            row["overlap"] = float(np.mean(lab["n_active"][sounding] >= 2)) if sounding.any() else 0.0
            row["mean_active"] = float(np.mean(lab["n_active"][sounding])) if sounding.any() else 0.0
        rows.append(row)
    return pd.DataFrame(rows)

