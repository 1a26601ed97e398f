"""The embedded data set: real scores rendered per instrument with a General MIDI soundfont.

Scores come from music21's offline corpus (Bach chorales, Monteverdi madrigals,
Haydn and Mozart string quartets). For every track one excerpt of one score is
rendered part by part with ``tinysoundfont``:

- ``vocals``: the top part on a voice-like patch (Choir Aahs);
- ``bass``: the lowest part an octave down on an electric bass;
- ``drums``: a simple kit pattern on the beat grid;
- ``other``: 2-5 instruments drawn from piano, guitar, strings, synth lead,
  synth pad, organ and brass, each playing one of the parts (the piano two),
  each optionally resting for whole bars, written as ``other_stems/<name>.wav``.

Tempo, velocities, timing jitter, stereo panning and per-stem loudness vary per
track. Stems are quantised to the 16-bit grid *before* they are summed, so the
files on disk satisfy ``mixture == vocals + drums + bass + other`` and
``other == sum(other_stems)`` exactly. The layout is MUSDB18-HQ's (readable by
``musdb.DB(root, is_wav=True)``) plus ``meta.json`` in each track folder and the
instrument stems in a sibling tree, ``<root>/other_stems/<split>/<track>/<instrument>.wav``.
Rendering is deterministic for a given seed. Test tracks use scores that no
training track uses.
"""

from __future__ import annotations

import json
import os
import shutil
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import audio as audio_io
from .config import Config, DataConfig, config_to_dict, get_config

FLUID_PATH = Path("/usr/share/sounds/sf2/FluidR3_GM.sf2")

# name -> (General MIDI program, 0-based; octave shift applied to its part)
INSTRUMENTS: dict[str, tuple[int, int]] = {
    "piano": (0, 0),
    "guitar": (25, 0),  # steel-string acoustic
    "strings": (48, 0),  # string ensemble 1
    "synth_lead": (81, 12),  # sawtooth lead, an octave up
    "synth_pad": (89, 0),  # warm pad
    "organ": (19, 0),  # church organ
    "brass": (61, 0),  # brass section
}
VOCALS_PROGRAM = 52  # choir aahs
BASS_PROGRAM = 33  # electric bass (finger)
SCORE_SOURCES = (("bach", "mxl", 0.6), ("monteverdi", "mxl", 0.2), ("haydn", "mxl", 0.1),
                 ("mozart", "mxl", 0.1))
STEMS = ("vocals", "drums", "bass", "other")


from .errors import DataRootError, SoundfontError  # noqa: E402,F401  (re-exported)


# --- soundfont -----------------------------------------------------------------------------


def find_soundfont() -> Path:
    """The General MIDI soundfont to render with.

    Order: ``$MSS_SOUNDFONT``; FluidR3_GM from Debian's ``fluid-soundfont-gm``;
    pretty_midi's bundled TimGM6mb.sf2 (with a warning: smaller, duller).
    """
    env = os.environ.get("MSS_SOUNDFONT")
    if env:
        path = Path(env).expanduser()
        if not path.is_file():
            raise SoundfontError(f"MSS_SOUNDFONT points to {path}, which does not exist")
        return path
    if FLUID_PATH.is_file():
        return FLUID_PATH
    try:
        import pretty_midi

        bundled = Path(pretty_midi.__file__).parent / "TimGM6mb.sf2"
    except ImportError:
        bundled = None
    if bundled is not None and bundled.is_file():
        warnings.warn(f"FluidR3_GM not found at {FLUID_PATH}; falling back to pretty_midi's TimGM6mb.sf2. "
                      "Install Debian's fluid-soundfont-gm (or set MSS_SOUNDFONT) for the reference sound.",
                      stacklevel=2)
        return bundled
    raise SoundfontError(f"no General MIDI soundfont: install Debian's fluid-soundfont-gm ({FLUID_PATH}), "
                         "or set MSS_SOUNDFONT=/path/to/a/GM.sf2")


# --- scores ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Score:
    """One piece as note lists: ``parts[i] = [(onset_ql, duration_ql, midi_pitch), ...]``."""

    name: str
    parts: tuple
    bar_ql: float
    total_ql: float


def list_pieces(composer: str, ext: str) -> list[str]:
    """Corpus paths of one composer's scores in one format, sorted."""
    from music21 import corpus

    paths = sorted(str(p) for p in corpus.getComposer(composer) if str(p).endswith("." + ext))
    if composer == "bach":  # chorales only: bwv<number>.<number>.mxl
        paths = [p for p in paths if Path(p).name.startswith("bwv")]
    return paths


def load_scores(max_pieces: int, seed: int = 0, cache_dir: Path | None = None) -> list[Score]:
    """A deterministic mix of usable scores: each composer fills its share of ``max_pieces``."""
    rng = np.random.default_rng(seed)
    scores: list[Score] = []
    for composer, ext, share in SCORE_SOURCES:
        quota = max(1, int(round(share * max_pieces)))
        paths = list_pieces(composer, ext)
        got = 0
        for i in rng.permutation(len(paths)):
            if got == quota:
                break
            score = load_score(paths[i], cache_dir)
            if score is not None:
                scores.append(score)
                got += 1
    return scores


def load_score(path: str, cache_dir: Path | None = None) -> Score | None:
    """Parse a corpus file into note lists (cached as JSON); None if it has < 4 usable parts."""
    key = path.split("/corpus/")[-1].replace("/", "__")
    cache = cache_dir / f"{key}.json" if cache_dir else None
    if cache is not None and cache.is_file():
        d = json.loads(cache.read_text())
        return None if d is None else Score(d["name"], tuple(tuple(map(tuple, p)) for p in d["parts"]),
                                            d["bar_ql"], d["total_ql"])
    from music21 import converter

    score = converter.parse(path).stripTies()
    parts = []
    for part in score.parts:
        notes = []
        for n in part.flatten().notes:
            for p in n.pitches:  # chords in a part give several pitches at one onset
                notes.append((float(n.offset), float(n.quarterLength), int(p.midi)))
        if len(notes) >= 8:
            parts.append(sorted(notes))
    ts = score.flatten().getElementsByClass("TimeSignature")
    bar_ql = float(ts[0].barDuration.quarterLength) if len(ts) else 4.0
    total = max((o + d for p in parts for o, d, _ in p), default=0.0)
    result = None
    if len(parts) >= 4 and total >= 4 * bar_ql:
        parts.sort(key=lambda p: -np.mean([m for _, _, m in p]))  # top voice first
        result = Score(key.rsplit(".", 1)[0], tuple(tuple(p) for p in parts), bar_ql, total)
    if cache is not None:
        cache.parent.mkdir(parents=True, exist_ok=True)
        cache.write_text(json.dumps(None if result is None else
                                    {"name": result.name, "parts": result.parts, "bar_ql": bar_ql,
                                     "total_ql": total}))
    return result


# --- synthesis --------------------------------------------------------------------------------

_SYNTH_CACHE: dict = {}


def _synth(soundfont: Path, rate: int):
    import tinysoundfont

    key = (str(soundfont), rate)
    if key not in _SYNTH_CACHE:
        synth = tinysoundfont.Synth(samplerate=rate, gain=-6.0)
        sfid = synth.sfload(str(soundfont))
        _SYNTH_CACHE[key] = (synth, sfid)
    return _SYNTH_CACHE[key]


def _drain(synth, rate: int) -> None:
    """Silence the (cached) synth: ``sounds_off`` only starts the release, so render the tails away.

    Without this the release of one stem's last notes would leak into the next stem.
    """
    synth.sounds_off()
    for _ in range(20 * rate // 1024):  # at most ~20 s of release
        if float(np.max(np.abs(np.frombuffer(synth.generate_simple(1024), dtype=np.float32)))) < 1e-7:
            return
    raise RuntimeError("the synthesizer did not fall silent after all notes were released")


def render_notes(notes, program: int, n_samples: int, rate: int, soundfont: Path,
                 drums: bool = False) -> np.ndarray:
    """Render ``[(onset_s, duration_s, pitch, velocity), ...]`` on one GM program.

    Returns mono float32 ``(n_samples,)``.
    """
    synth, sfid = _synth(soundfont, rate)
    _drain(synth, rate)
    chan = 9 if drums else 0
    synth.program_select(chan, sfid, 128 if drums else 0, 0 if drums else program, is_drums=drums)
    events = []
    for onset, dur, pitch, vel in notes:
        start = int(round(onset * rate))
        if 0 <= start < n_samples:
            events.append((start, 1, pitch, vel))
            events.append((min(start + max(int(dur * rate), 1), n_samples), 0, pitch, 0))
    events.sort(key=lambda e: (e[0], e[1]))  # note-offs before note-ons at the same sample
    out = np.zeros((n_samples, 2), dtype=np.float32)
    pos = 0
    for when, is_on, pitch, vel in events + [(n_samples, -1, 0, 0)]:
        if when > pos:
            buf = synth.generate_simple(when - pos)
            out[pos:when] = np.frombuffer(buf, dtype=np.float32).reshape(-1, 2)
            pos = when
        if is_on == 1:
            synth.noteon(chan, int(pitch), int(vel))
        elif is_on == 0:
            synth.noteoff(chan, int(pitch))
    return out.mean(axis=1)


def _drum_pattern(bar_ql: float, n_bars: int, sec_per_ql: float, rng) -> list:
    notes = []
    beats = max(int(round(bar_ql)), 2)
    for bar in range(n_bars):
        t0 = bar * bar_ql
        for beat in range(beats):
            t = (t0 + beat) * sec_per_ql
            notes.append((t, 0.1, 36 if beat % 2 == 0 else 38, int(rng.integers(80, 110))))
            for half in (0.0, 0.5):
                notes.append((t + half * sec_per_ql, 0.05, 42, int(rng.integers(50, 80))))
    return notes


def _excerpt(part, start_ql: float, length_ql: float, loop_ql: float):
    """Notes of ``part`` starting in [start, start+length), looping the piece if it is shorter."""
    out = []
    repeat = 0
    while repeat * loop_ql < start_ql + length_ql:
        for onset, dur, pitch in part:
            t = onset + repeat * loop_ql - start_ql
            if 0 <= t < length_ql:
                out.append((t, dur, pitch))
        repeat += 1
    return out


def _pan(mono: np.ndarray, pan: float) -> np.ndarray:
    """Constant-power pan, ``pan`` in [-1, 1]: ``(2, samples)``."""
    angle = (pan + 1) * np.pi / 4
    return np.stack([np.cos(angle) * mono, np.sin(angle) * mono]).astype(np.float32)


def _quantise(x: np.ndarray) -> np.ndarray:
    """Round to the 16-bit PCM grid, so sums of stems survive writing exactly."""
    return (np.round(np.clip(x, -1, 1 - 2**-15) * 32768.0) / 32768.0).astype(np.float32)


def render_track(score: Score, dcfg: DataConfig, track_seed, soundfont: Path) -> tuple[dict, dict]:
    """Render one track; returns ``(stems, meta)`` with ``stems[name] = (2, samples)``.

    ``stems`` holds ``vocals, drums, bass, other, mixture`` and ``other/<instrument>``.
    ``track_seed`` is anything ``numpy.random.default_rng`` accepts.
    """
    rng = np.random.default_rng(track_seed)
    rate = dcfg.render_rate
    n = int(round(dcfg.duration_s * rate))
    bpm = float(rng.uniform(72, 132))
    spq = 60.0 / bpm  # seconds per quarter note
    length_ql = dcfg.duration_s / spq
    n_bars_total = max(int(score.total_ql // score.bar_ql), 1)
    start_bar = int(rng.integers(0, max(n_bars_total - int(length_ql // score.bar_ql), 1)))
    start_ql = start_bar * score.bar_ql
    n_bars = int(np.ceil(length_ql / score.bar_ql)) + 1
    parts = [_excerpt(p, start_ql, length_ql, score.total_ql) for p in score.parts]

    def to_events(notes, shift=0, base_vel=90, rest_bars=frozenset()):
        ev = []
        for onset, dur, pitch in notes:
            if int(onset // score.bar_ql) in rest_bars:
                continue
            t = max(onset * spq + rng.normal(0, 0.008), 0.0)  # human timing jitter
            vel = int(np.clip(base_vel + rng.normal(0, 8), 20, 127))
            ev.append((t, dur * spq * 0.95, int(np.clip(pitch + shift, 0, 127)), vel))
        return ev

    n_other = int(rng.integers(dcfg.min_other, dcfg.max_other + 1))
    names = list(rng.choice(sorted(INSTRUMENTS), size=min(n_other, len(INSTRUMENTS)), replace=False))
    order = list(rng.permutation(len(parts)))
    assignment = {}
    for i, name in enumerate(names):
        idx = [int(order[i % len(order)])]
        if name == "piano":  # two hands: add the part an octave/voice below
            idx.append(int(order[(i + 1) % len(order)]))
        assignment[name] = idx

    mono: dict[str, np.ndarray] = {}
    mono["vocals"] = render_notes(to_events(parts[0], 0, int(rng.integers(70, 100))), VOCALS_PROGRAM, n, rate,
                                  soundfont)
    mono["bass"] = render_notes(to_events(parts[-1], -12, int(rng.integers(80, 110))), BASS_PROGRAM, n, rate,
                                soundfont)
    mono["drums"] = render_notes(_drum_pattern(score.bar_ql, n_bars, spq, rng), 0, n, rate, soundfont,
                                 drums=True)
    rests = {}
    for name in names:
        program, shift = INSTRUMENTS[name]
        rest_bars = frozenset(b for b in range(n_bars) if rng.random() < dcfg.rest_prob)
        rests[name] = sorted(rest_bars)
        events = [e for i in assignment[name] for e in to_events(parts[i], shift, int(rng.integers(65, 110)),
                                                                 rest_bars)]
        mono["other/" + name] = render_notes(events, program, n, rate, soundfont)

    stems, gains, pans = {}, {}, {}
    for key, x in mono.items():
        level = audio_io.rms_db(x)
        if level < -90:  # an instrument that only rests here: keep it, silent
            gain_db = 0.0
        else:
            gain_db = -20.0 - level + float(rng.uniform(-6, 3)) - (3.0 if key == "drums" else 0.0)
            # A sparse part (few notes in the excerpt) has a low mean level; levelling it
            # by RMS alone would blow up its peaks and force the whole track down.
            gain_db = min(gain_db, -20 * np.log10(float(np.max(np.abs(x))) + 1e-9) - 1.0)
        pan = float(rng.uniform(-0.6, 0.6)) if key not in ("bass", "vocals") else float(rng.uniform(-0.1, 0.1))
        stems[key] = _pan(x * 10 ** (gain_db / 20), pan)
        gains[key], pans[key] = round(gain_db, 2), round(pan, 3)
    # One scale for the whole track keeps the sums exact and the mixture below clipping.
    total = sum(stems.values())
    scale = 0.9 / max(float(np.max(np.abs(total))), 1e-6)
    scale = min(scale, 1.0)
    for key in stems:
        stems[key] = _quantise(stems[key] * scale)
    stems["other"] = sum(stems["other/" + name] for name in names)
    stems["mixture"] = stems["vocals"] + stems["drums"] + stems["bass"] + stems["other"]
    meta = {
        "piece": score.name, "instruments": names,
        "programs": {name: INSTRUMENTS[name][0] for name in names},
        "parts": assignment, "rest_bars": rests, "tempo_bpm": round(bpm, 2), "start_bar": start_bar,
        "gains_db": gains, "pans": pans, "scale": scale, "rate": rate, "duration_s": dcfg.duration_s,
        "seed": [int(s) for s in np.atleast_1d(track_seed)], "soundfont": Path(soundfont).name,
    }
    return stems, meta


def other_stems_dir(root: Path, split: str, track: str) -> Path:
    """Where a track's instrument stems live: ``<root>/other_stems/<split>/<track>/``.

    They sit beside the MUSDB18-HQ tree, not inside the track folders, because
    ``musdb`` walks every sub-folder of a split and would take a nested
    ``other_stems/`` folder for a track.
    """
    return Path(root) / "other_stems" / split / track


def write_track(root: Path, split: str, track: str, stems: dict, meta: dict) -> Path:
    """Write one track: MUSDB18-HQ files + ``meta.json`` (written last) + its instrument stems."""
    rate = meta["rate"]
    folder = Path(root) / split / track
    inst_dir = other_stems_dir(root, split, track)
    tmp = folder.with_name(folder.name + ".partial")
    for path in (tmp, inst_dir):
        if path.exists():
            shutil.rmtree(path)
    tmp.mkdir(parents=True)
    inst_dir.mkdir(parents=True)
    for key, x in stems.items():
        if key.startswith("other/"):
            audio_io.write_audio(inst_dir / f"{key.split('/', 1)[1]}.wav", x, rate, subtype="PCM_16")
        else:
            audio_io.write_audio(tmp / f"{key}.wav", x, rate, subtype="PCM_16")
    (tmp / "meta.json").write_text(json.dumps(meta, indent=1))
    if folder.exists():
        shutil.rmtree(folder)
    os.replace(tmp, folder)  # a track folder is either complete (meta.json inside) or absent
    return folder


# --- the whole set ----------------------------------------------------------------------------


def _render_one(job):
    index, score, dcfg, split, soundfont, root = job
    name = f"{index:03d}_{score.name.split('__')[-1].replace('.', '_')}"
    stems, meta = render_track(score, dcfg, (dcfg.seed, index), soundfont)
    meta.update(track_index=index, split=split)
    return write_track(Path(root), split, name, stems, meta).name


def render_dataset(cfg: Config | DataConfig | None = None, root=None, workers: int | None = None,
                   progress: bool = True) -> Path:
    """Render the embedded set for ``cfg`` into ``root`` (default: the preset's data root).

    Tracks already on disk are kept (an interrupted render resumes). Returns the root.
    """
    dcfg = cfg.data if isinstance(cfg, Config) else (cfg or get_config().data)
    root = Path(root) if root else dcfg.resolved_root()
    if dcfg.n_test >= dcfg.n_tracks or dcfg.n_test < 1:
        raise ValueError(f"need 1 <= n_test < n_tracks, got n_test={dcfg.n_test}, n_tracks={dcfg.n_tracks}")
    soundfont = find_soundfont()
    cache_dir = root.parent / ".score_cache"
    scores = load_scores(dcfg.max_pieces, dcfg.seed, cache_dir)
    if len(scores) < 2:
        raise RuntimeError("fewer than 2 usable scores found in music21's corpus")
    # Hold out whole scores for the test split: a test excerpt never shares a score with training.
    rng = np.random.default_rng(dcfg.seed)
    order = rng.permutation(len(scores))
    n_test_scores = max(1, int(round(len(scores) * dcfg.n_test / dcfg.n_tracks)))
    test_scores = [scores[i] for i in order[:n_test_scores]]
    train_scores = [scores[i] for i in order[n_test_scores:]]
    n_train = dcfg.n_tracks - dcfg.n_test
    jobs = []
    for index in range(dcfg.n_tracks):
        split, pool, j = ("train", train_scores, index) if index < n_train else ("test", test_scores, index - n_train)
        score = pool[j % len(pool)]
        folder_exists = any((root / split).glob(f"{index:03d}_*/meta.json")) if (root / split).exists() else False
        if not folder_exists:
            jobs.append((index, score, dcfg, split, soundfont, str(root)))
    root.mkdir(parents=True, exist_ok=True)
    workers = workers or min(2, os.cpu_count() or 1)
    from tqdm.auto import tqdm

    bar = tqdm(total=len(jobs), desc=f"render {root.name}", disable=not progress or not jobs)
    if workers > 1 and len(jobs) > 1:
        import multiprocessing as mp

        with mp.get_context("fork").Pool(workers) as pool:
            for _ in pool.imap_unordered(_render_one, jobs):
                bar.update()
    else:
        for job in jobs:
            _render_one(job)
            bar.update()
    bar.close()
    manifest = {"config": config_to_dict(cfg) if isinstance(cfg, Config) else None,
                "data": {k: getattr(dcfg, k) for k in dcfg.__dataclass_fields__},
                "soundfont": str(soundfont), "scores": {"train": [s.name for s in train_scores],
                                                        "test": [s.name for s in test_scores]},
                "instruments": sorted(INSTRUMENTS)}
    (root / "manifest.json").write_text(json.dumps(manifest, indent=1))
    return root


def add_arguments(parser) -> None:
    parser.add_argument("--preset", default=None, help="config preset (default: $MSS_PRESET or cpu)")
    parser.add_argument("--root", default=None, help="output folder (default: the preset's data root)")
    parser.add_argument("--tracks", type=int, default=None, help="number of tracks (train + test)")
    parser.add_argument("--test", type=int, default=None, help="number of test tracks")
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--duration", type=float, default=None, help="seconds per track")
    parser.add_argument("--rate", type=int, default=None, help="sample rate of the files (Hz)")
    parser.add_argument("--workers", type=int, default=None)


def run(args) -> int:
    cfg = get_config(args.preset)
    changes = {k: v for k, v in {"n_tracks": args.tracks, "n_test": args.test, "seed": args.seed,
                                 "duration_s": args.duration, "render_rate": args.rate}.items() if v is not None}
    if changes:
        cfg = cfg.replace(data=changes)
    root = render_dataset(cfg, root=args.root, workers=args.workers)
    print(f"data set ready: {root}")
    return 0
