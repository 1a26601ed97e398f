"""Listening examples on disk: write_example / read_examples round trip and the CLI wiring."""

import argparse
import json
import sys
import types

import numpy as np
import pytest

from mss_helpers import examples
from mss_helpers.errors import RunNotFoundError
from mss_helpers.audio import read_audio

RATE = 8000


def _sine(freq, n=RATE // 4, channels=1, amp=0.3):
    t = np.arange(n) / RATE
    return np.tile(amp * np.sin(2 * np.pi * freq * t), (channels, 1)).astype(np.float32)


def _write_track(root, track="song a", key="kmeans__soft__k3", channels=1):
    refs = {"piano": _sine(440, channels=channels), "flute": _sine(880, channels=channels)}
    mixture = refs["piano"] + refs["flute"]
    # estimate 2 is the flute, estimate 0 the piano, estimate 1 matches nothing
    estimates = [refs["piano"] * 0.9, _sine(100, channels=channels), refs["flute"]]
    rows = [{"instrument": "piano", "estimate": 0, "si_sdr_db": 12.5, "si_sdri_db": 14.0, "sdr_db": 11.0},
            {"instrument": "flute", "estimate": 2, "si_sdr_db": np.float32(30.0), "si_sdri_db": 31.0,
             "sdr_db": float("nan")}]
    out = examples.write_example(root, track, RATE, mixture, refs, key, estimates, rows)
    return out, mixture, refs, estimates


def test_method_key_round_trip():
    assert examples.method_key("nmf_kmeans", "soft", 3) == "nmf_kmeans__soft__k3"
    assert examples.parse_method_key("nmf_kmeans__soft__k3") == ("nmf_kmeans", "soft", 3)
    for bad in ("kmeans_soft_k3", "kmeans__soft__3", "a/b__soft__k3", ""):
        with pytest.raises(ValueError):
            examples.parse_method_key(bad)


@pytest.mark.parametrize("channels", [1, 2])
def test_write_read_round_trip(tmp_path, channels):
    method_dir, mixture, refs, estimates = _write_track(tmp_path, channels=channels)
    _write_track(tmp_path, key="gmm__hard__k3", channels=channels)  # a second method, same track
    assert method_dir == tmp_path / "song a" / "kmeans__soft__k3"
    assert examples.list_tracks(tmp_path) == ["song a"]

    index = examples.read_examples(tmp_path)
    ex = index["song a"]
    assert ex["rate"] == RATE
    assert sorted(ex["references"]) == ["flute", "piano"]
    assert sorted(ex["methods"]) == ["gmm__hard__k3", "kmeans__soft__k3"]
    m = ex["methods"]["kmeans__soft__k3"]
    assert (m["method"], m["decoding"], m["k"]) == ("kmeans", "soft", 3)
    assert [p.name for p in m["estimates"]] == ["estimate_0.wav", "estimate_1.wav", "estimate_2.wav"]

    # audio survives within 16-bit precision
    audio, rate = read_audio(ex["input"])
    assert rate == RATE and audio.shape == mixture.shape
    np.testing.assert_allclose(audio, mixture, atol=1e-4)
    est1, _ = read_audio(m["estimates"][1])
    np.testing.assert_allclose(est1, estimates[1], atol=1e-4)
    ref, _ = read_audio(ex["references"]["flute"])
    np.testing.assert_allclose(ref, refs["flute"], atol=1e-4)

    # metrics: matched instrument per estimate, "" where none, NaN stored as null
    entries = m["metrics"]["estimates"]
    assert [e["instrument"] for e in entries] == ["piano", "", "flute"]
    assert entries[0]["si_sdr_db"] == 12.5 and entries[2]["si_sdr_db"] == 30.0
    assert entries[1]["si_sdr_db"] is None and entries[2]["sdr_db"] is None
    json.loads((method_dir / "metrics.json").read_text())  # strict JSON (no NaN literal)

    path, entry = examples.matched_estimate(m, "flute")
    assert path.name == "estimate_2.wav" and entry["si_sdri_db"] == 31.0
    assert examples.matched_estimate(m, "cello") is None


def test_rewrite_with_fewer_estimates_leaves_no_stale_files(tmp_path):
    _write_track(tmp_path)
    refs = {"piano": _sine(440), "flute": _sine(880)}
    rows = [{"instrument": "piano", "estimate": 0, "si_sdr_db": 1.0, "si_sdri_db": 1.0, "sdr_db": 1.0},
            {"instrument": "flute", "estimate": None, "si_sdr_db": None, "si_sdri_db": None, "sdr_db": None}]
    examples.write_example(tmp_path, "song a", RATE, _sine(440), refs, "kmeans__soft__k3", [_sine(440)], rows)
    m = examples.read_examples(tmp_path)["song a"]["methods"]["kmeans__soft__k3"]
    assert [p.name for p in m["estimates"]] == ["estimate_0.wav"]
    assert not (tmp_path / "song a" / "kmeans__soft__k3" / "estimate_2.wav").exists()


def test_write_example_rejects_bad_input(tmp_path):
    refs = {"piano": _sine(440)}
    ok_row = {"instrument": "piano", "estimate": 0, "si_sdr_db": 1.0, "si_sdri_db": 1.0, "sdr_db": 1.0}
    with pytest.raises(ValueError, match="estimate 5"):
        examples.write_example(tmp_path, "t", RATE, _sine(440), refs, "kmeans__soft__k2", [_sine(1)],
                               [dict(ok_row, estimate=5)])
    with pytest.raises(ValueError, match="no instrument"):
        examples.write_example(tmp_path, "t", RATE, _sine(440), refs, "kmeans__soft__k2", [_sine(1)],
                               [dict(ok_row, instrument="cello")])
    with pytest.raises(ValueError, match="channels, samples"):
        examples.write_example(tmp_path, "t", RATE, _sine(440)[0], refs, "kmeans__soft__k2", [_sine(1)],
                               [ok_row])
    with pytest.raises(ValueError, match="two instruments"):
        examples.write_example(tmp_path, "t", RATE, _sine(440), {"piano": _sine(440), "flute": _sine(9)},
                               "kmeans__soft__k2", [_sine(1)], [ok_row, dict(ok_row, instrument="flute")])
    with pytest.raises(ValueError, match="folder"):
        examples.write_example(tmp_path, "../escape", RATE, _sine(440), refs, "kmeans__soft__k2",
                               [_sine(1)], [ok_row])
    assert not any(tmp_path.iterdir())  # nothing half-written by a rejected call


def test_read_examples_errors(tmp_path):
    with pytest.raises(RunNotFoundError, match="listen-export --out .*missing.*notebook 04"):
        examples.read_examples(tmp_path / "missing")
    with pytest.raises(ValueError, match="no listening examples"):
        examples.read_examples(tmp_path)
    method_dir, *_ = _write_track(tmp_path)
    (method_dir / "estimate_1.wav").unlink()
    with pytest.raises(ValueError, match="missing"):
        examples.read_examples(tmp_path)


def test_listen_export_calls_the_evaluation(tmp_path, monkeypatch):
    """The command lives in ``listen`` (above the evaluation it runs), not here: ``examples`` is below it."""
    from mss_helpers import listen

    calls = {}

    def run_evaluation(cfg, root=None, examples_dir=None, example_tracks=2, methods=None,
                       write_results=None, out_dir=None, **kw):
        calls.update(preset=cfg.name, root=root, example_tracks=example_tracks, methods=methods,
                     write_results=write_results, out_dir=out_dir)
        _write_track(examples_dir)

    fake = types.SimpleNamespace(run_evaluation=run_evaluation)
    monkeypatch.setitem(sys.modules, "mss_helpers.evaluate", fake)
    import mss_helpers

    monkeypatch.setattr(mss_helpers, "evaluate", sys.modules["mss_helpers.evaluate"], raising=False)
    parser = argparse.ArgumentParser()
    listen.add_listen_export_arguments(parser)
    args = parser.parse_args(["--out", str(tmp_path / "ex"), "--preset", "tiny", "--tracks", "1",
                              "--methods", "kmeans, gmm"])
    assert listen.run_listen_export(args) == 0
    # A subset of methods writes its own table, never results/separation_<preset>.*
    assert calls == {"preset": "tiny", "root": None, "example_tracks": 1, "methods": ["kmeans", "gmm"],
                     "write_results": False, "out_dir": tmp_path / "ex" / listen.EXPORT_TABLE_DIR}
    assert examples.list_tracks(tmp_path / "ex") == ["song a"]
