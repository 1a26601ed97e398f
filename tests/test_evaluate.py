"""The separation table on the tiny data set (ground truth) and on a root without it."""

import shutil

import numpy as np
import pandas as pd
import pytest

from mss_helpers import evaluate

METHODS = ["mixture", "oracle_irm", "oracle_frames", "nmf", "kmeans", "dbscan", "latent_nmf"]


def test_evaluation_table_on_the_tiny_set(tiny_cfg, tiny_root, tiny_run, tmp_path):
    from mss_helpers import datasets, paths

    out = tmp_path / "eval"
    df = evaluate.run_evaluation(tiny_cfg, root=tiny_root, run_dir=tiny_run, methods=METHODS, ks=[2, "n"],
                                 out_dir=out, examples_dir=tmp_path / "examples", example_tracks=1,
                                 progress=False)
    csv = pd.read_csv(out / "separation.csv", keep_default_na=True)
    assert set(evaluate.COLUMNS) <= set(csv.columns) and len(csv) == len(df)
    assert (out / "separation.json").is_file() and (out / "summary.md").is_file()
    tracks = datasets.load_tracks(tiny_root, "test")
    for t in tracks:
        for method in ("mixture", "oracle_irm", "oracle_frames"):
            got = set(df[(df.track == t.name) & (df.method == method)].instrument)
            assert got == set(t.instruments), (t.name, method)
        assert set(df[df.track == t.name].method) == set(METHODS)
    matched = df[(df.instrument != "") & df.estimate.notna()]
    mix = matched[matched.method == "mixture"]
    np.testing.assert_allclose(mix.si_sdri_db.astype(float), 0.0, atol=1e-9)
    irm = matched[matched.method == "oracle_irm"]
    assert irm.si_sdri_db.astype(float).median() > 5
    assert irm.sdr_db.notna().all()
    # Mixture-consistent methods: the sum of the estimates is the input.
    for method, decoding in [("oracle_irm", "-"), ("nmf", "-"), ("kmeans", "soft"), ("latent_nmf", "soft")]:
        mse = df[(df.method == method) & (df.decoding == decoding)].mixture_mse.astype(float)
        assert mse.max() < 1e-6, (method, decoding)
    assert set(df[df.method == "kmeans"].decoding) == {"hard", "soft"}
    assert (df[df.method == "dbscan"].k_label == "auto").all()
    ent = df[df.method == "kmeans"].assignment_entropy.astype(float)
    assert ent.between(0, np.log2(5) + 1e-9).all()
    summary = (out / "summary.md").read_text()
    for method in METHODS:
        assert f"| {method} |" in summary
    # the preset's own data: the committed-results copy is written too (into tmp here)
    assert (paths.results_dir() / f"separation_{tiny_cfg.name}.csv").is_file()
    assert any((tmp_path / "examples" / tracks[0].name).glob("kmeans__soft__k2/metrics.json"))


def test_evaluation_without_ground_truth_fills_only_unsupervised_columns(tiny_cfg, tiny_root, tiny_run,
                                                                         tmp_path):
    root = tmp_path / "musdb_like"
    shutil.copytree(tiny_root / "test", root / "test")  # no other_stems/: like real MUSDB18
    df = evaluate.run_evaluation(tiny_cfg, root=root, run_dir=tiny_run, methods=["mixture", "oracle_irm",
                                 "kmeans"], ks=[2], out_dir=tmp_path / "eval", progress=False)
    assert set(df.method) == {"mixture", "kmeans"}  # the oracle needs ground truth
    assert (df.instrument == "").all()
    assert df[list(evaluate.SCORES)].isna().all().all()
    assert df.mixture_mse.notna().all() and df.spectral_entropy.notna().all()


def test_bad_method_and_k_raise(tiny_cfg, tiny_root):
    with pytest.raises(ValueError, match="unknown methods"):
        evaluate.run_evaluation(tiny_cfg, root=tiny_root, methods=["nope"], progress=False)
    with pytest.raises(ValueError, match="positive integer"):
        evaluate.run_evaluation(tiny_cfg, root=tiny_root, methods=["mixture"], ks=[0], progress=False)


def test_a_failed_clustering_is_kept_in_the_table_and_skipped_in_examples(tiny_cfg, tiny_root, tiny_run,
                                                                          tmp_path, monkeypatch):
    from mss_helpers import cluster

    def all_noise(*args, **kwargs):
        raise cluster.ClusterError("every frame is noise (test)")

    monkeypatch.setattr(cluster, "cluster_frames", all_noise)
    df = evaluate.run_evaluation(tiny_cfg, root=tiny_root, run_dir=tiny_run, methods=["mixture", "dbscan"],
                                 out_dir=tmp_path / "out", examples_dir=tmp_path / "ex", example_tracks=1,
                                 progress=False, write_results=False, jobs=1)  # the patch lives in this process
    failed = df[df.method == "dbscan"]
    assert len(failed) and failed.note.str.contains("every frame is noise").all()
    assert failed.si_sdr_db.isna().all()
    written = {p.name for p in (tmp_path / "ex").glob("*/*") if p.is_dir()}
    assert not any(name.startswith("dbscan") for name in written)


def test_a_k_above_the_nmf_components_is_a_note_row_and_the_other_ks_are_scored(tiny_cfg, tiny_root, tmp_path):
    too_many = tiny_cfg.cluster.nmf_components + 1
    df = evaluate.run_evaluation(tiny_cfg, root=tiny_root, methods=["nmf"], ks=[2, too_many],
                                 out_dir=tmp_path / "out", progress=False, write_results=False, jobs=1)
    big, small = df[df.k_label == str(too_many)], df[df.k_label == "2"]
    instruments = small[small.instrument != ""].drop_duplicates(["track", "instrument"])
    assert len(big) == len(instruments) and set(big.track) == set(small.track) == set(df.track)  # all missed
    assert big.note.str.contains(f"nmf_components is {tiny_cfg.cluster.nmf_components}").all()
    assert big.si_sdr_db.isna().all() and (big.k == 0).all()
    assert (small.note.fillna("") == "").all() and small.si_sdr_db.notna().any()


def _meta(out):
    import json

    return json.loads((out / "separation.json").read_text())


KEYS = ["track", "method", "decoding", "k", "k_label", "instrument", "estimate", "note"]


def _same_rows(a, b, rtol=0.0, atol=1e-9):
    """Same rows in the same order: identical keys, numeric columns equal within a tolerance."""
    a, b = a.reset_index(drop=True), b.reset_index(drop=True)
    pd.testing.assert_frame_equal(a[KEYS].fillna(-1), b[KEYS].fillna(-1), check_dtype=False)
    for col in set(evaluate.COLUMNS) - set(KEYS):
        np.testing.assert_allclose(a[col].astype(float), b[col].astype(float), rtol=rtol, atol=atol,
                                   equal_nan=True, err_msg=col)


def test_parallel_evaluation_gives_the_serial_rows_in_the_same_order(tiny_cfg, tiny_root, tiny_run, tmp_path):
    kw = dict(root=tiny_root, run_dir=tiny_run, methods=["mixture", "oracle_irm", "nmf", "kmeans"], ks=[2],
              progress=False, write_results=False, resume=False)
    serial = evaluate.run_evaluation(tiny_cfg, out_dir=tmp_path / "serial", jobs=1, **kw)
    parallel = evaluate.run_evaluation(tiny_cfg, out_dir=tmp_path / "parallel", jobs=2, **kw)
    assert _meta(tmp_path / "parallel")["jobs"] == 2 and serial.track.nunique() == 2
    _same_rows(serial, parallel)  # one thread per track either way: the same numbers


def test_a_second_run_reuses_finished_tracks_and_a_changed_setting_does_not(tiny_cfg, tiny_root, tmp_path):
    out = tmp_path / "eval"
    kw = dict(root=tiny_root, methods=["mixture", "nmf"], out_dir=out, progress=False, write_results=False, jobs=1)
    first = evaluate.run_evaluation(tiny_cfg, ks=[2], **kw)
    assert _meta(out)["reused_tracks"] == 0 and len(list((out / "tracks").glob("*.json"))) == 2
    second = evaluate.run_evaluation(tiny_cfg, ks=[2], **kw)
    assert _meta(out)["reused_tracks"] == 2
    _same_rows(first, second)
    third = evaluate.run_evaluation(tiny_cfg, ks=[3], **kw)  # other settings: computed again
    assert _meta(out)["reused_tracks"] == 0 and set(third.k) == {2, 3}  # mixture: k = n


def _root_with_a_bad_track(tiny_root, tmp_path, how="nan", n_bad=1):
    import soundfile as sf

    root = tmp_path / "root"
    shutil.copytree(tiny_root, root, ignore=shutil.ignore_patterns("train"))
    bad = sorted(p for p in (root / "test").iterdir() if p.is_dir())[:n_bad]
    for track in bad:
        wav = track / ("mixture.wav" if how == "garbage mixture" else "other.wav")
        if how == "nan":
            x, rate = sf.read(wav, dtype="float32")
            x[100:200] = np.nan
            sf.write(wav, x, rate, subtype="FLOAT")
        else:
            wav.write_bytes(b"this is not audio")
    return root, [t.name for t in bad]


@pytest.mark.parametrize("how", ["nan", "garbage", "garbage mixture"])
def test_a_failing_track_is_reported_and_the_others_are_scored(tiny_cfg, tiny_root, tmp_path, how):
    root, bad = _root_with_a_bad_track(tiny_root, tmp_path, how)
    out = tmp_path / "eval"
    df = evaluate.run_evaluation(tiny_cfg, root=root, methods=["mixture", "nmf"], ks=[2], out_dir=out,
                                 progress=False, write_results=False, jobs=2)
    assert df.track.nunique() == 1 and bad[0] not in set(df.track)
    failed = _meta(out)["failed_tracks"]
    assert [f["track"] for f in failed] == bad and bad[0] in failed[0]["reason"]
    assert df.attrs["failed_tracks"] == failed
    assert f"{bad[0]}:" in (out / "summary.md").read_text()


def _cli(args, tmp_path):
    import os
    import subprocess
    import sys

    env = {**os.environ, "MSS_PRESET": "tiny", "MSS_RUNS_DIR": str(tmp_path / "runs")}
    return subprocess.run([sys.executable, "-m", "mss_helpers", "evaluate", *args], capture_output=True,
                          text=True, env=env, timeout=600)


def test_cli_keeps_a_k_above_the_nmf_components_as_a_note_without_a_traceback(tiny_root, tmp_path):
    proc = _cli(["--root", str(tiny_root), "--methods", "nmf", "--k", "30", "--out", str(tmp_path / "o")], tmp_path)
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr
    import pandas as pd

    df = pd.read_csv(tmp_path / "o" / "separation.csv")
    assert len(df) and df.note.str.contains("nmf_components").all()


def test_cli_warns_for_some_failed_tracks_and_errors_when_all_fail(tiny_root, tmp_path):
    root, bad = _root_with_a_bad_track(tiny_root, tmp_path / "some", "nan")
    proc = _cli(["--root", str(root), "--methods", "mixture", "--out", str(tmp_path / "o1")], tmp_path)
    assert proc.returncode == 0, proc.stderr
    warnings = [line for line in proc.stderr.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 1 and warnings[0].startswith(f"warning: 1 of 2 tracks failed: {bad[0]}: ")
    assert "Traceback" not in proc.stderr
    for how in ("garbage", "garbage mixture"):
        root, _ = _root_with_a_bad_track(tiny_root, tmp_path / how, how, n_bad=2)
        proc = _cli(["--root", str(root), "--methods", "mixture", "--out", str(tmp_path / "o2")], tmp_path)
        assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stderr
        lines = [line for line in proc.stderr.strip().splitlines() if not line.startswith("separate test:")]
        assert len(lines) == 1 and lines[0].startswith("error: every track of") and "failed" in lines[0]


def test_summary_of_a_csv_read_back_counts_unmatched_estimates_as_extra(tmp_path):
    """Three estimates for two instruments: 2 pairs and 1 extra, also after a round trip through CSV."""
    import pandas as pd

    rows = [{"track": "t", "method": "nmf", "decoding": "-", "k": 3, "k_label": "3", "instrument": inst,
             "estimate": j, "si_sdr_db": s, "si_sdri_db": s, "sdr_db": s, "note": ""}
            for inst, j, s in (("piano", 0, 1.0), ("organ", 1, 3.0), ("", 2, None))]
    df = pd.DataFrame(rows, columns=list(evaluate.COLUMNS))
    df.to_csv(tmp_path / "s.csv", index=False)
    back = pd.read_csv(tmp_path / "s.csv", keep_default_na=False, na_values=[""])
    for frame in (df, back):
        row = evaluate.summarize(frame).iloc[0]
        assert (row.pairs, row.extra, row.missed, row.si_sdr_db) == (2, 1, 0, 2.0)


def test_pan_rows_score_the_stereo_image_and_need_no_autoencoder(tiny_cfg, tiny_clean_root, tiny_root, tmp_path):
    """The pan method reads the stereo other.wav while the table stays mono; no model run is needed."""
    def pan_rows(root):
        df = evaluate.run_evaluation(tiny_cfg, root=root, methods=["mixture", "pan"], ks=[2, "n"],
                                     out_dir=tmp_path / root.name, write_results=False, progress=False)
        return df[df.method == "pan"]

    pan = pan_rows(tiny_clean_root)
    assert set(pan.k_label) == {"2", "n", "auto"}
    assert (pan.decoding == "-").all()
    assert pan.mixture_mse.astype(float).max() < 1e-6  # soft masks that sum to one: the parts re-sum
    n = pan[(pan.k_label == "n") & (pan.instrument != "")]
    # the clean render pans its instruments apart as dry point sources: clustering by position beats the input
    clean = n.si_sdri_db.astype(float).median()
    assert clean > 1.0
    # in the realistic render's rooms the same cue is spread over several dB: pan clustering loses most of it
    wet = pan_rows(tiny_root)
    wet = wet[(wet.k_label == "n") & (wet.instrument != "")].si_sdri_db.astype(float).median()
    assert wet < clean - 1.0


def test_pan_on_a_mono_set_is_a_clear_per_track_failure(tiny_cfg, tiny_root, tmp_path):
    import soundfile as sf

    root = tmp_path / "mono"
    shutil.copytree(tiny_root, root)
    for wav in root.glob("test/*/other.wav"):
        x, rate = sf.read(wav)
        sf.write(wav, x.mean(axis=1), rate)  # a mono file: read as stereo, its channels are the same
    from mss_helpers.errors import UserError

    with pytest.raises(UserError, match="other.*has no stereo image.*leave out the pan methods"):
        evaluate.run_evaluation(tiny_cfg, root=root, methods=["pan"], ks=["n"], out_dir=tmp_path / "eval",
                                write_results=False, progress=False)


def test_cli_evaluate_pan_student_untrained_is_one_line(tiny_root, tiny_run, tmp_path, capsys, monkeypatch):
    from mss_helpers import cli

    monkeypatch.setenv("MSS_RUNS_DIR", str(tmp_path / "runs"))  # no student there, whatever ran before

    code = cli.main(["evaluate", "--preset", "tiny", "--root", str(tiny_root), "--run", str(tiny_run),
                     "--methods", "mixture,pan_student", "--k", "n", "--out", str(tmp_path / "ev")])
    err = capsys.readouterr().err.strip()
    assert code == 1 and err.startswith("error: ") and "\n" not in err
    assert "python -m mss_helpers train-student --preset tiny" in err


def test_pan_student_rows_after_train_student(tiny_cfg, tiny_root, tiny_run, tmp_path, capsys):
    """`train-student` then `evaluate --methods pan_student`: grouped rows like MixIT's, from a mono student."""
    from mss_helpers import cli

    assert cli.main(["train-student", "--preset", "tiny", "--root", str(tiny_root)]) == 0
    assert "run: " in capsys.readouterr().out
    df = evaluate.run_evaluation(tiny_cfg, root=tiny_root, run_dir=tiny_run, methods=["pan_student"], ks=["n"],
                                 out_dir=tmp_path / "eval", write_results=False, progress=False)
    assert set(df.method) == {"pan_student"}
    assert {"ungrouped", "latent-grouped", "feature-grouped", "oracle-grouped"} <= set(df.decoding)
    assert (df[df.decoding == "ungrouped"].k_label == "5").all()  # the student's five outputs


def test_cli_with_chosen_methods_leaves_the_presets_results_copy_alone(tiny_cfg, tiny_root, tmp_path):
    """`evaluate --methods pan --out X` on the preset's own data must not replace results/separation_<preset>.*"""
    from mss_helpers import cli, paths

    copy = paths.results_dir() / f"separation_{tiny_cfg.name}.csv"
    before = copy.stat().st_mtime_ns if copy.is_file() else None
    assert cli.main(["evaluate", "--preset", "tiny", "--methods", "mixture,pan", "--k", "n",
                     "--out", str(tmp_path / "pan")]) == 0
    assert (tmp_path / "pan" / "summary.md").is_file()
    assert (copy.stat().st_mtime_ns if copy.is_file() else None) == before
