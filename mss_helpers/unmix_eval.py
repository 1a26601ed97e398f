"""Scoring the Open-Unmix first stage and writing its estimates for the rest of the pipeline.

- :func:`evaluate_unmix`: museval BSS-eval v4 SDR of the "other" estimate next
  to the mixture-as-estimate floor and the oracle ratio-mask ceiling.
- :func:`write_estimates`: the estimate of every track, cached where
  :func:`mss_helpers.datasets.estimate_path` says, read by the autoencoder and
  the clustering when ``cfg.data.source == "unmix"``.
- the ``python -m mss_helpers unmix`` command.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import numpy as np

from . import audio as audio_mod
from . import datasets, paths
from .config import Config, get_config
from .unmix import WEIGHTS_ENV, load_unmix, separate_other, unmix_rate
from .unmix_train import first_stage, resolve_root, train_unmix


def oracle_irm(other: np.ndarray, rest: np.ndarray, n_fft: int = 1024, hop: int = 256,
               power: float = 1.0) -> np.ndarray:
    """Oracle ideal ratio mask estimate of "other" from the true stems (a ceiling).

    mask = |O|^p / (|O|^p + |R|^p) applied to the mixture STFT (O + R);
    ``power=1`` is museval's IRM1, ``power=2`` IRM2.

    other, rest : (channels, samples) float32 -> (channels, samples) float32.
    """
    import librosa

    other = np.asarray(other, np.float32)
    rest = np.asarray(rest, np.float32)
    if other.shape != rest.shape or other.ndim != 2:
        raise ValueError(f"other and rest must be (channels, samples) of one shape, got {other.shape}, {rest.shape}")
    O = librosa.stft(other, n_fft=n_fft, hop_length=hop)  # (C, bins, frames)
    R = librosa.stft(rest, n_fft=n_fft, hop_length=hop)
    a, b = np.abs(O) ** power, np.abs(R) ** power
    mask = a / np.maximum(a + b, 1e-12)
    return librosa.istft(mask * (O + R), hop_length=hop, n_fft=n_fft, length=other.shape[1]).astype(np.float32)


def bss_sdr(reference: np.ndarray, estimate: np.ndarray, mixture: np.ndarray, rate: int) -> dict:
    """museval BSS-eval v4 of one "other" estimate: 1 s windows, median over windows.

    The rest of the mix (mixture - other) is the second reference so that SIR
    is defined; in BSS-eval v4 the metrics of "other" do not depend on the
    second estimate, so the mixture stands in for it (``mixture - estimate``
    would be silent when the mixture itself is scored, which museval refuses).

    reference, estimate, mixture : (channels, samples) float32 at ``rate``.
    Returns ``{"SDR", "SIR", "SAR", "ISR"}`` in dB (medians over windows).
    """
    import museval

    if reference.shape != estimate.shape or reference.shape != mixture.shape:
        raise ValueError(f"shapes differ: reference {reference.shape}, estimate {estimate.shape}, "
                         f"mixture {mixture.shape}")
    refs = np.stack([reference, mixture - reference]).transpose(0, 2, 1)  # (2 sources, samples, channels)
    ests = np.stack([estimate, mixture]).transpose(0, 2, 1)
    sdr, isr, sir, sar = museval.evaluate(refs, ests, win=int(rate), hop=int(rate))
    out = {}
    for name, values in (("SDR", sdr), ("SIR", sir), ("SAR", sar), ("ISR", isr)):
        v = np.asarray(values[0], dtype=float)
        v = v[np.isfinite(v)]  # silent windows are NaN in museval; skip them as its aggregation does
        if v.size == 0:
            raise ValueError("every 1 s window of the reference is silent; BSS-eval is undefined here")
        out[name] = float(np.median(v))
    return out


def evaluate_unmix(cfg: Config, separator=None, root=None, split: str = "test", tracks=None,
                   device=None, write: bool = True) -> dict:
    """BSS-eval v4 SDR of the "other" estimate on the ``split`` tracks, with floor and ceiling rows.

    Rows: ``unmix`` (the separator), ``mixture`` (the mixture as estimate, a
    floor), ``oracle_irm`` (ratio mask from the true stems, a ceiling). Writes
    ``results_dir()/unmix_<preset>.json`` when ``write``.

    Returns
    -------
    {"per_track": {track: {method: {SDR, SIR, SAR, ISR}}}, "median": {method: {...}},
     "rate": Hz, "n_tracks": int, "model": str}
    """
    if tracks is None:
        tracks = datasets.load_tracks(resolve_root(cfg, root), split)
    if not tracks:
        raise ValueError(f"no {split} tracks to evaluate")
    if separator is None:
        separator = first_stage(cfg, root=root, device=device)
    rate, ch = unmix_rate(cfg), cfg.data.channels
    per_track = {}
    for t in tracks:
        mix = t.load("mixture", rate=rate, channels=ch)
        other = t.load("other", rate=rate, channels=ch)
        n = min(mix.shape[1], other.shape[1])
        mix, other = mix[:, :n], other[:, :n]
        est = separate_other(separator, mix, rate, chunk_s=cfg.unmix.chunk_s, device=device)
        irm = oracle_irm(other, mix - other, n_fft=cfg.unmix.n_fft, hop=cfg.unmix.n_hop)
        per_track[t.name] = {name: bss_sdr(other, e, mix, rate)
                             for name, e in (("unmix", est), ("mixture", mix), ("oracle_irm", irm))}
    methods = ("unmix", "mixture", "oracle_irm")
    median = {m: {k: float(np.median([per_track[t][m][k] for t in per_track])) for k in ("SDR", "SIR", "SAR", "ISR")}
              for m in methods}
    weights = cfg.unmix.weights_dir or os.environ.get(WEIGHTS_ENV)
    result = {"preset": cfg.name, "split": split, "rate": rate, "channels": ch, "n_tracks": len(per_track),
              "model": f"pretrained {cfg.unmix.pretrained}" if weights else "small model trained here",
              "median": median, "per_track": per_track}
    if write:
        paths.atomic_write(paths.results_dir() / f"unmix_{cfg.name}.json",
                           lambda p: Path(p).write_text(json.dumps(result, indent=2)))
    return result


def write_estimates(cfg: Config, run_dir=None, root=None, splits=("train", "test"), separator=None,
                    device=None, force: bool = False, progress: bool = True) -> Path:
    """Write the "other" estimate of every track of ``splits`` (skipping existing files); return the root.

    The separator is, in order: ``separator``, the trained model in ``run_dir``,
    or :func:`first_stage` of ``cfg``. Each file is written whole (atomically), so an
    interrupted run resumes at the first song without one; a progress bar counts the songs.
    """
    from tqdm.auto import tqdm

    root = resolve_root(cfg, root)
    if separator is None:
        separator = load_unmix(run_dir, device=device or "cpu") if run_dir else first_stage(cfg, root, device)
    rate, ch = unmix_rate(cfg), cfg.data.channels
    for split in splits:
        for t in tqdm(datasets.load_tracks(root, split), desc=f"Open-Unmix {split}", disable=not progress):
            path = datasets.estimate_path(cfg, t, must_exist=False)
            if path.is_file() and not force:
                continue
            mix = t.load("mixture", rate=rate, channels=ch)
            est = separate_other(separator, mix, rate, chunk_s=cfg.unmix.chunk_s, device=device)
            audio_mod.write_audio(path, est, rate, subtype="FLOAT")
    return datasets.estimates_root(cfg)


# --- command line ------------------------------------------------------------------


def add_arguments(parser) -> None:
    parser.add_argument("--root", default=None, help="data set root (default: the preset's embedded set)")
    parser.add_argument("--split", default="test", choices=("train", "test", "all"),
                        help="tracks to separate (default: test; 'all': train and test)")
    parser.add_argument("--out", default=None,
                        help="folder for <track>/other.wav estimates (<split>/<track>/ with --split all); "
                             "default: the cache the pipeline reads when data.source is 'unmix'")
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--weights", default=None, help="folder with pretrained Open-Unmix weights")
    group.add_argument("--train", action="store_true", help="train (or reuse) the small model on the data set")
    parser.add_argument("--model", default=None, help="pretrained architecture: umxhq (default), umxl, umx")
    parser.add_argument("--preset", default=None, help="config preset (default: $MSS_PRESET or cpu)")
    parser.add_argument("--evaluate", action="store_true", help="also score the estimates (museval SDR)")
    parser.add_argument("--device", default=None)


def run(args) -> int:
    cfg = get_config(args.preset)
    if args.weights:
        cfg = cfg.replace(unmix={"weights_dir": str(args.weights)})
    if args.model:
        cfg = cfg.replace(unmix={"pretrained": args.model})
    root = resolve_root(cfg, args.root)
    if args.train:
        separator = load_unmix(train_unmix(cfg, root=root, device=args.device), device=args.device or "cpu")
    else:
        separator = first_stage(cfg, root=root, device=args.device)
    out = Path(args.out) if args.out else None
    rate, ch = unmix_rate(cfg), cfg.data.channels
    splits = ("train", "test") if args.split == "all" else (args.split,)
    tracks = [t for split in splits for t in datasets.load_tracks(root, split)]
    for t in tracks:
        t0 = time.perf_counter()
        est = separate_other(separator, t.load("mixture", rate=rate, channels=ch), rate,
                             chunk_s=cfg.unmix.chunk_s, device=args.device)
        if out is None:  # where datasets.input_audio looks for it
            path = datasets.estimate_path(cfg, t)
        else:
            path = (out / t.subset if len(splits) > 1 else out) / t.name / "other.wav"
        audio_mod.write_audio(path, est, rate, subtype="FLOAT")
        print(f"{t.name}: {est.shape[1] / rate:.1f} s separated in {time.perf_counter() - t0:.1f} s: {path}")
    out = out or datasets.estimates_root(cfg)
    if args.evaluate:
        result = evaluate_unmix(cfg, separator=separator, tracks=tracks, device=args.device, write=False)
        paths.atomic_write(out / "scores.json", lambda p: Path(p).write_text(json.dumps(result, indent=2)))
        for method, m in result["median"].items():
            print(f"{method:>10}: SDR {m['SDR']:6.2f} dB (median over {result['n_tracks']} tracks)")
    return 0
