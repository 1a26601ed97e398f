"""Every numbered notebook runs top to bottom with the tiny preset.

As plain scripts under pytest (fast, always), and through a Jupyter kernel with
``make test-notebooks`` (``--run-notebooks``). Notebooks share the session's data
and runs folders, in numeric order, so later ones reuse earlier ones' runs.
Also: each committed ``.ipynb`` holds the same code as its ``.py`` pair, and every
figure the README or a notebook names exists in ``figures/``.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.py"))


def _env(session_dirs, tmp_path):
    env = dict(os.environ)
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
def test_notebook_runs_as_script(notebook, session_dirs, tiny_root, tmp_path_factory):
    out = tmp_path_factory.getbasetemp() / "notebook_outputs"
    proc = subprocess.run([sys.executable, str(notebook)], cwd=ROOT, env=_env(session_dirs, out),
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, f"{notebook.name} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-6000:]}"


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
    # Written only once real listening ratings exist (notebook 05 never plots made-up ratings).
    names -= {"05_listening_ratings.png"}
    committed = {p.name for p in (ROOT / "figures").glob("*.png")}
    if not committed:
        pytest.skip("figures/ is written by `make reproduce`")
    missing = sorted(n for n in names if n not in committed)
    assert not missing, f"figures referenced but not in figures/: {missing}"
