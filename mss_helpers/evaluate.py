"""The separation comparison: every method, every track, one table.

For each track of a split the input (``datasets.input_audio``) is separated by
every method and each setting is scored:

- with ground truth (``Track.other_stems``): the K estimates are matched to the
  N instruments (Hungarian on SI-SDR, ``separation_metrics.match_estimates``); matched
  pairs get SI-SDR, SI-SDR improvement over the input and BSS-eval v4 SDR
  (``separation_metrics.bss_sdr``, 1 s windows, median);
- always: the unsupervised columns (mixture MSE of the sum of estimates,
  frame-assignment entropy for the latent clusterings, spectral entropy,
  sparsity and energy share of each estimate).

Methods (``method`` column) and their decodings (``decoding``):
``mixture``, ``oracle_irm``, ``oracle_frames``, ``nmf`` (reference rows, ``-``);
the latent-frame clusterings of :data:`cluster.METHODS` (``hard``: the seed's
time masks; ``soft``: mixture-consistent masks from the same decodes);
``latent_nmf`` (``soft``). Only when named in ``methods``, each after its own
train command (the method table, :mod:`mss_helpers.methods`): ``mixit`` (the
MixIT separator's outputs, ungrouped and grouped into k, see
:func:`separator_group.mixit_settings`; ``train-separator``), ``pan`` and
``pan_student`` (``train-student``), ``vaebss`` (VAE-BSS's K latent sources,
``ungrouped`` and ``grouped`` into k; ``train-vaebss``) and ``deep_clustering``
(the LABELLED reference, ``-``; ``train-deepclustering``).
``k_label`` says how k was set: a number, ``n`` (the track's true number of
instruments; every reference row) or ``auto`` (DBSCAN/HDBSCAN choose it; the
``k`` column then holds what they found).
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np

from . import paths, separate
from .config import Config, config_to_dict, git_commit
from .errors import ConfigError, DataRootError, RunNotFoundError, UserError

# The per-track parts live in evaluate_track; their names stay importable from here.
from .evaluate_track import (COLUMNS, SCORES, SILENT_REFERENCE_DB, UNSUPERVISED, all_methods,  # noqa: F401
                             evaluate_track, score_setting, separate_track)
from .evaluate_track import cluster_methods as _cluster_methods
from .evaluate_track import load_models
from .evaluate_track import needs_model as _needs_model
from .evaluate_track import OPTIONAL_METHODS, load_trained, method_table, trained_models


def _parse_ks(ks) -> list:
    """k values as ints and "n"; raises :class:`ConfigError` for anything else (0, -1, "abc")."""
    out = []
    for k in ks:
        k = k.strip() if isinstance(k, str) else k
        if k == "n":
            out.append("n")
            continue
        try:
            value = int(k)
        except (TypeError, ValueError):
            value = 0
        if value < 1 or (isinstance(k, float) and k != value):
            raise ConfigError(f"--k: k must be a positive integer or 'n' (the true number), got {k!r}; "
                              "e.g. --k 2,3,n")
        out.append(value)
    return out


def _check_methods(methods, cfg: Config) -> None:
    """:class:`ConfigError` naming every unknown method name, before any work."""
    unknown = [m for m in methods if m not in method_table()]
    if unknown:
        raise ConfigError(f"--methods: unknown methods {', '.join(map(str, unknown))}; "
                          f"choose from {', '.join(all_methods(cfg))} (run by default) or "
                          f"{', '.join(OPTIONAL_METHODS)} (each after its own train command)")


def summarize(df):
    """Medians per method x decoding x k_label over matched (track, instrument) pairs.

    Columns: the median SI-SDR, SI-SDRi and SDR, the number of matched pairs,
    of instruments left without an estimate (``missed``) and of estimates
    matched to nothing (``extra``), and the median mixture MSE and assignment
    entropy (one value per track and setting).
    """
    import pandas as pd

    keys = ["method", "decoding", "k_label"]
    # An estimate matched to no instrument has instrument "": a CSV read back gives NaN there.
    df = df.assign(instrument=df["instrument"].fillna(""))
    order = {m: i for i, m in enumerate(dict.fromkeys(df["method"]))}
    out = []
    for key, g in df.groupby(keys, sort=False):
        matched = g[(g["instrument"] != "") & g["estimate"].notna()]
        per_setting = g.drop_duplicates(["track", "method", "decoding", "k_label"])
        row = dict(zip(keys, key))
        for s in SCORES:
            vals = pd.to_numeric(matched[s], errors="coerce").dropna()
            row[s] = float(vals.median()) if len(vals) else None
        row["pairs"] = int(len(matched))
        row["missed"] = int(((g["instrument"] != "") & g["estimate"].isna()).sum())
        row["extra"] = int(((g["instrument"] == "") & g["estimate"].notna()).sum()) if g["si_sdr_db"].notna().any() else 0
        row["failed"] = int(g.loc[g["note"].fillna("") != "", "track"].nunique())
        for s in ("mixture_mse", "assignment_entropy"):
            vals = pd.to_numeric(per_setting[s], errors="coerce").dropna()
            row[s] = float(vals.median()) if len(vals) else None
        row["k_median"] = float(per_setting["k"].median())
        out.append(row)
    summary = pd.DataFrame(out)
    summary["_o"] = summary["method"].map(order)
    return summary.sort_values(["_o", "decoding", "k_label"]).drop(columns="_o").reset_index(drop=True)


def markdown_table(df, floatfmt: str = "{:.2f}") -> str:
    """A plain GitHub-markdown table of a DataFrame (None/NaN shown as blank)."""
    cols = list(df.columns)
    lines = ["| " + " | ".join(cols) + " |", "|" + "|".join("---" for _ in cols) + "|"]
    for _, r in df.iterrows():
        cells = []
        for c in cols:
            v = r[c]
            if v is None or (isinstance(v, float) and not np.isfinite(v)):
                cells.append("")
            elif isinstance(v, (float, np.floating)):
                cells.append(floatfmt.format(v))
            else:
                cells.append(str(v))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def run_evaluation(cfg: Config, root=None, split: str = "test", run_dir=None, methods=None, ks=None,
                   out_dir=None, examples_dir=None, example_tracks: int = 2, progress: bool = True,
                   write_results: bool | None = None, max_tracks: int | None = None, jobs: int | None = None,
                   resume: bool = True, results_name: str | None = None):
    """Separate every track of ``split`` with every method and score it.

    Parameters
    ----------
    cfg : Config
    root : data root (default: the preset's embedded set, rendered if missing)
    split : "test" (default) or "train"
    run_dir : trained autoencoder run (default: ``autoencoder.ae_run_dir(cfg)``)
    methods : method names (default :func:`all_methods`)
    ks : ints and/or "n" (default ``cfg.cluster.ks`` + ``("n",)``)
    out_dir : where ``separation.csv``, ``separation.json`` and ``summary.md``
        go (default ``runs_dir()/evaluate_<preset>_<split>``)
    examples_dir : when given, listening examples of the first
        ``example_tracks`` tracks are written there (``examples.write_example``)
    write_results : also write ``results_dir()/separation_<preset>.csv`` and
        ``.md``; default: when ``root`` is the preset's own data set
    results_name : the stem of those files instead of ``separation_<preset>``
        (``separation_<preset>_clean``: the preset's models on the clean set)
    max_tracks : only the first tracks (quick looks)
    jobs : worker processes (default ``min(2, cpu_count)``); tracks are
        separated in parallel, rows come back in track order as with ``jobs=1``
    resume : reuse the rows of tracks a previous run finished with the same
        settings, code, model and data (cached under ``out_dir/tracks/``)

    Returns
    -------
    pandas.DataFrame with the columns of :data:`COLUMNS`, one row per
    (track, method, decoding, k, instrument) and per unmatched estimate.
    ``df.attrs["failed_tracks"]`` lists ``{"track", "reason"}`` for tracks
    whose data could not be used (they are skipped, the others scored); a
    :class:`UserError` is raised when every track fails.
    """
    import pandas as pd
    from tqdm.auto import tqdm

    from . import datasets

    t0 = time.time()
    jobs = default_jobs() if jobs is None else int(jobs)
    if jobs < 1:  # checked before any rendering or model loading, like every other argument
        raise ConfigError(f"--jobs must be at least 1, got {jobs}")
    own_root = root is None or Path(root).expanduser().resolve() == cfg.data.resolved_root()
    root = Path(root) if root else datasets.ensure_dataset(cfg)
    methods = tuple(methods) if methods else all_methods(cfg)
    _check_methods(methods, cfg)
    ks = _parse_ks(ks if ks is not None else tuple(cfg.cluster.ks) + ("n",))
    if _needs_model(methods):
        from .autoencoder import ae_run_dir

        run_dir = Path(run_dir) if run_dir else ae_run_dir(cfg)
        load_models(run_dir, methods)  # a missing run fails here, once, not in every worker
    for name in trained_models(methods):
        load_trained(name, cfg)  # RunNotFoundError naming the command that trains it, before any work
    unreadable: list = []  # tracks whose mixture cannot be read: reported as failed, the others scored
    tracks = datasets.load_tracks(root, split, unreadable=unreadable)
    names = sorted([t.name for t in tracks] + [u["track"] for u in unreadable])[:max_tracks]
    tracks = [t for t in tracks if t.name in names]
    out_dir = Path(out_dir) if out_dir else paths.runs_dir() / f"evaluate_{cfg.name}_{split}"
    work = [{"cfg": cfg, "root": str(root), "split": split, "track": t.name, "methods": tuple(methods),
             "ks": ks, "run_dir": str(run_dir) if _needs_model(methods) else None,
             "examples_dir": str(examples_dir) if examples_dir is not None and i < example_tracks else None,
             "cache_dir": str(out_dir / "tracks") if resume else None}
            for i, t in enumerate(tracks)]
    if jobs == 1 or len(work) <= 1:
        results = map(evaluate_track, work)
    else:
        from joblib import Parallel, delayed

        # loky worker processes; the generator yields results in track order, as they finish.
        results = Parallel(n_jobs=min(jobs, len(work)), backend="loky", return_as="generator")(
            delayed(evaluate_track)(w) for w in work)
    rows, timing, reused = [], {}, 0  # timing: separation seconds per method
    failed = [u for u in unreadable if u["track"] in names]
    for res in tqdm(results, total=len(work), desc=f"separate {split}", disable=not progress):
        if res["error"] is not None:
            failed.append({"track": res["track"], "reason": res["error"]})
            continue
        rows += res["rows"]
        reused += int(res["reused"])
        for m, v in res["timing"].items():
            timing[m] = timing.get(m, 0.0) + v
    if names and len(failed) == len(names):
        raise UserError(f"every track of {root} ({split} split) failed, nothing was scored; first: "
                        f"{failed[0]['track']}: {failed[0]['reason']}")
    df = pd.DataFrame(rows, columns=list(COLUMNS))
    summary = summarize(df)
    meta = {"preset": cfg.name, "commit": git_commit(), "root": str(root), "split": split,
            "run_dir": str(run_dir) if run_dir else None, "methods": list(methods), "ks": ks,
            "n_tracks": len(names), "failed_tracks": failed, "reused_tracks": reused, "jobs": jobs,
            "seconds": round(time.time() - t0, 1),
            "separation_seconds": {m: round(v, 1) for m, v in timing.items()}, "config": config_to_dict(cfg)}
    _write_outputs(df, summary, meta, out_dir, "separation", "summary")
    if write_results if write_results is not None else own_root:
        name = results_name or f"separation_{cfg.name}"
        _write_outputs(df, summary, meta, paths.results_dir(), name, name)
    df.attrs["failed_tracks"] = failed
    df.attrs["n_tracks"] = len(names)
    return df


# --- the key rows of the report, side by side for the two render styles ---------------------------

FRAME_METHODS = ("kmeans", "agglomerative", "dbscan", "gmm", "spectral", "hdbscan")
MIXIT_GROUPINGS = ("latent-grouped", "feature-grouped", "envelope-grouped")


def key_rows(summary) -> "pandas.DataFrame":  # noqa: F821
    """The report's key rows out of one or more :func:`summarize` tables (concatenated), at k = n.

    Rows: mixture, oracle IRM, oracle frames, NMF, the best latent-frame clustering (k = n, or auto for the
    density methods where they found more than one cluster: one cluster is the input itself), the best
    unsupervised MixIT grouping and pan clustering; each with the method/decoding
    it came from, the median SI-SDRi and SI-SDR and the pair count. Rows whose method was not run are left out.
    """
    import pandas as pd

    s = summary.assign(k_label=summary["k_label"].astype(str)).dropna(subset=["si_sdri_db"])
    s = s.drop_duplicates(["method", "decoding", "k_label"])
    at_n = s[s.k_label == "n"]
    several = s["k_median"] > 1 if "k_median" in s else True  # a density method that found one cluster: the input
    picks = [("mixture (floor)", at_n[at_n.method == "mixture"]),
             ("oracle IRM (ceiling)", at_n[at_n.method == "oracle_irm"]),
             ("oracle frames (frame ceiling)", at_n[at_n.method == "oracle_frames"]),
             ("NMF + clustering", at_n[at_n.method == "nmf"]),
             ("best latent-frame clustering", s[s.method.isin(FRAME_METHODS) & (
                 (s.k_label == "n") | ((s.k_label == "auto") & several))]),
             ("best MixIT grouping", at_n[(at_n.method == "mixit") & at_n.decoding.isin(MIXIT_GROUPINGS)]),
             ("pan clustering (stereo)", at_n[at_n.method == "pan"])]
    rows = []
    for label, cand in picks:
        if len(cand):
            r = cand.loc[cand.si_sdri_db.idxmax()]
            rows.append({"row": label, "from": f"{r.method}/{r.decoding}/k={r.k_label}",
                         "si_sdri_db": float(r.si_sdri_db), "si_sdr_db": float(r.si_sdr_db), "pairs": int(r.pairs)})
    return pd.DataFrame(rows, columns=["row", "from", "si_sdri_db", "si_sdr_db", "pairs"]).set_index("row")


def styles_side_by_side(summaries: dict) -> "pandas.DataFrame":  # noqa: F821
    """``{style: summarize table}`` -> one row per key row, ``<style> SI-SDRi`` and ``<style> from`` columns."""
    import pandas as pd

    parts = []
    for style, summary in summaries.items():
        k = key_rows(summary)
        parts.append(k[["si_sdri_db", "from"]].rename(columns={"si_sdri_db": f"{style} SI-SDRi",
                                                                "from": f"{style} from"}))
    return pd.concat(parts, axis=1)


def style_findings(side, band_db: float, a: str = "realistic", b: str = "clean") -> list[str]:
    """Sentences on which key rows hold across the two styles (a gap under ``band_db`` counts as holding)."""
    import pandas as pd

    out = []
    for row in side.index:
        x, y = side.at[row, f"{a} SI-SDRi"], side.at[row, f"{b} SI-SDRi"]
        if pd.isna(x) or pd.isna(y):
            continue
        if abs(x - y) < band_db:
            verdict = "holds on both"
        else:
            verdict = f"{'gains' if x > y else 'loses'} {abs(x - y):.1f} dB on the {a} set"
        out.append(f"{row}: {x:+.2f} dB {a}, {y:+.2f} dB {b}: {verdict}")
    return out


def default_jobs() -> int:
    """Worker processes for the evaluation: both cores of the reference machine, at most."""
    import os

    return max(1, min(2, os.cpu_count() or 1))


def _write_outputs(df, summary, meta, out_dir: Path, csv_name: str, md_name: str) -> None:
    """The table (csv), the summary with the run's facts (json) and the summary (md), each atomically."""
    records = json.loads(summary.to_json(orient="records"))
    header = (f"# Separation of 'other' into instruments ({meta['preset']}, {meta['split']} split, "
              f"{meta['n_tracks']} tracks)\n\nMedians over matched (track, instrument) pairs; "
              "SI-SDR/SDR in dB; k_label n = the track's number of instruments, auto = found by the "
              "method.\n\n")
    if meta.get("failed_tracks"):
        header += ("Not scored (their data could not be used): "
                   + "; ".join(f"{f['track']}: {f['reason']}" for f in meta["failed_tracks"]) + "\n\n")
    paths.atomic_write(out_dir / f"{csv_name}.csv", lambda p: df.to_csv(p, index=False, float_format="%.4f"))
    paths.atomic_write(out_dir / f"{csv_name}.json",
                       lambda p: Path(p).write_text(json.dumps({**meta, "summary": records}, indent=1)))
    paths.atomic_write(out_dir / f"{md_name}.md", lambda p: Path(p).write_text(header + markdown_table(summary)))


# --- CLI -------------------------------------------------------------------------------


def add_arguments(parser) -> None:
    """Arguments of ``python -m mss_helpers evaluate``."""
    parser.add_argument("--preset", default=None, help="tiny, cpu or paper (default: $MSS_PRESET or cpu)")
    parser.add_argument("--root", default=None, help="data set root (default: the preset's embedded set)")
    parser.add_argument("--split", default="test", choices=("train", "test"))
    parser.add_argument("--out", default=None, help="output folder (default: runs/evaluate_<preset>_<split>)")
    parser.add_argument("--run", default=None, help="trained autoencoder run folder (default: the preset's)")
    parser.add_argument("--methods", default=None,
                        help="comma-separated method names (default: every method that needs no train command "
                             "of its own; add mixit, pan, pan_student, vaebss, deep_clustering by name)")
    parser.add_argument("--k", default=None, help="comma-separated k values, 'n' = true number (default: preset)")
    parser.add_argument("--examples", default=None, help="also write listening examples to this folder")
    parser.add_argument("--max-tracks", type=int, default=None, help="only the first N tracks")
    parser.add_argument("--jobs", type=int, default=None,
                        help="tracks separated in parallel (default: min(2, number of CPU cores))")
    parser.add_argument("--no-resume", action="store_true",
                        help="recompute every track (default: reuse tracks a previous run finished)")


def run(args) -> int:
    from .config import get_config

    cfg = get_config(args.preset)
    # Every argument is checked before any work (rendering data, loading a model).
    methods = [m.strip() for m in args.methods.split(",") if m.strip()] if args.methods else None
    ks = _parse_ks(args.k.split(",")) if args.k else None
    _check_methods(methods or (), cfg)
    if args.max_tracks is not None and args.max_tracks < 1:
        raise ConfigError(f"--max-tracks must be at least 1, got {args.max_tracks}")
    if args.root:
        from .datasets import detect_format

        try:
            detect_format(args.root)
        except DataRootError as exc:
            raise DataRootError(f"--root: {exc}") from exc
    if _needs_model(methods or all_methods(cfg)):
        from .autoencoder import ae_run_dir

        run_dir = Path(args.run) if args.run else ae_run_dir(cfg)
        if not (run_dir / "best.pt").is_file():
            how = f"--preset {cfg.name}" + (f" --run-dir {run_dir}" if args.run else "")
            raise RunNotFoundError(f"no trained autoencoder at {run_dir} (the latent methods need one); "
                                   f"train it first: python -m mss_helpers train {how}, or evaluate only "
                                   f"the reference methods: --methods {','.join(separate.REFERENCE_METHODS)}")
    # Only the whole default table (every method, every track, default folder) replaces the preset's
    # committed copy in results/: `evaluate --methods pan --out X` must not overwrite it with one method.
    whole = methods is None and ks is None and args.max_tracks is None and args.out is None
    df = run_evaluation(cfg, root=args.root, split=args.split, run_dir=args.run, methods=methods, ks=ks,
                        out_dir=args.out, examples_dir=args.examples, max_tracks=args.max_tracks,
                        jobs=args.jobs, resume=not args.no_resume, write_results=None if whole else False)
    print(markdown_table(summarize(df)))
    failed = df.attrs.get("failed_tracks") or []
    if failed:
        import sys

        n = df.attrs.get("n_tracks", len(failed))
        reasons = "; ".join(f"{f['track']}: {f['reason']}" for f in failed)
        print(f"warning: {len(failed)} of {n} tracks failed: {reasons}", file=sys.stderr)
    return 0


# --- what a notebook opened on its own needs -------------------------------------------------


def examples_dir(cfg: Config) -> Path:
    """``runs_dir()/examples_<preset>_<config hash>``: listening examples of this exact config."""
    from .config import config_hash

    return paths.runs_dir() / f"examples_{cfg.name}_{config_hash(cfg)}"


def ensure_examples(cfg: Config, n_tracks: int = 2, progress: bool = True) -> Path:
    """The preset's listening examples (:func:`examples_dir`), reused when present, else written now.

    Separates only the first ``n_tracks`` test tracks with every method, using the autoencoder
    of ``autoencoder.ensure_autoencoder``, and writes no result tables (the full comparison owns them).
    """
    from .examples import list_tracks
    from .autoencoder import ensure_autoencoder

    out = examples_dir(cfg)
    if out.is_dir() and list_tracks(out):
        return out
    run_evaluation(cfg, run_dir=ensure_autoencoder(cfg, progress=progress), examples_dir=out,
                   example_tracks=n_tracks, max_tracks=n_tracks, write_results=False, progress=progress,
                   out_dir=paths.runs_dir() / f"evaluate_{cfg.name}_examples")
    return out
