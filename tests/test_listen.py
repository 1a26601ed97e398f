"""Track browser, blind rating test, ratings CSV and its analysis (synthetic examples)."""

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("ipywidgets")

from mss_helpers import examples, listen, mushra, plots  # noqa: E402

RATE = 8000
INSTRUMENTS = {"piano": 440.0, "flute": 880.0}


def _sine(freq, n=RATE // 4, amp=0.3):
    return (amp * np.sin(2 * np.pi * freq * np.arange(n) / RATE))[None].astype(np.float32)


@pytest.fixture
def ex_root(tmp_path):
    """Two tracks x two instruments; kmeans soft/hard at k=2 match both, gmm k=3 misses flute on track b."""
    root = tmp_path / "examples"
    for track in ("track a", "track b"):
        refs = {name: _sine(f) for name, f in INSTRUMENTS.items()}
        mix = refs["piano"] + refs["flute"]
        gmm = ["piano", "flute", None] if track == "track a" else ["piano", None, None]
        for key, matched in (("kmeans__soft__k2", ["piano", "flute"]),
                             ("kmeans__hard__k2", ["flute", "piano"]), ("gmm__soft__k3", gmm)):
            ests = [refs[m] * 0.8 if m else _sine(60) for m in matched]
            rows = [{"instrument": inst, "estimate": matched.index(inst) if inst in matched else None,
                     "si_sdr_db": 10.0 + i, "si_sdri_db": 5.0, "sdr_db": 9.0}
                    for i, inst in enumerate(INSTRUMENTS)]
            examples.write_example(root, track, RATE, mix, refs, key, ests, rows)
    return root


# --- browser ---------------------------------------------------------------------------------


def test_browser_selection_changes_what_is_played(ex_root):
    b = listen.TrackBrowser(ex_root)
    assert b.widget is not None
    first = b.current_players()
    assert first[0] == ("input (other stem)", ex_root / "track a" / "input.wav")
    assert b.current_key == "gmm__soft__k3"  # first method / decoding / k in sorted order
    assert sum(label.startswith("estimate") for label, _ in first) == 3

    b.select(method="kmeans", decoding="hard", k=2)
    assert b.current_key == "kmeans__hard__k2"
    players = dict((p.relative_to(ex_root).as_posix(), label) for label, p in b.current_players())
    assert players["track a/kmeans__hard__k2/estimate_0.wav"].startswith("estimate 0 -> flute")
    assert "SI-SDR +11.0 dB" in players["track a/kmeans__hard__k2/estimate_0.wav"]
    assert "references/piano.wav" in " ".join(players) and len(players) == 1 + 2 + 2

    b.select(track="track b")  # method and decoding kept where available
    assert b.current_key == "kmeans__hard__k2"
    assert all(p.is_relative_to(ex_root / "track b") for _, p in b.current_players())

    # a user changing the dropdowns goes through the same path as select()
    b._decoding.value = "soft"
    assert b.current_key == "kmeans__soft__k2"
    assert any("kmeans__soft__k2/estimate_1.wav" in p.as_posix() for _, p in b.current_players())


def test_browser_unmatched_and_bad_selection(ex_root):
    b = listen.TrackBrowser(ex_root, spectrogram=plots.spectrogram)  # one real render with images
    b.select(track="track b", method="gmm")
    labels = [label for label, _ in b.current_players()]
    assert "estimate 1 (unmatched)" in labels
    assert any(label.startswith("reference flute (no estimate matched") for label in labels)
    images = [w for row in b._body.children for card in getattr(row, "children", ())
              for w in card.children if type(w).__name__ == "Image"]
    assert len(images) == len(labels) and images[0].value[:4] == b"\x89PNG"
    with pytest.raises(ValueError, match="not among"):
        b.select(track="nope")
    with pytest.raises(ValueError, match="no example"):
        b.select(method="kmeans", k=7)
    assert b.current_key == "gmm__soft__k3"  # a rejected selection changes nothing


# --- trials and the rating form ------------------------------------------------------------


def test_build_trials_conditions(ex_root):
    trials = mushra.build_trials(ex_root, methods=["kmeans__soft__k2", "gmm__soft__k3"])
    # track b / flute has no gmm match, so 3 of the 4 pairs remain
    assert sorted((t.track, t.instrument) for t in trials) == [
        ("track a", "flute"), ("track a", "piano"), ("track b", "piano")]
    t = trials[0]
    names = [c.name for c in t.conditions]
    assert names == [mushra.HIDDEN_REFERENCE, mushra.ANCHOR, mushra.MIXTURE,
                     "kmeans__soft__k2", "gmm__soft__k3"]
    assert t.conditions[0].path == t.reference
    assert t.conditions[1].lowpass_hz == 3500.0
    assert len(mushra.build_trials(ex_root, methods=["kmeans__soft__k2"], n_trials=2, seed=1)) == 2
    with pytest.raises(ValueError, match="no \\(track, instrument\\)"):
        mushra.build_trials(ex_root, methods=["missing__soft__k2"])


def test_anchor_is_low_passed():
    rate = 16000
    t = np.arange(rate) / rate
    x = (np.sin(2 * np.pi * 500 * t) + np.sin(2 * np.pi * 6000 * t))[None].astype(np.float32)
    y = mushra.lowpass(x, rate, 3500.0)
    spec_x, spec_y = np.abs(np.fft.rfft(x[0])), np.abs(np.fft.rfft(y[0]))
    assert spec_y[500] == pytest.approx(spec_x[500], rel=0.01)  # 1 Hz bins
    assert spec_y[6000] < 1e-3 * spec_x[6000]
    with pytest.raises(ValueError, match="Nyquist"):
        mushra.lowpass(x, rate, 9000.0)


def _test(ex_root, csv_path, seed=0, listener="alice", session="s1"):
    trials = mushra.build_trials(ex_root, methods=["kmeans__soft__k2", "kmeans__hard__k2"])
    return listen.MushraTest(trials, csv_path, listener, seed=seed, session=session)


def test_order_is_seeded_and_labels_are_neutral(ex_root, tmp_path):
    a = _test(ex_root, tmp_path / "r.csv", seed=3)
    b = _test(ex_root, tmp_path / "r.csv", seed=3)
    assert a.trial_order == b.trial_order and a.condition_orders == b.condition_orders
    others = [_test(ex_root, tmp_path / "r.csv", seed=s) for s in (4, 5, 6)]
    assert any((o.trial_order, o.condition_orders) != (a.trial_order, a.condition_orders) for o in others)

    names = {c.name for t in a.trials for c in t.conditions}
    assert a.current_labels() == ["A", "B", "C", "D", "E"]
    assert set(a.answer_key().values()) == {c.name for c in a.current_trial.conditions}
    shown = " ".join(a.visible_text()).lower()
    for name in names:
        assert name.lower() not in shown
        assert all(name.lower() not in lab.lower() for lab in a.current_labels())
    assert mushra.neutral_labels(28)[-3:] == ["Z", "AA", "AB"]


def test_session_writes_csv_and_appends_across_sessions(ex_root, tmp_path):
    csv_path = tmp_path / "ratings.csv"
    test = _test(ex_root, csv_path, listener="alice", session="s1")
    with pytest.raises(ValueError, match="not yet moved"):
        test.save_and_next()
    assert not csv_path.exists()
    key = test.answer_key()
    wanted = {lab: (95 if name == mushra.HIDDEN_REFERENCE else 10 * i)
              for i, (lab, name) in enumerate(key.items())}
    test.set_ratings(wanted)
    rows = test.save_and_next()
    assert {r["condition"]: r["rating"] for r in rows} == {key[lab]: v for lab, v in wanted.items()}
    assert test.position == 1

    # a second listener starts another session on the same file: the first rows stay
    second = _test(ex_root, csv_path, listener="bob", session="s2", seed=1)
    while not second.done:
        second.set_ratings({lab: 50 for lab in second.current_labels()})
        second.save_and_next()
    assert second._button.disabled

    df = mushra.read_ratings(csv_path)
    assert list(df.columns) == list(mushra.COLUMNS)
    n_cond = len(test.trials[0].conditions)
    assert len(df) == n_cond * (1 + len(second.trials))
    first = df[df["session"] == "s1"]
    assert dict(zip(first["condition"], first["rating"])) == {key[lab]: v for lab, v in wanted.items()}
    assert set(df["listener"]) == {"alice", "bob"} and df["rating"].dtype == float


def test_read_ratings_survives_truncated_last_line(tmp_path):
    csv_path = tmp_path / "r.csv"
    row = dict(listener="l1", session="s", trial=0, track="t", instrument="piano", condition="x",
               rating=70, timestamp="2026-01-01T00:00:00+00:00")
    mushra.append_ratings(csv_path, [row, dict(row, condition="y", rating=20)])
    with open(csv_path, "a") as fh:  # a crash while writing: half a line, no newline
        fh.write("l1,s,1,t,pia")
    with pytest.warns(UserWarning, match="incomplete"):
        df = mushra.read_ratings(csv_path)
    assert list(df["rating"]) == [70.0, 20.0]

    # the next append starts on a fresh line, so only the broken fragment is lost
    mushra.append_ratings(csv_path, [dict(row, condition="z", rating=40)])
    with pytest.warns(UserWarning, match="broken"):
        df = mushra.read_ratings(csv_path)
    assert list(df["condition"]) == ["x", "y", "z"]

    bad = tmp_path / "other.csv"
    bad.write_text("a,b\n1,2\n")
    with pytest.raises(ValueError, match="header"):
        mushra.read_ratings(bad)
    with pytest.raises(ValueError, match="not a ratings file"):
        mushra.append_ratings(bad, [row])


# --- analysis ------------------------------------------------------------------------------


def _ratings(table):
    """Rows from ``{listener: {trial: {condition: rating}}}``."""
    return pd.DataFrame([dict(listener=lis, session="s", trial=tr, track="t", instrument="i", condition=c,
                              rating=float(r), timestamp="")
                         for lis, trials in table.items() for tr, conds in trials.items()
                         for c, r in conds.items()], columns=list(mushra.COLUMNS))


def test_summarize_ratings_known_values():
    df = _ratings({"l1": {0: {"hidden_reference": 100, "m": 40}, 1: {"hidden_reference": 90, "m": 60}},
                   "l2": {0: {"hidden_reference": 95, "m": 50}}})
    s = mushra.summarize_ratings(df)
    assert list(s.index) == ["hidden_reference", "m"]  # best median first
    assert s.loc["m", "n"] == 3 and s.loc["m", "median"] == 50 and s.loc["m", "mean"] == 50
    # t-interval: 50 +- t(0.975, 2) * 10 / sqrt(3) = 50 +- 24.84
    assert s.loc["m", "ci95_low"] == pytest.approx(50 - 24.841, abs=1e-2)
    assert s.loc["m", "ci95_high"] == pytest.approx(50 + 24.841, abs=1e-2)
    with pytest.raises(ValueError):
        mushra.summarize_ratings(df.iloc[0:0])


def test_post_screen_drops_listener_who_misses_hidden_reference():
    good = {tr: {"hidden_reference": 100, "m": 30} for tr in range(10)}
    one_miss = {**good, 0: {"hidden_reference": 80, "m": 30}}  # 10 % < 15 %: kept
    bad = {tr: {"hidden_reference": 60 if tr < 2 else 100, "m": 30} for tr in range(10)}  # 20 %
    df = _ratings({"good": good, "one_miss": one_miss, "bad": bad})
    kept = mushra.post_screen(df)
    assert kept.attrs["dropped_listeners"] == ["bad"]
    assert set(kept["listener"]) == {"good", "one_miss"}
    assert mushra.post_screen(df, fraction=0.05).attrs["dropped_listeners"] == ["bad", "one_miss"]
    with pytest.raises(ValueError, match="no hidden reference"):
        mushra.post_screen(df[df["condition"] == "m"])


def test_simulated_ratings_and_boxplot():
    df = mushra.simulate_ratings([mushra.HIDDEN_REFERENCE, mushra.ANCHOR, "m"], n_listeners=4, n_trials=3)
    assert mushra.post_screen(df).attrs["dropped_listeners"] == ["sim03"]
    fig = plots.ratings_boxplot(df)
    assert [t.get_text() for t in fig.axes[0].get_xticklabels()][0] == mushra.HIDDEN_REFERENCE
    path = plots.save_figure(fig, "05_test_ratings")
    assert path.is_file()


def test_pick_methods_ranks_by_matched_si_sdr(tmp_path):
    refs = {"piano": _sine(440)}
    for key, value in (("a__soft__k2", 3.0), ("b__soft__k2", 9.0), ("c__hard__k2", -1.0)):
        rows = [{"instrument": "piano", "estimate": 0, "si_sdr_db": value, "si_sdri_db": 0.0, "sdr_db": 0.0}]
        examples.write_example(tmp_path, "t", RATE, refs["piano"], refs, key, [refs["piano"]], rows)
    assert mushra.pick_methods(tmp_path, n=2) == ["b__soft__k2", "a__soft__k2"]
    assert mushra.pick_methods(tmp_path, n=1, include=("c__hard__k2", "zz__soft__k9")) == [
        "c__hard__k2", "b__soft__k2"]
