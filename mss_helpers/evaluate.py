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
``latent_nmf`` (``soft``). ``k_label`` says how k was set: a number, ``n``
(the track's true number of instruments; every reference row) or ``auto``
(DBSCAN/HDBSCAN choose it; the ``k`` column then holds what they found).
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np

from . import paths, separate
from .config import Config, config_to_dict, git_commit
from .errors import ConfigError, DataRootError, RunNotFoundError

UNSUPERVISED = ("mixture_mse", "assignment_entropy", "spectral_entropy", "sparsity", "energy_share")
COLUMNS = ("track", "method", "decoding", "k", "k_label", "instrument", "estimate", "si_sdr_db",
           "si_sdri_db", "sdr_db") + UNSUPERVISED + ("note",)
SCORES = ("si_sdr_db", "si_sdri_db", "sdr_db")


SILENT_REFERENCE_DB = -60.0  # dBFS; below it an instrument of "other" counts as absent from the track


def all_methods(cfg: Config) -> tuple[str, ...]:
    """Every method in table order: references, latent-frame clusterings, latent NMF."""
    return separate.REFERENCE_METHODS + tuple(cfg.cluster.methods) + separate.LATENT_TF_METHODS


def _needs_model(methods) -> bool:
    return any(m not in separate.REFERENCE_METHODS for m in methods)


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


def separate_track(x: np.ndarray, refs: dict, methods, ks, cfg: Config, model=None, seed: int = 0):
    """Run every (method, k) on one input; yield settings with their estimates.

    Parameters
    ----------
    x : (channels, samples) float32, the input
    refs : dict name -> (channels, samples), the instruments ({} without ground truth)
    methods : names from :func:`all_methods`
    ks : ints and/or "n"
    model : SEANetVAE, needed by the latent methods

    Yields
    ------
    dict with ``method``, ``decoding``, ``k``, ``k_label``, ``estimates``
    (list of (channels, samples) float32) and ``labels`` (frame labels or None).
    """
    from .cluster import DENSITY_METHODS, METHODS, ClusterError, cluster_frames

    c = cfg.cluster
    n_refs = len(refs)
    frames = None
    cache: dict = {}
    if _needs_model(methods):
        if model is None:
            raise ValueError("the latent methods need a trained model (model=None given)")
        from .latents import encode_track

        frames = encode_track(model, x)

    def concrete(k):
        return n_refs if k == "n" else k

    for method in methods:
        if method == "mixture":
            yield _setting(method, "-", max(n_refs, 1), "n", separate.mixture_estimate(x, max(n_refs, 1)))
        elif method in ("oracle_irm", "oracle_frames"):
            if not refs:
                continue  # oracles need ground truth
            est = (separate.oracle_irm(x, refs, c.stft_n_fft, c.stft_hop) if method == "oracle_irm"
                   else separate.oracle_frames(x, refs, model.hop_length if model is not None
                                               else int(np.prod(cfg.model.ratios))))
            yield _setting(method, "-", n_refs, "n", est)
        elif method in ("nmf", "latent_nmf"):
            done: dict = {}  # k -> estimates, so k="n" equal to a fixed k is not computed twice
            for k in ks:
                kk = concrete(k)
                if kk < 1:
                    continue
                if kk not in done:
                    if method == "nmf":
                        done[kk] = separate.nmf_cluster(x, kk, c.nmf_components, c.stft_n_fft, c.stft_hop,
                                                        seed, rate=cfg.data.sample_rate, cache=cache)
                    else:
                        done[kk] = separate.latent_nmf(model, x, kk, c.nmf_components, c.stft_n_fft,
                                                       c.stft_hop, seed, cache=cache)
                yield _setting(method, "-" if method == "nmf" else "soft", kk, str(k), done[kk])
        elif method in METHODS:
            done = {}  # k -> (hard, soft) settings
            for k in ks:
                if method in DENSITY_METHODS:
                    if "auto" in done:
                        continue
                    kk, label = None, "auto"
                else:
                    kk, label = concrete(k), str(k)
                    if kk < 1:
                        continue
                if (kk or "auto") in done:
                    for prev in done[kk]:
                        yield {**prev, "k_label": label}
                    continue
                try:
                    res = cluster_frames(frames, method, kk, embedding=c.embedding, cfg=c, seed=seed)
                except ClusterError as exc:  # e.g. DBSCAN finding only noise: a result, kept in the table
                    done[kk or "auto"] = [{**_setting(method, d, 0, label, None), "note": str(exc)}
                                          for d in ("hard", "soft")]
                    yield from done[kk or "auto"]
                    continue
                hard = separate.hard_time_masks(model, frames, res.labels, x.shape[1])
                first = _setting(method, "hard", res.k, label, hard, res.labels)
                yield first
                soft = separate.soft_masks(x, hard, c.stft_n_fft, c.stft_hop)
                second = _setting(method, "soft", res.k, label, soft, res.labels)
                yield second
                done[kk or "auto"] = [first, second]
        else:
            raise ConfigError(f"unknown method {method!r}; choose from {', '.join(all_methods(cfg))}")


def _setting(method, decoding, k, k_label, estimates, labels=None) -> dict:
    return {"method": method, "decoding": decoding, "k": int(k), "k_label": k_label,
            "estimates": estimates, "labels": labels}


def score_setting(x: np.ndarray, refs: dict, setting: dict, rate: int) -> list[dict]:
    """Rows of one setting: per instrument (matched or not) and per unmatched estimate.

    Without ground truth, one row per estimate with only the unsupervised columns.
    """
    from . import cluster_metrics, separation_metrics

    ests = setting["estimates"]
    common = {"method": setting["method"], "decoding": setting["decoding"], "k": setting["k"],
              "k_label": setting["k_label"], "note": setting.get("note", "")}
    if ests is None:  # the method failed on this track: its instruments count as missed
        empty = {c: None for c in ("estimate",) + SCORES + UNSUPERVISED}
        return [{**common, **empty, "instrument": n} for n in refs] or [{**common, **empty, "instrument": ""}]
    shares = cluster_metrics.energy_shares(ests)
    per_est = []
    for e, share in zip(ests, shares):
        silent = not np.any(e)
        per_est.append({"spectral_entropy": None if silent else cluster_metrics.spectral_entropy(e),
                        "sparsity": None if silent else cluster_metrics.sparsity(e), "energy_share": share})
    common = {**common, "mixture_mse": cluster_metrics.mixture_mse(x, ests),
              "assignment_entropy": (cluster_metrics.assignment_entropy(setting["labels"])
                                     if setting["labels"] is not None else None)}
    if not refs:
        return [{**common, "instrument": "", "estimate": j, **{s: None for s in SCORES}, **per_est[j]}
                for j in range(len(ests))]
    rows = separation_metrics.match_estimates(refs, ests, x)
    matched = [r for r in rows if r["instrument"] and r["estimate"] is not None]
    sdr = _bss_sdr_pairs(refs, ests, matched, rate)
    out = []
    for r in rows:
        j = r["estimate"]
        extra = per_est[j] if j is not None else {"spectral_entropy": None, "sparsity": None,
                                                   "energy_share": None}
        out.append({**common, "instrument": r["instrument"], "estimate": j, "si_sdr_db": r["si_sdr_db"],
                    "si_sdri_db": r["si_sdri_db"], "sdr_db": sdr.get(r["instrument"]), **extra})
    return out


def _bss_sdr_pairs(refs: dict, ests: list, matched: list, rate: int) -> dict:
    """BSS-eval SDR per matched instrument; an undefined one (every window silent) stays None."""
    from .separation_metrics import bss_sdr

    if not matched:
        return {}
    R = np.stack([refs[r["instrument"]] for r in matched])
    E = np.stack([ests[r["estimate"]] for r in matched])
    try:
        values = bss_sdr(R, E, rate, backend="fast")
        return {r["instrument"]: float(v) for r, v in zip(matched, values)}
    except ValueError:
        out = {}
        for i, r in enumerate(matched):  # score pairs one by one so one silent estimate spoils only itself
            try:
                out[r["instrument"]] = float(bss_sdr(R[i:i + 1], E[i:i + 1], rate, backend="fast")[0])
            except ValueError:
                out[r["instrument"]] = None
        return out


def summarize(df):
    """Medians per method x decoding x k_label over matched (track, instrument) pairs.

    Columns: the median SI-SDR, SI-SDRi and SDR, the number of matched pairs,
    of instruments left without an estimate (``missed``) and of estimates
    matched to nothing (``extra``), and the median mixture MSE and assignment
    entropy (one value per track and setting).
    """
    import pandas as pd

    keys = ["method", "decoding", "k_label"]
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
                   write_results: bool | None = None, max_tracks: int | None = None):
    """Separate every track of ``split`` with every method and score it.

    Parameters
    ----------
    cfg : Config
    root : data root (default: the preset's embedded set, rendered if missing)
    split : "test" (default) or "train"
    run_dir : trained autoencoder run (default: ``train.ae_run_dir(cfg)``)
    methods : method names (default :func:`all_methods`)
    ks : ints and/or "n" (default ``cfg.cluster.ks`` + ``("n",)``)
    out_dir : where ``separation.csv``, ``separation.json`` and ``summary.md``
        go (default ``runs_dir()/evaluate_<preset>_<split>``)
    examples_dir : when given, listening examples of the first
        ``example_tracks`` tracks are written there (``examples.write_example``)
    write_results : also write ``results_dir()/separation_<preset>.csv`` and
        ``.md``; default: when ``root`` is the preset's own data set
    max_tracks : only the first tracks (quick looks)

    Returns
    -------
    pandas.DataFrame with the columns of :data:`COLUMNS`, one row per
    (track, method, decoding, k, instrument) and per unmatched estimate.
    """
    import pandas as pd
    from tqdm.auto import tqdm

    from . import datasets

    t0 = time.time()
    own_root = root is None or Path(root).expanduser().resolve() == cfg.data.resolved_root()
    root = Path(root) if root else datasets.ensure_dataset(cfg)
    methods = tuple(methods) if methods else all_methods(cfg)
    unknown = [m for m in methods if m not in all_methods(cfg) and m not in _cluster_methods()]
    if unknown:
        raise ConfigError(f"--methods: unknown methods {', '.join(map(str, unknown))}; "
                          f"choose from {', '.join(all_methods(cfg))}")
    ks = _parse_ks(ks if ks is not None else tuple(cfg.cluster.ks) + ("n",))
    model = None
    if _needs_model(methods):
        from .model import load_model
        from .train import ae_run_dir

        run_dir = Path(run_dir) if run_dir else ae_run_dir(cfg)
        model, _ = load_model(run_dir)
    tracks = datasets.load_tracks(root, split)[:max_tracks]
    rate = cfg.data.sample_rate
    rows, timing = [], {}  # separation seconds per method (encoding counts for the first latent one)
    for i, track in enumerate(tqdm(tracks, desc=f"separate {split}", disable=not progress)):
        x = datasets.input_audio(track, cfg)
        # Instruments silent for the whole excerpt (they rested throughout) are not references.
        refs = track.other_stems(rate=rate, channels=cfg.data.channels, min_db=SILENT_REFERENCE_DB)
        refs = {n: separate._fit_length(r, x.shape[1]) for n, r in refs.items()}
        tick = time.time()
        for setting in separate_track(x, refs, methods, ks, cfg, model=model, seed=cfg.cluster.seed):
            timing[setting["method"]] = timing.get(setting["method"], 0.0) + time.time() - tick
            srows = score_setting(x, refs, setting, rate)
            rows += [{"track": track.name, **r} for r in srows]
            # A setting whose clustering failed (estimates None) has nothing to listen to.
            if examples_dir is not None and i < example_tracks and setting["estimates"]:
                from . import examples

                key = examples.method_key(setting["method"], setting["decoding"], setting["k"])
                examples.write_example(examples_dir, track.name, rate, x, refs, key, setting["estimates"],
                                       [r for r in srows if r["instrument"]])
            tick = time.time()
    df = pd.DataFrame(rows, columns=list(COLUMNS))
    summary = summarize(df)
    out_dir = Path(out_dir) if out_dir else paths.runs_dir() / f"evaluate_{cfg.name}_{split}"
    meta = {"preset": cfg.name, "commit": git_commit(), "root": str(root), "split": split,
            "run_dir": str(run_dir) if run_dir else None, "methods": list(methods), "ks": ks,
            "n_tracks": len(tracks), "seconds": round(time.time() - t0, 1),
            "separation_seconds": {m: round(v, 1) for m, v in timing.items()}, "config": config_to_dict(cfg)}
    _write_outputs(df, summary, meta, out_dir, "separation", "summary")
    if write_results if write_results is not None else own_root:
        _write_outputs(df, summary, meta, paths.results_dir(), f"separation_{cfg.name}",
                       f"separation_{cfg.name}")
    return df


def _cluster_methods():
    from .cluster import METHODS

    return METHODS


def _write_outputs(df, summary, meta, out_dir: Path, csv_name: str, md_name: str) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    df.to_csv(out_dir / f"{csv_name}.csv", index=False, float_format="%.4f")
    records = json.loads(summary.to_json(orient="records"))
    (out_dir / f"{csv_name}.json").write_text(json.dumps({**meta, "summary": records}, indent=1))
    header = (f"# Separation of 'other' into instruments ({meta['preset']}, {meta['split']} split, "
              f"{meta['n_tracks']} tracks)\n\nMedians over matched (track, instrument) pairs; "
              "SI-SDR/SDR in dB; k_label n = the track's number of instruments, auto = found by the "
              "method.\n\n")
    (out_dir / f"{md_name}.md").write_text(header + markdown_table(summary))


# --- CLI -------------------------------------------------------------------------------


def add_arguments(parser) -> None:
    """Arguments of ``python -m mss_helpers evaluate``."""
    parser.add_argument("--preset", default=None, help="tiny, cpu or paper (default: $MSS_PRESET or cpu)")
    parser.add_argument("--root", default=None, help="data set root (default: the preset's embedded set)")
    parser.add_argument("--split", default="test", choices=("train", "test"))
    parser.add_argument("--out", default=None, help="output folder (default: runs/evaluate_<preset>_<split>)")
    parser.add_argument("--run", default=None, help="trained autoencoder run folder (default: the preset's)")
    parser.add_argument("--methods", default=None, help="comma-separated method names (default: all)")
    parser.add_argument("--k", default=None, help="comma-separated k values, 'n' = true number (default: preset)")
    parser.add_argument("--examples", default=None, help="also write listening examples to this folder")
    parser.add_argument("--max-tracks", type=int, default=None, help="only the first N tracks")


def run(args) -> int:
    from .config import get_config

    cfg = get_config(args.preset)
    # Every argument is checked before any work (rendering data, loading a model).
    methods = [m.strip() for m in args.methods.split(",") if m.strip()] if args.methods else None
    ks = _parse_ks(args.k.split(",")) if args.k else None
    unknown = [m for m in methods or () if m not in all_methods(cfg) and m not in _cluster_methods()]
    if unknown:
        raise ConfigError(f"--methods: unknown methods {', '.join(unknown)}; "
                          f"choose from {', '.join(all_methods(cfg))}")
    if args.max_tracks is not None and args.max_tracks < 1:
        raise ConfigError(f"--max-tracks must be at least 1, got {args.max_tracks}")
    if args.root:
        from .datasets import detect_format

        try:
            detect_format(args.root)
        except DataRootError as exc:
            raise DataRootError(f"--root: {exc}") from exc
    if _needs_model(methods or all_methods(cfg)):
        from .train import ae_run_dir

        run_dir = Path(args.run) if args.run else ae_run_dir(cfg)
        if not (run_dir / "best.pt").is_file():
            how = f"--preset {cfg.name}" + (f" --run-dir {run_dir}" if args.run else "")
            raise RunNotFoundError(f"no trained autoencoder at {run_dir} (the latent methods need one); "
                                   f"train it first: python -m mss_helpers train {how}, or evaluate only "
                                   f"the reference methods: --methods {','.join(separate.REFERENCE_METHODS)}")
    df = run_evaluation(cfg, root=args.root, split=args.split, run_dir=args.run, methods=methods, ks=ks,
                        out_dir=args.out, examples_dir=args.examples, max_tracks=args.max_tracks)
    print(markdown_table(summarize(df)))
    return 0
