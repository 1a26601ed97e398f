"""The data card and the side-by-side of the two render styles."""

from __future__ import annotations

import pandas as pd
import pytest

from mss_helpers import datacard, evaluate


def test_register_overlap_on_known_ranges():
    assert datacard.register_overlap([(60, 72), (60, 72)]) == pytest.approx(1.0)
    assert datacard.register_overlap([(40, 50), (60, 72)]) == pytest.approx(0.0)
    assert datacard.register_overlap([(60, 71), (66, 90)]) == pytest.approx(6 / 12)  # 66..71 of the narrower 12
    assert datacard.register_overlap([(60, 72), None]) is None


def test_the_card_of_the_tiny_set_says_it_is_realistic(tiny_root):
    from mss_helpers.datasets import load_tracks

    tracks = load_tracks(tiny_root, "train") + load_tracks(tiny_root, "test")
    inst = datacard.instrument_card(tracks)
    per_track = datacard.track_card(tracks, inst)
    card = datacard.card_summary(inst, per_track)
    assert set(inst["style"]) == {"realistic"} and len(per_track) == len(tracks)
    assert card["median_ild_iqr_db"] >= 3.0  # in a room, not dry point sources
    assert card["median_rt60_s"] > 0.1 and card["tracks_with_a_polyphonic_instrument"] > 0.5
    assert inst.texture.notna().all() and inst.polyphony.between(0, 1).all()


def _summary(rows):
    cols = ["method", "decoding", "k_label", "si_sdri_db", "si_sdr_db", "pairs"]
    df = pd.DataFrame(rows, columns=cols)
    return df.assign(k_median=[1.0 if m == "dbscan" else 3.0 for m in df.method])


def test_key_rows_pick_the_best_of_each_family_at_k_n():
    s = _summary([("mixture", "-", "n", 0.0, -4.0, 10), ("oracle_irm", "-", "n", 13.0, 9.0, 10),
                  ("kmeans", "soft", "n", -1.3, -4.8, 10), ("gmm", "hard", "n", -0.5, -4.0, 10),
                  ("kmeans", "soft", "2", 3.0, 1.0, 6),  # a fixed k is not a k = n row
                  ("dbscan", "soft", "auto", 0.1, -4.0, 3),  # one cluster found: the input, not a clustering
                  ("mixit", "feature-grouped", "n", 0.9, -3.6, 10), ("mixit", "oracle-grouped", "n", 2.8, 0.4, 8),
                  ("pan", "-", "n", 8.7, 4.0, 10)])
    k = evaluate.key_rows(s)
    assert k.loc["best latent-frame clustering", "from"] == "gmm/hard/k=n"
    assert k.loc["best MixIT grouping", "si_sdri_db"] == pytest.approx(0.9)  # the oracle grouping is not eligible
    assert "oracle frames (frame ceiling)" not in k.index  # not run: left out, not NaN
    side = evaluate.styles_side_by_side({"realistic": s.assign(si_sdri_db=s.si_sdri_db.where(s.method != "pan", -1.7)),
                                         "clean": s})
    findings = evaluate.style_findings(side, band_db=1.0)
    pan = next(f for f in findings if f.startswith("pan clustering"))
    assert pan.endswith("loses 10.4 dB on the realistic set")
    assert next(f for f in findings if f.startswith("oracle IRM")).endswith("holds on both")
