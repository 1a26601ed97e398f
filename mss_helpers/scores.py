"""Scores and arrangements: what each stem of an embedded track plays, as note lists (no audio).

This module owns the musical side of :mod:`mss_helpers.render`: reading music21's
offline corpus into :class:`Score` note lists, cutting an excerpt, and the
*arrangement* of one track (tempo, window, which instruments play inside "other",
which score part each plays, which bars each rests, the drum pattern). It also
owns the rule that no instrument of "other" is (nearly) silent: an instrument
whose notes cover less than ``DataConfig.min_sounding_share`` of the excerpt is
given another part, then its rest bars are dropped, and if no part of the score
sounds enough in the window, a new window is drawn (:func:`draw_parts`,
:func:`arrange`). Every draw comes from the track's seeded generator, so an
arrangement is deterministic for a given seed.

Two styles (``DataConfig.style``): ``clean`` gives every instrument of "other" one
monophonic part of the score on one program, on an exact tempo; ``realistic``
(:func:`arrange_realistic`) draws each instrument's program from its family and
a texture from the piece's harmony (music21 ``chordify``; :mod:`mss_helpers.textures`):
piano comping or breaking chords, guitar strums, pads holding chords, arpeggios,
beside single lines, with a drifting tempo, humanised onsets and velocities, and
instruments that enter late or leave early.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .config import DataConfig
from . import textures

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
MAX_WINDOWS = 20  # excerpt windows tried before a score counts as unusable for a track


@dataclass(frozen=True)
class Score:
    """One piece as note lists: ``parts[i] = [(onset_ql, duration_ql, midi_pitch), ...]``.

    ``chords`` is its harmony, music21's ``chordify``: ``[(onset_ql, duration_ql, (pitches...)), ...]``.
    """

    name: str
    parts: tuple
    bar_ql: float
    total_ql: float
    chords: tuple = ()


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
    cache = cache_dir / f"{key}.v2.json" if cache_dir else None  # v2: with the chords
    if cache is not None and cache.is_file():
        d = json.loads(cache.read_text())
        return None if d is None else Score(d["name"], tuple(tuple(map(tuple, p)) for p in d["parts"]),
                                            d["bar_ql"], d["total_ql"],
                                            tuple((o, q, tuple(ps)) for o, q, ps in d["chords"]))
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
        chords = tuple((float(c.offset), float(c.quarterLength), tuple(sorted(int(p.midi) for p in c.pitches)))
                       for c in score.chordify().flatten().getElementsByClass("Chord"))
        result = Score(key.rsplit(".", 1)[0], tuple(tuple(p) for p in parts), bar_ql, total, chords)
    if cache is not None:
        cache.parent.mkdir(parents=True, exist_ok=True)
        cache.write_text(json.dumps(None if result is None else
                                    {"name": result.name, "parts": result.parts, "bar_ql": bar_ql,
                                     "total_ql": total, "chords": result.chords}))
    return result


def excerpt(part, start_ql: float, length_ql: float, loop_ql: float) -> list:
    """Notes of ``part`` starting in [start, start+length), looping the piece if it is shorter.

    Returns ``[(onset_ql, duration_ql, pitch), ...]`` with onsets relative to ``start_ql``.
    """
    out = []
    repeat = 0
    while repeat * loop_ql < start_ql + length_ql:
        for onset, dur, pitch in part:
            t = onset + repeat * loop_ql - start_ql
            if 0 <= t < length_ql:
                out.append((t, dur, pitch))
        repeat += 1
    return out


def coverage(notes, length_ql: float, bar_ql: float, rest_bars=frozenset()) -> float:
    """Share of the excerpt ``[0, length_ql)`` during which at least one note of ``notes`` is held.

    ``notes`` are ``(onset_ql, duration_ql, pitch)``; notes in ``rest_bars`` (bar
    indices from the excerpt's start) are left out, as the renderer leaves them out.
    """
    spans = sorted((o, min(o + d, length_ql)) for o, d, _ in notes
                   if int(o // bar_ql) not in rest_bars and 0 <= o < length_ql)
    covered, end = 0.0, 0.0
    for a, b in spans:
        a = max(a, end)  # the union of the spans: count overlapping notes once
        if b > a:
            covered += b - a
            end = b
    return covered / length_ql if length_ql > 0 else 0.0


def draw_parts(parts, candidates, rest_bars, bar_ql: float, length_ql: float,
               min_share: float) -> tuple[tuple[int, ...], frozenset, str] | None:
    """Pick the parts one instrument plays so that it sounds in at least ``min_share`` of the excerpt.

    Parameters
    ----------
    parts : list of note lists, the excerpt of every score part
    candidates : tuples of part indices, in order of preference (the first is the drawn choice)
    rest_bars : bars the instrument was drawn to rest
    min_share : the least share of the excerpt its notes must cover (see :func:`coverage`)

    Returns
    -------
    ``(indices, rest_bars, how)``: ``how`` is ``"drawn"`` (the first candidate as drawn),
    ``"other part"`` (a later candidate, same rests) or ``"no rests"`` (rest bars dropped);
    None when no candidate sounds enough even without rests (the caller redraws the window).
    """
    def share(idx, rests):
        notes = [n for i in idx for n in parts[i]]
        return coverage(notes, length_ql, bar_ql, rests)

    for rests, how in ((frozenset(rest_bars), None), (frozenset(), "no rests")):
        for j, idx in enumerate(candidates):
            if share(idx, rests) >= min_share:
                return tuple(idx), rests, how or ("drawn" if j == 0 else "other part")
    return None


def drum_pattern(bar_ql: float, n_bars: int, sec_per_ql: float, rng) -> list:
    """Kick/snare on the beats and closed hi-hats on the half beats: ``[(onset_s, dur_s, pitch, velocity)]``."""
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


@dataclass
class Arrangement:
    """What every stem of one track plays.

    ``events[key]`` is ``[(onset_s, duration_s, pitch, velocity), ...]`` for the keys
    ``vocals, bass, drums`` and ``other/<instrument>``; ``programs[key]`` its General
    MIDI program (drums: None). ``redrawn[name]`` says how an instrument's parts were
    chosen (see :func:`draw_parts`); ``windows`` counts the excerpt windows drawn.
    """

    tempo_bpm: float
    start_bar: int
    instruments: list
    events: dict = field(default_factory=dict)
    programs: dict = field(default_factory=dict)
    parts: dict = field(default_factory=dict)
    rest_bars: dict = field(default_factory=dict)
    coverage: dict = field(default_factory=dict)
    redrawn: dict = field(default_factory=dict)
    windows: int = 1
    textures: dict = field(default_factory=dict)  # realistic: instrument -> texture ("line" for a score part)
    spans: dict = field(default_factory=dict)  # realistic: instrument -> [first, last) bar it plays
    tempo_drift: float = 0.0  # realistic: relative tempo change over the excerpt


def _candidates(name: str, order: list[int], first: int) -> list[tuple[int, ...]]:
    """Part choices for one instrument: the drawn one first, then every other start in ``order``.

    The piano plays two parts (two hands), the others one.
    """
    n = len(order)
    starts = [order[(first + j) % n] for j in range(n)]
    if name != "piano":
        return [(s,) for s in starts]
    return [(s, order[(order.index(s) + 1) % n]) for s in starts]


def arrange(score: Score, dcfg: DataConfig, rng) -> Arrangement:
    """Draw one track's arrangement of ``score`` from the generator ``rng`` (deterministic).

    Every instrument of "other" gets parts whose notes cover at least
    ``dcfg.min_sounding_share`` of the excerpt; a window in which some instrument
    cannot reach that share with any part is replaced by a new one. ``dcfg.style``
    ``"realistic"`` goes to :func:`arrange_realistic`.
    """
    if dcfg.style == "realistic":
        return arrange_realistic(score, dcfg, rng)
    if dcfg.style != "clean":
        from .errors import ConfigError

        raise ConfigError(f"DataConfig.style must be 'clean' or 'realistic', got {dcfg.style!r}")
    length_s = dcfg.duration_s
    bpm = float(rng.uniform(72, 132))
    spq = 60.0 / bpm  # seconds per quarter note
    length_ql = length_s / spq
    n_bars_total = max(int(score.total_ql // score.bar_ql), 1)
    n_bars = int(np.ceil(length_ql / score.bar_ql)) + 1
    n_other = int(rng.integers(dcfg.min_other, dcfg.max_other + 1))
    names = [str(n) for n in rng.choice(sorted(INSTRUMENTS), size=min(n_other, len(INSTRUMENTS)), replace=False)]
    for window in range(1, MAX_WINDOWS + 1):
        start_bar = int(rng.integers(0, max(n_bars_total - int(length_ql // score.bar_ql), 1)))
        parts = [excerpt(p, start_bar * score.bar_ql, length_ql, score.total_ql) for p in score.parts]
        order = [int(i) for i in rng.permutation(len(parts))]
        chosen = {}
        for i, name in enumerate(names):
            rest_bars = frozenset(b for b in range(n_bars) if rng.random() < dcfg.rest_prob)
            pick = draw_parts(parts, _candidates(name, order, i % len(order)), rest_bars, score.bar_ql,
                              length_ql, dcfg.min_sounding_share)
            if pick is None:
                break
            chosen[name] = pick
        if len(chosen) == len(names):
            break
    else:
        raise RuntimeError(f"no window of {score.name} lets every instrument of 'other' sound in "
                           f"{dcfg.min_sounding_share:.0%} of {length_s} s (tried {MAX_WINDOWS})")

    def to_events(notes, shift=0, base_vel=90, rest_bars=frozenset()):
        ev = []
        for onset, dur, pitch in notes:
            if int(onset // score.bar_ql) in rest_bars:
                continue
            t = max(onset * spq + rng.normal(0, 0.008), 0.0)  # human timing jitter
            vel = int(np.clip(base_vel + rng.normal(0, 8), 20, 127))
            ev.append((t, dur * spq * 0.95, int(np.clip(pitch + shift, 0, 127)), vel))
        return ev

    arr = Arrangement(tempo_bpm=bpm, start_bar=start_bar, instruments=names, windows=window)
    arr.events["vocals"] = to_events(parts[0], 0, int(rng.integers(70, 100)))
    arr.events["bass"] = to_events(parts[-1], -12, int(rng.integers(80, 110)))
    arr.events["drums"] = drum_pattern(score.bar_ql, n_bars, spq, rng)
    arr.programs.update(vocals=VOCALS_PROGRAM, bass=BASS_PROGRAM, drums=None)
    for name in names:
        idx, rests, how = chosen[name]
        program, shift = INSTRUMENTS[name]
        vel = int(rng.integers(65, 110))
        arr.events["other/" + name] = [e for i in idx for e in to_events(parts[i], shift, vel, rests)]
        arr.programs["other/" + name] = program
        arr.parts[name], arr.rest_bars[name], arr.redrawn[name] = list(idx), sorted(rests), how
        arr.coverage[name] = round(coverage([n for i in idx for n in parts[i]], length_ql, score.bar_ql, rests), 3)
    return arr


VOCAL_PROGRAMS = (52, 53, 54)  # choir aahs, voice oohs, synth voice
BASS_PROGRAMS = (32, 33, 34, 35, 38)  # acoustic, finger, pick, fretless, synth bass


def arrange_realistic(score: Score, dcfg: DataConfig, rng) -> Arrangement:
    """The ``realistic`` style: programs drawn per family, chord textures from the harmony, a performance.

    Piano, guitar and pads always play chords (:data:`textures.FAMILIES`); strings, organ, brass and the
    synth lead draw a chord texture or a score part. A track where nobody drew a texture that sounds two or
    more notes at once gives its first instrument one. Each instrument may enter late or leave early (never below
    ``dcfg.min_sounding_share`` of the excerpt); the whole track, vocals, bass and drums included, follows
    one drifting tempo with humanised onsets (about +-15 ms) and velocities.
    """
    bpm = float(rng.uniform(72, 132))
    spq = 60.0 / bpm
    length_ql = dcfg.duration_s / spq
    bar = score.bar_ql
    n_bars = int(np.ceil(length_ql / bar))
    n_bars_total = max(int(score.total_ql // bar), 1)
    n_other = int(rng.integers(dcfg.min_other, dcfg.max_other + 1))
    names = [str(n) for n in rng.choice(sorted(INSTRUMENTS), size=min(n_other, len(INSTRUMENTS)), replace=False)]
    draws = {n: rng.choice(textures.FAMILIES[n][1]) for n in names}
    if not any(t in textures.POLYPHONIC for t in draws.values()):  # nobody plays two notes at once: one will
        draws[names[0]] = next((t for t in textures.FAMILIES[names[0]][1] if t in textures.POLYPHONIC), "pad")
    seconds, drift = textures.tempo_map(spq, length_ql, rng)
    for window in range(1, MAX_WINDOWS + 1):
        start_bar = int(rng.integers(0, max(n_bars_total - int(length_ql // bar), 1)))
        parts = [excerpt(p, start_bar * bar, length_ql, score.total_ql) for p in score.parts]
        chords = excerpt(score.chords, start_bar * bar, length_ql, score.total_ql)
        order = [int(i) for i in rng.permutation(len(parts))]
        chosen = {}
        for i, name in enumerate(names):
            if draws[name] == "line":
                rests = frozenset(b for b in range(n_bars) if rng.random() < dcfg.rest_prob)
                pick = draw_parts(parts, _candidates(name, order, i % len(order)), rests, bar, length_ql,
                                  dcfg.min_sounding_share)
                notes = None if pick is None else [(o, d, p + INSTRUMENTS[name][1], 0, 0.0)
                                                   for k in pick[0] for o, d, p in parts[k]
                                                   if int(o // bar) not in pick[1]]
            else:
                pick = ((), frozenset(), "drawn")
                notes = textures.chord_texture(str(draws[name]), chords, length_ql, bar,
                                               textures.FAMILIES[name][2], rng)
            full = None if pick is None else coverage([n[:3] for n in notes], length_ql, bar)
            if full is None or full < dcfg.min_sounding_share:
                break
            span, share = (0, n_bars), full
            if n_bars >= 3 and rng.random() < 0.4:  # enters late and/or leaves early
                late = (int(rng.integers(0, n_bars // 3 + 1)), int(rng.integers(-(-2 * n_bars // 3), n_bars + 1)))
                inside = coverage([n[:3] for n in notes if late[0] * bar <= n[0] < late[1] * bar], length_ql, bar)
                if inside >= dcfg.min_sounding_share:
                    span, share = late, inside
            chosen[name] = (pick, notes, span, share)
        if len(chosen) == len(names):
            break
    else:
        raise RuntimeError(f"no window of {score.name} lets every instrument of 'other' sound in "
                           f"{dcfg.min_sounding_share:.0%} of {dcfg.duration_s} s (tried {MAX_WINDOWS})")

    def line(notes, shift, vel):
        return textures.perform([(o, d * 0.95, p + shift, 0, 0.0) for o, d, p in notes], seconds, vel, rng)

    arr = Arrangement(tempo_bpm=bpm, start_bar=start_bar, instruments=names, windows=window, tempo_drift=drift)
    arr.events["vocals"] = line(parts[0], 0, int(rng.integers(70, 100)))
    arr.events["bass"] = line(parts[-1], -12, int(rng.integers(80, 110)))
    kit = [(b * bar + beat + half, 0.1 if half == 0 else 0.05, (36 if beat % 2 == 0 else 38) if half == 0 else 42,
            15 if half == 0 else -10, 0.0)
           for b in range(n_bars) for beat in range(max(int(round(bar)), 2)) for half in (0.0, 0.5)]
    arr.events["drums"] = textures.perform(kit, seconds, 85, rng, jitter_s=0.006)
    arr.programs.update(vocals=int(rng.choice(VOCAL_PROGRAMS)), bass=int(rng.choice(BASS_PROGRAMS)), drums=None)
    for name in names:
        (idx, rests, how), notes, span, share = chosen[name]
        arr.events["other/" + name] = textures.perform(notes, seconds, int(rng.integers(65, 105)), rng,
                                                       span=(span[0] * bar, span[1] * bar))
        arr.programs["other/" + name] = int(rng.choice(textures.FAMILIES[name][0]))
        arr.parts[name], arr.rest_bars[name], arr.redrawn[name] = list(idx), sorted(rests), how
        arr.textures[name], arr.spans[name] = str(draws[name]), [int(span[0]), int(span[1])]
        arr.coverage[name] = round(share, 3)  # a line's rest bars are already out of its notes
    return arr
