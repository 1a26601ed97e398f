"""Listening examples on disk: what the evaluation writes and the notebooks play.

Layout (one folder per track, one sub-folder per separation method)::

    <root>/<track>/input.wav                          the "other" stem that was separated
    <root>/<track>/references/<instrument>.wav        ground-truth instruments inside it
    <root>/<track>/<method>__<decoding>__k<k>/estimate_<i>.wav
    <root>/<track>/<method>__<decoding>__k<k>/metrics.json

``metrics.json`` holds ``{"method", "decoding", "k", "estimates": [{"file",
"instrument" (matched instrument or ""), "si_sdr_db", "si_sdri_db", "sdr_db"}],
"rows": [...]}`` where ``rows`` are the per-instrument metric dicts as given
(unmatched instruments included, with ``"estimate": None``).

This module is plain I/O (no ipywidgets) a floor below the evaluation, which
writes the examples; :mod:`mss_helpers.listen` and :mod:`mss_helpers.mushra`
read them, and the ``listen-export`` command lives in :mod:`mss_helpers.listen`.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import soundfile as sf

from . import audio as audio_io
from .errors import RunNotFoundError
from .paths import atomic_write

INPUT_FILE = "input.wav"
REFERENCES_DIR = "references"
METRICS_FILE = "metrics.json"
METRIC_KEYS = ("si_sdr_db", "si_sdri_db", "sdr_db")
_KEY_RE = re.compile(r"^(?P<method>.+?)__(?P<decoding>.+?)__k(?P<k>\d+)$")


def method_key(method: str, decoding: str, k: int) -> str:
    """Folder name of one separation setting: ``method_key("kmeans", "soft", 3) == "kmeans__soft__k3"``."""
    key = f"{method}__{decoding}__k{int(k)}"
    parse_method_key(key)  # validates the parts
    return key


def parse_method_key(key: str) -> tuple[str, str, int]:
    """Split ``"<method>__<decoding>__k<k>"`` into ``(method, decoding, k)``.

    Raises
    ------
    ValueError
        When ``key`` does not have that form or is not a safe folder name.
    """
    _check_name(key, "method key")
    match = _KEY_RE.match(key)
    if not match or "__" in match["decoding"]:
        raise ValueError(f"method key {key!r} is not of the form '<method>__<decoding>__k<k>' "
                         "(e.g. 'kmeans__soft__k3')")
    return match["method"], match["decoding"], int(match["k"])


def _check_name(name: str, what: str) -> None:
    if not isinstance(name, str) or not name or name in (".", "..") or "/" in name or "\\" in name:
        raise ValueError(f"{what} {name!r} cannot be used as a folder or file name")


def json_value(value):
    """numpy scalars -> python; non-finite floats -> None (JSON has no NaN)."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float):
        return value if np.isfinite(value) else None
    return value


def _write_json(path: Path, data: dict) -> None:
    """Atomic JSON write, so a reader never sees half a file."""
    atomic_write(path, lambda tmp: Path(tmp).write_text(json.dumps(data, indent=2)))


def write_example(out_dir, track: str, rate: int, mixture: np.ndarray, references: dict,
                  method_key: str, estimates: list, rows: list[dict]) -> Path:
    """Write one track's input, references and one method's estimates + metrics.

    Calling it again for another method of the same track adds a method folder
    (the input and references are rewritten with the same content).

    Parameters
    ----------
    out_dir : path
        Root of the examples (created when missing).
    track : str
        Track name (used as folder name).
    rate : int
        Sample rate of every signal, Hz.
    mixture : (channels, samples) float32
        The "other" stem that was separated (the separation input).
    references : dict[str, (channels, samples) float32]
        Ground-truth instruments; may be empty (real MUSDB has none).
    method_key : str
        ``"<method>__<decoding>__k<k>"``, see :func:`method_key`.
    estimates : list of (channels, samples) float32
        The K separated signals, in cluster order.
    rows : list of dict
        Per-instrument metrics ``{"instrument", "estimate" (index into
        ``estimates`` or None), "si_sdr_db", "si_sdri_db", "sdr_db"}``.

    Returns
    -------
    Path
        The method folder ``<out_dir>/<track>/<method_key>``.
    """
    _check_name(track, "track name")
    method, decoding, k = parse_method_key(method_key)
    rate = int(rate)
    if rate <= 0:
        raise ValueError(f"rate must be a positive number of Hz, got {rate}")
    if len(estimates) == 0:
        raise ValueError("estimates is empty: a method must produce at least one signal")
    signals = {"mixture": mixture, **{f"reference {n!r}": r for n, r in references.items()},
               **{f"estimate {i}": e for i, e in enumerate(estimates)}}
    for name, signal in signals.items():
        shape = np.shape(signal)
        if len(shape) != 2:
            raise ValueError(f"{name} must have shape (channels, samples), got {shape}")
    by_estimate: dict[int, dict] = {}
    for row in rows:
        if "instrument" not in row or row["instrument"] not in references:
            raise ValueError(f"metric row {row!r} names no instrument among the references "
                             f"{sorted(references)}")
        idx = row.get("estimate")
        if idx is None:
            continue
        if not 0 <= int(idx) < len(estimates):
            raise ValueError(f"metric row for {row['instrument']!r} points at estimate {idx}, "
                             f"but there are {len(estimates)} estimates")
        if int(idx) in by_estimate:
            raise ValueError(f"estimate {idx} is matched to two instruments "
                             f"({by_estimate[int(idx)]['instrument']!r} and {row['instrument']!r})")
        by_estimate[int(idx)] = row

    track_dir = Path(out_dir) / track
    audio_io.write_audio(track_dir / INPUT_FILE, mixture, rate)
    for name, ref in references.items():
        _check_name(name, "instrument name")
        audio_io.write_audio(track_dir / REFERENCES_DIR / f"{name}.wav", ref, rate)
    method_dir = track_dir / method_key
    method_dir.mkdir(parents=True, exist_ok=True)
    for stale in method_dir.glob("estimate_*.wav"):  # a rerun with a smaller k leaves none behind
        stale.unlink()
    entries = []
    for i, est in enumerate(estimates):
        fname = f"estimate_{i}.wav"
        audio_io.write_audio(method_dir / fname, est, rate)
        row = by_estimate.get(i, {})
        entry = {"file": fname, "instrument": row.get("instrument", "")}
        entry.update({m: json_value(row.get(m)) for m in METRIC_KEYS})
        entries.append(entry)
    clean_rows = [{key: json_value(v) for key, v in row.items()} for row in rows]
    _write_json(method_dir / METRICS_FILE, {"method": method, "decoding": decoding, "k": k,
                                            "rate": rate, "estimates": entries, "rows": clean_rows})
    return method_dir


def list_tracks(root) -> list[str]:
    """Names of the tracks under an examples root (folders holding ``input.wav``), sorted."""
    root = Path(root)
    if not root.is_dir():
        raise RunNotFoundError(f"no listening examples folder at {root}; write one with "
                               f"`python -m mss_helpers listen-export --out {root}`, or run notebook "
                               "04_compare_clustering, which writes the preset's examples")
    return sorted(p.name for p in root.iterdir() if (p / INPUT_FILE).is_file())


def read_examples(root) -> dict:
    """Index an examples root.

    Returns
    -------
    dict
        ``track -> {"rate": Hz, "input": Path, "references": {instrument: Path},
        "methods": {method_key: {"method", "decoding", "k", "estimates": [Path, ...],
        "metrics": dict (the metrics.json content)}}}``.

    Raises
    ------
    RunNotFoundError
        (a ``FileNotFoundError``) when ``root`` does not exist; it names how to write one.
    ValueError
        When it holds no track, or a method folder lacks an estimate file it lists.
    """
    root = Path(root)
    tracks = list_tracks(root)
    if not tracks:
        raise ValueError(f"{root} holds no listening examples (no <track>/{INPUT_FILE})")
    index = {}
    for track in tracks:
        track_dir = root / track
        ref_dir = track_dir / REFERENCES_DIR
        refs = {p.stem: p for p in sorted(ref_dir.glob("*.wav"))} if ref_dir.is_dir() else {}
        methods = {}
        for mdir in sorted(p for p in track_dir.iterdir() if (p / METRICS_FILE).is_file()):
            metrics = json.loads((mdir / METRICS_FILE).read_text())
            files = [mdir / e["file"] for e in metrics["estimates"]]
            missing = [f.name for f in files if not f.is_file()]
            if missing:
                raise ValueError(f"{mdir} lists estimates that are missing on disk: {missing}")
            methods[mdir.name] = {"method": metrics["method"], "decoding": metrics["decoding"],
                                  "k": int(metrics["k"]), "estimates": files, "metrics": metrics}
        index[track] = {"rate": int(sf.info(str(track_dir / INPUT_FILE)).samplerate),
                        "input": track_dir / INPUT_FILE, "references": refs, "methods": methods}
    return index


def matched_estimate(method_entry: dict, instrument: str) -> tuple[Path, dict] | None:
    """The estimate file matched to ``instrument`` and its metric entry, or None if unmatched.

    ``method_entry`` is one value of ``read_examples(root)[track]["methods"]``.
    """
    for path, entry in zip(method_entry["estimates"], method_entry["metrics"]["estimates"]):
        if entry.get("instrument") == instrument:
            return path, entry
    return None
