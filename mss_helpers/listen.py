"""Listening in the notebook: a track browser and a blind MUSHRA-style rating test.

Both read the examples written by the evaluation (layout in
:mod:`mss_helpers.examples`). Audio is embedded as compact OGG at <= 16 kHz with
``normalize=False``, so levels stay comparable between players: a quiet
estimate sounds quiet. This module is a leaf (ipywidgets); nothing else in the
package imports it.

The rating test follows MUSHRA (ITU-R BS.1534) in spirit: per trial, the
reference is shown openly, and the conditions are played under neutral labels
("A", "B", ...) in a seeded random order: a hidden copy of the reference, a
low anchor (the separation input low-passed at 3.5 kHz), the plain input
(the "do nothing" estimate) and each method's estimate matched to the trial's
instrument. Each condition gets a 0-100 slider. Ratings are appended to a CSV
one trial at a time, so a half-finished session is kept.
"""

from __future__ import annotations

import csv
import io
import os
import uuid
import warnings
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd

from . import audio as audio_io
from .examples import matched_estimate, read_examples

HIDDEN_REFERENCE = "hidden_reference"
ANCHOR = "anchor_lp3500"
MIXTURE = "mixture"
COLUMNS = ("listener", "session", "trial", "track", "instrument", "condition", "rating", "timestamp")


def _widgets():
    import ipywidgets

    return ipywidgets


def _player_html(audio: np.ndarray, rate: int, max_rate: int) -> str:
    """HTML of an OGG ``<audio>`` player (an HTML widget works with or without a kernel)."""
    return audio_io.embed_audio(audio, rate, max_rate=max_rate, normalize=False)._repr_html_()


def _spectrogram_png(audio: np.ndarray, rate: int, size=(3.0, 1.5)) -> bytes:
    """A small spectrogram as PNG bytes (figure closed afterwards)."""
    import matplotlib.pyplot as plt

    from . import plots

    fig, ax = plt.subplots(figsize=size)
    try:
        plots.spectrogram(audio, rate, ax=ax, n_fft=512, hop=128)
        ax.set_xlabel("")
        ax.set_ylabel("")
        ax.tick_params(labelsize=6)
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=80, bbox_inches="tight")
    finally:
        plt.close(fig)
    return buf.getvalue()


def _fmt_db(value) -> str:
    return "n/a" if value is None else f"{value:+.1f} dB"


# --- track browser -------------------------------------------------------------------------


class TrackBrowser:
    """Play one track's input, estimates and references side by side.

    Parameters
    ----------
    examples_root : path
        Folder written by the evaluation (``examples.write_example``).
    spectrograms : bool
        Draw a small spectrogram under each player.
    max_rate : int
        Players are resampled down to this rate (Hz) to stay compact.

    Attributes
    ----------
    widget : ipywidgets.VBox
        Display this in a notebook.
    """

    def __init__(self, examples_root, spectrograms: bool = True, max_rate: int = 16000):
        W = _widgets()
        self.root = Path(examples_root)
        self.examples = read_examples(self.root)
        self.spectrograms = spectrograms
        self.max_rate = int(max_rate)
        self._audio_cache: dict[Path, tuple[np.ndarray, int]] = {}
        self._players: list[tuple[str, Path]] = []
        self._busy = False
        self._track = W.Dropdown(options=list(self.examples), description="track")
        self._method = W.Dropdown(description="method")
        self._decoding = W.Dropdown(description="decoding")
        self._k = W.Dropdown(description="k")
        self._status = W.HTML()
        self._body = W.VBox()
        for dd in (self._track, self._method, self._decoding, self._k):
            dd.observe(self._on_change, names="value")
        controls = W.HBox([self._track, self._method, self._decoding, self._k])
        self.widget = W.VBox([controls, self._status, self._body])
        self._refresh_options()
        self._render()

    # options of each dropdown follow the one above it (track > method > decoding > k)
    def _keys(self) -> dict:
        return self.examples[self._track.value]["methods"]

    def _set_options(self, dropdown, options, preferred=None) -> None:
        keep = preferred if preferred in options else dropdown.value
        dropdown.options = options
        dropdown.value = keep if keep in options else (options[0] if options else None)

    def _refresh_options(self, method=None, decoding=None, k=None) -> None:
        self._busy = True
        try:
            keys = self._keys()
            self._set_options(self._method, sorted({m["method"] for m in keys.values()}), method)
            self._set_options(self._decoding, sorted({m["decoding"] for m in keys.values()
                                                      if m["method"] == self._method.value}), decoding)
            self._set_options(self._k, sorted({m["k"] for m in keys.values()
                                               if m["method"] == self._method.value
                                               and m["decoding"] == self._decoding.value}), k)
        finally:
            self._busy = False

    def _on_change(self, change) -> None:
        if self._busy:
            return
        self._refresh_options()
        self._render()

    def select(self, track: str | None = None, method: str | None = None,
               decoding: str | None = None, k: int | None = None) -> None:
        """Change the selection (what a listener does with the dropdowns); None keeps a field.

        Raises
        ------
        ValueError
            When the track or the method / decoding / k combination was not exported.
        """
        if track is not None and track not in self.examples:
            raise ValueError(f"track {track!r} is not among the examples: {sorted(self.examples)}")
        keys = self.examples[track if track is not None else self._track.value]["methods"]
        want = (method if method is not None else self._method.value,
                decoding if decoding is not None else self._decoding.value,
                int(k) if k is not None else self._k.value)
        # fields left as None may fall back to any available value; given ones must exist
        fits = [m for m in keys.values()
                if (method is None or m["method"] == method)
                and (decoding is None or m["decoding"] == decoding)
                and (k is None or m["k"] == int(k))]
        if not fits:
            raise ValueError(f"no example for method={method!r}, decoding={decoding!r}, k={k!r} "
                             f"on this track; available: {sorted(keys)}")
        self._busy = True
        try:
            if track is not None:
                self._track.value = track
        finally:
            self._busy = False
        self._refresh_options(*want)
        self._render()

    @property
    def current_key(self) -> str | None:
        """The method folder shown now, e.g. ``"kmeans__soft__k3"`` (None if the track has none)."""
        shown = (self._method.value, self._decoding.value, self._k.value)
        for key, m in self._keys().items():
            if (m["method"], m["decoding"], m["k"]) == shown:
                return key
        return None

    def current_players(self) -> list[tuple[str, Path]]:
        """``(label, wav path)`` of every player shown now: input, estimates, references."""
        return list(self._players)

    def _load(self, path: Path) -> tuple[np.ndarray, int]:
        if path not in self._audio_cache:
            self._audio_cache[path] = audio_io.read_audio(path)
        return self._audio_cache[path]

    def _card(self, label: str, path: Path):
        W = _widgets()
        audio, rate = self._load(path)
        items = [W.HTML(f"<b>{label}</b>"), W.HTML(_player_html(audio, rate, self.max_rate))]
        if self.spectrograms:
            items.append(W.Image(value=_spectrogram_png(audio, rate), format="png"))
        return W.VBox(items, layout=W.Layout(margin="0 12px 8px 0"))

    def _render(self) -> None:
        W = _widgets()
        ex = self.examples[self._track.value]
        key = self.current_key
        players = [("input (other stem)", ex["input"])]
        est_players, ref_players = [], []
        if key is not None:
            entry = ex["methods"][key]
            for i, (path, m) in enumerate(zip(entry["estimates"], entry["metrics"]["estimates"])):
                if m.get("instrument"):
                    label = f"estimate {i} -> {m['instrument']} (SI-SDR {_fmt_db(m.get('si_sdr_db'))})"
                else:
                    label = f"estimate {i} (unmatched)"
                est_players.append((label, path))
        for name, path in ex["references"].items():
            match = matched_estimate(ex["methods"][key], name) if key is not None else None
            note = (f"matched: estimate {match[0].stem.split('_')[-1]}, "
                    f"SI-SDR {_fmt_db(match[1].get('si_sdr_db'))}" if match else "no estimate matched")
            ref_players.append((f"reference {name} ({note})", path))
        self._players = players + est_players + ref_players
        rows = []
        groups = (("Input", players), (f"Estimates: {key}", est_players), ("References", ref_players))
        for title, group in groups:
            if group:
                cards = [self._card(label, path) for label, path in group]
                rows.append(W.HTML(f"<h4>{title}</h4>"))
                rows.append(W.HBox(cards, layout=W.Layout(flex_flow="row wrap")))
        self._status.value = (f"{self._track.value}: {ex['rate']} Hz; players at <= {self.max_rate} Hz, "
                              "not normalised (levels comparable)")
        self._body.children = rows


# --- blind rating test ---------------------------------------------------------------------


@dataclass(frozen=True)
class Condition:
    """One rated signal: a wav file, optionally low-passed at ``lowpass_hz`` (the anchor)."""

    name: str
    path: Path
    lowpass_hz: float | None = None


@dataclass(frozen=True)
class Trial:
    """One rating screen: the open reference of ``instrument`` in ``track`` and the hidden conditions."""

    track: str
    instrument: str
    reference: Path
    conditions: tuple[Condition, ...]


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
    if df.empty:
        raise ValueError("no ratings to screen")
    hidden = df[df["condition"] == HIDDEN_REFERENCE]
    dropped = []
    for listener in sorted(df["listener"].unique()):
        h = hidden[hidden["listener"] == listener]
        if h.empty:
            raise ValueError(f"listener {listener!r} rated no hidden reference; cannot screen")
        # one value per (session, trial): a repeated trial counts once per time it was rated
        missed = (h.groupby(["session", "trial"])["rating"].min() < threshold)
        if missed.mean() > fraction:
            dropped.append(listener)
    kept = df[~df["listener"].isin(dropped)].copy()
    kept.attrs["dropped_listeners"] = dropped
    return kept


def simulate_ratings(conditions: list[str], n_listeners: int = 8, n_trials: int = 6, seed: int = 0,
                     careless: int = 1) -> pd.DataFrame:
    """EXAMPLE DATA, NOT RESULTS: synthetic ratings that show the analysis before anyone listened.

    Hidden reference near 98, anchor near 20, the plain mixture near 35,
    every other condition around a random level; the last ``careless``
    listeners rate at random (post-screening should drop them).
    """
    rng = np.random.default_rng(seed)
    level = {c: rng.uniform(25, 75) for c in conditions}
    level.update({HIDDEN_REFERENCE: 98.0, ANCHOR: 20.0, MIXTURE: 35.0})
    rows = []
    for li in range(n_listeners):
        is_careless = li >= n_listeners - careless
        for trial in range(n_trials):
            for c in conditions:
                spread = 2.0 if c == HIDDEN_REFERENCE else 8.0  # most listeners spot the reference
                r = rng.uniform(0, 100) if is_careless else rng.normal(level[c], spread)
                rows.append({"listener": f"sim{li:02d}", "session": "example", "trial": trial,
                             "track": f"track{trial}", "instrument": "example", "condition": c,
                             "rating": float(np.clip(round(r), 0, 100)), "timestamp": ""})
    return pd.DataFrame(rows, columns=list(COLUMNS))


class MushraTest:
    """A blind MUSHRA-style rating session as an ipywidgets form.

    Parameters
    ----------
    trials : list of :class:`Trial` (see :func:`build_trials`)
    csv_path : path
        Ratings are appended here, one trial at a time.
    listener_id : str
        Who is listening (written to every row).
    seed : int
        Seeds the order of trials and of conditions within each trial.
    session : str, optional
        Session id; default: UTC time + a random suffix.
    max_rate : int
        Players are resampled down to this rate (Hz).

    Attributes
    ----------
    widget : ipywidgets.VBox
    """

    def __init__(self, trials: list[Trial], csv_path, listener_id: str, seed: int = 0,
                 session: str | None = None, max_rate: int = 16000):
        W = _widgets()
        if not trials:
            raise ValueError("a rating test needs at least one trial")
        if not str(listener_id).strip():
            raise ValueError("listener_id must not be empty")
        for t in trials:
            names = [c.name for c in t.conditions]
            if len(set(names)) != len(names) or not names:
                raise ValueError(f"trial {t.track}/{t.instrument} has no or duplicate conditions: {names}")
        self.trials = list(trials)
        self.csv_path = Path(csv_path)
        self.listener_id = str(listener_id)
        stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
        self.session = session or f"{stamp}-{uuid.uuid4().hex[:6]}"
        self.max_rate = int(max_rate)
        rng = np.random.default_rng(seed)
        self.trial_order = [int(i) for i in rng.permutation(len(self.trials))]
        self.condition_orders = [[int(i) for i in rng.permutation(len(t.conditions))] for t in self.trials]
        self.position = 0
        self._header = W.HTML()
        self._reference = W.VBox()
        self._rows = W.VBox()
        self._message = W.HTML()
        self._button = W.Button(description="Save & next", button_style="primary")
        self._button.on_click(self._on_save)
        self._sliders: dict[str, object] = {}
        self._touched: set[str] = set()
        self.widget = W.VBox([self._header, self._reference, self._rows, self._button, self._message])
        self._show()

    @property
    def done(self) -> bool:
        """True once every trial was saved."""
        return self.position >= len(self.trials)

    @property
    def current_trial(self) -> Trial:
        if self.done:
            raise ValueError("the session is finished: no current trial")
        return self.trials[self.trial_order[self.position]]

    def current_labels(self) -> list[str]:
        """Neutral labels shown now, in display order."""
        return neutral_labels(len(self.current_trial.conditions))

    def answer_key(self) -> dict[str, str]:
        """Label -> hidden condition name of the current trial (for analysis and tests, not listeners)."""
        t = self.current_trial
        order = self.condition_orders[self.trial_order[self.position]]
        return dict(zip(self.current_labels(), (t.conditions[i].name for i in order)))

    def visible_text(self) -> list[str]:
        """Every label / description a listener can read on the rating screen (without audio data)."""
        texts = [self._header.value, self._button.description]
        texts += [s.description for s in self._sliders.values()]
        return texts

    def set_ratings(self, ratings: dict[str, float]) -> None:
        """Move the sliders of the given labels (what the listener does)."""
        unknown = set(ratings) - set(self._sliders)
        if unknown:
            raise ValueError(f"no slider labelled {sorted(unknown)}; labels are {list(self._sliders)}")
        for label, value in ratings.items():
            if not 0 <= value <= 100:
                raise ValueError(f"rating {value} for {label} lies outside 0-100")
            self._sliders[label].value = int(round(value))
            self._touched.add(label)  # setting the start value again fires no change event

    def save_and_next(self) -> list[dict]:
        """Append the current trial's ratings to the CSV and show the next trial.

        Raises
        ------
        ValueError
            When a slider was never moved (an unrated condition is not a rating of 50).
        """
        if self.done:
            raise ValueError("the session is finished: nothing to save")
        untouched = [lab for lab in self._sliders if lab not in self._touched]
        if untouched:
            raise ValueError(f"rate every condition before saving (not yet moved: {', '.join(untouched)})")
        t = self.current_trial
        stamp = datetime.now(timezone.utc).isoformat(timespec="seconds")
        key = self.answer_key()
        rows = [{"listener": self.listener_id, "session": self.session,
                 "trial": self.trial_order[self.position], "track": t.track, "instrument": t.instrument,
                 "condition": key[label],
                 "rating": int(self._sliders[label].value), "timestamp": stamp} for label in self._sliders]
        append_ratings(self.csv_path, rows)
        self.position += 1
        self._show()
        return rows

    def _on_save(self, _button) -> None:
        try:
            self.save_and_next()
        except ValueError as err:
            self._message.value = f"<span style='color:#b00'>{err}</span>"

    def _show(self) -> None:
        W = _widgets()
        self._sliders, self._touched = {}, set()
        self._message.value = ""
        if self.done:
            self._header.value = (f"<h4>Finished: {len(self.trials)} trials saved to {self.csv_path.name}. "
                                  "Thank you.</h4>")
            self._reference.children, self._rows.children = (), ()
            self._button.disabled = True
            return
        t = self.current_trial
        self._header.value = (f"<h4>Trial {self.position + 1} of {len(self.trials)}: {t.instrument} "
                              f"in {t.track}</h4>Rate how close each sound is to the reference "
                              "(0 bad - 100 excellent). One of them is the reference itself.")
        ref_audio, ref_rate = audio_io.read_audio(t.reference)
        self._reference.children = [W.HTML("<b>Reference</b>"),
                                    W.HTML(_player_html(ref_audio, ref_rate, self.max_rate))]
        rows = []
        order = self.condition_orders[self.trial_order[self.position]]
        for label, idx in zip(self.current_labels(), order):
            audio, rate = load_condition(t.conditions[idx])
            slider = W.IntSlider(value=50, min=0, max=100, description=label, continuous_update=False)
            slider.observe(lambda change, lab=label: self._touched.add(lab), names="value")
            self._sliders[label] = slider
            rows.append(W.HBox([W.HTML(_player_html(audio, rate, self.max_rate)), slider]))
        self._rows.children = rows
