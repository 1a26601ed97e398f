"""The data card: how hard an embedded set's "other" is, measured the same way for every render style.

Per instrument of "other" (:func:`instrument_card`): its soundfont, program and texture (from
``meta.json``), its polyphony (share of its sounding frames with two or more notes), its register, its
loudness (BS.1770) and the spread of its inter-channel level ratio (:func:`mss_helpers.room.ild_iqr_db`:
0 dB for a dry point source, several dB for an instrument in a room). Per track (:func:`track_card`): the
room's RT60, the loudness spread of its instruments, how much their registers overlap, and the largest
polyphony. :func:`card_summary` condenses both into the numbers ``results/dataset_<preset>.json`` keeps.

A root without instruments inside "other" (MUSDB18) has only its four stems and their mixture:
:func:`stem_table` and :func:`stem_summary` describe those (duration, level of each stem, the share of
the mixture's energy in "other"), and :func:`song_stems` gives an excerpt of one song's stems to look at.
"""

from __future__ import annotations

import numpy as np

from .audio import rms_db
from .room import ild_iqr_db, loudness_lufs

STEMS = ("mixture", "vocals", "drums", "bass", "other")  # every root has these, MUSDB18 included


def register_overlap(ranges: list) -> float | None:
    """Mean over pairs of instruments of the overlap of their registers (shared semitones / the narrower range).

    ``ranges`` are ``(low, high)`` MIDI pitches (None entries are skipped); 1 = one register inside the other,
    0 = registers apart. None with fewer than two ranges.
    """
    ranges = [r for r in ranges if r is not None]
    pairs = [(a, b) for i, a in enumerate(ranges) for b in ranges[i + 1:]]
    if not pairs:
        return None
    shares = [max(0, min(a[1], b[1]) - max(a[0], b[0]) + 1) / (min(a[1] - a[0], b[1] - b[0]) + 1) for a, b in pairs]
    return float(np.mean(shares))


def instrument_card(tracks) -> "pandas.DataFrame":  # noqa: F821
    """One row per (track, instrument of "other"): style, soundfont, program, texture, polyphony, register
    (low, high), loudness_lufs and ild_iqr_db (measured on the stem on disk, stereo)."""
    import pandas as pd

    rows = []
    for t in tracks:
        stems = t.other_stems()
        info = t.meta.get("other", {})
        for name, x in stems.items():
            rec = info.get(name, {})
            pr = rec.get("pitch_range")
            rows.append({"track": t.name, "split": t.subset, "style": t.meta.get("style", "clean"),
                         "instrument": name, "soundfont": rec.get("soundfont", t.meta.get("soundfont")),
                         "program": rec.get("program", t.meta.get("programs", {}).get(name)),
                         "texture": rec.get("texture"), "polyphony": rec.get("polyphony"),
                         "low": None if pr is None else pr[0], "high": None if pr is None else pr[1],
                         "loudness_lufs": loudness_lufs(x, t.rate),
                         "ild_iqr_db": ild_iqr_db(x, t.rate) if x.shape[0] == 2 else None})
    return pd.DataFrame(rows)


def track_card(tracks, instruments) -> "pandas.DataFrame":  # noqa: F821
    """One row per track: style, rt60_s, loudness_spread_lu (loudest minus quietest instrument),
    register_overlap and max_polyphony, from ``instruments`` (:func:`instrument_card` of the same tracks)."""
    import pandas as pd

    rows = []
    for t in tracks:
        mine = instruments[instruments.track == t.name]
        lufs = mine.loudness_lufs.dropna()
        ranges = [(lo, hi) for lo, hi in zip(mine.low, mine.high) if pd.notna(lo)]
        rows.append({"track": t.name, "split": t.subset, "style": t.meta.get("style", "clean"),
                     "rt60_s": t.meta.get("room", {}).get("rt60_s", 0.0),
                     "loudness_spread_lu": float(lufs.max() - lufs.min()) if len(lufs) > 1 else 0.0,
                     "register_overlap": register_overlap(ranges),
                     "max_polyphony": float(mine.polyphony.max()) if mine.polyphony.notna().any() else None})
    return pd.DataFrame(rows)


def card_summary(instruments, tracks) -> dict:
    """The numbers of the data card (medians over instruments or tracks; shares of tracks)."""
    def med(series):
        s = series.dropna()
        return round(float(s.median()), 4) if len(s) else None

    per_track_poly = instruments.groupby("track").polyphony.max()
    return {
        "instruments": int(len(instruments)),
        "soundfonts": sorted(str(s) for s in instruments.soundfont.dropna().unique()),
        "programs": int(instruments.program.nunique()),
        "textures": {str(k): int(v) for k, v in instruments.texture.value_counts().items()},
        "median_polyphony": med(instruments.polyphony),
        "tracks_with_a_polyphonic_instrument": round(float((per_track_poly >= 0.5).mean()), 4)
        if per_track_poly.notna().any() else None,
        "median_ild_iqr_db": med(instruments.ild_iqr_db),
        "median_rt60_s": med(tracks.rt60_s),
        "median_loudness_spread_lu": med(tracks.loudness_spread_lu),
        "median_register_overlap": med(tracks.register_overlap),
    }


# --- a root without instruments inside "other" (MUSDB18): its stems only ---------------------------------


def stem_table(tracks, rate: int | None = None) -> "pandas.DataFrame":  # noqa: F821
    """One row per track: ``track``, ``split``, ``duration_s``, ``<stem>_db`` for each of :data:`STEMS`
    (RMS level of the mono mix, dBFS; -100 for silence) and ``other_share``: the mixture's energy that
    "other" alone holds (mean square of "other" over that of the mixture; stems that cancel can take it
    above 1). ``rate`` (Hz) resamples first; None reads each track at its own rate."""
    import pandas as pd

    rows = []
    for t in tracks:
        x = {stem: t.load(stem, rate=rate, channels=1) for stem in STEMS}  # (1, samples) each
        power = {stem: float(np.mean(np.square(v, dtype=np.float64))) for stem, v in x.items()}
        rows.append({"track": t.name, "split": t.subset, "duration_s": x["mixture"].shape[1] / (rate or t.rate),
                     **{f"{stem}_db": rms_db(v) for stem, v in x.items()},
                     "other_share": power["other"] / power["mixture"] if power["mixture"] > 0 else 0.0})
    return pd.DataFrame(rows)


def stem_summary(table) -> dict:
    """What ``results/dataset_<preset>.json`` keeps of a :func:`stem_table`: the median duration (s), hours
    of training audio, the median level of each stem (dBFS) and the median ``other_share``."""
    train = table[table.split == "train"]
    return {"duration_s_per_track": round(float(table.duration_s.median()), 3),
            "hours_of_other_train": round(float(train.duration_s.sum() / 3600), 4),
            "median_db": {stem: round(float(table[f"{stem}_db"].median()), 2) for stem in STEMS},
            "median_other_share": round(float(table.other_share.median()), 4)}


def song_stems(track, seconds: float = 30.0) -> dict:
    """``{stem: (C, S)}`` for each of :data:`STEMS` of ``track`` at its own rate, cut to the middle
    ``seconds`` of the song (the whole song when shorter): a full MUSDB18 song would make a long
    figure and a large notebook."""
    x = {stem: track.load(stem) for stem in STEMS}
    n, keep = x["mixture"].shape[1], round(seconds * track.rate)
    start = max(0, (n - keep) // 2)
    return {stem: v[:, start:start + keep] for stem, v in x.items()}
