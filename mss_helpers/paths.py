"""All project paths in one place.

Environment overrides: ``MSS_DATA_DIR``, ``MSS_RUNS_DIR``, ``MSS_FIGURES_DIR``,
``MSS_RESULTS_DIR`` (tests point the last two at a temporary folder so a tiny
run never overwrites the committed report outputs).
"""

from __future__ import annotations

import os
from pathlib import Path

PROJ_ROOT = Path(__file__).resolve().parents[1]


def _dir(env: str, default: Path) -> Path:
    value = os.environ.get(env)
    return Path(value).expanduser().resolve() if value else default


def data_dir() -> Path:
    """Rendered data sets and caches (git-ignored)."""
    return _dir("MSS_DATA_DIR", PROJ_ROOT / "data")


def runs_dir() -> Path:
    """Training runs: checkpoints, histories, configs (git-ignored)."""
    return _dir("MSS_RUNS_DIR", PROJ_ROOT / "runs")


def figures_dir() -> Path:
    """Every figure of the report, written only through ``plots.save_figure``."""
    return _dir("MSS_FIGURES_DIR", PROJ_ROOT / "figures")


def results_dir() -> Path:
    """Small committed tables (CSV / JSON / Markdown)."""
    return _dir("MSS_RESULTS_DIR", PROJ_ROOT / "results")


# Module-level constants for reading convenience; functions above re-read the
# environment, which tests rely on.
DATA_DIR = data_dir()
RUNS_DIR = runs_dir()
FIGURES_DIR = figures_dir()
RESULTS_DIR = results_dir()


def atomic_write(path, write) -> Path:
    """Call ``write(tmp_path)`` and move the result onto ``path``: never a partial file.

    The temporary file sits in the same folder (so the rename is atomic) and keeps
    ``path``'s suffix, for writers that pick the format from it (soundfile).
    """
    import tempfile

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.", suffix=path.suffix)
    os.close(fd)
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    return path
