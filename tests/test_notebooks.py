"""Every numbered notebook runs top to bottom with the tiny preset.

As plain scripts under pytest, each ALONE: a reader may open any notebook first,
so each one gets fresh, empty runs/results/figures folders and must build (or
reuse) what it needs itself through the package's ``ensure_*`` functions. Only the
rendered tiny data set is shared (rendered once per session); notebook 01, whose
job is building it, gets an empty data folder too. Through a Jupyter kernel with
``make test-notebooks`` (``--run-notebooks``) they run in order and share the
session's folders. Also: the ``ensure_*`` functions reuse what is there and rebuild
what is stale, each committed ``.ipynb`` holds the same code as its ``.py`` pair,
and every figure the README or a notebook names exists in ``figures/``.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from mss_helpers.reproduce import numbered_notebooks

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = numbered_notebooks()


def _env(session_dirs, tmp_path):
    # Nothing of the caller's own set-up (weights folder, listener, ...) leaks in; the soundfont may.
    keep = ("MSS_SOUNDFONT", "MSS_DEBUG")
    env = {k: v for k, v in os.environ.items() if not k.startswith("MSS_") or k in keep}
    data, runs = session_dirs
    env.update(MSS_PRESET="tiny", MSS_DATA_DIR=str(data), MSS_RUNS_DIR=str(runs),
               MSS_FIGURES_DIR=str(tmp_path / "figures"), MSS_RESULTS_DIR=str(tmp_path / "results"),
               MPLBACKEND="Agg")
    return env


def test_notebooks_exist():
    names = [p.stem for p in NOTEBOOKS]
    assert names[:2] == ["01_prepare_data", "02_train_autoencoder"], names
    for p in NOTEBOOKS:
        assert re.fullmatch(r"\d\d_[a-z0-9]+(_[a-z0-9]+)+", p.stem), p.stem


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_runs_alone(notebook, session_dirs, tiny_root, tmp_path):
    data = tmp_path / "data" if notebook.stem.startswith("01_") else session_dirs[0]
    runs = tmp_path / "runs"
    proc = subprocess.run([sys.executable, str(notebook)], cwd=ROOT, env=_env((data, runs), tmp_path),
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, (f"{notebook.name} failed alone:\n"
                                  f"{proc.stdout[-3000:]}\n{proc.stderr[-6000:]}")
    # Its runs went to the fresh folder (the environment was honoured), not to the project's runs/.
    assert notebook.stem.startswith("01_") or any(runs.iterdir()), f"{notebook.name} wrote nothing to {runs}"


# --- what a notebook opened first builds: reuse what is there, rebuild what is missing or stale ---


def test_ensure_autoencoder_trains_resumes_or_reuses(tiny_cfg, tmp_path, monkeypatch):
    from mss_helpers import autoencoder

    monkeypatch.setenv("MSS_RUNS_DIR", str(tmp_path))
    calls = []
    monkeypatch.setattr(autoencoder, "train_autoencoder",
                        lambda cfg, **kw: calls.append(kw) or autoencoder.ae_run_dir(cfg))
    run = autoencoder.ae_run_dir(tiny_cfg)
    assert autoencoder.ensure_autoencoder(tiny_cfg) == run  # nothing there: from scratch
    run.mkdir(parents=True)
    (run / "last.pt").write_bytes(b"")
    autoencoder.ensure_autoencoder(tiny_cfg)  # interrupted (no done.json): resume
    (run / "done.json").write_text("{}")
    autoencoder.ensure_autoencoder(tiny_cfg)  # finished: train_autoencoder returns it untouched
    assert [c["resume"] for c in calls] == [False, True, False]


def test_ensure_kl_ablation_reuses_a_record_only_when_its_runs_are_here(tiny_cfg, tmp_path, monkeypatch):
    from mss_helpers import autoencoder

    monkeypatch.setenv("MSS_RUNS_DIR", str(tmp_path / "runs"))
    monkeypatch.setenv("MSS_RESULTS_DIR", str(tmp_path / "results"))
    rebuilt = {"rebuilt": True}
    monkeypatch.setattr(autoencoder, "kl_ablation", lambda cfg, **kw: rebuilt)
    wanted = {arm: autoencoder.ae_run_dir(c) for arm, c in autoencoder.kl_ablation_configs(tiny_cfg).items()}
    record = {"preset": "tiny", "arms": {arm: {"kl_weight": 0.0, "run_dir": f"/elsewhere/runs/{d.name}",
                                               "median": {"snr_db": 1.0}} for arm, d in wanted.items()}}
    path = tmp_path / "results" / "kl_ablation_tiny.json"
    path.parent.mkdir()
    path.write_text(json.dumps(record))
    # A record committed from another checkout whose runs are not here: both arms are rebuilt.
    assert autoencoder.ensure_kl_ablation(tiny_cfg) is rebuilt
    for d in wanted.values():
        d.mkdir(parents=True)
        (d / "done.json").write_text("{}")
    got = autoencoder.ensure_kl_ablation(tiny_cfg)
    assert got is not rebuilt and {arm: Path(a["run_dir"]) for arm, a in got["arms"].items()} == wanted
    # A record of an older preset (another config hash) is stale even where its runs exist.
    record["arms"]["kl"]["run_dir"] = str(wanted["kl"].with_name("ae_tiny_0123456789"))
    path.write_text(json.dumps(record))
    assert autoencoder.ensure_kl_ablation(tiny_cfg) is rebuilt


def test_ensure_examples_are_keyed_by_config_and_reused(tiny_cfg, tmp_path, monkeypatch):
    from mss_helpers import evaluate, examples

    monkeypatch.setenv("MSS_RUNS_DIR", str(tmp_path))
    out = evaluate.examples_dir(tiny_cfg)
    assert out.parent == tmp_path and out.name.startswith("examples_tiny_")
    assert evaluate.examples_dir(tiny_cfg.replace(cluster={"seed": 1})) != out
    (out / "some_track").mkdir(parents=True)
    (out / "some_track" / examples.INPUT_FILE).write_bytes(b"")
    monkeypatch.setattr(evaluate, "run_evaluation",
                        lambda *a, **k: pytest.fail("present examples were rebuilt"))
    assert evaluate.ensure_examples(tiny_cfg) == out


@pytest.mark.notebooks
@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_runs_in_kernel(notebook, session_dirs, tiny_root, tmp_path_factory):
    from mss_helpers.reproduce import execute_notebook

    out = tmp_path_factory.getbasetemp() / "kernel_outputs"
    env = _env(session_dirs, out)
    execute_notebook(notebook, out / "executed" / (notebook.stem + ".ipynb"), env=env)


def _code_cells(nb) -> list[str]:
    return [c.source.strip() for c in nb.cells if c.cell_type == "code" and c.source.strip()]


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_committed_ipynb_matches_its_py_pair(notebook):
    import jupytext
    import nbformat

    ipynb = notebook.with_suffix(".ipynb")
    if not ipynb.exists():
        pytest.skip(f"{ipynb.name} is written by `make reproduce`")
    assert ipynb.stat().st_size <= 5 * 2**20, f"{ipynb.name} is over 5 MB"
    assert _code_cells(jupytext.read(notebook)) == _code_cells(nbformat.read(ipynb, as_version=4)), (
        f"{ipynb.name} is out of date with {notebook.name}: rerun `make reproduce`")


def test_referenced_figures_exist():
    text = (ROOT / "README.md").read_text() if (ROOT / "README.md").exists() else ""
    for nb in NOTEBOOKS:
        text += nb.read_text()
    names = set(re.findall(r"figures/([\w\-]+\.png)", text))
    names |= {m + ".png" for m in re.findall(r"save_figure\([^,]+,\s*[\"']([\w\-]+)[\"']", text)}
    # Written only once real listening ratings exist (notebook 05 never plots made-up ratings), and only on a
    # user's root without instruments inside "other" (notebook 01's stem levels), under reports/.
    names -= {"05_listening_ratings.png", "01_stem_levels.png"}
    committed = {p.name for p in (ROOT / "figures").glob("*.png")}
    if not committed:
        pytest.skip("figures/ is written by `make reproduce`")
    missing = sorted(n for n in names if n not in committed)
    assert not missing, f"figures referenced but not in figures/: {missing}"
