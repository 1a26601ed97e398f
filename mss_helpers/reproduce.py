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
"""

from __future__ import annotations

import json
import os
import re
import shutil
import sys
import time
from pathlib import Path

from . import paths
from .config import get_config, git_commit
from .datasets import estimates_root
from .errors import RunNotFoundError, UserError
from .provenance import capped_runs, machine_record, report_runs

NOTEBOOK_DIR = paths.PROJ_ROOT / "notebooks"
README_START, README_END = "<!-- results:start -->", "<!-- results:end -->"


class NotebookError(RuntimeError):
    """A notebook cell failed; the message names the notebook, the cell and the error."""


class CappedRunError(UserError):
    """A run of the report stopped at its wall-clock safety net before its last step."""


def numbered_notebooks(folder: Path = NOTEBOOK_DIR) -> list[Path]:
    """The ``NN_verb_object.py`` notebooks in order."""
    return sorted(folder.glob("[0-9][0-9]_*.py"))


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
    return {"data_existed": any(r.is_dir() for r in _preset_roots(cfg)) or estimates_root(cfg).is_dir(),
            "runs_existed": cached}


def _preset_roots(cfg) -> list[Path]:
    """The preset's data set and the clean render the notebooks compare it with."""
    return [cfg.data.resolved_root(), cfg.replace(data={"style": "clean"}).data.resolved_root()]


def _is_preset_run(name: str, preset: str) -> bool:
    return f"_{preset}_" in name or name.endswith(f"_{preset}")


def reproduce(preset: str = "cpu", force: bool = False, only: list[str] | None = None,
              started: float | None = None, installed: bool = False, resume: bool = False) -> dict:
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
        execute_notebook(nb, env=env)
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
    out = paths.results_dir()
    out.mkdir(parents=True, exist_ok=True)
    if not only:
        paths.atomic_write(out / f"reproduce_{preset}.json",
                           lambda tmp: Path(tmp).write_text(json.dumps(record, indent=1)))
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


# --- README results block -----------------------------------------------------------------


def results_markdown(preset: str = "cpu") -> str:
    """The README's results section, built only from files in ``results/``."""
    out = paths.results_dir()
    parts = []
    ae = out / f"autoencoder_{preset}.json"
    if ae.exists():
        d = json.loads(ae.read_text())["median"]
        parts.append("**Autoencoder reconstruction** (test split, median over tracks; seed report in brackets)\n\n"
                     "| MSE | SNR dB | spectral MSE | cosine | SI-SDR dB |\n|---|---|---|---|---|\n"
                     f"| {d['mse']:.5f} (0.0024) | {d['snr_db']:.2f} (1.79) | {d['spectral_mse']:.2f} (13.70) "
                     f"| {d['cosine']:.3f} (0.773) | {d['si_sdr_db']:.2f} |")
    sep = out / f"separation_{preset}.csv"
    if sep.exists():
        parts.append("**Separating \"other\" into its instruments** (test split; medians over matched "
                     "(track, instrument) pairs, dB; k = n is each track's true number of instruments, "
                     "`auto` the number the method found; every k in "
                     f"`results/separation_{preset}.md`)\n\n" + headline_table(sep))
    mixit = out / f"separation_mixit_{preset}.csv"
    if mixit.exists():
        parts.append("**Separation learned without labels: MixIT** (notebook 07; the same test split and scoring; "
                     "`latent-grouped` / `feature-grouped` / `envelope-grouped` group the separator's outputs "
                     "without labels, "
                     "`oracle-grouped` is MixIT's ceiling with a greedy oracle grouping; every k in "
                     f"`results/separation_mixit_{preset}.md`)\n\n" + headline_table(mixit))
    side = styles_markdown(preset)
    if side:
        parts.append("**The two renders side by side** (key rows at k = n, median SI-SDRi dB; the same models, "
                     "trained on the realistic set, score both test splits; `from` names the row's method; every "
                     f"row in `results/separation_{preset}_clean.md` and `results/separation_mixit_{preset}_clean.md`; "
                     "the sentences below are computed from the files against the reproduction band of "
                     "`mss_helpers.verify`)\n\n" + side)
    cost = out / f"separation_unmix_{preset}.md"
    if cost.exists():
        parts.append("**What the Open-Unmix first stage costs** (median SI-SDR against the true instruments, dB, "
                     "with the true \"other\" and with Open-Unmix's estimate of it as input, k = n)\n\n"
                     + cost.read_text().strip())
    un = out / f"unmix_{preset}.json"
    if un.exists():
        d = json.loads(un.read_text())
        med = d.get("median", {})  # {estimate: {"SDR": .., "SIR": .., ...}}
        if med:
            rows = "\n".join(f"| {k} | {v['SDR']:.2f} |" for k, v in med.items())
            parts.append("**Open-Unmix first stage**: BSS-eval v4 SDR (dB, museval) of the \"other\" estimate "
                         "against the true \"other\", median over the test tracks\n\n"
                         "| estimate of \"other\" | SDR dB |\n|---|---|\n" + rows)
    rep = out / f"reproduce_{preset}.json"
    if rep.exists():
        parts.append(timing_markdown(json.loads(rep.read_text())))
    return "\n\n".join(parts) if parts else "_No results yet: run `make reproduce`._"


def styles_markdown(preset: str = "cpu") -> str | None:
    """The key rows of both render styles, from the four separation CSVs in ``results/`` (None if missing)."""
    import pandas as pd

    from .evaluate import markdown_table, style_findings, styles_side_by_side, summarize
    from .verify import BAND_DB, gap_sentence

    out = paths.results_dir()
    files = {"realistic": [f"separation_{preset}.csv", f"separation_mixit_{preset}.csv"],
             "clean": [f"separation_{preset}_clean.csv", f"separation_mixit_{preset}_clean.csv"]}
    if not all((out / f).is_file() for names in files.values() for f in names):
        return None
    summaries = {style: pd.concat([summarize(pd.read_csv(out / f, keep_default_na=False, na_values=[""]))
                                   for f in names]) for style, names in files.items()}
    side = styles_side_by_side(summaries)
    lines = [f"- {line}" for line in style_findings(side, BAND_DB)]
    # comparisons of trained rows on the realistic set, computed against the reproduction band
    at_n = summaries["realistic"].assign(k_label=lambda d: d.k_label.astype(str)).query("k_label == 'n'")
    mixit = at_n[at_n.method == "mixit"].set_index("decoding").si_sdri_db
    for a, b in (("latent-grouped", "feature-grouped"), ("latent-grouped", "envelope-grouped")):
        if a in mixit and b in mixit:
            lines.append(f"- MixIT at k = n: {gap_sentence(a, mixit[a], b, mixit[b])}")
    kl = out / f"kl_ablation_{preset}.json"
    if kl.is_file():
        arms = json.loads(kl.read_text())["arms"]
        lines.append("- KL ablation, reconstruction SNR: " + gap_sentence(
            "kl_weight 0", arms["kl0"]["median"]["snr_db"], "the preset's kl_weight", arms["kl"]["median"]["snr_db"]))
    return markdown_table(side.reset_index()) + "\n\n" + "\n".join(lines)


def timing_markdown(record: dict) -> str:
    """The README's timing table of one ``make reproduce``, from ``results/reproduce_<preset>.json``."""
    if "from_nothing" not in record:
        how = "cached runs not recorded"
    elif record["from_nothing"]:
        how = "from nothing (no data set, no runs" + ("; install included)" if record.get("installed") else ")")
    else:
        how = "reusing cached runs: " + ", ".join(record.get("reused_runs") or ["the data set"])
    rows = "\n".join(f"| {step} | {sec / 60:.1f} |" for step, sec in record["seconds"].items())
    commit = (record.get("commit") or "?")[:10] + (" (with uncommitted changes)" if record.get("dirty") else "")
    return (f"**One `make reproduce`** (preset `{record['preset']}`, commit `{commit}`, "
            f"{record.get('started', '?')} to {record['finished']} UTC, {record.get('cpu_count', '?')} CPU cores), "
            f"{how}: **{record['total_seconds'] / 60:.1f} min** in all\n\n"
            f"| step | minutes |\n|---|---|\n{rows}")


def headline_table(csv_path) -> str:
    """Reference rows and each method at k = n (or auto), plus its best fixed k by SI-SDRi."""
    import pandas as pd

    from .evaluate import markdown_table, summarize

    summary = summarize(pd.read_csv(csv_path, keep_default_na=False, na_values=[""]))
    summary["k_label"] = summary["k_label"].astype(str)
    at_n = summary[summary.k_label.isin(["n", "auto"])]
    fixed = summary[~summary.k_label.isin(["n", "auto"])].dropna(subset=["si_sdri_db"])
    best = fixed.loc[fixed.groupby(["method", "decoding"]).si_sdri_db.idxmax()] if len(fixed) else fixed
    table = pd.concat([at_n, best]).sort_index()
    cols = ["method", "decoding", "k_label", "si_sdr_db", "si_sdri_db", "sdr_db", "pairs", "missed", "failed"]
    return markdown_table(table[cols])


def update_readme(preset: str = "cpu", readme: Path | None = None) -> bool:
    """Replace the block between the results markers of README.md; True if it changed."""
    readme = readme or paths.PROJ_ROOT / "README.md"
    if not readme.exists():
        return False
    text = readme.read_text()
    if README_START not in text or README_END not in text:
        return False
    block = f"{README_START}\n{results_markdown(preset)}\n{README_END}"
    new = re.sub(re.escape(README_START) + r".*?" + re.escape(README_END), lambda _: block, text, flags=re.S)
    if new != text:
        readme.write_text(new)
    return new != text


# --- HTML submission build --------------------------------------------------------------------


def export_html(out_dir=None, preset: str = "cpu") -> Path:
    """Self-contained HTML for every executed notebook, plus an index page with the results."""
    import nbformat
    from nbconvert import HTMLExporter

    out_dir = Path(out_dir) if out_dir else paths.PROJ_ROOT / "html"
    out_dir.mkdir(parents=True, exist_ok=True)
    exporter = HTMLExporter(embed_images=True)
    links = []
    for py in numbered_notebooks():
        ipynb = py.with_suffix(".ipynb")
        if not ipynb.exists():
            raise RunNotFoundError(f"{ipynb} has not been executed yet: run `make reproduce` first")
        body, _ = exporter.from_notebook_node(nbformat.read(ipynb, as_version=4))
        (out_dir / f"{py.stem}.html").write_text(body)
        title = next((line.lstrip("# ").strip() for line in py.read_text().splitlines()
                      if line.startswith("# # ")), py.stem)
        links.append(f'<li><a href="{py.stem}.html">{title}</a></li>')
    (out_dir / "index.html").write_text(index_page(results_markdown(preset), links))
    return out_dir / "index.html"


INDEX_STYLE = ("body{font-family:system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;font-size:16px;"
               "line-height:1.5;color:#222;max-width:1100px;margin:2em auto;padding:0 1em}"
               "h1{font-size:1.6em}h2{margin-top:1.6em;border-bottom:1px solid #ddd}"
               ".table{overflow-x:auto;margin:0.6em 0 1.4em}"
               "table{border-collapse:collapse;font-size:14px;font-variant-numeric:tabular-nums}"
               "th,td{border:1px solid #bbb;padding:3px 9px;text-align:right}"
               "th{background:#f0f0f0}td:first-child,th:first-child{text-align:left}"
               "tbody tr:nth-child(even){background:#fafafa}"
               "code{background:#f3f3f3;padding:0 3px;border-radius:3px}")


def index_page(results_md: str, links: list[str]) -> str:
    """The HTML front page: the notebook links and the results block rendered as real HTML tables.

    ``results_md`` is :func:`results_markdown`'s Markdown (GitHub tables, bold,
    code); mistune (installed with nbconvert) renders it; each table is wrapped so
    that a wide one scrolls instead of running off the page.
    """
    import mistune

    results = mistune.create_markdown(plugins=["table"])(results_md)
    results = results.replace("<table>", '<div class="table"><table>').replace("</table>", "</table></div>")
    return ("<!doctype html><html><head><meta charset='utf-8'>"
            "<meta name='viewport' content='width=device-width, initial-scale=1'>"
            f"<title>Unsupervised MSS report</title><style>{INDEX_STYLE}</style></head><body>"
            "<h1>Can clustering an autoencoder's latent space split \"other\" into instruments?</h1>"
            f"<h2>Notebooks</h2><ol>{''.join(links)}</ol><h2>Results</h2>{results}</body></html>")


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
                           installed=args.installed, resume=args.resume)
    except NotebookError as exc:
        print(exc, file=sys.stderr)
        return 1
    print(json.dumps(record, indent=1))
    if args.html:
        print(f"HTML: {export_html(preset=args.preset)}")
    if not args.only:
        print(verify_line(args.preset))
    if record["capped_runs"]:
        first = record["capped_runs"][0]
        more = f" (and {len(record['capped_runs']) - 1} more)" if len(record["capped_runs"]) > 1 else ""
        raise CappedRunError(
            f"run {first['run']}{more} stopped at its {first['max_minutes']}-minute safety net at step "
            f"{first['step']} of {first['planned_steps']}, so this report is not the preset's; continue it with "
            f"python -m mss_helpers reproduce --preset {args.preset} --resume (the checkpoint is kept)")
    return 0


def add_html_arguments(parser) -> None:
    parser.add_argument("--preset", default=os.environ.get("MSS_PRESET", "cpu"))
    parser.add_argument("--out", default=None, help="folder (default: html/)")


def run_html(args) -> int:
    print(f"HTML: {export_html(args.out, preset=args.preset)}")
    return 0
