"""Does a reproduction agree with the committed report? (``python -m mss_helpers verify``, ``make verify``)

Every number in a results folder (CSV, JSON, the summary Markdown tables) is
compared with the same number in a reference: by default the files of
``results/`` at ``HEAD``, i.e. the committed report. Each number gets a *kind*,
from where it comes, and a *unit*, from its name; the tolerance of each
(kind, unit) pair is declared once, in :data:`TOLERANCES`:

- ``data``: computed from the data alone, no training (mixture, oracle rows,
  NMF, pan clustering, the data card): they must agree to 0.01 dB;
- ``trained``: a median (over tracks or pairs) of a row that comes from a trained
  model (autoencoder, latent clustering, MixIT, Open-Unmix, the KL ablation):
  within the reproduction band :data:`BAND_DB`, measured by reproducing the report;
- ``trained_item``: one track's number from a trained model (wider band);
- ``timing``: seconds, minutes, commits, paths, benchmarks: never compared.

Per-pair rows of a separation CSV are compared one by one for the data-only
methods; the rows of trained methods are compared through the summary Markdown
beside the CSV (their medians and counts): with k = auto, which pairs exist at
all depends on the model.
"""

from __future__ import annotations

import csv
import fnmatch
import io
import json
import math
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

from . import paths
from .errors import UserError

# The reproduction band of a trained row's median, in dB, set from two measurements (README "Reproducing the
# report"): the same commit's make reproduce from nothing on two 2-core machines moved trained medians by at
# most 0.57 dB (issue 21, clean render); retraining the cpu autoencoder and separator with another seed
# (scripts/reproduction_spread.py, results/reproduction_spread_cpu.csv) moved them by at most
# MEASURED_SPREAD_DB. A seed is the upper end of what another processor can do to a training run, so the band
# covers it: the larger spread, with a margin, rounded up to half a dB.
MEASURED_SPREAD_DB = 1.25
BAND_DB = 1.5
# One track's number of a trained model: the autoencoder's per-track SNR moved by at most 1.17 dB with
# another seed (same script's model); 2.5x that, for the per-track numbers nobody re-measured (Open-Unmix).
ITEM_BAND_DB = 3.0


@dataclass(frozen=True)
class Tol:
    """Allowed |reproduced - committed|: ``abs + rel * |committed|``; ``None`` kinds are not compared."""

    abs: float = 0.0
    rel: float = 0.0

    def allowed(self, ref: float) -> float:
        return self.abs + self.rel * abs(ref)

    def text(self) -> str:
        parts = ([f"{self.abs:g}"] if self.abs or not self.rel else []) + ([f"{self.rel:.0%}"] if self.rel else [])
        return "+-" + " + ".join(parts)


# (kind, unit) -> tolerance. Units: "db" (any dB quantity), "count" (pairs, missed, tracks, ...), "value"
# (everything else: MSE, cosine, purity, shares, entropies).
TOLERANCES: dict[tuple[str, str], Tol] = {
    ("data", "db"): Tol(abs=0.01),
    ("data", "count"): Tol(abs=0),
    ("data", "value"): Tol(abs=1e-4, rel=1e-3),
    ("trained", "db"): Tol(abs=BAND_DB),
    ("trained", "count"): Tol(abs=3, rel=0.2),  # instruments found at k = auto move with the model
    ("trained", "value"): Tol(abs=0.02, rel=0.45),  # MSE scales as 10^(-SNR/10): 1.5 dB is 41%
    ("trained_item", "db"): Tol(abs=ITEM_BAND_DB),
    ("trained_item", "count"): Tol(abs=3, rel=0.2),
    ("trained_item", "value"): Tol(abs=0.05, rel=1.5),
}

# Methods whose rows need no trained model: the same data and seeds give the same numbers.
DATA_METHODS = {"mixture", "oracle_irm", "oracle_frames", "nmf", "pan"}

# (file pattern, number path pattern, kind): the first match decides; files and paths are relative and
# use "/" and "." (a JSON number's path, or "row | column" for a table).
KIND_RULES: list[tuple[str, str, str]] = [
    ("reproduce_*.json", r".*", "timing"),
    ("bench_*.json", r".*", "timing"),
    ("*", r"(^|[.| ])(seconds|total_seconds|minutes|jobs|reused_tracks|cpu_s_per_step|train_minutes)($|\.)",
     "timing"),
    ("*", r"separation_seconds", "timing"),
    ("separation*.json", r"^(ks|n_tracks|failed_tracks)\b", "data"),  # what was asked for
    ("autoencoder_*.json", r"^per_track\.", "trained_item"),
    ("autoencoder_*.json", r".*", "trained"),
    ("kl_ablation_*.json", r".*", "trained"),
    ("latents_*.json", r"^(active_share|n_frames|instruments)|\.(knn_chance|n_points)$", "data"),
    ("latents_*.json", r".*", "trained"),
    ("unmix_*.json", r"^median\.unmix\.", "trained"),
    ("unmix_*.json", r"^per_track\..*\bunmix\b", "trained_item"),
    ("unmix_*.json", r".*", "data"),
    ("dataset_*", r".*", "data"),
    ("ae_search_*.csv", r".*", "trained"),
    ("mixit_curve_*.csv", r".*", "trained"),
    ("mixit_student_*.csv", r".*", "trained"),
    ("separation_unmix_*", r"\| (true other)$", "method"),  # the true "other" as input: as its method
    ("separation_unmix_*", r".*", "trained"),  # Open-Unmix's estimate as input
    ("*", r".*", "method"),  # a separation table: data or trained by its row's method
]

NOT_NUMBERS = {"commit", "run_dir", "root", "preset", "split", "model", "timezone", "started", "finished"}


def unit_of(name: str) -> str:
    """``db``, ``count`` or ``value`` from a number's name (column or JSON key)."""
    low = name.lower()
    if re.search(r"db|sdr|sir|sar|isr|snr|other", low):
        return "db"
    if re.fullmatch(r"(pairs|missed|extra|failed|n_.*|.*_count|tracks?|epochs|steps|k|k_median|n_outputs|"
                    r"latent_dim|n_filters|batch_size|threads|silent_instruments)", low):
        return "count"
    return "value"


def kind_of(file: str, path: str, method: str | None) -> str:
    for pattern, regex, kind in KIND_RULES:
        if fnmatch.fnmatch(Path(file).name, pattern) and re.search(regex, path):
            if kind == "method":
                return "data" if (method or "") in DATA_METHODS else "trained"
            return kind
    raise AssertionError("the last rule matches everything")


# --- reading numbers ----------------------------------------------------------------------


def _number(text) -> float | None:
    if isinstance(text, bool) or text is None:
        return None
    if isinstance(text, (int, float)):
        return float(text)
    try:
        return float(str(text).strip())
    except ValueError:
        return None


ROW_KEYS = ("track", "method", "decoding", "k_label", "instrument", "estimate", "config", "steps")


def _flatten(obj, prefix: str = "", method: str | None = None):
    """(path, value, method) of every leaf of a JSON value.

    A list item that is a table row (it has a "track" or "method") is named by its key fields, not its
    position, and its numbers carry its method.
    """
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield from _flatten(v, f"{prefix}.{k}" if prefix else str(k), method)
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            if isinstance(v, dict) and ("track" in v or "method" in v):
                name = " ".join(str(v[k]) for k in ROW_KEYS if k in v)
                yield from _flatten({k: x for k, x in v.items() if k not in ROW_KEYS}, f"{prefix}.{name}",
                                    v.get("method", method))
            else:
                yield from _flatten(v, f"{prefix}.{i}", method)
    else:
        yield prefix, obj, method


def _table_rows(header: list[str], rows: list[list[str]]):
    """Key each row of a table: the separation tables by method/decoding/k (and track, instrument)."""
    keys = [c for c in ROW_KEYS if c in header]
    if "k_label" in header and "track" in header:
        keys.append("k")  # a per-pair CSV: k = n is a different k per track
    if not keys:
        keys = header[:1]
    for cells in rows:
        row = dict(zip(header, cells))
        yield " ".join(f"{row.get(k, '')}" for k in keys), row, keys


def numbers(file: str, text: str) -> dict[tuple[str, str], tuple[float, str, str]]:
    """``{(row, metric): (value, kind, unit)}`` of every number in one results file's text."""
    out = {}
    name = Path(file).name
    if name.endswith(".json"):
        for path, value, method in _flatten(json.loads(text)):
            x = _number(value)
            if x is None or path.split(".")[-1] in NOT_NUMBERS:
                continue
            row, _, metric = path.rpartition(".")
            out[(row, metric)] = (x, kind_of(file, path, method), unit_of(metric))
        return out
    if name.endswith(".csv"):
        reader = list(csv.reader(io.StringIO(text)))
        header, rows = reader[0], reader[1:]
    elif name.endswith(".md"):
        lines = [ln.strip() for ln in text.splitlines() if ln.strip().startswith("|")]
        if len(lines) < 2:
            return out
        split = [[c.strip() for c in ln.strip("|").split("|")] for ln in lines]
        header = split[0]
        rows = [r for r in split[1:] if not all(set(c) <= set("-: ") for c in r) and r != header]
    else:
        return out
    per_pair = name.endswith(".csv") and "track" in header and "method" in header
    for row_key, row, keys in _table_rows(header, rows):
        method = row.get("method")
        for col, cell in row.items():
            x = _number(cell)
            if col in keys or x is None:
                continue
            kind = kind_of(file, f"{row_key} | {col}", method)
            if per_pair and kind == "trained":
                continue  # compared through the summary table's medians (module docstring)
            out[(row_key, col)] = (x, kind, unit_of(col))
    return out


# --- where the files come from --------------------------------------------------------------


RESULT_SUFFIXES = (".csv", ".json", ".md")


def folder_files(folder) -> dict[str, str]:
    """``{relative path: text}`` of the results files under ``folder``."""
    folder = Path(folder)
    if not folder.is_dir():
        raise UserError(f"results folder {folder} does not exist; give --results a folder of results "
                        "(make reproduce writes results/)")
    return {p.relative_to(folder).as_posix(): p.read_text() for p in sorted(folder.rglob("*"))
            if p.is_file() and p.suffix in RESULT_SUFFIXES}


def git_files(rev: str = "HEAD", folder: str = "results") -> dict[str, str]:
    """``{relative path: text}`` of ``folder``'s results files in commit ``rev`` of this checkout."""
    def git(*args):
        return subprocess.run(["git", *args], cwd=paths.PROJ_ROOT, capture_output=True, text=True)

    listing = git("ls-tree", "-r", "--name-only", rev, "--", folder)
    if listing.returncode != 0:
        raise UserError(f"--against {rev}: not a commit of this checkout ({listing.stderr.strip()}); give a "
                        "commit (e.g. HEAD) or a folder of results")
    out = {}
    for name in listing.stdout.split():
        if name.endswith(RESULT_SUFFIXES):
            out[name[len(folder) + 1:]] = git("show", f"{rev}:{name}").stdout
    return out


# --- the comparison -------------------------------------------------------------------------


def compare(reproduced: dict[str, str], committed: dict[str, str]) -> list[dict]:
    """One row per committed number: file, row, metric, committed, reproduced, delta, tolerance, verdict.

    Verdicts: ``ok``, ``OUT OF BAND``, ``MISSING`` (a committed file or number the reproduction lacks),
    ``not compared`` (timings). Numbers only the reproduction has are not listed.
    """
    rows = []
    for file in sorted(committed):
        ref = numbers(file, committed[file])
        new = numbers(file, reproduced[file]) if file in reproduced else None
        if new is None:
            rows.append({"file": file, "row": "(whole file)", "metric": "", "committed": None, "reproduced": None,
                         "delta": None, "tolerance": "", "verdict": "MISSING"})
            continue
        for (row, metric), (x, kind, unit) in ref.items():
            tol = TOLERANCES.get((kind, unit))
            y = new.get((row, metric), (None,))[0]
            record = {"file": file, "row": row, "metric": metric, "committed": x, "reproduced": y,
                      "delta": None if y is None else y - x, "kind": kind,
                      "tolerance": tol.text() if tol else "never", "verdict": "not compared"}
            if tol is not None:
                if y is None:
                    record["verdict"] = "MISSING"
                elif math.isnan(x) and math.isnan(y):
                    record["verdict"] = "ok"
                else:
                    ok = abs(y - x) <= tol.allowed(x) + 1e-9
                    record["verdict"] = "ok" if ok else "OUT OF BAND"
            rows.append(record)
    return rows


FAILING = ("OUT OF BAND", "MISSING")


def failures(rows: list[dict]) -> list[dict]:
    """The rows of :func:`compare` that make the reproduction disagree."""
    return [r for r in rows if r["verdict"] in FAILING]


def summary_line(rows: list[dict]) -> str:
    """``verify: agrees|FAILED: N numbers within tolerance, M out of band, K missing (T timings not compared)``."""
    count = {v: sum(r["verdict"] == v for r in rows) for v in ("ok", *FAILING, "not compared")}
    return (f"verify: {'FAILED' if failures(rows) else 'agrees'}: {count['ok']} numbers within tolerance, "
            f"{count['OUT OF BAND']} out of band, {count['MISSING']} missing "
            f"({count['not compared']} timings not compared)")


def format_table(rows: list[dict], everything: bool = False) -> str:
    """The table of failures (or of every compared number with ``everything``)."""
    shown = [r for r in rows if everything and r["verdict"] != "not compared" or r["verdict"] in FAILING]

    def f(x):
        return "" if x is None else f"{x:.4g}"

    lines = ["file | row | metric | committed | reproduced | delta | tolerance | verdict"]
    lines += [" | ".join([r["file"], r["row"], r["metric"], f(r["committed"]), f(r["reproduced"]), f(r["delta"]),
                          r["tolerance"], r["verdict"]]) for r in shown]
    return "\n".join(lines)


def verify(results=None, against: str = "HEAD", preset: str | None = None) -> list[dict]:
    """Compare the results folder (default ``results/``) with ``against`` (a commit, or a folder).

    ``preset`` keeps only the reference's files of that preset (``*_<preset>.*``, ``*_<preset>/``).
    """
    reproduced = folder_files(results or paths.results_dir())
    committed = folder_files(against) if Path(against).is_dir() else git_files(against)
    if preset:
        committed = {f: t for f, t in committed.items() if re.search(rf"_{re.escape(preset)}(\.|/)", f)}
        if not committed:
            return []
    if not committed:
        raise UserError(f"--against {against}: holds no results files to compare with")
    return compare(reproduced, committed)


def gap_sentence(a_name: str, a_db: float, b_name: str, b_db: float, band_db: float = BAND_DB,
                 unit: str = "dB") -> str:
    """Compare two trained rows against the reproduction band: the sentence a report prints.

    A gap smaller than the band is reported as "within the reproduction spread"
    rather than as one row beating the other.
    """
    gap = a_db - b_db
    if abs(gap) < band_db:
        return (f"{a_name} ({a_db:+.2f} {unit}) and {b_name} ({b_db:+.2f} {unit}) are within the reproduction "
                f"spread (their gap, {abs(gap):.2f} {unit}, is below the {band_db:g} {unit} band a rerun on "
                "another machine can move a trained row)")
    hi, lo = ((a_name, a_db), (b_name, b_db)) if gap > 0 else ((b_name, b_db), (a_name, a_db))
    return (f"{hi[0]} ({hi[1]:+.2f} {unit}) beats {lo[0]} ({lo[1]:+.2f} {unit}) by {abs(gap):.2f} {unit}, "
            f"more than the {band_db:g} {unit} reproduction band")


# --- CLI ----------------------------------------------------------------------------------------


def add_arguments(parser) -> None:
    parser.add_argument("--results", default=None, help="folder of reproduced results (default: results/)")
    parser.add_argument("--against", default="HEAD",
                        help="the reference: a commit of this checkout (default HEAD: the committed report) "
                             "or a folder of results")
    parser.add_argument("--all", action="store_true", help="list every compared number, not only failures")


def run(args) -> int:
    rows = verify(args.results, args.against)
    bad = failures(rows)
    if bad or args.all:
        print(format_table(rows, everything=args.all))
    print(summary_line(rows))
    return 1 if bad else 0
