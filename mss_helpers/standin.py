"""A MUSDB18 stand-in: songs written the way MUSDB18 ships them, for tests and benchmarks.

MUSDB18 stores each song as ``<split>/<artist> - <title>.stem.mp4``: AAC streams
at 44.1 kHz stereo in the order mixture, drums, bass, other, vocals, with no
instruments inside "other" and no ``meta.json``. :func:`write_standin` writes
such a root from any tracks that have the four stems (the embedded set's, for
example), so the whole report can be run on a root in MUSDB18's layout that it
has never seen. ``repeat`` tiles each song to make full-length songs (the
memory benchmark's 4-minute songs) out of short ones.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from . import audio as audio_io

MUSDB_RATE = 44100
STREAMS = ("mixture", "drums", "bass", "other", "vocals")  # MUSDB18's stream order


def write_song(path, stems: dict[str, np.ndarray], rate: int = MUSDB_RATE) -> Path:
    """Write ``stems`` (``{name: (2, samples)}`` at ``rate``; no mixture) as one ``.stem.mp4``."""
    import stempeg

    sources = [np.ascontiguousarray(stems[s].T, dtype=np.float32) for s in STREAMS[1:]]
    mixture = np.sum(sources, axis=0)
    peak = float(np.max(np.abs(mixture))) or 1.0
    scale = min(1.0, 0.95 / peak)  # AAC clips above full scale
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    stempeg.write_stems(str(path), np.stack([mixture] + sources) * scale, sample_rate=rate)
    return path


def write_standin(root, tracks_by_split: dict, repeat: int = 1, rate: int = MUSDB_RATE,
                  prefix: str = "Stand-in") -> Path:
    """Write ``{split: [Track, ...]}`` under ``root`` in MUSDB18's layout; returns ``root``.

    Each song is ``<prefix> <i> - <track name>.stem.mp4`` with the tracks' drums,
    bass, other and vocals at ``rate``, stereo, tiled ``repeat`` times.
    """
    root = Path(root)
    for split, tracks in tracks_by_split.items():
        for i, track in enumerate(tracks):
            stems = {}
            for name in STREAMS[1:]:
                x = audio_io.to_channels(track.load(name), 2)
                if track.rate != rate:
                    x = audio_io.resample(x, track.rate, rate)
                stems[name] = np.tile(x, (1, repeat))
            write_song(root / split / f"{prefix} {i:02d} - {track.name}.stem.mp4", stems, rate)
    return root
