"""VAE-BSS and deep clustering as rows of the evaluation's method table, scored like every other row."""

from __future__ import annotations

import numpy as np
import pytest

from mss_helpers import evaluate
from mss_helpers.errors import RunNotFoundError


@pytest.fixture(scope="module")
def trained_refs(tiny_cfg, tiny_root):
    from mss_helpers.deep_clustering import ensure_deep_clustering
    from mss_helpers.vaebss import ensure_vaebss

    return ensure_vaebss(tiny_cfg, root=tiny_root, progress=False), \
        ensure_deep_clustering(tiny_cfg, root=tiny_root, progress=False)


def test_untrained_reference_names_its_command(tiny_cfg, tiny_root, tmp_path, monkeypatch):
    monkeypatch.setenv("MSS_RUNS_DIR", str(tmp_path / "runs"))
    for method, command in (("vaebss", "train-vaebss"), ("deep_clustering", "train-deepclustering")):
        with pytest.raises(RunNotFoundError, match=command):
            evaluate.run_evaluation(tiny_cfg, root=tiny_root, methods=["mixture", method], ks=["n"],
                                    out_dir=tmp_path / "ev", write_results=False, progress=False)


def test_both_references_are_rows_of_the_table(tiny_cfg, tiny_root, trained_refs, tmp_path):
    df = evaluate.run_evaluation(tiny_cfg, root=tiny_root, methods=["mixture", "vaebss", "deep_clustering"],
                                 ks=[2, "n"], out_dir=tmp_path / "ev", write_results=False, progress=False)
    K = tiny_cfg.vaebss.n_sources
    v = df[df.method == "vaebss"]
    assert set(v.decoding) == {"ungrouped", "grouped"}
    assert set(v[v.decoding == "ungrouped"].k_label.astype(str)) == {str(K)}
    assert {"2", "n", "auto"} <= set(v[v.decoding == "grouped"].k_label.astype(str))
    d = df[df.method == "deep_clustering"]
    assert {"2", "n", "auto"} <= set(d.k_label.astype(str)) and set(d.decoding) == {"hard", "soft"}
    matched = df[df.method.isin(["vaebss", "deep_clustering"]) & df.si_sdr_db.notna()]
    assert len(matched) and np.isfinite(matched.si_sdri_db).all()
    # mixture-consistent: every setting's estimates sum to the input (mixture MSE ~ 0)
    mse = df[df.method.isin(["vaebss", "deep_clustering"])].mixture_mse.dropna()
    assert len(mse) and float(mse.max()) < 1e-6
    summary = evaluate.summarize(df)
    assert {"vaebss", "deep_clustering"} <= set(summary.method)
