"""All project paths in one place.

Environment overrides: ``MSS_DATA_DIR``, ``MSS_RUNS_DIR``, ``MSS_FIGURES_DIR``,
``MSS_RESULTS_DIR`` (tests point the last two at a temporary folder so a tiny
run never overwrites the committed report outputs).

``MSS_DATA_ROOT`` points the whole report at a user's data set (MUSDB18,
MUSDB18-HQ or any root in that layout). Every default folder then moves under
``reports/<root-name>_<preset>/`` (git-ignored; ``MSS_REPORTS_DIR`` moves
``reports/``): a run on a user's data never writes over the committed
``notebooks/*.ipynb``, ``figures/`` or ``results/``.
"""

from __future__ import annotations

import os
from pathlib import Path

PROJ_ROOT = Path(__file__).resolve().parents[1]


def _dir(env: str, default: Path) -> Path:
    value = os.environ.get(env)
    return Path(value).expanduser().resolve() if value else default


def user_root() -> Path | None:
    """The user's data root named by ``MSS_DATA_ROOT`` (None: the preset's embedded set)."""
    value = os.environ.get("MSS_DATA_ROOT", "").strip()
    return Path(value).expanduser().resolve() if value else None


def report_dir(root=None, preset: str | None = None) -> Path | None:
    """``reports/<root-name>_<preset>/``: where everything of a report on a user's root goes.

    None for the preset's own embedded set, whose report is the committed one.
    """
    root = Path(root).expanduser().resolve() if root else user_root()
    if root is None:
        return None
    preset = preset or os.environ.get("MSS_PRESET", "cpu")
    return _dir("MSS_REPORTS_DIR", PROJ_ROOT / "reports") / f"{root.name or 'root'}_{preset}"


def _default(name: str) -> Path:
    report = report_dir()
    return report / name if report is not None else PROJ_ROOT / name


def data_dir() -> Path:
    """Rendered data sets and caches (git-ignored)."""
    return _dir("MSS_DATA_DIR", _default("data"))


def runs_dir() -> Path:
    """Training runs: checkpoints, histories, configs (git-ignored)."""
    return _dir("MSS_RUNS_DIR", _default("runs"))


def figures_dir() -> Path:
    """Every figure of the report, written only through ``plots.save_figure``."""
    return _dir("MSS_FIGURES_DIR", _default("figures"))


def results_dir() -> Path:
    """Small committed tables (CSV / JSON / Markdown)."""
    return _dir("MSS_RESULTS_DIR", _default("results"))


def notebooks_out_dir() -> Path:
    """Where executed notebooks (``.ipynb`` with outputs) are written: ``notebooks/`` or the report's folder."""
    return _default("notebooks")


def html_dir() -> Path:
    """The self-contained HTML build of the executed notebooks."""
    return _default("html")


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
