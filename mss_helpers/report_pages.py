"""What the report shows outside the notebooks, built only from its files.

- the results block of README.md (:func:`results_markdown`, :func:`update_readme`);
- the self-contained HTML build of the executed notebooks with an index page
  (:func:`export_html`, ``python -m mss_helpers html``).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from . import paths
from .errors import RunNotFoundError

NOTEBOOK_DIR = paths.PROJ_ROOT / "notebooks"
README_START, README_END = "<!-- results:start -->", "<!-- results:end -->"


def numbered_notebooks(folder: Path = NOTEBOOK_DIR) -> list[Path]:
    """The ``NN_verb_object.py`` notebooks in order."""
    return sorted(folder.glob("[0-9][0-9]_*.py"))


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

    out_dir = Path(out_dir) if out_dir else paths.html_dir()
    out_dir.mkdir(parents=True, exist_ok=True)
    exporter = HTMLExporter(embed_images=True)
    links = []
    for py in numbered_notebooks():
        ipynb = paths.notebooks_out_dir() / f"{py.stem}.ipynb"
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
