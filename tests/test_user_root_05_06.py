"""Notebooks 05 and 06 on a root without instruments inside "other" (MUSDB18): the reference-free
listening test and the track browser without references, on synthetic examples with known answers."""

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("ipywidgets")

from mss_helpers import examples, listen, mushra  # noqa: E402

RATE = 8000


def _sine(freq, amp=0.3, n=RATE // 4):
    return (amp * np.sin(2 * np.pi * freq * np.arange(n) / RATE))[None].astype(np.float32)


@pytest.fixture
def open_root(tmp_path):
    """Two tracks, no references (as the evaluation writes them on MUSDB18).

    Estimates of kmeans__hard__k2 have amplitudes 0.1 and 0.3 (energy 10 % and 90 %);
    gmm__hard__k3 exists on track a only; agglomerative has k = 1, 2 and 3 (hard) and k = 2 (soft).
    """
    root = tmp_path / "examples"
    for track in ("track a", "track b"):
        mix = _sine(440) + _sine(880)
        keys = {"kmeans__hard__k2": [_sine(440, 0.1), _sine(880, 0.3)],
                "agglomerative__hard__k1": [mix], "agglomerative__hard__k3": [mix / 3] * 3,
                "agglomerative__hard__k2": [_sine(440), _sine(880)],
                "agglomerative__soft__k2": [_sine(440), _sine(880)],
                "dbscan__hard__k1": [mix]}
        if track == "track a":
            keys["gmm__hard__k3"] = [mix / 3] * 3
        for key, ests in keys.items():
            examples.write_example(root, track, RATE, mix, {}, key, ests, rows=[])
    return root


def test_open_trials_one_per_track_and_method(open_root):
    trials = mushra.build_open_trials(open_root, methods=["kmeans__hard__k2", "gmm__hard__k3"])
    # gmm was exported on track a only: three trials, not four
    assert sorted((t.track, len(t.conditions)) for t in trials) == [
        ("track a", 4), ("track a", 5), ("track b", 4)]
    t = next(t for t in trials if t.track == "track b")
    assert t.task == mushra.ISOLATE and t.instrument == ""
    assert t.reference == open_root / "track b" / "input.wav"
    assert [c.name for c in t.conditions] == [mushra.MIXTURE, mushra.ANCHOR,
                                              "kmeans__hard__k2:0", "kmeans__hard__k2:1"]
    assert t.conditions[0].path == t.reference and t.conditions[1].lowpass_hz == 3500.0
    assert t.conditions[3].path == open_root / "track b" / "kmeans__hard__k2" / "estimate_1.wav"
    assert len(mushra.build_open_trials(open_root, methods=["kmeans__hard__k2"], n_trials=1, seed=3)) == 1
    with pytest.raises(ValueError, match="none of the methods"):
        mushra.build_open_trials(open_root, methods=["nmf__-__k2"])
    with pytest.raises(ValueError, match="no .* pair"):  # the reference test needs references
        mushra.build_trials(open_root, methods=["kmeans__hard__k2"])


def test_open_methods_are_the_seeds_three_at_their_smallest_k_above_one(open_root):
    assert mushra.pick_open_methods(open_root) == ["kmeans__hard__k2", "agglomerative__hard__k2",
                                                   "dbscan__hard__k1"]
    assert mushra.pick_open_methods(open_root, families=("agglomerative",), decoding="soft") == [
        "agglomerative__soft__k2"]
    # gmm is not on every track, so it cannot be picked
    with pytest.raises(ValueError, match="present on every track"):
        mushra.pick_open_methods(open_root, families=("gmm", "nmf"))


def test_open_form_hides_the_method_and_stores_estimate_conditions(open_root, tmp_path):
    trials = mushra.build_open_trials(open_root, methods=["kmeans__hard__k2", "dbscan__hard__k1"])
    csv = tmp_path / "ratings.csv"
    test = listen.MushraTest(trials, csv, listener_id="ana", seed=1)
    text = " ".join(test.visible_text())
    assert "isolates one instrument" in text and test.current_trial.track in text
    for hidden in ("kmeans", "dbscan", mushra.MIXTURE, mushra.ANCHOR):
        assert hidden not in text
    key = test.answer_key()
    test.set_ratings({lab: 5.0 if cond == mushra.MIXTURE else 60.0 for lab, cond in key.items()})
    rows = test.save_and_next()
    assert {r["condition"] for r in rows} == set(key.values()) and {r["instrument"] for r in rows} == {""}
    back = mushra.read_ratings(csv)
    assert len(back) == len(key) and set(back["instrument"].fillna("")) == {""}


def test_open_screening_and_per_method_ratings():
    rows = []
    for listener, hidden_input in (("careful", 0.0), ("careless", 70.0)):
        for trial in range(4):
            for cond, rating in ((mushra.MIXTURE, hidden_input), (mushra.ANCHOR, 10.0),
                                 ("kmeans__hard__k2:0", 40.0), ("kmeans__hard__k2:1", 60.0 + trial)):
                rows.append({"listener": listener, "session": "s", "trial": trial, "track": "t",
                             "instrument": "", "condition": cond, "rating": rating, "timestamp": ""})
    df = pd.DataFrame(rows, columns=list(mushra.COLUMNS))
    screened = mushra.post_screen_open(df)
    assert screened.attrs["dropped_listeners"] == ["careless"]
    assert mushra.post_screen_open(df, threshold=80.0).attrs["dropped_listeners"] == []
    with pytest.raises(ValueError, match="hidden reference"):  # the reference rule does not apply here
        mushra.post_screen(df)
    merged = mushra.per_method(screened)
    assert merged.attrs["dropped_listeners"] == ["careless"]
    km = merged[merged["condition"] == "kmeans__hard__k2"].sort_values("trial")
    assert km["rating"].tolist() == [50.0, 50.5, 51.0, 51.5]  # mean of 40 and 60 + trial
    summary = mushra.summarize_ratings(merged)
    assert list(summary.index) == ["kmeans__hard__k2", mushra.ANCHOR, mushra.MIXTURE]
    assert summary.loc["kmeans__hard__k2", "n"] == 4


def test_simulated_open_ratings_screen_out_only_the_careless_listener():
    conditions = [mushra.MIXTURE, mushra.ANCHOR, "kmeans__hard__k2:0", "kmeans__hard__k2:1",
                  "dbscan__hard__k1:0"]
    df = mushra.simulate_ratings(conditions, n_listeners=6, careless=1, seed=0)
    screened = mushra.post_screen_open(df)
    assert screened.attrs["dropped_listeners"] == ["sim05"]
    summary = mushra.summarize_ratings(mushra.per_method(screened))
    assert set(summary.index) == {mushra.MIXTURE, mushra.ANCHOR, "kmeans__hard__k2", "dbscan__hard__k1"}
    assert summary.loc[mushra.MIXTURE, "median"] < 10 < summary.loc[mushra.ANCHOR, "median"]
    assert np.isfinite(summary.to_numpy(dtype=float)).all()


def test_browser_without_references_shows_energy_shares(open_root):
    b = listen.TrackBrowser(open_root)
    b.select(track="track b", method="kmeans", decoding="hard", k=2)
    labels = [label for label, _ in b.current_players()]
    assert labels == ["input (other stem)", "estimate 0 (10 % of the energy)",
                      "estimate 1 (90 % of the energy)"]
    assert "no references" in b._status.value


def test_browser_without_references_names_silent_estimates_plainly(tmp_path):
    silent = np.zeros((1, RATE // 4), np.float32)
    examples.write_example(tmp_path, "t", RATE, _sine(440), {}, "kmeans__hard__k2", [silent, silent], rows=[])
    labels = [label for label, _ in listen.TrackBrowser(tmp_path).current_players()]
    assert labels == ["input (other stem)", "estimate 0", "estimate 1"]
    assert not any("nan" in label for label in labels)
