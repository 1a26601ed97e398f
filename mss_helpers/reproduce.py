"""One-command reproduction: data, training, every notebook, figures, results, HTML.

``python -m mss_helpers reproduce --preset cpu`` (what ``make reproduce`` runs):

1. builds the embedded data set (reused when complete);
2. executes every numbered notebook in order from a clean kernel (nbclient),
   writing the paired ``.ipynb`` with outputs next to its ``.py``. The notebooks
   train and evaluate through the package, whose runs are cached by config hash,
   so unchanged steps are reused; ``--force`` deletes the preset's runs and data
   first and redoes everything;
3. records timings, the commit, the machine (CPU model, cores, torch threads
   and a fixed CPU score) and the runs the safety net capped in
   ``results/reproduce_<preset>.json``, and rewrites the results block of
   README.md from the files in ``results/``;
4. compares every number in ``results/`` with the committed report
   (:mod:`mss_helpers.verify`) and prints the one-line verdict.

A failing cell stops the command and prints the cell and its error. A run
stopped by its wall-clock safety net makes the command exit non-zero naming
it; ``--resume`` continues such runs to the end of their steps.

``--root PATH`` (``make reproduce DATA=PATH``) runs the same report on a user's
data set (MUSDB18, MUSDB18-HQ or any root in that layout; ``--split-scheme``
chooses its split). Everything it writes (executed notebooks, figures, results,
runs, caches, HTML) goes under ``reports/<root-name>_<preset>/``; the committed
report and README are not touched, and nothing is compared with them.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import time
from pathlib import Path

from . import paths
from .config import get_config, git_commit
from .datasets import detect_format, estimates_root, load_tracks, resolve_split_scheme
from .errors import UserError
from .provenance import capped_runs, machine_record, report_runs

# the README block and the HTML build; their names stay importable from here
from .report_pages import (  # noqa: F401
    export_html,
    headline_table,
    index_page,
    numbered_notebooks,
    results_markdown,
    styles_markdown,
    timing_markdown,
    update_readme,
)


class NotebookError(RuntimeError):
    """A notebook cell failed; the message names the notebook, the cell and the error."""


class CappedRunError(UserError):
    """A run of the report stopped at its wall-clock safety net before its last step."""


def execute_notebook(py_path, ipynb_path=None, env: dict | None = None, timeout: int = 3600) -> Path:
    """Execute a jupytext ``.py`` notebook in a fresh kernel and write the ``.ipynb`` with outputs."""
    import jupytext
    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError

    py_path = Path(py_path)
    ipynb_path = Path(ipynb_path) if ipynb_path else py_path.with_suffix(".ipynb")
    nb = jupytext.read(py_path)
    nb.metadata["jupytext"] = {"formats": "ipynb,py:percent"}
    nb.metadata.setdefault("kernelspec", {"display_name": "Python 3", "language": "python", "name": "python3"})
    client = NotebookClient(nb, timeout=timeout, kernel_name="python3",
                            resources={"metadata": {"path": str(py_path.parent)}})
    kernel_env = dict(os.environ if env is None else env)
    kernel_env.setdefault("MPLBACKEND", "module://matplotlib_inline.backend_inline")
    try:
        client.execute(env=kernel_env)
    except CellExecutionError as exc:
        failed = next((c for c in nb.cells if c.cell_type == "code" and any(
            o.get("output_type") == "error" for o in c.get("outputs", []))), None)
        source = failed.source if failed is not None else "?"
        raise NotebookError(f"{py_path.name}: a cell failed\n--- cell ---\n{source}\n--- error ---\n{exc}") from None
    return paths.atomic_write(ipynb_path, lambda tmp: nbformat.write(nb, tmp))


def _forget_preset(cfg) -> None:
    """Delete the preset's runs, examples and data set (``--force``)."""
    runs = paths.runs_dir()
    if runs.is_dir():
        for p in runs.iterdir():
            if _is_preset_run(p.name, cfg.name):
                shutil.rmtree(p) if p.is_dir() else p.unlink()
    for data in _preset_roots(cfg):
        if not cfg.data.root and data.is_dir():
            shutil.rmtree(data)
    estimates = estimates_root(cfg)  # Open-Unmix estimates of "other", cached beside the data
    if estimates.is_dir():
        shutil.rmtree(estimates)


def _preset_state(cfg) -> dict:
    """What of the preset exists already: the data set and its training runs."""
    runs = paths.runs_dir()
    cached = sorted(p.name for p in runs.iterdir() if _is_preset_run(p.name, cfg.name)) if runs.is_dir() else []
    # a user's root is never built by the report: only its caches count
    built = [] if cfg.data.root else _preset_roots(cfg)
    return {"data_existed": any(r.is_dir() for r in built) or estimates_root(cfg).is_dir(),
            "runs_existed": cached}


def _preset_roots(cfg) -> list[Path]:
    """The preset's data set and the clean render the notebooks compare it with."""
    return [cfg.data.resolved_root(), cfg.replace(data={"style": "clean"}).data.resolved_root()]


def _is_preset_run(name: str, preset: str) -> bool:
    return f"_{preset}_" in name or name.endswith(f"_{preset}")


def use_root(root, split_scheme: str | None = None, preset: str | None = None) -> Path:
    """Point this process (and the notebooks' kernels it starts) at a user's data root.

    Checks the root's layout, the split scheme and that every song can be read first (one-line
    errors naming the file), then sets
    ``MSS_DATA_ROOT`` (and ``MSS_SPLIT_SCHEME``): every default folder moves under
    ``reports/<root-name>_<preset>/``. Returns that folder.
    """
    root = Path(root).expanduser().resolve()
    detect_format(root)
    scheme = resolve_split_scheme(root, split_scheme)
    for split in ("train", "test"):  # a song that cannot be decoded is named now, not in a notebook's cell
        load_tracks(root, split, split_scheme=scheme)
    os.environ["MSS_DATA_ROOT"] = str(root)
    os.environ["MSS_SPLIT_SCHEME"] = scheme
    if preset:
        os.environ["MSS_PRESET"] = preset
    return paths.report_dir(root)


def reproduce(preset: str = "cpu", force: bool = False, only: list[str] | None = None,
              started: float | None = None, installed: bool = False, resume: bool = False,
              root=None, split_scheme: str | None = None) -> dict:
    """Run the whole report for ``preset``; returns the timings record.

    ``started`` is the UNIX time the caller began (``make reproduce`` passes the
    time before its install step), so the record's total includes the install;
    the difference is recorded as the ``setup`` step; ``installed`` says whether that step
    really installed the environment (``make`` passes it when its stamp was new). ``from_nothing`` is true
    when neither the preset's data set nor any of its runs existed when the
    command started (after ``--force`` deleted them): every number then comes
    from this one run. ``resume`` continues the runs a safety net capped (their
    checkpoints), so that they end with all their steps. ``capped_runs`` lists
    the runs that are still capped at the end.
    """
    from .datasets import ensure_dataset
    from .train import finished_run

    if root is not None:
        use_root(root, split_scheme, preset)
    user_root = paths.user_root()
    cfg = get_config(preset)
    t_cmd = time.time()
    commit, dirty = git_commit(), _git_dirty()  # the code this run starts from (a later commit did not run)
    if force:
        _forget_preset(cfg)
    if resume:
        for run_dir in report_runs(cfg):
            finished_run(run_dir, resume=True)  # a capped run loses its done.json; the notebooks resume it
    state = _preset_state(cfg)
    timings: dict[str, float] = {}
    if started is not None:
        timings["setup"] = round(max(0.0, t_cmd - started), 1)
    t0 = time.time()
    ensure_dataset(cfg)
    timings["data"] = round(time.time() - t0, 1)
    env = dict(os.environ, MSS_PRESET=preset)
    for nb in numbered_notebooks():
        if only and not any(nb.stem.startswith(o) for o in only):
            continue
        print(f"[reproduce] {nb.name} ...", flush=True)
        t = time.time()
        execute_notebook(nb, paths.notebooks_out_dir() / f"{nb.stem}.ipynb", env=env)
        timings[nb.stem] = round(time.time() - t, 1)
        print(f"[reproduce] {nb.name} done in {timings[nb.stem]:.0f} s", flush=True)
    begin = started if started is not None else t_cmd
    end, end_commit = time.time(), git_commit()  # a commit made during the run did not produce it
    record = {"preset": preset, "commit": commit, "dirty": dirty,
              "commit_at_end": end_commit if end_commit != commit else None,
              "installed": bool(installed),
              "started": time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(begin)),
              "finished": time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(end)), "timezone": "UTC",
              "from_nothing": not state["data_existed"] and not state["runs_existed"],
              "forced": force, "reused_runs": state["runs_existed"], "cpu_count": os.cpu_count(),
              "machine": machine_record(), "capped_runs": capped_runs(cfg),
              "seconds": timings, "total_seconds": round(end - begin, 1)}
    if user_root is not None:
        record.update(data_root=str(user_root), split_scheme=os.environ.get("MSS_SPLIT_SCHEME"),
                      report_dir=str(paths.report_dir()))
    out = paths.results_dir()
    out.mkdir(parents=True, exist_ok=True)
    if not only:
        paths.atomic_write(out / f"reproduce_{preset}.json",
                           lambda tmp: Path(tmp).write_text(json.dumps(record, indent=1)))
        if user_root is None:  # the README shows the committed report only
            update_readme(preset)
    return record


def _git_dirty() -> bool | None:
    """True when tracked files differ from the commit (outputs then belong to uncommitted code)."""
    import subprocess

    try:
        out = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no", "--", "mss_helpers",
                              "notebooks/*.py", "requirements.txt", "requirements-nodeps.txt"],
                             cwd=paths.PROJ_ROOT, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return bool(out.stdout.strip()) if out.returncode == 0 else None


# --- CLI ----------------------------------------------------------------------------------------


def add_arguments(parser) -> None:
    parser.add_argument("--preset", default=os.environ.get("MSS_PRESET", "cpu"))
    parser.add_argument("--force", action="store_true", help="delete the preset's runs and data first")
    parser.add_argument("--resume", action="store_true",
                        help="continue the runs that a wall-clock safety net stopped, to the end of their steps")
    parser.add_argument("--only", nargs="*", help="run only notebooks whose names start with these (e.g. 03)")
    parser.add_argument("--html", action="store_true", help="also export HTML afterwards")
    parser.add_argument("--installed", action="store_true", help="the set-up step before it installed the venv")
    parser.add_argument("--started", type=float, default=None,
                        help="UNIX time the whole job began (make passes the time before its install step)")
    add_root_arguments(parser)


def add_root_arguments(parser) -> None:
    parser.add_argument("--root", default=None,
                        help="run the report on this data set (MUSDB18 .stem.mp4, MUSDB18-HQ or the embedded "
                             "layout); outputs go under reports/<root-name>_<preset>/")
    parser.add_argument("--split-scheme", default=None, choices=("seed", "folders"),
                        help="seed: the seed report's 130/20 split of MUSDB18's 150 songs (default on a root with "
                             "MUSDB18's 100/50 folders); folders: the root's own train/ and test/")


def verify_line(preset: str) -> str:
    """The verdict of :mod:`mss_helpers.verify` on this preset's results against the committed ones."""
    from . import verify

    try:
        rows = verify.verify(against="HEAD", preset=preset)
    except UserError as exc:
        return f"verify: not run ({exc})"
    if not rows:
        return f"verify: no committed results of preset {preset} to compare with"
    return verify.summary_line(rows) + ("; python -m mss_helpers verify lists them" if verify.failures(rows) else "")


def run(args) -> int:
    try:
        record = reproduce(args.preset, force=args.force, only=args.only, started=args.started,
                           installed=args.installed, resume=args.resume, root=args.root,
                           split_scheme=args.split_scheme)
    except NotebookError as exc:
        print(exc, file=sys.stderr)
        return 1
    print(json.dumps(record, indent=1))
    if args.html:
        print(f"HTML: {export_html(preset=args.preset)}")
    if record.get("report_dir"):
        print(f"report on {record['data_root']}: {record['report_dir']} (the committed report is unchanged)")
    elif not args.only:
        print(verify_line(args.preset))
    if record["capped_runs"]:
        first = record["capped_runs"][0]
        more = f" (and {len(record['capped_runs']) - 1} more)" if len(record["capped_runs"]) > 1 else ""
        raise CappedRunError(
            f"run {first['run']}{more} stopped at its {first['max_minutes']}-minute safety net at step "
            f"{first['step']} of {first['planned_steps']}, so this report is not the preset's; continue it with "
            f"python -m mss_helpers reproduce --preset {args.preset}"
            + (f" --root {record['data_root']}" if record.get("data_root") else "")
            + " --resume (the checkpoint is kept)")
    return 0


def add_html_arguments(parser) -> None:
    parser.add_argument("--preset", default=os.environ.get("MSS_PRESET", "cpu"))
    parser.add_argument("--out", default=None, help="folder (default: html/, or the report's folder with --root)")
    add_root_arguments(parser)


def run_html(args) -> int:
    if args.root:
        use_root(args.root, args.split_scheme, args.preset)
    print(f"HTML: {export_html(args.out, preset=args.preset)}")
    return 0
