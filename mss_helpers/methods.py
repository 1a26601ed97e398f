"""The evaluation's method table, and how each family of methods separates one input.

Every method is one row of :func:`method_table` (its family, the trained model
it needs, whether it runs by default, whether it reads the stereo "other");
every trained model other than the autoencoder one entry of :data:`MODELS`
(where its run is and how it is loaded). :func:`separate_track` runs the
methods of one input one *family* at a time (:data:`FAMILIES`: reference rows,
NMF groupings, latent-frame clusterings, learned separators, pan clustering).
A new family is one generator ``(ctx, method) -> settings`` in :data:`FAMILIES`
plus its rows in the table; :mod:`evaluate_track` (scoring, the loop over
tracks) does not change.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import nmf, separate
from .config import Config
from .errors import ConfigError

_LOADED: dict = {}  # per process: trained models by (name, run, checkpoint signature)


def file_signature(path: Path) -> list:
    """Name, size and mtime of ``path`` (or of each file in the folder ``path``): a model's version."""
    files = sorted(p for p in path.iterdir() if p.is_file()) if path.is_dir() else [path]
    return [[p.name, p.stat().st_size, p.stat().st_mtime_ns] for p in files if p.exists()]


def cluster_methods() -> tuple:
    from .cluster import METHODS

    return tuple(METHODS)


@dataclass(frozen=True)
class Method:
    """One row of the evaluation's method table."""

    family: str  # the key of FAMILIES whose generator separates a track with it
    needs: tuple[str, ...] = ()  # the trained models it uses: "vae" (the autoencoder) and/or keys of MODELS
    optional: bool = False  # run only when named in --methods (its model has its own train command)
    stereo: bool = False  # reads the stereo "other" (the pan methods)


# Trained models other than the autoencoder: (module, function giving the run folder, loader); each
# loader raises RunNotFoundError naming the command that trains it.
MODELS = {"separator": ("separator", "separator_run_dir", "load_separator"),
          "pan_student": ("separator_student", "pan_student_run_dir", "load_pan_student"),
          "vaebss": ("vaebss", "vaebss_run_dir", "load_vaebss"),
          "deep_clustering": ("deep_clustering", "deep_clustering_run_dir", "load_deep_clustering")}


def method_table() -> dict[str, Method]:
    """Every method the evaluation knows, in table order."""
    table = {m: Method("nmf" if m == "nmf" else "reference") for m in separate.REFERENCE_METHODS}
    table.update({m: Method("frames", ("vae",)) for m in cluster_methods()})
    table.update({m: Method("nmf", ("vae",)) for m in separate.LATENT_TF_METHODS})
    # MixIT needs train-separator, pan_student train-student (both group their outputs with the autoencoder's
    # latents too); pan (clustering by stereo position) and pan_student (a mono network taught by it) read
    # the stereo "other"
    table["mixit"] = Method("mixit", ("separator", "vae"), optional=True)
    table["pan"] = Method("spatial", optional=True, stereo=True)
    table["pan_student"] = Method("mixit", ("pan_student", "vae"), optional=True)
    # the seed's references: a VAE whose latent space is made of sources (train-vaebss; no labels), and
    # deep clustering (train-deepclustering; the LABELLED reference: trained on the instruments' masks)
    table["vaebss"] = Method("vaebss", ("vaebss",), optional=True)
    table["deep_clustering"] = Method("deep_clustering", ("deep_clustering",), optional=True)
    return table


def all_methods(cfg: Config) -> tuple[str, ...]:
    """The methods run by default, in table order: references, latent-frame clusterings, latent NMF."""
    table = method_table()
    return tuple(m for m, row in table.items() if not row.optional and (row.family != "frames"
                                                                         or m in cfg.cluster.methods))


OPTIONAL_METHODS = tuple(m for m, row in method_table().items() if row.optional)


def needs_model(methods) -> bool:
    """Whether any of ``methods`` needs the trained autoencoder."""
    table = method_table()
    return any("vae" in table[m].needs for m in methods if m in table)


def method_family(method: str, cfg: Config) -> str:
    """The key of :data:`FAMILIES` that runs ``method``; :class:`ConfigError` for an unknown one."""
    row = method_table().get(method)
    if row is None:
        raise ConfigError(f"unknown method {method!r}; choose from {', '.join(all_methods(cfg))}")
    return row.family


def trained_models(methods) -> list[str]:
    """The keys of :data:`MODELS` that ``methods`` need, in table order."""
    table = method_table()
    return list(dict.fromkeys(n for m in methods if m in table for n in table[m].needs if n in MODELS))


def trained_run_dir(name: str, cfg: Config) -> Path:
    """The run folder of the trained model ``name`` of :data:`MODELS` for ``cfg``."""
    module, run_dir_fn, _ = MODELS[name]
    return getattr(importlib.import_module(f"mss_helpers.{module}"), run_dir_fn)(cfg)


def load_trained(name: str, cfg: Config):
    """The trained model ``name`` of :data:`MODELS`, loaded once per process (reloaded when retrained)."""
    run = trained_run_dir(name, cfg)
    key = (name, str(run), str(file_signature(run / "last.pt")))
    if key not in _LOADED:  # RunNotFoundError names the command that trains it
        module, _, loader = MODELS[name]
        _LOADED[key] = getattr(importlib.import_module(f"mss_helpers.{module}"), loader)(cfg)
    return _LOADED[key]


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
    from .separator_group import mixit_settings

    sep = _trained(ctx, method)
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


def _trained(ctx: TrackContext, method: str):
    name = next(n for n in method_table()[method].needs if n in MODELS)
    model = ctx.models.get(name)
    return load_trained(name, ctx.cfg) if model is None else model


def _fixed_ks(ctx: TrackContext) -> list[tuple[str, int]]:
    """``(k_label, k)`` of the table's k values that ask for at least one estimate."""
    return [(str(k), ctx.concrete(k)) for k in ctx.ks if ctx.concrete(k) >= 1]


def _vaebss_settings(ctx: TrackContext, method: str):
    """VAE-BSS's K masked latent sources: ungrouped, merged into each k, and into its active sources (auto)."""
    from .vaebss import active_sources, group_sources, separate_vaebss

    v = ctx.cfg.vaebss
    sources = separate_vaebss(_trained(ctx, method), ctx.x, ctx.cfg)  # (K, C, S)
    yield _setting(method, "ungrouped", len(sources), str(len(sources)), list(sources))
    n_active = max(1, int(active_sources(sources, v.energy_floor_db).sum()))
    for label, k in _fixed_ks(ctx) + [("auto", n_active)]:
        groups = group_sources(sources, k, v.n_fft, v.hop)
        yield _setting(method, "grouped", len(groups), label, list(groups))


def _deep_clustering_settings(ctx: TrackContext, method: str):
    """Deep clustering's estimates at each k and at k = auto: ``hard`` (the paper's binary masks, nearest
    centroid) and ``soft`` (softmax over the distances to the centroids, ``soft_temperature``)."""
    from .deep_clustering import separate_dc_many

    ks = _fixed_ks(ctx) + [("auto", "auto")]
    model, d = _trained(ctx, method), ctx.cfg.deep_clustering
    for decoding, temperature in (("hard", 0.0), ("soft", d.soft_temperature)):
        cfg = ctx.cfg.replace(deep_clustering={"mask_temperature": temperature})
        for (label, _), est in zip(ks, separate_dc_many(model, ctx.x, [k for _, k in ks], cfg, seed=ctx.seed)):
            yield _setting(method, decoding, len(est), label, list(est))


# Each family: a generator (ctx, method) -> settings. Add a family here and its methods to method_table.
FAMILIES = {"reference": _reference_settings, "nmf": _nmf_settings, "frames": _frame_settings,
            "mixit": _mixit_settings, "spatial": _spatial_settings, "vaebss": _vaebss_settings,
            "deep_clustering": _deep_clustering_settings}


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
