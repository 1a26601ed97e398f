"""Listening in the notebook: a track browser and the blind MUSHRA-style rating form (ipywidgets).

Both read the examples written by the evaluation (layout in
:mod:`mss_helpers.examples`). Audio is embedded as compact OGG at <= 16 kHz with
``normalize=False``, so levels stay comparable between players: a quiet
estimate sounds quiet. This module is a leaf: nothing else in the package
imports it. The test's trials, the ratings CSV and their summaries are
:mod:`mss_helpers.mushra`, so they can be tested and reused without widgets. Spectrogram images under the players are
drawn by a function the caller passes (``plots.spectrogram``), so this leaf
does not reach into the other leaf.

Also the ``python -m mss_helpers listen-export`` command: run the evaluation
and write listening examples to a folder.
"""

from __future__ import annotations

import io
import uuid
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from . import audio as audio_io
from .cluster_metrics import energy_shares
from .examples import list_tracks, matched_estimate, read_examples
from .mushra import ISOLATE, Trial, append_ratings, load_condition, neutral_labels


def _widgets():
    import ipywidgets

    return ipywidgets


def _player_html(audio: np.ndarray, rate: int, max_rate: int) -> str:
    """HTML of an OGG ``<audio>`` player (an HTML widget works with or without a kernel)."""
    return audio_io.embed_audio(audio, rate, max_rate=max_rate, normalize=False)._repr_html_()


def _spectrogram_png(draw, audio: np.ndarray, rate: int, size=(3.0, 1.5)) -> bytes:
    """A small spectrogram drawn by ``draw(audio, rate, ax=..., n_fft=..., hop=...)`` as PNG bytes.

    ``draw`` is ``plots.spectrogram`` in the notebooks; the figure is closed afterwards.
    """
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=size)
    try:
        draw(audio, rate, ax=ax, n_fft=512, hop=128)
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

    A track without references (no instruments inside "other", as on MUSDB18)
    labels each estimate with its share of the estimates' energy instead.

    Parameters
    ----------
    examples_root : path
        Folder written by the evaluation (``examples.write_example``).
    spectrogram : callable or None
        Draws a small spectrogram under each player:
        ``spectrogram(audio, rate, ax=..., n_fft=..., hop=...)``, i.e.
        ``plots.spectrogram``. None (default): players only.
    max_rate : int
        Players are resampled down to this rate (Hz) to stay compact.

    Attributes
    ----------
    widget : ipywidgets.VBox
        Display this in a notebook.
    """

    def __init__(self, examples_root, spectrogram=None, max_rate: int = 16000):
        W = _widgets()
        self.root = Path(examples_root)
        self.examples = read_examples(self.root)
        self.spectrogram = spectrogram
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

    def _shares(self, paths: list[Path]) -> list[float] | None:
        """Percent of the estimates' energy in each (the seed's cluster energy); None when all are silent."""
        try:
            return energy_shares([self._load(p)[0] for p in paths])
        except ValueError:
            return None

    def _card(self, label: str, path: Path):
        W = _widgets()
        audio, rate = self._load(path)
        items = [W.HTML(f"<b>{label}</b>"), W.HTML(_player_html(audio, rate, self.max_rate))]
        if self.spectrogram is not None:
            items.append(W.Image(value=_spectrogram_png(self.spectrogram, audio, rate), format="png"))
        return W.VBox(items, layout=W.Layout(margin="0 12px 8px 0"))

    def _render(self) -> None:
        W = _widgets()
        ex = self.examples[self._track.value]
        key = self.current_key
        players = [("input (other stem)", ex["input"])]
        est_players, ref_players = [], []
        if key is not None:
            entry = ex["methods"][key]
            shares = None if ex["references"] else self._shares(entry["estimates"])
            for i, (path, m) in enumerate(zip(entry["estimates"], entry["metrics"]["estimates"])):
                if shares is not None:
                    label = f"estimate {i} ({shares[i]:.0f} % of the energy)"
                elif not ex["references"]:
                    label = f"estimate {i}"
                elif m.get("instrument"):
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
                              "not normalised (levels comparable)"
                              + ("" if ex["references"] else "; no references (no instruments inside "
                                 "'other' on this data)"))
        self._body.children = rows


# --- blind rating form --------------------------------------------------------------------


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
        if t.task == ISOLATE:  # no true instrument: the input is the reference, the method stays hidden
            self._header.value = (f"<h4>Trial {self.position + 1} of {len(self.trials)}: {t.track}</h4>"
                                  "Rate how well each sound isolates one instrument of the reference "
                                  "(0: as mixed as the reference - 100: one instrument alone, clean). "
                                  "One of them is the reference itself.")
        else:
            self._header.value = (f"<h4>Trial {self.position + 1} of {len(self.trials)}: {t.instrument} "
                                  f"in {t.track}</h4>Rate how close each sound is to the reference "
                                  "(0 bad - 100 excellent). One of them is the reference itself.")
        ref_audio, ref_rate = audio_io.read_audio(t.reference)
        title = "Reference: the input ('other' stem)" if t.task == ISOLATE else "Reference"
        self._reference.children = [W.HTML(f"<b>{title}</b>"),
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


# --- CLI: python -m mss_helpers listen-export ---------------------------------------------

EXPORT_TABLE_DIR = "evaluation"  # sub-folder of --out with the export's separation table


def add_listen_export_arguments(parser) -> None:
    """Arguments of ``listen-export``."""
    parser.add_argument("--out", required=True, help="folder to write the examples into")
    parser.add_argument("--preset", default=None, help="config preset (default: $MSS_PRESET or cpu)")
    parser.add_argument("--root", default=None, help="data set root (default: the preset's)")
    parser.add_argument("--tracks", type=int, default=2, help="number of test tracks to export")
    parser.add_argument("--methods", default=None,
                        help="comma-separated clustering methods (default: the preset's)")


def run_listen_export(args) -> int:
    """Run the evaluation on the test split and write ``--tracks`` listening examples to ``--out``."""
    from . import evaluate
    from .config import get_config

    if args.tracks < 1:
        from .errors import ConfigError

        raise ConfigError(f"--tracks must be at least 1, got {args.tracks}")
    cfg = get_config(args.preset)
    methods = [m.strip() for m in args.methods.split(",") if m.strip()] if args.methods else None
    out = Path(args.out)
    # Its own table beside the examples: a subset of methods must not replace the preset's
    # results/separation_<preset>.* nor the full comparison's runs folder.
    evaluate.run_evaluation(cfg, root=args.root, examples_dir=out, example_tracks=args.tracks,
                            methods=methods, write_results=False, out_dir=out / EXPORT_TABLE_DIR)
    tracks = list_tracks(out)
    print(f"wrote listening examples for {len(tracks)} track(s) to {out}: {', '.join(tracks)}")
    return 0
