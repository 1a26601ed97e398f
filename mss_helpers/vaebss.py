"""VAE-BSS: a variational autoencoder whose latent space is made of sources (Neri, Badeau, Depalle 2021).

An inference network maps the mixture to ``K`` latent *sources*
``z_1..z_K``, each with a Gaussian posterior and an ``N(0, I)`` prior; ONE
shared generative network decodes each ``z_k`` to a source; the decoded
sources sum to the mixture. The loss is the mixture's Laplace likelihood (an
L1 distance on magnitudes) plus ``beta`` times the KL terms, so it needs
mixtures only: here the training split's "other" stems (``other.wav``), never
the instruments inside them. ``K`` may exceed the true count; surplus
sources are meant to go silent.

- :class:`VAEBSS`: on the log-magnitude STFT of "other" (``n_fft``/``hop`` of
  :class:`VAEBSSConfig`). Inference: per-frame linear layer + one BLSTM layer
  (context over frames) -> ``K`` posteriors per frame. Generation: a shared
  per-frame MLP ``z_k (latent_dim) -> magnitude spectrum`` (exp output).
- :func:`vaebss_loss`: the negative ELBO per time-frequency bin (Laplace of
  scale 1 on mean-normalised magnitudes, so ``beta`` alone sets the trade-off).
- :func:`train_vaebss`: the generic :func:`train.fit` loop, cached under
  ``runs/vaebss_<preset>_<hash>``; KL warm-up over ``kl_warmup_steps``.
- :func:`separate_vaebss`: the *masked* variant, the output we report: masks
  = decoded magnitudes / their sum on the mixture's complex STFT (the
  estimates sum exactly to the input), chunked with cross-fades.
- :func:`active_sources`, :func:`group_sources`: how many sources carry
  sound, and ``K`` sources merged into ``k`` groups for the table.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn

from . import paths
from .config import Config, VAEBSSConfig, config_from_dict, config_hash, config_to_dict, get_config
from .errors import ConfigError, RunNotFoundError
from .train import torch_threads

EPS = 1e-8
FLOOR = 1e-6  # added to every decoded magnitude: masks stay defined where the decoder outputs ~0


# --- the network ---------------------------------------------------------------------------


class VAEBSS(nn.Module):
    """Inference network to ``K`` latent sources, one shared decoder, sources summing to the mixture.

    Magnitudes are normalised per example (divided by the mean magnitude of the
    mixture), so the model and its masks do not depend on the input's level.
    Multi-channel input shares one set of masks (from the mean magnitude over
    channels), so source ``k`` is the same sound in every channel.

    Parameters
    ----------
    vcfg : VAEBSSConfig (n_sources, n_fft, hop, hidden, latent_dim)
    """

    def __init__(self, vcfg: VAEBSSConfig):
        super().__init__()
        self.n_sources, self.latent_dim = vcfg.n_sources, vcfg.latent_dim
        self.n_fft, self.hop = vcfg.n_fft, vcfg.hop
        self.n_bins = n_bins = vcfg.n_fft // 2 + 1
        H = vcfg.hidden
        self.inp = nn.Sequential(nn.Linear(n_bins, H), nn.Tanh())
        self.rnn = nn.LSTM(H, H, batch_first=True, bidirectional=True)
        self.posterior = nn.Linear(2 * H, self.n_sources * 2 * self.latent_dim)
        self.decoder = nn.Sequential(nn.Linear(self.latent_dim, H), nn.ReLU(), nn.Linear(H, H), nn.ReLU(),
                                     nn.Linear(H, n_bins))
        with torch.no_grad():
            # Posteriors start narrow (log-variance heads: weights 0, bias logvar_init): PyTorch's init
            # starts them near N(mu, 1), noise that drowns mu while the decoder has yet to learn to use z.
            head = self.posterior.weight.view(self.n_sources, 2, self.latent_dim, 2 * H)
            head[:, 1].zero_()
            self.posterior.bias.view(self.n_sources, 2, self.latent_dim)[:, 1].fill_(vcfg.logvar_init)
            # The K sources start at 1/K each, summing to the mean normalised magnitude (1). Started K
            # times too loud, the first steps' push down silenced the decoder's units for good
            # (measured: the model stayed at a per-bin median spectrum, the input ignored).
            self.decoder[-1].weight.mul_(0.1)
            self.decoder[-1].bias.fill_(float(np.log(1.0 / self.n_sources)))
        self.register_buffer("window", torch.hann_window(vcfg.n_fft), persistent=False)

    def stft(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, C, L)`` audio -> ``(B, C, F, T)`` complex STFT (centred frames)."""
        B, C, L = x.shape
        X = torch.stft(x.reshape(B * C, L), self.n_fft, self.hop, window=self.window, center=True,
                       return_complex=True)
        return X.view(B, C, X.shape[-2], X.shape[-1])

    @staticmethod
    def normalise(mag: torch.Tensor) -> torch.Tensor:
        """``(B, F, T)`` magnitudes divided by each example's mean magnitude (a silent one stays 0)."""
        return mag / (mag.mean(dim=(1, 2), keepdim=True) + EPS)

    def encode(self, mag: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(B, F, T)`` normalised magnitudes -> posterior ``mean, logvar``, each ``(B, K, T, D)``."""
        feat = torch.log(mag + 1e-3)
        feat = (feat - feat.mean(dim=(1, 2), keepdim=True)) / (feat.std(dim=(1, 2), keepdim=True) + 1e-5)
        h = self.inp(feat.transpose(1, 2))  # (B, T, H)
        h, _ = self.rnn(h)  # (B, T, 2H)
        B, T = h.shape[:2]
        post = self.posterior(h).view(B, T, self.n_sources, 2, self.latent_dim).permute(3, 0, 2, 1, 4)
        return post[0], post[1].clamp(-12.0, 8.0)  # (B, K, T, D) each; the clamp keeps exp() finite

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """``(B, K, T, D)`` latent sources -> ``(B, K, F, T)`` source magnitudes (normalised units)."""
        # (B, K, T, F): the same decoder for every source. An exp output spans the magnitudes' dynamic
        # range (harmonic peaks 100x the median bin) with small weights; the clamp keeps it finite.
        s = torch.exp(self.decoder(z).clamp(max=10.0))
        return s.transpose(2, 3) + FLOOR

    def forward(self, mag: torch.Tensor, sample: bool = True):
        """``(B, F, T)`` normalised mixture magnitudes -> ``(sources (B, K, F, T), mean, logvar)``.

        ``sample``: draw ``z`` from the posterior (training); else decode its mean.
        """
        mean, logvar = self.encode(mag)
        z = mean + torch.randn_like(mean) * torch.exp(0.5 * logvar) if sample else mean
        return self.decode(z), mean, logvar

    def masks(self, mag: torch.Tensor) -> torch.Tensor:
        """``(B, F, T)`` magnitudes (any level) -> ``(B, K, F, T)`` masks (source shares, summing to 1)."""
        sources, _, _ = self(self.normalise(mag), sample=False)
        return sources / sources.sum(dim=1, keepdim=True)

    def separate(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, C, L)`` audio -> ``(B, K, C, L)`` masked sources that sum to the input."""
        B, C, L = x.shape
        X = self.stft(x)  # (B, C, F, T)
        m = self.masks(X.abs().mean(dim=1))  # (B, K, F, T)
        Y = m[:, :, None] * X[:, None]  # (B, K, C, F, T)
        y = torch.istft(Y.reshape(B * self.n_sources * C, *X.shape[-2:]), self.n_fft, self.hop,
                        window=self.window, center=True, length=L)
        return y.view(B, self.n_sources, C, L)


# --- the loss --------------------------------------------------------------------------------


def kl_divergence(mean: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """``KL(N(mean, exp(logvar)) || N(0, I))`` summed over sources and dimensions.

    ``mean, logvar : (B, K, T, D)`` -> ``(B, T)`` nats per frame.
    """
    return 0.5 * (mean.pow(2) + logvar.exp() - 1.0 - logvar).sum(dim=(1, 3))


def vaebss_loss(mix: torch.Tensor, sources: torch.Tensor, mean: torch.Tensor, logvar: torch.Tensor,
                beta: float) -> tuple[torch.Tensor, dict]:
    """Negative ELBO of the mixture per time-frequency bin, and its terms.

    Parameters
    ----------
    mix : (B, F, T) normalised mixture magnitudes
    sources : (B, K, F, T) decoded source magnitudes (same units)
    mean, logvar : (B, K, T, D) the posteriors of the latent sources
    beta : weight of the KL terms (after the warm-up)

    Returns
    -------
    loss : scalar ``mean over (B, T) of [sum_F |mix - sum_k sources_k| + beta * KL] / F``: a Laplace
        likelihood of scale 1 (normalised units, constant dropped), so ``beta`` sets the trade-off
    terms : ``l1`` (per bin), ``kl`` (nats per frame, all sources), ``active`` (mean number of sources
        carrying more than 1% of the decoded energy)
    """
    F = mix.shape[1]
    rec = (mix - sources.sum(dim=1)).abs().sum(dim=1)  # (B, T)
    kl = kl_divergence(mean, logvar)  # (B, T)
    loss = (rec + beta * kl).mean() / F
    with torch.no_grad():
        energy = sources.pow(2).sum(dim=(2, 3))  # (B, K)
        share = energy / (energy.sum(dim=1, keepdim=True) + EPS)
        terms = {"l1": float(rec.mean() / F), "kl": float(kl.mean()),
                 "active": float((share > 0.01).float().sum(dim=1).mean())}
    return loss, terms


def kl_weight(vcfg: VAEBSSConfig, step: int | None) -> float:
    """``beta``, ramped linearly from 0 over ``kl_warmup_steps`` optimiser steps (``step=None``: full)."""
    if step is None or vcfg.kl_warmup_steps <= 0:
        return float(vcfg.beta)
    return float(vcfg.beta) * min(1.0, max(0, step) / vcfg.kl_warmup_steps)


def vaebss_loss_fn(cfg: Config):
    """``loss_fn(model, batch, step)`` for :func:`train.fit`: a batch of "other" clips ``(B, C, L)``.

    Validation uses the full KL weight, so its losses compare across epochs.
    """
    v = cfg.vaebss

    def loss_fn(model, batch, step):
        mix = model.normalise(model.stft(batch).abs().mean(dim=1))  # (B, F, T)
        sources, mean, logvar = model(mix, sample=model.training)
        return vaebss_loss(mix, sources, mean, logvar, kl_weight(v, step if model.training else None))

    return loss_fn


# --- runs ------------------------------------------------------------------------------------


def loaders(cfg: Config, root):
    """Training and validation loaders of "other" clips (``other.wav`` of the training split only)."""
    from torch.utils.data import DataLoader

    from . import datasets
    from .clips import ClipDataset

    v, d = cfg.vaebss, cfg.data
    tracks = datasets.load_tracks(root, "train")
    train_tracks, val_tracks = datasets.split_train_val(tracks, d.n_val_tracks, d.seed)
    common = {"stem": "other", "clip_s": v.clip_s, "rate": d.sample_rate, "channels": d.channels}
    train_ds = ClipDataset(train_tracks, n_clips=v.steps_per_epoch * v.batch_size, seed=v.seed, random=True,
                           **common)
    val_ds = ClipDataset(val_tracks or train_tracks[:1], n_clips=v.val_clips, seed=v.seed + 1, random=False,
                         **common)
    return (DataLoader(train_ds, batch_size=v.batch_size, shuffle=False, drop_last=True),
            DataLoader(val_ds, batch_size=v.batch_size, shuffle=False))


def vaebss_run_dir(cfg: Config, root=None) -> Path:
    """Default run folder, keyed by the data and VAE-BSS settings (``data.source`` left out: the model
    always trains on the true "other", and the same run separates Open-Unmix's estimates)."""
    from .datasets import data_key

    key = config_hash(cfg.replace(data={"source": "other"}), "data", "vaebss")
    return paths.runs_dir() / f"vaebss_{cfg.name}_{key}{data_key(cfg, root)}"


def train_vaebss(cfg: Config, root=None, run_dir=None, resume: bool = False, force: bool = False,
                 progress: bool = True) -> Path:
    """Train (or reuse) the VAE-BSS model of ``cfg``; return its run folder.

    A finished run (``done.json``) is a cache unless ``force``. Only the
    ``other.wav`` files of the training split are read; ``cfg.data.n_val_tracks``
    of its tracks give the fixed validation clips.
    """
    from . import datasets
    from .train import finished_run, fit, lr_factor

    run_dir = Path(run_dir) if run_dir else vaebss_run_dir(cfg, root)
    if finished_run(run_dir, force, resume):
        return run_dir
    root = Path(root) if root else datasets.ensure_dataset(cfg)
    v = cfg.vaebss
    lr_factor(0, 1, v.lr_schedule)  # an unknown schedule fails before the data is read
    train_loader, val_loader = loaders(cfg, root)
    torch.manual_seed(v.seed)
    model = VAEBSS(v)
    total = v.epochs * v.steps_per_epoch
    with torch_threads(v.torch_threads):
        fit(model, vaebss_loss_fn(cfg), train_loader, val_loader, run_dir, epochs=v.epochs,
            steps_per_epoch=v.steps_per_epoch, lr=v.lr, weight_decay=0.0, grad_clip=v.grad_clip, seed=v.seed,
            config={**config_to_dict(cfg), "data_root": str(root)}, resume=resume, max_minutes=v.max_minutes,
            progress=progress, device="cpu", lr_schedule=lambda step: lr_factor(step, total, v.lr_schedule))
    return run_dir


def ensure_vaebss(cfg: Config, root=None, progress: bool = True) -> Path:
    """The finished VAE-BSS run of ``cfg``: reused when cached, trained (or resumed) now otherwise."""
    from .train import interrupted

    return train_vaebss(cfg, root=root, resume=interrupted(vaebss_run_dir(cfg, root)), progress=progress)


def load_vaebss(cfg: Config, run_dir=None) -> VAEBSS:
    """The trained VAE-BSS model of ``cfg`` (``last.pt``: the end of the schedule; eval mode, CPU).

    Raises
    ------
    RunNotFoundError
        When it has not been trained; the message names the command that trains it.
    """
    import json

    run_dir = Path(run_dir) if run_dir else vaebss_run_dir(cfg)
    ckpt = run_dir / "last.pt"
    if not ckpt.is_file() or not (run_dir / "config.json").is_file():
        raise RunNotFoundError(f"no trained VAE-BSS model at {run_dir}; train it with "
                               f"`python -m mss_helpers train-vaebss --preset {cfg.name}`")
    run_cfg = config_from_dict(json.loads((run_dir / "config.json").read_text())["config"])
    model = VAEBSS(run_cfg.vaebss)
    model.load_state_dict(torch.load(ckpt, map_location="cpu", weights_only=False)["model"])
    return model.eval()


# --- separating, counting and grouping sources ----------------------------------------------


@torch.no_grad()
def separate_vaebss(model: VAEBSS, x: np.ndarray, cfg: Config) -> np.ndarray:
    """The ``K`` masked sources of a whole input, in overlapping chunks joined by cross-fades.

    Parameters
    ----------
    model : a trained :class:`VAEBSS`
    x : (C, S) float32 at ``cfg.data.sample_rate``
    cfg : its ``vaebss.chunk_s`` / ``overlap_s`` (seconds) bound the memory on long audio

    Returns
    -------
    (K, C, S) float32; the sources sum to ``x`` (up to the STFT round trip). Source ``k`` is the same
    output of the same network in every chunk, so chunks keep their identity.
    """
    from .audio import chunk_bounds, overlap_add

    x = np.asarray(x, dtype=np.float32)
    C, S = x.shape
    if S < model.n_fft // 2 + 1:
        raise ValueError(f"input of {S} samples is shorter than half an STFT frame ({model.n_fft // 2 + 1})")
    rate, v = cfg.data.sample_rate, cfg.vaebss
    bounds = chunk_bounds(S, int(v.chunk_s * rate), int(v.overlap_s * rate))
    if len(bounds) > 1 and bounds[-1][1] - bounds[-1][0] <= model.n_fft // 2:
        bounds[-2:] = [(bounds[-2][0], S)]  # a tail shorter than half a frame joins the chunk before
    chunks = []
    # One thread: a small BLSTM steps frame after frame. 3 minutes took 0.9-1.7 s with one or two threads on
    # an idle machine, but 56 s with two while another process held the second core; one thread, ~1 s.
    with torch_threads(1):
        for start, stop in bounds:
            chunk = torch.from_numpy(np.ascontiguousarray(x[None, :, start:stop]))
            out = model.separate(chunk)[0]  # (K, C, n)
            chunks.append(out.reshape(-1, stop - start).numpy())
    return overlap_add(chunks, bounds, S).reshape(model.n_sources, C, S)


def source_energies(sources: np.ndarray) -> np.ndarray:
    """``(K, C, S)`` -> ``(K,)`` energy of each source (sum of squares, float64)."""
    return np.square(np.asarray(sources, dtype=np.float64)).reshape(len(sources), -1).sum(axis=1)


def active_sources(sources: np.ndarray, floor_db: float) -> np.ndarray:
    """``(K,)`` bool: sources whose energy is within ``floor_db`` (negative) of the loudest one.

    All False for an all-silent input.
    """
    e = source_energies(sources)
    if e.max() <= 0:
        return np.zeros(len(e), dtype=bool)
    return e >= e.max() * 10 ** (floor_db / 10)


def _magnitudes(sources: np.ndarray, n_fft: int, hop: int) -> np.ndarray:
    """``(K, C, S)`` -> ``(K, F * T)`` magnitude spectrograms (mean over channels), flattened."""
    x = torch.from_numpy(np.ascontiguousarray(sources, dtype=np.float32))
    K, C, S = x.shape
    if S < n_fft:  # a very short input: one frame as long as the input
        n_fft, hop = S, max(1, S // 4)
    X = torch.stft(x.reshape(K * C, S), n_fft, hop, window=torch.hann_window(n_fft), center=True,
                   return_complex=True).abs()
    return X.reshape(K, C, -1).mean(dim=1).numpy()  # (K, F * T)


def group_sources(sources: np.ndarray, k: int, n_fft: int = 512, hop: int = 128) -> np.ndarray:
    """Merge ``K`` sources into ``k`` groups: the ``k`` loudest seed the groups, every other source joins
    the seed whose magnitude spectrogram it correlates best with (Pearson, over bins and frames).

    Parameters
    ----------
    sources : (K, C, S)
    k : number of groups, >= 1 (``k >= K`` returns the sources unchanged)
    n_fft, hop : the STFT of the correlation

    Returns
    -------
    (min(k, K), C, S) float32, loudest seed first; the groups sum to the sum of the sources.
    """
    sources = np.asarray(sources, dtype=np.float32)
    if k < 1:
        raise ConfigError(f"k must be at least 1, got {k}")
    K = len(sources)
    order = np.argsort(-source_energies(sources), kind="stable")
    if k >= K:
        return sources.copy()
    seeds, rest = order[:k], order[k:]
    groups = sources[seeds].copy()
    M = _magnitudes(sources, n_fft, hop)
    M = M - M.mean(axis=1, keepdims=True)
    M /= np.linalg.norm(M, axis=1, keepdims=True) + 1e-12
    for j in rest:
        groups[int(np.argmax(M[seeds] @ M[j]))] += sources[j]  # a silent source adds nothing wherever it goes
    return groups


# --- CLI -------------------------------------------------------------------------------------


def add_arguments(parser) -> None:
    """Arguments of ``python -m mss_helpers train-vaebss``."""
    from .train import add_run_arguments

    add_run_arguments(parser, "vaebss")
    parser.add_argument("--sources", type=int, default=None, help="override VAEBSSConfig.n_sources (K)")


def run(args) -> int:
    """Train (or reuse) the VAE-BSS model and print its run folder."""
    cfg = get_config(args.preset)
    if args.sources is not None:
        if not 1 <= args.sources <= 32:
            raise ConfigError(f"--sources must be between 1 and 32, got {args.sources}")
        cfg = cfg.replace(vaebss={"n_sources": args.sources})
    run_dir = train_vaebss(cfg, root=args.root, run_dir=args.run_dir, resume=args.resume, force=args.force)
    print(f"run: {run_dir}")
    return 0


__all__ = ["VAEBSS", "active_sources", "add_arguments", "ensure_vaebss", "group_sources", "kl_divergence",
           "kl_weight", "load_vaebss", "loaders", "run", "separate_vaebss", "source_energies", "train_vaebss",
           "vaebss_loss", "vaebss_loss_fn", "vaebss_run_dir"]
