"""A time-frequency mask network trained by mixture invariant training (MixIT) on "other".

MixIT (Wisdom et al., NeurIPS 2020) needs no instrument labels: two excerpts of
"other" from *different* training tracks, each with a random gain, are summed
into a mixture of mixtures ``x = y1 + y2``; the network splits ``x`` into
``M`` outputs, and the loss asks that *some* partition of the outputs re-sums
to ``y1`` and the rest to ``y2`` (the best of all ``2^M`` binary assignments).
Because two excerpts of different songs are independent, the cheapest way to
re-build both is to separate what is separable, and instruments are.

- :class:`MixITSeparator`: log-magnitude STFT -> (linear, 2-layer BLSTM,
  linear) -> ``M`` masks with a softmax over outputs, so the masks sum to one
  in every bin and the outputs sum to the input (mixture consistency);
  masks on the complex STFT, iSTFT back to audio.
- :func:`mixit_loss`: thresholded negative SNR (soft 30 dB threshold)
  minimised over all partitions in the Gram-matrix form
  ``||y - sum_i a_i s_i||^2 = y.y - 2 a.c + a^T G a``: no
  ``(batch x 2^M x samples)`` tensor is ever built.
- the training data (mixtures of mixtures of ``other.wav``, never
  ``other_stems/``) is :mod:`mss_helpers.mixit_data`.
- :func:`train_separator`: the generic :func:`train.fit` loop (progress bar,
  resume, atomic checkpoints, NaN stop, validation), cached under
  ``runs/separator_<preset>_<hash>``.
- :func:`separate_outputs`: a whole track, in overlapping chunks (overlap-add).

Grouping the ``M`` outputs into ``k`` instruments lives in :mod:`separator_group`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn

from . import paths
from .config import Config, SeparatorConfig, config_from_dict, config_hash, config_to_dict, get_config
from .errors import ConfigError, RunNotFoundError
from .mixit_data import loaders

EPS = 1e-8


# --- the network ---------------------------------------------------------------------------


class MixITSeparator(nn.Module):
    """Mask network on the log-magnitude STFT with ``M`` mixture-consistent outputs.

    Multi-channel input shares one set of masks (computed from the mean
    magnitude over channels), so output ``i`` is the same source in every channel.

    Parameters
    ----------
    scfg : SeparatorConfig (n_outputs, n_fft, hop, hidden, layers)
    """

    def __init__(self, scfg: SeparatorConfig):
        super().__init__()
        self.n_outputs, self.n_fft, self.hop = scfg.n_outputs, scfg.n_fft, scfg.hop
        n_bins = scfg.n_fft // 2 + 1
        self.n_bins = n_bins
        self.arch = scfg.arch
        self.inp = nn.Sequential(nn.Linear(n_bins, scfg.hidden), nn.Tanh())
        if scfg.arch == "blstm":
            self.rnn = nn.LSTM(scfg.hidden, scfg.hidden, num_layers=scfg.layers, batch_first=True,
                               bidirectional=True)
            width = 2 * scfg.hidden
        elif scfg.arch == "tdcn":
            # dilated residual conv blocks over time, dilations 1..2^(layers-1), repeated twice:
            # the whole sequence in parallel, where the BLSTM steps frame by frame
            self.blocks = nn.ModuleList(_ConvBlock(scfg.hidden, 2 ** (i % scfg.layers))
                                        for i in range(2 * scfg.layers))
            width = scfg.hidden
        else:
            raise ValueError(f"SeparatorConfig.arch must be 'blstm' or 'tdcn', got {scfg.arch!r}")
        self.out = nn.Linear(width, scfg.n_outputs * n_bins)
        self.register_buffer("window", torch.hann_window(scfg.n_fft), persistent=False)

    def masks(self, mag: torch.Tensor) -> torch.Tensor:
        """``(B, F, T)`` magnitudes -> ``(B, M, F, T)`` masks that sum to one over M."""
        feat = torch.log(mag + 1e-5)
        # per-example standardisation: the masks do not depend on the input's level
        feat = (feat - feat.mean(dim=(1, 2), keepdim=True)) / (feat.std(dim=(1, 2), keepdim=True) + 1e-5)
        h = self.inp(feat.transpose(1, 2))  # (B, T, H)
        if self.arch == "blstm":
            h, _ = self.rnn(h)  # (B, T, 2H)
        else:
            h = h.transpose(1, 2)
            for block in self.blocks:
                h = block(h)
            h = h.transpose(1, 2)  # (B, T, H)
        logits = self.out(h).view(h.shape[0], h.shape[1], self.n_outputs, self.n_bins)
        return torch.softmax(logits, dim=2).permute(0, 2, 3, 1)  # (B, M, F, T)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, C, L)`` audio -> ``(B, M, C, L)`` outputs that sum to the input."""
        B, C, L = x.shape
        X = torch.stft(x.reshape(B * C, L), self.n_fft, self.hop, window=self.window, center=True,
                       return_complex=True)
        X = X.view(B, C, X.shape[-2], X.shape[-1])
        m = self.masks(X.abs().mean(dim=1))  # (B, M, F, T)
        Y = m[:, :, None] * X[:, None]  # (B, M, C, F, T)
        y = torch.istft(Y.reshape(B * self.n_outputs * C, X.shape[-2], X.shape[-1]), self.n_fft, self.hop,
                        window=self.window, center=True, length=L)
        return y.view(B, self.n_outputs, C, L)


class _ConvBlock(nn.Module):
    """Residual block: dilated depthwise-separable conv over time, PReLU, group norm."""

    def __init__(self, channels: int, dilation: int):
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv1d(channels, channels, 3, padding=dilation, dilation=dilation, groups=channels),
            nn.Conv1d(channels, channels, 1), nn.PReLU(), nn.GroupNorm(1, channels))

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return h + self.net(h)


# --- the MixIT loss ------------------------------------------------------------------------


def partitions(n_outputs: int) -> torch.Tensor:
    """All ``2^M`` binary assignments ``(2^M, M)``: 1 = the output goes to mixture 1."""
    p = torch.arange(2 ** n_outputs)[:, None]
    return ((p >> torch.arange(n_outputs)) & 1).to(torch.float64)


def neg_snr_db(err: torch.Tensor, ref_energy: torch.Tensor, snr_max_db: float) -> torch.Tensor:
    """Thresholded negative SNR ``10 log10(err + tau ref) - 10 log10(ref)``, ``tau = 10^(-snr_max/10)``.

    The ``tau`` term caps the SNR softly at ``snr_max_db``: a source already
    re-built to 30 dB no longer dominates the gradient.
    """
    tau = 10.0 ** (-snr_max_db / 10.0)
    return 10 * torch.log10(err + tau * ref_energy + EPS) - 10 * torch.log10(ref_energy + EPS)


def mixit_loss(outputs: torch.Tensor, mixtures: torch.Tensor, snr_max_db: float = 30.0):
    """MixIT loss: the best of all partitions of the outputs into the two mixtures.

    Parameters
    ----------
    outputs : (B, M, ...) the separated outputs (any trailing shape, e.g. channels x samples)
    mixtures : (B, 2, ...) the two mixtures, same trailing shape
    snr_max_db : soft SNR threshold

    Returns
    -------
    loss : scalar, mean over the batch of the best partition's summed negative SNR (dB)
    assignment : (B, M) float, 1 where an output went to mixture 1 in the best partition

    Notes
    -----
    With ``G = S S^T`` (M x M), ``c_j = S y_j`` and ``W`` the (2^M, 2, M)
    assignment weights (``a`` and ``1 - a``), every partition's error is
    ``y_j.y_j - 2 w_j.c_j + w_j^T G w_j``: cost O(B M^2 samples + B 4^M),
    memory O(B 2^M). Computed in float64 (the error is a difference of large terms).
    """
    B, M = outputs.shape[:2]
    s = outputs.reshape(B, M, -1).to(torch.float64)
    y = mixtures.reshape(B, 2, -1).to(torch.float64)
    G = s @ s.transpose(1, 2)  # (B, M, M)
    c = s @ y.transpose(1, 2)  # (B, M, 2)
    yy = (y * y).sum(-1)  # (B, 2)
    A = partitions(M).to(s.device)
    W = torch.stack([A, 1 - A], dim=1)  # (P, 2, M)
    quad = torch.einsum("pjm,bmn,pjn->bpj", W, G, W)
    lin = torch.einsum("pjm,bmj->bpj", W, c)
    err = (yy[:, None, :] - 2 * lin + quad).clamp_min(0.0)
    total = neg_snr_db(err, yy[:, None, :], snr_max_db).sum(-1)  # (B, P)
    best, idx = total.min(dim=1)
    return best.mean().to(outputs.dtype), A[idx].to(outputs.dtype)


def mixture_snr_db(history: dict) -> float:
    """Mean SNR (dB) with which the last epoch re-built each mixture of the validation pairs.

    The MixIT loss sums the two mixtures' thresholded negative SNRs, so this is minus half of it.
    """
    return -float(history["epochs"][-1]["val"]["neg_snr"]) / 2


def mixit_loss_bruteforce(outputs: torch.Tensor, mixtures: torch.Tensor, snr_max_db: float = 30.0):
    """The same loss by explicit enumeration (builds every partition's estimates): tests only."""
    B, M = outputs.shape[:2]
    s = outputs.reshape(B, M, -1).to(torch.float64)
    y = mixtures.reshape(B, 2, -1).to(torch.float64)
    A = partitions(M)
    est1 = torch.einsum("pm,bmt->bpt", A, s)
    est2 = torch.einsum("pm,bmt->bpt", 1 - A, s)
    yy = (y * y).sum(-1)
    l1 = neg_snr_db(((y[:, None, 0] - est1) ** 2).sum(-1), yy[:, None, 0], snr_max_db)
    l2 = neg_snr_db(((y[:, None, 1] - est2) ** 2).sum(-1), yy[:, None, 1], snr_max_db)
    best, idx = (l1 + l2).min(dim=1)
    return best.mean(), A[idx]


def mixit_loss_fn(cfg: Config):
    """``loss_fn(model, batch, step)`` for :func:`train.fit`: MixIT on a batch ``(B, 2, C, L)``.

    Terms: ``neg_snr`` (the MixIT loss, dB), ``active`` (mean number of outputs
    carrying more than 1% of the input energy, a label-free over-separation gauge)
    and, when ``SeparatorConfig.output_penalty > 0``, ``penalty``: that weight
    times the mean over outputs of ``log(1 + energy share / 0.01)``, which is
    cheapest when few outputs carry the energy.
    """
    s = cfg.separator

    def loss_fn(model, batch, step):
        x = batch.sum(dim=1)  # (B, C, L): the mixture of mixtures
        out = model(x)  # (B, M, C, L)
        loss, _ = mixit_loss(out, batch, s.snr_max_db)
        energy = out.pow(2).flatten(2).sum(-1)  # (B, M)
        share = energy / (energy.sum(1, keepdim=True) + EPS)
        terms = {"neg_snr": float(loss.detach()), "active": float((share > 0.01).float().sum(1).mean())}
        if s.output_penalty > 0:
            pen = s.output_penalty * torch.log1p(share / 0.01).mean()
            terms["penalty"] = float(pen.detach())
            loss = loss + pen
        return loss, terms

    return loss_fn


# --- runs ------------------------------------------------------------------------------------


def separator_run_dir(cfg: Config, root=None) -> Path:
    """Default run folder, keyed by the data and separator settings.

    ``data.source`` is left out: the separator always trains on the true "other"
    stems, and the same run then separates Open-Unmix's estimates (notebook 06).
    """
    from .datasets import data_key

    key = config_hash(cfg.replace(data={"source": "other"}), "data", "separator")
    return paths.runs_dir() / f"separator_{cfg.name}_{key}{data_key(cfg, root)}"


def train_separator(cfg: Config, root=None, run_dir=None, resume: bool = False, force: bool = False,
                    progress: bool = True) -> Path:
    """Train (or reuse) the MixIT separator of ``cfg``; return its run folder.

    A finished run (``done.json``) is a cache unless ``force``. Only the
    ``other.wav`` files of the training split are read; ``cfg.data.n_val_tracks``
    of them give the fixed validation pairs.
    """
    from . import datasets
    from .train import finished_run, fit, lr_factor

    run_dir = Path(run_dir) if run_dir else separator_run_dir(cfg, root)
    if finished_run(run_dir, force, resume):
        return run_dir
    root = Path(root) if root else datasets.ensure_dataset(cfg)
    train_loader, val_loader = loaders(cfg, root)
    s = cfg.separator
    torch.manual_seed(s.seed)
    model = MixITSeparator(s)
    total = s.epochs * s.steps_per_epoch
    fit(model, mixit_loss_fn(cfg), train_loader, val_loader, run_dir, epochs=s.epochs,
        steps_per_epoch=s.steps_per_epoch, lr=s.lr, weight_decay=s.weight_decay, grad_clip=s.grad_clip,
        seed=s.seed, config={**config_to_dict(cfg), "data_root": str(root)}, resume=resume,
        max_minutes=s.max_minutes, progress=progress, device="cpu",
        lr_schedule=lambda step: lr_factor(step, total, s.lr_schedule))
    return run_dir


def ensure_separator(cfg: Config, root=None, progress: bool = True) -> Path:
    """The finished separator run of ``cfg``: reused when cached, trained (or resumed) now otherwise."""
    from .train import interrupted

    return train_separator(cfg, root=root, resume=interrupted(separator_run_dir(cfg, root)), progress=progress)


def load_separator(cfg: Config, run_dir=None, which: str = "last") -> MixITSeparator:
    """The trained separator of ``cfg`` (eval mode, CPU).

    ``which="last"`` (default): the end of the schedule, no model selection. The
    MixIT validation loss is not a separation score (it stayed flat within
    noise on the cpu preset while training went on), so ``best.pt`` would pick
    an early epoch for no measured reason.

    Raises
    ------
    RunNotFoundError
        When it has not been trained; the message names the command that trains it.
    """
    run_dir = Path(run_dir) if run_dir else separator_run_dir(cfg)
    return load_mask_network(run_dir, which, lambda run_cfg: run_cfg.separator,
                             f"no trained MixIT separator at {run_dir}; train it with "
                             f"`python -m mss_helpers train-separator --preset {cfg.name}`")


def load_mask_network(run_dir: Path, which: str, network_config, missing: str) -> MixITSeparator:
    """A trained :class:`MixITSeparator` from ``run_dir/<which>.pt`` (eval mode, CPU).

    ``network_config(run_cfg)`` gives its :class:`SeparatorConfig` from the run's own configuration;
    ``missing`` is the message of the :class:`RunNotFoundError` raised when the run is not there.
    """
    import json

    ckpt = Path(run_dir) / f"{which}.pt"
    if not ckpt.is_file() or not (Path(run_dir) / "config.json").is_file():
        raise RunNotFoundError(missing)
    run_cfg = config_from_dict(json.loads((Path(run_dir) / "config.json").read_text())["config"])
    model = MixITSeparator(network_config(run_cfg))
    model.load_state_dict(torch.load(ckpt, map_location="cpu", weights_only=False)["model"])
    return model.eval()


@torch.no_grad()
def separate_outputs(model: MixITSeparator, x: np.ndarray, chunk_s: float, overlap_s: float,
                     rate: int) -> np.ndarray:
    """The ``M`` outputs of a whole track, in overlapping chunks joined by cross-fades.

    Parameters
    ----------
    x : (C, S) float32
    chunk_s, overlap_s : chunk length and overlap, seconds (memory stays bounded on long audio)

    Returns
    -------
    (M, C, S) float32; the outputs sum to ``x`` (up to the STFT round trip).
    """
    from .audio import chunk_bounds, overlap_add

    x = np.asarray(x, dtype=np.float32)
    C, S = x.shape
    bounds = chunk_bounds(S, int(chunk_s * rate), int(overlap_s * rate))
    chunks = []
    for start, stop in bounds:
        out = model(torch.from_numpy(np.ascontiguousarray(x[None, :, start:stop])))[0]  # (M, C, n)
        chunks.append(out.reshape(-1, stop - start).numpy())
    return overlap_add(chunks, bounds, S).reshape(model.n_outputs, C, S)


# --- CLI -------------------------------------------------------------------------------------


def add_arguments(parser) -> None:
    """Arguments of ``python -m mss_helpers train-separator``."""
    from .train import add_run_arguments

    add_run_arguments(parser, "separator")
    parser.add_argument("--outputs", type=int, default=None, help="override SeparatorConfig.n_outputs")


def run(args) -> int:
    """Train (or reuse) the MixIT separator and print its run folder."""
    cfg = get_config(args.preset)
    if args.outputs is not None:
        if not 2 <= args.outputs <= 12:
            raise ConfigError(f"--outputs must be between 2 and 12 (2^M partitions), got {args.outputs}")
        cfg = cfg.replace(separator={"n_outputs": args.outputs})
    run_dir = train_separator(cfg, root=args.root, run_dir=args.run_dir, resume=args.resume, force=args.force)
    print(f"run: {run_dir}")
    return 0


__all__ = ["MixITSeparator", "mixit_loss", "mixit_loss_bruteforce", "partitions",
           "train_separator", "ensure_separator", "load_separator", "separate_outputs",
           "separator_run_dir", "mixit_loss_fn", "mixture_snr_db", "load_mask_network", "add_arguments", "run"]
