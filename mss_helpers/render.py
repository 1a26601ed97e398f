"""The embedded data set: real scores rendered per instrument with a General MIDI soundfont.

Scores come from music21's offline corpus (Bach chorales, Monteverdi madrigals,
Haydn and Mozart string quartets). For every track one excerpt of one score is
rendered part by part:

- ``vocals``: the top part on a voice-like patch (Choir Aahs);
- ``bass``: the lowest part an octave down on an electric bass;
- ``drums``: a simple kit pattern on the beat grid;
- ``other``: 2-5 instruments drawn from piano, guitar, strings, synth lead,
  synth pad, organ and brass, each playing one of the parts (the piano two),
  each optionally resting for whole bars, written as ``other_stems/<name>.wav``.

This module owns the track and the set: levelling, panning and mixing the
stems of one track (:func:`render_track`), measuring each instrument's levels
(:func:`instrument_levels`, stored in ``meta.json``; :func:`instrument_summary`
over a set), writing the files (:func:`write_track`), rendering the whole set
(:func:`render_dataset`) and the ``render`` command. What is played comes from
:mod:`mss_helpers.scores` (which also guarantees that no instrument of "other"
rests through its excerpt), how it sounds from :mod:`mss_helpers.synth`.

Every stem is levelled by its median level *while it plays* (not over the whole
excerpt, which would push sparse parts up and sustained ones down) to a target
drawn from the same range for every instrument, so no instrument is loud by
construction. Stems are quantised to the 16-bit grid *before* they are summed,
so the files on disk satisfy ``mixture == vocals + drums + bass + other`` and
``other == sum(other_stems)`` exactly. The layout is MUSDB18-HQ's (readable by
``musdb.DB(root, is_wav=True)``) plus ``meta.json`` in each track folder and the
instrument stems in a sibling tree, ``<root>/other_stems/<split>/<track>/<instrument>.wav``.
Rendering is deterministic for a given seed. Test tracks use scores that no
training track uses.

The ``realistic`` style (``DataConfig.style``, :func:`render_realistic_track`)
renders each stem on a soundfont and program drawn per track, through an
optional compressor/EQ (pedalboard), places every stem of the track in one
simulated room picked up by two spaced microphones (:mod:`mss_helpers.room`),
and levels the *wet* stems by their loudness (pyloudnorm), so the reference
instruments are the stems as the mix hears them and the sums stay exact.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np

from . import audio as audio_io
from .config import Config, DataConfig, config_to_dict, get_config
from .errors import ConfigError, DataRootError, SoundfontError  # noqa: F401  (re-exported)
from .scores import INSTRUMENTS, Score, arrange, load_scores
from .synth import find_soundfont, find_soundfonts, pan, quantise, render_notes  # noqa: F401  (re-exported)
from .textures import pitch_range, polyphony

STEMS = ("vocals", "drums", "bass", "other")
LEVEL_HOP_S = 0.05  # frames for levels and sounding shares (as datasets.track_table)
ACTIVE_DB = -40.0  # a frame sounds within this of the track's loudest instrument frame (as frames.frame_labels)
SILENT_DB = -60.0  # dBFS over the whole excerpt (mono): below it an instrument counts as silent


# --- levels ----------------------------------------------------------------------------------


def frame_levels_db(audio: np.ndarray, hop: int) -> np.ndarray:
    """Level in dBFS of consecutive ``hop``-sample frames (mono downmix; a trailing partial frame is dropped).

    ``audio`` is ``(samples,)`` or ``(channels, samples)``; returns ``(n_frames,)`` float64.
    """
    x = audio_io.to_channels(audio, 1)[0].astype(np.float64)
    n = len(x) // hop
    if n < 1:
        raise ValueError(f"audio of {len(x)} samples is shorter than one {hop}-sample frame")
    return 10 * np.log10(np.mean(x[: n * hop].reshape(n, hop) ** 2, axis=1) + 1e-12)


def playing_level_db(audio: np.ndarray, rate: int) -> float | None:
    """Median frame level (dBFS) over the frames within ``ACTIVE_DB`` of the loudest; None if all silent."""
    levels = frame_levels_db(audio, max(int(round(LEVEL_HOP_S * rate)), 1))
    if levels.max() < -110:
        return None
    return float(np.median(levels[levels > levels.max() + ACTIVE_DB]))


def instrument_levels(stems: dict, rate: int) -> dict:
    """How long and how loud each instrument of "other" sounds in one track.

    Parameters
    ----------
    stems : dict name -> (channels, samples) float32, the instruments inside "other"
    rate : Hz

    Returns
    -------
    dict name -> ``rms_db`` (whole excerpt, mono, dBFS), ``silent`` (``rms_db`` below
    ``SILENT_DB``), ``sounding_share`` (share of 50 ms frames in which it is within
    ``ACTIVE_DB`` of the loudest frame of any instrument of the track, the
    definition of *active* used for the frame labels), ``median_db`` (median frame
    level over those frames, dBFS; None if it never sounds) and ``dominant_share``
    (share of the frames where any instrument sounds in which it is the loudest).
    """
    names = list(stems)
    hop = max(int(round(LEVEL_HOP_S * rate)), 1)
    levels = np.stack([frame_levels_db(stems[n], hop) for n in names])  # (N, n_frames)
    active = levels > levels.max() + ACTIVE_DB
    any_active = active.any(axis=0)
    loudest = levels.argmax(axis=0)
    out = {}
    for i, name in enumerate(names):
        rms = audio_io.rms_db(audio_io.to_channels(stems[name], 1))
        out[name] = {"rms_db": round(rms, 2), "silent": bool(rms < SILENT_DB),
                     "sounding_share": round(float(active[i].mean()), 4),
                     "median_db": round(float(np.median(levels[i][active[i]])), 2) if active[i].any() else None,
                     "dominant_share": round(float(np.mean(loudest[any_active] == i)), 4) if any_active.any()
                     else 0.0}
    return out


def instrument_summary(metas) -> "pandas.DataFrame":  # noqa: F821
    """One row per instrument over a set of tracks, from the ``levels`` in their ``meta.json``.

    Columns: ``tracks``, ``silent`` (tracks where it is below ``SILENT_DB``), and the
    medians over tracks of ``sounding_share``, ``median_db``, ``relative_db`` and ``dominant_share``
    (see :func:`instrument_levels`); ``relative_db`` is an instrument's ``median_db`` minus the
    mean ``median_db`` of its track's instruments: louder or quieter than its company, free of
    the track's overall level. Raises ValueError for metas without levels
    (a set rendered before they were recorded: render it again).
    """
    import pandas as pd

    rows = []
    for meta in metas:
        if "levels" not in meta:
            raise ValueError(f"meta.json of {meta.get('piece', '?')} has no 'levels' (rendered by an older "
                             "renderer): render the data set again")
        playing = [lv["median_db"] for lv in meta["levels"].values() if lv["median_db"] is not None]
        rows += [{"instrument": name, **lv, "relative_db": None if lv["median_db"] is None
                  else lv["median_db"] - float(np.mean(playing))} for name, lv in meta["levels"].items()]
    df = pd.DataFrame(rows).astype({"median_db": float, "relative_db": float})
    return (df.groupby("instrument")
            .agg(tracks=("rms_db", "size"), silent=("silent", "sum"), sounding_share=("sounding_share", "median"),
                 median_db=("median_db", "median"), relative_db=("relative_db", "median"),
                 dominant_share=("dominant_share", "median"))
            .sort_values("relative_db", ascending=False))


# --- one track -------------------------------------------------------------------------------


def render_track(score: Score, dcfg: DataConfig, track_seed, soundfont) -> tuple[dict, dict]:
    """Render one track; returns ``(stems, meta)`` with ``stems[name] = (2, samples)`` float32.

    ``stems`` holds ``vocals, drums, bass, other, mixture`` and ``other/<instrument>``.
    ``track_seed`` is anything ``numpy.random.default_rng`` accepts. ``soundfont`` is one path
    (``clean``) or the list the ``realistic`` style draws from.
    """
    if dcfg.style == "realistic":
        return render_realistic_track(score, dcfg, track_seed, list(np.atleast_1d(soundfont)))
    soundfont = Path(np.atleast_1d(soundfont)[0])
    rng = np.random.default_rng(track_seed)
    rate = dcfg.render_rate
    n = int(round(dcfg.duration_s * rate))
    arr = arrange(score, dcfg, rng)
    mono = {key: render_notes(events, arr.programs[key] or 0, n, rate, soundfont, drums=key == "drums")
            for key, events in arr.events.items()}

    stems, gains, pans = {}, {}, {}
    for key, x in mono.items():
        level = playing_level_db(x, rate)
        if level is None:  # only vocals or bass can rest here; "other" instruments always play (scores.arrange)
            gain_db = 0.0
        else:
            # The same target range for every stem (drums 3 dB lower): no instrument is loud by construction.
            gain_db = -20.0 - level + float(rng.uniform(-6, 3)) - (3.0 if key == "drums" else 0.0)
            # Keep peaks below full scale, so one spiky part does not force the whole track down.
            gain_db = min(gain_db, -20 * np.log10(float(np.max(np.abs(x))) + 1e-9) - 1.0)
        position = float(rng.uniform(-0.6, 0.6)) if key not in ("bass", "vocals") else float(rng.uniform(-0.1, 0.1))
        stems[key] = pan(x * 10 ** (gain_db / 20), position)
        gains[key], pans[key] = round(gain_db, 2), round(position, 3)
    names = arr.instruments
    scale, levels = _finish(stems, names, rate, score.name)
    meta = {
        "piece": score.name, "instruments": names,
        "programs": {name: INSTRUMENTS[name][0] for name in names},
        "parts": arr.parts, "rest_bars": arr.rest_bars, "coverage": arr.coverage, "redrawn": arr.redrawn,
        "windows": arr.windows, "tempo_bpm": round(arr.tempo_bpm, 2), "start_bar": arr.start_bar,
        "gains_db": gains, "pans": pans, "scale": scale, "levels": levels, "rate": rate,
        "duration_s": dcfg.duration_s, "render_version": dcfg.render_version,
        "seed": [int(s) for s in np.atleast_1d(track_seed)], "soundfont": Path(soundfont).name, "style": "clean",
        "other": {name: {"soundfont": Path(soundfont).name, "program": INSTRUMENTS[name][0], "texture": "line",
                         **_notes_facts(arr.events["other/" + name], dcfg.duration_s)} for name in names},
    }
    return stems, meta


def _finish(stems: dict, names: list, rate: int, piece: str) -> tuple[float, dict]:
    """Scale the track once (mixture below clipping), quantise every stem and build the exact sums in place;
    returns the scale and :func:`instrument_levels` of the instruments of "other".

    Raises RuntimeError for an instrument below ``SILENT_DB``: :func:`scores.arrange` guarantees notes, so
    silence here would be a renderer bug, not bad luck.
    """
    total = sum(stems.values())
    scale = min(0.9 / max(float(np.max(np.abs(total))), 1e-6), 1.0)
    for key in stems:
        stems[key] = quantise(stems[key] * scale)
    stems["other"] = sum(stems["other/" + name] for name in names)
    stems["mixture"] = stems["vocals"] + stems["drums"] + stems["bass"] + stems["other"]
    levels = instrument_levels({name: stems["other/" + name] for name in names}, rate)
    silent = [name for name in names if levels[name]["silent"]]
    if silent:
        raise RuntimeError(f"{piece}: {silent} below {SILENT_DB} dBFS after rendering")
    return scale, levels


def _notes_facts(events, duration_s: float) -> dict:
    """An instrument's ``polyphony`` and ``pitch_range`` from its ``(onset_s, duration_s, pitch, velocity)``."""
    return {"polyphony": round(polyphony(events, duration_s), 4), "pitch_range": pitch_range(events)}


def render_realistic_track(score: Score, dcfg: DataConfig, track_seed, soundfonts: list) -> tuple[dict, dict]:
    """One ``realistic`` track (see the module docstring): returns ``(stems, meta)`` like :func:`render_track`.

    ``meta["other"][instrument]`` records ``soundfont``, ``program``, ``texture``, ``polyphony`` (share of its
    sounding frames with two or more notes), ``pitch_range``, ``span`` (bars it plays), ``effects`` and
    ``loudness_lufs``; ``meta["room"]`` the room with its drawn and measured ``rt60_s``.
    """
    from . import room as rooms

    rng = np.random.default_rng(track_seed)
    rate = dcfg.render_rate
    n = int(round(dcfg.duration_s * rate))
    arr = arrange(score, dcfg, rng)
    keys = list(arr.events)
    fonts = {key: Path(soundfonts[int(rng.integers(len(soundfonts)))]) for key in keys}
    dry, effects = {}, {}
    for key in keys:
        x = render_notes(arr.events[key], arr.programs[key] or 0, n, rate, fonts[key], drums=key == "drums")
        effects[key] = rooms.draw_effects(rng) if key.startswith("other/") else []
        dry[key] = rooms.apply_effects(x, rate, effects[key])
    space = rooms.draw_room(keys, rng, dcfg.rt60_range_s)
    rirs = rooms.impulse_responses(space, rate)
    stems, lufs = {}, {}
    for key in keys:
        wet = rooms.place(dry[key], rirs[key])
        # Loudness targets from one range for every stem (drums 3 LU lower): nobody is loud by construction.
        target = -26.0 + float(rng.uniform(-5, 3)) - (3.0 if key == "drums" else 0.0)
        stems[key], _ = rooms.level_to(wet, rate, target)
        lufs[key] = rooms.loudness_lufs(stems[key], rate)
        lufs[key] = None if lufs[key] is None else round(lufs[key], 2)
    names = arr.instruments
    scale, levels = _finish(stems, names, rate, score.name)
    rt60 = float(np.median([rooms.measured_rt60_s(rirs[k][0], rate) for k in keys]))
    meta = {
        "piece": score.name, "instruments": names, "style": "realistic",
        "programs": {name: arr.programs["other/" + name] for name in names},
        "parts": arr.parts, "rest_bars": arr.rest_bars, "coverage": arr.coverage, "redrawn": arr.redrawn,
        "windows": arr.windows, "tempo_bpm": round(arr.tempo_bpm, 2), "tempo_drift": round(arr.tempo_drift, 4),
        "start_bar": arr.start_bar, "scale": scale, "levels": levels, "rate": rate,
        "duration_s": dcfg.duration_s, "render_version": dcfg.render_version,
        "seed": [int(s) for s in np.atleast_1d(track_seed)],
        "soundfont": sorted({f.name for f in fonts.values()}),
        "stems": {k: {"soundfont": fonts[k].name, "program": arr.programs[k], "effects": effects[k],
                      "loudness_lufs": lufs[k]} for k in keys},
        "other": {name: {"soundfont": fonts["other/" + name].name, "program": arr.programs["other/" + name],
                         "texture": arr.textures[name], "span": arr.spans[name],
                         **_notes_facts(arr.events["other/" + name], dcfg.duration_s),
                         "effects": effects["other/" + name], "loudness_lufs": lufs["other/" + name]}
                  for name in names},
        "room": {"dims_m": [round(v, 2) for v in space.dims_m], "rt60_target_s": round(space.rt60_target_s, 3),
                 "rt60_s": round(rt60, 3), "absorption": round(space.absorption, 4), "max_order": space.max_order,
                 "mics_m": [[round(v, 2) for v in m] for m in space.mics_m],
                 "sources_m": {k: [round(v, 2) for v in p] for k, p in space.sources_m.items()}},
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
        raise ConfigError(f"need 1 <= n_test < n_tracks, got n_test={dcfg.n_test}, n_tracks={dcfg.n_tracks}; "
                          "change --test or --tracks")
    if dcfg.extra_train < 0:
        raise ConfigError(f"extra_train must be 0 or more, got {dcfg.extra_train}; change --extra-train")
    soundfont = find_soundfonts() if dcfg.style == "realistic" else find_soundfont()
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
    for index in range(dcfg.n_tracks + dcfg.extra_train):
        if index < n_train:
            split, pool, j = "train", train_scores, index
        elif index < dcfg.n_tracks:
            split, pool, j = "test", test_scores, index - n_train
        else:  # extra training tracks come after the test tracks, so those keep their index and seed
            split, pool, j = "train", train_scores, index - dcfg.n_test
        score = pool[j % len(pool)]
        # A track counts as done only if this renderer version wrote it (a root is named by the data
        # signature, but a render started by an older checkout could have filled it).
        done = list((root / split).glob(f"{index:03d}_*/meta.json")) if (root / split).exists() else []
        if not any(json.loads(p.read_text()).get("render_version") == dcfg.render_version for p in done):
            for stale in done:  # replaced below, possibly under another name
                shutil.rmtree(stale.parent)
                shutil.rmtree(other_stems_dir(root, split, stale.parent.name), ignore_errors=True)
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
    metas = [json.loads(p.read_text()) for p in sorted(root.glob("*/*/meta.json"))]
    manifest = {"config": config_to_dict(cfg) if isinstance(cfg, Config) else None,
                "data": {k: getattr(dcfg, k) for k in dcfg.__dataclass_fields__},
                "soundfont": [str(s) for s in np.atleast_1d(soundfont)], "style": dcfg.style,
                "scores": {"train": [s.name for s in train_scores],
                                                        "test": [s.name for s in test_scores]},
                "instruments": sorted(INSTRUMENTS),
                "silent_instruments": sum(lv["silent"] for m in metas for lv in m.get("levels", {}).values())}
    (root / "manifest.json").write_text(json.dumps(manifest, indent=1))
    return root


def add_arguments(parser) -> None:
    parser.add_argument("--preset", default=None, help="config preset (default: $MSS_PRESET or cpu)")
    parser.add_argument("--root", default=None, help="output folder (default: the preset's data root)")
    parser.add_argument("--tracks", type=int, default=None, help="number of tracks (train + test)")
    parser.add_argument("--test", type=int, default=None, help="number of test tracks")
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--extra-train", type=int, default=None,
                        help="training tracks rendered beyond --tracks, from the training scores only")
    parser.add_argument("--duration", type=float, default=None, help="seconds per track")
    parser.add_argument("--rate", type=int, default=None, help="sample rate of the files (Hz)")
    parser.add_argument("--workers", type=int, default=None)
    parser.add_argument("--style", choices=("realistic", "clean"), default=None,
                        help="render style (default: the preset's; realistic for cpu)")


def run(args) -> int:
    cfg = get_config(args.preset)
    changes = {k: v for k, v in {"n_tracks": args.tracks, "n_test": args.test, "seed": args.seed,
                                 "duration_s": args.duration, "render_rate": args.rate,
                                 "extra_train": args.extra_train, "style": args.style}.items() if v is not None}
    if changes:
        cfg = cfg.replace(data=changes)
    root = render_dataset(cfg, root=args.root, workers=args.workers)
    print(f"data set ready: {root}")
    return 0
