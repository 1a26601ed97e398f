"""The Open-Unmix wrapper: full mixture -> estimate of the "other" stem.

Everything model-related comes from the installed ``openunmix`` package
(through :mod:`mss_helpers.compat`): its ``OpenUnmix`` spectrogram model, its
``Separator`` (STFT, Wiener/EM filtering, inverse STFT) and its loaders. This
module owns the models and running them:

- :func:`load_pretrained`: the published weights (``umxhq``, ``umxl``, ...) from
  a local folder or the torch hub cache, never downloading; offline it fails at
  once and names the files to fetch and where to put them.
- :func:`separate_other`: whole tracks in overlapping chunks (bounded memory).
- :func:`build_separator` / :func:`export_separator` / :func:`load_unmix`: the
  small "other" model's architecture and its files in openunmix's own layout.

Training that small model is :mod:`mss_helpers.unmix_train`; scoring the first
stage, writing its estimates for the pipeline and the ``unmix`` command are
:mod:`mss_helpers.unmix_eval`. Where the estimates live is a data fact
(:func:`mss_helpers.datasets.estimate_path`).
"""

from __future__ import annotations

import inspect
import json
import os
import re
from pathlib import Path

import numpy as np
import torch

from . import audio as audio_mod
from . import compat
from .config import Config
from .errors import ConfigError, RunNotFoundError, WeightsNotFoundError
from .paths import atomic_write

STEMS = ("vocals", "drums", "bass", "other")
WEIGHTS_ENV = "MSS_UNMIX_WEIGHTS"
EXPORT_DIR = "openunmix"  # sub-folder of a run holding the model in openunmix's own layout


# --- pretrained weights ------------------------------------------------------------


def weight_urls(name: str) -> dict[str, str]:
    """``{target: url}`` of the published weights of model ``name``, read from the installed package.

    The URLs live inside ``openunmix.<name>_spec``; reading its source keeps this
    module in step with whatever version of the package is installed.
    """
    package = compat.openunmix()
    spec = getattr(package, f"{name}_spec", None)
    if spec is None:
        known = sorted(n[:-5] for n in dir(package) if n.endswith("_spec"))
        raise ConfigError(f"--model: unknown Open-Unmix model {name!r}; the installed package has "
                          f"{', '.join(known)}, e.g. --model umxhq")
    urls = re.findall(r"""["'](\w+)["']\s*:\s*["'](https?://[^"']+\.pth)["']""", inspect.getsource(spec))
    return dict(urls)


def _target_file(folder: Path, target: str, url: str | None) -> Path | None:
    """The weight file of ``target`` in ``folder``: the hub name (``other-b52fbbf7.pth``) or ``other.pth``."""
    names = ([url.rsplit("/", 1)[-1]] if url else []) + [f"{target}.pth"]
    for name in names:
        if (folder / name).is_file():
            return folder / name
    return None


def _has_package_layout(folder: Path, targets) -> bool:
    """True when ``folder`` is what ``openunmix.utils.load_separator`` reads (json + pth per target)."""
    return (folder / "separator.json").is_file() and all(
        (folder / f"{t}.json").is_file() and any(folder.glob(f"{t}*.pth")) for t in targets)


def _residual(targets) -> bool:
    # With fewer than all four stems a "residual" target (mixture minus the rest)
    # lets the package's EM post-processing run, as its own CLI does.
    return set(targets) != set(STEMS)


def load_pretrained(name: str = "umxhq", weights_dir=None, targets=("other",), device="cpu",
                    niter: int = 1):
    """Load a pretrained Open-Unmix ``Separator`` without touching the network.

    Looked for, in order: ``weights_dir`` (else ``$MSS_UNMIX_WEIGHTS``), then the
    torch hub cache (``torch.hub.get_dir()/checkpoints``). A folder may be in the
    package's own layout (``separator.json``, ``<target>.json``,
    ``<target>[-<hash>].pth``, as ``load_separator`` reads) or hold just the
    published weight files (``other-b52fbbf7.pth`` or ``other.pth``).

    Parameters
    ----------
    name : "umxhq", "umxl", "umx" or "umxse" -- the architecture of the weights.
    weights_dir : folder or None.
    targets : stems to estimate; "other" alone gives a residual target too.
    device : torch device.
    niter : EM iterations of the package's Wiener post-processing.

    Returns
    -------
    openunmix.model.Separator in eval mode; ``separator(audio)`` maps
    ``(batch, channels, samples)`` to ``(batch, n_targets, channels, samples)``.

    Raises
    ------
    WeightsNotFoundError
        When no folder holds the weights; the message lists the URLs and folders.
    """
    targets = list(targets)
    urls = weight_urls(name)
    missing_targets = [t for t in targets if t not in urls]
    if missing_targets:
        raise ValueError(f"model {name!r} has no target(s) {missing_targets}; it has {sorted(urls)}")
    folders = []
    weights_dir = weights_dir or os.environ.get(WEIGHTS_ENV)
    if weights_dir:
        folders.append(Path(weights_dir).expanduser())
    folders.append(Path(torch.hub.get_dir()) / "checkpoints")

    package = compat.openunmix()
    for folder in folders:
        if not folder.is_dir():
            continue
        if _has_package_layout(folder, targets):
            sep = package.utils.load_separator(model_str_or_path=str(folder), targets=targets, niter=niter,
                                               residual=_residual(targets), device=device, pretrained=True)
            return sep.eval()
        files = {t: _target_file(folder, t, urls[t]) for t in targets}
        if all(files.values()):
            # Build the architecture with the package's own settings, then load the
            # local files; pretrained=False keeps torch.hub from any download.
            sep = getattr(package, name)(targets=targets, pretrained=False, niter=niter,
                                         residual=_residual(targets), device=device)
            for target, path in files.items():
                _load_weights(sep.target_models[target], path, device)
            return sep.eval()

    needed = "\n".join(f"  {urls[t]}" for t in targets)
    looked = "\n".join(f"  {f}" for f in folders)
    raise WeightsNotFoundError(
        f"Open-Unmix {name!r} weights for {targets} are not on this machine, and nothing is downloaded "
        f"at run time. Fetch these files:\n{needed}\nand put them in a folder given as `--weights DIR`, "
        f"`UnmixConfig.weights_dir` or ${WEIGHTS_ENV}, or in the torch hub cache "
        f"{Path(torch.hub.get_dir()) / 'checkpoints'}. Looked in:\n{looked}\n"
        "Without them, train the small model instead (`python -m mss_helpers unmix --train`)."
    )


def _load_weights(model: torch.nn.Module, path: Path, device) -> None:
    state = torch.load(path, map_location=device, weights_only=True)
    try:
        # strict=False as the package loads them (extra keys are harmless); missing
        # or mis-shaped tensors mean a file of another architecture.
        result = model.load_state_dict(state, strict=False)
    except RuntimeError as exc:
        reason = " ".join(str(exc).split())[:300]  # torch's message spans lines; the CLI shows one
        raise WeightsNotFoundError(f"{path} does not fit this Open-Unmix architecture ({reason}); "
                                   "give the weights of the model named by --model (or UnmixConfig.pretrained), "
                                   "or the --model these weights were trained as") from exc
    if result.missing_keys:
        raise WeightsNotFoundError(f"{path} does not fit this Open-Unmix architecture (missing "
                                   f"{result.missing_keys[:5]}); give the weights of the model named by --model "
                                   "(or UnmixConfig.pretrained), or the --model these weights were trained as")


# --- separation --------------------------------------------------------------------


def _model_channels(separator) -> int:
    model = next(iter(separator.target_models.values()))
    return model.fc1.in_features // model.nb_bins


@torch.no_grad()
def separate_other(separator, mixture: np.ndarray, rate: int, chunk_s: float = 30.0,
                   overlap_s: float | None = None, device=None, target: str = "other") -> np.ndarray:
    """Estimate the ``target`` stem of a whole track, chunk by chunk.

    Chunks of ``chunk_s`` seconds overlap by ``overlap_s`` (default
    ``min(2, chunk_s / 4)``) and are joined with linear cross-fades, so memory
    stays bounded by the chunk length whatever the track length.

    Parameters
    ----------
    separator : openunmix Separator (from :func:`load_pretrained`, :func:`load_unmix`
        or :func:`build_separator`).
    mixture : (channels, samples) float32 at ``rate`` Hz.
    rate : Hz of ``mixture``; resampled to the separator's rate and back.
        Channels are matched the same way (a stereo mixture given to a mono
        model is downmixed and its estimate duplicated).
    device : torch device; default: where the separator's parameters are.

    Returns
    -------
    (channels, samples) float32 at ``rate``, same shape as ``mixture``.
    """
    if not hasattr(separator, "target_models"):
        raise ValueError("separate_other needs an openunmix Separator (load_pretrained / load_unmix give one), "
                         f"got {type(separator).__name__}")
    if target not in separator.target_models:
        raise ValueError(f"the separator has no {target!r} target; it has {list(separator.target_models)}")
    mixture = np.asarray(mixture, dtype=np.float32)
    if mixture.ndim != 2 or mixture.shape[1] == 0:
        raise ValueError(f"mixture must have shape (channels, samples) with samples > 0, got {mixture.shape}")
    if chunk_s <= 0:
        raise ValueError(f"chunk_s must be positive, got {chunk_s}")
    device = torch.device(device) if device else next(separator.parameters()).device
    separator = separator.to(device).eval()
    index = list(separator.target_models).index(target)

    model_rate = int(round(float(separator.sample_rate)))
    in_channels, n_in = mixture.shape
    x = audio_mod.to_channels(audio_mod.resample(mixture, rate, model_rate), _model_channels(separator))
    n = x.shape[1]
    # Chunk starts on multiples of the STFT hop, so each chunk's frames line up
    # with those of the whole track and chunking changes only the context.
    hop = int(getattr(separator.stft, "n_hop", 1))
    chunk = max(int(chunk_s * model_rate) // hop, 2) * hop
    overlap = int((min(2.0, chunk_s / 4) if overlap_s is None else overlap_s) * model_rate) // hop * hop
    bounds = audio_mod.chunk_bounds(n, chunk, min(overlap, chunk - hop))
    outs = []
    n_fft = int(getattr(separator.stft, "n_fft", 0))
    for start, stop in bounds:
        piece = x[:, start:stop]
        if piece.shape[1] <= n_fft:  # the STFT's reflect padding needs more than n_fft / 2 samples
            piece = np.pad(piece, ((0, 0), (0, n_fft + 1 - piece.shape[1])))
        piece = torch.from_numpy(np.ascontiguousarray(piece))[None].to(device)  # (1, C, L)
        est = separator(piece)  # (1, n_targets, C, L)
        outs.append(est[0, index, :, :stop - start].float().cpu().numpy())
    y = audio_mod.overlap_add(outs, bounds, n)
    y = audio_mod.resample(y, model_rate, rate)
    y = audio_mod.to_channels(y, in_channels) if y.shape[0] != in_channels else y
    # Resampling can shift the length by a sample; match the input exactly.
    out = np.zeros((in_channels, n_in), dtype=np.float32)
    m = min(n_in, y.shape[1])
    out[:, :m] = y[:, :m]
    return out


# --- the small model: architecture and files ----------------------------------------


def unmix_rate(cfg: Config) -> int:
    """Sample rate (Hz) of the first stage: the rate the rest of the pipeline reads."""
    return int(cfg.data.sample_rate)


def build_separator(cfg: Config, input_mean=None, input_scale=None, niter: int = 1):
    """A fresh (random-weight) small Open-Unmix "other" model inside the package's Separator.

    Settings come from ``cfg.unmix`` (hidden_size, n_fft, n_hop, bandwidth
    ``nb_bins_max_hz``) and ``cfg.data`` (rate, channels). ``input_mean`` /
    ``input_scale`` : (n_fft // 2 + 1,) magnitude statistics of training mixtures.
    """
    model_mod = compat.openunmix_model()
    u = cfg.unmix
    rate = unmix_rate(cfg)
    max_bin = compat.openunmix().utils.bandwidth_to_max_bin(rate, u.n_fft, u.nb_bins_max_hz)
    model = model_mod.OpenUnmix(nb_bins=u.n_fft // 2 + 1, nb_channels=cfg.data.channels, hidden_size=u.hidden_size,
                                max_bin=int(max_bin), input_mean=input_mean, input_scale=input_scale)
    return model_mod.Separator({"other": model}, niter=niter, residual=True, sample_rate=float(rate),
                               n_fft=u.n_fft, n_hop=u.n_hop, nb_channels=cfg.data.channels)


def spectrogram(separator, audio: torch.Tensor) -> torch.Tensor:
    """Magnitude spectrogram with the separator's own transforms.

    audio : (batch, channels, samples) -> (batch, channels or 1, bins, frames)
    """
    return separator.complexnorm(separator.stft(audio))


def load_checkpoint(separator, path: Path) -> None:
    """Load a checkpoint (``train.fit``'s ``best.pt``/``last.pt``, or a bare state dict) into ``separator``."""
    ckpt = torch.load(path, map_location="cpu", weights_only=False)
    state = ckpt
    if isinstance(ckpt, dict):
        for key in ("model", "model_state", "state_dict"):
            if key in ckpt and isinstance(ckpt[key], dict):
                state = ckpt[key]
                break
    separator.load_state_dict(state)


def export_separator(separator, folder, cfg: Config) -> Path:
    """Write ``separator.json``, ``other.json`` and ``other.pth`` as ``openunmix.utils.load_separator`` reads them."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    model = separator.target_models["other"]
    args = {"nfft": cfg.unmix.n_fft, "nhop": cfg.unmix.n_hop, "nb_channels": cfg.data.channels,
            "hidden_size": cfg.unmix.hidden_size, "sample_rate": unmix_rate(cfg),
            "bandwidth": cfg.unmix.nb_bins_max_hz}
    # Each file atomically, separator.json last: its presence means the export is complete
    # (:func:`export_complete`), so an interrupted export is redone, never reused half-written.
    atomic_write(folder / "other.pth", lambda tmp: torch.save(model.state_dict(), tmp))
    _write_json(folder / "other.json", {"args": args, "target": "other"})
    _write_json(folder / "separator.json", {"sample_rate": unmix_rate(cfg), "nfft": cfg.unmix.n_fft,
                                            "nhop": cfg.unmix.n_hop, "nb_channels": cfg.data.channels,
                                            "targets": ["other"]})
    return folder


def export_complete(run_dir) -> bool:
    """Whether ``run_dir`` holds a finished export of :func:`export_separator` (what :func:`load_unmix` reads)."""
    return _has_package_layout(Path(run_dir) / EXPORT_DIR, ["other"])


def _write_json(path: Path, data) -> None:
    atomic_write(path, lambda tmp: Path(tmp).write_text(json.dumps(data, indent=2)))


def load_unmix(run_dir, device="cpu", niter: int = 1):
    """The trained small model of ``run_dir`` as an openunmix Separator (eval mode).

    Read with the package's own ``load_separator`` from ``<run_dir>/openunmix``.
    """
    folder = Path(run_dir) / EXPORT_DIR
    if not _has_package_layout(folder, ["other"]):
        raise RunNotFoundError(f"no trained Open-Unmix model in {folder}; train it first: "
                               "python -m mss_helpers unmix --train --out DIR (or unmix_train.train_unmix(cfg))")
    sep = compat.openunmix().utils.load_separator(model_str_or_path=str(folder), targets=["other"], niter=niter,
                                                   residual=True, device=device, pretrained=True)
    return sep.eval()
