"""Synthesis: note lists to audio with a General MIDI soundfont (``tinysoundfont``).

This module owns the sound of the embedded set: finding the soundfont
(:func:`find_soundfont`), rendering one stem's notes on one program
(:func:`render_notes`), constant-power panning and rounding to the 16-bit grid
that the files on disk use. It knows nothing of scores or tracks
(:mod:`mss_helpers.scores` decides what is played, :mod:`mss_helpers.render`
levels, mixes and writes it).
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np

from .errors import SoundfontError

FLUID_PATH = Path("/usr/share/sounds/sf2/FluidR3_GM.sf2")


def find_soundfont() -> Path:
    """The General MIDI soundfont to render with.

    Order: ``$MSS_SOUNDFONT``; FluidR3_GM from Debian's ``fluid-soundfont-gm``;
    pretty_midi's bundled TimGM6mb.sf2 (with a warning: smaller, duller).
    """
    env = _env_soundfonts()
    if env:
        return env[0]
    if FLUID_PATH.is_file():
        return FLUID_PATH
    bundled = _bundled_timgm()
    if bundled is not None and bundled.is_file():
        warnings.warn(f"FluidR3_GM not found at {FLUID_PATH}; falling back to pretty_midi's TimGM6mb.sf2. "
                      "Install Debian's fluid-soundfont-gm (or set MSS_SOUNDFONT) for the reference sound.",
                      stacklevel=2)
        return bundled
    raise SoundfontError(f"no General MIDI soundfont: install Debian's fluid-soundfont-gm ({FLUID_PATH}), "
                         "or set MSS_SOUNDFONT=/path/to/a/GM.sf2")


TIMGM_DEBIAN = Path("/usr/share/sounds/sf2/TimGM6mb.sf2")


def find_soundfonts() -> list[Path]:
    """Every General MIDI soundfont the ``realistic`` style draws from (at least one), without duplicates.

    ``$MSS_SOUNDFONT`` (one path, or several joined by ``os.pathsep``) decides alone when set (a held-out
    render on another soundfont stays on it). Otherwise FluidR3_GM, then TimGM6mb (Debian's
    ``timgm6mb-soundfont``, else the same file bundled with pretty_midi). With a single soundfont found a
    warning says which package adds one.
    """
    env = _env_soundfonts()
    if env:
        return env
    found = [find_soundfont()]
    for candidate in (FLUID_PATH, TIMGM_DEBIAN, _bundled_timgm()):
        if candidate is not None and candidate.is_file() and candidate.name not in {p.name for p in found}:
            found.append(candidate)
    if len(found) < 2:
        warnings.warn(f"only one General MIDI soundfont found ({found[0]}); the realistic render draws every "
                      "instrument from it. Install Debian's fluid-soundfont-gm and timgm6mb-soundfont for two.",
                      stacklevel=2)
    return found


def _bundled_timgm() -> Path | None:
    """pretty_midi's bundled copy of TimGM6mb.sf2 (None without pretty_midi)."""
    try:
        import pretty_midi
    except ImportError:
        return None
    return Path(pretty_midi.__file__).parent / "TimGM6mb.sf2"


def _env_soundfonts() -> list[Path]:
    """The soundfonts named by ``$MSS_SOUNDFONT`` (several joined by ``os.pathsep``); each must exist."""
    env = os.environ.get("MSS_SOUNDFONT", "")
    paths = [Path(p).expanduser() for p in env.split(os.pathsep) if p]
    for path in paths:
        if not path.is_file():
            raise SoundfontError(f"MSS_SOUNDFONT points to {path}, which does not exist; point it at a General "
                                 "MIDI .sf2 file, or unset it to use Debian's fluid-soundfont-gm")
    return paths


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


def pan(mono: np.ndarray, position: float) -> np.ndarray:
    """Constant-power pan, ``position`` in [-1, 1] (left to right): ``(2, samples)`` float32."""
    angle = (position + 1) * np.pi / 4
    return np.stack([np.cos(angle) * mono, np.sin(angle) * mono]).astype(np.float32)


def quantise(x: np.ndarray) -> np.ndarray:
    """Round to the 16-bit PCM grid, so sums of stems survive writing exactly."""
    return (np.round(np.clip(x, -1, 1 - 2**-15) * 32768.0) / 32768.0).astype(np.float32)
