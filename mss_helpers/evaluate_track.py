"""One track of the separation table: every method's estimates, their scores, and the job around them.

:func:`separate_track` runs the methods of one input, one *family* at a time
(:data:`FAMILIES`: reference rows, NMF groupings, latent-frame clusterings);
a new family of methods is one generator ``(ctx, method) -> settings`` added
to :data:`FAMILIES` and its method names to :func:`method_family`, with no
change to the loop over tracks. :func:`score_setting` turns a setting into
rows. :func:`evaluate_track` is the unit of work that :mod:`evaluate` runs
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

from . import nmf, paths, separate
from .config import Config, config_to_dict
from .errors import ConfigError, UserError

UNSUPERVISED = ("mixture_mse", "assignment_entropy", "spectral_entropy", "sparsity", "energy_share")
COLUMNS = ("track", "method", "decoding", "k", "k_label", "instrument", "estimate", "si_sdr_db",
           "si_sdri_db", "sdr_db") + UNSUPERVISED + ("note",)
SCORES = ("si_sdr_db", "si_sdri_db", "sdr_db")
SILENT_REFERENCE_DB = -60.0  # dBFS; below it an instrument of "other" counts as absent from the track


def cluster_methods() -> tuple:
    from .cluster import METHODS

    return tuple(METHODS)


def all_methods(cfg: Config) -> tuple[str, ...]:
    """Every method in table order: references, latent-frame clusterings, latent NMF."""
    return separate.REFERENCE_METHODS + tuple(cfg.cluster.methods) + separate.LATENT_TF_METHODS


# accepted by --methods, not run by default: mixit needs train-separator, pan_student train-student;
# pan (clustering by stereo position) and pan_student (a mono network taught by it) read the stereo "other"
OPTIONAL_METHODS = ("mixit", "pan", "pan_student")


def needs_model(methods) -> bool:
    """Whether any of ``methods`` needs the trained autoencoder."""
    return any(m not in separate.REFERENCE_METHODS + ("pan",) for m in methods)


def method_family(method: str, cfg: Config) -> str:
    """The key of :data:`FAMILIES` that runs ``method``; :class:`ConfigError` for an unknown one."""
    if method in ("mixture", "oracle_irm", "oracle_frames"):
        return "reference"
    if method in ("nmf", "latent_nmf"):
        return "nmf"
    if method in cluster_methods():
        return "frames"
    if method in ("mixit", "pan_student"):
        return "mixit"
    if method == "pan":
        return "spatial"
    raise ConfigError(f"unknown method {method!r}; choose from {', '.join(all_methods(cfg))}")


class TrackContext:
    """What the methods of one input share: the input, references, ks, config, models and caches.

    ``frames`` (the VAE's latent frames of ``x``) is computed on first use; ``stereo`` is the
    stereo ``(2, S)`` input of the pan methods (None where none was loaded).
    """

    def __init__(self, x, refs: dict, ks, cfg: Config, models: dict, seed: int = 0, stereo=None):
        self.x, self.refs, self.ks, self.cfg, self.models, self.seed = x, refs, ks, cfg, models, seed
        self.stereo = stereo
        self.cache: dict = {}  # NMF and component latents, shared across k and methods
        self._frames = None

    @property
    def model(self):
        model = self.models.get("vae")
        if model is None:
            raise ValueError("the latent methods need a trained model (model=None given)")
        return model

    @property
    def frames(self) -> np.ndarray:
        if self._frames is None:
            from .latents import encode_track

            self._frames = encode_track(self.model, self.x)
        return self._frames

    def concrete(self, k):
        """A k of the table as a number: "n" is the track's number of instruments."""
        return len(self.refs) if k == "n" else k


def _reference_settings(ctx: TrackContext, method: str):
    c, n_refs = ctx.cfg.cluster, len(ctx.refs)
    if method == "mixture":
        yield _setting(method, "-", max(n_refs, 1), "n", separate.mixture_estimate(ctx.x, max(n_refs, 1)))
        return
    if not ctx.refs:
        return  # oracles need ground truth
    if method == "oracle_irm":
        est = separate.oracle_irm(ctx.x, ctx.refs, c.stft_n_fft, c.stft_hop)
    else:
        hop = ctx.models["vae"].hop_length if ctx.models.get("vae") is not None else int(np.prod(ctx.cfg.model.ratios))
        est = separate.oracle_frames(ctx.x, ctx.refs, hop)
    yield _setting(method, "-", n_refs, "n", est)


def _nmf_settings(ctx: TrackContext, method: str):
    c = ctx.cfg.cluster
    opts = {"fit_s": c.nmf_fit_s, "chunk_s": c.nmf_chunk_s, "cache": ctx.cache}
    done: dict = {}  # k -> estimates, so k="n" equal to a fixed k is not computed twice
    for k in ctx.ks:
        kk = ctx.concrete(k)
        if kk < 1:
            continue
        decoding = "-" if method == "nmf" else "soft"
        if kk > c.nmf_components:  # k groups of fewer NMF components: a note row, as a failed clustering
            yield {**_setting(method, decoding, 0, str(k), None),
                   "note": f"k={kk} needs at least k NMF components, cluster.nmf_components is "
                           f"{c.nmf_components}; use a k up to {c.nmf_components} or raise nmf_components"}
            continue
        if kk not in done:
            if method == "nmf":
                done[kk] = nmf.nmf_cluster(ctx.x, kk, c.nmf_components, c.stft_n_fft, c.stft_hop, ctx.seed,
                                           rate=ctx.cfg.data.sample_rate, **opts)
            else:
                done[kk] = nmf.latent_nmf(ctx.model, ctx.x, kk, c.nmf_components, c.stft_n_fft, c.stft_hop,
                                          ctx.seed, **opts)
        yield _setting(method, decoding, kk, str(k), done[kk])


def _frame_settings(ctx: TrackContext, method: str):
    from .cluster import DENSITY_METHODS, ClusterError, cluster_frames

    c = ctx.cfg.cluster
    done: dict = {}  # k -> (hard, soft) settings
    for k in ctx.ks:
        if method in DENSITY_METHODS:
            if "auto" in done:
                continue
            kk, label = None, "auto"
        else:
            kk, label = ctx.concrete(k), str(k)
            if kk < 1:
                continue
        if (kk or "auto") in done:
            for prev in done[kk]:
                yield {**prev, "k_label": label}
            continue
        try:
            res = cluster_frames(ctx.frames, method, kk, embedding=c.embedding, cfg=c, seed=ctx.seed)
        except ClusterError as exc:  # e.g. DBSCAN finding only noise: a result, kept in the table
            done[kk or "auto"] = [{**_setting(method, d, 0, label, None), "note": str(exc)}
                                  for d in ("hard", "soft")]
            yield from done[kk or "auto"]
            continue
        hard = separate.hard_time_masks(ctx.model, ctx.frames, res.labels, ctx.x.shape[1])
        first = _setting(method, "hard", res.k, label, hard, res.labels)
        yield first
        soft = separate.soft_masks(ctx.x, hard, c.stft_n_fft, c.stft_hop)
        second = _setting(method, "soft", res.k, label, soft, res.labels)
        yield second
        done[kk or "auto"] = [first, second]


def _mixit_settings(ctx: TrackContext, method: str):
    """The outputs of the MixIT separator (or of the pan-taught student), grouped
    (see :func:`separator_group.mixit_settings`)."""
    from .separator import load_separator, separator_run_dir
    from .separator_group import mixit_settings
    from .separator_student import load_pan_student, pan_student_run_dir

    name = "separator" if method == "mixit" else method
    sep = ctx.models.get(name)
    if sep is None:
        run = separator_run_dir(ctx.cfg) if method == "mixit" else pan_student_run_dir(ctx.cfg)
        key = (name, str(run), str(_file_signature(run / "last.pt")))  # a retrained network reloads
        if key not in _WORKER:  # RunNotFoundError names the command that trains it
            _WORKER[key] = load_separator(ctx.cfg) if method == "mixit" else load_pan_student(ctx.cfg)
        sep = _WORKER[key]
    yield from mixit_settings(ctx.x, ctx.refs, ctx.ks, ctx.cfg, sep, vae=ctx.models.get("vae"), method=method)


def _spatial_settings(ctx: TrackContext, method: str):
    """Pan clustering of the stereo input (:func:`spatial.separate_pan`) at each k and at k = auto."""
    from .spatial import separate_pan

    if ctx.stereo is None:
        raise ValueError("the pan method needs the stereo input (separate_track(..., stereo=))")
    c, k_range = ctx.cfg.cluster, tuple(ctx.cfg.separator.k_range)
    for k in [k for k in ctx.ks if ctx.concrete(k) >= 1] + ["auto"]:
        kk = None if k == "auto" else ctx.concrete(k)
        est, _ = separate_pan(ctx.stereo, kk, c.stft_n_fft, c.stft_hop, k_range=k_range,
                              out_channels=ctx.x.shape[0], seed=ctx.seed, name="stem 'other'")
        yield _setting(method, "-", len(est), str(k), list(est))


# Each family: a generator (ctx, method) -> settings. Add a family here (and in method_family).
FAMILIES = {"reference": _reference_settings, "nmf": _nmf_settings, "frames": _frame_settings,
            "mixit": _mixit_settings, "spatial": _spatial_settings}


def separate_track(x: np.ndarray, refs: dict, methods, ks, cfg: Config, model=None, seed: int = 0,
                   models: dict | None = None, stereo=None):
    """Run every (method, k) on one input; yield settings with their estimates.

    Parameters
    ----------
    x : (channels, samples) float32, the input
    refs : dict name -> (channels, samples), the instruments ({} without ground truth)
    methods : names from :func:`all_methods`
    ks : ints and/or "n"
    model : SEANetVAE, needed by the latent methods (same as ``models={"vae": model}``)
    models : further models by name, for families that need them
    stereo : (2, samples) float32, the stereo input of the ``pan`` method (else unused)

    Yields
    ------
    dict with ``method``, ``decoding``, ``k``, ``k_label``, ``estimates``
    (list of (channels, samples) float32) and ``labels`` (frame labels or None).
    """
    families = [method_family(m, cfg) for m in methods]  # unknown names fail before any work
    models = {**(models or {}), **({"vae": model} if model is not None else {})}
    ctx = TrackContext(x, refs, ks, cfg, models, seed, stereo)
    for method, family in zip(methods, families):
        yield from FAMILIES[family](ctx, method)


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


def _file_signature(path: Path) -> list:
    files = sorted(p for p in path.iterdir() if p.is_file()) if path.is_dir() else [path]
    return [[p.name, p.stat().st_size, p.stat().st_mtime_ns] for p in files if p.exists()]


def track_key(cfg: Config, track, methods, ks, run_dir, examples_dir) -> str:
    """Cache key of one track's rows: settings, code, model checkpoint, the track's files."""
    run = None if run_dir is None else _file_signature(Path(run_dir) / "best.pt")
    stems = track.other_stems_dir if track.other_stems_dir.is_dir() else None
    if "mixit" in methods:  # a retrained separator must not reuse old rows
        from .separator import separator_run_dir

        run = [run, _file_signature(separator_run_dir(cfg) / "last.pt")]  # load_separator's default
    if "pan_student" in methods:
        from .separator_student import pan_student_run_dir

        run = [run, _file_signature(pan_student_run_dir(cfg) / "last.pt")]
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
        stereo = datasets.input_audio(track, cfg, channels=2) if "pan" in job["methods"] else None
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
