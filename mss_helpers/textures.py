"""Accompaniment textures from a piece's harmony, and the performance around them (no audio, no scores).

The ``realistic`` render style (:func:`mss_helpers.scores.arrange`) makes "other" sound like the "other"
of a pop mix: a piano comping or breaking chords, a guitar strumming, a pad holding chords, a synth
arpeggiating, beside single lines. This module turns a harmony (the chords of an excerpt, from music21's
``chordify``) into such note lists, in quarter notes, and maps them to seconds through a drifting tempo
with humanised onsets and velocities. It knows nothing of scores or soundfonts.

Notes here are ``(onset_ql, duration_ql, pitch, velocity, delay_s)``: ``delay_s`` is a fixed offset in
seconds added after the tempo map (a strum's spread across the strings, which does not scale with tempo).
Events out of :func:`perform` are ``(onset_s, duration_s, pitch, velocity)``, as :mod:`mss_helpers.synth`
renders them.
"""

from __future__ import annotations

import numpy as np

# instrument -> (General MIDI programs drawn from, textures drawn from, register (low, high) for chords)
FAMILIES: dict[str, tuple[tuple[int, ...], tuple[str, ...], tuple[int, int]]] = {
    "piano": ((0, 1, 2, 4, 5), ("block", "broken", "comping"), (48, 79)),  # grands and e-pianos
    "guitar": ((24, 25, 26, 27, 29), ("strum",), (40, 71)),  # nylon, steel, jazz, clean, overdriven
    "synth_pad": ((88, 89, 90, 91, 92, 94), ("pad",), (52, 79)),
    "strings": ((48, 49, 50, 44), ("pad", "line"), (48, 81)),  # ensembles, synth strings, tremolo
    "synth_lead": ((80, 81, 82, 84, 87), ("arpeggio", "line"), (57, 88)),
    "organ": ((16, 17, 18, 19), ("pad", "comping", "line"), (48, 76)),
    "brass": ((61, 62, 56, 57), ("line", "stabs"), (50, 77)),
}
CHORD_TEXTURES = ("block", "broken", "comping", "strum", "pad", "arpeggio", "stabs")
POLYPHONIC = ("pad", "block", "comping", "strum", "stabs", "broken")  # two or more notes at once, most of the time

# onsets within a 4/4 bar (quarter notes), scaled to other metres by the bar length
COMPING = ((0.0, 2.0), (0.0, 1.0, 2.0, 3.0), (0.0, 1.5, 3.0), (1.0, 3.0), (0.0, 1.5, 2.5, 3.5))
STRUMS = (("D", "D", "U", "U", "D", "U"), ("D", "D", "D", "D"), ("D", "U", "D", "U", "D", "U", "D", "U"))


def harmony(chords, length_ql: float, slot_ql: float) -> list[tuple[float, tuple[int, ...]]]:
    """The pitch classes sounding in each ``slot_ql`` slot of the excerpt, with the lowest sounding pitch first.

    ``chords`` are ``(onset_ql, duration_ql, pitches)`` (music21 chordify, relative to the excerpt).
    Returns ``[(slot_onset_ql, (bass_pitch, pitch classes...)), ...]``; a slot where nothing sounds repeats
    the previous harmony (the chord rings on through a rest).
    """
    out, last = [], None
    for k in range(int(np.ceil(length_ql / slot_ql - 1e-9))):
        a, b = k * slot_ql, (k + 1) * slot_ql
        sounding = [p for o, d, ps in chords if o < b and o + d > a for p in ps]
        if sounding:
            bass = min(sounding)
            pcs = sorted({p % 12 for p in sounding})
            for extra in (7, 4):  # fewer than three pitch classes (octaves, a melody alone): add a fifth, a third
                if len(pcs) < 3 and (bass + extra) % 12 not in pcs:
                    pcs.append((bass + extra) % 12)
            last = (bass, *pcs)
        if last is not None:
            out.append((a, last))
    return out


def voicing(chord: tuple[int, ...], low: int, high: int, n_notes: int, with_bass: bool = False) -> list[int]:
    """``n_notes`` chord tones stacked upward from ``low`` (and the chord's bass below them, ``with_bass``)."""
    bass, pcs = chord[0], set(chord[1:])
    notes = []
    p = low
    while len(notes) < n_notes and p <= high:
        if p % 12 in pcs:
            notes.append(p)
        p += 1
    if with_bass:
        b = low - 12 + (bass - (low - 12)) % 12
        notes = [b] + notes
    return notes


def chord_texture(texture: str, chords, length_ql: float, bar_ql: float, register: tuple[int, int], rng) -> list:
    """One instrument's notes ``(onset_ql, duration_ql, pitch, velocity, delay_s)`` for a chord texture."""
    low, high = register
    beat = 1.0 if bar_ql >= 2 else bar_ql / 2
    scale = bar_ql / 4.0
    notes = []
    if texture == "pad":  # sustained chords, a new one only when the harmony changes
        slots = harmony(chords, length_ql, bar_ql / 2)
        for i, (t, ch) in enumerate(slots):
            if i and ch == slots[i - 1][1]:
                continue
            end = next((u for u, c in slots[i + 1:] if c != ch), length_ql)
            notes += [(t, end - t, p, -10, 0.0) for p in voicing(ch, low + 4, high, 4)]
    elif texture in ("block", "comping", "stabs"):
        pattern = COMPING[int(rng.integers(len(COMPING)))]
        hold = {"block": 0.9, "comping": 0.45, "stabs": 0.3}[texture]
        slots = harmony(chords, length_ql, beat)
        for bar in range(int(np.ceil(length_ql / bar_ql))):
            hits = [bar * bar_ql + o * scale for o in pattern if o * scale < bar_ql]
            for j, t in enumerate(hits):
                if t >= length_ql:
                    break
                nxt = hits[j + 1] if j + 1 < len(hits) else (bar + 1) * bar_ql
                ch = slots[min(int(t // beat), len(slots) - 1)][1] if slots else None
                if ch is None:
                    continue
                size = 3 if texture == "stabs" else 4
                for p in voicing(ch, low + 7, high, size, with_bass=texture == "block"):
                    notes.append((t, (nxt - t) * hold, p, 5 if j == 0 else 0, 0.0))
    elif texture in ("broken", "arpeggio"):
        step = 0.5 if texture == "broken" else float(rng.choice([0.25, 0.5]))
        shape = str(rng.choice(["up", "updown", "alberti"]))
        slots = harmony(chords, length_ql, beat)
        for k in range(int(length_ql / step)):
            t = k * step
            ch = slots[min(int(t // beat), len(slots) - 1)][1] if slots else None
            if ch is None:
                continue
            tones = voicing(ch, low if texture == "broken" else low + 5, high, 4)
            if not tones:
                continue
            i = k % 4
            i = {"up": i, "updown": (0, 1, 2, 3, 2, 1)[k % 6], "alberti": (0, 2, 1, 2)[i]}[shape]
            hold = step * (2.5 if texture == "broken" else 0.9)  # a broken chord rings on under the pedal
            notes.append((t, hold, tones[min(i, len(tones) - 1)], 0, 0.0))
            if texture == "broken" and (t % bar_ql) < 1e-6:  # the left hand's bass at each bar
                notes.append((t, bar_ql * 0.95, voicing(ch, low - 12, low, 1, with_bass=True)[0], 5, 0.0))
    elif texture == "strum":
        pattern = STRUMS[int(rng.integers(len(STRUMS)))]
        spread_s = float(rng.uniform(0.005, 0.03))  # the strings of one strum 5-30 ms apart
        step = bar_ql / len(pattern)
        slots = harmony(chords, length_ql, beat)
        for k in range(int(np.ceil(length_ql / step))):
            t = k * step
            ch = slots[min(int(t // beat), len(slots) - 1)][1] if slots else None
            if ch is None or t >= length_ql:
                continue
            strings = voicing(ch, low, high, 6)
            down = pattern[k % len(pattern)] == "D"
            order = strings if down else strings[::-1][:4]  # up-strums catch the top strings
            gap = spread_s * float(rng.uniform(0.7, 1.3))
            for j, p in enumerate(order):
                notes.append((t, step * 0.98, p, 6 if down else -8, j * gap))
    else:
        raise ValueError(f"unknown chord texture {texture!r}; choose one of {CHORD_TEXTURES}")
    return notes


def tempo_map(spq: float, length_ql: float, rng, drift: float | None = None):
    """``seconds(q)``: a tempo that drifts linearly by up to +-``drift`` over the excerpt, plus a slow sway.

    ``spq`` is seconds per quarter note at the start. Returns the map and the drift used.
    """
    drift = float(rng.uniform(-0.04, 0.04)) if drift is None else drift
    sway, period, phase = float(rng.uniform(0.0, 0.015)), float(rng.uniform(8.0, 16.0)), float(rng.uniform(0, 6.3))
    L = max(length_ql, 1e-6)

    def seconds(q):
        q = np.asarray(q, dtype=np.float64)
        warp = q + drift * q**2 / (2 * L) + sway * period / (2 * np.pi) * (np.cos(phase) - np.cos(
            2 * np.pi * q / period + phase))
        return spq * warp

    return seconds, drift


def perform(notes, seconds, base_velocity: int, rng, jitter_s: float = 0.015, span=None) -> list:
    """Map ``(onset_ql, duration_ql, pitch, velocity_offset, delay_s)`` notes to seconds, humanised.

    Onsets move by a normal jitter of ``jitter_s`` (clipped to 3 sigma), velocities by +-10; ``span``
    ``(start_ql, end_ql)`` keeps only the notes where the instrument plays (it enters and leaves).
    Returns ``[(onset_s, duration_s, pitch, velocity)]`` sorted by onset.
    """
    out = []
    for onset, dur, pitch, vel, delay in notes:
        if span is not None and not span[0] <= onset < span[1]:
            continue
        jitter = float(np.clip(rng.normal(0, jitter_s), -3 * jitter_s, 3 * jitter_s))
        t0 = float(seconds(onset)) + delay + jitter
        t1 = float(seconds(onset + dur)) + delay + jitter
        velocity = int(np.clip(base_velocity + vel + rng.normal(0, 10), 20, 127))
        out.append((max(t0, 0.0), max(t1 - t0, 0.02), int(np.clip(pitch, 0, 127)), velocity))
    return sorted(out)


def polyphony(events, duration_s: float, hop_s: float = 0.05) -> float:
    """Share of an instrument's sounding frames in which two or more of its notes sound at once.

    ``events`` are ``(onset_s, duration_s, pitch, velocity)``; frames of ``hop_s`` seconds. 0 when it never sounds.
    """
    n = max(int(np.ceil(duration_s / hop_s)), 1)
    count = np.zeros(n, dtype=np.int32)
    for onset, dur, _, _ in events:
        a, b = int(onset / hop_s), int(np.ceil((onset + dur) / hop_s))
        count[max(a, 0):min(b, n)] += 1
    sounding = count >= 1
    return float(np.mean(count[sounding] >= 2)) if sounding.any() else 0.0


def pitch_range(events, lo: float = 5, hi: float = 95) -> tuple[int, int] | None:
    """The ``lo``-``hi`` percentile pitches of an instrument's notes (its register), or None without notes."""
    pitches = [p for _, _, p, _ in events]
    return (int(np.percentile(pitches, lo)), int(np.percentile(pitches, hi))) if pitches else None
