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
                                 progress=False, write_results=False)
    failed = df[df.method == "dbscan"]
    assert len(failed) and failed.note.str.contains("every frame is noise").all()
    assert failed.si_sdr_db.isna().all()
    written = {p.name for p in (tmp_path / "ex").glob("*/*") if p.is_dir()}
    assert not any(name.startswith("dbscan") for name in written)
