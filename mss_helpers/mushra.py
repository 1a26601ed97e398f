"""MUSHRA-style rating tests without widgets: trials, conditions, the ratings CSV and their summaries.

The rating test follows MUSHRA (ITU-R BS.1534) in spirit: per trial, the
reference is shown openly, and the conditions are played under neutral labels
("A", "B", ...) in a seeded random order: a hidden copy of the reference, a
low anchor (the separation input low-passed at 3.5 kHz), the plain input
(the "do nothing" estimate) and each method's estimate matched to the trial's
instrument. Where the data has no instruments inside "other" (MUSDB18), the
reference-free variant (:func:`build_open_trials`) rates, per (track, method),
how well each of the method's estimates isolates one instrument of the input,
which is the open reference. This module builds the trials from the examples
written by the evaluation (:mod:`mss_helpers.examples`), keeps the ratings in an append-only
CSV (a half-finished session is kept), post-screens listeners as MUSHRA does,
summarises ratings per condition with confidence intervals, and simulates
ratings for a worked example. No widgets: the form is
:class:`mss_helpers.listen.MushraTest`.
"""

from __future__ import annotations

import csv
import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from . import audio as audio_io
from .examples import matched_estimate, read_examples

HIDDEN_REFERENCE = "hidden_reference"
ANCHOR = "anchor_lp3500"
MIXTURE = "mixture"
MATCH, ISOLATE = "match", "isolate"  # what a trial asks: closeness to a true instrument, or isolation
ESTIMATE_SEP = ":"  # condition name of one estimate in an ISOLATE trial: "<method key>:<index>"
SEED_METHODS = ("kmeans", "agglomerative", "dbscan")  # the seed's three clustering methods
COLUMNS = ("listener", "session", "trial", "track", "instrument", "condition", "rating", "timestamp")


@dataclass(frozen=True)
class Condition:
    """One rated signal: a wav file, optionally low-passed at ``lowpass_hz`` (the anchor)."""

    name: str
    path: Path
    lowpass_hz: float | None = None


@dataclass(frozen=True)
class Trial:
    """One rating screen: the open reference of ``instrument`` in ``track`` and the hidden conditions.

    ``task`` is :data:`MATCH` (rate closeness to the true instrument) or
    :data:`ISOLATE` (no instrument: ``instrument`` is "", the reference is the
    input, rate how well each sound isolates one instrument of it).
    """

    track: str
    instrument: str
    reference: Path
    conditions: tuple[Condition, ...]
    task: str = MATCH


def lowpass(audio: np.ndarray, rate: int, cutoff_hz: float, order: int = 8) -> np.ndarray:
    """Zero-phase Butterworth low-pass of ``(channels, samples)`` audio (the MUSHRA anchor)."""
    from scipy.signal import butter, sosfiltfilt

    if not 0 < cutoff_hz < rate / 2:
        raise ValueError(f"low-pass cutoff {cutoff_hz} Hz must lie between 0 and the Nyquist "
                         f"frequency {rate / 2} Hz")
    sos = butter(order, cutoff_hz, btype="low", fs=rate, output="sos")
    return sosfiltfilt(sos, np.asarray(audio, dtype=np.float64), axis=-1).astype(np.float32)


def load_condition(condition: Condition) -> tuple[np.ndarray, int]:
    """The audio ``(channels, samples)`` of a condition and its rate (Hz)."""
    audio, rate = audio_io.read_audio(condition.path)
    if condition.lowpass_hz is not None:
        audio = lowpass(audio, rate, condition.lowpass_hz)
    return audio, rate


def build_trials(examples_root, methods: list[str] | None = None, n_trials: int | None = None,
                 seed: int = 0, anchor_hz: float = 3500.0, include_mixture: bool = True) -> list[Trial]:
    """Trials ``(track, instrument)`` from an examples root.

    Conditions of each trial: the hidden reference, the low anchor (input
    low-passed at ``anchor_hz``), the plain input when ``include_mixture``, and
    for each method key its estimate matched to the instrument. Only
    ``(track, instrument)`` pairs where every method has a matched estimate
    are used, so all trials hold the same conditions.

    Parameters
    ----------
    methods : list of method keys (``"kmeans__soft__k3"``); None = those present on every track.
    n_trials : how many pairs to draw (seeded); None = all.
    """
    ex = read_examples(examples_root)
    if methods is None:
        methods = sorted(set.intersection(*(set(e["methods"]) for e in ex.values())))
    methods = list(methods)
    if not methods:
        raise ValueError("no method is present on every track; pass `methods` explicitly")
    if len(set(methods)) != len(methods) or {HIDDEN_REFERENCE, ANCHOR, MIXTURE} & set(methods):
        raise ValueError(f"method keys must be distinct and not reserved condition names: {methods}")
    candidates = []
    for track, e in ex.items():
        for instrument, ref in e["references"].items():
            conds = [Condition(HIDDEN_REFERENCE, ref), Condition(ANCHOR, e["input"], float(anchor_hz))]
            if include_mixture:
                conds.append(Condition(MIXTURE, e["input"]))
            for key in methods:
                match = matched_estimate(e["methods"][key], instrument) if key in e["methods"] else None
                if match is None:
                    break
                conds.append(Condition(key, match[0]))
            else:
                candidates.append(Trial(track, instrument, ref, tuple(conds)))
    if not candidates:
        raise ValueError(f"no (track, instrument) pair has a matched estimate from every method {methods}")
    return _draw(candidates, n_trials, seed)


def _draw(candidates: list[Trial], n_trials: int | None, seed: int) -> list[Trial]:
    """``n_trials`` of the candidates drawn without replacement (seeded), in their order; None = all."""
    if n_trials is None:
        return candidates
    if n_trials < 1:
        raise ValueError(f"n_trials must be at least 1, got {n_trials}")
    if n_trials > len(candidates):
        warnings.warn(f"only {len(candidates)} trials available, {n_trials} requested; using all")
        n_trials = len(candidates)
    pick = np.random.default_rng(seed).choice(len(candidates), size=n_trials, replace=False)
    return [candidates[i] for i in sorted(pick)]


def pick_methods(examples_root, n: int = 3, include: tuple[str, ...] = ()) -> list[str]:
    """Method keys for a rating test: ``include`` (where present) + the ``n`` best by median matched SI-SDR.

    Only keys present on every track count. A MUSHRA screen stays usable with
    at most about a dozen conditions, so rate a few methods, not all of them.
    """
    ex = read_examples(examples_root)
    common = set.intersection(*(set(e["methods"]) for e in ex.values()))
    if not common:
        raise ValueError(f"no method key is present on every track under {examples_root}")
    score = {}
    for key in common:
        values = [m["si_sdr_db"] for e in ex.values() for m in e["methods"][key]["metrics"]["estimates"]
                  if m.get("instrument") and m.get("si_sdr_db") is not None]
        if values:
            score[key] = float(np.median(values))
    chosen = [k for k in include if k in common]
    ranked = sorted(score, key=lambda k: (-score[k], k))
    chosen += [k for k in ranked if k not in chosen][:n]
    if not chosen:
        raise ValueError(f"no method under {examples_root} has a matched estimate with an SI-SDR")
    return chosen


def estimate_condition(key: str, index: int) -> str:
    """Condition of estimate ``index`` of method ``key`` in an ISOLATE trial: ``"kmeans__hard__k2:0"``."""
    return f"{key}{ESTIMATE_SEP}{int(index)}"


def build_open_trials(examples_root, methods: list[str], n_trials: int | None = None, seed: int = 0,
                      anchor_hz: float = 3500.0) -> list[Trial]:
    """Reference-free trials, one per ``(track, method)``, for data without instruments inside "other".

    The input ("other" stem) is the open reference. Conditions: a hidden copy
    of the input (:data:`MIXTURE`: it isolates nothing, a careful listener
    rates it near 0), the low anchor (input low-passed at ``anchor_hz``) and
    each of the method's estimates (:func:`estimate_condition`). The method
    is not shown: the form names only the track. Tracks where a method was not
    exported get no trial for it.
    """
    ex = read_examples(examples_root)
    methods = list(methods)
    if not methods or len(set(methods)) != len(methods):
        raise ValueError(f"methods must be a non-empty list of distinct method keys, got {methods}")
    candidates = []
    for track, e in ex.items():
        for key in methods:
            if key not in e["methods"]:
                continue
            conds = [Condition(MIXTURE, e["input"]), Condition(ANCHOR, e["input"], float(anchor_hz))]
            conds += [Condition(estimate_condition(key, i), path)
                      for i, path in enumerate(e["methods"][key]["estimates"])]
            candidates.append(Trial(track, "", e["input"], tuple(conds), task=ISOLATE))
    if not candidates:
        raise ValueError(f"none of the methods {methods} was exported under {examples_root}")
    return _draw(candidates, n_trials, seed)


def pick_open_methods(examples_root, families: tuple[str, ...] = SEED_METHODS,
                      decoding: str = "hard") -> list[str]:
    """Method keys for a reference-free test: per family, its ``decoding`` key present on every track.

    Without references nothing ranks the methods, so the test rates the seed's
    three clustering methods with the seed's hard time masks, each at its
    smallest k above 1 (at k = 1 when that is all there is, as DBSCAN may find).
    """
    ex = read_examples(examples_root)
    common = set.intersection(*(set(e["methods"]) for e in ex.values()))
    first = next(iter(ex.values()))["methods"]
    by_family: dict[str, list[tuple[int, str]]] = {}
    for key in sorted(common):
        if first[key]["method"] in families and first[key]["decoding"] == decoding:
            by_family.setdefault(first[key]["method"], []).append((first[key]["k"], key))
    # smallest k of at least 2 first, k = 1 only where it is the family's only one
    chosen = [min(by_family[f], key=lambda kk: (kk[0] < 2, kk[0]))[1] for f in families if f in by_family]
    if not chosen:
        raise ValueError(f"none of {list(families)} with {decoding!r} decoding is present on every track "
                         f"under {examples_root}")
    return chosen


def neutral_labels(n: int) -> list[str]:
    """``A, B, ..., Z, AA, AB, ...``: labels that say nothing about the condition."""
    labels = []
    for i in range(n):
        s, i = "", i + 1
        while i:
            i, r = divmod(i - 1, 26)
            s = chr(65 + r) + s
        labels.append(s)
    return labels


def append_ratings(csv_path, rows: list[dict]) -> None:
    """Append rating rows to ``csv_path`` (header written once; earlier rows never rewritten).

    A file whose last line was cut off (no final newline) first gets a newline,
    so the broken line stays on its own and :func:`read_ratings` skips it.
    """
    path = Path(csv_path)
    path.parent.mkdir(parents=True, exist_ok=True)
    for row in rows:
        missing = set(COLUMNS) - set(row)
        if missing:
            raise ValueError(f"rating row lacks the columns {sorted(missing)}")
    new = not path.exists() or path.stat().st_size == 0
    if not new:
        with open(path, "rb") as fh:
            header = fh.readline().decode("utf-8", "replace").strip()
            if header != ",".join(COLUMNS):
                raise ValueError(f"{path} is not a ratings file (header {header!r}); use another path")
            fh.seek(-1, os.SEEK_END)
            needs_newline = fh.read(1) != b"\n"
    with open(path, "a", newline="", encoding="utf-8") as fh:
        if not new and needs_newline:
            fh.write("\n")
        writer = csv.writer(fh, lineterminator="\n")
        if new:
            writer.writerow(COLUMNS)
        for row in rows:
            writer.writerow([row[c] for c in COLUMNS])
        fh.flush()
        os.fsync(fh.fileno())


def read_ratings(csv_path) -> pd.DataFrame:
    """Read a ratings CSV; lines that are broken (e.g. a truncated last line) are skipped with a warning.

    Returns
    -------
    DataFrame
        Columns :data:`COLUMNS`; ``trial`` int, ``rating`` float in [0, 100].
    """
    path = Path(csv_path)
    if not path.is_file():
        raise FileNotFoundError(f"no ratings file at {path}")
    text = path.read_text(encoding="utf-8", errors="replace")
    lines = text.split("\n")
    if not lines or lines[0].strip() != ",".join(COLUMNS):
        raise ValueError(f"{path} does not start with the ratings header {','.join(COLUMNS)!r}")
    complete = text.endswith("\n")
    body = lines[1:-1] if complete else lines[1:]
    records = []
    for lineno, line in enumerate(body, start=2):
        if not line.strip():
            continue
        if not complete and lineno == len(lines):
            warnings.warn(f"{path}: line {lineno} is incomplete (no final newline), skipped")
            continue
        fields = next(csv.reader([line]))
        try:
            if len(fields) != len(COLUMNS):
                raise ValueError(f"{len(fields)} fields instead of {len(COLUMNS)}")
            rec = dict(zip(COLUMNS, fields))
            rec["trial"] = int(rec["trial"])
            rec["rating"] = float(rec["rating"])
            if not 0 <= rec["rating"] <= 100:
                raise ValueError(f"rating {rec['rating']} outside 0-100")
        except ValueError as err:
            warnings.warn(f"{path}: line {lineno} is broken ({err}), skipped")
            continue
        records.append(rec)
    return pd.DataFrame.from_records(records, columns=list(COLUMNS)).astype({"trial": int, "rating": float})


def summarize_ratings(df: pd.DataFrame) -> pd.DataFrame:
    """Per condition: ``n``, ``median``, ``mean``, ``std`` and the 95 % t-interval of the mean.

    Sorted by median, best first. With a single rating the interval is
    undefined: it is NaN and a warning says so.
    """
    from scipy import stats

    if df.empty:
        raise ValueError("no ratings to summarize (did post-screening drop every listener?)")
    missing = {"condition", "rating"} - set(df.columns)
    if missing:
        raise ValueError(f"ratings lack the columns {sorted(missing)}")
    out = []
    for cond, r in df.groupby("condition")["rating"]:
        x = r.to_numpy(dtype=float)
        n = len(x)
        mean, std = float(x.mean()), float(x.std(ddof=1)) if n > 1 else float("nan")
        if n > 1:
            half = float(stats.t.ppf(0.975, n - 1) * std / np.sqrt(n))
            lo, hi = mean - half, mean + half
        else:
            warnings.warn(f"condition {cond!r} has a single rating: no confidence interval")
            lo = hi = float("nan")
        out.append({"condition": cond, "n": n, "median": float(np.median(x)), "mean": mean,
                    "std": std, "ci95_low": lo, "ci95_high": hi})
    table = pd.DataFrame(out).sort_values(["median", "mean"], ascending=False)
    return table.set_index("condition")


def post_screen(df: pd.DataFrame, threshold: float = 90.0, fraction: float = 0.15) -> pd.DataFrame:
    """Drop listeners who rate the hidden reference below ``threshold`` in over ``fraction`` of trials.

    The MUSHRA post-screening rule. Returns the kept rows; the dropped listener
    ids are in ``result.attrs["dropped_listeners"]``.
    """
    # one value per (session, trial): a repeated trial counts once per time it was rated
    return _screen(df, HIDDEN_REFERENCE, "hidden reference",
                   lambda r: r.groupby(["session", "trial"])["rating"].min() < threshold, fraction)


def post_screen_open(df: pd.DataFrame, threshold: float = 10.0, fraction: float = 0.15) -> pd.DataFrame:
    """The mirror of :func:`post_screen` for ISOLATE trials: the hidden input must be rated near 0.

    A copy of the input isolates nothing, so a listener who rates it above
    ``threshold`` in over ``fraction`` of trials did not spot it and is dropped.
    """
    return _screen(df, MIXTURE, "hidden input",
                   lambda r: r.groupby(["session", "trial"])["rating"].max() > threshold, fraction)


def _screen(df: pd.DataFrame, condition: str, what: str, missed, fraction: float) -> pd.DataFrame:
    """Drop listeners for whom ``missed(rows of condition)`` (per trial) is true in over ``fraction``."""
    if df.empty:
        raise ValueError("no ratings to screen")
    hidden = df[df["condition"] == condition]
    dropped = []
    for listener in sorted(df["listener"].unique()):
        h = hidden[hidden["listener"] == listener]
        if h.empty:
            raise ValueError(f"listener {listener!r} rated no {what}; cannot screen")
        if missed(h).mean() > fraction:
            dropped.append(listener)
    kept = df[~df["listener"].isin(dropped)].copy()
    kept.attrs["dropped_listeners"] = dropped
    return kept


def per_method(df: pd.DataFrame) -> pd.DataFrame:
    """ISOLATE ratings with one row per (trial, method): the mean rating of the method's estimates.

    Estimate conditions (``"kmeans__hard__k2:0"``) become their method key; a
    cluster's index means nothing across tracks, the method's typical estimate
    does. Other conditions pass through; ``attrs`` are kept.
    """
    is_est = df["condition"].str.contains(ESTIMATE_SEP, regex=False)
    est = df[is_est].assign(condition=df.loc[is_est, "condition"].str.rsplit(ESTIMATE_SEP, n=1).str[0])
    keys = ["listener", "session", "trial", "track", "instrument", "condition"]
    merged = est.groupby(keys, as_index=False).agg(rating=("rating", "mean"),
                                                   timestamp=("timestamp", "first"))
    out = pd.concat([df[~is_est], merged[list(COLUMNS)]], ignore_index=True)
    out.attrs = dict(df.attrs)
    return out


def simulate_ratings(conditions: list[str], n_listeners: int = 8, n_trials: int = 6, seed: int = 0,
                     careless: int = 1) -> pd.DataFrame:
    """EXAMPLE DATA, NOT RESULTS: synthetic ratings that show the analysis before anyone listened.

    Hidden reference near 98, anchor near 20, the plain mixture near 35 (near 3
    where there is no hidden reference: ISOLATE trials), every other condition
    around a random level; the last ``careless`` listeners rate at random
    (post-screening should drop them).
    """
    rng = np.random.default_rng(seed)
    level = {c: rng.uniform(25, 75) for c in conditions}
    level.update({HIDDEN_REFERENCE: 98.0, ANCHOR: 20.0, MIXTURE: 35.0})
    hidden = HIDDEN_REFERENCE
    if HIDDEN_REFERENCE not in conditions:  # ISOLATE trials: the hidden input isolates nothing
        level[MIXTURE], hidden = 3.0, MIXTURE
    rows = []
    for li in range(n_listeners):
        is_careless = li >= n_listeners - careless
        for trial in range(n_trials):
            for c in conditions:
                spread = 2.0 if c == hidden else 8.0  # most listeners spot the hidden reference / input
                r = rng.uniform(0, 100) if is_careless else rng.normal(level[c], spread)
                rows.append({"listener": f"sim{li:02d}", "session": "example", "trial": trial,
                             "track": f"track{trial}", "instrument": "example", "condition": c,
                             "rating": float(np.clip(round(r), 0, 100)), "timestamp": ""})
    return pd.DataFrame(rows, columns=list(COLUMNS))
