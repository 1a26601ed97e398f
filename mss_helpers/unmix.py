"""The Open-Unmix first stage: full mixture -> estimate of the "other" stem.

Everything model-related comes from the installed ``openunmix`` package
(through :mod:`mss_helpers.compat`): its ``OpenUnmix`` spectrogram model, its
``Separator`` (STFT, Wiener/EM filtering, inverse STFT) and its loaders. This
module adds what the project needs around it:

- :func:`load_pretrained`: the published weights (``umxhq``, ``umxl``, ...) from
  a local folder or the torch hub cache, never downloading; offline it fails at
  once and names the files to fetch and where to put them.
- :func:`separate_other`: whole tracks in overlapping chunks (bounded memory).
- :func:`train_unmix` / :func:`load_unmix`: a small "other" model trained on the
  embedded set's mixtures with the project's generic loop ``train.fit``.
- :func:`evaluate_unmix`: museval BSS-eval v4 SDR of the estimate next to the
  mixture-as-estimate floor and the oracle ratio-mask ceiling.
- :func:`write_estimates` / :func:`estimate_path`: cached estimates that the
  autoencoder and the clustering read when ``cfg.data.source == "unmix"``.
"""

from __future__ import annotations

import inspect
import json
import os
import re
import time
from pathlib import Path

import numpy as np
import torch

from . import audio as audio_mod
from . import compat, paths
from .paths import atomic_write
from .config import Config, config_hash, config_to_dict, get_config

STEMS = ("vocals", "drums", "bass", "other")
WEIGHTS_ENV = "MSS_UNMIX_WEIGHTS"
EXPORT_DIR = "openunmix"  # sub-folder of a run holding the model in openunmix's own layout
WEIGHT_DECAY = 1e-5  # Open-Unmix's training default
GRAD_CLIP = 5.0  # a guard for the first steps only; Open-Unmix itself does not clip


from .errors import WeightsNotFoundError  # noqa: E402,F401  (re-exported)


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
        raise ValueError(f"unknown Open-Unmix model {name!r}; the installed package has {known}")
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
        raise ValueError(f"{path} does not fit this Open-Unmix architecture: {str(exc)[:300]}") from exc
    if result.missing_keys:
        raise ValueError(f"{path} does not fit this Open-Unmix architecture: missing {result.missing_keys[:5]}")


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


# --- the small model trained here --------------------------------------------------


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


class PairedClipDataset(torch.utils.data.Dataset):
    """Clips of (mixture, "other") pairs for training the first stage.

    Parameters
    ----------
    pairs : list of (other (C, S), rest (C, S)) float32, rest = mixture - other.
    clip_samples : length of each clip.
    n_clips : length of the dataset (clips per epoch).
    random : draw clips at random (training) or fixed clips from ``seed`` (validation).
    remix : with ``random``, add the "rest" of another random track with random
        gains (Open-Unmix's incoherent remixing), multiplying the few mixtures we have.

    Items are ``(mixture, other)``: two ``(C, clip_samples)`` float32 tensors.
    """

    def __init__(self, pairs, clip_samples: int, n_clips: int, seed: int = 0, random: bool = True,
                 remix: bool = True):
        if not pairs:
            raise ValueError("PairedClipDataset needs at least one (other, rest) pair")
        if clip_samples <= 0 or n_clips <= 0:
            raise ValueError(f"clip_samples and n_clips must be positive, got {clip_samples}, {n_clips}")
        self.pairs = [(np.asarray(o, np.float32), np.asarray(r, np.float32)) for o, r in pairs]
        self.clip = int(clip_samples)
        self.n_clips = int(n_clips)
        self.random = random
        self.remix = remix
        self.fixed = None
        if not random:
            rng = np.random.default_rng(seed)
            self.fixed = [(int(rng.integers(len(pairs))), float(rng.random())) for _ in range(n_clips)]

    def __len__(self) -> int:
        return self.n_clips

    def _cut(self, x: np.ndarray, where: float) -> np.ndarray:
        # where in [0, 1): position of the clip; short tracks are zero-padded.
        if x.shape[1] < self.clip:
            return np.pad(x, ((0, 0), (0, self.clip - x.shape[1])))
        start = int(where * (x.shape[1] - self.clip + 1))
        return x[:, start:start + self.clip]

    def __getitem__(self, idx: int):
        if self.random:
            # torch's generator: seeded by the training loop, so runs repeat.
            r = torch.rand(5).tolist()
            i = int(r[0] * len(self.pairs)) % len(self.pairs)
            other = self._cut(self.pairs[i][0], r[1])
            if self.remix:
                j = int(r[2] * len(self.pairs)) % len(self.pairs)
                rest = self._cut(self.pairs[j][1], r[3])
                other = other * (0.75 + 0.5 * r[4])
                rest = rest * (0.75 + 0.5 * float(torch.rand(1)))
            else:
                rest = self._cut(self.pairs[i][1], r[1])
        else:
            i, where = self.fixed[idx]
            other, rest = self._cut(self.pairs[i][0], where), self._cut(self.pairs[i][1], where)
        return torch.from_numpy(other + rest), torch.from_numpy(np.ascontiguousarray(other))


def load_pairs(tracks, cfg: Config) -> list[tuple[np.ndarray, np.ndarray]]:
    """``(other, rest)`` per track at the first stage's rate and channels; rest = mixture - other."""
    rate, ch = unmix_rate(cfg), cfg.data.channels
    pairs = []
    for t in tracks:
        mix = t.load("mixture", rate=rate, channels=ch)
        other = t.load("other", rate=rate, channels=ch)
        n = min(mix.shape[1], other.shape[1])
        pairs.append((other[:, :n], mix[:, :n] - other[:, :n]))
    return pairs


def _input_stats(separator, dataset, n: int = 64) -> tuple[np.ndarray, np.ndarray]:
    """Mean and std per frequency bin of mixture magnitudes, as Open-Unmix's training script computes."""
    frames = []
    for i in range(min(n, len(dataset))):
        mix, _ = dataset[i]
        X = spectrogram(separator, mix[None])  # (1, C', bins, frames)
        frames.append(X[0].permute(0, 2, 1).reshape(-1, X.shape[2]))  # (C' * frames, bins)
    X = torch.cat(frames).double()
    return X.mean(0).numpy(), np.maximum(X.std(0).numpy(), 1e-4)


def unmix_loss(model, batch, step):
    """MSE between estimated and true "other" magnitude spectrograms (Open-Unmix's objective)."""
    mix, other = batch
    X = spectrogram(model, mix)  # (B, C', bins, frames)
    Y = spectrogram(model, other)
    Y_hat = model.target_models["other"](X)
    loss = torch.nn.functional.mse_loss(Y_hat, Y)
    return loss, {"mse": float(loss.detach())}


def _hash_cfg(cfg: Config) -> Config:
    # Which stage feeds the autoencoder does not change the first stage itself.
    return cfg.replace(data={"source": "other"})


def default_run_dir(cfg: Config) -> Path:
    """``runs_dir()/unmix_<preset>_<hash of data+unmix>``."""
    return paths.runs_dir() / f"unmix_{cfg.name}_{config_hash(_hash_cfg(cfg), 'data', 'unmix')}"


def _resolve_root(cfg: Config, root=None) -> Path:
    if root is not None:
        return Path(root)
    from . import datasets

    return datasets.ensure_dataset(cfg)


def train_unmix(cfg: Config, root=None, run_dir=None, force: bool = False, device=None,
                progress: bool = True) -> Path:
    """Train the small "other" model on the data set's full mixtures; cached by config.

    Uses the generic loop ``train.fit`` (checkpoints, history, resume). A finished
    run (``done.json``) is returned as is unless ``force``; an interrupted one resumes.
    The trained model is also exported in openunmix's own layout to
    ``<run_dir>/openunmix`` so ``openunmix.utils.load_separator`` reads it.

    Returns
    -------
    Path of the run folder.
    """
    from . import datasets, train

    run_dir = Path(run_dir) if run_dir else default_run_dir(cfg)
    if (run_dir / "done.json").is_file() and (run_dir / EXPORT_DIR).is_dir() and not force:
        return run_dir
    resume = (run_dir / "last.pt").is_file() and not force
    u = cfg.unmix
    root = _resolve_root(cfg, root)
    tracks = datasets.load_tracks(root, "train")
    if len(tracks) < 2:
        raise ValueError(f"training the first stage needs at least 2 training tracks in {root}, found {len(tracks)}")
    n_val = min(max(cfg.data.n_val_tracks, 1), len(tracks) - 1)
    train_tracks, val_tracks = datasets.split_train_val(tracks, n_val, cfg.data.seed)
    clip = int(u.clip_s * unmix_rate(cfg))
    train_set = PairedClipDataset(load_pairs(train_tracks, cfg), clip, u.steps_per_epoch * u.batch_size,
                                  seed=u.seed, random=True, remix=True)
    val_set = PairedClipDataset(load_pairs(val_tracks, cfg), clip, max(u.batch_size, 2 * len(val_tracks)),
                                seed=u.seed + 1, random=False)

    torch.manual_seed(u.seed)
    # Input normalisation from plain (not remixed) training clips; on resume the
    # checkpoint's values replace these.
    stats_set = PairedClipDataset(train_set.pairs, clip, 64, seed=u.seed, random=False)
    stats = _input_stats(build_separator(cfg), stats_set)
    separator = build_separator(cfg, input_mean=stats[0], input_scale=stats[1])
    loader = torch.utils.data.DataLoader(train_set, batch_size=u.batch_size, shuffle=False, drop_last=True)
    val_loader = torch.utils.data.DataLoader(val_set, batch_size=u.batch_size, shuffle=False)
    train.fit(separator, unmix_loss, loader, val_loader, run_dir, epochs=u.epochs,
              steps_per_epoch=u.steps_per_epoch, lr=u.lr, weight_decay=WEIGHT_DECAY, grad_clip=GRAD_CLIP,
              seed=u.seed, config={**config_to_dict(cfg), "stage": "unmix", "root": str(root)},
              resume=resume, max_minutes=None, device=device, progress=progress)
    _load_checkpoint(separator, run_dir / "best.pt")
    export_separator(separator, run_dir / EXPORT_DIR, cfg)
    return run_dir


def _load_checkpoint(separator, path: Path) -> None:
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
    atomic_write(folder / "other.pth", lambda tmp: torch.save(model.state_dict(), tmp))
    (folder / "other.json").write_text(json.dumps({"args": args, "target": "other"}, indent=2))
    (folder / "separator.json").write_text(json.dumps(
        {"sample_rate": unmix_rate(cfg), "nfft": cfg.unmix.n_fft, "nhop": cfg.unmix.n_hop,
         "nb_channels": cfg.data.channels, "targets": ["other"]}, indent=2))
    return folder


def load_unmix(run_dir, device="cpu", niter: int = 1):
    """The trained small model of ``run_dir`` as an openunmix Separator (eval mode).

    Read with the package's own ``load_separator`` from ``<run_dir>/openunmix``.
    """
    folder = Path(run_dir) / EXPORT_DIR
    if not _has_package_layout(folder, ["other"]):
        raise FileNotFoundError(f"no trained Open-Unmix model in {folder}; run train_unmix(cfg) first")
    sep = compat.openunmix().utils.load_separator(model_str_or_path=str(folder), targets=["other"], niter=niter,
                                                   residual=True, device=device, pretrained=True)
    return sep.eval()


def first_stage(cfg: Config, root=None, device=None, progress: bool = True):
    """The configured first stage: pretrained weights when a folder is given, else the small model."""
    weights = cfg.unmix.weights_dir or os.environ.get(WEIGHTS_ENV)
    if weights:
        return load_pretrained(cfg.unmix.pretrained, weights, device=device or "cpu")
    return load_unmix(train_unmix(cfg, root=root, device=device, progress=progress), device=device or "cpu")


# --- evaluation --------------------------------------------------------------------


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
    from . import datasets

    if tracks is None:
        tracks = datasets.load_tracks(_resolve_root(cfg, root), split)
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
        out = paths.results_dir()
        out.mkdir(parents=True, exist_ok=True)
        (out / f"unmix_{cfg.name}.json").write_text(json.dumps(result, indent=2))
    return result


# --- estimates for the rest of the pipeline ----------------------------------------


def estimates_root(cfg: Config) -> Path:
    """``data_dir()/unmix_estimates_<data signature>_<hash of data+unmix>``."""
    key = config_hash(_hash_cfg(cfg), "data", "unmix")
    return paths.data_dir() / f"unmix_estimates_{cfg.data.signature()}_{key}"


def estimate_path(cfg: Config, track, must_exist: bool = False) -> Path:
    """Where the first stage's "other" estimate of ``track`` is (``<root>/<subset>/<name>/other.wav``).

    The file holds ``(channels, samples)`` audio at ``cfg.data.sample_rate``.
    Raises FileNotFoundError (saying how to make it) when ``must_exist`` and absent.
    """
    path = estimates_root(cfg) / str(track.subset) / str(track.name) / "other.wav"
    if must_exist and not path.is_file():
        raise FileNotFoundError(f"no Open-Unmix estimate for track {track.name!r} at {path}; "
                                "run mss_helpers.unmix.write_estimates(cfg, ...) first")
    return path


def write_estimates(cfg: Config, run_dir=None, root=None, splits=("train", "test"), separator=None,
                    device=None, force: bool = False) -> Path:
    """Write the "other" estimate of every track of ``splits`` (skipping existing files); return the root.

    The separator is, in order: ``separator``, the trained model in ``run_dir``,
    or :func:`first_stage` of ``cfg``.
    """
    from . import datasets

    root = _resolve_root(cfg, root)
    if separator is None:
        separator = load_unmix(run_dir, device=device or "cpu") if run_dir else first_stage(cfg, root, device)
    rate, ch = unmix_rate(cfg), cfg.data.channels
    for split in splits:
        for t in datasets.load_tracks(root, split):
            path = estimate_path(cfg, t, must_exist=False)
            if path.is_file() and not force:
                continue
            mix = t.load("mixture", rate=rate, channels=ch)
            est = separate_other(separator, mix, rate, chunk_s=cfg.unmix.chunk_s, device=device)
            audio_mod.write_audio(path, est, rate, subtype="FLOAT")
    return estimates_root(cfg)


# --- command line ------------------------------------------------------------------


def add_arguments(parser) -> None:
    parser.add_argument("--root", default=None, help="data set root (default: the preset's embedded set)")
    parser.add_argument("--split", default="test", choices=("train", "test"))
    parser.add_argument("--out", required=True, help="folder for <track>/other.wav estimates")
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--weights", default=None, help="folder with pretrained Open-Unmix weights")
    group.add_argument("--train", action="store_true", help="train (or reuse) the small model on the data set")
    parser.add_argument("--model", default=None, help="pretrained architecture: umxhq (default), umxl, umx")
    parser.add_argument("--preset", default=None, help="config preset (default: $MSS_PRESET or cpu)")
    parser.add_argument("--evaluate", action="store_true", help="also score the estimates (museval SDR)")
    parser.add_argument("--device", default=None)


def run(args) -> int:
    from . import datasets

    cfg = get_config(args.preset)
    if args.weights:
        cfg = cfg.replace(unmix={"weights_dir": str(args.weights)})
    if args.model:
        cfg = cfg.replace(unmix={"pretrained": args.model})
    root = _resolve_root(cfg, args.root)
    if args.train:
        separator = load_unmix(train_unmix(cfg, root=root, device=args.device), device=args.device or "cpu")
    else:
        separator = first_stage(cfg, root=root, device=args.device)
    out = Path(args.out)
    rate, ch = unmix_rate(cfg), cfg.data.channels
    tracks = datasets.load_tracks(root, args.split)
    for t in tracks:
        t0 = time.perf_counter()
        est = separate_other(separator, t.load("mixture", rate=rate, channels=ch), rate,
                             chunk_s=cfg.unmix.chunk_s, device=args.device)
        audio_mod.write_audio(out / t.name / "other.wav", est, rate, subtype="FLOAT")
        print(f"{t.name}: {est.shape[1] / rate:.1f} s separated in {time.perf_counter() - t0:.1f} s")
    if args.evaluate:
        result = evaluate_unmix(cfg, separator=separator, tracks=tracks, device=args.device, write=False)
        (out / "scores.json").write_text(json.dumps(result, indent=2))
        for method, m in result["median"].items():
            print(f"{method:>10}: SDR {m['SDR']:6.2f} dB (median over {result['n_tracks']} tracks)")
    return 0
