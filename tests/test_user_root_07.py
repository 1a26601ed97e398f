"""Notebook 07 on a root without instruments inside "other" (MUSDB18): MixIT's outputs grouped at
k = auto with no true count, and the sentences said from the label-free columns alone, on synthetic
outputs with known answers."""

import re

import numpy as np
import pandas as pd

from mss_helpers import cluster_metrics
from mss_helpers import separator_group as sg
from mss_helpers.config import get_config
from mss_helpers.evaluate_track import score_setting

RATE = 16000


def _notes(onsets, f0, seconds=3.0):
    """Decaying tones of frequency ``f0`` starting at ``onsets`` (seconds): ``(1, S)``."""
    t = np.arange(int(seconds * RATE)) / RATE
    y = np.zeros_like(t)
    for o in onsets:
        on = t >= o
        y[on] += np.sin(2 * np.pi * f0 * (t[on] - o)) * np.exp(-6 * (t[on] - o))
    return y[None].astype(np.float32)


def _two_instruments_over_four_outputs():
    """Instrument A (onsets a) split into a low and a high output, instrument B (onsets b) likewise."""
    a, b = [0.1, 0.9, 1.7, 2.3], [0.5, 1.3, 2.0, 2.6]
    return np.stack([_notes(a, 220), _notes(a, 1760), _notes(b, 330), _notes(b, 2640)])


def _same_partition(a, b) -> bool:
    return all((a[i] == a[j]) == (b[i] == b[j]) for i in range(len(a)) for j in range(len(a)))


def test_label_free_groups_are_the_evaluations_groupings_without_a_true_count():
    cfg = get_config("tiny").replace(separator={"k_range": (2, 3)})
    outputs = _two_instruments_over_four_outputs()
    auto = sg.label_free_groups(outputs, cfg)  # no vae: the latent grouping is left out
    assert set(auto) == {"feature-grouped", "envelope-grouped"}
    # the notes of one instrument start together: k = auto finds the two instruments
    assert _same_partition(auto["envelope-grouped"], np.array([0, 0, 1, 1]))
    # without instruments the evaluation asks for k = n too: it is skipped, never a k = 0
    settings = list(sg.mixit_settings(outputs.sum(0), {}, [2, "n"], cfg, None, outputs=outputs))
    assert {s["k_label"] for s in settings} == {"4", "2", "auto"}
    assert all(s["k"] >= 1 and s["decoding"] != "oracle-grouped" for s in settings)
    two = sg.label_free_groups(outputs, cfg, k=2)
    for s in settings:
        if s["k_label"] in ("2", "auto"):
            expected = (two if s["k_label"] == "2" else auto)[s["decoding"]]
            assert np.array_equal(s["groups"], expected), (s["decoding"], s["k_label"])


def test_findings_come_from_the_label_free_rows_and_say_no_nan():
    cfg = get_config("tiny").replace(separator={"k_range": (2, 3)})
    outputs = _two_instruments_over_four_outputs()
    x = outputs.sum(0)
    rows = []
    for track in ("track a", "track b"):
        for s in sg.mixit_settings(x, {}, [2, "n"], cfg, None, outputs=outputs):
            rows += [{**r, "track": track} for r in score_setting(x, {}, s, RATE)]
    rows.append({"track": "track a", "method": "pan", "decoding": "-", "k": 0, "k_label": "auto",
                 "instrument": "", "estimate": None, "energy_share": None, "mixture_mse": None,
                 "note": "failed"})  # a method that gave nothing: no sentence
    table = cluster_metrics.seed_table(pd.DataFrame(rows), methods=["mixit", "pan"])
    lines = sg.label_free_findings(table, n_outputs=4)
    assert len(lines) == 4  # ungrouped, envelope and feature at k = auto, the mixture MSE
    assert not any("nan" in line.lower() or "k = 0" in line for line in lines)
    ungrouped = next(line for line in lines if line.startswith("mixit ungrouped"))
    assert "all 4 outputs" in ungrouped
    envelope = next(line for line in lines if line.startswith("mixit envelope-grouped"))
    # two instruments of equal level, each over two outputs: 2 estimates, half the energy each
    assert "a median of 2 estimates" in envelope and "holding 50%" in envelope
    mse = [float(v) for v in re.findall(r"medians from (\S+) .* to (\S+) ", lines[-1])[0]]
    assert max(mse) < 1e-10  # the groups of mixture-consistent outputs sum to the input


def test_findings_of_a_hand_made_table():
    table = pd.DataFrame([
        {"method": "mixit", "decoding": "latent-grouped", "k_label": "auto", "k": 3.0, "mixture_mse": 2e-6,
         "top_share": 0.62, "energy_shares": "0.62 / 0.25 / 0.13"},
        {"method": "mixit", "decoding": "latent-grouped", "k_label": "2", "k": 2.0, "mixture_mse": 1e-6,
         "top_share": 0.7, "energy_shares": "0.70 / 0.30"},
        {"method": "pan", "decoding": "-", "k_label": "auto", "k": 2.5, "mixture_mse": 5e-3,
         "top_share": 0.8, "energy_shares": "0.80 / 0.20"},
        {"method": "nmf", "decoding": "-", "k_label": "auto", "k": None, "mixture_mse": None,
         "top_share": None, "energy_shares": ""}])
    lines = sg.label_free_findings(table, n_outputs=8)
    assert lines[0] == ("mixit latent-grouped: k = auto (silhouette) gives a median of 3 estimates per track, "
                        "the loudest holding 62% of the energy (median energy fraction by rank "
                        "0.62 / 0.25 / 0.13)")
    assert lines[1].startswith("pan: k = auto (silhouette) gives a median of 2.5 estimates")
    assert lines[2] == ("mixture MSE (the input against the sum of the estimates), medians from 1e-06 "
                        "(mixit latent-grouped, k = 2) to 0.005 (pan, k = auto)")
    assert len(lines) == 3
