"""One track of the separation table: every method's estimates, their scores, and the job around them.

The methods and how they separate an input are :mod:`mss_helpers.methods`
(the method table); :func:`score_setting` turns a setting into rows. :func:`evaluate_track` is the unit of work that :mod:`evaluate` runs
over tracks, serially or in worker processes: it loads what it needs, reuses a
finished track's rows from the resume cache, and returns a failure record
(instead of raising) when the track's audio is the user's problem.
"""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path

import numpy as np

from . import paths, separate
from .config import Config, config_to_dict
from .errors import UserError
# the method table; its names stay importable from here
from .methods import (FAMILIES, MODELS, OPTIONAL_METHODS, Method, TrackContext, all_methods,  # noqa: F401
                      cluster_methods, load_trained, method_family, method_table, needs_model,
                      separate_track, trained_models, trained_run_dir)
from .methods import file_signature as _file_signature

UNSUPERVISED = ("mixture_mse", "assignment_entropy", "spectral_entropy", "sparsity", "energy_share")
COLUMNS = ("track", "method", "decoding", "k", "k_label", "instrument", "estimate", "si_sdr_db",
           "si_sdri_db", "sdr_db") + UNSUPERVISED + ("note",)
SCORES = ("si_sdr_db", "si_sdri_db", "sdr_db")
SILENT_REFERENCE_DB = -60.0  # dBFS; below it an instrument of "other" counts as absent from the track


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


# --- the unit of work: one track, with its resume cache --------------------------------

_WORKER: dict = {}  # per process: loaded track lists and models, reused across tracks


def _tracks(root: str, split: str) -> dict:
    from . import datasets

    key = ("tracks", root, split)
    if key not in _WORKER:
        # Tracks with an unreadable mixture are left out: run_evaluation reports them.
        _WORKER[key] = {t.name: t for t in datasets.load_tracks(root, split, unreadable=[])}
    return _WORKER[key]


def load_models(run_dir, methods) -> dict:
    """The models ``methods`` need, loaded once per process: ``{"vae": SEANetVAE}`` or ``{}``."""
    if run_dir is None or not needs_model(methods):
        return {}
    key = ("vae", str(run_dir), str(_file_signature(Path(run_dir) / "best.pt")))  # a retrained model reloads
    if key not in _WORKER:
        from .model import load_model

        _WORKER[key] = load_model(run_dir)[0]
    return {"vae": _WORKER[key]}


def _code_signature() -> str:
    """Hash of the package's source: rows computed by other code are never reused."""
    if "code" not in _WORKER:
        h = hashlib.sha1()
        for p in sorted(Path(__file__).parent.glob("*.py")):
            h.update(p.name.encode() + p.read_bytes())
        _WORKER["code"] = h.hexdigest()
    return _WORKER["code"]


def track_key(cfg: Config, track, methods, ks, run_dir, examples_dir) -> str:
    """Cache key of one track's rows: settings, code, model checkpoints, the track's files."""
    run = None if run_dir is None else _file_signature(Path(run_dir) / "best.pt")
    stems = track.other_stems_dir if track.other_stems_dir.is_dir() else None
    if trained_models(methods):  # a retrained separator must not reuse old rows
        run = [run] + [_file_signature(trained_run_dir(name, cfg) / "last.pt") for name in trained_models(methods)]
    d = {"config": config_to_dict(cfg), "methods": list(methods), "ks": list(ks), "run": run,
         "code": _code_signature(), "track": _file_signature(Path(track.path)),
         "stems": _file_signature(stems) if stems else None,
         "examples": str(examples_dir) if examples_dir else None}
    return hashlib.sha1(json.dumps(d, sort_keys=True, default=str).encode()).hexdigest()


def evaluate_track(job: dict) -> dict:
    """Separate and score one track; the unit that :func:`evaluate.run_evaluation` runs in parallel.

    Parameters
    ----------
    job : dict with ``cfg``, ``root``, ``split``, ``track`` (name), ``methods``, ``ks``,
        ``run_dir`` (or None), ``examples_dir`` (or None: no listening examples),
        ``cache_dir`` (or None: no resume cache); it runs on one torch and one BLAS thread

    Returns
    -------
    dict with ``track``, ``rows`` (list of row dicts), ``timing`` (seconds per
    method), ``reused`` (rows came from the cache) and ``error`` (None, or the
    one-line reason a :class:`UserError` stopped this track).
    """
    import torch
    from threadpoolctl import threadpool_limits

    # One torch and one BLAS thread per track, whether tracks run serially or in loky workers, so
    # the rows do not depend on --jobs (float reductions differ between thread counts).
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with threadpool_limits(1):
            return _evaluate_track(job)
    finally:
        torch.set_num_threads(threads)


def _evaluate_track(job: dict) -> dict:
    from . import datasets

    cfg, name = job["cfg"], job["track"]
    out = {"track": name, "rows": [], "timing": {}, "reused": False, "error": None}
    try:
        track = _tracks(str(job["root"]), job["split"])[name]
        cache_file = None
        if job.get("cache_dir"):
            key = track_key(cfg, track, job["methods"], job["ks"], job["run_dir"], job["examples_dir"])
            # One file per (track, key): evaluations of other settings into the same folder keep theirs.
            cache_file = Path(job["cache_dir"]) / f"{hashlib.sha1(name.encode()).hexdigest()[:12]}_{key[:12]}.json"
            examples_missing = bool(job.get("examples_dir")) and not (Path(job["examples_dir"]) / name).is_dir()
            if cache_file.is_file() and not examples_missing:
                cached = json.loads(cache_file.read_text())
                if cached.get("key") == key:
                    return {**out, "rows": cached["rows"], "timing": cached["timing"], "reused": True}
        x = datasets.input_audio(track, cfg)  # AudioError for a silent, short or non-finite input
        table = method_table()
        stereo = (datasets.input_audio(track, cfg, channels=2)
                  if any(table[m].stereo for m in job["methods"] if m in table) else None)
        rate = cfg.data.sample_rate
        # Instruments silent for the whole excerpt (they rested throughout) are not references.
        refs = track.other_stems(rate=rate, channels=cfg.data.channels, min_db=SILENT_REFERENCE_DB)
        refs = {n: separate.fit_length(r, x.shape[1]) for n, r in refs.items()}
        models = load_models(job["run_dir"], job["methods"])
        tick = time.time()
        for setting in separate_track(x, refs, job["methods"], job["ks"], cfg, seed=cfg.cluster.seed,
                                      models=models, stereo=stereo):
            out["timing"][setting["method"]] = out["timing"].get(setting["method"], 0.0) + time.time() - tick
            srows = score_setting(x, refs, setting, rate)
            out["rows"] += [{"track": name, **r} for r in srows]
            # A setting whose clustering failed (estimates None) has nothing to listen to.
            if job.get("examples_dir") and setting["estimates"]:
                from . import examples

                key_ = examples.method_key(setting["method"], setting["decoding"], setting["k"])
                examples.write_example(job["examples_dir"], name, rate, x, refs, key_, setting["estimates"],
                                       [r for r in srows if r["instrument"]])
            tick = time.time()
        if cache_file is not None:
            from .examples import json_value

            rows = [{k: json_value(v) for k, v in r.items()} for r in out["rows"]]
            record = {"key": key, "track": name, "rows": rows, "timing": out["timing"]}
            paths.atomic_write(cache_file, lambda p: Path(p).write_text(json.dumps(record)))
    except UserError as exc:  # the track's data is at fault: report it, score the others
        out.update(rows=[], error=" ".join(str(exc).split()))
    return out
