"""verify: a reproduction's numbers against the committed report's, within the declared tolerances."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from mss_helpers import cli, verify

SEPARATION_CSV = """track,method,decoding,k,k_label,instrument,estimate,si_sdr_db,si_sdri_db,sdr_db,note
t1,mixture,-,2,n,piano,0,-3.0000,0.0000,-3.1000,
t1,mixture,-,2,n,guitar,1,-2.0000,0.0000,-2.1000,
t1,kmeans,soft,2,n,piano,0,1.5000,4.5000,1.0000,
"""
SUMMARY_MD = """# Separation

| method | decoding | k_label | si_sdr_db | si_sdri_db | pairs | missed |
|---|---|---|---|---|---|---|
| mixture | - | n | -2.50 | 0.00 | 2 | 0 |
| kmeans | soft | n | 1.50 | 4.50 | 1 | 1 |
"""
AUTOENCODER = {"preset": "cpu", "commit": "abc", "run_dir": "/somewhere",
               "median": {"snr_db": 13.77, "mse": 0.0004},
               "per_track": [{"track": "t1", "snr_db": 12.6, "mse": 0.0003}]}
REPRODUCE = {"preset": "cpu", "seconds": {"data": 30.0}, "total_seconds": 1500.0}


def write_results(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "separation_cpu.csv").write_text(SEPARATION_CSV)
    (folder / "separation_cpu.md").write_text(SUMMARY_MD)
    (folder / "autoencoder_cpu.json").write_text(json.dumps(AUTOENCODER))
    (folder / "reproduce_cpu.json").write_text(json.dumps(REPRODUCE))
    return folder


def bad(rows):
    return [(r["file"], r["row"], r["metric"], r["verdict"]) for r in rows if r["verdict"] in ("OUT OF BAND", "MISSING")]


@pytest.fixture
def committed(tmp_path):
    return write_results(tmp_path / "committed")


def test_identical_results_agree(committed, tmp_path):
    reproduced = write_results(tmp_path / "reproduced")
    rows = verify.verify(reproduced, str(committed))
    assert bad(rows) == [] and len(rows) > 10
    assert verify.summary_line(rows).startswith("verify: agrees")


def test_timings_are_never_compared(committed, tmp_path):
    reproduced = write_results(tmp_path / "reproduced")
    (reproduced / "reproduce_cpu.json").write_text(json.dumps({**REPRODUCE, "total_seconds": 9999.0}))
    rows = verify.verify(reproduced, str(committed))
    assert bad(rows) == []
    assert {r["verdict"] for r in rows if r["file"] == "reproduce_cpu.json"} == {"not compared"}


def test_a_data_row_moved_past_0_01_db_fails_and_is_named(committed, tmp_path):
    reproduced = write_results(tmp_path / "reproduced")
    (reproduced / "separation_cpu.csv").write_text(SEPARATION_CSV.replace("-3.1000", "-3.1300"))
    rows = verify.verify(reproduced, str(committed))
    assert bad(rows) == [("separation_cpu.csv", "t1 mixture - n piano 0 2", "sdr_db", "OUT OF BAND")]
    assert "-3.1" in verify.format_table(rows) and "FAILED" in verify.summary_line(rows)


def test_a_trained_median_moves_within_its_band_but_not_past_it(committed, tmp_path):
    reproduced = write_results(tmp_path / "reproduced")
    inside = AUTOENCODER["median"]["snr_db"] + 0.8 * verify.BAND_DB
    (reproduced / "autoencoder_cpu.json").write_text(json.dumps({**AUTOENCODER, "median": {
        **AUTOENCODER["median"], "snr_db": inside}}))
    assert bad(verify.verify(reproduced, str(committed))) == []
    outside = AUTOENCODER["median"]["snr_db"] - 1.2 * verify.BAND_DB
    (reproduced / "autoencoder_cpu.json").write_text(json.dumps({**AUTOENCODER, "median": {
        **AUTOENCODER["median"], "snr_db": outside}}))
    assert bad(verify.verify(reproduced, str(committed))) == [("autoencoder_cpu.json", "median", "snr_db",
                                                                "OUT OF BAND")]
    # the summary table's kmeans median is a trained row: the same band
    (reproduced / "autoencoder_cpu.json").write_text(json.dumps(AUTOENCODER))
    moved = f"| 1.50 | {4.50 + verify.BAND_DB + 0.5:.2f} |"  # half a dB past the band
    (reproduced / "separation_cpu.md").write_text(SUMMARY_MD.replace("| 1.50 | 4.50 |", moved))
    assert bad(verify.verify(reproduced, str(committed))) == [("separation_cpu.md", "kmeans soft n", "si_sdri_db",
                                                                "OUT OF BAND")]


def test_a_missing_row_or_file_fails(committed, tmp_path):
    reproduced = write_results(tmp_path / "reproduced")
    (reproduced / "separation_cpu.md").write_text("\n".join(
        ln for ln in SUMMARY_MD.splitlines() if not ln.startswith("| kmeans")))
    missing = bad(verify.verify(reproduced, str(committed)))
    assert missing and {m[1] for m in missing} == {"kmeans soft n"} and {m[3] for m in missing} == {"MISSING"}
    (reproduced / "autoencoder_cpu.json").unlink()
    assert ("autoencoder_cpu.json", "(whole file)", "", "MISSING") in bad(verify.verify(reproduced, str(committed)))


def test_the_command_exits_1_naming_the_number_and_0_when_it_agrees(committed, tmp_path, capsys):
    reproduced = write_results(tmp_path / "reproduced")
    assert cli.main(["verify", "--results", str(reproduced), "--against", str(committed)]) == 0
    assert capsys.readouterr().out.strip().startswith("verify: agrees")
    (reproduced / "separation_cpu.csv").write_text(SEPARATION_CSV.replace("-2.0000", "-1.0000"))
    assert cli.main(["verify", "--results", str(reproduced), "--against", str(committed)]) == 1
    out = capsys.readouterr().out
    assert "t1 mixture - n guitar 1 2 | si_sdr_db | -2 | -1 | 1 | +-0.01 | OUT OF BAND" in out


def test_a_bad_reference_is_one_error_line(tmp_path, capsys):
    assert cli.main(["verify", "--results", str(tmp_path / "nope")]) == 1
    assert capsys.readouterr().err.startswith("error: results folder")
    write_results(tmp_path / "r")
    assert cli.main(["verify", "--results", str(tmp_path / "r"), "--against", "no-such-commit"]) == 1
    assert "not a commit of this checkout" in capsys.readouterr().err


def test_the_committed_report_agrees_with_itself():
    """The Done-when check: `verify` on the committed checkout (results/ against HEAD)."""
    root = Path(__file__).resolve().parents[1]
    if not (root / "results").is_dir():
        pytest.skip("no results/ in this checkout")
    import subprocess

    changed = subprocess.run(["git", "status", "--porcelain", "--", "results"], cwd=root, capture_output=True,
                             text=True).stdout.strip()
    if changed:
        pytest.skip("results/ differs from HEAD here (a reproduction not yet committed)")
    rows = verify.verify(root / "results", "HEAD")
    assert bad(rows) == [] and len(rows) > 1000


def test_a_copy_of_the_committed_results_with_one_number_moved_fails_naming_it(tmp_path):
    root = Path(__file__).resolve().parents[1]
    source = root / "results" / "autoencoder_cpu.json"
    if not source.is_file():
        pytest.skip("no committed autoencoder result")
    copy = tmp_path / "results"
    shutil.copytree(root / "results", copy)
    data = json.loads(source.read_text())
    data["median"]["snr_db"] += 2 * verify.BAND_DB
    (copy / "autoencoder_cpu.json").write_text(json.dumps(data))
    failing = bad(verify.verify(copy, str(root / "results")))
    assert failing == [("autoencoder_cpu.json", "median", "snr_db", "OUT OF BAND")]


def test_gap_sentences_know_the_band():
    assert "within the reproduction spread" in verify.gap_sentence("a", 1.13, "b", 0.91, band_db=1.0)
    beyond = verify.gap_sentence("a", 0.5, "b", 3.0, band_db=1.0)
    assert beyond.startswith("b (+3.00 dB) beats a (+0.50 dB) by 2.50 dB")


def test_units_and_kinds():
    assert verify.unit_of("si_sdri_db") == "db" and verify.unit_of("SDR") == "db"
    assert verify.unit_of("pairs") == "count" and verify.unit_of("cosine") == "value"
    assert verify.kind_of("separation_cpu.csv", "x | si_sdr_db", "nmf") == "data"
    assert verify.kind_of("separation_cpu.csv", "x | si_sdr_db", "mixit") == "trained"
    assert verify.kind_of("reproduce_cpu.json", "seconds.data", None) == "timing"
    assert verify.kind_of("unmix_cpu.json", "median.unmix.SDR", None) == "trained"
    assert verify.kind_of("unmix_cpu.json", "median.oracle_irm.SDR", None) == "data"
